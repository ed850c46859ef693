//! The Numenta Anomaly Benchmark (NAB) scorer, as NAB v1.1 scores a detector's results: pure
//! (rows, windows and anomaly scores in; raw and normalised scores out), no IO.
//!
//! The rules, each from NAB's own source (numenta/NAB, the files named):
//!
//! - **Probationary period** (`nab/util.py` `getProbationPeriod`, `nab/sweeper.py`
//!   `_getProbationaryLength`): the first `min(floor(0.15 · rows), 0.15 · 5000)` rows of a file are
//!   not scored; detections there count for nothing and windows are seen only through their rows
//!   after it. See [`probation_rows`].
//! - **Windows** (`labels/combined_windows.json`, checked by `nab/labeler.py` `CorpusLabel`): each
//!   `[start, end]` timestamp must occur exactly once in its file. The sweep walks the rows in row
//!   order and goes by row *index*, not by timestamp (`nab/sweeper.py` `calcSweepScore`): a window
//!   opens at the row whose timestamp equals its start, its right edge and width are the row indices
//!   of the first occurrences of its end and start (`timestamps.index(...)`), and it closes after the
//!   row whose timestamp equals its end. A file that repeats a timestamp or steps back an hour
//!   therefore scores by row position, as NAB does.
//! - **Row weights** (`calcSweepScore`, `scaledSigmoid`): `scaledSigmoid(x) = 2 / (1 + e^{5x}) − 1`
//!   (−1 beyond `x > 3`). A row inside a window, `i` rows into it, is worth
//!   `scaledSigmoid(−(right − i + 1) / width) · tpWeight / scaledSigmoid(−1)`: exactly `tpWeight` at
//!   the window's first row, falling towards 0 at its last. A row outside every window costs
//!   `scaledSigmoid(|prevRight − i| / (prevWidth − 1)) · fpWeight` relative to the window most
//!   recently closed (little right after a window, towards −fpWeight further on), and
//!   `−1 · fpWeight` when no window has closed yet.
//! - **A threshold's score** (`calcScoreByThreshold`): rows with an anomaly score ≥ the threshold
//!   are detections. Each window counts once: `−fnWeight` when none of its rows is detected, else
//!   the largest weight of its detected rows (its earliest detection). Every detection outside a
//!   window adds its (negative) weight. True negatives are worth nothing.
//! - **Threshold sweep** (`calcScoreByThreshold`, `nab/optimizer.py` `optimizeThreshold`): one
//!   threshold per profile for the whole corpus. The scorable rows of every file are pooled and sorted
//!   by anomaly score, highest first; the sweep starts at 1.1 (no detection) and records the corpus
//!   score at every distinct anomaly score on the way down. The first (highest) threshold with the
//!   largest score wins.
//! - **Scoring at that threshold** (`nab/scorer.py` `scoreCorpus`/`scoreDataSet`,
//!   `Sweeper.scoreDataSet`): each file is scored on its own at the corpus threshold; the raw score
//!   is the sum over files.
//! - **Normalisation** (`nab/runner.py` `normalize`): `100 · (raw − null) / (perfect − null)`, where
//!   `null` is the raw score of the detector that never fires (every window with a scorable row
//!   missed: `−fnWeight` each, summed over files) and `perfect` is `tpWeight` × the number of windows
//!   in the labels (a detection at each window's first row is worth exactly `tpWeight`).
//! - **Profiles** (`config/profiles.json`): see [`Profile`].
//!
//! Two corners where NAB's code would crash are given the obvious meaning instead: a file whose every
//! scorable anomaly score lies above the threshold is scored with all those rows detected, and a
//! false positive after a window one row wide (NAB divides by `width − 1 = 0`) is weighted as if far
//! from it (`−fpWeight`). Neither occurs in the NAB corpus.

use cellwarden_models::time::{civil_from_days, days_from_civil, days_in_month};
use std::fmt;

/// Share of a file's rows in the probationary period (`probationaryPercent` in `nab/runner.py`).
pub const PROBATION_PERCENT: f64 = 0.15;

/// The threshold the sweep starts from: above every anomaly score, so nothing is detected.
pub const NO_DETECTION_THRESHOLD: f64 = 1.1;

/// A scoring profile: the weights of NAB's cost matrix.
///
/// The three profiles are NAB's `config/profiles.json` (`CostMatrix` of `standard`,
/// `reward_low_FP_rate`, `reward_low_FN_rate`). `tn_weight` is listed there but NAB never uses it:
/// true negatives are worth nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// The profile's name in `config/profiles.json`.
    pub name: &'static str,
    /// Worth of a window detected at its first row.
    pub tp_weight: f64,
    /// Cost scale of a detection outside every window.
    pub fp_weight: f64,
    /// Cost of a window never detected.
    pub fn_weight: f64,
    /// Listed by NAB, unused by its scorer.
    pub tn_weight: f64,
}

