//! Signal rules as data: which series carry which signal, how their samples are read, in what
//! unit, and which labels name the entity they describe.
//!
//! A [`SignalRule`] is what a person writes (the config's `signals:` list) and what the profiles
//! shipped with the binary are made of (`profiles/*.yaml`, embedded at build time). A
//! [`SignalRules`] is the compiled, ordered set [`super::derive`] works with: the config's rules
//! first, then the profiles in [`PROFILES`] order, then the inferences of [`inferences`] — the
//! first rule that names a series decides it, so a config rule always wins over a profile and a
//! profile over a guess.
//!
//! Pure data and matching: no IO (the profile files are compiled in).

use cellwarden_models::{Family, MetricType, SeriesKey, Signal};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The profiles shipped with the binary, in precedence order: `(name, YAML list of rules)`.
///
/// `cellwarden` holds the names FIXTURES.md's signals table documents (and the bundled fixtures
/// use); it comes first because it is what cellwarden's own figures are measured on. Then the
/// meshes and proxies (they see every service the same way), the frameworks and client
/// libraries, the exporters of databases, queues and nodes, and the remaining Kubernetes names.
/// The profiles name disjoint metrics, so the order only decides a metric two of them name
/// (today: none but what `cellwarden` already reads).
pub const PROFILES: &[(&str, &str)] = &[
    ("cellwarden", include_str!("profiles/cellwarden.yaml")),
    ("istio", include_str!("profiles/istio.yaml")),
    ("linkerd", include_str!("profiles/linkerd.yaml")),
    ("envoy", include_str!("profiles/envoy.yaml")),
    ("ingress-nginx", include_str!("profiles/ingress-nginx.yaml")),
    ("opentelemetry", include_str!("profiles/opentelemetry.yaml")),
    ("micrometer", include_str!("profiles/micrometer.yaml")),
    ("prometheus-client", include_str!("profiles/prometheus-client.yaml")),
    ("kafka-exporter", include_str!("profiles/kafka-exporter.yaml")),
    ("postgres-exporter", include_str!("profiles/postgres-exporter.yaml")),
    ("cockroachdb", include_str!("profiles/cockroachdb.yaml")),
    ("node-exporter", include_str!("profiles/node-exporter.yaml")),
    ("kubernetes", include_str!("profiles/kubernetes.yaml")),
];

/// One rule: series it names → the signal they carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalRule {
    /// What `cellwarden signals` calls the rule; default: its metric (or regex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The metric as PromQL names it: a gauge's or counter's sample name
    /// (`istio_requests_total`), a histogram's or summary's base name
    /// (`istio_request_duration_milliseconds`, without `_bucket`/`_sum`/`_count`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Instead of `metric`: a regular expression over the same name, anchored at both ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_regex: Option<String>,
    /// Labels the series must carry, with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The signal the series carry. Absent for `read: requests`, which gives two
    /// (`request_rate` and `error_ratio`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<Signal>,
    /// How the samples become the signal's values.
    pub read: Read,
    /// The unit the samples are in; converted to the signal's (seconds, ratio).
    #[serde(default)]
    pub unit: Unit,
    /// `read: histogram_quantile`: the quantile to compute (e.g. 0.99); `read: summary_quantile`:
    /// the value of the series' `quantile` label to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantile: Option<f64>,
    /// `read: requests`: the labels holding the response status, first present wins; a value
    /// starting with `5` is an error. Default: `status`, then `code`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_labels: Vec<String>,
    /// Which labels name the entity. Absent: the usual ones (`provider`, `service`, `cell` or
    /// `namespace`, Kubernetes workload labels, `node`; see `Entity::of_series`). Given: the
    /// derived series carry exactly these entity labels (under cellwarden's names), and a
    /// counter's or histogram's other labels are summed over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<EntityLabels>,
}

