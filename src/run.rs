//! `cellwarden run`: the daemon. It reads its typed config, checks the cluster has the CRDs
//! (failing fast with an install hint), serves `/healthz`, `/readyz` and `/metrics`, and drives
//! the pipeline from its source; every decision becomes an `Incident` object, a Kubernetes Event
//! and a hash-chained audit line on stdout, and in `act` mode the allowed actions are carried out
//! through the API.
//!
//! Sources: `simulator:<scenario>` (the simulated wallet reads the objects the operator writes —
//! Cell weights, Deployment replicas, restart annotations, provider weights, feature flags — so
//! the loop closes through the API), `fixture:<dir>` (a recording, replayed at `clock_speed_x`)
//! and `live` (the collector's receivers and scrapers: not yet available, refused with a clear
//! error).

use crate::pipeline::{self, Pipeline};
use anyhow::{bail, Context, Result};
use cellwarden_models::plan::Plan;
use cellwarden_models::{ActionKind, Incident as ModelIncident, Mode, Timestamp};
use cellwarden_remediator::actuate::{Actuator, FEATURE_FLAGS, PROVIDER_WEIGHTS, RESTARTED_AT};
use cellwarden_remediator::audit::AuditLog;
use cellwarden_remediator::crd::{
    ActionRecord, Cell, CellSpec, Incident, IncidentSpec, IncidentStatus, RemediationPolicy, RootCauseCandidate, TimelineItem,
};
use cellwarden_remediator::policy::ConfigLimits;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The daemon's configuration (`cellwarden.yaml`). Unknown keys are an error: a typo must not
/// silently change what cellwarden does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where telemetry comes from: `live`, `fixture:<dir>` or `simulator:<scenario>`.
    pub source: String,
    /// `observe`, `dry-run` or `act`. The more restrictive of this and the RemediationPolicy wins.
    pub mode: String,
    /// Stop every action while true (detection and reports go on).
    pub paused: bool,
    /// The namespace of cellwarden's own objects: Incidents, RemediationPolicies, the Lease.
    pub namespace: String,
    /// Listener of `/metrics`, `/healthz` and `/readyz`.
    pub admin_listen: String,
    /// Listener of the push receivers (OTLP, remote_write, Zipkin, Alertmanager); live source only.
    pub receivers_listen: String,
    /// Simulated seconds per real second, for the fixture and simulator sources.
    pub clock_speed_x: f64,
    /// Cells this instance handles (a shard); empty for all.
    pub cells: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            source: "live".into(),
            mode: "dry-run".into(),
            paused: false,
            namespace: "cellwarden".into(),
            admin_listen: "0.0.0.0:8081".into(),
            receivers_listen: "0.0.0.0:4318".into(),
            clock_speed_x: 1.0,
            cells: vec![],
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config {}", path.display()))?;
        let cfg: Config = serde_yaml_ng::from_str(&text).with_context(|| format!("{} is not a valid cellwarden config", path.display()))?;
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<()> {
        if !matches!(self.mode.as_str(), "observe" | "dry-run" | "act") {
            bail!("mode must be observe, dry-run or act, not {:?}", self.mode);
        }
        if !(self.clock_speed_x > 0.0 && self.clock_speed_x.is_finite()) {
            bail!("clock_speed_x must be a positive number");
        }
        Ok(())
    }

    pub fn limits(&self) -> ConfigLimits {
        let mode = match self.mode.as_str() {
            "act" => Mode::Act,
            "observe" => Mode::Observe,
            _ => Mode::DryRun,
        };
        ConfigLimits { mode, paused: self.paused }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    kind: String,
    outcome: String,
}