impl Profile {
    /// `standard`: tp 1.0, fp 0.11, fn 1.0, tn 1.0 (`config/profiles.json`).
    pub const STANDARD: Profile = Profile {
        name: "standard",
        tp_weight: 1.0,
        fp_weight: 0.11,
        fn_weight: 1.0,
        tn_weight: 1.0,
    };
    /// `reward_low_FP_rate`: tp 1.0, fp 0.22, fn 1.0, tn 1.0 (`config/profiles.json`).
    pub const REWARD_LOW_FP_RATE: Profile = Profile {
        name: "reward_low_FP_rate",
        tp_weight: 1.0,
        fp_weight: 0.22,
        fn_weight: 1.0,
        tn_weight: 1.0,
    };
    /// `reward_low_FN_rate`: tp 1.0, fp 0.11, fn 2.0, tn 1.0 (`config/profiles.json`).
    pub const REWARD_LOW_FN_RATE: Profile = Profile {
        name: "reward_low_FN_rate",
        tp_weight: 1.0,
        fp_weight: 0.11,
        fn_weight: 2.0,
        tn_weight: 1.0,
    };
    /// The three profiles, in the order NAB reports them.
    pub const ALL: [Profile; 3] = [Profile::STANDARD, Profile::REWARD_LOW_FP_RATE, Profile::REWARD_LOW_FN_RATE];
}

/// A NAB timestamp: a naive date-time (no zone), as microseconds since 1970-01-01 00:00:00.
///
/// Data files write `2014-07-01 00:00:00`, label files `2014-07-01 00:00:00.000000`; both parse to
/// the same value, and windows are matched to rows by equality of these values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NabTime(pub i64);

impl NabTime {
    /// Parses `YYYY-MM-DD HH:MM:SS` with an optional fraction of up to 9 digits (kept to the
    /// microsecond); a `T` may stand for the space. `None` for anything else.
    pub fn parse(s: &str) -> Option<NabTime> {
        let b = s.trim().as_bytes();
        if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b' ' | b'T') || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let num = |from: usize, to: usize| -> Option<i64> {
            let part = &b[from..to];
            if !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            part.iter()
                .try_fold(0i64, |acc, d| acc.checked_mul(10)?.checked_add(i64::from(d - b'0')))
        };
        let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
        let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let mut micros = 0i64;
        if b.len() > 19 {
            let frac = &b[19..];
            if frac[0] != b'.' || frac.len() < 2 || frac.len() > 10 || !frac[1..].iter().all(u8::is_ascii_digit) {
                return None;
            }
            for i in 0..6 {
                let digit = frac.get(1 + i).map_or(0, |d| i64::from(d - b'0'));
                micros = micros * 10 + digit;
            }
        }
        let days = days_from_civil(year, month, day);
        Some(NabTime(
            ((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000 + micros,
        ))
    }
}

impl fmt::Display for NabTime {
    /// `YYYY-MM-DD HH:MM:SS`, with `.ffffff` when there is a fraction.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.0.rem_euclid(1_000_000);
        let secs = self.0.div_euclid(1_000_000);
        let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        write!(f, "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", sod / 3600, sod / 60 % 60, sod % 60)?;
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        Ok(())
    }
}

/// A labelled anomaly window: rows from the one stamped `start` to the one stamped `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: NabTime,
    pub end: NabTime,
}

/// One data file of the corpus with its labelled windows, rows in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct NabFile {
    /// The file's path relative to the corpus' `data/`, e.g. `realKnownCause/nyc_taxi.csv`.
    pub name: String,
    /// Each row's timestamp, in row order (possibly repeated or stepping back).
    pub timestamps: Vec<NabTime>,
    /// Each row's value (what a detector sees; the scorer does not use it).
    pub values: Vec<f64>,
    /// The file's windows from the labels, in label order.
    pub windows: Vec<Window>,
}

/// Errors of bad input to the scorer. Rows are 0-based data rows (header excluded).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NabError {
    #[error("{file}: {scores} anomaly scores for {rows} rows")]
    LengthMismatch { file: String, rows: usize, scores: usize },
    #[error("{file}: row {row}: anomaly score {value} is not a number in [0, 1]")]
    BadScore { file: String, row: usize, value: f64 },
    #[error("{file}: window [{start}, {end}]: timestamp {timestamp} occurs {count} times in the file (NAB needs exactly once)")]
    WindowTimestamp {
        file: String,
        start: NabTime,
        end: NabTime,
        timestamp: NabTime,
        count: usize,
    },
    #[error("{file}: window [{start}, {end}] ends before it starts or overlaps/precedes the window before it")]
    WindowOrder { file: String, start: NabTime, end: NabTime },
    #[error("the corpus has no labelled window: the normalised score is undefined")]
    NoWindows,
}

