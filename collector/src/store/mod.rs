//! The bounded in-memory window the detectors read: per-series compressed chunks with a
//! retention, a cap on the number of series (what is dropped is counted), and an ingest limiter
//! that answers "slow down" (HTTP 429 with Retry-After at the receivers) instead of letting
//! memory grow when ingestion outruns processing.
//!
//! Pure: time comes in with the samples and calls; nothing here reads a clock.

pub mod chunk;

use cellwarden_models::{Sample, SeriesKey, Timestamp};
use chunk::{AppendError, XorChunk};
use std::collections::{HashMap, VecDeque};

/// Samples per chunk: ~30 min at 15 s, so dropping a whole old chunk frees memory in steps
/// small next to a one-hour window.
pub const SAMPLES_PER_CHUNK: usize = 120;

/// Settings of the window store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowConfig {
    /// How much history each series keeps, seconds.
    pub retention_secs: i64,
    /// Most series tracked; samples of new series beyond it are dropped and counted.
    pub max_series: usize,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            retention_secs: 3600,
            max_series: 100_000,
        }
    }
}

/// What the store has counted (exported as metrics by the daemon).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreCounters {
    pub samples_appended: u64,
    /// Samples of series refused because the cap was reached.
    pub samples_dropped_cardinality: u64,
    /// Series refused because the cap was reached (first sample of each).
    pub series_dropped: u64,
    /// Samples refused for coming before the series' last one.
    pub samples_out_of_order: u64,
}

/// The window of every series.
#[derive(Debug, Default)]
pub struct WindowStore {
    config: WindowConfig,
    series: HashMap<SeriesKey, VecDeque<XorChunk>>,
    pub counters: StoreCounters,
}

/// The result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    Stored,
    /// The series cap was reached and this series is not tracked.
    DroppedCardinality,
    OutOfOrder,
}

impl WindowStore {
    pub fn new(config: WindowConfig) -> WindowStore {
        WindowStore {
            config,
            series: HashMap::new(),
            counters: StoreCounters::default(),
        }
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Appends one sample.
    pub fn append(&mut self, key: &SeriesKey, s: Sample) -> Appended {
        if !self.series.contains_key(key) {
            if self.series.len() >= self.config.max_series {
                self.counters.samples_dropped_cardinality += 1;
                self.counters.series_dropped += 1;
                return Appended::DroppedCardinality;
            }
            self.series.insert(key.clone(), VecDeque::new());
        }
        let chunks = self.series.get_mut(key).expect("inserted");
        if chunks.back().is_none_or(|c| c.len() >= SAMPLES_PER_CHUNK) {
            chunks.push_back(XorChunk::default());
        }
        match chunks.back_mut().expect("a chunk").append(s.t.millis(), s.value) {
            Ok(()) => {
                self.counters.samples_appended += 1;
                Appended::Stored
            }
            Err(AppendError::OutOfOrder { .. }) => {
                self.counters.samples_out_of_order += 1;
                Appended::OutOfOrder
            }
        }
    }

    /// Drops chunks wholly older than the retention before `now`, and series left empty.
    pub fn expire(&mut self, now: Timestamp) {
        let horizon = now.millis() - self.config.retention_secs * 1000;
        self.series.retain(|_, chunks| {
            while chunks.front().is_some_and(|c| c.last_t().is_some_and(|t| t < horizon)) {
                chunks.pop_front();
            }
            !chunks.is_empty()
        });
    }

    /// The samples of `key` from `from` on.
    pub fn range(&self, key: &SeriesKey, from: Timestamp) -> Vec<Sample> {
        let Some(chunks) = self.series.get(key) else { return Vec::new() };
        chunks
            .iter()
            .filter(|c| c.last_t().is_some_and(|t| t >= from.millis()))
            .flat_map(|c| c.samples())
            .filter(|(t, _)| *t >= from.millis())
            .map(|(t, v)| Sample { t: Timestamp(t), value: v })
            .collect()
    }

    /// Bytes of memory the window holds (chunks, keys and the map's entries), approximately.
    pub fn memory_bytes(&self) -> usize {
        self.series
            .iter()
            .map(|(k, chunks)| {
                let key = std::mem::size_of::<SeriesKey>()
                    + k.metric.capacity()
                    + k.labels.iter().map(|(a, b)| a.capacity() + b.capacity() + 48).sum::<usize>();
                key + std::mem::size_of::<VecDeque<XorChunk>>() + chunks.iter().map(XorChunk::bytes).sum::<usize>() + 16
            })
            .sum()
    }
}

/// A token bucket over samples: at most `rate_per_sec` on average, bursts up to one second's worth.
#[derive(Debug, Clone)]
pub struct IngestLimiter {
    rate_per_sec: f64,
    tokens: f64,
    last_ms: Option<i64>,
    /// Samples refused so far (each refusal is a 429 to the sender).
    pub refused: u64,
}

impl IngestLimiter {
    /// `max_ingest_samples_per_sec` from the config.
    pub fn new(rate_per_sec: u64) -> IngestLimiter {
        IngestLimiter {
            rate_per_sec: rate_per_sec as f64,
            tokens: rate_per_sec as f64,
            last_ms: None,
            refused: 0,
        }
    }