/// The daemon's own metrics.
struct Metrics {
    registry: Registry,
    incidents: Counter,
    steps: Counter,
    actions: Family<ActionLabels, Counter>,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("cellwarden");
        let incidents = Counter::default();
        let steps = Counter::default();
        let actions = Family::<ActionLabels, Counter>::default();
        registry.register("incidents_opened", "Incidents opened", incidents.clone());
        registry.register("pipeline_steps", "Pipeline steps run", steps.clone());
        registry.register(
            "actions",
            "Actions by kind and outcome (done, failed, refused, awaiting_approval, planned)",
            actions.clone(),
        );
        Metrics {
            registry,
            incidents,
            steps,
            actions,
        }
    }

    fn action(&self, kind: ActionKind, outcome: &str) {
        self.actions
            .get_or_create(&ActionLabels {
                kind: kind.as_str().into(),
                outcome: outcome.into(),
            })
            .inc();
    }
}

async fn admin_server(listen: String, ready: Arc<AtomicBool>, metrics: Arc<Metrics>) -> Result<()> {
    use axum::routing::get;
    let r1 = ready.clone();
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = r1.clone();
                async move {
                    if ready.load(Ordering::SeqCst) {
                        (axum::http::StatusCode::OK, "ready")
                    } else {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "starting")
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move {
                    let mut text = String::new();
                    let _ = prometheus_client::encoding::text::encode(&mut text, &m.registry);
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        text,
                    )
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(listen = %listen, "Admin endpoints are up.");
    axum::serve(listener, app).await?;
    Ok(())
}

/// Everything one run needs to tell people and act.
struct Operator {
    client: Client,
    namespace: String,
    recorder: Recorder,
    audit: AuditLog<std::io::Stdout>,
    actuator: Actuator,
    metrics: Arc<Metrics>,
    mode: Mode,
    // Actions allowed but waiting for approval, by incident.
    waiting: Vec<(String, cellwarden_models::Action)>,
}

impl Operator {
    fn incident_ref(&self, name: &str) -> ObjectReference {
        let mut r = Incident::object_ref(
            &Incident::new(
                name,
                IncidentSpec {
                    opened_at: String::new(),
                    class: String::new(),
                    cells: vec![],
                },
            ),
            &(),
        );
        r.namespace = Some(self.namespace.clone());
        r
    }

    async fn event(&self, incident: &str, type_: EventType, reason: &str, action: &str, note: String) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &self.incident_ref(incident)).await {
            tracing::warn!(error = %e, incident, "Could not publish an Event.");
        }
    }

    fn audit(&mut self, at: Timestamp, event: &str, fields: serde_json::Value) {
        if let Err(e) = self.audit.record(&at.to_rfc3339(), event, fields) {
            tracing::error!(error = %e, "Could not write the audit log.");
        }
    }

    /// Records a new incident and its plan; carries out what the plan allows.
    async fn handle(&mut self, incident: &ModelIncident, plan: &Plan, now: Timestamp) -> Result<()> {
        self.metrics.incidents.inc();
        let name = incident.id.clone();
        let api: Api<Incident> = Api::namespaced(self.client.clone(), &self.namespace);
        let spec = IncidentSpec {
            opened_at: incident.opened_at.to_rfc3339(),
            class: format!("{:?}", incident.class).to_lowercase(),
            cells: incident
                .candidates
                .iter()
                .filter_map(|c| c.entity.cell().map(String::from))
                .collect(),
        };
        let mut obj = Incident::new(&name, spec);
        obj.metadata.namespace = Some(self.namespace.clone());
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e).context("cannot create the Incident"),
        }
        let top = incident
            .candidates
            .first()
            .map(|c| format!("{} ({})", c.entity.name, c.class.as_str()))
            .unwrap_or_else(|| "none".into());
        self.event(
            &name,
            EventType::Warning,
            "IncidentOpened",
            "Detect",
            format!("Incident opened; most likely root cause {top}."),
        )
        .await;
        self.audit(now, "incident_opened", serde_json::json!({"incident": name, "class": format!("{:?}", incident.class), "root_cause": incident.candidates.iter().take(3).map(|c| &c.entity.name).collect::<Vec<_>>()}));
        let mut status = IncidentStatus {
            phase: "Open".into(),
            timeline: vec![TimelineItem {
                at: now.to_rfc3339(),
                kind: "opened".into(),
                text: format!("Opened from {} anomalous series.", incident.anomalies.len()),
            }],
            root_cause: incident
                .candidates
                .iter()
                .map(|c| RootCauseCandidate {
                    entity: c.entity.name.clone(),
                    kind: c.entity.kind.as_str().into(),
                    class: c.class.as_str().into(),
                    score: format!("{:.3}", c.score),
                })
                .collect(),
            ..IncidentStatus::default()
        };
        for r in &plan.refused {
            self.metrics.action(r.action.kind, "refused");
            status.planned.push(ActionRecord {
                kind: r.action.kind.as_str().into(),
                target: r.action.target.clone(),
                at: now.to_rfc3339(),
                state: "refused".into(),
                reason: format!("{}: {}", r.guard, r.reason),
            });
            self.event(
                &name,
                EventType::Normal,
                "ActionRefused",
                r.action.kind.as_str(),
                format!(
                    "{} {} refused by the {} guard: {}",
                    r.action.kind, r.action.target, r.guard, r.reason
                ),
            )
            .await;
            self.audit(now, "action_refused", serde_json::json!({"incident": name, "kind": r.action.kind.as_str(), "target": r.action.target, "guard": r.guard, "reason": r.reason}));
        }
        for a in plan.actions.iter().filter(|a| a.kind != ActionKind::Notify) {
            let state = if self.mode != Mode::Act {
                "planned"
            } else if a.needs_approval {
                self.waiting.push((name.clone(), a.clone()));
                "awaiting-approval"
            } else {
                match self.actuator.apply(a, &now.to_rfc3339()).await {
                    Ok(what) => {
                        status.taken.push(ActionRecord {
                            kind: a.kind.as_str().into(),
                            target: a.target.clone(),
                            at: now.to_rfc3339(),
                            state: "done".into(),
                            reason: what.clone(),
                        });
                        self.event(&name, EventType::Normal, "ActionTaken", a.kind.as_str(), what.clone())
                            .await;
                        self.audit(
                            now,
                            "action_taken",
                            serde_json::json!({"incident": name, "kind": a.kind.as_str(), "target": a.target, "result": what}),
                        );
                        "done"
                    }
                    Err(e) => {
                        status.taken.push(ActionRecord {
                            kind: a.kind.as_str().into(),
                            target: a.target.clone(),
                            at: now.to_rfc3339(),
                            state: "failed".into(),
                            reason: e.to_string(),
                        });
                        self.event(&name, EventType::Warning, "ActionFailed", a.kind.as_str(), e.to_string())
                            .await;
                        self.audit(
                            now,
                            "action_failed",
                            serde_json::json!({"incident": name, "kind": a.kind.as_str(), "target": a.target, "error": e.to_string()}),
                        );
                        "failed"
                    }
                }
            };
            self.metrics.action(a.kind, &state.replace('-', "_"));
            status.planned.push(ActionRecord {
                kind: a.kind.as_str().into(),
                target: a.target.clone(),
                at: now.to_rfc3339(),
                state: state.into(),
                reason: a.reason.clone(),
            });
            if state == "planned" {
                self.audit(
                    now,
                    "action_planned",
                    serde_json::json!({"incident": name, "kind": a.kind.as_str(), "target": a.target, "mode": self.mode.as_str()}),
                );
            } else if state == "awaiting-approval" {
                self.event(
                    &name,
                    EventType::Normal,
                    "ApprovalRequested",
                    a.kind.as_str(),
                    format!("{} {} waits for cellwarden.io/approved-by on this Incident.", a.kind, a.target),
                )
                .await;
                self.audit(
                    now,
                    "approval_requested",
                    serde_json::json!({"incident": name, "kind": a.kind.as_str(), "target": a.target}),
                );
            }
        }
        if !status.taken.is_empty() {
            status.phase = "Mitigating".into();
        }
        let patch = serde_json::json!({"status": status});
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .context("cannot write the Incident status")?;
        Ok(())
    }
}