/// How a rule reads its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Read {
    /// The value as it is (in the rule's unit).
    Gauge,
    /// A monotonic counter: its per-second rate, resets handled.
    CounterRate,
    /// The share that is fine (a success ratio or percentage, a 0/1 health condition): the
    /// signal is the share that is not, `1 - value`, so that up means worse.
    SuccessRatio,
    /// A histogram's mean: `rate(_sum) / rate(_count)`, summed over the labels that split an
    /// entity (route, status, method, `le`, or all but the entity's when `entity` is given).
    HistogramMean,
    /// A histogram's quantile `quantile` from its buckets' increases each step, interpolated
    /// within a bucket as PromQL's `histogram_quantile` does.
    HistogramQuantile,
    /// A summary's (or precomputed quantile gauge's) series whose `quantile` label is the
    /// rule's `quantile`.
    SummaryQuantile,
    /// Request counters by status: request rate and the ratio of 5xx responses.
    Requests,
    /// Named on purpose and not read: a profile keeps the inferences off an exporter's series
    /// that are no signal of a wallet's health (node_exporter's other `node_memory_*` fields, the
    /// Go runtime's `go_memstats_*`), and `cellwarden signals` says which rule left them out.
    Ignore,
}

impl Read {
    /// Whether the reader combines several series of an entity into one (and so reads a
    /// histogram's parts, or sums over labels), rather than each series on its own.
    pub fn aggregates(self) -> bool {
        matches!(self, Read::HistogramMean | Read::HistogramQuantile | Read::Requests)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Read::Gauge => "gauge",
            Read::CounterRate => "counter_rate",
            Read::SuccessRatio => "success_ratio",
            Read::HistogramMean => "histogram_mean",
            Read::HistogramQuantile => "histogram_quantile",
            Read::SummaryQuantile => "summary_quantile",
            Read::Requests => "requests",
            Read::Ignore => "ignore",
        }
    }
}

/// The unit of a rule's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Already in the signal's unit (no conversion).
    #[default]
    AsIs,
    Seconds,
    Milliseconds,
    Microseconds,
    /// CockroachDB's latency histograms.
    Nanoseconds,
    /// A fraction, 0 to 1.
    Ratio,
    /// Percent, 0 to 100: divided by 100.
    Percent,
    Bytes,
}

impl Unit {
    /// `v` in the signal's base unit. Division (not multiplication by 0.001) keeps the figures
    /// of the hard-coded table this replaced bit for bit (`1 - v/100`).
    pub fn to_base(self, v: f64) -> f64 {
        match self {
            Unit::AsIs | Unit::Seconds | Unit::Ratio | Unit::Bytes => v,
            Unit::Milliseconds => v / 1000.0,
            Unit::Microseconds => v / 1_000_000.0,
            Unit::Nanoseconds => v / 1_000_000_000.0,
            Unit::Percent => v / 100.0,
        }
    }
}

/// Labels that name an entity, under cellwarden's label names; for each, the series' labels to
/// take it from, first present and non-empty wins.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EntityLabels {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cell: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespace: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pod: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub node: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub zone: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub provider: Vec<String>,
}

impl EntityLabels {
    fn slots(&self) -> [(&'static str, &[String]); 7] {
        [
            ("cell", &self.cell),
            ("namespace", &self.namespace),
            ("node", &self.node),
            ("pod", &self.pod),
            ("provider", &self.provider),
            ("service", &self.service),
            ("zone", &self.zone),
        ]
    }

    /// cellwarden's entity labels of `key`, sorted by name.
    pub fn resolve(&self, key: &SeriesKey) -> Vec<(String, String)> {
        self.slots()
            .iter()
            .filter_map(|(ours, theirs)| {
                let v = theirs.iter().find_map(|l| key.label(l).filter(|v| !v.is_empty()))?;
                Some((ours.to_string(), v.to_string()))
            })
            .collect()
    }

    /// Whether `label` is one the entity is read from (or one of cellwarden's entity labels).
    pub fn mentions(&self, label: &str) -> bool {
        self.slots()
            .iter()
            .any(|(ours, theirs)| *ours == label || theirs.iter().any(|l| l == label))
    }
}

/// Where a rule comes from: the precedence tier `cellwarden signals` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The config's `signals:` list.
    Config,
    /// A profile shipped with the binary.
    Profile(&'static str),
    /// A guess from the exposition's type and the name's conventions.
    Inferred,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Config => f.write_str("config"),
            Origin::Profile(p) => write!(f, "profile {p}"),
            Origin::Inferred => f.write_str("inferred"),
        }
    }
}

