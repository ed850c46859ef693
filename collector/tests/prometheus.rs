//! The pull side against a real Prometheus (Debian's `prometheus` 2.42): Prometheus scrapes a
//! test target whose values we know, and our query source reads them back; our scraper reads the
//! same target in both text formats; Prometheus remote-writes to our receivers and to `record`.
//!
//! These tests need `prometheus`; `scripts/test.sh` installs it. Without it they fail and say so.

mod prometheus_support;
mod receivers_support;

use cellwarden_collector::convert::{bucket_quantile, Bucket};
use cellwarden_collector::ingest::{Ingest, IngestConfig};
use cellwarden_collector::pull::{system_clock, Clock};
use cellwarden_collector::query::{PromClient, QueryConfig, QuerySource, QuerySpec};
use cellwarden_collector::receive::ReceiverConfig;
use cellwarden_collector::record::record_receivers;
use cellwarden_collector::scrape::{self, Format, ScrapeConfig, Scraper};
use cellwarden_models::{Family, MetricType, Series, Timestamp};
use prometheus_support::{buckets, free_port, scrape_config, Prometheus, Target as DemoTarget};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn series<'a>(fams: &'a [Family], metric: &str, code: &str) -> &'a Series {
    fams.iter()
        .flat_map(|f| f.series.iter())
        .find(|s| s.key.metric == metric && s.key.label("code") == Some(code))
        .unwrap_or_else(|| {
            panic!(
                "no {metric}{{code={code}}} among {:?}",
                fams.iter().map(|f| &f.name).collect::<Vec<_>>()
            )
        })
}

