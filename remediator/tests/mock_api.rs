//! The actuators and the Incident reconciler against a mocked Kubernetes API, in the shape of
//! kube-rs/controller-rs: a [`kube::Client`] over `tower_test::mock::pair`, an
//! [`ApiServerVerifier`] that answers each request the code under test must make — asserting its
//! method, path, query, content type and body — and a [`Scenario`] per API conversation, run in a
//! spawned task. Each test awaits the code under test, then the verifier, both under a timeout:
//! a request that never comes stalls the verifier, and an extra one finds the mock closed (the
//! verifier dropped its handle) and fails the call.
//!
//! Layout: fixtures (API objects as JSON) → the verifier (generic request checks, then one method
//! per expected request) → the scenarios → the tests, one per actuator, revert, retry case and
//! reconcile case.

use cellwarden_models::{Action, ActionKind, Mode, Sample, Timestamp};
use cellwarden_remediator::actuate::{ActuateError, Actuator, Applied, Undo, FIELD_MANAGER, RESTARTED_AT};
use cellwarden_remediator::audit::{self, AuditLog};
use cellwarden_remediator::controller::{self, Context, OperatorMetrics, Telemetry};
use cellwarden_remediator::crd::{
    ActionRecord, ActionState, Incident, IncidentSpec, IncidentStatus, Phase, PlannedAction, TimelineItem, VerificationResult, Watch,
};
use cellwarden_remediator::notify::Notifier;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::client::Body;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Recorder, Reporter};
use kube::Client;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tower_test::mock::{self, Handle, SendResponse};

/// The time the actions are carried out at (telemetry time).
const NOW: &str = "2026-03-02T09:45:00Z";
/// cellwarden's own namespace (Incidents, Events).
const OWN_NS: &str = "cellwarden";
/// How long a conversation may take; the slowest (four refusals) backs off 700 ms in all.
const TIMEOUT: Duration = Duration::from_secs(10);
const APPLY: &str = "application/apply-patch+yaml";
const MERGE: &str = "application/merge-patch+json";
const SSA_QUERY: &[(&str, &str)] = &[("fieldManager", FIELD_MANAGER), ("force", "true")];

// ---------------------------------------------------------------------------------------------
// Fixtures: objects as the API server would return them.

fn managed_by_cellwarden(api_version: &str, fields: Value) -> Value {
    json!({"manager": FIELD_MANAGER, "operation": "Apply", "apiVersion": api_version, "fieldsType": "FieldsV1", "fieldsV1": fields})
}

fn managed_by_helm(api_version: &str, fields: Value) -> Value {
    json!({"manager": "helm", "operation": "Update", "apiVersion": api_version, "fieldsType": "FieldsV1", "fieldsV1": fields})
}

fn deployment(replicas: i32, managed: Value, annotations: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "ledger", "namespace": "cell-2", "resourceVersion": "41", "managedFields": managed},
        "spec": {
            "replicas": replicas,
            "paused": false,
            "selector": {"matchLabels": {"app": "ledger"}},
            "template": {
                "metadata": {"labels": {"app": "ledger"}, "annotations": annotations},
                "spec": {"containers": [{"name": "ledger", "image": "wallet/ledger:1.4"}]}
            }
        }
    })
}

fn cell(weight: u32, status: Value) -> Value {
    json!({
        "apiVersion": "cellwarden.io/v1alpha1", "kind": "Cell",
        "metadata": {"name": "cell-2", "resourceVersion": "12"},
        "spec": {"namespace": "cell-2", "zone": "eu-west-1b", "weight": weight},
        "status": status
    })
}

/// Two backends of one rule: the drained cell's and another cell's, 50/50.
fn wallet_route(cell2_weight: i64) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "wallet", "namespace": "gateway", "resourceVersion": "9"},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "rules": [{"backendRefs": [
                {"name": "wallet-api", "namespace": "cell-2", "port": 8080, "weight": cell2_weight},
                {"name": "wallet-api", "namespace": "cell-3", "port": 8080, "weight": 50}
            ]}]
        }
    })
}

/// A route that backs onto another cell only: listed, never touched.
fn other_route() -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "rewards", "namespace": "cell-3", "resourceVersion": "3"},
        "spec": {"rules": [{"backendRefs": [{"name": "rewards", "port": 8080}]}]}
    })
}

fn node(name: &str, unschedulable: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"cellwarden.io/cell": "cell-2"}},
        "spec": {"unschedulable": unschedulable}
    })
}

fn configmap(ns: &str, name: &str, data: Value, managed: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": "5", "managedFields": managed},
        "data": data
    })
}

fn action(kind: ActionKind, target: &str, params: &[(&str, &str)]) -> Action {
    Action {
        kind,
        target: target.into(),
        params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        reason: "test".into(),
        needs_approval: false,
        expected_effect: "the anomaly subsides".into(),
        verify_within_secs: 300,
    }
}

