//! The NAB harness: the IO around [`cellwarden_detector::nab`].
//!
//! A NAB corpus folder holds `data/<category>/<file>.csv` (columns `timestamp,value`) and
//! `labels/combined_windows.json` (`"<category>/<file>.csv"` → list of `[start, end]`). The harness
//! runs a streaming detector over every data file by NAB's rules — a fresh detector per file, one
//! parameter set for all, no look-ahead, a score in [0, 1] for every row in row order — and writes
//! `OUT/<category>/<file>.csv` (`timestamp,value,anomaly_score`). [`score_results`] scores any
//! such result folder, including NAB's own (`results/<detector>/<category>/<detector>_<file>.csv`,
//! extra columns ignored: `anomaly_score` is read by name).
//!
//! The detector is behind [`NabDetector`]. [`run_nab`] uses the streaming ensemble
//! ([`EnsembleDetector`]); [`RobustZBaseline`] (the first placeholder) and [`WindowedGaussian`] (NAB's
//! own windowedGaussian baseline) stay available for comparison through [`DetectorKind`].

use anyhow::{bail, Context, Result};
use cellwarden_detector::ensemble::{Params as EnsembleParams, StreamingEnsemble};
use cellwarden_detector::nab::{self, NabFile, NabScores, NabTime, ScoredFile, Window};
use cellwarden_detector::robust_z::{RobustZ, RobustZParams};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A streaming detector as NAB runs it: fed each row once, in row order, it scores the row in
/// [0, 1] from that row and the ones before it.
pub trait NabDetector {
    /// The anomaly score of the next row.
    fn score(&mut self, timestamp: NabTime, value: f64) -> f64;
}

/// The placeholder baseline: [`RobustZ`] with its default parameters (trailing 60 rows, score
/// `|z| / (|z| + 6)`); rows during warm-up score 0.
#[derive(Debug, Clone)]
pub struct RobustZBaseline {
    inner: RobustZ,
}

impl Default for RobustZBaseline {
    fn default() -> Self {
        RobustZBaseline {
            inner: RobustZ::new(RobustZParams::default(), 0.0),
        }
    }
}

impl NabDetector for RobustZBaseline {
    fn score(&mut self, _timestamp: NabTime, value: f64) -> f64 {
        robust_z_row_score(&mut self.inner, value)
    }
}

/// One row's score from a robust z-score detector: 0 while it warms up, its score otherwise (an
/// infinite |z| scores 1).
pub fn robust_z_row_score(detector: &mut RobustZ, value: f64) -> f64 {
    match detector.update(value) {
        None => 0.0,
        Some(s) if s.score.is_finite() => s.score.clamp(0.0, 1.0),
        Some(_) => 1.0,
    }
}

/// The streaming ensemble ([`StreamingEnsemble`] with its default parameters, the one set used for
/// every file), fed each row's timestamp (for its daily profile) and value.
#[derive(Debug, Clone)]
pub struct EnsembleDetector {
    inner: StreamingEnsemble,
}

impl Default for EnsembleDetector {
    fn default() -> Self {
        EnsembleDetector {
            inner: StreamingEnsemble::new(EnsembleParams::default()),
        }
    }
}

impl NabDetector for EnsembleDetector {
    fn score(&mut self, timestamp: NabTime, value: f64) -> f64 {
        // NAB timestamps are naive date-times in microseconds; the profile only needs the time of day.
        let verdict = self.inner.update_at(timestamp.0.div_euclid(1_000_000), value);
        verdict.score.clamp(0.0, 1.0)
    }
}

/// NAB's `windowedGaussian` baseline (`nab/detectors/gaussian/windowedGaussian_detector.py`): the
/// score of a value is `1 − Q(|x − mean| / std)` (Q the standard normal tail probability), mean and
/// (population) standard deviation taken over a window of earlier values. The window grows to
/// [`WindowedGaussian::WINDOW`] values (statistics updated at every value), then slides forward
/// [`WindowedGaussian::STEP`] values at a time; a standard deviation of 0 counts as 1e-6. The first
/// row scores 0.
#[derive(Debug, Clone)]
pub struct WindowedGaussian {
    window: VecDeque<f64>,
    step: Vec<f64>,
    window_size: usize,
    step_size: usize,
    mean: f64,
    std: f64,
    /// Welford's running sum of squared deviations while the window grows.
    m2: f64,
}

