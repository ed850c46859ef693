//! What one series, sample, span or alert may hold before the ingest refuses it, and why it was
//! refused.
//!
//! The window store, the span ring and the alert ring are bounded in bytes (their budgets live
//! beside their item caps: `max_store_bytes`, `receivers.max_spans_buffered_bytes`,
//! `receivers.max_alerts_buffered_bytes`); the limits here bound each item, so one sender with
//! 1 MB label values cannot make a single series cost a megabyte, and a refusal names its cause.
//!
//! Every check is pure: time comes in as `now`.

use cellwarden_models::alert::Alert;
use cellwarden_models::{Sample, Span, Timestamp};
use serde::Deserialize;

/// Limits on each series, span and alert taken in (the `ingest_limits:` section of
/// `cellwarden.yaml`). The defaults are Grafana Mimir's per-series limits, which real
/// exporters (kube-state-metrics, cAdvisor, Istio) stay well within.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestLimits {
    /// Longest metric name, bytes (Prometheus names are tens of bytes).
    pub max_metric_name_bytes: usize,
    /// Longest label name, bytes; also an alert's label names and a span's attribute keys.
    pub max_label_name_bytes: usize,
    /// Longest label value, bytes; also an alert's label values, a span's name, attribute and
    /// resource values.
    pub max_label_value_bytes: usize,
    /// Most labels on one series (the metric name not counted); also on one alert.
    pub max_labels_per_series: usize,
    /// Most attributes on one span as sent (before cellwarden keeps the few it reads).
    pub max_attributes_per_span: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            // Mimir: max_label_name_length 1024, max_label_value_length 2048,
            // max_label_names_per_series 30; the metric name is a label value there (2048), 1024
            // here is still 10× the longest name in the bundled fixtures.
            max_metric_name_bytes: 1024,
            max_label_name_bytes: 1024,
            max_label_value_bytes: 2048,
            max_labels_per_series: 30,
            // The OpenTelemetry SDKs' default attribute count limit per span.
            max_attributes_per_span: 128,
        }
    }
}

/// How far ahead of `now` a sample may be: Prometheus' own out-of-bounds window for samples
/// from the future is a few minutes of clock skew between sender and receiver.
pub const MAX_FUTURE_MS: i64 = 5 * 60 * 1000;

/// Prometheus' staleness marker: a NaN with this exact bit pattern (`value.StaleNaN`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Why an item (a sample, a span, an alert) was not kept; the `reason` label of the
/// `*_rejected` counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Refused {
    /// The metric name is empty.
    EmptyMetricName,
    /// The metric name is longer than `max_metric_name_bytes`.
    MetricNameTooLong,
    /// A label name is empty.
    EmptyLabelName,
    /// Two labels of one series (or alert) have the same name.
    DuplicateLabelName,
    /// A label name is longer than `max_label_name_bytes`.
    LabelNameTooLong,
    /// A label value is longer than `max_label_value_bytes`.
    LabelValueTooLong,
    /// More labels than `max_labels_per_series`.
    TooManyLabels,
    /// More attributes than `max_attributes_per_span`.
    TooManyAttributes,
    /// A NaN that is not Prometheus' staleness marker.
    NotANumber,
    /// +Inf or -Inf.
    Infinite,
    /// A staleness marker: the series ended; not stored (the window keeps values only).
    StaleMarker,
    /// Older than the window (`now - retention_secs`): it would be expired at once.
    TooOld,
    /// More than [`MAX_FUTURE_MS`] ahead of now.
    TooNew,
    /// A sample before (or at) the series' last one.
    OutOfOrder,
    /// A new series while `max_series` are tracked.
    SeriesLimit,
    /// The store holds `max_store_bytes`.
    StoreBytes,
    /// One item larger than the whole ring's byte budget.
    LargerThanBuffer,
}