/// An Incident whose plan holds one pending `scale cell-2/ledger +1`, as `open` writes it.
fn incident_with_pending_scale() -> Incident {
    let mut inc = Incident::new(
        "inc-1",
        IncidentSpec {
            opened_at: "2026-03-02T09:44:00Z".into(),
            class: "capacity".into(),
            cells: vec!["cell-2".into()],
        },
    );
    inc.metadata.namespace = Some(OWN_NS.into());
    inc.metadata.resource_version = Some("100".into());
    inc.status = Some(IncidentStatus {
        phase: Phase::Open,
        timeline: vec![TimelineItem {
            at: "2026-03-02T09:44:00Z".into(),
            kind: "opened".into(),
            text: "Opened from 1 anomalous series.".into(),
        }],
        planned: vec![ActionRecord {
            kind: "scale".into(),
            target: "cell-2/ledger".into(),
            at: "2026-03-02T09:44:00Z".into(),
            state: ActionState::Pending,
            reason: "memory near its limit".into(),
            spec: Some(PlannedAction {
                params: [("replicas".to_string(), "+1".to_string())].into_iter().collect(),
                needs_approval: false,
                expected_effect: "memory per pod falls".into(),
                verify_within_secs: 300,
                watch: Some(Watch {
                    series: "container_memory_working_set_bytes{namespace=\"cell-2\"}".into(),
                    entity: "service:cell-2/ledger".into(),
                    signal: "memory".into(),
                    level_at_action: 0.95,
                    wanted_at_most: 0.8,
                    trend_window_secs: 0,
                }),
            }),
            undo: None,
        }],
        ..IncidentStatus::default()
    });
    inc
}

// ---------------------------------------------------------------------------------------------
// The verifier.

/// One request as received, decoded.
struct Seen {
    method: Method,
    path: String,
    /// Decoded query pairs (kube writes `?&force=true&...`; empty pieces are dropped).
    query: BTreeMap<String, String>,
    content_type: Option<String>,
    /// The JSON body (`Null` when empty).
    body: Value,
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {:?}", self.method, self.path, self.query)
    }
}

/// Percent-decoding of `application/x-www-form-urlencoded` query text.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ASCII hex");
                out.push(u8::from_str_radix(hex, 16).expect("percent escape"));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).expect("UTF-8 query")
}

fn reply(send: SendResponse<Response<Body>>, code: u16, body: &Value) {
    let response = Response::builder()
        .status(StatusCode::from_u16(code).expect("status code"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(body).expect("JSON")))
        .expect("response");
    send.send_response(response);
}

/// A `meta/v1 Status` failure as the API server sends it.
fn failure(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code})
}

