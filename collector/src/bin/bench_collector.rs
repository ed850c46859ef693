//! The collector's speed figures, single-threaded (so "per core"), with a baseline in the same run:
//!
//! 1. exposition text parsed, and parsed + stored: our OpenMetrics parser (models) beside
//!    prometheus-parse 0.2.5 on the same text, the streaming path, and the scraper's own code on
//!    the same text — its parse + store step (`scrape::ParsedScrape`, with a target's labels),
//!    and a whole `Scraper::scrape_into` over HTTP from an axum server on 127.0.0.1 (server and
//!    client on the same single thread);
//! 2. remote_write decoded + stored (snappy + protobuf + the window store);
//! 3. OTLP protobuf spans decoded + converted + buffered;
//! 4. bytes of memory per tracked series for a one-hour window at 15 s resolution.
//!
//! Run in release: `cargo run -j 1 --release -p cellwarden-collector --bin bench_collector`.
//! Targets: ≥ 1,000,000 samples/s into the store; ≤ 1 KiB per series.

use cellwarden_collector::exposition;
use cellwarden_collector::exposition::TargetLabels;
use cellwarden_collector::ingest::{Ingest, IngestConfig, Source};
use cellwarden_collector::pull::{self, Clock};
use cellwarden_collector::receive::{otlp, remote_write};
use cellwarden_collector::scrape::{self, Format, ParsedScrape, ScrapeConfig, Scraper, Target};
use cellwarden_collector::store::{WindowConfig, WindowStore};
use cellwarden_models::openmetrics::{self, ParseOptions};
use cellwarden_models::{Sample, Series, SeriesKey, Timestamp};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as OtlpSpan};
use prost::Message;
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T0_MS: i64 = 1_772_360_000_000;
const PODS: usize = 500;
const ROUTES: [&str; 2] = ["/pay", "/balance"];
const BUCKETS: [&str; 10] = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];

/// A small deterministic generator (no rand dependency for a bench).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One scrape of 500 pods as cAdvisor and an HTTP server expose them: a gauge, a counter and a
/// 10-bucket histogram for two routes per pod — 13,000 samples. Valid OpenMetrics (with `# EOF`)
/// and readable by a 0.0.4 parser.
fn exposition(round: usize) -> String {
    let mut rng = Lcg(round as u64 + 1);
    let labels = |p: usize| format!("namespace=\"cell-{}\",pod=\"ledger-7d9c-{p:05}\",container=\"ledger\"", p % 4 + 1);
    let mut t = String::with_capacity(2 << 20);
    t.push_str("# TYPE container_memory_working_set_bytes gauge\n# HELP container_memory_working_set_bytes Working set.\n");
    for p in 0..PODS {
        let v = (3.0e8 + rng.next() * 1.0e7).round();
        writeln!(t, "container_memory_working_set_bytes{{{}}} {v}", labels(p)).unwrap();
    }
    t.push_str("# TYPE container_cpu_usage_seconds counter\n");
    for p in 0..PODS {
        let v = 1000.0 + round as f64 * 15.0 * rng.next();
        writeln!(t, "container_cpu_usage_seconds_total{{{}}} {v:.3}", labels(p)).unwrap();
    }
    t.push_str("# TYPE http_server_request_duration_seconds histogram\n");
    for p in 0..PODS {
        for route in ROUTES {
            let mut cum = 0u64;
            for le in BUCKETS {
                cum += (rng.next() * 50.0) as u64 + round as u64;
                writeln!(
                    t,
                    "http_server_request_duration_seconds_bucket{{{},route=\"{route}\",le=\"{le}\"}} {cum}",
                    labels(p)
                )
                .unwrap();
            }
            writeln!(
                t,
                "http_server_request_duration_seconds_sum{{{},route=\"{route}\"}} {:.3}",
                labels(p),
                cum as f64 * 0.07
            )
            .unwrap();
            writeln!(
                t,
                "http_server_request_duration_seconds_count{{{},route=\"{route}\"}} {cum}",
                labels(p)
            )
            .unwrap();
        }
    }
    t.push_str("# EOF\n");
    t
}

