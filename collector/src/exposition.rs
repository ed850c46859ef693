//! An OpenMetrics exposition straight into the store: each line parsed by the models parser's
//! borrowing entry point ([`openmetrics::parse_sample_line_into`]), names and labels left as
//! slices of the text, so a scrape of series the store already tracks costs no allocation per
//! sample ([`Ingest::push_borrowed`](crate::ingest::Ingest::push_borrowed)).
//!
//! Layout:
//! - [`parse_openmetrics`]: the text as it is; [`parse_scrape`]: the text as the scraper stores
//!   it — the target's [`TargetLabels`] put on every series, `_created` samples left out, a zero
//!   timestamp read as none — exactly what [`crate::scrape::parse_exposition`] followed by
//!   [`crate::scrape::target_series`] make of it, without building families of owned series.
//! - [`ExpositionBatch`]: the samples ([`BorrowedBatch`]) and the families' metadata
//!   ([`FamilyMeta`]), grouped as [`openmetrics::parse`] groups them.
//!
//! It checks what [`openmetrics::parse`] checks — every line's syntax (names, quoting, escapes,
//! values, duplicate labels), known `# TYPE`s, contiguous families and the closing `# EOF` — but
//! one: that the samples of a series go forward in time, which needs an index of the series;
//! the store counts a sample that goes back as out of order instead. Samples without a timestamp
//! get `now`; timestamps are OpenMetrics seconds.

use crate::ingest::{BorrowedBatch, BorrowedLabel};
use cellwarden_models::openmetrics;
use cellwarden_models::{MetricType, Sample, Timestamp};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

/// A parsed exposition, borrowed from its text (and from the [`TargetLabels`] put on it).
#[derive(Debug, Clone, Default)]
pub struct ExpositionBatch<'a> {
    /// Every sample kept, in the order of the text.
    pub samples: BorrowedBatch<'a>,
    /// The metric families in order of appearance: one per `# TYPE`/`# HELP` block, and one per
    /// run of samples no declared family owns (type unknown), as [`openmetrics::parse`] makes them.
    pub families: Vec<FamilyMeta<'a>>,
}

/// The metadata of one family of an exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyMeta<'a> {
    /// The family name (`http_requests` for a counter whose samples are `http_requests_total`).
    pub name: &'a str,
    pub kind: MetricType,
    /// From `# HELP`, unescaped.
    pub help: Option<String>,
    /// Its samples in [`ExpositionBatch::samples`] (those left out not counted).
    pub samples: usize,
}

/// A line that is not OpenMetrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ExpositionError {
    /// 1-based.
    pub line: usize,
    pub reason: String,
}

/// Labels put on every series of a scrape: the target's `job`, `instance` and discovery labels.
/// A label the exposition already has is kept as `exported_<name>`, as Prometheus does without
/// `honor_labels` (and as [`crate::scrape::target_series`] does).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetLabels {
    /// (name, value), sorted by name, unique.
    labels: Vec<(String, String)>,
    /// `exported_<name>` of each label, made once so that a renamed exposition label borrows it.
    exported: Vec<String>,
}

/// No labels (what [`parse_openmetrics`] puts on).
static NO_TARGET_LABELS: TargetLabels = TargetLabels {
    labels: Vec::new(),
    exported: Vec::new(),
};

impl TargetLabels {
    /// The labels, sorted by name; of two with the same name the later is kept.
    pub fn new(labels: impl IntoIterator<Item = (String, String)>) -> TargetLabels {
        let labels: Vec<(String, String)> = labels.into_iter().collect::<BTreeMap<_, _>>().into_iter().collect();
        let exported = labels.iter().map(|(k, _)| format!("exported_{k}")).collect();
        TargetLabels { labels, exported }
    }

    /// The labels, sorted by name.
    pub fn labels(&self) -> &[(String, String)] {
        &self.labels
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.labels.iter().position(|(k, _)| k == name)
    }

    /// Adds the labels to one line's `labels` (unique names, any order), renaming the line's
    /// labels they clash with. The result has unique names, in no particular order.
    fn apply<'a>(&'a self, labels: &mut Vec<BorrowedLabel<'a>>) {
        if self.labels.is_empty() {
            return;
        }
        let clash = labels.iter().any(|(k, _)| self.position(k).is_some());
        if clash {
            // As `target_series` inserts into a map: the line's labels in order of their names,
            // renamed, then the target's; of one name the one inserted last is kept. (A renamed
            // `exported_job` meets the line's own `exported_job`; a target label always wins.)
            labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (k, _) in labels.iter_mut() {
                if let Some(i) = self.position(k) {
                    *k = &self.exported[i];
                }
            }
        }
        labels.extend(self.labels.iter().map(|(k, v)| (k.as_str(), Cow::Borrowed(v.as_str()))));
        if clash {
            labels.sort_by(|a, b| a.0.cmp(b.0)); // stable: the later of one name stays later
            labels.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    std::mem::swap(later, kept);
                }
                same
            });
        }
    }
}

