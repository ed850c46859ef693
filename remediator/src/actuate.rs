//! Actuators: carry out a decided plan through the Kubernetes API with server-side apply (field
//! manager `cellwarden`), idempotently — applying the same action twice leaves the same objects.
//! Each call is retried with backoff on 409/429/5xx (kube-rs already waits out Retry-After).
//!
//! What each action writes (DESIGN.md's "objects acted on"):
//! - `scale` — the Deployment's `spec.replicas` (+1 by default);
//! - `restart_pods` — the pod template annotation `cellwarden.io/restartedAt` (a rolling restart,
//!   so pods restart in the Deployment's own staggered batches);
//! - `reroute` — the `Cell`'s `spec.weight` to 0 (status `Draining`, the previous weight kept), and
//!   the backend weight of the cell's namespace in every Gateway API `HTTPRoute` to 0;
//! - `cordon` — as reroute, then status `Cordoned` and the cell's nodes `spec.unschedulable`;
//! - `failover_provider` — `cellwarden-provider-weights` in each cell namespace: the provider to "0";
//! - `circuit_break` — `cellwarden-feature-flags` in each cell namespace: the feature to "off";
//! - `rollback` — the Deployment's pod template back to that of the ReplicaSet of the previous
//!   revision (`deployment.kubernetes.io/revision`; the action's `revision` parameter names it),
//!   found among the ReplicaSets its selector lists and it owns, as `kubectl rollout undo` does;
//!   a JSON merge patch (field manager `cellwarden`) that turns the template into that one, read
//!   back to check it took. Not undone on a failed verification: rolling forward again to the
//!   revision the fault came with is a person's call.
//!
//! Every change returns an [`Undo`]: what was there before, kept in the Incident's status so a
//! failed verification can put it back (after a restart too). A rolling restart cannot be undone.

use crate::crd::{Cell, CellState, CellStatus};
use crate::lease::{timed, Fence, Fenced};
use cellwarden_engine::verify;
use cellwarden_models::{Action, ActionKind};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, Preconditions};
use kube::Client;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

pub const FIELD_MANAGER: &str = "cellwarden";
pub const PROVIDER_WEIGHTS: &str = "cellwarden-provider-weights";
pub const FEATURE_FLAGS: &str = "cellwarden-feature-flags";
pub const RESTARTED_AT: &str = "cellwarden.io/restartedAt";

/// When cellwarden last restarted `d`'s pods ([`RESTARTED_AT`] on its pod template), if it did.
pub fn restarted_at(d: &Deployment) -> Option<&str> {
    d.spec
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(RESTARTED_AT)
        .map(String::as_str)
}
/// The annotation the Deployment controller numbers each ReplicaSet (and the Deployment) with.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// Node label naming the cell a node belongs to.
pub const NODE_CELL_LABEL: &str = "cellwarden.io/cell";

/// Why an action could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ActuateError {
    /// The target is not of the form the action needs.
    #[error("bad target {0:?}: {1}")]
    BadTarget(String, String),
    /// The object to change does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The API refused, after retries.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The change was accepted but reading the object back does not show it.
    #[error("{0}")]
    NotApplied(String),
    /// This instance cannot prove it holds the Lease: nothing was changed.
    #[error("not carried out: {0}")]
    Fenced(#[from] Fenced),
}

impl ActuateError {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ActuateError::BadTarget(..) => "bad_target",
            ActuateError::NotFound(_) => "not_found",
            ActuateError::Kube(_) => "api",
            ActuateError::NotApplied(_) => "not_applied",
            ActuateError::Fenced(_) => "fenced",
        }
    }
}

/// What an action changed, so that it can be put back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Undo {
    /// A Deployment's replicas before a scale.
    Replicas { namespace: String, name: String, replicas: i32 },
    /// A cell before a reroute or cordon: its weight, its state, the nodes made unschedulable and
    /// the HTTPRoute backend weights set to 0 (`namespace/route` → rule index → backend index → weight).
    Cell {
        cell: String,
        weight: u32,
        #[serde(default)]
        nodes: Vec<String>,
        #[serde(default)]
        routes: BTreeMap<String, Vec<Vec<Option<i64>>>>,
    },
    /// A ConfigMap key before a failover or circuit break, per namespace (`None`: it was absent).
    ConfigMapKey {
        configmap: String,
        key: String,
        previous: BTreeMap<String, Option<String>>,
        /// Namespaces where the ConfigMap did not exist before (cellwarden created it): a revert
        /// deletes it there when nothing else was written to it meanwhile.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        created: Vec<String>,
    },
}

