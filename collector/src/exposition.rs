//! An OpenMetrics exposition straight into the store: each line parsed by the models parser's
//! borrowing entry point ([`openmetrics::parse_sample_line_into`]), names and labels left as
//! slices of the text, so a scrape of series the store already tracks costs no allocation per
//! sample ([`Ingest::push_borrowed`](crate::ingest::Ingest::push_borrowed)).
//!
//! It checks what the store relies on — every line's syntax (names, quoting, escapes, values,
//! duplicate labels), known `# TYPE`s and the closing `# EOF` — but not the contiguity of families,
//! which [`openmetrics::parse`] checks for fixtures. Samples without a timestamp get `now`;
//! timestamps are OpenMetrics seconds.

use crate::ingest::BorrowedBatch;
use cellwarden_models::openmetrics;
use cellwarden_models::{MetricType, Sample, Timestamp};
use std::borrow::Cow;

/// A parsed exposition, borrowed from its text.
#[derive(Debug, Clone, Default)]
pub struct ExpositionBatch<'a> {
    /// Every sample.
    pub samples: BorrowedBatch<'a>,
    /// (family, type, help) from `# TYPE` and `# HELP` lines, in order of appearance.
    pub metadata: Vec<(&'a str, MetricType, String)>,
}

/// A line that is not OpenMetrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ExpositionError {
    /// 1-based.
    pub line: usize,
    pub reason: String,
}

/// Parses `text` (OpenMetrics 1.0, ending with `# EOF`).
pub fn parse_openmetrics(text: &str, now: Timestamp) -> Result<ExpositionBatch<'_>, ExpositionError> {
    let mut out = ExpositionBatch {
        samples: BorrowedBatch::with_capacity(text.len() / 64),
        metadata: Vec::new(),
    };
    let mut labels = Vec::new(); // reused for every line
    let mut eof_at = None;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let err = |reason: String| ExpositionError { line: i + 1, reason };
        if eof_at.is_some() {
            return Err(err("content after `# EOF`".into()));
        }
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            return Err(err("empty line (OpenMetrics allows none)".into()));
        }
        if let Some(comment) = line.strip_prefix('#') {
            if comment == " EOF" {
                eof_at = Some(i);
                continue;
            }
            let mut parts = comment.trim_start().splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next().unwrap_or("")) {
                (Some("TYPE"), Some(name), kind) => {
                    let kind = MetricType::parse(kind).ok_or_else(|| err(format!("unknown metric type {kind:?} for {name}")))?;
                    match out.metadata.iter_mut().rev().find(|(n, _, _)| *n == name) {
                        Some(entry) => entry.1 = kind,
                        None => out.metadata.push((name, kind, String::new())),
                    }
                }
                (Some("HELP"), Some(name), help) => {
                    let help = help.replace("\\n", "\n").replace("\\\\", "\\");
                    match out.metadata.iter_mut().rev().find(|(n, _, _)| *n == name) {
                        Some(entry) => entry.2 = help,
                        None => out.metadata.push((name, MetricType::Unknown, help)),
                    }
                }
                _ => {} // `# UNIT` and plain comments
            }
            continue;
        }
        labels.clear();
        let s = openmetrics::parse_sample_line_into(line, &mut labels).map_err(err)?;
        let sample = Sample {
            t: s.timestamp.unwrap_or(now),
            value: s.value,
        };
        out.samples.push(s.name, labels.drain(..), [sample]);
    }
    if eof_at.is_none() {
        return Err(ExpositionError {
            line: text.lines().count(),
            reason: "missing `# EOF` at the end (truncated?)".into(),
        });
    }
    Ok(out)
}

/// The label values of a batch as owned strings (for tests and callers that keep them).
pub fn owned_labels<'a>(labels: &[(&'a str, Cow<'a, str>)]) -> Vec<(String, String)> {
    labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_metadata_and_escapes_come_out_borrowed_where_possible() {
        let text = "# TYPE lat histogram\n# HELP lat Request latency.\nlat_bucket{le=\"0.1\",route=\"/pay\"} 3\n\
                    lat_bucket{route=\"a\\\"b\",le=\"+Inf\"} 5 1772360000.5\n# EOF\n";
        let b = parse_openmetrics(text, Timestamp(42)).unwrap();
        assert_eq!(b.metadata, [("lat", MetricType::Histogram, "Request latency.".to_string())]);
        let series: Vec<_> = b.samples.iter().collect();
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].0, "lat_bucket");
        assert_eq!(
            owned_labels(series[0].1),
            [("le".to_string(), "0.1".to_string()), ("route".to_string(), "/pay".to_string())]
        );
        assert!(matches!(series[0].1[0].1, Cow::Borrowed(_)));
        assert_eq!(
            series[0].2,
            [Sample {
                t: Timestamp(42),
                value: 3.0
            }]
        );
        assert_eq!(
            series[1].1[1],
            ("route", Cow::Owned::<str>("a\"b".to_string())),
            "sorted, unescaped"
        );
        assert_eq!(series[1].2[0].t, Timestamp(1_772_360_000_500));
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(parse_openmetrics("up 1\nup{a=\"1} 2\n# EOF\n", Timestamp(0)).unwrap_err().line, 2);
        assert!(parse_openmetrics("up 1\n", Timestamp(0)).unwrap_err().reason.contains("# EOF"));
        assert_eq!(
            parse_openmetrics("# EOF\nup 1\n", Timestamp(0)).unwrap_err().reason,
            "content after `# EOF`"
        );
        assert!(parse_openmetrics("# TYPE up gauges\n# EOF\n", Timestamp(0))
            .unwrap_err()
            .reason
            .contains("unknown metric type"));
    }
}
