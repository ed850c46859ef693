//! Throughput and state size of the streaming ensemble against NAB's windowed-Gaussian baseline.
//!
//! `cargo run --release --bin bench_detector -- ../shared/nab` prints, for both detectors, points
//! per second on one core and bytes of state per series, (a) over the whole NAB corpus (a fresh
//! detector per file, as the harness runs them) and (b) over a synthetic fleet of 100,000 series of
//! 20 points each, fed interleaved (point 1 of every series, then point 2, ...) as live telemetry
//! arrives; then the ratio ensemble / baseline. Only the scoring loops are timed (each run twice,
//! the faster kept). State bytes are `size_of` plus the heap capacity of the detector's buffers.
//! Without a corpus argument only (b) runs.

use anyhow::{Context, Result};
use cellwarden::nab_cmd::{load_corpus, WindowedGaussian};
use cellwarden_detector::ensemble::{Params, StreamingEnsemble};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const FLEET: usize = 100_000;
const POINTS_PER_SERIES: usize = 20;
const REPEATS: usize = 2;

/// Points per second, bytes of state per series (mean, max).
#[derive(Debug, Clone, Copy)]
struct Figures {
    points_per_s: f64,
    bytes_mean: f64,
    bytes_max: usize,
}

/// A common interface over both detectors for the benchmark.
trait Bench {
    fn make() -> Self;
    fn step(&mut self, unix_seconds: i64, value: f64) -> f64;
    fn bytes(&self) -> usize;
}

impl Bench for StreamingEnsemble {
    fn make() -> Self {
        StreamingEnsemble::new(Params::default())
    }
    fn step(&mut self, unix_seconds: i64, value: f64) -> f64 {
        self.update_at(unix_seconds, value).score
    }
    fn bytes(&self) -> usize {
        self.state_bytes()
    }
}

impl Bench for WindowedGaussian {
    fn make() -> Self {
        WindowedGaussian::default()
    }
    fn step(&mut self, _unix_seconds: i64, value: f64) -> f64 {
        self.update(value)
    }
    fn bytes(&self) -> usize {
        self.state_bytes()
    }
}

/// One series of the corpus: Unix seconds and values.
type Series = (Vec<i64>, Vec<f64>);

fn bench_corpus<D: Bench>(files: &[Series]) -> Figures {
    let points: usize = files.iter().map(|(t, _)| t.len()).sum();
    let mut best = Duration::MAX;
    let mut bytes = Vec::with_capacity(files.len());
    for _ in 0..REPEATS {
        bytes.clear();
        let mut elapsed = Duration::ZERO;
        for (ts, vs) in files {
            let started = Instant::now();
            let mut d = D::make();
            let mut acc = 0.0;
            for (t, v) in ts.iter().zip(vs) {
                acc += d.step(*t, *v);
            }
            black_box(acc);
            elapsed += started.elapsed();
            bytes.push(d.bytes());
        }
        best = best.min(elapsed);
    }
    Figures {
        points_per_s: points as f64 / best.as_secs_f64(),
        bytes_mean: bytes.iter().sum::<usize>() as f64 / bytes.len() as f64,
        bytes_max: bytes.iter().copied().max().unwrap_or(0),
    }
}

