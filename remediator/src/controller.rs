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

use crate::actuate::{Actuator, Undo};
use crate::audit::AuditLog;
use crate::crd::{
    ActionRecord, AlertRecord, Approval, ApprovalSeen, Incident, IncidentSpec, IncidentStatus, LifecycleStatus, PlannedAction,
    RootCauseCandidate, TimelineItem, Verification, Watch,
};
use crate::notify::{Notification, NotificationKind, Notifier};
use cellwarden_engine::verify::{self, Expectation, Verdict};
use cellwarden_models::plan::Plan;
use cellwarden_models::{
    Action, ActionKind, Entity, Incident as ModelIncident, Lifecycle, Mode, Phase, Sample, SeriesKey, Signal, Timestamp,
};
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

/// Annotation a person sets on an Incident to approve its waiting actions.
pub const APPROVED_BY: &str = "cellwarden.io/approved-by";
/// When they approved (RFC 3339); the approval holds for the policy's `approval_ttl_secs`.
pub const APPROVED_AT: &str = "cellwarden.io/approved-at";
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
        };
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

fn label(a: &ActionRecord) -> String {
    format!("{} {}", a.kind, a.target)
}

/// The planned record of `a`, with what verification will watch.
fn record(a: &Action, incident: &ModelIncident, now: Timestamp, state: &str, reason: String) -> ActionRecord {
    let watch = verify::expect(a, incident, now).map(|e| Watch {
        series: e.series.to_string(),
        entity: e.entity.as_ref().map(Entity::qualified).unwrap_or_default(),
        signal: e.signal.as_str().into(),
        level_at_action: e.level_at_action,
        wanted_at_most: e.wanted_at_most,
        trend_window_secs: e.trend_window_secs,
    });
    ActionRecord {
        kind: a.kind.as_str().into(),
        target: a.target.clone(),
        at: now.to_rfc3339(),
        state: state.into(),
        reason,
        spec: Some(PlannedAction {
            params: a.params.iter().cloned().collect(),
            needs_approval: a.needs_approval,
            expected_effect: a.expected_effect.clone(),
            verify_within_secs: a.verify_within_secs,
            watch,
        }),
        undo: None,
    }
}

