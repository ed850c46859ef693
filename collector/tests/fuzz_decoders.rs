//! Byte-mutation fuzzing of every decoder a sender can reach (proptest; cargo-fuzz needs a nightly
//! toolchain these machines do not have): remote_write (snappy + protobuf), OTLP protobuf and
//! JSON, Zipkin v2 JSON, the Alertmanager webhook, and exposition text in both formats.
//!
//! Each case takes a valid body and mutates it — bytes flipped, inserted, deleted, a cut — or
//! sends random bytes, then decodes it and pushes what came out into an [`Ingest`]. Asserted: no
//! panic (a panic fails the case), output bounded by the input (no decoded item costs less
//! than a byte of it) and the store within its byte budget. Bounded for CI: [`CASES`] cases per
//! decoder on bodies of a few KiB; the whole file runs in seconds (release or debug).

use cellwarden_collector::exposition::{self, TargetLabels};
use cellwarden_collector::ingest::{Ingest, IngestConfig, Source};
use cellwarden_collector::receive::otlp::{self, Encoding};
use cellwarden_collector::receive::{alertmanager, remote_write, zipkin};
use cellwarden_collector::scrape::{self, Format};
use cellwarden_collector::store::WindowConfig;
use cellwarden_models::Timestamp;
use proptest::prelude::*;
use prost::Message;

/// Cases per decoder: 2,000 mutations of a few-KiB body each decode in well under a
/// millisecond (the six decoders took about 2 s in a debug build here), far below CI's 60 s.
const CASES: u32 = 2_000;

const NOW_MS: i64 = 1_772_360_000_000;

/// The store budget the pushes are held to (small, so a mutation that multiplies series shows).
const BUDGET_BYTES: usize = 1 << 20;

fn ingest() -> Ingest {
    Ingest::new(IngestConfig {
        window: WindowConfig {
            max_store_bytes: BUDGET_BYTES,
            ..WindowConfig::default()
        },
        max_ingest_samples_per_sec: u64::MAX / 4,
        max_ingest_spans_per_sec: u64::MAX / 4,
        max_spans_buffered_bytes: BUDGET_BYTES,
        max_alerts_buffered_bytes: BUDGET_BYTES,
        ..IngestConfig::default()
    })
}

/// One edit of a body.
#[derive(Debug, Clone)]
enum Edit {
    Flip { at: usize, mask: u8 },
    Insert { at: usize, byte: u8 },
    Delete { at: usize },
    Cut { at: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(at, mask)| Edit::Flip { at, mask }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert { at, byte }),
        any::<usize>().prop_map(|at| Edit::Delete { at }),
        any::<usize>().prop_map(|at| Edit::Cut { at }),
    ]
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for e in edits {
        let n = b.len().max(1);
        match *e {
            Edit::Flip { at, mask } => {
                if let Some(x) = b.get_mut(at % n) {
                    *x ^= mask;
                }
            }
            Edit::Insert { at, byte } => b.insert(at % (b.len() + 1), byte),
            Edit::Delete { at } => {
                if !b.is_empty() {
                    b.remove(at % n);
                }
            }
            Edit::Cut { at } => b.truncate(at % n),
        }
    }
    b
}

/// A mutated seed (1–8 edits), or random bytes of up to 4 KiB.
fn body(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(edit(), 1..8).prop_map(move |edits| apply(&seed, &edits)),
        1 => proptest::collection::vec(any::<u8>(), 0..4096),
    ]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn remote_write_seed() -> Vec<u8> {
    use remote_write::proto;
    let timeseries = (0..20)
        .map(|i| proto::TimeSeries {
            labels: vec![
                proto::Label::new("__name__", "http_requests_total"),
                proto::Label::new("pod", &format!("ledger-{i}")),
                proto::Label::new("namespace", "cell-1"),
            ],
            samples: (0..5)
                .map(|k| proto::Sample {
                    value: (i * k) as f64,
                    timestamp: NOW_MS - 60_000 + k * 15_000,
                })
                .collect(),
            histograms: vec![],
        })
        .collect();
    remote_write::encode(&proto::WriteRequest {
        timeseries,
        metadata: vec![proto::MetricMetadata {
            r#type: 1,
            metric_family_name: "http_requests_total".into(),
            help: "Requests".into(),
            unit: String::new(),
        }],
    })
}

