//! The push receivers over real HTTP on 127.0.0.1: good requests stored and decoded right, bad ones
//! refused with a 4xx that names the problem, the server answering afterwards with earlier data
//! intact; the bearer token; TLS.

mod receivers_support;

use cellwarden_collector::ingest::{AlertStatus, Source};
use cellwarden_collector::receive::otlp::RpcStatus;
use cellwarden_collector::receive::remote_write::{encode, proto};
use cellwarden_collector::receive::ReceiverConfig;
use cellwarden_models::span::SpanKind;
use cellwarden_models::{MetricType, Sample, SeriesKey, Timestamp};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span as OtlpSpan, Status};
use prost::Message;
use receivers_support::*;
use std::io::Write;

fn key(metric: &str, pod: &str) -> SeriesKey {
    SeriesKey::new(metric, [("pod".to_string(), pod.to_string())])
}

async fn expect(resp: reqwest::Response, status: u16, needle: &str) -> String {
    let got = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_eq!(got, status, "body: {text}");
    assert!(text.contains(needle), "expected {needle:?} in {text:?}");
    text
}

fn stored(server: &Server, metric: &str, pod: &str) -> Vec<Sample> {
    server.ingest.with_store(|s| s.range(&key(metric, pod), Timestamp(0)))
}

// ---------------------------------------------------------------- remote_write

#[tokio::test]
async fn remote_write_stores_samples_and_notes_metadata() {
    let server = Server::start(ReceiverConfig::default()).await;
    let body = encode(&proto::WriteRequest {
        timeseries: vec![
            series(
                "container_memory_working_set_bytes",
                "ledger-1",
                &[(T0_MS, 3.0e8), (T0_MS + 15_000, 3.5e8)],
            ),
            series("http_server_requests_total", "ledger-1", &[(T0_MS, 10.0)]),
        ],
        metadata: vec![proto::MetricMetadata {
            r#type: 1,
            metric_family_name: "http_server_requests_total".into(),
            help: "Requests served".into(),
            unit: String::new(),
        }],
    });
    let resp = post_write(&client(), &server, body).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        stored(&server, "container_memory_working_set_bytes", "ledger-1"),
        [
            Sample {
                t: Timestamp(T0_MS),
                value: 3.0e8
            },
            Sample {
                t: Timestamp(T0_MS + 15_000),
                value: 3.5e8
            }
        ]
    );
    let fams = server.ingest.families(Timestamp(0));
    let req = fams.iter().find(|f| f.name == "http_server_requests").expect("counter family");
    assert_eq!(req.kind, MetricType::Counter);
    assert_eq!(req.help.as_deref(), Some("Requests served"));
    assert_eq!(req.series[0].samples[0].value, 10.0);
}

#[tokio::test]
async fn a_megabyte_label_value_and_bad_values_are_refused_by_reason_and_cost_nothing() {
    let server = Server::start(ReceiverConfig::default()).await;
    let c = client();
    let huge = "x".repeat(1 << 20);
    let mut big = series("up", "a", &[(T0_MS, 1.0)]);
    big.labels.push(label("trace", &huge));
    let body = write_body(vec![
        big,
        series("up", "b", &[(T0_MS, f64::NAN), (T0_MS + 1, f64::INFINITY), (T0_MS + 2, 2.0)]),
        series("up", "c", &[(T0_MS - 3_600_001, 1.0), (T0_MS + 301_000, 1.0)]),
    ]);
    assert_eq!(post_write(&c, &server, body).await.status(), 204);
    assert_eq!(server.ingest.with_store(|s| s.series_count()), 1, "only up{{pod=b}}");
    assert_eq!(
        stored(&server, "up", "b"),
        [Sample {
            t: Timestamp(T0_MS + 2),
            value: 2.0
        }]
    );
    let held = server.ingest.with_store(|s| s.memory_bytes());
    assert!(held < 4096, "the refused megabyte is not held: {held} bytes");
    for (reason, n) in [
        ("label_value_too_long", 1),
        ("nan", 1),
        ("infinite", 1),
        ("too_old", 1),
        ("too_new", 1),
    ] {
        assert_eq!(server.ingest.rejected(Source::RemoteWrite, reason_of(reason)), n, "{reason}");
    }
}