/// A rule or a profile that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// A profile shipped with the binary is not a valid list of rules (a build defect).
    #[error("profile {profile} is not a list of signal rules: {source}")]
    Profile {
        profile: &'static str,
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A rule's `metric_regex` does not compile.
    #[error("signal rule {rule}: metric_regex {pattern:?}: {source}")]
    Regex {
        rule: String,
        pattern: String,
        #[source]
        source: regex::Error,
    },
    /// A rule is incomplete or contradicts itself.
    #[error("signal rule {rule}: {reason}")]
    Invalid { rule: String, reason: &'static str },
}

impl RuleError {
    /// A bounded label for counting failures.
    pub fn metric_label(&self) -> &'static str {
        match self {
            RuleError::Profile { .. } => "profile",
            RuleError::Regex { .. } => "regex",
            RuleError::Invalid { .. } => "invalid",
        }
    }
}

#[derive(Debug, Clone)]
enum NameMatch {
    Exact(String),
    Regex(Regex),
}

/// A rule ready to match: its spec, how it matches names, where it came from.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub spec: SignalRule,
    pub origin: Origin,
    /// The rule's name as shown: its `name`, else its metric or regex.
    pub id: String,
    names: NameMatch,
    /// Only series of families of this type (inferences read the exposition's TYPE).
    family_kind: Option<MetricType>,
    /// Only series carrying at least one of these labels (an inference of request counters
    /// wants a status label).
    any_label: &'static [&'static str],
}

/// Which rule named a series, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    pub origin: Origin,
    pub id: String,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.id, self.origin)
    }
}

impl CompiledRule {
    fn compile(spec: SignalRule, origin: Origin) -> Result<CompiledRule, RuleError> {
        let id = spec
            .name
            .clone()
            .or_else(|| spec.metric.clone())
            .or_else(|| spec.metric_regex.clone())
            .unwrap_or_else(|| "(unnamed)".into());
        let invalid = |reason| RuleError::Invalid { rule: id.clone(), reason };
        let names = match (&spec.metric, &spec.metric_regex) {
            (Some(m), None) => NameMatch::Exact(m.clone()),
            (None, Some(p)) => NameMatch::Regex(Regex::new(&format!("^(?:{p})$")).map_err(|source| RuleError::Regex {
                rule: id.clone(),
                pattern: p.clone(),
                source,
            })?),
            (Some(_), Some(_)) => return Err(invalid("give metric or metric_regex, not both")),
            (None, None) => return Err(invalid("give metric or metric_regex")),
        };
        match (spec.read, spec.signal) {
            (Read::Requests, Some(_)) => return Err(invalid("read: requests gives request_rate and error_ratio; leave signal out")),
            (Read::Requests, None) => {}
            (Read::Ignore, Some(_)) => return Err(invalid("read: ignore reads nothing; leave signal out")),
            (Read::Ignore, None) => {}
            (_, None) => {
                return Err(invalid(
                    "signal is required (memory, memory_limit, cpu, latency, client_latency, error_ratio, request_rate, queue_lag)",
                ))
            }
            (_, Some(_)) => {}
        }
        let quantiles = matches!(spec.read, Read::SummaryQuantile | Read::HistogramQuantile);
        match spec.quantile {
            None if quantiles => return Err(invalid("read: summary_quantile and histogram_quantile need quantile (e.g. 0.99)")),
            Some(_) if !quantiles => return Err(invalid("quantile is only read by summary_quantile and histogram_quantile")),
            Some(q) if !(q > 0.0 && q < 1.0) => return Err(invalid("quantile must be between 0 and 1")),
            _ => {}
        }
        if spec.read != Read::Requests && !spec.status_labels.is_empty() {
            return Err(invalid("status_labels are only read by read: requests"));
        }
        Ok(CompiledRule {
            spec,
            origin,
            id,
            names,
            family_kind: None,
            any_label: &[],
        })
    }

    pub fn rule_ref(&self) -> RuleRef {
        RuleRef {
            origin: self.origin.clone(),
            id: self.id.clone(),
        }
    }