fn otlp_seed_json() -> Vec<u8> {
    let spans: Vec<_> = (0..10)
        .map(|i| {
            serde_json::json!({"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": format!("b7ad6b71692033{i:02x}"),
            "name": format!("op-{i}"), "kind": 2, "startTimeUnixNano": "1772360000000000000", "endTimeUnixNano": "1772360000250000000",
            "attributes": [{"key": "peer.service", "value": {"stringValue": "provider-a"}}, {"key": "http.response.status_code", "value": {"intValue": "502"}}],
            "status": {"code": if i % 3 == 0 { 2 } else { 0 }}})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "payments"}}, {"key": "wallet.cell", "value": {"stringValue": "cell-2"}}]},
        "scopeSpans": [{"spans": spans}]}]}))
    .unwrap()
}

fn zipkin_seed() -> Vec<u8> {
    let spans: Vec<_> = (0..10)
        .map(|i| {
            serde_json::json!({"traceId": "463ac35c9f6413ad", "id": format!("a2fb4a1d1a96d3{i:02x}"), "name": "post /charge",
            "kind": "CLIENT", "timestamp": 1_772_360_000_000_000u64, "duration": 250_000,
            "localEndpoint": {"serviceName": "payments"}, "remoteEndpoint": {"serviceName": "provider-a"},
            "tags": {"http.status_code": "503", "wallet.cell": "cell-2"}})
        })
        .collect();
    serde_json::to_vec(&spans).unwrap()
}

fn alertmanager_seed() -> Vec<u8> {
    let alerts: Vec<_> = (0..5)
        .map(|i| {
            serde_json::json!({"status": "firing", "labels": {"alertname": format!("LedgerDown{i}"), "namespace": "cell-1", "severity": "critical"},
            "annotations": {"summary": "ledger is failing"}, "startsAt": "2026-11-26T10:12:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": format!("f{i}"), "generatorURL": "http://prometheus/graph"})
        })
        .collect();
    serde_json::to_vec(
        &serde_json::json!({"version": "4", "status": "firing", "receiver": "cellwarden", "groupKey": "{}:{}", "alerts": alerts}),
    )
    .unwrap()
}

fn exposition_seed() -> Vec<u8> {
    let mut t =
        String::from("# TYPE http_server_request_duration_seconds histogram\n# HELP http_server_request_duration_seconds Latency.\n");
    for p in 0..5 {
        for le in ["0.1", "0.5", "1", "+Inf"] {
            t.push_str(&format!(
                "http_server_request_duration_seconds_bucket{{pod=\"ledger-{p}\",le=\"{le}\"}} {p}\n"
            ));
        }
        t.push_str(&format!("http_server_request_duration_seconds_sum{{pod=\"ledger-{p}\"}} 1.5\n"));
        t.push_str(&format!("http_server_request_duration_seconds_count{{pod=\"ledger-{p}\"}} {p}\n"));
    }
    t.push_str("# TYPE up gauge\nup{job=\"x\"} 1 1772360000\n# EOF\n");
    t.into_bytes()
}

/// The store holds at most its budget, and what it accounts is what it holds.
fn store_bounded(ing: &Ingest) -> Result<(), TestCaseError> {
    let (held, recounted) = ing.with_store(|s| (s.memory_bytes(), s.memory_bytes_recounted()));
    prop_assert!(held <= BUDGET_BYTES, "{held} > {BUDGET_BYTES}");
    prop_assert_eq!(held, recounted);
    Ok(())
}

