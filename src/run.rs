//! `cellwarden run`: the daemon. It reads its typed config, checks the cluster has the CRDs
//! (failing fast with an install hint), serves `/healthz`, `/readyz` and `/metrics`, takes part
//! in leader election (a Lease; only the holder writes Incidents and acts), and drives the
//! pipeline from its source. New incidents become `Incident` objects ([`controller::open`]);
//! the Incident controller ([`controller::reconcile`]) carries out, verifies, reverts and
//! escalates from their status, so a restarted or newly elected instance continues where the
//! last one stopped without repeating an action.
//!
//! Sources: `simulator:<scenario>` (the simulated wallet reads the objects the operator writes —
//! Cell weights, Deployment replicas, restart annotations, provider weights, feature flags — so
//! the loop closes through the API), `fixture:<dir>` (a recording, replayed at `clock_speed_x`)
//! and `live` (the collector's receivers and scrapers).

use crate::quiet::Quiet;
use crate::validate;
use anyhow::{bail, Context as _, Result};
use cellwarden_collector::ingest::Ingest;
use cellwarden_collector::limits::IngestLimits;
use cellwarden_collector::listen::{self, ConnectionLimits, ListenerMetrics};
use cellwarden_collector::query::{QueryConfig, QuerySource};
use cellwarden_collector::receive::{self, ReceiverConfig};
use cellwarden_collector::scrape::{ScrapeConfig, Scraper};
use cellwarden_collector::store::WindowConfig;
use cellwarden_detector::signals::rules::{SignalRule, SignalRules};
use cellwarden_engine::drive::{self, Driver};
use cellwarden_engine::pipeline::{self, EngineEvent, JoinedBy, Pipeline};
use cellwarden_engine::policy::{ConfigLimits, PastAction};
use cellwarden_models::plan::Plan;
use cellwarden_models::{Action, ActionKind, Incident as ModelIncident, Mode, Sample, Timestamp};
use cellwarden_remediator::actuate::{restarted_at, Actuator, FEATURE_FLAGS, PROVIDER_WEIGHTS};
use cellwarden_remediator::audit::AuditLog;
use cellwarden_remediator::controller::{self, Context, OperatorMetrics, Telemetry};
use cellwarden_remediator::crd::{ActionState, Cell, CellSpec, Incident, RemediationPolicy};
use cellwarden_remediator::lease::{lease_name, Elector, LeaseConfig};
use cellwarden_remediator::notify::{Notifier, WebhookConfig};
use cellwarden_remediator::pending::{DropReason, Overflow, Pending};
use cellwarden_remediator::retention;
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{watcher, Controller};
use kube::Client;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// How often the leader looks for expired Incidents: a tenth of the TTL (so one is deleted at most
/// 10% late), between 1 s and 10 min (a list of every Incident is not free).
fn retention_sweep_every(ttl_secs: u64) -> Duration {
    Duration::from_secs((ttl_secs / 10).clamp(1, 600))
}

/// The smallest `max_store_bytes` accepted: 1 MiB holds about a thousand series of an hour.
const MIN_STORE_BYTES: usize = 1 << 20;

/// Where the daemon's telemetry comes from, written `live`, `fixture:<dir>` or
/// `simulator:<scenario>` in the config and on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The collector's receivers, scrapers and query source.
    Live,
    /// A recorded fixture directory, replayed at `clock_speed_x`.
    Fixture(PathBuf),
    /// A simulated wallet, closed through the Kubernetes API.
    Simulator(String),
}

impl std::str::FromStr for Source {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.split_once(':') {
            None if s == "live" => Ok(Source::Live),
            Some(("fixture", dir)) if !dir.is_empty() => Ok(Source::Fixture(PathBuf::from(dir))),
            Some(("simulator", id)) if !id.is_empty() => Ok(Source::Simulator(id.to_string())),
            _ => Err(format!("source {s:?}: expected live, fixture:<dir> or simulator:<scenario>")),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Live => f.write_str("live"),
            Source::Fixture(dir) => write!(f, "fixture:{}", dir.display()),
            Source::Simulator(id) => write!(f, "simulator:{id}"),
        }
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// The daemon's configuration (`cellwarden.yaml`). Unknown keys are an error: a typo must not
/// silently change what cellwarden does.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where telemetry comes from: `live`, `fixture:<dir>` or `simulator:<scenario>`.
    pub source: Source,
    /// `observe`, `dry-run` or `act` (anything else is an error). The more restrictive of this
    /// and the RemediationPolicy wins.
    pub mode: Mode,
    /// Stop every action while true (detection and reports go on).
    pub paused: bool,
    /// The namespace of cellwarden's own objects: Incidents, RemediationPolicies, the Lease.
    pub namespace: String,
    /// Listener of `/metrics`, `/healthz` and `/readyz` (an IP address and port).
    pub admin_listen: SocketAddr,
    /// Timeouts and the connection cap of the admin listener.
    pub admin_connections: ConnectionLimits,
    /// The push receivers (OTLP, remote_write, Zipkin, Alertmanager) on one listener: address,
    /// bearer token, TLS, body and rate limits, timeouts. Live source only.
    pub receivers: ReceiverConfig,
    /// Let `mode: act` run the receivers without a bearer token (anyone who reaches them could
    /// then open incidents that act). Off: act mode needs `receivers.bearer_token_file`.
    pub insecure_receivers: bool,
    /// How long start-up may wait for the Kubernetes API (client, CRD check, policy, Cells)
    /// before giving up with an error, seconds.
    pub startup_timeout_secs: u64,
    /// After SIGTERM, the most the daemon takes to stop (finish the step, write what is
    /// pending, release the Lease), seconds; then it exits regardless. Keep it below the pod's
    /// `terminationGracePeriodSeconds`.
    pub shutdown_grace_secs: u64,
    /// Scrape exposition endpoints (static targets, annotated pods); live source only.
    pub scrape: Option<ScrapeConfig>,
    /// Read signals from Prometheus' HTTP API, with backfill on start; live source only.
    pub query: Option<QueryConfig>,
    /// History each series keeps in memory (live source), seconds.
    pub retention_secs: i64,
    /// Most series tracked (live source); samples of further series are dropped and counted.
    pub max_series: usize,
    /// Most bytes the window store holds (keys, label strings and samples as allocated; live
    /// source); samples that would pass it are dropped and counted (`reason="store_bytes"`).
    pub max_store_bytes: usize,
    /// What one series, sample, span or alert may hold (name and label lengths, labels per
    /// series, attributes per span); past them it is refused and counted by reason.
    pub ingest_limits: IngestLimits,
    /// How often the live pipeline looks at the window, seconds.
    pub evaluate_every_secs: u64,
    /// After this long with no signal series (live source), a Warning says nothing feeds
    /// cellwarden and `/readyz` shows it; `cellwarden_signal_series` counts them always, seconds.
    pub no_signal_warn_after_secs: u64,
    /// Simulated seconds per real second, for the fixture and simulator sources.
    pub clock_speed_x: f64,
    /// Cells this instance handles (a shard, with its own Lease); empty for all.
    pub cells: Vec<String>,
    /// How long the Lease holds without renewal; a follower takes over after it, seconds.
    pub lease_duration_secs: u32,
    /// Who this instance is in the Lease; empty: the pod name (`POD_NAME`), else host and pid.
    pub identity: String,
    /// How often pending approvals and verifications are looked at again, milliseconds.
    pub poll_interval_ms: u64,
    /// Webhooks told of new incidents, approval requests and failed actions or verifications.
    pub notify: Vec<WebhookConfig>,
    /// How long a resolved Incident is kept before the leader deletes it, seconds (escalated and
    /// open ones are kept); bounds the history read back on every takeover.
    pub incident_ttl_secs: u64,
    /// Signal rules (metric and labels → signal, read how, in what unit, naming which entity),
    /// tried before the profiles shipped with the binary; `cellwarden signals` shows their effect.
    pub signals: Vec<SignalRule>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            source: Source::Live,
            mode: Mode::DryRun,
            paused: false,
            namespace: "cellwarden".into(),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 8081)),
            admin_connections: ConnectionLimits::default(),
            receivers: ReceiverConfig::default(),
            insecure_receivers: false,
            // A healthy API answers in milliseconds; 30 s rides out a control-plane restart.
            startup_timeout_secs: 30,
            // Under the chart's terminationGracePeriodSeconds (30), with room for the kubelet.
            shutdown_grace_secs: 20,
            scrape: None,
            query: None,
            retention_secs: 3600,
            max_series: 100_000,
            max_store_bytes: cellwarden_collector::store::DEFAULT_MAX_STORE_BYTES,
            ingest_limits: IngestLimits::default(),
            evaluate_every_secs: 15,
            // Five minutes: a scrape or a Prometheus query has delivered by then on any cluster.
            no_signal_warn_after_secs: 300,
            clock_speed_x: 1.0,
            cells: vec![],
            lease_duration_secs: 15,
            identity: String::new(),
            poll_interval_ms: 1000,
            notify: vec![],
            // A week: the on-call review of last week's incidents still finds them.
            incident_ttl_secs: 7 * 24 * 3600,
            signals: vec![],
        }
    }
}