    /// The name this rule's reader knows `sample` by: a histogram's or summary's base name for
    /// its `_bucket`/`_sum`/`_count` samples, else the sample name itself.
    pub fn name_of<'a>(&self, sample: &'a str) -> Option<&'a str> {
        match self.spec.read {
            Read::HistogramMean | Read::HistogramQuantile => ["_bucket", "_sum", "_count"].iter().find_map(|s| sample.strip_suffix(s)),
            _ => Some(sample),
        }
    }

    /// Whether the rule names series called `sample` in a family of type `kind` (labels aside).
    pub fn names(&self, kind: MetricType, sample: &str) -> bool {
        if self.family_kind.is_some_and(|k| k != kind) {
            return false;
        }
        let Some(name) = self.name_of(sample) else { return false };
        match &self.names {
            NameMatch::Exact(m) => m == name,
            NameMatch::Regex(r) => r.is_match(name),
        }
    }

    /// Whether `key`'s labels are what the rule asks for (its matchers, and a summary rule's
    /// quantile).
    pub fn accepts(&self, key: &SeriesKey) -> bool {
        self.spec.labels.iter().all(|(k, v)| key.label(k) == Some(v.as_str()))
            && (self.any_label.is_empty() || self.any_label.iter().any(|l| key.label(l).is_some()))
            && self
                .summary_quantile()
                .is_none_or(|q| key.label("quantile").and_then(|v| v.parse::<f64>().ok()) == Some(q))
    }

    /// The `quantile` label a summary rule asks for.
    fn summary_quantile(&self) -> Option<f64> {
        self.spec.quantile.filter(|_| self.spec.read == Read::SummaryQuantile)
    }

    /// Why the rule does not accept `key`: the first label it wants otherwise, as
    /// `(label, wanted, found)`; `None` when it accepts it.
    pub fn mismatch(&self, key: &SeriesKey) -> Option<(String, String, Option<String>)> {
        let owned = |l: &str| key.label(l).map(str::to_string);
        if let Some((k, v)) = self.spec.labels.iter().find(|(k, v)| key.label(k) != Some(v.as_str())) {
            return Some((k.clone(), v.clone(), owned(k)));
        }
        if !self.any_label.is_empty() && !self.any_label.iter().any(|l| key.label(l).is_some()) {
            return Some((self.any_label.join("|"), "(any value)".into(), None));
        }
        let q = self.summary_quantile()?;
        (key.label("quantile").and_then(|v| v.parse::<f64>().ok()) != Some(q))
            .then(|| ("quantile".into(), q.to_string(), owned("quantile")))
    }
}

/// The status labels the request-counter inference reads, first present wins (`outcome` is
/// Micrometer's `SERVER_ERROR`/`SUCCESS`, which the requests reader also understands).
const INFERRED_STATUS_LABELS: &[&str] = &["code", "status", "status_code", "response_code", "outcome"];

/// The inferences: what cellwarden guesses for series no rule names, from the exposition's type
/// (`# TYPE`) and the name's conventions (the unit suffix OpenMetrics asks for, words like
/// latency or memory). Marked [`Origin::Inferred`] and tried after every rule, in this order.
pub fn inferences() -> Vec<CompiledRule> {
    let guess = |name: &str, regex: &str, kind: MetricType, signal: Option<Signal>, read: Read, unit: Unit| {
        let spec = SignalRule {
            name: Some(name.into()),
            metric: None,
            metric_regex: Some(regex.into()),
            labels: BTreeMap::new(),
            signal,
            read,
            unit,
            quantile: None,
            status_labels: if read == Read::Requests {
                INFERRED_STATUS_LABELS.iter().map(|l| l.to_string()).collect()
            } else {
                vec![]
            },
            entity: None,
        };
        let mut r = CompiledRule::compile(spec, Origin::Inferred).expect("the inferences are valid rules");
        r.family_kind = Some(kind);
        r
    };
    use MetricType::{Counter, Gauge, Histogram};
    let mut requests = guess(
        "counter of requests with a status label",
        ".*_requests?_total",
        Counter,
        None,
        Read::Requests,
        Unit::AsIs,
    );
    requests.any_label = INFERRED_STATUS_LABELS;
    vec![
        // A histogram in seconds is a duration: most often a request's.
        guess(
            "histogram named *_seconds",
            ".*_seconds",
            Histogram,
            Some(Signal::Latency),
            Read::HistogramMean,
            Unit::Seconds,
        ),
        guess(
            "histogram named *_milliseconds",
            ".*_(milliseconds|ms)",
            Histogram,
            Some(Signal::Latency),
            Read::HistogramMean,
            Unit::Milliseconds,
        ),
        // A gauge that says it is a latency or duration is one (a precomputed quantile or mean).
        guess(
            "gauge named like a latency in seconds",
            ".*(latency|duration|response_time).*_seconds",
            Gauge,
            Some(Signal::Latency),
            Read::Gauge,
            Unit::Seconds,
        ),
        guess(
            "gauge named like a latency in milliseconds",
            ".*(latency|duration|response_time).*_(milliseconds|ms)",
            Gauge,
            Some(Signal::Latency),
            Read::Gauge,
            Unit::Milliseconds,
        ),
        // Limits before usage: `memory_limit_bytes` is a limit even though it says memory.
        guess(
            "memory gauge in bytes named like a limit",
            ".*(memory|mem|heap).*(limit|max|capacity).*_bytes|.*(limit|max|capacity).*(memory|mem|heap).*_bytes",
            Gauge,
            Some(Signal::MemoryLimit),
            Read::Gauge,
            Unit::Bytes,
        ),
        guess(
            "memory gauge in bytes",
            ".*(memory|mem|heap|rss|working_set|resident).*_bytes",
            Gauge,
            Some(Signal::Memory),
            Read::Gauge,
            Unit::Bytes,
        ),
        requests,
    ]
}

