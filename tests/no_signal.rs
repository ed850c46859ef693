//! A first install that sees nothing, end to end: a live daemon with no scrape, no query and no
//! pushes (as a default `helm install` on a cluster with no annotated pods) against the fake API.
//!
//! Checked: after `no_signal_warn_after_secs` (2 s here) a Warning says nothing feeds it,
//! `cellwarden_signal_series` is 0, and `/readyz` stays 200 but says so; once a remote_write push
//! brings memory series, the gauge counts them, an Info line says so and `/readyz` is plain again.

use cellwarden_collector::receive::remote_write::{self, proto};
use std::time::{Duration, SystemTime};

mod support;
use support::live::{http, request, wait_for, Daemon, World};

/// A remote_write of three pods' working-set memory (the cAdvisor name) in cell-1, at now.
fn memory_push() -> Vec<u8> {
    let now_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as i64;
    let timeseries = (0..3)
        .map(|i| proto::TimeSeries {
            labels: vec![
                proto::Label::new("__name__", "container_memory_working_set_bytes"),
                proto::Label::new("namespace", "cell-1"),
                proto::Label::new("pod", &format!("ledger-{i}")),
                proto::Label::new("container", "ledger"),
            ],
            samples: vec![proto::Sample {
                value: 2.0e8,
                timestamp: now_ms,
            }],
            histograms: vec![],
        })
        .collect();
    remote_write::encode(&proto::WriteRequest {
        timeseries,
        metadata: vec![],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nothing_to_read_the_daemon_says_so_and_stops_saying_it_once_series_come() {
    let World {
        fake: _fake,
        client: _,
        dir,
        kubeconfig: kc,
    } = World::start().await;
    let d = Daemon::start_with(dir.path(), &kc, "a", 6, "no_signal_warn_after_secs: 2\n");
    let readyz = || http(d.admin, "/readyz", "");
    wait_for(
        "the no-signal warning",
        Duration::from_secs(30),
        || d.logs(),
        async || d.logs().contains("No signal series arrived; cellwarden watches nothing"),
    )
    .await;
    assert_eq!(d.metric("cellwarden_signal_series"), Some(0.0));
    let (status, body) = readyz();
    assert_eq!(status, 200, "the probe still passes: {body}");
    assert!(
        body.starts_with("ready; no signal series for") && body.contains("scrape: off, query: off"),
        "{body}"
    );

    let (status, body) = request(
        d.recv,
        "/api/v1/write",
        &[("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy")],
        &memory_push(),
    );
    assert!((200..300).contains(&status), "{status} {body}");
    wait_for(
        "series counted",
        Duration::from_secs(30),
        || d.logs(),
        async || d.metric("cellwarden_signal_series").is_some_and(|n| n > 0.0),
    )
    .await;
    wait_for(
        "the all-clear",
        Duration::from_secs(10),
        || d.logs(),
        async || d.logs().contains("Signal series arrive again"),
    )
    .await;
    assert_eq!(readyz(), (200, "ready".to_string()));
}
