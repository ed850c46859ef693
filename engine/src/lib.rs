//! cellwarden's incident engine: everything between a window of telemetry and a decided plan, with
//! no kube, no files, no sockets and no clock of its own (time comes in with every call). The
//! daemon, `replay`, `eval`, `simulate` and the tests all drive it the same way, through
//! [`drive::Driver`], and consume the same typed [`pipeline::EngineEvent`]s.
//!
//! Layout:
//! - [`pipeline`]: the engine proper — signals → detector → incidents (open, join, re-rank,
//!   mitigate, resolve, reopen, escalate) → plans; [`pipeline::Pipeline::advance`] returns events.
//! - [`drive`]: the one loop: which window each step sees, when it steps, and the replay of a
//!   fixture built on it.
//! - [`grouping`]: which symptoms an incident watches, and when they are back inside their baseline.
//! - [`alerts`]: Alertmanager alerts as anomalies (entity, signal and severity from their labels).
//! - [`rules`]: the rule set — incident → proposed plan.
//! - [`policy`]: the policy spec (the `RemediationPolicy` resource's spec as plain data) and the
//!   guards that decide a proposed plan.
//! - [`verify`]: what each action promised, in checkable form, and the verdict on it.
//! - [`brief`]: the on-call brief every output renders (summary, impact, confidence, commands).
//! - [`eval`]: scoring replays against `truth.yaml` (FIXTURES.md) and the summary figures.
//!
//! Depends on `cellwarden-models` and `cellwarden-detector` only. `cellwarden-remediator` (CRDs,
//! actuators, the Incident controller) and the binary carry out what it decides.

pub mod alerts;
pub mod brief;
pub mod drive;
pub mod eval;
pub mod grouping;
pub mod pipeline;
pub mod policy;
pub mod rules;
pub mod verify;