/// The seeds the mutations start from are valid, so the cases explore near-valid input rather
/// than bodies every decoder refuses at the first byte.
#[test]
fn the_seeds_decode_whole() {
    let req = remote_write::decode(&remote_write_seed(), 1 << 20).unwrap();
    assert_eq!(remote_write::batch(&req).unwrap().samples.sample_count(), 100);
    let req = otlp::decode_request(&otlp_seed_json(), Encoding::Json).unwrap();
    assert_eq!(otlp::spans_from_request(&req, 128).0.len(), 10);
    let req = otlp::decode_request(&req.encode_to_vec(), Encoding::Protobuf).unwrap();
    assert_eq!(otlp::spans_from_request(&req, 128).0.len(), 10);
    assert_eq!(zipkin::decode(&zipkin_seed(), 128).unwrap().len(), 10);
    assert_eq!(alertmanager::decode(&alertmanager_seed()).unwrap().len(), 5);
    let text = String::from_utf8(exposition_seed()).unwrap();
    let target = TargetLabels::default();
    assert_eq!(
        exposition::parse_scrape(&text, Timestamp(NOW_MS), &target)
            .unwrap()
            .samples
            .series_count(),
        31
    );
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn remote_write_survives_mutated_bodies(b in body(remote_write_seed())) {
        // A mutated varint can announce a huge length: the decode cap refuses it before allocating.
        let Ok(req) = remote_write::decode(&b, 1 << 20) else { return Ok(()) };
        let Ok(batch) = remote_write::batch(&req) else { return Ok(()) };
        // Every sample is at least 9 bytes of protobuf (tag + double); snappy can expand 1:~20.
        prop_assert!(batch.samples.sample_count() <= (1 << 20) / 9);
        let ing = ingest();
        let out = ing.push_borrowed(Source::RemoteWrite, &batch.samples, Timestamp(NOW_MS)).unwrap();
        prop_assert_eq!(out.accepted + out.rejected, batch.samples.sample_count() as u64);
        store_bounded(&ing)?;
    }

    #[test]
    fn otlp_protobuf_survives_mutated_bodies(b in body(otlp::decode_request(&otlp_seed_json(), Encoding::Json).unwrap().encode_to_vec())) {
        let Ok(req) = otlp::decode_request(&b, Encoding::Protobuf) else { return Ok(()) };
        let (spans, refused) = otlp::spans_from_request(&req, 128);
        // A span takes at least 2 bytes of protobuf (an empty nested message).
        prop_assert!(spans.len() + refused.len() <= b.len() / 2 + 1);
        let ing = ingest();
        ing.push_spans(Source::Otlp, spans, Timestamp(NOW_MS)).unwrap();
        prop_assert!(ing.buffered_bytes().0 <= BUDGET_BYTES);
    }

    #[test]
    fn otlp_json_survives_mutated_bodies(b in body(otlp_seed_json())) {
        let Ok(req) = otlp::decode_request(&b, Encoding::Json) else { return Ok(()) };
        let (spans, refused) = otlp::spans_from_request(&req, 128);
        prop_assert!(spans.len() + refused.len() <= b.len() / 2 + 1, "`{{}}` is the smallest span");
        let ing = ingest();
        ing.push_spans(Source::Otlp, spans, Timestamp(NOW_MS)).unwrap();
        prop_assert!(ing.buffered_bytes().0 <= BUDGET_BYTES);
    }

    #[test]
    fn zipkin_survives_mutated_bodies(b in body(zipkin_seed())) {
        let Ok(spans) = zipkin::decode(&b, 128) else { return Ok(()) };
        prop_assert!(spans.len() <= b.len() / 2 + 1);
        let ing = ingest();
        ing.push_spans(Source::Zipkin, spans, Timestamp(NOW_MS)).unwrap();
        prop_assert!(ing.buffered_bytes().0 <= BUDGET_BYTES);
    }

    #[test]
    fn alertmanager_survives_mutated_bodies(b in body(alertmanager_seed())) {
        let Ok(alerts) = alertmanager::decode(&b) else { return Ok(()) };
        prop_assert!(alerts.len() <= b.len() / 2 + 1);
        let ing = ingest();
        ing.push_alerts(alerts, Timestamp(NOW_MS));
        prop_assert!(ing.buffered_bytes().1 <= BUDGET_BYTES);
    }

    #[test]
    fn exposition_text_survives_mutated_bodies(b in body(exposition_seed())) {
        let text = String::from_utf8_lossy(&b);
        let lines = text.lines().count() + 1;
        let target = TargetLabels::default();
        if let Ok(batch) = exposition::parse_scrape(&text, Timestamp(NOW_MS), &target) {
            prop_assert!(batch.samples.series_count() <= lines, "one series a line at most");
            let ing = ingest();
            ing.push_borrowed(Source::Scrape, &batch.samples, Timestamp(NOW_MS)).unwrap();
            store_bounded(&ing)?;
        }
        for format in [Format::Text, Format::OpenMetrics] {
            if let Ok(families) = scrape::parse_exposition(format, &text, Timestamp(NOW_MS)) {
                let series: usize = families.iter().map(|f| f.series.len()).sum();
                prop_assert!(series <= lines);
            }
        }
    }
}
