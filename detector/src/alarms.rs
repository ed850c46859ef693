//! The streaming detector of the pipeline: one robust z-score per signal series, memory
//! forecasts, and the rule that turns anomalies into alarms (incidents).
//!
//! Fed one point at a time in time order, with time taken from the points themselves; it emits
//! events as data. Ranking the root cause of an alarm is [`crate::rca`]'s job.

use crate::forecast::{time_to_exhaustion, ForecastParams};
use crate::peer::{PeerGroup, PeerParams};
use crate::robust_z::{RobustZ, RobustZParams};
use crate::signals::SignalSeries;
use cellwarden_models::{units, SeriesKey};
use cellwarden_models::{Anomaly, Entity, IncidentClass, Sample, Signal, Timestamp, Warning};
use std::collections::{HashMap, VecDeque};

/// When anomalies become an alarm. One parameter set for every series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlarmParams {
    /// Anomalies older than this no longer count towards an alarm.
    pub window_secs: i64,
    /// Distinct anomalous series within the window that open an alarm.
    pub min_series: usize,
    /// Consecutive anomalous points of one series that open an alarm on their own.
    pub sustained_points: usize,
    /// After an alarm, the series in it open no other alarm for this long (their anomalies are
    /// the same trouble; the engine joins them to its incident). Series that were not in it can
    /// open an alarm at once: an unrelated fault elsewhere is not muted by this one.
    pub cooldown_secs: i64,
    /// Most anomalies kept on an alarm (strongest first).
    pub max_anomalies: usize,
    /// Only anomalies scoring at least this count.
    pub min_score: f64,
    /// A forecast of exhaustion within this many seconds opens an alarm (a later one only warns).
    pub exhaustion_alarm_secs: i64,
}

