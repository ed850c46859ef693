//! Recording the simulated wallet's telemetry as a real cluster exposes it: cAdvisor and
//! kube-state-metrics series per pod and node, OpenTelemetry HTTP server histograms and request
//! counters per deployment, provider calls, database p99, queue depth and consumer lag — named as
//! FIXTURES.md's signals table has them — plus sampled spans. With [`MetricNaming::Istio`] it
//! writes instead only what an Istio mesh's sidecars expose (Istio's standard metrics), so a
//! fixture can show a profile other than the default one end to end; the other namings
//! ([`MetricNaming::Linkerd`] … [`MetricNaming::Custom`]) do the same for the other profiles, each
//! writing only the few series its exporter would (see [`Recorder::profile`]).

use crate::model::BUCKETS;
use cellwarden_models::openmetrics::Exposition;
use cellwarden_models::{Family, MetricType, Sample, Series, SeriesKey, Span, Timestamp};
use std::collections::HashMap;

const F_MEM: usize = 0;
const F_LIMIT: usize = 1;
const F_CPU: usize = 2;
const F_RESTARTS: usize = 3;
const F_HIST: usize = 4;
const F_REQ: usize = 5;
const F_DB: usize = 6;
const F_QDEPTH: usize = 7;
const F_LAG: usize = 8;
const F_OFFSET: usize = 9;
const F_NODE: usize = 10;
const F_ISTIO_REQ: usize = 11;
const F_ISTIO_DUR: usize = 12;

/// Which names the recorder writes its metrics under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricNaming {
    /// FIXTURES.md's signals table: cAdvisor, kube-state-metrics, OpenTelemetry HTTP server
    /// metrics, messaging and database gauges.
    #[default]
    Cellwarden,
    /// Only the mesh's view, as Istio's standard metrics name it: `istio_requests_total` and
    /// `istio_request_duration_milliseconds` per workload as the server's sidecar reports them
    /// (`reporter="destination"`), and the provider gateway's outbound calls as its own sidecar
    /// reports them (`reporter="source"`). No cAdvisor, kube-state-metrics, queue, database or
    /// edge-router series: a cluster where only the mesh is scraped.
    Istio,
    /// Only the Linkerd proxies' inbound view: `response_total` by `status_code` and
    /// `response_latency_ms` (sum and count) per `deployment` and `namespace`.
    Linkerd,
    /// Only an Envoy front proxy with one upstream cluster per service and cell:
    /// `envoy_cluster_upstream_rq_xx` by code class and `envoy_cluster_upstream_rq_time` (ms).
    Envoy,
    /// Only ingress-nginx, with an ingress per service: `nginx_ingress_controller_requests` and
    /// `nginx_ingress_controller_request_duration_seconds` (sum and count) by backend `service`.
    IngressNginx,
    /// Only OpenTelemetry's `db.client.operation.duration` of the ledger's calls to its database
    /// (`db_client_operation_duration_seconds`, per `db_namespace` and `service_namespace`).
    OpenTelemetry,
    /// Only Spring Boot's Micrometer heap gauges per pod: `jvm_memory_used_bytes` and
    /// `jvm_memory_max_bytes` (`area="heap"`), tagged with the `application`.
    Micrometer,
    /// Only the Prometheus client's process collector per pod: `process_resident_memory_bytes`
    /// and `process_cpu_seconds_total`.
    PrometheusClient,
    /// Only kafka_exporter's `kafka_consumergroup_lag_sum` per consumer group and topic.
    KafkaExporter,
    /// Only postgres_exporter: `pg_up` and `pg_stat_activity_max_tx_duration` per database.
    PostgresExporter,
    /// Only CockroachDB's `sql_service_latency` histogram (sum and count, nanoseconds) per pod.
    Cockroachdb,
    /// Only node_exporter on every node: `node_memory_Active_bytes` and `node_memory_MemTotal_bytes`
    /// (the `node` label, as Kubernetes service discovery's relabelling sets it).
    NodeExporter,
    /// Only the kube-state-metrics and cAdvisor names the `kubernetes` profile reads beyond the
    /// default ones: `container_memory_rss` and `kube_pod_status_ready{condition="true"}` per pod.
    Kubernetes,
    /// Names no built-in rule or inference knows (`acme_svc_p99_ms`, `acme_svc_errors_pct`,
    /// labels `app`/`ns`): only a `signals:` rule in the config makes them signals.
    Custom,
}

