//! Fixture format v1 readers and writers: a round trip of every file kind, gzip, and malformed
//! input that must fail with the file, the line and the reason.

use cellwarden_models::fixture::{self, FixtureError};
use cellwarden_models::span::{Span, SpanKind, SpanResource};
use cellwarden_models::topology::{CellInfo, DeploymentInfo, ExternalInfo, NodeInfo, RevisionInfo, ServiceInfo, Topology};
use cellwarden_models::truth::{ExpectedAction, Fault, RootCause, StepCount, Truth, TruthEvent};
use cellwarden_models::{Family, MetricType, Sample, Series, SeriesKey, Timestamp};

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn sample_families() -> Vec<Family> {
    let mem = Family {
        name: "container_memory_working_set_bytes".into(),
        kind: MetricType::Gauge,
        help: Some("Working set.".into()),
        unit: Some("bytes".into()),
        series: vec![Series {
            key: SeriesKey::new(
                "container_memory_working_set_bytes",
                labels(&[("cell", "cell-2"), ("service", "ledger"), ("pod", "ledger-7d9c-2kq")]),
            ),
            samples: (0..5)
                .map(|i| Sample {
                    t: Timestamp(1_772_359_920_000 + i * 30_000 + 250),
                    value: 1.5e8 + i as f64 * 1e6,
                })
                .collect(),
        }],
    };
    let hist = Family {
        name: "http_server_request_duration_seconds".into(),
        kind: MetricType::Histogram,
        help: None,
        unit: None,
        series: ["0.1", "+Inf"]
            .iter()
            .map(|le| Series {
                key: SeriesKey::new(
                    "http_server_request_duration_seconds_bucket",
                    labels(&[("service", "payments"), ("le", le)]),
                ),
                samples: vec![Sample {
                    t: Timestamp(1_772_359_920_000),
                    value: 3.0,
                }],
            })
            .chain([Series {
                key: SeriesKey::new("http_server_request_duration_seconds_count", labels(&[("service", "payments")])),
                samples: vec![Sample {
                    t: Timestamp(1_772_359_920_000),
                    value: 3.0,
                }],
            }])
            .collect(),
    };
    let counter = Family {
        name: "http_server_requests".into(),
        kind: MetricType::Counter,
        help: None,
        unit: None,
        series: vec![Series {
            key: SeriesKey::new(
                "http_server_requests_total",
                labels(&[("provider", "provider-a"), ("status", "503")]),
            ),
            samples: vec![
                Sample {
                    t: Timestamp(1_772_359_920_000),
                    value: 12.0,
                },
                Sample {
                    t: Timestamp(1_772_359_950_000),
                    value: f64::INFINITY,
                },
            ],
        }],
    };
    vec![mem, hist, counter]
}

fn sample_spans() -> Vec<Span> {
    let mut attrs = std::collections::BTreeMap::new();
    attrs.insert("peer.service".to_string(), "provider-a".to_string());
    attrs.insert("http.response.status_code".to_string(), "503".to_string());
    vec![
        Span {
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            span_id: "b7ad6b7169203331".into(),
            parent_span_id: String::new(),
            name: "POST /pay".into(),
            kind: SpanKind::Server,
            start_ns: 1_772_359_920_000_000_000,
            end_ns: 1_772_359_920_120_000_000,
            error: false,
            resource: SpanResource {
                service: "payments".into(),
                pod: Some("payments-1".into()),
                namespace: Some("cell-2".into()),
                node: Some("node-7".into()),
                cell: Some("cell-2".into()),
            },
            attributes: Default::default(),
        },
        Span {
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            span_id: "00f067aa0ba902b7".into(),
            parent_span_id: "b7ad6b7169203331".into(),
            name: "provider call".into(),
            kind: SpanKind::Client,
            start_ns: 1_772_359_920_010_000_000,
            end_ns: 1_772_359_920_110_000_000,
            error: true,
            resource: SpanResource {
                service: "provider-gateway".into(),
                cell: Some("cell-2".into()),
                ..Default::default()
            },
            attributes: attrs,
        },
    ]
}

fn sample_topology() -> Topology {
    Topology {
        system: Some("wallet".into()),
        cells: vec![CellInfo {
            name: "cell-1".into(),
            zone: Some("zone-a".into()),
            weight: Some(50.0),
        }],
        services: vec![ServiceInfo {
            name: "ledger".into(),
            essential: Some(true),
            deployments: vec![DeploymentInfo {
                cell: Some("cell-1".into()),
                name: "ledger".into(),
                namespace: Some("cell-1".into()),
                replicas: Some(3),
                memory_limit_bytes: Some(536_870_912.0),
                revisions: vec![
                    RevisionInfo {
                        revision: 1,
                        at: Timestamp::parse_rfc3339("2026-03-01T08:00:00Z").unwrap(),
                    },
                    RevisionInfo {
                        revision: 2,
                        at: Timestamp::parse_rfc3339("2026-03-01T10:04:00Z").unwrap(),
                    },
                ],
            }],
        }],
        external: vec![ExternalInfo {
            name: "provider-a".into(),
            kind: Some("payment-provider".into()),
            weight: Some(60.0),
        }],
        nodes: vec![NodeInfo {
            name: "node-7".into(),
            zone: Some("zone-a".into()),
            cell: Some("cell-1".into()),
        }],
    }
}

