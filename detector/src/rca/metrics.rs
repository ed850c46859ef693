//! Metric evidence: the harmful deviation of each series after the start against its own
//! baseline (median and MAD, floored in the series' unit) — the worst point, or the second worst
//! when there are three or more (not a lone spike) — scaled down by how far the series strayed
//! within its own baseline; and which nodes and services the series tie together.

use super::{to_score, Finding};
use crate::alarms::{absolute_floor, harmful};
use crate::robust_z::robust_baseline;
use crate::signals::SignalSeries;
use cellwarden_models::units;
use cellwarden_models::{EntityKind, Signal, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

/// Parameters of the metric evidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MetricParams {
    pub baseline_secs: i64,
    pub half_z: f64,
    /// Weight of latency series (a service's latency includes its callees').
    pub latency_weight: f64,
}

/// What the metrics say, and the topology they reveal.
#[derive(Debug, Default)]
pub(crate) struct MetricView {
    pub findings: Vec<Finding>,
    /// Node → (zone, cell) labels named by node series.
    pub node_groups: BTreeMap<String, (Option<String>, Option<String>)>,
    /// Service entity name → nodes its series name.
    pub nodes_of: BTreeMap<String, BTreeSet<String>>,
}

/// The smallest scale of a series: the signal's floor, in the unit the metric's name gives.
fn floor(signal: Signal, metric: &str) -> f64 {
    match signal {
        // A percentage of a core or of a limit: a point; cores: a hundredth of one.
        Signal::Cpu if metric.ends_with("_percent") => 1.0,
        Signal::Cpu => 0.01,
        s => absolute_floor(s),
    }
}

/// Metric evidence for trouble from `start`, seeing points up to `until`.
pub(crate) fn evidence(series: &[SignalSeries], start: Timestamp, until: Timestamp, p: &MetricParams) -> MetricView {
    let base_from = start.plus_secs(-p.baseline_secs);
    let mut out = MetricView::default();
    let mut scratch = Vec::new();
    for s in series {
        let Some(entity) = &s.entity else { continue };
        if let Some(node) = s.key.label("node") {
            match entity.kind {
                EntityKind::Node => {
                    let groups = (s.key.label("zone").map(str::to_string), s.key.label("cell").map(str::to_string));
                    let slot = out.node_groups.entry(node.to_string()).or_default();
                    slot.0 = slot.0.take().or(groups.0);
                    slot.1 = slot.1.take().or(groups.1);
                }
                EntityKind::Service => {
                    out.nodes_of.entry(entity.name.clone()).or_default().insert(node.to_string());
                }
                _ => {}
            }
        }
        if matches!(s.signal, Signal::ClientLatency | Signal::MemoryLimit | Signal::Other) {
            continue; // client latency is evidence about the callees, not the caller
        }
        let base: Vec<f64> = s
            .points
            .iter()
            .filter(|q| q.t >= base_from && q.t < start)
            .map(|q| q.value)
            .collect();
        if base.len() < 5 {
            continue;
        }
        let (med, scale) = robust_baseline(&base, 0.05, &mut scratch);
        let scale = scale.max(floor(s.signal, &s.key.metric));
        // How far the baseline itself strayed (its largest |z|, when above 3): a series that
        // swings this much anyway is not news.
        let noise = base.iter().map(|v| ((v - med) / scale).abs()).fold(3.0, f64::max) / 3.0;
        // The worst harmful point, but not a lone spike: with three points or more after the
        // start, the second worst (a quantile of a quiet minute jumps to a bucket edge).
        let mut harms: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|q| q.t >= start && q.t <= until)
            .map(|q| ((q.value - med) / scale, q.value))
            .filter(|(z, _)| harmful(s.signal, *z))
            .map(|(z, v)| (z.abs(), v))
            .collect();
        harms.sort_by(|a, b| b.0.total_cmp(&a.0));
        let after = s.points.iter().filter(|q| q.t >= start && q.t <= until).count();
        let worst = if after >= 3 {
            harms.get(1).copied()
        } else {
            harms.first().copied()
        };
        if let Some((z, v)) = worst {
            // A service's latency includes its callees': weaker evidence about the service itself.
            let weight = if s.signal == Signal::Latency && entity.kind == EntityKind::Service {
                p.latency_weight
            } else {
                1.0
            };
            let score = weight * to_score(z / noise, p.half_z);
            if score > 0.05 {
                out.findings.push(Finding {
                    entity: entity.clone(),
                    source: format!("metric:{}", s.signal),
                    score,
                    detail: format!(
                        "{} reached {} against a baseline median of {} (robust z {:.1}{}).",
                        s.key.metric,
                        units::value(s.signal, v),
                        units::value(s.signal, med),
                        z,
                        if noise > 1.0 {
                            format!(", its baseline already strayed to {:.1}", noise * 3.0)
                        } else {
                            String::new()
                        }
                    ),
                });
            }
        }
    }
    out
}
