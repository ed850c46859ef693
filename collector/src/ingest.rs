//! The shared sink every live source writes into: pushed receivers (remote_write, OTLP, Zipkin,
//! Alertmanager) and pulled sources (scrape, Prometheus query) alike.
//!
//! Layout of [`Ingest`]:
//! - the [`WindowStore`] behind a mutex, fed whole batches after the [`IngestLimiter`] admits them
//!   (a refused batch leaves the store untouched: the sender retries it whole);
//! - metric metadata (`# TYPE`/`# HELP`, remote_write metadata) so [`Ingest::families`] can hand the
//!   window back as [`Family`]s;
//! - a bounded ring of spans and one of alerts, each entry with a sequence number, read through a
//!   cursor ([`Ingest::spans_after`]); when a reader falls behind the ring drops the oldest and counts;
//! - counters and gauges exported with `prometheus-client` ([`Ingest::register_metrics`]).
//!
//! No clock is read here: every call that needs time takes `now`.

use crate::limits::{self, IngestLimits, Refused};
use crate::store::{AppendCounts, IngestLimiter, WindowConfig, WindowStore};
use cellwarden_models::{Family, MetricType, Sample, Series, SeriesKey, Span, Timestamp};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family as MetricFamily;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};

/// Where a batch came from; a label on every ingest metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Prometheus remote_write (`POST /api/v1/write`).
    RemoteWrite,
    /// OTLP/HTTP traces (`POST /v1/traces`).
    Otlp,
    /// Zipkin v2 JSON (`POST /api/v2/spans`).
    Zipkin,
    /// Alertmanager webhook (`POST /api/v1/alerts`).
    Alertmanager,
    /// Our own scrape of a `/metrics` endpoint.
    Scrape,
    /// The Prometheus HTTP query API (backfill).
    Query,
}

impl Source {
    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::RemoteWrite => "remote_write",
            Source::Otlp => "otlp",
            Source::Zipkin => "zipkin",
            Source::Alertmanager => "alertmanager",
            Source::Scrape => "scrape",
            Source::Query => "query",
        }
    }
}

pub use cellwarden_models::alert::{Alert, AlertStatus};

/// Settings of the sink.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IngestConfig {
    /// Retention and series cap of the window store.
    pub window: WindowConfig,
    /// Average samples per second admitted over all sources (bursts up to one second's worth);
    /// beyond it batches are refused with a retry-after.
    pub max_ingest_samples_per_sec: u64,
    /// Average spans per second admitted over all sources (bursts up to one second's worth).
    pub max_ingest_spans_per_sec: u64,
    /// Spans kept for the pipeline to read. Sized for a few seconds of traffic between two reads
    /// of the pipeline; beyond it the oldest are dropped and counted.
    pub max_spans_buffered: usize,
    /// Alerts kept for the pipeline to read (alerts are few; the ring only bounds a storm).
    pub max_alerts_buffered: usize,
    /// Bytes the span ring may hold, each span charged at [`limits::span_bytes`]; beyond it the
    /// oldest are evicted (and counted) as beyond `max_spans_buffered`.
    pub max_spans_buffered_bytes: usize,
    /// Bytes the alert ring may hold ([`limits::alert_bytes`]), as for spans.
    pub max_alerts_buffered_bytes: usize,
    /// What one series, sample, span or alert may hold.
    pub limits: IngestLimits,
}

/// Default byte budget of the span ring: 200,000 spans of ~300 bytes (a reduced span keeps its ids,
/// name, resource and six attributes at most) fit in 64 MiB.
pub const DEFAULT_MAX_SPANS_BUFFERED_BYTES: usize = 64 << 20;

/// Default byte budget of the alert ring: 10,000 alerts of ~800 bytes (labels, a summary and a
/// description) fit in 8 MiB.
pub const DEFAULT_MAX_ALERTS_BUFFERED_BYTES: usize = 8 << 20;

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            window: WindowConfig::default(),
            max_ingest_samples_per_sec: 1_000_000,
            max_ingest_spans_per_sec: 100_000,
            max_spans_buffered: 200_000,
            max_alerts_buffered: 10_000,
            max_spans_buffered_bytes: DEFAULT_MAX_SPANS_BUFFERED_BYTES,
            max_alerts_buffered_bytes: DEFAULT_MAX_ALERTS_BUFFERED_BYTES,
            limits: IngestLimits::default(),
        }
    }
}

/// A batch refused by the limiter; nothing of it was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ingest rate limit reached; retry after {retry_after_secs} s")]
pub struct Throttled {
    /// When the sender should try again (HTTP `Retry-After`).
    pub retry_after_secs: u64,
}

/// What became of an admitted batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PushOutcome {
    /// Items stored.
    pub accepted: u64,
    /// Items of the batch not stored one by one (a sample out of order, over the series cap or
    /// the byte budget, past a limit); counted by reason in the metrics.
    pub rejected: u64,
    /// Older buffered items the ring evicted to make room (spans only).
    pub evicted: u64,
}

/// A label borrowed from a request or text; the value owned only when it had to be unescaped.
pub type BorrowedLabel<'a> = (&'a str, Cow<'a, str>);

/// Samples of many series whose names and labels are borrowed (from a request buffer or an
/// exposition text), in flat vectors: the allocation-free path into the store for series it
/// already knows ([`Ingest::push_borrowed`]). Label values are `Cow` so unescaped ones can be owned.
#[derive(Debug, Default, Clone)]
pub struct BorrowedBatch<'a> {
    labels: Vec<BorrowedLabel<'a>>,
    samples: Vec<Sample>,
    /// (metric, range in `labels`, range in `samples`) per series.
    series: Vec<(&'a str, Range<usize>, Range<usize>)>,
}

