//! Network evidence: on each caller → callee edge, the *gap* between the caller's client span and
//! the callee's server span is time on the wire and in the callee's accept queue. A gap that grows
//! after the start points at one end of the edge. Which one: the end whose *other* edges grew too
//! (a service with a delayed network or a starved CPU slows every edge it is on; an innocent
//! neighbour only the one it shares), and the callee when neither end says more.

use super::traces::{Entry, Phase};
use super::{robust_shift, to_score, Finding};
use std::collections::{BTreeMap, HashMap};

/// Parameters of the gap evidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GapParams {
    /// Smallest scale of a gap (seconds): a shift below a few of these is noise.
    pub floor_secs: f64,
    /// z from which an edge counts as grown when weighing its ends.
    pub significant_z: f64,
    /// Weight of the callee when neither end's other edges grew (0..1 prior towards the callee).
    pub callee_prior: f64,
    pub half_z: f64,
}

#[derive(Default)]
struct Samples {
    early: Vec<f64>,
    base: Vec<f64>,
    test: Vec<f64>,
}

/// Gap evidence per service.
pub(crate) fn evidence(entries: &[Entry], p: &GapParams) -> Vec<Finding> {
    let mut edges: BTreeMap<(&str, &str), Samples> = BTreeMap::new();
    for e in entries {
        for c in e.calls.iter().filter(|c| c.traced) {
            let Some(gap) = c.gap_ns else { continue };
            let s = edges.entry((e.service.as_str(), c.callee.as_str())).or_default();
            let g = gap as f64 / 1e9;
            match e.phase {
                Phase::Test => s.test.push(g),
                Phase::Base => {
                    s.base.push(g);
                    if !e.guarded {
                        s.early.push(g);
                    }
                }
            }
        }
    }
    // z of each edge with enough data.
    let mut z_of: Vec<((&str, &str), f64, f64, f64)> = Vec::new();
    for (edge, s) in &mut edges {
        let Some((z, before, after)) = robust_shift(&mut s.early, &mut s.base, &mut s.test, p.floor_secs) else {
            continue;
        };
        z_of.push((*edge, z, before, after));
    }
    let mut edges_of: HashMap<&str, (usize, usize)> = HashMap::new(); // (edges, grown edges)
    for &((a, b), z, _, _) in &z_of {
        for end in [a, b] {
            let e = edges_of.entry(end).or_default();
            e.0 += 1;
            e.1 += usize::from(z >= p.significant_z);
        }
    }
    // Share of the other edges of `end` that grew (this edge left out).
    let others = |end: &str, grown: bool| -> f64 {
        let (n, g) = edges_of[end];
        if n <= 1 {
            0.0
        } else {
            (g - usize::from(grown)) as f64 / (n - 1) as f64
        }
    };
    let mut out = Vec::new();
    for &((caller, callee), z, before, after) in &z_of {
        if z <= 0.0 {
            continue;
        }
        let grown = z >= p.significant_z;
        let (fa, fb) = (others(caller, grown), others(callee, grown));
        let callee_share = (fb + p.callee_prior) / (fa + fb + p.callee_prior);
        // Below the significance level a shift is noise: evidence starts above it.
        let score = to_score(z - p.significant_z, p.half_z);
        let detail = format!(
            "the network gap on {caller} → {callee} grew from {:.1} ms to {:.1} ms (robust z {z:.1})",
            before * 1e3,
            after * 1e3
        );
        out.push(Finding::service(
            callee,
            "trace:network",
            score * callee_share,
            format!("{detail}; {:.0}% of the blame on the callee.", callee_share * 100.0),
        ));
        out.push(Finding::service(
            caller,
            "trace:network",
            score * (1.0 - callee_share),
            format!("{detail}; {:.0}% of the blame on the caller.", (1.0 - callee_share) * 100.0),
        ));
    }
    out
}
