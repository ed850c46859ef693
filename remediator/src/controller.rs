//! The operator's Incident controller, in the shape of kube-rs/controller-rs: [`open`] records a
//! new incident and its plan as an `Incident` object; [`reconcile`] (with [`error_policy`]) then
//! drives every Incident from its status alone — carries out pending and approved actions,
//! verifies each action's effect against fresh telemetry, reverts and escalates when the effect
//! does not come — so a restarted or newly elected operator picks up exactly where the last one
//! stopped and never repeats an action: the status is the state.
//!
//! Every decision becomes a Kubernetes Event, a hash-chained audit line and, where a person is
//! needed, a webhook notification. Each reconcile reads the Incident afresh (the watch cache can
//! lag behind our own last write); only the Lease holder reconciles and the runtime runs one
//! reconcile per object at a time, so cellwarden is the status' only writer and its writes are
//! plain merge patches, retried on 409/429/5xx.

use crate::actuate::Actuator;
use crate::audit::AuditLog;
use crate::crd::{Incident, IncidentSpec, IncidentStatus, LifecycleStatus};
use crate::notify::{Notification, NotificationKind, Notifier};
use crate::step::{self, Count, Effect, Reason, Severity, Tell, Wait};
use cellwarden_models::plan::Plan;
use cellwarden_models::{Incident as ModelIncident, Lifecycle, Mode, Phase, Sample, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};
use std::collections::BTreeMap;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::json;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use crate::step::{APPROVED_AT, APPROVED_BY};
/// Label on the Incidents of a `--cells` shard.
pub const SHARD_LABEL: &str = "cellwarden.io/shard";

/// What the controller reads telemetry through (the daemon's window of recent series).
pub trait Telemetry: Send + Sync {
    /// The time telemetry has reached (simulated time for the simulator and fixture sources).
    fn now(&self) -> Timestamp;
    /// Samples at or after `from`, in time order, of `signal` for `entity` (`<kind>:<name>`:
    /// the highest of the entity's series at each time), or of `series` (as
    /// `name{label="value",...}`) when `entity` is empty.
    fn samples(&self, signal: &str, entity: &str, series: &str, from: Timestamp) -> Vec<Sample>;
}

/// Errors of one reconcile; [`error_policy`] requeues them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the Incident has no name")]
    Unnamed,
}

