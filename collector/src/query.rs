//! The Prometheus HTTP API as a source: PromQL queries per signal evaluated with
//! `/api/v1/query_range`, a backfill of history on start so detectors warm up from the past, then
//! incremental polls; and raw samples through range-vector selectors (`/api/v1/query` with
//! `metric[d]` at an end time), which `record` uses so a recording is exact, not resampled.
//!
//! Layout:
//! - [`QueryConfig`]: the typed config (`url`, `queries`, `step_secs`, `backfill_secs`, …).
//! - [`PromClient`]: one method per API call; Prometheus' JSON decoded by [`parse_result`] (pure).
//! - [`range_chunks`], [`poll_window`]: the pure planning of which ranges to ask for.
//! - [`QuerySource`]: the polling loop feeding [`Ingest`].
//!
//! Time comes from the caller ([`Clock`]); nothing here reads the wall clock.

use crate::ingest::{Ingest, Source};
use crate::pull::{deliver, http_client, Clock};
use cellwarden_models::openmetrics::parse_value;
use cellwarden_models::{MetricType, Sample, Series, SeriesKey, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// Prometheus refuses a `query_range` of more than 11,000 points per series; chunks stay under
/// it with a margin.
pub const MAX_POINTS_PER_QUERY: i64 = 10_000;

/// The Prometheus query source in `cellwarden.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// Base URL of the Prometheus HTTP API, e.g. `http://prometheus.monitoring:9090`.
    pub url: String,
    /// The queries to evaluate; each result series is stored under the query's `name`.
    pub queries: Vec<QuerySpec>,
    /// Resolution of `query_range`, seconds.
    #[serde(default = "default_step_secs")]
    pub step_secs: u64,
    /// History read on start, seconds (0: none), so detectors start warm.
    #[serde(default = "default_backfill_secs")]
    pub backfill_secs: u64,
    /// Time between two polls, seconds.
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
    /// Timeout of one HTTP request, seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// A file holding a bearer token sent as `Authorization: Bearer …` (e.g. a service-account
    /// token); read once at start.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
}

fn default_step_secs() -> u64 {
    30
}
fn default_backfill_secs() -> u64 {
    3600
}
fn default_interval_secs() -> u64 {
    30
}
fn default_timeout_secs() -> u64 {
    30
}

/// One configured query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySpec {
    /// The metric name its results are stored under, e.g. `container_memory_working_set_bytes` or
    /// `pod_server_latency_p99_seconds` (so the signal mapping of FIXTURES.md applies to it).
    pub name: String,
    /// The PromQL expression, e.g. `histogram_quantile(0.99, sum by (le, pod) (rate(x_bucket[5m])))`.
    pub promql: String,
}

/// A request to Prometheus failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The configured URL is not a usable http(s) URL.
    #[error("{url:?} is not a valid Prometheus URL: {reason}")]
    BadUrl { url: String, reason: String },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// Prometheus could not be reached or did not answer in time.
    #[error("cannot reach Prometheus at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// Prometheus answered an error (bad PromQL, too many points, timeout on its side, …).
    #[error("Prometheus refused {url}: {error_type}: {error}")]
    Api { url: String, error_type: String, error: String },
    /// An HTTP error status without Prometheus' JSON error body (a proxy, a wrong path).
    #[error("{url} answered HTTP {status}: {body}")]
    Status { url: String, status: u16, body: String },
    /// The answer was not the JSON Prometheus' API documents.
    #[error("unexpected answer from {url}: {reason}")]
    Decode { url: String, reason: String },
    /// The bearer token file could not be read.
    #[error("cannot read the bearer token file {path}: {source}")]
    TokenFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl QueryError {
    /// A bounded label for metrics about failures.
    pub fn metric_label(&self) -> &'static str {
        match self {
            QueryError::BadUrl { .. } => "bad_url",
            QueryError::Client(_) => "client",
            QueryError::Unreachable { .. } => "unreachable",
            QueryError::Api { .. } => "api",
            QueryError::Status { .. } => "status",
            QueryError::Decode { .. } => "decode",
            QueryError::TokenFile { .. } => "token_file",
        }
    }
}

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct QueryData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct MatrixEntry {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

#[derive(Deserialize)]
struct VectorEntry {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

#[derive(Deserialize)]
struct MetadataEntry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    help: String,
}

/// The `data` of a successful API answer, or the error Prometheus gave.
fn api_data(url: &str, status: u16, body: &[u8]) -> Result<serde_json::Value, QueryError> {
    let resp: ApiResponse = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) if (200..300).contains(&status) => {
            return Err(QueryError::Decode {
                url: url.to_string(),
                reason: e.to_string(),
            })
        }
        Err(_) => {
            return Err(QueryError::Status {
                url: url.to_string(),
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
            })
        }
    };
    if resp.status != "success" {
        return Err(QueryError::Api {
            url: url.to_string(),
            error_type: resp.error_type.unwrap_or_else(|| "unknown".into()),
            error: resp.error.unwrap_or_default(),
        });
    }
    resp.data.ok_or_else(|| QueryError::Decode {
        url: url.to_string(),
        reason: "no `data` in a successful answer".into(),
    })
}

