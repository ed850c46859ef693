//! Which incident a new symptom belongs to, and when an incident's symptoms are back to normal:
//! the pure rules behind "one fault, one incident" (issue #13).
//!
//! Joining alarms to incidents by what they are about, and reopening, live on the
//! `incident-grouping` branch until they keep Train Ticket's recall (see issue #13's notes).
//! - [`Symptoms`]: the series an incident watches, each with the baseline it left, and when each
//!   was last out of it; an incident resolves once all have been calm for [`RESOLVE_HOLD_SECS`].

use cellwarden_detector::alarms::absolute_floor;
use cellwarden_models::{Anomaly, SeriesKey, Signal, Timestamp};
use std::collections::HashMap;

/// How long every symptom of an incident must stay inside its baseline before it resolves.
/// Why 10 minutes: 20 scrapes at 30 s (40 at 15 s) — longer than a flap or a restart's blip,
/// short enough that a person is told soon after the platform is healthy again.
pub const RESOLVE_HOLD_SECS: i64 = 600;
/// How long after it resolved a symptom of the same fault reopens an incident rather than
/// opening a new one. Why an hour: a leak that a restart only reset comes back within about the
/// time it took to grow the first time (tens of minutes on the bundled scenarios); a fault of
/// the same entity after an hour of health is more likely a new one.
pub const REOPEN_SECS: i64 = 3600;
/// Share of an anomaly's departure from its baseline that still counts as out of it: a series
/// back within 30% of the way from its baseline to the anomalous level is back to normal.
/// Why 30%: the gap a verified fix must close is 50% (remediator's verify); resolution asks for
/// more than that, but not a return to the exact baseline a noisy series never sits on.
const BACK_INSIDE_SHARE: f64 = 0.3;

/// One series an incident watches: the baseline it left and how far out is still trouble.
#[derive(Debug, Clone, PartialEq)]
struct Symptom {
    signal: Signal,
    expected: f64,
    /// Departure from `expected` (in the harmful direction) that still counts as out.
    band: f64,
    /// Whether values can be judged against the band (false for forecasts, whose `expected` is
    /// the limit, and for alerts' placeholder levels: only their anomalies count).
    judged_by_value: bool,
    last_out: Timestamp,
}

/// The symptoms of one incident.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Symptoms {
    by_series: HashMap<SeriesKey, Symptom>,
    /// The latest time any symptom was out of its baseline (or an anomaly touched it).
    pub last_trouble: Timestamp,
}

impl Symptoms {
    /// Watches the series of `anomalies` (a series already watched keeps its first baseline).
    pub fn add(&mut self, anomalies: &[Anomaly]) {
        for a in anomalies {
            self.last_trouble = self.last_trouble.max(a.t);
            let judged_by_value = a.detector != "forecast"
                && a.series.metric != cellwarden_models::incident::ALERT_SERIES_METRIC
                && a.observed.is_finite()
                && a.expected.is_finite();
            let departure = (a.observed - a.expected).abs();
            self.by_series.entry(a.series.clone()).or_insert(Symptom {
                signal: a.signal,
                expected: a.expected,
                band: (BACK_INSIDE_SHARE * departure).max(absolute_floor(a.signal)),
                judged_by_value,
                last_out: a.t,
            });
        }
    }

    pub fn watches(&self, series: &SeriesKey) -> bool {
        self.by_series.contains_key(series)
    }

    pub fn series(&self) -> impl Iterator<Item = &SeriesKey> {
        self.by_series.keys()
    }

    /// A point of a watched series: out of its baseline counts as trouble.
    pub fn observe(&mut self, series: &SeriesKey, t: Timestamp, value: f64) {
        let Some(s) = self.by_series.get_mut(series) else { return };
        if !s.judged_by_value || !value.is_finite() {
            return;
        }
        let out = match s.signal {
            // A drop of traffic hurts as much as a surge: either side is out.
            Signal::RequestRate => (value - s.expected).abs() > s.band,
            _ => value - s.expected > s.band,
        };
        if out {
            s.last_out = s.last_out.max(t);
            self.last_trouble = self.last_trouble.max(t);
        }
    }

    /// An anomaly (or warning) on a watched series at `t`: trouble, whatever its value.
    pub fn trouble(&mut self, series: &SeriesKey, t: Timestamp) {
        if let Some(s) = self.by_series.get_mut(series) {
            s.last_out = s.last_out.max(t);
            self.last_trouble = self.last_trouble.max(t);
        }
    }

    /// Whether every symptom has been calm for [`RESOLVE_HOLD_SECS`] at `now`.
    pub fn calm(&self, now: Timestamp) -> bool {
        now.secs_since(self.last_trouble) >= RESOLVE_HOLD_SECS as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellwarden_models::Entity;

    fn at(secs: i64) -> Timestamp {
        Timestamp(secs * 1000)
    }

    fn anomaly(entity: Option<Entity>, metric: &str, signal: Signal, observed: f64, expected: f64, secs: i64) -> Anomaly {
        Anomaly {
            t: at(secs),
            series: SeriesKey::new(metric, entity.iter().map(|e| ("entity".to_string(), e.name.clone()))),
            signal,
            entity,
            score: 0.9,
            observed,
            expected,
            detector: "robust_z".into(),
            explanation: String::new(),
        }
    }

    fn svc(cell: &str, name: &str) -> Option<Entity> {
        Some(Entity::service(Some(cell), name))
    }

    #[test]
    fn symptoms_resolve_after_the_hold_once_back_inside_their_baseline() {
        let mut sy = Symptoms::default();
        let a = anomaly(svc("cell-2", "api"), "lat", Signal::Latency, 1.0, 0.1, 100);
        let key = a.series.clone();
        sy.add(&[a]);
        // 0.5 s is still more than 30% of the way from 0.1 to 1.0: trouble.
        sy.observe(&key, at(200), 0.5);
        assert!(!sy.calm(at(200 + RESOLVE_HOLD_SECS - 1)));
        // Back near the baseline from 230 s on.
        for secs in (230..2000).step_by(30) {
            sy.observe(&key, at(secs), 0.12);
        }
        assert!(sy.calm(at(200 + RESOLVE_HOLD_SECS)));
        // An anomaly on it later is trouble again.
        sy.trouble(&key, at(2000));
        assert!(!sy.calm(at(2000 + RESOLVE_HOLD_SECS - 1)));
        assert!(sy.calm(at(2000 + RESOLVE_HOLD_SECS)));
        // Points of series it does not watch change nothing.
        sy.observe(&SeriesKey::new("other", []), at(2700), 99.0);
        assert!(sy.calm(at(2000 + RESOLVE_HOLD_SECS)));
    }

    #[test]
    fn a_forecast_symptom_is_judged_by_its_anomalies_only() {
        let mut sy = Symptoms::default();
        let mut a = anomaly(svc("cell-2", "ledger"), "mem", Signal::Memory, 4e8, 5.12e8, 100);
        a.detector = "forecast".into();
        let key = a.series.clone();
        sy.add(&[a]);
        // Its `expected` is the limit: a value under it says nothing either way.
        sy.observe(&key, at(500), 4.5e8);
        assert!(sy.calm(at(100 + RESOLVE_HOLD_SECS)));
    }
}
