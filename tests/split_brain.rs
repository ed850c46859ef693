//! End to end, the split brain of issue #18: two live, act-mode `cellwarden run` daemons against
//! the fake Kubernetes API (in process). A leads; then every Lease renewal of A hangs for 40 s
//! (fakekube's hang fault, matched on A's identity in the body, so B's takeover goes through).
//!
//! Checked: A stops acting within the renew deadline (a Warning, `cellwarden_leader 0`) — before
//! B may take over; B takes the Lease; an Alertmanager alert sent to A then changes nothing in
//! the cluster, while the same alert sent to B (the positive control) is acted on. The time A
//! took to step down is printed.

use fakekube::store::Fault;
use fakekube::{FakeKube, Options};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use std::time::{Duration, Instant};

mod support;
use support::client;
use support::live::{alert, holder, http, ledger, wait_for, Daemon, World};

/// The Lease holds 6 s without renewal: the renew deadline is 4 s, each API call 1.2 s at most.
const LEASE_SECS: u64 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_renewals_hang_steps_down_and_cannot_act_once_another_took_over() {
    let World {
        fake,
        client: c,
        dir,
        kubeconfig: kc,
    } = World::start().await;

    let a = Daemon::start(dir.path(), &kc, "a", LEASE_SECS);
    wait_for(
        "a leads",
        Duration::from_secs(60),
        || a.logs(),
        async || holder(&c).await.as_deref() == Some("a") && a.leader_gauge() == Some(1),
    )
    .await;
    let b = Daemon::start(dir.path(), &kc, "b", LEASE_SECS);
    wait_for(
        "b is ready",
        Duration::from_secs(60),
        || b.logs(),
        async || http(b.admin, "/readyz", "").0 == 200,
    )
    .await;
    assert_eq!(b.leader_gauge(), Some(0), "b follows");
    let untouched = ledger(&c).await;
    assert_eq!(untouched, (Some(2), None));

    // Every Lease update naming a as holder hangs 40 s: a's renewals, not b's takeover.
    fake.inject_when_body_contains(
        Fault {
            verb: "update".into(),
            resource: "leases".into(),
            code: 0,
            count: 1000,
            retry_after_secs: 1,
            hang_secs: 40,
        },
        "\"holderIdentity\":\"a\"",
    );
    let hung_at = Instant::now();
    // a stops acting within the renew deadline (4 s) after its last renewal, which was at most
    // one retry period (2 s) before the hang: within 6 s of it, before b may take over.
    let stepped_down = wait_for(
        "a steps down",
        Duration::from_secs(8),
        || a.logs(),
        async || a.leader_gauge() == Some(0),
    )
    .await;
    let took_over = wait_for(
        "b takes over",
        Duration::from_secs(30),
        || b.logs(),
        async || holder(&c).await.as_deref() == Some("b"),
    )
    .await
        + stepped_down;
    assert!(
        a.logs().contains("this instance stops acting and follows"),
        "a Warning says so:\n{}",
        a.logs()
    );
    assert!(
        stepped_down < took_over,
        "a stepped down after {stepped_down:?}, b took over after {took_over:?}"
    );

    // An alert to the old leader: taken by its receiver, acted on by no one.
    assert_eq!(http(a.recv, "/api/v1/alerts", &alert("LedgerHighMemory")).0, 200);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(a.leader_gauge(), Some(0), "a still follows:\n{}", a.logs());
    assert_eq!(ledger(&c).await, untouched, "the old leader acted:\n{}", a.logs());
    let incidents: Api<cellwarden_remediator::crd::Incident> = Api::namespaced(c.clone(), "cellwarden");
    assert!(
        incidents.list(&Default::default()).await.unwrap().items.is_empty(),
        "the old leader opened an Incident:\n{}",
        a.logs()
    );

    // The positive control: the same alert to the leader is acted on.
    assert_eq!(http(b.recv, "/api/v1/alerts", &alert("LedgerHighMemory")).0, 200);
    let t = Instant::now();
    while ledger(&c).await == untouched {
        if t.elapsed() > Duration::from_secs(30) {
            let list = incidents.list(&Default::default()).await.unwrap().items;
            let status: Vec<_> = list.iter().map(|i| serde_json::to_string(&i.status).unwrap()).collect();
            panic!("b did not act on the alert within 30 s:\n{}\n{status:#?}", b.logs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "renewals hung: a stepped down after {stepped_down:?} (cellwarden_leader 0), b took the Lease after {took_over:?}, \
         the alert to a changed nothing; hung for {:?} in all",
        hung_at.elapsed()
    );
}

/// The fencing check on its own, with the real kube client against fakekube: it passes while the
/// Lease names us and our term holds; it refuses once another holder is written in (even while
/// our term would still hold), when the Lease cannot be read within the call timeout, and once the
/// term lapsed without a renewal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fence_refuses_another_holder_a_hung_read_and_a_lapsed_term() {
    use cellwarden_remediator::actuate::{ActuateError, Actuator};
    use cellwarden_remediator::lease::{Elector, Fenced, LeaseConfig};
    let fake = FakeKube::start(Options::default()).await.unwrap();
    let c = client(&fake).await;
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.clone());
    let ns = serde_json::from_value(serde_json::json!({"metadata": {"name": "cellwarden"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let cfg = LeaseConfig {
        namespace: "cellwarden".into(),
        name: "cellwarden-leader".into(),
        identity: "a".into(),
        lease_duration_secs: 3,
        pod: None,
    };
    let mut elector = Elector::new(c.clone(), cfg.clone());
    assert!(elector.step(0).await.unwrap(), "a creates the Lease and leads");
    let actuator = Actuator::new(c.clone(), vec![]).with_fence(elector.fence());
    actuator.fence().await.unwrap();

    // A hung read is cut at the call timeout (3 s / 5 = 600 ms) and refuses.
    fake.inject(Fault {
        verb: "get".into(),
        resource: "leases".into(),
        code: 0,
        count: 1,
        retry_after_secs: 1,
        hang_secs: 30,
    });
    let t = Instant::now();
    let err = actuator.fence().await.unwrap_err();
    assert!(matches!(err, ActuateError::Fenced(Fenced::Unreadable { .. })), "{err}");
    assert!(t.elapsed() < Duration::from_secs(2), "cut after {:?}", t.elapsed());
    actuator.fence().await.unwrap();

    // b writes itself in (a takeover a did not see): refused though a's term still holds.
    let leases: Api<Lease> = Api::namespaced(c.clone(), "cellwarden");
    let mut lease = leases.get("cellwarden-leader").await.unwrap();
    lease.spec.as_mut().unwrap().holder_identity = Some("b".into());
    leases.replace("cellwarden-leader", &PostParams::default(), &lease).await.unwrap();
    let err = actuator.fence().await.unwrap_err();
    assert!(err.to_string().contains("held by \"b\""), "{err}");
    assert_eq!(err.metric_label(), "fenced");

    // Without a renewal, the term lapses at the renew deadline (2 s) by itself.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let err = actuator.fence().await.unwrap_err();
    assert!(matches!(err, ActuateError::Fenced(Fenced::TermLapsed)), "{err}");
}