/// The result of carrying out an action.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// One sentence: what changed.
    pub what: String,
    /// How to put it back; `None` when it cannot be (a rolling restart) or nothing changed.
    pub undo: Option<Undo>,
    /// Whether anything changed (draining a drained cell changes nothing: no effect to verify).
    pub changed: bool,
}

/// Gateway API `HTTPRoute` (v1), read and written as a dynamic object: cellwarden does not
/// depend on the Gateway API crates, and clusters without it simply have no routes to move.
pub fn httproute_resource() -> ApiResource {
    ApiResource {
        group: "gateway.networking.k8s.io".into(),
        version: "v1".into(),
        api_version: "gateway.networking.k8s.io/v1".into(),
        kind: "HTTPRoute".into(),
        plural: "httproutes".into(),
    }
}

fn retryable(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 || s.code == 429 || s.code >= 500)
}

/// The most one actuator API call may take: a healthy API answers in milliseconds, and kube-rs
/// sets no read timeout of its own (its 295 s write timeout would let a hung call hold an
/// action, and the Lease it was fenced by, for minutes). A call past it fails, not retried.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `f` up to 4 times, backing off 100 ms, 200 ms, 400 ms on 409/429/5xx; each attempt
/// bounded by [`CALL_TIMEOUT`].
pub(crate) async fn with_retries<T, F, Fut>(mut f: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(100);
    for _ in 0..3 {
        match timed(CALL_TIMEOUT, "an actuator call", f()).await {
            Err(e) if retryable(&e) => {
                tracing::warn!(error = %e, delay_ms = delay.as_millis() as u64, "Retrying a refused API call.");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            other => return other,
        }
    }
    timed(CALL_TIMEOUT, "an actuator call", f()).await
}

/// Carries out actions against one cluster.
pub struct Actuator {
    client: Client,
    /// The namespaces of the cells (a cell's workloads live in the namespace named like the cell
    /// unless its `Cell` says otherwise).
    pub cell_namespaces: Vec<String>,
    /// The leader's check before each action and revert (`None`: no election, as in tests of
    /// the actuators alone).
    fence: Option<Fence>,
}

/// Adds to `body` every field `cellwarden` owns on `current` through server-side apply and the
/// body does not set. An apply that leaves out a field its manager owned removes that field:
/// a restart's apply would drop the replicas an earlier scale set, and a second feature flag
/// would delete the first. So each apply carries all that cellwarden holds on the object.
pub fn keep_owned(current: &serde_json::Value, body: &mut serde_json::Value) {
    let Some(entries) = current.pointer("/metadata/managedFields").and_then(|m| m.as_array()) else {
        return;
    };
    for e in entries {
        if e.get("manager").and_then(|m| m.as_str()) == Some(FIELD_MANAGER) && e.get("operation").and_then(|o| o.as_str()) == Some("Apply")
        {
            if let Some(f) = e.get("fieldsV1") {
                copy_owned(f, current, body);
            }
        }
    }
}

fn copy_owned(fields: &serde_json::Value, current: &serde_json::Value, out: &mut serde_json::Value) {
    let (Some(fields), Some(out)) = (fields.as_object(), out.as_object_mut()) else {
        return;
    };
    for (k, sub) in fields {
        // Only map fields (`f:`); list items (`k:`, `v:`, `i:`) are not used by cellwarden.
        let Some(name) = k.strip_prefix("f:") else { continue };
        let Some(value) = current.get(name) else { continue };
        let leaf = sub.as_object().is_none_or(|o| o.keys().all(|k| k == "."));
        if leaf {
            out.entry(name.to_string()).or_insert_with(|| value.clone());
        } else if value.is_object() {
            let slot = out.entry(name.to_string()).or_insert_with(|| json!({}));
            if slot.is_object() {
                copy_owned(sub, value, slot);
            }
        }
    }
}

fn apply_params() -> PatchParams {
    // Force: cellwarden owns the fields it changes once it acts (a Helm release set replicas first).
    PatchParams::apply(FIELD_MANAGER).force()
}

impl Actuator {
    pub fn new(client: Client, cell_namespaces: Vec<String>) -> Actuator {
        Actuator {
            client,
            cell_namespaces,
            fence: None,
        }
    }

    /// Checks `fence` before every action and revert.
    pub fn with_fence(mut self, fence: Fence) -> Actuator {
        self.fence = Some(fence);
        self
    }

    /// The fencing check: passes when no fence is set, else only while this instance provably
    /// holds the Lease (its term valid, a fresh read naming it).
    pub async fn fence(&self) -> Result<(), ActuateError> {
        match &self.fence {
            Some(f) => Ok(f.check().await?),
            None => Ok(()),
        }
    }

    /// Carries out `action` at `now` (RFC 3339); returns what changed and how to undo it.
    pub async fn apply(&self, action: &Action, now: &str) -> Result<Applied, ActuateError> {
        match action.kind {
            ActionKind::Notify => Ok(Applied {
                what: "nothing to change (notification)".into(),
                undo: None,
                changed: false,
            }),
            ActionKind::Scale => self.scale(action).await,
            ActionKind::RestartPods => self.restart(action, now).await.map(|what| Applied {
                what,
                undo: None,
                changed: true,
            }),
            ActionKind::Reroute => self.drain(&action.target, false).await,
            ActionKind::Cordon => self.drain(&action.target, true).await,
            ActionKind::FailoverProvider => self.flag(PROVIDER_WEIGHTS, &action.target, "0").await,
            ActionKind::CircuitBreak => {
                let feature = action
                    .params
                    .iter()
                    .find(|(k, _)| k == "feature")
                    .map_or(action.target.as_str(), |(_, v)| v.as_str());
                self.flag(FEATURE_FLAGS, feature, "off").await
            }
            ActionKind::Rollback => self.rollback(action).await,
        }
    }

    fn deployment_of<'a>(&self, target: &'a str) -> Result<(&'a str, &'a str), ActuateError> {
        target
            .split_once('/')
            .ok_or_else(|| ActuateError::BadTarget(target.into(), "expected <cell>/<service>".into()))
    }

    /// Puts back what an action changed.
    pub async fn revert(&self, undo: &Undo) -> Result<String, ActuateError> {
        match undo {
            Undo::Replicas { namespace, name, replicas } => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
                let mut body =
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {"replicas": replicas}});
                if let Some(current) = with_retries(|| api.get_opt(name)).await? {
                    keep_owned(&serde_json::to_value(&current).unwrap_or_default(), &mut body);
                }
                let pp = apply_params();
                let patch = Patch::Apply(&body);
                with_retries(|| api.patch(name, &pp, &patch)).await?;
                Ok(format!("deployment {namespace}/{name}: replicas back to {replicas}"))
            }
            Undo::Cell {
                cell,
                weight,
                nodes,
                routes,
            } => {
                let cells: Api<Cell> = Api::all(self.client.clone());
                let body =
                    json!({"apiVersion": "cellwarden.io/v1alpha1", "kind": "Cell", "metadata": {"name": cell}, "spec": {"weight": weight}});
                {
                    let pp = apply_params();
                    let patch = Patch::Apply(&body);
                    with_retries(|| cells.patch(cell, &pp, &patch)).await?;
                }
                // A merge patch only removes the fields it sets to null (`CellStatus` skips `None`):
                // a previous weight left behind would be taken by the next drain as the one to restore.
                let status = json!({"status": {"state": CellState::Active, "previousWeight": null, "incident": null}});
                {
                    let pp = PatchParams::default();
                    let patch = Patch::Merge(&status);
                    with_retries(|| cells.patch_status(cell, &pp, &patch)).await?;
                }
                let node_api: Api<Node> = Api::all(self.client.clone());
                for n in nodes {
                    let body = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}, "spec": {"unschedulable": false}});
                    let pp = apply_params();
                    let patch = Patch::Apply(&body);
                    with_retries(|| node_api.patch(n, &pp, &patch)).await?;
                }
                let moved = self.set_route_weights(routes).await?;
                Ok(format!(
                    "cell {cell}: weight back to {weight}, Active, {} node(s) schedulable, {moved} route backend(s) restored",
                    nodes.len()
                ))
            }
            Undo::ConfigMapKey {
                configmap,
                key,
                previous,
                created,
            } => {
                let mut removed = 0;
                for (ns, value) in previous {
                    let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
                    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": configmap}, "data": {key: value}});
                    let pp = PatchParams::default();
                    let patch = Patch::Merge(&body);
                    let after = with_retries(|| api.patch(configmap, &pp, &patch)).await?;
                    let empty = after.data.as_ref().is_none_or(|d| d.is_empty()) && after.binary_data.as_ref().is_none_or(|d| d.is_empty());
                    if value.is_none() && created.contains(ns) && empty {
                        // Only the ConfigMap as just read back: a write by anyone else meanwhile
                        // changes its resourceVersion, and then it stays.
                        let dp = DeleteParams {
                            preconditions: Some(Preconditions {
                                resource_version: after.metadata.resource_version.clone(),
                                uid: after.metadata.uid.clone(),
                            }),
                            ..DeleteParams::default()
                        };
                        match timed(CALL_TIMEOUT, "an actuator call", api.delete(configmap, &dp)).await {
                            Ok(_) => removed += 1,
                            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                let mut what = format!("{configmap}: {key} restored in {} namespace(s)", previous.len());
                if removed > 0 {
                    what.push_str(&format!("; deleted in {removed} where cellwarden had created it"));
                }
                Ok(what)
            }
        }
    }

    /// Sets backend weights of HTTPRoutes: `namespace/route` → rule → backend → weight (`None`
    /// removes the weight, which means 1). Returns how many backends changed.
    async fn set_route_weights(&self, routes: &BTreeMap<String, Vec<Vec<Option<i64>>>>) -> Result<usize, ActuateError> {
        let mut changed = 0;
        for (key, weights) in routes {
            let Some((ns, name)) = key.split_once('/') else { continue };
            let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &httproute_resource());
            // Read, change, write with the resourceVersion read: a concurrent edit of the route
            // (a deploy, a person) makes the write fail with 409 and it is read again.
            let mut attempt = 0;
            loop {
                attempt += 1;
                let Some(mut route) = with_retries(|| api.get_opt(name)).await? else {
                    break;
                };
                let mut n = 0;
                let Some(rules) = route.data.pointer_mut("/spec/rules").and_then(|r| r.as_array_mut()) else {
                    break;
                };
                for (rule, ws) in rules.iter_mut().zip(weights) {
                    let Some(refs) = rule.get_mut("backendRefs").and_then(|b| b.as_array_mut()) else {
                        continue;
                    };
                    for (r, w) in refs.iter_mut().zip(ws) {
                        if let Some(obj) = r.as_object_mut() {
                            match w {
                                Some(w) => obj.insert("weight".into(), json!(w)),
                                None => obj.remove("weight"),
                            };
                            n += 1;
                        }
                    }
                }
                let body = json!({"metadata": {"resourceVersion": route.metadata.resource_version}, "spec": {"rules": route.data["spec"]["rules"].clone()}});
                match timed(
                    CALL_TIMEOUT,
                    "an actuator call",
                    api.patch(name, &PatchParams::default(), &Patch::Merge(&body)),
                )
                .await
                {
                    Ok(_) => {
                        changed += n;
                        break;
                    }
                    Err(e) if retryable(&e) && attempt < 4 => {
                        tracing::warn!(error = %e, route = %key, "Retrying an HTTPRoute change on fresh state.");
                        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(changed)
    }

    /// Drains the cell's namespace out of every HTTPRoute: its backends' weights to 0. Returns
    /// the weights before (for [`Undo::Cell`]); no Gateway API in the cluster means no routes.
    async fn drain_routes(&self, cell_ns: &str) -> Result<BTreeMap<String, Vec<Vec<Option<i64>>>>, ActuateError> {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &httproute_resource());
        let lp = ListParams::default();
        let list = match with_retries(|| api.list(&lp)).await {
            Ok(l) => l,
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(BTreeMap::new()),
            Err(e) => return Err(e.into()),
        };
        let mut before = BTreeMap::new();
        let mut after = BTreeMap::new();
        for route in &list.items {
            let ns = route.metadata.namespace.clone().unwrap_or_default();
            let name = route.metadata.name.clone().unwrap_or_default();
            let Some(rules) = route.data.pointer("/spec/rules").and_then(|r| r.as_array()) else {
                continue;
            };
            let mut was = Vec::new();
            let mut now = Vec::new();
            let mut touches = false;
            for rule in rules {
                let refs = rule.get("backendRefs").and_then(|b| b.as_array()).cloned().unwrap_or_default();
                let mut w0 = Vec::new();
                let mut w1 = Vec::new();
                for r in &refs {
                    let w = r.get("weight").and_then(|w| w.as_i64());
                    let backend_ns = r.get("namespace").and_then(|n| n.as_str()).unwrap_or(&ns);
                    w0.push(w);
                    if backend_ns == cell_ns && w != Some(0) {
                        touches = true;
                        w1.push(Some(0));
                    } else {
                        w1.push(w);
                    }
                }
                was.push(w0);
                now.push(w1);
            }
            if touches {
                before.insert(format!("{ns}/{name}"), was);
                after.insert(format!("{ns}/{name}"), now);
            }
        }
        self.set_route_weights(&after).await?;
        Ok(before)
    }

    async fn scale(&self, action: &Action) -> Result<Applied, ActuateError> {
        let (ns, name) = self.deployment_of(&action.target)?;
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let current = with_retries(|| api.get_opt(name))
            .await?
            .ok_or_else(|| ActuateError::NotFound(format!("deployment {ns}/{name}")))?;
        let now = current.spec.replicas.unwrap_or(1);
        let delta: i32 = action
            .params
            .iter()
            .find(|(k, _)| k == "replicas")
            .and_then(|(_, v)| v.trim_start_matches('+').parse().ok())
            .unwrap_or(1);
        let next = (now + delta).max(0);
        let mut body = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {"replicas": next}});
        keep_owned(&serde_json::to_value(&current).unwrap_or_default(), &mut body);
        {
            let pp = apply_params();
            let patch = Patch::Apply(&body);
            with_retries(|| api.patch(name, &pp, &patch)).await?;
        }
        Ok(Applied {
            what: format!("deployment {ns}/{name}: replicas {now} → {next}"),
            undo: Some(Undo::Replicas {
                namespace: ns.into(),
                name: name.into(),
                replicas: now,
            }),
            changed: next != now,
        })
    }

    async fn restart(&self, action: &Action, now: &str) -> Result<String, ActuateError> {
        let (ns, name) = self.deployment_of(&action.target)?;
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let Some(current) = with_retries(|| api.get_opt(name)).await? else {
            return Err(ActuateError::NotFound(format!("deployment {ns}/{name}")));
        };
        let mut body = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}});
        keep_owned(&serde_json::to_value(&current).unwrap_or_default(), &mut body);
        {
            let pp = apply_params();
            let patch = Patch::Apply(&body);
            with_retries(|| api.patch(name, &pp, &patch)).await?;
        }
        Ok(format!("deployment {ns}/{name}: rolling restart at {now}"))
    }

    /// Puts the Deployment's pod template back to the one of its previous revision (or of the
    /// revision the action's `revision` parameter names).
    async fn rollback(&self, action: &Action) -> Result<Applied, ActuateError> {
        let (ns, name) = self.deployment_of(&action.target)?;
        let wanted: Option<u64> = match action.params.iter().find(|(k, _)| k == "revision") {
            Some((_, v)) => Some(
                v.parse()
                    .map_err(|_| ActuateError::BadTarget(action.target.clone(), format!("revision {v:?} is not a number")))?,
            ),
            None => None,
        };
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let current = with_retries(|| api.get_opt(name))
            .await?
            .ok_or_else(|| ActuateError::NotFound(format!("deployment {ns}/{name}")))?;
        let selector = current
            .spec
            .selector
            .match_labels
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        let sets: Api<ReplicaSet> = Api::namespaced(self.client.clone(), ns);
        let lp = ListParams::default().labels(&selector);
        let list = with_retries(|| sets.list(&lp)).await?;
        let revisions = owned_revisions(&current, &list.items);
        let now_at = revision_of(&current.metadata)
            .or_else(|| revisions.last().map(|(r, _)| *r))
            .unwrap_or(0);
        let target = match wanted {
            Some(w) => revisions.iter().find(|(r, _)| *r == w),
            None => revisions.iter().rev().find(|(r, _)| *r < now_at),
        }
        .ok_or_else(|| {
            ActuateError::NotFound(match wanted {
                Some(w) => format!("revision {w} of deployment {ns}/{name} (no ReplicaSet it owns has it)"),
                None => format!("a revision of deployment {ns}/{name} before {now_at}"),
            })
        })?;
        let (to, rs) = (target.0, target.1);
        let wanted_template = rs
            .spec
            .template
            .as_ref()
            .map(|t| serde_json::to_value(t).unwrap_or_default())
            .ok_or_else(|| ActuateError::NotFound(format!("the pod template of revision {to} of deployment {ns}/{name}")))?;
        let mut wanted_template = wanted_template;
        if let Some(labels) = wanted_template.pointer_mut("/metadata/labels").and_then(|l| l.as_object_mut()) {
            labels.remove(verify::POD_TEMPLATE_HASH);
        }
        let template_now = serde_json::to_value(&current.spec.template).unwrap_or_default();
        if verify::template_matches(&template_now, &wanted_template) {
            return Ok(Applied {
                what: format!("deployment {ns}/{name}: pod template already that of revision {to}"),
                undo: None,
                changed: false,
            });
        }
        let body = json!({"spec": {"template": merge_patch_to(&template_now, &wanted_template)}});
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        let patch = Patch::Merge(&body);
        let after = with_retries(|| api.patch(name, &pp, &patch)).await?;
        let template_after = serde_json::to_value(&after.spec.template).unwrap_or_default();
        if !verify::template_matches(&template_after, &wanted_template) {
            return Err(ActuateError::NotApplied(format!(
                "deployment {ns}/{name}: the pod template read back is not that of revision {to}"
            )));
        }
        Ok(Applied {
            what: format!("deployment {ns}/{name}: pod template back to revision {to} (was revision {now_at})"),
            undo: None,
            changed: true,
        })
    }

    async fn drain(&self, cell: &str, cordon: bool) -> Result<Applied, ActuateError> {
        let cells: Api<Cell> = Api::all(self.client.clone());
        let current = with_retries(|| cells.get_opt(cell))
            .await?
            .ok_or_else(|| ActuateError::NotFound(format!("cell {cell}")))?;
        // The weight to restore: the one kept when the cell was drained, if it still is; an
        // Active cell's own weight otherwise (a leftover previousWeight is not trusted).
        let previous = current
            .status
            .as_ref()
            .filter(|s| s.state != CellState::Active)
            .and_then(|s| s.previous_weight)
            .unwrap_or(current.spec.weight);
        let was = current.status.as_ref().map(|s| s.state).unwrap_or_default();
        if !cordon && was != CellState::Active && current.spec.weight == 0 {
            // Draining an already drained or cordoned cell changes nothing (and must not undo a cordon).
            return Ok(Applied {
                what: format!("cell {cell}: already {was:?}, weight 0"),
                undo: None,
                changed: false,
            });
        }
        let body = json!({"apiVersion": "cellwarden.io/v1alpha1", "kind": "Cell", "metadata": {"name": cell}, "spec": {"weight": 0}});
        {
            let pp = apply_params();
            let patch = Patch::Apply(&body);
            with_retries(|| cells.patch(cell, &pp, &patch)).await?;
        }
        let state = if cordon { CellState::Cordoned } else { CellState::Draining };
        let status = json!({"status": CellStatus { state, previous_weight: Some(previous), incident: None }});
        {
            let pp = PatchParams::default();
            let patch = Patch::Merge(&status);
            with_retries(|| cells.patch_status(cell, &pp, &patch)).await?;
        }
        let routes = self.drain_routes(&current.spec.namespace).await?;
        let mut undo = Undo::Cell {
            cell: cell.into(),
            weight: previous,
            nodes: vec![],
            routes,
        };
        let moved = match &undo {
            Undo::Cell { routes, .. } => routes.len(),
            _ => 0,
        };
        if !cordon {
            return Ok(Applied {
                what: format!(
                    "cell {cell}: weight {} → 0 (draining), {moved} HTTPRoute(s) moved",
                    current.spec.weight
                ),
                undo: Some(undo),
                changed: true,
            });
        }
        let nodes: Api<Node> = Api::all(self.client.clone());
        let selector = if current.spec.node_selector.is_empty() {
            format!("{NODE_CELL_LABEL}={cell}")
        } else {
            current
                .spec
                .node_selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let lp = ListParams::default().labels(&selector);
        let list = with_retries(|| nodes.list(&lp)).await?;
        for n in &list.items {
            let name = n.metadata.name.clone().unwrap_or_default();
            let body = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {"unschedulable": true}});
            {
                let pp = apply_params();
                let patch = Patch::Apply(&body);
                with_retries(|| nodes.patch(&name, &pp, &patch)).await?;
            }
        }
        if let Undo::Cell { nodes, .. } = &mut undo {
            *nodes = list
                .items
                .iter()
                .filter(|n| !n.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false))
                .filter_map(|n| n.metadata.name.clone())
                .collect();
        }
        Ok(Applied {
            what: format!(
                "cell {cell}: {}, cordoned, {} node(s) unschedulable, {moved} HTTPRoute(s) moved",
                if current.spec.weight == 0 {
                    format!("already at weight 0 ({previous} before the drain)")
                } else {
                    format!("weight {} → 0", current.spec.weight)
                },
                list.items.len()
            ),
            undo: Some(undo),
            changed: true,
        })
    }

    async fn flag(&self, configmap: &str, key: &str, value: &str) -> Result<Applied, ActuateError> {
        let mut previous = BTreeMap::new();
        let mut created = Vec::new();
        for ns in &self.cell_namespaces {
            let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
            let current = with_retries(|| api.get_opt(configmap)).await?;
            if current.is_none() {
                created.push(ns.clone());
            }
            let was = current.as_ref().and_then(|cm| cm.data.as_ref().and_then(|d| d.get(key).cloned()));
            previous.insert(ns.clone(), was);
            let mut body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": configmap}, "data": {key: value}});
            if let Some(cm) = &current {
                keep_owned(&serde_json::to_value(cm).unwrap_or_default(), &mut body);
            }
            {
                let pp = apply_params();
                let patch = Patch::Apply(&body);
                with_retries(|| api.patch(configmap, &pp, &patch)).await?;
            }
        }
        Ok(Applied {
            what: format!("{configmap}: {key}={value} in {} cell namespace(s)", self.cell_namespaces.len()),
            undo: Some(Undo::ConfigMapKey {
                configmap: configmap.into(),
                key: key.into(),
                previous,
                created,
            }),
            changed: true,
        })
    }
}

