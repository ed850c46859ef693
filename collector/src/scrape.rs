//! Scraping Prometheus/OpenMetrics exposition endpoints: static targets, and Kubernetes pods found
//! by annotation (`prometheus.io/scrape: "true"`, `prometheus.io/port`, `prometheus.io/path`) or
//! by a label selector.
//!
//! Layout:
//! - [`ScrapeConfig`] (with [`StaticTarget`] and [`KubernetesDiscovery`]): the typed config.
//! - [`parse_exposition`]: content negotiation by the response's content type —
//!   `application/openmetrics-text` with our parser (`cellwarden_models::openmetrics`), anything
//!   else as the classic text format 0.0.4, tokenised by `prometheus-parse`. Pure.
//! - [`target_series`]: a scrape's families as series with the target's labels. Pure.
//! - [`ParsedScrape`]: a response body read for one target and stored — what the scrape loop runs.
//!   OpenMetrics takes the streaming path ([`exposition::parse_scrape`], names and labels borrowed
//!   from the body, then [`deliver_borrowed`]): no allocation per sample for a known series. The
//!   classic format takes the family path ([`parse_exposition`] → [`target_series`] → [`deliver`]).
//!   Both store the same series under the same keys, with the same metadata.
//! - [`pod_target`] / [`discover_pods`]: Kubernetes pods as targets.
//! - [`Scraper`]: one HTTP scrape of one target; [`Scraper::run`] the loop feeding [`Ingest`].
//!
//! A failing scrape is counted ([`Ingest::observe_scrape`]) and logged, never fatal. Samples carry
//! the exposition's timestamp when it gives one, else the scrape time from the caller's clock.

use crate::exposition::{self, ExpositionBatch, TargetLabels};
use crate::ingest::{Ingest, Source};
use crate::pull::{deliver, deliver_borrowed, http_client, Clock, Delivered};
use cellwarden_models::openmetrics::unescape_help;
use cellwarden_models::openmetrics::{self, parse_sample_line, parse_value, LineError, ParseOptions};
use cellwarden_models::{Family, MetricType, Sample, Series, SeriesKey, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The scrape source in `cellwarden.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// Time between two scrapes of a target, seconds.
    #[serde(default = "default_interval_secs")]
    pub scrape_interval_secs: u64,
    /// Time one scrape may take, seconds (kept below the interval).
    #[serde(default = "default_timeout_secs")]
    pub scrape_timeout_secs: u64,
    /// Largest response body read; a larger one fails the scrape (an exporter gone wild must not
    /// exhaust memory).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Ask for OpenMetrics first (`Accept`), falling back to the classic text format; false asks
    /// for the classic text format only.
    #[serde(default = "yes")]
    pub prefer_openmetrics: bool,
    /// Targets given by URL.
    #[serde(default)]
    pub targets: Vec<StaticTarget>,
    /// Pods found through the Kubernetes API; absent: no discovery.
    #[serde(default)]
    pub kubernetes: Option<KubernetesDiscovery>,
}

fn default_interval_secs() -> u64 {
    15
}
fn default_timeout_secs() -> u64 {
    10
}
fn default_max_body_bytes() -> usize {
    32 * 1024 * 1024
}
fn yes() -> bool {
    true
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            scrape_interval_secs: default_interval_secs(),
            scrape_timeout_secs: default_timeout_secs(),
            max_body_bytes: default_max_body_bytes(),
            prefer_openmetrics: true,
            targets: Vec::new(),
            kubernetes: None,
        }
    }
}

/// A target given by URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticTarget {
    /// The exposition URL, e.g. `http://ledger.cell-1:9100/metrics`.
    pub url: String,
    /// The `job` label of its series.
    #[serde(default = "default_static_job")]
    pub job: String,
    /// More labels put on every series of the target (e.g. `cell: cell-1`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_static_job() -> String {
    "static".into()
}

/// Pod discovery through the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesDiscovery {
    /// Namespaces to look in; empty: all namespaces.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// A label selector (`app=ledger,tier!=db`) the pods must match; empty: every pod.
    #[serde(default)]
    pub label_selector: String,
    /// Scrape only pods annotated `prometheus.io/scrape: "true"`. When false, every pod the
    /// selector matches is scraped (port from `prometheus.io/port`, else its first container port).
    #[serde(default = "yes")]
    pub require_scrape_annotation: bool,
    /// Time between two listings of the pods, seconds.
    #[serde(default = "default_refresh_secs")]
    pub refresh_interval_secs: u64,
    /// The `job` label of discovered targets.
    #[serde(default = "default_pod_job")]
    pub job: String,
    /// Pod labels copied onto the pod's series: pod label name → series label name
    /// (e.g. `app.kubernetes.io/name: service`, `cellwarden.io/cell: cell`).
    #[serde(default)]
    pub copy_pod_labels: BTreeMap<String, String>,
}

fn default_refresh_secs() -> u64 {
    60
}
fn default_pod_job() -> String {
    "kubernetes-pods".into()
}

