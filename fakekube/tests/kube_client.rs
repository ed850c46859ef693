//! The fake driven by the real kube-rs client: CRUD and Status errors, every patch kind,
//! server-side apply conflicts, subresources, selectors, CRDs, finalizers, watches across a
//! restart, and each injected fault.

use fakekube::store::Fault;
use fakekube::{FakeKube, Options};
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use serde_json::json;
use std::time::{Duration, Instant};

async fn start() -> (FakeKube, Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = FakeKube::start(Options::default()).await.expect("fake starts");
    let client = client_for(&fake);
    (fake, client)
}

fn client_for(fake: &FakeKube) -> Client {
    let mut cfg = Config::new(fake.url().parse().unwrap());
    cfg.default_namespace = "default".into();
    cfg.read_timeout = Some(Duration::from_secs(10));
    Client::try_from(cfg).expect("client")
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": "wallet:1", "env": [{"name": "A", "value": "1"}]}]}}}
    }))
    .unwrap()
}

fn api_code(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone()),
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test]
async fn crud_with_proper_status_errors_and_optimistic_concurrency() {
    let (_fake, client) = start().await;
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    let created = api.create(&PostParams::default(), &deployment("ledger", 3)).await.unwrap();
    let md = &created.metadata;
    assert_eq!(md.namespace.as_deref(), Some("default"));
    assert!(md.uid.is_some() && md.resource_version.is_some() && md.creation_timestamp.is_some());
    assert_eq!(md.generation, Some(1));
    assert_eq!(
        api_code(api.create(&PostParams::default(), &deployment("ledger", 3)).await.unwrap_err()),
        (409, "AlreadyExists".into())
    );
    assert!(api.get_opt("nope").await.unwrap().is_none());
    assert_eq!(api_code(api.get("nope").await.unwrap_err()), (404, "NotFound".into()));
    // A replace with the current resourceVersion succeeds and bumps generation; a stale one is a 409.
    let mut d = api.get("ledger").await.unwrap();
    d.spec.replicas = Some(4);
    let replaced = api.replace("ledger", &PostParams::default(), &d).await.unwrap();
    assert_eq!(replaced.metadata.generation, Some(2));
    assert_ne!(replaced.metadata.resource_version, d.metadata.resource_version);
    assert_eq!(
        api_code(api.replace("ledger", &PostParams::default(), &d).await.unwrap_err()),
        (409, "Conflict".into())
    );
    // 422 for an invalid name; 404 for a namespace that does not exist.
    assert_eq!(
        api_code(api.create(&PostParams::default(), &deployment("Bad_Name", 1)).await.unwrap_err()).0,
        422
    );
    let elsewhere: Api<Deployment> = Api::namespaced(client.clone(), "no-such-ns");
    assert_eq!(
        api_code(elsewhere.create(&PostParams::default(), &deployment("x", 1)).await.unwrap_err()).0,
        404
    );
    api.delete("ledger", &DeleteParams::default()).await.unwrap();
    assert!(api.get_opt("ledger").await.unwrap().is_none());
}

#[tokio::test]
async fn every_patch_kind_changes_what_it_should() {
    let (_fake, client) = start().await;
    let api: Api<Deployment> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &deployment("payments", 2)).await.unwrap();
    let pp = PatchParams::default();
    // Merge patch.
    api.patch("payments", &pp, &Patch::Merge(json!({"metadata": {"labels": {"tier": "core"}}})))
        .await
        .unwrap();
    // Strategic merge: the container is found by name; env gains an entry.
    api.patch("payments", &pp, &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "wallet:2", "env": [{"name": "B", "value": "2"}]}]}}}}))).await.unwrap();
    // JSON patch.
    let jp: json_patch::Patch = serde_json::from_value(json!([{"op": "replace", "path": "/spec/replicas", "value": 5}])).unwrap();
    api.patch("payments", &pp, &Patch::<()>::Json(jp)).await.unwrap();
    let d = api.get("payments").await.unwrap();
    assert_eq!(d.metadata.labels.as_ref().unwrap()["tier"], "core");
    let c = &d.spec.template.spec.as_ref().unwrap().containers;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].image.as_deref(), Some("wallet:2"));
    assert_eq!(c[0].env.as_ref().unwrap().len(), 2);
    assert_eq!(d.spec.replicas, Some(5));
    // Server-side apply creates, records its manager, and changes what it owns.
    let ssa = PatchParams::apply("cellwarden");
    let applied = api.patch("wallet", &ssa, &Patch::Apply(deployment("wallet", 2))).await.unwrap();
    let managers: Vec<String> = applied
        .metadata
        .managed_fields
        .unwrap()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, vec!["cellwarden".to_string()]);
    let again = api
        .patch(
            "wallet",
            &ssa,
            &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "wallet"}, "spec": {"replicas": 6}})),
        )
        .await
        .unwrap();
    assert_eq!(again.spec.replicas, Some(6));
}