impl Error {
    /// Whether trying again may succeed: no answer, a server error, a conflict or throttling.
    /// Any other 4xx is the request's own fault and fails the same way every time.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Kube(kube::Error::Api(s)) => !(400..500).contains(&s.code) || matches!(s.code, 409 | 429),
            Error::Kube(_) => true,
            Error::Unnamed => false,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindOutcome {
    kind: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WhatLabel {
    what: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WhatReason {
    what: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

/// The operator's own metrics (served on the admin listener's `/metrics`).
pub struct OperatorMetrics {
    pub registry: Mutex<Registry>,
    pub incidents: Counter,
    pub steps: Counter,
    actions: Family<KindOutcome, Counter>,
    verifications: Family<ResultLabel, Counter>,
    pub reconcile_errors: Counter,
    pub leader: Gauge,
    alerts: Family<OutcomeLabel, Counter>,
    /// Reconciles that would have acted or reverted but failed the fencing check.
    pub fenced: Counter,
    /// Writes waiting for the lead or the API, by what they write (`incident`, `evidence`,
    /// `lifecycle`).
    pending: Family<WhatLabel, Gauge>,
    /// Waiting writes dropped, by what and why (`pending::DropReason`).
    pending_dropped: Family<WhatReason, Counter>,
    /// Signal series the last live step saw (0: nothing feeds the pipeline).
    pub signal_series: Gauge,
    /// Live steps that took longer than `evaluate_every_secs`.
    pub steps_late: Counter,
}

impl Default for OperatorMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("cellwarden");
        let m = OperatorMetrics {
            registry: Mutex::new(Registry::default()),
            incidents: Counter::default(),
            steps: Counter::default(),
            actions: Family::default(),
            verifications: Family::default(),
            reconcile_errors: Counter::default(),
            leader: Gauge::default(),
            alerts: Family::default(),
            fenced: Counter::default(),
            pending: Family::default(),
            pending_dropped: Family::default(),
            signal_series: Gauge::default(),
            steps_late: Counter::default(),
        };
        registry.register(
            "signal_series",
            "Signal series the last live step saw (0: nothing feeds cellwarden)",
            m.signal_series.clone(),
        );
        registry.register(
            "pipeline_steps_late",
            "Live steps that took longer than evaluate_every_secs",
            m.steps_late.clone(),
        );
        registry.register(
            "pending_writes",
            "Incident writes waiting for this instance to lead or for the API to answer, by what (incident, evidence, lifecycle)",
            m.pending.clone(),
        );
        // Every series at 0 from the start, so that `increase()` sees the first drop.
        for what in ["incident", "evidence", "lifecycle"] {
            for reason in [
                crate::pending::DropReason::Full,
                crate::pending::DropReason::Expired,
                crate::pending::DropReason::Rejected,
            ] {
                m.pending_dropped(what, reason, 0);
            }
        }
        registry.register(
            "pending_writes_dropped",
            "Waiting Incident writes dropped, by what and reason (full, expired, rejected)",
            m.pending_dropped.clone(),
        );
        registry.register(
            "actions_fenced",
            "Reconciles that would have acted or reverted but could not prove this instance holds the Lease",
            m.fenced.clone(),
        );
        registry.register("incidents_opened", "Incidents opened", m.incidents.clone());
        registry.register("pipeline_steps", "Pipeline steps run", m.steps.clone());
        registry.register(
            "actions",
            "Actions by kind and outcome (done, failed, refused, awaiting_approval, planned, reverted)",
            m.actions.clone(),
        );
        registry.register(
            "verifications",
            "Verified effects by result (passed, failed)",
            m.verifications.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Incident reconciles that failed and were requeued",
            m.reconcile_errors.clone(),
        );
        registry.register("leader", "1 while this instance holds the Lease", m.leader.clone());
        registry.register(
            "alerts",
            "Alertmanager alerts taken by the pipeline, by outcome (opened, joined, noted)",
            m.alerts.clone(),
        );
        OperatorMetrics {
            registry: Mutex::new(registry),
            ..m
        }
    }
}

impl OperatorMetrics {
    pub fn action(&self, kind: &str, outcome: &str) {
        self.actions
            .get_or_create(&KindOutcome {
                kind: kind.into(),
                outcome: outcome.replace('-', "_"),
            })
            .inc();
    }
    /// Counts an Alertmanager alert by what it did: `opened` an incident, `joined` one (or
    /// changed its state there), or was only `noted`.
    pub fn alert(&self, outcome: &str) {
        self.alerts.get_or_create(&OutcomeLabel { outcome: outcome.into() }).inc();
    }
    /// Sets how many `what` writes wait.
    pub fn pending(&self, what: &str, n: usize) {
        self.pending.get_or_create(&WhatLabel { what: what.into() }).set(n as i64);
    }
    /// Counts `n` waiting `what` writes dropped for `reason`.
    pub fn pending_dropped(&self, what: &str, reason: crate::pending::DropReason, n: usize) {
        self.pending_dropped
            .get_or_create(&WhatReason {
                what: what.into(),
                reason: reason.as_str().into(),
            })
            .inc_by(n as u64);
    }
    fn verification(&self, result: &str) {
        self.verifications.get_or_create(&ResultLabel { result: result.into() }).inc();
    }
}

/// What every reconcile needs.
pub struct Context {
    pub client: Client,
    /// cellwarden's namespace (Incidents, Leases).
    pub namespace: String,
    pub actuator: Actuator,
    pub recorder: Recorder,
    pub audit: Mutex<AuditLog<Box<dyn Write + Send>>>,
    pub telemetry: Arc<dyn Telemetry>,
    /// True while this instance holds the Lease: followers reconcile nothing.
    pub leading: Arc<AtomicBool>,
    /// The effective mode (the more restrictive of config and policy).
    pub mode: Mode,
    pub approval_ttl_secs: u64,
    /// Wall-clock milliseconds (approvals are people's time, not telemetry time).
    pub wall_ms: Arc<dyn Fn() -> i64 + Send + Sync>,
    pub notifier: Notifier,
    pub metrics: Arc<OperatorMetrics>,
    /// How soon to look again while an approval or a verification is pending (real time).
    pub poll: Duration,
    /// The shard this instance handles (`--cells`): its Incidents carry the label
    /// `cellwarden.io/shard=<shard>` and a `-<shard>` name suffix, so shards never share one.
    pub shard: Option<String>,
}

impl Context {
    /// The reference Events point at (by name: the pipeline names Incidents before it has read
    /// one back, so there is no uid to give).
    fn incident_ref(&self, name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some(Incident::api_version(&()).into_owned()),
            kind: Some(Incident::kind(&()).into_owned()),
            name: Some(name.into()),
            namespace: Some(self.namespace.clone()),
            ..ObjectReference::default()
        }
    }

    async fn event(&self, incident: &str, severity: Severity, reason: Reason, action: &str, note: String) {
        let ev = Event {
            type_: match severity {
                Severity::Normal => EventType::Normal,
                Severity::Warning => EventType::Warning,
            },
            reason: reason.as_str().into(),
            note: Some(note.chars().take(1000).collect()),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &self.incident_ref(incident)).await {
            tracing::warn!(error = %e, incident, "Could not publish an Event.");
        }
    }

    /// Tells what the pure step says to tell of `incident` at `at`.
    async fn tell(&self, incident: &str, at: Timestamp, tells: Vec<Tell>) {
        for t in tells {
            match t {
                Tell::Event {
                    severity,
                    reason,
                    action,
                    note,
                } => self.event(incident, severity, reason, &action, note).await,
                Tell::Audit { event, fields } => self.audit(at, event, fields),
                Tell::Notify { kind, text, respond } => self.notify(kind, incident, at, text, respond),
                Tell::Count(Count::Action { kind, state }) => self.metrics.action(&kind, state.as_str()),
                Tell::Count(Count::Verification(result)) => self.metrics.verification(result.as_str()),
            }
        }
    }

    fn audit(&self, at: Timestamp, event: &str, fields: serde_json::Value) {
        let mut log = self.audit.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = log.record(&at.to_rfc3339(), event, fields) {
            tracing::error!(error = %e, "Could not write the audit log.");
        }
    }

    fn notify(&self, kind: NotificationKind, incident: &str, at: Timestamp, text: String, respond: Option<String>) {
        self.notifier.send(Notification {
            kind,
            incident: incident.into(),
            namespace: self.namespace.clone(),
            at: at.to_rfc3339(),
            text,
            respond,
            dedup_key: format!("cellwarden/{}/{incident}", self.namespace),
            pages: kind.pages(),
        });
    }
}

/// Records a newly opened incident and its plan as an `Incident` object (what the reconciler
/// then carries out). Returns `false` when the Incident already exists — a restarted operator
/// seeing the same incident again — and then writes nothing: the object's status is the truth.
/// (One that exists without a status — created by an earlier call whose status write failed —
/// gets its status written, without its Events, audit lines and webhooks told a second time.)
pub async fn open(ctx: &Context, incident: &ModelIncident, plan: &Plan, now: Timestamp) -> Result<bool, Error> {
    let name = incident_name(ctx, incident);
    let api: Api<Incident> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let spec = IncidentSpec {
        opened_at: incident.opened_at.to_rfc3339(),
        class: format!("{:?}", incident.class).to_lowercase(),
        cells: {
            let mut cells: Vec<String> = incident
                .candidates
                .iter()
                .filter_map(|c| c.entity.cell().map(String::from))
                .collect();
            cells.sort();
            cells.dedup();
            cells
        },
    };
    let mut obj = Incident::new(&name, spec);
    obj.metadata.namespace = Some(ctx.namespace.clone());
    if let Some(s) = &ctx.shard {
        obj.metadata.labels = Some([(SHARD_LABEL.to_string(), s.clone())].into_iter().collect());
    }
    // Whether this call created the object (and so tells of it: Events, audit, webhooks).
    let created = match api.create(&PostParams::default(), &obj).await {
        Ok(_) => true,
        Err(kube::Error::Api(s)) if s.code == 409 => match api.get_opt(&name).await? {
            Some(existing) if existing.status.is_none() => {
                // Our own earlier attempt created it and then failed to write its status: the
                // status is written now (what was told then is not told again).
                tracing::warn!(incident = %name, "The Incident exists without a status; writing it.");
                false
            }
            _ => {
                tracing::info!(incident = %name, "The Incident exists already; its status is kept as it is.");
                return Ok(false);
            }
        },
        Err(e) => return Err(e.into()),
    };
    let (status, tells) = step::opening(&name, &ctx.namespace, incident, plan, ctx.mode, now);
    if created {
        ctx.metrics.incidents.inc();
        ctx.tell(&name, now, tells).await;
    }
    let patch = json!({"status": status});
    let pp = PatchParams::default();
    let p = Patch::Merge(&patch);
    crate::actuate::with_retries(|| api.patch_status(&name, &pp, &p)).await?;
    Ok(created)
}

/// The Incident object's name for a pipeline incident (a shard's carry its suffix).
pub fn incident_name(ctx: &Context, incident: &ModelIncident) -> String {
    match &ctx.shard {
        Some(s) => format!("{}-{s}", incident.id),
        None => incident.id.clone(),
    }
}

/// What brought new evidence to an open incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// An Alertmanager alert joined it, or one of its alerts changed state.
    Alert,
    /// The detectors' alarm joined the incident an alert opened.
    Alarm,
}

