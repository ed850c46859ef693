//! The offline pipeline: a fixture in memory → signals → streaming detector → incidents ranked and
//! planned → a report. The same stages the daemon runs live, with time taken from the telemetry.

use cellwarden_detector::alarms::{Detector, DetectorEvent, DetectorParams};
use cellwarden_detector::graph;
use cellwarden_detector::rca::{self, RcaInput, RcaParams};
use cellwarden_detector::signals::{self, SignalSeries};
use cellwarden_models::fixture::Fixture;
use cellwarden_models::report::{IncidentReport, Report, TimelineEntry, REPORT_SCHEMA_VERSION};
use cellwarden_models::{Candidate, Incident, Signal, Span, Timestamp, Warning};
use cellwarden_remediator::rules;
use std::collections::HashMap;

/// How many candidates an incident keeps.
pub const TOP_K: usize = 5;
/// Most anomaly lines in a report's timeline (the count of all is kept beside it).
const MAX_TIMELINE_ANOMALIES: usize = 200;

/// A fixture prepared for replay: signal series and spans in time order.
pub struct Prepared {
    pub series: Vec<SignalSeries>,
    pub spans: Vec<Span>,
    /// Memory limit per series index, for memory series whose limit is known.
    pub limits: Vec<Option<f64>>,
    pub samples: usize,
    pub raw_series: usize,
}

/// Derives signals and memory limits from a fixture.
pub fn prepare(fx: &Fixture) -> Prepared {
    let series = signals::derive(&fx.metrics);
    let mut spans = fx.spans.clone();
    spans.sort_by_key(|s| s.start_ns);
    // A memory series' limit: the limit series of the same pod (or entity), else the topology's.
    let mut limit_of: HashMap<(Option<String>, Option<String>), f64> = HashMap::new();
    for s in series.iter().filter(|s| s.signal == Signal::MemoryLimit) {
        if let Some(first) = s.points.first() {
            limit_of.insert(
                (s.entity.as_ref().map(|e| e.name.clone()), s.key.label("pod").map(str::to_string)),
                first.value,
            );
        }
    }
    let limits = series
        .iter()
        .map(|s| {
            if s.signal != Signal::Memory {
                return None;
            }
            let entity = s.entity.as_ref().map(|e| e.name.clone());
            limit_of
                .get(&(entity.clone(), s.key.label("pod").map(str::to_string)))
                .or_else(|| limit_of.get(&(entity, None)))
                .copied()
                .or_else(|| {
                    let e = s.entity.as_ref()?;
                    let topo = fx.topology.as_ref()?;
                    let svc = topo.service(e.service_name()?)?;
                    svc.deployments
                        .iter()
                        .find(|d| d.cell.as_deref() == e.cell())
                        .and_then(|d| d.memory_limit_bytes)
                })
        })
        .collect();
    Prepared {
        series,
        spans,
        limits,
        samples: fx.metrics.sample_count(),
        raw_series: fx.metrics.series().count(),
    }
}

/// What a replay produced, beyond the report: the raw alarms and warnings for scoring.
pub struct ReplayOutcome {
    pub report: Report,
    pub warnings: Vec<Warning>,
}

/// Ranks root-cause candidates for trouble that started at `start`, seeing nothing after `until`.
pub fn rank_at(p: &Prepared, start: Timestamp, until: Timestamp) -> Vec<Candidate> {
    rca::rank(
        &RcaInput {
            series: &p.series,
            spans: &p.spans,
            start,
            until,
        },
        &RcaParams::default(),
        TOP_K,
    )
}