fn ingest() -> Ingest {
    Ingest::new(IngestConfig {
        window: WindowConfig {
            retention_secs: 3600,
            max_series: 1_000_000,
            // The speed figures are of storing, not of refusing: no byte budget.
            max_store_bytes: usize::MAX,
        },
        max_ingest_samples_per_sec: u64::MAX / 4,
        max_ingest_spans_per_sec: u64::MAX / 4,
        max_spans_buffered: 100_000,
        max_alerts_buffered: 10,
        max_spans_buffered_bytes: usize::MAX,
        ..IngestConfig::default()
    })
}

/// Our parser's families, every sample at the scrape time `now` (a scrape has no timestamps).
fn ours_to_batch(text: &str, now: Timestamp) -> Vec<Series> {
    let exp = openmetrics::parse(text.as_bytes(), ParseOptions::default()).expect("valid exposition");
    let mut batch = Vec::with_capacity(exp.sample_count());
    for fam in exp.families {
        for mut series in fam.series {
            for s in &mut series.samples {
                s.t = now;
            }
            batch.push(series);
        }
    }
    batch
}

/// prometheus-parse's samples as series, histograms expanded back into `_bucket{le}` series.
fn prometheus_parse_to_batch(text: &str, now: Timestamp) -> Vec<Series> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid exposition");
    let mut batch = Vec::with_capacity(scrape.samples.len() * 2);
    let one = |key: SeriesKey, value: f64| Series {
        key,
        samples: vec![Sample { t: now, value }],
    };
    for s in scrape.samples {
        let labels = || s.labels.iter().map(|(k, v)| (k.clone(), v.clone()));
        match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => {
                batch.push(one(SeriesKey::new(s.metric.clone(), labels()), v));
            }
            prometheus_parse::Value::Histogram(ref buckets) => {
                for b in buckets {
                    let le = if b.less_than.is_infinite() {
                        "+Inf".to_string()
                    } else {
                        b.less_than.to_string()
                    };
                    batch.push(one(
                        SeriesKey::new(format!("{}_bucket", s.metric), labels().chain([("le".to_string(), le)])),
                        b.count,
                    ));
                }
            }
            prometheus_parse::Value::Summary(_) => {}
        }
    }
    batch
}

/// The streaming path: `exposition::parse_openmetrics` (models' `parse_sample_line_into`) into a
/// borrowed batch, pushed with `push_borrowed`. Returns the samples stored.
fn ours_streaming(ing: &Ingest, text: &str, now: Timestamp) -> usize {
    let b = exposition::parse_openmetrics(text, now).expect("valid exposition");
    ing.push_borrowed(Source::Scrape, &b.samples, now).expect("no limit").accepted as usize
}

fn rate(n: usize, secs: f64) -> String {
    let r = n as f64 / secs;
    let mut s = format!("{:.0}", r);
    let mut i = s.len() as isize - 3;
    while i > 0 {
        s.insert(i as usize, ',');
        i -= 3;
    }
    s
}

