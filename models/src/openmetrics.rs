//! Our OpenMetrics 1.0 text parser and writer.
//!
//! Why our own: prometheus-parse reads the older text format 0.0.4, whose timestamps are integer
//! milliseconds (OpenMetrics timestamps are seconds with fractions), and it skips bad lines silently.
//! This parser reports the line and the reason, and is shared by the fixture reader and (later) the
//! scraper for `application/openmetrics-text` responses.
//!
//! What it enforces: `# EOF` as the last line; contiguous families; samples that belong to the family
//! declared by `# TYPE`; each series in time order; unique label names; valid names, values and
//! escapes. What it tolerates (forward compatibility): unknown `#` comments, exemplars (skipped), a
//! trailing comma in a label set, and the 0.0.4 habit of declaring a counter under its `_total` name.

use crate::series::{escape_label_value, Family, MetricType, Sample, Series, SeriesKey};
use crate::time::Timestamp;
use std::borrow::Cow;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::io::{BufRead, Write};

/// A sample line, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleLine {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// OpenMetrics timestamps are seconds (with fractions); absent when the exposition omits it.
    pub timestamp: Option<Timestamp>,
}

/// What a parse error says: the 1-based line and the reason. The caller adds the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

/// A parsed exposition: its families in the order they appeared.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    pub families: Vec<Family>,
}

impl Exposition {
    pub fn sample_count(&self) -> usize {
        self.families.iter().map(Family::sample_count).sum()
    }
    pub fn series(&self) -> impl Iterator<Item = &Series> {
        self.families.iter().flat_map(|f| f.series.iter())
    }
}

/// Options for [`parse`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// Reject samples without a timestamp (fixtures need one on every sample; scrapes do not).
    pub require_timestamps: bool,
}

/// Parses an OpenMetrics text exposition.
pub fn parse<R: BufRead>(mut reader: R, opts: ParseOptions) -> Result<Exposition, LineError> {
    let mut families: Vec<Family> = Vec::new();
    // Index of each series within the current family, so samples of one series need not be adjacent.
    let mut series_index = SeriesIndex::default();
    // Families already started, to detect a family that comes back later (not contiguous).
    let mut seen: HashSet<String> = HashSet::new();
    let mut buf = String::new();
    let mut line_no = 0usize;
    let mut eof_seen = false;
    loop {
        buf.clear();
        let n = reader.read_line(&mut buf).map_err(|e| LineError {
            line: line_no + 1,
            reason: format!("cannot read: {e}"),
        })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let err = |reason: String| LineError { line: line_no, reason };
        let line = buf.strip_suffix('\n').unwrap_or(&buf);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if eof_seen {
            return Err(err("content after `# EOF`".into()));
        }
        if line.is_empty() {
            return Err(err("empty line (OpenMetrics allows none)".into()));
        }
        if let Some(rest) = line.strip_prefix('#') {
            let (keyword, name, value) = match parse_comment(rest).map_err(err)? {
                Comment::Eof => {
                    eof_seen = true;
                    continue;
                }
                Comment::Plain => continue,
                Comment::Meta { keyword, name, value } => (keyword, name, value),
            };
            let needs_new = families
                .last()
                .is_none_or(|f| f.name != name || (keyword == "TYPE" && f.kind != MetricType::Unknown) || !f.series.is_empty());
            if needs_new {
                start_family(&mut families, &mut seen, &mut series_index, name).map_err(err)?;
            }
            let fam = families.last_mut().expect("a family was just started");
            match keyword {
                "TYPE" => {
                    fam.kind = MetricType::parse(value).ok_or_else(|| err(format!("unknown metric type {value:?} for {name}")))?;
                }
                "HELP" => fam.help = Some(unescape_help(value)),
                _ => fam.unit = Some(value.to_string()),
            }
            continue;
        }
        let sample = parse_sample_line(line).map_err(err)?;
        if opts.require_timestamps && sample.timestamp.is_none() {
            return Err(err(format!(
                "sample of {} has no timestamp (fixtures need one on every sample)",
                sample.name
            )));
        }
        let owned = families.last().is_some_and(|f| f.owns(&sample.name));
        if !owned {
            start_family(&mut families, &mut seen, &mut series_index, &sample.name).map_err(err)?;
        }
        let fam = families.last_mut().expect("family exists");
        let key = SeriesKey::new(sample.name, sample.labels);
        let t = sample.timestamp.unwrap_or_default();
        let hash = series_index.hash(&key);
        let idx = match series_index.find(&fam.series, &key, hash) {
            Some(i) => i,
            None => {
                series_index.insert(&key, hash, fam.series.len());
                fam.series.push(Series { key, samples: Vec::new() });
                fam.series.len() - 1
            }
        };
        let series = &mut fam.series[idx];
        if let Some(last) = series.samples.last() {
            if sample.timestamp.is_some() && t < last.t {
                return Err(err(format!(
                    "timestamp {} goes back in time for series {} (previous {})",
                    t.as_secs_f64(),
                    series.key,
                    last.t.as_secs_f64()
                )));
            }
        }
        series.samples.push(Sample { t, value: sample.value });
    }
    if !eof_seen {
        return Err(LineError {
            line: line_no,
            reason: "missing `# EOF` at the end (truncated file?)".into(),
        });
    }
    Ok(Exposition { families })
}

