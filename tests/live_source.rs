//! End to end, the daemon's live source: the real `cellwarden run --source live` binary against
//! the fake Kubernetes API (in process), its receivers pushed to over HTTP on 127.0.0.1. Checked:
//! pushed spans and samples are accepted and counted on the admin `/metrics`; bad input gets a
//! 4xx with a clear message and the daemon keeps running with what it accepted; the instance
//! takes the leader Lease; an Alertmanager alert opens an Incident that blames the service its
//! labels name, and its resolution lands on that Incident.

use fakekube::{FakeKube, Options};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{client, free_port, install_crds};

/// A minimal HTTP/1.1 exchange: (status, body).
fn http(port: u16, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    support::live::request(port, path, &[("Content-Type", content_type)], body)
}

fn metric(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn otlp_json(now_ns: u128) -> String {
    serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "wallet-api"}}]},
        "scopeSpans": [{"spans": [
            {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "POST /pay", "kind": 2,
             "startTimeUnixNano": now_ns.to_string(), "endTimeUnixNano": (now_ns + 20_000_000).to_string(), "status": {}},
            {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b175", "parentSpanId": "eee19b7ec3c1b174", "name": "charge", "kind": 3,
             "startTimeUnixNano": (now_ns + 1_000_000).to_string(), "endTimeUnixNano": (now_ns + 15_000_000).to_string(),
             "attributes": [{"key": "peer.service", "value": {"stringValue": "provider-a"}}], "status": {"code": 2}}
        ]}]
    }]})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_source_takes_pushes_refuses_bad_input_and_keeps_running() {
    let fake = FakeKube::start(Options::default()).await.unwrap();
    let c = client(&fake).await;
    install_crds(&c).await;
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.clone());
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "cellwarden"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, fake.kubeconfig()).unwrap();
    let (admin, recv) = (free_port(), free_port());
    let cfg = dir.path().join("cellwarden.yaml");
    std::fs::write(
        &cfg,
        format!(
            "source: live\nnamespace: cellwarden\nadmin_listen: 127.0.0.1:{admin}\nidentity: live-1\nlease_duration_secs: 3\n\
             evaluate_every_secs: 1\nreceivers:\n  listen: 127.0.0.1:{recv}\n  max_body_bytes: 65536\n"
        ),
    )
    .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _daemon = Kill(
        Command::new(env!("CARGO_BIN_EXE_cellwarden"))
            .args(["run", "--config"])
            .arg(&cfg)
            .arg("--kubeconfig")
            .arg(&kc)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    while http(admin, "/readyz", "text/plain", b"").0 != 200 {
        assert!(Instant::now() < deadline, "the daemon never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    // Good pushes: OTLP/JSON spans, Zipkin v2 spans.
    let (st, body) = http(recv, "/v1/traces", "application/json", otlp_json(now_ns).as_bytes());
    assert_eq!(st, 200, "{body}");
    let zipkin = serde_json::json!([{"traceId": "a1b2c3d4e5f60718", "id": "0102030405060708", "name": "get /balance", "kind": "SERVER",
        "timestamp": (now_ns / 1000) as u64, "duration": 1500, "localEndpoint": {"serviceName": "ledger"}}]);
    let (st, body) = http(recv, "/api/v2/spans", "application/json", zipkin.to_string().as_bytes());
    assert!(st == 202 || st == 200, "{st} {body}");
    // Bad input: malformed JSON, wrong content type, oversized body, unknown path — each a 4xx
    // that says what was wrong.
    let (st, body) = http(recv, "/v1/traces", "application/json", b"{\"resourceSpans\": [");
    assert_eq!(st, 400, "{body}");
    assert!(!body.is_empty());
    let (st, _) = http(recv, "/v1/traces", "text/plain", b"hello");
    assert_eq!(st, 415);
    let (st, _) = http(recv, "/api/v2/spans", "application/json", &vec![b' '; 70_000]);
    assert_eq!(st, 413);
    let (st, body) = http(recv, "/api/v1/alerts", "application/json", b"{\"version\": \"3\", \"alerts\": []}");
    assert_eq!(st, 400, "{body}");
    // Still running, and what was accepted is counted on the admin endpoint.
    assert_eq!(http(admin, "/healthz", "text/plain", b"").0, 200);
    let (_, metrics) = http(admin, "/metrics", "text/plain", b"");
    assert_eq!(
        metric(&metrics, "cellwarden_collector_spans_accepted", "source=\"otlp\""),
        2.0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "cellwarden_collector_spans_accepted", "source=\"zipkin\""),
        1.0,
        "{metrics}"
    );
    assert!(metric(&metrics, "cellwarden_collector_requests_rejected", "") >= 4.0, "{metrics}");
    // The pipeline steps over the live window, and the instance leads.
    let leases: Api<Lease> = Api::namespaced(c.clone(), "cellwarden");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, m) = http(admin, "/metrics", "text/plain", b"");
        let holder = leases
            .get_opt("cellwarden-leader")
            .await
            .unwrap()
            .and_then(|l| l.spec?.holder_identity);
        if metric(&m, "cellwarden_pipeline_steps", "") >= 2.0 && holder.as_deref() == Some("live-1") {
            break;
        }
        assert!(Instant::now() < deadline, "no pipeline steps or no Lease: {holder:?}\n{m}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A real Alertmanager (Debian's 0.25) delivers its webhook (payload version 4) to the daemon:
    // a firing alert about a service no incident is about opens an Incident that blames that
    // service, with the alert in its status; the alert's resolution is written to the same one.
    let am_port = free_port();
    let am_config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_config,
        format!(
            "route:\n  receiver: cellwarden\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: cellwarden\n    webhook_configs:\n      - url: http://127.0.0.1:{recv}/api/v1/alerts\n        send_resolved: true\n"
        ),
    )
    .unwrap();
    let am_bin = std::env::var("ALERTMANAGER_BIN").unwrap_or_else(|_| "prometheus-alertmanager".into());
    let _am = Kill(
        Command::new(&am_bin)
            .arg(format!("--config.file={}", am_config.display()))
            .arg(format!("--storage.path={}", dir.path().join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {am_bin} ({e}); run scripts/test.sh or `apt-get install -y prometheus-alertmanager`")),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(am_port, "/-/ready", "text/plain", b"").0 != 200 {
        assert!(Instant::now() < deadline, "alertmanager did not become ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let alert = |ends_at: Option<&str>| {
        let mut a = serde_json::json!({
            "labels": {"alertname": "LedgerHighErrorRate", "namespace": "cell-2", "job": "ledger", "severity": "critical"},
            "annotations": {"summary": "ledger answers 12% of requests with 5xx"},
            "startsAt": "2026-11-26T10:12:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=ledger_errors"});
        if let Some(e) = ends_at {
            a["endsAt"] = e.into();
        }
        serde_json::json!([a]).to_string()
    };
    let (st, body) = http(am_port, "/api/v2/alerts", "application/json", alert(None).as_bytes());
    assert_eq!(st, 200, "alertmanager refused the alert: {body}");
    let incidents: Api<cellwarden_remediator::crd::Incident> = Api::namespaced(c.clone(), "cellwarden");
    let with_alert = |state: &'static str| {
        let incidents = incidents.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let list = incidents.list(&Default::default()).await.unwrap().items;
                let found = list.into_iter().find(|i| {
                    i.status
                        .as_ref()
                        .is_some_and(|s| s.alerts.iter().any(|a| a.name == "LedgerHighErrorRate" && a.state == state))
                });
                if let Some(i) = found {
                    return i;
                }
                assert!(Instant::now() < deadline, "no Incident with the alert {state}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let opened = with_alert("firing").await;
    let status = opened.status.clone().unwrap();
    assert_eq!(status.root_cause[0].entity, "cell-2/ledger", "{status:?}");
    assert_eq!(status.root_cause[0].class, "internal");
    let a = &status.alerts[0];
    assert_eq!(
        (a.entity.as_deref(), a.severity.as_deref(), a.starts_at.as_deref()),
        (Some("service:cell-2/ledger"), Some("critical"), Some("2026-11-26T10:12:00Z"))
    );
    assert_eq!(a.summary, "ledger answers 12% of requests with 5xx");
    assert!(
        status.timeline[0].text.contains("Opened by Alertmanager alert LedgerHighErrorRate"),
        "{:?}",
        status.timeline
    );
    // The alert ends (endsAt now): Alertmanager sends it resolved.
    let ended = cellwarden_models::Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    )
    .to_rfc3339();
    let (st, body) = http(am_port, "/api/v2/alerts", "application/json", alert(Some(&ended)).as_bytes());
    assert_eq!(st, 200, "{body}");
    let resolved = with_alert("resolved").await;
    assert_eq!(
        resolved.metadata.name, opened.metadata.name,
        "the resolution lands on the Incident the alert opened"
    );
    assert_eq!(incidents.list(&Default::default()).await.unwrap().items.len(), 1);
    println!(
        "Incident {} after the alert resolved:\n{}",
        resolved.metadata.name.as_deref().unwrap_or("?"),
        serde_yaml_ng::to_string(&resolved.status).unwrap()
    );
    let (_, m) = http(admin, "/metrics", "text/plain", b"");
    assert_eq!(metric(&m, "cellwarden_alerts_total", "outcome=\"opened\""), 1.0, "{m}");
    assert_eq!(metric(&m, "cellwarden_alerts_total", "outcome=\"joined\""), 1.0, "{m}");
    let reasons = support::event_reasons(&c, "cellwarden").await;
    assert!(reasons.iter().any(|r| r == "IncidentOpened"), "{reasons:?}");
    assert!(reasons.iter().any(|r| r == "AlertJoined"), "{reasons:?}");
}