fn sample_of(url: &str, (t, v): (f64, String)) -> Result<Sample, QueryError> {
    let value = parse_value(&v).ok_or_else(|| QueryError::Decode {
        url: url.to_string(),
        reason: format!("value {v:?} is not a number"),
    })?;
    Ok(Sample {
        t: Timestamp::from_secs_f64(t),
        value,
    })
}

fn key_of(metric: BTreeMap<String, String>, name: Option<&str>) -> SeriesKey {
    let mut labels = metric;
    let own = labels.remove("__name__");
    SeriesKey::new(name.map(str::to_string).or(own).unwrap_or_default(), labels)
}

/// Decodes the body of `/api/v1/query` or `/api/v1/query_range` into series. A matrix keeps every
/// sample; a vector gives one sample per series; a scalar is a series without labels. Series are
/// named `name` when given, else by their `__name__` label (empty when the expression dropped it).
pub fn parse_result(url: &str, status: u16, body: &[u8], name: Option<&str>) -> Result<Vec<Series>, QueryError> {
    let data: QueryData = serde_json::from_value(api_data(url, status, body)?).map_err(|e| QueryError::Decode {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    let decode = |e: serde_json::Error| QueryError::Decode {
        url: url.to_string(),
        reason: format!("{} result: {e}", data.result_type),
    };
    let mut out = Vec::new();
    match data.result_type.as_str() {
        "matrix" => {
            let entries: Vec<MatrixEntry> = serde_json::from_value(data.result.clone()).map_err(decode)?;
            for e in entries {
                let samples = e.values.into_iter().map(|p| sample_of(url, p)).collect::<Result<Vec<_>, _>>()?;
                out.push(Series {
                    key: key_of(e.metric, name),
                    samples,
                });
            }
        }
        "vector" => {
            let entries: Vec<VectorEntry> = serde_json::from_value(data.result.clone()).map_err(decode)?;
            for e in entries {
                out.push(Series {
                    key: key_of(e.metric, name),
                    samples: vec![sample_of(url, e.value)?],
                });
            }
        }
        "scalar" => {
            let p: (f64, String) = serde_json::from_value(data.result.clone()).map_err(decode)?;
            out.push(Series {
                key: key_of(BTreeMap::new(), name),
                samples: vec![sample_of(url, p)?],
            });
        }
        other => {
            return Err(QueryError::Decode {
                url: url.to_string(),
                reason: format!("result type {other:?} holds no samples"),
            })
        }
    }
    Ok(out)
}

/// Splits `[start, end]` evaluated every `step_secs` into inclusive sub-ranges of at most
/// `max_points` points each, contiguous and without a point in two of them.
pub fn range_chunks(start: Timestamp, end: Timestamp, step_secs: u64, max_points: i64) -> Vec<(Timestamp, Timestamp)> {
    let step = (step_secs.max(1) * 1000) as i64;
    let span = step * (max_points.max(1) - 1);
    let mut out = Vec::new();
    let mut s = start.millis();
    while s <= end.millis() {
        let e = (s + span).min(end.millis());
        out.push((Timestamp(s), Timestamp(e)));
        s = e + step;
    }
    out
}

/// The range a poll at `now` should evaluate: step-aligned, from the start of the backfill on the
/// first poll (`last_end` is `None`), else from the step after the last range's end. `None` when
/// no new step has completed.
pub fn poll_window(last_end: Option<Timestamp>, now: Timestamp, step_secs: u64, backfill_secs: u64) -> Option<(Timestamp, Timestamp)> {
    let step = (step_secs.max(1) * 1000) as i64;
    let end = now.millis().div_euclid(step) * step;
    let start = match last_end {
        None => (end - backfill_secs as i64 * 1000).div_euclid(step) * step,
        Some(l) => l.millis() + step,
    };
    (start <= end).then_some((Timestamp(start), Timestamp(end)))
}

/// Appends `more` to `into`, merging series with equal keys; samples stay in time order and a
/// timestamp already present is not added twice (chunk boundaries).
pub fn merge_series(into: &mut BTreeMap<SeriesKey, Vec<Sample>>, more: Vec<Series>) {
    for s in more {
        let dst = into.entry(s.key).or_default();
        for p in s.samples {
            match dst.last() {
                Some(last) if last.t >= p.t => {
                    if let Err(i) = dst.binary_search_by(|x| x.t.cmp(&p.t)) {
                        dst.insert(i, p);
                    }
                }
                _ => dst.push(p),
            }
        }
    }
}

/// A client of one Prometheus' HTTP API.
#[derive(Debug, Clone)]
pub struct PromClient {
    base: reqwest::Url,
    http: reqwest::Client,
    bearer_token: Option<String>,
}

fn secs_param(t: Timestamp) -> String {
    format!("{:.3}", t.as_secs_f64())
}

impl PromClient {
    /// A client of the Prometheus at `base_url` (`http://host:9090`, a path prefix allowed).
    pub fn new(base_url: &str, timeout: Duration, bearer_token: Option<String>) -> Result<PromClient, QueryError> {
        let bad = |reason: String| QueryError::BadUrl {
            url: base_url.to_string(),
            reason,
        };
        let mut base = reqwest::Url::parse(base_url).map_err(|e| bad(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad(format!("scheme {:?} is not http or https", base.scheme())));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        Ok(PromClient {
            base,
            http: http_client(timeout).map_err(QueryError::Client)?,
            bearer_token,
        })
    }

    /// The base URL as given (normalised with a trailing `/`).
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    async fn get(&self, path: &str, params: &[(&str, String)]) -> Result<(String, u16, Vec<u8>), QueryError> {
        let mut url = self.base.join(path).map_err(|e| QueryError::BadUrl {
            url: format!("{}{path}", self.base),
            reason: e.to_string(),
        })?;
        if !params.is_empty() {
            url.query_pairs_mut().extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let shown = format!("{}{path}", self.base);
        let mut req = self.http.get(url);
        if let Some(t) = &self.bearer_token {
            req = req.bearer_auth(t);
        }
        let unreachable = |source| QueryError::Unreachable {
            url: shown.clone(),
            source,
        };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(unreachable)?;
        Ok((shown, status, body.to_vec()))
    }

    /// `/api/v1/query_range` over `[start, end]` every `step_secs`, in chunks under Prometheus'
    /// points limit, merged. Series are named `name` (else by `__name__`).
    pub async fn query_range(
        &self,
        promql: &str,
        start: Timestamp,
        end: Timestamp,
        step_secs: u64,
        name: Option<&str>,
    ) -> Result<Vec<Series>, QueryError> {
        let mut merged = BTreeMap::new();
        for (s, e) in range_chunks(start, end, step_secs, MAX_POINTS_PER_QUERY) {
            let params = [
                ("query", promql.to_string()),
                ("start", secs_param(s)),
                ("end", secs_param(e)),
                ("step", step_secs.max(1).to_string()),
            ];
            let (url, status, body) = self.get("api/v1/query_range", &params).await?;
            merge_series(&mut merged, parse_result(&url, status, &body, name)?);
        }
        Ok(merged.into_iter().map(|(key, samples)| Series { key, samples }).collect())
    }

    /// The raw samples of `selector` (a series selector such as `{__name__="up"}`) with
    /// timestamps in `(after, until]`: a range-vector query `selector[d]` at `until`. The result
    /// is filtered to the half-open interval whatever the server's boundary rule (Prometheus 2
    /// includes both ends of a range, Prometheus 3 only the right one), so consecutive calls
    /// never return a sample twice.
    pub async fn query_raw(&self, selector: &str, after: Timestamp, until: Timestamp) -> Result<Vec<Series>, QueryError> {
        let range_ms = (until.millis() - after.millis()).max(1);
        let params = [("query", format!("{selector}[{range_ms}ms]")), ("time", secs_param(until))];
        let (url, status, body) = self.get("api/v1/query", &params).await?;
        let mut series = parse_result(&url, status, &body, None)?;
        for s in &mut series {
            s.samples.retain(|p| p.t > after && p.t <= until);
        }
        series.retain(|s| !s.samples.is_empty());
        Ok(series)
    }

    /// Metric names with samples in `[start, end]` (`/api/v1/label/__name__/values`).
    pub async fn metric_names(&self, start: Timestamp, end: Timestamp) -> Result<Vec<String>, QueryError> {
        let params = [("start", secs_param(start)), ("end", secs_param(end))];
        let (url, status, body) = self.get("api/v1/label/__name__/values", &params).await?;
        serde_json::from_value(api_data(&url, status, &body)?).map_err(|e| QueryError::Decode {
            url,
            reason: e.to_string(),
        })
    }

    /// Type and help per metric family, as the scraped targets declared them (`/api/v1/metadata`).
    /// Empty for data Prometheus did not scrape itself (remote-written or imported with promtool).
    pub async fn metadata(&self) -> Result<HashMap<String, (MetricType, String)>, QueryError> {
        let (url, status, body) = self.get("api/v1/metadata", &[]).await?;
        let entries: HashMap<String, Vec<MetadataEntry>> =
            serde_json::from_value(api_data(&url, status, &body)?).map_err(|e| QueryError::Decode {
                url,
                reason: e.to_string(),
            })?;
        Ok(entries
            .into_iter()
            .filter_map(|(name, list)| {
                let first = list.into_iter().next()?;
                Some((name, (MetricType::parse(&first.kind).unwrap_or_default(), first.help)))
            })
            .collect())
    }
}

/// What one poll did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PollReport {
    /// Queries that failed (each logged).
    pub failed_queries: usize,
    pub samples_accepted: u64,
    pub samples_rejected: u64,
}

/// The polling loop over the configured queries.
#[derive(Debug, Clone)]
pub struct QuerySource {
    cfg: QueryConfig,
    client: PromClient,
}

impl QuerySource {
    /// Checks the config and reads the bearer token file.
    pub fn new(cfg: QueryConfig) -> Result<QuerySource, QueryError> {
        let token = match &cfg.bearer_token_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|source| QueryError::TokenFile {
                        path: p.display().to_string(),
                        source,
                    })?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        let client = PromClient::new(&cfg.url, Duration::from_secs(cfg.timeout_secs.max(1)), token)?;
        Ok(QuerySource { cfg, client })
    }

    pub fn client(&self) -> &PromClient {
        &self.client
    }

    /// Evaluates every query over `[start, end]` and stores the results in `ingest` under the
    /// query's name with the result's labels. A failing query is logged and counted, not fatal.
    pub async fn poll(&self, ingest: &Ingest, start: Timestamp, end: Timestamp, clock: &Clock) -> PollReport {
        let mut report = PollReport::default();
        for q in &self.cfg.queries {
            match self
                .client
                .query_range(&q.promql, start, end, self.cfg.step_secs, Some(&q.name))
                .await
            {
                Ok(series) => {
                    ingest.note_metadata(&q.name, MetricType::Gauge, &format!("PromQL: {}", q.promql));
                    let wait = Duration::from_secs(self.cfg.interval_secs.max(1));
                    let d = deliver(ingest, Source::Query, series, clock, wait).await;
                    report.samples_accepted += d.accepted;
                    report.samples_rejected += d.rejected + d.dropped_throttled;
                }
                Err(e) => {
                    report.failed_queries += 1;
                    ingest.reject(Source::Query, e.metric_label(), 1);
                    tracing::warn!(query = %q.name, error = %e, "Prometheus query failed.");
                }
            }
        }
        report
    }

    /// Backfills `backfill_secs` of history, then polls every `interval_secs` until `shutdown`
    /// completes. A poll whose queries all failed is retried over the same range next time.
    pub async fn run(self, ingest: std::sync::Arc<Ingest>, clock: Clock, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut last_end: Option<Timestamp> = None;
        loop {
            if let Some((start, end)) = poll_window(last_end, clock(), self.cfg.step_secs, self.cfg.backfill_secs) {
                let report = self.poll(&ingest, start, end, &clock).await;
                if report.failed_queries < self.cfg.queries.len() {
                    last_end = Some(end);
                }
                tracing::debug!(start = %start, end = %end, accepted = report.samples_accepted, "Prometheus poll done.");
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(Duration::from_secs(self.cfg.interval_secs.max(1))) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matrix_keeps_every_sample_and_label() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"up","job":"node","instance":"a:9100"},"values":[[1435781430.781,"1"],[1435781445.781,"0"]]},
            {"metric":{"job":"x"},"values":[[1435781430,"NaN"],[1435781445,"+Inf"]]}]}}"#;
        let s = parse_result("u", 200, body, None).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].key.metric, "up");
        assert_eq!(s[0].key.label("instance"), Some("a:9100"));
        assert_eq!(s[0].key.label("__name__"), None);
        assert_eq!(s[0].samples[0].t, Timestamp(1_435_781_430_781));
        assert_eq!(s[0].samples[1].value, 0.0);
        assert!(s[1].samples[0].value.is_nan());
        assert_eq!(s[1].samples[1].value, f64::INFINITY);
        assert_eq!(parse_result("u", 200, body, Some("sig")).unwrap()[1].key.metric, "sig");
    }

    #[test]
    fn a_vector_and_a_scalar_give_one_sample_each() {
        let v = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[10.5,"2.25"]}]}}"#;
        let s = parse_result("u", 200, v, Some("m")).unwrap();
        assert_eq!(
            s[0].samples,
            vec![Sample {
                t: Timestamp(10_500),
                value: 2.25
            }]
        );
        let sc = br#"{"status":"success","data":{"resultType":"scalar","result":[10,"3"]}}"#;
        assert_eq!(parse_result("u", 200, sc, Some("m")).unwrap()[0].samples[0].value, 3.0);
    }

    #[test]
    fn prometheus_errors_and_foreign_answers_are_told_apart() {
        let err = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#;
        match parse_result("http://p/api/v1/query", 400, err, None).unwrap_err() {
            QueryError::Api { error_type, error, .. } => {
                assert_eq!(error_type, "bad_data");
                assert!(error.contains("parse error"));
            }
            other => panic!("{other}"),
        }
        let html = b"<html>502 Bad Gateway</html>";
        assert!(matches!(
            parse_result("u", 502, html, None).unwrap_err(),
            QueryError::Status { status: 502, .. }
        ));
        assert!(matches!(parse_result("u", 200, html, None).unwrap_err(), QueryError::Decode { .. }));
        let streams = br#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#;
        assert!(parse_result("u", 200, streams, None).unwrap_err().to_string().contains("string"));
        let bad_value = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"abc"]}]}}"#;
        assert!(parse_result("u", 200, bad_value, None).unwrap_err().to_string().contains("abc"));
    }

    #[test]
    fn chunks_stay_under_the_points_limit_and_cover_each_step_once() {
        let start = Timestamp(0);
        let end = Timestamp(25_000 * 15_000); // 25,001 points at 15 s
        let chunks = range_chunks(start, end, 15, MAX_POINTS_PER_QUERY);
        assert_eq!(chunks.len(), 3);
        let mut points = 0;
        for (i, (s, e)) in chunks.iter().enumerate() {
            let n = (e.millis() - s.millis()) / 15_000 + 1;
            assert!(n <= MAX_POINTS_PER_QUERY, "{n}");
            if i > 0 {
                assert_eq!(s.millis(), chunks[i - 1].1.millis() + 15_000, "contiguous, no overlap");
            }
            points += n;
        }
        assert_eq!(points, 25_001);
        assert_eq!(chunks[0].0, start);
        assert_eq!(chunks[2].1, end);
        assert_eq!(range_chunks(Timestamp(5), Timestamp(5), 15, 10), vec![(Timestamp(5), Timestamp(5))]);
        assert!(range_chunks(Timestamp(6), Timestamp(5), 15, 10).is_empty());
    }

    #[test]
    fn the_first_poll_backfills_and_later_ones_continue_step_aligned() {
        let now = Timestamp(1_000_007_000); // 17 s past a 30-s step (999_990_000)
        let (s, e) = poll_window(None, now, 30, 3600).unwrap();
        assert_eq!(e, Timestamp(999_990_000), "the last completed step");
        assert_eq!(e.millis() - s.millis(), 3_600_000);
        // Nothing new within the same step; the next step after it.
        assert_eq!(poll_window(Some(e), Timestamp(e.millis() + 29_000), 30, 3600), None);
        assert_eq!(
            poll_window(Some(e), Timestamp(e.millis() + 61_000), 30, 3600),
            Some((Timestamp(e.millis() + 30_000), Timestamp(e.millis() + 60_000)))
        );
    }

    #[test]
    fn merging_chunks_drops_a_repeated_boundary_sample() {
        let k = SeriesKey::new("m", []);
        let mk = |ts: &[i64]| Series {
            key: k.clone(),
            samples: ts
                .iter()
                .map(|&t| Sample {
                    t: Timestamp(t),
                    value: t as f64,
                })
                .collect(),
        };
        let mut m = BTreeMap::new();
        merge_series(&mut m, vec![mk(&[1, 2, 3])]);
        merge_series(&mut m, vec![mk(&[3, 4])]);
        assert_eq!(m[&k].iter().map(|s| s.t.millis()).collect::<Vec<_>>(), [1, 2, 3, 4]);
    }

    #[test]
    fn config_fills_defaults_and_refuses_unknown_keys() {
        let cfg: QueryConfig = serde_json::from_str(r#"{"url":"http://p:9090","queries":[{"name":"m","promql":"up"}]}"#).unwrap();
        assert_eq!((cfg.step_secs, cfg.backfill_secs, cfg.interval_secs), (30, 3600, 30));
        let err = serde_json::from_str::<QueryConfig>(r#"{"url":"x","queries":[],"step":5}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `step`"), "{err}");
    }

    #[test]
    fn a_url_that_is_not_http_is_refused_clearly() {
        let e = PromClient::new("ftp://p", Duration::from_secs(1), None).unwrap_err();
        assert!(e.to_string().contains("not http or https"), "{e}");
        assert!(PromClient::new("not a url", Duration::from_secs(1), None).is_err());
        let ok = PromClient::new("http://p:9090/prefix", Duration::from_secs(1), None).unwrap();
        assert_eq!(ok.base_url(), "http://p:9090/prefix/");
    }
}
