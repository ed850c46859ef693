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
    /// Most bytes the store holds (keys, label strings, chunks, the table's entries), charged as
    /// allocated; beyond it new series and samples that would grow it are dropped and counted.
    pub max_store_bytes: usize,
}

/// The default byte budget: 100,000 series of an hour at 15 s cost about 1 KiB each with their
/// keys (`one_hour_at_15s_fits_in_a_kilobyte_per_series`), so 192 MiB holds the default
/// `max_series` with room, and stays well under the chart's 512 MiB memory limit beside the
/// span (64 MiB) and alert (8 MiB) rings.
pub const DEFAULT_MAX_STORE_BYTES: usize = 192 << 20;

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            retention_secs: 3600,
            max_series: 100_000,
            max_store_bytes: DEFAULT_MAX_STORE_BYTES,
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
    /// Samples refused because the store held `max_store_bytes`.
    pub samples_dropped_bytes: u64,
    /// Series evicted for having had no sample for a while, to make room under a full cap.
    pub series_evicted_idle: u64,
}

/// One tracked series.
#[derive(Debug)]
struct Slot {
    /// [`WindowStore::hash_of`] its name and labels, kept so the table never rehashes a key.
    hash: u64,
    key: SeriesKey,
    chunks: VecDeque<XorChunk>,
}

/// Bytes one label costs beside its strings' buffers: the `(String, String)` in the key's vector.
const LABEL_ENTRY_BYTES: usize = std::mem::size_of::<(String, String)>();

/// Bytes a slot costs before any chunk: the slot in the table, its control byte and the table's
/// spare room (hashbrown grows at 7/8 full: 16 bytes is a fair share), the key's strings as
/// allocated and its label vector.
fn slot_base_bytes(key: &SeriesKey) -> usize {
    std::mem::size_of::<Slot>()
        + 16
        + key.metric.capacity()
        + key.labels.capacity() * LABEL_ENTRY_BYTES
        + key.labels.iter().map(|(a, b)| a.capacity() + b.capacity()).sum::<usize>()
}

/// As [`slot_base_bytes`], for the key a borrowed name and labels will become (copied exactly).
fn borrowed_base_bytes<A: AsRef<str>, B: AsRef<str>>(metric: &str, labels: &[(A, B)]) -> usize {
    std::mem::size_of::<Slot>()
        + 16
        + metric.len()
        + labels.len() * LABEL_ENTRY_BYTES
        + labels.iter().map(|(a, b)| a.as_ref().len() + b.as_ref().len()).sum::<usize>()
}

/// Heap bytes of a chunk's encoded bits (the chunk struct itself sits in the ring's buffer).
fn chunk_heap(c: &XorChunk) -> usize {
    c.bytes() - std::mem::size_of::<XorChunk>()
}

/// Everything a slot costs: [`slot_base_bytes`], the chunk ring's buffer (spare slots included)
/// and each chunk's bits.
fn slot_bytes(slot: &Slot) -> usize {
    slot_base_bytes(&slot.key)
        + slot.chunks.capacity() * std::mem::size_of::<XorChunk>()
        + slot.chunks.iter().map(chunk_heap).sum::<usize>()
}

/// The most one append can grow a series by: a new chunk's slot in the ring (allowing for one
/// more than asked) and one step of its bit buffer (`BitWriter::GROW_BYTES`, 32, rounded up).
/// A sample is stored only while this much is left under the budget, so the budget holds exactly.
const APPEND_HEADROOM_BYTES: usize = 2 * std::mem::size_of::<XorChunk>() + 64;

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
    /// What every slot costs ([`slot_bytes`]) summed, kept up to date on each change so the
    /// budget is checked in O(1) per sample.
    bytes: usize,
    pub counters: StoreCounters,
}

/// The result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    Stored,
    /// The series cap was reached and this series is not tracked.
    DroppedCardinality,
    /// The store holds `max_store_bytes`: nothing that would grow it is stored.
    DroppedBytes,
    OutOfOrder,
}

/// What one call appending many samples did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppendCounts {
    pub stored: u64,
    /// Not after the series' last sample.
    pub out_of_order: u64,
    /// Of a new series the cap refused.
    pub series_limit: u64,
    /// Refused by the byte budget.
    pub store_bytes: u64,
}

impl std::ops::AddAssign for AppendCounts {
    fn add_assign(&mut self, o: AppendCounts) {
        self.stored += o.stored;
        self.out_of_order += o.out_of_order;
        self.series_limit += o.series_limit;
        self.store_bytes += o.store_bytes;
    }
}