/// The annotations that mark a pod for scraping (the Prometheus community convention).
pub const ANNOTATION_SCRAPE: &str = "prometheus.io/scrape";
pub const ANNOTATION_PORT: &str = "prometheus.io/port";
pub const ANNOTATION_PATH: &str = "prometheus.io/path";
pub const ANNOTATION_SCHEME: &str = "prometheus.io/scheme";

/// One endpoint to scrape, with the labels its series get.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub url: String,
    /// `job`, `instance` and any discovery or static labels; sorted by name.
    pub labels: Vec<(String, String)>,
}

impl Target {
    /// A target with `job` and `instance` (`host:port` of the URL) plus `extra` labels.
    pub fn new(url: &str, job: &str, extra: impl IntoIterator<Item = (String, String)>) -> Target {
        let instance = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
            .unwrap_or_else(|| url.to_string());
        let mut labels: BTreeMap<String, String> = extra.into_iter().collect();
        labels.insert("job".into(), job.to_string());
        labels.insert("instance".into(), instance);
        Target {
            url: url.to_string(),
            labels: labels.into_iter().collect(),
        }
    }
}

/// A scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// The target could not be reached or did not answer in time.
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The target answered an HTTP error.
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    /// The body was larger than `max_body_bytes`.
    #[error("{url}: response larger than {max_body_bytes} bytes")]
    TooLarge { url: String, max_body_bytes: usize },
    /// The exposition is malformed (line and reason).
    #[error("{url}:{line}: {reason}")]
    Malformed { url: String, line: usize, reason: String },
    /// A format we do not read (we never ask for protobuf).
    #[error("{url}: unsupported content type {content_type:?}")]
    UnsupportedFormat { url: String, content_type: String },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// Listing pods failed.
    #[error("cannot list pods: {0}")]
    Discovery(#[source] kube::Error),
}

impl ScrapeError {
    /// A bounded label for metrics about failures.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ScrapeError::Unreachable { .. } => "unreachable",
            ScrapeError::Status { .. } => "status",
            ScrapeError::TooLarge { .. } => "too_large",
            ScrapeError::Malformed { .. } => "malformed",
            ScrapeError::UnsupportedFormat { .. } => "unsupported_format",
            ScrapeError::Client(_) => "client",
            ScrapeError::Discovery(_) => "discovery",
        }
    }
}

/// `Accept` asking for OpenMetrics first, as Prometheus 2 sends it.
pub const ACCEPT_OPENMETRICS: &str =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// `Accept` asking for the classic text format.
pub const ACCEPT_TEXT: &str = "text/plain;version=0.0.4;q=1.0,*/*;q=0.1";

/// The exposition formats told apart by content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    /// The classic text format 0.0.4 (also what a target answering `text/plain` or no content
    /// type sends).
    Text,
}

impl Format {
    /// The format of a response by its `Content-Type`; `None` for formats we never ask for.
    pub fn of_content_type(content_type: Option<&str>) -> Option<Format> {
        let ct = content_type.unwrap_or("").trim().to_ascii_lowercase();
        if ct.starts_with("application/openmetrics-text") {
            Some(Format::OpenMetrics)
        } else if ct.is_empty() || ct.starts_with("text/plain") {
            Some(Format::Text)
        } else {
            None
        }
    }
}

/// Parses an exposition body in `format`. Samples without a timestamp get `scrape_time`.
/// OpenMetrics `_created` samples are left out: they are creation times, not observations, and
/// the classic format (and so a switch of format) does not carry them.
pub fn parse_exposition(format: Format, body: &str, scrape_time: Timestamp) -> Result<Vec<Family>, LineError> {
    let mut families = match format {
        Format::OpenMetrics => {
            // Timestamps are optional in a scrape; a sample without one is read as t = 0.
            openmetrics::parse(body.as_bytes(), ParseOptions { require_timestamps: false })?.families
        }
        Format::Text => parse_text_004(body).map_err(|(line, reason)| LineError { line, reason })?,
    };
    for fam in &mut families {
        fam.series
            .retain(|s| !(fam.kind != MetricType::Unknown && s.key.metric.ends_with("_created")));
        for s in &mut fam.series {
            for p in &mut s.samples {
                if p.t == Timestamp(0) {
                    p.t = scrape_time;
                }
            }
        }
    }
    families.retain(|f| !f.series.is_empty() || f.help.is_some());
    Ok(families)
}

