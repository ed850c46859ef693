//! Speed figures of the pull side, single-threaded, with a baseline in the same run:
//!
//! 1. a scrape body parsed by [`scrape::parse_exposition`] — classic text 0.0.4 (prometheus-parse's
//!    line tokeniser plus our label parser) beside prometheus-parse's own `Scrape::parse` on the same
//!    text, and OpenMetrics (our parser) on the same data;
//! 2. histogram buckets turned into p50/p95/p99 series ([`convert::histogram_quantiles`]);
//! 3. a recording's series grouped into families ([`record::assemble_families`]).
//!
//! Run in release: `cargo run -j 1 --release -p cellwarden-collector --bin bench_pull`.

use cellwarden_collector::convert::histogram_quantiles;
use cellwarden_collector::record::assemble_families;
use cellwarden_collector::scrape::{parse_exposition, Format};
use cellwarden_models::{Sample, Series, SeriesKey, Timestamp};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

const T0_MS: i64 = 1_772_360_000_000;
const PODS: usize = 500;
const BUCKETS: [&str; 10] = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];

/// One scrape of `PODS` pods: a counter by status, a histogram and a gauge per pod.
fn exposition(openmetrics: bool) -> (String, usize) {
    let mut s = String::new();
    let mut n = 0;
    let counter = if openmetrics {
        "http_server_requests"
    } else {
        "http_server_requests_total"
    };
    writeln!(s, "# HELP {counter} Requests served.\n# TYPE {counter} counter").unwrap();
    for p in 0..PODS {
        for status in ["200", "500"] {
            writeln!(
                s,
                "http_server_requests_total{{pod=\"ledger-{p}\",route=\"/pay\",status=\"{status}\"}} {}",
                p * 7 + 3
            )
            .unwrap();
            n += 1;
        }
    }
    writeln!(s, "# TYPE http_server_request_duration_seconds histogram").unwrap();
    for p in 0..PODS {
        for (i, le) in BUCKETS.iter().enumerate() {
            writeln!(
                s,
                "http_server_request_duration_seconds_bucket{{pod=\"ledger-{p}\",le=\"{le}\"}} {}",
                (i + 1) * 10
            )
            .unwrap();
        }
        writeln!(s, "http_server_request_duration_seconds_sum{{pod=\"ledger-{p}\"}} 12.5").unwrap();
        writeln!(s, "http_server_request_duration_seconds_count{{pod=\"ledger-{p}\"}} 100").unwrap();
        n += BUCKETS.len() + 2;
    }
    writeln!(s, "# TYPE container_memory_working_set_bytes gauge").unwrap();
    for p in 0..PODS {
        writeln!(
            s,
            "container_memory_working_set_bytes{{pod=\"ledger-{p}\"}} {}",
            300_000_000 + p * 4096
        )
        .unwrap();
        n += 1;
    }
    if openmetrics {
        s.push_str("# EOF\n");
    }
    (s, n)
}

/// Runs `f` until at least a second has passed; returns items per second.
fn rate(items_per_run: usize, mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut runs = 0usize;
    while started.elapsed().as_secs_f64() < 1.0 || runs < 3 {
        f();
        runs += 1;
    }
    (runs * items_per_run) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let t = Timestamp(T0_MS);
    let (text, n) = exposition(false);
    let (om, n_om) = exposition(true);
    assert_eq!(n, n_om);
    let ours_text = rate(n, || {
        black_box(parse_exposition(Format::Text, black_box(&text), t).expect("valid"));
    });
    let baseline = rate(n, || {
        black_box(prometheus_parse::Scrape::parse(black_box(&text).lines().map(|l| Ok(l.to_string()))).expect("valid"));
    });
    let ours_om = rate(n, || {
        black_box(parse_exposition(Format::OpenMetrics, black_box(&om), t).expect("valid"));
    });
    println!("scrape body of {n} samples ({} KiB text):", text.len() / 1024);
    println!("  text 0.0.4, parse_exposition (ours)       {:>12.0} samples/s", ours_text);
    println!("  text 0.0.4, prometheus_parse::Scrape     {:>12.0} samples/s (baseline)", baseline);
    println!("  OpenMetrics, parse_exposition (ours)      {:>12.0} samples/s", ours_om);

    // An hour at 15 s of one histogram per pod: 240 samples × 10 buckets × PODS.
    let steps = 240;
    let mut buckets = Vec::new();
    for p in 0..PODS {
        for (i, le) in BUCKETS.iter().enumerate() {
            buckets.push(Series {
                key: SeriesKey::new(
                    "lat_seconds_bucket",
                    [("pod".to_string(), format!("ledger-{p}")), ("le".to_string(), le.to_string())],
                ),
                samples: (0..steps)
                    .map(|k| Sample {
                        t: Timestamp(T0_MS + k as i64 * 15_000),
                        value: (k * (i + 1) * 3) as f64,
                    })
                    .collect(),
            });
        }
    }
    let points = PODS * BUCKETS.len() * steps;
    let q = rate(points, || {
        black_box(histogram_quantiles(black_box(&buckets), &[0.5, 0.95, 0.99], 0));
    });
    println!("histogram_quantiles p50/p95/p99, {PODS} histograms × {steps} steps: {q:>12.0} bucket samples/s");

    let mut merged: BTreeMap<SeriesKey, Vec<Sample>> = BTreeMap::new();
    for s in &buckets {
        merged.insert(s.key.clone(), s.samples.clone());
    }
    let samples = points;
    let fam = rate(samples, || {
        black_box(assemble_families(black_box(merged.clone()), &HashMap::new()));
    });
    println!(
        "assemble_families (incl. cloning the input), {} series: {fam:>12.0} samples/s",
        merged.len()
    );
}