/// Where each series of the current family is, found by the hash of its key so that looking a
/// series up costs no copy of the key (the parser's hot path: a scrape is one new series a line).
#[derive(Default)]
struct SeriesIndex {
    hasher: RandomState,
    by_hash: HashMap<u64, usize, BuildHasherDefault<PrehashedKey>>,
    /// Keys whose hash another key of the family already has (rare): found by the key itself.
    collided: HashMap<SeriesKey, usize>,
}

impl SeriesIndex {
    fn hash(&self, key: &SeriesKey) -> u64 {
        self.hasher.hash_one(key)
    }

    fn find(&self, series: &[Series], key: &SeriesKey, hash: u64) -> Option<usize> {
        match self.by_hash.get(&hash) {
            None => None,
            Some(&i) if series[i].key == *key => Some(i),
            Some(_) => self.collided.get(key).copied(),
        }
    }

    fn insert(&mut self, key: &SeriesKey, hash: u64, index: usize) {
        if let std::collections::hash_map::Entry::Vacant(v) = self.by_hash.entry(hash) {
            v.insert(index);
        } else {
            self.collided.insert(key.clone(), index);
        }
    }

    fn clear(&mut self) {
        self.by_hash.clear();
        self.collided.clear();
    }
}

/// A hasher for keys that are already hashes: passes the `u64` through.
#[derive(Default)]
struct PrehashedKey(u64);

impl Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in so the hasher stays correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

fn start_family(families: &mut Vec<Family>, seen: &mut HashSet<String>, series_index: &mut SeriesIndex, name: &str) -> Result<(), String> {
    // A sample whose name carries a known suffix of an existing family reopens that family: report it.
    if seen.contains(name) {
        return Err(format!(
            "metric family {name} appears again after other families (families must be contiguous)"
        ));
    }
    for fam in families.iter() {
        if fam.owns(name) && fam.name != name {
            return Err(format!(
                "sample {name} of family {} appears after other families (families must be contiguous)",
                fam.name
            ));
        }
    }
    seen.insert(name.to_string());
    series_index.clear();
    families.push(Family {
        name: name.to_string(),
        ..Family::default()
    });
    Ok(())
}

/// A comment line of an exposition (what follows its `#`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comment<'a> {
    /// `# EOF`: the end of an OpenMetrics exposition.
    Eof,
    /// A comment that carries no metadata.
    Plain,
    /// `# TYPE|HELP|UNIT <name> <value>` (value may be empty).
    Meta { keyword: &'a str, name: &'a str, value: &'a str },
}