    /// Admits `n` samples at `now_ms`, or says after how many seconds to retry.
    pub fn admit(&mut self, n: u64, now_ms: i64) -> Result<(), u64> {
        if let Some(last) = self.last_ms {
            let elapsed = (now_ms - last).max(0) as f64 / 1000.0;
            self.tokens = (self.tokens + elapsed * self.rate_per_sec).min(self.rate_per_sec);
        }
        self.last_ms = Some(now_ms);
        let need = n as f64;
        if need <= self.tokens {
            self.tokens -= need;
            Ok(())
        } else {
            self.refused += n;
            let wait = ((need - self.tokens) / self.rate_per_sec.max(1.0)).ceil().max(1.0);
            Err(wait as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> SeriesKey {
        SeriesKey::new("container_memory_working_set_bytes", [("pod".to_string(), format!("ledger-{i}"))])
    }

    #[test]
    fn one_hour_at_15s_fits_in_a_kilobyte_per_series() {
        let mut st = WindowStore::new(WindowConfig::default());
        for i in 0..240i64 {
            for s in 0..100 {
                let v = 3e8 + ((i * 7919 + s as i64 * 13) % 97) as f64 * 65536.0;
                st.append(
                    &key(s),
                    Sample {
                        t: Timestamp(1_700_000_000_000 + i * 15_000),
                        value: v,
                    },
                );
            }
        }
        let per_series = st.memory_bytes() / st.series_count();
        assert!(per_series <= 1024, "{per_series} bytes per series");
        assert_eq!(st.range(&key(3), Timestamp(0)).len(), 240);
    }

    #[test]
    fn retention_drops_old_chunks_and_empty_series() {
        let mut st = WindowStore::new(WindowConfig {
            retention_secs: 600,
            max_series: 10,
        });
        for i in 0..400i64 {
            st.append(
                &key(0),
                Sample {
                    t: Timestamp(i * 15_000),
                    value: 1.0,
                },
            );
        }
        st.append(
            &key(1),
            Sample {
                t: Timestamp(0),
                value: 1.0,
            },
        );
        st.expire(Timestamp(400 * 15_000));
        assert_eq!(st.series_count(), 1, "the stale series is gone");
        let kept = st.range(&key(0), Timestamp(0));
        assert!(kept.len() < 400 && kept.len() >= 40, "{}", kept.len());
    }

    #[test]
    fn the_series_cap_drops_and_counts_new_series_only() {
        let mut st = WindowStore::new(WindowConfig {
            retention_secs: 600,
            max_series: 2,
        });
        for s in 0..5 {
            st.append(
                &key(s),
                Sample {
                    t: Timestamp(0),
                    value: 1.0,
                },
            );
        }
        assert_eq!(
            st.append(
                &key(0),
                Sample {
                    t: Timestamp(1000),
                    value: 2.0
                }
            ),
            Appended::Stored
        );
        assert_eq!(st.series_count(), 2);
        assert_eq!(st.counters.series_dropped, 3);
        assert_eq!(
            st.append(
                &key(0),
                Sample {
                    t: Timestamp(1000),
                    value: 2.0
                }
            ),
            Appended::OutOfOrder
        );
    }

    #[test]
    fn the_limiter_refuses_beyond_the_rate_and_says_when_to_retry() {
        let mut l = IngestLimiter::new(1000);
        assert!(l.admit(800, 0).is_ok());
        assert_eq!(l.admit(800, 100), Err(1));
        assert_eq!(l.refused, 800);
        assert!(l.admit(800, 1000).is_ok(), "a second later the bucket has refilled");
    }
}
