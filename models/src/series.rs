//! Series keys, samples and metric families: the metric half of the data model.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The identity of one time series: a sample name and its labels, sorted by label name.
///
/// Sorting on construction makes two keys with the same labels in another order equal,
/// so keys can be used in maps without normalising at every lookup.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SeriesKey {
    /// The sample's name as exposed, suffix included (`http_server_requests_total`, `..._bucket`).
    pub metric: String,
    /// Label pairs sorted by name; names are unique.
    pub labels: Vec<(String, String)>,
}

impl SeriesKey {
    pub fn new(metric: impl Into<String>, labels: impl IntoIterator<Item = (String, String)>) -> SeriesKey {
        let mut labels: Vec<(String, String)> = labels.into_iter().collect();
        labels.sort();
        SeriesKey {
            metric: metric.into(),
            labels,
        }
    }

    /// The value of label `name`, if the series has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The same key without label `name` (used to group histogram buckets by their `le`).
    pub fn without_label(&self, name: &str) -> SeriesKey {
        SeriesKey {
            metric: self.metric.clone(),
            labels: self.labels.iter().filter(|(k, _)| k != name).cloned().collect(),
        }
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.metric)?;
        if !self.labels.is_empty() {
            f.write_str("{")?;
            for (i, (k, v)) in self.labels.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{k}=\"{}\"", escape_label_value(v))?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

/// Escapes a label value as OpenMetrics requires (`\\`, `\"`, `\n`).
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// One observation of a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub t: Timestamp,
    pub value: f64,
}

/// A series with its samples in time order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub key: SeriesKey,
    pub samples: Vec<Sample>,
}

/// The OpenMetrics metric types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    #[serde(rename = "gaugehistogram")]
    GaugeHistogram,
    Summary,
    Info,
    #[serde(rename = "stateset")]
    StateSet,
    #[default]
    Unknown,
}

impl MetricType {
    pub fn parse(s: &str) -> Option<MetricType> {
        Some(match s {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::StateSet,
            "unknown" | "untyped" => MetricType::Unknown,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    /// The sample-name suffixes a family of this type may use besides its bare name.
    pub fn suffixes(self) -> &'static [&'static str] {
        match self {
            MetricType::Counter => &["_total", "_created"],
            MetricType::Histogram => &["_bucket", "_count", "_sum", "_created"],
            MetricType::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
            MetricType::Summary => &["_count", "_sum", "_created"],
            MetricType::Info => &["_info"],
            _ => &[],
        }
    }
}

/// A metric family: its metadata and its series, as one contiguous block of an exposition.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Family {
    /// The family name from `# TYPE` (without `_total`, `_bucket`, … suffixes).
    pub name: String,
    pub kind: MetricType,
    pub help: Option<String>,
    pub unit: Option<String>,
    pub series: Vec<Series>,
}

impl Family {
    /// Whether a sample called `sample_name` belongs to this family.
    pub fn owns(&self, sample_name: &str) -> bool {
        sample_name == self.name
            || sample_name
                .strip_prefix(self.name.as_str())
                .is_some_and(|rest| self.kind.suffixes().contains(&rest))
    }

    /// Number of samples over all series.
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }
}

/// How much a counter grew from `prev` to `cur`; a drop is a reset, so `cur` is all growth since
/// (as Prometheus' `rate()` and `increase()` treat resets).
pub fn counter_increase(prev: f64, cur: f64) -> f64 {
    if cur >= prev {
        cur - prev
    } else {
        cur
    }
}

/// Per-second rate of a counter between consecutive samples, stamped at the later sample; a drop
/// is a reset. Pairs with equal or decreasing timestamps, or a non-finite value, give no point.
/// One definition for the detector's signals and the collector's conversions.
pub fn counter_rate(samples: &[Sample]) -> Vec<Sample> {
    samples
        .windows(2)
        .filter_map(|w| {
            let dt = w[1].t.secs_since(w[0].t);
            (dt > 0.0 && w[0].value.is_finite() && w[1].value.is_finite()).then(|| Sample {
                t: w[1].t,
                value: counter_increase(w[0].value, w[1].value) / dt,
            })
        })
        .collect()
}