fn reason_of(s: &str) -> cellwarden_collector::limits::Refused {
    use cellwarden_collector::limits::Refused::*;
    [LabelValueTooLong, NotANumber, Infinite, TooOld, TooNew]
        .into_iter()
        .find(|r| r.as_str() == s)
        .expect("a reason")
}

#[tokio::test]
async fn remote_write_refuses_bad_input_and_keeps_what_it_had() {
    let server = Server::start(ReceiverConfig {
        max_body_bytes: 4096,
        ..ReceiverConfig::default()
    })
    .await;
    let c = client();
    let good = write_body(vec![series("up", "a", &[(T0_MS, 1.0)])]);
    assert_eq!(post_write(&c, &server, good).await.status(), 204);

    expect(
        post_write(&c, &server, b"\xff\xff\xff\xff\xff\xff".to_vec()).await,
        400,
        "not snappy",
    )
    .await;
    let raw = proto::WriteRequest {
        timeseries: vec![series("up", "b", &[(T0_MS, 1.0)])],
        metadata: vec![],
    }
    .encode_to_vec();
    let truncated = snap::raw::Encoder::new().compress_vec(&raw[..raw.len() - 4]).unwrap();
    expect(
        post_write(&c, &server, truncated).await,
        400,
        "not a valid remote_write WriteRequest",
    )
    .await;
    // Pod names from an LCG, so snappy cannot shrink the body under the limit.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let big: Vec<_> = (0..400)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            series("up", &format!("pod-{x:016x}"), &[(T0_MS, (x >> 11) as f64)])
        })
        .collect();
    let big = write_body(big);
    assert!(big.len() > 4096);
    expect(post_write(&c, &server, big).await, 413, "max_body_bytes (4096 bytes)").await;
    let plain = c
        .post(server.url("/api/v1/write"))
        .header("Content-Type", "text/plain")
        .header("Content-Encoding", "snappy")
        .body("up 1")
        .send()
        .await
        .unwrap();
    expect(plain, 415, "application/x-protobuf").await;
    let uncompressed = c
        .post(server.url("/api/v1/write"))
        .header("Content-Type", "application/x-protobuf")
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    expect(uncompressed, 415, "Content-Encoding: snappy").await;
    let v2 = c
        .post(server.url("/api/v1/write"))
        .header("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request")
        .header("Content-Encoding", "snappy")
        .body(write_body(vec![]))
        .send()
        .await
        .unwrap();
    expect(v2, 415, "only remote_write 1.0").await;

    assert_eq!(
        server.ingest.with_store(|s| s.series_count()),
        1,
        "nothing of the bad requests was stored"
    );
    let again = write_body(vec![series("up", "a", &[(T0_MS + 1000, 2.0)])]);
    assert_eq!(post_write(&c, &server, again).await.status(), 204, "still answering");
    assert_eq!(stored(&server, "up", "a").iter().map(|s| s.value).collect::<Vec<_>>(), [1.0, 2.0]);
    assert_eq!(server.ingest.requests_rejected(Source::RemoteWrite, "malformed"), 2);
    assert_eq!(server.ingest.requests_rejected(Source::RemoteWrite, "unsupported_media_type"), 3);
    assert_eq!(server.ingest.requests_rejected(Source::RemoteWrite, "too_large"), 1);
}

#[tokio::test]
async fn remote_write_answers_429_with_retry_after_and_stores_nothing_of_the_refused_batch() {
    let server = Server::start(ReceiverConfig {
        max_ingest_samples_per_sec: 100,
        ..ReceiverConfig::default()
    })
    .await;
    let c = client();
    let batch = |pod: &str, n: i64| write_body(vec![series("up", pod, &(0..n).map(|i| (T0_MS + i, 1.0)).collect::<Vec<_>>())]);
    assert_eq!(post_write(&c, &server, batch("a", 80)).await.status(), 204);
    let refused = post_write(&c, &server, batch("b", 50)).await;
    assert_eq!(refused.headers()["retry-after"], "1");
    expect(refused, 429, "retry after 1 s").await;
    assert!(stored(&server, "up", "b").is_empty(), "the refused batch left the store untouched");
    server.advance_ms(1000);
    assert_eq!(
        post_write(&c, &server, batch("b", 50)).await.status(),
        204,
        "a second later it fits"
    );
    assert_eq!(stored(&server, "up", "b").len(), 50);
    assert_eq!(stored(&server, "up", "a").len(), 80);
    assert_eq!(server.ingest.requests_rejected(Source::RemoteWrite, "throttled"), 1);
    let too_big = post_write(&c, &server, batch("c", 101)).await;
    expect(too_big, 413, "more than max_ingest_samples_per_sec (100)").await;
}