fn bench_exposition() {
    const ROUNDS: usize = 40;
    let texts: Vec<String> = (0..8).map(exposition).collect();
    let bytes: usize = texts[0].len();
    let per_round: usize = ours_to_batch(&texts[0], Timestamp(0)).iter().map(|s| s.samples.len()).sum();
    println!("exposition: {PODS} pods, {per_round} samples and {bytes} bytes a scrape, {ROUNDS} scrapes");

    for (name, to_batch) in [
        ("models::openmetrics", ours_to_batch as fn(&str, Timestamp) -> Vec<Series>),
        ("prometheus-parse 0.2.5", prometheus_parse_to_batch),
    ] {
        let start = Instant::now();
        let mut n = 0;
        for r in 0..ROUNDS {
            let batch = to_batch(&texts[r % texts.len()], Timestamp(T0_MS + r as i64 * 15_000));
            n += batch.iter().map(|s| s.samples.len()).sum::<usize>();
            black_box(batch);
        }
        let parse_secs = start.elapsed().as_secs_f64();

        let ing = ingest();
        let start = Instant::now();
        let mut stored = 0;
        for r in 0..ROUNDS {
            let now = Timestamp(T0_MS + r as i64 * 15_000);
            let batch = to_batch(&texts[r % texts.len()], now);
            stored += ing.push_series(Source::Scrape, batch, now).expect("no limit").accepted as usize;
        }
        let store_secs = start.elapsed().as_secs_f64();

        // The store alone: batches parsed beforehand, only push_series timed.
        let batches: Vec<_> = (0..ROUNDS)
            .map(|r| to_batch(&texts[r % texts.len()], Timestamp(T0_MS + r as i64 * 15_000)))
            .collect();
        let ing = ingest();
        let start = Instant::now();
        for (r, batch) in batches.into_iter().enumerate() {
            ing.push_series(Source::Scrape, batch, Timestamp(T0_MS + r as i64 * 15_000))
                .expect("no limit");
        }
        let store_only_secs = start.elapsed().as_secs_f64();
        println!(
            "  {name:<24} parse {:>9} samples/s ({:.0} MB/s) | parse + store {:>9} samples/s ({} stored) | store alone {:>9} samples/s",
            rate(n, parse_secs),
            (bytes * ROUNDS) as f64 / parse_secs / 1e6,
            rate(stored, store_secs),
            stored,
            rate(n, store_only_secs)
        );
    }
}

fn bench_exposition_streaming() {
    const ROUNDS: usize = 40;
    let texts: Vec<String> = (0..8).map(exposition).collect();
    let start = Instant::now();
    let mut n = 0;
    for r in 0..ROUNDS {
        let b = exposition::parse_openmetrics(&texts[r % texts.len()], Timestamp(T0_MS + r as i64 * 15_000)).expect("valid");
        n += b.samples.sample_count();
        black_box(b);
    }
    let parse_secs = start.elapsed().as_secs_f64();
    let ing = ingest();
    let start = Instant::now();
    let mut stored = 0;
    for r in 0..ROUNDS {
        stored += ours_streaming(&ing, &texts[r % texts.len()], Timestamp(T0_MS + r as i64 * 15_000));
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "  {:<24} parse {:>9} samples/s | parse + store {:>9} samples/s ({} stored; names and labels borrowed)",
        "exposition (streaming)",
        rate(n, parse_secs),
        rate(stored, secs),
        stored
    );
}

