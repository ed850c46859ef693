//! The custom resources (group `cellwarden.io`, version `v1alpha1`, DESIGN.md's interfaces table):
//! `Cell` (cluster-scoped), `RemediationPolicy` and `Incident` (namespaced), each with a status
//! subresource. The `///` docs below become the CRDs' schema descriptions; `cellwarden crd` prints
//! them as YAML, and the Helm chart installs what it prints.
//!
//! Minimum Kubernetes version: 1.30 (CRD `x-kubernetes-validations` and `apiextensions.k8s.io/v1`
//! as used here; server-side apply with `managedFields`).

use kube::CustomResource;
use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use cellwarden_engine::policy::{BlastRadius, CellState, PolicyRule, PolicySpec, ReplicaBounds};
pub use cellwarden_models::Phase;

/// The oldest Kubernetes minor version cellwarden supports.
pub const MIN_KUBERNETES_VERSION: &str = "1.30";

/// A wallet cell: where its workloads run, which zone it is in, how much traffic it gets.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "cellwarden.io",
    version = "v1alpha1",
    kind = "Cell",
    status = "CellStatus",
    shortname = "cl",
    printcolumn = r#"{"name":"Zone","type":"string","jsonPath":".spec.zone"}"#,
    printcolumn = r#"{"name":"Weight","type":"integer","jsonPath":".spec.weight"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.state"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct CellSpec {
    /// The namespace the cell's workloads run in.
    pub namespace: String,
    /// Labels that select the cell's nodes (e.g. `wallet.io/cell: cell-2`).
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// The availability zone the cell lives in.
    pub zone: String,
    /// Share of traffic routed to the cell, percent (0–100). Routers that read it follow it;
    /// cellwarden also writes the matching HTTPRoute backend weight.
    #[schemars(range(min = 0, max = 100))]
    pub weight: u32,
}

/// The observed state of a cell.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct CellStatus {
    pub state: CellState,
    /// The weight before cellwarden drained the cell (to restore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_weight: Option<u32>,
    /// The incident that changed the state last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
}

/// How cellwarden may respond to incidents in the namespaces it covers.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "cellwarden.io",
    version = "v1alpha1",
    kind = "RemediationPolicy",
    namespaced,
    status = "RemediationPolicyStatus",
    shortname = "rp",
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#,
    printcolumn = r#"{"name":"Paused","type":"boolean","jsonPath":".spec.paused"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RemediationPolicySpec {
    /// The policy itself: plain data the kube-free incident engine reads
    /// ([`cellwarden_engine::policy::PolicySpec`]); flattened, so the resource's fields are its fields.
    #[serde(flatten)]
    pub policy: PolicySpec,
}

impl std::ops::Deref for RemediationPolicySpec {
    type Target = PolicySpec;
    fn deref(&self) -> &PolicySpec {
        &self.policy
    }
}

impl From<PolicySpec> for RemediationPolicySpec {
    fn from(policy: PolicySpec) -> Self {
        RemediationPolicySpec { policy }
    }
}

/// What the policy has done lately.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct RemediationPolicyStatus {
    #[serde(default)]
    pub actions_last_hour: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_action_at: Option<String>,
}

/// An incident cellwarden opened: what it saw, what it concluded, what it did.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "cellwarden.io",
    version = "v1alpha1",
    kind = "Incident",
    namespaced,
    status = "IncidentStatus",
    shortname = "inc",
    printcolumn = r#"{"name":"Class","type":"string","jsonPath":".spec.class"}"#,
    printcolumn = r#"{"name":"Root cause","type":"string","jsonPath":".status.rootCause[0].entity"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct IncidentSpec {
    /// When it was opened (RFC 3339).
    pub opened_at: String,
    /// `fault` or `capacity`.
    pub class: String,
    /// The cells it concerns.
    #[serde(default)]
    pub cells: Vec<String>,
}