/// Replays a prepared fixture in time order. `progress(done, total)` is called now and then.
pub fn replay(source: &str, fx: &Fixture, p: &Prepared, progress: &mut dyn FnMut(usize, usize)) -> ReplayOutcome {
    let mut order: Vec<(Timestamp, u32, u32)> = Vec::with_capacity(p.series.iter().map(|s| s.points.len()).sum());
    for (si, s) in p.series.iter().enumerate() {
        for (pi, pt) in s.points.iter().enumerate() {
            order.push((pt.t, si as u32, pi as u32));
        }
    }
    order.sort_unstable();
    let total = order.len();
    let mut det = Detector::new(DetectorParams::default(), &p.series, p.limits.clone());
    let mut events = Vec::new();
    let mut timeline = Vec::new();
    let mut warnings = Vec::new();
    let mut incidents = Vec::new();
    let mut anomalies_total = 0usize;
    let mut timeline_anomalies = 0usize;
    // Last anomaly time per series, so the timeline shows the first of each burst only.
    let mut last_anomaly: HashMap<u32, Timestamp> = HashMap::new();
    for (n, &(t, si, pi)) in order.iter().enumerate() {
        if n % 50_000 == 0 {
            progress(n, total);
        }
        let s = &p.series[si as usize];
        det.observe(si as usize, s, s.points[pi as usize], &mut events);
        for ev in events.drain(..) {
            match ev {
                DetectorEvent::Anomaly(a) => {
                    anomalies_total += 1;
                    let burst_start = last_anomaly.insert(si, t).is_none_or(|prev| t.secs_since(prev) > 300.0);
                    if burst_start && timeline_anomalies < MAX_TIMELINE_ANOMALIES {
                        timeline_anomalies += 1;
                        timeline.push(TimelineEntry {
                            t,
                            kind: "anomaly".into(),
                            text: a.explanation.clone(),
                        });
                    }
                }
                DetectorEvent::Warning(w) => {
                    timeline.push(TimelineEntry {
                        t,
                        kind: "warning".into(),
                        text: format!(
                            "{}: {} Predicted exhaustion at {}.",
                            w.entity.as_ref().map_or("platform", |e| e.name.as_str()),
                            w.explanation,
                            w.predicted_at
                        ),
                    });
                    warnings.push(w);
                }
                DetectorEvent::Alarm { t, class, anomalies } => {
                    let start = anomalies.iter().map(|a| a.t).min().unwrap_or(t);
                    let candidates = rank_at(p, start, t);
                    let incident = Incident {
                        id: format!("inc-{}", t.millis()),
                        opened_at: t,
                        ranked_at: t,
                        class,
                        anomalies,
                        candidates,
                    };
                    let plan = rules::plan(&incident, &warnings, fx.topology.as_ref());
                    let top = match incident.candidates.first() {
                        Some(c) if incident.blames_root_cause() => {
                            format!("; top candidate {} ({}, {:.2})", c.entity.name, c.class.as_str(), c.score)
                        }
                        _ => String::new(),
                    };
                    timeline.push(TimelineEntry {
                        t,
                        kind: "incident".into(),
                        text: format!(
                            "{} opened ({:?}) from {} anomalous series{top}.",
                            incident.id,
                            class,
                            incident.anomalies.len()
                        ),
                    });
                    let actions: Vec<String> = plan.actions.iter().map(|a| format!("{} {}", a.kind, a.target)).collect();
                    timeline.push(TimelineEntry {
                        t,
                        kind: "plan".into(),
                        text: format!("{} ({}): {}.", incident.id, plan.mode.as_str(), actions.join(", ")),
                    });
                    incidents.push(IncidentReport { incident, plan });
                }
            }
        }
    }
    progress(total, total);
    let from = order.first().map(|o| o.0).into_iter().chain(p.spans.first().map(Span::start)).min();
    let to = order
        .last()
        .map(|o| o.0)
        .into_iter()
        .chain(p.spans.iter().map(Span::start).max())
        .max();
    let report = Report {
        schema_version: REPORT_SCHEMA_VERSION,
        source: source.to_string(),
        from,
        to,
        series: p.raw_series,
        samples: p.samples,
        spans: p.spans.len(),
        anomalies_total,
        timeline,
        warnings: warnings.clone(),
        incidents,
        graph: graph::build(&p.spans),
    };
    ReplayOutcome { report, warnings }
}