fn query(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub struct ApiServerVerifier(Handle<Request<Body>, Response<Body>>);

/// One API conversation the code under test must hold, request by request.
enum Scenario {
    /// GET Deployment (3 replicas) → SSA replicas 4.
    Scale,
    /// GET Deployment whose replicas cellwarden owns → SSA of the restart annotation and replicas.
    RestartKeepsReplicas,
    /// GET Cell (25) → SSA weight 0 → status Draining → LIST routes → GET route → merge weights.
    Reroute,
    /// GET Cell (draining, was 25) → SSA weight 0 → status Cordoned → LIST routes 404 → LIST
    /// nodes → SSA each node unschedulable.
    CordonWithoutGatewayApi,
    /// Per cell namespace: GET ConfigMap (404, then one with the key) → SSA the key.
    FailoverProvider,
    /// As failover, for a feature flag, keeping the flag cellwarden set earlier.
    CircuitBreak,
    /// GET Deployment → SSA replicas back, keeping the restart annotation cellwarden owns.
    RevertReplicas,
    /// SSA weight back → status Active (previous weight cleared) → node schedulable → route back.
    RevertCell,
    /// Per namespace: merge the key back (cell-1: removed, leaving the ConfigMap cellwarden
    /// created empty → DELETE with its resourceVersion; cell-2: the old value; cell-3: removed,
    /// but someone else's key is in it → kept).
    RevertConfigMapKey,
    /// The scale SSA is refused with 409 once, then accepted.
    ScaleConflictOnce,
    /// The scale SSA is refused with 500 on every one of `with_retries`' 4 attempts.
    ScaleServerErrorEveryTime,
    /// reconcile: GET Incident → status `applying` → scale → Event → status `done` + verification.
    ReconcilePendingScale,
    /// Not a single request.
    NoRequests,
}

impl ApiServerVerifier {
    /// Runs `scenario` in a spawned task; the handle is dropped when it ends, closing the mock.
    fn run(self, scenario: Scenario) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut v = self;
            match scenario {
                Scenario::Scale => {
                    v.get_deployment(deployment(3, json!([]), json!({}))).await;
                    v.apply_deployment(apply_replicas(4), deployment(4, json!([]), json!({}))).await;
                }
                Scenario::RestartKeepsReplicas => {
                    let owned = json!([
                        managed_by_cellwarden("apps/v1", json!({"f:spec": {"f:replicas": {}}})),
                        managed_by_helm(
                            "apps/v1",
                            json!({"f:spec": {"f:paused": {}, "f:template": {"f:metadata": {"f:annotations": {".": {}, "f:team": {}}}}}})
                        )
                    ]);
                    v.get_deployment(deployment(4, owned.clone(), json!({"team": "ledger"}))).await;
                    let expected = json!({
                        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ledger"},
                        "spec": {"replicas": 4, "template": {"metadata": {"annotations": {RESTARTED_AT: NOW}}}}
                    });
                    v.apply_deployment(expected, deployment(4, owned, json!({"team": "ledger", RESTARTED_AT: NOW})))
                        .await;
                }
                Scenario::Reroute => {
                    v.get_cell(cell(25, json!({"state": "Active"}))).await;
                    v.apply_cell_weight(0).await;
                    v.patch_cell_status(json!({"status": {"state": "Draining", "previousWeight": 25}}))
                        .await;
                    v.list_httproutes(vec![wallet_route(50), other_route()]).await;
                    v.get_httproute(wallet_route(50)).await;
                    v.patch_httproute_weights(json!([[0, 50]])).await;
                }
                Scenario::CordonWithoutGatewayApi => {
                    v.get_cell(cell(0, json!({"state": "Draining", "previousWeight": 25}))).await;
                    v.apply_cell_weight(0).await;
                    v.patch_cell_status(json!({"status": {"state": "Cordoned", "previousWeight": 25}}))
                        .await;
                    v.list_httproutes_absent().await;
                    v.list_nodes("cellwarden.io/cell=cell-2", vec![node("node-a", false), node("node-b", true)])
                        .await;
                    v.apply_node("node-a", true).await;
                    v.apply_node("node-b", true).await;
                }
                Scenario::FailoverProvider => {
                    let cm = "cellwarden-provider-weights";
                    v.get_configmap("cell-1", cm, None).await;
                    v.apply_configmap("cell-1", cm, json!({"provider-a": "0"})).await;
                    let existing = configmap(
                        "cell-2",
                        cm,
                        json!({"provider-a": "70", "provider-b": "30"}),
                        json!([managed_by_helm("v1", json!({"f:data": {"f:provider-a": {}, "f:provider-b": {}}}))]),
                    );
                    v.get_configmap("cell-2", cm, Some(existing)).await;
                    // helm's provider-b is not taken over: only the failed provider is written.
                    v.apply_configmap("cell-2", cm, json!({"provider-a": "0"})).await;
                }
                Scenario::RevertConfigMapKey => {
                    let cm = "cellwarden-feature-flags";
                    v.merge_configmap("cell-1", cm, json!({"cashback": null}), json!({})).await;
                    v.delete_configmap("cell-1", cm, "5").await;
                    v.merge_configmap("cell-2", cm, json!({"cashback": "on"}), json!({"cashback": "on", "loyalty": "off"}))
                        .await;
                    v.merge_configmap("cell-3", cm, json!({"cashback": null}), json!({"team-flag": "x"}))
                        .await;
                }
                Scenario::CircuitBreak => {
                    let cm = "cellwarden-feature-flags";
                    v.get_configmap("cell-1", cm, None).await;
                    v.apply_configmap("cell-1", cm, json!({"cashback": "off"})).await;
                    let existing = configmap(
                        "cell-2",
                        cm,
                        json!({"cashback": "on", "loyalty": "off", "referrals": "on"}),
                        json!([
                            managed_by_cellwarden("v1", json!({"f:data": {"f:loyalty": {}}})),
                            managed_by_helm("v1", json!({"f:data": {"f:cashback": {}, "f:referrals": {}}}))
                        ]),
                    );
                    v.get_configmap("cell-2", cm, Some(existing)).await;
                    // The loyalty flag cellwarden broke earlier stays off (an apply without it would delete it).
                    v.apply_configmap("cell-2", cm, json!({"cashback": "off", "loyalty": "off"})).await;
                }
                Scenario::RevertReplicas => {
                    let owned = json!([managed_by_cellwarden(
                        "apps/v1",
                        json!({"f:spec": {"f:replicas": {}, "f:template": {"f:metadata": {"f:annotations": {"f:cellwarden.io/restartedAt": {}}}}}})
                    )]);
                    let restarted = json!({RESTARTED_AT: "2026-03-02T09:40:00Z"});
                    v.get_deployment(deployment(4, owned.clone(), restarted.clone())).await;
                    let expected = json!({
                        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ledger"},
                        "spec": {"replicas": 3, "template": {"metadata": {"annotations": {RESTARTED_AT: "2026-03-02T09:40:00Z"}}}}
                    });
                    v.apply_deployment(expected, deployment(3, owned, restarted)).await;
                }
                Scenario::RevertCell => {
                    v.apply_cell_weight(25).await;
                    // A merge patch only removes what it sets to null: the previous weight must go.
                    v.patch_cell_status(json!({"status": {"state": "Active", "previousWeight": null, "incident": null}}))
                        .await;
                    v.apply_node("node-a", false).await;
                    v.get_httproute(wallet_route(0)).await;
                    v.patch_httproute_weights(json!([[50, 50]])).await;
                }
                Scenario::ScaleConflictOnce => {
                    v.get_deployment(deployment(3, json!([]), json!({}))).await;
                    v.refuse_apply_deployment(409, "Conflict").await;
                    v.apply_deployment(apply_replicas(4), deployment(4, json!([]), json!({}))).await;
                }
                Scenario::ScaleServerErrorEveryTime => {
                    v.get_deployment(deployment(3, json!([]), json!({}))).await;
                    for _ in 0..4 {
                        v.refuse_apply_deployment(500, "InternalError").await;
                    }
                }
                Scenario::ReconcilePendingScale => {
                    v.get_incident(incident_with_pending_scale()).await;
                    let marked = v.patch_incident_status().await;
                    assert_eq!(marked.planned.len(), 1);
                    assert_eq!(
                        marked.planned[0].state,
                        ActionState::Applying,
                        "the action is marked applying in the cluster before it is carried out"
                    );
                    assert!(marked.taken.is_empty(), "nothing is recorded as taken before the actuator ran");
                    v.get_deployment(deployment(3, json!([]), json!({}))).await;
                    v.apply_deployment(apply_replicas(4), deployment(4, json!([]), json!({}))).await;
                    v.publish_event("ActionTaken", "scale", "deployment cell-2/ledger: replicas 3 → 4")
                        .await;
                    let done = v.patch_incident_status().await;
                    assert_eq!(done.planned[0].state, ActionState::Done);
                    assert_eq!(done.taken.len(), 1);
                    let taken = &done.taken[0];
                    assert_eq!(
                        (taken.kind.as_str(), taken.target.as_str(), taken.state.as_str()),
                        ("scale", "cell-2/ledger", "done")
                    );
                    assert_eq!(taken.at, NOW);
                    assert_eq!(taken.reason, "deployment cell-2/ledger: replicas 3 → 4");
                    let undo: Undo =
                        serde_json::from_str(taken.undo.as_deref().expect("the taken record carries its undo")).expect("undo JSON");
                    assert_eq!(
                        undo,
                        Undo::Replicas {
                            namespace: "cell-2".into(),
                            name: "ledger".into(),
                            replicas: 3
                        }
                    );
                    assert_eq!(done.verifications.len(), 1);
                    let ver = &done.verifications[0];
                    assert_eq!(ver.action, "scale cell-2/ledger");
                    assert_eq!(ver.result, VerificationResult::Pending);
                    assert_eq!(ver.acted_at, NOW);
                    assert_eq!(ver.deadline, "2026-03-02T09:50:00Z", "verify_within_secs 300 after the action");
                    assert_eq!(done.phase, Phase::Mitigating);
                    assert!(done
                        .timeline
                        .iter()
                        .any(|t| t.kind == "action" && t.text == "deployment cell-2/ledger: replicas 3 → 4"));
                }
                Scenario::NoRequests => {
                    // Ends (None) only when every client clone is gone without having sent anything.
                    if let Some((req, _)) = v.0.next_request().await {
                        panic!("expected no request, got {} {}", req.method(), req.uri());
                    }
                }
            }
        })
    }

    async fn next(&mut self) -> (Seen, SendResponse<Response<Body>>) {
        let (request, send) = self
            .0
            .next_request()
            .await
            .expect("the code under test stopped before this request");
        let (parts, body) = request.into_parts();
        let bytes = body.collect().await.expect("request body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("request body is JSON")
        };
        let query = parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        let seen = Seen {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query,
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .map(|v| v.to_str().expect("ASCII header").to_string()),
            body,
        };
        (seen, send)
    }

    /// Takes the next request and checks what every request is judged on.
    async fn expect(
        &mut self,
        method: Method,
        path: &str,
        query_pairs: &[(&str, &str)],
        content_type: Option<&str>,
    ) -> (Value, SendResponse<Response<Body>>) {
        let (seen, send) = self.next().await;
        assert_eq!((&seen.method, seen.path.as_str()), (&method, path), "unexpected request {seen}");
        assert_eq!(seen.query, query(query_pairs), "query of {seen}");
        if let Some(ct) = content_type {
            assert_eq!(seen.content_type.as_deref(), Some(ct), "content type of {seen}");
        }
        (seen.body, send)
    }

    // One method per expected request.

    async fn get_deployment(&mut self, current: Value) {
        let (_, send) = self
            .expect(Method::GET, "/apis/apps/v1/namespaces/cell-2/deployments/ledger", &[], None)
            .await;
        reply(send, 200, &current);
    }

    async fn apply_deployment(&mut self, expected: Value, result: Value) {
        let (body, send) = self
            .expect(
                Method::PATCH,
                "/apis/apps/v1/namespaces/cell-2/deployments/ledger",
                SSA_QUERY,
                Some(APPLY),
            )
            .await;
        assert_eq!(body, expected, "server-side apply of the Deployment");
        reply(send, 200, &result);
    }

    async fn refuse_apply_deployment(&mut self, code: u16, reason: &str) {
        let (body, send) = self
            .expect(
                Method::PATCH,
                "/apis/apps/v1/namespaces/cell-2/deployments/ledger",
                SSA_QUERY,
                Some(APPLY),
            )
            .await;
        assert_eq!(body, apply_replicas(4), "every attempt sends the same apply");
        reply(send, code, &failure(code, reason, "refused by the test"));
    }

    async fn get_cell(&mut self, current: Value) {
        let (_, send) = self
            .expect(Method::GET, "/apis/cellwarden.io/v1alpha1/cells/cell-2", &[], None)
            .await;
        reply(send, 200, &current);
    }

    async fn apply_cell_weight(&mut self, weight: u32) {
        let (body, send) = self
            .expect(Method::PATCH, "/apis/cellwarden.io/v1alpha1/cells/cell-2", SSA_QUERY, Some(APPLY))
            .await;
        assert_eq!(
            body,
            json!({"apiVersion": "cellwarden.io/v1alpha1", "kind": "Cell", "metadata": {"name": "cell-2"}, "spec": {"weight": weight}}),
            "server-side apply of the Cell"
        );
        reply(send, 200, &cell(weight, json!({"state": "Active"})));
    }

    async fn patch_cell_status(&mut self, expected: Value) {
        let (body, send) = self
            .expect(Method::PATCH, "/apis/cellwarden.io/v1alpha1/cells/cell-2/status", &[], Some(MERGE))
            .await;
        assert_eq!(body, expected, "merge patch of the Cell status");
        reply(send, 200, &cell(0, expected["status"].clone()));
    }

    async fn list_httproutes(&mut self, routes: Vec<Value>) {
        let (_, send) = self
            .expect(Method::GET, "/apis/gateway.networking.k8s.io/v1/httproutes", &[], None)
            .await;
        let list = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRouteList", "metadata": {"resourceVersion": "77"}, "items": routes});
        reply(send, 200, &list);
    }

    /// The Gateway API is not installed: its group is unknown to the API server.
    async fn list_httproutes_absent(&mut self) {
        let (_, send) = self
            .expect(Method::GET, "/apis/gateway.networking.k8s.io/v1/httproutes", &[], None)
            .await;
        reply(
            send,
            404,
            &failure(404, "NotFound", "the server could not find the requested resource"),
        );
    }

    async fn get_httproute(&mut self, current: Value) {
        let (_, send) = self
            .expect(
                Method::GET,
                "/apis/gateway.networking.k8s.io/v1/namespaces/gateway/httproutes/wallet",
                &[],
                None,
            )
            .await;
        reply(send, 200, &current);
    }

    /// `weights`: per rule, per backend, the weight each backend must be sent with.
    async fn patch_httproute_weights(&mut self, weights: Value) {
        let (body, send) = self
            .expect(
                Method::PATCH,
                "/apis/gateway.networking.k8s.io/v1/namespaces/gateway/httproutes/wallet",
                &[],
                Some(MERGE),
            )
            .await;
        let rules = body
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .expect("the patch carries spec.rules");
        let sent: Vec<Vec<Value>> = rules
            .iter()
            .map(|r| {
                r["backendRefs"]
                    .as_array()
                    .expect("backendRefs")
                    .iter()
                    .map(|b| b["weight"].clone())
                    .collect()
            })
            .collect();
        assert_eq!(json!(sent), weights, "backend weights in the HTTPRoute patch");
        // Rules are replaced whole by a merge patch: everything else in them must be kept.
        let refs = &rules[0]["backendRefs"];
        assert_eq!(refs[0]["namespace"], "cell-2");
        assert_eq!(refs[1]["namespace"], "cell-3");
        assert_eq!(refs[1]["name"], "wallet-api");
        assert_eq!(refs[1]["port"], 8080);
        let mut result = wallet_route(0);
        result["spec"]["rules"] = Value::Array(rules.clone());
        reply(send, 200, &result);
    }

    async fn list_nodes(&mut self, selector: &str, nodes: Vec<Value>) {
        let (_, send) = self
            .expect(Method::GET, "/api/v1/nodes", &[("labelSelector", selector)], None)
            .await;
        reply(
            send,
            200,
            &json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {"resourceVersion": "88"}, "items": nodes}),
        );
    }

    async fn apply_node(&mut self, name: &str, unschedulable: bool) {
        let (body, send) = self
            .expect(Method::PATCH, &format!("/api/v1/nodes/{name}"), SSA_QUERY, Some(APPLY))
            .await;
        assert_eq!(
            body,
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {"unschedulable": unschedulable}}),
            "server-side apply of node {name}"
        );
        reply(send, 200, &node(name, unschedulable));
    }

    async fn get_configmap(&mut self, ns: &str, name: &str, current: Option<Value>) {
        let (_, send) = self
            .expect(Method::GET, &format!("/api/v1/namespaces/{ns}/configmaps/{name}"), &[], None)
            .await;
        match current {
            Some(cm) => reply(send, 200, &cm),
            None => reply(send, 404, &failure(404, "NotFound", &format!("configmaps \"{name}\" not found"))),
        }
    }

    async fn apply_configmap(&mut self, ns: &str, name: &str, data: Value) {
        let (body, send) = self
            .expect(
                Method::PATCH,
                &format!("/api/v1/namespaces/{ns}/configmaps/{name}"),
                SSA_QUERY,
                Some(APPLY),
            )
            .await;
        assert_eq!(
            body,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}),
            "server-side apply of {ns}/{name}"
        );
        reply(send, 200, &configmap(ns, name, data, json!([])));
    }

    async fn merge_configmap(&mut self, ns: &str, name: &str, data: Value, after: Value) {
        let (body, send) = self
            .expect(
                Method::PATCH,
                &format!("/api/v1/namespaces/{ns}/configmaps/{name}"),
                &[],
                Some(MERGE),
            )
            .await;
        assert_eq!(
            body,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}),
            "merge patch of {ns}/{name}"
        );
        reply(send, 200, &configmap(ns, name, after, json!([])));
    }

    async fn delete_configmap(&mut self, ns: &str, name: &str, resource_version: &str) {
        let (body, send) = self
            .expect(Method::DELETE, &format!("/api/v1/namespaces/{ns}/configmaps/{name}"), &[], None)
            .await;
        assert_eq!(
            body["preconditions"]["resourceVersion"],
            json!(resource_version),
            "the delete of {ns}/{name} is conditional on what was just read"
        );
        reply(
            send,
            200,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": name, "kind": "configmaps"}}),
        );
    }

    async fn get_incident(&mut self, current: Incident) {
        let (_, send) = self
            .expect(
                Method::GET,
                "/apis/cellwarden.io/v1alpha1/namespaces/cellwarden/incidents/inc-1",
                &[],
                None,
            )
            .await;
        reply(send, 200, &serde_json::to_value(&current).expect("Incident JSON"));
    }

    /// A merge patch of the Incident status; returns the status sent.
    async fn patch_incident_status(&mut self) -> IncidentStatus {
        let (body, send) = self
            .expect(
                Method::PATCH,
                "/apis/cellwarden.io/v1alpha1/namespaces/cellwarden/incidents/inc-1/status",
                &[],
                Some(MERGE),
            )
            .await;
        let status: IncidentStatus = serde_json::from_value(body["status"].clone()).expect("the patch carries a whole IncidentStatus");
        let mut result = incident_with_pending_scale();
        result.status = Some(status.clone());
        reply(send, 200, &serde_json::to_value(&result).expect("Incident JSON"));
        status
    }

    /// `Recorder::publish` of a new event: a POST of an events.k8s.io/v1 Event about the Incident.
    async fn publish_event(&mut self, reason: &str, action: &str, note: &str) {
        let (body, send) = self
            .expect(
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/cellwarden/events",
                &[],
                Some("application/json"),
            )
            .await;
        assert_eq!(body["reason"], reason);
        assert_eq!(body["action"], action);
        assert_eq!(body["type"], "Normal");
        assert_eq!(body["note"], note);
        assert_eq!(body["reportingController"], "cellwarden");
        assert_eq!(body["reportingInstance"], "cellwarden-0");
        assert_eq!(
            body["regarding"],
            json!({"apiVersion": "cellwarden.io/v1alpha1", "kind": "Incident", "name": "inc-1", "namespace": OWN_NS})
        );
        assert!(body["eventTime"].is_string(), "events.k8s.io/v1 needs eventTime");
        reply(send, 201, &body);
    }
}

