//! Root-cause ranking: each entity's own evidence against a baseline before the trouble, fused by
//! taking the strongest, then adjusted by what ties entities together — faults propagate to
//! callers, not callees, and infrastructure explains the services that run on it.
//!
//! Evidence (each a score in [0, 1]):
//! - metrics ([`metrics`]): the worst harmful deviation of each series after the start (not a
//!   lone spike), scaled down by how far the series strayed in its own baseline; a service's
//!   latency counts less (its callees' time is in it), less again when spans measure it;
//! - the detectors' own findings for the incident;
//! - a service's *self time* and own failures, and the latency and failures of callees seen only
//!   from their callers' side — external providers, datastores ([`own`]): the part of the
//!   slowness or failure that is not inherited from a callee (a self-time shift only beyond the
//!   drift a median of requests shows anyway);
//! - network gaps between a caller's client span and its callee's server span ([`network`]),
//!   blamed on the end of the edge whose other edges moved too;
//! - structure ([`structure`]): callers that stop short after a call, for faults that change
//!   answers, not timings (a loop over fewer items is not stopping short).
//!
//! Span evidence compares requests after the start with those of up to a day before, per
//! operation, leaving out a guard band just before the start when enough requests remain (effects
//! can precede a start). When the start is an estimate (an incident's earliest anomaly), later
//! onsets are looked at too. Then a service whose callee looks at least as bad is discounted as a
//! likely victim, a cell whose own service explains it likewise; a node on which most services
//! (two at least) degrade becomes a candidate, several unhealthy nodes of a zone (or cell) the
//! zone (or cell). Sees nothing after `until` (spans must have ended by then); no labels, one
//! parameter set.

mod metrics;
mod network;
mod own;
mod structure;
pub(crate) mod traces;

use crate::robust_z::{median, robust_baseline};
use cellwarden_models::{Anomaly, Candidate, Entity, EntityKind, Evidence, Signal, Span, Timestamp};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Parameters of the ranking: one set for every incident and every kind of telemetry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RcaParams {
    /// The metric baseline is this long, ending at the incident's start.
    pub baseline_secs: i64,
    /// The span baseline is this long (requests are sparse: structure needs many of them).
    pub trace_baseline_secs: i64,
    /// Span evidence leaves the baseline's last this many seconds out of its reference when the
    /// rest holds enough requests: a fault's effects can precede the start (detection lag, skewed
    /// clocks).
    pub guard_secs: i64,
    /// z at which span evidence scores 0.5.
    pub half_z: f64,
    /// z at which a metric deviation scores 0.5 (metrics at a minute's step are heavy-tailed).
    pub metric_half_z: f64,
    /// Weight of a service's latency series: its latency includes its callees'.
    pub metric_latency_weight: f64,
    /// Further weight of those series when spans measure the service's requests (the spans
    /// separate its own time from its callees'; a percentile of a quiet minute jumps to a bucket
    /// edge on one slow request).
    pub measured_latency_weight: f64,
    /// A service's self-time shift pooled over `n` requests keeps √(n / (n + this)) of its z:
    /// few requests say little.
    pub shrink_requests: f64,
    /// Weight of a drop in a service's self time (work skipped: failing fast, returning early).
    pub self_time_drop_weight: f64,
    /// A pooled self-time shift (robust z) must exceed this to count: smaller ones are what the
    /// median of a few requests drifts by anyway.
    pub self_time_significant_z: f64,
    /// Structural evidence counts this much at most: it is indirect.
    pub structure_weight: f64,
    /// A service's score is multiplied by this when a callee's evidence is at least as strong.
    pub victim_discount: f64,
}

impl Default for RcaParams {
    fn default() -> Self {
        RcaParams {
            baseline_secs: 1800,
            trace_baseline_secs: 86_400,
            guard_secs: 300,
            half_z: 6.0,
            metric_half_z: 20.0,
            metric_latency_weight: 0.5,
            measured_latency_weight: 0.25,
            shrink_requests: 10.0,
            self_time_drop_weight: 0.5,
            self_time_significant_z: 2.0,
            structure_weight: 0.5,
            victim_discount: 0.7,
        }
    }
}

/// What the ranker looks at.
pub struct RcaInput<'a> {
    pub series: &'a [crate::signals::SignalSeries],
    pub spans: &'a [Span],
    /// When the trouble started (the incident's opening, or the truth's start).
    pub start: Timestamp,
    /// Nothing after this is seen.
    pub until: Timestamp,
    /// What the detectors found (the incident's anomalies): evidence about their entities.
    pub anomalies: &'a [Anomaly],
    /// `start` is an estimate (the earliest of an incident's anomalies, which may precede the
    /// trouble or belong to something else): the ranker also looks from later onsets.
    pub start_is_estimate: bool,
}

/// One piece of evidence about an entity, from one of the evidence modules.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    pub entity: Entity,
    pub source: String,
    pub score: f64,
    pub detail: String,
}