/// The classic text format 0.0.4: lines classified by `prometheus_parse::LineInfo` (HELP, TYPE,
/// sample), timestamps read as integer milliseconds. The label set is re-read with our escape-aware
/// parser: `prometheus-parse`'s own label splitting breaks values holding `,` or `=` and keeps
/// escapes, and its `Scrape` stamps untimed samples with `Utc::now()`.
fn parse_text_004(body: &str) -> Result<Vec<Family>, (usize, String)> {
    use prometheus_parse::{LineInfo, SampleType};
    let mut families: Vec<Family> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut series_at: HashMap<SeriesKey, (usize, usize)> = HashMap::new();
    for (i, line) in body.lines().enumerate() {
        let line_no = i + 1;
        match LineInfo::parse(line) {
            LineInfo::Empty => {}
            LineInfo::Doc { metric_name, doc } => {
                let idx = family_index(&mut families, &mut by_name, metric_name);
                families[idx].help = Some(unescape_help(doc));
            }
            LineInfo::Type {
                metric_name,
                metric_alias,
                sample_type,
            } => {
                // For a histogram prometheus-parse names `x_bucket` and gives `x` as the alias.
                let name = metric_alias.unwrap_or(metric_name);
                let idx = family_index(&mut families, &mut by_name, &name);
                families[idx].kind = match sample_type {
                    SampleType::Counter => MetricType::Counter,
                    SampleType::Gauge => MetricType::Gauge,
                    SampleType::Histogram => MetricType::Histogram,
                    SampleType::Summary => MetricType::Summary,
                    SampleType::Untyped => MetricType::Unknown,
                };
            }
            LineInfo::Sample {
                metric_name,
                labels,
                value,
                timestamp,
            } => {
                let value = parse_value(value).ok_or_else(|| (line_no, format!("invalid value {value:?} for {metric_name}")))?;
                let t = match timestamp {
                    None => Timestamp(0),
                    Some(ts) => Timestamp(ts.parse::<i64>().map_err(|_| {
                        (
                            line_no,
                            format!("invalid timestamp {ts:?} (integer milliseconds) for {metric_name}"),
                        )
                    })?),
                };
                let labels = match labels {
                    None => Vec::new(),
                    Some(l) => {
                        parse_sample_line(&format!("{metric_name}{{{l}}} 0"))
                            .map_err(|reason| (line_no, reason))?
                            .labels
                    }
                };
                let key = SeriesKey::new(metric_name, labels);
                let (fi, si) = match series_at.get(&key) {
                    Some(&at) => at,
                    None => {
                        let fi = owning_family(&families, &by_name, metric_name)
                            .unwrap_or_else(|| family_index(&mut families, &mut by_name, metric_name));
                        families[fi].series.push(Series {
                            key: key.clone(),
                            samples: Vec::new(),
                        });
                        let at = (fi, families[fi].series.len() - 1);
                        series_at.insert(key, at);
                        at
                    }
                };
                families[fi].series[si].samples.push(Sample { t, value });
            }
            LineInfo::Ignored => {
                if !line.trim_start().starts_with('#') {
                    return Err((line_no, format!("not a sample, HELP or TYPE line: {:?}", truncate(line, 120))));
                }
            }
        }
    }
    Ok(families)
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn family_index(families: &mut Vec<Family>, by_name: &mut HashMap<String, usize>, name: &str) -> usize {
    *by_name.entry(name.to_string()).or_insert_with(|| {
        families.push(Family {
            name: name.to_string(),
            ..Family::default()
        });
        families.len() - 1
    })
}

/// The declared family a sample name belongs to: its own name, or a family whose type allows the
/// suffix (`x_bucket` of histogram `x`).
fn owning_family(families: &[Family], by_name: &HashMap<String, usize>, sample: &str) -> Option<usize> {
    if let Some(&i) = by_name.get(sample) {
        return Some(i);
    }
    let cut = sample.rfind('_')?;
    let i = *by_name.get(&sample[..cut])?;
    families[i].owns(sample).then_some(i)
}

/// The series of a scrape with the target's labels. A label the exposition already uses is kept
/// under `exported_<name>`, as Prometheus does without `honor_labels`.
pub fn target_series(families: Vec<Family>, target: &Target) -> Vec<Series> {
    with_labels(families, &target.labels)
}

/// [`target_series`] with the target's labels given as a list, sorted by name.
fn with_labels(families: Vec<Family>, target_labels: &[(String, String)]) -> Vec<Series> {
    let mut out = Vec::with_capacity(families.iter().map(|f| f.series.len()).sum());
    for fam in families {
        for s in fam.series {
            let mut labels: BTreeMap<String, String> = BTreeMap::new();
            for (k, v) in s.key.labels {
                let taken = target_labels.iter().any(|(tk, _)| *tk == k);
                labels.insert(if taken { format!("exported_{k}") } else { k }, v);
            }
            for (k, v) in target_labels {
                labels.insert(k.clone(), v.clone());
            }
            out.push(Series {
                key: SeriesKey {
                    metric: s.key.metric,
                    labels: labels.into_iter().collect(),
                },
                samples: s.samples,
            });
        }
    }
    out
}

/// The target of a pod, or `None` when it is not to be scraped: not running, no IP, not annotated
/// (when the annotation is required), or no port known.
pub fn pod_target(pod: &Pod, cfg: &KubernetesDiscovery) -> Option<Target> {
    let md = &pod.metadata;
    let annotations = md.annotations.clone().unwrap_or_default();
    let annotated = annotations.get(ANNOTATION_SCRAPE).map(|v| v.trim()) == Some("true");
    if cfg.require_scrape_annotation && !annotated {
        return None;
    }
    if annotations.get(ANNOTATION_SCRAPE).map(|v| v.trim()) == Some("false") {
        return None;
    }
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() != Some("Running") {
        return None;
    }
    let ip = status.pod_ip.as_deref().filter(|ip| !ip.is_empty())?;
    let port: u16 = match annotations.get(ANNOTATION_PORT) {
        Some(p) => p.trim().parse().ok()?,
        None => pod
            .spec
            .as_ref()?
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .map(|p| p.container_port)
            .next()
            .and_then(|p| u16::try_from(p).ok())?,
    };
    let path = annotations.get(ANNOTATION_PATH).map(String::as_str).unwrap_or("/metrics");
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let scheme = match annotations.get(ANNOTATION_SCHEME).map(String::as_str) {
        Some("https") => "https",
        _ => "http",
    };
    let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() };
    let mut extra: Vec<(String, String)> = Vec::new();
    if let Some(ns) = &md.namespace {
        extra.push(("namespace".into(), ns.clone()));
    }
    if let Some(name) = &md.name {
        extra.push(("pod".into(), name.clone()));
    }
    if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
        extra.push(("node".into(), node));
    }
    let pod_labels = md.labels.clone().unwrap_or_default();
    for (from, to) in &cfg.copy_pod_labels {
        if let Some(v) = pod_labels.get(from) {
            extra.push((to.clone(), v.clone()));
        }
    }
    Some(Target::new(&format!("{scheme}://{host}:{port}{path}"), &cfg.job, extra))
}