impl Config {
    /// Reads (at most [`validate::MAX_CONFIG_BYTES`]), parses and checks the config at `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let text = validate::read_capped(path).map_err(anyhow::Error::msg)?;
        let cfg: Config = serde_yaml_ng::from_str(&text).with_context(|| format!("{} is not a valid cellwarden config", path.display()))?;
        cfg.check()
            .with_context(|| format!("{} is not a valid cellwarden config", path.display()))?;
        Ok(cfg)
    }

    /// The config's signal rules on top of the built-in profiles.
    pub fn signal_rules(&self) -> Result<SignalRules> {
        SignalRules::new(&self.signals).context("bad signals rule")
    }

    /// Checks the whole config (no file read, no connection): every error names its setting.
    /// `cellwarden run` calls it again after the command line's overrides.
    pub fn check(&self) -> Result<()> {
        self.signal_rules()?;
        if !(self.clock_speed_x > 0.0 && self.clock_speed_x.is_finite()) {
            bail!("clock_speed_x must be a positive number");
        }
        if self.lease_duration_secs < 2 {
            bail!("lease_duration_secs must be at least 2");
        }
        if self.poll_interval_ms == 0 {
            bail!("poll_interval_ms must be positive");
        }
        if self.evaluate_every_secs == 0 || self.retention_secs < 60 || self.max_series == 0 {
            bail!("evaluate_every_secs and max_series must be positive and retention_secs at least 60");
        }
        if self.incident_ttl_secs < 60 {
            bail!(
                "incident_ttl_secs must be at least 60, not {}: a resolved Incident must outlive the step that resolved it",
                self.incident_ttl_secs
            );
        }
        if self.max_store_bytes < MIN_STORE_BYTES {
            bail!(
                "max_store_bytes must be at least {MIN_STORE_BYTES} (1 MiB), not {}: a smaller window holds almost nothing",
                self.max_store_bytes
            );
        }
        self.ingest_limits.validate()?;
        if self.no_signal_warn_after_secs == 0 {
            bail!("no_signal_warn_after_secs must be positive");
        }
        for (name, v) in [
            ("startup_timeout_secs", self.startup_timeout_secs),
            ("shutdown_grace_secs", self.shutdown_grace_secs),
        ] {
            if !(1..=3600).contains(&v) {
                bail!("{name} must be between 1 and 3600, not {v}");
            }
        }
        validate::dns1123_label(&self.namespace).map_err(|e| anyhow::anyhow!("namespace: {e}"))?;
        let lease = lease_name(self.shard().as_deref());
        validate::dns1123_subdomain(&lease).map_err(|e| anyhow::anyhow!("cells: the Lease name {e}"))?;
        for cell in &self.cells {
            validate::dns1123_label(cell).map_err(|e| anyhow::anyhow!("cells: {e}"))?;
        }
        for (i, hook) in self.notify.iter().enumerate() {
            validate::http_url(&hook.url).map_err(|e| anyhow::anyhow!("notify[{i}].url: {e}"))?;
        }
        self.receivers.validate()?;
        self.admin_connections.validate("admin_connections")?;
        if self.source == Source::Live && self.admin_listen == self.receivers.listen {
            bail!(
                "admin_listen and receivers.listen are both {}; they need ports of their own",
                self.admin_listen
            );
        }
        if self.source == Source::Live && self.mode == Mode::Act && self.receivers.bearer_token_file.is_none() && !self.insecure_receivers {
            bail!(
                "receivers.bearer_token_file: mode is act and the receivers have no bearer token, so anyone who reaches {} \
                 could open incidents that act; set receivers.bearer_token_file (the Helm chart does), or \
                 insecure_receivers: true to accept that",
                self.receivers.listen
            );
        }
        Ok(())
    }

    pub fn limits(&self) -> ConfigLimits {
        ConfigLimits {
            mode: self.mode,
            paused: self.paused,
        }
    }

    /// The shard's name (`None`: every cell), used for its Lease and to label its Incidents.
    pub fn shard(&self) -> Option<String> {
        (!self.cells.is_empty()).then(|| {
            let mut cells = self.cells.clone();
            cells.sort();
            cells.join(",")
        })
    }

    fn identity(&self) -> String {
        if !self.identity.is_empty() {
            return self.identity.clone();
        }
        std::env::var("POD_NAME").unwrap_or_else(|_| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        })
    }
}

pub use cellwarden_remediator::controller::SHARD_LABEL;

/// The recent window of signal series, shared between the source loop (writer) and the
/// Incident controller (reader, for verification).
#[derive(Default)]
struct Window {
    now: Timestamp,
    /// The pipeline's signal series of the last step, handed over whole (not copied): they are
    /// read only when a verification is due, so finding one by a scan is cheap enough.
    series: Vec<cellwarden_detector::signals::SignalSeries>,
}

#[derive(Default)]
struct SharedWindow(RwLock<Window>);

impl SharedWindow {
    fn update(&self, now: Timestamp, series: Vec<cellwarden_detector::signals::SignalSeries>) {
        let mut w = self.0.write().unwrap_or_else(|p| p.into_inner());
        w.now = now;
        w.series = series;
    }

    fn set_now(&self, now: Timestamp) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).now = now;
    }
}

impl Telemetry for SharedWindow {
    fn now(&self) -> Timestamp {
        self.0.read().unwrap_or_else(|p| p.into_inner()).now
    }
    fn samples(&self, signal: &str, entity: &str, series: &str, from: Timestamp) -> Vec<Sample> {
        let w = self.0.read().unwrap_or_else(|p| p.into_inner());
        pipeline::samples_of(&w.series, signal, entity, series, from, w.now)
    }
}

/// What `/readyz` answers: 503 until the source is up, then 200 — with a note when something
/// needs a person's eye although the pod can serve (no signal series arrives), so the probe
/// passes and `kubectl exec … /readyz` or a port-forward shows the condition.
#[derive(Default)]
struct Readiness {
    ready: AtomicBool,
    note: Mutex<Option<String>>,
}

impl Readiness {
    fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    fn set_note(&self, note: Option<String>) {
        *self.note.lock().unwrap_or_else(|p| p.into_inner()) = note;
    }

    fn answer(&self) -> (axum::http::StatusCode, String) {
        if !self.ready.load(Ordering::SeqCst) {
            return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "starting".into());
        }
        match &*self.note.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(note) => (axum::http::StatusCode::OK, format!("ready; {note}")),
            None => (axum::http::StatusCode::OK, "ready".into()),
        }
    }
}

