//! Anomalies, warnings, incidents and ranked root-cause candidates.

use crate::entity::{CauseClass, Entity};
use crate::series::SeriesKey;
use crate::signal::Signal;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// One point a detector found unusual, with its explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    pub t: Timestamp,
    pub series: SeriesKey,
    pub signal: Signal,
    /// The entity the series describes; `None` for platform-wide series.
    pub entity: Option<Entity>,
    /// In [0, 1]; 1 is certainly anomalous.
    pub score: f64,
    pub observed: f64,
    pub expected: f64,
    /// Which detector raised it (`robust_z`, …).
    pub detector: String,
    /// One sentence a person can read: what moved and by how much.
    pub explanation: String,
}

impl Anomaly {
    /// Whether the value moved in the direction that hurts (up for latency, errors, lag, memory).
    pub fn is_increase(&self) -> bool {
        self.observed > self.expected
    }
}

/// An early signal short of an alarm: e.g. a forecast that memory reaches its limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    pub t: Timestamp,
    pub entity: Option<Entity>,
    pub series: SeriesKey,
    pub signal: Signal,
    /// When the forecast says the resource is exhausted.
    pub predicted_at: Timestamp,
    pub explanation: String,
}

/// What an incident is about, which decides whether it blames a root cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentClass {
    /// Something is broken: latency, errors, saturation or a stall. Blames a root cause.
    Fault,
    /// Load rose without errors or latency: ask for capacity, blame nobody.
    Capacity,
}

/// Evidence behind a candidate: one observation that points at it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// `metric:<signal>`, `trace:latency`, `trace:errors`, `graph`, …
    pub source: String,
    pub detail: String,
    pub score: f64,
}

/// A ranked root-cause candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub entity: Entity,
    pub class: CauseClass,
    pub score: f64,
    pub evidence: Vec<Evidence>,
}

/// An alarm: what would page someone or start a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Stable within a run: `inc-<opened_at millis>`.
    pub id: String,
    pub opened_at: Timestamp,
    /// Telemetry up to this time was seen when ranking.
    pub ranked_at: Timestamp,
    pub class: IncidentClass,
    /// The anomalies that opened it (strongest first, bounded).
    pub anomalies: Vec<Anomaly>,
    /// Best first.
    pub candidates: Vec<Candidate>,
    /// Alertmanager alerts that opened or joined it, one per alert (by fingerprint), as last
    /// heard of. A firing one is among `anomalies` too, as evidence about its entity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertNote>,
}

/// The metric name of an anomaly that stands for an Alertmanager alert whose level no telemetry
/// measured (`alertmanager_alert{alertname=…}`): its `observed`/`expected` are 1/0 placeholders,
/// never a level to verify an action against.
pub const ALERT_SERIES_METRIC: &str = "alertmanager_alert";

/// An Alertmanager alert as it bears on an incident: who raised what, about which entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertNote {
    /// Alertmanager's identity of the alert (a hash of its labels); the same alert sent again
    /// (Alertmanager repeats firing alerts) has the same fingerprint.
    pub fingerprint: String,
    /// The `alertname` label.
    pub name: String,
    /// `false` once Alertmanager says the alert resolved.
    pub firing: bool,
    pub starts_at: Option<Timestamp>,
    /// When cellwarden last heard of it (a repeat of a firing alert updates it here, not in the
    /// Incident, which is written when its state changes).
    pub seen_at: Timestamp,
    /// The entity its labels name (the binary's `alerts::entity_of`: a provider, else the
    /// workload of its Kubernetes labels, a node, a `service`/`job`, a zone or a `cell`); `None`
    /// when they name none.
    pub entity: Option<Entity>,
    /// The `severity` label, if any.
    pub severity: Option<String>,
    /// The `summary` annotation, else `description`.
    pub summary: String,
    /// The link back to the rule that raised it.
    pub generator_url: String,
}

