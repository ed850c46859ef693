//! Root-cause ranking, first version: each entity's own anomaly evidence (its metrics and its
//! spans against a baseline before the incident) adjusted by the dependency graph, since a fault
//! propagates to callers, not callees — a service whose callee looks at least as bad is more likely
//! a victim than the cause.
//!
//! Simple and honest; the ranking issue replaces it. Sees nothing after `until`.

use crate::alarms::{absolute_floor, harmful};
use crate::graph;
use crate::robust_z::{median, robust_baseline};
use crate::signals::SignalSeries;
use cellwarden_models::graph::ServiceGraph;
use cellwarden_models::{Anomaly, Candidate, Entity, EntityKind, Evidence, Signal, Span, Timestamp};
use std::collections::{BTreeMap, HashMap};

/// Parameters of the ranking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RcaParams {
    /// The baseline is this long, ending at the incident's start.
    pub baseline_secs: i64,
    /// z at which evidence scores 0.5.
    pub half_z: f64,
    /// A service's score is multiplied by this when a callee's evidence is at least as strong.
    pub victim_discount: f64,
}

impl Default for RcaParams {
    fn default() -> Self {
        RcaParams {
            baseline_secs: 1800,
            half_z: 6.0,
            victim_discount: 0.7,
        }
    }
}

/// What the ranker looks at.
pub struct RcaInput<'a> {
    pub series: &'a [SignalSeries],
    pub spans: &'a [Span],
    /// When the trouble started (the incident's opening, or the truth's start).
    pub start: Timestamp,
    /// Nothing after this is seen.
    pub until: Timestamp,
    /// What the detectors found (the incident's anomalies): evidence about their entities.
    pub anomalies: &'a [Anomaly],
}

fn to_score(z: f64, half_z: f64) -> f64 {
    let z = z.max(0.0);
    z / (z + half_z)
}

/// Span observations of one entity: log-durations and counts before and after the start.
#[derive(Default)]
struct SpanTally {
    base: Vec<f64>,
    test: Vec<f64>,
    base_n: u64,
    base_err: u64,
    test_n: u64,
    test_err: u64,
}

#[derive(Default)]
struct Tally {
    score: f64,
    evidence: Vec<Evidence>,
}

impl Tally {
    fn add(&mut self, score: f64, source: String, detail: String) {
        self.score = self.score.max(score);
        self.evidence.push(Evidence { source, detail, score });
    }
}