/// Parses the rules of one profile file.
pub fn parse_profile(name: &'static str, yaml: &str) -> Result<Vec<SignalRule>, RuleError> {
    serde_yaml_ng::from_str(yaml).map_err(|source| RuleError::Profile { profile: name, source })
}

/// The compiled, ordered rule set: config rules, profiles, inferences.
#[derive(Debug, Clone)]
pub struct SignalRules {
    rules: Vec<CompiledRule>,
}

impl SignalRules {
    /// The config's rules on top of every profile and the inferences.
    pub fn new(config: &[SignalRule]) -> Result<SignalRules, RuleError> {
        let mut rules = Vec::new();
        for r in config {
            rules.push(CompiledRule::compile(r.clone(), Origin::Config)?);
        }
        for (name, yaml) in PROFILES {
            for r in parse_profile(name, yaml)? {
                rules.push(CompiledRule::compile(r, Origin::Profile(name))?);
            }
        }
        rules.extend(inferences());
        Ok(SignalRules { rules })
    }

    /// Every rule in precedence order.
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// The indices of the rules that name samples called `sample` of a family like `fam`,
    /// in precedence order (labels not yet checked).
    pub fn naming(&self, fam: &Family, sample: &str) -> Vec<usize> {
        (0..self.rules.len()).filter(|i| self.rules[*i].names(fam.kind, sample)).collect()
    }
}

/// The built-in set, parsed and compiled once: callers that derive every step (the daemon, the
/// closed-loop simulator) ask for it every step.
static BUILTIN: std::sync::LazyLock<SignalRules> =
    std::sync::LazyLock::new(|| SignalRules::new(&[]).expect("the bundled profiles are valid (tested)"));