/// Deterministic synthetic point `i` of series `s`: a daily wave with a per-series level, amplitude
/// and phase, plus hashed noise, every 5 minutes.
fn synthetic(s: usize, i: usize) -> (i64, f64) {
    let mut h = (s as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= h >> 29;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 32;
    let noise = (h >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
    let level = 10.0 + (s % 97) as f64;
    let phase = (i as f64 + (s % 288) as f64) / 288.0 * std::f64::consts::TAU;
    let t = 1_700_000_000 + i as i64 * 300;
    (t, level * (1.0 + 0.3 * phase.sin()) + level * 0.05 * noise)
}

fn bench_fleet<D: Bench>() -> Figures {
    let data: Vec<(i64, f64)> = (0..POINTS_PER_SERIES)
        .flat_map(|i| (0..FLEET).map(move |s| synthetic(s, i)))
        .collect();
    let mut best = Duration::MAX;
    let mut bytes = Vec::new();
    for _ in 0..REPEATS {
        let mut fleet: Vec<D> = (0..FLEET).map(|_| D::make()).collect();
        let started = Instant::now();
        let mut acc = 0.0;
        for (k, (t, v)) in data.iter().enumerate() {
            acc += fleet[k % FLEET].step(*t, *v);
        }
        black_box(acc);
        best = best.min(started.elapsed());
        bytes = fleet.iter().map(Bench::bytes).collect();
    }
    Figures {
        points_per_s: data.len() as f64 / best.as_secs_f64(),
        bytes_mean: bytes.iter().sum::<usize>() as f64 / bytes.len() as f64,
        bytes_max: bytes.iter().copied().max().unwrap_or(0),
    }
}

fn print_block(what: &str, ensemble: Figures, baseline: Figures) {
    println!("{what}");
    println!(
        "  {:<28} {:>14} {:>18} {:>16}",
        "detector", "points/s/core", "bytes/series mean", "bytes/series max"
    );
    for (name, f) in [("ensemble", ensemble), ("windowed-gaussian (baseline)", baseline)] {
        println!("  {:<28} {:>14.0} {:>18.0} {:>16}", name, f.points_per_s, f.bytes_mean, f.bytes_max);
    }
    println!(
        "  {:<28} {:>14.2} {:>18.3} {:>16.3}",
        "ratio ensemble/baseline",
        ensemble.points_per_s / baseline.points_per_s,
        ensemble.bytes_mean / baseline.bytes_mean,
        ensemble.bytes_max as f64 / baseline.bytes_max as f64
    );
}

fn main() -> Result<()> {
    let corpus = std::env::args_os().nth(1).map(PathBuf::from);
    if let Some(corpus) = corpus {
        let loaded = load_corpus(&corpus).with_context(|| format!("cannot load the NAB corpus at {}", corpus.display()))?;
        let files: Vec<Series> = loaded
            .files
            .iter()
            .map(|f| {
                let ts = f.file.timestamps.iter().map(|t| t.0.div_euclid(1_000_000)).collect();
                (ts, f.file.values.clone())
            })
            .collect();
        let points: usize = files.iter().map(|(t, _)| t.len()).sum();
        let ensemble = bench_corpus::<StreamingEnsemble>(&files);
        let baseline = bench_corpus::<WindowedGaussian>(&files);
        print_block(
            &format!("(a) NAB corpus: {} files, {points} points, a fresh detector per file", files.len()),
            ensemble,
            baseline,
        );
    }
    let ensemble = bench_fleet::<StreamingEnsemble>();
    let baseline = bench_fleet::<WindowedGaussian>();
    print_block(
        &format!(
            "(b) synthetic fleet: {FLEET} series x {POINTS_PER_SERIES} points, interleaved ({} points)",
            FLEET * POINTS_PER_SERIES
        ),
        ensemble,
        baseline,
    );
    bench_multivariate();
    Ok(())
}

/// The linfa PCA model of a service's signals: training (fit) and scoring rates, reported apart
/// from the streaming ensemble because they run at other moments (fit on history, score per step).
fn bench_multivariate() {
    use cellwarden_detector::multivariate::{ModelParams, MultivariateModel};
    use cellwarden_models::Signal;
    let features = vec![
        Signal::RequestRate,
        Signal::Cpu,
        Signal::Latency,
        Signal::ErrorRatio,
        Signal::Memory,
    ];
    // A day of one-minute rows with the usual relations between the signals.
    let rows: Vec<Vec<f64>> = (0..1440)
        .map(|i| {
            let rps = 50.0 + 30.0 * (i as f64 / 229.0).sin();
            let w = ((i * 7919) % 101) as f64 / 101.0 - 0.5;
            vec![
                rps,
                0.01 * rps + 0.01 * w,
                0.02 + 0.0002 * rps + 0.001 * w,
                0.001 + 0.0005 * w,
                3e8 + 1e6 * w,
            ]
        })
        .collect();
    let mut best_fit = Duration::MAX;
    let mut model = None;
    for _ in 0..REPEATS.max(3) {
        let t = Instant::now();
        let m = MultivariateModel::train(features.clone(), &rows, &ModelParams::default()).expect("trains");
        best_fit = best_fit.min(t.elapsed());
        model = Some(m);
    }
    let model = model.expect("trained");
    let mut best_score = Duration::MAX;
    for _ in 0..REPEATS {
        let t = Instant::now();
        for r in &rows {
            black_box(model.score(black_box(r)));
        }
        best_score = best_score.min(t.elapsed());
    }
    println!();
    println!("(c) multivariate PCA model (linfa), {} features:", features.len());
    println!(
        "    fit:   {} rows in {:.2} ms = {:.0} rows/s",
        rows.len(),
        best_fit.as_secs_f64() * 1e3,
        rows.len() as f64 / best_fit.as_secs_f64()
    );
    println!(
        "    score: {:.0} rows/s per core; cached state {} bytes (JSON)",
        rows.len() as f64 / best_score.as_secs_f64(),
        model.to_json().len()
    );
}