fn sample_truth() -> Truth {
    let t = |s: &str| Timestamp::parse_rfc3339(s).unwrap();
    Truth {
        faults: vec![Fault {
            kind: "memory_leak".into(),
            root_cause: RootCause {
                service: Some("ledger".into()),
                cell: Some("cell-2".into()),
                ..Default::default()
            },
            start: t("2026-03-01T10:12:00Z"),
            end: None,
            failure: Some(t("2026-03-01T10:40:00Z")),
        }],
        expected_actions: vec![ExpectedAction {
            kind: "scale".into(),
            target: Some("cell-2/ledger".into()),
        }],
        events: vec![TruthEvent {
            kind: "load_surge".into(),
            start: t("2026-03-01T12:00:00Z"),
            end: Some(t("2026-03-01T12:30:00Z")),
        }],
        other_faults: vec![],
        failed_payments: vec![StepCount {
            t: t("2026-03-01T10:40:30Z"),
            n: 12.5,
        }],
    }
}

#[test]
fn metrics_round_trip_plain_and_gzip() {
    for name in ["metrics.om", "metrics.om.gz"] {
        let mut buf = Vec::new();
        fixture::write_metrics(name, &mut buf, &sample_families()).unwrap();
        if name.ends_with(".gz") {
            assert_eq!(&buf[..2], &[0x1f, 0x8b], "gzip magic");
        } else {
            assert!(String::from_utf8_lossy(&buf).ends_with("# EOF\n"));
        }
        let back = fixture::read_metrics(name, &buf[..]).unwrap();
        assert_eq!(back.families, sample_families(), "{name}");
    }
}

#[test]
fn traces_round_trip_plain_and_gzip() {
    for name in ["traces.jsonl", "traces.jsonl.gz"] {
        let mut buf = Vec::new();
        fixture::write_traces(name, &mut buf, &sample_spans()).unwrap();
        let mut back = fixture::read_traces(name, &buf[..]).unwrap();
        back.sort_by_key(|s| s.start_ns);
        assert_eq!(back, sample_spans(), "{name}");
    }
}

#[test]
fn topology_and_truth_round_trip_plain_and_gzip() {
    for gz in ["", ".gz"] {
        let mut buf = Vec::new();
        fixture::write_topology(&format!("topology.yaml{gz}"), &mut buf, &sample_topology()).unwrap();
        assert_eq!(
            fixture::read_topology(&format!("topology.yaml{gz}"), &buf[..]).unwrap(),
            sample_topology()
        );
        let mut buf = Vec::new();
        fixture::write_truth(&format!("truth.yaml{gz}"), &mut buf, &sample_truth()).unwrap();
        assert_eq!(fixture::read_truth(&format!("truth.yaml{gz}"), &buf[..]).unwrap(), sample_truth());
    }
}

#[test]
fn reads_the_documented_examples_and_ignores_unknown_keys() {
    let topo = "system: wallet\nfuture_key: 1\ncells:\n  - {name: cell-1, zone: zone-a, weight: 50, colour: blue}\nservices:\n  - name: ledger\n    essential: true\n    deployments: [{cell: cell-1, name: ledger, namespace: cell-1, replicas: 3, memory_limit_bytes: 536870912}]\nexternal:\n  - {name: provider-a, kind: payment-provider, weight: 60}\nnodes:\n  - {name: node-7, zone: zone-a, cell: cell-1}\nnotes: |\n  free text\n";
    let t = fixture::read_topology("topology.yaml", topo.as_bytes()).unwrap();
    assert_eq!(t.cell_of_node("node-7"), Some("cell-1"));
    assert_eq!(t.services[0].deployments[0].memory_limit_bytes, Some(536_870_912.0));
    let truth = "faults:\n  - kind: memory_leak\n    root_cause:\n      service: ledger\n      cell: cell-2\n      pod: ledger-7d9c-2kq\n      provider: provider-a\n      node: node-7\n      zone: zone-b\n    start: 2026-03-01T10:12:00Z\n    end: 2026-03-01T10:15:00Z\n    failure: 2026-03-01T10:40:00Z\nexpected_actions:\n  - {kind: scale, target: cell-2/ledger}\nevents:\n  - {kind: load_surge, start: 2026-03-01T12:00:00Z, end: 2026-03-01T12:30:00Z}\nother_faults:\n  - {kind: return, root_cause: {service: ts-basic-service}, start: 2026-03-01T09:21:39Z, end: 2026-03-01T09:24:39Z}\nreviewer: someone\n";
    let t = fixture::read_truth("truth.yaml", truth.as_bytes()).unwrap();
    assert_eq!(t.faults[0].root_cause.zone.as_deref(), Some("zone-b"));
    assert_eq!(t.other_faults.len(), 1);
    let healthy = fixture::read_truth("truth.yaml", "faults: []\n".as_bytes()).unwrap();
    assert!(healthy.is_healthy());
    // OTLP/JSON with unknown attributes, enum names, integer ids as numbers.
    let line = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"payments"}},{"key":"host.arch","value":{"stringValue":"amd64"}}]},"scopeSpans":[{"spans":[{"traceId":"0AF7651916CD43DD8448EB211C80319C","spanId":"b7ad6b7169203331","name":"x","kind":"SPAN_KIND_CLIENT","startTimeUnixNano":"1","endTimeUnixNano":2,"attributes":[{"key":"http.response.status_code","value":{"intValue":"502"}},{"key":"custom","value":{"boolValue":true}}],"status":{"code":"STATUS_CODE_ERROR"}}]}]}]}"#;
    let spans = fixture::read_traces("traces.jsonl", line.as_bytes()).unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(spans[0].kind, SpanKind::Client);
    assert!(spans[0].error && spans[0].failed());
    assert_eq!(spans[0].attributes.len(), 1);
}