impl Default for WindowedGaussian {
    fn default() -> Self {
        WindowedGaussian::new(WindowedGaussian::WINDOW, WindowedGaussian::STEP)
    }
}

impl WindowedGaussian {
    /// NAB's tuned window size.
    pub const WINDOW: usize = 6400;
    /// NAB's step size.
    pub const STEP: usize = 100;

    pub fn new(window_size: usize, step_size: usize) -> WindowedGaussian {
        WindowedGaussian {
            window: VecDeque::new(),
            step: Vec::new(),
            window_size: window_size.max(1),
            step_size: step_size.max(1),
            mean: 0.0,
            std: 1.0,
            m2: 0.0,
        }
    }

    /// Scores `value` against the window, then adds it.
    pub fn update(&mut self, value: f64) -> f64 {
        let score = if self.window.is_empty() {
            0.0
        } else {
            1.0 - normal_tail((value - self.mean).abs() / self.std)
        };
        if self.window.len() < self.window_size {
            self.window.push_back(value);
            let n = self.window.len() as f64;
            let delta = value - self.mean;
            self.mean += delta / n;
            self.m2 += delta * (value - self.mean);
            self.std = (self.m2 / n).max(0.0).sqrt();
            if self.std == 0.0 {
                self.std = 1e-6;
            }
        } else {
            self.step.push(value);
            if self.step.len() == self.step_size {
                self.window.drain(..self.step_size.min(self.window.len()));
                self.window.extend(self.step.drain(..));
                self.recompute();
            }
        }
        score
    }

    /// Mean and population standard deviation of the window, two-pass (as numpy computes them).
    fn recompute(&mut self) {
        let n = self.window.len() as f64;
        self.mean = self.window.iter().sum::<f64>() / n;
        let var = self.window.iter().map(|x| (x - self.mean).powi(2)).sum::<f64>() / n;
        self.std = var.sqrt();
        if self.std == 0.0 {
            self.std = 1e-6;
        }
    }

    /// Bytes of state: the struct plus the heap capacity of its buffers.
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<WindowedGaussian>() + (self.window.capacity() + self.step.capacity()) * std::mem::size_of::<f64>()
    }
}

impl NabDetector for WindowedGaussian {
    fn score(&mut self, _timestamp: NabTime, value: f64) -> f64 {
        self.update(value).clamp(0.0, 1.0)
    }
}

/// The standard normal tail probability Q(z) = P(Z > z) for z ≥ 0, as `erfc(z / √2) / 2`.
pub fn normal_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function (Numerical Recipes' `erfcc`, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07 + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// The detectors the harness can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DetectorKind {
    /// The streaming novelty ensemble ([`EnsembleDetector`]).
    #[default]
    Ensemble,
    /// The first placeholder: robust z-score on a trailing median/MAD ([`RobustZBaseline`]).
    RobustZ,
    /// NAB's windowedGaussian baseline ([`WindowedGaussian`]).
    WindowedGaussian,
}

impl DetectorKind {
    /// The name printed with the scores.
    pub fn label(self) -> &'static str {
        match self {
            DetectorKind::Ensemble => "streaming ensemble",
            DetectorKind::RobustZ => "robust-z baseline",
            DetectorKind::WindowedGaussian => "windowed-Gaussian baseline",
        }
    }
}

/// A data file as read: its scorer form and the text of each row's timestamp and value, written back
/// unchanged.
#[derive(Debug, Clone)]
pub struct CorpusFile {
    pub file: NabFile,
    /// `(timestamp, value)` as written in the data file.
    pub raw: Vec<(String, String)>,
}

/// A NAB corpus: every data file with its windows, sorted by relative path.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub root: PathBuf,
    pub files: Vec<CorpusFile>,
}

impl Corpus {
    /// Windows over all files.
    pub fn windows(&self) -> usize {
        self.files.iter().map(|f| f.file.windows.len()).sum()
    }
}

/// A CSV file's header and its data lines as `(line number, fields)`.
struct Csv {
    header: Vec<String>,
    rows: Vec<(usize, Vec<String>)>,
}