impl AppendCounts {
    /// `n` samples that all came to `what`.
    pub fn of(what: Appended, n: u64) -> AppendCounts {
        let mut c = AppendCounts::default();
        match what {
            Appended::Stored => c.stored = n,
            Appended::OutOfOrder => c.out_of_order = n,
            Appended::DroppedCardinality => c.series_limit = n,
            Appended::DroppedBytes => c.store_bytes = n,
        }
        c
    }
}

fn labels_eq<A: AsRef<str>, B: AsRef<str>>(key: &SeriesKey, metric: &str, labels: &[(A, B)]) -> bool {
    key.metric == metric
        && key.labels.len() == labels.len()
        && key
            .labels
            .iter()
            .zip(labels)
            .all(|((k, v), (a, b))| k == a.as_ref() && v == b.as_ref())
}

/// Where a series' samples go: its chunks and the store's byte total and budget.
struct Target<'a> {
    chunks: &'a mut VecDeque<XorChunk>,
    bytes: &'a mut usize,
    budget: usize,
}

impl Target<'_> {
    /// Appends samples in order, each only while the budget has room for the most it could grow.
    fn append_all(&mut self, samples: &[Sample]) -> AppendCounts {
        let mut counts = AppendCounts::default();
        for s in samples {
            counts += AppendCounts::of(self.append(*s), 1);
        }
        counts
    }

    fn append(&mut self, s: Sample) -> Appended {
        if self.bytes.saturating_add(APPEND_HEADROOM_BYTES) > self.budget {
            return Appended::DroppedBytes;
        }
        let (appended, delta) = append_to(self.chunks, s);
        *self.bytes = self.bytes.saturating_add_signed(delta);
        appended
    }
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

    /// The settings it was made with.
    pub fn config(&self) -> &WindowConfig {
        &self.config
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

    /// Where the samples of a series go, creating it from `make_key` (costing `new_bytes`) when
    /// new; the refusal when the series cap or the byte budget has no room for a new one.
    fn target_for<A: AsRef<str>, B: AsRef<str>>(
        &mut self,
        metric: &str,
        labels: &[(A, B)],
        new_bytes: usize,
        make_key: impl FnOnce() -> SeriesKey,
    ) -> Result<Target<'_>, Appended> {
        let hash = self.hash_of(metric, labels);
        let full = self.series.len() >= self.config.max_series;
        let no_room = self.bytes.saturating_add(new_bytes).saturating_add(APPEND_HEADROOM_BYTES) > self.config.max_store_bytes;
        let budget = self.config.max_store_bytes;
        let chunks = match self.series.entry(hash, |s| labels_eq(&s.key, metric, labels), |s| s.hash) {
            hash_table::Entry::Occupied(o) => &mut o.into_mut().chunks,
            hash_table::Entry::Vacant(_) if full => return Err(Appended::DroppedCardinality),
            hash_table::Entry::Vacant(_) if no_room => return Err(Appended::DroppedBytes),
            hash_table::Entry::Vacant(v) => {
                let key = make_key();
                self.bytes += slot_base_bytes(&key);
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
        Ok(Target {
            chunks,
            bytes: &mut self.bytes,
            budget,
        })
    }

    /// Appends one sample.
    pub fn append(&mut self, key: &SeriesKey, s: Sample) -> Appended {
        let appended = match self.target_for(&key.metric, &key.labels, slot_base_bytes(key), || key.clone()) {
            Ok(mut target) => target.append(s),
            Err(refused) => refused,
        };
        self.count(AppendCounts::of(appended, 1));
        self.counters.series_dropped += u64::from(appended == Appended::DroppedCardinality);
        appended
    }

    /// Appends the samples of one series (in time order), taking the key so a new series costs no
    /// copy of it; one lookup for all of them.
    pub fn append_series(&mut self, key: SeriesKey, samples: &[Sample]) -> AppendCounts {
        let hash = self.hash_of(&key.metric, &key.labels);
        let full = self.series.len() >= self.config.max_series;
        let new_bytes = slot_base_bytes(&key);
        let no_room = self.bytes.saturating_add(new_bytes).saturating_add(APPEND_HEADROOM_BYTES) > self.config.max_store_bytes;
        let target = match self.series.entry(hash, |s| s.key == key, |s| s.hash) {
            hash_table::Entry::Occupied(o) => Ok(&mut o.into_mut().chunks),
            hash_table::Entry::Vacant(_) if full => Err(Appended::DroppedCardinality),
            hash_table::Entry::Vacant(_) if no_room => Err(Appended::DroppedBytes),
            hash_table::Entry::Vacant(v) => {
                self.bytes += new_bytes;
                Ok(&mut v
                    .insert(Slot {
                        hash,
                        key,
                        chunks: VecDeque::new(),
                    })
                    .into_mut()
                    .chunks)
            }
        };
        let target = target.map(|chunks| Target {
            chunks,
            bytes: &mut self.bytes,
            budget: self.config.max_store_bytes,
        });
        let (counts, new_dropped) = Self::fill(target, samples);
        self.counters.series_dropped += new_dropped;
        self.count(counts);
        counts
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
        self.append_labels_with(metric, labels, samples, borrowed_base_bytes(metric, labels), make_key)
    }

    fn append_labels_with<A: AsRef<str>, B: AsRef<str>>(
        &mut self,
        metric: &str,
        labels: &[(A, B)],
        samples: &[Sample],
        new_bytes: usize,
        make_key: impl FnOnce() -> SeriesKey,
    ) -> AppendCounts {
        let target = self.target_for(metric, labels, new_bytes, make_key);
        // `target` borrows the whole store; its outcome is counted once it is done.
        let (counts, new_dropped) = Self::fill(target, samples);
        self.counters.series_dropped += new_dropped;
        self.count(counts);
        counts
    }

    /// Appends `samples` to a target, or counts them as its refusal; returns the counts and
    /// whether a new series was refused by the cap (0 or 1).
    fn fill(target: Result<Target<'_>, Appended>, samples: &[Sample]) -> (AppendCounts, u64) {
        match target {
            Ok(mut target) => (target.append_all(samples), 0),
            Err(refused) => (
                AppendCounts::of(refused, samples.len() as u64),
                u64::from(refused == Appended::DroppedCardinality && !samples.is_empty()),
            ),
        }
    }

    fn count(&mut self, c: AppendCounts) {
        self.counters.samples_appended += c.stored;
        self.counters.samples_out_of_order += c.out_of_order;
        self.counters.samples_dropped_cardinality += c.series_limit;
        self.counters.samples_dropped_bytes += c.store_bytes;
    }

    /// Drops chunks wholly older than the retention before `now`, and series left empty.
    pub fn expire(&mut self, now: Timestamp) {
        let horizon = now.millis() - self.config.retention_secs * 1000;
        let bytes = &mut self.bytes;
        self.series.retain(|slot| {
            while slot.chunks.front().is_some_and(|c| c.last_t().is_some_and(|t| t < horizon)) {
                if let Some(old) = slot.chunks.pop_front() {
                    *bytes -= chunk_heap(&old);
                }
            }
            let keep = !slot.chunks.is_empty();
            if !keep {
                *bytes -= slot_bytes(slot);
            }
            keep
        });
    }

    /// Drops the series whose last sample is before `before_ms` (a target gone, a pod replaced),
    /// to make room for new series when the cap or the budget is reached; returns how many.
    pub fn evict_idle(&mut self, before_ms: i64) -> usize {
        let bytes = &mut self.bytes;
        let n0 = self.series.len();
        self.series.retain(|slot| {
            let idle = slot.chunks.back().and_then(XorChunk::last_t).is_none_or(|t| t < before_ms);
            if idle {
                *bytes -= slot_bytes(slot);
            }
            !idle
        });
        let evicted = n0 - self.series.len();
        self.counters.series_evicted_idle += evicted as u64;
        evicted
    }

    /// Whether a new series would be refused now (by the cap or the byte budget).
    pub fn is_full(&self) -> bool {
        self.series.len() >= self.config.max_series || self.bytes.saturating_add(APPEND_HEADROOM_BYTES) > self.config.max_store_bytes
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

    /// Bytes of memory the window holds — keys and label strings as allocated, chunk rings and
    /// bits, the table's entries — kept as they change (O(1)); never above `max_store_bytes`.
    pub fn memory_bytes(&self) -> usize {
        self.bytes
    }

    /// [`WindowStore::memory_bytes`] counted again over every series (O(series); for tests and
    /// the bench, which check the running total against it).
    pub fn memory_bytes_recounted(&self) -> usize {
        self.series.iter().map(slot_bytes).sum()
    }
}

/// Appends to the last chunk of a series, sealing it (shrunk to fit) and opening a new one when
/// full; returns what became of the sample and how many bytes the series grew (or shrank) by.
fn append_to(chunks: &mut VecDeque<XorChunk>, s: Sample) -> (Appended, isize) {
    let mut delta = 0isize;
    if chunks.back().is_none_or(|c| c.len() >= SAMPLES_PER_CHUNK) {
        if let Some(sealed) = chunks.back_mut() {
            let before = chunk_heap(sealed);
            sealed.shrink_to_fit();
            delta += chunk_heap(sealed) as isize - before as isize;
        }
        // One more slot at a time: a series holds a handful of chunks (3 for an hour at 15 s),
        // and the default doubling would leave a chunk's worth of bytes or more unused in each.
        let cap = chunks.capacity();
        if chunks.len() == cap {
            chunks.reserve_exact(1);
        }
        chunks.push_back(XorChunk::default());
        delta += ((chunks.capacity() - cap) * std::mem::size_of::<XorChunk>()) as isize;
    }
    let last = chunks.back_mut().expect("a chunk");
    let before = chunk_heap(last);
    let appended = match last.append(s.t.millis(), s.value) {
        Ok(()) => Appended::Stored,
        Err(AppendError::OutOfOrder { .. }) => Appended::OutOfOrder,
    };
    delta += chunk_heap(last) as isize - before as isize;
    (appended, delta)
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
            ..WindowConfig::default()
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
            ..WindowConfig::default()
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
    fn the_running_byte_total_matches_a_recount_through_appends_expiry_and_eviction() {
        let mut st = WindowStore::new(WindowConfig {
            retention_secs: 600,
            max_series: 1000,
            ..WindowConfig::default()
        });
        for i in 0..500i64 {
            for s in 0..20usize {
                if (i + s as i64) % 7 == 0 {
                    continue; // gaps, so series end at different times
                }
                let labels = [("pod".to_string(), format!("ledger-{s}")), ("zone".to_string(), "z".repeat(s * 10))];
                let key = SeriesKey::new("mem", labels);
                let sample = |t| Sample {
                    t: Timestamp(t),
                    value: (i * s as i64) as f64,
                };
                st.append(&key, sample(i * 15_000));
                st.append(&key, sample(i * 15_000 - 1)); // out of order: no growth
            }
            if i % 50 == 0 {
                st.expire(Timestamp(i * 15_000));
            }
        }
        assert_eq!(st.memory_bytes(), st.memory_bytes_recounted());
        st.append_labels(
            "other",
            &[("a", "b")],
            &[Sample {
                t: Timestamp(1),
                value: 1.0,
            }],
        );
        st.append_series(
            SeriesKey::new("third", []),
            &[Sample {
                t: Timestamp(1),
                value: 1.0,
            }],
        );
        assert_eq!(st.memory_bytes(), st.memory_bytes_recounted());
        assert_eq!(st.evict_idle(2), 2, "the two series last seen at 1 ms");
        assert_eq!(st.memory_bytes(), st.memory_bytes_recounted());
        st.expire(Timestamp(10_000_000));
        assert_eq!((st.series_count(), st.memory_bytes()), (0, 0));
    }

    #[test]
    fn series_with_large_labels_stay_within_the_byte_budget() {
        let budget = 4 << 20;
        let mut st = WindowStore::new(WindowConfig {
            retention_secs: 3600,
            max_series: 100_000,
            max_store_bytes: budget,
        });
        let big = "v".repeat(100_000);
        let mut refused = 0;
        for s in 0..100 {
            let key = SeriesKey::new("m", [("pod".to_string(), format!("{s}{big}"))]);
            for i in 0..10 {
                if st.append(
                    &key,
                    Sample {
                        t: Timestamp(i * 1000),
                        value: 1.0,
                    },
                ) == Appended::DroppedBytes
                {
                    refused += 1;
                }
                assert!(st.memory_bytes() <= budget, "{} > {budget}", st.memory_bytes());
            }
        }
        assert_eq!(st.memory_bytes(), st.memory_bytes_recounted());
        assert!(st.memory_bytes() > budget - 200_000, "filled up to the last series that fit");
        assert!(
            (39..=41).contains(&st.series_count()),
            "about 4 MiB / 100 kB: {}",
            st.series_count()
        );
        assert_eq!(refused, (100 - st.series_count() as u64) * 10);
        assert_eq!(st.counters.samples_dropped_bytes, refused);
        // A known series still takes samples while its chunk has room (no growth past the budget).
        let key = SeriesKey::new("m", [("pod".to_string(), format!("0{big}"))]);
        assert_eq!(
            st.append(
                &key,
                Sample {
                    t: Timestamp(20_000),
                    value: 2.0
                }
            ),
            Appended::Stored
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