/// Serves `/healthz`, `/readyz` and `/metrics` on `tcp` (bound by the caller) until `stop`.
async fn admin_server(
    tcp: tokio::net::TcpListener,
    listener: listen::Listener,
    ready: Arc<Readiness>,
    metrics: Arc<OperatorMetrics>,
    stop: crate::shutdown::Shutdown,
) -> Result<()> {
    use axum::routing::get;
    let r1 = ready.clone();
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = r1.clone();
                async move { ready.answer() }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move {
                    let mut text = String::new();
                    {
                        let reg = m.registry.lock().unwrap_or_else(|p| p.into_inner());
                        let _ = prometheus_client::encoding::text::encode(&mut text, &reg);
                    }
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
    tracing::info!(listen = %tcp.local_addr()?, "Admin endpoints are up.");
    listen::serve(tcp, listener, app, async move { stop.requested().await }).await;
    Ok(())
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
async fn load_policy(client: &Client, namespace: &str) -> Result<cellwarden_engine::policy::PolicySpec> {
    let api: Api<RemediationPolicy> = Api::namespaced(client.clone(), namespace);
    let list = api.list(&ListParams::default()).await.context("cannot list RemediationPolicies")?;
    Ok(list
        .items
        .into_iter()
        .next()
        .map(|p| p.spec.policy)
        .unwrap_or_else(pipeline::default_policy))
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Whether an action touches only this shard's cells (provider and feature actions touch the
/// shard's own cell namespaces, so every shard carries them out for its cells).
fn in_shard(a: &Action, cells: &HashSet<String>) -> bool {
    if cells.is_empty() {
        return true;
    }
    match a.kind {
        ActionKind::Reroute | ActionKind::Cordon => cells.contains(&a.target),
        ActionKind::Scale | ActionKind::RestartPods => a.target.split('/').next().is_some_and(|c| cells.contains(c)),
        _ => true,
    }
}

/// The incident loop's side of the operator: what it needs to write Incidents.
struct Opener {
    ctx: Arc<Context>,
    shard_cells: HashSet<String>,
    /// Incidents opened and not yet written — while following, or while the API does not
    /// answer — oldest first, each with the time it opened at (written with it).
    backlog: Pending<(ModelIncident, Plan)>,
    /// Whether this instance led at the last flush (a change to leading reloads the history).
    was_leading: bool,
    /// The label selector of this shard's Incidents.
    selector: Option<String>,
    /// When each incident offered was last ranked, to write later rankings to its Incident.
    ranked: HashMap<String, Timestamp>,
    /// Incidents new evidence joined since their Incident was written (latest copy each, and
    /// what joined), written by the next `flush` that leads.
    evidence_pending: Pending<(ModelIncident, controller::Joined)>,
    /// Incidents whose lifecycle changed (resolved, reopened, escalated), written by the next
    /// `flush` that leads, in order.
    lifecycle_pending: Pending<(ModelIncident, cellwarden_models::Lifecycle)>,
    /// Since when writes have gone unanswered (wall clock): set by the first that fails for want
    /// of an answer, cleared — with a line saying how long it lasted — by the next that goes
    /// through, so that an outage is told once, not once per step.
    unanswered_since: Option<std::time::Instant>,
}

/// Most Incidents waiting to be written. A fault opens one to a few; 256 holds hours of a busy
/// outage in a few MB (an incident with its plan is a few KiB). Past it, new ones are refused
/// and counted (`cellwarden_pending_writes_dropped_total{what="incident",reason="full"}`).
const MAX_PENDING_INCIDENTS: usize = 256;
/// Most evidence and phase changes waiting: a few per incident.
const MAX_PENDING_UPDATES: usize = 1024;
/// How long a write may wait, seconds: what a follower saw an hour ago was the leader's to
/// write; an outage longer than that loses its oldest writes, counted (`reason="expired"`).
const MAX_PENDING_AGE_SECS: i64 = 3600;

impl Opener {
    /// Whether `incident` is this shard's: every incident when this instance handles all cells,
    /// else one whose candidates name one of its cells or no cell at all.
    fn is_mine(&self, incident: &ModelIncident) -> bool {
        if self.shard_cells.is_empty() {
            return true;
        }
        let cells: Vec<&str> = incident.candidates.iter().filter_map(|c| c.entity.cell()).collect();
        cells.is_empty() || cells.iter().any(|c| self.shard_cells.contains(*c))
    }

    async fn offer(&mut self, incident: ModelIncident, mut plan: Plan, now: Timestamp) {
        // (Written by `flush`, which the loop calls right after.)
        if !self.shard_cells.is_empty() {
            if !self.is_mine(&incident) {
                tracing::debug!(incident = %incident.id, "Incident of another shard's cells; left to it.");
                return;
            }
            plan.actions.retain(|a| in_shard(a, &self.shard_cells));
            plan.refused.retain(|r| in_shard(&r.action, &self.shard_cells));
        }
        // Only incidents still young enough to be re-ranked need watching.
        let horizon = now.plus_secs(-pipeline::RERANK_AFTER_SECS.iter().max().copied().unwrap_or(0) - 60);
        self.ranked.retain(|_, at| *at >= horizon);
        self.ranked.insert(incident.id.clone(), incident.ranked_at);
        let id = incident.id.clone();
        if !self.backlog.push((incident, plan), now) {
            tracing::warn!(
                incident = %id,
                queued = self.backlog.len(),
                "The queue of Incidents waiting to be written is full; this one is dropped."
            );
            self.ctx.metrics.pending_dropped("incident", DropReason::Full, 1);
        }
    }

    /// Takes what the engine concluded in a step: the incidents opened (with their plans, to
    /// [`Opener::offer`]); joined evidence and lifecycle changes are queued for their Incidents.
    fn consume(&mut self, pipeline: &Pipeline, events: Vec<EngineEvent>, now: Timestamp) -> Vec<(ModelIncident, Plan)> {
        let mut opened = Vec::new();
        for ev in events {
            match ev {
                EngineEvent::Opened { index, plan } => opened.push((pipeline.incidents()[index].incident.clone(), plan)),
                EngineEvent::Joined { index, by } => {
                    let incident = pipeline.incidents()[index].incident.clone();
                    tracing::info!(incident = %incident.id, by = ?by, "New evidence joined an incident.");
                    let joined = match by {
                        JoinedBy::Alarm => controller::Joined::Alarm,
                        JoinedBy::Alert => controller::Joined::Alert,
                    };
                    self.evidence_joined(incident, joined, now);
                }
                // Written by `reranked`, which follows every flush.
                EngineEvent::Reranked { .. } => {}
                EngineEvent::Resolved { index } | EngineEvent::Reopened { index } | EngineEvent::Escalated { index, .. } => {
                    let r = &pipeline.incidents()[index];
                    tracing::info!(
                        incident = %r.incident.id,
                        phase = r.lifecycle.phase.as_str(),
                        dedup_key = %r.lifecycle.dedup_key,
                        "Incident changed phase."
                    );
                    self.lifecycle_changed(r.incident.clone(), r.lifecycle.clone(), now);
                }
            }
        }
        opened
    }

    /// The engine changed `incident`'s phase: written to its Incident on the next flush (a copy
    /// still waiting to be created gets it when created).
    fn lifecycle_changed(&mut self, incident: ModelIncident, lifecycle: cellwarden_models::Lifecycle, now: Timestamp) {
        if !self.is_mine(&incident) {
            return;
        }
        if !self.lifecycle_pending.push((incident, lifecycle), now) {
            self.ctx.metrics.pending_dropped("lifecycle", DropReason::Full, 1);
        }
    }

    /// New evidence joined `incident` (an alert, an alert's new state, or the detectors' alarm):
    /// a copy still waiting to be created gets the new alerts and ranking; else its Incident's
    /// status is updated on the next flush.
    fn evidence_joined(&mut self, incident: ModelIncident, joined: controller::Joined, now: Timestamp) {
        if let Some(((waiting, _), _)) = self.backlog.iter_mut().find(|((i, _), _)| i.id == incident.id) {
            *waiting = incident;
            return;
        }
        if !self.is_mine(&incident) {
            return;
        }
        // Kept in order, each with its own time and kind: the last written is the latest copy.
        if !self.evidence_pending.push((incident, joined), now) {
            self.ctx.metrics.pending_dropped("evidence", DropReason::Full, 1);
        }
    }

    /// Writes the pipeline's later rankings of recent incidents to their Incidents (leader only;
    /// after the backlog is flushed, so the objects exist).
    async fn reranked(&mut self, pipeline: &Pipeline) {
        if !self.ctx.leading.load(Ordering::SeqCst) || !self.backlog.is_empty() {
            return;
        }
        for r in pipeline.incidents().iter().rev().take(16) {
            let Some(seen) = self.ranked.get_mut(&r.incident.id) else {
                continue;
            };
            if r.incident.ranked_at <= *seen {
                continue;
            }
            match controller::update_root_cause(&self.ctx, &r.incident).await {
                Ok(()) => *seen = r.incident.ranked_at,
                Err(e) => tracing::warn!(error = %e, incident = %r.incident.id, "Could not write a later ranking; trying again next step."),
            }
        }
    }

    /// Writes waiting incidents when this instance leads. On taking the Lease it first reads
    /// back what the previous leader did into the guards' history, so that cooldowns and rate
    /// limits hold across the handover (no action repeated on the same target), and decides
    /// the queued plans again against it.
    async fn flush(&mut self, pipeline: &mut Pipeline, now: Timestamp) {
        self.expire(now);
        if !self.ctx.leading.load(Ordering::SeqCst) {
            self.was_leading = false;
            self.export();
            return;
        }
        if !self.was_leading {
            match history_from_incidents(&self.ctx.client, &self.ctx.namespace, self.selector.as_deref()).await {
                Ok(h) => {
                    tracing::info!(actions = h.len(), "Leading: read back the actions recorded in Incidents.");
                    self.recheck(pipeline, &h, now);
                    for past in h {
                        pipeline.remember(past);
                    }
                    self.was_leading = true;
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "Could not read the Incidents' history; not acting until it can be read.");
                    self.export();
                    return;
                }
            }
        }
        self.write_pending().await;
        self.export();
    }

    /// Decides the queued plans again at `now` against `done` (what the Incidents record): an
    /// action another leader took meanwhile is refused by its cooldown instead of repeated.
    fn recheck(&mut self, pipeline: &Pipeline, done: &[PastAction], now: Timestamp) {
        let Some(oldest) = self.backlog.oldest() else {
            return;
        };
        tracing::info!(
            queued = self.backlog.len(),
            oldest_secs = now.secs_since(oldest).round(),
            "Writing the incidents queued while not leading, their plans decided again against what the Incidents record."
        );
        for ((incident, plan), _) in self.backlog.iter_mut() {
            let before = plan.refused.len();
            *plan = pipeline.recheck(plan.clone(), done, now);
            for r in &plan.refused[before..] {
                tracing::info!(
                    incident = %incident.id,
                    action = r.action.kind.as_str(),
                    target = %r.action.target,
                    guard = %r.guard,
                    "A queued action no longer passes the guards: {}.",
                    r.reason
                );
            }
        }
    }

    /// Drops what waited longer than [`MAX_PENDING_AGE_SECS`], counted and said.
    fn expire(&mut self, now: Timestamp) {
        for (what, n) in [
            ("incident", self.backlog.expire(now)),
            ("evidence", self.evidence_pending.expire(now)),
            ("lifecycle", self.lifecycle_pending.expire(now)),
        ] {
            if n > 0 {
                self.ctx.metrics.pending_dropped(what, DropReason::Expired, n);
                tracing::info!(
                    what,
                    dropped = n,
                    max_age_secs = MAX_PENDING_AGE_SECS,
                    "Dropped writes that waited longer than the queue keeps them (the leader of that time wrote them, or the API stayed away)."
                );
            }
        }
    }

    /// The queues' depths on `/metrics`.
    fn export(&self) {
        let m = &self.ctx.metrics;
        m.pending("incident", self.backlog.len());
        m.pending("evidence", self.evidence_pending.len());
        m.pending("lifecycle", self.lifecycle_pending.len());
    }

    /// Whether to try the next write after `result`: a write the API did not answer is put back
    /// (by the caller) and ends the attempt, told once per outage; one it refused for good is
    /// dropped, counted and told.
    fn went_through(&mut self, result: &Result<(), controller::Error>, what: &'static str, incident: &str) -> Outcome {
        match result {
            Ok(()) => {
                if let Some(since) = self.unanswered_since.take() {
                    tracing::info!(
                        unanswered_secs = since.elapsed().as_secs(),
                        queued = self.backlog.len(),
                        "The Kubernetes API answers again; writing what was queued."
                    );
                }
                Outcome::Written
            }
            Err(controller::Error::Kube(kube::Error::Api(e))) if e.code == 404 && what != "incident" => {
                // Never created here (dropped from a queue) or deleted since.
                tracing::info!(incident, what, "No Incident to write to; left out.");
                Outcome::Written
            }
            Err(e) if e.is_transient() => {
                if self.unanswered_since.is_none() {
                    self.unanswered_since = Some(std::time::Instant::now());
                    tracing::warn!(
                        error = %e,
                        incident,
                        what,
                        queued = self.backlog.len() + 1,
                        max_queued = MAX_PENDING_INCIDENTS,
                        "The Kubernetes API did not take a write; incidents and their updates wait in order and are written, with their own times, when it answers."
                    );
                } else {
                    tracing::debug!(error = %e, incident, what, "The Kubernetes API still does not take writes.");
                }
                Outcome::Retry
            }
            Err(e) => {
                tracing::error!(error = %e, incident, what, "The Kubernetes API refused a write for good; it is dropped.");
                self.ctx.metrics.pending_dropped(what, DropReason::Rejected, 1);
                Outcome::Written
            }
        }
    }

    /// Writes the waiting incidents and evidence in order (leader only, once the history is
    /// read; on shutdown, what the last step could not write), stopping at the first the API
    /// does not answer.
    async fn write_pending(&mut self) {
        if !self.ctx.leading.load(Ordering::SeqCst) || !self.was_leading {
            return;
        }
        while let Some(((incident, plan), at)) = self.backlog.pop() {
            let r = controller::open(&self.ctx, &incident, &plan, at).await.map(|_| ());
            if self.went_through(&r, "incident", &incident.id) == Outcome::Retry {
                self.backlog.put_back((incident, plan), at);
                return;
            }
        }
        while let Some(((incident, joined), at)) = self.evidence_pending.pop() {
            let r = controller::update_evidence(&self.ctx, &incident, at, joined).await;
            if self.went_through(&r, "evidence", &incident.id) == Outcome::Retry {
                // The rest wait behind it, so that a later copy is never overwritten by an earlier.
                self.evidence_pending.put_back((incident, joined), at);
                return;
            }
        }
        while let Some(((incident, lc), at)) = self.lifecycle_pending.pop() {
            let r = controller::update_lifecycle(&self.ctx, &incident, &lc, at).await;
            if self.went_through(&r, "lifecycle", &incident.id) == Outcome::Retry {
                self.lifecycle_pending.put_back((incident, lc), at);
                return;
            }
        }
    }
}

/// What became of one waiting write.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Written, or dropped for good: on to the next.
    Written,
    /// Not answered: put back, and the rest wait.
    Retry,
}

/// What the Incidents already in the cluster say was done: fed to the policy engine's history
/// so cooldowns and rate limits hold across restarts and leader changes.
async fn history_from_incidents(client: &Client, namespace: &str, selector: Option<&str>) -> Result<Vec<PastAction>> {
    let api: Api<Incident> = Api::namespaced(client.clone(), namespace);
    let mut lp = ListParams::default();
    if let Some(s) = selector {
        lp = lp.labels(s);
    }
    let mut out = Vec::new();
    for i in api.list(&lp).await.context("cannot list Incidents")?.items {
        for t in i.status.iter().flat_map(|s| s.taken.iter().chain(s.planned.iter())) {
            if !matches!(
                t.state,
                ActionState::Done | ActionState::Reverted | ActionState::Planned | ActionState::Applying
            ) {
                continue;
            }
            if let (Some(kind), Ok(at)) = (ActionKind::parse(&t.kind), Timestamp::parse_rfc3339(&t.at)) {
                out.push(PastAction {
                    kind,
                    target: t.target.clone(),
                    at,
                });
            }
        }
    }
    out.sort_by_key(|a| a.at);
    out.dedup();
    Ok(out)
}

/// The Kubernetes client of `kubeconfig` (else in-cluster config or KUBECONFIG) and the API's URL.
async fn kube_client(kubeconfig: Option<&Path>) -> Result<(Client, String)> {
    let conf = match kubeconfig {
        Some(p) => {
            let kc = kube::config::Kubeconfig::read_from(p).with_context(|| format!("cannot read kubeconfig {}", p.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer()
            .await
            .context("no Kubernetes configuration (in-cluster or KUBECONFIG); pass --kubeconfig")?,
    };
    let url = conf.cluster_url.to_string();
    Ok((Client::try_from(conf)?, url))
}

/// What start-up reads from the cluster before anything runs.
struct Cluster {
    client: Client,
    policy: cellwarden_engine::policy::PolicySpec,
    cell_namespaces: Vec<String>,
}

/// Connects to the API and reads the CRDs, the policy and the Cells' namespaces.
async fn read_cluster(cfg: &Config, kubeconfig: Option<&Path>, url: &mut String) -> Result<Cluster> {
    let (client, api_url) = kube_client(kubeconfig).await?;
    *url = api_url;
    check_crds(&client, &cfg.namespace).await?;
    let policy = load_policy(&client, &cfg.namespace).await?;
    let cell_namespaces: Vec<String> = if cfg.cells.is_empty() {
        let cells: Api<Cell> = Api::all(client.clone());
        match cells.list(&ListParams::default()).await {
            Ok(l) => l.items.iter().map(|c| c.spec.namespace.clone()).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "Could not list Cells; provider and feature actions will touch no namespace.");
                vec![]
            }
        }
    } else {
        cfg.cells.clone()
    };
    Ok(Cluster {
        client,
        policy,
        cell_namespaces,
    })
}

/// Runs the daemon until the source ends (then keeps serving and reconciling until SIGTERM or
/// SIGINT). One signal stops it: the receivers close, the step under way finishes, pending
/// Incident writes are flushed, the Lease is released, within `shutdown_grace_secs`.
pub async fn run(cfg: Config, kubeconfig: Option<&Path>) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    cfg.check()?;
    let stop = crate::shutdown::Shutdown::on_signals(Duration::from_secs(cfg.shutdown_grace_secs));
    let ready = Arc::new(Readiness::default());
    let metrics = Arc::new(OperatorMetrics::default());
    let listeners = ListenerMetrics::default();
    listeners.register(&mut metrics.registry.lock().unwrap_or_else(|p| p.into_inner()));
    // Bound before the API is asked anything: a port in use fails start-up at once.
    let admin_tcp = tokio::net::TcpListener::bind(cfg.admin_listen)
        .await
        .with_context(|| format!("admin_listen: cannot listen on {}", cfg.admin_listen))?;
    let mut admin = tokio::spawn(admin_server(
        admin_tcp,
        listen::Listener {
            name: "admin",
            limits: cfg.admin_connections.clone(),
            metrics: listeners.clone(),
            tls: None,
        },
        ready.clone(),
        metrics.clone(),
        stop.clone(),
    ));
    let mut api_url = String::from("the Kubernetes API");
    let startup = Duration::from_secs(cfg.startup_timeout_secs);
    let Cluster {
        client,
        policy,
        cell_namespaces,
    } = tokio::select! {
        r = tokio::time::timeout(startup, read_cluster(&cfg, kubeconfig, &mut api_url)) => match r {
            Ok(r) => r?,
            Err(_) => bail!(
                "the Kubernetes API at {api_url} did not answer within startup_timeout_secs ({} s): check that the API server is up and reachable from here",
                cfg.startup_timeout_secs
            ),
        },
        _ = stop.requested() => {
            tracing::info!("Stopped during start-up.");
            return Ok(());
        }
    };
    let limits = cfg.limits();
    let mode = limits.mode.min(match policy.mode.as_str() {
        "act" => Mode::Act,
        "observe" => Mode::Observe,
        _ => Mode::DryRun,
    });
    let shard = cfg.shard();
    let lease = lease_name(shard.as_deref());
    // The shard label value is the Lease name's tail: a valid label value for any cell list.
    let shard_value = shard.as_ref().map(|_| lease.trim_start_matches("cellwarden-leader-").to_string());
    let selector = shard_value.as_ref().map(|v| format!("{SHARD_LABEL}={v}"));
    let identity = cfg.identity();
    tracing::info!(mode = mode.as_str(), source = %cfg.source, lease = %lease, identity = %identity, "Starting cellwarden.");

    // Leader election: only the holder writes Incidents and acts.
    let leading = Arc::new(AtomicBool::new(false));
    let mut elector = Elector::new(
        client.clone(),
        LeaseConfig {
            namespace: cfg.namespace.clone(),
            name: lease.clone(),
            identity: identity.clone(),
            lease_duration_secs: cfg.lease_duration_secs,
            pod: std::env::var("POD_NAME").ok(),
        },
    );
    // Every action and revert is fenced by the Lease: the term the elector proves, and a re-read.
    let fence = elector.fence();
    // Stops the election only once pending writes are flushed (they need the Lease).
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let election = {
        let leading = leading.clone();
        let metrics = metrics.clone();
        // A third of the duration; each step is bounded by the term's end (lease::Timing).
        let every = elector.config().timing().retry_period;
        let release_by = stop.clone();
        tokio::spawn(async move {
            let mut lease_calls = Quiet::new("read or renew the Lease", "following until it works");
            loop {
                let now = elector.step(wall_ms()).await;
                let lead = matches!(now, Ok(true));
                match &now {
                    Ok(_) => {
                        lease_calls.worked();
                    }
                    Err(e) => {
                        lease_calls.failed(e);
                    }
                }
                leading.store(lead, Ordering::SeqCst);
                metrics.leader.set(i64::from(lead));
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop_rx.changed() => break,
                }
            }
            leading.store(false, Ordering::SeqCst);
            metrics.leader.set(0);
            let lease = elector.config().name.clone();
            if tokio::time::timeout_at(release_by.deadline(0.85), elector.release()).await.is_err() {
                tracing::warn!(lease = %lease, "Could not release the Lease in time; a follower takes over once it expires.");
            } else {
                tracing::info!(lease = %lease, "Released the Lease.");
            }
        })
    };

    let window = Arc::new(SharedWindow::default());
    let ctx = Arc::new(Context {
        client: client.clone(),
        namespace: cfg.namespace.clone(),
        actuator: Actuator::new(client.clone(), cell_namespaces).with_fence(fence),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "cellwarden".into(),
                instance: Some(identity.clone()),
            },
        ),
        audit: Mutex::new(AuditLog::new(Box::new(std::io::stdout()))),
        telemetry: window.clone(),
        leading: leading.clone(),
        mode,
        approval_ttl_secs: policy.approval_ttl_secs,
        wall_ms: Arc::new(wall_ms),
        notifier: Notifier::start(cfg.notify.clone(), reqwest_client()?),
        metrics: metrics.clone(),
        poll: Duration::from_millis(cfg.poll_interval_ms),
        shard: shard_value.clone(),
    });

    // The Incident controller: every Incident (of this shard), reconciled from its status.
    let incidents: Api<Incident> = Api::namespaced(client.clone(), &cfg.namespace);
    let mut wc = watcher::Config::default();
    if let Some(s) = &selector {
        wc = wc.labels(s);
    }
    let controller = tokio::spawn(
        Controller::new(incidents, wc)
            .run(controller::reconcile, controller::error_policy, ctx.clone())
            .for_each(|r| async move {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "Reconcile ended in error.");
                }
            }),
    );

    // Retention: the leader deletes Incidents resolved longer than incident_ttl_secs.
    let retention = {
        let (ctx, selector, ttl) = (ctx.clone(), selector.clone(), cfg.incident_ttl_secs);
        tokio::spawn(async move {
            let every = retention_sweep_every(ttl);
            loop {
                tokio::time::sleep(every).await;
                if !ctx.leading.load(Ordering::SeqCst) {
                    continue;
                }
                let swept = retention::sweep(&ctx.client, &ctx.actuator, &ctx.namespace, selector.as_deref(), wall_ms(), ttl).await;
                match swept {
                    Ok(s) if s.deleted > 0 => {
                        tracing::info!(
                            deleted = s.deleted,
                            ttl_secs = ttl,
                            "Deleted Incidents resolved longer than incident_ttl_secs."
                        )
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "Could not list Incidents for retention; trying again later."),
                }
            }
        })
    };

    let pipeline = Pipeline::new().with_policy(policy, limits);
    let mut opener = Opener {
        ctx: ctx.clone(),
        shard_cells: cfg.cells.iter().cloned().collect(),
        backlog: Pending::new(MAX_PENDING_INCIDENTS, MAX_PENDING_AGE_SECS, Overflow::DropNewest),
        was_leading: false,
        selector: selector.clone(),
        ranked: HashMap::new(),
        evidence_pending: Pending::new(MAX_PENDING_UPDATES, MAX_PENDING_AGE_SECS, Overflow::DropOldest),
        lifecycle_pending: Pending::new(MAX_PENDING_UPDATES, MAX_PENDING_AGE_SECS, Overflow::DropOldest),
        unanswered_since: None,
    };
    let source = async {
        match &cfg.source {
            Source::Simulator(id) => {
                let scn = cellwarden_simulator::scenario(id, None).with_context(|| format!("no scenario {id:?}"))?;
                ready.set_ready();
                // (Stopped at the next await on a signal: the simulated wallet keeps no state worth a step.)
                tokio::select! {
                    r = simulate_through_api(&scn, &client, &mut opener, &window, &metrics, pipeline, cfg.clock_speed_x) => r,
                    _ = stop.requested() => Ok(()),
                }
            }
            Source::Fixture(dir) => {
                let fx = cellwarden_collector::fixture::load_dir(dir).with_context(|| format!("cannot load fixture {}", dir.display()))?;
                ready.set_ready();
                let rules = cfg.signal_rules()?;
                tokio::select! {
                    r = replay_fixture(&fx, &rules, &mut opener, &window, &metrics, pipeline, cfg.clock_speed_x) => r,
                    _ = stop.requested() => Ok(()),
                }
            }
            Source::Live => live_source(&cfg, &client, &metrics, &listeners, &ready, &mut opener, &window, pipeline, &stop).await,
        }
    };
    // The live source returns between steps once stopped; a step that outlasts half the grace
    // period is cut (its Incidents are written on the next start, from the pipeline's backfill).
    let result = tokio::select! {
        r = source => r,
        _ = async { stop.requested().await; tokio::time::sleep_until(stop.deadline(0.5)).await } => {
            tracing::warn!(grace_secs = cfg.shutdown_grace_secs, "The step under way did not finish in half the grace period; stopping it.");
            Ok(())
        }
    };
    let mut admin_done = false;
    let outcome = match result {
        Err(e) => Err(e),
        Ok(()) if stop.is_requested() => Ok(()),
        Ok(()) => {
            tracing::info!("Source finished; serving admin endpoints and reconciling Incidents until stopped.");
            tokio::select! {
                r = &mut admin => {
                    admin_done = true;
                    r.map_err(anyhow::Error::from).and_then(|r| r)
                }
                _ = stop.requested() => Ok(()),
            }
        }
    };
    // From here every wait is bounded: by the grace period from the signal, or from now when
    // the daemon stops on an error.
    // Writes what is still waiting while this instance holds the Lease, then gives it up.
    if tokio::time::timeout_at(stop.deadline(0.75), opener.write_pending()).await.is_err() {
        tracing::warn!("Could not write the pending Incidents in time; the next leader opens them again from its own telemetry.");
    }
    let _ = stop_tx.send(true);
    // The Lease is released while the notifications of the last steps are posted (webhooks only
    // page; they need no Lease), both within the grace period.
    let (_, flushed) = tokio::join!(
        tokio::time::timeout_at(stop.deadline(0.9), election),
        tokio::time::timeout_at(stop.deadline(0.9), ctx.notifier.flush())
    );
    if flushed.is_err() {
        let left = ctx.notifier.counters.pending.load(Ordering::SeqCst);
        tracing::warn!(pending = left, "Could not post every queued notification within the grace period.");
    }
    controller.abort();
    retention.abort();
    if !admin_done {
        if stop.is_requested() {
            let _ = tokio::time::timeout_at(stop.deadline(0.95), &mut admin).await;
        }
        admin.abort();
    }
    tracing::info!("Stopped.");
    outcome
}