/// Reads a CSV file. NAB's files are plain: no quoting, blank lines skipped.
fn read_csv(path: &Path) -> Result<Csv> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let header: Vec<String> = match lines.next() {
        Some((_, h)) if !h.trim().is_empty() => h.split(',').map(|s| s.trim().trim_start_matches('\u{feff}').to_string()).collect(),
        _ => bail!("{}: empty file, expected a header line", path.display()),
    };
    let mut rows = Vec::new();
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<String> = line.split(',').map(|s| s.trim().to_string()).collect();
        if fields.len() != header.len() {
            bail!("{}:{n}: {} fields, the header has {}", path.display(), fields.len(), header.len());
        }
        rows.push((n, fields));
    }
    Ok(Csv { header, rows })
}

fn column(path: &Path, header: &[String], name: &str) -> Result<usize> {
    header
        .iter()
        .position(|h| h == name)
        .with_context(|| format!("{}:1: no `{name}` column (header: {})", path.display(), header.join(",")))
}

fn parse_time(path: &Path, line: usize, s: &str) -> Result<NabTime> {
    NabTime::parse(s).with_context(|| format!("{}:{line}: timestamp {s:?} is not YYYY-MM-DD HH:MM:SS[.ffffff]", path.display()))
}

/// Reads one data file (`timestamp,value`).
fn read_data_file(path: &Path, name: &str, windows: Vec<Window>) -> Result<CorpusFile> {
    let Csv { header, rows } = read_csv(path)?;
    let (ti, vi) = (column(path, &header, "timestamp")?, column(path, &header, "value")?);
    let mut file = NabFile {
        name: name.to_string(),
        timestamps: Vec::with_capacity(rows.len()),
        values: Vec::with_capacity(rows.len()),
        windows,
    };
    let mut raw = Vec::with_capacity(rows.len());
    for (line, fields) in rows {
        file.timestamps.push(parse_time(path, line, &fields[ti])?);
        let value: f64 = fields[vi]
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .with_context(|| format!("{}:{line}: value {:?} is not a finite number", path.display(), fields[vi]))?;
        file.values.push(value);
        raw.push((fields[ti].clone(), fields[vi].clone()));
    }
    if file.timestamps.is_empty() {
        bail!("{}: no data rows", path.display());
    }
    Ok(CorpusFile { file, raw })
}

/// `labels/combined_windows.json`: relative path → windows.
fn read_windows(path: &Path) -> Result<BTreeMap<String, Vec<Window>>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let json: BTreeMap<String, Vec<Vec<String>>> = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: expected a JSON object of \"<category>/<file>.csv\": [[start, end], ...]",
            path.display()
        )
    })?;
    let mut out = BTreeMap::new();
    for (name, windows) in json {
        let mut parsed = Vec::with_capacity(windows.len());
        for (i, w) in windows.iter().enumerate() {
            let [start, end] = w.as_slice() else {
                bail!(
                    "{}: {name}: window {i} has {} timestamps, expected [start, end]",
                    path.display(),
                    w.len()
                );
            };
            let t = |s: &String| {
                NabTime::parse(s).with_context(|| {
                    format!(
                        "{}: {name}: window {i}: timestamp {s:?} is not YYYY-MM-DD HH:MM:SS[.ffffff]",
                        path.display()
                    )
                })
            };
            parsed.push(Window {
                start: t(start)?,
                end: t(end)?,
            });
        }
        out.insert(name, parsed);
    }
    Ok(out)
}

