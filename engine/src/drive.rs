//! The one way the engine is driven: every caller — the daemon's live source, its simulated and
//! recorded sources, `replay`, `eval` and `simulate` — hands a [`Driver`] the telemetry of its
//! window at a step and takes back the same [`Stepped`]: the engine's events (alerts folded in),
//! what became of each alert, and the window's signal series (for verifying actions).
//!
//! What differs between callers is only where the window comes from: the live store returns it
//! already cut at [`window_start`]; the simulator's recorder holds everything and is cut with
//! [`recent`] and [`spans_since`]; a recording replayed whole is prepared once and stepped with
//! [`Driver::step_prepared`] (the engine reads only points up to `now`, so this sees what a
//! windowed step would, without deriving the same signals every step).

use crate::alerts;
use crate::pipeline::{prepare_parts, AlertOutcome, EngineEvent, JoinedBy, Pipeline, Prepared};
use cellwarden_detector::signals::rules::SignalRules;
use cellwarden_detector::signals::SignalSeries;
use cellwarden_models::alert::Alert;
use cellwarden_models::report::Report;
use cellwarden_models::topology::Topology;
use cellwarden_models::{Family, Series, Span, Timestamp, Warning};
use std::borrow::Cow;

/// How much history each step sees: enough for the detector's and the ranker's baselines (the
/// robust-z baseline needs 30 min; the ranker compares 15 min before the onset with after it).
/// Older samples may stay stored, but are not derived again at every step.
pub const WINDOW_SECS: i64 = 45 * 60;

/// The step of a recording replayed as if live (the simulator steps at its own `step_secs`).
pub const STEP_SECS: i64 = 15;

/// The first instant the window of a step at `now` holds.
pub fn window_start(now: Timestamp) -> Timestamp {
    Timestamp(now.millis() - WINDOW_SECS * 1000)
}

/// `families` cut to the samples from `since` on: the window a step sees.
pub fn recent(families: &[Family], since: Timestamp) -> Vec<Family> {
    families
        .iter()
        .map(|f| Family {
            name: f.name.clone(),
            kind: f.kind,
            help: None,
            unit: f.unit.clone(),
            series: f
                .series
                .iter()
                .map(|s| {
                    let from = s.samples.partition_point(|p| p.t < since);
                    Series {
                        key: s.key.clone(),
                        samples: s.samples[from..].to_vec(),
                    }
                })
                .collect(),
        })
        .collect()
}

/// The spans (sorted by start) that start at `since` or later.
pub fn spans_since(spans: &[Span], since: Timestamp) -> &[Span] {
    let from = spans.partition_point(|s| s.start_ns < since.millis() * 1_000_000);
    &spans[from..]
}

/// What became of one alert in a step.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertStep {
    pub name: String,
    pub firing: bool,
    pub outcome: AlertHandled,
}

/// [`AlertOutcome`] without the plan (the plan travels in the step's `Opened` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertHandled {
    /// It opened the incident at this index.
    Opened(usize),
    /// It joined (or changed its state in) the incident at this index.
    Joined(usize),
    /// Only noted on the timeline.
    Noted,
}

impl AlertHandled {
    /// The index of the incident it opened or joined.
    pub fn incident(self) -> Option<usize> {
        match self {
            AlertHandled::Opened(i) | AlertHandled::Joined(i) => Some(i),
            AlertHandled::Noted => None,
        }
    }

    /// The bounded name used as a metric label (and the verb of the log line).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertHandled::Opened(_) => "opened",
            AlertHandled::Joined(_) => "joined",
            AlertHandled::Noted => "noted",
        }
    }
}

/// What one step concluded.
#[derive(Debug, Default)]
pub struct Stepped {
    /// The engine's events in order: the telemetry's first, then those of the alerts (an alert
    /// that opened an incident is an `Opened`, one that joined a `Joined { by: Alert }`).
    pub events: Vec<EngineEvent>,
    /// Each alert of the step and what became of it.
    pub alerts: Vec<AlertStep>,
    /// The window's signal series (empty from [`Driver::step_prepared`], whose caller holds them).
    pub series: Vec<SignalSeries>,
}

/// The engine and what it needs at every step: the signal rules and the platform's topology.
pub struct Driver {
    pub pipeline: Pipeline,
    rules: SignalRules,
    topology: Option<Topology>,
}

impl Driver {
    /// The driver of `pipeline`, whose guards first see the platform `topology` describes (a
    /// caller that knows the cluster better tells the pipeline before each step).
    pub fn new(mut pipeline: Pipeline, rules: SignalRules, topology: Option<Topology>) -> Driver {
        seed_cluster(&mut pipeline, topology.as_ref());
        Driver { pipeline, rules, topology }
    }

    pub fn topology(&self) -> Option<&Topology> {
        self.topology.as_ref()
    }

    pub fn rules(&self) -> &SignalRules {
        &self.rules
    }

