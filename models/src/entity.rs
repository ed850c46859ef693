//! Entities: the things a root cause can be — a service (optionally in a cell), an external
//! provider, a node, a zone or a cell — and how series and truth name them.

use crate::series::SeriesKey;
use crate::truth::RootCause;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityKind {
    Service,
    Provider,
    Node,
    Zone,
    Cell,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Service => "service",
            EntityKind::Provider => "provider",
            EntityKind::Node => "node",
            EntityKind::Zone => "zone",
            EntityKind::Cell => "cell",
        }
    }
    /// The class a root cause of this kind belongs to.
    pub fn class(self) -> CauseClass {
        match self {
            EntityKind::Service => CauseClass::Internal,
            EntityKind::Provider => CauseClass::External,
            EntityKind::Node | EntityKind::Zone | EntityKind::Cell => CauseClass::Infrastructure,
        }
    }
}

/// Internal service, external provider, or infrastructure (node/zone/cell).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CauseClass {
    Internal,
    External,
    Infrastructure,
}

impl CauseClass {
    pub fn as_str(self) -> &'static str {
        match self {
            CauseClass::Internal => "internal",
            CauseClass::External => "external",
            CauseClass::Infrastructure => "infrastructure",
        }
    }
}

/// A named entity. Services in a cell are named `cell/service` (`cell-2/ledger`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entity {
    pub kind: EntityKind,
    pub name: String,
}

impl Entity {
    /// `<kind>:<name>` (e.g. `service:cell-2/ledger`): the entity as one string where the kind
    /// matters (a verification's watch in an Incident's status, and its lookup).
    pub fn qualified(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.name)
    }

    pub fn service(cell: Option<&str>, service: &str) -> Entity {
        let name = match cell {
            Some(c) => format!("{c}/{service}"),
            None => service.to_string(),
        };
        Entity {
            kind: EntityKind::Service,
            name,
        }
    }
    pub fn new(kind: EntityKind, name: impl Into<String>) -> Entity {
        Entity { kind, name: name.into() }
    }
    /// The service part of a service entity's name (`ledger` of `cell-2/ledger`).
    pub fn service_name(&self) -> Option<&str> {
        (self.kind == EntityKind::Service).then(|| self.name.rsplit('/').next().unwrap_or(&self.name))
    }
    /// The cell part of a service entity's name, if any.
    pub fn cell(&self) -> Option<&str> {
        match self.kind {
            EntityKind::Service => self.name.split_once('/').map(|(c, _)| c),
            EntityKind::Cell => Some(&self.name),
            _ => None,
        }
    }

    /// The entity a series describes: a provider when it has a `provider` label; else the service
    /// its `service` label names; else (for series not about nodes) the workload its Kubernetes
    /// labels name ([`Entity::workload_of_labels`]: cAdvisor's and kube-state-metrics' series carry
    /// `namespace`/`pod`/`container`, OpenTelemetry's `service_name`); else the node; else the
    /// cell. A service's cell is its `cell` label, else its `namespace` (cells are namespaces).
    /// `None` for platform-wide series (e.g. an entry-point SLI).
    pub fn of_series(key: &SeriesKey) -> Option<Entity> {
        if let Some(p) = key.label("provider") {
            return Some(Entity::new(EntityKind::Provider, p));
        }
        let cell = key.label("cell").or(key.label("namespace"));
        if let Some(s) = key.label("service") {
            return Some(Entity::service(cell, s));
        }
        let about_nodes = key.metric.starts_with("kube_node_") || key.metric.starts_with("node_");
        if !about_nodes {
            if let Some(w) = Entity::workload_of_labels(|k| key.label(k)) {
                return Some(Entity::service(cell, w));
            }
        }
        if let Some(n) = key.label("node") {
            return Some(Entity::new(EntityKind::Node, n));
        }
        key.label("cell").map(|c| Entity::new(EntityKind::Cell, c))
    }

    /// The workload Kubernetes labels name, most specific first: the `deployment`, `statefulset`
    /// or `daemonset` label (kube-state-metrics), the workload of the `pod` label
    /// ([`workload_of_pod`]), the `container` label (not cAdvisor's `POD` or pod-level `""`), the
    /// `app_kubernetes_io_name` or `app` label, OpenTelemetry's `service_name`. Empty values count
    /// as absent.
    pub fn workload_of_labels<'a>(label: impl Fn(&str) -> Option<&'a str>) -> Option<&'a str> {
        let l = |k: &str| label(k).filter(|v| !v.is_empty());
        l("deployment")
            .or_else(|| l("statefulset"))
            .or_else(|| l("daemonset"))
            .or_else(|| l("pod").map(workload_of_pod))
            .or_else(|| l("container").filter(|c| *c != "POD"))
            .or_else(|| l("app_kubernetes_io_name"))
            .or_else(|| l("app"))
            .or_else(|| l("service_name"))
    }

    /// The truth's target: the first present of service (with cell), provider, node, zone, cell.
    pub fn of_root_cause(rc: &RootCause) -> Option<Entity> {
        if let Some(s) = &rc.service {
            return Some(Entity::service(rc.cell.as_deref(), s));
        }
        if let Some(p) = &rc.provider {
            return Some(Entity::new(EntityKind::Provider, p));
        }
        if let Some(n) = &rc.node {
            return Some(Entity::new(EntityKind::Node, n));
        }
        if let Some(z) = &rc.zone {
            return Some(Entity::new(EntityKind::Zone, z));
        }
        rc.cell.as_ref().map(|c| Entity::new(EntityKind::Cell, c))
    }

    /// Whether this candidate names `target`. A truth that names a service without a cell is
    /// matched by that service in any cell; a truth with a cell needs that cell.
    pub fn matches(&self, target: &Entity) -> bool {
        if self.kind != target.kind {
            return false;
        }
        if self.kind == EntityKind::Service && target.cell().is_none() {
            return self.service_name() == target.service_name();
        }
        self.name == target.name
    }
}