/// The `demo_requests_total{code="200"}` values a target served, in order.
fn served_200(target: &DemoTarget) -> Vec<f64> {
    target.steps().iter().map(|n| 10.0 * *n as f64).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_our_target_and_the_query_source_reads_back_what_it_served() {
    let target = DemoTarget::start(None).await;
    let prom = Prometheus::start(&scrape_config(target.addr, ""), None);
    target.wait_served(6, Duration::from_secs(40)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // the last scrape is committed
    let clock = system_clock();
    let now = clock();
    let client = PromClient::new(&prom.url, Duration::from_secs(10), None).unwrap();

    // Raw samples: exactly what the target served, scrape after scrape.
    let raw = client
        .query_raw(r#"{__name__="demo_requests_total",code="200"}"#, now.plus_secs(-300), now)
        .await
        .unwrap();
    assert_eq!(raw.len(), 1, "{raw:?}");
    let key = &raw[0].key;
    assert_eq!(key.label("job"), Some("demo"));
    assert_eq!(key.label("instance"), Some(target.addr.to_string().as_str()));
    assert_eq!(key.label("path"), Some("/pay,now=1"));
    let values: Vec<f64> = raw[0].samples.iter().map(|s| s.value).collect();
    let served = served_200(&target);
    assert!(values.len() >= 5, "{values:?}");
    assert_eq!(values[..], served[..values.len()], "raw samples are the served sequence");

    // The query source (query_range) into the ingest: every step shows a value the target served,
    // and both series of one step come from the same scrape.
    let source = QuerySource::new(QueryConfig {
        url: prom.url.clone(),
        queries: vec![QuerySpec {
            name: "wallet_requests".into(),
            promql: "demo_requests_total".into(),
        }],
        step_secs: 1,
        backfill_secs: 60,
        interval_secs: 5,
        timeout_secs: 10,
        bearer_token_file: None,
    })
    .unwrap();
    let ingest = Ingest::new(IngestConfig::default());
    let (first, last) = (raw[0].samples[0].t, raw[0].samples.last().unwrap().t);
    let report = source.poll(&ingest, first, last, &clock).await;
    assert_eq!(report.failed_queries, 0);
    let fams = ingest.families(Timestamp(0));
    assert_eq!(fams.len(), 1);
    assert_eq!(fams[0].name, "wallet_requests");
    assert_eq!(fams[0].series.len(), 2, "code 200 and 500");
    let ok = series(&fams, "wallet_requests", "200");
    let errors = series(&fams, "wallet_requests", "500");
    assert_eq!(ok.samples.len(), errors.samples.len());
    assert!(ok.samples.len() as i64 >= last.secs_since(first) as i64, "one point per step");
    for (a, b) in ok.samples.iter().zip(&errors.samples) {
        assert_eq!(a.t, b.t);
        assert!(served.contains(&a.value), "{} was never served ({served:?})", a.value);
        assert_eq!(a.value, 10.0 * b.value, "the same scrape at {}", a.t);
    }
    let distinct: std::collections::BTreeSet<u64> = ok.samples.iter().map(|s| s.value as u64).collect();
    assert!(distinct.len() >= 4, "the counter grew: {distinct:?}");

    // Prometheus' histogram_quantile and ours agree on the buckets served at the last scrape.
    let n = (values.last().unwrap() / 10.0) as u64;
    let ours: Vec<Bucket> = buckets(n)
        .into_iter()
        .map(|(upper_bound, count)| Bucket { upper_bound, count })
        .collect();
    for q in [0.25, 0.5, 0.75, 0.9, 0.99] {
        let promql = format!("histogram_quantile({q}, demo_latency_seconds_bucket)");
        let theirs = client.query_range(&promql, last, last, 1, Some("q")).await.unwrap();
        let theirs = theirs[0].samples[0].value;
        let mine = bucket_quantile(q, &ours).unwrap();
        assert!((theirs - mine).abs() < 1e-12, "q={q}: Prometheus {theirs}, ours {mine}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_scraper_reads_the_same_series_in_text_and_openmetrics() {
    let target = DemoTarget::start(Some(7)).await;
    let t = Timestamp(1_772_400_000_000);
    let clock: Clock = Arc::new(move || t);
    let mut results = Vec::new();
    for (prefer_openmetrics, format) in [(true, Format::OpenMetrics), (false, Format::Text)] {
        let scraper = Scraper::new(ScrapeConfig {
            prefer_openmetrics,
            ..ScrapeConfig::default()
        })
        .unwrap();
        let scraped = scraper.scrape(&target.url(), t).await.unwrap();
        assert_eq!(scraped.format, format, "content negotiation");
        let ingest = Ingest::new(IngestConfig::default());
        let tgt = scrape::Target::new(&target.url(), "demo", []);
        let stored = scraper.scrape_into(&tgt, &ingest, &clock).await.unwrap();
        assert_eq!(stored, 9, "2 counters, 4 buckets, sum, count, a gauge");
        results.push(ingest.families(Timestamp(0)));
    }
    assert_eq!(results[0], results[1], "OpenMetrics and text 0.0.4 give the same families");
    let fams = &results[0];
    let kinds: Vec<(&str, MetricType)> = fams.iter().map(|f| (f.name.as_str(), f.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("demo_latency_seconds", MetricType::Histogram),
            ("demo_requests", MetricType::Counter),
            ("demo_temperature_celsius", MetricType::Gauge)
        ]
    );
    assert_eq!(fams[1].help.as_deref(), Some("Requests served, by code \\ path."));
    let ok = series(fams, "demo_requests_total", "200");
    assert_eq!(ok.samples.len(), 1);
    assert_eq!(
        (ok.samples[0].t, ok.samples[0].value),
        (t, 70.0),
        "step 7, stamped with the scrape time"
    );
    assert_eq!(ok.key.label("path"), Some("/pay,now=1"));
    assert_eq!(ok.key.label("job"), Some("demo"));
    assert_eq!(ok.key.label("instance"), Some(target.addr.to_string().as_str()));
    let room = &fams[2].series[0];
    assert_eq!(room.key.label("room"), Some("a \"big\" one"));
    assert_eq!(room.samples[0].value, 21.5);
    let inf = fams[0].series.iter().find(|s| s.key.label("le") == Some("+Inf")).unwrap();
    assert_eq!(inf.samples[0].value, 70.0);
    assert_eq!(
        target.served.lock().unwrap().iter().map(|(_, om)| *om).collect::<Vec<_>>(),
        [true, true, false, false]
    );
}

/// Polls `check` every 200 ms until it returns `Some`, failing after `limit` with `what`.
async fn eventually<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(started.elapsed() < limit, "{what} did not happen within {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn remote_write_to(url: &str) -> String {
    format!(
        "remote_write:\n  - url: {url}\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 1s\n    metadata_config:\n      send_interval: 1s\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_remote_write_delivers_the_scraped_series_into_the_ingest() {
    let target = DemoTarget::start(None).await;
    let server = receivers_support::Server::start_with(ReceiverConfig::default(), Some(system_clock())).await;
    let _prom = Prometheus::start(&scrape_config(target.addr, &remote_write_to(&server.url("/api/v1/write"))), None);
    let ingest = server.ingest.clone();
    let fams = eventually(
        Duration::from_secs(60),
        "4 remote-written samples and the counter's metadata",
        || {
            let fams = ingest.families(Timestamp(0));
            let enough = fams
                .iter()
                .any(|f| f.name == "demo_requests" && f.kind == MetricType::Counter && f.series.iter().all(|s| s.samples.len() >= 4));
            enough.then_some(fams)
        },
    )
    .await;
    let ok = series(&fams, "demo_requests_total", "200");
    let values: Vec<f64> = ok.samples.iter().map(|s| s.value).collect();
    let served = served_200(&target);
    assert_eq!(values[..], served[..values.len()], "remote-written samples are the served sequence");
    assert_eq!(ok.key.label("job"), Some("demo"));
    let hist = fams
        .iter()
        .find(|f| f.name == "demo_latency_seconds")
        .expect("the histogram arrived");
    assert_eq!(hist.kind, MetricType::Histogram);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_from_a_listen_address_keeps_what_prometheus_remote_writes() {
    let target = DemoTarget::start(None).await;
    let port = free_port();
    let cfg = ReceiverConfig {
        listen: ([127, 0, 0, 1], port).into(),
        ..ReceiverConfig::default()
    };
    let recording = tokio::spawn(async move { record_receivers(&cfg, Duration::from_secs(10), system_clock(), &mut |_, _| {}).await });
    let _prom = Prometheus::start(
        &scrape_config(target.addr, &remote_write_to(&format!("http://127.0.0.1:{port}/api/v1/write"))),
        None,
    );
    let fx = recording.await.unwrap().unwrap();
    let fams = &fx.metrics.families;
    let ok = series(fams, "demo_requests_total", "200");
    let values: Vec<f64> = ok.samples.iter().map(|s| s.value).collect();
    let served = served_200(&target);
    assert!(values.len() >= 3, "{values:?}");
    assert_eq!(values[..], served[..values.len()]);
    let kinds: Vec<(&str, MetricType)> = fams
        .iter()
        .filter(|f| f.name.starts_with("demo_"))
        .map(|f| (f.name.as_str(), f.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("demo_latency_seconds", MetricType::Histogram),
            ("demo_requests", MetricType::Counter),
            ("demo_temperature_celsius", MetricType::Gauge)
        ],
        "types from remote_write metadata or inferred"
    );
    assert!(fx.truth.as_ref().unwrap().faults.is_empty());
}
