//! End to end: the real `cellwarden run` binary, with the real kube-rs client, against the fake
//! Kubernetes API (fakekube, in process), fed by the simulated wallet at 600× speed. The wallet
//! reads back what the operator writes, so the loop closes through the API.
//!
//! Checked: the CRDs gate start-up; a zone outage ends with its cell drained; the cordon waits for
//! an approval annotation and then happens; the second incident's cordon is refused by a guard;
//! Incidents carry root cause, planned and taken actions; Events are published; the audit log's
//! hash chain holds; `/readyz` answers.

use cellwarden_remediator::audit;
use cellwarden_remediator::crd::{ActionState, Cell, Incident, RemediationPolicy};
use fakekube::{FakeKube, Options};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{client, free_port, install_crds};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_fails_fast_without_the_crds() {
    let fake = FakeKube::start(Options::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, fake.kubeconfig()).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_cellwarden"))
            .args(["run", "--source", "simulator:memory-leak", "--kubeconfig"])
            .arg(&kc)
            .env("CELLWARDEN_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CRDs are not installed") && err.contains("cellwarden crd | kubectl apply -f -"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_outage_is_drained_then_cordoned_after_approval_through_the_api() {
    let fake = FakeKube::start(Options::default()).await.unwrap();
    let c = client(&fake).await;
    install_crds(&c).await;
    cellwarden::run::seed_cluster(&c, "zone-outage", "cellwarden").await.unwrap();
    let policies: Api<RemediationPolicy> = Api::namespaced(c.clone(), "cellwarden");
    let policy: RemediationPolicy = serde_json::from_value(serde_json::json!({"apiVersion": "cellwarden.io/v1alpha1", "kind": "RemediationPolicy", "metadata": {"name": "default", "namespace": "cellwarden"}, "spec": {"mode": "act"}})).unwrap();
    policies.create(&PostParams::default(), &policy).await.unwrap();

    // The operator may do only what its RBAC (remediator::rbac, acting) grants.
    fake.enforce_rbac(support::OPERATOR_TOKEN, support::operator_grants(true));
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, fake.kubeconfig_with_token(support::OPERATOR_TOKEN)).unwrap();
    let port = free_port();
    let cfg = dir.path().join("cellwarden.yaml");
    std::fs::write(
        &cfg,
        format!("mode: act\nnamespace: cellwarden\nadmin_listen: 127.0.0.1:{port}\nsource: simulator:zone-outage\nclock_speed_x: 600\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cellwarden"))
        .args(["run", "--config"])
        .arg(&cfg)
        .arg("--kubeconfig")
        .arg(&kc)
        .env("CELLWARDEN_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let audit_lines = std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<String>>());
    let stderr = child.stderr.take().unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("Source finished") {
                let _ = done_tx.send(());
            }
        }
    });

    // Wait for the cordon to ask for approval, then approve it as an on-call engineer would.
    let incidents: Api<Incident> = Api::namespaced(c.clone(), "cellwarden");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut approved = None;
    let mut ready_seen = false;
    while Instant::now() < deadline && approved.is_none() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if !ready_seen {
            ready_seen = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && http_status(port, "/readyz") == 200;
        }
        for i in incidents.list(&ListParams::default()).await.unwrap().items {
            let waiting = i.status.as_ref().is_some_and(|s| {
                s.planned
                    .iter()
                    .any(|p| p.kind == "cordon" && p.state == ActionState::AwaitingApproval)
            });
            if waiting {
                let name = i.metadata.name.clone().unwrap();
                let patch = serde_json::json!({"metadata": {"annotations": {"cellwarden.io/approved-by": "alice@oncall", "cellwarden.io/approved-at": now_rfc3339()}}});
                incidents
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .unwrap();
                approved = Some(name);
                break;
            }
        }
    }
    let approved = approved.expect("a cordon waited for approval");
    assert!(ready_seen, "/readyz answered 200 while running");
    let finished = tokio::task::spawn_blocking(move || done_rx.recv_timeout(Duration::from_secs(60)).is_ok())
        .await
        .unwrap();
    assert!(finished, "the scenario ran to its end");
    let _ = child.kill();
    let _ = child.wait();
    let audit_lines = audit_lines.join().unwrap();

    for i in incidents.list(&ListParams::default()).await.unwrap().items {
        eprintln!(
            "Incident {}:\n{}",
            i.metadata.name.clone().unwrap_or_default(),
            serde_yaml_ng::to_string(&i.status).unwrap()
        );
    }
    // The zone's cell is drained and cordoned; the first incident blamed the zone.
    let cells: Api<Cell> = Api::all(c.clone());
    let cell2 = cells.get("cell-2").await.unwrap();
    assert_eq!(cell2.spec.weight, 0);
    assert_eq!(cell2.status.unwrap().state, cellwarden_remediator::crd::CellState::Cordoned);
    // Its nodes are unschedulable; the other cells' nodes are not.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(c.clone());
    let all_nodes = nodes.list(&ListParams::default()).await.unwrap().items;
    assert!(!all_nodes.is_empty());
    for n in &all_nodes {
        let in_cell2 = n
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("cellwarden.io/cell"))
            .map(String::as_str)
            == Some("cell-2");
        let unschedulable = n.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
        assert_eq!(unschedulable, in_cell2, "{:?}", n.metadata.name);
    }
    let first = incidents.get(&approved).await.unwrap().status.unwrap();
    assert_eq!(first.root_cause[0].entity, "zone-b");
    assert_eq!(first.root_cause[0].class, "infrastructure");
    assert!(
        first.taken.iter().any(|t| t.kind == "reroute" && t.state == ActionState::Done),
        "{:?}",
        first.taken
    );
    // One fault, one incident: the zone's later alarms join the approved incident, so the cordon
    // of cell-2 is decided once over every Incident (before grouping, a later incident planned
    // it again and the already-decided guard refused it).
    let all = incidents.list(&ListParams::default()).await.unwrap().items;
    let cordons: Vec<String> = all
        .iter()
        .flat_map(|i| {
            i.status.iter().flat_map(|s| {
                s.planned.iter().filter(|p| p.kind == "cordon" && p.target == "cell-2").map(|p| {
                    format!(
                        "{} {} {}: {}",
                        i.metadata.name.clone().unwrap_or_default(),
                        p.kind,
                        p.state.as_str(),
                        p.reason
                    )
                })
            })
        })
        .collect();
    assert_eq!(cordons.iter().filter(|c| !c.contains(" refused:")).count(), 1, "{cordons:?}");
    // Events for the decisions.
    let reasons = support::event_reasons(&c, "cellwarden").await;
    for r in ["IncidentOpened", "ActionTaken", "ApprovalRequested"] {
        assert!(reasons.iter().any(|x| x == r), "no {r} Event in {reasons:?}");
    }
    assert_eq!(fake.refused(), Vec::<String>::new(), "calls the RBAC does not grant");
    // The audit log is a hash chain with the approval in it.
    let lines: Vec<&str> = audit_lines.iter().map(String::as_str).collect();
    assert!(audit::verify(&lines).unwrap() >= 4);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"approved_by\":\"alice@oncall\"") && l.contains("cordon")),
        "{lines:?}"
    );
}

fn now_rfc3339() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    cellwarden_models::Timestamp(ms).to_rfc3339()
}

fn http_status(port: u16, path: &str) -> u16 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}