/// Writes what an incident has now after new evidence joined it — its Alertmanager alerts
/// (`status.alerts`) and the ranking they led to — with an Event and an audit line.
pub async fn update_evidence(ctx: &Context, incident: &ModelIncident, now: Timestamp, joined: Joined) -> Result<(), Error> {
    let name = incident_name(ctx, incident);
    let api: Api<Incident> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let patch = json!({"status": {"alerts": step::alert_records(incident), "rootCause": step::root_cause(incident)}});
    let pp = PatchParams::default();
    let p = Patch::Merge(&patch);
    crate::actuate::with_retries(|| api.patch_status(&name, &pp, &p)).await?;
    let firing: Vec<&str> = incident.alerts.iter().filter(|a| a.firing).map(|a| a.name.as_str()).collect();
    let resolved: Vec<&str> = incident.alerts.iter().filter(|a| !a.firing).map(|a| a.name.as_str()).collect();
    let top = step::top_candidate(incident);
    let list = |v: &[&str]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    let alerts = format!("Alertmanager alerts firing: {}; resolved: {}.", list(&firing), list(&resolved));
    let (reason, note) = match joined {
        Joined::Alert => (Reason::AlertJoined, format!("{alerts} Most likely root cause now {top}.")),
        Joined::Alarm => (
            Reason::AlarmJoined,
            format!("The detectors' alarm joined the incident an alert opened. {alerts} Most likely root cause now {top}."),
        ),
    };
    let tells = vec![
        Tell::Event {
            severity: Severity::Normal,
            reason,
            action: "Detect".into(),
            note,
        },
        Tell::Audit {
            event: "evidence_joined",
            fields: json!({"incident": name, "by": if joined == Joined::Alert { "alert" } else { "alarm" }, "firing": firing, "resolved": resolved, "root_cause": incident.candidates.iter().take(3).map(|c| &c.entity.name).collect::<Vec<_>>()}),
        },
    ];
    ctx.tell(&name, now, tells).await;
    Ok(())
}