impl Finding {
    /// Evidence about the service whose entity name (`cell/service` or `service`) is `name`.
    pub fn service(name: &str, source: &str, score: f64, detail: String) -> Finding {
        Finding {
            entity: Entity::new(EntityKind::Service, name),
            source: source.into(),
            score,
            detail,
        }
    }
    /// Evidence about a callee: a service, or an external peer.
    pub fn callee((name, external): (&str, bool), source: &str, score: f64, detail: String) -> Finding {
        let mut f = Finding::service(name, source, score, detail);
        if external {
            f.entity.kind = EntityKind::Provider;
        }
        f
    }
}

/// z → score in [0, 1): 0.5 at `half_z`.
pub(crate) fn to_score(z: f64, half_z: f64) -> f64 {
    let z = z.max(0.0);
    z / (z + half_z)
}

/// The shift of `test`'s median from the reference's, in robust units (MAD, at least `floor`),
/// with the two medians. The reference is the baseline without its guard band (`early`) when that
/// holds enough values, else the whole baseline (`all`). `None` without enough data (5 reference
/// values, 3 test values).
pub(crate) fn robust_shift(early: &mut [f64], all: &mut [f64], test: &mut [f64], floor: f64) -> Option<(f64, f64, f64)> {
    let reference = if early.len() >= 5 { early } else { all };
    if reference.len() < 5 || test.len() < 3 {
        return None;
    }
    let mut scratch = Vec::new();
    let (med, scale) = robust_baseline(reference, 0.0, &mut scratch);
    let after = median(test);
    Some(((after - med) / scale.max(floor), med, after))
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

/// `best` raised by `bonus` of the way to 1: a rollup ranks just above what it explains.
fn rolled_up(best: f64, bonus: f64) -> f64 {
    best + bonus * (1.0 - best)
}

/// Later onsets looked at when the start is an estimate: this many seconds before `until`.
const ONSET_LOOKS: [i64; 3] = [60, 120, 240];

fn nanos(t: Timestamp) -> i64 {
    t.millis() * 1_000_000
}

/// The evidence of one look at the trouble, from `start` to the input's `until`.
struct Look {
    findings: Vec<Finding>,
    view: traces::TraceView,
    metrics: metrics::MetricView,
}

fn look(input: &RcaInput<'_>, start: Timestamp, seen: &[&Span], own_services: &BTreeSet<String>, params: &RcaParams) -> Look {
    let mut mv = metrics::evidence(
        input.series,
        start,
        input.until,
        &metrics::MetricParams {
            baseline_secs: params.baseline_secs,
            half_z: params.metric_half_z,
            latency_weight: params.metric_latency_weight,
        },
    );
    let mut findings = std::mem::take(&mut mv.findings);
    let view = traces::view(seen, nanos(start), nanos(start.plus_secs(-params.guard_secs)), own_services);
    let own_params = own::OwnParams {
        min_base: 5,
        min_test: 3,
        log_floor: 0.1,
        error_unit: 0.02,
        half_z: params.half_z,
        shrink_n: params.shrink_requests,
        significant_z: params.self_time_significant_z,
        drop_weight: params.self_time_drop_weight,
    };
    let (self_time, measured) = own::self_time(&view.entries, &own_params);
    findings.extend(self_time);
    // A service whose requests the spans measure: its latency metrics (a percentile of all its
    // requests, callees' time included, jumping to a bucket edge in a quiet minute) say less.
    for f in &mut findings {
        if f.entity.kind == EntityKind::Service && f.source == "metric:latency" && measured.contains(&f.entity.name) {
            f.score *= params.measured_latency_weight;
        }
    }
    findings.extend(own::failures_and_peers(&view.entries, &own_params));
    findings.extend(network::evidence(
        &view.entries,
        &network::GapParams {
            // A gap's spread is at least 5 ms (the latency floor of the metrics); a shift of 3
            // of those is where evidence starts.
            floor_secs: 0.005,
            significant_z: 3.0,
            callee_prior: 0.1,
            half_z: params.half_z,
        },
    ));
    findings.extend(structure::evidence(
        &view.entries,
        &structure::StructureParams {
            min_base: 5,
            min_test: 3,
            half_z: params.half_z,
            weight: params.structure_weight,
            // The last thing before a stop takes the whole blame (the last call's answer, or the
            // caller's own work before any call), the call that no longer came a little less.
            next_after_call: 0.9,
            caller: 0.5,
            next_first: 0.9,
            caller_first: 1.0,
        },
    ));
    Look {
        findings,
        view,
        metrics: mv,
    }
}

/// Ranks candidates, best first, at most `k`.
pub fn rank(input: &RcaInput<'_>, params: &RcaParams, k: usize) -> Vec<Candidate> {
    // Spans: complete by `until`, from the span baseline on.
    let from_ns = nanos(input.start.plus_secs(-params.trace_baseline_secs));
    let until_ns = nanos(input.until);
    let seen: Vec<&Span> = input
        .spans
        .iter()
        .filter(|s| s.start_ns >= from_ns && s.end_ns <= until_ns)
        .collect();

    // The platform's own services: those the series and the spans name.
    let own_services: BTreeSet<String> = input
        .series
        .iter()
        .filter_map(|s| s.entity.as_ref())
        .filter(|e| e.kind == EntityKind::Service)
        .map(|e| e.name.clone())
        .chain(seen.iter().map(|s| crate::graph::service_of(s)))
        .collect();

    // One look from the given start; when that start is an estimate, looks from later onsets too
    // (the strongest look of each kind of evidence counts).
    let first = look(input, input.start, &seen, &own_services, params);
    let mut best: BTreeMap<(Entity, String), Finding> = BTreeMap::new();
    let mut keep = |f: Finding| {
        let slot = best.entry((f.entity.clone(), f.source.clone())).or_insert_with(|| f.clone());
        if f.score > slot.score {
            *slot = f;
        }
    };
    if input.start_is_estimate {
        for secs in ONSET_LOOKS {
            let onset = input.until.plus_secs(-secs);
            if onset > input.start {
                look(input, onset, &seen, &own_services, params)
                    .findings
                    .into_iter()
                    .for_each(&mut keep);
            }
        }
    }
    let Look {
        findings,
        view,
        metrics: mv,
    } = first;
    findings.into_iter().for_each(&mut keep);

    // The detectors' own findings.
    for a in input.anomalies.iter().filter(|a| a.t <= input.until) {
        if let Some(e) = &a.entity {
            if a.signal != Signal::ClientLatency {
                keep(Finding {
                    entity: e.clone(),
                    source: format!("detector:{}:{}", a.detector, a.signal),
                    score: a.score,
                    detail: a.explanation.clone(),
                });
            }
        }
    }
    let mut tallies: BTreeMap<Entity, Tally> = BTreeMap::new();
    for f in best.into_values() {
        if f.score > 0.05 {
            tallies.entry(f.entity).or_default().add(f.score, f.source, f.detail);
        }
    }

    // Infrastructure. A node on which most services (at least two) degrade explains them.
    let mut services_on: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (service, nodes) in view.nodes_of.iter().chain(mv.nodes_of.iter()) {
        for node in nodes {
            services_on.entry(node.as_str()).or_default().insert(service.as_str());
        }
    }
    let service_score = |name: &str| tallies.get(&Entity::new(EntityKind::Service, name)).map_or(0.0, |t| t.score);
    let mut node_rollups = Vec::new();
    for (node, services) in &services_on {
        let mut degraded: Vec<(f64, &str)> = services
            .iter()
            .map(|s| (service_score(s), *s))
            .filter(|(score, _)| *score >= 0.5)
            .collect();
        if degraded.len() >= 2 && 2 * degraded.len() > services.len() {
            degraded.sort_by(|a, b| b.0.total_cmp(&a.0));
            let names: Vec<&str> = degraded.iter().map(|(_, s)| *s).collect();
            node_rollups.push((
                Entity::new(EntityKind::Node, *node),
                rolled_up(degraded[1].0, 0.2),
                format!(
                    "{} of the {} services on it degrade: {}.",
                    degraded.len(),
                    services.len(),
                    names.join(", ")
                ),
            ));
        }
    }
    for (entity, score, detail) in node_rollups {
        tallies.entry(entity).or_default().add(score, "rollup:services".into(), detail);
    }
    // Several unhealthy nodes of one zone point at the zone (ranked just above its nodes), of one
    // cell at the cell; a zone outranks a cell, whose nodes all lie in it.
    let mut unhealthy: BTreeMap<Entity, Vec<(&str, f64)>> = BTreeMap::new();
    for (node, (zone, cell)) in &mv.node_groups {
        let Some(score) = tallies.get(&Entity::new(EntityKind::Node, node.as_str())).map(|t| t.score) else {
            continue;
        };
        if score < 0.5 {
            continue;
        }
        for (group, kind) in [(zone, EntityKind::Zone), (cell, EntityKind::Cell)] {
            if let Some(g) = group {
                unhealthy.entry(Entity::new(kind, g.as_str())).or_default().push((node, score));
            }
        }
    }
    for (group, nodes) in unhealthy {
        if nodes.len() >= 2 {
            let best = nodes.iter().map(|(_, s)| *s).fold(0.0, f64::max);
            let bonus = if group.kind == EntityKind::Zone { 0.2 } else { 0.1 };
            let names: Vec<&str> = nodes.iter().map(|(n, _)| *n).collect();
            tallies.entry(group).or_default().add(
                rolled_up(best, bonus),
                "rollup:nodes".into(),
                format!("{} of its nodes are unhealthy: {}.", names.len(), names.join(", ")),
            );
        }
    }

    // Graph: a service whose callee scores at least as high is discounted (likely a victim).
    let mut callees: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for e in &view.entries {
        let slot = callees.entry(e.service.as_str()).or_default();
        slot.extend(e.calls.iter().map(|c| c.callee.as_str()));
    }
    let own_score: HashMap<String, f64> = tallies.iter().map(|(e, t)| (e.name.clone(), t.score)).collect();
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
                let worst_callee = callees
                    .get(entity.name.as_str())
                    .into_iter()
                    .flatten()
                    .filter(|c| **c != entity.name)
                    .filter_map(|c| own_score.get(*c))
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
mod tests;