/// Counts the step's signal series (`cellwarden_signal_series`) and tells when none has come
/// for `no_signal_warn_after_secs` — a Warning naming what would feed cellwarden, and the same
/// on `/readyz` — and when series come again.
fn tell_signals(
    watch: &mut drive::SignalWatch,
    now: Timestamp,
    series: usize,
    families: &[cellwarden_models::Family],
    cfg: &Config,
    metrics: &OperatorMetrics,
    ready: &Readiness,
) {
    metrics.signal_series.set(series as i64);
    match watch.observe(now, series) {
        Some(drive::SignalChange::Starved { for_secs }) => {
            let note = format!(
                "no signal series for {for_secs} s: nothing feeds cellwarden (scrape: {}, query: {}, {} metric families received, none read as a signal); \
                 set scrape: or query:, or push to the receivers, and run `cellwarden signals --from <url>` to see why a metric is ignored",
                if cfg.scrape.is_some() { "on" } else { "off" },
                if cfg.query.is_some() { "on" } else { "off" },
                families.len()
            );
            tracing::warn!(
                for_secs,
                families = families.len(),
                scrape = cfg.scrape.is_some(),
                query = cfg.query.is_some(),
                "No signal series arrived; cellwarden watches nothing. Set scrape: or query:, or push to the receivers."
            );
            ready.set_note(Some(note));
        }
        Some(drive::SignalChange::Fed { series }) => {
            tracing::info!(series, "Signal series arrive again.");
            ready.set_note(None);
        }
        None => {}
    }
}

