//! End to end, the operator's safety under failure: the real `cellwarden run` binary (two
//! instances), the real kube-rs client, the fake Kubernetes API (fakekube, in process — no real
//! API server can run here), the simulated memory-leak wallet at 120× speed.
//!
//! Instance A leads (it takes the Lease first) while instance B follows; the API refuses the
//! first Deployment patches with 409 and 500 and the first Incident write with 500. A opens the
//! incident and acts; it is killed (SIGKILL, no Lease release) right after its first action,
//! mid-incident. B takes the Lease once it expires, finds the Incident, repeats nothing, and
//! finishes what is left (the other actions' verifications). Checked: every action is taken exactly once across both
//! instances, the injected errors were retried and nothing was lost, the Lease moved to B,
//! the Incident status carries the taken actions with their verification results, Events and
//! audit lines were written, and the webhook got the incident.

use cellwarden_remediator::audit;
use cellwarden_remediator::crd::{ActionState, Incident, Phase, RemediationPolicy, VerificationResult};
use fakekube::store::Fault;
use fakekube::{FakeKube, Options};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams, PostParams};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;
use support::{client, free_port, install_crds};

/// One running `cellwarden run`, its audit lines (stdout) and log lines (stderr) collected.
struct Instance {
    child: Child,
    audit: Arc<Mutex<Vec<String>>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Instance {
    fn start(dir: &Path, kubeconfig: &Path, identity: &str, hook_port: u16) -> Instance {
        let cfg = dir.join(format!("{identity}.yaml"));
        std::fs::write(
            &cfg,
            format!(
                "mode: act\nnamespace: cellwarden\nadmin_listen: 127.0.0.1:{}\nsource: simulator:memory-leak\nclock_speed_x: 120\n\
                 identity: {identity}\nlease_duration_secs: 2\npoll_interval_ms: 200\n\
                 notify:\n  - url: http://127.0.0.1:{hook_port}/hook\n    format: json\n",
                free_port()
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_cellwarden"))
            .args(["run", "--config"])
            .arg(&cfg)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env("CELLWARDEN_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let audit = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (a, l) = (audit.clone(), log.clone());
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                a.lock().unwrap().push(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        Instance { child, audit, log }
    }

    fn audit(&self) -> Vec<String> {
        self.audit.lock().unwrap().clone()
    }

    fn logged(&self, text: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(text))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A webhook receiver: every JSON body posted to it.
async fn webhook() -> (u16, Arc<Mutex<Vec<serde_json::Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let g = g.clone();
            async move {
                g.lock().unwrap().push(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, got)
}

async fn wait_for<F, Fut>(what: &str, secs: u64, mut f: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("timed out after {secs} s waiting for {what}"))
}

fn taken_lines(lines: &[String]) -> Vec<(String, String, String)> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "action_taken")
        .map(|v| {
            (
                v["incident"].as_str().unwrap_or("").to_string(),
                v["kind"].as_str().unwrap_or("").to_string(),
                v["target"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_and_nothing_is_repeated_or_lost() {
    let fake = FakeKube::start(Options::default()).await.unwrap();
    let c = client(&fake).await;
    install_crds(&c).await;
    cellwarden::run::seed_cluster(&c, "memory-leak", "cellwarden").await.unwrap();
    let policies: Api<RemediationPolicy> = Api::namespaced(c.clone(), "cellwarden");
    let policy: RemediationPolicy = serde_json::from_value(serde_json::json!({"apiVersion": "cellwarden.io/v1alpha1", "kind": "RemediationPolicy", "metadata": {"name": "default", "namespace": "cellwarden"}, "spec": {"mode": "act"}})).unwrap();
    policies.create(&PostParams::default(), &policy).await.unwrap();
    // The API refuses the first Deployment patches and the first Incident write.
    for (verb, resource, code) in [
        ("patch", "deployments", 409),
        ("patch", "deployments", 500),
        ("patch", "incidents", 500),
    ] {
        fake.inject(Fault {
            verb: verb.into(),
            resource: resource.into(),
            code,
            count: 1,
            retry_after_secs: 0,
            hang_secs: 0,
        });
    }
    let (hook_port, hooks) = webhook().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, fake.kubeconfig()).unwrap();

    let leases: Api<Lease> = Api::namespaced(c.clone(), "cellwarden");
    let holder = |l: Option<Lease>| l.and_then(|l| l.spec).and_then(|s| s.holder_identity).unwrap_or_default();
    let a = Instance::start(dir.path(), &kc, "instance-a", hook_port);
    wait_for("instance-a to take the Lease", 30, || async {
        holder(leases.get_opt("cellwarden-leader").await.unwrap()) == "instance-a"
    })
    .await
    .unwrap();
    let b = Instance::start(dir.path(), &kc, "instance-b", hook_port);

    // A acts on the leak; kill it while an action's verification is still pending.
    let incidents: Api<Incident> = Api::namespaced(c.clone(), "cellwarden");
    let found: Arc<Mutex<String>> = Arc::default();
    wait_for("instance-a to take an action", 90, || {
        let incidents = incidents.clone();
        let found = found.clone();
        async move {
            for i in incidents.list(&ListParams::default()).await.unwrap().items {
                let s = i.status.clone().unwrap_or_default();
                if s.taken.iter().any(|t| t.state == ActionState::Done) {
                    *found.lock().unwrap() = i.metadata.name.clone().unwrap();
                    return true;
                }
            }
            false
        }
    })
    .await
    .unwrap();
    let incident = found.lock().unwrap().clone();
    let mut a = a;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    assert!(
        b.audit().iter().all(|l| !l.contains("\"action_taken\"")),
        "the follower acted while instance-a held the Lease"
    );

    // B takes over once the Lease expires, and finishes the verification.
    wait_for("instance-b to take the Lease", 30, || async {
        holder(leases.get_opt("cellwarden-leader").await.unwrap()) == "instance-b"
    })
    .await
    .unwrap();
    wait_for("every verification of the incident decided", 120, || {
        let incidents = incidents.clone();
        let name = incident.clone();
        async move {
            let s = incidents.get(&name).await.unwrap().status.unwrap_or_default();
            s.verifications.iter().all(|v| v.result != VerificationResult::Pending)
                && s.planned.iter().all(|p| p.state != ActionState::Pending)
        }
    })
    .await
    .unwrap_or_else(|e| {
        let log = b.log.lock().unwrap();
        let tail: Vec<&String> = log.iter().rev().take(40).collect();
        panic!(
            "{e}\ninstance-b log (last lines, newest first): {tail:#?}\nA audit: {:#?}\nB audit: {:#?}",
            a.audit(),
            b.audit()
        )
    });
    let status_now = incidents.get(&incident).await.unwrap().status.unwrap_or_default();
    assert!(!status_now.verifications.is_empty(), "no verification recorded: {status_now:#?}");
    // Let B's simulated wallet run past the point where A acted, then look at everything.
    wait_for("instance-b's scenario to end", 120, || async { b.logged("Source finished") })
        .await
        .unwrap();

    let status = incidents.get(&incident).await.unwrap().status.unwrap();
    eprintln!(
        "Incident {incident} status after the memory-leak run:\n{}",
        serde_yaml_ng::to_string(&status).unwrap()
    );
    assert_eq!(status.root_cause[0].entity, "cell-2/ledger", "{:?}", status.root_cause);
    assert!(status.taken.iter().any(|t| t.kind == "restart_pods" && t.target == "cell-2/ledger"));
    for v in &status.verifications {
        assert!(v.result != VerificationResult::Pending, "{v:?}");
        assert!(!v.detail.is_empty(), "{v:?}");
    }
    assert!(
        matches!(status.phase, Phase::Mitigated | Phase::Resolved | Phase::Escalated),
        "{:?}",
        status.phase
    );

    // No action ran twice, across both instances.
    let (la, lb) = (a.audit(), b.audit());
    let mut taken = taken_lines(&la);
    taken.extend(taken_lines(&lb));
    let mut unique = taken.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(taken.len(), unique.len(), "an action was repeated: {taken:?}");
    assert!(taken.iter().any(|(i, k, _)| i == &incident && k == "restart_pods"), "{taken:?}");
    assert!(
        taken_lines(&lb).iter().all(|(i, _, _)| i != &incident),
        "instance-b repeated an action of {incident}"
    );
    // The injected 409 and 500 were retried: the restart landed on the Deployment.
    let deps: Api<Deployment> = Api::namespaced(c.clone(), "cell-2");
    let ledger = deps.get("ledger").await.unwrap();
    let ann = ledger.spec.template.metadata.unwrap().annotations.unwrap_or_default();
    assert!(ann.contains_key("cellwarden.io/restartedAt"), "{ann:?}");
    assert!(a.logged("Retrying a refused API call"), "no retry was logged");
    // Both audit logs are intact hash chains; B's carries the verification.
    for lines in [&la, &lb] {
        let l: Vec<&str> = lines.iter().map(String::as_str).collect();
        audit::verify(&l).unwrap();
    }
    assert!(
        la.iter()
            .chain(lb.iter())
            .any(|l| l.contains("\"verification_passed\"") || l.contains("\"verification_failed\"")),
        "no verification in the audit logs"
    );
    // Events and the webhook.
    let reasons = support::event_reasons(&c, "cellwarden").await;
    for r in ["IncidentOpened", "ActionTaken"] {
        assert!(reasons.iter().any(|x| x == r), "no {r} Event in {reasons:?}");
    }
    assert!(reasons.iter().any(|x| x.starts_with("Verification")), "{reasons:?}");
    let hooks = hooks.lock().unwrap().clone();
    assert!(
        hooks
            .iter()
            .any(|h| h["kind"] == "incident_opened" && h["incident"] == incident.as_str()),
        "{hooks:?}"
    );
}