/// Writes what the incident engine says of an incident's life (`status.lifecycle`; and
/// `status.phase` when it resolved or escalated), with an Event, an audit line and a
/// notification under the incident's de-duplication key (only an escalation pages).
pub async fn update_lifecycle(ctx: &Context, incident: &ModelIncident, lc: &Lifecycle, now: Timestamp) -> Result<(), Error> {
    let name = incident_name(ctx, incident);
    let api: Api<Incident> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let record = lifecycle_status(lc, now);
    let mut status = json!({"lifecycle": record});
    if matches!(lc.phase, Phase::Resolved | Phase::Escalated) {
        status["phase"] = json!(lc.phase.as_str());
    }
    let patch = json!({ "status": status });
    let pp = PatchParams::default();
    let p = Patch::Merge(&patch);
    crate::actuate::with_retries(|| api.patch_status(&name, &pp, &p)).await?;
    let text = lc
        .notices
        .last()
        .map(|n| n.text.clone())
        .unwrap_or_else(|| format!("Incident {}.", lc.phase.as_str()));
    let (reason, kind, severity) = match lc.phase {
        Phase::Resolved => (Reason::IncidentResolved, NotificationKind::IncidentResolved, Severity::Normal),
        Phase::Escalated => (Reason::IncidentEscalated, NotificationKind::IncidentEscalated, Severity::Warning),
        _ => (Reason::IncidentReopened, NotificationKind::IncidentReopened, Severity::Warning),
    };
    let tells = vec![
        Tell::Event {
            severity,
            reason,
            action: "Lifecycle".into(),
            note: text.clone(),
        },
        Tell::Audit {
            event: "incident_lifecycle",
            fields: json!({"incident": name, "phase": lc.phase.as_str(), "dedup_key": lc.dedup_key}),
        },
        Tell::Notify { kind, text, respond: None },
    ];
    ctx.tell(&name, now, tells).await;
    Ok(())
}

