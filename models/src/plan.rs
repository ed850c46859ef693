//! Actions and plans: effects as data. The planner returns a [`Plan`]; executors carry it out
//! (the dry-run executor only records it).

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Annotation a person sets on an Incident to approve its waiting actions (DESIGN.md).
pub const APPROVED_BY: &str = "cellwarden.io/approved-by";
/// When they approved (RFC 3339); the approval holds for the policy's `approval_ttl_secs`.
pub const APPROVED_AT: &str = "cellwarden.io/approved-at";

/// How far cellwarden may go (DESIGN.md: the more restrictive of config and policy wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Detect, rank, report; plan nothing.
    Observe,
    /// Plan and record; act on nothing.
    #[default]
    DryRun,
    Act,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Observe => "observe",
            Mode::DryRun => "dry-run",
            Mode::Act => "act",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Change a Deployment's replicas.
    Scale,
    /// Restart a workload's pods in staggered batches.
    RestartPods,
    /// Move traffic away from a cell.
    Reroute,
    /// Shift payment traffic from one provider to the others.
    FailoverProvider,
    /// Switch a non-essential feature off.
    CircuitBreak,
    /// Drain a cell's traffic, then mark its nodes unschedulable.
    Cordon,
    /// Tell a person; nothing changes in the cluster.
    Notify,
    /// Put a Deployment's pod template back to its previous revision (`kubectl rollout undo`):
    /// the fix for a fault that came with a deploy. Needs approval by default.
    Rollback,
}

impl ActionKind {
    /// Every kind, in a stable order.
    pub const ALL: [ActionKind; 8] = [
        ActionKind::Scale,
        ActionKind::RestartPods,
        ActionKind::Reroute,
        ActionKind::FailoverProvider,
        ActionKind::CircuitBreak,
        ActionKind::Cordon,
        ActionKind::Notify,
        ActionKind::Rollback,
    ];

    /// The kind named by [`ActionKind::as_str`].
    pub fn parse(s: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Scale => "scale",
            ActionKind::RestartPods => "restart_pods",
            ActionKind::Reroute => "reroute",
            ActionKind::FailoverProvider => "failover_provider",
            ActionKind::CircuitBreak => "circuit_break",
            ActionKind::Cordon => "cordon",
            ActionKind::Notify => "notify",
            ActionKind::Rollback => "rollback",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One intended change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub kind: ActionKind,
    /// What it acts on: `cell-2/ledger`, `provider-a`, `cell-3`, `loyalty`.
    pub target: String,
    /// Kind-specific parameters as text (`replicas: "+1"`, `weight: "0"`), in a stable order.
    pub params: Vec<(String, String)>,
    /// Why: which rule chose it and from what.
    pub reason: String,
    /// The rule set or policy marks it as needing a person's approval.
    pub needs_approval: bool,
    /// What should be seen afterwards, and by when (seconds after the action).
    pub expected_effect: String,
    pub verify_within_secs: u64,
}

/// The actions chosen for one incident at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub incident_id: String,
    pub at: Timestamp,
    pub mode: Mode,
    /// Allowed by every guard (some may still wait for approval: `needs_approval`).
    pub actions: Vec<Action>,
    /// Proposed but refused by a guard, with the guard's name and reason.
    #[serde(default)]
    pub refused: Vec<RefusedAction>,
}

/// An action a guard refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusedAction {
    pub action: Action,
    /// `pause`, `mode`, `protected-namespace`, `bounds`, `cooldown`, `rate-limit`, `blast-radius`.
    pub guard: String,
    pub reason: String,
}