fn apply_replicas(replicas: i32) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ledger"}, "spec": {"replicas": replicas}})
}

// ---------------------------------------------------------------------------------------------
// Harness.

fn mock_client() -> (Client, ApiServerVerifier) {
    let (mock_service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(mock_service, "default"), ApiServerVerifier(handle))
}

/// Awaits the code under test, then the verifier (whose assertion failure wins: it is the
/// reason the call failed), both bounded by [`TIMEOUT`].
async fn converse<T>(verifier: JoinHandle<()>, call: impl Future<Output = T>) -> T {
    let out = tokio::time::timeout(TIMEOUT, call)
        .await
        .expect("the call under test did not finish: one of its requests was never answered");
    match tokio::time::timeout(TIMEOUT, verifier).await {
        Err(_) => panic!("the API conversation did not finish: an expected request never came"),
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("verifier task: {e}"),
        Ok(Ok(())) => out,
    }
}

fn actuator(client: Client) -> Actuator {
    Actuator::new(client, vec!["cell-1".into(), "cell-2".into()])
}

// ---------------------------------------------------------------------------------------------
// Actuators.

#[tokio::test]
async fn scale_reads_the_replicas_and_applies_one_more() {
    let (client, verifier) = mock_client();
    let task = verifier.run(Scenario::Scale);
    let act = actuator(client);
    let applied = converse(
        task,
        act.apply(&action(ActionKind::Scale, "cell-2/ledger", &[("replicas", "+1")]), NOW),
    )
    .await
    .expect("scale");
    assert_eq!(
        applied,
        Applied {
            what: "deployment cell-2/ledger: replicas 3 → 4".into(),
            undo: Some(Undo::Replicas {
                namespace: "cell-2".into(),
                name: "ledger".into(),
                replicas: 3
            }),
            changed: true,
        }
    );
}