/// The CRD's form of an engine lifecycle at `now`.
pub fn lifecycle_status(lc: &Lifecycle, now: Timestamp) -> LifecycleStatus {
    LifecycleStatus {
        phase: lc.phase,
        detected_at: lc.detected_at.map(|t| t.to_rfc3339()),
        mitigated_at: lc.mitigated_at.map(|t| t.to_rfc3339()),
        resolved_at: lc.resolved_at.map(|t| t.to_rfc3339()),
        escalated_at: lc.escalated_at.map(|t| t.to_rfc3339()),
        escalation: lc.escalation.clone(),
        reopened_at: lc.reopened_at.iter().map(|t| t.to_rfc3339()).collect(),
        duration_secs: lc.duration_secs(now).unwrap_or(0.0).round() as i64,
        joined: lc.joined as i64,
        dedup_key: lc.dedup_key.clone(),
    }
}

/// Writes a later ranking of an open incident (more telemetry since it opened) into its
/// Incident's `status.rootCause`, with an audit line. The plan made at opening stands.
pub async fn update_root_cause(ctx: &Context, incident: &ModelIncident) -> Result<(), Error> {
    let name = incident_name(ctx, incident);
    let api: Api<Incident> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let patch = json!({"status": {"rootCause": step::root_cause(incident)}});
    let pp = PatchParams::default();
    let p = Patch::Merge(&patch);
    crate::actuate::with_retries(|| api.patch_status(&name, &pp, &p)).await?;
    ctx.audit(
        incident.ranked_at,
        "reranked",
        json!({"incident": name, "ranked_at": incident.ranked_at.to_rfc3339(), "root_cause": incident.candidates.iter().take(3).map(|c| &c.entity.name).collect::<Vec<_>>()}),
    );
    Ok(())
}