impl MetricNaming {
    /// Whether one of the single-exporter namings (not the default, not Istio) is on.
    fn single_exporter(self) -> bool {
        !matches!(self, MetricNaming::Cellwarden | MetricNaming::Istio)
    }
}

const FAMILIES: [(&str, MetricType, &str, &str); 13] = [
    (
        "container_memory_working_set_bytes",
        MetricType::Gauge,
        "bytes",
        "Working set of the container (cAdvisor).",
    ),
    (
        "kube_pod_container_resource_limits",
        MetricType::Gauge,
        "",
        "Container resource limits (kube-state-metrics).",
    ),
    (
        "container_cpu_usage_seconds",
        MetricType::Counter,
        "seconds",
        "CPU time used by the container (cAdvisor).",
    ),
    (
        "kube_pod_container_status_restarts",
        MetricType::Counter,
        "",
        "Container restarts (kube-state-metrics).",
    ),
    (
        "http_server_request_duration_seconds",
        MetricType::Histogram,
        "seconds",
        "Duration of HTTP server requests (OpenTelemetry semantic conventions).",
    ),
    (
        "http_server_requests",
        MetricType::Counter,
        "",
        "HTTP server requests by status; series without `service` are the edge router's view of each cell.",
    ),
    (
        "pod_server_latency_p99_seconds",
        MetricType::Gauge,
        "seconds",
        "p99 query latency of the cell's database.",
    ),
    (
        "messaging_queue_depth_messages",
        MetricType::Gauge,
        "messages",
        "Messages waiting in the cell's payment-events queue.",
    ),
    (
        "messaging_consumer_lag_messages",
        MetricType::Gauge,
        "messages",
        "Consumer lag of the cell's event consumer.",
    ),
    (
        "messaging_consumer_offset",
        MetricType::Gauge,
        "",
        "Committed offset of the cell's event consumer.",
    ),
    (
        "kube_node_status_condition",
        MetricType::Gauge,
        "",
        "Node conditions (kube-state-metrics); labelled with the node's zone and cell.",
    ),
    (
        "istio_requests",
        MetricType::Counter,
        "",
        "Requests (Istio standard metrics), as the reporting sidecar saw them.",
    ),
    (
        "istio_request_duration_milliseconds",
        MetricType::Histogram,
        "milliseconds",
        "Request durations (Istio standard metrics), as the server's sidecar saw them.",
    ),
];

/// Who calls a service, as Istio's `source_workload` and `source_workload_namespace` name it
/// (`unknown` outside the mesh, as Istio writes it).
fn istio_caller<'a>(service: &str, cell: &'a str) -> (&'static str, &'a str) {
    match service {
        "api-gateway" => ("istio-ingressgateway", "istio-system"),
        "wallet-api" => ("api-gateway", cell),
        "provider-gateway" => ("payments", cell),
        "consumer" => ("unknown", "unknown"),
        _ => ("wallet-api", cell),
    }
}

/// The labels of a server-side (`reporter="destination"`) Istio series of `service` in `cell`.
fn istio_destination(cell: &str, service: &str, code: Option<&str>) -> Vec<(String, String)> {
    let (source, source_ns) = istio_caller(service, cell);
    let host = format!("{service}.{cell}.svc.cluster.local");
    let mut out = l(&[
        ("reporter", "destination"),
        ("source_workload", source),
        ("source_workload_namespace", source_ns),
        ("destination_workload", service),
        ("destination_canonical_service", service),
        ("destination_workload_namespace", cell),
        ("destination_service", &host),
        ("request_protocol", "http"),
    ]);
    if let Some(c) = code {
        out.push(("response_code".into(), c.into()));
    }
    out
}

fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// 10^e by repeated multiplication: `powi` may round differently in debug and release builds,
/// and fixtures must be byte-identical whichever build writes them.
fn pow10(e: i32) -> f64 {
    let mut m = 1.0;
    for _ in 0..e.unsigned_abs() {
        m *= 10.0;
    }
    if e < 0 {
        1.0 / m
    } else {
        m
    }
}