/// Splits a comment line (`rest`: the text after `#`), checking the metric name it names; the
/// error says what is wrong. Shared by [`parse`] and the collector's streaming parser.
pub fn parse_comment(rest: &str) -> Result<Comment<'_>, String> {
    if rest == " EOF" {
        return Ok(Comment::Eof);
    }
    let mut parts = rest.trim_start().splitn(3, ' ');
    let keyword = parts.next().unwrap_or("");
    if !matches!(keyword, "TYPE" | "HELP" | "UNIT") {
        return Ok(Comment::Plain);
    }
    let name = parts
        .next()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("`# {keyword}` without a metric name"))?;
    if !is_metric_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    Ok(Comment::Meta {
        keyword,
        name,
        value: parts.next().unwrap_or(""),
    })
}

/// Whether `s` is a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Undoes the escapes of a HELP text (`\\` and `\n`; any other escaped character stands for
/// itself), as both text formats write them.
pub fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses a number as OpenMetrics writes it: decimal or exponent notation, `+Inf`, `-Inf`, `NaN`.
pub fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ if s
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
            && !s.is_empty() =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

/// Parses one sample line: `name{label="value",...} value [timestamp] [# exemplar]`.
pub fn parse_sample_line(line: &str) -> Result<SampleLine, String> {
    let mut labels = Vec::new();
    let s = parse_sample_line_into(line, &mut labels)?;
    Ok(SampleLine {
        name: s.name.to_string(),
        labels: labels.into_iter().map(|(k, v)| (k.to_string(), v.into_owned())).collect(),
        value: s.value,
        timestamp: s.timestamp,
    })
}

/// A sample line parsed without copying: the name borrowed from the line, the labels appended to
/// the caller's vector by [`parse_sample_line_into`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRef<'a> {
    pub name: &'a str,
    pub value: f64,
    pub timestamp: Option<Timestamp>,
}

/// Parses one sample line like [`parse_sample_line`], appending its labels (in line order) to
/// `labels` as slices of the line — owned only when a value holds escapes. The hot path of
/// ingesting an exposition: a line costs no allocation. On error `labels` may hold part of the line.
pub fn parse_sample_line_into<'a>(line: &'a str, labels: &mut Vec<(&'a str, Cow<'a, str>)>) -> Result<SampleRef<'a>, String> {
    let first_label = labels.len();
    let bytes = line.as_bytes();
    let name_end = bytes
        .iter()
        .position(|&b| b == b'{' || b == b' ')
        .ok_or_else(|| format!("expected a value after {line:?}"))?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut i = name_end;
    if bytes[i] == b'{' {
        i += 1;
        loop {
            if i >= bytes.len() {
                return Err(format!("unterminated label set in {name}"));
            }
            if bytes[i] == b'}' {
                i += 1;
                break;
            }
            let eq = line[i..]
                .find('=')
                .map(|p| p + i)
                .ok_or_else(|| format!("label without `=` in {name}"))?;
            let lname = &line[i..eq];
            if !is_label_name(lname) {
                return Err(format!("invalid label name {lname:?} in {name}"));
            }
            if bytes.get(eq + 1) != Some(&b'"') {
                return Err(format!("value of label {lname} in {name} is not quoted"));
            }
            let start = eq + 2;
            // Fast path: no escape before the closing quote, so the value is a slice of the line.
            let plain_end = bytes[start..].iter().position(|&b| b == b'"' || b == b'\\').map(|p| p + start);
            let fast = plain_end.filter(|&e| bytes[e] == b'"');
            let mut j = fast.unwrap_or(start);
            let mut owned = String::new();
            while fast.is_none() {
                match bytes.get(j) {
                    None => return Err(format!("unterminated value of label {lname} in {name}")),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        match bytes.get(j + 1) {
                            Some(b'\\') => owned.push('\\'),
                            Some(b'"') => owned.push('"'),
                            Some(b'n') => owned.push('\n'),
                            _ => return Err(format!("bad escape in value of label {lname} in {name}")),
                        }
                        j += 2;
                    }
                    Some(_) => {
                        // Copy one UTF-8 character.
                        let ch = line[j..].chars().next().expect("in bounds");
                        owned.push(ch);
                        j += ch.len_utf8();
                    }
                }
            }
            if labels[first_label..].iter().any(|(k, _)| *k == lname) {
                return Err(format!("label {lname} appears twice in {name}"));
            }
            let value = match fast {
                Some(e) => Cow::Borrowed(&line[start..e]),
                None => Cow::Owned(owned),
            };
            labels.push((lname, value));
            i = j + 1;
            match bytes.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {}
                _ => return Err(format!("expected `,` or `}}` after label {lname} in {name}")),
            }
        }
    }
    let rest = line[i..]
        .strip_prefix(' ')
        .ok_or_else(|| format!("expected a space and a value after {name}"))?;
    let (rest, _exemplar) = match rest.find(" # ") {
        Some(p) => (&rest[..p], Some(&rest[p + 3..])),
        None => (rest, None),
    };
    let mut parts = rest.split(' ');
    let value_text = parts.next().unwrap_or("");
    let value = parse_value(value_text).ok_or_else(|| format!("invalid value {value_text:?} for {name}"))?;
    let timestamp = match parts.next() {
        None => None,
        Some(ts) => {
            let secs = parse_value(ts)
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("invalid timestamp {ts:?} for {name}"))?;
            Some(Timestamp::from_secs_f64(secs))
        }
    };
    if let Some(extra) = parts.next() {
        return Err(format!("unexpected {extra:?} after the timestamp of {name}"));
    }
    Ok(SampleRef { name, value, timestamp })
}