/// The live source: the collector's receivers, scrapers and Prometheus queries fill one bounded
/// window; every `evaluate_every_secs` the pipeline reads it (the last 45 minutes) and new
/// incidents go to the Incident controller. Alertmanager alerts then open or join incidents
/// (`Pipeline::alert`); what joined an incident is written to its Incident.
#[allow(clippy::too_many_arguments)] // the daemon's wiring, handed over as it is
async fn live_source(
    cfg: &Config,
    client: &Client,
    metrics: &OperatorMetrics,
    listeners: &ListenerMetrics,
    ready: &Readiness,
    opener: &mut Opener,
    window: &SharedWindow,
    pipeline: Pipeline,
    stop: &crate::shutdown::Shutdown,
) -> Result<()> {
    let window_cfg = WindowConfig {
        retention_secs: cfg.retention_secs,
        max_series: cfg.max_series,
        max_store_bytes: cfg.max_store_bytes,
    };
    let ingest = Arc::new(Ingest::new(cfg.receivers.ingest_config(window_cfg, cfg.ingest_limits)));
    {
        let mut reg = metrics.registry.lock().unwrap_or_else(|p| p.into_inner());
        ingest.register_metrics(&mut reg);
    }
    let clock = receive::system_clock();
    let router = receive::router_with_clock(ingest.clone(), &cfg.receivers, clock.clone()).context("cannot set up the receivers")?;
    let rcfg = cfg.receivers.clone();
    if cfg.receivers.bearer_token_file.is_none() {
        tracing::warn!(
            listen = %cfg.receivers.listen,
            mode = cfg.mode.as_str(),
            "The receivers take pushes without a bearer token: anyone who reaches them can push telemetry and alerts; set receivers.bearer_token_file."
        );
    }
    // Every instance listens; the receivers' Service routes pushes to the Lease holder only.
    let (receivers_stop, receivers_metrics) = (stop.clone(), listeners.clone());
    let mut receivers =
        tokio::spawn(
            async move { receive::serve(&rcfg, router, receivers_metrics, async move { receivers_stop.requested().await }).await },
        );
    if let Some(sc) = &cfg.scrape {
        let scraper = Scraper::new(sc.clone()).context("bad scrape config")?;
        tokio::spawn(scraper.run(ingest.clone(), Some(client.clone()), clock.clone(), std::future::pending()));
    }
    if let Some(qc) = &cfg.query {
        let source = QuerySource::new(qc.clone()).context("bad query config")?;
        tokio::spawn(source.run(ingest.clone(), clock.clone(), std::future::pending()));
    }
    ready.set_ready();
    tracing::info!(receivers = %cfg.receivers.listen, "Live source up.");
    let mut span_cursor = 0;
    let mut alert_cursor = 0;
    let mut revision_reads = Quiet::new("read the ReplicaSets", "the rollouts known stand");
    let mut signal_watch = drive::SignalWatch::new(cfg.no_signal_warn_after_secs, clock());
    let mut spans: std::collections::VecDeque<cellwarden_models::Span> = std::collections::VecDeque::new();
    let every = Duration::from_secs(cfg.evaluate_every_secs);
    let mut driver = Driver::new(pipeline, cfg.signal_rules()?, None);
    loop {
        tokio::select! {
            r = &mut receivers => {
                return match r {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(anyhow::Error::from(e).context("the receivers stopped")),
                    Err(e) => Err(anyhow::Error::from(e).context("the receivers task failed")),
                };
            }
            // Between steps: the receivers drain (they stopped accepting at the signal).
            _ = stop.requested() => {
                let _ = tokio::time::timeout_at(stop.deadline(0.5), &mut receivers).await;
                return Ok(());
            }
            _ = tokio::time::sleep(every) => {}
        }
        let now = clock();
        let step_started = std::time::Instant::now();
        metrics.steps.inc();
        let since = drive::window_start(now);
        let (new_spans, next) = ingest.spans_after(span_cursor);
        span_cursor = next;
        spans.extend(new_spans);
        while spans.front().is_some_and(|s| s.start_ns < since.millis() * 1_000_000) {
            spans.pop_front();
        }
        let (alerts, next) = ingest.alerts_after(alert_cursor);
        alert_cursor = next;
        let families = ingest.families(since);
        // The Deployments' revisions, for the rollback rule (the last ones read stand on an error).
        match cellwarden_remediator::actuate::revisions(&opener.ctx.client).await {
            Ok(revs) => {
                revision_reads.worked();
                driver.pipeline.set_rollouts(
                    revs.iter()
                        .flat_map(|(target, r)| cellwarden_engine::policy::rollouts_of_revisions(target, r))
                        .collect(),
                )
            }
            Err(e) => {
                revision_reads.failed(&e);
            }
        }
        // Alerts after the step's telemetry: an alert opens or joins an incident ranked on it.
        let stepped = driver.step(&families, spans.make_contiguous(), alerts, now);
        for a in &stepped.alerts {
            metrics.alert(a.outcome.as_str());
            match a.outcome.incident() {
                Some(i) => tracing::info!(
                    alert = %a.name,
                    firing = a.firing,
                    incident = %driver.pipeline.incidents()[i].incident.id,
                    "Alertmanager alert {} an incident.",
                    a.outcome.as_str()
                ),
                None => {
                    tracing::debug!(alert = %a.name, firing = a.firing, "Alertmanager alert noted only (nothing new, or about nothing in particular).")
                }
            }
        }
        let opened = opener.consume(&driver.pipeline, stepped.events, now);
        tell_signals(&mut signal_watch, now, stepped.series.len(), &families, cfg, metrics, ready);
        window.update(now, stepped.series);
        for (incident, plan) in opened {
            opener.offer(incident, plan, now).await;
        }
        opener.flush(&mut driver.pipeline, now).await;
        opener.reranked(&driver.pipeline).await;
        let took = step_started.elapsed();
        if took > every {
            metrics.steps_late.inc();
            tracing::warn!(
                took_ms = took.as_millis() as u64,
                evaluate_every_secs = cfg.evaluate_every_secs,
                "A step took longer than evaluate_every_secs; the next starts late."
            );
        }
        tracing::debug!(series = families.len(), spans = spans.len(), "Live step.");
    }
}

