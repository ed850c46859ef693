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
