//! The streaming ensemble: a univariate anomaly detector for live telemetry and for the Numenta
//! Anomaly Benchmark (NAB), built from *novelty* tests.
//!
//! Each point feeds four features of the series:
//!
//! - **range**: the value itself;
//! - **shift**: a two-sided CUSUM (Page's test) of the value against a slow robust baseline, in
//!   units of its spread — it grows while the series stays off its baseline (it may alarm only
//!   once its own range covers a full memory, `cusum_mature` points);
//! - **mean**: a short moving average (EWMA) of the value — it leaves its usual range when the
//!   density or level of the series changes (bursts, spikes becoming frequent);
//! - **seasonal** (only with timestamps): the smoothed residual of the value against a daily profile
//!   (the value usually seen at this time of day), weighted by how seasonal the series is.
//!
//! A feature is *novel* when it lies outside the range (minimum to maximum) it took over the last
//! [`MEMORY_BLOCKS`] × `block_rows` points. Its novelty is how far outside, as a fraction of that
//! range's width: scale-free, so the same figure means the same surprise on every series, whatever
//! its units, spread or sparsity (a flat or sparse series has a floor on the width relative to its
//! level, so it does not explode). For iid noise a new record becomes rarer as history grows (about
//! one in `n` points), so alarms thin out on well-behaved series.
//!
//! The score is the largest weighted novelty `e`, mapped to `e / (e + alarm_excess)` (0.5 at the
//! alarm level). After an alarm the detector rests: for a while (proportional to the points seen so
//! far, capped) it reports 0, as one incident needs one page. The CUSUM restarts after an alarm.
//! Everything is O(1) per point and lives inline (no heap): see [`StreamingEnsemble`] for the size.
//!
//! No look-ahead: a point is scored against the state built from the points before it, then learnt.
//! The detector never needs the series' length, minimum or maximum up front.

/// Blocks of the range memory (each remembers its minimum and maximum).
pub const MEMORY_BLOCKS: usize = 32;

/// Slots of the daily profile: 288, i.e. one per 5 minutes.
pub const DAY_SLOTS: usize = 288;

const SECONDS_PER_DAY: i64 = 86_400;

/// Parameters: one set for every series. `Default` is the one set used for the whole NAB corpus,
/// chosen by the corpus score, so it accepts roughly one false alarm per few thousand points of
/// pure noise (NAB charges a false alarm about a ninth of a missed anomaly). For paging on live
/// telemetry a stricter `alarm_excess` (e.g. 0.1) keeps a learnt noisy seasonal series silent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Points (rows) at the start of a series that always score 0 while the state settles; points.
    pub warmup: u32,
    /// Points per block of the range memory; the memory spans `block_rows × MEMORY_BLOCKS` points
    /// (4096 by default: two weeks of 5-minute data); points.
    pub block_rows: u32,
    /// EWMA weight per point of the slow robust baseline (level and spread) the CUSUM is measured
    /// against; 1/points (1/256: a time constant of 256 points).
    pub baseline_alpha: f64,
    /// EWMA weight per point of the long-run spread that floors the baseline spread; 1/points.
    pub long_alpha: f64,
    /// Baseline updates clip a deviation to this many spreads (Huber), so one spike barely moves
    /// it; spreads.
    pub huber_k: f64,
    /// The baseline spread is at least this fraction of the long-run spread; ratio.
    pub long_floor: f64,
    /// Spreads and range widths are at least this fraction of |baseline level| (a 0.1% wiggle of a
    /// flat series is not news); ratio.
    pub rel_floor: f64,
    /// EWMA weight per point of the `mean` feature; 1/points.
    pub mean_alpha: f64,
    /// CUSUM slack: deviations smaller than this many spreads do not accumulate; spreads.
    pub cusum_k: f64,
    /// A single point moves the CUSUM by at most this many spreads; spreads.
    pub cusum_clip: f64,
    /// Points a series must have before its CUSUM may raise an alarm (its own range must cover
    /// the whole memory first); points.
    pub cusum_mature: u32,
    /// EWMA weight per day of the daily profile (per visit of a slot); 1/days.
    pub profile_alpha: f64,
    /// A slot's profile is used once the slot has been seen this many times; days.
    pub profile_min_days: u8,
    /// EWMA weight per point of the seasonal residual (the `seasonal` feature); 1/points.
    pub residual_alpha: f64,
    /// Points of seasonal residuals before the seasonal feature may raise an alarm; points.
    pub seasonal_min_points: u32,
    /// EWMA weight per point of the mean absolute residuals that measure how seasonal a series is;
    /// 1/points.
    pub strength_alpha: f64,
    /// Full seasonal weight when mean |value − profile| ≤ this × mean |value − baseline|; ratio.
    pub seasonal_ratio_full: f64,
    /// No seasonal weight when that ratio ≥ this (the profile explains nothing); ratio.
    pub seasonal_ratio_off: f64,
    /// Weight of the seasonal feature's novelty relative to the others; ratio.
    pub seasonal_weight: f64,
    /// Novelty (distance outside the remembered range, as a fraction of its width) that is an alarm
    /// and scores 0.5; fraction of the range.
    pub alarm_excess: f64,
    /// After an alarm, rest (score 0) for this fraction of the points seen so far…; ratio.
    pub rest_fraction: f64,
    /// …but at most this many points; points.
    pub rest_max: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            warmup: 150,
            block_rows: 128,
            baseline_alpha: 1.0 / 256.0,
            long_alpha: 1.0 / 2048.0,
            huber_k: 3.0,
            long_floor: 0.2,
            rel_floor: 0.001,
            mean_alpha: 1.0 / 64.0,
            cusum_k: 0.5,
            cusum_clip: 4.0,
            cusum_mature: 4096,
            profile_alpha: 0.25,
            profile_min_days: 2,
            residual_alpha: 0.1,
            seasonal_min_points: 288,
            strength_alpha: 1.0 / 512.0,
            seasonal_ratio_full: 1.0,
            seasonal_ratio_off: 2.0,
            seasonal_weight: 0.7,
            alarm_excess: 1.0 / 30.0,
            rest_fraction: 0.08,
            rest_max: 300,
        }
    }
}

