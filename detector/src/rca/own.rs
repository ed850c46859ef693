//! Evidence about what an entity does on its own, from spans: a service's *self time* (its entry
//! spans' duration minus the time covered by their calls, so a service does not inherit its
//! callees' slowness), its *own* failures (failed entry spans none of whose calls failed), and the
//! latency and failures of calls to each callee seen only from the caller's side (an external
//! peer, or one of the platform's services that is not traced, such as a database).

use super::traces::{Entry, Phase};
use super::{to_score, Finding};
use crate::robust_z::{median, robust_baseline};
use cellwarden_models::{Entity, EntityKind};
use std::collections::{BTreeMap, BTreeSet};

/// Parameters of the own-behaviour evidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct OwnParams {
    /// Least baseline entries of an operation, and test entries of a service.
    pub min_base: usize,
    pub min_test: usize,
    /// Smallest spread of log-durations: smaller moves are noise (0.1 ≈ 10%).
    pub log_floor: f64,
    /// A failure rate moving by this much is one unit of z.
    pub error_unit: f64,
    pub half_z: f64,
    /// A shift pooled over n requests keeps √(n / (n + this)) of its z: few requests say little.
    pub shrink_n: f64,
    /// A pooled self-time shift of fewer robust units than this is what a median of requests
    /// drifts by anyway (workload mix, a baseline from another hour): evidence starts above it.
    pub significant_z: f64,
    /// Weight of a drop in self time (work skipped: failing fast, returning early).
    pub drop_weight: f64,
}

/// Self-time evidence: per operation, test entries' log self time against the operation's
/// baseline, pooled per service (the median of the standardised shifts), so one odd operation
/// with few requests does not speak for the service. Also returns the services whose requests
/// were measured before and after the start.
pub(crate) fn self_time(entries: &[Entry], p: &OwnParams) -> (Vec<Finding>, BTreeSet<String>) {
    let mut by_op: BTreeMap<(&str, &str), BeforeAfter> = BTreeMap::new();
    for e in entries {
        let slot = by_op.entry((e.service.as_str(), e.op.as_str())).or_default();
        let v = e.self_secs.max(1e-6).ln();
        match e.phase {
            Phase::Base => slot.0.push(v),
            Phase::Test => slot.1.push(v),
        }
    }
    let mut pooled: BTreeMap<&str, (Vec<f64>, Vec<f64>)> = BTreeMap::new(); // (z, log ratio)
    let mut scratch = Vec::new();
    for ((service, _), (base, test)) in &by_op {
        if base.len() < p.min_base || test.is_empty() {
            continue;
        }
        let (med, scale) = robust_baseline(base, 0.0, &mut scratch);
        let scale = scale.max(p.log_floor);
        let slot = pooled.entry(service).or_default();
        for v in test {
            slot.0.push((v - med) / scale);
            slot.1.push(v - med);
        }
    }
    let mut out = Vec::new();
    let mut measured = BTreeSet::new();
    for (service, (mut z, mut ratio)) in pooled {
        if z.len() < p.min_test {
            continue;
        }
        measured.insert(service.to_string());
        // Few requests say little: shrink towards zero.
        let n = z.len() as f64;
        let z = median(&mut z) * (n / (n + p.shrink_n)).sqrt();
        let ratio = median(&mut ratio).exp();
        if z.abs() <= p.significant_z {
            continue;
        }
        if z > 0.0 {
            out.push(Finding::service(
                service,
                "trace:self-time",
                to_score(z - p.significant_z, p.half_z),
                format!(
                    "its own time per request (calls excluded) is ×{ratio:.2} its baseline (median over {} requests, robust z {z:.1}).",
                    n
                ),
            ));
        } else if p.drop_weight > 0.0 {
            // Suddenly doing less per request: skipping work (failing fast, returning early).
            out.push(Finding::service(
                service,
                "trace:self-time",
                p.drop_weight * to_score(-z - p.significant_z, p.half_z),
                format!(
                    "its own time per request (calls excluded) fell to ×{ratio:.2} its baseline (median over {} requests, robust z {z:.1}): work skipped?",
                    n
                ),
            ));
        }
    }
    (out, measured)
}