/// Lists the pods `cfg` selects and returns the targets among them, sorted by URL.
pub async fn discover_pods(client: &kube::Client, cfg: &KubernetesDiscovery) -> Result<Vec<Target>, ScrapeError> {
    use kube::api::{Api, ListParams};
    let mut params = ListParams::default();
    if !cfg.label_selector.trim().is_empty() {
        params = params.labels(cfg.label_selector.trim());
    }
    let apis: Vec<Api<Pod>> = if cfg.namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        cfg.namespaces.iter().map(|ns| Api::namespaced(client.clone(), ns)).collect()
    };
    let mut out = Vec::new();
    for api in apis {
        let pods = api.list(&params).await.map_err(ScrapeError::Discovery)?;
        out.extend(pods.items.iter().filter_map(|p| pod_target(p, cfg)));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Scrapes targets over HTTP.
#[derive(Debug, Clone)]
pub struct Scraper {
    cfg: ScrapeConfig,
    http: reqwest::Client,
}

/// One successful scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Scraped {
    pub format: Format,
    pub families: Vec<Family>,
}

fn malformed(url: &str, e: LineError) -> ScrapeError {
    ScrapeError::Malformed {
        url: url.to_string(),
        line: e.line,
        reason: e.reason,
    }
}

/// A response body read for one target, to be stored ([`ParsedScrape::store`]): the step of
/// [`Scraper::scrape_into`] between the HTTP request and the store (public for the benchmark).
#[derive(Debug)]
pub struct ParsedScrape<'a>(Parsed<'a>);

#[derive(Debug)]
enum Parsed<'a> {
    /// OpenMetrics: names and labels borrowed from the body and from the target's labels.
    Streaming(ExpositionBatch<'a>),
    /// The classic text format: owned series with the target's labels, and the families'
    /// (name, type, help).
    Families {
        metadata: Vec<(String, MetricType, String)>,
        series: Vec<Series>,
    },
}

impl<'a> ParsedScrape<'a> {
    /// Reads `body` in `format` for a target with `labels`; samples without a timestamp get `now`.
    pub fn parse(format: Format, body: &'a str, labels: &'a TargetLabels, now: Timestamp) -> Result<ParsedScrape<'a>, LineError> {
        Ok(ParsedScrape(match format {
            Format::OpenMetrics => Parsed::Streaming(exposition::parse_scrape(body, now, labels).map_err(|e| LineError {
                line: e.line,
                reason: e.reason,
            })?),
            Format::Text => {
                let families = parse_exposition(format, body, now)?;
                let metadata = families
                    .iter()
                    .map(|f| (f.name.clone(), f.kind, f.help.clone().unwrap_or_default()))
                    .collect();
                Parsed::Families {
                    metadata,
                    series: with_labels(families, labels.labels()),
                }
            }
        }))
    }

    /// Samples to store.
    pub fn sample_count(&self) -> usize {
        match &self.0 {
            Parsed::Streaming(b) => b.samples.sample_count(),
            Parsed::Families { series, .. } => series.iter().map(|s| s.samples.len()).sum(),
        }
    }

    /// Notes the families' types and help in `ingest`, then delivers the samples: a batch the
    /// limiter refuses is retried after its Retry-After while the waits add up to at most
    /// `max_wait`, then dropped and counted ([`deliver`]).
    pub async fn store(self, ingest: &Ingest, clock: &Clock, max_wait: Duration) -> Delivered {
        match self.0 {
            Parsed::Streaming(batch) => {
                // As the family path: a family is noted when it kept a sample or has a help text.
                for f in batch.families.iter().filter(|f| f.samples > 0 || f.help.is_some()) {
                    ingest.note_metadata(f.name, f.kind, f.help.as_deref().unwrap_or(""));
                }
                deliver_borrowed(ingest, Source::Scrape, &batch.samples, clock, max_wait).await
            }
            Parsed::Families { metadata, series } => {
                for (name, kind, help) in &metadata {
                    ingest.note_metadata(name, *kind, help);
                }
                deliver(ingest, Source::Scrape, series, clock, max_wait).await
            }
        }
    }
}