/// What drove a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    /// Nothing novel (or still warming up, or the value was not a finite number).
    None,
    /// The value left the range of values seen in the memory.
    Range,
    /// The CUSUM of the value against the slow baseline reached a height not seen in the memory:
    /// a sustained shift or drift.
    Shift,
    /// The short moving average left its range: a change of level or of the density of spikes.
    Mean,
    /// The deviation from the value usual at this time of day left its range.
    Seasonal,
}

/// The verdict on one point, with what the detector expected.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnsembleScore {
    /// Anomaly score in [0, 1]: 0.5 at the alarm level; 0 while warming up or resting after an
    /// alarm.
    pub score: f64,
    /// The score before the rest after an alarm was applied (what the point alone is worth).
    pub raw: f64,
    /// The value observed.
    pub observed: f64,
    /// The value expected: the daily profile's value for this time of day when the seasonal
    /// feature drove the score, else the slow baseline level.
    pub expected: f64,
    /// The range of values seen in the memory before this point, `(min, max)` (NaN before any).
    pub usual_range: (f64, f64),
    /// The feature that drove the score.
    pub component: Component,
    /// Its novelty: distance outside its remembered range, as a fraction of the range's width,
    /// weighted (0 inside the range).
    pub excess: f64,
    /// True when the point is in the rest after an alarm (its `score` is then 0).
    pub resting: bool,
    /// True when this point raised an alarm (`raw` ≥ 0.5 outside a rest).
    pub alarm: bool,
}

impl EnsembleScore {
    fn quiet(value: f64, expected: f64) -> EnsembleScore {
        EnsembleScore {
            score: 0.0,
            raw: 0.0,
            observed: value,
            expected,
            usual_range: (f64::NAN, f64::NAN),
            component: Component::None,
            excess: 0.0,
            resting: false,
            alarm: false,
        }
    }
}