/// Parses `text` (OpenMetrics 1.0, ending with `# EOF`), keeping every sample as it is.
pub fn parse_openmetrics(text: &str, now: Timestamp) -> Result<ExpositionBatch<'_>, ExpositionError> {
    parse(text, now, &NO_TARGET_LABELS, false)
}

/// Parses the OpenMetrics response of a scrape as the scraper stores it: `target` labels on every
/// series; `_created` samples of typed families left out (creation times, not observations, which
/// the classic format, and so a switch of format, does not carry); a sample without a timestamp
/// or with timestamp 0 stamped `now`, the scrape time.
pub fn parse_scrape<'a>(text: &'a str, now: Timestamp, target: &'a TargetLabels) -> Result<ExpositionBatch<'a>, ExpositionError> {
    parse(text, now, target, true)
}

fn parse<'a>(text: &'a str, now: Timestamp, target: &'a TargetLabels, scrape: bool) -> Result<ExpositionBatch<'a>, ExpositionError> {
    let mut out = ExpositionBatch {
        samples: BorrowedBatch::with_capacity(text.len() / 64),
        families: Vec::new(),
    };
    let mut families = Families::default();
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
            let (keyword, name, value) = match openmetrics::parse_comment(comment).map_err(err)? {
                openmetrics::Comment::Eof => {
                    eof_at = Some(i);
                    continue;
                }
                openmetrics::Comment::Plain => continue,
                openmetrics::Comment::Meta { keyword, name, value } => (keyword, name, value),
            };
            // A family takes its metadata before its samples, and one `# TYPE`.
            let same = out
                .families
                .last()
                .is_some_and(|f| f.name == name && !(keyword == "TYPE" && f.kind != MetricType::Unknown) && !families.last_has_samples);
            if !same {
                families.start(&mut out.families, name).map_err(err)?;
            }
            let fam = out.families.last_mut().expect("a family was just started");
            match keyword {
                "TYPE" => {
                    fam.kind = MetricType::parse(value).ok_or_else(|| err(format!("unknown metric type {value:?} for {name}")))?;
                }
                "HELP" => fam.help = Some(openmetrics::unescape_help(value)),
                _ => {} // `# UNIT`: not kept
            }
            continue;
        }
        labels.clear();
        let s = openmetrics::parse_sample_line_into(line, &mut labels).map_err(err)?;
        if !out.families.last().is_some_and(|f| owns(f, s.name)) {
            families.start(&mut out.families, s.name).map_err(err)?;
        }
        families.last_has_samples = true;
        let fam = out.families.last_mut().expect("a family was just started");
        if scrape && fam.kind != MetricType::Unknown && s.name.ends_with("_created") {
            continue;
        }
        fam.samples += 1;
        let t = match s.timestamp {
            // The family path reads a missing timestamp as 0, then stamps 0 with the scrape time.
            Some(t) if !(scrape && t == Timestamp(0)) => t,
            _ => now,
        };
        target.apply(&mut labels);
        out.samples.push(s.name, labels.drain(..), [Sample { t, value: s.value }]);
    }
    if eof_at.is_none() {
        return Err(ExpositionError {
            line: text.lines().count(),
            reason: "missing `# EOF` at the end (truncated?)".into(),
        });
    }
    Ok(out)
}

/// What the parser keeps to tell families apart.
#[derive(Debug, Default)]
struct Families<'a> {
    /// Position of each family started, by name: a family seen before may not come back.
    by_name: HashMap<&'a str, usize>,
    /// Whether the last family has had a sample line (even one left out): then a `# TYPE` or
    /// `# HELP` of the same name starts a new family (and so fails as not contiguous).
    last_has_samples: bool,
}

impl<'a> Families<'a> {
    /// Starts family `name`, refusing one that appeared before, or a sample of an earlier
    /// family (families must be contiguous), with [`openmetrics::parse`]'s reasons.
    fn start(&mut self, list: &mut Vec<FamilyMeta<'a>>, name: &'a str) -> Result<(), String> {
        if self.by_name.contains_key(name) {
            return Err(format!(
                "metric family {name} appears again after other families (families must be contiguous)"
            ));
        }
        // Every suffix a type allows is one `_word`: the family it would belong to is the name cut there.
        if let Some(cut) = name.rfind('_') {
            if let Some(&i) = self.by_name.get(&name[..cut]) {
                if list[i].kind.suffixes().contains(&&name[cut..]) {
                    return Err(format!(
                        "sample {name} of family {} appears after other families (families must be contiguous)",
                        list[i].name
                    ));
                }
            }
        }
        self.by_name.insert(name, list.len());
        self.last_has_samples = false;
        list.push(FamilyMeta {
            name,
            kind: MetricType::Unknown,
            help: None,
            samples: 0,
        });
        Ok(())
    }
}

/// Whether a sample called `sample` belongs to family `f` ([`cellwarden_models::Family::owns`]).
fn owns(f: &FamilyMeta<'_>, sample: &str) -> bool {
    sample == f.name || sample.strip_prefix(f.name).is_some_and(|rest| f.kind.suffixes().contains(&rest))
}

