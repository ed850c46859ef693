//! cellwarden's domain types and the fixture format — the vocabulary every other crate speaks.
//!
//! Layout:
//! - [`alert`]: an Alertmanager alert as the receivers decode it.
//! - [`time`]: [`Timestamp`] (Unix milliseconds) with RFC 3339 parsing and formatting.
//! - [`series`]: series keys, samples, metric families and types.
//! - [`openmetrics`]: our OpenMetrics 1.0 text parser and writer (timestamps in seconds).
//! - [`span`]: spans and OTLP/JSON lines.
//! - [`signal`]: what a series measures (memory, latency, …) and the default metric-name mapping.
//! - [`entity`]: root-cause entities (service, provider, node, zone, cell) and their classes.
//! - [`incident`]: anomalies, warnings, incidents and ranked candidates.
//! - [`plan`]: actions and plans (effects as data) and the modes.
//! - [`graph`]: a plain service dependency graph.
//! - [`topology`], [`truth`]: `topology.yaml` and `truth.yaml`.
//! - [`fixture`]: fixture format v1 readers and writers over `BufRead`/`Write`, gzip included.
//! - [`report`]: the report schema written as `report.json`.
//! - [`units`]: the one formatter of values for people (MiB, %, ms, req/s; no `1e9`).
//!
//! This crate has no files, sockets or clocks of its own: callers open files and pass time in.

pub mod alert;
pub mod entity;
pub mod fixture;
pub mod graph;
pub mod incident;
pub mod openmetrics;
pub mod plan;
pub mod report;
pub mod series;
pub mod signal;
pub mod span;
pub mod time;
pub mod topology;
pub mod truth;
pub mod units;

pub use entity::{CauseClass, Entity, EntityKind};
pub use incident::{
    AlertNote, Anomaly, Candidate, Decision, Evidence, Incident, IncidentClass, Lifecycle, Notice, NoticeKind, Phase, Taken, Warning,
};
pub use plan::{Action, ActionKind, Mode, Plan};
pub use series::{Family, MetricType, Sample, Series, SeriesKey};
pub use signal::Signal;
pub use span::Span;
pub use time::Timestamp;