/// A clock the bench moves by hand: one scrape every 15 s.
fn bench_clock() -> (Arc<AtomicI64>, Clock) {
    let now = Arc::new(AtomicI64::new(T0_MS));
    let read = now.clone();
    (now, Arc::new(move || Timestamp(read.load(Ordering::Relaxed))))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The scraper's step between the HTTP response and the store, as `Scraper::scrape_into` runs
/// it: parse for a target (its `job` and `instance` on every series), note the metadata, deliver
/// in batches the limiter admits. OpenMetrics goes the streaming way, 0.0.4 the family way; the
/// second line gives the target a `namespace` label every series of the text also has, so each
/// line takes the renaming (`exported_namespace`) branch.
fn bench_scrape_path() {
    const ROUNDS: usize = 40;
    let texts: Vec<String> = (0..8).map(exposition).collect();
    let rt = runtime();
    for (name, format, extra) in [
        ("scrape path, OpenMetrics", Format::OpenMetrics, None),
        ("  + a clashing label", Format::OpenMetrics, Some(("namespace", "cell-9"))),
        ("scrape path, text 0.0.4", Format::Text, None),
    ] {
        let target = Target::new(
            "http://127.0.0.1:9100/metrics",
            "cadvisor",
            extra.map(|(k, v): (&str, &str)| (k.to_string(), v.to_string())),
        );
        let labels = TargetLabels::new(target.labels.iter().cloned());
        let ing = ingest();
        let (now, clock) = bench_clock();
        let start = Instant::now();
        let stored = rt.block_on(async {
            let mut stored = 0;
            for (r, text) in texts.iter().cycle().take(ROUNDS).enumerate() {
                now.store(T0_MS + r as i64 * 15_000, Ordering::Relaxed);
                let parsed = ParsedScrape::parse(format, text, &labels, clock()).expect("valid exposition");
                stored += parsed.store(&ing, &clock, Duration::ZERO).await.accepted as usize;
            }
            stored
        });
        let secs = start.elapsed().as_secs_f64();
        println!(
            "  {name:<24} parse + store {:>9} samples/s ({stored} stored; scrape::ParsedScrape, job + instance{})",
            rate(stored, secs),
            if extra.is_some() { " + namespace" } else { "" }
        );
    }

    // What the scraper ran on OpenMetrics before the streaming path, for comparison.
    let target = Target::new("http://127.0.0.1:9100/metrics", "cadvisor", []);
    let ing = ingest();
    let (now, clock) = bench_clock();
    let start = Instant::now();
    let stored = rt.block_on(async {
        let mut stored = 0;
        for (r, text) in texts.iter().cycle().take(ROUNDS).enumerate() {
            now.store(T0_MS + r as i64 * 15_000, Ordering::Relaxed);
            let families = scrape::parse_exposition(Format::OpenMetrics, text, clock()).expect("valid exposition");
            for fam in &families {
                ing.note_metadata(&fam.name, fam.kind, fam.help.as_deref().unwrap_or(""));
            }
            let series = scrape::target_series(families, &target);
            stored += pull::deliver(&ing, Source::Scrape, series, &clock, Duration::ZERO).await.accepted as usize;
        }
        stored
    });
    println!(
        "  {:<24} parse + store {:>9} samples/s ({stored} stored; the family path the scraper took before)",
        "  OpenMetrics, before",
        rate(stored, start.elapsed().as_secs_f64())
    );
}

/// A whole scrape as the scrape loop runs it, `Scraper::scrape_into`, against an axum server on
/// 127.0.0.1 serving the same texts as OpenMetrics; server, client and store share one thread.
fn bench_scrape_http() {
    const ROUNDS: usize = 40;
    let texts: Arc<Vec<axum::body::Bytes>> = Arc::new((0..8).map(|r| exposition(r).into()).collect());
    let rt = runtime();
    let ing = ingest();
    let (now, clock) = bench_clock();
    let (stored, secs) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a local port");
        let addr = listener.local_addr().expect("bound");
        let served = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let body = texts[served.fetch_add(1, Ordering::Relaxed) % texts.len()].clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    )
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let scraper = Scraper::new(ScrapeConfig::default()).expect("an HTTP client");
        let target = Target::new(&format!("http://{addr}/metrics"), "cadvisor", []);
        let start = Instant::now();
        let mut stored = 0;
        for r in 0..ROUNDS {
            now.store(T0_MS + r as i64 * 15_000, Ordering::Relaxed);
            stored += scraper.scrape_into(&target, &ing, &clock).await.expect("scraped") as usize;
        }
        (stored, start.elapsed().as_secs_f64())
    });
    println!(
        "  {:<24} HTTP + parse + store {:>9} samples/s ({stored} stored; Scraper::scrape_into from axum on 127.0.0.1, same thread)",
        "scrape, OpenMetrics",
        rate(stored, secs)
    );
}