/// Rounds to `digits` significant digits, so fixtures compress well without losing signal.
fn sig(v: f64, digits: i32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let m = pow10(digits - 1 - v.abs().log10().floor() as i32);
    (v * m).round() / m
}

/// Collects metric families and spans as the simulation runs.
pub struct Recorder {
    naming: MetricNaming,
    families: Vec<Family>,
    index: HashMap<SeriesKey, usize>,
    // Running totals of counters (and histogram buckets), by series.
    totals: HashMap<SeriesKey, f64>,
    pub spans: Vec<Span>,
    // Spans of the current step, sorted by start when the step ends.
    pending: Vec<Span>,
    /// First part of every trace id (from the seed), so fixtures of different seeds never share ids.
    pub trace_prefix: u32,
    pub next_trace: u64,
}

impl Recorder {
    pub fn new(seed: u64, naming: MetricNaming) -> Recorder {
        let families = FAMILIES
            .iter()
            .map(|(name, kind, unit, help)| Family {
                name: name.to_string(),
                kind: *kind,
                help: Some(help.to_string()),
                unit: (!unit.is_empty()).then(|| unit.to_string()),
                series: Vec::new(),
            })
            .collect();
        Recorder {
            naming,
            families,
            index: HashMap::new(),
            totals: HashMap::new(),
            spans: Vec::new(),
            pending: Vec::new(),
            trace_prefix: (seed as u32).wrapping_mul(2_654_435_761) | 1,
            next_trace: 1,
        }
    }

    /// The metrics recorded so far.
    pub fn exposition(&self) -> Exposition {
        Exposition {
            families: self.families.iter().filter(|f| !f.series.is_empty()).cloned().collect(),
        }
    }

    /// The metric families recorded so far (some may still be empty).
    pub fn families(&self) -> &[Family] {
        &self.families
    }

    pub fn sample_count(&self) -> usize {
        self.families.iter().map(Family::sample_count).sum()
    }

    fn push(&mut self, fam: usize, metric: &str, labels: Vec<(String, String)>, t: Timestamp, value: f64) {
        let key = SeriesKey::new(metric, labels);
        let idx = match self.index.get(&key) {
            Some(i) => *i,
            None => {
                let f = &mut self.families[fam];
                f.series.push(Series {
                    key: key.clone(),
                    samples: Vec::new(),
                });
                let i = f.series.len() - 1;
                self.index.insert(key, i);
                i
            }
        };
        self.families[fam].series[idx].samples.push(Sample { t, value });
    }