impl Default for SignalRules {
    /// The profiles shipped with the binary and the inferences, no config rules.
    fn default() -> Self {
        BUILTIN.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> Result<CompiledRule, RuleError> {
        let spec: SignalRule = serde_yaml_ng::from_str(yaml).map_err(|source| RuleError::Profile { profile: "test", source })?;
        CompiledRule::compile(spec, Origin::Config)
    }

    #[test]
    fn every_bundled_profile_parses_and_compiles() {
        let rules = SignalRules::default();
        for (name, _) in PROFILES {
            assert!(
                rules.rules().iter().any(|r| r.origin == Origin::Profile(name)),
                "profile {name} has no rules"
            );
        }
        assert_eq!(rules.rules().last().map(|r| r.origin.clone()), Some(Origin::Inferred));
    }

    #[test]
    fn a_typo_in_a_rule_is_an_error_not_a_silent_default() {
        let err = rule("metric: foo\nsignal: latency\nread: gauge\nunits: milliseconds\n").unwrap_err();
        assert!(err.to_string().contains("units"), "{err}");
        let err = rule("metric: foo\nsignal: latency\nread: gauge\nentity: {servce: [app]}\n").unwrap_err();
        assert!(err.to_string().contains("servce"), "{err}");
        let err = rule("metric: foo\nsignal: latancy\nread: gauge\n").unwrap_err();
        assert!(err.to_string().contains("latancy"), "{err}");
    }

    #[test]
    fn contradictory_rules_are_refused() {
        assert!(matches!(rule("signal: latency\nread: gauge\n"), Err(RuleError::Invalid { .. })));
        assert!(matches!(
            rule("metric: a\nmetric_regex: b\nsignal: cpu\nread: gauge\n"),
            Err(RuleError::Invalid { .. })
        ));
        assert!(matches!(
            rule("metric: a\nsignal: error_ratio\nread: requests\n"),
            Err(RuleError::Invalid { .. })
        ));
        assert!(matches!(rule("metric: a\nread: gauge\n"), Err(RuleError::Invalid { .. })));
        assert!(matches!(
            rule("metric: a\nsignal: latency\nread: summary_quantile\n"),
            Err(RuleError::Invalid { .. })
        ));
        assert!(matches!(
            rule("metric_regex: '('\nsignal: cpu\nread: gauge\n"),
            Err(RuleError::Regex { .. })
        ));
    }

    #[test]
    fn a_histogram_rule_names_its_parts_by_the_base_name() {
        let r = rule("metric: istio_request_duration_milliseconds\nsignal: latency\nread: histogram_mean\nunit: milliseconds\n").unwrap();
        for part in ["_bucket", "_sum", "_count"] {
            assert!(r.names(MetricType::Histogram, &format!("istio_request_duration_milliseconds{part}")));
        }
        assert!(!r.names(MetricType::Histogram, "istio_request_duration_milliseconds"));
        assert!(!r.names(MetricType::Histogram, "istio_request_duration_milliseconds_created"));
    }

    #[test]
    fn a_regex_is_anchored_at_both_ends() {
        let r = rule("metric_regex: 'app_.*_p99_seconds'\nsignal: latency\nread: gauge\n").unwrap();
        assert!(r.names(MetricType::Gauge, "app_checkout_p99_seconds"));
        assert!(!r.names(MetricType::Gauge, "my_app_checkout_p99_seconds"));
        assert!(!r.names(MetricType::Gauge, "app_checkout_p99_seconds_max"));
    }

    #[test]
    fn config_rules_come_before_profiles_and_inference_last() {
        let mine: SignalRule = serde_yaml_ng::from_str("metric: container_memory_working_set_bytes\nsignal: cpu\nread: gauge\n").unwrap();
        let rules = SignalRules::new(&[mine]).unwrap();
        let fam = Family {
            name: "container_memory_working_set_bytes".into(),
            kind: MetricType::Gauge,
            ..Default::default()
        };
        let naming = rules.naming(&fam, "container_memory_working_set_bytes");
        assert_eq!(rules.rules()[naming[0]].origin, Origin::Config);
        assert_eq!(rules.rules()[naming[1]].origin, Origin::Profile("cellwarden"));
    }

    #[test]
    fn entity_labels_take_the_first_present_non_empty_label() {
        let e = EntityLabels {
            service: vec!["destination_canonical_service".into(), "destination_workload".into()],
            cell: vec!["destination_workload_namespace".into()],
            ..Default::default()
        };
        let key = SeriesKey::new(
            "istio_requests_total",
            [
                ("destination_canonical_service", ""),
                ("destination_workload", "ledger-v2"),
                ("destination_workload_namespace", "cell-2"),
                ("response_code", "200"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        assert_eq!(
            e.resolve(&key),
            vec![
                ("cell".to_string(), "cell-2".to_string()),
                ("service".to_string(), "ledger-v2".to_string())
            ]
        );
    }

    #[test]
    fn units_convert_to_seconds_and_ratios() {
        assert_eq!(Unit::Milliseconds.to_base(250.0), 0.25);
        assert_eq!(Unit::Percent.to_base(99.5), 0.995);
        assert_eq!(Unit::AsIs.to_base(7.0), 7.0);
    }
}