/// The revisions of every Deployment whose ReplicaSets are listed (cluster-wide), by
/// `<namespace>/<deployment>` — a cell's workloads live in the namespace named like the cell, so
/// this is the `cell/service` the rules name — oldest first, each with its ReplicaSet's creation
/// time (when it rolled out). What the rollback rule reads of the cluster.
pub async fn revisions(client: &Client) -> Result<Vec<(String, Vec<cellwarden_models::topology::RevisionInfo>)>, ActuateError> {
    let sets: Api<ReplicaSet> = Api::all(client.clone());
    let lp = ListParams::default();
    let list = with_retries(|| sets.list(&lp)).await?;
    Ok(revisions_of(&list.items))
}

/// [`revisions`] of a list of ReplicaSets (pure): grouped by the Deployment owning each.
pub fn revisions_of(sets: &[ReplicaSet]) -> Vec<(String, Vec<cellwarden_models::topology::RevisionInfo>)> {
    let mut by: BTreeMap<String, Vec<cellwarden_models::topology::RevisionInfo>> = BTreeMap::new();
    for rs in sets {
        let owner = rs
            .metadata
            .owner_references
            .as_ref()
            .and_then(|refs| refs.iter().find(|o| o.kind == "Deployment"));
        let (Some(owner), Some(ns), Some(revision), Some(created)) = (
            owner,
            rs.metadata.namespace.as_deref(),
            revision_of(&rs.metadata),
            rs.metadata.creation_timestamp.as_ref(),
        ) else {
            continue;
        };
        let Ok(at) = cellwarden_models::Timestamp::parse_rfc3339(&created.0.to_string()) else {
            continue;
        };
        by.entry(format!("{ns}/{}", owner.name))
            .or_default()
            .push(cellwarden_models::topology::RevisionInfo { revision, at });
    }
    by.into_iter()
        .map(|(k, mut v)| {
            v.sort_by_key(|r| r.revision);
            (k, v)
        })
        .collect()
}