/// Rows of the probationary period of a file of `rows` rows: `min(floor(0.15 · rows), 750)`.
pub fn probation_rows(rows: usize) -> usize {
    (PROBATION_PERCENT * rows as f64).floor().min(PROBATION_PERCENT * 5000.0) as usize
}

/// NAB's `scaledSigmoid`: `2 · sigmoid(−5x) − 1`, and −1 beyond `x > 3`.
pub fn scaled_sigmoid(relative_position: f64) -> f64 {
    if relative_position > 3.0 {
        -1.0
    } else {
        2.0 * (1.0 / (1.0 + (5.0 * relative_position).exp())) - 1.0
    }
}

/// One scorable row (after the probationary period) as the sweep sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepPoint {
    /// The row's index in its file.
    pub row: usize,
    /// The detector's anomaly score.
    pub anomaly_score: f64,
    /// `scaledSigmoid` of the row's position (in a window, or past the previous one); −1 before any
    /// window. Weighted by a profile with [`SweepPoint::weighted`].
    pub unweighted: f64,
    /// Index of the window the row is in (in its file's, or the pooled corpus', window list).
    pub window: Option<usize>,
}

impl SweepPoint {
    /// The row's worth when detected under `profile` (NAB's `sweepScore`).
    pub fn weighted(&self, profile: &Profile) -> f64 {
        match self.window {
            Some(_) => self.unweighted * profile.tp_weight / scaled_sigmoid(-1.0),
            None => self.unweighted * profile.fp_weight,
        }
    }
}

/// The score of one threshold (NAB's `ThresholdScore`); counts are of scorable rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThresholdScore {
    pub threshold: f64,
    /// Raw (unnormalised) score.
    pub score: f64,
    /// Detected rows inside windows.
    pub tp: usize,
    /// Undetected rows outside windows.
    pub tn: usize,
    /// Detected rows outside windows.
    pub fp: usize,
    /// Undetected rows inside windows.
    pub fn_: usize,
}

impl NabFile {
    /// The row range `(first, last)` of each window: the rows stamped with its start and end, each of
    /// which must occur exactly once, windows in row order without overlap.
    pub fn window_rows(&self) -> Result<Vec<(usize, usize)>, NabError> {
        let mut out: Vec<(usize, usize)> = Vec::with_capacity(self.windows.len());
        for w in &self.windows {
            let mut index = [0usize; 2];
            for (k, t) in [w.start, w.end].into_iter().enumerate() {
                let mut hits = self.timestamps.iter().enumerate().filter(|(_, x)| **x == t).map(|(i, _)| i);
                let first = hits.next();
                let count = first.map_or(0, |_| 1 + hits.count());
                match first {
                    Some(i) if count == 1 => index[k] = i,
                    _ => {
                        return Err(NabError::WindowTimestamp {
                            file: self.name.clone(),
                            start: w.start,
                            end: w.end,
                            timestamp: t,
                            count,
                        })
                    }
                }
            }
            let [left, right] = index;
            if right < left || out.last().is_some_and(|&(_, prev_right)| left <= prev_right) {
                return Err(NabError::WindowOrder {
                    file: self.name.clone(),
                    start: w.start,
                    end: w.end,
                });
            }
            out.push((left, right));
        }
        Ok(out)
    }

    /// Checks that `scores` has one number in [0, 1] per row.
    pub fn check_scores(&self, scores: &[f64]) -> Result<(), NabError> {
        if scores.len() != self.timestamps.len() {
            return Err(NabError::LengthMismatch {
                file: self.name.clone(),
                rows: self.timestamps.len(),
                scores: scores.len(),
            });
        }
        match scores.iter().enumerate().find(|(_, s)| !(0.0..=1.0).contains(*s)) {
            Some((row, &value)) => Err(NabError::BadScore {
                file: self.name.clone(),
                row,
                value,
            }),
            None => Ok(()),
        }
    }
}