#[tokio::test]
async fn server_side_apply_conflicts_unless_forced() {
    let (_fake, client) = start().await;
    let api: Api<Deployment> = Api::default_namespaced(client);
    api.patch(
        "ledger",
        &PatchParams::apply("platform-team"),
        &Patch::Apply(deployment("ledger", 3)),
    )
    .await
    .unwrap();
    let scale_to = |n: i32| json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ledger"}, "spec": {"replicas": n}});
    let err = api
        .patch("ledger", &PatchParams::apply("cellwarden"), &Patch::Apply(scale_to(5)))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("expected a Status")
    };
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(
        status.message.contains(".spec.replicas") && status.message.contains("platform-team"),
        "{}",
        status.message
    );
    // Applying the same value is no conflict (shared ownership).
    api.patch("ledger", &PatchParams::apply("cellwarden"), &Patch::Apply(scale_to(3)))
        .await
        .unwrap();
    let forced = api
        .patch("ledger", &PatchParams::apply("cellwarden").force(), &Patch::Apply(scale_to(5)))
        .await
        .unwrap();
    assert_eq!(forced.spec.replicas, Some(5));
    let fields = forced.metadata.managed_fields.unwrap();
    let owner_of_replicas: Vec<&str> = fields
        .iter()
        .filter(|m| serde_json::to_string(&m.fields_v1).unwrap().contains("f:replicas"))
        .filter_map(|m| m.manager.as_deref())
        .collect();
    assert_eq!(owner_of_replicas, vec!["cellwarden"]);
}

#[tokio::test]
async fn scale_and_status_subresources() {
    let (_fake, client) = start().await;
    let api: Api<Deployment> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &deployment("ledger", 3)).await.unwrap();
    let scale = api.get_scale("ledger").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    api.patch_scale("ledger", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 7}})))
        .await
        .unwrap();
    assert_eq!(api.get("ledger").await.unwrap().spec.replicas, Some(7));
    // Status goes through its subresource only.
    api.patch_status(
        "ledger",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"readyReplicas": 7}})),
    )
    .await
    .unwrap();
    api.patch(
        "ledger",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"readyReplicas": 1}})),
    )
    .await
    .unwrap();
    assert_eq!(api.get("ledger").await.unwrap().status.unwrap().ready_replicas, Some(7));
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let (_fake, client) = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    for (name, cell) in [("a", "cell-1"), ("b", "cell-2"), ("c", "cell-2")] {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"cell": cell}}, "data": {"k": "v"}})).unwrap();
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    let names = |l: kube::core::ObjectList<ConfigMap>| l.items.iter().map(|c| c.metadata.name.clone().unwrap()).collect::<Vec<_>>();
    assert_eq!(
        names(api.list(&ListParams::default().labels("cell=cell-2")).await.unwrap()),
        vec!["b", "c"]
    );
    assert_eq!(
        names(api.list(&ListParams::default().labels("cell in (cell-1),!missing")).await.unwrap()),
        vec!["a"]
    );
    assert_eq!(
        names(api.list(&ListParams::default().fields("metadata.name=c")).await.unwrap()),
        vec!["c"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name!=c").labels("cell=cell-2"))
                .await
                .unwrap()
        ),
        vec!["b"]
    );
}

