//! Load on remote_write over 127.0.0.1 for about three seconds at ten times
//! `max_ingest_samples_per_sec`, on the wall clock: the limiter answers 429 instead of letting
//! memory grow, the store stays under a bound computed from the config, and every sample of
//! every accepted request is in the store (none of a refused one).
//!
//! The figures are printed (`cargo test -p cellwarden-collector --test receive_load -- --nocapture`).

mod receivers_support;

use cellwarden_collector::ingest::Source;
use cellwarden_collector::receive::{self, ReceiverConfig};
use cellwarden_collector::store::SAMPLES_PER_CHUNK;
use cellwarden_models::{SeriesKey, Timestamp};
use receivers_support::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const RATE: u64 = 10_000;
const SENDERS: usize = 4;
const SERIES_PER_SENDER: usize = 50;
const SAMPLES_PER_SERIES: usize = 10;
/// Samples in one request.
const BATCH: usize = SERIES_PER_SENDER * SAMPLES_PER_SERIES;
const RUN: Duration = Duration::from_secs(3);

fn pod(sender: usize, s: usize) -> String {
    format!("sender-{sender}-pod-{s}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_times_the_rate_is_refused_with_429_and_memory_stays_bounded() {
    let cfg = ReceiverConfig {
        max_ingest_samples_per_sec: RATE,
        ..ReceiverConfig::default()
    };
    let server = Arc::new(Server::start_with(cfg.clone(), Some(receive::system_clock())).await);
    let started = Instant::now();
    // Sample times inside the window the ingest accepts ([now - 1 h, now + 5 min]): each sender's
    // series advance 10 s a request, ~150 requests in 3 s, so 25 min from 55 min ago.
    let t0_ms = (receive::system_clock())().millis() - 55 * 60_000;
    // Each sender owns its series and paces itself to a quarter of 10× the rate.
    let per_sender_interval = Duration::from_secs_f64(BATCH as f64 * SENDERS as f64 / (10 * RATE) as f64);
    let mut tasks = Vec::new();
    for sender in 0..SENDERS {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let c = client();
            let (mut accepted_batches, mut throttled, mut sent) = (Vec::new(), 0u64, 0u64);
            let mut batch_no = 0i64;
            let mut tick = tokio::time::interval(per_sender_interval);
            while started.elapsed() < RUN {
                tick.tick().await;
                let base = t0_ms + batch_no * 1_000 * SAMPLES_PER_SERIES as i64;
                let body = write_body(
                    (0..SERIES_PER_SENDER)
                        .map(|s| {
                            let samples: Vec<_> = (0..SAMPLES_PER_SERIES)
                                .map(|i| (base + i as i64 * 1000, (batch_no * 100 + i as i64) as f64))
                                .collect();
                            series("load_metric", &pod(sender, s), &samples)
                        })
                        .collect(),
                );
                let resp = post_write(&c, &server, body).await;
                sent += BATCH as u64;
                match resp.status().as_u16() {
                    204 => accepted_batches.push(batch_no),
                    429 => {
                        assert!(resp.headers().contains_key("retry-after"));
                        throttled += 1;
                    }
                    other => panic!("unexpected status {other}: {}", resp.text().await.unwrap()),
                }
                batch_no += 1;
            }
            (sender, accepted_batches, throttled, sent)
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let sent: u64 = results.iter().map(|r| r.3).sum();
    let throttled: u64 = results.iter().map(|r| r.2).sum();
    let accepted_batches: usize = results.iter().map(|r| r.1.len()).sum();
    let accepted = (accepted_batches * BATCH) as u64;

    // Every sample of every accepted request is there, and nothing of the refused ones.
    for (sender, batches, _, _) in &results {
        for s in 0..SERIES_PER_SENDER {
            let key = SeriesKey::new("load_metric", [("pod".to_string(), pod(*sender, s))]);
            let got = server.ingest.with_store(|st| st.range(&key, Timestamp(0)));
            let want: Vec<i64> = batches
                .iter()
                .flat_map(|b| (0..SAMPLES_PER_SERIES).map(move |i| t0_ms + b * 10_000 + i as i64 * 1000))
                .collect();
            assert_eq!(
                got.iter().map(|x| x.t.millis()).collect::<Vec<_>>(),
                want,
                "sender {sender} pod {s}"
            );
        }
    }

    // Memory bound from the config: at most RATE·(elapsed + 1 s of burst) samples are admitted;
    // each costs at most 40 bytes in a chunk (145 bits worst case, doubled for Vec growth), each
    // chunk 128 bytes of bookkeeping, each series 512 bytes of key and map entry.
    let series = SENDERS * SERIES_PER_SENDER;
    let max_samples = RATE as f64 * (elapsed + 1.0);
    let max_chunks = series as f64 * (max_samples / series as f64 / SAMPLES_PER_CHUNK as f64).ceil().max(1.0);
    let bound = series as f64 * 512.0 + max_chunks * 128.0 + max_samples * 40.0;
    let memory = server.ingest.with_store(|st| st.memory_bytes());
    let counted_429 = server.ingest.requests_rejected(Source::RemoteWrite, "throttled");

    eprintln!(
        "load: {elapsed:.2} s, offered {sent} samples ({:.0}/s = {:.1}x the limit of {RATE}/s), accepted {accepted} ({:.0}/s), \
         429s {throttled} of {} requests, store {memory} bytes for {series} series ({:.1} bytes/sample), bound {bound:.0} bytes",
        sent as f64 / elapsed,
        sent as f64 / elapsed / RATE as f64,
        accepted as f64 / elapsed,
        sent / BATCH as u64,
        memory as f64 / accepted.max(1) as f64
    );
    assert!(
        sent as f64 / elapsed > 5.0 * RATE as f64,
        "the test offered too little load to mean anything"
    );
    assert!(
        throttled > 0 && counted_429 == throttled,
        "429s sent {throttled}, counted {counted_429}"
    );
    assert!(accepted as f64 <= max_samples, "admitted {accepted} > {max_samples}");
    assert!(
        accepted as f64 >= RATE as f64 * (elapsed - 1.0),
        "the limiter admitted too little: {accepted}"
    );
    assert!((memory as f64) < bound, "store {memory} bytes over the bound {bound:.0}");
}
