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
    /// What an on-call engineer reads first; every output renders this one model.
    #[serde(default)]
    pub brief: Brief,
}

/// What an on-call engineer reads first, built once (`cellwarden_engine::brief`) and shown the
/// same by the Markdown, the HTML, the JSON and the Incident's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Brief {
    /// One line: what broke and where, how it hurts, what was done and whether it held.
    pub summary: String,
    /// Phase, since when and for how long, as a sentence.
    pub status: String,
    /// Who is hurt and how much, at the last ranking; `None` when no request series says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<Impact>,
    pub confidence: Confidence,
    /// Set when the top candidate changed after the plan was made ("plan made for X at 10:10;
    /// now ranked Y first"): the plan acts on what was believed then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_drift: Option<String>,
    /// The plan's actions and the guards' refusals, each with its outcome so far.
    #[serde(default)]
    pub actions: Vec<ActionLine>,
    /// Ready-to-paste commands: approve, pause, undo.
    #[serde(default)]
    pub next_steps: Vec<NextStep>,
    /// What changed shortly before it opened (rollouts of the workloads it names), newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
}

/// Who is hurt, per minute, over the minute before the last ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Impact {
    /// The end of the minute the figures are of (the last ranking's time).
    pub at: Timestamp,
    /// Cells whose requests fail above their own baseline, worst first.
    pub cells: Vec<String>,
    /// Cells whose every request series stopped shortly before (their nodes gone): their usual
    /// requests are counted as failing, since nothing of theirs says otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub silent_cells: Vec<String>,
    /// Requests into the platform's entry services (those no other service calls), per minute.
    pub requests_per_min: f64,
    pub failed_requests_per_min: f64,
    /// Of them, the payment requests (the routes the report config calls payments); `None` when
    /// no request series carries such a route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payments_per_min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_payments_per_min: Option<f64>,
    /// The figures as a sentence.
    pub text: String,
}

/// How sure the ranking is, in words a reader can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Certainty {
    /// The top candidate leads the runner-up clearly.
    Clear,
    /// The top candidate leads, not by much.
    Likely,
    /// The top two are within a near-tie: "uncertain between A and B".
    Uncertain,
    /// Nothing to rank (a capacity incident, or no candidate had evidence).
    #[default]
    NoCandidate,
}

impl Certainty {
    pub fn as_str(self) -> &'static str {
        match self {
            Certainty::Clear => "clear",
            Certainty::Likely => "likely",
            Certainty::Uncertain => "uncertain",
            Certainty::NoCandidate => "no candidate",
        }
    }
}

/// The ranking's confidence: label-free, from the scores and the evidence's counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Confidence {
    pub certainty: Certainty,
    pub top: Option<String>,
    pub runner_up: Option<String>,
    /// The top score's lead over the runner-up's, as a share of the top's (0 to 1).
    pub margin: f64,
    /// In a sentence: "clear: ledger leads payments by 45%, on 3 pieces of evidence".
    pub text: String,
}

/// One action of the plan (or refused by a guard) and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionLine {
    pub kind: crate::plan::ActionKind,
    pub target: String,
    pub outcome: ActionOutcome,
    /// In words, with target counts ("scale cell-2/ledger from 3 to 4 replicas").
    pub text: String,
}

/// Where an action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionOutcome {
    /// Planned; dry-run or observe mode carries nothing out.
    Planned,
    /// Waits for a person's approval (the approve command is among the next steps).
    AwaitingApproval,
    /// Carried out; its effect is not verified yet.
    Done,
    Verified,
    /// Carried out, and the expected effect did not come.
    Failed,
    /// Refused by a guard.
    Refused,
}

impl ActionOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionOutcome::Planned => "planned",
            ActionOutcome::AwaitingApproval => "awaiting approval",
            ActionOutcome::Done => "done, verifying",
            ActionOutcome::Verified => "verified",
            ActionOutcome::Failed => "did not work",
            ActionOutcome::Refused => "refused",
        }
    }
}

/// A command to paste, with what it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextStep {
    pub kind: StepKind,
    pub what: String,
    pub command: String,
}

/// What a next step is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Approve the actions waiting for approval (the annotations the controller reads).
    Approve,
    /// Look at the incident or its root cause.
    Inspect,
    /// Undo an action carried out.
    Undo,
    /// Stop every action.
    Pause,
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
    /// The limit the series runs into (a memory series' limit), drawn as a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
}