fn malformed(err: FixtureError) -> (String, usize, String) {
    match err {
        FixtureError::Malformed { file, line, reason } => (file, line, reason),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn malformed_metrics_name_file_line_and_reason() {
    let (file, line, reason) =
        malformed(fixture::read_metrics("fx/metrics.om", "# TYPE m gauge\nm 1 10\nm{a=1} 2 20\n# EOF\n".as_bytes()).unwrap_err());
    assert_eq!((file.as_str(), line), ("fx/metrics.om", 3));
    assert!(reason.contains("not quoted"), "{reason}");
    // Millisecond timestamps of the 0.0.4 format still parse but a sample without one does not.
    let (_, line, reason) = malformed(fixture::read_metrics("metrics.om", "m 1\n# EOF\n".as_bytes()).unwrap_err());
    assert_eq!(line, 1);
    assert!(reason.contains("timestamp"));
}

#[test]
fn truncated_gzip_is_an_error_not_a_short_read() {
    let mut buf = Vec::new();
    fixture::write_metrics("metrics.om.gz", &mut buf, &sample_families()).unwrap();
    buf.truncate(buf.len() / 2);
    let err = fixture::read_metrics("metrics.om.gz", &buf[..]).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("metrics.om.gz:"), "{text}");
}

#[test]
fn malformed_traces_name_the_line() {
    let good = r#"{"resourceSpans":[]}"#;
    let cases = [
        (format!("{good}\n{{\"resourceSpans\": [\n"), 2, "invalid JSON"),
        (format!("{good}\n{good}\n{{\"resourceSpans\":[{{\"scopeSpans\":[{{\"spans\":[{{\"traceId\":\"abc\",\"spanId\":\"b7ad6b7169203331\",\"startTimeUnixNano\":\"1\",\"endTimeUnixNano\":\"2\"}}]}}]}}]}}\n"), 3, "traceId"),
        ("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"0af7651916cd43dd8448eb211c80319c\",\"spanId\":\"b7ad6b7169203331\",\"startTimeUnixNano\":\"x\",\"endTimeUnixNano\":\"2\"}]}]}]}\n".to_string(), 1, "startTimeUnixNano"),
        ("{\"resourceSpans\":{}}\n".to_string(), 1, "not an array"),
    ];
    for (text, want_line, needle) in cases {
        let (file, line, reason) = malformed(fixture::read_traces("traces.jsonl", text.as_bytes()).unwrap_err());
        assert_eq!(file, "traces.jsonl");
        assert_eq!(line, want_line, "{reason}");
        assert!(reason.contains(needle), "{reason}");
    }
}

#[test]
fn malformed_yaml_names_the_line() {
    let (file, line, reason) = malformed(
        fixture::read_truth(
            "truth.yaml",
            "faults:\n  - kind: x\n    start: not-a-time\n    root_cause: {}\n".as_bytes(),
        )
        .unwrap_err(),
    );
    assert_eq!(file, "truth.yaml");
    assert!(line >= 2, "{line}");
    assert!(reason.contains("RFC 3339"), "{reason}");
    let (_, _, reason) = malformed(fixture::read_truth("truth.yaml", "expected_actions: []\n".as_bytes()).unwrap_err());
    assert!(reason.contains("faults"), "{reason}");
    let (_, line, _) = malformed(fixture::read_topology("topology.yaml", "cells:\n  - name: [unclosed\n".as_bytes()).unwrap_err());
    assert_eq!(line, 2);
}