impl<'a> BorrowedBatch<'a> {
    /// An empty batch with room for `series` series.
    pub fn with_capacity(series: usize) -> BorrowedBatch<'a> {
        BorrowedBatch {
            labels: Vec::with_capacity(series * 4),
            samples: Vec::with_capacity(series),
            series: Vec::with_capacity(series),
        }
    }

    /// Adds a series; its labels are sorted by name here (as [`SeriesKey::new`] does).
    pub fn push(
        &mut self,
        metric: &'a str,
        labels: impl IntoIterator<Item = BorrowedLabel<'a>>,
        samples: impl IntoIterator<Item = Sample>,
    ) {
        let l0 = self.labels.len();
        self.labels.extend(labels);
        self.labels[l0..].sort_unstable_by(|a, b| a.0.cmp(b.0).then_with(|| a.1.cmp(&b.1)));
        let s0 = self.samples.len();
        self.samples.extend(samples);
        self.series.push((metric, l0..self.labels.len(), s0..self.samples.len()));
    }

    /// Samples over all series.
    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }

    /// Series in the batch.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Each series: name, labels sorted by name, samples.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &[BorrowedLabel<'a>], &[Sample])> {
        self.iter_range(0..self.series.len())
    }

    /// As [`BorrowedBatch::iter`], for the series at positions `series` (clamped to the batch).
    pub fn iter_range(&self, series: Range<usize>) -> impl Iterator<Item = (&'a str, &[BorrowedLabel<'a>], &[Sample])> {
        let end = series.end.min(self.series.len());
        self.series[series.start.min(end)..end]
            .iter()
            .map(|(m, l, s)| (*m, &self.labels[l.clone()], &self.samples[s.clone()]))
    }

    /// Samples of the series at positions `series` (clamped to the batch).
    pub fn samples_in(&self, series: Range<usize>) -> usize {
        let end = series.end.min(self.series.len());
        self.series[series.start.min(end)..end].iter().map(|(_, _, s)| s.len()).sum()
    }

    /// Cuts the batch into consecutive runs of series of at most `max_samples` samples each, for a
    /// limiter that admits a batch whole or not at all. A series is never cut: one holding more
    /// than `max_samples` is a run of its own (a scrape's series hold one sample each).
    pub fn parts(&self, max_samples: usize) -> Vec<Range<usize>> {
        let max = max_samples.max(1);
        let mut out = Vec::with_capacity(self.samples.len() / max + 1);
        let (mut start, mut room) = (0, max);
        for (i, (_, _, s)) in self.series.iter().enumerate() {
            if s.len() > room && i > start {
                out.push(start..i);
                (start, room) = (i, max);
            }
            room = room.saturating_sub(s.len());
        }
        if start < self.series.len() {
            out.push(start..self.series.len());
        }
        out
    }
}

/// A ring with sequence numbers, read through cursors, bounded in items and in bytes.
#[derive(Debug)]
struct Ring<T> {
    /// Each item with what it was charged.
    items: VecDeque<(T, usize)>,
    /// Sequence number of `items[0]`.
    first_seq: u64,
    cap: usize,
    /// What the items were charged, summed; at most `max_bytes`.
    bytes: usize,
    max_bytes: usize,
}

/// What a push into a [`Ring`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct RingPush {
    /// Items buffered.
    accepted: u64,
    /// Older items evicted to make room.
    evicted: u64,
    /// Items larger than the whole byte budget, not buffered.
    too_large: u64,
}

impl<T: Clone> Ring<T> {
    fn new(cap: usize, max_bytes: usize) -> Ring<T> {
        Ring {
            items: VecDeque::new(),
            first_seq: 0,
            cap: cap.max(1),
            bytes: 0,
            max_bytes,
        }
    }

    /// Appends, each item charged `size(item)` bytes, evicting the oldest beyond the cap or the
    /// byte budget; an item larger than the whole budget is refused.
    fn push_all(&mut self, new: impl IntoIterator<Item = T>, size: impl Fn(&T) -> usize) -> RingPush {
        let mut out = RingPush::default();
        for item in new {
            let n = size(&item);
            if n > self.max_bytes {
                out.too_large += 1;
                continue;
            }
            while self.items.len() >= self.cap || self.bytes + n > self.max_bytes {
                let Some((_, old)) = self.items.pop_front() else { break };
                self.bytes -= old;
                self.first_seq += 1;
                out.evicted += 1;
            }
            self.items.push_back((item, n));
            self.bytes += n;
            out.accepted += 1;
        }
        out
    }

    fn next_seq(&self) -> u64 {
        self.first_seq + self.items.len() as u64
    }

    fn after(&self, cursor: u64) -> (Vec<T>, u64) {
        let skip = cursor.saturating_sub(self.first_seq) as usize;
        (self.items.iter().skip(skip).map(|(t, _)| t.clone()).collect(), self.next_seq())
    }
}

/// What a batch of samples came to, by outcome: stored, or refused for a reason.
#[derive(Debug, Default)]
struct Tally {
    stored: u64,
    refused: BTreeMap<Refused, u64>,
}

impl Tally {
    fn refuse(&mut self, why: Refused, n: u64) {
        if n > 0 {
            *self.refused.entry(why).or_default() += n;
        }
    }

    fn add(&mut self, c: AppendCounts) {
        self.stored += c.stored;
        self.refuse(Refused::OutOfOrder, c.out_of_order);
        self.refuse(Refused::SeriesLimit, c.series_limit);
        self.refuse(Refused::StoreBytes, c.store_bytes);
    }

    fn refused_total(&self) -> u64 {
        self.refused.values().sum()
    }
}

/// The checks every sample passes before the store sees it.
#[derive(Debug, Clone, Copy)]
struct Checks {
    limits: IngestLimits,
    now: Timestamp,
    retention_secs: i64,
}

impl Checks {
    /// The samples of a series that may be stored (borrowed when all may, the common case);
    /// `None` when the series itself is refused. What is refused is tallied.
    fn admit<'s, A: AsRef<str>, B: AsRef<str>>(
        &self,
        metric: &str,
        labels: &[(A, B)],
        samples: &'s [Sample],
        tally: &mut Tally,
    ) -> Option<Cow<'s, [Sample]>> {
        if let Err(why) = self.limits.check_series(metric, labels) {
            tally.refuse(why, samples.len() as u64);
            return None;
        }
        let ok = |s: &Sample| limits::check_sample(*s, self.now, self.retention_secs);
        if samples.iter().all(|s| ok(s).is_ok()) {
            return Some(Cow::Borrowed(samples));
        }
        let mut kept = Vec::with_capacity(samples.len());
        for s in samples {
            match ok(s) {
                Ok(()) => kept.push(*s),
                Err(why) => tally.refuse(why, 1),
            }
        }
        Some(Cow::Owned(kept))
    }
}

