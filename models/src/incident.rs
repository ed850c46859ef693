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