/// Drives one Incident from its status: the pure [`step::decide`] says what to carry out,
/// verify, revert and tell; this reads what it needs, fences, carries it out and writes.
pub async fn reconcile(inc: Arc<Incident>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    if !ctx.leading.load(Ordering::SeqCst) {
        return Ok(Requeue::requeue(ctx.poll * 5));
    }
    let name = inc.metadata.name.clone().ok_or(Error::Unnamed)?;
    // The watch cache may lag behind our own last write: read the object itself, the status
    // being the state everything below decides from.
    let api: Api<Incident> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let Some(inc) = api.get_opt(&name).await? else {
        return Ok(Requeue::await_change());
    };
    let Some(before) = inc.status.clone() else {
        // `open` writes the status right after creating the object.
        return Ok(Requeue::requeue(ctx.poll));
    };
    let now = ctx.telemetry.now();
    let samples: BTreeMap<usize, Vec<Sample>> = step::reads(&before)
        .into_iter()
        .map(|r| (r.verification, ctx.telemetry.samples(&r.signal, &r.entity, &r.series, r.from)))
        .collect();
    let decided = step::decide(
        &before,
        &step::Inputs {
            name: &name,
            mode: ctx.mode,
            approval_ttl_secs: ctx.approval_ttl_secs,
            now,
            wall_ms: (ctx.wall_ms)(),
            annotations: inc.metadata.annotations.as_ref(),
            samples: &samples,
        },
    );
    if !decided.effects.is_empty() {
        // Fencing: only an instance that provably holds the Lease changes the cluster; one that
        // lost it (a hung renewal) changes nothing and writes nothing.
        if let Err(e) = ctx.actuator.fence().await {
            ctx.metrics.fenced.inc();
            tracing::warn!(incident = %name, error = %e, "Not acting on the Incident: this instance cannot prove it leads.");
            return Ok(Requeue::requeue(ctx.poll * 5));
        }
    }
    if let Some(marked) = &decided.marked {
        // What is carried out is marked `applying` in the cluster first, so a crash mid-way
        // can never make it run twice.
        persist(&ctx, &name, marked).await?;
    }
    ctx.tell(&name, now, decided.tells).await;
    let mut status = decided.status;
    for effect in decided.effects {
        let tells = match effect {
            Effect::Apply {
                planned,
                action,
                approved_by,
            } => {
                let outcome = ctx.actuator.apply(&action, &now.to_rfc3339()).await.map_err(|e| e.to_string());
                step::applied(&mut status, &name, planned, approved_by.as_deref(), outcome, now)
            }
            Effect::Revert { verification, taken, undo } => {
                let outcome = ctx.actuator.revert(&undo).await.map_err(|e| e.to_string());
                step::reverted(&mut status, &name, verification, taken, outcome, now)
            }
        };
        ctx.tell(&name, now, tells).await;
    }
    if status != before {
        persist(&ctx, &name, &status).await?;
    }
    Ok(match step::wait(&status, ctx.mode) {
        Wait::Poll => Requeue::requeue(ctx.poll),
        Wait::Change => Requeue::await_change(),
    })
}

/// Writes the status. Only the Lease holder reconciles and the runtime runs one reconcile per
/// object at a time, so cellwarden is the status' only writer after [`open`]; the write is
/// retried on 409/429/5xx so that what was done is not lost to a passing API error.
async fn persist(ctx: &Context, name: &str, status: &IncidentStatus) -> Result<(), Error> {
    let api: Api<Incident> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    // The ranking and the alerts are the pipeline's to update (`update_root_cause`,
    // `update_evidence`), never the reconciler's: leaving them out of this patch means one written
    // meanwhile is not overwritten.
    let mut body = serde_json::to_value(status).expect("a status serialises");
    if let Some(o) = body.as_object_mut() {
        o.remove("rootCause");
        o.remove("alerts");
    }
    let patch = json!({"status": body});
    let pp = PatchParams::default();
    let p = Patch::Merge(&patch);
    crate::actuate::with_retries(|| api.patch_status(name, &pp, &p)).await?;
    Ok(())
}

/// Requeues a failed reconcile after a short backoff and counts it.
pub fn error_policy(inc: Arc<Incident>, err: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.metrics.reconcile_errors.inc();
    tracing::warn!(incident = %inc.name_any(), error = %err, "Reconcile failed; trying again.");
    Requeue::requeue(ctx.poll.max(Duration::from_millis(500)))
}