/// The scorable rows of one file with their window and unweighted worth (NAB's `calcSweepScore`,
/// without the probationary rows, which `calcScoreByThreshold` drops). Windows are indexed in
/// `file.windows`.
pub fn sweep_points(file: &NabFile, scores: &[f64]) -> Result<Vec<SweepPoint>, NabError> {
    file.check_scores(scores)?;
    let rows = file.window_rows()?;
    let probation = probation_rows(scores.len());
    let mut out = Vec::with_capacity(scores.len().saturating_sub(probation));
    let mut next = 0usize;
    let mut current: Option<usize> = None;
    // (right edge, width) of the window most recently closed.
    let mut previous: Option<(usize, usize)> = None;
    for (i, (&t, &score)) in file.timestamps.iter().zip(scores).enumerate() {
        if next < file.windows.len() && t == file.windows[next].start {
            current = Some(next);
            next += 1;
        }
        let unweighted = match (current, previous) {
            (Some(w), _) => {
                let (left, right) = rows[w];
                let width = (right - left + 1) as f64;
                scaled_sigmoid(-((right as f64 - i as f64 + 1.0) / width))
            }
            (None, None) => -1.0,
            (None, Some((_, 1))) => -1.0,
            (None, Some((right, width))) => scaled_sigmoid((right as f64 - i as f64).abs() / (width - 1) as f64),
        };
        if i >= probation {
            out.push(SweepPoint {
                row: i,
                anomaly_score: score + 0.0, // -0.0 → 0.0, so that equal scores sort as equal
                unweighted,
                window: current,
            });
        }
        if let Some(w) = current {
            if t == file.windows[w].end {
                let (left, right) = rows[w];
                previous = Some((right, right - left + 1));
                current = None;
            }
        }
    }
    Ok(out)
}

/// The score of every threshold over `points` (NAB's `calcScoreByThreshold`): first the
/// no-detection threshold 1.1, then each distinct anomaly score from the highest down, each scored
/// with every row at or above it detected. `n_windows` is the number of windows the indices of
/// `points` refer to; only windows with a scorable row count (as missed, −fnWeight, until detected).
pub fn scores_by_threshold(points: &[SweepPoint], n_windows: usize, profile: &Profile) -> Vec<ThresholdScore> {
    let mut order: Vec<&SweepPoint> = points.iter().collect();
    // Stable, like Python's sorted(..., reverse=True): equal scores keep their row order.
    order.sort_by(|a, b| b.anomaly_score.total_cmp(&a.anomaly_score));
    let n_windows = points
        .iter()
        .filter_map(|p| p.window)
        .map(|w| w + 1)
        .max()
        .unwrap_or(0)
        .max(n_windows);
    let mut parts = vec![0.0; n_windows];
    let mut in_windows = 0usize;
    for p in points {
        if let Some(w) = p.window {
            parts[w] = -profile.fn_weight;
            in_windows += 1;
        }
    }
    let (mut tp, mut fp, mut fn_, mut tn) = (0usize, 0usize, in_windows, points.len() - in_windows);
    let mut fp_part = 0.0;
    let total = |fp_part: f64, parts: &[f64]| parts.iter().fold(fp_part, |s, x| s + x);
    let mut out = Vec::new();
    let mut threshold = NO_DETECTION_THRESHOLD;
    for p in order {
        if p.anomaly_score != threshold {
            out.push(ThresholdScore {
                threshold,
                score: total(fp_part, &parts),
                tp,
                tn,
                fp,
                fn_,
            });
            threshold = p.anomaly_score;
        }
        let worth = p.weighted(profile);
        match p.window {
            Some(w) => {
                tp += 1;
                fn_ -= 1;
                parts[w] = parts[w].max(worth);
            }
            None => {
                fp += 1;
                tn -= 1;
                fp_part += worth;
            }
        }
    }
    out.push(ThresholdScore {
        threshold,
        score: total(fp_part, &parts),
        tp,
        tn,
        fp,
        fn_,
    });
    out
}

/// The first (highest) threshold with the largest score (NAB's optimizer: a stable sort by score,
/// descending, then the first). `table` comes from [`scores_by_threshold`] and is never empty.
pub fn best_threshold(table: &[ThresholdScore]) -> Option<ThresholdScore> {
    let mut best: Option<ThresholdScore> = None;
    for row in table {
        if best.is_none_or(|b| row.score > b.score) {
            best = Some(*row);
        }
    }
    best
}

/// The row of `table` that applies at `threshold` (NAB's `Sweeper.scoreDataSet`): the entry of that
/// very threshold, else the lowest threshold above it, i.e. every row scoring ≥ `threshold` detected.
/// When every entry lies above `threshold` (NAB would fail), the last one: all scorable rows detected.
pub fn score_at(table: &[ThresholdScore], threshold: f64) -> Option<ThresholdScore> {
    let mut previous: Option<&ThresholdScore> = None;
    for row in table {
        if row.threshold == threshold {
            return Some(*row);
        }
        if row.threshold < threshold {
            return Some(*previous.unwrap_or(row));
        }
        previous = Some(row);
    }
    previous.copied()
}