/// The action a record describes (for the actuator).
fn action_of(r: &ActionRecord) -> Option<Action> {
    let spec = r.spec.clone().unwrap_or_default();
    Some(Action {
        kind: ActionKind::parse(&r.kind)?,
        target: r.target.clone(),
        params: spec.params.into_iter().collect(),
        reason: String::new(),
        needs_approval: spec.needs_approval,
        expected_effect: spec.expected_effect,
        verify_within_secs: spec.verify_within_secs,
    })
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
            Some(existing) if existing.status.as_ref().is_none_or(|s| s.phase.is_empty()) => {
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
    if created {
        ctx.metrics.incidents.inc();
    }
    let top = incident
        .candidates
        .first()
        .map(|c| format!("{} ({})", c.entity.name, c.class.as_str()))
        .unwrap_or_else(|| "none".into());
    let opened_text = format!("Incident opened; most likely root cause {top}.");
    if created {
        ctx.event(&name, EventType::Warning, "IncidentOpened", "Detect", opened_text.clone())
            .await;
        ctx.audit(
            now,
            "incident_opened",
            json!({"incident": name, "class": format!("{:?}", incident.class), "root_cause": incident.candidates.iter().take(3).map(|c| &c.entity.name).collect::<Vec<_>>()}),
        );
        ctx.notify(NotificationKind::IncidentOpened, &name, now, opened_text, None);
    }
    let mut status = IncidentStatus {
        phase: "Open".into(),
        timeline: vec![TimelineItem {
            at: now.to_rfc3339(),
            kind: "opened".into(),
            text: match incident.alerts.first() {
                Some(a) => format!("Opened by Alertmanager alert {}; most likely root cause {top}.", a.name),
                None => format!(
                    "Opened from {} anomalous series; most likely root cause {top}.",
                    incident.anomalies.len()
                ),
            },
        }],
        root_cause: root_cause(incident),
        alerts: alert_records(incident),
        ..IncidentStatus::default()
    };
    for r in &plan.refused {
        status
            .planned
            .push(record(&r.action, incident, now, "refused", format!("{}: {}", r.guard, r.reason)));
        if !created {
            continue;
        }
        ctx.metrics.action(r.action.kind.as_str(), "refused");
        let text = format!(
            "{} {} refused by the {} guard: {}",
            r.action.kind, r.action.target, r.guard, r.reason
        );
        ctx.event(&name, EventType::Normal, "ActionRefused", r.action.kind.as_str(), text)
            .await;
        ctx.audit(
            now,
            "action_refused",
            json!({"incident": name, "kind": r.action.kind.as_str(), "target": r.action.target, "guard": r.guard, "reason": r.reason}),
        );
    }
    for a in plan.actions.iter().filter(|a| a.kind != ActionKind::Notify) {
        let state = if ctx.mode != Mode::Act {
            "planned"
        } else if a.needs_approval {
            "awaiting-approval"
        } else {
            "pending"
        };
        status.planned.push(record(a, incident, now, state, a.reason.clone()));
        if !created {
            continue;
        }
        match state {
            "planned" => {
                ctx.metrics.action(a.kind.as_str(), "planned");
                ctx.event(
                    &name,
                    EventType::Normal,
                    "ActionPlanned",
                    a.kind.as_str(),
                    format!("{} {} planned, not carried out ({} mode).", a.kind, a.target, ctx.mode.as_str()),
                )
                .await;
                ctx.audit(
                    now,
                    "action_planned",
                    json!({"incident": name, "kind": a.kind.as_str(), "target": a.target, "mode": ctx.mode.as_str()}),
                );
            }
            "awaiting-approval" => {
                ctx.metrics.action(a.kind.as_str(), "awaiting_approval");
                let text = format!("{} {} waits for {APPROVED_BY} on this Incident.", a.kind, a.target);
                ctx.event(&name, EventType::Normal, "ApprovalRequested", a.kind.as_str(), text.clone())
                    .await;
                ctx.audit(
                    now,
                    "approval_requested",
                    json!({"incident": name, "kind": a.kind.as_str(), "target": a.target}),
                );
                ctx.notify(
                    NotificationKind::ApprovalRequested,
                    &name,
                    now,
                    text,
                    Some(format!("kubectl -n {} annotate incident {name} {APPROVED_BY}=$USER", ctx.namespace)),
                );
            }
            _ => {}
        }
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

fn root_cause(incident: &ModelIncident) -> Vec<RootCauseCandidate> {
    incident
        .candidates
        .iter()
        .map(|c| RootCauseCandidate {
            entity: c.entity.name.clone(),
            kind: c.entity.kind.as_str().into(),
            class: c.class.as_str().into(),
            score: format!("{:.3}", c.score),
        })
        .collect()
}

fn alert_records(incident: &ModelIncident) -> Vec<AlertRecord> {
    incident
        .alerts
        .iter()
        .map(|a| AlertRecord {
            name: a.name.clone(),
            fingerprint: a.fingerprint.clone(),
            state: if a.firing { "firing" } else { "resolved" }.into(),
            severity: a.severity.clone(),
            entity: a.entity.as_ref().map(Entity::qualified),
            starts_at: a.starts_at.map(|t| t.to_rfc3339()),
            last_seen_at: a.seen_at.to_rfc3339(),
            summary: a.summary.clone(),
            generator_url: a.generator_url.clone(),
        })
        .collect()
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
    let patch = json!({"status": {"alerts": alert_records(incident), "rootCause": root_cause(incident)}});
    let pp = PatchParams::default();
    let p = Patch::Merge(&patch);
    crate::actuate::with_retries(|| api.patch_status(&name, &pp, &p)).await?;
    let firing: Vec<&str> = incident.alerts.iter().filter(|a| a.firing).map(|a| a.name.as_str()).collect();
    let resolved: Vec<&str> = incident.alerts.iter().filter(|a| !a.firing).map(|a| a.name.as_str()).collect();
    let top = incident
        .candidates
        .first()
        .map(|c| format!("{} ({})", c.entity.name, c.class.as_str()))
        .unwrap_or_else(|| "none".into());
    let list = |v: &[&str]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    let alerts = format!("Alertmanager alerts firing: {}; resolved: {}.", list(&firing), list(&resolved));
    let (reason, text) = match joined {
        Joined::Alert => ("AlertJoined", format!("{alerts} Most likely root cause now {top}.")),
        Joined::Alarm => (
            "AlarmJoined",
            format!("The detectors' alarm joined the incident an alert opened. {alerts} Most likely root cause now {top}."),
        ),
    };
    ctx.event(&name, EventType::Normal, reason, "Detect", text).await;
    ctx.audit(
        now,
        "evidence_joined",
        json!({"incident": name, "by": if joined == Joined::Alert { "alert" } else { "alarm" }, "firing": firing, "resolved": resolved, "root_cause": incident.candidates.iter().take(3).map(|c| &c.entity.name).collect::<Vec<_>>()}),
    );
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
    let (reason, kind, event_type) = match lc.phase {
        Phase::Resolved => ("IncidentResolved", NotificationKind::IncidentResolved, EventType::Normal),
        Phase::Escalated => ("IncidentEscalated", NotificationKind::IncidentEscalated, EventType::Warning),
        _ => ("IncidentReopened", NotificationKind::IncidentReopened, EventType::Warning),
    };
    ctx.event(&name, event_type, reason, "Lifecycle", text.clone()).await;
    ctx.audit(
        now,
        "incident_lifecycle",
        json!({"incident": name, "phase": lc.phase.as_str(), "dedup_key": lc.dedup_key}),
    );
    ctx.notify(kind, &name, now, text, None);
    Ok(())
}

/// The CRD's form of an engine lifecycle at `now`.
pub fn lifecycle_status(lc: &Lifecycle, now: Timestamp) -> LifecycleStatus {
    LifecycleStatus {
        phase: lc.phase.as_str().into(),
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
    let patch = json!({"status": {"rootCause": root_cause(incident)}});
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

/// The approval the annotations on an Incident give, as first seen: `previous` while the
/// annotations are unchanged, else a new one covering the actions `awaiting` approval now.
/// `None` without a non-empty `approved-by`, or with an `approved-at` that is no RFC 3339 time.
fn seen_approval(
    annotations: Option<&BTreeMap<String, String>>,
    previous: Option<&ApprovalSeen>,
    awaiting: &[String],
    wall_ms: i64,
) -> Option<ApprovalSeen> {
    let ann = annotations?;
    let by = ann.get(APPROVED_BY)?.trim().to_string();
    if by.is_empty() {
        return None;
    }
    let annotated_at = ann.get(APPROVED_AT).cloned();
    if let Some(p) = previous.filter(|p| p.by == by && p.annotated_at == annotated_at) {
        return Some(p.clone());
    }
    let at = match &annotated_at {
        Some(at) => Timestamp::parse_rfc3339(at).ok()?.to_rfc3339(),
        // No time given: the approval counts from when cellwarden first sees it.
        None => Timestamp(wall_ms).to_rfc3339(),
    };
    Some(ApprovalSeen {
        by,
        at,
        annotated_at,
        covers: awaiting.to_vec(),
    })
}

/// Whether `seen` approves the action labelled `action` at `wall_ms`: it covers it and has not
/// expired (`ttl_secs` after it counts from).
fn approves(seen: &ApprovalSeen, action: &str, wall_ms: i64, ttl_secs: u64) -> bool {
    let Ok(at) = Timestamp::parse_rfc3339(&seen.at) else {
        return false;
    };
    seen.covers.iter().any(|c| c == action) && wall_ms <= at.millis() + ttl_secs as i64 * 1000
}

/// Drives one Incident from its status: carry out, verify, revert, escalate.
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
    let Some(mut status) = inc.status.clone() else {
        // `open` writes the status right after creating the object.
        return Ok(Requeue::requeue(ctx.poll));
    };
    let now = ctx.telemetry.now();
    let before = status.clone();
    let wall = (ctx.wall_ms)();
    let awaiting: Vec<String> = status
        .planned
        .iter()
        .filter(|p| p.state == "awaiting-approval")
        .map(label)
        .collect();
    status.approval_seen = seen_approval(inc.metadata.annotations.as_ref(), status.approval_seen.as_ref(), &awaiting, wall);
    let seen = status.approval_seen.clone();
    let approved = seen.as_ref().map(|s| (s.by.clone(), s.at.clone()));

    // 0. An action left `applying` was interrupted (the operator stopped between marking and
    // recording it): it may or may not have happened, so it is not repeated but escalated.
    for p in status.planned.iter_mut().filter(|p| p.state == "applying") {
        p.state = "failed".into();
        p.reason = "interrupted while being carried out (operator restarted); not repeated — check the target by hand".into();
        ctx.audit(
            now,
            "action_interrupted",
            json!({"incident": name, "kind": p.kind, "target": p.target}),
        );
    }

    // 1. Carry out what is pending, and what waited for an approval that now holds. They are
    // marked `applying` in the cluster first, so a crash mid-way can never make them run twice.
    let mut go: Vec<(usize, String)> = Vec::new();
    for (i, p) in status.planned.iter_mut().enumerate() {
        let ready = match p.state.as_str() {
            "pending" => true,
            "awaiting-approval" => seen.as_ref().is_some_and(|s| approves(s, &label(p), wall, ctx.approval_ttl_secs)),
            _ => false,
        };
        if ready && ctx.mode == Mode::Act {
            go.push((i, std::mem::replace(&mut p.state, "applying".into())));
        }
    }
    if !go.is_empty() {
        // Fencing: only an instance that provably holds the Lease marks and carries out actions;
        // one that lost it (a hung renewal) changes nothing and writes nothing.
        if let Err(e) = ctx.actuator.fence().await {
            ctx.metrics.fenced.inc();
            tracing::warn!(incident = %name, error = %e, "Not carrying out the Incident's actions: this instance cannot prove it leads.");
            return Ok(Requeue::requeue(ctx.poll * 5));
        }
        persist(&ctx, &name, &status).await?;
    }
    for (i, state) in go {
        let rec = status.planned[i].clone();
        let Some(action) = action_of(&rec) else {
            status.planned[i].state = "failed".into();
            status.planned[i].reason = format!("unknown action kind {:?}", rec.kind);
            continue;
        };
        if state == "awaiting-approval" {
            if let Some((by, at)) = &approved {
                status.approvals.push(Approval {
                    action: label(&rec),
                    by: by.clone(),
                    at: at.clone(),
                });
                ctx.audit(
                    now,
                    "approved",
                    json!({"incident": name, "kind": rec.kind, "target": rec.target, "by": by, "at": at}),
                );
            }
        }
        let by = approved.as_ref().filter(|_| state == "awaiting-approval").map(|(b, _)| b.clone());
        match ctx.actuator.apply(&action, &now.to_rfc3339()).await {
            Ok(applied) => {
                ctx.metrics.action(&rec.kind, "done");
                status.planned[i].state = "done".into();
                let mut taken = rec.clone();
                taken.at = now.to_rfc3339();
                taken.state = "done".into();
                taken.reason = applied.what.clone();
                taken.undo = applied.undo.as_ref().map(|u| serde_json::to_string(u).expect("undo serialises"));
                status.taken.push(taken);
                if let Some(w) = rec.spec.as_ref().and_then(|s| s.watch.clone()).filter(|_| applied.changed) {
                    let deadline = Timestamp(now.millis() + action.verify_within_secs as i64 * 1000);
                    status.verifications.push(Verification {
                        action: label(&rec),
                        expected: format!(
                            "{} ({} of {} down to at most {:.4} from {:.4})",
                            action.expected_effect,
                            w.signal,
                            if w.entity.is_empty() { &w.series } else { &w.entity },
                            w.wanted_at_most,
                            w.level_at_action
                        ),
                        acted_at: now.to_rfc3339(),
                        deadline: deadline.to_rfc3339(),
                        result: "pending".into(),
                        detail: String::new(),
                    });
                }
                status.timeline.push(TimelineItem {
                    at: now.to_rfc3339(),
                    kind: "action".into(),
                    text: match &by {
                        Some(b) => format!("{} (approved by {b})", applied.what),
                        None => applied.what.clone(),
                    },
                });
                ctx.event(&name, EventType::Normal, "ActionTaken", &rec.kind, applied.what.clone())
                    .await;
                ctx.audit(
                    now,
                    "action_taken",
                    json!({"incident": name, "kind": rec.kind, "target": rec.target, "result": applied.what, "approved_by": by}),
                );
            }
            Err(e) => {
                ctx.metrics.action(&rec.kind, "failed");
                status.planned[i].state = "failed".into();
                let mut failed = rec.clone();
                failed.at = now.to_rfc3339();
                failed.state = "failed".into();
                failed.reason = e.to_string();
                status.taken.push(failed);
                ctx.event(&name, EventType::Warning, "ActionFailed", &rec.kind, e.to_string()).await;
                ctx.audit(
                    now,
                    "action_failed",
                    json!({"incident": name, "kind": rec.kind, "target": rec.target, "error": e.to_string()}),
                );
                ctx.notify(
                    NotificationKind::ActionFailed,
                    &name,
                    now,
                    format!("{} failed: {e}", label(&rec)),
                    None,
                );
            }
        }
    }

    // 2. Verify what was done; revert and escalate what did not have its effect.
    for i in 0..status.verifications.len() {
        if status.verifications[i].result != "pending" {
            continue;
        }
        let v = status.verifications[i].clone();
        let Some(taken) = status
            .taken
            .iter()
            .rev()
            .find(|t| label(t) == v.action && t.state == "done")
            .cloned()
        else {
            continue;
        };
        let Some(w) = taken.spec.as_ref().and_then(|s| s.watch.clone()) else {
            continue;
        };
        let (Some(acted_at), Some(deadline)) = (
            Timestamp::parse_rfc3339(&v.acted_at).ok(),
            Timestamp::parse_rfc3339(&v.deadline).ok(),
        ) else {
            continue;
        };
        let exp = Expectation {
            // What the verdict names: the entity's signal when one is watched, else the series.
            series: SeriesKey::new(if w.entity.is_empty() { w.series.clone() } else { w.entity.clone() }, []),
            entity: None,
            signal: Signal::parse(&w.signal).unwrap_or(Signal::Other),
            level_at_action: w.level_at_action,
            wanted_at_most: w.wanted_at_most,
            acted_at,
            deadline,
            trend_window_secs: w.trend_window_secs,
        };
        let samples = ctx.telemetry.samples(&w.signal, &w.entity, &w.series, acted_at);
        match verify::judge(&exp, &samples, now) {
            Verdict::Pending => {}
            Verdict::Passed(seen) => {
                ctx.metrics.verification("passed");
                status.verifications[i].result = "passed".into();
                status.verifications[i].detail = seen.clone();
                status.timeline.push(TimelineItem {
                    at: now.to_rfc3339(),
                    kind: "verified".into(),
                    text: format!("{}: effect seen — {seen}", v.action),
                });
                ctx.event(
                    &name,
                    EventType::Normal,
                    "VerificationPassed",
                    &taken.kind,
                    format!("{}: {seen}", v.action),
                )
                .await;
                ctx.audit(
                    now,
                    "verification_passed",
                    json!({"incident": name, "action": v.action, "seen": seen}),
                );
            }
            Verdict::Failed(seen) => {
                ctx.metrics.verification("failed");
                status.verifications[i].result = "failed".into();
                status.verifications[i].detail = seen.clone();
                let undo: Option<Undo> = taken.undo.as_deref().and_then(|u| serde_json::from_str(u).ok());
                // Putting back a change that a later action on the same target built on (a
                // cordon after a reroute) would undo that one too: escalate only.
                let superseded = status
                    .taken
                    .iter()
                    .any(|t| t.target == taken.target && t.state == "done" && t.at >= taken.at && label(t) != v.action);
                if undo.is_some() && !superseded {
                    if let Err(e) = ctx.actuator.fence().await {
                        ctx.metrics.fenced.inc();
                        tracing::warn!(incident = %name, error = %e, "Not reverting: this instance cannot prove it leads.");
                        return Ok(Requeue::requeue(ctx.poll * 5));
                    }
                }
                let reverted = match &undo {
                    Some(_) if superseded => "not reverted: a later action on the same target builds on it".to_string(),
                    Some(u) => match ctx.actuator.revert(u).await {
                        Ok(what) => {
                            ctx.metrics.action(&taken.kind, "reverted");
                            if let Some(t) = status.taken.iter_mut().rev().find(|t| label(t) == v.action && t.state == "done") {
                                t.state = "reverted".into();
                            }
                            ctx.event(&name, EventType::Warning, "ActionReverted", &taken.kind, what.clone())
                                .await;
                            ctx.audit(
                                now,
                                "action_reverted",
                                json!({"incident": name, "action": v.action, "result": what}),
                            );
                            format!("reverted ({what})")
                        }
                        Err(e) => {
                            ctx.audit(
                                now,
                                "revert_failed",
                                json!({"incident": name, "action": v.action, "error": e.to_string()}),
                            );
                            format!("revert failed: {e}")
                        }
                    },
                    None => "cannot be reverted".into(),
                };
                let text = format!(
                    "{}: the expected effect did not come — {seen}; {reverted}; escalated to a person.",
                    v.action
                );
                status.timeline.push(TimelineItem {
                    at: now.to_rfc3339(),
                    kind: "escalated".into(),
                    text: text.clone(),
                });
                ctx.event(&name, EventType::Warning, "VerificationFailed", &taken.kind, text.clone())
                    .await;
                ctx.audit(
                    now,
                    "verification_failed",
                    json!({"incident": name, "action": v.action, "seen": seen, "then": reverted}),
                );
                ctx.notify(NotificationKind::VerificationFailed, &name, now, text, None);
            }
        }
    }

    // 3. The phase follows from the records.
    let waiting = status
        .planned
        .iter()
        .any(|p| p.state == "awaiting-approval" || p.state == "pending");
    let verifying = status.verifications.iter().any(|v| v.result == "pending");
    // The engine's verdicts (`status.lifecycle`) stand over the records': a resolved incident
    // with nothing left to do stays resolved, an escalated one escalated.
    let engine = status.lifecycle.as_ref().map(|l| l.phase.as_str());
    status.phase = if status.verifications.iter().any(|v| v.result == "failed")
        || status.planned.iter().any(|p| p.state == "failed")
        || engine == Some("Escalated")
    {
        "Escalated"
    } else if verifying {
        "Mitigating"
    } else if engine == Some("Resolved") && !waiting {
        "Resolved"
    } else if !status.verifications.is_empty() && !waiting {
        "Mitigated"
    } else if status.taken.iter().any(|t| t.state == "done") {
        "Mitigating"
    } else {
        "Open"
    }
    .into();
    if status != before {
        persist(&ctx, &name, &status).await?;
    }
    if (waiting && ctx.mode == Mode::Act) || verifying {
        Ok(Requeue::requeue(ctx.poll))
    } else {
        Ok(Requeue::await_change())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const T0_MS: i64 = 1_700_000_000_000;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn an_approval_covers_only_what_awaited_it_when_first_seen() {
        let a = ann(&[(APPROVED_BY, "alice")]);
        let first = seen_approval(Some(&a), None, &["cordon cell-2".to_string()], T0_MS).unwrap();
        assert_eq!(first.at, Timestamp(T0_MS).to_rfc3339());
        assert!(approves(&first, "cordon cell-2", T0_MS + 60_000, 3600));
        // Seen again later, with a new action awaiting approval (an escalation's rollback): the
        // same approval, still covering the cordon only.
        let again = seen_approval(
            Some(&a),
            Some(&first),
            &["cordon cell-2".to_string(), "rollback cell-2/ledger".to_string()],
            T0_MS + 600_000,
        )
        .unwrap();
        assert_eq!(again, first);
        assert!(!approves(&again, "rollback cell-2/ledger", T0_MS + 600_000, 3600));
    }

    #[test]
    fn an_approval_without_a_time_expires_from_when_it_was_first_seen() {
        let a = ann(&[(APPROVED_BY, "alice")]);
        let seen = seen_approval(Some(&a), None, &["cordon cell-2".to_string()], T0_MS).unwrap();
        assert!(approves(&seen, "cordon cell-2", T0_MS + 3_600_000, 3600));
        assert!(!approves(&seen, "cordon cell-2", T0_MS + 3_600_001, 3600));
    }

    #[test]
    fn a_new_annotation_is_a_new_approval_and_a_bad_time_none() {
        let old = seen_approval(Some(&ann(&[(APPROVED_BY, "alice")])), None, &["cordon cell-2".to_string()], T0_MS).unwrap();
        let at = Timestamp(T0_MS + 7_200_000).to_rfc3339();
        let renewed = seen_approval(
            Some(&ann(&[(APPROVED_BY, "bob"), (APPROVED_AT, &at)])),
            Some(&old),
            &["rollback cell-2/ledger".to_string()],
            T0_MS + 7_300_000,
        )
        .unwrap();
        assert_eq!((renewed.by.as_str(), renewed.at.as_str()), ("bob", at.as_str()));
        assert!(approves(&renewed, "rollback cell-2/ledger", T0_MS + 7_300_000, 3600));
        assert!(seen_approval(Some(&ann(&[(APPROVED_BY, "bob"), (APPROVED_AT, "yesterday")])), None, &[], T0_MS).is_none());
        assert!(seen_approval(Some(&ann(&[(APPROVED_BY, "  ")])), None, &[], T0_MS).is_none());
    }
}