/// Minimum and maximum of a feature over the last `MEMORY_BLOCKS` blocks of points plus the block
/// being filled, in O(1) amortised per point (a block's extremes are folded in when it completes).
/// Values are kept as `f32` (and compared as `f32`) to halve the memory.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RangeMemory {
    block_max: [f32; MEMORY_BLOCKS],
    block_min: [f32; MEMORY_BLOCKS],
    /// Next block slot to overwrite.
    head: u8,
    /// Completed blocks remembered (≤ MEMORY_BLOCKS).
    filled: u8,
    /// Points in the block being filled.
    current_len: u32,
    current_max: f32,
    current_min: f32,
    /// Extremes over the completed blocks.
    done_max: f32,
    done_min: f32,
}

impl RangeMemory {
    const EMPTY: RangeMemory = RangeMemory {
        block_max: [0.0; MEMORY_BLOCKS],
        block_min: [0.0; MEMORY_BLOCKS],
        head: 0,
        filled: 0,
        current_len: 0,
        current_max: f32::NEG_INFINITY,
        current_min: f32::INFINITY,
        done_max: f32::NEG_INFINITY,
        done_min: f32::INFINITY,
    };

    /// `(min, max)` remembered; infinite when empty.
    fn range(&self) -> (f64, f64) {
        (
            f64::from(self.done_min.min(self.current_min)),
            f64::from(self.done_max.max(self.current_max)),
        )
    }

    /// How far `x` lies outside the remembered range, as a fraction of its width (at least
    /// `min_width`); 0 inside the range or when nothing is remembered yet.
    fn excess(&self, x: f64, min_width: f64) -> f64 {
        let (lo, hi) = self.range();
        if !(lo.is_finite() && hi.is_finite()) {
            return 0.0;
        }
        let x = f64::from(x as f32);
        let outside = (x - hi).max(lo - x);
        if outside <= 0.0 {
            return 0.0;
        }
        // The last-resort floor keeps a series flat at exactly 0 finite; the cap keeps the score
        // a number.
        (outside / (hi - lo).max(min_width).max(1e-12)).min(MAX_EXCESS)
    }

    fn push(&mut self, x: f64, block_rows: u32) {
        let x = x as f32;
        self.current_max = self.current_max.max(x);
        self.current_min = self.current_min.min(x);
        self.current_len += 1;
        if self.current_len >= block_rows {
            let h = usize::from(self.head);
            self.block_max[h] = self.current_max;
            self.block_min[h] = self.current_min;
            self.head = ((h + 1) % MEMORY_BLOCKS) as u8;
            self.filled = (usize::from(self.filled) + 1).min(MEMORY_BLOCKS) as u8;
            self.current_len = 0;
            self.current_max = f32::NEG_INFINITY;
            self.current_min = f32::INFINITY;
            let n = usize::from(self.filled);
            self.done_max = self.block_max[..n].iter().copied().fold(f32::NEG_INFINITY, f32::max);
            self.done_min = self.block_min[..n].iter().copied().fold(f32::INFINITY, f32::min);
        }
    }
}

/// Novelty is capped here (a billion range widths outside is as novel as it gets).
const MAX_EXCESS: f64 = 1e9;

const RANGE: usize = 0;
const SHIFT: usize = 1;
const MEAN: usize = 2;
const SEASONAL: usize = 3;
const FEATURES: usize = 4;
const COMPONENTS: [Component; FEATURES] = [Component::Range, Component::Shift, Component::Mean, Component::Seasonal];

/// The detector's state for one series: 2,816 bytes on x86-64, all inline (`size_of` is the whole
/// footprint; nothing on the heap), of which 1,440 are the daily profile. Create one per series with [`StreamingEnsemble::new`]; feed
/// points in order with [`StreamingEnsemble::update`] (no seasonality) or
/// [`StreamingEnsemble::update_at`] (with a Unix timestamp, enabling the daily profile).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamingEnsemble {
    params: Params,
    /// Points learnt so far.
    n: u64,
    /// Slow robust baseline: level and spread (≈ standard deviation).
    level: f64,
    spread: f64,
    /// Long-run spread (not clipped), a floor for `spread`.
    long_spread: f64,
    cusum_up: f64,
    cusum_down: f64,
    mean: f64,
    residual: f64,
    /// Mean |value − profile| and mean |value − baseline|: how seasonal the series is.
    seasonal_abs: f64,
    flat_abs: f64,
    seasonal_points: u32,
    /// Point index of the last alarm.
    last_alarm: Option<u64>,
    memory: [RangeMemory; FEATURES],
    profile: [f32; DAY_SLOTS],
    profile_days: [u8; DAY_SLOTS],
}

