//! The Incident controller's pure step, as [`crate::lease::decide`] is the Lease's: every rule of
//! an Incident's life, with no IO and no clock — the controller (`controller::open`,
//! `controller::reconcile`) only reads, fences, carries out, writes and tells what this module
//! returns.
//!
//! - [`opening`]: a new incident and its plan → the Incident's first status and what to tell.
//! - [`reads`]: the telemetry the pending verifications need (the executor reads it).
//! - [`decide`]: the status as read, its annotations, the time and that telemetry → a [`Step`]:
//!   the status to write, the cluster changes to carry out ([`Effect`]) and what to tell
//!   ([`Tell`]: Events, audit lines, notifications, counters).
//! - [`applied`] and [`reverted`]: an effect's outcome → the status updated and what to tell.
//! - [`phase`] and [`wait`]: what the records say of the Incident's phase and when to look again.
//!
//! The tests at the bottom drive each rule in milliseconds with passed-in time.

use crate::actuate::{Applied, Undo};
use crate::crd::{
    ActionRecord, ActionState, AlertRecord, Approval, ApprovalSeen, IncidentStatus, Phase, PlannedAction, RootCauseCandidate, TimelineItem,
    Verification, VerificationResult, Watch,
};
use crate::notify::NotificationKind;
use cellwarden_engine::verify::{self, Expectation, Verdict};
use cellwarden_models::plan::Plan;
use cellwarden_models::{Action, ActionKind, Entity, Incident as ModelIncident, Mode, Sample, SeriesKey, Signal, Timestamp};
use serde_json::json;
use std::collections::BTreeMap;

pub use cellwarden_models::plan::{APPROVED_AT, APPROVED_BY};

/// An Event's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Normal,
    /// Something a person should look at: an incident, a failure, a revert, an escalation.
    Warning,
}

/// An Event's `reason`: one per kind of decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    IncidentOpened,
    ActionRefused,
    ActionPlanned,
    ApprovalRequested,
    ActionTaken,
    ActionFailed,
    VerificationPassed,
    VerificationFailed,
    ActionReverted,
    AlertJoined,
    AlarmJoined,
    IncidentResolved,
    IncidentEscalated,
    IncidentReopened,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::IncidentOpened => "IncidentOpened",
            Reason::ActionRefused => "ActionRefused",
            Reason::ActionPlanned => "ActionPlanned",
            Reason::ApprovalRequested => "ApprovalRequested",
            Reason::ActionTaken => "ActionTaken",
            Reason::ActionFailed => "ActionFailed",
            Reason::VerificationPassed => "VerificationPassed",
            Reason::VerificationFailed => "VerificationFailed",
            Reason::ActionReverted => "ActionReverted",
            Reason::AlertJoined => "AlertJoined",
            Reason::AlarmJoined => "AlarmJoined",
            Reason::IncidentResolved => "IncidentResolved",
            Reason::IncidentEscalated => "IncidentEscalated",
            Reason::IncidentReopened => "IncidentReopened",
        }
    }
}

/// A counter of the operator's `/metrics` to bump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Count {
    /// `cellwarden_actions_total{kind, outcome}`.
    Action { kind: String, state: ActionState },
    /// `cellwarden_verifications_total{result}`.
    Verification(VerificationResult),
}

/// Something to tell about an Incident (the executor adds the incident's name and the time).
#[derive(Debug, Clone, PartialEq)]
pub enum Tell {
    /// A Kubernetes Event on the Incident; `action` is the action kind or the stage (`Detect`,
    /// `Lifecycle`).
    Event {
        severity: Severity,
        reason: Reason,
        action: String,
        note: String,
    },
    /// A line of the hash-chained audit log.
    Audit {
        event: &'static str,
        fields: serde_json::Value,
    },
    /// A webhook notification under the incident's de-duplication key; `respond` is the command
    /// that answers it (the approval annotation).
    Notify {
        kind: NotificationKind,
        text: String,
        respond: Option<String>,
    },
    Count(Count),
}

/// A change to the cluster the executor carries out, then records with [`applied`] or
/// [`reverted`].
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Carry out `status.planned[planned]` (marked `applying` in [`Step::marked`]).
    Apply {
        planned: usize,
        action: Action,
        approved_by: Option<String>,
    },
    /// Put back what `status.taken[taken]` changed: its verification
    /// (`status.verifications[verification]`) failed.
    Revert { verification: usize, taken: usize, undo: Undo },
}

/// What one reconcile decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The status to write before carrying out any [`Effect::Apply`] (with the actions marked
    /// `applying`, so that a crash mid-way never repeats one); `None` when nothing is applied.
    pub marked: Option<IncidentStatus>,
    /// The status after every verdict, before the effects' outcomes.
    pub status: IncidentStatus,
    /// Cluster changes, in order. Any at all needs the fencing check first.
    pub effects: Vec<Effect>,
    pub tells: Vec<Tell>,
}