impl Refused {
    /// The metric label value (bounded: one per variant).
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::EmptyMetricName => "empty_metric_name",
            Refused::MetricNameTooLong => "metric_name_too_long",
            Refused::EmptyLabelName => "empty_label_name",
            Refused::DuplicateLabelName => "duplicate_label_name",
            Refused::LabelNameTooLong => "label_name_too_long",
            Refused::LabelValueTooLong => "label_value_too_long",
            Refused::TooManyLabels => "too_many_labels",
            Refused::TooManyAttributes => "too_many_attributes",
            Refused::NotANumber => "nan",
            Refused::Infinite => "infinite",
            Refused::StaleMarker => "stale_marker",
            Refused::TooOld => "too_old",
            Refused::TooNew => "too_new",
            Refused::OutOfOrder => "out_of_order",
            Refused::SeriesLimit => "series_limit",
            Refused::StoreBytes => "store_bytes",
            Refused::LargerThanBuffer => "larger_than_buffer",
        }
    }
}

impl IngestLimits {
    /// Refuses settings that would refuse everything, naming them as `ingest_limits.<field>`.
    pub fn validate(&self) -> Result<(), crate::listen::InvalidSetting> {
        for (name, v) in [
            ("max_metric_name_bytes", self.max_metric_name_bytes),
            ("max_label_name_bytes", self.max_label_name_bytes),
            ("max_label_value_bytes", self.max_label_value_bytes),
            ("max_labels_per_series", self.max_labels_per_series),
            ("max_attributes_per_span", self.max_attributes_per_span),
        ] {
            if v == 0 {
                return Err(crate::listen::InvalidSetting::new(
                    format!("ingest_limits.{name}"),
                    "must be at least 1 (0 would refuse every series)",
                ));
            }
        }
        Ok(())
    }

    /// Why a series named `metric` with `labels` may not be stored. Labels sorted by name (as
    /// every path into the store sorts them) make a duplicate adjacent; unsorted ones are
    /// compared pairwise (at most `max_labels_per_series` of them by then).
    pub fn check_series<A: AsRef<str>, B: AsRef<str>>(&self, metric: &str, labels: &[(A, B)]) -> Result<(), Refused> {
        if metric.is_empty() {
            return Err(Refused::EmptyMetricName);
        }
        if metric.len() > self.max_metric_name_bytes {
            return Err(Refused::MetricNameTooLong);
        }
        self.check_labels(labels.iter().map(|(a, b)| (a.as_ref(), b.as_ref())), labels.len())?;
        let sorted = labels.windows(2).all(|w| w[0].0.as_ref() <= w[1].0.as_ref());
        let duplicate = if sorted {
            labels.windows(2).any(|w| w[0].0.as_ref() == w[1].0.as_ref())
        } else {
            labels
                .iter()
                .enumerate()
                .any(|(i, (a, _))| labels[i + 1..].iter().any(|(b, _)| a.as_ref() == b.as_ref()))
        };
        if duplicate {
            return Err(Refused::DuplicateLabelName);
        }
        Ok(())
    }

    /// Count and lengths of `n` labels (names unique by construction, as in a map).
    fn check_labels<'a>(&self, labels: impl Iterator<Item = (&'a str, &'a str)>, n: usize) -> Result<(), Refused> {
        if n > self.max_labels_per_series {
            return Err(Refused::TooManyLabels);
        }
        for (name, value) in labels {
            if name.is_empty() {
                return Err(Refused::EmptyLabelName);
            }
            if name.len() > self.max_label_name_bytes {
                return Err(Refused::LabelNameTooLong);
            }
            if value.len() > self.max_label_value_bytes {
                return Err(Refused::LabelValueTooLong);
            }
        }
        Ok(())
    }

    /// Why a span may not be buffered: its name and every string it keeps are held to the label
    /// limits (the attribute count was checked on the request, before the span was reduced).
    pub fn check_span(&self, span: &Span) -> Result<(), Refused> {
        let r = &span.resource;
        let values = [
            Some(&span.name),
            Some(&r.service),
            r.pod.as_ref(),
            r.namespace.as_ref(),
            r.node.as_ref(),
            r.cell.as_ref(),
        ];
        if values.iter().flatten().any(|v| v.len() > self.max_label_value_bytes) {
            return Err(Refused::LabelValueTooLong);
        }
        self.check_labels(span.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())), 0)
    }

    /// Why an alert may not be buffered: its labels as a series' labels; annotations are free text
    /// (descriptions, runbook links) and only charged to the ring's byte budget.
    pub fn check_alert(&self, alert: &Alert) -> Result<(), Refused> {
        self.check_labels(alert.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())), alert.labels.len())
    }

    /// Why a span with `attributes` attributes (as sent) is refused.
    pub fn check_attribute_count(&self, attributes: usize) -> Result<(), Refused> {
        if attributes > self.max_attributes_per_span {
            return Err(Refused::TooManyAttributes);
        }
        Ok(())
    }
}