/// The raw score of one file at `threshold` under `profile`, scored on its own as NAB's
/// `scoreCorpus` does.
pub fn score_file(file: &NabFile, scores: &[f64], profile: &Profile, threshold: f64) -> Result<ThresholdScore, NabError> {
    let points = sweep_points(file, scores)?;
    let table = scores_by_threshold(&points, file.windows.len(), profile);
    Ok(score_at(&table, threshold).unwrap_or(table[0]))
}

/// A data file with the anomaly scores a detector gave its rows.
#[derive(Debug, Clone, Copy)]
pub struct ScoredFile<'a> {
    pub file: &'a NabFile,
    /// One score in [0, 1] per row, in row order.
    pub scores: &'a [f64],
}

/// One file's result under one profile at the corpus threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct FileResult {
    /// [`NabFile::name`].
    pub name: String,
    /// Raw score at the corpus threshold.
    pub raw: f64,
    pub tp: usize,
    pub tn: usize,
    pub fp: usize,
    pub fn_: usize,
    /// Windows in the labels of this file.
    pub windows: usize,
}

/// The corpus' result under one profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileResult {
    pub profile: Profile,
    /// The corpus-wide threshold the sweep chose (1.1: detect nothing).
    pub threshold: f64,
    /// Sum of the files' raw scores at `threshold`.
    pub raw: f64,
    /// Raw score of the detector that never fires.
    pub null: f64,
    /// Raw score of a detector that fires exactly at each window's first row.
    pub perfect: f64,
    /// The normalised score: `100 · (raw − null) / (perfect − null)`.
    pub score: f64,
    /// Per-file raw scores and counts, in the order the files were given.
    pub files: Vec<FileResult>,
}

/// NAB's three final scores of a detector, with their thresholds and per-file raw scores.
#[derive(Debug, Clone, PartialEq)]
pub struct NabScores {
    pub standard: ProfileResult,
    pub reward_low_fp_rate: ProfileResult,
    pub reward_low_fn_rate: ProfileResult,
}

impl NabScores {
    /// The three results in NAB's order (standard, reward_low_FP_rate, reward_low_FN_rate).
    pub fn profiles(&self) -> [&ProfileResult; 3] {
        [&self.standard, &self.reward_low_fp_rate, &self.reward_low_fn_rate]
    }
}

/// Sweep points of every file, with the file's window indices.
struct Prepared<'a> {
    file: &'a NabFile,
    points: Vec<SweepPoint>,
    /// Windows with at least one scorable row.
    scorable_windows: usize,
}