/// Formats a value as OpenMetrics expects (shortest exact decimal, `+Inf`, `-Inf`, `NaN`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn format_timestamp(t: Timestamp) -> String {
    let ms = t.millis();
    if ms.rem_euclid(1000) == 0 {
        format!("{}", ms.div_euclid(1000))
    } else {
        let s = format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
        s.trim_end_matches('0').to_string()
    }
}

/// Writes families as OpenMetrics text with a timestamp on every sample, ending with `# EOF`.
pub fn write<W: Write>(mut w: W, families: &[Family]) -> std::io::Result<()> {
    for fam in families {
        writeln!(w, "# TYPE {} {}", fam.name, fam.kind.as_str())?;
        if let Some(unit) = &fam.unit {
            writeln!(w, "# UNIT {} {}", fam.name, unit)?;
        }
        if let Some(help) = &fam.help {
            writeln!(w, "# HELP {} {}", fam.name, help.replace('\\', "\\\\").replace('\n', "\\n"))?;
        }
        for series in &fam.series {
            let mut prefix = series.key.metric.clone();
            if !series.key.labels.is_empty() {
                prefix.push('{');
                for (i, (k, v)) in series.key.labels.iter().enumerate() {
                    if i > 0 {
                        prefix.push(',');
                    }
                    prefix.push_str(k);
                    prefix.push_str("=\"");
                    prefix.push_str(&escape_label_value(v));
                    prefix.push('"');
                }
                prefix.push('}');
            }
            for s in &series.samples {
                writeln!(w, "{prefix} {} {}", format_value(s.value), format_timestamp(s.t))?;
            }
        }
    }
    writeln!(w, "# EOF")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Exposition, LineError> {
        parse(s.as_bytes(), ParseOptions { require_timestamps: true })
    }

    #[test]
    fn the_series_index_finds_keys_whose_hashes_collide() {
        let a = SeriesKey::new("m", [("a".to_string(), "1".to_string())]);
        let b = SeriesKey::new("m", [("a".to_string(), "2".to_string())]);
        let series = [a.clone(), b.clone()].map(|key| Series { key, samples: Vec::new() });
        let mut index = SeriesIndex::default();
        index.insert(&a, 7, 0);
        index.insert(&b, 7, 1);
        assert_eq!(index.find(&series, &a, 7), Some(0));
        assert_eq!(index.find(&series, &b, 7), Some(1));
        assert_eq!(index.find(&series, &SeriesKey::new("m", []), 7), None);
        assert_eq!(index.find(&series, &a, 8), None);
    }

    #[test]
    fn label_values_with_and_without_escapes() {
        let l = parse_sample_line(r#"m{a="plain",b="q\"x\\y\nz",c="é"} 1"#).unwrap();
        assert_eq!(
            l.labels,
            [
                ("a".into(), "plain".into()),
                ("b".into(), "q\"x\\y\nz".into()),
                ("c".into(), "é".into())
            ]
        );
        assert!(parse_sample_line(r#"m{a="open} 1"#).is_err());
    }

    #[test]
    fn reads_timestamps_as_seconds_with_fractions() {
        let e = parse_str("# TYPE m gauge\nm{a=\"1\"} 2.5 1674981669.25\n# EOF\n").unwrap();
        let s = &e.families[0].series[0];
        assert_eq!(s.samples[0].t.millis(), 1_674_981_669_250);
        assert_eq!(s.samples[0].value, 2.5);
    }

    #[test]
    fn groups_histogram_suffixes_into_one_family() {
        let text = "# TYPE lat histogram\nlat_bucket{le=\"0.1\"} 1 10\nlat_bucket{le=\"+Inf\"} 2 10\nlat_sum 0.3 10\nlat_count 2 10\n# TYPE up gauge\nup 1 10\n# EOF\n";
        let e = parse_str(text).unwrap();
        assert_eq!(e.families.len(), 2);
        assert_eq!(e.families[0].kind, MetricType::Histogram);
        assert_eq!(e.families[0].series.len(), 4);
        assert_eq!(e.sample_count(), 5);
    }

    #[test]
    fn escapes_round_trip() {
        let line = r#"m{path="a\"b\\c\nd",x="ü"} -Inf 5"#;
        let s = parse_sample_line(line).unwrap();
        assert_eq!(s.labels[0].1, "a\"b\\c\nd");
        assert_eq!(s.labels[1].1, "ü");
        assert_eq!(s.value, f64::NEG_INFINITY);
        let fam = Family {
            name: "m".into(),
            kind: MetricType::Gauge,
            help: Some("h\\elp\nx".into()),
            unit: None,
            series: vec![Series {
                key: SeriesKey::new("m", s.labels.clone()),
                samples: vec![Sample {
                    t: Timestamp(5000),
                    value: s.value,
                }],
            }],
        };
        let mut out = Vec::new();
        write(&mut out, std::slice::from_ref(&fam)).unwrap();
        let back = parse_str(std::str::from_utf8(&out).unwrap()).unwrap();
        assert_eq!(back.families[0], fam);
    }

    #[test]
    fn errors_name_the_line_and_reason() {
        let cases = [
            ("m 1 10\nm{a=\"1\" 2 20\n# EOF\n", 2, "label"),
            ("m 1 10\nm abc 20\n# EOF\n", 2, "invalid value"),
            ("m 1 20\nm 1 10\n# EOF\n", 2, "back in time"),
            ("m 1 20\n", 1, "# EOF"),
            ("m 1 20\n# EOF\nm 2 30\n", 3, "after `# EOF`"),
            ("a 1 1\nb 1 1\na 2 2\n# EOF\n", 3, "contiguous"),
            ("m 1\n# EOF\n", 1, "no timestamp"),
            ("# TYPE m sparkly\n# EOF\n", 1, "unknown metric type"),
            ("m{a=\"1\",a=\"2\"} 1 1\n# EOF\n", 1, "twice"),
            ("m 1 1\n\n# EOF\n", 2, "empty line"),
        ];
        for (text, line, needle) in cases {
            let e = parse_str(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e:?}");
            assert!(e.reason.contains(needle), "{text:?}: {}", e.reason);
        }
    }

    #[test]
    fn tolerates_comments_exemplars_and_total_typed_counters() {
        let text = "# some comment\n# TYPE req_total counter\nreq_total{code=\"200\",} 5 10 # {trace_id=\"ab\"} 1 9\n# EOF\n";
        let e = parse_str(text).unwrap();
        assert_eq!(e.families[0].kind, MetricType::Counter);
        assert_eq!(e.families[0].series[0].samples[0].value, 5.0);
    }

    #[test]
    fn counter_declared_by_family_name_owns_total_samples() {
        let text = "# TYPE req counter\n# HELP req Requests.\nreq_total 5 10\nreq_created 1 10\n# EOF\n";
        let e = parse_str(text).unwrap();
        assert_eq!(e.families.len(), 1);
        assert_eq!(e.families[0].help.as_deref(), Some("Requests."));
        assert_eq!(e.families[0].series.len(), 2);
    }
}