/// Sorted entries of `dir` that satisfy `keep` (hidden entries skipped).
fn entries(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read folder {}", dir.display()))? {
        let path = e.with_context(|| format!("cannot read folder {}", dir.display()))?.path();
        let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !hidden && keep(&path) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn is_csv(p: &Path) -> bool {
    p.is_file() && p.extension().is_some_and(|e| e == "csv")
}

/// Reads a NAB corpus folder: every `data/<category>/<file>.csv` and its windows from
/// `labels/combined_windows.json`. Every data file needs an entry in the labels and every entry a data file.
pub fn load_corpus(corpus: &Path) -> Result<Corpus> {
    let labels_path = corpus.join("labels").join("combined_windows.json");
    let mut labels = read_windows(&labels_path)?;
    let data = corpus.join("data");
    let mut files = Vec::new();
    for category in entries(&data, |p| p.is_dir())? {
        for path in entries(&category, is_csv)? {
            let name = format!(
                "{}/{}",
                category.file_name().unwrap_or_default().to_string_lossy(),
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            let windows = labels
                .remove(&name)
                .with_context(|| format!("{}: no entry for {name} (data file {})", labels_path.display(), path.display()))?;
            let file = read_data_file(&path, &name, windows)?;
            file.file
                .window_rows()
                .with_context(|| format!("{}: the windows of {name} do not fit {}", labels_path.display(), path.display()))?;
            files.push(file);
        }
    }
    if let Some(name) = labels.keys().next() {
        bail!(
            "{}: {name} is labelled but {} has no such data file",
            labels_path.display(),
            data.display()
        );
    }
    if files.is_empty() {
        bail!("{}: no data files (expected data/<category>/<file>.csv)", data.display());
    }
    Ok(Corpus {
        root: corpus.to_path_buf(),
        files,
    })
}

/// The result file for data file `name` (`<category>/<file>.csv`) in `results`:
/// `<category>/<file>.csv`, else NAB's `<category>/<detector>_<file>.csv` with the folder's name as
/// the detector, else the one file of the category folder named `*_<file>.csv`.
pub fn find_result(results: &Path, name: &str) -> Result<PathBuf> {
    let (category, file) = name
        .split_once('/')
        .with_context(|| format!("{name}: expected <category>/<file>.csv"))?;
    let dir = results.join(category);
    let exact = dir.join(file);
    if exact.is_file() {
        return Ok(exact);
    }
    let detector = results.file_name().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default();
    let prefixed = dir.join(format!("{detector}_{file}"));
    if prefixed.is_file() {
        return Ok(prefixed);
    }
    let suffix = format!("_{file}");
    let candidates = if dir.is_dir() {
        entries(&dir, |p| {
            is_csv(p) && p.file_name().is_some_and(|n| n.to_string_lossy().ends_with(&suffix))
        })?
    } else {
        Vec::new()
    };
    match candidates.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "no result for {name} in {}: tried {} and {}",
            results.display(),
            exact.display(),
            prefixed.display()
        ),
        many => bail!(
            "several results for {name} in {}: {}",
            results.display(),
            many.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Reads the `anomaly_score` column of a result file, one per row of `data`; when the file has a
/// `timestamp` column, each must equal the data row's.
pub fn read_scores(path: &Path, data: &NabFile) -> Result<Vec<f64>> {
    let Csv { header, rows } = read_csv(path)?;
    let si = column(path, &header, "anomaly_score")?;
    let ti = header.iter().position(|h| h == "timestamp");
    if rows.len() != data.timestamps.len() {
        bail!(
            "{}: {} rows, the data file {} has {}",
            path.display(),
            rows.len(),
            data.name,
            data.timestamps.len()
        );
    }
    let mut scores = Vec::with_capacity(rows.len());
    for ((line, fields), expected) in rows.iter().zip(&data.timestamps) {
        if let Some(ti) = ti {
            let t = parse_time(path, *line, &fields[ti])?;
            if t != *expected {
                bail!(
                    "{}:{line}: timestamp {t}, the data file {} has {expected} in that row",
                    path.display(),
                    data.name
                );
            }
        }
        let score: f64 = fields[si].parse().ok().filter(|s| (0.0..=1.0).contains(s)).with_context(|| {
            format!(
                "{}:{line}: anomaly_score {:?} is not a number in [0, 1]",
                path.display(),
                fields[si]
            )
        })?;
        scores.push(score);
    }
    Ok(scores)
}

/// Scores a result folder (`<category>/<file>.csv` or NAB's `<category>/<detector>_<file>.csv`, one
/// per data file of the corpus) with NAB's protocol.
pub fn score_results(corpus: &Path, results_dir: &Path) -> Result<NabScores> {
    let corpus = load_corpus(corpus)?;
    score_loaded(&corpus, results_dir)
}

fn score_loaded(corpus: &Corpus, results_dir: &Path) -> Result<NabScores> {
    let mut scores = Vec::with_capacity(corpus.files.len());
    for f in &corpus.files {
        let path = find_result(results_dir, &f.file.name)?;
        scores.push(read_scores(&path, &f.file)?);
    }
    let scored: Vec<ScoredFile<'_>> = corpus
        .files
        .iter()
        .zip(&scores)
        .map(|(f, s)| ScoredFile { file: &f.file, scores: s })
        .collect();
    nab::score_corpus(&scored).with_context(|| format!("cannot score {}", results_dir.display()))
}

/// Runs a detector from `make_detector` (called once per file) over every file of the corpus and
/// writes `OUT/<category>/<file>.csv` (`timestamp,value,anomaly_score`, one row per data row), then
/// scores what it wrote.
pub fn run_nab_with<D: NabDetector>(corpus: &Path, out: &Path, mut make_detector: impl FnMut() -> D) -> Result<NabScores> {
    let loaded = load_corpus(corpus)?;
    for f in &loaded.files {
        let mut detector = make_detector();
        let path = out.join(&f.file.name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut w = BufWriter::new(file);
        let write_err = || format!("cannot write {}", path.display());
        writeln!(w, "timestamp,value,anomaly_score").with_context(write_err)?;
        for (row, ((t, v), (ts, vs))) in f.file.timestamps.iter().zip(&f.file.values).zip(&f.raw).enumerate() {
            let score = detector.score(*t, *v);
            if !(0.0..=1.0).contains(&score) {
                bail!("{}: row {row}: the detector scored {score}, outside [0, 1]", f.file.name);
            }
            writeln!(w, "{ts},{vs},{score}").with_context(write_err)?;
        }
        w.flush().with_context(write_err)?;
    }
    score_loaded(&loaded, out)
}

/// Runs the default detector (the streaming ensemble, [`EnsembleDetector`]) over the corpus, writes
/// its results under `out`, scores them and prints the three figures.
pub fn run_nab(corpus: &Path, out: &Path) -> Result<NabScores> {
    run_nab_detector(corpus, out, DetectorKind::default())
}

/// Runs the detector `kind` over the corpus, writes its results under `out`, scores them and prints
/// the three figures.
pub fn run_nab_detector(corpus: &Path, out: &Path, kind: DetectorKind) -> Result<NabScores> {
    let scores = match kind {
        DetectorKind::Ensemble => run_nab_with(corpus, out, EnsembleDetector::default)?,
        DetectorKind::RobustZ => run_nab_with(corpus, out, RobustZBaseline::default)?,
        DetectorKind::WindowedGaussian => run_nab_with(corpus, out, WindowedGaussian::default)?,
    };
    let mut so = std::io::stdout().lock();
    print_scores(&mut so, &format!("{} (results in {})", kind.label(), out.display()), &scores)?;
    Ok(scores)
}

/// Prints the three normalised scores with their thresholds and raw scores.
pub fn print_scores(w: &mut dyn Write, what: &str, scores: &NabScores) -> std::io::Result<()> {
    let s = &scores.standard;
    writeln!(
        w,
        "NAB scores of {what}: {} files, {} windows",
        s.files.len(),
        s.files.iter().map(|f| f.windows).sum::<usize>()
    )?;
    writeln!(
        w,
        "{:<20} {:>7} {:>12} {:>10} {:>9} {:>9}",
        "profile", "score", "threshold", "raw", "null", "perfect"
    )?;
    for r in scores.profiles() {
        writeln!(
            w,
            "{:<20} {:>7.2} {:>12.6} {:>10.3} {:>9.2} {:>9.2}",
            r.profile.name, r.score, r.threshold, r.raw, r.null, r.perfect
        )?;
    }
    Ok(())
}

/// The `nab` subcommand: with `score_only`, scores that result folder; else runs the default
/// detector (the streaming ensemble) over the corpus into `out` and scores it.
pub fn run(corpus: &Path, out: Option<&Path>, score_only: Option<&Path>) -> Result<()> {
    run_with(corpus, out, score_only, DetectorKind::default())
}

/// The `nab` subcommand with a choice of detector (`--detector`).
pub fn run_with(corpus: &Path, out: Option<&Path>, score_only: Option<&Path>, detector: DetectorKind) -> Result<()> {
    match (score_only, out) {
        (Some(dir), _) => {
            let scores = score_results(corpus, dir)?;
            print_scores(&mut std::io::stdout().lock(), &dir.display().to_string(), &scores)?;
        }
        (None, Some(out)) => {
            run_nab_detector(corpus, out, detector)?;
        }
        (None, None) => bail!("nab: give --out DIR (run the detector) or --score-only DIR (score existing results)"),
    }
    Ok(())
}