/// The workload a Kubernetes pod belongs to, by the names controllers give pods: a Deployment's
/// `ledger-7d9f8b6c5d-x2x7q` (ReplicaSet hash, then a 5-character suffix) → `ledger`; a
/// DaemonSet's `fluent-bit-x2x7q` → `fluent-bit`; a StatefulSet's `ledger-db-0` → `ledger-db`.
/// Suffixes are recognised by Kubernetes' alphabet for generated names (no vowels, no 0, 1, 3);
/// any other name is returned as it is.
pub fn workload_of_pod(pod: &str) -> &str {
    fn generated(s: &str, lens: std::ops::RangeInclusive<usize>) -> bool {
        lens.contains(&s.len()) && s.bytes().all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
    }
    let Some((rest, last)) = pod.rsplit_once('-') else { return pod };
    if rest.is_empty() {
        return pod;
    }
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return rest;
    }
    if !generated(last, 5..=5) {
        return pod;
    }
    match rest.rsplit_once('-') {
        Some((name, hash)) if !name.is_empty() && generated(hash, 6..=10) => name,
        _ => rest,
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_names_give_their_workload() {
        assert_eq!(workload_of_pod("ledger-7d9f8b6c5d-x2x7q"), "ledger");
        assert_eq!(workload_of_pod("wallet-api-5c66d57d58-6mp2b"), "wallet-api");
        assert_eq!(workload_of_pod("fluent-bit-x2x7q"), "fluent-bit");
        assert_eq!(workload_of_pod("ledger-db-0"), "ledger-db");
        assert_eq!(
            workload_of_pod("api-gateway-udefy"),
            "api-gateway-udefy",
            "vowels: not a generated suffix"
        );
        assert_eq!(workload_of_pod("ledger"), "ledger");
        assert_eq!(workload_of_pod("-x2x7q"), "-x2x7q");
    }

    #[test]
    fn kubernetes_labels_name_the_service_in_its_namespace() {
        let key =
            |metric: &str, labels: &[(&str, &str)]| SeriesKey::new(metric, labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        // cAdvisor: namespace, pod, container — the Deployment is the service, the namespace its cell.
        let cadvisor = key(
            "container_memory_working_set_bytes",
            &[
                ("namespace", "cell-2"),
                ("pod", "ledger-7d9f8b6c5d-x2x7q"),
                ("container", "ledger"),
                ("node", "n1"),
            ],
        );
        assert_eq!(Entity::of_series(&cadvisor), Some(Entity::service(Some("cell-2"), "ledger")));
        // Pod-level cgroup (container ""): the pod still names it.
        let pod_level = key(
            "container_memory_working_set_bytes",
            &[("namespace", "cell-2"), ("pod", "ledger-db-0"), ("container", "")],
        );
        assert_eq!(Entity::of_series(&pod_level), Some(Entity::service(Some("cell-2"), "ledger-db")));
        // OpenTelemetry's service name, no namespace: a service without a cell.
        let otel = key("http_server_request_duration_seconds_count", &[("service_name", "payments")]);
        assert_eq!(Entity::of_series(&otel), Some(Entity::service(None, "payments")));
        // Node series stay the node's even when the exporter's own pod labels are on them.
        let node = key(
            "kube_node_status_condition",
            &[
                ("node", "n1"),
                ("pod", "kube-state-metrics-6f7b9c8d4f-abcde"),
                ("condition", "Ready"),
            ],
        );
        assert_eq!(Entity::of_series(&node), Some(Entity::new(EntityKind::Node, "n1")));
        // An explicit service label wins, with its cell label.
        let ours = key(
            "m",
            &[
                ("cell", "cell-1"),
                ("namespace", "cell-1"),
                ("service", "api"),
                ("pod", "api-udefy"),
            ],
        );
        assert_eq!(Entity::of_series(&ours), Some(Entity::service(Some("cell-1"), "api")));
        assert_eq!(Entity::of_series(&key("m", &[("namespace", "cell-1")])), None);
    }

    #[test]
    fn truth_without_cell_matches_service_in_any_cell() {
        let truth = Entity::service(None, "ledger");
        assert!(Entity::service(Some("cell-2"), "ledger").matches(&truth));
        let truth_in_cell = Entity::service(Some("cell-2"), "ledger");
        assert!(!Entity::service(Some("cell-1"), "ledger").matches(&truth_in_cell));
        assert!(!Entity::service(None, "ledger").matches(&truth_in_cell));
        assert!(!Entity::new(EntityKind::Node, "ledger").matches(&truth));
    }

    #[test]
    fn root_cause_target_prefers_service_then_provider() {
        let rc = RootCause {
            provider: Some("provider-a".into()),
            zone: Some("zone-b".into()),
            ..Default::default()
        };
        assert_eq!(Entity::of_root_cause(&rc), Some(Entity::new(EntityKind::Provider, "provider-a")));
        let rc = RootCause {
            service: Some("ledger".into()),
            cell: Some("cell-2".into()),
            pod: Some("p".into()),
            ..Default::default()
        };
        assert_eq!(Entity::of_root_cause(&rc).unwrap().name, "cell-2/ledger");
    }
}