impl Scraper {
    pub fn new(cfg: ScrapeConfig) -> Result<Scraper, ScrapeError> {
        let http = http_client(Duration::from_secs(cfg.scrape_timeout_secs.max(1))).map_err(ScrapeError::Client)?;
        Ok(Scraper { cfg, http })
    }

    pub fn config(&self) -> &ScrapeConfig {
        &self.cfg
    }

    /// Scrapes `url` once; samples without a timestamp get `now`.
    pub async fn scrape(&self, url: &str, now: Timestamp) -> Result<Scraped, ScrapeError> {
        let (format, text) = self.fetch(url).await?;
        let families = parse_exposition(format, &text, now).map_err(|e| malformed(url, e))?;
        Ok(Scraped { format, families })
    }

    /// The body `url` answers, and its format by content type.
    async fn fetch(&self, url: &str) -> Result<(Format, String), ScrapeError> {
        let accept = if self.cfg.prefer_openmetrics {
            ACCEPT_OPENMETRICS
        } else {
            ACCEPT_TEXT
        };
        let unreachable = |source| ScrapeError::Unreachable {
            url: url.to_string(),
            source,
        };
        let mut resp = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, accept)
            .header("X-Prometheus-Scrape-Timeout-Seconds", self.cfg.scrape_timeout_secs.to_string())
            .send()
            .await
            .map_err(unreachable)?;
        if !resp.status().is_success() {
            return Err(ScrapeError::Status {
                url: url.to_string(),
                status: resp.status().as_u16(),
            });
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let format = Format::of_content_type(content_type.as_deref()).ok_or_else(|| ScrapeError::UnsupportedFormat {
            url: url.to_string(),
            content_type: content_type.clone().unwrap_or_default(),
        })?;
        let too_large = || ScrapeError::TooLarge {
            url: url.to_string(),
            max_body_bytes: self.cfg.max_body_bytes,
        };
        if resp.content_length().is_some_and(|n| n as usize > self.cfg.max_body_bytes) {
            return Err(too_large());
        }
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > self.cfg.max_body_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(body).map_err(|e| ScrapeError::Malformed {
            url: url.to_string(),
            line: 0,
            reason: format!("not UTF-8: {e}"),
        })?;
        Ok((format, text))
    }

    /// Scrapes `target` and stores what it served in `ingest` ([`ParsedScrape`]); the scrape
    /// (request and parse) is timed and counted either way. A batch the ingest limiter refuses
    /// is retried after its Retry-After for up to `scrape_interval_secs`, then dropped and
    /// counted ([`deliver`]). Returns the samples stored.
    pub async fn scrape_into(&self, target: &Target, ingest: &Ingest, clock: &Clock) -> Result<u64, ScrapeError> {
        let started = Instant::now();
        let now = clock();
        let labels = TargetLabels::new(target.labels.iter().cloned());
        let observe = |ok| ingest.observe_scrape(&target.url, started.elapsed().as_secs_f64(), ok);
        let (format, text) = self.fetch(&target.url).await.inspect_err(|_| observe(false))?;
        let parsed = ParsedScrape::parse(format, &text, &labels, now).map_err(|e| malformed(&target.url, e));
        observe(parsed.is_ok());
        let parsed = parsed?;
        let wait = Duration::from_secs(self.cfg.scrape_interval_secs.max(1));
        Ok(parsed.store(ingest, clock, wait).await.accepted)
    }

