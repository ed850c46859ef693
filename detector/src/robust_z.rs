//! The first streaming detector: a robust z-score against a trailing window (median and MAD).
//!
//! For each point, the baseline is the median of the previous `window` points and the scale their
//! median absolute deviation (×1.4826, a standard deviation for normal data), floored at a fraction
//! of the level so that a flat series does not alarm on the first wiggle. No look-ahead: a point is
//! scored before it joins the window.

use std::collections::VecDeque;

/// Parameters, one set for every series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RobustZParams {
    /// Trailing points that form the baseline.
    pub window: usize,
    /// Points needed before anything is scored.
    pub warmup: usize,
    /// |z| at which a point is anomalous (its score is then 0.5).
    pub threshold_z: f64,
    /// The scale is at least this fraction of |median| (a 5% move of a flat series is not news).
    pub relative_floor: f64,
}

impl Default for RobustZParams {
    fn default() -> Self {
        RobustZParams {
            window: 60,
            warmup: 15,
            threshold_z: 6.0,
            relative_floor: 0.05,
        }
    }
}

/// The verdict on one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Signed robust z-score.
    pub z: f64,
    /// |z| mapped to [0, 1]: 0.5 at the threshold.
    pub score: f64,
    /// The baseline median the point was compared with.
    pub expected: f64,
}

/// Robust z-score state for one series: O(window) memory.
#[derive(Debug, Clone)]
pub struct RobustZ {
    params: RobustZParams,
    // The smallest scale this series is judged with, in its own units (e.g. 2 percentage points of
    // error ratio): below it a change is not worth a page whatever the history's spread.
    absolute_floor: f64,
    window: VecDeque<f64>,
    // Scratch buffer reused for medians, so scoring allocates nothing after warm-up.
    scratch: Vec<f64>,
}

/// The median of `v` (reorders it).
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    if v.len() % 2 == 1 {
        m
    } else {
        let lower = v[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lower + m) / 2.0
    }
}

/// Median and scaled MAD of `values`, with the scale floored as [`RobustZParams`] says.
pub fn robust_baseline(values: &[f64], relative_floor: f64, scratch: &mut Vec<f64>) -> (f64, f64) {
    scratch.clear();
    scratch.extend_from_slice(values);
    let med = median(scratch);
    for x in scratch.iter_mut() {
        *x = (*x - med).abs();
    }
    let mad = median(scratch) * 1.4826;
    (med, mad.max(relative_floor * med.abs()).max(1e-9))
}

impl RobustZ {
    pub fn new(params: RobustZParams, absolute_floor: f64) -> RobustZ {
        RobustZ {
            params,
            absolute_floor,
            window: VecDeque::with_capacity(params.window + 1),
            scratch: Vec::with_capacity(params.window),
        }
    }

    /// Scores `value` against the points seen so far, then adds it to the window.
    /// `None` while warming up.
    pub fn update(&mut self, value: f64) -> Option<Scored> {
        let verdict = (self.window.len() >= self.params.warmup).then(|| {
            let (values_a, values_b) = self.window.as_slices();
            let mut all = Vec::with_capacity(self.window.len());
            all.extend_from_slice(values_a);
            all.extend_from_slice(values_b);
            let (med, scale) = robust_baseline(&all, self.params.relative_floor, &mut self.scratch);
            let z = (value - med) / scale.max(self.absolute_floor);
            Scored {
                z,
                score: z.abs() / (z.abs() + self.params.threshold_z),
                expected: med,
            }
        });
        self.window.push_back(value);
        if self.window.len() > self.params.window {
            self.window.pop_front();
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_up_is_anomalous_and_noise_is_not() {
        let mut d = RobustZ::new(RobustZParams::default(), 1e-9);
        let mut worst_noise: f64 = 0.0;
        for i in 0..100 {
            let noise = ((i * 7919) % 13) as f64 / 13.0 - 0.5; // deterministic, bounded noise
            if let Some(s) = d.update(100.0 + noise) {
                worst_noise = worst_noise.max(s.score);
            }
        }
        assert!(worst_noise < 0.5, "noise scored {worst_noise}");
        let step = d.update(150.0).unwrap();
        assert!(step.score > 0.5 && step.z > 0.0, "{step:?}");
        assert!((step.expected - 100.0).abs() < 1.0);
    }

    #[test]
    fn flat_series_needs_more_than_a_wiggle() {
        let mut d = RobustZ::new(RobustZParams::default(), 1e-9);
        for _ in 0..30 {
            d.update(5.0);
        }
        assert!(d.update(5.1).unwrap().score < 0.5);
        assert!(d.update(9.0).unwrap().score > 0.5);
    }

    #[test]
    fn median_of_even_count_averages_the_middle() {
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }
}