/// The `deployment.kubernetes.io/revision` of an object, when it has a number there.
pub fn revision_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<u64> {
    meta.annotations.as_ref()?.get(REVISION_ANNOTATION)?.parse().ok()
}

/// The ReplicaSets of `sets` that `deployment` owns (an owner reference with its uid, or by
/// kind and name where it has no uid), with their revisions, oldest first.
pub fn owned_revisions<'a>(deployment: &Deployment, sets: &'a [ReplicaSet]) -> Vec<(u64, &'a ReplicaSet)> {
    let uid = deployment.metadata.uid.as_deref();
    let name = deployment.metadata.name.as_deref();
    let mut out: Vec<(u64, &ReplicaSet)> = sets
        .iter()
        .filter(|rs| {
            rs.metadata.owner_references.as_ref().is_some_and(|refs| {
                refs.iter().any(|o| {
                    o.kind == "Deployment"
                        && match uid {
                            Some(u) => o.uid == u,
                            None => Some(o.name.as_str()) == name,
                        }
                })
            })
        })
        .filter_map(|rs| Some((revision_of(&rs.metadata)?, rs)))
        .collect();
    out.sort_by_key(|(r, _)| *r);
    out
}

/// A JSON merge patch (RFC 7386) that turns `current` into `wanted`: what `wanted` sets, and
/// `null` for every key of `current` it lacks (a merge patch alone would leave those, e.g. an
/// annotation or an env var the newer revision added). Lists are replaced whole.
pub fn merge_patch_to(current: &serde_json::Value, wanted: &serde_json::Value) -> serde_json::Value {
    match (current.as_object(), wanted.as_object()) {
        (Some(c), Some(w)) => {
            let mut out = serde_json::Map::new();
            for (k, v) in w {
                let sub = match c.get(k) {
                    Some(cv) => merge_patch_to(cv, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), sub);
            }
            for k in c.keys().filter(|k| !w.contains_key(*k)) {
                out.insert(k.clone(), serde_json::Value::Null);
            }
            serde_json::Value::Object(out)
        }
        _ => wanted.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_are_read_from_the_replicasets_a_deployment_owns() {
        let rs = |name: &str, owner: Option<&str>, rev: &str, created: &str| -> ReplicaSet {
            let refs = owner.map(|o| json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": o, "uid": "u"}]));
            serde_json::from_value(
                json!({"metadata": {"name": name, "namespace": "cell-2", "creationTimestamp": created,
                "annotations": {REVISION_ANNOTATION: rev}, "ownerReferences": refs.unwrap_or(json!([]))}, "spec": {"selector": {}}}),
            )
            .unwrap()
        };
        let sets = [
            rs("ledger-b", Some("ledger"), "2", "2026-03-02T09:37:00Z"),
            rs("ledger-a", Some("ledger"), "1", "2026-03-01T09:00:00Z"),
            rs("orphan", None, "4", "2026-03-02T09:00:00Z"),
            rs("bad", Some("ledger"), "two", "2026-03-02T09:00:00Z"),
        ];
        let got = revisions_of(&sets);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "cell-2/ledger");
        let revs: Vec<(u64, String)> = got[0].1.iter().map(|r| (r.revision, r.at.to_rfc3339())).collect();
        assert_eq!(
            revs,
            vec![(1, "2026-03-01T09:00:00Z".to_string()), (2, "2026-03-02T09:37:00Z".to_string())]
        );
    }

    #[test]
    fn a_merge_patch_to_the_old_template_removes_what_the_new_one_added() {
        let new = json!({"metadata": {"labels": {"app": "ledger"}, "annotations": {"a": "1", RESTARTED_AT: "t"}}, "spec": {"containers": [{"name": "ledger", "image": "ledger:2", "env": [{"name": "LEAKY", "value": "1"}]}]}});
        let old = json!({"metadata": {"labels": {"app": "ledger"}, "annotations": {"a": "1"}}, "spec": {"containers": [{"name": "ledger", "image": "ledger:1"}]}});
        let patch = merge_patch_to(&new, &old);
        assert_eq!(patch["metadata"]["annotations"][RESTARTED_AT], serde_json::Value::Null);
        assert_eq!(patch["spec"]["containers"], old["spec"]["containers"], "lists are replaced whole");
        // Applied by RFC 7386 rules, it yields the old template.
        fn apply(target: &mut serde_json::Value, patch: &serde_json::Value) {
            match (target.as_object_mut(), patch.as_object()) {
                (Some(t), Some(p)) => {
                    for (k, v) in p {
                        if v.is_null() {
                            t.remove(k);
                        } else {
                            apply(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                        }
                    }
                }
                _ => *target = patch.clone(),
            }
        }
        let mut t = new.clone();
        apply(&mut t, &patch);
        assert_eq!(t, old);
    }

    #[test]
    fn an_apply_keeps_the_fields_cellwarden_already_owns() {
        let current = json!({
            "metadata": {"name": "ledger", "managedFields": [
                {"manager": "cellwarden", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
                {"manager": "helm", "operation": "Apply", "fieldsV1": {"f:spec": {"f:paused": {}}}}
            ]},
            "spec": {"replicas": 4, "paused": false, "template": {"metadata": {"annotations": {"a": "b"}}}}
        });
        let mut body = json!({"metadata": {"name": "ledger"}, "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: "t"}}}}});
        keep_owned(&current, &mut body);
        assert_eq!(body["spec"]["replicas"], 4, "the replicas a scale set survive a restart");
        assert!(body["spec"].get("paused").is_none(), "another manager's field is not taken over");
        assert!(body["spec"]["template"]["metadata"]["annotations"].get("a").is_none());
        // A field the body sets itself wins over the current value.
        let mut scale = json!({"metadata": {"name": "ledger"}, "spec": {"replicas": 5}});
        keep_owned(&current, &mut scale);
        assert_eq!(scale["spec"]["replicas"], 5);
        // Feature flags: the key set earlier stays when another is applied.
        let cm = json!({"metadata": {"managedFields": [{"manager": "cellwarden", "operation": "Apply", "fieldsV1": {"f:data": {"f:loyalty": {}}}}]}, "data": {"loyalty": "off", "other": "on"}});
        let mut flag = json!({"data": {"cashback": "off"}});
        keep_owned(&cm, &mut flag);
        assert_eq!(flag["data"], json!({"cashback": "off", "loyalty": "off"}));
    }
}