impl StreamingEnsemble {
    pub fn new(params: Params) -> StreamingEnsemble {
        StreamingEnsemble {
            params,
            n: 0,
            level: 0.0,
            spread: 0.0,
            long_spread: 0.0,
            cusum_up: 0.0,
            cusum_down: 0.0,
            mean: 0.0,
            residual: 0.0,
            seasonal_abs: 0.0,
            flat_abs: 0.0,
            seasonal_points: 0,
            last_alarm: None,
            memory: [RangeMemory::EMPTY; FEATURES],
            profile: [0.0; DAY_SLOTS],
            profile_days: [0; DAY_SLOTS],
        }
    }

    /// The parameters this detector runs with.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Points learnt so far.
    pub fn points(&self) -> u64 {
        self.n
    }

    /// Bytes of state per series: the whole struct (it owns no heap memory).
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<StreamingEnsemble>()
    }

    /// Scores the next point of a series without timestamps (no daily profile), then learns it.
    pub fn update(&mut self, value: f64) -> EnsembleScore {
        self.step(None, value)
    }

    /// Scores the next point, observed at `unix_seconds` (its time of day selects the daily
    /// profile slot; timestamps may repeat or step back), then learns it.
    pub fn update_at(&mut self, unix_seconds: i64, value: f64) -> EnsembleScore {
        let slot = (unix_seconds.rem_euclid(SECONDS_PER_DAY) * DAY_SLOTS as i64 / SECONDS_PER_DAY) as usize;
        self.step(Some(slot), value)
    }

    /// The baseline spread, floored by a fraction of the long-run spread and of the level.
    fn floored_spread(&self) -> f64 {
        let p = &self.params;
        self.spread
            .max(p.long_floor * self.long_spread)
            .max(p.rel_floor * self.level.abs())
            .max(1e-12)
    }

    fn step(&mut self, slot: Option<usize>, x: f64) -> EnsembleScore {
        if !x.is_finite() {
            // Nothing to learn from a missing value; the series' state is unchanged.
            return EnsembleScore::quiet(x, self.level);
        }
        let p = self.params;
        let n = self.n;
        if n == 0 {
            self.level = x;
            self.mean = x;
            self.learn_profile(slot, x);
            self.memory[RANGE].push(x, p.block_rows);
            self.n = 1;
            return EnsembleScore::quiet(x, x);
        }

        // 1. Features of this point, from the state before it.
        let spread = self.floored_spread();
        let e = ((x - self.level) / spread).clamp(-p.cusum_clip, p.cusum_clip);
        let cusum_up = (self.cusum_up + e - p.cusum_k).max(0.0);
        let cusum_down = (self.cusum_down - e - p.cusum_k).max(0.0);
        let shift = cusum_up.max(cusum_down);
        let mean = self.mean + p.mean_alpha * (x - self.mean);
        let mut residual = None;
        let mut expected_seasonal = None;
        if let Some(s) = slot {
            if self.profile_days[s] >= p.profile_min_days {
                let r = x - f64::from(self.profile[s]);
                residual = Some(self.residual + p.residual_alpha * (r - self.residual));
                expected_seasonal = Some(f64::from(self.profile[s]));
                self.seasonal_abs += p.strength_alpha * (r.abs() - self.seasonal_abs);
                self.flat_abs += p.strength_alpha * ((x - self.level).abs() - self.flat_abs);
                self.seasonal_points = self.seasonal_points.saturating_add(1);
            }
        }

        // 2. Novelty of each feature against its remembered range.
        let min_width = p.rel_floor * self.level.abs();
        let mut excess = [0.0f64; FEATURES];
        excess[RANGE] = self.memory[RANGE].excess(x, min_width);
        if n >= u64::from(p.cusum_mature) {
            excess[SHIFT] = self.memory[SHIFT].excess(shift, min_width);
        }
        excess[MEAN] = self.memory[MEAN].excess(mean, min_width);
        if let Some(r) = residual {
            if self.seasonal_points >= p.seasonal_min_points {
                excess[SEASONAL] = p.seasonal_weight * self.seasonal_strength() * self.memory[SEASONAL].excess(r, min_width);
            }
        }
        let (driver, top) = excess
            .iter()
            .copied()
            .enumerate()
            .fold((RANGE, 0.0f64), |best, (i, v)| if v > best.1 { (i, v) } else { best });
        let raw = if n < u64::from(p.warmup) {
            0.0
        } else {
            top / (top + p.alarm_excess)
        };

        // 3. The rest after an alarm.
        let rest = (p.rest_fraction * n as f64).min(f64::from(p.rest_max)) as u64;
        let resting = self.last_alarm.is_some_and(|a| n - a <= rest);
        let alarm = raw >= 0.5 && !resting;
        if raw >= 0.5 {
            // A point at alarm level during the rest prolongs it: one incident, one page.
            self.last_alarm = Some(n);
        }
        let usual_range = self.memory[RANGE].range();
        let verdict = EnsembleScore {
            score: if resting { 0.0 } else { raw },
            raw,
            observed: x,
            expected: match (COMPONENTS[driver], expected_seasonal) {
                (Component::Seasonal, Some(v)) => v,
                _ => self.level,
            },
            usual_range: if usual_range.0.is_finite() {
                usual_range
            } else {
                (f64::NAN, f64::NAN)
            },
            component: if raw > 0.0 { COMPONENTS[driver] } else { Component::None },
            excess: if raw > 0.0 { top } else { 0.0 },
            resting,
            alarm,
        };

        // 4. Learn the point.
        self.memory[RANGE].push(x, p.block_rows);
        self.memory[SHIFT].push(shift, p.block_rows);
        self.memory[MEAN].push(mean, p.block_rows);
        if let Some(r) = residual {
            self.memory[SEASONAL].push(r, p.block_rows);
            self.residual = r;
        }
        self.mean = mean;
        self.cusum_up = cusum_up;
        self.cusum_down = cusum_down;
        if alarm {
            // Page's test restarts after it signals.
            self.cusum_up = 0.0;
            self.cusum_down = 0.0;
        }
        self.learn_baseline(x, spread);
        self.learn_profile(slot, x);
        self.n += 1;
        verdict
    }

    /// How much of the series the daily profile explains, in [0, 1].
    fn seasonal_strength(&self) -> f64 {
        let p = &self.params;
        let ratio = self.seasonal_abs / self.flat_abs.max(1e-12);
        ((p.seasonal_ratio_off - ratio) / (p.seasonal_ratio_off - p.seasonal_ratio_full)).clamp(0.0, 1.0)
    }

    /// Robust EWMA of level and spread; the weight is 1/(points + 1) until it falls to
    /// `baseline_alpha`, so the first points give an exact mean instead of a biased one.
    fn learn_baseline(&mut self, x: f64, floored_spread: f64) {
        let p = &self.params;
        let warm = 1.0 / (self.n as f64 + 1.0);
        let a = p.baseline_alpha.max(warm);
        let deviation = x - self.level;
        let clipped = if self.spread > 0.0 {
            let c = p.huber_k * floored_spread;
            deviation.clamp(-c, c)
        } else {
            deviation
        };
        self.level += a * clipped;
        self.spread += a * (clipped.abs() * MEAN_ABS_TO_SD - self.spread);
        self.long_spread += p.long_alpha.max(warm) * (deviation.abs() * MEAN_ABS_TO_SD - self.long_spread);
    }

    fn learn_profile(&mut self, slot: Option<usize>, x: f64) {
        let Some(s) = slot else { return };
        if self.profile_days[s] == 0 {
            self.profile[s] = x as f32;
        } else {
            self.profile[s] += (self.params.profile_alpha * (x - f64::from(self.profile[s]))) as f32;
        }
        self.profile_days[s] = self.profile_days[s].saturating_add(1);
    }
}