fn reqwest_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .build()
        .context("cannot build the HTTP client for webhooks")
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
            let restarted = restarted_at(&d).map(str::to_string);
            if let Some(at) = restarted {
                let key = format!("{cell}/{name}");
                // The annotation says when the restart happened: a wallet simulated again from
                // the start (an operator restarted mid-incident) restarts its pods at that time.
                let due = Timestamp::parse_rfc3339(&at).map_or(true, |t| t <= w.now());
                if due && restarts_seen.get(&key) != Some(&at) {
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
    client: &Client,
    opener: &mut Opener,
    window: &SharedWindow,
    metrics: &OperatorMetrics,
    pipeline: Pipeline,
    clock_speed: f64,
) -> Result<()> {
    let mut w = scn.wallet();
    let mut driver = Driver::new(pipeline, SignalRules::default(), Some(w.topology()));
    let step = Duration::from_secs_f64(scn.cfg.step_secs as f64 / clock_speed);
    let mut restarts_seen = HashMap::new();
    for _ in 0..scn.steps() {
        let tick = tokio::time::Instant::now();
        if let Err(e) = sync_from_api(client, &mut w, &mut restarts_seen).await {
            tracing::warn!(error = %e, "Could not read the cluster; the simulated wallet keeps its last state.");
        }
        w.step();
        metrics.steps.inc();
        let now = w.now();
        let (views, replicas) = crate::simulate::cell_views(&w);
        driver.pipeline.set_cluster(views, replicas);
        driver.pipeline.set_rollouts(crate::simulate::rollouts(&w));
        let since = drive::window_start(now);
        let families = drive::recent(w.recorder.families(), since);
        let stepped = driver.step(&families, drive::spans_since(&w.recorder.spans, since), Vec::new(), now);
        window.update(now, stepped.series);
        for (incident, plan) in opener.consume(&driver.pipeline, stepped.events, now) {
            opener.offer(incident, plan, now).await;
        }
        opener.flush(&mut driver.pipeline, now).await;
        opener.reranked(&driver.pipeline).await;
        let spent = tick.elapsed();
        if spent < step {
            tokio::time::sleep(step - spent).await;
        }
    }
    Ok(())
}

/// Replays a recorded fixture as if it arrived live: `clock_speed` simulated seconds per second,
/// in 15-second steps. Nothing in the cluster feeds back into a recording.
async fn replay_fixture(
    fx: &cellwarden_models::fixture::Fixture,
    rules: &SignalRules,
    opener: &mut Opener,
    window: &SharedWindow,
    metrics: &OperatorMetrics,
    pipeline: Pipeline,
    clock_speed: f64,
) -> Result<()> {
    let prepared = pipeline::prepare(fx, rules);
    let mut driver = Driver::new(pipeline, rules.clone(), fx.topology.clone());
    let times = prepared
        .series
        .iter()
        .flat_map(|s| s.points.first().into_iter().chain(s.points.last()))
        .map(|p| p.t);
    let (Some(start), Some(end)) = (times.clone().min(), times.max()) else {
        bail!("the fixture has no samples");
    };
    let step = Duration::from_secs_f64(drive::STEP_SECS as f64 / clock_speed);
    let mut now = start;
    // Verification reads only samples up to `now`, so the whole recording can be shared once.
    window.update(now, prepared.series.clone());
    while now <= end {
        let tick = tokio::time::Instant::now();
        metrics.steps.inc();
        window.set_now(now);
        let stepped = driver.step_prepared(&prepared, Vec::new(), now);
        for (incident, plan) in opener.consume(&driver.pipeline, stepped.events, now) {
            opener.offer(incident, plan, now).await;
        }
        opener.flush(&mut driver.pipeline, now).await;
        opener.reranked(&driver.pipeline).await;
        now = now.plus_secs(drive::STEP_SECS);
        let spent = tick.elapsed();
        if spent < step {
            tokio::time::sleep(step - spent).await;
        }
    }
    Ok(())
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
    // Nodes, labelled with their cell and zone, so that a cordon has nodes to mark unschedulable.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    for n in &topo.nodes {
        let mut labels = serde_json::Map::new();
        if let Some(c) = &n.cell {
            labels.insert(cellwarden_remediator::actuate::NODE_CELL_LABEL.into(), c.clone().into());
        }
        if let Some(z) = &n.zone {
            labels.insert("topology.kubernetes.io/zone".into(), z.clone().into());
        }
        nodes
            .patch(
                &n.name,
                &pp,
                &Patch::Apply(serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n.name, "labels": labels}})),
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
        assert_eq!(cfg.source, Source::Simulator("memory-leak".into()));
        assert_eq!(cfg.limits().mode, Mode::DryRun);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, "mdoe: act\n").unwrap();
        let err = format!("{:#}", Config::load(&p).unwrap_err());
        assert!(err.contains("unknown field") && err.contains("mdoe"), "{err}");
        // `mode` and `source` are typed: an unknown one fails the load with its name.
        std::fs::write(&p, "mode: yolo\n").unwrap();
        let err = format!("{:#}", Config::load(&p).unwrap_err());
        assert!(err.contains("mode") && err.contains("yolo") && err.contains("`dry-run`"), "{err}");
        std::fs::write(&p, "source: fixtures/memory-leak\n").unwrap();
        let err = format!("{:#}", Config::load(&p).unwrap_err());
        assert!(err.contains("expected live, fixture:<dir> or simulator:<scenario>"), "{err}");
        assert_eq!("fixture:a/b".parse::<Source>(), Ok(Source::Fixture("a/b".into())));
        assert!("simulator:".parse::<Source>().is_err());
        // The example's collector and operator settings are the defaults it documents.
        assert_eq!(cfg.receivers.listen.port(), 4318);
        assert_eq!(cfg.lease_duration_secs, 15);
        let defaults = Config::default();
        assert_eq!(cfg.receivers.connections, defaults.receivers.connections);
        assert_eq!(cfg.admin_connections, defaults.admin_connections);
        assert_eq!(cfg.admin_listen, defaults.admin_listen);
        assert_eq!(
            (cfg.insecure_receivers, cfg.startup_timeout_secs, cfg.shutdown_grace_secs),
            (false, 30, 20)
        );
        assert!(cfg.notify.is_empty() && cfg.scrape.is_none() && cfg.query.is_none());
        std::fs::write(&p, "receivers:\n  listne: 0.0.0.0:1\n").unwrap();
        assert!(format!("{:#}", Config::load(&p).unwrap_err()).contains("listne"));
        std::fs::write(&p, "notify:\n  - url: http://hooks\n    format: teams\n").unwrap();
        assert!(format!("{:#}", Config::load(&p).unwrap_err()).contains("teams"));
    }

    #[test]
    fn the_byte_budgets_and_ingest_limits_are_read_checked_and_typos_refused() {
        let cfg = Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("cellwarden.example.yaml")).unwrap();
        let defaults = Config::default();
        assert_eq!(
            (
                cfg.max_store_bytes,
                cfg.ingest_limits,
                cfg.receivers.max_spans_buffered_bytes,
                cfg.receivers.max_alerts_buffered_bytes
            ),
            (
                defaults.max_store_bytes,
                defaults.ingest_limits,
                defaults.receivers.max_spans_buffered_bytes,
                defaults.receivers.max_alerts_buffered_bytes
            ),
            "the example documents the defaults"
        );
        for (yaml, needle) in [
            ("max_store_byte: 1\n", "max_store_byte"),
            ("incident_ttl_sec: 60\n", "incident_ttl_sec"),
            ("incident_ttl_secs: 0\n", "incident_ttl_secs must be at least 60"),
            ("ingest_limits:\n  max_label_value_byte: 1\n", "max_label_value_byte"),
            ("ingest_limits:\n  max_labels_per_serie: 1\n", "max_labels_per_serie"),
            ("receivers:\n  max_spans_buffered_byte: 1\n", "max_spans_buffered_byte"),
            ("receivers:\n  max_alerts_bufered_bytes: 1\n", "max_alerts_bufered_bytes"),
            ("max_store_bytes: 1000\n", "max_store_bytes must be at least 1048576"),
            (
                "ingest_limits:\n  max_label_value_bytes: 0\n",
                "ingest_limits.max_label_value_bytes",
            ),
            (
                "ingest_limits:\n  max_attributes_per_span: 0\n",
                "ingest_limits.max_attributes_per_span",
            ),
            ("receivers:\n  max_spans_buffered_bytes: 0\n", "receivers.max_spans_buffered_bytes"),
            (
                "receivers:\n  max_alerts_buffered_bytes: 0\n",
                "receivers.max_alerts_buffered_bytes",
            ),
        ] {
            let err = load_error(yaml);
            assert!(err.contains(needle), "{yaml:?}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, "max_store_bytes: 8388608\ningest_limits:\n  max_label_value_bytes: 100\n").unwrap();
        let cfg = Config::load(&p).unwrap();
        assert_eq!((cfg.max_store_bytes, cfg.ingest_limits.max_label_value_bytes), (8 << 20, 100));
        assert_eq!(cfg.ingest_limits.max_labels_per_series, 30, "the rest keep their defaults");
        assert_eq!(Config::default().incident_ttl_secs, 604_800);
        assert_eq!(retention_sweep_every(604_800), Duration::from_secs(600));
        assert_eq!(retention_sweep_every(60), Duration::from_secs(6));
    }

    /// `Config::load`'s error for a file holding `yaml`, as printed.
    fn load_error(yaml: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, yaml).unwrap();
        match Config::load(&p) {
            Ok(_) => panic!("accepted: {yaml}"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn useless_settings_are_refused_by_name() {
        let cases = [
            (
                "receivers:\n  max_ingest_samples_per_sec: 0\n",
                "receivers.max_ingest_samples_per_sec",
            ),
            ("receivers:\n  max_body_bytes: 0\n", "receivers.max_body_bytes"),
            ("receivers:\n  max_decoded_bytes: 1024\n", "receivers.max_decoded_bytes"),
            (
                "receivers:\n  connections:\n    idle_timeout_secs: 0\n",
                "receivers.connections.idle_timeout_secs",
            ),
            ("admin_connections:\n  max_connections: 0\n", "admin_connections.max_connections"),
            ("notify:\n  - url: not a url\n", "notify[0].url"),
            ("notify:\n  - url: ftp://hooks/x\n", "notify[0].url"),
            ("namespace: Cell_Warden\n", "namespace"),
            ("namespace: \"\"\n", "namespace"),
            ("cells: [\"cell 1\"]\n", "cells"),
            ("admin_listen: localhost:http\n", "admin_listen"),
            ("admin_listen: 0.0.0.0:99999\n", "admin_listen"),
            ("admin_listen: 0.0.0.0:4318\n", "admin_listen and receivers.listen"),
            ("startup_timeout_secs: 0\n", "startup_timeout_secs"),
            ("shutdown_grace_secs: 0\n", "shutdown_grace_secs"),
            ("shutdown_grace_secs: 18446744073709551615\n", "shutdown_grace_secs"),
            (
                "receivers:\n  connections:\n    max_connections: 18446744073709551615\n",
                "receivers.connections.max_connections",
            ),
        ];
        for (yaml, field) in cases {
            let t = std::time::Instant::now();
            let err = load_error(yaml);
            assert!(err.contains(field), "{yaml:?} should name {field}: {err}");
            assert!(t.elapsed() < Duration::from_secs(1), "{yaml:?} took {:?}", t.elapsed());
        }
        // A long cell list makes a Lease name past 253 characters.
        let many: Vec<String> = (0..40).map(|i| format!("cell-number-{i}")).collect();
        let err = load_error(&format!("cells: [{}]\n", many.join(", ")));
        assert!(err.contains("Lease name") && err.contains("253"), "{err}");
    }

    #[test]
    fn act_mode_needs_a_receivers_token_unless_told_insecure() {
        let err = load_error("mode: act\nsource: live\n");
        assert!(
            err.contains("receivers.bearer_token_file") && err.contains("insecure_receivers: true"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        for ok in [
            "mode: act\nsource: live\ninsecure_receivers: true\n",
            "mode: act\nsource: live\nreceivers:\n  bearer_token_file: /var/run/secrets/cellwarden/receivers/token\n",
            "mode: dry-run\nsource: live\n",
            "mode: observe\nsource: live\n",
            // No receivers run for the simulator and fixture sources.
            "mode: act\nsource: simulator:memory-leak\n",
        ] {
            std::fs::write(&p, ok).unwrap();
            Config::load(&p).unwrap_or_else(|e| panic!("{ok:?}: {e:#}"));
        }
        // The command line's overrides are checked the same way.
        let cfg = Config {
            mode: Mode::Act,
            source: Source::Live,
            ..Config::default()
        };
        assert!(cfg.check().is_err());
    }

    #[test]
    fn a_config_file_past_the_size_cap_fails_at_once() {
        let t = std::time::Instant::now();
        let err = format!("{:#}", Config::load(Path::new("/dev/zero")).unwrap_err());
        assert!(err.contains("/dev/zero") && err.contains("larger than"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    #[test]
    fn a_shard_has_its_own_lease_and_keeps_to_its_cells() {
        let cfg = Config {
            cells: vec!["cell-2".into(), "cell-1".into()],
            ..Config::default()
        };
        assert_eq!(cfg.shard().as_deref(), Some("cell-1,cell-2"));
        assert_eq!(lease_name(cfg.shard().as_deref()), "cellwarden-leader-cell-1-cell-2");
        assert_eq!(Config::default().shard(), None);
        let cells: HashSet<String> = cfg.cells.iter().cloned().collect();
        let act = |kind, target: &str| Action {
            kind,
            target: target.into(),
            params: vec![],
            reason: String::new(),
            needs_approval: false,
            expected_effect: String::new(),
            verify_within_secs: 0,
        };
        assert!(in_shard(&act(ActionKind::Scale, "cell-1/ledger"), &cells));
        assert!(!in_shard(&act(ActionKind::Scale, "cell-3/ledger"), &cells));
        assert!(!in_shard(&act(ActionKind::Cordon, "cell-3"), &cells));
        assert!(
            in_shard(&act(ActionKind::FailoverProvider, "provider-a"), &cells),
            "each shard fails over in its own cells"
        );
        assert!(in_shard(&act(ActionKind::Cordon, "cell-3"), &HashSet::new()));
    }

    #[test]
    fn the_window_reads_an_entity_as_its_highest_series_and_never_ahead_of_now() {
        use cellwarden_detector::signals::SignalSeries;
        use cellwarden_models::{Entity, SeriesKey, Signal};
        let pod = |name: &str, pts: &[(i64, f64)]| SignalSeries {
            key: SeriesKey::new("container_memory_working_set_bytes", [("pod".to_string(), name.to_string())]),
            signal: Signal::Memory,
            entity: Some(Entity::service(Some("cell-2"), "ledger")),
            points: pts.iter().map(|&(t, value)| Sample { t: Timestamp(t), value }).collect(),
        };
        let w = SharedWindow::default();
        // A restart: the old pod stops at t=2, the new one starts at t=3.
        w.update(
            Timestamp(3),
            vec![
                pod("old", &[(1, 400.0), (2, 450.0)]),
                pod("new", &[(2, 10.0), (3, 20.0), (4, 30.0)]),
            ],
        );
        let got = w.samples("memory", "service:cell-2/ledger", "", Timestamp(2));
        assert_eq!(
            got,
            vec![
                Sample {
                    t: Timestamp(2),
                    value: 450.0
                },
                Sample {
                    t: Timestamp(3),
                    value: 20.0
                }
            ]
        );
        assert_eq!(w.now(), Timestamp(3));
        let key = "container_memory_working_set_bytes{pod=\"new\"}";
        assert_eq!(w.samples("memory", "", key, Timestamp(0)).len(), 2, "t=4 lies ahead of now");
    }
}