    fn add(&mut self, fam: usize, metric: &str, labels: Vec<(String, String)>, t: Timestamp, inc: f64, decimals: i32) {
        let key = SeriesKey::new(metric, labels.clone());
        let total = self.totals.entry(key).or_insert(0.0);
        *total += inc.max(0.0);
        let m = pow10(decimals);
        let v = (*total * m).floor() / m;
        self.push(fam, metric, labels, t, v);
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn pod(
        &mut self,
        t: Timestamp,
        cell: &str,
        service: &str,
        pod: &str,
        node: &str,
        memory: f64,
        limit: f64,
        cpu_secs: f64,
        restarts: u64,
    ) {
        if self.naming.single_exporter() {
            self.profile_pod(t, cell, service, pod, memory, limit, cpu_secs);
            return;
        }
        if self.naming == MetricNaming::Istio {
            return;
        }
        let base = [
            ("namespace", cell),
            ("cell", cell),
            ("service", service),
            ("container", service),
            ("pod", pod),
            ("node", node),
        ];
        self.push(
            F_MEM,
            "container_memory_working_set_bytes",
            l(&base),
            t,
            (memory / 65536.0).round() * 65536.0,
        );
        let mut lim = base.to_vec();
        lim.extend([("resource", "memory"), ("unit", "byte")]);
        self.push(F_LIMIT, "kube_pod_container_resource_limits", l(&lim), t, limit);
        self.push(
            F_CPU,
            "container_cpu_usage_seconds_total",
            l(&base),
            t,
            (cpu_secs * 10.0).floor() / 10.0,
        );
        self.push(F_RESTARTS, "kube_pod_container_status_restarts_total", l(&base), t, restarts as f64);
    }

    /// Requests of one deployment this step: counters by status (unless `routes` records them)
    /// and the latency histogram (`fractions[i]` of requests at most `BUCKETS[i]`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn service_requests(
        &mut self,
        t: Timestamp,
        cell: &str,
        service: &str,
        svc: usize,
        n: f64,
        error: f64,
        median_latency: f64,
        fractions: &[f64],
    ) {
        if self.naming.single_exporter() {
            if svc != crate::model::WALLET_API {
                self.profile_requests(t, cell, service, n * (1.0 - error), n * error);
            }
            self.profile_duration(t, cell, service, n, median_latency);
            return;
        }
        if self.naming == MetricNaming::Istio {
            if svc != crate::model::WALLET_API {
                self.istio_requests(t, cell, service, n * (1.0 - error), n * error);
            }
            self.istio_duration(t, cell, service, n, median_latency, fractions);
            return;
        }
        if svc != crate::model::WALLET_API {
            self.add(
                F_REQ,
                "http_server_requests_total",
                l(&[("cell", cell), ("service", service), ("route", "/"), ("status", "200")]),
                t,
                n * (1.0 - error),
                0,
            );
            self.add(
                F_REQ,
                "http_server_requests_total",
                l(&[("cell", cell), ("service", service), ("route", "/"), ("status", "500")]),
                t,
                n * error,
                0,
            );
        }
        for (b, f) in BUCKETS.iter().zip(fractions) {
            let le = format!("{b}");
            self.add(
                F_HIST,
                "http_server_request_duration_seconds_bucket",
                l(&[("cell", cell), ("service", service), ("le", &le)]),
                t,
                n * f,
                0,
            );
        }
        self.add(
            F_HIST,
            "http_server_request_duration_seconds_bucket",
            l(&[("cell", cell), ("service", service), ("le", "+Inf")]),
            t,
            n,
            0,
        );
        // Mean of a log-normal with sigma 0.5: median × e^(0.125).
        self.add(
            F_HIST,
            "http_server_request_duration_seconds_sum",
            l(&[("cell", cell), ("service", service)]),
            t,
            n * median_latency * 1.133,
            2,
        );
        self.add(
            F_HIST,
            "http_server_request_duration_seconds_count",
            l(&[("cell", cell), ("service", service)]),
            t,
            n,
            0,
        );
    }

    /// Requests the server's sidecar saw, by response code (Istio has no route label).
    fn istio_requests(&mut self, t: Timestamp, cell: &str, service: &str, ok: f64, failed: f64) {
        for (code, n) in [("200", ok), ("500", failed)] {
            self.add(
                F_ISTIO_REQ,
                "istio_requests_total",
                istio_destination(cell, service, Some(code)),
                t,
                n,
                0,
            );
        }
    }

    /// The server sidecar's duration histogram, in milliseconds (without `response_code`, to
    /// keep the fixture small; Istio's default carries it).
    fn istio_duration(&mut self, t: Timestamp, cell: &str, service: &str, n: f64, median_latency: f64, fractions: &[f64]) {
        let labels = istio_destination(cell, service, None);
        let with_le = |le: &str| {
            let mut v = labels.clone();
            v.push(("le".into(), le.into()));
            v
        };
        for (b, f) in BUCKETS.iter().zip(fractions) {
            let le = format!("{}", b * 1000.0);
            self.add(F_ISTIO_DUR, "istio_request_duration_milliseconds_bucket", with_le(&le), t, n * f, 0);
        }
        self.add(F_ISTIO_DUR, "istio_request_duration_milliseconds_bucket", with_le("+Inf"), t, n, 0);
        // Mean of a log-normal with sigma 0.5: median × e^(0.125); milliseconds.
        self.add(
            F_ISTIO_DUR,
            "istio_request_duration_milliseconds_sum",
            labels.clone(),
            t,
            n * median_latency * 1.133 * 1000.0,
            0,
        );
        self.add(F_ISTIO_DUR, "istio_request_duration_milliseconds_count", labels, t, n, 0);
    }

