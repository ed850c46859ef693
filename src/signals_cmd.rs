//! `cellwarden signals`: which series of a fixture — or of one scrape of an endpoint (`--from
//! URL`) — became which signal, by which rule (the config's, a profile's, or an inference), and
//! which were left out and why: the answer to "why did you not see my metric?". One line per
//! metric and outcome (or per series with `--series`).

use anyhow::{Context, Result};
use cellwarden_collector::fixture::load_dir;
use cellwarden_detector::signals::rules::{Origin, SignalRules};
use cellwarden_detector::signals::{self, Fate, SeriesFate};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// One line of the report: a metric, what became of it, and how many series share that.
struct Line {
    section: Section,
    metric: String,
    what: String,
    series: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    Read,
    Inferred,
    Unread,
    Ignored,
}

impl Section {
    fn heading(self) -> &'static str {
        match self {
            Section::Read => "read (series → signal, by rule)",
            Section::Inferred => "inferred (no rule names them; guessed from the type and the name, after every rule)",
            Section::Unread => "named by a rule but not read",
            Section::Ignored => "ignored (no rule names them)",
        }
    }
}

fn describe(f: &SeriesFate) -> (Section, String) {
    match &f.fate {
        Fate::Read { by, into } => {
            let mut signals: Vec<String> = into.iter().map(|(s, k)| format!("{s} ({})", k.metric)).collect();
            signals.dedup();
            let section = if by.origin == Origin::Inferred {
                Section::Inferred
            } else {
                Section::Read
            };
            (section, format!("→ {}  by {by}", signals.join(", ")))
        }
        Fate::Unread { by, reason } => (Section::Unread, format!("{by}: {reason}")),
        Fate::Ignored { near: Some(n) } => (
            Section::Ignored,
            format!(
                "{} names this metric but wants {}=\"{}\" (the series has {})",
                n.by,
                n.label,
                n.wanted,
                n.found.as_ref().map_or("none".to_string(), |v| format!("\"{v}\""))
            ),
        ),
        Fate::Ignored { near: None } => (
            Section::Ignored,
            "no rule or inference names this metric (add one under `signals:` in the config)".to_string(),
        ),
    }
}

/// Prints the fate of every series of the fixture in `dir` under `rules`.
pub fn run(dir: &Path, rules: &SignalRules, per_series: bool) -> Result<()> {
    let fx = load_dir(dir).with_context(|| format!("cannot read fixture {}", dir.display()))?;
    report(&dir.display().to_string(), &fx.metrics.families, rules, per_series)
}

/// Scrapes `url` once (as the daemon's scraper would: its formats, size bound and timeout, and
/// the `job` and `instance` labels) and prints the fate of every series it served.
pub fn run_url(url: &str, rules: &SignalRules, per_series: bool) -> Result<()> {
    use cellwarden_collector::scrape::{target_series, ScrapeConfig, Scraper, Target};
    let scraper = Scraper::new(ScrapeConfig::default()).context("cannot set up the scraper")?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let scraped = tokio::runtime::Runtime::new()?
        .block_on(scraper.scrape(url, cellwarden_models::Timestamp(now_ms)))
        .with_context(|| format!("cannot scrape {url}"))?;
    let target = Target::new(url, "signals", []);
    let families: Vec<cellwarden_models::Family> = scraped
        .families
        .into_iter()
        .map(|mut head| {
            // The target's labels go on each series, as a scrape stores them.
            let series = std::mem::take(&mut head.series);
            let series = target_series(vec![cellwarden_models::Family { series, ..head.clone() }], &target);
            cellwarden_models::Family { series, ..head }
        })
        .collect();
    report(&format!("--from {url}"), &families, rules, per_series)
}

fn report(source: &str, families: &[cellwarden_models::Family], rules: &SignalRules, per_series: bool) -> Result<()> {
    let d = signals::explain(families, rules);
    let mut so = std::io::stdout().lock();
    writeln!(so, "cellwarden signals {source}")?;
    let mut tiers: Vec<(String, usize)> = Vec::new();
    for r in rules.rules() {
        let tier = match &r.origin {
            Origin::Config => "the config".to_string(),
            Origin::Profile(p) => format!("profile {p}"),
            Origin::Inferred => "inference".to_string(),
        };
        match tiers.last_mut() {
            Some((t, n)) if *t == tier => *n += 1,
            _ => tiers.push((tier, 1)),
        }
    }
    let order: Vec<String> = tiers.iter().map(|(t, n)| format!("{t} ({n})")).collect();
    writeln!(so, "rules, first match wins: {}", order.join(", then "))?;
    let mut by_signal: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &d.series {
        *by_signal.entry(s.signal.as_str()).or_default() += 1;
    }
    let counts: Vec<String> = by_signal.iter().map(|(s, n)| format!("{s} {n}")).collect();
    writeln!(
        so,
        "{} raw series → {} signal series ({})",
        d.fates.len(),
        d.series.len(),
        if counts.is_empty() { "none".to_string() } else { counts.join(", ") }
    )?;
    let mut lines: Vec<Line> = Vec::new();
    let mut index: BTreeMap<(Section, String, String), usize> = BTreeMap::new();
    for f in &d.fates {
        let (section, what) = describe(f);
        let metric = if per_series { f.key.to_string() } else { f.key.metric.clone() };
        let i = *index.entry((section, metric.clone(), what.clone())).or_insert_with(|| {
            lines.push(Line {
                section,
                metric,
                what,
                series: 0,
            });
            lines.len() - 1
        });
        lines[i].series += 1;
    }
    lines.sort_by_key(|l| l.section);
    let width = lines.iter().map(|l| l.metric.len()).max().unwrap_or(0).min(60);
    let mut section = None;
    for l in &lines {
        if section != Some(l.section) {
            writeln!(so)?;
            writeln!(so, "{}:", l.section.heading())?;
            section = Some(l.section);
        }
        if per_series {
            writeln!(so, "  {:<width$}  {}", l.metric, l.what)?;
        } else {
            writeln!(so, "  {:<width$} {:>6} series  {}", l.metric, l.series, l.what)?;
        }
    }
    Ok(())
}