/// The incident's record: timeline, ranked root cause, planned and taken actions, approvals and
/// verification results.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct IncidentStatus {
    /// `Open`, `Mitigating` (an action carried out, its effect not verified yet; what was
    /// `Verifying` before the incident lifecycle), `Mitigated` (every verification passed; what
    /// `Resolved` meant before), `Resolved` (every symptom back inside its baseline for the
    /// resolution hold, written by the incident engine), `Escalated`.
    #[serde(default)]
    #[schemars(with = "String")]
    pub phase: Phase,
    /// The incident engine's view of its life: when detected, mitigated, resolved, reopened;
    /// its duration and the de-duplication key every notification carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleStatus>,
    #[serde(default)]
    pub timeline: Vec<TimelineItem>,
    /// Ranked candidates, best first.
    #[serde(default)]
    pub root_cause: Vec<RootCauseCandidate>,
    #[serde(default)]
    pub planned: Vec<ActionRecord>,
    #[serde(default)]
    pub taken: Vec<ActionRecord>,
    #[serde(default)]
    pub approvals: Vec<Approval>,
    /// The approval annotation as cellwarden first saw it: it approves only the actions that
    /// were awaiting approval then, and expires `approvalTtlSecs` after it counts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_seen: Option<ApprovalSeen>,
    #[serde(default)]
    pub verifications: Vec<Verification>,
    /// Alertmanager alerts that opened or joined the incident, as last heard of (written by the
    /// pipeline when an alert arrives, never by the reconciler).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertRecord>,
}

/// The incident engine's lifecycle of an Incident (times in RFC 3339).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleStatus {
    /// The engine's phase: `Open`, `Mitigating`, `Mitigated`, `Resolved`, `Escalated`.
    #[serde(default)]
    #[schemars(with = "String")]
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated_at: Option<String>,
    /// Why it escalated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reopened_at: Vec<String>,
    /// From detection to resolution (or to the last update while unresolved), whole seconds.
    #[serde(default)]
    pub duration_secs: i64,
    /// Alarms and alerts that joined it after it opened.
    #[serde(default)]
    pub joined: i64,
    /// The key every notification of this incident carries.
    #[serde(default)]
    pub dedup_key: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertRecord {
    /// The `alertname` label.
    pub name: String,
    /// Alertmanager's fingerprint of the alert.
    pub fingerprint: String,
    /// `firing` or `resolved`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The entity its labels name, as `<kind>:<name>` (`service:cell-2/ledger`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    /// When cellwarden heard of its current state.
    pub last_seen_at: String,
    #[serde(default)]
    pub summary: String,
    /// The link back to the rule that raised it.
    #[serde(default)]
    pub generator_url: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimelineItem {
    pub at: String,
    pub kind: String,
    pub text: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RootCauseCandidate {
    pub entity: String,
    /// `service`, `provider`, `node`, `zone`, `cell`.
    pub kind: String,
    /// `internal`, `external`, `infrastructure`.
    pub class: String,
    /// Scores are in [0, 1], kept as text so the schema stays integer-free.
    pub score: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionRecord {
    pub kind: String,
    pub target: String,
    pub at: String,
    /// `planned` (dry-run), `refused`, `pending` (to carry out), `awaiting-approval`,
    /// `applying`, `done`, `failed`, `reverted`.
    pub state: ActionState,
    /// Why (for a refusal: the guard and its reason); for a taken action, what changed.
    #[serde(default)]
    pub reason: String,
    /// The action in full, so that a restarted operator can carry it out or check it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<PlannedAction>,
    /// What the action changed, so that it can be put back (opaque JSON written by cellwarden).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<String>,
}

/// Where a planned or taken action stands (`status.planned[].state`, `status.taken[].state`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ActionState {
    /// Decided in `dry-run` or `observe` mode: recorded, never carried out.
    Planned,
    /// A guard refused it (its reason names the guard).
    Refused,
    /// To be carried out by the next reconcile.
    Pending,
    /// Waits for `cellwarden.io/approved-by` on the Incident.
    AwaitingApproval,
    /// Being carried out: written before the call, so that an operator stopped mid-way finds
    /// it and escalates instead of repeating it.
    Applying,
    /// Carried out (`reason` says what changed).
    Done,
    /// Carrying it out failed, or it was interrupted: never repeated, escalated.
    Failed,
    /// Done, then put back because its effect did not come.
    Reverted,
}

impl ActionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Planned => "planned",
            ActionState::Refused => "refused",
            ActionState::Pending => "pending",
            ActionState::AwaitingApproval => "awaiting-approval",
            ActionState::Applying => "applying",
            ActionState::Done => "done",
            ActionState::Failed => "failed",
            ActionState::Reverted => "reverted",
        }
    }
}

/// A verification's verdict so far.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VerificationResult {
    /// Its deadline has not passed and the effect has not shown yet.
    Pending,
    /// The effect showed by the deadline.
    Passed,
    /// It did not: the action is reverted where it can be, and the incident escalated.
    Failed,
}

impl VerificationResult {
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationResult::Pending => "pending",
            VerificationResult::Passed => "passed",
            VerificationResult::Failed => "failed",
        }
    }
}

