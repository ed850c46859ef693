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
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;
use support::{client, free_port, install_crds};

/// The Lease holds 6 s without renewal: the renew deadline is 4 s, each API call 1.2 s at most.
const LEASE_SECS: u64 = 6;

/// A minimal HTTP/1.1 exchange: (status, body).
fn http(port: u16, path: &str, body: &str) -> (u16, String) {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let method = if body.is_empty() { "GET" } else { "POST" };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body.as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

fn alert(name: &str) -> String {
    serde_json::json!({"version": "4", "status": "firing", "receiver": "cellwarden", "groupKey": "{}:{alertname=\"x\"}",
        "alerts": [{"status": "firing", "labels": {"alertname": name, "namespace": "cell-1", "deployment": "ledger", "severity": "critical"},
        "annotations": {"summary": "ledger is failing"}, "startsAt": "2026-11-26T10:12:00Z", "fingerprint": name}]})
    .to_string()
}

/// One running daemon: its admin and receiver ports and its log lines (stderr).
struct Daemon {
    child: Child,
    admin: u16,
    recv: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn start(dir: &Path, kubeconfig: &Path, identity: &str) -> Daemon {
        let (admin, recv) = (free_port(), free_port());
        let cfg = dir.join(format!("{identity}.yaml"));
        std::fs::write(
            &cfg,
            format!(
                "source: live\nmode: act\ninsecure_receivers: true\nnamespace: cellwarden\nadmin_listen: 127.0.0.1:{admin}\n\
                 identity: {identity}\nlease_duration_secs: {LEASE_SECS}\nevaluate_every_secs: 1\npoll_interval_ms: 200\n\
                 receivers:\n  listen: 127.0.0.1:{recv}\n"
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_cellwarden"))
            .args(["run", "--config"])
            .arg(&cfg)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env("CELLWARDEN_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (l, err) = (log.clone(), child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        Daemon { child, admin, recv, log }
    }

    fn logs(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// `cellwarden_leader` on the admin `/metrics` (None while unreachable).
    fn leader_gauge(&self) -> Option<i64> {
        let (_, m) = http(self.admin, "/metrics", "");
        m.lines()
            .find_map(|l| l.strip_prefix("cellwarden_leader "))
            .and_then(|v| v.trim().parse().ok())
    }
}

async fn holder(c: &kube::Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(c.clone(), "cellwarden");
    leases
        .get_opt("cellwarden-leader")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity)
}

/// What cellwarden changed on cell-1/ledger: (replicas, the restart annotation).
async fn ledger(c: &kube::Client) -> (Option<i32>, Option<String>) {
    let api: Api<Deployment> = Api::namespaced(c.clone(), "cell-1");
    let d = api.get("ledger").await.unwrap();
    let restarted = d
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(cellwarden_remediator::actuate::RESTARTED_AT).cloned());
    (d.spec.replicas, restarted)
}

async fn wait_for(what: &str, within: Duration, logs: impl Fn() -> String, mut ok: impl AsyncFnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !ok().await {
        assert!(t.elapsed() < within, "{what} did not happen within {within:?}:\n{}", logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_renewals_hang_steps_down_and_cannot_act_once_another_took_over() {
    let fake = FakeKube::start(Options::default()).await.unwrap();
    let c = client(&fake).await;
    install_crds(&c).await;
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.clone());
    for name in ["cellwarden", "cell-1"] {
        let ns = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
        nss.create(&PostParams::default(), &ns).await.unwrap();
    }
    let policies: Api<cellwarden_remediator::crd::RemediationPolicy> = Api::namespaced(c.clone(), "cellwarden");
    let policy = serde_json::from_value(
        serde_json::json!({"apiVersion": "cellwarden.io/v1alpha1", "kind": "RemediationPolicy",
        "metadata": {"name": "default", "namespace": "cellwarden"}, "spec": {"mode": "act"}}),
    )
    .unwrap();
    policies.create(&PostParams::default(), &policy).await.unwrap();
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), "cell-1");
    let d: Deployment = serde_json::from_value(serde_json::json!({"metadata": {"name": "ledger", "namespace": "cell-1"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "ledger"}},
                 "template": {"metadata": {"labels": {"app": "ledger"}}, "spec": {"containers": [{"name": "ledger", "image": "wallet/ledger:1"}]}}}}))
    .unwrap();
    deployments.create(&PostParams::default(), &d).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, fake.kubeconfig()).unwrap();

    let a = Daemon::start(dir.path(), &kc, "a");
    wait_for(
        "a leads",
        Duration::from_secs(60),
        || a.logs(),
        async || holder(&c).await.as_deref() == Some("a") && a.leader_gauge() == Some(1),
    )
    .await;
    let b = Daemon::start(dir.path(), &kc, "b");
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
