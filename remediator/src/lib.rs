//! cellwarden's response side: from an incident to a plan, and from a run to a report.
//!
//! Layout:
//! - [`rules`]: the first planner, a small documented rule set (incident → dry-run plan); the
//!   operator issue's policy engine, guards and kube-rs actuators replace and extend it.
//! - [`policy`]: the policy engine — the rules propose, the guards dispose (pure).
//! - [`rbac`]: the permissions the operator needs (the chart's RBAC is rendered from it).
//! - [`report`]: rendering a `cellwarden_models::report::Report` as Markdown and JSON.
//! - [`actuate`]: kube-rs actuators (server-side apply, field manager `cellwarden`) with retries.
//! - [`audit`]: the hash-chained audit log (JSON lines on stdout).
//! - [`crd`]: the `Cell`, `RemediationPolicy` and `Incident` custom resources.
//! - [`html`]: the self-contained HTML report (inline SVG dependency graph, sparklines, timeline).
//! - [`verify`]: what each action promised, in checkable form, and the verdict on it (pure).
//! - [`controller`]: the Incident controller (`open`, `reconcile`, `error_policy`): carries out,
//!   verifies, reverts and escalates from the Incident's status alone.
//! - [`lease`]: leader election with a `coordination.k8s.io` Lease (pure decision + loop).
//! - [`notify`]: the webhook notifier (generic JSON and Slack-compatible), bounded queue.
//!
//! Depends on `cellwarden-models` and `cellwarden-detector`. IO lives in [`actuate`],
//! [`controller`], [`lease`] and [`notify`]; the policy engine, the rule set and verification
//! are pure.

pub mod actuate;
pub mod audit;
pub mod controller;
pub mod crd;
pub mod html;
pub mod lease;
pub mod notify;
pub mod policy;
pub mod rbac;
pub mod report;
pub mod rules;
pub mod verify;
