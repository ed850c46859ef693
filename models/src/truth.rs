//! `truth.yaml`: what really happened in a scenario (FIXTURES.md).

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Truth {
    /// Empty: a healthy scenario, where any alarm is a false alarm. Required: a truth file that
    /// forgets it says nothing, and must not read as "healthy".
    pub faults: Vec<Fault>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_actions: Vec<ExpectedAction>,
    /// Conditions that are not faults (a legitimate surge): asking for capacity then is right.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<TruthEvent>,
    /// Other faults inside this telemetry, not scored in this fixture.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_faults: Vec<Fault>,
    /// Payments that failed in the run without action, per step of the simulator, from 30 min
    /// before the fault to the end (simulated fixtures only): what `eval` checks a report's
    /// impact against.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_payments: Vec<StepCount>,
}

/// A count over one step of a run: the step's end and how many.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepCount {
    pub t: Timestamp,
    pub n: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Free text (`memory_leak`, `network_delay`, `return`, …); reports group by it as given.
    pub kind: String,
    pub root_cause: RootCause,
    pub start: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Timestamp>,
    /// When users would have been hurt without action (e.g. the OOM kill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RootCause {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cell: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectedAction {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthEvent {
    pub kind: String,
    pub start: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Timestamp>,
}

impl Truth {
    pub fn is_healthy(&self) -> bool {
        self.faults.is_empty()
    }

    /// Failed payments per minute over the steps ending in (`to` − 60 s, `to`]; `None` when
    /// the truth does not count them there.
    pub fn failed_payments_per_min(&self, to: Timestamp) -> Option<f64> {
        let from = to.plus_secs(-60);
        let steps: Vec<&StepCount> = self.failed_payments.iter().filter(|s| s.t > from && s.t <= to).collect();
        (!steps.is_empty() && self.failed_payments.first().is_some_and(|s| s.t <= from)).then(|| steps.iter().map(|s| s.n).sum())
    }
}
