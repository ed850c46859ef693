//! Peer comparison across cells: the same service in N cells should behave alike. Each cell's
//! value is compared with the median of its siblings at the same time, as a log-ratio, so a
//! diurnal pattern all cells share cancels out; each cell's usual ratio (cells differ a little in
//! size and hardware) is learned with an exponentially weighted mean and variance, and a cell
//! whose ratio departs from its own usual by many deviations is a peer outlier.
//!
//! Streaming and pure: values go in with their time; a group is evaluated when a newer time
//! arrives (every member has then reported the older one, or is missing from it).

use std::collections::BTreeMap;

/// Parameters, one set for every group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerParams {
    /// Weight of a new observation in the EWMA of each cell's log-ratio (0.02 ≈ the last 50 points).
    pub alpha: f64,
    /// Evaluations before a cell is judged (its usual ratio must be learned first).
    pub warmup: usize,
    /// |z| of the log-ratio at which a cell is an outlier.
    pub threshold_z: f64,
    /// The standard deviation of the log-ratio is at least this (5%: smaller moves are noise).
    pub min_sd: f64,
    /// Peers needed for a comparison (the cell itself not counted).
    pub min_peers: usize,
}

impl Default for PeerParams {
    fn default() -> Self {
        PeerParams {
            alpha: 0.02,
            warmup: 30,
            threshold_z: 6.0,
            min_sd: 0.05,
            min_peers: 2,
        }
    }
}

/// A cell that departs from its siblings.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerOutlier {
    /// Milliseconds since the epoch of the compared values.
    pub t_millis: i64,
    pub cell: String,
    pub observed: f64,
    /// What the cell would show at its usual ratio to the siblings' median.
    pub expected: f64,
    /// Deviations of the log-ratio from the cell's usual.
    pub z: f64,
}

#[derive(Debug, Clone, Default)]
struct CellState {
    mean: f64,
    var: f64,
    seen: usize,
}

/// One group of peers: a service's series of one signal across cells.
#[derive(Debug, Clone, Default)]
pub struct PeerGroup {
    // Values closer to zero than this are as good as zero (in the signal's units, e.g. 2 points of
    // error ratio): without it, 0.0001 against 0.00001 would look like a tenfold departure.
    floor: f64,
    cells: BTreeMap<String, CellState>,
    // Values of the time being collected.
    pending_t: Option<i64>,
    pending: BTreeMap<String, f64>,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

impl PeerGroup {
    /// A group whose values are judged with `floor` as the smallest level that matters.
    pub fn new(floor: f64) -> PeerGroup {
        PeerGroup {
            floor: floor.max(1e-9),
            ..PeerGroup::default()
        }
    }

    /// Records `value` of `cell` at `t_millis`. When `t_millis` is newer than the values being
    /// collected, those are compared first and any outliers among them returned.
    pub fn observe(&mut self, params: &PeerParams, t_millis: i64, cell: &str, value: f64) -> Vec<PeerOutlier> {
        let mut out = Vec::new();
        if self.pending_t.is_some_and(|p| t_millis > p) {
            out = self.flush(params);
        }
        if self.pending_t.is_none_or(|p| t_millis >= p) && value.is_finite() {
            self.pending_t = Some(t_millis);
            // Several series of one cell (its pods) count as the cell's worst.
            self.pending
                .entry(cell.to_string())
                .and_modify(|v| *v = v.max(value))
                .or_insert(value);
        }
        out
    }

    /// Compares the values collected so far (call at the end of a stream).
    pub fn flush(&mut self, params: &PeerParams) -> Vec<PeerOutlier> {
        let Some(t) = self.pending_t.take() else { return Vec::new() };
        let values = std::mem::take(&mut self.pending);
        let mut out = Vec::new();
        if values.len() < params.min_peers + 1 {
            return out;
        }
        for (cell, &v) in &values {
            let mut others: Vec<f64> = values.iter().filter(|(c, _)| *c != cell).map(|(_, x)| *x).collect();
            let peer = median(&mut others);
            // Log-ratio with a floor, so values near zero (an idle queue, 0.01% errors) do not blow up.
            let floor = self.floor.max(peer.abs() * 1e-3);
            let r = ((v.abs() + floor) / (peer.abs() + floor)).ln();
            let st = self.cells.entry(cell.clone()).or_default();
            let sd = st.var.sqrt().max(params.min_sd);
            if st.seen >= params.warmup {
                let z = (r - st.mean) / sd;
                if z.abs() >= params.threshold_z {
                    out.push(PeerOutlier {
                        t_millis: t,
                        cell: cell.clone(),
                        observed: v,
                        expected: (peer.abs() + floor) * st.mean.exp() - floor,
                        z,
                    });
                    // An outlier does not teach the cell a new "usual".
                    continue;
                }
            }
            // Welford-style EWMA of mean and variance.
            let a = if st.seen == 0 {
                1.0
            } else {
                params.alpha.max(1.0 / (st.seen as f64 + 1.0))
            };
            let d = r - st.mean;
            st.mean += a * d;
            st.var = (1.0 - a) * (st.var + a * d * d);
            st.seen += 1;
        }
        out
    }

    /// Approximate bytes of state (for the benchmark's per-series figure).
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .cells
                .keys()
                .map(|k| k.capacity() + std::mem::size_of::<CellState>() + 48)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Diurnal load shared by all cells, per-cell scale and noise; `bump(cell, step)` adds a fault.
    fn run(cells: usize, steps: usize, bump: impl Fn(usize, usize) -> f64) -> Vec<PeerOutlier> {
        let params = PeerParams::default();
        let mut g = PeerGroup::new(1.0);
        let mut out = Vec::new();
        for i in 0..steps {
            let diurnal = 1.0 + 0.5 * (i as f64 / 2880.0 * std::f64::consts::TAU).sin();
            for c in 0..cells {
                let scale = 1.0 + 0.1 * c as f64; // cells differ in size
                let noise = 1.0 + 0.02 * (((i * 31 + c * 17) % 13) as f64 / 6.5 - 1.0);
                let v = 100.0 * diurnal * scale * noise + bump(c, i);
                out.extend(g.observe(&params, i as i64 * 30_000, &format!("cell-{}", c + 1), v));
            }
        }
        out.extend(g.flush(&params));
        out
    }

    #[test]
    fn shared_diurnal_pattern_is_not_an_outlier() {
        assert!(run(4, 2880, |_, _| 0.0).is_empty());
    }

    #[test]
    fn the_cell_that_departs_from_its_siblings_is_flagged() {
        let out = run(4, 400, |c, i| if c == 2 && i >= 300 { 80.0 } else { 0.0 });
        assert!(!out.is_empty());
        assert!(out.iter().all(|o| o.cell == "cell-3"), "{out:?}");
        assert!(out[0].t_millis >= 300 * 30_000 && out[0].t_millis <= 303 * 30_000);
        assert!(out[0].observed > out[0].expected);
    }

    #[test]
    fn noise_near_zero_is_not_a_departure() {
        let params = PeerParams::default();
        let mut g = PeerGroup::new(0.02); // error ratio: 2 points matter
        let mut out = Vec::new();
        for i in 0..400 {
            for c in 0..4 {
                let v = if (i + c) % 7 == 0 { 0.001 } else { 0.0 };
                out.extend(g.observe(&params, i * 30_000, &format!("cell-{c}"), v));
            }
        }
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn two_cells_are_too_few_to_tell_who_departs() {
        assert!(run(2, 400, |c, i| if c == 1 && i >= 300 { 80.0 } else { 0.0 }).is_empty());
    }
}
