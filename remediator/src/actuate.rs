//! Actuators: carry out a decided plan through the Kubernetes API with server-side apply (field
//! manager `cellwarden`), idempotently — applying the same action twice leaves the same objects.
//! Each call is retried with backoff on 409/429/5xx (kube-rs already waits out Retry-After).
//!
//! What each action writes (DESIGN.md's "objects acted on"):
//! - `scale` — the Deployment's `spec.replicas` (+1 by default);
//! - `restart_pods` — the pod template annotation `cellwarden.io/restartedAt` (a rolling restart,
//!   so pods restart in the Deployment's own staggered batches);
//! - `reroute` — the `Cell`'s `spec.weight` to 0 (status `Draining`, the previous weight kept);
//! - `cordon` — as reroute, then status `Cordoned` and the cell's nodes `spec.unschedulable`;
//! - `failover_provider` — `cellwarden-provider-weights` in each cell namespace: the provider to "0";
//! - `circuit_break` — `cellwarden-feature-flags` in each cell namespace: the feature to "off".

use crate::crd::{Cell, CellState, CellStatus};
use cellwarden_models::{Action, ActionKind};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::Client;
use serde_json::json;
use std::time::Duration;

pub const FIELD_MANAGER: &str = "cellwarden";
pub const PROVIDER_WEIGHTS: &str = "cellwarden-provider-weights";
pub const FEATURE_FLAGS: &str = "cellwarden-feature-flags";
pub const RESTARTED_AT: &str = "cellwarden.io/restartedAt";
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
}

impl ActuateError {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ActuateError::BadTarget(..) => "bad_target",
            ActuateError::NotFound(_) => "not_found",
            ActuateError::Kube(_) => "api",
        }
    }
}

fn retryable(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 || s.code == 429 || s.code >= 500)
}

/// Runs `f` up to 4 times, backing off 100 ms, 200 ms, 400 ms on 409/429/5xx.
async fn with_retries<T, F, Fut>(mut f: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(100);
    for _ in 0..3 {
        match f().await {
            Err(e) if retryable(&e) => {
                tracing::warn!(error = %e, delay_ms = delay.as_millis() as u64, "Retrying a refused API call.");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            other => return other,
        }
    }
    f().await
}

/// Carries out actions against one cluster.
pub struct Actuator {
    client: Client,
    /// The namespaces of the cells (a cell's workloads live in the namespace named like the cell
    /// unless its `Cell` says otherwise).
    pub cell_namespaces: Vec<String>,
}

fn apply_params() -> PatchParams {
    // Force: cellwarden owns the fields it changes once it acts (a Helm release set replicas first).
    PatchParams::apply(FIELD_MANAGER).force()
}

impl Actuator {
    pub fn new(client: Client, cell_namespaces: Vec<String>) -> Actuator {
        Actuator { client, cell_namespaces }
    }

    /// Carries out `action` at `now` (RFC 3339); returns what changed.
    pub async fn apply(&self, action: &Action, now: &str) -> Result<String, ActuateError> {
        match action.kind {
            ActionKind::Notify => Ok("nothing to change (notification)".into()),
            ActionKind::Scale => self.scale(action).await,
            ActionKind::RestartPods => self.restart(action, now).await,
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
        }
    }

    fn deployment_of<'a>(&self, target: &'a str) -> Result<(&'a str, &'a str), ActuateError> {
        target
            .split_once('/')
            .ok_or_else(|| ActuateError::BadTarget(target.into(), "expected <cell>/<service>".into()))
    }

    async fn scale(&self, action: &Action) -> Result<String, ActuateError> {
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
        let body = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {"replicas": next}});
        {
            let pp = apply_params();
            let patch = Patch::Apply(&body);
            with_retries(|| api.patch(name, &pp, &patch)).await?;
        }
        Ok(format!("deployment {ns}/{name}: replicas {now} → {next}"))
    }

    async fn restart(&self, action: &Action, now: &str) -> Result<String, ActuateError> {
        let (ns, name) = self.deployment_of(&action.target)?;
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        if with_retries(|| api.get_opt(name)).await?.is_none() {
            return Err(ActuateError::NotFound(format!("deployment {ns}/{name}")));
        }
        let body = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}});
        {
            let pp = apply_params();
            let patch = Patch::Apply(&body);
            with_retries(|| api.patch(name, &pp, &patch)).await?;
        }
        Ok(format!("deployment {ns}/{name}: rolling restart at {now}"))
    }

    async fn drain(&self, cell: &str, cordon: bool) -> Result<String, ActuateError> {
        let cells: Api<Cell> = Api::all(self.client.clone());
        let current = with_retries(|| cells.get_opt(cell))
            .await?
            .ok_or_else(|| ActuateError::NotFound(format!("cell {cell}")))?;
        let previous = current
            .status
            .as_ref()
            .and_then(|s| s.previous_weight)
            .unwrap_or(current.spec.weight);
        let was = current.status.as_ref().map(|s| s.state).unwrap_or_default();
        if !cordon && was != CellState::Active && current.spec.weight == 0 {
            // Draining an already drained or cordoned cell changes nothing (and must not undo a cordon).
            return Ok(format!("cell {cell}: already {was:?}, weight 0"));
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
        if !cordon {
            return Ok(format!("cell {cell}: weight {} → 0 (draining)", current.spec.weight));
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
        Ok(format!(
            "cell {cell}: weight {} → 0, cordoned, {} node(s) unschedulable",
            current.spec.weight,
            list.items.len()
        ))
    }

    async fn flag(&self, configmap: &str, key: &str, value: &str) -> Result<String, ActuateError> {
        for ns in &self.cell_namespaces {
            let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
            let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": configmap}, "data": {key: value}});
            {
                let pp = apply_params();
                let patch = Patch::Apply(&body);
                with_retries(|| api.patch(configmap, &pp, &patch)).await?;
            }
        }
        Ok(format!(
            "{configmap}: {key}={value} in {} cell namespace(s)",
            self.cell_namespaces.len()
        ))
    }
}