/// Scores a corpus under one profile: the corpus-wide sweep, then every file at the chosen threshold.
fn score_profile(prepared: &[Prepared<'_>], profile: Profile) -> Result<ProfileResult, NabError> {
    let mut pooled = Vec::with_capacity(prepared.iter().map(|p| p.points.len()).sum());
    let mut base = 0usize;
    for p in prepared {
        pooled.extend(p.points.iter().map(|x| SweepPoint {
            window: x.window.map(|w| w + base),
            ..*x
        }));
        base += p.file.windows.len();
    }
    let table = scores_by_threshold(&pooled, base, &profile);
    let threshold = best_threshold(&table).map_or(NO_DETECTION_THRESHOLD, |b| b.threshold);
    let mut files = Vec::with_capacity(prepared.len());
    for p in prepared {
        let table = scores_by_threshold(&p.points, p.file.windows.len(), &profile);
        let row = score_at(&table, threshold).unwrap_or(table[0]);
        files.push(FileResult {
            name: p.file.name.clone(),
            raw: row.score,
            tp: row.tp,
            tn: row.tn,
            fp: row.fp,
            fn_: row.fn_,
            windows: p.file.windows.len(),
        });
    }
    let raw: f64 = files.iter().map(|f| f.raw).sum();
    let null: f64 = prepared.iter().map(|p| -profile.fn_weight * p.scorable_windows as f64).sum();
    let perfect = profile.tp_weight * base as f64;
    if base == 0 || perfect == null {
        return Err(NabError::NoWindows);
    }
    Ok(ProfileResult {
        profile,
        threshold,
        raw,
        null,
        perfect,
        score: 100.0 * (raw - null) / (perfect - null),
        files,
    })
}

/// Scores a detector's results on a corpus under NAB's three profiles: per profile, one threshold
/// for the whole corpus chosen by sweep, each file scored at it, the sum normalised between the
/// null detector (0) and a perfect one (100).
pub fn score_corpus(files: &[ScoredFile<'_>]) -> Result<NabScores, NabError> {
    let mut prepared = Vec::with_capacity(files.len());
    for f in files {
        let points = sweep_points(f.file, f.scores)?;
        let mut seen = vec![false; f.file.windows.len()];
        for w in points.iter().filter_map(|p| p.window) {
            seen[w] = true;
        }
        prepared.push(Prepared {
            file: f.file,
            points,
            scorable_windows: seen.iter().filter(|s| **s).count(),
        });
    }
    Ok(NabScores {
        standard: score_profile(&prepared, Profile::STANDARD)?,
        reward_low_fp_rate: score_profile(&prepared, Profile::REWARD_LOW_FP_RATE)?,
        reward_low_fn_rate: score_profile(&prepared, Profile::REWARD_LOW_FN_RATE)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: &str = "2015-01-01 00:00:00";

    /// A file of `n` rows five minutes apart with windows given as row ranges.
    fn file(n: usize, windows: &[(usize, usize)]) -> NabFile {
        let t0 = NabTime::parse(T0).unwrap().0;
        let timestamps: Vec<NabTime> = (0..n as i64).map(|i| NabTime(t0 + i * 300_000_000)).collect();
        NabFile {
            name: "test/file.csv".into(),
            windows: windows
                .iter()
                .map(|&(a, b)| Window {
                    start: timestamps[a],
                    end: timestamps[b],
                })
                .collect(),
            values: vec![0.0; n],
            timestamps,
        }
    }

    fn scores_at(n: usize, rows: &[usize]) -> Vec<f64> {
        let mut s = vec![0.0; n];
        for &r in rows {
            s[r] = 1.0;
        }
        s
    }

    fn corpus(f: &NabFile, scores: &[f64]) -> NabScores {
        score_corpus(&[ScoredFile { file: f, scores }]).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn timestamps_parse_with_and_without_fraction() {
        let a = NabTime::parse("2014-07-01 00:00:00").unwrap();
        assert_eq!(Some(a), NabTime::parse("2014-07-01 00:00:00.000000"));
        assert_eq!(Some(a), NabTime::parse("2014-07-01T00:00:00"));
        assert_eq!(a.to_string(), "2014-07-01 00:00:00");
        let b = NabTime::parse("2014-07-01 00:00:01.5").unwrap();
        assert_eq!(b.0 - a.0, 1_500_000);
        assert_eq!(b.to_string(), "2014-07-01 00:00:01.500000");
        assert_eq!(NabTime::parse("1970-01-01 00:00:00"), Some(NabTime(0)));
        assert_eq!(NabTime::parse("2016-02-29 23:59:59").unwrap().to_string(), "2016-02-29 23:59:59");
        for bad in [
            "",
            "2014-07-01",
            "2014-13-01 00:00:00",
            "2015-02-29 00:00:00",
            "2014-07-01 00:00:00Z",
            "2014-07-01 0a:00:00",
        ] {
            assert_eq!(NabTime::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn scaled_sigmoid_matches_nab_docstring() {
        assert!((scaled_sigmoid(-1.0) - 0.98661).abs() < 1e-5);
        assert!((scaled_sigmoid(-0.5) - 0.84828).abs() < 1e-5);
        assert!(scaled_sigmoid(0.0).abs() < 1e-12);
        assert!((scaled_sigmoid(1.0) + 0.98661).abs() < 1e-5);
        assert_eq!(scaled_sigmoid(3.5), -1.0);
    }

    #[test]
    fn probation_is_15_percent_capped_at_750_rows() {
        assert_eq!(probation_rows(100), 15);
        assert_eq!(probation_rows(4730), 709);
        assert_eq!(probation_rows(5000), 750);
        assert_eq!(probation_rows(22695), 750);
        assert_eq!(probation_rows(0), 0);
    }

    #[test]
    fn profiles_are_nab_cost_matrices() {
        assert_eq!(
            Profile::ALL.map(|p| p.name),
            ["standard", "reward_low_FP_rate", "reward_low_FN_rate"]
        );
        assert_eq!(Profile::REWARD_LOW_FP_RATE.fp_weight, 2.0 * Profile::STANDARD.fp_weight);
        assert_eq!(Profile::REWARD_LOW_FN_RATE.fn_weight, 2.0 * Profile::STANDARD.fn_weight);
    }

    #[test]
    fn perfect_detector_scores_100_and_null_detector_0() {
        let f = file(1000, &[(300, 400), (700, 750)]);
        let perfect = corpus(&f, &scores_at(1000, &[300, 700]));
        for r in perfect.profiles() {
            assert!(close(r.score, 100.0), "{}: {}", r.profile.name, r.score);
            assert_eq!(r.threshold, 1.0);
        }
        let null = corpus(&f, &vec![0.0; 1000]);
        for r in null.profiles() {
            assert!(close(r.score, 0.0), "{}: {}", r.profile.name, r.score);
            assert_eq!(r.threshold, NO_DETECTION_THRESHOLD);
            assert!(close(r.null, -2.0 * r.profile.fn_weight));
            assert!(close(r.perfect, 2.0 * r.profile.tp_weight));
        }
    }

    #[test]
    fn earlier_detection_in_a_window_is_worth_more() {
        let f = file(1000, &[(300, 400)]);
        let worth = |row: usize| score_file(&f, &scores_at(1000, &[row]), &Profile::STANDARD, 1.0).unwrap().score;
        let (start, middle, end) = (worth(300), worth(350), worth(400));
        assert!(close(start, 1.0), "{start}");
        assert!(start > middle && middle > end && end > 0.0, "{start} {middle} {end}");
        // Half-way in: scaledSigmoid(-51/101) / scaledSigmoid(-1).
        assert!(close(middle, scaled_sigmoid(-51.0 / 101.0) / scaled_sigmoid(-1.0)));
        // Only the earliest detection of a window counts, and only once.
        let both = score_file(&f, &scores_at(1000, &[320, 310, 390]), &Profile::STANDARD, 1.0).unwrap();
        assert!(close(both.score, worth(310)));
        assert_eq!((both.tp, both.fp), (3, 0));
    }

    #[test]
    fn false_positive_before_any_window_costs_fp_weight() {
        let f = file(1000, &[(500, 600)]);
        let scores = scores_at(1000, &[200, 500]);
        for p in Profile::ALL {
            let r = score_file(&f, &scores, &p, 1.0).unwrap();
            assert!(close(r.score, p.tp_weight - p.fp_weight), "{}: {}", p.name, r.score);
            assert_eq!((r.tp, r.fp), (1, 1));
        }
        let s = corpus(&f, &scores);
        // One window: null −fn, perfect +tp.
        assert!(close(s.standard.score, 100.0 * (1.0 - 0.11 + 1.0) / 2.0));
        assert!(close(s.reward_low_fp_rate.score, 100.0 * (1.0 - 0.22 + 1.0) / 2.0));
        assert!(close(s.reward_low_fn_rate.score, 100.0 * (1.0 - 0.11 + 2.0) / 3.0));
    }

    #[test]
    fn false_positive_just_after_a_window_costs_little_and_far_after_costs_fp_weight() {
        let f = file(1000, &[(300, 400)]);
        let fp_at = |row: usize| score_file(&f, &scores_at(1000, &[row]), &Profile::STANDARD, 1.0).unwrap().score + 1.0;
        let near = fp_at(401);
        let far = fp_at(900);
        assert!(close(near, scaled_sigmoid(1.0 / 100.0) * 0.11), "{near}");
        assert!(near < 0.0 && near > -0.01, "{near}");
        assert!(close(far, -0.11), "{far}");
    }

    #[test]
    fn probationary_rows_are_not_scored() {
        let f = file(1000, &[(500, 600)]);
        // Probation: rows 0..150. A detection there costs nothing.
        let r = score_file(&f, &scores_at(1000, &[10, 149, 500]), &Profile::STANDARD, 1.0).unwrap();
        assert!(close(r.score, 1.0));
        assert_eq!(r.tn + r.fp + r.tp + r.fn_, 850);
        let r = score_file(&f, &scores_at(1000, &[150, 500]), &Profile::STANDARD, 1.0).unwrap();
        assert!(close(r.score, 1.0 - 0.11));
    }

    #[test]
    fn threshold_is_corpus_wide_and_maximises_the_total() {
        // File a: a true positive scored 0.6 and a false positive scored 0.9. File b: a true positive
        // scored 0.8 and false positives at 0.7.
        let a = file(1000, &[(500, 600)]);
        let mut sa = vec![0.1; 1000];
        sa[520] = 0.6;
        sa[800] = 0.9;
        let b = file(800, &[(300, 400)]);
        let mut sb = vec![0.2; 800];
        sb[310] = 0.8;
        for r in [600, 650, 700] {
            sb[r] = 0.7;
        }
        let files = [ScoredFile { file: &a, scores: &sa }, ScoredFile { file: &b, scores: &sb }];
        let s = score_corpus(&files).unwrap();
        for r in s.profiles() {
            // Brute force: every candidate threshold, each file scored on its own.
            let mut best = (NO_DETECTION_THRESHOLD, f64::NEG_INFINITY);
            for t in [NO_DETECTION_THRESHOLD, 0.9, 0.8, 0.7, 0.6, 0.2, 0.1] {
                let total: f64 = files
                    .iter()
                    .map(|f| score_file(f.file, f.scores, &r.profile, t).unwrap().score)
                    .sum();
                if total > best.1 + 1e-12 {
                    best = (t, total);
                }
            }
            assert_eq!(r.threshold, best.0, "{}", r.profile.name);
            assert!(close(r.raw, best.1), "{}: {} vs {}", r.profile.name, r.raw, best.1);
            assert!(close(r.files.iter().map(|f| f.raw).sum::<f64>(), r.raw));
        }
        // Standard: at 0.6 both windows are caught (≈ 1.92) for four false positives.
        assert_eq!(s.standard.threshold, 0.6);
    }

    #[test]
    fn score_at_matches_direct_detection_counting() {
        let f = file(600, &[(200, 260), (400, 430)]);
        let scores: Vec<f64> = (0..600).map(|i| ((i * 7919) % 101) as f64 / 100.0).collect();
        let points = sweep_points(&f, &scores).unwrap();
        let table = scores_by_threshold(&points, 2, &Profile::STANDARD);
        for t in [1.1, 1.0, 0.995, 0.97, 0.5, 0.123, 0.0] {
            let row = score_at(&table, t).unwrap();
            let mut parts = [-1.0f64, -1.0];
            let mut fp = 0.0;
            for p in points.iter().filter(|p| p.anomaly_score >= t) {
                match p.window {
                    Some(w) => parts[w] = parts[w].max(p.weighted(&Profile::STANDARD)),
                    None => fp += p.weighted(&Profile::STANDARD),
                }
            }
            assert!(
                close(row.score, fp + parts[0] + parts[1]),
                "threshold {t}: {} vs {}",
                row.score,
                fp + parts[0] + parts[1]
            );
        }
    }

    #[test]
    fn windows_go_by_row_even_when_timestamps_repeat_or_step_back() {
        let mut f = file(400, &[(200, 250)]);
        // Row 230 steps back an hour (to the time of row 218) and row 300 repeats row 299's time.
        f.timestamps[230] = f.timestamps[218];
        f.timestamps[300] = f.timestamps[299];
        let r = score_file(&f, &scores_at(400, &[230]), &Profile::STANDARD, 1.0).unwrap();
        assert_eq!((r.tp, r.fp), (1, 0), "the stepped-back row is inside the window by position");
        assert!(close(r.score, scaled_sigmoid(-21.0 / 51.0) / scaled_sigmoid(-1.0)));
    }

    #[test]
    fn a_window_inside_the_probationary_period_is_not_scored_but_counts_as_perfect() {
        // NAB's labeller drops such windows; if one is listed, the sweep never sees it (null and raw
        // ignore it) but the normaliser counts it, as runner.normalize does.
        let f = file(1000, &[(10, 20), (500, 600)]);
        let s = corpus(&f, &scores_at(1000, &[500]));
        assert!(close(s.standard.null, -1.0));
        assert!(close(s.standard.perfect, 2.0));
        assert!(close(s.standard.score, 100.0 * 2.0 / 3.0));
    }

    #[test]
    fn bad_input_is_an_error() {
        let f = file(100, &[(50, 60)]);
        assert!(matches!(
            score_corpus(&[ScoredFile {
                file: &f,
                scores: &[0.0; 99]
            }]),
            Err(NabError::LengthMismatch { .. })
        ));
        let mut s = vec![0.0; 100];
        s[7] = f64::NAN;
        let err = score_file(&f, &s, &Profile::STANDARD, 0.5).unwrap_err();
        assert!(matches!(err, NabError::BadScore { row: 7, .. }), "{err}");
        s[7] = 1.5;
        assert!(matches!(
            score_file(&f, &s, &Profile::STANDARD, 0.5),
            Err(NabError::BadScore { row: 7, .. })
        ));
        let mut missing = f.clone();
        missing.windows[0].end = NabTime(0);
        let err = score_file(&missing, &[0.0; 100], &Profile::STANDARD, 0.5).unwrap_err();
        assert!(err.to_string().contains("occurs 0 times"), "{err}");
        let mut reversed = f.clone();
        reversed.windows[0] = Window {
            start: f.windows[0].end,
            end: f.windows[0].start,
        };
        assert!(matches!(
            score_file(&reversed, &[0.0; 100], &Profile::STANDARD, 0.5),
            Err(NabError::WindowOrder { .. })
        ));
        let none = file(100, &[]);
        assert_eq!(
            score_corpus(&[ScoredFile {
                file: &none,
                scores: &[0.0; 100]
            }]),
            Err(NabError::NoWindows)
        );
    }

    #[test]
    fn files_without_windows_only_cost_false_positives() {
        let f = file(100, &[]);
        let r = score_file(&f, &scores_at(100, &[50, 60]), &Profile::REWARD_LOW_FP_RATE, 1.0).unwrap();
        assert!(close(r.score, -0.44));
        assert_eq!((r.fp, r.tn), (2, 83));
    }
}