/// Values before and after the start.
type BeforeAfter = (Vec<f64>, Vec<f64>);

#[derive(Default)]
struct Counts {
    base: u64,
    base_failed: u64,
    test: u64,
    test_failed: u64,
}

impl Counts {
    fn add(&mut self, phase: Phase, failed: bool) {
        match phase {
            Phase::Base => {
                self.base += 1;
                self.base_failed += u64::from(failed);
            }
            Phase::Test => {
                self.test += 1;
                self.test_failed += u64::from(failed);
            }
        }
    }
    /// The failure-rate rise as z and the two rates, when there is enough test data.
    fn rise(&self, min_test: usize, unit: f64) -> Option<(f64, f64, f64)> {
        if self.test < min_test as u64 {
            return None;
        }
        let before = if self.base > 0 {
            self.base_failed as f64 / self.base as f64
        } else {
            0.0
        };
        let after = self.test_failed as f64 / self.test as f64;
        let z = (after - before) / unit;
        (z > 1.0).then_some((z, before, after))
    }
}

/// Own-failure evidence of services, and latency and failure evidence of the callees seen only
/// from their callers' side.
pub(crate) fn failures_and_peers(entries: &[Entry], p: &OwnParams) -> Vec<Finding> {
    let mut own: BTreeMap<&str, Counts> = BTreeMap::new();
    // (callee, external) → failures, and log-durations before and after the start
    let mut peers: BTreeMap<(&str, bool), (Counts, BeforeAfter)> = BTreeMap::new();
    for e in entries {
        own.entry(e.service.as_str()).or_default().add(e.phase, e.own_failure());
        for c in e.calls.iter().filter(|c| !c.traced) {
            let (counts, (base, test)) = peers.entry((c.callee.as_str(), c.external)).or_default();
            counts.add(e.phase, c.failed);
            let d = ((c.end_ns - c.start_ns).max(0) as f64 / 1e9).max(1e-6).ln();
            match e.phase {
                Phase::Base => base.push(d),
                Phase::Test => test.push(d),
            }
        }
    }
    let mut out = Vec::new();
    for (service, counts) in &own {
        if let Some((z, before, after)) = counts.rise(p.min_test, p.error_unit) {
            out.push(Finding::service(
                service,
                "trace:errors",
                to_score(z, p.half_z),
                format!(
                    "{:.1}% of its requests failed on their own (no failed call beneath), against {:.1}% before.",
                    after * 100.0,
                    before * 100.0
                ),
            ));
        }
    }
    let mut scratch = Vec::new();
    for ((peer, external), (counts, (base, test))) in &mut peers {
        let kind = if *external { EntityKind::Provider } else { EntityKind::Service };
        let entity = Entity::new(kind, *peer);
        if let Some((z, before, after)) = counts.rise(p.min_test, p.error_unit) {
            out.push(Finding {
                entity: entity.clone(),
                source: "trace:errors".into(),
                score: to_score(z, p.half_z),
                detail: format!(
                    "{:.1}% of calls to it failed, against {:.1}% before.",
                    after * 100.0,
                    before * 100.0
                ),
            });
        }
        // Calls are many and cheap to baseline: ask for twice the entries' baseline.
        if base.len() >= 2 * p.min_base && test.len() >= p.min_test {
            let (med, scale) = robust_baseline(base, 0.0, &mut scratch);
            let test_med = median(test);
            let z = (test_med - med) / scale.max(p.log_floor);
            if z > 0.0 {
                out.push(Finding {
                    entity,
                    source: "trace:latency".into(),
                    score: to_score(z, p.half_z),
                    detail: format!(
                        "median call duration ×{:.2} against the baseline ({} calls then, {} now).",
                        (test_med - med).exp(),
                        base.len(),
                        test.len()
                    ),
                });
            }
        }
    }
    out
}
