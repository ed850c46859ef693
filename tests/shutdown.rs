//! End to end, how the live daemon guards its edges and how it stops: the real `cellwarden run
//! --source live` binary in act mode against the fake Kubernetes API (in process).
//!
//! Checked: the receivers refuse an Alertmanager alert without the bearer token (401, no
//! Incident) and take it with the token; the admin listener closes an idle socket after its
//! `idle_timeout_secs`; and one SIGTERM stops the daemon — the step under way finishes and writes
//! its Incident, receivers closed, the Lease released (no holder), exit status 0 — well within
//! `shutdown_grace_secs`.

use fakekube::store::Fault;
use fakekube::{FakeKube, Options};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use std::io::Read;
use std::time::{Duration, Instant};

mod support;
use support::live::{alert, Daemon};
use support::{client, free_port, install_crds};

const TOKEN: &str = "s3cret-token-for-the-test";

/// An HTTP/1.1 exchange presenting `token` when given: (status, body).
fn http(port: u16, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    support::live::request(port, path, &headers, body.as_bytes())
}

/// A live, act-mode daemon leading against `fake`, with `extra` config lines.
struct Running {
    daemon: Daemon,
    admin: u16,
    recv: u16,
    _dir: tempfile::TempDir,
}

impl Running {
    fn logs(&self) -> String {
        self.daemon.logs()
    }

    /// Sends one SIGTERM and waits (at most 15 s) for the exit: its status and how long it took.
    async fn sigterm(&mut self) -> (std::process::ExitStatus, Duration) {
        self.daemon.signal("TERM", Duration::from_secs(15)).await
    }

    async fn wait_for_log(&self, line: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.logs().contains(line) {
            assert!(Instant::now() < deadline, "no {line:?} in:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn holder(c: &kube::Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(c.clone(), "cellwarden");
    leases
        .get_opt("cellwarden-leader")
        .await
        .unwrap()
        .and_then(|l| l.spec?.holder_identity)
}

async fn start_leading(fake: &FakeKube, c: &kube::Client, extra: &str) -> Running {
    install_crds(c).await;
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.clone());
    let ns = serde_json::from_value(serde_json::json!({"metadata": {"name": "cellwarden"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, fake.kubeconfig()).unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let (admin, recv) = (free_port(), free_port());
    let cfg = dir.path().join("cellwarden.yaml");
    std::fs::write(
        &cfg,
        format!(
            "source: live\nmode: act\nnamespace: cellwarden\nadmin_listen: 127.0.0.1:{admin}\nidentity: live-1\nlease_duration_secs: 3\n\
             evaluate_every_secs: 1\n{extra}receivers:\n  listen: 127.0.0.1:{recv}\n  bearer_token_file: {}\n",
            token.display()
        ),
    )
    .unwrap();
    let running = Running {
        daemon: Daemon::spawn(&cfg, &kc, admin, recv),
        admin,
        recv,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while http(admin, "/readyz", None, "").0 != 200 || holder(c).await.as_deref() != Some("live-1") {
        assert!(Instant::now() < deadline, "not ready or not leading:\n{}", running.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sigterm_stops_the_live_daemon_and_releases_the_lease() {
    let fake = FakeKube::start(Options::default()).await.unwrap();
    let c = client(&fake).await;
    let mut d = start_leading(&fake, &c, "shutdown_grace_secs: 10\nadmin_connections:\n  idle_timeout_secs: 1\n").await;
    let (admin, recv) = (d.admin, d.recv);

    // A forged alert (no token, or a wrong one) is refused and opens nothing; the real one is taken.
    let incidents: Api<cellwarden_remediator::crd::Incident> = Api::namespaced(c.clone(), "cellwarden");
    assert_eq!(http(recv, "/api/v1/alerts", None, &alert("Forged")).0, 401);
    assert_eq!(http(recv, "/api/v1/alerts", Some("guess"), &alert("Forged")).0, 401);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        incidents.list(&Default::default()).await.unwrap().items.is_empty(),
        "a forged alert opened an Incident"
    );
    assert_eq!(http(recv, "/api/v1/alerts", Some(TOKEN), &alert("LedgerDown")).0, 200);

    // The admin listener closes an idle socket after its idle timeout.
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", admin)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t = Instant::now();
    let closed = matches!(idle.read(&mut [0u8; 16]), Ok(0));
    let took = t.elapsed();
    assert!(
        closed && took >= Duration::from_millis(800) && took < Duration::from_secs(6),
        "{closed} {took:?}"
    );
    let (_, metrics) = http(admin, "/metrics", None, "");
    assert!(
        metrics.contains("cellwarden_listener_connections_closed_total{listener=\"admin\",reason=\"idle_timeout\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cellwarden_listener_connections_open{listener=\"receivers\"}"),
        "{metrics}"
    );

    // One SIGTERM, sent as soon as the alert's step has opened its incident (the step is still
    // writing it, or has just written it: either way the Incident must be there after the exit).
    d.wait_for_log("Alertmanager alert opened an incident.").await;
    let (status, took) = d.sigterm().await;
    assert!(status.success(), "exit status {status:?}:\n{}", d.logs());
    assert!(took < Duration::from_secs(10), "exited after {took:?}, beyond shutdown_grace_secs");
    assert_eq!(holder(&c).await, None, "the Lease is released:\n{}", d.logs());
    assert_eq!(
        http(recv, "/api/v1/alerts", Some(TOKEN), &alert("Late")).0,
        0,
        "the receivers are closed"
    );
    let written = incidents.list(&Default::default()).await.unwrap().items;
    assert!(
        written
            .iter()
            .any(|i| i.status.as_ref().is_some_and(|s| s.alerts.iter().any(|a| a.name == "LedgerDown"))),
        "the step under way at the signal finished and wrote its Incident"
    );
    let text = d.logs();
    assert!(text.contains("Stopping") && text.contains("Released the Lease."), "{text}");
    assert!(!text.contains("Source finished"), "{text}");
    println!("one SIGTERM: exited 0 after {took:?}, Lease released");
}

/// The API hangs every Incident write and Lease update: the step writing an incident cannot
/// finish and the Lease cannot be released, yet one SIGTERM still ends the process, status 0,
/// within `shutdown_grace_secs`, saying what it left undone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sigterm_exits_within_the_grace_period_while_the_api_hangs() {
    let fake = FakeKube::start(Options::default()).await.unwrap();
    let c = client(&fake).await;
    let mut d = start_leading(&fake, &c, "shutdown_grace_secs: 4\n").await;
    for (verb, resource) in [("create", "incidents"), ("update", "leases")] {
        fake.inject(Fault {
            verb: verb.into(),
            resource: resource.into(),
            code: 0,
            count: 1000,
            retry_after_secs: 1,
            hang_secs: 60,
        });
    }
    assert_eq!(http(d.recv, "/api/v1/alerts", Some(TOKEN), &alert("LedgerDown")).0, 200);
    d.wait_for_log("Alertmanager alert opened an incident.").await;
    let (status, took) = d.sigterm().await;
    assert!(status.success(), "exit status {status:?}:\n{}", d.logs());
    assert!(
        took < Duration::from_secs(4),
        "exited after {took:?}, beyond shutdown_grace_secs (4 s)"
    );
    let text = d.logs();
    assert!(text.contains("did not finish in half the grace period"), "{text}");
    println!("one SIGTERM with the API hanging: exited 0 after {took:?} (shutdown_grace_secs: 4)");
}