#[tokio::test]
async fn restart_pods_sets_the_annotation_and_keeps_the_replicas_cellwarden_owns() {
    let (client, verifier) = mock_client();
    let task = verifier.run(Scenario::RestartKeepsReplicas);
    let act = actuator(client);
    let applied = converse(task, act.apply(&action(ActionKind::RestartPods, "cell-2/ledger", &[]), NOW))
        .await
        .expect("restart");
    assert_eq!(applied.what, format!("deployment cell-2/ledger: rolling restart at {NOW}"));
    assert_eq!(applied.undo, None, "a rolling restart cannot be undone");
    assert!(applied.changed);
}

#[tokio::test]
async fn reroute_drains_the_cell_and_zeroes_only_its_route_backends() {
    let (client, verifier) = mock_client();
    let task = verifier.run(Scenario::Reroute);
    let act = actuator(client);
    let applied = converse(task, act.apply(&action(ActionKind::Reroute, "cell-2", &[]), NOW))
        .await
        .expect("reroute");
    assert_eq!(applied.what, "cell cell-2: weight 25 → 0 (draining), 1 HTTPRoute(s) moved");
    assert_eq!(
        applied.undo,
        Some(Undo::Cell {
            cell: "cell-2".into(),
            weight: 25,
            nodes: vec![],
            routes: [("gateway/wallet".to_string(), vec![vec![Some(50), Some(50)]])]
                .into_iter()
                .collect(),
        })
    );
    assert!(applied.changed);
}