/// An action's parameters and promise, as planned.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlannedAction {
    /// Kind-specific parameters (`replicas: "+1"`, `weight: "0"`, `feature: loyalty`).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    #[serde(default)]
    pub needs_approval: bool,
    /// The effect it should have, in words.
    #[serde(default)]
    pub expected_effect: String,
    /// Seconds after the action by which the effect must show.
    #[serde(default)]
    pub verify_within_secs: u64,
    /// The series watched to verify the effect (`None`: nothing checkable was promised).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<Watch>,
}

/// The series an action's verification watches and the level it must reach.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Watch {
    /// The series that showed the anomaly, as `name{label="value",...}`.
    pub series: String,
    /// The entity whose signal is watched (`<kind>:<name>`, e.g. `service:cell-2/ledger`):
    /// the highest of its series at each time. Empty: the series itself.
    #[serde(default)]
    pub entity: String,
    pub signal: String,
    /// Its level when the incident was planned.
    pub level_at_action: f64,
    /// The level it must come back to or under.
    pub wanted_at_most: f64,
    /// Seconds the level must then stay flat (a rollback: the trend the revision brought
    /// stopped); absent or 0: the level alone is judged.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub trend_window_secs: u64,
}

fn is_zero(x: &u64) -> bool {
    *x == 0
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub action: String,
    pub by: String,
    pub at: String,
}

/// An approval as first seen (`cellwarden.io/approved-by`, optionally `cellwarden.io/approved-at`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalSeen {
    /// Who approved.
    pub by: String,
    /// When the approval counts from (RFC 3339): its `approved-at`, else when first seen.
    pub at: String,
    /// The `approved-at` annotation as seen (a changed one is a new approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotated_at: Option<String>,
    /// `<kind> <target>` of the actions awaiting approval when it was first seen: the only ones
    /// it approves (a later action of the same incident — an escalation's — needs its own).
    #[serde(default)]
    pub covers: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// `<kind> <target>` of the action checked.
    pub action: String,
    /// What should be seen, in words.
    pub expected: String,
    /// When the action was taken (telemetry time, RFC 3339).
    #[serde(default)]
    pub acted_at: String,
    pub deadline: String,
    /// `pending`, `passed`, `failed`.
    pub result: VerificationResult,
    /// What was seen.
    #[serde(default)]
    pub detail: String,
}

/// The three CRDs as one multi-document YAML, as `cellwarden crd` prints it.
pub fn crds_yaml() -> String {
    let mut out = String::new();
    for crd in [Cell::crd(), RemediationPolicy::crd(), Incident::crd()] {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&crd).expect("CRDs serialise"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crds_have_the_interface_names_and_status_subresources() {
        for (crd, plural, scope) in [
            (Cell::crd(), "cells", "Cluster"),
            (RemediationPolicy::crd(), "remediationpolicies", "Namespaced"),
            (Incident::crd(), "incidents", "Namespaced"),
        ] {
            assert_eq!(crd.spec.group, "cellwarden.io");
            assert_eq!(crd.spec.names.plural, plural);
            assert_eq!(crd.spec.scope, scope);
            let v = &crd.spec.versions[0];
            assert_eq!(v.name, "v1alpha1");
            assert!(
                v.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(),
                "{plural} needs a status subresource"
            );
        }
        let yaml = crds_yaml();
        assert_eq!(yaml.matches("kind: CustomResourceDefinition").count(), 3);
        assert!(yaml.contains("The availability zone the cell lives in."), "docs become the schema");
    }

    #[test]
    fn a_policy_with_only_a_mode_gets_safe_defaults() {
        let p: RemediationPolicySpec = serde_json::from_value(serde_json::json!({"mode": "act"})).unwrap();
        assert!(!p.paused);
        assert_eq!(p.blast_radius.max_cells_out, 1);
        assert_eq!(p.require_approval, vec!["cordon".to_string(), "rollback".to_string()]);
        assert_eq!(p.cooldown_secs["rollback"], 3600);
        assert_eq!(p.cooldown_secs["scale"], 600);
        assert_eq!(p.protected_namespaces, ["kube-system", "kube-public", "kube-node-lease"]);
        // An explicit empty list is kept: the default only fills a missing key.
        let open: RemediationPolicySpec = serde_json::from_value(serde_json::json!({"mode": "act", "protectedNamespaces": []})).unwrap();
        assert!(open.protected_namespaces.is_empty());
    }
}