// ---------------------------------------------------------------- OTLP

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

/// A payments server span, its client child calling provider-a (an error), as an SDK sends them.
fn otlp_request() -> ExportTraceServiceRequest {
    let trace_id = (1..=16).collect::<Vec<u8>>();
    let parent = OtlpSpan {
        trace_id: trace_id.clone(),
        span_id: vec![0xa0, 1, 2, 3, 4, 5, 6, 7],
        name: "POST /pay".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: 1_772_360_000_000_000_000,
        end_time_unix_nano: 1_772_360_000_300_000_000,
        attributes: vec![kv("http.response.status_code", any_value::Value::IntValue(502))],
        ..Default::default()
    };
    let child = OtlpSpan {
        trace_id,
        span_id: vec![0xb0, 1, 2, 3, 4, 5, 6, 7],
        parent_span_id: parent.span_id.clone(),
        name: "charge".into(),
        kind: span::SpanKind::Client as i32,
        start_time_unix_nano: 1_772_360_000_010_000_000,
        end_time_unix_nano: 1_772_360_000_290_000_000,
        attributes: vec![kv("peer.service", s("provider-a")), kv("color", s("blue"))],
        status: Some(Status {
            code: status::StatusCode::Error as i32,
            message: "timeout".into(),
        }),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", s("payments")), kv("wallet.cell", s("cell-2"))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![parent, child],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn assert_payment_spans(spans: &[cellwarden_models::Span]) {
    assert_eq!(spans.len(), 2);
    let (parent, child) = (&spans[0], &spans[1]);
    assert_eq!(parent.trace_id, "0102030405060708090a0b0c0d0e0f10");
    assert_eq!(parent.span_id, "a001020304050607");
    assert_eq!(parent.parent_span_id, "");
    assert_eq!(parent.kind, SpanKind::Server);
    assert_eq!(parent.attr("http.response.status_code"), Some("502"));
    assert!(!parent.error);
    assert_eq!(child.parent_span_id, parent.span_id);
    assert_eq!(child.kind, SpanKind::Client);
    assert!(child.error);
    assert_eq!(child.external_peer(), Some("provider-a"));
    assert_eq!(child.attr("color"), None, "attributes cellwarden does not read are dropped");
    assert_eq!(child.resource.service, "payments");
    assert_eq!(child.resource.cell.as_deref(), Some("cell-2"));
    assert_eq!(child.duration_secs(), 0.28);
}

#[tokio::test]
async fn otlp_protobuf_spans_arrive_decoded_and_the_answer_is_protobuf() {
    let server = Server::start(ReceiverConfig::default()).await;
    let resp = client()
        .post(server.url("/v1/traces"))
        .header("Content-Type", "application/x-protobuf")
        .body(otlp_request().encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    let answer = ExportTraceServiceResponse::decode(resp.bytes().await.unwrap()).unwrap();
    assert_eq!(answer.partial_success, None);
    let (spans, cursor) = server.ingest.spans_after(0);
    assert_payment_spans(&spans);
    assert_eq!(cursor, 2);
}

#[tokio::test]
async fn otlp_json_and_gzip_bodies_arrive_decoded() {
    let server = Server::start(ReceiverConfig::default()).await;
    // OTLP/JSON as the spec writes it: hex ids, nanoseconds as strings, integer enums.
    let json = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"payments"}},
        {"key":"wallet.cell","value":{"stringValue":"cell-2"}}]},"scopeSpans":[{"scope":{"name":"test"},"spans":[
        {"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"a001020304050607","name":"POST /pay","kind":2,
         "startTimeUnixNano":"1772360000000000000","endTimeUnixNano":"1772360000300000000",
         "attributes":[{"key":"http.response.status_code","value":{"intValue":"502"}}]},
        {"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"b001020304050607","parentSpanId":"a001020304050607",
         "name":"charge","kind":3,"startTimeUnixNano":"1772360000010000000","endTimeUnixNano":"1772360000290000000",
         "attributes":[{"key":"peer.service","value":{"stringValue":"provider-a"}},{"key":"color","value":{"stringValue":"blue"}}],
         "status":{"code":2,"message":"timeout"}}]}]}]}"#;
    let c = client();
    let resp = c
        .post(server.url("/v1/traces"))
        .header("Content-Type", "application/json")
        .body(json)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let answer: serde_json::Value = resp.json().await.unwrap();
    assert!(answer.get("partialSuccess").is_none_or(|p| p.is_null()), "{answer}");
    let (spans, cursor) = server.ingest.spans_after(0);
    assert_payment_spans(&spans);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&otlp_request().encode_to_vec()).unwrap();
    let resp = c
        .post(server.url("/v1/traces"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (spans, _) = server.ingest.spans_after(cursor);
    assert_payment_spans(&spans);
}

#[tokio::test]
async fn otlp_reports_rejected_spans_as_partial_success() {
    let server = Server::start(ReceiverConfig::default()).await;
    let mut req = otlp_request();
    req.resource_spans[0].scope_spans[0].spans[1].trace_id = vec![1, 2, 3];
    let resp = client()
        .post(server.url("/v1/traces"))
        .header("Content-Type", "application/x-protobuf")
        .body(req.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let answer = ExportTraceServiceResponse::decode(resp.bytes().await.unwrap()).unwrap();
    let partial = answer.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("`traceId` must be 16 bytes, got 3"),
        "{}",
        partial.error_message
    );
    assert_eq!(server.ingest.spans_after(0).0.len(), 1, "the good span was kept");
}

#[tokio::test]
async fn otlp_refuses_bad_input_with_a_status_in_the_request_encoding() {
    let server = Server::start(ReceiverConfig {
        max_body_bytes: 2048,
        ..ReceiverConfig::default()
    })
    .await;
    let c = client();
    let post = |ct: &'static str, body: Vec<u8>| c.post(server.url("/v1/traces")).header("Content-Type", ct).body(body).send();
    assert_eq!(
        post("application/x-protobuf", otlp_request().encode_to_vec())
            .await
            .unwrap()
            .status(),
        200
    );

    let full = otlp_request().encode_to_vec();
    let resp = post("application/x-protobuf", full[..full.len() - 7].to_vec()).await.unwrap();
    assert_eq!(resp.status(), 400);
    let st = RpcStatus::decode(resp.bytes().await.unwrap()).unwrap();
    assert_eq!(st.code, 3);
    assert!(
        st.message.contains("not a valid OTLP ExportTraceServiceRequest (protobuf)"),
        "{}",
        st.message
    );

    let resp = post("application/json", br#"{"resourceSpans": [{"scopeSpans": 7}]}"#.to_vec())
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let st: serde_json::Value = resp.json().await.unwrap();
    assert!(st["message"].as_str().unwrap().contains("(JSON)"), "{st}");

    expect(
        post("text/plain", b"hello".to_vec()).await.unwrap(),
        415,
        "application/x-protobuf or application/json",
    )
    .await;
    let mut big = otlp_request();
    big.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(4000);
    let resp = post("application/x-protobuf", big.encode_to_vec()).await.unwrap();
    assert_eq!(resp.status(), 413);
    assert!(RpcStatus::decode(resp.bytes().await.unwrap())
        .unwrap()
        .message
        .contains("max_body_bytes"));

    assert_eq!(
        post("application/x-protobuf", otlp_request().encode_to_vec())
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        server.ingest.spans_after(0).0.len(),
        4,
        "the two good requests' spans, nothing else"
    );
}

#[tokio::test]
async fn otlp_throttles_spans_with_retry_after() {
    let server = Server::start(ReceiverConfig {
        max_ingest_spans_per_sec: 3,
        ..ReceiverConfig::default()
    })
    .await;
    let c = client();
    let post = || {
        c.post(server.url("/v1/traces"))
            .header("Content-Type", "application/x-protobuf")
            .body(otlp_request().encode_to_vec())
            .send()
    };
    assert_eq!(post().await.unwrap().status(), 200);
    let resp = post().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_eq!(server.ingest.spans_after(0).0.len(), 2);
    server.advance_ms(1000);
    assert_eq!(post().await.unwrap().status(), 200);
    assert_eq!(server.ingest.spans_after(0).0.len(), 4);
}

// ---------------------------------------------------------------- Zipkin

#[tokio::test]
async fn zipkin_spans_arrive_and_bad_ones_are_refused() {
    let server = Server::start(ReceiverConfig::default()).await;
    let c = client();
    let post = |ct: &'static str, body: &'static str| c.post(server.url("/api/v2/spans")).header("Content-Type", ct).body(body).send();
    let good = r#"[{"traceId":"5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","name":"get /balance","kind":"SERVER",
        "timestamp":1772360000000000,"duration":20000,"localEndpoint":{"serviceName":"wallet-api"}},
        {"traceId":"5af7183fb1d4cf5f","parentId":"6b221d5bc9e6496c","id":"352bff9a74ca9ad2","name":"query","kind":"CLIENT",
        "timestamp":1772360000001000,"duration":15000,"localEndpoint":{"serviceName":"wallet-api"},
        "remoteEndpoint":{"serviceName":"ledger"},"tags":{"error":"deadline exceeded"}}]"#;
    assert_eq!(post("application/json", good).await.unwrap().status(), 202);
    let (spans, _) = server.ingest.spans_after(0);
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[1].parent_span_id, spans[0].span_id);
    assert_eq!(spans[1].attr("peer.service"), Some("ledger"));
    assert!(spans[1].error && !spans[0].error);
    assert_eq!(spans[0].resource.service, "wallet-api");
    assert_eq!((spans[0].end_ns - spans[0].start_ns), 20_000_000);

    expect(
        post("application/json", "[{\"traceId\":").await.unwrap(),
        400,
        "not a Zipkin v2 JSON list of spans",
    )
    .await;
    let no_ts = r#"[{"traceId":"5af7183fb1d4cf5f","id":"6b221d5bc9e6496c"}]"#;
    expect(
        post("application/json", no_ts).await.unwrap(),
        400,
        "span 0 (id \"6b221d5bc9e6496c\"): no `timestamp`",
    )
    .await;
    expect(post("application/x-protobuf", "x").await.unwrap(), 415, "application/json").await;
    assert_eq!(post("application/json", good).await.unwrap().status(), 202, "still answering");
    assert_eq!(server.ingest.spans_after(0).0.len(), 4);
}

