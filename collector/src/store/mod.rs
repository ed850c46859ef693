//! The bounded in-memory window the detectors read: per-series compressed chunks with a
//! retention, a cap on the number of series (what is dropped is counted), and an ingest limiter
//! that answers "slow down" (HTTP 429 with Retry-After at the receivers) instead of letting
//! memory grow when ingestion outruns processing.
//!
//! Pure: time comes in with the samples and calls; nothing here reads a clock.

pub mod chunk;

use cellwarden_models::{Sample, SeriesKey, Timestamp};
use chunk::{AppendError, XorChunk};
use hashbrown::{hash_table, HashTable};
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};

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

/// One tracked series.
#[derive(Debug)]
struct Slot {
    /// [`WindowStore::hash_of`] its name and labels, kept so the table never rehashes a key.
    hash: u64,
    key: SeriesKey,
    chunks: VecDeque<XorChunk>,
}

/// The window of every series.
#[derive(Debug, Default)]
pub struct WindowStore {
    config: WindowConfig,
    /// Series found by a hash of their name and labels that is computed the same way from an owned
    /// [`SeriesKey`] or from borrowed strings, so a sample of a known series costs no allocation
    /// ([`WindowStore::append_labels`]). foldhash is seeded per process: senders cannot aim
    /// collisions at it (and the series cap bounds the table anyway).
    series: HashTable<Slot>,
    hasher: foldhash::fast::RandomState,
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

/// What one call appending many samples did: (stored, out of order, dropped by the series cap).
pub type AppendCounts = (u64, u64, u64);

fn labels_eq<A: AsRef<str>, B: AsRef<str>>(key: &SeriesKey, metric: &str, labels: &[(A, B)]) -> bool {
    key.metric == metric
        && key.labels.len() == labels.len()
        && key
            .labels
            .iter()
            .zip(labels)
            .all(|((k, v), (a, b))| k == a.as_ref() && v == b.as_ref())
}

impl WindowStore {
    pub fn new(config: WindowConfig) -> WindowStore {
        WindowStore {
            config,
            ..WindowStore::default()
        }
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// The keys of every tracked series, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &SeriesKey> {
        self.series.iter().map(|s| &s.key)
    }

    /// The hash of a series: its name, then each label name and value, with separators.
    fn hash_of<A: AsRef<str>, B: AsRef<str>>(&self, metric: &str, labels: &[(A, B)]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(metric.as_bytes());
        h.write_u8(0xff);
        for (k, v) in labels {
            h.write(k.as_ref().as_bytes());
            h.write_u8(0xfe);
            h.write(v.as_ref().as_bytes());
            h.write_u8(0xff);
        }
        h.finish()
    }

    /// The chunks of a series, creating it from `make_key` when new (`None` when the cap refuses it).
    fn chunks_for<A: AsRef<str>, B: AsRef<str>>(
        &mut self,
        metric: &str,
        labels: &[(A, B)],
        make_key: impl FnOnce() -> SeriesKey,
    ) -> Option<&mut VecDeque<XorChunk>> {
        let hash = self.hash_of(metric, labels);
        let full = self.series.len() >= self.config.max_series;
        match self.series.entry(hash, |s| labels_eq(&s.key, metric, labels), |s| s.hash) {
            hash_table::Entry::Occupied(o) => Some(&mut o.into_mut().chunks),
            hash_table::Entry::Vacant(_) if full => None,
            hash_table::Entry::Vacant(v) => Some(
                &mut v
                    .insert(Slot {
                        hash,
                        key: make_key(),
                        chunks: VecDeque::new(),
                    })
                    .into_mut()
                    .chunks,
            ),
        }
    }

    /// Appends one sample.
    pub fn append(&mut self, key: &SeriesKey, s: Sample) -> Appended {
        let appended = match self.chunks_for(&key.metric, &key.labels, || key.clone()) {
            Some(chunks) => append_to(chunks, s),
            None => Appended::DroppedCardinality,
        };
        self.count(appended, 1);
        self.counters.series_dropped += u64::from(appended == Appended::DroppedCardinality);
        appended
    }

    /// Appends the samples of one series (in time order), taking the key so a new series costs no
    /// copy of it; one lookup for all of them.
    pub fn append_series(&mut self, key: SeriesKey, samples: &[Sample]) -> AppendCounts {
        let hash = self.hash_of(&key.metric, &key.labels);
        let full = self.series.len() >= self.config.max_series;
        let chunks = match self.series.entry(hash, |s| s.key == key, |s| s.hash) {
            hash_table::Entry::Occupied(o) => &mut o.into_mut().chunks,
            hash_table::Entry::Vacant(_) if full => return self.dropped(samples.len()),
            hash_table::Entry::Vacant(v) => {
                &mut v
                    .insert(Slot {
                        hash,
                        key,
                        chunks: VecDeque::new(),
                    })
                    .into_mut()
                    .chunks
            }
        };
        let counts = append_all(chunks, samples);
        self.tally(counts)
    }