    /// The scrape loop: every `scrape_interval_secs` each target is scraped (concurrently); pods are
    /// listed again every `refresh_interval_secs` (a failed listing keeps the previous targets).
    /// Runs until `shutdown` completes.
    pub async fn run(self, ingest: Arc<Ingest>, kube: Option<kube::Client>, clock: Clock, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let statics: Vec<Target> = self
            .cfg
            .targets
            .iter()
            .map(|t| Target::new(&t.url, &t.job, t.labels.clone()))
            .collect();
        let mut pods: Vec<Target> = Vec::new();
        let mut listed_at: Option<Instant> = None;
        let this = Arc::new(self);
        loop {
            if let (Some(k), Some(client)) = (&this.cfg.kubernetes, &kube) {
                if listed_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(k.refresh_interval_secs.max(1))) {
                    match discover_pods(client, k).await {
                        Ok(found) => {
                            tracing::debug!(targets = found.len(), "Pods listed.");
                            pods = found;
                        }
                        Err(e) => tracing::warn!(error = %e, "Pod discovery failed; keeping the previous targets."),
                    }
                    listed_at = Some(Instant::now());
                }
            }
            let mut tasks = tokio::task::JoinSet::new();
            for target in statics.iter().chain(pods.iter()).cloned() {
                let (this, ingest, clock) = (this.clone(), ingest.clone(), clock.clone());
                tasks.spawn(async move {
                    if let Err(e) = this.scrape_into(&target, &ingest, &clock).await {
                        tracing::warn!(target = %target.url, reason = e.metric_label(), error = %e, "Scrape failed.");
                    }
                });
            }
            let interval = tokio::time::sleep(Duration::from_secs(this.cfg.scrape_interval_secs.max(1)));
            tokio::pin!(interval);
            loop {
                tokio::select! {
                    _ = &mut shutdown => {
                        tasks.abort_all();
                        return;
                    }
                    done = tasks.join_next(), if !tasks.is_empty() => {
                        if done.is_none() {
                            continue;
                        }
                    }
                    _ = &mut interval => break,
                }
            }
            // Scrapes still running at the next tick are abandoned (they overran the interval).
            tasks.abort_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::IngestConfig;

    const T: Timestamp = Timestamp(1_700_000_000_000);

    const TEXT: &str = "# HELP http_requests_total Requests served.\n\
# TYPE http_requests_total counter\n\
http_requests_total{code=\"200\",path=\"/a,b=c\"} 1027 1395066363000\n\
http_requests_total{code=\"500\",path=\"/\"} 3\n\
# TYPE rpc_duration_seconds histogram\n\
rpc_duration_seconds_bucket{le=\"0.1\"} 2\n\
rpc_duration_seconds_bucket{le=\"+Inf\"} 5\n\
rpc_duration_seconds_sum 1.5\n\
rpc_duration_seconds_count 5\n\
# a comment\n\
\n\
temperature{room=\"a \\\"big\\\" one\"} -3.5e1\n";

    #[test]
    fn classic_text_keeps_types_escapes_and_millisecond_timestamps() {
        let fams = parse_exposition(Format::Text, TEXT, T).unwrap();
        let names: Vec<_> = fams.iter().map(|f| (f.name.as_str(), f.kind, f.series.len())).collect();
        assert_eq!(
            names,
            [
                ("http_requests_total", MetricType::Counter, 2),
                ("rpc_duration_seconds", MetricType::Histogram, 4),
                ("temperature", MetricType::Unknown, 1)
            ]
        );
        assert_eq!(fams[0].help.as_deref(), Some("Requests served."));
        let first = &fams[0].series[0];
        assert_eq!(first.key.label("path"), Some("/a,b=c"), "a comma and `=` inside a value survive");
        assert_eq!(
            first.samples,
            vec![Sample {
                t: Timestamp(1_395_066_363_000),
                value: 1027.0
            }]
        );
        assert_eq!(fams[0].series[1].samples[0].t, T, "no timestamp: the scrape time");
        assert_eq!(fams[2].series[0].key.label("room"), Some("a \"big\" one"));
        assert_eq!(fams[2].series[0].samples[0].value, -35.0);
    }

    #[test]
    fn openmetrics_timestamps_are_seconds_and_created_samples_are_dropped() {
        let om = "# TYPE http_requests counter\nhttp_requests_total{code=\"200\"} 1027 1395066363.5\nhttp_requests_created{code=\"200\"} 1395000000\n# TYPE up gauge\nup 1\n# EOF\n";
        let fams = parse_exposition(Format::OpenMetrics, om, T).unwrap();
        assert_eq!(fams[0].series.len(), 1);
        assert_eq!(fams[0].series[0].samples[0].t, Timestamp(1_395_066_363_500));
        assert_eq!(fams[1].series[0].samples[0].t, T);
    }

    #[test]
    fn malformed_lines_fail_the_scrape_with_line_and_reason() {
        let e = parse_exposition(Format::Text, "up 1\nup{a=\"1\"} x\n", T).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("invalid value"), "{}", e.reason);
        let e = parse_exposition(Format::Text, "up 1\nthis is not a metric line\n", T).unwrap_err();
        assert_eq!(e.line, 2, "{}", e.reason);
        let e = parse_exposition(Format::Text, "up 1 12.5\n", T).unwrap_err();
        assert_eq!(e.line, 1, "0.0.4 timestamps are integers");
        assert!(parse_exposition(Format::OpenMetrics, "up 1\n", T)
            .unwrap_err()
            .reason
            .contains("EOF"));
    }

    #[test]
    fn content_types_choose_the_parser() {
        assert_eq!(
            Format::of_content_type(Some("application/openmetrics-text; version=1.0.0; charset=utf-8")),
            Some(Format::OpenMetrics)
        );
        assert_eq!(Format::of_content_type(Some("text/plain; version=0.0.4")), Some(Format::Text));
        assert_eq!(Format::of_content_type(None), Some(Format::Text));
        assert_eq!(Format::of_content_type(Some("application/vnd.google.protobuf")), None);
    }

