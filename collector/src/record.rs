//! `record`: telemetry captured into a fixture (FIXTURES.md), from a Prometheus or from what
//! senders push to our receivers for a while.
//!
//! Layout:
//! - [`record_prometheus`]: every metric's *raw* samples over a time range, read with range-vector
//!   selectors at chunk ends (never `query_range`'s resampled steps), so a round trip through a
//!   Prometheus gives back exactly the samples that went in; types from `/api/v1/metadata`.
//! - [`record_receivers`]: the push receivers ([`crate::receive`]) served for a duration; what
//!   arrived (samples with their metadata, spans) becomes the fixture.
//! - [`assemble_families`]: series grouped into metric families — metadata first, else inferred
//!   from names and labels (`_total` counter, `_bucket`+`le` histogram, `quantile` summary). Pure.
//! - [`infer_topology`]: `topology.yaml` as far as the labels tell (cells, zones, nodes, services
//!   with their deployments, external providers). Pure.
//!
//! The truth of a recording is unknown, so it gets `faults: []` for the user to edit.

use crate::ingest::Ingest;
use crate::pull::Clock;
use crate::query::{merge_series, PromClient, QueryError};
use crate::receive::{self, ReceiverConfig, ReceiverError};
use crate::store::WindowConfig;
use cellwarden_models::fixture::Fixture;
use cellwarden_models::openmetrics::Exposition;
use cellwarden_models::topology::{CellInfo, DeploymentInfo, ExternalInfo, NodeInfo, ServiceInfo, Topology};
use cellwarden_models::truth::Truth;
use cellwarden_models::{Family, MetricType, Sample, Series, SeriesKey, Timestamp};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// Span of history read with one range-vector query. An hour of one metric is a few thousand
/// samples per series: large enough to keep the number of requests low, small enough that one
/// answer stays far below Prometheus' `query.max-samples` (50 million) for any sane metric.
pub const RAW_CHUNK_SECS: i64 = 3600;

/// Recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Reading the Prometheus failed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The receivers could not be set up or served.
    #[error(transparent)]
    Receiver(#[from] ReceiverError),
    /// The time range is empty or reversed.
    #[error("nothing to record: the range {start} .. {end} is empty")]
    EmptyRange { start: Timestamp, end: Timestamp },
}

impl RecordError {
    /// A bounded label for metrics about failures.
    pub fn metric_label(&self) -> &'static str {
        match self {
            RecordError::Query(e) => e.metric_label(),
            RecordError::Receiver(e) => e.metric_label(),
            RecordError::EmptyRange { .. } => "empty_range",
        }
    }
}

/// The `(after, until]` windows covering `[start, end]`, each at most `chunk_secs` long; the first
/// starts one millisecond before `start` so `start` itself is included.
pub fn raw_windows(start: Timestamp, end: Timestamp, chunk_secs: i64) -> Vec<(Timestamp, Timestamp)> {
    let chunk = chunk_secs.max(1) * 1000;
    let mut out = Vec::new();
    let mut after = start.millis() - 1;
    while after < end.millis() {
        let until = (after + chunk).min(end.millis());
        out.push((Timestamp(after), Timestamp(until)));
        after = until;
    }
    out
}