    /// One step at `now` over a window of telemetry (`families` and `spans`, the latter sorted by
    /// start), then the alerts that arrived since the last step.
    pub fn step(&mut self, families: &[Family], spans: &[Span], alerts: Vec<Alert>, now: Timestamp) -> Stepped {
        let prepared = prepare_parts(families, Cow::Borrowed(spans), self.topology.as_ref(), &self.rules);
        let mut stepped = self.advance(&prepared, alerts, now);
        stepped.series = prepared.series;
        stepped
    }

    /// One step at `now` over telemetry prepared beforehand (a whole recording: the engine reads
    /// its points up to `now` only), then `alerts`.
    pub fn step_prepared(&mut self, prepared: &Prepared<'_>, alerts: Vec<Alert>, now: Timestamp) -> Stepped {
        self.advance(prepared, alerts, now)
    }

    fn advance(&mut self, prepared: &Prepared<'_>, alerts: Vec<Alert>, now: Timestamp) -> Stepped {
        let mut events = self.pipeline.advance(prepared, self.topology.as_ref(), now, &mut |_, _| {});
        let mut handled = Vec::with_capacity(alerts.len());
        for a in alerts {
            let note = alerts::note_of(&a, now);
            let anomaly = alerts::anomaly_of(&a, &note);
            let (name, firing) = (note.name.clone(), note.firing);
            let outcome = match self.pipeline.alert(prepared, self.topology.as_ref(), note, anomaly) {
                AlertOutcome::Opened(plan) => {
                    let index = self.pipeline.incidents().len() - 1;
                    events.push(EngineEvent::Opened { index, plan });
                    AlertHandled::Opened(index)
                }
                AlertOutcome::Joined(index) => {
                    events.push(EngineEvent::Joined {
                        index,
                        by: JoinedBy::Alert,
                    });
                    AlertHandled::Joined(index)
                }
                AlertOutcome::Noted => AlertHandled::Noted,
            };
            handled.push(AlertStep { name, firing, outcome });
        }
        Stepped {
            events,
            alerts: handled,
            series: Vec::new(),
        }
    }
}

/// Tells `pipeline` the cells, replicas and rollouts `topology` describes. The guards judge plans against
/// the recorded platform, not an empty one: without it a blast-radius guard sees a one-cell
/// platform and refuses every reroute.
fn seed_cluster(pipeline: &mut Pipeline, topology: Option<&Topology>) {
    if let Some(t) = topology {
        let (cells, replicas) = crate::pipeline::cluster_of(t);
        pipeline.set_cluster(cells, replicas);
        // The rollouts its deployments' revisions record (none in most fixtures).
        pipeline.set_rollouts(crate::policy::rollouts_of(t));
    }
}

/// What a replay produced, beyond the report: the warnings for scoring.
pub struct ReplayOutcome {
    pub report: Report,
    pub warnings: Vec<Warning>,
}

/// Replays a prepared recording in one step to its last sample (the engine re-ranks and judges
/// resolution at their due times on the way, as stepping would). `progress(done, total)` is
/// called now and then.
pub fn replay(source: &str, topology: Option<&Topology>, p: &Prepared<'_>, progress: &mut dyn FnMut(usize, usize)) -> ReplayOutcome {
    let mut pipeline = Pipeline::new();
    seed_cluster(&mut pipeline, topology);
    let end = p
        .series
        .iter()
        .filter_map(|s| s.points.last().map(|x| x.t))
        .max()
        .unwrap_or_default();
    pipeline.advance(p, topology, end, progress);
    ReplayOutcome {
        report: pipeline.report(source, p),
        warnings: pipeline.warnings().to_vec(),
    }
}

/// Whether anything feeds the pipeline. A default install with nothing to scrape, no query and
/// no pushes tracks no signal series, and nothing else would say so: the live daemon tells it
/// once no signal series has arrived for `warn_after_secs`, and again when series come.
#[derive(Debug, Clone)]
pub struct SignalWatch {
    warn_after_secs: i64,
    /// Since when steps have seen no signal series (`None` while fed).
    none_since: Option<Timestamp>,
    /// Whether the starvation was told (and not yet its end).
    told: bool,
}

/// A change of [`SignalWatch`]'s verdict, to tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalChange {
    /// No signal series for `for_secs` (at least the watch's bound).
    Starved { for_secs: i64 },
    /// Signal series again (`series` of them) after a starvation was told.
    Fed { series: usize },
}

impl SignalWatch {
    /// A watch whose clock starts at `started` (start-up counts as a time without series).
    pub fn new(warn_after_secs: u64, started: Timestamp) -> SignalWatch {
        SignalWatch {
            warn_after_secs: warn_after_secs as i64,
            none_since: Some(started),
            told: false,
        }
    }

    /// A step at `now` saw `series` signal series: what changed, if anything.
    pub fn observe(&mut self, now: Timestamp, series: usize) -> Option<SignalChange> {
        if series > 0 {
            self.none_since = None;
            return std::mem::take(&mut self.told).then_some(SignalChange::Fed { series });
        }
        let since = *self.none_since.get_or_insert(now);
        let for_secs = now.secs_since(since) as i64;
        if self.told || for_secs < self.warn_after_secs {
            return None;
        }
        self.told = true;
        Some(SignalChange::Starved { for_secs })
    }

