//! The rollback actuator over HTTP against the fake Kubernetes API (fakekube, in process) with
//! the real kube-rs client: a Deployment at revision 2 whose ReplicaSets (owned by it, found by
//! its selector, numbered by `deployment.kubernetes.io/revision`) hold revisions 1 and 2 goes
//! back to revision 1's pod template — an env var and an annotation the newer one added are
//! gone, not merged — and a Deployment with nothing earlier is refused with a clear error.

use cellwarden_models::{Action, ActionKind};
use cellwarden_remediator::actuate::{ActuateError, Actuator, FIELD_MANAGER, REVISION_ANNOTATION};
use fakekube::{FakeKube, Options};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde_json::{json, Value};

mod support;
use support::client;

fn template(image: &str, extra_env: bool, hash: Option<&str>) -> Value {
    let mut labels = json!({"app": "ledger"});
    if let Some(h) = hash {
        labels["pod-template-hash"] = json!(h);
    }
    let env = if extra_env {
        json!([{"name": "CACHE", "value": "unbounded"}])
    } else {
        json!([])
    };
    let mut t = json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "ledger", "image": image}]}});
    if extra_env {
        t["spec"]["containers"][0]["env"] = env;
        t["metadata"]["annotations"] = json!({"cellwarden.io/restartedAt": "2026-03-02T09:40:00Z"});
    }
    t
}

async fn seed(c: &kube::Client, name: &str, revisions: &[(u64, &str, bool)]) -> Deployment {
    let deps: Api<Deployment> = Api::namespaced(c.clone(), "cell-2");
    let (current_rev, image, extra) = *revisions.last().unwrap();
    let dep: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}, "annotations": {REVISION_ANNOTATION: current_rev.to_string()}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "ledger"}}, "template": template(image, extra, None)}
    }))
    .unwrap();
    let dep = deps.create(&PostParams::default(), &dep).await.unwrap();
    let sets: Api<ReplicaSet> = Api::namespaced(c.clone(), "cell-2");
    for (rev, image, extra) in revisions {
        let hash = format!("h{rev}{name}");
        let rs: ReplicaSet = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("{name}-{hash}"), "labels": {"app": "ledger", "pod-template-hash": hash},
                "annotations": {REVISION_ANNOTATION: rev.to_string()},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": dep.metadata.uid, "controller": true}]},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "ledger", "pod-template-hash": hash}}, "template": template(image, *extra, Some(&hash))}
        }))
        .unwrap();
        sets.create(&PostParams::default(), &rs).await.unwrap();
    }
    dep
}

fn rollback(target: &str, revision: Option<&str>) -> Action {
    Action {
        kind: ActionKind::Rollback,
        target: target.into(),
        params: revision.map(|r| vec![("revision".to_string(), r.to_string())]).unwrap_or_default(),
        reason: "test".into(),
        needs_approval: true,
        expected_effect: String::new(),
        verify_within_secs: 1200,
    }
}

#[tokio::test]
async fn a_rollback_puts_the_previous_revisions_pod_template_back_exactly() {
    let fake = FakeKube::start(Options::default()).await.unwrap();
    let c = client(&fake).await;
    let ns: Namespace = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cell-2"}})).unwrap();
    Api::<Namespace>::all(c.clone()).create(&PostParams::default(), &ns).await.unwrap();
    seed(&c, "ledger", &[(1, "wallet/ledger:1", false), (2, "wallet/ledger:2", true)]).await;
    // Another Deployment's ReplicaSet of the same labels and a later revision is not ours.
    seed(&c, "ledger-canary", &[(7, "wallet/ledger:canary", false)]).await;
    let actuator = Actuator::new(c.clone(), vec!["cell-2".into()]);

    let applied = actuator
        .apply(&rollback("cell-2/ledger", None), "2026-03-02T10:05:00Z")
        .await
        .unwrap();
    assert!(applied.changed && applied.undo.is_none(), "{applied:?}");
    assert!(
        applied.what.contains("revision 1") && applied.what.contains("was revision 2"),
        "{}",
        applied.what
    );
    let dep = Api::<Deployment>::namespaced(c.clone(), "cell-2").get("ledger").await.unwrap();
    let t = serde_json::to_value(&dep.spec.template).unwrap();
    assert_eq!(t["spec"]["containers"][0]["image"], "wallet/ledger:1");
    assert!(
        t["spec"]["containers"][0].get("env").is_none(),
        "the env var revision 2 added is gone: {t}"
    );
    assert!(
        t["metadata"]
            .get("annotations")
            .is_none_or(|a| a.get("cellwarden.io/restartedAt").is_none()),
        "{t}"
    );
    assert!(t["metadata"]["labels"].get("pod-template-hash").is_none(), "{t}");
    assert_eq!(dep.spec.replicas, Some(3), "nothing but the template changes");
    let managers: Vec<String> = dep
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.iter().any(|m| m == FIELD_MANAGER), "{managers:?}");

    // Rolled back already: applied again, nothing changes.
    let again = actuator
        .apply(&rollback("cell-2/ledger", Some("1")), "2026-03-02T10:06:00Z")
        .await
        .unwrap();
    assert!(!again.changed, "{again:?}");

    // Nothing earlier than the only revision: a clear refusal, nothing written.
    match actuator
        .apply(&rollback("cell-2/ledger-canary", None), "2026-03-02T10:07:00Z")
        .await
    {
        Err(e @ ActuateError::NotFound(_)) => {
            assert!(e.to_string().contains("before 7"), "{e}");
            assert_eq!(e.metric_label(), "not_found");
        }
        other => panic!("{other:?}"),
    }
    match actuator.apply(&rollback("cell-2/ledger", Some("5")), "2026-03-02T10:07:00Z").await {
        Err(ActuateError::NotFound(why)) => assert!(why.contains("revision 5"), "{why}"),
        other => panic!("{other:?}"),
    }
    match actuator
        .apply(&rollback("cell-2/ledger", Some("two")), "2026-03-02T10:07:00Z")
        .await
    {
        Err(ActuateError::BadTarget(_, why)) => assert!(why.contains("not a number"), "{why}"),
        other => panic!("{other:?}"),
    }
}