/// A series selector matching exactly the metric `name`.
fn name_selector(name: &str) -> String {
    format!("{{__name__=\"{}\"}}", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Reads every metric with samples in `[start, end]` from the Prometheus behind `client`, raw, and
/// returns them as a fixture (no spans; topology inferred; `faults: []`). `progress(done, total)`
/// is called after each query. Metadata that cannot be read is logged and inferred instead.
pub async fn record_prometheus(
    client: &PromClient,
    start: Timestamp,
    end: Timestamp,
    chunk_secs: i64,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<Fixture, RecordError> {
    if end <= start {
        return Err(RecordError::EmptyRange { start, end });
    }
    let names = client.metric_names(start, end).await?;
    let metadata = match client.metadata().await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot read metric metadata; types are inferred from names.");
            HashMap::new()
        }
    };
    let windows = raw_windows(start, end, chunk_secs);
    let total = names.len() * windows.len();
    let mut merged: BTreeMap<SeriesKey, Vec<Sample>> = BTreeMap::new();
    let mut done = 0;
    for name in &names {
        let selector = name_selector(name);
        for (after, until) in &windows {
            merge_series(&mut merged, client.query_raw(&selector, *after, *until).await?);
            done += 1;
            progress(done, total);
        }
    }
    let families = assemble_families(merged, &metadata);
    Ok(fixture_of(families, Vec::new()))
}

/// Serves the push receivers on `cfg.listen` for `duration` and returns what arrived as a fixture.
/// `progress(elapsed_secs, total_secs)` is called about once a second.
pub async fn record_receivers(
    cfg: &ReceiverConfig,
    duration: Duration,
    clock: Clock,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<Fixture, RecordError> {
    // Keep everything that arrives during the recording, plus an hour of what senders replay from
    // their own buffers (remote_write resends what it queued).
    let window = WindowConfig {
        retention_secs: duration.as_secs() as i64 + 3600,
        ..WindowConfig::default()
    };
    let ingest = std::sync::Arc::new(Ingest::new(cfg.ingest_config(window, Default::default())));
    let router = receive::router_with_clock(ingest.clone(), cfg, clock)?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| ReceiverError::Bind { addr: cfg.listen, source })?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let cfg_served = cfg.clone();
    let server = tokio::spawn(async move {
        let metrics = crate::listen::ListenerMetrics::default();
        receive::serve_listener(listener, &cfg_served, router, metrics, async {
            let _ = stop_rx.await;
        })
        .await
    });
    let total = duration.as_secs() as usize;
    let started = tokio::time::Instant::now();
    let deadline = started + duration;
    loop {
        let now = tokio::time::Instant::now();
        if now >= deadline || server.is_finished() {
            break;
        }
        tokio::time::sleep((deadline - now).min(Duration::from_secs(1))).await;
        progress(started.elapsed().as_secs() as usize, total);
    }
    let _ = stop_tx.send(());
    match server.await {
        Ok(result) => result?,
        Err(e) => tracing::warn!(error = %e, "The receivers' task ended abnormally."),
    }
    let families = ingest.families(Timestamp(i64::MIN));
    let metadata: HashMap<String, (MetricType, String)> = families
        .iter()
        .filter(|f| f.kind != MetricType::Unknown)
        .map(|f| (f.name.clone(), (f.kind, f.help.clone().unwrap_or_default())))
        .collect();
    let mut merged: BTreeMap<SeriesKey, Vec<Sample>> = BTreeMap::new();
    for fam in families {
        merge_series(&mut merged, fam.series);
    }
    let (spans, _) = ingest.spans_after(0);
    if ingest.spans_dropped() > 0 {
        tracing::warn!(
            dropped = ingest.spans_dropped(),
            "Spans were dropped while recording; raise max_spans_buffered."
        );
    }
    Ok(fixture_of(assemble_families(merged, &metadata), spans))
}

fn fixture_of(families: Vec<Family>, spans: Vec<cellwarden_models::Span>) -> Fixture {
    let topology = infer_topology(&families);
    Fixture {
        metrics: Exposition { families },
        spans,
        topology: Some(topology),
        truth: Some(Truth::default()),
    }
}

/// Groups series into metric families, sorted by family name with series sorted by key.
///
/// A sample name's family comes from `metadata` (family name → type and help, as Prometheus'
/// metadata API or `# TYPE` lines give it; a counter may be listed under `x_total` or `x`), else
/// it is inferred: `x_bucket` with `le` (and its `x_sum`, `x_count`) is histogram `x`; `x` with
/// `quantile` (and its `x_sum`, `x_count`) is summary `x`; `x_total` is counter `x`; anything
/// else is its own family of type unknown. An inferred family whose name another sample already
/// uses is not formed (its samples stay unknown), so the written OpenMetrics always reads back.
pub fn assemble_families(series: BTreeMap<SeriesKey, Vec<Sample>>, metadata: &HashMap<String, (MetricType, String)>) -> Vec<Family> {
    let names: BTreeSet<&str> = series.keys().map(|k| k.metric.as_str()).collect();
    let mut label_names: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for k in series.keys() {
        label_names
            .entry(k.metric.as_str())
            .or_default()
            .extend(k.labels.iter().map(|(l, _)| l.as_str()));
    }
    let has_label = |metric: &str, label: &str| label_names.get(metric).is_some_and(|l| l.contains(label));
    let mut family_of: HashMap<String, (String, MetricType, Option<String>)> = HashMap::new();
    for &name in &names {
        family_of.insert(name.to_string(), classify(name, &names, metadata, &has_label));
    }
    untangle(&mut family_of);
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for (key, samples) in series {
        if samples.is_empty() {
            continue;
        }
        let (fam, kind, help) = family_of[&key.metric].clone();
        let f = families.entry(fam.clone()).or_insert_with(|| Family {
            name: fam,
            kind,
            help,
            unit: None,
            series: Vec::new(),
        });
        f.series.push(Series { key, samples });
    }
    families.into_values().collect()
}

/// Undoes groupings the OpenMetrics text could not express: a family whose members disagree on
/// the type (sample `x` typed one way, `x_total` inferred a counter), or whose name another
/// family's type would claim as its own sample (`foo_count` next to histogram `foo`). The members
/// of such a family, but a sample named like the family itself, become their own unknown families.
fn untangle(family_of: &mut HashMap<String, (String, MetricType, Option<String>)>) {
    for _ in 0..4 {
        let mut members: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut kinds: BTreeMap<&str, BTreeSet<&'static str>> = BTreeMap::new();
        for (sample, (fam, kind, _)) in family_of.iter() {
            members.entry(fam).or_default().push(sample);
            kinds.entry(fam).or_default().insert(kind.as_str());
        }
        let typed: Vec<Family> = kinds
            .iter()
            .map(|(name, k)| Family {
                name: name.to_string(),
                kind: MetricType::parse(k.iter().next().expect("a member")).unwrap_or_default(),
                ..Family::default()
            })
            .collect();
        let mut bad: BTreeSet<&str> = kinds.iter().filter(|(_, k)| k.len() > 1).map(|(f, _)| *f).collect();
        for f in &typed {
            if typed.iter().any(|g| g.name != f.name && g.owns(&f.name)) {
                bad.insert(members.get_key_value(f.name.as_str()).expect("a family").0);
            }
        }
        if bad.is_empty() {
            return;
        }
        let revert: Vec<String> = bad
            .iter()
            .flat_map(|f| members[f].iter().filter(|m| **m != *f).map(|m| m.to_string()))
            .collect();
        for m in revert {
            family_of.insert(m.clone(), (m, MetricType::Unknown, None));
        }
    }
}

fn classify(
    name: &str,
    names: &BTreeSet<&str>,
    md: &HashMap<String, (MetricType, String)>,
    has_label: &dyn Fn(&str, &str) -> bool,
) -> (String, MetricType, Option<String>) {
    let help = |h: &String| (!h.is_empty()).then(|| h.clone());
    if let Some((kind, h)) = md.get(name) {
        let fam = match (kind, name.strip_suffix("_total")) {
            (MetricType::Counter, Some(base)) => base,
            _ => name,
        };
        return (fam.to_string(), *kind, help(h));
    }
    for suffix in ["_total", "_bucket", "_count", "_sum", "_created", "_info", "_gcount", "_gsum"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if let Some((kind, h)) = md.get(base) {
                if kind.suffixes().contains(&suffix) {
                    return (base.to_string(), *kind, help(h));
                }
            }
        }
    }
    let histogram = |base: &str| names.contains(format!("{base}_bucket").as_str()) && has_label(&format!("{base}_bucket"), "le");
    let summary = |base: &str| {
        names.contains(base)
            && has_label(base, "quantile")
            && (names.contains(format!("{base}_sum").as_str()) || names.contains(format!("{base}_count").as_str()))
    };
    if let Some(base) = name.strip_suffix("_bucket") {
        if histogram(base) {
            return (base.to_string(), MetricType::Histogram, None);
        }
    }
    if let Some(base) = name.strip_suffix("_sum").or_else(|| name.strip_suffix("_count")) {
        if histogram(base) {
            return (base.to_string(), MetricType::Histogram, None);
        }
        if summary(base) {
            return (base.to_string(), MetricType::Summary, None);
        }
    }
    if summary(name) {
        return (name.to_string(), MetricType::Summary, None);
    }
    if let Some(base) = name.strip_suffix("_total") {
        if !base.is_empty() {
            return (base.to_string(), MetricType::Counter, None);
        }
    }
    (name.to_string(), MetricType::Unknown, None)
}