    /// Appends the samples of the series named `metric` with `labels` — sorted by name, unique —
    /// borrowed from wherever they were decoded: a known series is found without allocating; a new
    /// one is created from copies.
    pub fn append_labels<A: AsRef<str>, B: AsRef<str>>(&mut self, metric: &str, labels: &[(A, B)], samples: &[Sample]) -> AppendCounts {
        debug_assert!(
            labels.windows(2).all(|w| w[0].0.as_ref() < w[1].0.as_ref()),
            "labels sorted and unique"
        );
        let make_key = || SeriesKey {
            metric: metric.to_string(),
            labels: labels
                .iter()
                .map(|(a, b)| (a.as_ref().to_string(), b.as_ref().to_string()))
                .collect(),
        };
        self.append_labels_with(metric, labels, samples, make_key)
    }

    fn append_labels_with<A: AsRef<str>, B: AsRef<str>>(
        &mut self,
        metric: &str,
        labels: &[(A, B)],
        samples: &[Sample],
        make_key: impl FnOnce() -> SeriesKey,
    ) -> AppendCounts {
        match self.chunks_for(metric, labels, make_key) {
            Some(chunks) => {
                let counts = append_all(chunks, samples);
                self.tally(counts)
            }
            None => self.dropped(samples.len()),
        }
    }

    fn tally(&mut self, (stored, late): (u64, u64)) -> AppendCounts {
        self.count(Appended::Stored, stored);
        self.count(Appended::OutOfOrder, late);
        (stored, late, 0)
    }

    /// Counts the samples of a series the cap refused.
    fn dropped(&mut self, n: usize) -> AppendCounts {
        let n = n as u64;
        self.count(Appended::DroppedCardinality, n);
        self.counters.series_dropped += u64::from(n > 0);
        (0, 0, n)
    }

    fn count(&mut self, what: Appended, n: u64) {
        match what {
            Appended::Stored => self.counters.samples_appended += n,
            Appended::OutOfOrder => self.counters.samples_out_of_order += n,
            Appended::DroppedCardinality => self.counters.samples_dropped_cardinality += n,
        }
    }

    /// Drops chunks wholly older than the retention before `now`, and series left empty.
    pub fn expire(&mut self, now: Timestamp) {
        let horizon = now.millis() - self.config.retention_secs * 1000;
        self.series.retain(|slot| {
            while slot.chunks.front().is_some_and(|c| c.last_t().is_some_and(|t| t < horizon)) {
                slot.chunks.pop_front();
            }
            !slot.chunks.is_empty()
        });
    }

    /// The samples of `key` from `from` on.
    pub fn range(&self, key: &SeriesKey, from: Timestamp) -> Vec<Sample> {
        let hash = self.hash_of(&key.metric, &key.labels);
        let Some(slot) = self.series.find(hash, |s| s.key == *key) else {
            return Vec::new();
        };
        slot.chunks
            .iter()
            .filter(|c| c.last_t().is_some_and(|t| t >= from.millis()))
            .flat_map(|c| c.samples())
            .filter(|(t, _)| *t >= from.millis())
            .map(|(t, v)| Sample { t: Timestamp(t), value: v })
            .collect()
    }

    /// Bytes of memory the window holds (chunks, keys and the table's entries), approximately.
    pub fn memory_bytes(&self) -> usize {
        self.series
            .iter()
            .map(|slot| {
                let k = &slot.key;
                let key_heap = k.metric.capacity() + k.labels.iter().map(|(a, b)| a.capacity() + b.capacity() + 48).sum::<usize>();
                // The slot itself, a control byte and the table's spare room (it grows at 7/8 full);
                // the chunk ring's buffer, spare slots included; each chunk's encoded bits.
                let ring = slot.chunks.capacity() * std::mem::size_of::<XorChunk>();
                let bits = slot
                    .chunks
                    .iter()
                    .map(|c| c.bytes() - std::mem::size_of::<XorChunk>())
                    .sum::<usize>();
                std::mem::size_of::<Slot>() + 16 + key_heap + ring + bits
            })
            .sum()
    }
}

/// Appends samples in order; returns (stored, out of order).
fn append_all(chunks: &mut VecDeque<XorChunk>, samples: &[Sample]) -> (u64, u64) {
    let mut stored = 0;
    for s in samples {
        stored += u64::from(append_to(chunks, *s) == Appended::Stored);
    }
    (stored, samples.len() as u64 - stored)
}

/// Appends to the last chunk of a series, sealing it (shrunk to fit) and opening a new one when full.
fn append_to(chunks: &mut VecDeque<XorChunk>, s: Sample) -> Appended {
    if chunks.back().is_none_or(|c| c.len() >= SAMPLES_PER_CHUNK) {
        if let Some(sealed) = chunks.back_mut() {
            sealed.shrink_to_fit();
        }
        // One more slot at a time: a series holds a handful of chunks (3 for an hour at 15 s),
        // and the default doubling would leave a chunk's worth of bytes or more unused in each.
        if chunks.len() == chunks.capacity() {
            chunks.reserve_exact(1);
        }
        chunks.push_back(XorChunk::default());
    }
    match chunks.back_mut().expect("a chunk").append(s.t.millis(), s.value) {
        Ok(()) => Appended::Stored,
        Err(AppendError::OutOfOrder { .. }) => Appended::OutOfOrder,
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