    /// Seconds without signal series at `now`, once told (for `/readyz`).
    pub fn starved_for(&self, now: Timestamp) -> Option<i64> {
        self.none_since.filter(|_| self.told).map(|s| now.secs_since(s) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellwarden_models::{MetricType, Sample, SeriesKey};

    fn family(points: &[(i64, f64)]) -> Family {
        Family {
            name: "m".into(),
            kind: MetricType::Gauge,
            help: None,
            unit: None,
            series: vec![Series {
                key: SeriesKey::new("m", [("pod".to_string(), "p".to_string())]),
                samples: points
                    .iter()
                    .map(|&(s, value)| Sample {
                        t: Timestamp(s * 1000),
                        value,
                    })
                    .collect(),
            }],
        }
    }

    #[test]
    fn the_window_holds_the_last_45_minutes() {
        let now = Timestamp(10_000 * 1000);
        assert_eq!(window_start(now), Timestamp((10_000 - 2700) * 1000));
        let f = family(&[(7_000, 1.0), (7_300, 2.0), (9_000, 3.0)]);
        let cut = recent(&[f], window_start(now));
        let kept: Vec<f64> = cut[0].series[0].samples.iter().map(|s| s.value).collect();
        // 7,300 s is exactly the window's start: kept; 7,000 s is older: cut.
        assert_eq!(kept, vec![2.0, 3.0]);
    }

    #[test]
    fn spans_before_the_window_are_left_out() {
        let span = |start_s: i64| Span {
            trace_id: "0".repeat(32),
            span_id: "0".repeat(16),
            parent_span_id: String::new(),
            name: "GET /".into(),
            kind: Default::default(),
            start_ns: start_s * 1_000_000_000,
            end_ns: start_s * 1_000_000_000 + 1_000_000,
            error: false,
            resource: Default::default(),
            attributes: Default::default(),
        };
        let spans = vec![span(100), span(200), span(300)];
        assert_eq!(spans_since(&spans, Timestamp(200_000)).len(), 2);
        assert_eq!(spans_since(&spans, Timestamp(301_000)).len(), 0);
    }

    #[test]
    fn an_alert_that_opens_an_incident_is_an_opened_event() {
        use cellwarden_models::alert::AlertStatus;
        let mut d = Driver::new(Pipeline::new(), SignalRules::default(), None);
        let labels = [
            ("alertname", "LedgerDown"),
            ("severity", "critical"),
            ("service", "ledger"),
            ("cell", "cell-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let alert = Alert {
            status: AlertStatus::Firing,
            labels,
            annotations: Default::default(),
            starts_at: Some(Timestamp(1_000_000)),
            ends_at: None,
            fingerprint: "f1".into(),
            generator_url: String::new(),
        };
        let stepped = d.step(&[], &[], vec![alert.clone()], Timestamp(1_060_000));
        assert_eq!(stepped.alerts.len(), 1);
        assert_eq!(stepped.alerts[0].outcome, AlertHandled::Opened(0));
        assert!(matches!(stepped.events.as_slice(), [EngineEvent::Opened { index: 0, .. }]));
        // Heard again with nothing new: noted; nothing opens or joins (the incident's scheduled
        // re-rank, 60 s after opening, may fall in the same step).
        let again = d.step(&[], &[], vec![alert], Timestamp(1_120_000));
        assert_eq!(again.alerts[0].outcome, AlertHandled::Noted);
        assert!(again.events.iter().all(|e| matches!(e, EngineEvent::Reranked { index: 0 })));
    }

    /// Told once when nothing arrived for the bound (start-up counts), once when series come,
    /// and again after a later gap; a short gap says nothing.
    #[test]
    fn starvation_is_told_once_past_the_bound_and_its_end_once() {
        let t = |secs: i64| Timestamp(secs * 1000);
        let mut w = SignalWatch::new(300, t(0));
        assert_eq!(w.observe(t(15), 0), None);
        assert_eq!(w.observe(t(299), 0), None);
        assert_eq!(w.observe(t(300), 0), Some(SignalChange::Starved { for_secs: 300 }));
        assert_eq!(w.observe(t(315), 0), None, "told once");
        assert_eq!(w.starved_for(t(330)), Some(330));
        assert_eq!(w.observe(t(330), 12), Some(SignalChange::Fed { series: 12 }));
        assert_eq!(w.starved_for(t(345)), None);
        // A gap shorter than the bound says nothing; a long one is told again.
        assert_eq!(w.observe(t(400), 0), None);
        assert_eq!(w.observe(t(450), 3), None);
        assert_eq!(w.observe(t(500), 0), None);
        assert_eq!(w.observe(t(800), 0), Some(SignalChange::Starved { for_secs: 300 }));
    }
}
