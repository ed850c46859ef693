//! Live, act-mode `cellwarden run` daemons against the fake API (the split brain and the API
//! outage tests): a small wallet (namespaces, an act-mode policy, cell-1/ledger with 2
//! replicas), a daemon with its admin and receiver ports and its log lines, an Alertmanager
//! alert about cell-1/ledger, and what cellwarden changed on the ledger.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A minimal HTTP/1.1 exchange: (status, body); (0, "") when nothing listens. A GET when
/// `body` is empty, else a JSON POST.
pub fn http(port: u16, path: &str, body: &str) -> (u16, String) {
    request(port, path, &[("Content-Type", "application/json")], body.as_bytes())
}

/// A minimal HTTP/1.1 exchange with `headers` (a GET when `body` is empty).
pub fn request(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let method = if body.is_empty() { "GET" } else { "POST" };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n",
        headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect::<String>(),
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

/// An Alertmanager v4 webhook: `name` firing, critical, about cell-1's ledger.
pub fn alert(name: &str) -> String {
    serde_json::json!({"version": "4", "status": "firing", "receiver": "cellwarden", "groupKey": "{}:{alertname=\"x\"}",
        "alerts": [{"status": "firing", "labels": {"alertname": name, "namespace": "cell-1", "deployment": "ledger", "severity": "critical"},
        "annotations": {"summary": "ledger is failing"}, "startsAt": "2026-11-26T10:12:00Z", "fingerprint": name}]})
    .to_string()
}

/// The namespaces `cellwarden` and `cell-1`, an act-mode RemediationPolicy, and cell-1/ledger
/// with 2 replicas.
pub async fn wallet(c: &kube::Client) {
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
}

/// The fake API with the CRDs and the [`wallet`] in it, a client of it, and a folder holding its
/// kubeconfig (for daemons' configs too).
pub struct World {
    pub fake: fakekube::FakeKube,
    pub client: kube::Client,
    pub dir: tempfile::TempDir,
    pub kubeconfig: std::path::PathBuf,
}

impl World {
    pub async fn start() -> World {
        let fake = fakekube::FakeKube::start(fakekube::Options::default()).await.unwrap();
        let client = super::client(&fake).await;
        super::install_crds(&client).await;
        wallet(&client).await;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, fake.kubeconfig()).unwrap();
        World {
            fake,
            client,
            dir,
            kubeconfig,
        }
    }
}

/// One running daemon: its admin and receiver ports and its log lines (stderr).
pub struct Daemon {
    child: Child,
    pub admin: u16,
    pub recv: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// A live, act-mode daemon named `identity` whose Lease holds `lease_secs`, stepping every
    /// second, with open receivers.
    pub fn start(dir: &Path, kubeconfig: &Path, identity: &str, lease_secs: u64) -> Daemon {
        Daemon::start_with(dir, kubeconfig, identity, lease_secs, "")
    }

    /// [`Daemon::start`] with `extra` config lines.
    pub fn start_with(dir: &Path, kubeconfig: &Path, identity: &str, lease_secs: u64, extra: &str) -> Daemon {
        let (admin, recv) = (super::free_port(), super::free_port());
        let cfg = dir.join(format!("{identity}.yaml"));
        std::fs::write(
            &cfg,
            format!(
                "source: live\nmode: act\ninsecure_receivers: true\nnamespace: cellwarden\nadmin_listen: 127.0.0.1:{admin}\n\
                 identity: {identity}\nlease_duration_secs: {lease_secs}\nevaluate_every_secs: 1\npoll_interval_ms: 200\n\
                 receivers:\n  listen: 127.0.0.1:{recv}\n{extra}"
            ),
        )
        .unwrap();
        Daemon::spawn(&cfg, kubeconfig, admin, recv)
    }

    /// `cellwarden run --config cfg` whose admin and receiver listeners are on `admin`, `recv`.
    pub fn spawn(cfg: &Path, kubeconfig: &Path, admin: u16, recv: u16) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cellwarden"))
            .args(["run", "--config"])
            .arg(cfg)
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

    pub fn logs(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The value of the sample `series` (name and labels as exposed) on the admin `/metrics`
    /// (None while unreachable or absent).
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, m) = http(self.admin, "/metrics", "");
        m.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// Sends `signal` (`TERM`, `KILL`) and waits (at most `within`) for the exit: its status and
    /// how long it took.
    pub async fn signal(&mut self, signal: &str, within: Duration) -> (std::process::ExitStatus, Duration) {
        let t = Instant::now();
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal} failed");
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return (s, t.elapsed());
            }
            assert!(
                t.elapsed() < within,
                "still running {within:?} after one SIG{signal}:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits (at most 60 s) until this daemon says it leads (`cellwarden_leader 1`).
    pub async fn wait_leading(&self) {
        wait_for(
            "the daemon leads",
            Duration::from_secs(60),
            || self.logs(),
            async || self.leader_gauge() == Some(1),
        )
        .await;
    }

    /// `cellwarden_leader` on the admin `/metrics` (None while unreachable).
    pub fn leader_gauge(&self) -> Option<i64> {
        self.metric("cellwarden_leader").map(|v| v as i64)
    }
}

/// Who holds the `cellwarden-leader` Lease.
pub async fn holder(c: &kube::Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(c.clone(), "cellwarden");
    leases
        .get_opt("cellwarden-leader")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity)
}

/// What cellwarden changed on cell-1/ledger: (replicas, the restart annotation).
pub async fn ledger(c: &kube::Client) -> (Option<i32>, Option<String>) {
    let api: Api<Deployment> = Api::namespaced(c.clone(), "cell-1");
    let d = api.get("ledger").await.unwrap();
    let restarted = cellwarden_remediator::actuate::restarted_at(&d).map(str::to_string);
    (d.spec.replicas, restarted)
}

/// Waits (polling every 50 ms) until `ok`, failing with `logs` after `within`; how long it took.
pub async fn wait_for(what: &str, within: Duration, logs: impl Fn() -> String, mut ok: impl AsyncFnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !ok().await {
        assert!(t.elapsed() < within, "{what} did not happen within {within:?}:\n{}", logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t.elapsed()
}
