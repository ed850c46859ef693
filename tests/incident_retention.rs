//! End to end, Incident retention: the real `cellwarden run` (live source, leading alone) against
//! the fake Kubernetes API deletes the Incidents resolved longer than `incident_ttl_secs` and
//! keeps the recent, the escalated and the open ones.

use cellwarden_models::Timestamp;
use cellwarden_remediator::crd::{Incident, IncidentSpec, IncidentStatus, LifecycleStatus, Phase};
use fakekube::{FakeKube, Options};
use kube::api::{Api, Patch, PatchParams, PostParams};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{client, free_port, install_crds};

fn spec() -> IncidentSpec {
    IncidentSpec {
        opened_at: "2026-12-01T00:00:00Z".into(),
        class: "fault".into(),
        cells: vec![],
    }
}

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn make(api: &Api<Incident>, name: &str, phase: Phase, resolved_ago_secs: Option<i64>) {
    api.create(&PostParams::default(), &Incident::new(name, spec())).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let status = IncidentStatus {
        phase,
        lifecycle: Some(LifecycleStatus {
            phase,
            resolved_at: resolved_ago_secs.map(|s| Timestamp(now - s * 1000).to_rfc3339()),
            ..LifecycleStatus::default()
        }),
        ..IncidentStatus::default()
    };
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(serde_json::json!({"status": status})))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_deletes_incidents_resolved_longer_than_the_ttl_only() {
    let fake = FakeKube::start(Options::default()).await.unwrap();
    let c = client(&fake).await;
    install_crds(&c).await;
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.clone());
    let ns = serde_json::from_value(serde_json::json!({"metadata": {"name": "cellwarden"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let incidents: Api<Incident> = Api::namespaced(c.clone(), "cellwarden");
    make(&incidents, "resolved-long-ago", Phase::Resolved, Some(3600)).await;
    make(&incidents, "resolved-just-now", Phase::Resolved, Some(5)).await;
    make(&incidents, "escalated-long-ago", Phase::Escalated, Some(3600)).await;
    make(&incidents, "still-open", Phase::Open, None).await;

    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, fake.kubeconfig()).unwrap();
    let cfg = dir.path().join("cellwarden.yaml");
    std::fs::write(
        &cfg,
        format!(
            "source: live\nnamespace: cellwarden\nadmin_listen: 127.0.0.1:{}\nidentity: r-1\nlease_duration_secs: 3\n\
             incident_ttl_secs: 60\nreceivers:\n  listen: 127.0.0.1:{}\n",
            free_port(),
            free_port()
        ),
    )
    .unwrap();
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
    // A sweep every 6 s (a tenth of the TTL) once leading.
    let t = Instant::now();
    while incidents.get_opt("resolved-long-ago").await.unwrap().is_some() {
        assert!(t.elapsed() < Duration::from_secs(40), "the expired Incident was not deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // One more sweep passes: nothing else goes.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let mut left: Vec<String> = incidents
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|i| i.metadata.name)
        .collect();
    left.sort();
    assert_eq!(left, ["escalated-long-ago", "resolved-just-now", "still-open"]);
}