// ---------------------------------------------------------------- Alertmanager

const ALERT_V4: &str = r#"{"version":"4","groupKey":"{}:{alertname=\"LedgerMemoryHigh\"}","truncatedAlerts":0,
    "status":"firing","receiver":"cellwarden","groupLabels":{"alertname":"LedgerMemoryHigh"},"commonLabels":{},
    "commonAnnotations":{},"externalURL":"http://alertmanager:9093","alerts":[{"status":"firing",
    "labels":{"alertname":"LedgerMemoryHigh","cell":"cell-2","service":"ledger"},"annotations":{"summary":"memory at 92%"},
    "startsAt":"2026-03-01T10:12:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus/graph","fingerprint":"c1d2"}]}"#;

#[tokio::test]
async fn alertmanager_v4_alerts_arrive_and_other_versions_are_refused() {
    let server = Server::start(ReceiverConfig::default()).await;
    let c = client();
    let post = |ct: &'static str, body: String| c.post(server.url("/api/v1/alerts")).header("Content-Type", ct).body(body).send();
    assert_eq!(post("application/json", ALERT_V4.into()).await.unwrap().status(), 200);
    let (alerts, cursor) = server.ingest.alerts_after(0);
    assert_eq!(cursor, 1);
    assert_eq!(alerts[0].status, AlertStatus::Firing);
    assert_eq!(alerts[0].labels["service"], "ledger");
    assert_eq!(alerts[0].starts_at, Some(Timestamp::parse_rfc3339("2026-03-01T10:12:00Z").unwrap()));
    assert_eq!(alerts[0].ends_at, None);

    let v3 = ALERT_V4.replacen("\"version\":\"4\"", "\"version\":\"3\"", 1);
    expect(post("application/json", v3).await.unwrap(), 400, "version \"3\" is not supported").await;
    let bad_status = ALERT_V4.replace("\"status\":\"firing\",\n    \"labels\"", "\"status\":\"burning\",\n    \"labels\"");
    expect(
        post("application/json", bad_status).await.unwrap(),
        400,
        "alert 0: `status` must be",
    )
    .await;
    expect(post("application/json", ALERT_V4[..100].into()).await.unwrap(), 400, "not JSON").await;
    expect(post("text/plain", ALERT_V4.into()).await.unwrap(), 415, "application/json").await;
    assert_eq!(
        post("application/json", ALERT_V4.into()).await.unwrap().status(),
        200,
        "still answering"
    );
    assert_eq!(server.ingest.alerts_after(0).0.len(), 2);
}