/// The label values of a batch as owned strings (for tests and callers that keep them).
pub fn owned_labels<'a>(labels: &[(&'a str, Cow<'a, str>)]) -> Vec<(String, String)> {
    labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn samples_metadata_and_escapes_come_out_borrowed_where_possible() {
        let text = "# TYPE lat histogram\n# HELP lat Request latency \\\\ \\n.\nlat_bucket{le=\"0.1\",route=\"/pay\"} 3\n\
                    lat_bucket{route=\"a\\\"b\",le=\"+Inf\"} 5 1772360000.5\nup 1\n# EOF\n";
        let b = parse_openmetrics(text, Timestamp(42)).unwrap();
        let fams: Vec<_> = b.families.iter().map(|f| (f.name, f.kind, f.help.as_deref(), f.samples)).collect();
        assert_eq!(
            fams,
            [
                ("lat", MetricType::Histogram, Some("Request latency \\ \n."), 2),
                ("up", MetricType::Unknown, None, 1)
            ]
        );
        let series: Vec<_> = b.samples.iter().collect();
        assert_eq!(series.len(), 3);
        assert_eq!(series[0].0, "lat_bucket");
        assert_eq!(owned_labels(series[0].1), strings(&[("le", "0.1"), ("route", "/pay")]));
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
        assert!(parse_openmetrics("# TYPE 9up gauge\n# EOF\n", Timestamp(0))
            .unwrap_err()
            .reason
            .contains("invalid metric name"));
    }

    #[test]
    fn families_must_be_contiguous_as_the_family_parser_requires() {
        for (text, line) in [
            ("a 1\nb 1\na 2\n# EOF\n", 3),
            ("# TYPE c counter\nc_total 1\nd 1\nc_total 2\n# EOF\n", 4),
            ("# TYPE c counter\nc_total 1\n# HELP c Late help.\n# EOF\n", 3),
        ] {
            let e = parse_openmetrics(text, Timestamp(0)).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.reason.contains("contiguous"), "{e}");
            let theirs = openmetrics::parse(text.as_bytes(), Default::default()).unwrap_err();
            assert_eq!(
                (theirs.line, theirs.reason),
                (e.line, e.reason),
                "the same error as the family parser"
            );
        }
    }

    #[test]
    fn a_scrape_adds_the_target_labels_drops_created_and_stamps_zero_timestamps() {
        let text = "# TYPE req counter\nreq_total{code=\"200\"} 7 0\nreq_created{code=\"200\"} 1700000000\n\
                    odd_created 3 12\n# EOF\n";
        let target = TargetLabels::new(strings(&[("job", "api"), ("instance", "10.0.0.1:80")]));
        let b = parse_scrape(text, Timestamp(99), &target).unwrap();
        let series: Vec<_> = b.samples.iter().map(|(m, l, s)| (m, owned_labels(l), s.to_vec())).collect();
        assert_eq!(
            series,
            [
                (
                    "req_total",
                    strings(&[("code", "200"), ("instance", "10.0.0.1:80"), ("job", "api")]),
                    vec![Sample {
                        t: Timestamp(99),
                        value: 7.0
                    }]
                ),
                (
                    "odd_created",
                    strings(&[("instance", "10.0.0.1:80"), ("job", "api")]),
                    vec![Sample {
                        t: Timestamp(12_000),
                        value: 3.0
                    }]
                ),
            ],
            "the counter's `_created` left out, the untyped `odd_created` kept"
        );
        assert_eq!(
            b.families.iter().map(|f| (f.name, f.samples)).collect::<Vec<_>>(),
            [("req", 1), ("odd_created", 1)]
        );
        let kept = parse_openmetrics(text, Timestamp(99)).unwrap();
        assert_eq!(kept.samples.sample_count(), 3, "parse_openmetrics keeps everything");
        assert_eq!(kept.samples.iter().next().unwrap().2[0].t, Timestamp(0));
    }

    #[test]
    fn clashing_labels_are_exported_and_the_target_wins() {
        // `job` (after `exported_job` by name): the renamed one replaces the line's `exported_job`;
        // `cell` (before it): the line's own `exported_cell` replaces the renamed one.
        let text = "up{job=\"inner\",exported_job=\"own\",cell=\"c-9\",exported_cell=\"own-cell\",x=\"1\"} 1\n# EOF\n";
        let target = TargetLabels::new(strings(&[("job", "outer"), ("cell", "c-1"), ("job", "last")]));
        assert_eq!(target.labels(), strings(&[("cell", "c-1"), ("job", "last")]));
        let b = parse_scrape(text, Timestamp(1), &target).unwrap();
        let (_, labels, _) = b.samples.iter().next().unwrap();
        assert_eq!(
            owned_labels(labels),
            strings(&[
                ("cell", "c-1"),
                ("exported_cell", "own-cell"),
                ("exported_job", "inner"),
                ("job", "last"),
                ("x", "1")
            ])
        );
    }
}