/// Why a sample may not be stored at `now` with a window of `retention_secs`: NaN only as the
/// staleness marker (which ends the series and is not stored), no infinities, a timestamp within
/// [now − retention, now + [`MAX_FUTURE_MS`]] (a query source's backfill of up to the retention
/// passes).
pub fn check_sample(s: Sample, now: Timestamp, retention_secs: i64) -> Result<(), Refused> {
    if s.value.is_nan() {
        return Err(if s.value.to_bits() == STALE_NAN_BITS {
            Refused::StaleMarker
        } else {
            Refused::NotANumber
        });
    }
    if s.value.is_infinite() {
        return Err(Refused::Infinite);
    }
    let t = s.t.millis();
    if t < now.millis().saturating_sub(retention_secs.saturating_mul(1000)) {
        return Err(Refused::TooOld);
    }
    if t > now.millis().saturating_add(MAX_FUTURE_MS) {
        return Err(Refused::TooNew);
    }
    Ok(())
}

/// Heap and inline bytes a string costs (its buffer as allocated, and the `String` itself).
fn string_bytes(s: &str, capacity: usize) -> usize {
    std::mem::size_of::<String>() + capacity.max(s.len())
}

/// What a span costs in the ring, bytes: the struct, its strings as allocated, and the
/// attribute map's nodes (a BTreeMap entry is two `String`s plus about 16 bytes of node share).
pub fn span_bytes(span: &Span) -> usize {
    let s = |x: &String| x.capacity();
    let opt = |x: &Option<String>| x.as_ref().map_or(0, String::capacity);
    let r = &span.resource;
    std::mem::size_of::<Span>()
        + s(&span.trace_id)
        + s(&span.span_id)
        + s(&span.parent_span_id)
        + s(&span.name)
        + s(&r.service)
        + opt(&r.pod)
        + opt(&r.namespace)
        + opt(&r.node)
        + opt(&r.cell)
        + span
            .attributes
            .iter()
            .map(|(k, v)| string_bytes(k, k.capacity()) + string_bytes(v, v.capacity()) + 16)
            .sum::<usize>()
}

