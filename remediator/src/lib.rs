//! cellwarden's response side: from an incident to a plan, and from a run to a report.
//!
//! Layout:
//! - [`rbac`]: the permissions the operator needs (the chart's RBAC is rendered from it).
//! - [`report`]: rendering a `cellwarden_models::report::Report` as Markdown and JSON.
//! - [`actuate`]: kube-rs actuators (server-side apply, field manager `cellwarden`) with retries.
//! - [`audit`]: the hash-chained audit log (JSON lines on stdout).
//! - [`crd`]: the `Cell`, `RemediationPolicy` and `Incident` custom resources.
//! - [`html`]: the self-contained HTML report (inline SVG dependency graph, sparklines, timeline).
//! - [`step`]: the Incident controller's pure step — from an Incident's status, annotations, time
//!   and telemetry to the status to write, the effects to carry out and what to tell (as data).
//! - [`controller`]: the Incident controller's executor (`open`, `reconcile`, `error_policy`):
//!   reads, fences, carries out and writes what [`step`] decides, from the Incident's status alone.
//! - [`lease`]: leader election with a `coordination.k8s.io` Lease (pure decision + loop).
//! - [`pending`]: the bounded queue of Incident writes waiting for the lead or for the API.
//! - [`retention`]: deleting Incidents resolved longer than `incident_ttl_secs` (leader only).
//! - [`notify`]: the webhook notifier (generic JSON and Slack-compatible), bounded queue.
//!
//! The pure side — the rule set, the policy engine and its guards, verification — lives in the
//! kube-free `cellwarden-engine` (its `rules`, `policy` and `verify`); this crate carries out what
//! the engine decides.
//!
//! Depends on `cellwarden-models`, `cellwarden-detector` and `cellwarden-engine`. IO lives in
//! [`actuate`], [`controller`], [`lease`], [`retention`] and [`notify`]; [`step`] and [`pending`] have none.

pub mod actuate;
pub mod audit;
pub mod controller;
pub mod crd;
pub mod html;
pub mod lease;
pub mod notify;
pub mod pending;
pub mod rbac;
pub mod report;
pub mod retention;
pub mod step;