/// The topology the labels show: cells (label `cell`, with the `zone` seen most with it), nodes
/// (`node`, with their cell and zone), services with one deployment per cell (or namespace) — its
/// replicas the number of distinct `pod`s seen, its memory limit the last
/// `kube_pod_container_resource_limits{resource="memory"}` — and external providers (`provider`).
/// Parts the labels do not show are left out.
pub fn infer_topology(families: &[Family]) -> Topology {
    #[derive(Default)]
    struct Deployment {
        namespace: Option<String>,
        cell: Option<String>,
        pods: BTreeSet<String>,
        memory_limit_bytes: Option<f64>,
    }
    /// How often each value was seen next to a name.
    type Tally = BTreeMap<String, usize>;
    let mut cell_zones: BTreeMap<String, Tally> = BTreeMap::new();
    let mut node_cells: BTreeMap<String, (Tally, Tally)> = BTreeMap::new();
    let mut deployments: BTreeMap<(String, String), Deployment> = BTreeMap::new();
    let mut providers: BTreeSet<String> = BTreeSet::new();
    for s in families.iter().flat_map(|f| f.series.iter()) {
        let k = &s.key;
        let (cell, zone, node) = (k.label("cell"), k.label("zone"), k.label("node"));
        if let Some(c) = cell {
            let zones = cell_zones.entry(c.to_string()).or_default();
            if let Some(z) = zone {
                *zones.entry(z.to_string()).or_default() += 1;
            }
        }
        if let Some(n) = node {
            let (cells, zones) = node_cells.entry(n.to_string()).or_default();
            if let Some(c) = cell {
                *cells.entry(c.to_string()).or_default() += 1;
            }
            if let Some(z) = zone {
                *zones.entry(z.to_string()).or_default() += 1;
            }
        }
        if let Some(p) = k.label("provider") {
            providers.insert(p.to_string());
        }
        if let Some(svc) = k.label("service") {
            let place = cell.or(k.label("namespace")).unwrap_or("").to_string();
            let d = deployments.entry((svc.to_string(), place)).or_default();
            d.cell = d.cell.take().or(cell.map(str::to_string));
            d.namespace = d.namespace.take().or(k.label("namespace").map(str::to_string));
            if let Some(pod) = k.label("pod") {
                d.pods.insert(pod.to_string());
            }
            if k.metric == "kube_pod_container_resource_limits" && k.label("resource") == Some("memory") {
                if let Some(last) = s.samples.last().filter(|p| p.value.is_finite()) {
                    d.memory_limit_bytes = Some(d.memory_limit_bytes.map_or(last.value, |m: f64| m.max(last.value)));
                }
            }
        }
    }
    let most = |m: &Tally| m.iter().max_by_key(|(_, n)| **n).map(|(k, _)| k.clone());
    let mut services: BTreeMap<String, ServiceInfo> = BTreeMap::new();
    for ((svc, _), d) in deployments {
        let entry = services.entry(svc.clone()).or_insert_with(|| ServiceInfo {
            name: svc.clone(),
            ..ServiceInfo::default()
        });
        entry.deployments.push(DeploymentInfo {
            cell: d.cell,
            name: svc,
            namespace: d.namespace,
            replicas: (!d.pods.is_empty()).then_some(d.pods.len() as u32),
            memory_limit_bytes: d.memory_limit_bytes,
            revisions: vec![],
        });
    }
    Topology {
        system: None,
        cells: cell_zones
            .iter()
            .map(|(name, zones)| CellInfo {
                name: name.clone(),
                zone: most(zones),
                weight: None,
            })
            .collect(),
        services: services.into_values().collect(),
        external: providers
            .into_iter()
            .map(|name| ExternalInfo {
                name,
                kind: None,
                weight: None,
            })
            .collect(),
        nodes: node_cells
            .iter()
            .map(|(name, (cells, zones))| NodeInfo {
                name: name.clone(),
                zone: most(zones),
                cell: most(cells),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellwarden_models::openmetrics::{self, ParseOptions};

    fn key(metric: &str, labels: &[(&str, &str)]) -> SeriesKey {
        SeriesKey::new(metric, labels.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn pts(values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Sample {
                t: Timestamp(1_000_000 + i as i64 * 15_000),
                value: *v,
            })
            .collect()
    }

    fn kinds(fams: &[Family]) -> Vec<(&str, MetricType, usize)> {
        fams.iter().map(|f| (f.name.as_str(), f.kind, f.series.len())).collect()
    }

    #[test]
    fn windows_cover_the_range_once_including_its_start() {
        let w = raw_windows(Timestamp(0), Timestamp(9_000_000), 3600);
        assert_eq!(
            w,
            vec![
                (Timestamp(-1), Timestamp(3_599_999)),
                (Timestamp(3_599_999), Timestamp(7_199_999)),
                (Timestamp(7_199_999), Timestamp(9_000_000))
            ]
        );
        assert_eq!(raw_windows(Timestamp(5), Timestamp(5), 60), vec![(Timestamp(4), Timestamp(5))]);
        assert!(raw_windows(Timestamp(6), Timestamp(5), 60).is_empty());
    }

    #[test]
    fn types_are_inferred_from_names_and_labels_without_metadata() {
        let mut s = BTreeMap::new();
        s.insert(key("lat_seconds_bucket", &[("le", "0.1")]), pts(&[1.0]));
        s.insert(key("lat_seconds_bucket", &[("le", "+Inf")]), pts(&[2.0]));
        s.insert(key("lat_seconds_sum", &[]), pts(&[0.3]));
        s.insert(key("lat_seconds_count", &[]), pts(&[2.0]));
        s.insert(key("rpc", &[("quantile", "0.5")]), pts(&[0.2]));
        s.insert(key("rpc_count", &[]), pts(&[9.0]));
        s.insert(key("req_total", &[("code", "200")]), pts(&[5.0, 6.0]));
        s.insert(key("temperature", &[]), pts(&[20.0]));
        s.insert(key("jobs_count", &[]), pts(&[3.0]));
        let fams = assemble_families(s, &HashMap::new());
        assert_eq!(
            kinds(&fams),
            [
                ("jobs_count", MetricType::Unknown, 1),
                ("lat_seconds", MetricType::Histogram, 4),
                ("req", MetricType::Counter, 1),
                ("rpc", MetricType::Summary, 2),
                ("temperature", MetricType::Unknown, 1)
            ]
        );
    }

    #[test]
    fn metadata_wins_and_a_clashing_inferred_family_stays_unknown() {
        let mut s = BTreeMap::new();
        s.insert(key("up", &[]), pts(&[1.0]));
        s.insert(key("x", &[]), pts(&[1.0]));
        s.insert(key("x_total", &[]), pts(&[1.0]));
        let md = HashMap::from([("up".to_string(), (MetricType::Gauge, "Target up.".to_string()))]);
        let fams = assemble_families(s, &md);
        assert_eq!(
            kinds(&fams),
            [
                ("up", MetricType::Gauge, 1),
                ("x", MetricType::Unknown, 1),
                ("x_total", MetricType::Unknown, 1)
            ]
        );
        assert_eq!(fams[0].help.as_deref(), Some("Target up."));
    }

    #[test]
    fn assembled_families_write_openmetrics_that_reads_back_the_same() {
        let mut s = BTreeMap::new();
        s.insert(key("lat_bucket", &[("le", "1"), ("pod", "a")]), pts(&[1.0, 2.0]));
        s.insert(key("lat_bucket", &[("le", "+Inf"), ("pod", "a")]), pts(&[1.0, 3.0]));
        s.insert(key("lat_count", &[("pod", "a")]), pts(&[1.0, 3.0]));
        s.insert(key("lat_sum", &[("pod", "a")]), pts(&[0.5, 2.5]));
        s.insert(key("req_total", &[]), pts(&[1.0, 2.0]));
        s.insert(key("req_in_flight", &[]), pts(&[0.0, 1.0]));
        s.insert(key("x", &[]), pts(&[1.0]));
        s.insert(key("x_total", &[]), pts(&[1.0]));
        let fams = assemble_families(s, &HashMap::new());
        let mut text = Vec::new();
        openmetrics::write(&mut text, &fams).unwrap();
        let back = openmetrics::parse(&text[..], ParseOptions { require_timestamps: true }).unwrap();
        assert_eq!(back.families, fams, "{}", String::from_utf8_lossy(&text));
    }

    #[test]
    fn topology_comes_from_labels() {
        let fam = |metric: &str, series: Vec<(SeriesKey, f64)>| Family {
            name: metric.into(),
            kind: MetricType::Gauge,
            help: None,
            unit: None,
            series: series.into_iter().map(|(key, v)| Series { key, samples: pts(&[v]) }).collect(),
        };
        let mem = |pod: &str, cell: &str, node: &str| {
            key(
                "kube_pod_container_resource_limits",
                &[
                    ("resource", "memory"),
                    ("service", "ledger"),
                    ("pod", pod),
                    ("cell", cell),
                    ("namespace", cell),
                    ("node", node),
                ],
            )
        };
        let fams = vec![
            fam(
                "kube_pod_container_resource_limits",
                vec![
                    (mem("ledger-a", "cell-1", "n1"), 512.0),
                    (mem("ledger-b", "cell-1", "n2"), 512.0),
                    (mem("ledger-c", "cell-2", "n3"), 256.0),
                ],
            ),
            fam(
                "kube_node_status_condition",
                vec![(
                    key(
                        "kube_node_status_condition",
                        &[("node", "n1"), ("zone", "zone-a"), ("cell", "cell-1")],
                    ),
                    1.0,
                )],
            ),
            fam(
                "http_server_requests_total",
                vec![(
                    key(
                        "http_server_requests_total",
                        &[("provider", "provider-a"), ("service", "provider-gateway")],
                    ),
                    1.0,
                )],
            ),
        ];
        let t = infer_topology(&fams);
        assert_eq!(
            t.cells.iter().map(|c| (c.name.as_str(), c.zone.as_deref())).collect::<Vec<_>>(),
            [("cell-1", Some("zone-a")), ("cell-2", None)]
        );
        let ledger = t.service("ledger").unwrap();
        assert_eq!(ledger.deployments.len(), 2);
        assert_eq!(ledger.deployments[0].replicas, Some(2));
        assert_eq!(ledger.deployments[0].memory_limit_bytes, Some(512.0));
        assert_eq!(ledger.deployments[1].cell.as_deref(), Some("cell-2"));
        assert_eq!(ledger.deployments[1].memory_limit_bytes, Some(256.0));
        assert!(t.is_external("provider-a"));
        let n1 = t.nodes.iter().find(|n| n.name == "n1").unwrap();
        assert_eq!((n1.cell.as_deref(), n1.zone.as_deref()), (Some("cell-1"), Some("zone-a")));
        assert_eq!(t.cell_of_node("n3"), Some("cell-2"));
    }
}