/// Fails fast when the CRDs are missing, with the way to install them.
async fn check_crds(client: &Client, namespace: &str) -> Result<()> {
    let api: Api<Incident> = Api::namespaced(client.clone(), namespace);
    match api.list(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => bail!("the cellwarden CRDs are not installed in this cluster: install them with `cellwarden crd | kubectl apply -f -` (or the Helm chart) and start again"),
        Err(e) => Err(e).context("cannot reach the Kubernetes API"),
    }
}

/// The policy: the first RemediationPolicy in cellwarden's namespace, else the built-in defaults.
async fn load_policy(client: &Client, namespace: &str) -> Result<cellwarden_remediator::crd::RemediationPolicySpec> {
    let api: Api<RemediationPolicy> = Api::namespaced(client.clone(), namespace);
    let list = api.list(&ListParams::default()).await.context("cannot list RemediationPolicies")?;
    Ok(list
        .items
        .into_iter()
        .next()
        .map(|p| p.spec)
        .unwrap_or_else(pipeline::default_policy))
}

/// Runs the daemon until the source ends (then keeps serving until SIGINT/SIGTERM).
pub async fn run(cfg: Config, kubeconfig: Option<&Path>) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match kubeconfig {
        Some(p) => {
            let kc = kube::config::Kubeconfig::read_from(p).with_context(|| format!("cannot read kubeconfig {}", p.display()))?;
            let conf = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await?;
            Client::try_from(conf)?
        }
        None => Client::try_default()
            .await
            .context("no Kubernetes configuration (in-cluster or KUBECONFIG); pass --kubeconfig")?,
    };
    let ready = Arc::new(AtomicBool::new(false));
    let metrics = Arc::new(Metrics::new());
    let admin = tokio::spawn(admin_server(cfg.admin_listen.clone(), ready.clone(), metrics.clone()));
    check_crds(&client, &cfg.namespace).await?;
    let policy = load_policy(&client, &cfg.namespace).await?;
    let limits = cfg.limits();
    let mode = limits.mode.min(match policy.mode.as_str() {
        "act" => Mode::Act,
        "observe" => Mode::Observe,
        _ => Mode::DryRun,
    });
    tracing::info!(mode = mode.as_str(), source = %cfg.source, "Starting cellwarden.");
    let result = match cfg.source.split_once(':') {
        Some(("simulator", id)) => {
            let scn = cellwarden_simulator::scenario(id, None).with_context(|| format!("no scenario {id:?}"))?;
            let cells: Vec<String> = scn.wallet().cell_names();
            let operator = Operator {
                recorder: Recorder::new(client.clone(), Reporter { controller: "cellwarden".into(), instance: std::env::var("POD_NAME").ok() }),
                audit: AuditLog::new(std::io::stdout()),
                actuator: Actuator::new(client.clone(), cells),
                client: client.clone(),
                namespace: cfg.namespace.clone(),
                metrics: metrics.clone(),
                mode,
                waiting: Vec::new(),
            };
            ready.store(true, Ordering::SeqCst);
            simulate_through_api(&scn, operator, Pipeline::new().with_policy(policy, limits), cfg.clock_speed_x).await
        }
        Some(("fixture", _)) | None if cfg.source != "live" => bail!("source {:?}: the fixture source of the daemon is not built yet; use `cellwarden replay <dir>` or simulator:<scenario>", cfg.source),
        _ => bail!("source {:?}: the live source (scrape, Prometheus query, OTLP and remote_write receivers) arrives with the collector; use simulator:<scenario> for now", cfg.source),
    };
    result?;
    tracing::info!("Source finished; serving admin endpoints until stopped.");
    tokio::select! {
        r = admin => { r??; }
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

/// Reads what the operator (or a person) set in the cluster and applies it to the simulated wallet.
async fn sync_from_api(client: &Client, w: &mut cellwarden_simulator::Wallet, restarts_seen: &mut HashMap<String, String>) -> Result<()> {
    let cells: Api<Cell> = Api::all(client.clone());
    for c in cells.list(&ListParams::default()).await?.items {
        if let Some(name) = c.metadata.name.as_deref() {
            w.set_cell_weight(name, f64::from(c.spec.weight));
        }
    }
    for cell in w.cell_names() {
        let deps: Api<Deployment> = Api::namespaced(client.clone(), &cell);
        for d in deps.list(&ListParams::default()).await?.items {
            let name = d.metadata.name.clone().unwrap_or_default();
            if let Some(r) = d.spec.replicas {
                w.set_replicas(&cell, &name, r.max(0) as usize);
            }
            let restarted = d
                .spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.annotations.as_ref())
                .and_then(|a| a.get(RESTARTED_AT))
                .cloned();
            if let Some(at) = restarted {
                let key = format!("{cell}/{name}");
                if restarts_seen.get(&key) != Some(&at) {
                    restarts_seen.insert(key, at);
                    w.restart_deployment(&cell, &name);
                }
            }
        }
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &cell);
        if let Some(cm) = cms.get_opt(PROVIDER_WEIGHTS).await? {
            for (p, v) in cm.data.unwrap_or_default() {
                if let Ok(x) = v.parse::<f64>() {
                    w.set_provider_weight(&p, x);
                }
            }
        }
        if let Some(cm) = cms.get_opt(FEATURE_FLAGS).await? {
            for (f, v) in cm.data.unwrap_or_default() {
                w.set_feature(&f, v != "off");
            }
        }
    }
    Ok(())
}