impl Default for AlarmParams {
    fn default() -> Self {
        AlarmParams {
            window_secs: 300,
            min_series: 2,
            sustained_points: 3,
            cooldown_secs: 900,
            max_anomalies: 10,
            min_score: 0.5,
            exhaustion_alarm_secs: 1800,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DetectorParams {
    pub robust: RobustZParams,
    pub forecast: ForecastParams,
    pub alarm: AlarmParams,
    pub peer: PeerParams,
}

/// What the detector says about a point.
#[derive(Debug, Clone, PartialEq)]
pub enum DetectorEvent {
    Anomaly(Anomaly),
    Warning(Warning),
    /// Open an incident at `t` from these anomalies (strongest first).
    Alarm {
        t: Timestamp,
        class: IncidentClass,
        anomalies: Vec<Anomaly>,
    },
}

/// The scale below which a change of this signal is not news, in the signal's units.
pub fn absolute_floor(signal: Signal) -> f64 {
    match signal {
        Signal::ErrorRatio => 0.02,
        Signal::Latency | Signal::ClientLatency => 0.005,
        Signal::QueueLag => 5.0,
        Signal::RequestRate => 0.2,
        Signal::Memory | Signal::MemoryLimit => 4.0 * 1024.0 * 1024.0,
        Signal::Cpu | Signal::Other => 1e-3,
    }
}

/// Whether a move in this direction hurts (only those are anomalies).
pub(crate) fn harmful(signal: Signal, z: f64) -> bool {
    match signal {
        Signal::RequestRate => true, // a surge needs capacity, a drop means traffic is lost
        Signal::MemoryLimit | Signal::Other => false,
        _ => z > 0.0,
    }
}

struct SeriesState {
    detector: RobustZ,
    // Consecutive anomalous points so far.
    run: usize,
    // Recent points for the forecast (bounded by the fit size).
    recent: VecDeque<Sample>,
    // Don't repeat a warning for this series before this time.
    next_warning: Timestamp,
}

/// The streaming detector; a series' state is created when its first point arrives.
pub struct Detector {
    params: DetectorParams,
    states: HashMap<SeriesKey, SeriesState>,
    // Peer groups: one per service, signal and series shape, across cells.
    peers: HashMap<SeriesKey, PeerGroup>,
    // Anomalies of the alarm window, oldest first.
    window: VecDeque<Anomaly>,
    // Until when each series that was in an alarm opens no other (per series, not global).
    alarmed: HashMap<SeriesKey, Timestamp>,
    // Next time `alarmed` is swept of expired entries (it stays bounded by the series count).
    next_sweep: Timestamp,
}

impl Detector {
    pub fn new(params: DetectorParams) -> Detector {
        Detector {
            params,
            states: HashMap::new(),
            peers: HashMap::new(),
            window: VecDeque::new(),
            alarmed: HashMap::new(),
            next_sweep: Timestamp(i64::MIN),
        }
    }

    /// Number of series with state.
    pub fn series_tracked(&self) -> usize {
        self.states.len()
    }

    /// Observes point `p` of `series`. `limit` is the resource limit when the series is a bounded
    /// resource with a known limit (memory), for the time-to-exhaustion forecast.
    pub fn observe(&mut self, series: &SignalSeries, limit: Option<f64>, p: Sample, out: &mut Vec<DetectorEvent>) {
        let params = self.params;
        let state = self.states.entry(series.key.clone()).or_insert_with(|| SeriesState {
            detector: RobustZ::new(params.robust, absolute_floor(series.signal)),
            run: 0,
            recent: VecDeque::new(),
            next_warning: Timestamp(i64::MIN),
        });
        if let Some(limit) = limit {
            state.recent.push_back(p);
            if state.recent.len() > params.forecast.points {
                state.recent.pop_front();
            }
            let recent: Vec<Sample> = state.recent.iter().copied().collect();
            let forecast = time_to_exhaustion(&recent, limit, &params.forecast);
            if let Some(ex) = forecast.filter(|_| p.t >= state.next_warning) {
                {
                    state.next_warning = p.t.plus_secs(600);
                    out.push(DetectorEvent::Warning(Warning {
                        t: p.t,
                        entity: series.entity.clone(),
                        series: series.key.clone(),
                        signal: series.signal,
                        predicted_at: ex.at,
                        explanation: format!(
                            "{} grows {} (R² {:.2}); at this rate it reaches its limit of {} in {} (earliest {}).",
                            series.signal,
                            units::slope_per_min(series.signal, ex.slope_per_sec),
                            ex.r2,
                            units::value(series.signal, limit),
                            units::duration(ex.at.secs_since(p.t)),
                            units::duration(ex.earliest.secs_since(p.t))
                        ),
                    }));
                }
            }
            // Exhaustion close enough to hurt soon is an alarm: act before the OOM kill.
            if let Some(ex) = forecast {
                let secs_left = ex.at.secs_since(p.t);
                let fresh = self.alarmed.get(&series.key).is_none_or(|until| p.t >= *until);
                if secs_left <= params.alarm.exhaustion_alarm_secs as f64 && fresh {
                    let anomaly = Anomaly {
                        t: p.t,
                        series: series.key.clone(),
                        signal: series.signal,
                        entity: series.entity.clone(),
                        score: (1.0 - secs_left / (2.0 * params.alarm.exhaustion_alarm_secs as f64)).clamp(0.5, 1.0),
                        observed: p.value,
                        expected: limit,
                        detector: "forecast".into(),
                        explanation: format!(
                            "{} of {} reaches its limit of {} in {} at the current trend.",
                            series.signal,
                            series.entity.as_ref().map_or("the platform".to_string(), |e| e.name.clone()),
                            units::value(series.signal, limit),
                            units::duration(secs_left)
                        ),
                    };
                    out.push(DetectorEvent::Anomaly(anomaly.clone()));
                    self.alarmed.insert(series.key.clone(), p.t.plus_secs(params.alarm.cooldown_secs));
                    out.push(DetectorEvent::Alarm {
                        t: p.t,
                        class: IncidentClass::Fault,
                        anomalies: vec![anomaly],
                    });
                }
            }
        }
        let verdict = state.detector.update(p.value);
        if let Some(group) = peer_group(series) {
            self.compare_with_peers(group, series, p, out);
        }
        let state = self.states.get_mut(&series.key).expect("created above");
        let Some(v) = verdict else { return };
        if v.score < params.alarm.min_score || !harmful(series.signal, v.z) {
            state.run = 0;
            return;
        }
        state.run += 1;
        let run = state.run;
        let anomaly = Anomaly {
            t: p.t,
            series: series.key.clone(),
            signal: series.signal,
            entity: series.entity.clone(),
            score: v.score,
            observed: p.value,
            expected: v.expected,
            detector: "robust_z".into(),
            explanation: format!(
                "{} of {} is {} against a trailing median of {} (robust z {:+.1}).",
                series.signal,
                series.entity.as_ref().map_or("the platform".to_string(), |e| e.name.clone()),
                units::value(series.signal, p.value),
                units::value(series.signal, v.expected),
                v.z
            ),
        };
        self.raise(anomaly, run, p.t, out);
    }

    /// Records an anomaly and opens an alarm when the window has enough of them: enough
    /// distinct series not already in an alarm within the cooldown (or one such series
    /// anomalous for long enough on its own). The alarm carries those fresh series only; the
    /// ones already alarmed belong to the trouble they were raised for.
    fn raise(&mut self, anomaly: Anomaly, run: usize, now: Timestamp, out: &mut Vec<DetectorEvent>) {
        let params = self.params;
        out.push(DetectorEvent::Anomaly(anomaly.clone()));
        let series = anomaly.series.clone();
        self.window.push_back(anomaly);
        let horizon = now.plus_secs(-params.alarm.window_secs);
        while self.window.front().is_some_and(|a| a.t < horizon) {
            self.window.pop_front();
        }
        if now >= self.next_sweep {
            self.alarmed.retain(|_, until| *until > now);
            self.next_sweep = now.plus_secs(params.alarm.cooldown_secs);
        }
        if self.alarmed.get(&series).is_some_and(|until| now < *until) {
            return;
        }
        let alarmed = &self.alarmed;
        let fresh = |k: &SeriesKey| alarmed.get(k).is_none_or(|until| now >= *until);
        let mut distinct: Vec<&SeriesKey> = self.window.iter().map(|a| &a.series).filter(|k| fresh(k)).collect();
        distinct.sort();
        distinct.dedup();
        if distinct.len() >= params.alarm.min_series || run >= params.alarm.sustained_points {
            let mut anomalies: Vec<Anomaly> = self.window.iter().filter(|a| fresh(&a.series)).cloned().collect();
            anomalies.sort_by(|a, b| b.score.total_cmp(&a.score));
            // Keep the strongest anomaly per series.
            let mut seen = std::collections::HashSet::new();
            anomalies.retain(|a| seen.insert(a.series.clone()));
            let until = now.plus_secs(params.alarm.cooldown_secs);
            for a in &anomalies {
                self.alarmed.insert(a.series.clone(), until);
            }
            anomalies.truncate(params.alarm.max_anomalies);
            let load_only = anomalies
                .iter()
                .all(|a| matches!(a.signal, Signal::RequestRate | Signal::Cpu) && a.is_increase());
            let class = if load_only { IncidentClass::Capacity } else { IncidentClass::Fault };
            out.push(DetectorEvent::Alarm { t: now, class, anomalies });
        }
    }
}

/// Labels that tell members of a peer group apart (or are per pod), left out of the group's key.
const PEER_MEMBER_LABELS: &[&str] = &["cell", "pod", "node", "namespace", "container", "zone", "instance"];

/// The peer group of a series: its service's series of the same shape in every cell.
fn peer_group(series: &SignalSeries) -> Option<SeriesKey> {
    series.key.label("cell")?;
    series.key.label("service")?;
    if matches!(series.signal, Signal::MemoryLimit | Signal::Other) {
        return None;
    }
    Some(SeriesKey::new(
        format!("{}:{}", series.key.metric, series.signal),
        series
            .key
            .labels
            .iter()
            .filter(|(k, _)| !PEER_MEMBER_LABELS.contains(&k.as_str()))
            .cloned(),
    ))
}

impl Detector {
    fn compare_with_peers(&mut self, group: SeriesKey, series: &SignalSeries, p: Sample, out: &mut Vec<DetectorEvent>) {
        let cell = series.key.label("cell").expect("peer series have a cell");
        let params = self.params;
        let outliers = self
            .peers
            .entry(group.clone())
            .or_insert_with(|| PeerGroup::new(absolute_floor(series.signal)))
            .observe(&params.peer, p.t.millis(), cell, p.value);
        for o in outliers {
            // Only departures that hurt (more latency, errors, lag, memory) are anomalies.
            if !harmful(series.signal, o.z) {
                continue;
            }
            let service = series.key.label("service").expect("peer series have a service");
            let entity = Entity::service(Some(&o.cell), service);
            let z = o.z.abs();
            let anomaly = Anomaly {
                t: Timestamp(o.t_millis),
                series: SeriesKey::new(
                    group.metric.clone(),
                    group.labels.iter().cloned().chain([("cell".to_string(), o.cell.clone())]),
                ),
                signal: series.signal,
                entity: Some(entity.clone()),
                score: z / (z + params.peer.threshold_z),
                observed: o.observed,
                expected: o.expected,
                detector: "peer".into(),
                explanation: format!(
                    "{} of {} is {} where its sibling cells suggest {} (peer z {:+.1}).",
                    series.signal,
                    entity.name,
                    units::value(series.signal, o.observed),
                    units::value(series.signal, o.expected),
                    o.z
                ),
            };
            self.raise(anomaly, 1, p.t, out);
        }
    }
}
