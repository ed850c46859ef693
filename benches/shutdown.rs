//! SIGTERM to exit, measured: a live, act-mode `cellwarden run` (release build) leads against the
//! fake Kubernetes API (in process), is sent one SIGTERM — idle, and right after an alert whose
//! step opens an incident — and the time to exit (status 0) and to a free Lease are printed.
//!
//! The baseline of the same run is what the signal avoids: a SIGKILLed leader (what the kubelet
//! does after `terminationGracePeriodSeconds`, or to a daemon that ignores SIGTERM) leaves its
//! Lease held until it expires, so a follower waits out the rest of `lease_duration_secs`
//! (15 s, the default) — read from the Lease's `renewTime` and duration at the kill.
//!
//! Run: `cargo bench --bench shutdown` (5 rounds of each; about a minute).

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use std::time::{Duration, Instant, SystemTime};

#[path = "../tests/support/mod.rs"]
mod support;
use support::live::{alert, http, wait_for, Daemon, World};

const ROUNDS: usize = 5;
/// The default `lease_duration_secs`.
const LEASE_SECS: u64 = 15;

/// How long after `at` the Lease stops being held, by its own renewTime and duration (0 once
/// released: no holder).
async fn lease_free_after(c: &kube::Client, at: SystemTime) -> Duration {
    let leases: Api<Lease> = Api::namespaced(c.clone(), "cellwarden");
    let spec = leases.get("cellwarden-leader").await.unwrap().spec.unwrap();
    if spec.holder_identity.as_deref().unwrap_or_default().is_empty() {
        return Duration::ZERO;
    }
    let renewed = spec.renew_time.expect("a held Lease has a renewTime").0;
    let renewed = SystemTime::UNIX_EPOCH + Duration::from_micros(renewed.as_microsecond() as u64);
    let free_at = renewed + Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0) as u64);
    free_at.duration_since(at).unwrap_or(Duration::ZERO)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[derive(Clone, Copy, PartialEq)]
enum Load {
    Idle,
    /// An alert was just taken: its step opens (and acts on) an incident as the signal comes.
    StepUnderWay,
}

/// One round: (time to exit, time until the Lease is free), both from the signal.
async fn round(signal: &str, load: Load) -> (Duration, Duration) {
    let World {
        fake: _fake,
        client: c,
        dir,
        kubeconfig: kc,
    } = World::start().await;
    let mut d = Daemon::start(dir.path(), &kc, "a", LEASE_SECS);
    d.wait_leading().await;
    if load == Load::StepUnderWay {
        assert_eq!(http(d.recv, "/api/v1/alerts", &alert("LedgerHighMemory")).0, 200);
        wait_for(
            "the incident opens",
            Duration::from_secs(30),
            || d.logs(),
            async || d.logs().contains("Alertmanager alert opened an incident"),
        )
        .await;
    }
    let sent_at = SystemTime::now();
    let t = Instant::now();
    let (status, exited) = d.signal(signal, Duration::from_secs(30)).await;
    if signal == "TERM" {
        assert!(status.success(), "exit {status} after SIGTERM:\n{}", d.logs());
    }
    let free = lease_free_after(&c, sent_at).await.max(if signal == "TERM" {
        t.elapsed().min(exited)
    } else {
        Duration::ZERO
    });
    (exited, free)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut rows = Vec::new();
    for (name, signal, load) in [
        ("SIGTERM, idle", "TERM", Load::Idle),
        ("SIGTERM, step under way", "TERM", Load::StepUnderWay),
        ("SIGKILL (baseline)", "KILL", Load::Idle),
    ] {
        let (mut exits, mut frees) = (Vec::new(), Vec::new());
        for i in 0..ROUNDS {
            let (exit, free) = round(signal, load).await;
            eprintln!("{name}: round {}/{ROUNDS}: exit {}, Lease free {}", i + 1, ms(exit), ms(free));
            exits.push(exit);
            frees.push(free);
        }
        let worst = *exits.iter().max().unwrap();
        rows.push((name, median(exits), worst, median(frees)));
    }
    let baseline = rows.last().unwrap().3;
    println!("\n| case ({ROUNDS} rounds) | exit, median | exit, worst | Lease free after, median | vs SIGKILL |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, exit, worst, free) in &rows {
        let ratio = if free == &baseline {
            "1x".to_string()
        } else {
            format!("{:.0}x sooner", baseline.as_secs_f64() / free.as_secs_f64().max(1e-3))
        };
        println!("| {name} | {} | {} | {} | {ratio} |", ms(*exit), ms(*worst), ms(*free));
    }
    println!("\nshutdown_grace_secs 20, the chart's terminationGracePeriodSeconds 30, lease_duration_secs {LEASE_SECS}.");
}
