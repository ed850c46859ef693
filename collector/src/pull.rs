//! What the pull sources ([`crate::scrape`], [`crate::query`]) share: the clock they are given,
//! the HTTP client they build, and the delivery of samples into [`Ingest`] in batches the limiter
//! can admit, waiting when it says "slow down" rather than losing the data at once — owned
//! series ([`deliver`]) or a batch borrowed from an exposition text ([`deliver_borrowed`]).

use crate::ingest::{BorrowedBatch, Ingest, PushOutcome, Source, Throttled};
use cellwarden_models::{Series, Timestamp};
use std::time::Duration;

/// The time a live source stamps and schedules by — the receivers' clock type, so the daemon
/// hands one clock to every source. Tests pass their own.
pub use crate::receive::{system_clock, Clock};

/// Most samples per batch handed to [`Ingest::push_series`]. The limiter admits a batch whole or
/// not at all and holds at most one second's worth of tokens, so a batch is also kept to half the
/// configured `max_ingest_samples_per_sec`; 5,000 keeps one scrape of a large exporter in a few
/// batches.
pub const MAX_BATCH_SAMPLES: usize = 5_000;

/// Splits series into batches of at most `max` samples (a longer series is cut into parts).
pub fn batches(series: Vec<Series>, max: usize) -> Vec<Vec<Series>> {
    let max = max.max(1);
    let mut out: Vec<Vec<Series>> = Vec::new();
    let mut current: Vec<Series> = Vec::new();
    let mut room = max;
    for mut s in series {
        while !s.samples.is_empty() {
            if room == 0 {
                out.push(std::mem::take(&mut current));
                room = max;
            }
            let take = s.samples.len().min(room);
            let rest = s.samples.split_off(take);
            room -= take;
            current.push(Series {
                key: s.key.clone(),
                samples: std::mem::replace(&mut s.samples, rest),
            });
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// An HTTP client with `timeout` per request. reqwest is built with `rustls-no-provider`, so the
/// process-wide rustls provider (ring) is installed first when no one has installed one yet.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // `Err` means another thread installed one in between: that is the goal too.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("cellwarden/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// What became of the samples handed to [`deliver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivered {
    /// Stored in the window.
    pub accepted: u64,
    /// Refused one by one (out of order, over the series cap), counted by the ingest.
    pub rejected: u64,
    /// Given up on after the limiter kept refusing for longer than the wait allowed; counted
    /// as rejected with reason `throttled`.
    pub dropped_throttled: u64,
}

/// Pushes `series` in batches the limiter can admit (see [`MAX_BATCH_SAMPLES`]). A throttled
/// batch is retried after the limiter's `Retry-After` until `max_wait` has been spent waiting in
/// total; what is left then is dropped and counted as rejected with reason `throttled` (a pull
/// source must not fall ever further behind).
pub async fn deliver(ingest: &Ingest, source: Source, series: Vec<Series>, clock: &Clock, max_wait: Duration) -> Delivered {
    let parts = batches(series, batch_limit(ingest))
        .into_iter()
        .map(|batch| (batch.iter().map(|s| s.samples.len() as u64).sum(), batch));
    // The limiter consumes the batch even when it refuses it: push a copy, keep the batch for the retry.
    deliver_parts(
        ingest,
        source,
        parts,
        |batch, now| ingest.push_series(source, batch.clone(), now),
        clock,
        max_wait,
    )
    .await
}

/// As [`deliver`], for a [`BorrowedBatch`] (the streaming path of an OpenMetrics scrape): pushed
/// in runs of series ([`BorrowedBatch::parts`]) with [`Ingest::push_borrowed_range`], so nothing
/// is copied, retried and dropped the same way.
pub async fn deliver_borrowed(ingest: &Ingest, source: Source, batch: &BorrowedBatch<'_>, clock: &Clock, max_wait: Duration) -> Delivered {
    let parts = batch
        .parts(batch_limit(ingest))
        .into_iter()
        .map(|range| (batch.samples_in(range.clone()) as u64, range));
    deliver_parts(
        ingest,
        source,
        parts,
        |range, now| ingest.push_borrowed_range(source, batch, range.clone(), now),
        clock,
        max_wait,
    )
    .await
}

/// Samples per batch: [`MAX_BATCH_SAMPLES`], or half the limiter's rate when that is less.
fn batch_limit(ingest: &Ingest) -> usize {
    let per_sec = usize::try_from(ingest.config().max_ingest_samples_per_sec / 2).unwrap_or(usize::MAX);
    MAX_BATCH_SAMPLES.min(per_sec).max(1)
}

/// Pushes each part — (its sample count, what `push` needs to push it) — retrying a throttled
/// one as [`deliver`] describes.
async fn deliver_parts<P>(
    ingest: &Ingest,
    source: Source,
    parts: impl IntoIterator<Item = (u64, P)>,
    mut push: impl FnMut(&P, Timestamp) -> Result<PushOutcome, Throttled>,
    clock: &Clock,
    max_wait: Duration,
) -> Delivered {
    let mut out = Delivered::default();
    let mut waited = Duration::ZERO;
    for (n, part) in parts {
        loop {
            match push(&part, clock()) {
                Ok(o) => {
                    out.accepted += o.accepted;
                    out.rejected += o.rejected;
                    break;
                }
                Err(t) => {
                    let pause = Duration::from_secs(t.retry_after_secs.max(1));
                    if waited + pause > max_wait {
                        ingest.reject(source, "throttled", n);
                        out.dropped_throttled += n;
                        break;
                    }
                    waited += pause;
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::IngestConfig;
    use cellwarden_models::{Sample, SeriesKey, Timestamp};
    use std::sync::Arc;

    fn fixed(ms: i64) -> Clock {
        Arc::new(move || Timestamp(ms))
    }

    fn series(n: usize) -> Vec<Series> {
        (0..n)
            .map(|i| Series {
                key: SeriesKey::new("up", [("i".to_string(), i.to_string())]),
                samples: vec![Sample {
                    t: Timestamp(1000),
                    value: 1.0,
                }],
            })
            .collect()
    }

    #[test]
    fn batches_hold_at_most_max_samples_and_cut_long_series() {
        let long = Series {
            key: SeriesKey::new("m", []),
            samples: (0..7)
                .map(|i| Sample {
                    t: Timestamp(i),
                    value: 0.0,
                })
                .collect(),
        };
        let mut input = series(2);
        input.push(long);
        let b = batches(input, 4);
        let sizes: Vec<usize> = b.iter().map(|x| x.iter().map(|s| s.samples.len()).sum()).collect();
        assert_eq!(sizes, [4, 4, 1]);
        let m: Vec<i64> = b
            .iter()
            .flatten()
            .filter(|s| s.key.metric == "m")
            .flat_map(|s| s.samples.iter().map(|p| p.t.millis()))
            .collect();
        assert_eq!(m, (0..7).collect::<Vec<_>>(), "a cut series keeps its order");
    }

    #[tokio::test]
    async fn large_pushes_are_split_into_batches_the_limiter_admits() {
        let ingest = Ingest::new(IngestConfig::default());
        let d = deliver(&ingest, Source::Scrape, series(12_345), &fixed(1000), Duration::ZERO).await;
        assert_eq!(
            d,
            Delivered {
                accepted: 12_345,
                ..Delivered::default()
            }
        );
        assert_eq!(ingest.with_store(|s| s.series_count()), 12_345);
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_batch_waits_then_is_dropped_and_counted_beyond_the_allowed_wait() {
        // 6,000 samples/s: batches of 3,000 (half the rate). Two pass and empty the bucket; the
        // clock never moves, so it never refills: the third is retried after 1 s three times
        // (the 3 s allowed) and dropped, the fourth is dropped without waiting more.
        let ingest = Ingest::new(IngestConfig {
            max_ingest_samples_per_sec: 6_000,
            ..IngestConfig::default()
        });
        let started = tokio::time::Instant::now();
        let d = deliver(&ingest, Source::Query, series(10_000), &fixed(1000), Duration::from_secs(3)).await;
        assert_eq!(d.accepted, 6_000);
        assert_eq!(d.dropped_throttled, 4_000);
        assert_eq!(started.elapsed(), Duration::from_secs(3), "waited exactly the allowed time");
        assert_eq!(
            ingest.throttled_batches(Source::Query),
            5,
            "4 tries of the third batch, 1 of the fourth"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_borrowed_batch_is_delivered_in_admissible_parts_and_throttled_like_owned_series() {
        // As above, with the series borrowed: 10,000 one-sample series at 6,000 samples/s.
        let names: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
        let mut batch = BorrowedBatch::with_capacity(names.len());
        for n in &names {
            batch.push(
                "up",
                [("i", std::borrow::Cow::Borrowed(n.as_str()))],
                [Sample {
                    t: Timestamp(1000),
                    value: 1.0,
                }],
            );
        }
        let ingest = Ingest::new(IngestConfig {
            max_ingest_samples_per_sec: 6_000,
            ..IngestConfig::default()
        });
        let started = tokio::time::Instant::now();
        let d = deliver_borrowed(&ingest, Source::Scrape, &batch, &fixed(1000), Duration::from_secs(3)).await;
        assert_eq!((d.accepted, d.rejected, d.dropped_throttled), (6_000, 0, 4_000));
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        assert_eq!(ingest.throttled_batches(Source::Scrape), 5);
        let first = SeriesKey::new("up", [("i".to_string(), "0".to_string())]);
        assert_eq!(
            ingest.with_store(|s| s.range(&first, Timestamp(0)).len()),
            1,
            "the first parts were stored"
        );
        assert_eq!(ingest.with_store(|s| s.series_count()), 6_000);

        // Unthrottled, a batch larger than one part is stored whole.
        let ingest = Ingest::new(IngestConfig::default());
        let d = deliver_borrowed(&ingest, Source::Scrape, &batch, &fixed(1000), Duration::ZERO).await;
        assert_eq!(d.accepted, 10_000);
    }
}