#[tokio::test]
async fn cordon_without_the_gateway_api_cordons_the_cells_nodes_and_keeps_the_original_weight() {
    let (client, verifier) = mock_client();
    let task = verifier.run(Scenario::CordonWithoutGatewayApi);
    let act = actuator(client);
    let applied = converse(task, act.apply(&action(ActionKind::Cordon, "cell-2", &[]), NOW))
        .await
        .expect("cordon");
    assert_eq!(
        applied.what,
        "cell cell-2: already at weight 0 (25 before the drain), cordoned, 2 node(s) unschedulable, 0 HTTPRoute(s) moved"
    );
    assert_eq!(
        applied.undo,
        Some(Undo::Cell {
            cell: "cell-2".into(),
            // The weight before the earlier reroute, from the status, not the drained 0.
            weight: 25,
            // node-b was unschedulable already: a revert must not make it schedulable.
            nodes: vec!["node-a".into()],
            routes: BTreeMap::new(),
        })
    );
}

#[tokio::test]
async fn failover_provider_writes_the_provider_weight_in_every_cell_namespace() {
    let (client, verifier) = mock_client();
    let task = verifier.run(Scenario::FailoverProvider);
    let act = actuator(client);
    let applied = converse(task, act.apply(&action(ActionKind::FailoverProvider, "provider-a", &[]), NOW))
        .await
        .expect("failover");
    assert_eq!(applied.what, "cellwarden-provider-weights: provider-a=0 in 2 cell namespace(s)");
    assert_eq!(
        applied.undo,
        Some(Undo::ConfigMapKey {
            configmap: "cellwarden-provider-weights".into(),
            key: "provider-a".into(),
            previous: [("cell-1".to_string(), None), ("cell-2".to_string(), Some("70".to_string()))]
                .into_iter()
                .collect(),
            // cell-1 had no such ConfigMap: cellwarden created it.
            created: vec!["cell-1".into()],
        })
    );
}

