//! The report schema (version 1): what `replay` and `eval` write as `report.json`, and what
//! `report.md` is rendered from. Field names are part of the interface; add, never rename.

use crate::graph::ServiceGraph;
use crate::incident::{Candidate, Incident, Lifecycle, Warning};
use crate::plan::Plan;
use crate::series::Sample;
use crate::signal::Signal;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

pub const REPORT_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    /// The fixture folder or source the telemetry came from.
    pub source: String,
    /// First and last telemetry timestamps seen.
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub series: usize,
    pub samples: usize,
    pub spans: usize,
    /// Anomalous points found in all (the timeline lists the first of each burst).
    pub anomalies_total: usize,
    pub timeline: Vec<TimelineEntry>,
    pub warnings: Vec<Warning>,
    pub incidents: Vec<IncidentReport>,
    /// The dependency graph learned from the traces (empty without traces).
    pub graph: ServiceGraph,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub t: Timestamp,
    /// `anomaly`, `warning`, `incident`, `plan`.
    pub kind: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentReport {
    pub incident: Incident,
    pub plan: Plan,
    /// The key series around the onset (the candidates' strongest signals and the anomalies'
    /// series), for sparklines.
    #[serde(default)]
    pub key_series: Vec<SeriesSnippet>,
    /// Its phase, times, notices and decisions.
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// Every ranking it had, oldest first (at opening, each re-rank, each join that ranked it
    /// again); the incident's `candidates` are the last. Eval scores the one in force at a
    /// given time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rankings: Vec<Ranking>,
}

/// One ranking of an incident: when, on telemetry up to then, and its top candidates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranking {
    pub at: Timestamp,
    pub candidates: Vec<Candidate>,
    /// Why it was ranked (`opened`, `rerank`, `joined`, `alert`).
    pub why: String,
}

impl IncidentReport {
    /// The candidates of the last ranking made at or before `t` (the opening's when none).
    pub fn ranking_at(&self, t: Timestamp) -> &[Candidate] {
        self.rankings
            .iter()
            .rev()
            .find(|r| r.at <= t)
            .map(|r| r.candidates.as_slice())
            .unwrap_or(&self.incident.candidates)
    }
}

/// A stretch of one series, for a sparkline in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesSnippet {
    /// The series as text (`name{labels}`).
    pub series: String,
    pub entity: Option<String>,
    pub signal: Signal,
    pub points: Vec<Sample>,
}