/// Mean absolute deviation × √(π/2) = standard deviation, for normal data.
const MEAN_ABS_TO_SD: f64 = 1.253_314_137_315_500_3;

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic noise in [-0.5, 0.5) (a 64-bit LCG), so tests never depend on a seed crate.
    struct Noise(u64);
    impl Noise {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        }
        /// Roughly normal: sum of four uniforms (sd ≈ 0.58).
        fn normalish(&mut self) -> f64 {
            (0..4).map(|_| self.next()).sum()
        }
    }

    const FIVE_MIN: i64 = 300;
    const T0: i64 = 1_400_000_000 - 1_400_000_000 % SECONDS_PER_DAY;

    fn alarm_level() -> f64 {
        0.5
    }

    /// Noise around `level` (sd ≈ 0.58), `n` points.
    fn feed_noise(d: &mut StreamingEnsemble, noise: &mut Noise, level: f64, n: usize) -> usize {
        (0..n).filter(|_| d.update(level + noise.normalish()).alarm).count()
    }

    #[test]
    fn stationary_noise_raises_few_alarms_once_settled() {
        // The defaults are tuned for NAB's costs (a page is worth about nine false alarms), so on
        // pure noise a record beyond the range by 1/30 of its width still happens now and then:
        // about once in several thousand points once the memory is full.
        for seed in 1..5 {
            let mut d = StreamingEnsemble::new(Params::default());
            let mut noise = Noise(seed);
            feed_noise(&mut d, &mut noise, 50.0, 2000);
            let alarms = feed_noise(&mut d, &mut noise, 50.0, 20_000);
            assert!(alarms <= 10, "seed {seed}: {alarms} alarms in 20000 points of noise");
        }
    }

    #[test]
    fn a_step_change_is_flagged_soon_after_it_happens() {
        let mut d = StreamingEnsemble::new(Params::default());
        let mut noise = Noise(1);
        feed_noise(&mut d, &mut noise, 50.0, 3000);
        // A step of about 14 noise sd: flagged at once, with what was expected.
        let flagged = (0..3).map(|_| d.update(58.0 + noise.normalish())).find(|s| s.raw >= alarm_level());
        let s = flagged.expect("step not flagged within 3 points");
        assert!(s.alarm || s.resting, "{s:?}");
        assert_eq!(s.component, Component::Range, "{s:?}");
        assert!(s.observed > s.usual_range.1 && (s.expected - 50.0).abs() < 1.0, "{s:?}");
    }

    #[test]
    fn a_step_down_is_flagged_and_then_the_detector_rests() {
        let mut d = StreamingEnsemble::new(Params::default());
        let mut noise = Noise(2);
        feed_noise(&mut d, &mut noise, 10.0, 1500);
        let first = (0..3).map(|_| d.update(4.0)).find(|s| s.alarm).expect("step down not flagged");
        assert!(first.score >= alarm_level() && first.observed < first.usual_range.0, "{first:?}");
        // The new level is not paged again at every point: the detector rests.
        let again: Vec<EnsembleScore> = (0..60).map(|_| d.update(4.0 + 0.1 * noise.normalish())).collect();
        assert!(
            again.iter().all(|s| s.score == 0.0 && s.resting),
            "{:?}",
            again.iter().find(|s| s.score > 0.0)
        );
    }

    #[test]
    fn a_slow_linear_drift_is_flagged() {
        let mut d = StreamingEnsemble::new(Params::default());
        let mut noise = Noise(3);
        feed_noise(&mut d, &mut noise, 100.0, 1000);
        // A drift of 0.005 noise sd per point: invisible from one point to the next, 5 sd after
        // 1000 points.
        let flagged = (0..1500).find_map(|i| {
            let s = d.update(100.0 + 0.003 * i as f64 + noise.normalish());
            (s.raw >= alarm_level() && s.observed > s.expected).then_some((i, s))
        });
        let (at, s) = flagged.expect("drift never flagged");
        assert!(
            matches!(s.component, Component::Range | Component::Mean | Component::Shift),
            "{s:?}"
        );
        assert!(at > 100, "flagged after {at} points: before the drift could be told from the noise");
    }

    #[test]
    fn a_noisy_seasonal_series_without_anomalies_stays_below_the_threshold() {
        // A daily wave with noise, 5-minute points. With a paging-grade alarm level (three times
        // the NAB-tuned default) it never alarms once it has learnt a week; with the defaults it
        // alarms rarely (records of the seasonal residual while its memory fills).
        let wave = |i: usize, noise: &mut Noise| {
            let phase = (i % 288) as f64 / 288.0 * std::f64::consts::TAU;
            100.0 + 30.0 * phase.sin() + 2.0 * noise.normalish()
        };
        for (params, max_late_alarms) in [
            (
                Params {
                    alarm_excess: 0.1,
                    ..Params::default()
                },
                0,
            ),
            (Params::default(), 4),
        ] {
            let mut d = StreamingEnsemble::new(params);
            let mut noise = Noise(4);
            let mut late = Vec::new();
            for i in 0..(28 * 288) {
                let s = d.update_at(T0 + i as i64 * FIVE_MIN, wave(i, &mut noise));
                if i >= 7 * 288 && s.alarm {
                    late.push((i, s));
                }
            }
            assert!(late.len() <= max_late_alarms, "alarm_excess {}: {late:?}", params.alarm_excess);
        }
    }

    #[test]
    fn a_missing_daily_peak_is_flagged_by_the_seasonal_profile() {
        let mut d = StreamingEnsemble::new(Params::default());
        let mut noise = Noise(5);
        let day = |i: usize| if (9..17).contains(&((i % 288) / 12)) { 80.0 } else { 20.0 };
        for i in 0..(14 * 288) {
            d.update_at(T0 + i as i64 * FIVE_MIN, day(i) + noise.normalish());
        }
        // Day 15: the working-hours plateau never comes; every value stays in the usual range.
        let flagged = ((14 * 288)..(15 * 288))
            .map(|i| d.update_at(T0 + i as i64 * FIVE_MIN, 20.0 + noise.normalish()))
            .find(|s| s.raw >= alarm_level());
        let s = flagged.expect("missing plateau never flagged");
        assert_eq!(s.component, Component::Seasonal, "{s:?}");
        assert!(s.expected > 60.0 && s.observed < 30.0 && s.observed > s.usual_range.0, "{s:?}");
    }

    #[test]
    fn flat_then_sparse_series_does_not_explode() {
        let mut d = StreamingEnsemble::new(Params::default());
        let mut alarms = 0;
        // A flat series at 0, then the same sparse pattern (one 1.0 every 37 points) for weeks.
        for i in 0..12_000 {
            let v = if i >= 3000 && i % 37 == 0 { 1.0 } else { 0.0 };
            let s = d.update(v);
            assert!((0.0..=1.0).contains(&s.score) && s.score.is_finite(), "{s:?}");
            alarms += usize::from(s.alarm);
        }
        // The first non-zero value is news; the sparse pattern repeating is not (a couple of
        // alarms while it becomes familiar, not one per spike: there are 243 of them).
        assert!((1..=3).contains(&alarms), "{alarms} alarms");
    }

    #[test]
    fn a_constant_series_never_alarms_and_non_finite_values_are_ignored() {
        let mut d = StreamingEnsemble::new(Params::default());
        for i in 0..5000 {
            let v = if i % 500 == 7 { f64::NAN } else { 42.0 };
            let s = d.update(v);
            assert_eq!(s.score, 0.0, "point {i}: {s:?}");
        }
        assert_eq!(d.points(), 4990);
    }

    #[test]
    fn scores_stay_in_unit_interval_and_depend_only_on_the_past() {
        let mut noise = Noise(6);
        let values: Vec<f64> = (0..3000)
            .map(|i| {
                if i % 400 == 399 {
                    1e6
                } else {
                    (i as f64 * 0.01).sin() * 5.0 + noise.normalish()
                }
            })
            .collect();
        let run = |n: usize| {
            let mut d = StreamingEnsemble::new(Params::default());
            values[..n]
                .iter()
                .enumerate()
                .map(|(i, v)| d.update_at(T0 + i as i64 * FIVE_MIN, *v).score)
                .collect::<Vec<f64>>()
        };
        let full = run(values.len());
        assert!(full.iter().all(|s| (0.0..=1.0).contains(s)));
        assert_eq!(run(1234)[..], full[..1234]);
    }

    #[test]
    fn state_is_small_and_inline() {
        let d = StreamingEnsemble::new(Params::default());
        assert!(d.state_bytes() <= 4096, "{} bytes", d.state_bytes());
    }
}