    pub(crate) fn route_requests(&mut self, t: Timestamp, cell: &str, pay: f64, pay_err: f64, balance: f64, balance_err: f64) {
        if self.naming.single_exporter() {
            let failed = pay * pay_err + balance * balance_err;
            self.profile_requests(t, cell, "wallet-api", pay + balance - failed, failed);
            return;
        }
        if self.naming == MetricNaming::Istio {
            let failed = pay * pay_err + balance * balance_err;
            self.istio_requests(t, cell, "wallet-api", pay + balance - failed, failed);
            return;
        }
        for (route, n, e) in [("/pay", pay, pay_err), ("/balance", balance, balance_err)] {
            self.add(
                F_REQ,
                "http_server_requests_total",
                l(&[("cell", cell), ("service", "wallet-api"), ("route", route), ("status", "200")]),
                t,
                n * (1.0 - e),
                0,
            );
            self.add(
                F_REQ,
                "http_server_requests_total",
                l(&[("cell", cell), ("service", "wallet-api"), ("route", route), ("status", "500")]),
                t,
                n * e,
                0,
            );
        }
    }

    /// Errors of in-flight requests lost to an OOM kill.
    pub(crate) fn extra_errors(&mut self, t: Timestamp, cell: &str, service: &str, n: f64) {
        if self.naming.single_exporter() {
            return; // the single-exporter namings record no OOM-killed requests
        }
        let key = if self.naming == MetricNaming::Istio {
            SeriesKey::new("istio_requests_total", istio_destination(cell, service, Some("500")))
        } else {
            let route = if service == "wallet-api" { "/pay" } else { "/" };
            let labels = l(&[("cell", cell), ("service", service), ("route", route), ("status", "500")]);
            SeriesKey::new("http_server_requests_total", labels)
        };
        *self.totals.entry(key).or_insert(0.0) += n;
        let _ = t; // counted into the next sample of the series
    }

    pub(crate) fn provider_requests(&mut self, t: Timestamp, cell: &str, provider: &str, calls: f64, error: f64) {
        if self.naming.single_exporter() {
            return;
        }
        if self.naming == MetricNaming::Istio {
            // A provider is outside the mesh: only the caller's sidecar reports the call.
            let host = format!("{provider}.payments.example");
            for (code, n) in [("200", calls * (1.0 - error)), ("502", calls * error)] {
                let labels = l(&[
                    ("reporter", "source"),
                    ("source_workload", "provider-gateway"),
                    ("source_workload_namespace", cell),
                    ("destination_workload", "unknown"),
                    ("destination_workload_namespace", "unknown"),
                    ("destination_service", &host),
                    ("destination_service_name", &host),
                    ("request_protocol", "http"),
                    ("response_code", code),
                ]);
                self.add(F_ISTIO_REQ, "istio_requests_total", labels, t, n, 0);
            }
            return;
        }
        for (status, n) in [("200", calls * (1.0 - error)), ("502", calls * error)] {
            self.add(
                F_REQ,
                "http_server_requests_total",
                l(&[
                    ("cell", cell),
                    ("service", "provider-gateway"),
                    ("provider", provider),
                    ("route", "/charge"),
                    ("status", status),
                ]),
                t,
                n,
                0,
            );
        }
    }

    /// The edge router's view of a cell: requests sent to it and how many failed.
    pub(crate) fn edge(&mut self, t: Timestamp, cell: &str, requests: f64, failed: f64) {
        if self.naming.single_exporter() {
            return;
        }
        if self.naming == MetricNaming::Istio {
            return;
        }
        self.add(
            F_REQ,
            "http_server_requests_total",
            l(&[("cell", cell), ("route", "/"), ("status", "200")]),
            t,
            requests - failed,
            0,
        );
        self.add(
            F_REQ,
            "http_server_requests_total",
            l(&[("cell", cell), ("route", "/"), ("status", "503")]),
            t,
            failed,
            0,
        );
    }

    pub(crate) fn database(&mut self, t: Timestamp, cell: &str, p99: f64) {
        if self.naming.single_exporter() {
            self.profile_database(t, cell, p99);
            return;
        }
        if self.naming == MetricNaming::Istio {
            return;
        }
        self.push(
            F_DB,
            "pod_server_latency_p99_seconds",
            l(&[
                ("cell", cell),
                ("service", crate::model::DATABASE),
                ("pod", &format!("{}-0", crate::model::DATABASE)),
            ]),
            t,
            sig(p99 * 2.5, 3),
        );
    }