/// What an alert costs in the ring, bytes, counted as [`span_bytes`] counts a span.
pub fn alert_bytes(alert: &Alert) -> usize {
    let map = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| string_bytes(k, k.capacity()) + string_bytes(v, v.capacity()) + 16)
            .sum::<usize>()
    };
    std::mem::size_of::<Alert>()
        + map(&alert.labels)
        + map(&alert.annotations)
        + alert.fingerprint.capacity()
        + alert.generator_url.capacity()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim() -> IngestLimits {
        IngestLimits {
            max_metric_name_bytes: 8,
            max_label_name_bytes: 4,
            max_label_value_bytes: 6,
            max_labels_per_series: 2,
            max_attributes_per_span: 3,
        }
    }

    #[test]
    fn series_past_a_limit_are_refused_by_name() {
        let l = lim();
        assert_eq!(l.check_series("up", &[("pod", "a"), ("job", "b")]), Ok(()));
        assert_eq!(l.check_series("", &[("pod", "a")]), Err(Refused::EmptyMetricName));
        assert_eq!(l.check_series("up_total_x", &[("pod", "a")]), Err(Refused::MetricNameTooLong));
        assert_eq!(l.check_series("up", &[("", "a")]), Err(Refused::EmptyLabelName));
        assert_eq!(l.check_series("up", &[("podzz", "a")]), Err(Refused::LabelNameTooLong));
        assert_eq!(l.check_series("up", &[("pod", "abcdefg")]), Err(Refused::LabelValueTooLong));
        assert_eq!(
            l.check_series("up", &[("a", "1"), ("b", "2"), ("c", "3")]),
            Err(Refused::TooManyLabels)
        );
        assert_eq!(
            l.check_series("up", &[("pod", "a"), ("pod", "b")]),
            Err(Refused::DuplicateLabelName)
        );
        let three = IngestLimits {
            max_labels_per_series: 3,
            ..l
        };
        assert_eq!(
            three.check_series("up", &[("pod", "a"), ("job", "c"), ("pod", "b")]),
            Err(Refused::DuplicateLabelName),
            "unsorted duplicates are found too"
        );
    }

    #[test]
    fn samples_are_finite_and_inside_the_window() {
        let now = Timestamp(10_000_000);
        let at = |t: i64, value: f64| Sample { t: Timestamp(t), value };
        assert_eq!(check_sample(at(10_000_000, 1.0), now, 3600), Ok(()));
        assert_eq!(check_sample(at(10_000_000, f64::NAN), now, 3600), Err(Refused::NotANumber));
        assert_eq!(
            check_sample(at(10_000_000, f64::from_bits(STALE_NAN_BITS)), now, 3600),
            Err(Refused::StaleMarker)
        );
        assert_eq!(check_sample(at(10_000_000, f64::INFINITY), now, 3600), Err(Refused::Infinite));
        assert_eq!(check_sample(at(10_000_000, f64::NEG_INFINITY), now, 3600), Err(Refused::Infinite));
        assert_eq!(check_sample(at(10_000_000 - 3_600_000, 1.0), now, 3600), Ok(()), "the oldest kept");
        assert_eq!(check_sample(at(10_000_000 - 3_600_001, 1.0), now, 3600), Err(Refused::TooOld));
        assert_eq!(check_sample(at(10_000_000 + MAX_FUTURE_MS, 1.0), now, 3600), Ok(()));
        assert_eq!(
            check_sample(at(10_000_000 + MAX_FUTURE_MS + 1, 1.0), now, 3600),
            Err(Refused::TooNew)
        );
        assert_eq!(check_sample(at(0, 1.0), now, i64::MAX), Ok(()), "no overflow");
        assert_eq!(check_sample(at(i64::MAX, 1.0), Timestamp(i64::MAX), 3600), Ok(()));
    }

    #[test]
    fn a_span_with_a_huge_name_or_too_many_attributes_is_refused() {
        let l = lim();
        let mut span = Span {
            trace_id: "0".repeat(32),
            span_id: "0".repeat(16),
            parent_span_id: String::new(),
            name: "op".into(),
            kind: cellwarden_models::span::SpanKind::Server,
            start_ns: 1,
            end_ns: 2,
            error: false,
            resource: Default::default(),
            attributes: Default::default(),
        };
        assert_eq!(l.check_span(&span), Ok(()));
        let small = span_bytes(&span);
        span.name = "x".repeat(7);
        assert_eq!(l.check_span(&span), Err(Refused::LabelValueTooLong));
        span.name = "x".repeat(1000);
        assert_eq!(span_bytes(&span), small - 2 + 1000, "the name is charged as allocated");
        assert_eq!(l.check_attribute_count(3), Ok(()));
        assert_eq!(l.check_attribute_count(4), Err(Refused::TooManyAttributes));
    }

    #[test]
    fn zero_limits_are_refused_by_name() {
        let err = IngestLimits {
            max_labels_per_series: 0,
            ..IngestLimits::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("ingest_limits.max_labels_per_series"), "{err}");
    }
}
