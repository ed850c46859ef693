//! Real senders against the receivers: the OpenTelemetry Python SDK (protobuf with gzip, and JSON)
//! and a real Alertmanager (Debian's `prometheus-alertmanager` 0.25) delivering its webhook.
//!
//! Both need programs `scripts/test.sh` installs; without them these tests fail and say what to
//! install — they never skip.

mod receivers_support;

use cellwarden_collector::ingest::AlertStatus;
use cellwarden_collector::receive::{self, ReceiverConfig};
use cellwarden_models::span::SpanKind;
use receivers_support::*;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PY_PACKAGES: &str =
    "opentelemetry-sdk==1.45.1 opentelemetry-exporter-otlp-proto-http==1.45.1 opentelemetry-exporter-otlp-json-http==0.66b1";

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Fails the test with instructions when the SDK cannot be imported.
fn require_python_sdk() {
    let probe = Command::new(python())
        .args([
            "-c",
            "import opentelemetry.sdk.trace, opentelemetry.exporter.otlp.proto.http.trace_exporter, opentelemetry.exporter.otlp.json.http.trace_exporter",
        ])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the OpenTelemetry Python SDK is missing ({}); run scripts/test.sh or `{} -m pip install {PY_PACKAGES}`",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""),
            python()
        ),
        Err(e) => panic!(
            "cannot run {} ({e}); install Python 3 and then `pip install {PY_PACKAGES}`",
            python()
        ),
    }
}

fn send_spans(server: &Server, encoding: &str, service: &str, compression: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/otel/send_spans.py");
    let out = Command::new(python())
        .arg(&script)
        .args([
            "--endpoint",
            &server.url("/v1/traces"),
            "--encoding",
            encoding,
            "--service",
            service,
        ])
        .args(["--compression", compression])
        .output()
        .expect("run send_spans.py");
    assert!(
        out.status.success(),
        "send_spans.py --encoding {encoding} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_spans_arrive_over_protobuf_and_json() {
    require_python_sdk();
    let server = Server::start_with(ReceiverConfig::default(), Some(receive::system_clock())).await;
    for (encoding, service, compression) in [("protobuf", "wallet-api-proto", "gzip"), ("json", "wallet-api-json", "none")] {
        let (_, cursor) = server.ingest.spans_after(0);
        tokio::task::block_in_place(|| send_spans(&server, encoding, service, compression));
        let (spans, _) = server.ingest.spans_after(cursor);
        assert_eq!(spans.len(), 3, "{encoding}: {spans:#?}");
        let by_name = |n: &str| {
            spans
                .iter()
                .find(|s| s.name == n)
                .unwrap_or_else(|| panic!("{encoding}: no span {n}"))
        };
        let (parent, child, failing) = (by_name("POST /pay"), by_name("charge"), by_name("debit"));
        for s in [parent, child, failing] {
            assert_eq!(s.resource.service, service, "{encoding}");
            assert_eq!(s.resource.cell.as_deref(), Some("cell-2"));
            assert_eq!(s.trace_id, parent.trace_id, "one trace");
            assert!(
                s.end_ns > s.start_ns && s.start_ns > 1_700_000_000_000_000_000,
                "{encoding}: times in ns"
            );
        }
        assert_eq!(parent.parent_span_id, "", "{encoding}: the server span is the root");
        assert_eq!(parent.kind, SpanKind::Server);
        assert_eq!(parent.attr("http.response.status_code"), Some("200"));
        assert!(!parent.error && !child.error);
        assert_eq!(child.parent_span_id, parent.span_id);
        assert_eq!(child.kind, SpanKind::Client);
        assert_eq!(child.external_peer(), Some("provider-a"));
        assert_eq!(child.attr("ignored.attribute"), None);
        assert_eq!(failing.parent_span_id, parent.span_id);
        assert!(failing.error, "{encoding}: status ERROR marks the span failed");
    }
}

/// Kills and reaps the child when the test ends, passed or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn alertmanager_bin() -> String {
    let bin = std::env::var("ALERTMANAGER_BIN").unwrap_or_else(|_| "prometheus-alertmanager".into());
    match Command::new(&bin).arg("--version").output() {
        Ok(out) if out.status.success() => bin,
        _ => {
            panic!("{bin} is not installed; run scripts/test.sh or `apt-get install -y prometheus-alertmanager` (or set ALERTMANAGER_BIN)")
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alertmanager_delivers_its_v4_webhook_with_the_bearer_token() {
    let bin = alertmanager_bin();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "am-token-123\n").unwrap();
    let server = Server::start_with(
        ReceiverConfig {
            bearer_token_file: Some(token_file.clone()),
            ..ReceiverConfig::default()
        },
        Some(receive::system_clock()),
    )
    .await;

    let config = format!(
        r#"route:
  receiver: cellwarden
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: cellwarden
    webhook_configs:
      - url: {url}
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: {token}
"#,
        url = server.url("/api/v1/alerts"),
        token = token_file.display()
    );
    let config_file = dir.path().join("alertmanager.yml");
    std::fs::write(&config_file, config).unwrap();
    let am_port = free_port();
    let am = KillOnDrop(
        Command::new(&bin)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start alertmanager"),
    );
    let am_url = format!("http://127.0.0.1:{am_port}");
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{am_url}/-/ready")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "alertmanager did not become ready on {am_url}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let starts_at = "2026-03-01T10:12:00Z";
    let alert = serde_json::json!([{
        "labels": {"alertname": "LedgerMemoryHigh", "service": "ledger", "cell": "cell-2", "severity": "page"},
        "annotations": {"summary": "ledger memory at 92% of its limit"},
        "startsAt": starts_at,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up"
    }]);
    let resp = http.post(format!("{am_url}/api/v2/alerts")).json(&alert).send().await.unwrap();
    assert!(resp.status().is_success(), "alertmanager refused the alert: {}", resp.status());

    let deadline = Instant::now() + Duration::from_secs(30);
    let alerts = loop {
        let (alerts, _) = server.ingest.alerts_after(0);
        if !alerts.is_empty() {
            break alerts;
        }
        assert!(Instant::now() < deadline, "no webhook from alertmanager within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let a = &alerts[0];
    assert_eq!(a.status, AlertStatus::Firing);
    assert_eq!(a.labels["alertname"], "LedgerMemoryHigh");
    assert_eq!(a.labels["service"], "ledger");
    assert_eq!(a.labels["cell"], "cell-2");
    assert_eq!(a.annotations["summary"], "ledger memory at 92% of its limit");
    assert_eq!(a.starts_at, Some(cellwarden_models::Timestamp::parse_rfc3339(starts_at).unwrap()));
    assert_eq!(a.generator_url, "http://prometheus:9090/graph?g0.expr=up");
    assert_eq!(a.fingerprint.len(), 16, "Alertmanager's fingerprint: {:?}", a.fingerprint);
    drop(am);
}