async fn simulate_through_api(
    scn: &cellwarden_simulator::Scenario,
    mut op: Operator,
    mut pipeline: Pipeline,
    clock_speed: f64,
) -> Result<()> {
    let mut w = scn.wallet();
    let topology = w.topology();
    let step = std::time::Duration::from_secs_f64(scn.cfg.step_secs as f64 / clock_speed);
    let mut restarts_seen = HashMap::new();
    for _ in 0..scn.steps() {
        let tick = tokio::time::Instant::now();
        if let Err(e) = sync_from_api(&op.client, &mut w, &mut restarts_seen).await {
            tracing::warn!(error = %e, "Could not read the cluster; the simulated wallet keeps its last state.");
        }
        w.step();
        op.metrics.steps.inc();
        let now = w.now();
        let (views, replicas) = crate::simulate::cell_views(&w);
        pipeline.set_cluster(views, replicas);
        let since = now.millis() - 45 * 60 * 1000;
        let families = crate::simulate::recent(w.recorder.families(), since);
        let from = w.recorder.spans.partition_point(|s| s.start_ns < since * 1_000_000);
        let prepared = pipeline::prepare_parts(&families, Cow::Borrowed(&w.recorder.spans[from..]), Some(&topology));
        let before = pipeline.incidents().len();
        let plans = pipeline.advance(&prepared, Some(&topology), now, &mut |_, _| {});
        let opened: Vec<ModelIncident> = pipeline.incidents()[before..].iter().map(|r| r.incident.clone()).collect();
        for (incident, plan) in opened.iter().zip(plans.iter()) {
            if let Err(e) = op.handle(incident, plan, now).await {
                tracing::error!(error = %format!("{e:#}"), incident = %incident.id, "Could not record or carry out an incident.");
            }
        }
        approvals(&mut op, now).await;
        let spent = tick.elapsed();
        if spent < step {
            tokio::time::sleep(step - spent).await;
        }
    }
    Ok(())
}