fn bench_remote_write() {
    const SERIES: usize = 10_000;
    const ROUNDS: usize = 40;
    // Prometheus sends up to 2,000 samples a request (queue_config.max_samples_per_send).
    const PER_REQUEST: usize = 2_000;
    let mut rng = Lcg(7);
    let mut bodies = Vec::new();
    for r in 0..ROUNDS {
        for chunk in (0..SERIES).collect::<Vec<_>>().chunks(PER_REQUEST) {
            let timeseries = chunk
                .iter()
                .map(|&s| remote_write::proto::TimeSeries {
                    labels: vec![
                        remote_write::proto::Label::new("__name__", "container_memory_working_set_bytes"),
                        remote_write::proto::Label::new("container", "ledger"),
                        remote_write::proto::Label::new("namespace", &format!("cell-{}", s % 4 + 1)),
                        remote_write::proto::Label::new("pod", &format!("ledger-7d9c-{s:05}")),
                    ],
                    samples: vec![remote_write::proto::Sample {
                        value: (3.0e8 + rng.next() * 1.0e7).round(),
                        timestamp: T0_MS + r as i64 * 15_000,
                    }],
                    histograms: vec![],
                })
                .collect();
            bodies.push(remote_write::encode(&remote_write::proto::WriteRequest {
                timeseries,
                metadata: vec![],
            }));
        }
    }
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let ing = ingest();
    let start = Instant::now();
    let mut n = 0;
    for (i, body) in bodies.iter().enumerate() {
        let req = remote_write::decode(body, 64 << 20).expect("valid");
        let batch = remote_write::batch(&req).expect("valid");
        let now = Timestamp(T0_MS + (i / (SERIES / PER_REQUEST)) as i64 * 15_000);
        n += ing
            .push_borrowed(Source::RemoteWrite, &batch.samples, now)
            .expect("no limit")
            .accepted as usize;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "remote_write: {} requests of {PER_REQUEST} samples ({:.1} bytes/sample on the wire): decode + store {} samples/s",
        bodies.len(),
        bytes as f64 / n as f64,
        rate(n, secs)
    );
}

fn bench_otlp() {
    const REQUESTS: usize = 200;
    // The SDKs' batch span processor sends up to 512 spans a request.
    const PER_REQUEST: usize = 512;
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    };
    let bodies: Vec<Vec<u8>> = (0..REQUESTS)
        .map(|r| {
            let spans = (0..PER_REQUEST)
                .map(|i| OtlpSpan {
                    trace_id: ((r * PER_REQUEST + i) as u128 / 4 + 1).to_be_bytes().to_vec(),
                    span_id: ((r * PER_REQUEST + i) as u64 + 1).to_be_bytes().to_vec(),
                    parent_span_id: if i % 4 == 0 {
                        vec![]
                    } else {
                        ((r * PER_REQUEST + i) as u64).to_be_bytes().to_vec()
                    },
                    name: "POST /pay".into(),
                    kind: 2 + (i % 2) as i32,
                    start_time_unix_nano: 1_772_360_000_000_000_000 + i as u64 * 1_000_000,
                    end_time_unix_nano: 1_772_360_000_020_000_000 + i as u64 * 1_000_000,
                    attributes: vec![
                        kv("peer.service", "provider-a"),
                        kv("http.request.method", "POST"),
                        kv("url.path", "/v1/charges"),
                    ],
                    ..Default::default()
                })
                .collect();
            ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![
                            kv("service.name", "payments"),
                            kv("k8s.pod.name", "payments-1"),
                            kv("wallet.cell", "cell-2"),
                        ],
                        ..Default::default()
                    }),
                    scope_spans: vec![ScopeSpans {
                        spans,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }
            .encode_to_vec()
        })
        .collect();
    let ing = ingest();
    let start = Instant::now();
    let mut n = 0;
    for body in &bodies {
        let req = otlp::decode_request(body, otlp::Encoding::Protobuf).expect("valid");
        let (spans, refused) = otlp::spans_from_request(&req, usize::MAX);
        assert!(refused.is_empty());
        n += ing.push_spans(Source::Otlp, spans, Timestamp(T0_MS)).expect("no limit").accepted as usize;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "otlp protobuf: {REQUESTS} requests of {PER_REQUEST} spans: decode + convert + buffer {} spans/s",
        rate(n, secs)
    );
}

