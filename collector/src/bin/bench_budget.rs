//! Memory under hostile label sizes: remote_write requests whose series carry large label values
//! go through the receivers' decode and the ingest, and the process' peak RSS (`VmHWM` in
//! /proc/self/status) is printed beside the store's byte budget and what the store accounts.
//!
//! Each load runs in a child process of its own (peak RSS is per process), twice: `bounded` with
//! the limits of a default config but a 64 MiB store budget, and `unbounded` — the baseline of the
//! same run — with every limit and budget lifted (as main had none), so the difference is the
//! limits' doing. Loads:
//! - `big-labels`: 1,000 series, each with one 256 KiB label value (past max_label_value_bytes);
//! - `many-series`: 100,000 series, each with a 2,000-byte label value (within the limit), so
//!   only the byte budget holds them.
//!
//! Run in release: `cargo run -j 1 --release -p cellwarden-collector --bin bench_budget`.

use cellwarden_collector::ingest::{Ingest, IngestConfig, Source};
use cellwarden_collector::limits::IngestLimits;
use cellwarden_collector::receive::remote_write::{self, proto};
use cellwarden_collector::store::WindowConfig;
use cellwarden_models::Timestamp;
use std::process::Command;

const T0_MS: i64 = 1_772_360_000_000;
/// The bounded runs' store budget: small next to both loads' unbounded sizes (256 MiB, ~230 MiB).
const BUDGET_BYTES: usize = 64 << 20;
/// Series per request, as a Prometheus remote_write queue shard sends them (max_samples_per_send
/// defaults to 2,000; fewer here because each series is large).
const SERIES_PER_REQUEST: usize = 100;

/// Peak resident set of this process, bytes.
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn request(first: usize, n: usize, value_bytes: usize) -> Vec<u8> {
    let filler = "v".repeat(value_bytes);
    let timeseries = (first..first + n)
        .map(|i| proto::TimeSeries {
            labels: vec![
                proto::Label::new("__name__", "http_requests_total"),
                proto::Label::new("pod", &format!("ledger-{i:06}")),
                proto::Label::new("trace", &filler),
            ],
            samples: vec![proto::Sample {
                value: i as f64,
                timestamp: T0_MS,
            }],
            histograms: vec![],
        })
        .collect();
    remote_write::encode(&proto::WriteRequest {
        timeseries,
        metadata: vec![],
    })
}

fn run(load: &str, bounded: bool) {
    let (series, value_bytes) = match load {
        "big-labels" => (1_000, 256 << 10),
        _ => (100_000, 2_000),
    };
    let cfg = if bounded {
        IngestConfig {
            window: WindowConfig {
                max_store_bytes: BUDGET_BYTES,
                max_series: 1_000_000,
                ..WindowConfig::default()
            },
            ..IngestConfig::default()
        }
    } else {
        IngestConfig {
            window: WindowConfig {
                max_store_bytes: usize::MAX,
                max_series: 1_000_000,
                ..WindowConfig::default()
            },
            limits: IngestLimits {
                max_metric_name_bytes: usize::MAX,
                max_label_name_bytes: usize::MAX,
                max_label_value_bytes: usize::MAX,
                max_labels_per_series: usize::MAX,
                max_attributes_per_span: usize::MAX,
            },
            ..IngestConfig::default()
        }
    };
    let ingest = Ingest::new(IngestConfig {
        max_ingest_samples_per_sec: u64::MAX / 4,
        ..cfg
    });
    let before = peak_rss_bytes();
    let (mut stored, mut refused) = (0, 0);
    let mut first = 0;
    while first < series {
        let n = SERIES_PER_REQUEST.min(series - first);
        let body = request(first, n, value_bytes);
        let req = remote_write::decode(&body, usize::MAX).expect("our own encoding");
        let batch = remote_write::batch(&req).expect("UTF-8 labels");
        let out = ingest
            .push_borrowed(Source::RemoteWrite, &batch.samples, Timestamp(T0_MS))
            .expect("no rate limit");
        stored += out.accepted;
        refused += out.rejected;
        first += n;
    }
    let accounted = ingest.with_store(|s| s.memory_bytes());
    let budget = if bounded {
        format!("{} MiB", BUDGET_BYTES >> 20)
    } else {
        "none".into()
    };
    println!(
        "{load:>11} {:>9}: {series} series × {value_bytes} B labels: stored {stored}, refused {refused}; store accounts {:.1} MiB (budget {budget}); peak RSS {:.1} MiB (at start {:.1} MiB)",
        if bounded { "bounded" } else { "unbounded" },
        accounted as f64 / 1048576.0,
        peak_rss_bytes() as f64 / 1048576.0,
        before as f64 / 1048576.0,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, load, mode] = args.as_slice() {
        run(load, mode == "bounded");
        return;
    }
    println!(
        "bench_budget{}",
        if cfg!(debug_assertions) {
            " — DEBUG BUILD, use --release"
        } else {
            ""
        }
    );
    let me = std::env::current_exe().expect("the bench's own path");
    for load in ["big-labels", "many-series"] {
        for mode in ["unbounded", "bounded"] {
            let status = Command::new(&me).args([load, mode]).status().expect("run a child");
            assert!(status.success(), "{load} {mode}: {status}");
        }
    }
}