/// Carries out actions whose Incident now carries `cellwarden.io/approved-by`.
async fn approvals(op: &mut Operator, now: Timestamp) {
    if op.waiting.is_empty() {
        return;
    }
    let api: Api<Incident> = Api::namespaced(op.client.clone(), &op.namespace);
    let mut still = Vec::new();
    for (incident, action) in std::mem::take(&mut op.waiting) {
        let approved_by = api
            .get_opt(&incident)
            .await
            .ok()
            .flatten()
            .and_then(|i| i.metadata.annotations.and_then(|a| a.get("cellwarden.io/approved-by").cloned()));
        let Some(by) = approved_by else {
            still.push((incident, action));
            continue;
        };
        let outcome = op.actuator.apply(&action, &now.to_rfc3339()).await;
        let (state, text) = match &outcome {
            Ok(w) => ("done", w.clone()),
            Err(e) => ("failed", e.to_string()),
        };
        op.metrics.action(action.kind, state);
        op.event(
            &incident,
            if outcome.is_ok() { EventType::Normal } else { EventType::Warning },
            if outcome.is_ok() { "ActionTaken" } else { "ActionFailed" },
            action.kind.as_str(),
            format!("approved by {by}: {text}"),
        )
        .await;
        op.audit(now, if outcome.is_ok() { "action_taken" } else { "action_failed" }, serde_json::json!({"incident": incident, "kind": action.kind.as_str(), "target": action.target, "approved_by": by, "result": text}));
    }
    op.waiting = still;
}