    pub(crate) fn queue(&mut self, t: Timestamp, cell: &str, depth: f64, offset: f64) {
        if self.naming.single_exporter() {
            if self.naming == MetricNaming::KafkaExporter {
                let f = self.family(
                    "kafka_consumergroup_lag_sum",
                    MetricType::Gauge,
                    "",
                    "Consumer group lag summed over the topic's partitions (kafka_exporter).",
                );
                let labels = l(&[("consumergroup", "consumer"), ("topic", "payment-events"), ("namespace", cell)]);
                self.push(f, "kafka_consumergroup_lag_sum", labels, t, depth.round());
            }
            return;
        }
        if self.naming == MetricNaming::Istio {
            return;
        }
        let labels = l(&[("cell", cell), ("service", "consumer"), ("queue", "payment-events")]);
        self.push(F_QDEPTH, "messaging_queue_depth_messages", labels.clone(), t, depth.round());
        self.push(F_LAG, "messaging_consumer_lag_messages", labels.clone(), t, depth.round());
        self.push(F_OFFSET, "messaging_consumer_offset", labels, t, offset.floor());
    }

    /// A node this step: its readiness, and (node_exporter) its active and total memory, bytes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn node(&mut self, t: Timestamp, node: &str, zone: &str, cell: &str, ready: bool, active: f64, total: f64) {
        if self.naming == MetricNaming::NodeExporter {
            let labels = l(&[("node", node), ("instance", &format!("{node}:9100")), ("job", "node-exporter")]);
            let f = self.family(
                "node_memory_Active_bytes",
                MetricType::Gauge,
                "",
                "Memory information field Active_bytes (node_exporter).",
            );
            self.push(
                f,
                "node_memory_Active_bytes",
                labels.clone(),
                t,
                (active / 65536.0).round() * 65536.0,
            );
            let f = self.family(
                "node_memory_MemTotal_bytes",
                MetricType::Gauge,
                "",
                "Memory information field MemTotal_bytes (node_exporter).",
            );
            self.push(f, "node_memory_MemTotal_bytes", labels, t, total);
            return;
        }
        if self.naming.single_exporter() {
            return;
        }
        if self.naming == MetricNaming::Istio {
            return;
        }
        self.push(
            F_NODE,
            "kube_node_status_condition",
            l(&[
                ("node", node),
                ("zone", zone),
                ("cell", cell),
                ("condition", "Ready"),
                ("status", "true"),
            ]),
            t,
            if ready { 1.0 } else { 0.0 },
        );
    }

    /// The index of the family `name`, added (empty) the first time a naming writes it.
    fn family(&mut self, name: &str, kind: MetricType, unit: &str, help: &str) -> usize {
        if let Some(i) = self.families.iter().position(|f| f.name == name) {
            return i;
        }
        self.families.push(Family {
            name: name.to_string(),
            kind,
            help: Some(help.to_string()),
            unit: (!unit.is_empty()).then(|| unit.to_string()),
            series: Vec::new(),
        });
        self.families.len() - 1
    }

    /// A pod's memory and CPU under the single-exporter namings that report per pod.
    #[allow(clippy::too_many_arguments)]
    fn profile_pod(&mut self, t: Timestamp, cell: &str, service: &str, pod: &str, memory: f64, limit: f64, cpu_secs: f64) {
        let memory = (memory / 65536.0).round() * 65536.0;
        match self.naming {
            MetricNaming::Micrometer => {
                let labels = l(&[
                    ("application", service),
                    ("namespace", cell),
                    ("pod", pod),
                    ("area", "heap"),
                    ("id", "G1 Old Gen"),
                ]);
                let used = self.family(
                    "jvm_memory_used_bytes",
                    MetricType::Gauge,
                    "bytes",
                    "The amount of used memory (Micrometer).",
                );
                self.push(used, "jvm_memory_used_bytes", labels.clone(), t, memory);
                let max = self.family(
                    "jvm_memory_max_bytes",
                    MetricType::Gauge,
                    "bytes",
                    "The maximum amount of memory that can be used (Micrometer).",
                );
                self.push(max, "jvm_memory_max_bytes", labels, t, limit);
            }
            MetricNaming::Kubernetes => {
                let labels = l(&[("namespace", cell), ("pod", pod), ("container", service)]);
                let rss = self.family(
                    "container_memory_rss",
                    MetricType::Gauge,
                    "bytes",
                    "Size of RSS in bytes (cAdvisor).",
                );
                self.push(rss, "container_memory_rss", labels, t, memory);
                let ready = self.family(
                    "kube_pod_status_ready",
                    MetricType::Gauge,
                    "",
                    "Describes whether the pod is ready to serve requests (kube-state-metrics).",
                );
                let labels = l(&[("namespace", cell), ("pod", pod), ("condition", "true")]);
                self.push(ready, "kube_pod_status_ready", labels, t, 1.0);
            }
            MetricNaming::PrometheusClient => {
                let labels = l(&[("namespace", cell), ("pod", pod)]);
                let rss = self.family(
                    "process_resident_memory_bytes",
                    MetricType::Gauge,
                    "bytes",
                    "Resident memory size in bytes.",
                );
                self.push(rss, "process_resident_memory_bytes", labels.clone(), t, memory);
                let cpu = self.family(
                    "process_cpu_seconds",
                    MetricType::Counter,
                    "seconds",
                    "Total user and system CPU time spent in seconds.",
                );
                self.push(cpu, "process_cpu_seconds_total", labels, t, (cpu_secs * 10.0).floor() / 10.0);
            }
            _ => {}
        }
    }

    /// Requests a server saw this step, under the single-exporter namings that count them.
    fn profile_requests(&mut self, t: Timestamp, cell: &str, service: &str, ok: f64, failed: f64) {
        match self.naming {
            MetricNaming::Linkerd => {
                let f = self.family("response", MetricType::Counter, "", "Responses the Linkerd proxy sent (inbound).");
                for (code, class, n) in [("200", "success", ok), ("500", "failure", failed)] {
                    let labels = l(&[
                        ("direction", "inbound"),
                        ("deployment", service),
                        ("namespace", cell),
                        ("status_code", code),
                        ("classification", class),
                    ]);
                    self.add(f, "response_total", labels, t, n, 0);
                }
            }
            MetricNaming::Envoy => {
                let f = self.family(
                    "envoy_cluster_upstream_rq_xx",
                    MetricType::Counter,
                    "",
                    "Upstream responses by code class (Envoy).",
                );
                for (class, n) in [("2", ok), ("5", failed)] {
                    let labels = l(&[
                        ("envoy_cluster_name", service),
                        ("namespace", cell),
                        ("envoy_response_code_class", class),
                    ]);
                    self.add(f, "envoy_cluster_upstream_rq_xx", labels, t, n, 0);
                }
            }
            MetricNaming::IngressNginx => {
                let f = self.family(
                    "nginx_ingress_controller_requests",
                    MetricType::Counter,
                    "",
                    "The total number of client requests (ingress-nginx).",
                );
                for (status, n) in [("200", ok), ("500", failed)] {
                    let labels = l(&[("ingress", service), ("namespace", cell), ("service", service), ("status", status)]);
                    self.add(f, "nginx_ingress_controller_requests", labels, t, n, 0);
                }
            }
            MetricNaming::Custom => {
                let total = ok + failed;
                let pct = if total > 0.0 { 100.0 * failed / total } else { 0.0 };
                let f = self.family(
                    "acme_svc_errors_pct",
                    MetricType::Gauge,
                    "",
                    "Share of failed calls, percent (a home-grown exporter).",
                );
                self.push(f, "acme_svc_errors_pct", l(&[("app", service), ("ns", cell)]), t, sig(pct, 3));
            }
            _ => {}
        }
    }

    /// A server's mean duration this step (`n` requests, log-normal with sigma 0.5 around
    /// `median`: mean = median × e^0.125, p99 = median × e^(2.326 × 0.5) ≈ median × 3.2).
    fn profile_duration(&mut self, t: Timestamp, cell: &str, service: &str, n: f64, median: f64) {
        let mean = median * 1.133;
        match self.naming {
            MetricNaming::Linkerd => {
                let f = self.family(
                    "response_latency_ms",
                    MetricType::Histogram,
                    "",
                    "Response latency in milliseconds (Linkerd proxy, inbound).",
                );
                let labels = l(&[("direction", "inbound"), ("deployment", service), ("namespace", cell)]);
                self.add(f, "response_latency_ms_sum", labels.clone(), t, n * mean * 1000.0, 0);
                self.add(f, "response_latency_ms_count", labels, t, n, 0);
            }
            MetricNaming::Envoy => {
                let f = self.family(
                    "envoy_cluster_upstream_rq_time",
                    MetricType::Histogram,
                    "",
                    "Upstream request time in milliseconds (Envoy).",
                );
                let labels = l(&[("envoy_cluster_name", service), ("namespace", cell)]);
                self.add(f, "envoy_cluster_upstream_rq_time_sum", labels.clone(), t, n * mean * 1000.0, 0);
                self.add(f, "envoy_cluster_upstream_rq_time_count", labels, t, n, 0);
            }
            MetricNaming::IngressNginx => {
                let name = "nginx_ingress_controller_request_duration_seconds";
                let f = self.family(
                    name,
                    MetricType::Histogram,
                    "seconds",
                    "The request processing time (ingress-nginx).",
                );
                let labels = l(&[("ingress", service), ("namespace", cell), ("service", service)]);
                self.add(f, &format!("{name}_sum"), labels.clone(), t, n * mean, 2);
                self.add(f, &format!("{name}_count"), labels, t, n, 0);
            }
            MetricNaming::Custom => {
                let f = self.family(
                    "acme_svc_p99_ms",
                    MetricType::Gauge,
                    "",
                    "p99 of the service's calls, ms (a home-grown exporter).",
                );
                self.push(
                    f,
                    "acme_svc_p99_ms",
                    l(&[("app", service), ("ns", cell)]),
                    t,
                    sig(median * 3.2 * 1000.0, 3),
                );
            }
            _ => {}
        }
    }

    /// The cell's database this step (`p99` seconds), under the namings that see databases.
    fn profile_database(&mut self, t: Timestamp, cell: &str, p99: f64) {
        let db = crate::model::DATABASE;
        // The same scale the default naming's database gauge uses.
        let p99 = p99 * 2.5;
        match self.naming {
            MetricNaming::OpenTelemetry => {
                let name = "db_client_operation_duration_seconds";
                let f = self.family(
                    name,
                    MetricType::Histogram,
                    "seconds",
                    "Duration of database client operations (OpenTelemetry).",
                );
                let labels = l(&[
                    ("service_name", "ledger"),
                    ("service_namespace", cell),
                    ("db_system", "postgresql"),
                    ("db_namespace", db),
                ]);
                // 20 queries a second, each of the p99 / 3.2 × 1.133 mean.
                let n = 20.0 * 30.0;
                self.add(f, &format!("{name}_sum"), labels.clone(), t, n * p99 / 3.2 * 1.133, 2);
                self.add(f, &format!("{name}_count"), labels, t, n, 0);
            }
            MetricNaming::PostgresExporter => {
                let up = self.family(
                    "pg_up",
                    MetricType::Gauge,
                    "",
                    "Whether the last scrape of metrics from PostgreSQL was able to connect to the server.",
                );
                self.push(up, "pg_up", l(&[("namespace", cell), ("pod", &format!("{db}-0"))]), t, 1.0);
                let f = self.family(
                    "pg_stat_activity_max_tx_duration",
                    MetricType::Gauge,
                    "",
                    "Max duration in seconds any active transaction has been running (postgres_exporter).",
                );
                let labels = l(&[("datname", db), ("namespace", cell), ("state", "active"), ("usename", "ledger")]);
                self.push(f, "pg_stat_activity_max_tx_duration", labels, t, sig(p99, 3));
            }
            MetricNaming::Cockroachdb => {
                let f = self.family(
                    "sql_service_latency",
                    MetricType::Histogram,
                    "",
                    "Latency of SQL request execution, nanoseconds (CockroachDB).",
                );
                let labels = l(&[("namespace", cell), ("pod", &format!("{db}-0"))]);
                let n = 20.0 * 30.0;
                self.add(f, "sql_service_latency_sum", labels.clone(), t, n * p99 / 3.2 * 1.133 * 1e9, 0);
                self.add(f, "sql_service_latency_count", labels, t, n, 0);
            }
            _ => {}
        }
    }

    pub(crate) fn span(&mut self, s: Span) {
        self.pending.push(s);
    }

    pub(crate) fn pending_mut(&mut self) -> &mut Vec<Span> {
        &mut self.pending
    }

    pub(crate) fn end_step(&mut self) {
        self.pending.sort_by_key(|s| s.start_ns);
        self.spans.append(&mut self.pending);
    }
}
