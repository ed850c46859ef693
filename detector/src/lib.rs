//! cellwarden's detection and root-cause ranking: pure functions of samples, spans and explicit
//! time; no IO, no clock.
//!
//! Layout:
//! - [`signals`]: raw series → signal series (counter rates, error ratios, histogram means), by
//!   [`signals::rules`]: the config's rules, the profiles shipped as data files, then inference.
//! - [`robust_z`]: the streaming robust z-score detector (median/MAD over a trailing window).
//! - [`ensemble`]: the streaming novelty ensemble (range, CUSUM shift, moving mean, daily profile) with a rest after alarms; O(1), ~3 KiB per series.
//! - [`forecast`]: time to exhaustion of a bounded resource (least-squares trend with a band).
//! - [`alarms`]: the streaming [`alarms::Detector`] — anomalies, warnings, and when they become an alarm.
//! - [`multivariate`]: a PCA model (linfa) of a service's signals together, with serialisable state.
//! - [`peer`]: peer comparison — the same service in sibling cells should behave alike.
//! - [`graph`]: the service dependency graph learned from spans.
//! - [`rca`]: root-cause ranking over metrics and spans (self time, network gaps, call structure) and the graph.
//! - [`nab`]: the Numenta Anomaly Benchmark scorer (NAB v1.1's threshold sweep and normalisation).
//!
//! Depends on `cellwarden-models` (and, for signal rules as data, `serde_yaml_ng` and `regex`).

pub mod alarms;
pub mod ensemble;
pub mod forecast;
pub mod graph;
pub mod multivariate;
pub mod nab;
pub mod peer;
pub mod rca;
pub mod robust_z;
pub mod signals;