type SourceLabels = [(&'static str, &'static str); 1];
type ReasonLabels = [(&'static str, &'static str); 2];
type TargetLabels = [(&'static str, String); 1];

/// The sink's metrics (cheap clones share the same values, as prometheus-client metrics do).
#[derive(Debug, Clone)]
struct Metrics {
    samples_accepted: MetricFamily<SourceLabels, Counter>,
    samples_rejected: MetricFamily<ReasonLabels, Counter>,
    spans_accepted: MetricFamily<SourceLabels, Counter>,
    spans_rejected: MetricFamily<ReasonLabels, Counter>,
    alerts_accepted: Counter,
    throttled_batches: MetricFamily<SourceLabels, Counter>,
    requests_rejected: MetricFamily<ReasonLabels, Counter>,
    spans_dropped: Counter,
    alerts_dropped: Counter,
    alerts_rejected: MetricFamily<[(&'static str, &'static str); 1], Counter>,
    series_evicted_idle: Counter,
    spans_buffered_bytes: Gauge,
    alerts_buffered_bytes: Gauge,
    series_tracked: Gauge,
    store_memory_bytes: Gauge,
    spans_buffered: Gauge,
    alerts_buffered: Gauge,
    scrape_duration: MetricFamily<TargetLabels, Histogram, fn() -> Histogram>,
    scrapes_failed: MetricFamily<TargetLabels, Counter>,
}

fn scrape_histogram() -> Histogram {
    // 5 ms .. ~20 s: a scrape slower than the interval shows in the top buckets.
    Histogram::new(exponential_buckets(0.005, 2.0, 12))
}

impl Metrics {
    fn new() -> Metrics {
        Metrics {
            samples_accepted: MetricFamily::default(),
            samples_rejected: MetricFamily::default(),
            spans_accepted: MetricFamily::default(),
            spans_rejected: MetricFamily::default(),
            alerts_accepted: Counter::default(),
            throttled_batches: MetricFamily::default(),
            requests_rejected: MetricFamily::default(),
            spans_dropped: Counter::default(),
            alerts_dropped: Counter::default(),
            alerts_rejected: MetricFamily::default(),
            series_evicted_idle: Counter::default(),
            spans_buffered_bytes: Gauge::default(),
            alerts_buffered_bytes: Gauge::default(),
            series_tracked: Gauge::default(),
            store_memory_bytes: Gauge::default(),
            spans_buffered: Gauge::default(),
            alerts_buffered: Gauge::default(),
            scrape_duration: MetricFamily::new_with_constructor(scrape_histogram),
            scrapes_failed: MetricFamily::default(),
        }
    }
}

/// How often (of the callers' `now`) the store drops expired chunks while being written.
const EXPIRE_EVERY_MS: i64 = 10_000;

/// A series with no sample for this long is evicted when the cap or the byte budget refuses a new
/// one: Prometheus' staleness delta (5 min), after which PromQL no longer sees the series either.
/// So a full store refuses new series for at most this long (plus [`EXPIRE_EVERY_MS`]) instead of
/// the whole retention.
pub const IDLE_SERIES_EVICT_MS: i64 = 5 * 60 * 1000;

/// Warnings about a full store are logged at most this often (the counters count every refusal).
const FULL_WARNING_EVERY_MS: i64 = 60_000;

/// The window store's state that changes together.
#[derive(Debug)]
struct StoreState {
    store: WindowStore,
    limiter: IngestLimiter,
    /// When `expire` last ran.
    last_expire_ms: i64,
    /// When idle series were last evicted to make room.
    last_evict_ms: i64,
    /// When a full store was last logged.
    last_full_warning_ms: i64,
}

/// The shared sink; share it as `Arc<Ingest>`.
#[derive(Debug)]
pub struct Ingest {
    config: IngestConfig,
    state: Mutex<StoreState>,
    span_limiter: Mutex<IngestLimiter>,
    /// Metric family name → (type, help), from `# TYPE`/`# HELP` lines and remote_write metadata.
    metadata: Mutex<HashMap<String, (MetricType, String)>>,
    spans: Mutex<Ring<Span>>,
    alerts: Mutex<Ring<Alert>>,
    metrics: Metrics,
}

/// Locks, recovering from a poisoned mutex: the data behind it stays consistent because every
/// critical section here either completes or changes nothing before it could panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Ingest {
    /// An empty sink.
    pub fn new(cfg: IngestConfig) -> Ingest {
        Ingest {
            config: cfg,
            state: Mutex::new(StoreState {
                store: WindowStore::new(cfg.window),
                limiter: IngestLimiter::new(cfg.max_ingest_samples_per_sec),
                last_expire_ms: i64::MIN,
                last_evict_ms: i64::MIN,
                last_full_warning_ms: i64::MIN,
            }),
            span_limiter: Mutex::new(IngestLimiter::new(cfg.max_ingest_spans_per_sec)),
            metadata: Mutex::new(HashMap::new()),
            spans: Mutex::new(Ring::new(cfg.max_spans_buffered, cfg.max_spans_buffered_bytes)),
            alerts: Mutex::new(Ring::new(cfg.max_alerts_buffered, cfg.max_alerts_buffered_bytes)),
            metrics: Metrics::new(),
        }
    }

    /// The settings it was made with.
    pub fn config(&self) -> &IngestConfig {
        &self.config
    }

    /// Stores a batch of samples. The whole batch is admitted or refused ([`Throttled`]) — never
    /// half-stored. Of an admitted batch, samples that fail a check (see [`Refused`]: a limit, a
    /// value or time outside the window, out of order, over the series cap or the byte budget) are
    /// not stored and are counted by reason.
    pub fn push_samples(&self, source: Source, batch: Vec<(SeriesKey, Sample)>, now: Timestamp) -> Result<PushOutcome, Throttled> {
        self.push(source, batch.len() as u64, now, |store, checks, tally| {
            for (key, sample) in &batch {
                if let Some(ok) = checks.admit(&key.metric, &key.labels, std::slice::from_ref(sample), tally) {
                    if let Some(s) = ok.first() {
                        tally.add(AppendCounts::of(store.append(key, *s), 1));
                    }
                }
            }
        })
    }

    /// As [`Ingest::push_samples`], for samples grouped by series (as a scrape or a remote_write
    /// request holds them): one key per series, moved into the store, so this is the faster path.
    pub fn push_series(&self, source: Source, batch: Vec<Series>, now: Timestamp) -> Result<PushOutcome, Throttled> {
        let n = batch.iter().map(|s| s.samples.len() as u64).sum();
        self.push(source, n, now, |store, checks, tally| {
            for series in batch {
                let Some(ok) = checks.admit(&series.key.metric, &series.key.labels, &series.samples, tally) else {
                    continue;
                };
                tally.add(store.append_series(series.key, &ok));
            }
        })
    }

    /// As [`Ingest::push_series`], for a [`BorrowedBatch`]: the fastest path, no allocation for
    /// a series the store already tracks.
    pub fn push_borrowed(&self, source: Source, batch: &BorrowedBatch<'_>, now: Timestamp) -> Result<PushOutcome, Throttled> {
        self.push_borrowed_range(source, batch, 0..batch.series_count(), now)
    }

    /// As [`Ingest::push_borrowed`], for the series at positions `series` of the batch (one of
    /// [`BorrowedBatch::parts`]): admitted or refused as a whole, like any batch.
    pub fn push_borrowed_range(
        &self,
        source: Source,
        batch: &BorrowedBatch<'_>,
        series: Range<usize>,
        now: Timestamp,
    ) -> Result<PushOutcome, Throttled> {
        self.push(source, batch.samples_in(series.clone()) as u64, now, |store, checks, tally| {
            for (metric, labels, samples) in batch.iter_range(series) {
                if let Some(ok) = checks.admit(metric, labels, samples, tally) {
                    tally.add(store.append_labels(metric, labels, &ok));
                }
            }
        })
    }

    /// Admits `n` samples, then lets `store_all` check and store them into a [`Tally`]; counts,
    /// expires, and when the store is full makes room by evicting idle series.
    fn push(
        &self,
        source: Source,
        n: u64,
        now: Timestamp,
        store_all: impl FnOnce(&mut WindowStore, &Checks, &mut Tally),
    ) -> Result<PushOutcome, Throttled> {
        let mut st = lock(&self.state);
        if let Err(retry_after_secs) = st.limiter.admit(n, now.millis()) {
            drop(st);
            self.metrics.throttled_batches.get_or_create(&[("source", source.as_str())]).inc();
            return Err(Throttled { retry_after_secs });
        }
        let checks = Checks {
            limits: self.config.limits,
            now,
            retention_secs: self.config.window.retention_secs,
        };
        let mut tally = Tally::default();
        store_all(&mut st.store, &checks, &mut tally);
        let refused_new =
            tally.refused.get(&Refused::SeriesLimit).copied().unwrap_or(0) + tally.refused.get(&Refused::StoreBytes).copied().unwrap_or(0);
        if now.millis().saturating_sub(st.last_expire_ms) >= EXPIRE_EVERY_MS {
            st.store.expire(now);
            st.last_expire_ms = now.millis();
        }
        if refused_new > 0 {
            self.make_room(&mut st, source, now, &tally);
        }
        self.metrics.store_memory_bytes.set(st.store.memory_bytes() as i64);
        self.metrics.series_tracked.set(st.store.series_count() as i64);
        drop(st);
        self.metrics
            .samples_accepted
            .get_or_create(&[("source", source.as_str())])
            .inc_by(tally.stored);
        for (why, n) in &tally.refused {
            self.reject(source, why.as_str(), *n);
        }
        Ok(PushOutcome {
            accepted: tally.stored,
            rejected: tally.refused_total(),
            evicted: 0,
        })
    }

    /// The store refused new series (cap or byte budget): evicts the series idle for
    /// [`IDLE_SERIES_EVICT_MS`] (at most every [`EXPIRE_EVERY_MS`]) and says so in a Warning (at
    /// most every minute), so a full store is visible and lasts minutes, not the retention.
    fn make_room(&self, st: &mut StoreState, source: Source, now: Timestamp, tally: &Tally) {
        let mut evicted = 0;
        if now.millis().saturating_sub(st.last_evict_ms) >= EXPIRE_EVERY_MS {
            st.last_evict_ms = now.millis();
            evicted = st.store.evict_idle(now.millis().saturating_sub(IDLE_SERIES_EVICT_MS));
            self.metrics.series_evicted_idle.inc_by(evicted as u64);
        }
        if now.millis().saturating_sub(st.last_full_warning_ms) >= FULL_WARNING_EVERY_MS {
            st.last_full_warning_ms = now.millis();
            let cfg = st.store.config();
            tracing::warn!(
                source = source.as_str(),
                series = st.store.series_count(),
                max_series = cfg.max_series,
                memory_bytes = st.store.memory_bytes(),
                max_store_bytes = cfg.max_store_bytes,
                refused_samples_series_limit = tally.refused.get(&Refused::SeriesLimit).copied().unwrap_or(0),
                refused_samples_store_bytes = tally.refused.get(&Refused::StoreBytes).copied().unwrap_or(0),
                evicted_idle_series = evicted,
                "The window store is full: samples of new series are dropped (counted as samples_rejected reason series_limit or store_bytes) until idle series are evicted; raise max_series or max_store_bytes if this lasts."
            );
        }
    }

    /// Remembers a metric family's type and help (later calls overwrite earlier ones; an empty
    /// help keeps the one known).
    pub fn note_metadata(&self, metric: &str, kind: MetricType, help: &str) {
        let mut md = lock(&self.metadata);
        match md.get_mut(metric) {
            Some(entry) => {
                entry.0 = kind;
                if !help.is_empty() {
                    entry.1 = help.to_string();
                }
            }
            None => {
                md.insert(metric.to_string(), (kind, help.to_string()));
            }
        }
    }

    /// Buffers spans for the pipeline. Refused whole ([`Throttled`]) beyond the span rate; a span
    /// past the limits ([`IngestLimits::check_span`]) or larger than the whole byte budget is
    /// refused and counted by reason; when the ring is full (in spans or bytes) the oldest spans are
    /// evicted and counted (`evicted`).
    pub fn push_spans(&self, source: Source, spans: Vec<Span>, now: Timestamp) -> Result<PushOutcome, Throttled> {
        if let Err(retry_after_secs) = lock(&self.span_limiter).admit(spans.len() as u64, now.millis()) {
            self.metrics.throttled_batches.get_or_create(&[("source", source.as_str())]).inc();
            return Err(Throttled { retry_after_secs });
        }
        let mut tally = Tally::default();
        let spans: Vec<Span> = spans
            .into_iter()
            .filter(|span| match self.config.limits.check_span(span) {
                Ok(()) => true,
                Err(why) => {
                    tally.refuse(why, 1);
                    false
                }
            })
            .collect();
        let mut ring = lock(&self.spans);
        let pushed = ring.push_all(spans, limits::span_bytes);
        self.metrics.spans_buffered.set(ring.items.len() as i64);
        self.metrics.spans_buffered_bytes.set(ring.bytes as i64);
        drop(ring);
        tally.refuse(Refused::LargerThanBuffer, pushed.too_large);
        self.metrics
            .spans_accepted
            .get_or_create(&[("source", source.as_str())])
            .inc_by(pushed.accepted);
        self.metrics.spans_dropped.inc_by(pushed.evicted);
        for (why, n) in &tally.refused {
            self.reject(source, why.as_str(), *n);
        }
        Ok(PushOutcome {
            accepted: pushed.accepted,
            rejected: tally.refused_total(),
            evicted: pushed.evicted,
        })
    }

    /// Buffers alerts for the pipeline: an alert past the label limits or larger than the whole
    /// byte budget is refused (counted by reason); the oldest are evicted beyond the ring's size
    /// or bytes (counted). `now` is unused today: alerts are not rate limited (Alertmanager batches
    /// and retries itself). Returns how many were refused.
    pub fn push_alerts(&self, alerts: Vec<Alert>, _now: Timestamp) -> u64 {
        let mut tally = Tally::default();
        let alerts: Vec<Alert> = alerts
            .into_iter()
            .filter(|a| match self.config.limits.check_alert(a) {
                Ok(()) => true,
                Err(why) => {
                    tally.refuse(why, 1);
                    false
                }
            })
            .collect();
        let mut ring = lock(&self.alerts);
        let pushed = ring.push_all(alerts, limits::alert_bytes);
        self.metrics.alerts_buffered.set(ring.items.len() as i64);
        self.metrics.alerts_buffered_bytes.set(ring.bytes as i64);
        drop(ring);
        tally.refuse(Refused::LargerThanBuffer, pushed.too_large);
        self.metrics.alerts_accepted.inc_by(pushed.accepted);
        self.metrics.alerts_dropped.inc_by(pushed.evicted);
        for (why, n) in &tally.refused {
            self.metrics.alerts_rejected.get_or_create(&[("reason", why.as_str())]).inc_by(*n);
        }
        tally.refused_total()
    }

    /// Bytes the span ring and the alert ring hold, as charged.
    pub fn buffered_bytes(&self) -> (usize, usize) {
        (lock(&self.spans).bytes, lock(&self.alerts).bytes)
    }

    /// Items of `source` refused so far for `why` (samples, or spans for OTLP and Zipkin).
    pub fn rejected(&self, source: Source, why: Refused) -> u64 {
        let labels = [("source", source.as_str()), ("reason", why.as_str())];
        match source {
            Source::Otlp | Source::Zipkin => self.metrics.spans_rejected.get_or_create(&labels).get(),
            _ => self.metrics.samples_rejected.get_or_create(&labels).get(),
        }
    }

    /// Spans buffered from sequence number `cursor` on, and the cursor for the next call (start
    /// with 0). Spans evicted before the reader got to them are skipped (and were counted).
    pub fn spans_after(&self, cursor: u64) -> (Vec<Span>, u64) {
        lock(&self.spans).after(cursor)
    }

    /// Alerts buffered from sequence number `cursor` on, and the next cursor (as [`Ingest::spans_after`]).
    pub fn alerts_after(&self, cursor: u64) -> (Vec<Alert>, u64) {
        lock(&self.alerts).after(cursor)
    }

    /// Runs `f` with the window store locked (keep `f` short: ingestion waits on it).
    pub fn with_store<R>(&self, f: impl FnOnce(&WindowStore) -> R) -> R {
        f(&lock(&self.state).store)
    }

    /// What the window holds from `from` on, grouped into families by the metadata known (a sample
    /// name with no metadata becomes its own family of type unknown). Families sorted by name,
    /// series by key; series with no sample since `from` are left out.
    pub fn families(&self, from: Timestamp) -> Vec<Family> {
        let metadata = lock(&self.metadata).clone();
        let mut by_family: BTreeMap<String, Family> = BTreeMap::new();
        self.with_store(|store| {
            for key in store.keys() {
                let samples = store.range(key, from);
                if samples.is_empty() {
                    continue;
                }
                let (name, kind, help) = family_of(&key.metric, &metadata);
                let fam = by_family.entry(name.clone()).or_insert_with(|| Family {
                    name,
                    kind,
                    help,
                    unit: None,
                    series: Vec::new(),
                });
                fam.series.push(Series { key: key.clone(), samples });
            }
        });
        let mut out: Vec<Family> = by_family.into_values().collect();
        for fam in &mut out {
            fam.series.sort_by(|a, b| a.key.cmp(&b.key));
        }
        out
    }

    /// Counts `n` items refused for `reason` (a short static word: `malformed`, `too_large`,
    /// `out_of_order`, …) from `source`. Span sources count as spans, the others as samples.
    pub fn reject(&self, source: Source, reason: &'static str, n: u64) {
        let labels = [("source", source.as_str()), ("reason", reason)];
        match source {
            Source::Otlp | Source::Zipkin => self.metrics.spans_rejected.get_or_create(&labels).inc_by(n),
            _ => self.metrics.samples_rejected.get_or_create(&labels).inc_by(n),
        };
    }

    /// Counts one whole request refused by a receiver for `reason` (`unauthorized`, `too_large`,
    /// `unsupported_media_type`, `malformed`, `throttled` — the 429s sent, …).
    pub fn reject_request(&self, source: Source, reason: &'static str) {
        self.metrics
            .requests_rejected
            .get_or_create(&[("source", source.as_str()), ("reason", reason)])
            .inc();
    }

    /// Requests refused so far by a receiver of `source` for `reason`.
    pub fn requests_rejected(&self, source: Source, reason: &'static str) -> u64 {
        self.metrics
            .requests_rejected
            .get_or_create(&[("source", source.as_str()), ("reason", reason)])
            .get()
    }

    /// Records one scrape of `target`: how long it took and whether it failed.
    pub fn observe_scrape(&self, target: &str, secs: f64, ok: bool) {
        let labels = [("target", target.to_string())];
        self.metrics.scrape_duration.get_or_create(&labels).observe(secs);
        if !ok {
            self.metrics.scrapes_failed.get_or_create(&labels).inc();
        }
    }

    /// Batches refused by the limiter so far from `source` (each answered 429 by a receiver).
    pub fn throttled_batches(&self, source: Source) -> u64 {
        self.metrics.throttled_batches.get_or_create(&[("source", source.as_str())]).get()
    }

    /// Samples refused by the limiter so far, over all sources.
    pub fn samples_throttled(&self) -> u64 {
        lock(&self.state).limiter.refused
    }

    /// Spans evicted from the ring before being read, so far.
    pub fn spans_dropped(&self) -> u64 {
        self.metrics.spans_dropped.get()
    }

    /// Registers the sink's metrics under the `collector` prefix.
    pub fn register_metrics(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("collector");
        let m = self.metrics.clone();
        r.register("samples_accepted", "Samples stored in the window, by source", m.samples_accepted);
        r.register("samples_rejected", "Samples refused, by source and reason", m.samples_rejected);
        r.register("spans_accepted", "Spans buffered for the pipeline, by source", m.spans_accepted);
        r.register("spans_rejected", "Spans refused, by source and reason", m.spans_rejected);
        r.register("alerts_accepted", "Alertmanager alerts buffered", m.alerts_accepted);
        r.register(
            "throttled_batches",
            "Batches refused by the ingest limiter (each a 429 with Retry-After to a pushing sender), by source",
            m.throttled_batches,
        );
        r.register(
            "requests_rejected",
            "Requests refused whole by a receiver, by source and reason (reason=\"throttled\" counts the 429s sent)",
            m.requests_rejected,
        );
        r.register(
            "spans_dropped",
            "Spans evicted from the full ring before the pipeline read them",
            m.spans_dropped,
        );
        r.register(
            "alerts_dropped",
            "Alerts evicted from the full ring before the pipeline read them",
            m.alerts_dropped,
        );
        r.register(
            "alerts_rejected",
            "Alerts refused (a label past the limits, or larger than the whole ring), by reason",
            m.alerts_rejected,
        );
        r.register(
            "series_evicted_idle",
            "Series evicted for having had no sample for 5 min, to make room in a full window store",
            m.series_evicted_idle,
        );
        r.register_with_unit(
            "spans_buffered",
            "Bytes the span ring holds, as charged against max_spans_buffered_bytes",
            prometheus_client::registry::Unit::Bytes,
            m.spans_buffered_bytes,
        );
        r.register_with_unit(
            "alerts_buffered",
            "Bytes the alert ring holds, as charged against max_alerts_buffered_bytes",
            prometheus_client::registry::Unit::Bytes,
            m.alerts_buffered_bytes,
        );
        r.register("series_tracked", "Series in the window store", m.series_tracked);
        r.register_with_unit(
            "store_memory",
            "Memory held by the window store: keys, label strings and chunks as allocated (at most max_store_bytes)",
            prometheus_client::registry::Unit::Bytes,
            m.store_memory_bytes,
        );
        r.register("spans_buffered", "Spans in the ring (queue depth)", m.spans_buffered);
        r.register("alerts_buffered", "Alerts in the ring (queue depth)", m.alerts_buffered);
        r.register_with_unit(
            "scrape_duration",
            "Duration of scrapes, by target",
            prometheus_client::registry::Unit::Seconds,
            m.scrape_duration,
        );
        r.register("scrapes_failed", "Scrapes that failed, by target", m.scrapes_failed);
    }
}

/// The family a sample name belongs to: an exact metadata entry (a counter named `x_total`, as the
/// classic text format and remote_write name it, becomes family `x`), else a known family whose type
/// allows the suffix, else the sample name itself, type unknown.
fn family_of(sample: &str, md: &HashMap<String, (MetricType, String)>) -> (String, MetricType, Option<String>) {
    let help = |h: &String| (!h.is_empty()).then(|| h.clone());
    if let Some((kind, h)) = md.get(sample) {
        let name = match (kind, sample.strip_suffix("_total")) {
            (MetricType::Counter, Some(base)) => base.to_string(),
            _ => sample.to_string(),
        };
        return (name, *kind, help(h));
    }
    for suffix in ["_total", "_bucket", "_count", "_sum", "_created", "_info", "_gcount", "_gsum"] {
        if let Some(base) = sample.strip_suffix(suffix) {
            if let Some((kind, h)) = md.get(base) {
                if kind.suffixes().contains(&suffix) {
                    return (base.to_string(), *kind, help(h));
                }
            }
        }
    }
    (sample.to_string(), MetricType::Unknown, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(metric: &str, pod: &str) -> SeriesKey {
        SeriesKey::new(metric, [("pod".to_string(), pod.to_string())])
    }

    fn sample(ms: i64, value: f64) -> Sample {
        Sample { t: Timestamp(ms), value }
    }

    fn small(rate: u64) -> Ingest {
        Ingest::new(IngestConfig {
            max_ingest_samples_per_sec: rate,
            max_ingest_spans_per_sec: rate,
            max_spans_buffered: 3,
            max_alerts_buffered: 2,
            ..IngestConfig::default()
        })
    }

    fn span(id: u64) -> Span {
        Span {
            trace_id: format!("{id:032x}"),
            span_id: format!("{id:016x}"),
            parent_span_id: String::new(),
            name: format!("op-{id}"),
            kind: cellwarden_models::span::SpanKind::Server,
            start_ns: 1,
            end_ns: 2,
            error: false,
            resource: Default::default(),
            attributes: Default::default(),
        }
    }

    #[test]
    fn a_refused_batch_leaves_the_store_untouched() {
        let ing = small(10);
        let first: Vec<_> = (0..8).map(|i| (key("up", "a"), sample(i * 1000, i as f64))).collect();
        assert_eq!(ing.push_samples(Source::RemoteWrite, first, Timestamp(0)).unwrap().accepted, 8);
        let second: Vec<_> = (0..5).map(|i| (key("up", "b"), sample(i * 1000, 1.0))).collect();
        let err = ing.push_samples(Source::RemoteWrite, second, Timestamp(0)).unwrap_err();
        assert_eq!(err.retry_after_secs, 1);
        assert_eq!(ing.with_store(|s| s.series_count()), 1, "nothing of the refused batch was stored");
        assert_eq!(ing.with_store(|s| s.range(&key("up", "a"), Timestamp(0)).len()), 8);
        assert_eq!(ing.throttled_batches(Source::RemoteWrite), 1);
        assert_eq!(ing.samples_throttled(), 5);
    }

    #[test]
    fn grouped_series_are_stored_like_single_samples() {
        let ing = small(100);
        let batch = vec![
            Series {
                key: key("up", "a"),
                samples: vec![sample(1000, 1.0), sample(2000, 2.0), sample(1500, 9.0)],
            },
            Series {
                key: key("up", "b"),
                samples: vec![sample(1000, 3.0)],
            },
        ];
        let out = ing.push_series(Source::RemoteWrite, batch, Timestamp(2000)).unwrap();
        assert_eq!((out.accepted, out.rejected), (3, 1));
        assert_eq!(
            ing.with_store(|s| s.range(&key("up", "a"), Timestamp(0))),
            [sample(1000, 1.0), sample(2000, 2.0)]
        );
        let too_many = vec![Series {
            key: key("up", "c"),
            samples: (0..98).map(|i| sample(i, 0.0)).collect(),
        }];
        assert!(
            ing.push_series(Source::RemoteWrite, too_many, Timestamp(2000)).is_err(),
            "4 + 98 > 100"
        );
        assert_eq!(ing.with_store(|s| s.series_count()), 2);
    }

    #[test]
    fn a_borrowed_batch_finds_the_series_an_owned_key_made() {
        let ing = small(100);
        ing.push_samples(Source::Scrape, vec![(key("up", "a"), sample(1000, 1.0))], Timestamp(1000))
            .unwrap();
        let text = String::from("up pod a b");
        let mut batch = BorrowedBatch::with_capacity(2);
        batch.push(&text[..2], [("pod", Cow::Borrowed(&text[7..8]))], [sample(2000, 2.0)]);
        batch.push(
            &text[..2],
            [("pod", Cow::Borrowed(&text[9..10])), ("job", Cow::Owned("x".into()))],
            [sample(2000, 3.0)],
        );
        let out = ing.push_borrowed(Source::Scrape, &batch, Timestamp(2000)).unwrap();
        assert_eq!((out.accepted, out.rejected), (2, 0));
        assert_eq!(ing.with_store(|s| s.series_count()), 2, "`up{{pod=a}}` was found, not added again");
        assert_eq!(
            ing.with_store(|s| s.range(&key("up", "a"), Timestamp(0))),
            [sample(1000, 1.0), sample(2000, 2.0)]
        );
        let b = SeriesKey::new("up", [("pod".to_string(), "b".to_string()), ("job".to_string(), "x".to_string())]);
        assert_eq!(
            ing.with_store(|s| s.range(&b, Timestamp(0))),
            [sample(2000, 3.0)],
            "labels were sorted"
        );
    }

    #[test]
    fn a_borrowed_batch_is_cut_into_parts_of_whole_series() {
        let mut batch = BorrowedBatch::with_capacity(4);
        for (name, n) in [("a", 1), ("b", 1), ("c", 7), ("d", 1), ("e", 2)] {
            batch.push(name, [], (0..n).map(|i| sample(i * 1000, 1.0)));
        }
        assert_eq!(batch.parts(4), [0..2, 2..3, 3..5], "c (7 samples) is a part of its own");
        assert_eq!(batch.parts(100), vec![0..5]);
        assert_eq!(batch.parts(0).len(), 5, "at least one series a part");
        assert_eq!(batch.samples_in(2..4), 8);
        assert_eq!(batch.samples_in(3..99), 3, "clamped");
        let ing = small(100);
        let out = ing.push_borrowed_range(Source::Scrape, &batch, 2..4, Timestamp(7000)).unwrap();
        assert_eq!(out.accepted, 8);
        let metrics: Vec<String> = ing.with_store(|s| s.keys().map(|k| k.metric.clone()).collect());
        assert_eq!(metrics.len(), 2);
        assert!(
            metrics.contains(&"c".to_string()) && metrics.contains(&"d".to_string()),
            "{metrics:?}"
        );
        assert!(BorrowedBatch::default().parts(4).is_empty());
    }

    #[test]
    fn out_of_order_samples_are_counted_not_stored() {
        let ing = small(100);
        let batch = vec![
            (key("up", "a"), sample(2000, 1.0)),
            (key("up", "a"), sample(1000, 2.0)),
            (key("up", "a"), sample(3000, 3.0)),
        ];
        let out = ing.push_samples(Source::Scrape, batch, Timestamp(3000)).unwrap();
        assert_eq!((out.accepted, out.rejected), (2, 1));
    }

    #[test]
    fn the_span_ring_drops_the_oldest_and_the_cursor_skips_them() {
        let ing = small(100);
        let out = ing.push_spans(Source::Otlp, (0..2).map(span).collect(), Timestamp(0)).unwrap();
        assert_eq!(out.evicted, 0);
        let (got, cursor) = ing.spans_after(0);
        assert_eq!(got.len(), 2);
        assert_eq!(cursor, 2);
        let out = ing.push_spans(Source::Otlp, (2..6).map(span).collect(), Timestamp(0)).unwrap();
        assert_eq!(out.evicted, 3, "ring of 3 held 2, took 4");
        let (got, next) = ing.spans_after(cursor);
        assert_eq!(got.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["op-3", "op-4", "op-5"]);
        assert_eq!(next, 6);
        assert_eq!(ing.spans_after(next).0.len(), 0);
        assert_eq!(ing.spans_dropped(), 3);
    }

    #[test]
    fn families_group_suffixes_by_metadata() {
        let ing = small(100);
        ing.note_metadata("lat", MetricType::Histogram, "latency");
        ing.note_metadata("req_total", MetricType::Counter, "requests");
        let batch = vec![
            (key("lat_bucket", "a"), sample(1000, 1.0)),
            (key("lat_sum", "a"), sample(1000, 0.5)),
            (key("req_total", "a"), sample(1000, 7.0)),
            (key("mystery", "a"), sample(1000, 3.0)),
        ];
        ing.push_samples(Source::RemoteWrite, batch, Timestamp(1000)).unwrap();
        let fams = ing.families(Timestamp(0));
        let summary: Vec<_> = fams.iter().map(|f| (f.name.as_str(), f.kind, f.series.len())).collect();
        assert_eq!(
            summary,
            [
                ("lat", MetricType::Histogram, 2),
                ("mystery", MetricType::Unknown, 1),
                ("req", MetricType::Counter, 1)
            ]
        );
        assert_eq!(fams[2].help.as_deref(), Some("requests"));
        assert_eq!(fams[2].series[0].samples, [sample(1000, 7.0)]);
    }

    #[test]
    fn series_past_the_limits_are_refused_by_reason_on_every_path() {
        let ing = Ingest::new(IngestConfig {
            limits: IngestLimits {
                max_label_value_bytes: 8,
                max_labels_per_series: 2,
                ..IngestLimits::default()
            },
            ..IngestConfig::default()
        });
        let t = Timestamp(1_000_000);
        let long = "x".repeat(9);
        let dup = SeriesKey::new("up", [("pod".to_string(), "a".to_string()), ("pod".to_string(), "b".to_string())]);
        let batch = vec![
            (key("up", "a"), sample(t.0, 1.0)),
            (key("up", &long), sample(t.0, 1.0)),
            (dup, sample(t.0, 1.0)),
            (SeriesKey::new("up", [(String::new(), "a".to_string())]), sample(t.0, 1.0)),
        ];
        let out = ing.push_samples(Source::RemoteWrite, batch, t).unwrap();
        assert_eq!((out.accepted, out.rejected), (1, 3));
        assert_eq!(ing.rejected(Source::RemoteWrite, Refused::LabelValueTooLong), 1);
        assert_eq!(ing.rejected(Source::RemoteWrite, Refused::DuplicateLabelName), 1);
        assert_eq!(ing.rejected(Source::RemoteWrite, Refused::EmptyLabelName), 1);
        let mut b = BorrowedBatch::with_capacity(2);
        b.push(
            "up",
            [("a", Cow::Borrowed("1")), ("b", Cow::Borrowed("2")), ("c", Cow::Borrowed("3"))],
            [sample(t.0, 1.0)],
        );
        b.push("", [], [sample(t.0, 1.0), sample(t.0 + 1, 1.0)]);
        let out = ing.push_borrowed(Source::Scrape, &b, t).unwrap();
        assert_eq!((out.accepted, out.rejected), (0, 3));
        assert_eq!(ing.rejected(Source::Scrape, Refused::TooManyLabels), 1);
        assert_eq!(ing.rejected(Source::Scrape, Refused::EmptyMetricName), 2);
        let series = vec![Series {
            key: key(&"m".repeat(1025), "a"),
            samples: vec![sample(t.0, 1.0)],
        }];
        assert_eq!(ing.push_series(Source::Query, series, t).unwrap().rejected, 1);
        assert_eq!(ing.rejected(Source::Query, Refused::MetricNameTooLong), 1);
        assert_eq!(ing.with_store(|s| s.series_count()), 1, "only up{{pod=a}}");
    }

    #[test]
    fn nan_infinities_and_samples_outside_the_window_are_refused_and_counted() {
        let ing = small(100);
        let now = Timestamp(10_000_000);
        let stale = f64::from_bits(limits::STALE_NAN_BITS);
        let batch = vec![Series {
            key: key("up", "a"),
            samples: vec![
                sample(now.0 - 3_600_001, 1.0), // older than the hour kept
                sample(now.0 - 1000, f64::NAN),
                sample(now.0 - 900, f64::INFINITY),
                sample(now.0 - 800, f64::NEG_INFINITY),
                sample(now.0 - 700, stale),
                sample(now.0, 5.0),
                sample(now.0 + limits::MAX_FUTURE_MS + 1, 6.0),
            ],
        }];
        let out = ing.push_series(Source::RemoteWrite, batch, now).unwrap();
        assert_eq!((out.accepted, out.rejected), (1, 6));
        assert_eq!(ing.with_store(|s| s.range(&key("up", "a"), Timestamp(0))), [sample(now.0, 5.0)]);
        for (why, n) in [
            (Refused::TooOld, 1),
            (Refused::NotANumber, 1),
            (Refused::Infinite, 2),
            (Refused::StaleMarker, 1),
            (Refused::TooNew, 1),
        ] {
            assert_eq!(ing.rejected(Source::RemoteWrite, why), n, "{why:?}");
        }
        // The year 1 and the year 3000, as the issue sent them.
        let out = ing
            .push_samples(
                Source::Scrape,
                vec![
                    (key("up", "b"), sample(-62_135_596_800_000, 1.0)),
                    (key("up", "c"), sample(32_503_680_000_000, 1.0)),
                ],
                now,
            )
            .unwrap();
        assert_eq!((out.accepted, out.rejected), (0, 2));
        assert_eq!(ing.with_store(|s| s.series_count()), 1);
    }

    #[test]
    fn a_full_series_cap_refuses_new_series_only_until_idle_ones_are_evicted() {
        let ing = Ingest::new(IngestConfig {
            window: WindowConfig {
                max_series: 2,
                ..WindowConfig::default()
            },
            ..IngestConfig::default()
        });
        let t0 = 10_000_000;
        let push = |pod: &str, t: i64| {
            ing.push_samples(Source::RemoteWrite, vec![(key("up", pod), sample(t, 1.0))], Timestamp(t))
                .unwrap()
        };
        push("a", t0);
        push("b", t0);
        assert_eq!(push("c", t0 + 1000).rejected, 1, "over the cap");
        assert_eq!(ing.rejected(Source::RemoteWrite, Refused::SeriesLimit), 1);
        // `a` keeps reporting, `b` stops; a minute on, `b` is not idle long enough yet.
        push("a", t0 + 60_000);
        assert_eq!(push("c", t0 + 61_000).rejected, 1);
        // Past the staleness delta `b` is evicted to make room, and `c` gets in on its next push.
        push("a", t0 + IDLE_SERIES_EVICT_MS);
        assert_eq!(
            push("c", t0 + IDLE_SERIES_EVICT_MS + 1000).rejected,
            1,
            "refused, then room is made"
        );
        assert_eq!(push("c", t0 + IDLE_SERIES_EVICT_MS + 2000).accepted, 1);
        assert_eq!(ing.metrics.series_evicted_idle.get(), 1);
        assert_eq!(ing.with_store(|s| s.range(&key("up", "b"), Timestamp(0)).len()), 0);
        assert_eq!(ing.with_store(|s| s.range(&key("up", "a"), Timestamp(0)).len()), 3);
    }

    #[test]
    fn large_label_values_are_held_to_the_store_budget_and_reported_as_held() {
        let budget = 2 << 20;
        let ing = Ingest::new(IngestConfig {
            window: WindowConfig {
                max_store_bytes: budget,
                ..WindowConfig::default()
            },
            ..IngestConfig::default()
        });
        let now = Timestamp(10_000_000);
        let value = "v".repeat(2000); // the default max_label_value_bytes is 2048
        let mut stored = 0;
        for round in 0..20 {
            let batch: Vec<_> = (0..100)
                .map(|s| (key("up", &format!("{round}-{s}-{value}")), sample(now.0, 1.0)))
                .collect();
            stored += ing.push_samples(Source::RemoteWrite, batch, now).unwrap().accepted;
            let held = ing.with_store(|s| (s.memory_bytes(), s.memory_bytes_recounted()));
            assert!(held.0 <= budget, "{} > {budget}", held.0);
            assert_eq!(held.0, held.1);
        }
        assert!(stored < 2000 && stored > 500, "{stored} of 2000 series of ~2 kB fit in 2 MiB");
        assert_eq!(ing.rejected(Source::RemoteWrite, Refused::StoreBytes), 2000 - stored);
        let mut reg = Registry::default();
        ing.register_metrics(&mut reg);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
        let held = ing.with_store(|s| s.memory_bytes());
        assert!(text.contains(&format!("collector_store_memory_bytes {held}\n")), "{text}");
        assert!(held > budget / 2);
    }

    #[test]
    fn the_span_and_alert_rings_are_bounded_in_bytes() {
        let ing = Ingest::new(IngestConfig {
            max_spans_buffered_bytes: 64 << 10,
            max_alerts_buffered_bytes: 16 << 10,
            ..IngestConfig::default()
        });
        let big = |id| Span {
            name: format!("{id}{}", "n".repeat(2000)),
            ..span(id)
        };
        let out = ing.push_spans(Source::Otlp, (0..100).map(big).collect(), Timestamp(0)).unwrap();
        assert_eq!(out.accepted, 100);
        let (span_bytes, _) = ing.buffered_bytes();
        assert!(span_bytes <= 64 << 10, "{span_bytes}");
        assert!(out.evicted >= 65, "100 spans of ~2.3 kB in 64 KiB: {} evicted", out.evicted);
        assert_eq!(ing.spans_after(0).0.len() as u64, 100 - out.evicted);
        let huge = Span {
            name: "n".repeat(2000),
            resource: cellwarden_models::span::SpanResource {
                service: "s".repeat(2000),
                ..Default::default()
            },
            ..span(1)
        };
        assert_eq!(ing.push_spans(Source::Otlp, vec![huge], Timestamp(0)).unwrap().rejected, 0);
        let over = Span {
            name: "n".repeat(3000),
            ..span(2)
        };
        assert_eq!(ing.push_spans(Source::Otlp, vec![over], Timestamp(0)).unwrap().rejected, 1);
        assert_eq!(ing.rejected(Source::Otlp, Refused::LabelValueTooLong), 1);
        let alert = |i: usize, note: usize| Alert {
            status: AlertStatus::Firing,
            labels: BTreeMap::from([("alertname".to_string(), format!("A{i}"))]),
            annotations: BTreeMap::from([("description".to_string(), "d".repeat(note))]),
            starts_at: None,
            ends_at: None,
            fingerprint: String::new(),
            generator_url: String::new(),
        };
        assert_eq!(ing.push_alerts((0..20).map(|i| alert(i, 1000)).collect(), Timestamp(0)), 0);
        assert!(ing.buffered_bytes().1 <= 16 << 10);
        assert!(ing.alerts_after(0).0.len() < 16, "evicted by bytes, not by count");
        assert_eq!(ing.push_alerts(vec![alert(99, 1 << 20)], Timestamp(0)), 1, "larger than the ring");
        assert_eq!(
            ing.metrics.alerts_rejected.get_or_create(&[("reason", "larger_than_buffer")]).get(),
            1
        );
    }

    #[test]
    fn metrics_export_the_counters() {
        let ing = small(100);
        ing.reject(Source::Zipkin, "malformed", 4);
        ing.observe_scrape("http://a:9100/metrics", 0.02, false);
        let mut reg = Registry::default();
        ing.register_metrics(&mut reg);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
        assert!(
            text.contains("collector_spans_rejected_total{source=\"zipkin\",reason=\"malformed\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("collector_scrapes_failed_total{target=\"http://a:9100/metrics\"} 1"),
            "{text}"
        );
    }
}