/// How the values of a series move from one 15 s sample to the next.
#[derive(Clone, Copy)]
enum ValueModel {
    /// cAdvisor's working set: whole 4 KiB pages, a random walk of ±1 MiB.
    MemoryPages,
    /// A request counter or histogram bucket: an integer growing by 0–40 a scrape.
    IntegerCounter,
    /// cAdvisor's CPU seconds: a float counter growing by a random fraction of 15 s.
    FloatCounter,
    /// Worst case for XOR compression: a random walk of whole bytes (20 noisy mantissa bits).
    NoisyGauge,
}

fn memory_per_series(model: ValueModel, series: usize) -> f64 {
    let mut st = WindowStore::new(WindowConfig {
        retention_secs: 3600,
        max_series: series,
        max_store_bytes: usize::MAX,
    });
    let keys: Vec<SeriesKey> = (0..series)
        .map(|s| {
            SeriesKey::new(
                "container_memory_working_set_bytes",
                [
                    ("namespace".to_string(), format!("cell-{}", s % 4 + 1)),
                    ("pod".to_string(), format!("ledger-7d9c-{s:05}")),
                    ("container".to_string(), "ledger".to_string()),
                ],
            )
        })
        .collect();
    let mut rng = Lcg(11);
    let mut values: Vec<f64> = (0..series).map(|_| 3.0e8).collect();
    // One hour at 15 s: 240 samples a series.
    for i in 0..240i64 {
        for (k, v) in keys.iter().zip(values.iter_mut()) {
            *v = match model {
                ValueModel::MemoryPages => *v + ((rng.next() - 0.5) * 512.0).round() * 4096.0,
                ValueModel::IntegerCounter => *v + (rng.next() * 40.0).floor(),
                ValueModel::FloatCounter => *v + rng.next() * 15.0,
                ValueModel::NoisyGauge => (*v + (rng.next() - 0.5) * 1.0e6).round(),
            };
            st.append(
                k,
                Sample {
                    t: Timestamp(T0_MS + i * 15_000),
                    value: *v,
                },
            );
        }
    }
    st.memory_bytes() as f64 / st.series_count() as f64
}

fn bench_memory() {
    const SERIES: usize = 10_000;
    println!("memory, 1 h window at 15 s (240 samples a series), {SERIES} series with 3 labels, bytes per series (all included):");
    let mut mix = 0.0;
    for (name, model, share) in [
        ("memory gauge in 4 KiB pages", ValueModel::MemoryPages, 1.0),
        ("integer counter / bucket", ValueModel::IntegerCounter, 24.0),
        ("float cpu-seconds counter", ValueModel::FloatCounter, 1.0),
        ("noisy gauge (worst case)", ValueModel::NoisyGauge, 0.0),
    ] {
        let per_series = memory_per_series(model, SERIES);
        mix += per_series * share / 26.0;
        println!(
            "  {name:<28} {per_series:>6.0} bytes/series ({:.2} bytes/sample)",
            per_series / 240.0
        );
    }
    println!(
        "  {:<28} {mix:>6.0} bytes/series (the exposition's mix: 1 gauge, 1 cpu counter, 24 histogram series a pod)",
        "mix"
    );
}

fn main() {
    println!(
        "bench_collector (single thread){}",
        if cfg!(debug_assertions) {
            " — DEBUG BUILD, use --release"
        } else {
            ""
        }
    );
    bench_exposition();
    bench_exposition_streaming();
    bench_scrape_path();
    bench_scrape_http();
    bench_remote_write();
    bench_otlp();
    bench_memory();
}