#[tokio::test]
async fn a_crd_registers_its_kind_with_a_status_subresource() {
    let (_fake, client) = start().await;
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    let crd: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "cells.cellwarden.io"},
        "spec": {"group": "cellwarden.io", "scope": "Cluster", "names": {"plural": "cells", "singular": "cell", "kind": "Cell"},
                 "versions": [{"name": "v1alpha1", "served": true, "storage": true, "subresources": {"status": {}}, "schema": {"openAPIV3Schema": {"type": "object"}}}]}
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let discovery = kube::Discovery::new(client.clone()).run().await.unwrap();
    assert!(discovery.groups().any(|g| g.name() == "cellwarden.io"));
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("cellwarden.io", "v1alpha1", "Cell"), "cells");
    let cells: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let mut cell = DynamicObject::new("cell-2", &ar);
    cell.data = json!({"spec": {"zone": "zone-b", "weight": 25}});
    cells.create(&PostParams::default(), &cell).await.unwrap();
    cells
        .patch_status(
            "cell-2",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"state": "Cordoned"}})),
        )
        .await
        .unwrap();
    let got = cells.get("cell-2").await.unwrap();
    assert_eq!(got.data["status"]["state"], "Cordoned");
    assert_eq!(got.data["spec"]["zone"], "zone-b");
    // Strategic merge is refused for custom resources, as the real API server does.
    let err = cells
        .patch("cell-2", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"weight": 0}})))
        .await
        .unwrap_err();
    assert_eq!(api_code(err).0, 415);
}

#[tokio::test]
async fn finalizers_hold_a_deletion_until_they_are_removed() {
    let (_fake, client) = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "held", "finalizers": ["cellwarden.io/audit"]}})).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    let still = api.get("held").await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_some());
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(api.get_opt("held").await.unwrap().is_none());
}

#[tokio::test]
async fn a_watch_from_a_resource_version_sees_changes_in_order_across_a_restart() {
    let (fake, client) = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let cm = |name: &str, v: &str| -> ConfigMap { serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": v}})).unwrap() };
    let first = api.create(&PostParams::default(), &cm("one", "1")).await.unwrap();
    let rv = first.metadata.resource_version.clone().unwrap();
    // The fake restarts on the same port with its state; the client reconnects.
    let fake = fake.restart().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client_for(&fake));
    api.replace("one", &PostParams::default(), &{
        let mut c = api.get("one").await.unwrap();
        c.data = Some([("v".to_string(), "2".to_string())].into());
        c
    })
    .await
    .unwrap();
    api.create(&PostParams::default(), &cm("two", "1")).await.unwrap();
    api.delete("one", &DeleteParams::default()).await.unwrap();
    let stream = api.watch(&WatchParams::default().timeout(3), &rv).await.unwrap();
    let events: Vec<(String, String)> = stream
        .try_filter_map(|e| async move {
            Ok(match e {
                WatchEvent::Added(c) => Some(("ADDED".to_string(), c.metadata.name.unwrap())),
                WatchEvent::Modified(c) => Some(("MODIFIED".to_string(), c.metadata.name.unwrap())),
                WatchEvent::Deleted(c) => Some(("DELETED".to_string(), c.metadata.name.unwrap())),
                _ => None,
            })
        })
        .take(3)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        events,
        vec![
            ("MODIFIED".into(), "one".into()),
            ("ADDED".into(), "two".into()),
            ("DELETED".into(), "one".into())
        ]
    );
}

#[tokio::test]
async fn the_kube_runtime_watcher_follows_the_fake() {
    use kube::runtime::watcher::{self, Event};
    let (_fake, client) = start().await;
    let api: Api<Pod> = Api::default_namespaced(client);
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "p1", "labels": {"app": "ledger"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .unwrap();
    api.create(&PostParams::default(), &pod).await.unwrap();
    let mut stream = watcher::watcher(api.clone(), watcher::Config::default().labels("app=ledger")).boxed();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut deleted = false;
    while Instant::now() < deadline && !deleted {
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await else {
            break;
        };
        match ev.unwrap() {
            Event::InitDone => {
                api.patch(
                    "p1",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"annotations": {"x": "y"}}})),
                )
                .await
                .unwrap();
                api.delete("p1", &DeleteParams::default()).await.unwrap();
            }
            Event::InitApply(p) | Event::Apply(p) => seen.push(format!("apply {}", p.metadata.name.unwrap())),
            Event::Delete(p) => {
                seen.push(format!("delete {}", p.metadata.name.unwrap()));
                deleted = true;
            }
            Event::Init => {}
        }
    }
    assert_eq!(seen, vec!["apply p1", "apply p1", "delete p1"]);
}

