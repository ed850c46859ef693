//! End to end, the API outage of issue #18: a live, act-mode `cellwarden run` daemon leads
//! against the fake Kubernetes API (in process); the API goes away for 12 s (fakekube stopped,
//! its state kept, started again on the same port). Meanwhile two Alertmanager alerts about
//! cell-1/ledger reach the receivers, 2 s apart.
//!
//! Checked: while the API is away the daemon stops acting (it cannot renew the Lease) and the
//! incident waits, counted on `/metrics` (`cellwarden_pending_writes{what="incident"}`); when
//! the API returns the daemon leads again, writes the Incident with the time it opened at
//! (inside the outage, not when written) and says so; the queue empties; the ledger is acted on
//! once — no action repeated on the same target — and nothing was dropped.

use cellwarden_remediator::crd::Incident;
use fakekube::{FakeKube, Options};
use kube::api::Api;
use std::time::{Duration, SystemTime};

mod support;
use support::client;
use support::live::{alert, http, ledger, wait_for, Daemon, World};

/// The Lease holds 3 s without renewal (renew deadline 2 s): the daemon steps down early in
/// the outage.
const LEASE_SECS: u64 = 3;
const OUTAGE: Duration = Duration::from_secs(12);

fn rfc3339_secs(t: &str) -> i64 {
    cellwarden_models::Timestamp::parse_rfc3339(t).unwrap().0 / 1000
}

fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_opened_while_the_api_is_away_are_written_with_their_times_and_acted_on_once() {
    let World {
        fake,
        client: c,
        dir,
        kubeconfig: kc,
    } = World::start().await;
    let port = fake.addr().port();
    let d = Daemon::start(dir.path(), &kc, "a", LEASE_SECS);
    d.wait_leading().await;
    let before = ledger(&c).await;
    assert_eq!(before, (Some(2), None));

    // The API goes away.
    let snapshot = fake.stop().await;
    let away_at = SystemTime::now();
    wait_for(
        "a steps down",
        Duration::from_secs(8),
        || d.logs(),
        async || d.leader_gauge() == Some(0),
    )
    .await;
    for name in ["LedgerHighMemory", "LedgerErrors"] {
        assert_eq!(http(d.recv, "/api/v1/alerts", &alert(name)).0, 200, "{}", d.logs());
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let queued = r#"cellwarden_pending_writes{what="incident"}"#;
    wait_for(
        "the incident is queued",
        Duration::from_secs(5),
        || d.logs(),
        async || d.metric(queued) == Some(1.0),
    )
    .await;
    tokio::time::sleep(OUTAGE.saturating_sub(away_at.elapsed().unwrap())).await;

    // It comes back with its state.
    let back_at = SystemTime::now();
    let fake = FakeKube::start(Options {
        port,
        snapshot: Some(snapshot),
        ..Options::default()
    })
    .await
    .unwrap();
    let c = client(&fake).await;
    let incidents: Api<Incident> = Api::namespaced(c.clone(), "cellwarden");
    let written = wait_for(
        "the queued Incident is written",
        Duration::from_secs(30),
        || d.logs(),
        async || incidents.list(&Default::default()).await.is_ok_and(|l| !l.items.is_empty()),
    )
    .await;
    wait_for(
        "the queue empties",
        Duration::from_secs(10),
        || d.logs(),
        async || d.metric(queued) == Some(0.0),
    )
    .await;
    wait_for(
        "the ledger is acted on",
        Duration::from_secs(30),
        || d.logs(),
        async || ledger(&c).await != before,
    )
    .await;
    // A few more steps, for a repeat to show if there is one.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let list = incidents.list(&Default::default()).await.unwrap().items;
    assert_eq!(list.len(), 1, "one fault, one Incident:\n{}", d.logs());
    let opened = rfc3339_secs(&list[0].spec.opened_at);
    assert!(
        (unix_secs(away_at)..unix_secs(back_at) + 1).contains(&opened),
        "opened at {} (the outage was {}..{}), not when written:\n{}",
        list[0].spec.opened_at,
        unix_secs(away_at),
        unix_secs(back_at),
        d.logs()
    );
    let status = list[0].status.as_ref().expect("a status");
    let mut acted: Vec<(String, String)> = status.taken.iter().map(|t| (t.kind.clone(), t.target.clone())).collect();
    let n = acted.len();
    acted.sort();
    acted.dedup();
    assert_eq!(acted.len(), n, "an action repeated on the same target: {:?}", status.taken);
    let (replicas, _) = ledger(&c).await;
    assert!(replicas <= Some(3), "scaled more than once: {replicas:?}");
    let logs = d.logs();
    assert!(
        logs.contains("Writing the incidents queued while not leading"),
        "the takeover says it writes the queue:\n{logs}"
    );
    assert!(!logs.contains("dropped"), "nothing dropped:\n{logs}");
    // Read as `kubectl logs` shows them: no colour codes when stderr is no terminal, and no
    // kube client ERROR line per retry while the API was away.
    assert!(!logs.contains('\u{1b}'), "ANSI escapes in the log:\n{logs}");
    assert!(!logs.contains("kube_client"), "{logs}");
    for reason in ["full", "expired", "rejected"] {
        let dropped = format!(r#"cellwarden_pending_writes_dropped_total{{what="incident",reason="{reason}"}}"#);
        assert_eq!(d.metric(&dropped).unwrap_or(0.0), 0.0, "{dropped}");
    }
    println!(
        "API away {:?}: the incident queued, written {:?} after the API returned (opened at {}), taken: {:?}",
        OUTAGE,
        written,
        list[0].spec.opened_at,
        status
            .taken
            .iter()
            .map(|t| format!("{} {} {:?}", t.kind, t.target, t.state))
            .collect::<Vec<_>>()
    );
}