// ---------------------------------------------------------------- bearer token, 404

#[tokio::test]
async fn every_receiver_requires_the_bearer_token_when_one_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let server = Server::start(ReceiverConfig {
        bearer_token_file: Some(token_file),
        ..ReceiverConfig::default()
    })
    .await;
    let c = client();
    for path in ["/api/v1/write", "/v1/traces", "/api/v2/spans", "/api/v1/alerts"] {
        let resp = c
            .post(server.url(path))
            .header("Content-Type", "application/json")
            .body("[]")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        let text = expect(resp, 401, "missing `Authorization: Bearer <token>` header").await;
        assert!(!text.contains("s3cret"));
    }
    let wrong = c
        .post(server.url("/api/v1/alerts"))
        .bearer_auth("s3cret-tokeN")
        .header("Content-Type", "application/json")
        .body(ALERT_V4)
        .send()
        .await
        .unwrap();
    expect(wrong, 401, "not the one configured").await;
    assert_eq!(server.ingest.alerts_after(0).0.len(), 0);
    let right = c
        .post(server.url("/api/v1/alerts"))
        .bearer_auth("s3cret-token")
        .header("Content-Type", "application/json")
        .body(ALERT_V4)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert_eq!(server.ingest.alerts_after(0).0.len(), 1);
    assert_eq!(server.ingest.requests_rejected(Source::Alertmanager, "unauthorized"), 2);
    assert_eq!(server.ingest.requests_rejected(Source::Otlp, "unauthorized"), 1);
}

#[tokio::test]
async fn an_unknown_path_is_404_naming_the_receivers() {
    let server = Server::start(ReceiverConfig::default()).await;
    let resp = client().post(server.url("/api/v1/push")).body("x").send().await.unwrap();
    expect(resp, 404, "/api/v1/write").await;
    server.stop().await;
}

// ---------------------------------------------------------------- TLS

#[tokio::test]
async fn the_listener_speaks_tls_with_the_configured_certificate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let server = Server::start(ReceiverConfig {
        tls_cert_file: Some(cert_file),
        tls_key_file: Some(key_file),
        ..ReceiverConfig::default()
    })
    .await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .resolve("localhost", server.addr)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/api/v1/write", server.addr.port());
    let resp = https
        .post(&url)
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .body(write_body(vec![series("up", "tls", &[(T0_MS, 1.0)])]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(stored(&server, "up", "tls").len(), 1);

    let plain = client().post(server.url("/api/v1/write")).body("x").send().await;
    assert!(
        plain.is_err() || plain.unwrap().status() != 204,
        "plain HTTP is not served on the TLS listener"
    );
    let resp = https.post(&url).body("x").send().await.unwrap();
    assert_eq!(resp.status(), 415, "still answering over TLS");
    server.stop().await;
}