    #[test]
    fn target_labels_are_added_and_clashing_ones_exported() {
        let fams = parse_exposition(Format::Text, "up{job=\"inner\",x=\"1\"} 1\n", T).unwrap();
        let target = Target::new("http://10.0.0.7:9100/metrics", "node", [("cell".to_string(), "cell-2".to_string())]);
        let s = target_series(fams, &target);
        assert_eq!(s.len(), 1);
        let k = &s[0].key;
        assert_eq!(k.label("job"), Some("node"));
        assert_eq!(k.label("exported_job"), Some("inner"));
        assert_eq!(k.label("instance"), Some("10.0.0.7:9100"));
        assert_eq!(k.label("cell"), Some("cell-2"));
        assert_eq!(k.label("x"), Some("1"));
    }

    /// OpenMetrics with what tells the two paths apart if they differ: labels clashing with the
    /// target's (`job`, `cell`, and an `exported_cell` of its own), `_created` samples of a
    /// counter and an untyped `odd_created`, a family with only a type, one with only help, an
    /// explicit timestamp and a zero one, escapes.
    const OM: &str = "# HELP http_requests Requests \\\\ by code.\n# TYPE http_requests counter\n\
http_requests_total{code=\"200\",job=\"inner\",path=\"/a,b=c\"} 1027 1699999940.5\n\
http_requests_created{code=\"200\",job=\"inner\",path=\"/a,b=c\"} 1395000000\n\
http_requests_total{code=\"500\",instance=\"x\",path=\"/\"} 3\n\
# TYPE rpc_duration_seconds histogram\n\
rpc_duration_seconds_bucket{le=\"0.1\"} 2\n\
rpc_duration_seconds_bucket{le=\"+Inf\"} 5\n\
rpc_duration_seconds_sum 1.5\n\
rpc_duration_seconds_count 5\n\
# TYPE only_typed gauge\n\
# HELP only_help A family without samples.\n\
temperature{room=\"a \\\"big\\\" one\",exported_job=\"own\",exported_cell=\"own-cell\",cell=\"c-9\"} -3.5e1 0\n\
odd_created 1\n\
# EOF\n";

    /// What `scrape_into` did before the streaming path: families, target labels, metadata noted
    /// family by family, owned series delivered.
    async fn store_by_families(ingest: &Ingest, body: &str, target: &Target, clock: &Clock) -> Delivered {
        let families = parse_exposition(Format::OpenMetrics, body, clock()).unwrap();
        for fam in &families {
            ingest.note_metadata(&fam.name, fam.kind, fam.help.as_deref().unwrap_or(""));
        }
        deliver(ingest, Source::Scrape, target_series(families, target), clock, Duration::ZERO).await
    }

    #[tokio::test]
    async fn an_openmetrics_scrape_stores_what_the_family_path_stored() {
        let clock: Clock = Arc::new(|| T);
        let target = Target::new("http://10.0.0.7:9100/metrics", "node", [("cell".to_string(), "cell-2".to_string())]);
        let labels = TargetLabels::new(target.labels.iter().cloned());
        let (old, new) = (Ingest::new(Default::default()), Ingest::new(Default::default()));
        let by_families = store_by_families(&old, OM, &target, &clock).await;
        let parsed = ParsedScrape::parse(Format::OpenMetrics, OM, &labels, T).unwrap();
        assert!(matches!(parsed.0, Parsed::Streaming(_)), "OpenMetrics takes the streaming path");
        assert_eq!(parsed.sample_count(), 8, "2 counters, 4 histogram series, a gauge, odd_created");
        let streaming = parsed.store(&new, &clock, Duration::ZERO).await;
        assert_eq!(streaming, by_families);
        assert_eq!(streaming.accepted, 8);
        // Metadata of families without samples shows when samples of them come from elsewhere.
        for ing in [&old, &new] {
            let later = ["only_typed", "only_help"].map(|m| (SeriesKey::new(m, []), Sample { t: T, value: 1.0 }));
            ing.push_samples(Source::RemoteWrite, later.to_vec(), T).unwrap();
        }
        let fams = new.families(Timestamp(0));
        assert_eq!(fams, old.families(Timestamp(0)), "the same series, keys, samples, types and help");

        let find = |metric: &str, label: &str, value: &str| {
            fams.iter()
                .flat_map(|f| &f.series)
                .find(|s| s.key.metric == metric && s.key.label(label) == Some(value))
                .unwrap_or_else(|| panic!("no {metric}{{{label}={value}}}"))
        };
        let ok = find("http_requests_total", "code", "200");
        assert_eq!(
            ok.key.labels,
            [
                ("cell", "cell-2"),
                ("code", "200"),
                ("exported_job", "inner"),
                ("instance", "10.0.0.7:9100"),
                ("job", "node"),
                ("path", "/a,b=c")
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(ok.samples[0].t, Timestamp(1_699_999_940_500), "its own timestamp");
        let room = find("temperature", "room", "a \"big\" one");
        assert_eq!(
            room.key.label("exported_cell"),
            Some("own-cell"),
            "the exposition's own label wins over the renamed `cell`"
        );
        assert_eq!(room.key.label("cell"), Some("cell-2"));
        assert_eq!(room.samples[0].t, T, "timestamp 0 is the scrape time");
        assert!(fams.iter().flat_map(|f| &f.series).all(|s| s.key.metric != "http_requests_created"));
        let kinds: Vec<_> = fams.iter().map(|f| (f.name.as_str(), f.kind, f.help.as_deref())).collect();
        assert_eq!(
            kinds,
            [
                ("http_requests", MetricType::Counter, Some("Requests \\ by code.")),
                ("odd_created", MetricType::Unknown, None),
                ("only_help", MetricType::Unknown, Some("A family without samples.")),
                ("only_typed", MetricType::Unknown, None),
                ("rpc_duration_seconds", MetricType::Histogram, None),
                ("temperature", MetricType::Unknown, None),
            ],
            "a type without samples or help is not noted"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_openmetrics_scrape_over_the_limit_waits_then_drops_and_counts() {
        // 4 samples/s: batches of 2; the bucket holds 4, the clock never moves: two batches pass,
        // the third waits 1 s once (all `max_wait` allows) and is dropped, the fourth at once.
        let ingest = Ingest::new(IngestConfig {
            max_ingest_samples_per_sec: 4,
            ..IngestConfig::default()
        });
        let clock: Clock = Arc::new(|| T);
        let labels = TargetLabels::new([("job".to_string(), "j".to_string())]);
        let body = "a 1\nb 2\nc 3\nd 4\ne 5\nf 6\ng 7\n# EOF\n";
        let parsed = ParsedScrape::parse(Format::OpenMetrics, body, &labels, T).unwrap();
        let started = tokio::time::Instant::now();
        let d = parsed.store(&ingest, &clock, Duration::from_secs(1)).await;
        assert_eq!((d.accepted, d.dropped_throttled), (4, 3));
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert_eq!(
            ingest.throttled_batches(Source::Scrape),
            3,
            "2 tries of the third batch, 1 of the fourth"
        );
        assert_eq!(ingest.with_store(|s| s.series_count()), 4);
    }

    fn pod(name: &str, annotations: &[(&str, &str)], ip: Option<&str>, phase: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "cell-1", "labels": {"app": "ledger"},
                         "annotations": annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()},
            "spec": {"nodeName": "node-1", "containers": [{"name": "app", "ports": [{"containerPort": 8080}]}]},
            "status": {"phase": phase, "podIP": ip}
        }))
        .unwrap()
    }