impl Incident {
    /// Whether this incident blames a root cause (a capacity incident does not).
    pub fn blames_root_cause(&self) -> bool {
        self.class == IncidentClass::Fault && !self.candidates.is_empty()
    }
    /// 1-based rank of the first candidate matching `target`.
    pub fn rank_of(&self, target: &Entity) -> Option<usize> {
        self.candidates.iter().position(|c| c.entity.matches(target)).map(|i| i + 1)
    }
}

/// Where an incident stands in its life (issue #13's lifecycle). Serialised as the Incident CRD's
/// phase strings (`Open`, `Mitigating`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Phase {
    /// Detected; nothing carried out yet (also a dry-run incident's phase until it resolves).
    #[default]
    Open,
    /// An action was carried out; its effect is not verified yet.
    Mitigating,
    /// An action's effect was verified.
    Mitigated,
    /// Every symptom that opened or joined it has been back inside its baseline for the
    /// resolution hold.
    Resolved,
    /// A person is needed: a fix did not hold, or nothing cellwarden may do can help.
    Escalated,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Open => "Open",
            Phase::Mitigating => "Mitigating",
            Phase::Mitigated => "Mitigated",
            Phase::Resolved => "Resolved",
            Phase::Escalated => "Escalated",
        }
    }
    /// Whether new symptoms may still join it (everything but `Resolved`).
    pub fn is_active(self) -> bool {
        self != Phase::Resolved
    }
}

/// What a notification is about. Every notice of one incident carries the same de-duplication
/// key ([`Lifecycle::dedup_key`]); only [`NoticeKind::Opened`] and [`NoticeKind::Escalated`] page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    Opened,
    Escalated,
    Reopened,
    Resolved,
}

/// One notification the incident sent (or, offline, would have sent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub at: Timestamp,
    pub kind: NoticeKind,
    /// Whether it pages a person (an update with the same key does not).
    pub pages: bool,
    pub text: String,
}

/// An action decided for an incident (carried out or planned), for "never decided twice".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub at: Timestamp,
    pub kind: crate::plan::ActionKind,
    pub target: String,
}

/// The life of an incident: its phase, when it got there, what it sent and decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Lifecycle {
    pub phase: Phase,
    /// When it was detected (opened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_at: Option<Timestamp>,
    /// When the first action was carried out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigating_at: Option<Timestamp>,
    /// When an action's effect was first verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigated_at: Option<Timestamp>,
    /// When it last resolved (cleared by a reopening).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated_at: Option<Timestamp>,
    /// Why it escalated, in a sentence for the person it pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<String>,
    /// When it reopened (a symptom of the same fault back within the reopen window).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reopened_at: Vec<Timestamp>,
    /// Alarms and alerts that joined it after it opened.
    #[serde(default)]
    pub joined: usize,
    /// The key every notice of this incident carries (Alertmanager's group key, PagerDuty's
    /// `dedup_key`): a receiver folds them into one thread.
    #[serde(default)]
    pub dedup_key: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
    /// Every action decided for it, in order (the opening plan's and any later one's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Decision>,
    /// Every action an executor carried out for it, with its verification once judged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taken: Vec<Taken>,
}

/// An action carried out for an incident and what its verification found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Taken {
    pub at: Timestamp,
    pub kind: crate::plan::ActionKind,
    pub target: String,
    /// `None` until verified; then whether the expected effect came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<Timestamp>,
    /// What the verification saw, in a sentence.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub why: String,
    /// A scale's replicas before it (what its undo goes back to), as the engine knew them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas_before: Option<u32>,
}

impl Lifecycle {
    /// How long it has lasted: from detection to resolution, or to `now` while unresolved.
    pub fn duration_secs(&self, now: Timestamp) -> Option<f64> {
        let from = self.detected_at?;
        let to = match self.phase {
            Phase::Resolved => self.resolved_at.unwrap_or(now),
            _ => now,
        };
        Some(to.secs_since(from).max(0.0))
    }
    /// The notices that paged a person.
    pub fn pages(&self) -> usize {
        self.notices.iter().filter(|n| n.pages).count()
    }
}