/// What [`decide`] reads besides the status.
pub struct Inputs<'a> {
    /// The Incident's name (the audit lines carry it).
    pub name: &'a str,
    /// The effective mode: only `Act` carries anything out.
    pub mode: Mode,
    pub approval_ttl_secs: u64,
    /// Telemetry time (what verification is judged at).
    pub now: Timestamp,
    /// Wall-clock milliseconds (approvals are people's time, not telemetry time).
    pub wall_ms: i64,
    pub annotations: Option<&'a BTreeMap<String, String>>,
    /// The samples [`reads`] asked for, by verification index.
    pub samples: &'a BTreeMap<usize, Vec<Sample>>,
}

/// Telemetry one pending verification needs (as `controller::Telemetry::samples` takes it).
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    pub verification: usize,
    pub signal: String,
    pub entity: String,
    pub series: String,
    pub from: Timestamp,
}

/// When to look at the Incident again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Soon (the controller's poll): an action waits to be carried out or a verification is due.
    Poll,
    /// Only when the object changes.
    Change,
}

/// `<kind> <target>`: how approvals and verifications name an action.
pub fn label(a: &ActionRecord) -> String {
    format!("{} {}", a.kind, a.target)
}

/// The planned record of `a`, with what verification will watch.
fn record(a: &Action, incident: &ModelIncident, now: Timestamp, state: ActionState, reason: String) -> ActionRecord {
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
        state,
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

/// The action a record describes (for the actuator); `None` for a kind this build does not know.
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

/// The CRD's form of an incident's ranking.
pub fn root_cause(incident: &ModelIncident) -> Vec<RootCauseCandidate> {
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

/// The CRD's form of an incident's Alertmanager alerts.
pub fn alert_records(incident: &ModelIncident) -> Vec<AlertRecord> {
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

/// `entity (class)` of the top candidate, or `none`.
pub fn top_candidate(incident: &ModelIncident) -> String {
    incident
        .candidates
        .first()
        .map(|c| format!("{} ({})", c.entity.name, c.class.as_str()))
        .unwrap_or_else(|| "none".into())
}

fn event(severity: Severity, reason: Reason, action: &str, note: String) -> Tell {
    Tell::Event {
        severity,
        reason,
        action: action.into(),
        note,
    }
}

fn audit(event: &'static str, fields: serde_json::Value) -> Tell {
    Tell::Audit { event, fields }
}

fn count(kind: &str, state: ActionState) -> Tell {
    Tell::Count(Count::Action { kind: kind.into(), state })
}

/// The first status of the Incident `name` for a newly opened `incident` and its `plan`, and
/// what to tell of it (told only by the call that created the object). Actions start
/// `pending` in `act` mode (or `awaiting-approval` where the policy wants a person), else
/// `planned`; refusals are recorded with their guard.
pub fn opening(
    name: &str,
    namespace: &str,
    incident: &ModelIncident,
    plan: &Plan,
    mode: Mode,
    now: Timestamp,
) -> (IncidentStatus, Vec<Tell>) {
    let top = top_candidate(incident);
    let opened_text = format!("Incident opened; most likely root cause {top}.");
    let mut tells = vec![
        event(Severity::Warning, Reason::IncidentOpened, "Detect", opened_text.clone()),
        audit(
            "incident_opened",
            json!({"incident": name, "class": format!("{:?}", incident.class), "root_cause": incident.candidates.iter().take(3).map(|c| &c.entity.name).collect::<Vec<_>>()}),
        ),
        Tell::Notify {
            kind: NotificationKind::IncidentOpened,
            text: opened_text,
            respond: None,
        },
    ];
    let mut status = IncidentStatus {
        phase: Phase::Open,
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
        let kind = r.action.kind.as_str();
        status.planned.push(record(
            &r.action,
            incident,
            now,
            ActionState::Refused,
            format!("{}: {}", r.guard, r.reason),
        ));
        tells.push(count(kind, ActionState::Refused));
        tells.push(event(
            Severity::Normal,
            Reason::ActionRefused,
            kind,
            format!(
                "{} {} refused by the {} guard: {}",
                r.action.kind, r.action.target, r.guard, r.reason
            ),
        ));
        tells.push(audit(
            "action_refused",
            json!({"incident": name, "kind": kind, "target": r.action.target, "guard": r.guard, "reason": r.reason}),
        ));
    }
    for a in plan.actions.iter().filter(|a| a.kind != ActionKind::Notify) {
        let kind = a.kind.as_str();
        let state = if mode != Mode::Act {
            ActionState::Planned
        } else if a.needs_approval {
            ActionState::AwaitingApproval
        } else {
            ActionState::Pending
        };
        status.planned.push(record(a, incident, now, state, a.reason.clone()));
        match state {
            ActionState::Planned => {
                tells.push(count(kind, state));
                tells.push(event(
                    Severity::Normal,
                    Reason::ActionPlanned,
                    kind,
                    format!("{} {} planned, not carried out ({} mode).", a.kind, a.target, mode.as_str()),
                ));
                tells.push(audit(
                    "action_planned",
                    json!({"incident": name, "kind": kind, "target": a.target, "mode": mode.as_str()}),
                ));
            }
            ActionState::AwaitingApproval => {
                let text = format!("{} {} waits for {APPROVED_BY} on this Incident.", a.kind, a.target);
                tells.push(count(kind, state));
                tells.push(event(Severity::Normal, Reason::ApprovalRequested, kind, text.clone()));
                tells.push(audit(
                    "approval_requested",
                    json!({"incident": name, "kind": kind, "target": a.target}),
                ));
                tells.push(Tell::Notify {
                    kind: NotificationKind::ApprovalRequested,
                    text,
                    respond: Some(format!("kubectl -n {namespace} annotate incident {name} {APPROVED_BY}=$USER")),
                });
            }
            _ => {}
        }
    }
    (status, tells)
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

/// The pending verification `v` as the verifier judges it, with the index of the taken action
/// it checks; `None` when it is not pending or its records are incomplete.
fn expectation(status: &IncidentStatus, v: usize) -> Option<(usize, Watch, Expectation)> {
    let ver = &status.verifications[v];
    if ver.result != VerificationResult::Pending {
        return None;
    }
    let taken = status
        .taken
        .iter()
        .rposition(|t| label(t) == ver.action && t.state == ActionState::Done)?;
    let w = status.taken[taken].spec.as_ref()?.watch.clone()?;
    let acted_at = Timestamp::parse_rfc3339(&ver.acted_at).ok()?;
    let deadline = Timestamp::parse_rfc3339(&ver.deadline).ok()?;
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
    Some((taken, w, exp))
}

/// The telemetry the pending verifications need, for the executor to read before [`decide`].
pub fn reads(status: &IncidentStatus) -> Vec<Read> {
    (0..status.verifications.len())
        .filter_map(|v| {
            let (_, w, exp) = expectation(status, v)?;
            Some(Read {
                verification: v,
                signal: w.signal,
                entity: w.entity,
                series: w.series,
                from: exp.acted_at,
            })
        })
        .collect()
}

/// One reconcile: what to carry out, what the verifications say, what to revert, what to tell.
///
/// In order: an action left `applying` was interrupted (the operator stopped between marking
/// and recording it) — it may or may not have happened, so it fails and is never repeated; in
/// `act` mode what is pending, and what waits for an approval that now holds, is marked
/// `applying` and carried out; each pending verification is judged on the samples read for it —
/// passed, failed and reverted (unless a later action on the same target builds on it), or
/// failed and escalated.
pub fn decide(status: &IncidentStatus, input: &Inputs<'_>) -> Step {
    let mut s = status.clone();
    let mut tells = Vec::new();
    let mut effects = Vec::new();
    let name = input.name;
    let awaiting: Vec<String> = s
        .planned
        .iter()
        .filter(|p| p.state == ActionState::AwaitingApproval)
        .map(label)
        .collect();
    s.approval_seen = seen_approval(input.annotations, s.approval_seen.as_ref(), &awaiting, input.wall_ms);

    for p in s.planned.iter_mut().filter(|p| p.state == ActionState::Applying) {
        p.state = ActionState::Failed;
        p.reason = "interrupted while being carried out (operator restarted); not repeated — check the target by hand".into();
        tells.push(audit(
            "action_interrupted",
            json!({"incident": name, "kind": p.kind, "target": p.target}),
        ));
    }

    if input.mode == Mode::Act {
        for i in 0..s.planned.len() {
            let p = s.planned[i].clone();
            let approved_by = match (p.state, &s.approval_seen) {
                (ActionState::Pending, _) => None,
                (ActionState::AwaitingApproval, Some(seen)) if approves(seen, &label(&p), input.wall_ms, input.approval_ttl_secs) => {
                    Some(seen.clone())
                }
                _ => continue,
            };
            let Some(action) = action_of(&p) else {
                s.planned[i].state = ActionState::Failed;
                s.planned[i].reason = format!("unknown action kind {:?}", p.kind);
                continue;
            };
            if let Some(seen) = &approved_by {
                s.approvals.push(Approval {
                    action: label(&p),
                    by: seen.by.clone(),
                    at: seen.at.clone(),
                });
                tells.push(audit(
                    "approved",
                    json!({"incident": name, "kind": p.kind, "target": p.target, "by": seen.by, "at": seen.at}),
                ));
            }
            s.planned[i].state = ActionState::Applying;
            effects.push(Effect::Apply {
                planned: i,
                action,
                approved_by: approved_by.map(|a| a.by),
            });
        }
    }
    let marked = (!effects.is_empty()).then(|| s.clone());

    for v in 0..s.verifications.len() {
        let Some((taken, _, exp)) = expectation(&s, v) else {
            continue;
        };
        let samples = input.samples.get(&v).map(Vec::as_slice).unwrap_or_default();
        let action = s.verifications[v].action.clone();
        let kind = s.taken[taken].kind.clone();
        match verify::judge(&exp, samples, input.now) {
            Verdict::Pending => {}
            Verdict::Passed(seen) => {
                s.verifications[v].result = VerificationResult::Passed;
                s.verifications[v].detail = seen.clone();
                s.timeline.push(TimelineItem {
                    at: input.now.to_rfc3339(),
                    kind: "verified".into(),
                    text: format!("{action}: effect seen — {seen}"),
                });
                tells.push(Tell::Count(Count::Verification(VerificationResult::Passed)));
                tells.push(event(
                    Severity::Normal,
                    Reason::VerificationPassed,
                    &kind,
                    format!("{action}: {seen}"),
                ));
                tells.push(audit(
                    "verification_passed",
                    json!({"incident": name, "action": action, "seen": seen}),
                ));
            }
            Verdict::Failed(seen) => {
                s.verifications[v].result = VerificationResult::Failed;
                s.verifications[v].detail = seen;
                tells.push(Tell::Count(Count::Verification(VerificationResult::Failed)));
                let undo: Option<Undo> = s.taken[taken].undo.as_deref().and_then(|u| serde_json::from_str(u).ok());
                // Putting back a change that a later action on the same target built on (a
                // cordon after a reroute) would undo that one too: escalate only.
                let t = &s.taken[taken];
                let superseded = s
                    .taken
                    .iter()
                    .any(|o| o.target == t.target && o.state == ActionState::Done && o.at >= t.at && label(o) != action);
                match undo {
                    Some(undo) if !superseded => effects.push(Effect::Revert {
                        verification: v,
                        taken,
                        undo,
                    }),
                    Some(_) => tells.extend(escalate(
                        &mut s,
                        name,
                        v,
                        "not reverted: a later action on the same target builds on it",
                        input.now,
                    )),
                    None => tells.extend(escalate(&mut s, name, v, "cannot be reverted", input.now)),
                }
            }
        }
    }
    s.phase = phase(&s);
    Step {
        marked,
        status: s,
        effects,
        tells,
    }
}

/// Records the outcome of carrying out `status.planned[planned]` (as [`decide`] asked): a
/// taken record (with its undo), and the verification its watch promises when anything changed.
pub fn applied(
    s: &mut IncidentStatus,
    name: &str,
    planned: usize,
    approved_by: Option<&str>,
    outcome: Result<Applied, String>,
    now: Timestamp,
) -> Vec<Tell> {
    let rec = s.planned[planned].clone();
    let mut taken = rec.clone();
    taken.at = now.to_rfc3339();
    let tells = match outcome {
        Ok(applied) => {
            s.planned[planned].state = ActionState::Done;
            taken.state = ActionState::Done;
            taken.reason = applied.what.clone();
            taken.undo = applied.undo.as_ref().map(|u| serde_json::to_string(u).expect("undo serialises"));
            let spec = rec.spec.clone().unwrap_or_default();
            if let Some(w) = spec.watch.as_ref().filter(|_| applied.changed) {
                let deadline = Timestamp(now.millis() + spec.verify_within_secs as i64 * 1000);
                s.verifications.push(Verification {
                    action: label(&rec),
                    expected: format!(
                        "{} ({} of {} down to at most {:.4} from {:.4})",
                        spec.expected_effect,
                        w.signal,
                        if w.entity.is_empty() { &w.series } else { &w.entity },
                        w.wanted_at_most,
                        w.level_at_action
                    ),
                    acted_at: now.to_rfc3339(),
                    deadline: deadline.to_rfc3339(),
                    result: VerificationResult::Pending,
                    detail: String::new(),
                });
            }
            s.timeline.push(TimelineItem {
                at: now.to_rfc3339(),
                kind: "action".into(),
                text: match approved_by {
                    Some(b) => format!("{} (approved by {b})", applied.what),
                    None => applied.what.clone(),
                },
            });
            vec![
                count(&rec.kind, ActionState::Done),
                event(Severity::Normal, Reason::ActionTaken, &rec.kind, applied.what.clone()),
                audit(
                    "action_taken",
                    json!({"incident": name, "kind": rec.kind, "target": rec.target, "result": applied.what, "approved_by": approved_by}),
                ),
            ]
        }
        Err(e) => {
            s.planned[planned].state = ActionState::Failed;
            taken.state = ActionState::Failed;
            taken.reason = e.clone();
            vec![
                count(&rec.kind, ActionState::Failed),
                event(Severity::Warning, Reason::ActionFailed, &rec.kind, e.clone()),
                audit(
                    "action_failed",
                    json!({"incident": name, "kind": rec.kind, "target": rec.target, "error": e}),
                ),
                Tell::Notify {
                    kind: NotificationKind::ActionFailed,
                    text: format!("{} failed: {e}", label(&rec)),
                    respond: None,
                },
            ]
        }
    };
    s.taken.push(taken);
    s.phase = phase(s);
    tells
}

/// Records the outcome of putting back `status.taken[taken]` after its verification
/// `verification` failed, and escalates.
pub fn reverted(
    s: &mut IncidentStatus,
    name: &str,
    verification: usize,
    taken: usize,
    outcome: Result<String, String>,
    now: Timestamp,
) -> Vec<Tell> {
    let action = s.verifications[verification].action.clone();
    let kind = s.taken[taken].kind.clone();
    let mut tells = Vec::new();
    let then = match outcome {
        Ok(what) => {
            s.taken[taken].state = ActionState::Reverted;
            tells.push(count(&kind, ActionState::Reverted));
            tells.push(event(Severity::Warning, Reason::ActionReverted, &kind, what.clone()));
            tells.push(audit(
                "action_reverted",
                json!({"incident": name, "action": action, "result": what}),
            ));
            format!("reverted ({what})")
        }
        Err(e) => {
            tells.push(audit("revert_failed", json!({"incident": name, "action": action, "error": e})));
            format!("revert failed: {e}")
        }
    };
    tells.extend(escalate(s, name, verification, &then, now));
    s.phase = phase(s);
    tells
}

/// A failed verification escalates to a person: a timeline line, a Warning Event, an audit line
/// and a page.
fn escalate(s: &mut IncidentStatus, name: &str, verification: usize, then: &str, now: Timestamp) -> Vec<Tell> {
    let v = &s.verifications[verification];
    let (action, seen) = (v.action.clone(), v.detail.clone());
    let kind = action.split(' ').next().unwrap_or_default().to_string();
    let text = format!("{action}: the expected effect did not come — {seen}; {then}; escalated to a person.");
    s.timeline.push(TimelineItem {
        at: now.to_rfc3339(),
        kind: "escalated".into(),
        text: text.clone(),
    });
    vec![
        event(Severity::Warning, Reason::VerificationFailed, &kind, text.clone()),
        audit(
            "verification_failed",
            json!({"incident": name, "action": action, "seen": seen, "then": then}),
        ),
        Tell::Notify {
            kind: NotificationKind::VerificationFailed,
            text,
            respond: None,
        },
    ]
}

/// The phase the records give. The engine's verdicts (`status.lifecycle`) stand over the
/// records': a resolved incident with nothing left to do stays resolved, an escalated one
/// escalated.
pub fn phase(s: &IncidentStatus) -> Phase {
    let waiting = s
        .planned
        .iter()
        .any(|p| matches!(p.state, ActionState::AwaitingApproval | ActionState::Pending));
    let verifying = s.verifications.iter().any(|v| v.result == VerificationResult::Pending);
    let engine = s.lifecycle.as_ref().map(|l| l.phase);
    if s.verifications.iter().any(|v| v.result == VerificationResult::Failed)
        || s.planned.iter().any(|p| p.state == ActionState::Failed)
        || engine == Some(Phase::Escalated)
    {
        Phase::Escalated
    } else if verifying {
        Phase::Mitigating
    } else if engine == Some(Phase::Resolved) && !waiting {
        Phase::Resolved
    } else if !s.verifications.is_empty() && !waiting {
        Phase::Mitigated
    } else if s.taken.iter().any(|t| t.state == ActionState::Done) {
        Phase::Mitigating
    } else {
        Phase::Open
    }
}

/// When to reconcile the Incident again: soon while something waits to be carried out (in
/// `act` mode) or a verification is due.
pub fn wait(s: &IncidentStatus, mode: Mode) -> Wait {
    let waiting = s
        .planned
        .iter()
        .any(|p| matches!(p.state, ActionState::AwaitingApproval | ActionState::Pending));
    let verifying = s.verifications.iter().any(|v| v.result == VerificationResult::Pending);
    if (waiting && mode == Mode::Act) || verifying {
        Wait::Poll
    } else {
        Wait::Change
    }
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

    const T0: &str = "2026-03-02T09:44:00Z";

    fn at(mins: f64) -> Timestamp {
        Timestamp(Timestamp::parse_rfc3339(T0).unwrap().millis() + (mins * 60_000.0) as i64)
    }

    /// A planned `kind cell-2/ledger` in `state`, watching ledger memory 0.95 → at most 0.8.
    fn planned(kind: &str, state: ActionState) -> ActionRecord {
        ActionRecord {
            kind: kind.into(),
            target: "cell-2/ledger".into(),
            at: T0.into(),
            state,
            reason: "memory near its limit".into(),
            spec: Some(PlannedAction {
                params: [("replicas".to_string(), "+1".to_string())].into_iter().collect(),
                needs_approval: state == ActionState::AwaitingApproval,
                expected_effect: "memory per pod falls".into(),
                verify_within_secs: 300,
                watch: Some(Watch {
                    series: "container_memory_working_set_bytes".into(),
                    entity: "service:cell-2/ledger".into(),
                    signal: "memory".into(),
                    level_at_action: 0.95,
                    wanted_at_most: 0.8,
                    trend_window_secs: 0,
                }),
            }),
            undo: None,
        }
    }

    fn status(planned: Vec<ActionRecord>) -> IncidentStatus {
        IncidentStatus {
            phase: Phase::Open,
            planned,
            ..IncidentStatus::default()
        }
    }

    const NO_SAMPLES: &BTreeMap<usize, Vec<Sample>> = &BTreeMap::new();

    fn inputs<'a>(mode: Mode, now: Timestamp, annotations: Option<&'a BTreeMap<String, String>>) -> Inputs<'a> {
        inputs_with(mode, now, annotations, NO_SAMPLES)
    }

    fn inputs_with<'a>(
        mode: Mode,
        now: Timestamp,
        annotations: Option<&'a BTreeMap<String, String>>,
        samples: &'a BTreeMap<usize, Vec<Sample>>,
    ) -> Inputs<'a> {
        Inputs {
            name: "inc-1",
            mode,
            approval_ttl_secs: 3600,
            now,
            wall_ms: now.millis(),
            annotations,
            samples,
        }
    }

    fn changed(undo: Option<Undo>) -> Result<Applied, String> {
        Ok(Applied {
            what: "scaled cell-2/ledger from 3 to 4 replicas".into(),
            undo,
            changed: true,
        })
    }

    fn replicas_undo() -> Undo {
        Undo::Replicas {
            namespace: "cell-2".into(),
            name: "ledger".into(),
            replicas: 3,
        }
    }

    fn reasons(tells: &[Tell]) -> Vec<Reason> {
        tells
            .iter()
            .filter_map(|t| match t {
                Tell::Event { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect()
    }

    fn notified(tells: &[Tell]) -> Vec<NotificationKind> {
        tells
            .iter()
            .filter_map(|t| match t {
                Tell::Notify { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect()
    }

    /// Memory samples of the watched entity, one a minute from `from` minutes on.
    fn memory(from: f64, values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Sample {
                t: at(from + i as f64),
                value: *v,
            })
            .collect()
    }

    /// The status after `scale` was carried out at +1 min (its verification due by +6 min).
    fn scaled(undo: Option<Undo>) -> IncidentStatus {
        let step = decide(
            &status(vec![planned("scale", ActionState::Pending)]),
            &inputs(Mode::Act, at(1.0), None),
        );
        let Effect::Apply { planned, approved_by, .. } = step.effects[0].clone() else {
            panic!("{:?}", step.effects)
        };
        let mut s = step.status;
        applied(&mut s, "inc-1", planned, approved_by.as_deref(), changed(undo), at(1.0));
        s
    }

    #[test]
    fn a_pending_action_is_marked_applying_before_it_is_carried_out_in_act_mode_only() {
        let s = status(vec![planned("scale", ActionState::Pending)]);
        let step = decide(&s, &inputs(Mode::Act, at(1.0), None));
        assert_eq!(step.effects.len(), 1);
        assert!(matches!(&step.effects[0], Effect::Apply { planned: 0, action, approved_by: None } if action.kind == ActionKind::Scale));
        assert_eq!(step.marked.as_ref().unwrap().planned[0].state, ActionState::Applying);
        for mode in [Mode::DryRun, Mode::Observe] {
            let step = decide(&s, &inputs(mode, at(1.0), None));
            assert!(step.effects.is_empty() && step.marked.is_none(), "{mode:?}");
            assert_eq!(step.status, s, "{mode:?}: nothing to write");
            assert_eq!(wait(&step.status, mode), Wait::Change);
        }
        assert_eq!(wait(&s, Mode::Act), Wait::Poll);
    }

    #[test]
    fn an_action_found_applying_failed_mid_way_and_is_never_repeated() {
        let step = decide(
            &status(vec![planned("scale", ActionState::Applying)]),
            &inputs(Mode::Act, at(1.0), None),
        );
        assert!(step.effects.is_empty());
        assert_eq!(step.status.planned[0].state, ActionState::Failed);
        assert!(step.status.planned[0].reason.contains("not repeated"));
        assert!(matches!(
            &step.tells[..],
            [Tell::Audit {
                event: "action_interrupted",
                ..
            }]
        ));
        assert_eq!(step.status.phase, Phase::Escalated);
    }

    #[test]
    fn an_awaiting_action_runs_once_approved_and_the_approval_is_recorded() {
        let s = status(vec![planned("cordon", ActionState::AwaitingApproval)]);
        let unapproved = decide(&s, &inputs(Mode::Act, at(1.0), None));
        assert!(unapproved.effects.is_empty());
        assert_eq!(unapproved.status.phase, Phase::Open);
        let a = ann(&[(APPROVED_BY, "alice@oncall")]);
        let approved = decide(&s, &inputs(Mode::Act, at(2.0), Some(&a)));
        assert!(matches!(&approved.effects[..], [Effect::Apply { approved_by: Some(b), .. }] if b == "alice@oncall"));
        assert_eq!(approved.status.approvals.len(), 1);
        assert_eq!(approved.status.approvals[0].action, "cordon cell-2/ledger");
        assert!(approved.tells.iter().any(|t| matches!(t, Tell::Audit { event: "approved", .. })));
        // Two hours later the approval has expired: nothing runs.
        let mut later = s.clone();
        later.approval_seen = approved.status.approval_seen.clone();
        let expired = decide(&later, &inputs(Mode::Act, at(122.0), Some(&a)));
        assert!(expired.effects.is_empty());
    }

    #[test]
    fn a_carried_out_action_is_recorded_with_its_verification_and_told_once() {
        let s = scaled(Some(replicas_undo()));
        assert_eq!(s.planned[0].state, ActionState::Done);
        assert_eq!(s.taken.len(), 1);
        assert!(s.taken[0].undo.is_some());
        assert_eq!(s.verifications.len(), 1);
        assert_eq!(s.verifications[0].result, VerificationResult::Pending);
        assert_eq!(s.verifications[0].deadline, at(6.0).to_rfc3339());
        assert_eq!(s.phase, Phase::Mitigating);
        assert_eq!(wait(&s, Mode::Act), Wait::Poll);
        assert_eq!(reads(&s)[0].from, at(1.0));
        assert_eq!(reads(&s)[0].entity, "service:cell-2/ledger");
        // Nothing changed (the cell already drained): no effect to verify.
        let step = decide(
            &status(vec![planned("scale", ActionState::Pending)]),
            &inputs(Mode::Act, at(1.0), None),
        );
        let mut s = step.status;
        let tells = applied(
            &mut s,
            "inc-1",
            0,
            None,
            Ok(Applied {
                what: "no change".into(),
                undo: None,
                changed: false,
            }),
            at(1.0),
        );
        assert!(s.verifications.is_empty());
        assert_eq!(reasons(&tells), [Reason::ActionTaken]);
        assert!(notified(&tells).is_empty(), "a done action pages no one");
    }

    #[test]
    fn a_failed_action_escalates_and_pages() {
        let step = decide(
            &status(vec![planned("scale", ActionState::Pending)]),
            &inputs(Mode::Act, at(1.0), None),
        );
        let mut s = step.status;
        let tells = applied(&mut s, "inc-1", 0, None, Err("deployments \"ledger\" not found".into()), at(1.0));
        assert_eq!(s.planned[0].state, ActionState::Failed);
        assert_eq!(s.taken[0].state, ActionState::Failed);
        assert_eq!(s.phase, Phase::Escalated);
        assert_eq!(reasons(&tells), [Reason::ActionFailed]);
        assert_eq!(notified(&tells), [NotificationKind::ActionFailed]);
        assert!(tells.contains(&Tell::Count(Count::Action {
            kind: "scale".into(),
            state: ActionState::Failed
        })));
    }

    #[test]
    fn a_verification_passes_on_the_samples_read_for_it() {
        let s = scaled(None);
        let early: BTreeMap<usize, Vec<Sample>> = [(0, memory(2.0, &[0.93]))].into();
        assert!(
            decide(&s, &inputs_with(Mode::Act, at(2.5), None, &early)).tells.is_empty(),
            "pending"
        );
        let seen: BTreeMap<usize, Vec<Sample>> = [(0, memory(2.0, &[0.7, 0.6, 0.6]))].into();
        let step = decide(&s, &inputs_with(Mode::Act, at(4.5), None, &seen));
        assert!(step.effects.is_empty());
        assert_eq!(step.status.verifications[0].result, VerificationResult::Passed);
        assert_eq!(step.status.phase, Phase::Mitigated);
        assert_eq!(reasons(&step.tells), [Reason::VerificationPassed]);
        assert_eq!(wait(&step.status, Mode::Act), Wait::Change);
    }

    #[test]
    fn a_failed_verification_reverts_then_escalates_with_what_the_revert_did() {
        let s = scaled(Some(replicas_undo()));
        let flat: BTreeMap<usize, Vec<Sample>> = [(0, memory(2.0, &[0.95, 0.96, 0.96, 0.97, 0.97]))].into();
        let step = decide(&s, &inputs_with(Mode::Act, at(6.5), None, &flat));
        assert_eq!(step.status.verifications[0].result, VerificationResult::Failed);
        assert!(matches!(&step.effects[..], [Effect::Revert { verification: 0, taken: 0, undo }] if *undo == replicas_undo()));
        assert!(step.marked.is_none(), "a revert is not marked first");
        assert!(notified(&step.tells).is_empty(), "the page waits for the revert's outcome");
        let mut s = step.status;
        let tells = reverted(&mut s, "inc-1", 0, 0, Ok("cell-2/ledger back to 3 replicas".into()), at(6.5));
        assert_eq!(s.taken[0].state, ActionState::Reverted);
        assert_eq!(s.phase, Phase::Escalated);
        assert_eq!(reasons(&tells), [Reason::ActionReverted, Reason::VerificationFailed]);
        assert_eq!(notified(&tells), [NotificationKind::VerificationFailed]);
        let last = s.timeline.last().unwrap();
        assert_eq!(last.kind, "escalated");
        assert!(last.text.contains("reverted (cell-2/ledger back to 3 replicas)"), "{}", last.text);
    }

    #[test]
    fn a_failed_verification_without_an_undo_or_with_a_later_action_on_its_target_only_escalates() {
        let flat: BTreeMap<usize, Vec<Sample>> = [(0, memory(2.0, &[0.95, 0.96, 0.97]))].into();
        let step = decide(&scaled(None), &inputs_with(Mode::Act, at(6.5), None, &flat));
        assert!(step.effects.is_empty());
        assert_eq!(reasons(&step.tells), [Reason::VerificationFailed]);
        assert!(step.status.timeline.last().unwrap().text.contains("cannot be reverted"));
        assert_eq!(step.status.phase, Phase::Escalated);

        let mut s = scaled(Some(replicas_undo()));
        let mut later = s.taken[0].clone();
        later.kind = "restart_pods".into();
        later.at = at(2.0).to_rfc3339();
        s.taken.push(later);
        let step = decide(&s, &inputs_with(Mode::Act, at(6.5), None, &flat));
        assert!(step.effects.is_empty(), "{:?}", step.effects);
        assert!(step
            .status
            .timeline
            .last()
            .unwrap()
            .text
            .contains("a later action on the same target builds on it"));
    }

    #[test]
    fn the_engines_resolution_and_escalation_stand_over_the_records() {
        let mut s = scaled(None);
        s.verifications[0].result = VerificationResult::Passed;
        assert_eq!(phase(&s), Phase::Mitigated);
        s.lifecycle = Some(crate::crd::LifecycleStatus {
            phase: Phase::Resolved,
            ..Default::default()
        });
        assert_eq!(phase(&s), Phase::Resolved);
        s.planned.push(planned("rollback", ActionState::AwaitingApproval));
        assert_eq!(phase(&s), Phase::Mitigating, "not resolved while an action waits");
        s.lifecycle.as_mut().unwrap().phase = Phase::Escalated;
        assert_eq!(phase(&s), Phase::Escalated);
    }

    #[test]
    fn opening_records_the_plan_by_mode_and_asks_for_approval_with_the_command_to_give_it() {
        let incident = ModelIncident {
            id: "inc-1".into(),
            opened_at: at(0.0),
            ranked_at: at(0.0),
            class: cellwarden_models::IncidentClass::Fault,
            anomalies: vec![],
            candidates: vec![],
            alerts: vec![],
        };
        let action = |kind: ActionKind, needs_approval: bool| Action {
            kind,
            target: "cell-2".into(),
            params: vec![],
            reason: "cell-2 is failing".into(),
            needs_approval,
            expected_effect: String::new(),
            verify_within_secs: 300,
        };
        let plan = Plan {
            incident_id: "inc-1".into(),
            at: at(0.0),
            mode: Mode::Act,
            actions: vec![
                action(ActionKind::Notify, false),
                action(ActionKind::Cordon, true),
                action(ActionKind::Reroute, false),
            ],
            refused: vec![cellwarden_models::plan::RefusedAction {
                action: action(ActionKind::Scale, false),
                guard: "cooldown".into(),
                reason: "scaled 2 min ago".into(),
            }],
        };
        let (s, tells) = opening("inc-1", "cellwarden", &incident, &plan, Mode::Act, at(0.0));
        let states: Vec<(&str, ActionState)> = s.planned.iter().map(|p| (p.kind.as_str(), p.state)).collect();
        assert_eq!(
            states,
            [
                ("scale", ActionState::Refused),
                ("cordon", ActionState::AwaitingApproval),
                ("reroute", ActionState::Pending)
            ]
        );
        assert_eq!(
            reasons(&tells),
            [Reason::IncidentOpened, Reason::ActionRefused, Reason::ApprovalRequested]
        );
        assert_eq!(
            notified(&tells),
            [NotificationKind::IncidentOpened, NotificationKind::ApprovalRequested]
        );
        let respond = tells.iter().find_map(|t| match t {
            Tell::Notify { respond: Some(r), .. } => Some(r.clone()),
            _ => None,
        });
        assert_eq!(
            respond.as_deref(),
            Some("kubectl -n cellwarden annotate incident inc-1 cellwarden.io/approved-by=$USER")
        );
        let (dry, tells) = opening("inc-1", "cellwarden", &incident, &plan, Mode::DryRun, at(0.0));
        assert!(dry.planned.iter().skip(1).all(|p| p.state == ActionState::Planned));
        assert_eq!(
            reasons(&tells),
            [
                Reason::IncidentOpened,
                Reason::ActionRefused,
                Reason::ActionPlanned,
                Reason::ActionPlanned
            ]
        );
    }

    #[test]
    fn action_states_and_verdicts_serialise_as_the_crd_documents_them() {
        for st in [
            ActionState::Planned,
            ActionState::Refused,
            ActionState::Pending,
            ActionState::AwaitingApproval,
            ActionState::Applying,
            ActionState::Done,
            ActionState::Failed,
            ActionState::Reverted,
        ] {
            assert_eq!(serde_json::to_value(st).unwrap(), json!(st.as_str()));
        }
        for r in [VerificationResult::Pending, VerificationResult::Passed, VerificationResult::Failed] {
            assert_eq!(serde_json::to_value(r).unwrap(), json!(r.as_str()));
        }
        assert_eq!(serde_json::to_value(Phase::Mitigating).unwrap(), json!("Mitigating"));
    }
}