    fn discovery(require: bool) -> KubernetesDiscovery {
        serde_json::from_value(serde_json::json!({"require_scrape_annotation": require, "copy_pod_labels": {"app": "service"}})).unwrap()
    }

    #[test]
    fn annotated_running_pods_become_targets_with_pod_labels() {
        let p = pod(
            "ledger-1",
            &[
                ("prometheus.io/scrape", "true"),
                ("prometheus.io/port", "9102"),
                ("prometheus.io/path", "stats"),
            ],
            Some("10.1.2.3"),
            "Running",
        );
        let t = pod_target(&p, &discovery(true)).unwrap();
        assert_eq!(t.url, "http://10.1.2.3:9102/stats");
        let labels: BTreeMap<_, _> = t.labels.iter().cloned().collect();
        assert_eq!(labels["namespace"], "cell-1");
        assert_eq!(labels["pod"], "ledger-1");
        assert_eq!(labels["node"], "node-1");
        assert_eq!(labels["service"], "ledger");
        assert_eq!(labels["job"], "kubernetes-pods");
        assert_eq!(labels["instance"], "10.1.2.3:9102");
    }

    #[test]
    fn unannotated_pending_or_opted_out_pods_are_not_targets() {
        let plain = pod("a", &[], Some("10.0.0.1"), "Running");
        assert_eq!(pod_target(&plain, &discovery(true)), None);
        assert_eq!(
            pod_target(&plain, &discovery(false)).unwrap().url,
            "http://10.0.0.1:8080/metrics",
            "selector mode: first container port"
        );
        let pending = pod("b", &[("prometheus.io/scrape", "true")], None, "Pending");
        assert_eq!(pod_target(&pending, &discovery(true)), None);
        let opted_out = pod("c", &[("prometheus.io/scrape", "false")], Some("10.0.0.2"), "Running");
        assert_eq!(pod_target(&opted_out, &discovery(false)), None);
        let bad_port = pod(
            "d",
            &[("prometheus.io/scrape", "true"), ("prometheus.io/port", "http")],
            Some("10.0.0.3"),
            "Running",
        );
        assert_eq!(pod_target(&bad_port, &discovery(true)), None);
    }

    #[test]
    fn config_defaults_and_unknown_keys() {
        let cfg: ScrapeConfig = serde_json::from_str(r#"{"targets":[{"url":"http://a:1/metrics"}]}"#).unwrap();
        assert_eq!((cfg.scrape_interval_secs, cfg.scrape_timeout_secs), (15, 10));
        assert_eq!(cfg.targets[0].job, "static");
        assert!(cfg.prefer_openmetrics);
        let err = serde_json::from_str::<ScrapeConfig>(r#"{"interval":5}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `interval`"), "{err}");
    }
}