/// Ranks candidates, best first, at most `k`.
pub fn rank(input: &RcaInput<'_>, params: &RcaParams, k: usize) -> Vec<Candidate> {
    let base_from = input.start.plus_secs(-params.baseline_secs);
    let mut tallies: BTreeMap<Entity, Tally> = BTreeMap::new();
    let mut scratch = Vec::new();
    // Nodes with strong evidence, by the zone and the cell their series name.
    let mut unhealthy_nodes: BTreeMap<Entity, Vec<(String, f64)>> = BTreeMap::new();

    // Metric evidence: the worst harmful deviation of each series in [start, until].
    for s in input.series {
        let Some(entity) = &s.entity else { continue };
        if matches!(s.signal, Signal::ClientLatency | Signal::MemoryLimit | Signal::Other) {
            continue; // client latency is evidence about the callees, not the caller
        }
        let base: Vec<f64> = s
            .points
            .iter()
            .filter(|p| p.t >= base_from && p.t < input.start)
            .map(|p| p.value)
            .collect();
        if base.len() < 5 {
            continue;
        }
        let (med, scale) = robust_baseline(&base, 0.05, &mut scratch);
        let scale = scale.max(absolute_floor(s.signal));
        let mut worst: Option<(f64, f64)> = None;
        for p in s.points.iter().filter(|p| p.t >= input.start && p.t <= input.until) {
            let z = (p.value - med) / scale;
            if harmful(s.signal, z) && worst.is_none_or(|(wz, _)| z.abs() > wz) {
                worst = Some((z.abs(), p.value));
            }
        }
        if let Some((z, v)) = worst {
            let score = to_score(z, params.half_z);
            if entity.kind == EntityKind::Node && score >= 0.5 {
                for (label, kind) in [("zone", EntityKind::Zone), ("cell", EntityKind::Cell)] {
                    if let Some(group) = s.key.label(label) {
                        unhealthy_nodes
                            .entry(Entity::new(kind, group))
                            .or_default()
                            .push((entity.name.clone(), score));
                    }
                }
            }
            if score > 0.05 {
                tallies.entry(entity.clone()).or_default().add(
                    score,
                    format!("metric:{}", s.signal),
                    format!(
                        "{} reached {} against a baseline median of {} (robust z {:.1}).",
                        s.key.metric,
                        crate::alarms::fmt_num(v),
                        crate::alarms::fmt_num(med),
                        z
                    ),
                );
            }
        }
    }

    // Infrastructure: several unhealthy nodes of one zone point at the zone (ranked just above its
    // nodes), of one cell at the cell; a zone outranks a cell, whose nodes all lie in it.
    for (group, nodes) in unhealthy_nodes {
        let mut names: Vec<&str> = nodes.iter().map(|(n, _)| n.as_str()).collect();
        names.sort();
        names.dedup();
        if names.len() >= 2 {
            let best = nodes.iter().map(|(_, s)| *s).fold(0.0, f64::max);
            let bonus = if group.kind == EntityKind::Zone { 0.02 } else { 0.01 };
            tallies.entry(group).or_default().add(
                (best + bonus).min(1.0),
                "rollup:nodes".into(),
                format!("{} of its nodes are unhealthy: {}.", names.len(), names.join(", ")),
            );
        }
    }

    // The detectors' own findings.
    for a in input.anomalies.iter().filter(|a| a.t <= input.until) {
        if let Some(e) = &a.entity {
            if a.signal != Signal::ClientLatency {
                tallies
                    .entry(e.clone())
                    .or_default()
                    .add(a.score, format!("detector:{}:{}", a.detector, a.signal), a.explanation.clone());
            }
        }
    }

    // Span evidence: duration and errors of each service's spans, and of calls to external peers.
    let start_ns = input.start.millis() * 1_000_000;
    let until_ns = input.until.millis() * 1_000_000;
    let base_ns = base_from.millis() * 1_000_000;
    let seen: Vec<&Span> = input
        .spans
        .iter()
        .filter(|s| s.start_ns >= base_ns && s.start_ns <= until_ns)
        .collect();
    let mut by_entity: HashMap<Entity, SpanTally> = HashMap::new();
    for s in &seen {
        let entity = match s.external_peer() {
            Some(peer) => Entity::new(EntityKind::Provider, peer),
            None => Entity::service(s.resource.cell.as_deref(), &s.resource.service),
        };
        let e = by_entity.entry(entity).or_default();
        let d = s.duration_secs().max(1e-6).ln();
        if s.start_ns < start_ns {
            e.base.push(d);
            e.base_n += 1;
            e.base_err += u64::from(s.failed());
        } else {
            e.test.push(d);
            e.test_n += 1;
            e.test_err += u64::from(s.failed());
        }
    }
    for (
        entity,
        SpanTally {
            base,
            mut test,
            base_n,
            base_err,
            test_n,
            test_err,
        },
    ) in by_entity
    {
        if base.len() >= 10 && test.len() >= 3 {
            let (med, scale) = robust_baseline(&base, 0.0, &mut scratch);
            let test_med = median(&mut test);
            // Spread of log-durations, floored at 10%: smaller moves are noise.
            let z = (test_med - med) / scale.max(0.1);
            if z > 0.0 {
                let score = to_score(z, params.half_z);
                tallies.entry(entity.clone()).or_default().add(
                    score,
                    "trace:latency".into(),
                    format!(
                        "median span duration ×{:.2} against the baseline ({} spans then, {} now).",
                        (test_med - med).exp(),
                        base_n,
                        test_n
                    ),
                );
            }
        }
        if test_n >= 3 {
            let base_rate = if base_n > 0 { base_err as f64 / base_n as f64 } else { 0.0 };
            let test_rate = test_err as f64 / test_n as f64;
            let z = (test_rate - base_rate) / 0.02;
            if z > 1.0 {
                tallies.entry(entity).or_default().add(
                    to_score(z, params.half_z),
                    "trace:errors".into(),
                    format!(
                        "{:.1}% of spans failed, against {:.1}% before.",
                        test_rate * 100.0,
                        base_rate * 100.0
                    ),
                );
            }
        }
    }

    // Graph: a service whose callee scores at least as high is discounted (likely a victim).
    let in_window: Vec<Span> = seen.iter().map(|s| (*s).clone()).collect();
    let g: ServiceGraph = graph::build(&in_window);
    let own: HashMap<String, f64> = tallies.iter().map(|(e, t)| (e.name.clone(), t.score)).collect();
    let own_by_entity: Vec<(Entity, f64)> = tallies.iter().map(|(e, t)| (e.clone(), t.score)).collect();
    let mut candidates: Vec<Candidate> = tallies
        .into_iter()
        .map(|(entity, mut t)| {
            if entity.kind == EntityKind::Cell {
                // A cell whose own services explain its errors is their victim, not the cause.
                let worst_service = own_by_entity
                    .iter()
                    .filter(|(e, _)| e.kind == EntityKind::Service && e.cell() == Some(entity.name.as_str()))
                    .map(|(_, s)| *s)
                    .fold(0.0, f64::max);
                if worst_service >= t.score && t.score > 0.0 {
                    t.score *= params.victim_discount;
                    t.evidence.push(Evidence {
                        source: "graph".into(),
                        detail: format!("a service of the cell looks at least as bad (score {worst_service:.2}): likely a victim."),
                        score: worst_service,
                    });
                }
            }
            if entity.kind == EntityKind::Service {
                let worst_callee = g
                    .callees(&entity.name)
                    .iter()
                    .filter_map(|c| own.get(*c))
                    .copied()
                    .fold(0.0, f64::max);
                if worst_callee >= t.score && t.score > 0.0 {
                    t.score *= params.victim_discount;
                    t.evidence.push(Evidence {
                        source: "graph".into(),
                        detail: format!("a callee looks at least as bad (score {worst_callee:.2}): likely a victim."),
                        score: worst_callee,
                    });
                }
            }
            t.evidence.sort_by(|a, b| b.score.total_cmp(&a.score));
            Candidate {
                class: entity.kind.class(),
                entity,
                score: t.score,
                evidence: t.evidence,
            }
        })
        .collect();
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.entity.cmp(&b.entity)));
    candidates.truncate(k);
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellwarden_models::{Sample, SeriesKey};

    fn series(service: &str, signal: Signal, values: &[f64]) -> SignalSeries {
        SignalSeries {
            key: SeriesKey::new("m", [("service".to_string(), service.to_string())]),
            signal,
            entity: Some(Entity::service(None, service)),
            points: values
                .iter()
                .enumerate()
                .map(|(i, v)| Sample {
                    t: Timestamp(i as i64 * 60_000),
                    value: *v,
                })
                .collect(),
        }
    }

    #[test]
    fn the_only_service_that_moved_ranks_first() {
        let mut slow = vec![0.1; 30];
        slow.extend([0.1, 0.9, 1.0]);
        let steady: Vec<f64> = (0..33).map(|i| 0.1 + (i % 3) as f64 * 0.001).collect();
        let s = vec![series("ledger", Signal::Latency, &slow), series("wallet", Signal::Latency, &steady)];
        let input = RcaInput {
            series: &s,
            spans: &[],
            start: Timestamp(30 * 60_000),
            until: Timestamp(33 * 60_000),
            anomalies: &[],
        };
        let c = rank(&input, &RcaParams::default(), 5);
        assert_eq!(c[0].entity.name, "ledger");
        assert!(c.iter().all(|c| c.entity.name != "wallet" || c.score < 0.1));
    }

    #[test]
    fn nothing_after_until_is_seen() {
        let mut late = vec![0.1; 33];
        late.extend([5.0, 5.0]);
        let s = vec![series("ledger", Signal::Latency, &late)];
        let input = RcaInput {
            series: &s,
            spans: &[],
            start: Timestamp(30 * 60_000),
            until: Timestamp(32 * 60_000),
            anomalies: &[],
        };
        assert!(rank(&input, &RcaParams::default(), 5).is_empty());
    }
}