/// The objects a simulated wallet expects in the cluster (namespaces, Deployments, Cells), for
/// demos and end-to-end tests against a fake API server.
pub async fn seed_cluster(client: &Client, scenario: &str, namespace: &str) -> Result<()> {
    let scn = cellwarden_simulator::scenario(scenario, None).with_context(|| format!("no scenario {scenario:?}"))?;
    let w = scn.wallet();
    let topo = w.topology();
    let pp = PatchParams::apply("cellwarden-seed");
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    for ns in std::iter::once(namespace.to_string()).chain(w.cell_names()) {
        nss.patch(
            &ns,
            &pp,
            &Patch::Apply(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})),
        )
        .await?;
    }
    let cells: Api<Cell> = Api::all(client.clone());
    for c in &topo.cells {
        let spec = CellSpec {
            namespace: c.name.clone(),
            node_selector: BTreeMap::new(),
            zone: c.zone.clone().unwrap_or_default(),
            weight: c.weight.unwrap_or(0.0).round() as u32,
        };
        cells
            .patch(
                &c.name,
                &pp,
                &Patch::Apply(
                    serde_json::json!({"apiVersion": "cellwarden.io/v1alpha1", "kind": "Cell", "metadata": {"name": c.name}, "spec": spec}),
                ),
            )
            .await?;
    }
    for s in &topo.services {
        for d in &s.deployments {
            let Some(cell) = &d.cell else { continue };
            let deps: Api<Deployment> = Api::namespaced(client.clone(), cell);
            let body = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": s.name, "labels": {"app": s.name}},
                "spec": {"replicas": d.replicas.unwrap_or(1), "selector": {"matchLabels": {"app": s.name}}, "template": {"metadata": {"labels": {"app": s.name}}, "spec": {"containers": [{"name": s.name, "image": format!("wallet/{}:1", s.name)}]}}}});
            deps.patch(&s.name, &pp, &Patch::Apply(body)).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_loads_and_typos_are_refused() {
        let cfg = Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("cellwarden.example.yaml")).unwrap();
        assert_eq!(cfg.source, "simulator:memory-leak");
        assert_eq!(cfg.limits().mode, Mode::DryRun);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, "mdoe: act\n").unwrap();
        let err = format!("{:#}", Config::load(&p).unwrap_err());
        assert!(err.contains("unknown field") && err.contains("mdoe"), "{err}");
        std::fs::write(&p, "mode: yolo\n").unwrap();
        assert!(format!("{:#}", Config::load(&p).unwrap_err()).contains("observe, dry-run or act"));
    }
}