#[tokio::test]
async fn circuit_break_turns_the_feature_off_and_keeps_flags_cellwarden_set_before() {
    let (client, verifier) = mock_client();
    let task = verifier.run(Scenario::CircuitBreak);
    let act = actuator(client);
    let applied = converse(
        task,
        act.apply(
            &action(ActionKind::CircuitBreak, "cell-2/wallet-api", &[("feature", "cashback")]),
            NOW,
        ),
    )
    .await
    .expect("circuit break");
    assert_eq!(applied.what, "cellwarden-feature-flags: cashback=off in 2 cell namespace(s)");
    assert_eq!(
        applied.undo,
        Some(Undo::ConfigMapKey {
            configmap: "cellwarden-feature-flags".into(),
            key: "cashback".into(),
            previous: [("cell-1".to_string(), None), ("cell-2".to_string(), Some("on".to_string()))]
                .into_iter()
                .collect(),
            // cell-1 had no such ConfigMap: cellwarden created it.
            created: vec!["cell-1".into()],
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Reverts.

#[tokio::test]
async fn revert_of_a_scale_puts_the_replicas_back_without_dropping_a_restart() {
    let (client, verifier) = mock_client();
    let task = verifier.run(Scenario::RevertReplicas);
    let act = actuator(client);
    let undo = Undo::Replicas {
        namespace: "cell-2".into(),
        name: "ledger".into(),
        replicas: 3,
    };
    let what = converse(task, act.revert(&undo)).await.expect("revert");
    assert_eq!(what, "deployment cell-2/ledger: replicas back to 3");
}

#[tokio::test]
async fn revert_of_a_cordon_restores_weight_state_nodes_and_route_backends() {
    let (client, verifier) = mock_client();
    let task = verifier.run(Scenario::RevertCell);
    let act = actuator(client);
    let undo = Undo::Cell {
        cell: "cell-2".into(),
        weight: 25,
        nodes: vec!["node-a".into()],
        routes: [("gateway/wallet".to_string(), vec![vec![Some(50), Some(50)]])]
            .into_iter()
            .collect(),
    };
    let what = converse(task, act.revert(&undo)).await.expect("revert");
    assert_eq!(
        what,
        "cell cell-2: weight back to 25, Active, 1 node(s) schedulable, 2 route backend(s) restored"
    );
}

#[tokio::test]
async fn revert_of_a_flag_puts_keys_back_and_deletes_a_configmap_cellwarden_created_only_when_empty() {
    let (client, verifier) = mock_client();
    let task = verifier.run(Scenario::RevertConfigMapKey);
    let act = actuator(client);
    let undo = Undo::ConfigMapKey {
        configmap: "cellwarden-feature-flags".into(),
        key: "cashback".into(),
        previous: [
            ("cell-1".to_string(), None),
            ("cell-2".to_string(), Some("on".to_string())),
            ("cell-3".to_string(), None),
        ]
        .into_iter()
        .collect(),
        created: vec!["cell-1".into(), "cell-3".into()],
    };
    let what = converse(task, act.revert(&undo)).await.expect("revert");
    assert_eq!(
        what,
        "cellwarden-feature-flags: cashback restored in 3 namespace(s); deleted in 1 where cellwarden had created it"
    );
}

// ---------------------------------------------------------------------------------------------
// Retries.

#[tokio::test]
async fn a_conflict_is_retried_and_the_apply_then_succeeds() {
    let (client, verifier) = mock_client();
    let task = verifier.run(Scenario::ScaleConflictOnce);
    let act = actuator(client);
    let applied = converse(task, act.apply(&action(ActionKind::Scale, "cell-2/ledger", &[]), NOW))
        .await
        .expect("scale after one 409");
    assert_eq!(applied.what, "deployment cell-2/ledger: replicas 3 → 4");
}

#[tokio::test]
async fn a_server_error_on_every_attempt_gives_up_after_four() {
    let (client, verifier) = mock_client();
    let task = verifier.run(Scenario::ScaleServerErrorEveryTime);
    let act = actuator(client);
    let err = converse(task, act.apply(&action(ActionKind::Scale, "cell-2/ledger", &[]), NOW))
        .await
        .expect_err("four 500s in a row fail the action");
    assert_eq!(err.metric_label(), "api");
    // The fourth refusal itself: a fifth attempt would have found the mock closed instead.
    match err {
        ActuateError::Kube(kube::Error::Api(s)) => {
            assert_eq!(s.code, 500);
            assert_eq!(s.reason, "InternalError");
        }
        other => panic!("expected the API's 500, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The reconciler.

/// Telemetry at a fixed time with no samples; records what verification asked for.
struct FixedTelemetry {
    now: Timestamp,
    asked: Mutex<Vec<(String, String, String, Timestamp)>>,
}

impl Telemetry for FixedTelemetry {
    fn now(&self) -> Timestamp {
        self.now
    }
    fn samples(&self, signal: &str, entity: &str, series: &str, from: Timestamp) -> Vec<Sample> {
        self.asked
            .lock()
            .expect("lock")
            .push((signal.into(), entity.into(), series.into(), from));
        Vec::new()
    }
}

/// The audit log's output, readable after the test.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn context(client: Client, leading: bool, telemetry: Arc<FixedTelemetry>, audit_out: SharedBuf) -> Arc<Context> {
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "cellwarden".into(),
            instance: Some("cellwarden-0".into()),
        },
    );
    Arc::new(Context {
        client: client.clone(),
        namespace: OWN_NS.into(),
        actuator: Actuator::new(client, vec!["cell-2".into()]),
        recorder,
        audit: Mutex::new(AuditLog::new(Box::new(audit_out) as Box<dyn Write + Send>)),
        telemetry,
        leading: Arc::new(AtomicBool::new(leading)),
        mode: Mode::Act,
        approval_ttl_secs: 3600,
        wall_ms: Arc::new(|| 1_772_444_700_000),
        notifier: Notifier::disabled(),
        metrics: Arc::new(OperatorMetrics::default()),
        poll: Duration::from_secs(10),
        shard: None,
    })
}

#[tokio::test]
async fn reconcile_carries_out_a_pending_scale_and_records_it_for_verification() {
    let (client, verifier) = mock_client();
    let now = Timestamp::parse_rfc3339(NOW).expect("NOW");
    let telemetry = Arc::new(FixedTelemetry {
        now,
        asked: Mutex::default(),
    });
    let audit_out = SharedBuf::default();
    let ctx = context(client, true, telemetry.clone(), audit_out.clone());
    let task = verifier.run(Scenario::ReconcilePendingScale);
    let requeue = converse(task, controller::reconcile(Arc::new(incident_with_pending_scale()), ctx.clone()))
        .await
        .expect("reconcile");
    assert_eq!(
        requeue,
        Requeue::requeue(ctx.poll),
        "a pending verification is looked at again after `poll`"
    );

    let text = String::from_utf8(audit_out.0.lock().expect("lock").clone()).expect("UTF-8 audit");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(audit::verify(&lines), Ok(1), "one hash-chained audit line");
    let line: Value = serde_json::from_str(lines[0]).expect("audit JSON");
    assert_eq!(line["event"], "action_taken");
    assert_eq!(line["at"], NOW);
    assert_eq!(line["incident"], "inc-1");
    assert_eq!(line["kind"], "scale");
    assert_eq!(line["target"], "cell-2/ledger");
    assert_eq!(line["result"], "deployment cell-2/ledger: replicas 3 → 4");
    assert_eq!(line["approved_by"], Value::Null);

    // Verification reads the watched entity from the next reconcile on: nothing after the action
    // can have been seen in the one that carried it out.
    assert!(telemetry.asked.lock().expect("lock").is_empty());

    let mut metrics = String::new();
    prometheus_client::encoding::text::encode(&mut metrics, &ctx.metrics.registry.lock().expect("lock")).expect("encode");
    assert!(
        metrics.contains("cellwarden_actions_total{kind=\"scale\",outcome=\"done\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_follower_makes_no_request_at_all() {
    let (client, verifier) = mock_client();
    let telemetry = Arc::new(FixedTelemetry {
        now: Timestamp::parse_rfc3339(NOW).expect("NOW"),
        asked: Mutex::default(),
    });
    let audit_out = SharedBuf::default();
    let ctx = context(client, false, telemetry.clone(), audit_out.clone());
    let task = verifier.run(Scenario::NoRequests);
    let poll = ctx.poll;
    // The context (every client clone) is dropped once reconcile returns: the verifier then
    // sees the mock's end, with no request before it.
    let requeue = converse(task, controller::reconcile(Arc::new(incident_with_pending_scale()), ctx))
        .await
        .expect("a follower's reconcile succeeds");
    assert_eq!(requeue, Requeue::requeue(poll * 5));
    assert!(audit_out.0.lock().expect("lock").is_empty(), "a follower writes no audit line");
    assert!(telemetry.asked.lock().expect("lock").is_empty(), "a follower verifies nothing");
}