#[tokio::test]
async fn bookmarks_come_and_the_watch_ends_at_its_timeout() {
    let (_fake, client) = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let list = api.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let started = Instant::now();
    let events: Vec<_> = api.watch(&WatchParams::default().timeout(3), &rv).await.unwrap().collect().await;
    assert!(started.elapsed() >= Duration::from_secs(3) && started.elapsed() < Duration::from_secs(8));
    assert!(events.iter().any(|e| matches!(e, Ok(WatchEvent::Bookmark(_)))), "{events:?}");
}

#[tokio::test]
async fn a_body_fault_hits_only_the_requests_whose_body_contains_its_string() {
    let (fake, client) = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    fake.inject_when_body_contains(
        Fault {
            verb: "create".into(),
            resource: "configmaps".into(),
            code: 500,
            count: 5,
            retry_after_secs: 1,
            hang_secs: 1,
        },
        "\"owner\":\"a\"",
    );
    let cm = |name: &str, owner: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name}, "data": {"owner": owner}})).unwrap()
    };
    api.create(&PostParams::default(), &cm("of-b", "b")).await.unwrap();
    assert_eq!(
        api_code(api.create(&PostParams::default(), &cm("of-a", "a")).await.unwrap_err()).0,
        500
    );
    assert!(api.get_opt("of-a").await.unwrap().is_none(), "the refused create stored nothing");
    assert!(api.get_opt("of-b").await.unwrap().is_some());
}

#[tokio::test]
async fn injected_faults_answer_as_configured_then_stop() {
    let (fake, client) = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "flags"}})).unwrap();
    let fault = |verb: &str, code: u16| Fault {
        verb: verb.into(),
        resource: "configmaps".into(),
        code,
        count: 1,
        retry_after_secs: 2,
        hang_secs: 1,
    };
    fake.inject(fault("create", 409));
    assert_eq!(api_code(api.create(&PostParams::default(), &cm).await.unwrap_err()).0, 409);
    api.create(&PostParams::default(), &cm).await.unwrap();
    // kube-rs retries a 429 after its Retry-After: the call succeeds, later.
    fake.inject(fault("get", 429));
    let started = Instant::now();
    api.get("flags").await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2), "retried after {:?}", started.elapsed());
    fake.inject(fault("patch", 500));
    assert_eq!(
        api_code(
            api.patch("flags", &PatchParams::default(), &Patch::Merge(json!({"data": {"a": "b"}})))
                .await
                .unwrap_err()
        )
        .0,
        500
    );
    // A hang: the request waits hang_secs and gets a 504, which kube-rs retries.
    fake.inject(fault("*", 0));
    let started = Instant::now();
    api.get("flags").await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    fake.inject(fault("get", 0));
    let started = Instant::now();
    let resp = reqwest_free_get(&format!("{}/api/v1/namespaces/default/configmaps/flags", fake.url())).await;
    assert!(
        resp.starts_with("HTTP/1.1 504") && started.elapsed() >= Duration::from_secs(1),
        "{resp}"
    );
    // Faults are used up: everything works again.
    api.get("flags").await.unwrap();
    // The 429 carries Retry-After over plain HTTP too.
    fake.inject(fault("list", 429));
    let resp = reqwest_free_get(&format!("{}/api/v1/namespaces/default/configmaps", fake.url())).await;
    assert!(
        resp.starts_with("HTTP/1.1 429") && resp.to_ascii_lowercase().contains("retry-after: 2"),
        "{resp}"
    );
}

/// A raw HTTP/1.1 GET, to see status line and headers as sent.
async fn reqwest_free_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    s.write_all(format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}
