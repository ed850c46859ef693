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

    /// The entity a series describes: a provider when it has a `provider` label, else the service
    /// (with its cell), else the node; `None` for platform-wide series (e.g. an entry-point SLI).
    pub fn of_series(key: &SeriesKey) -> Option<Entity> {
        if let Some(p) = key.label("provider") {
            return Some(Entity::new(EntityKind::Provider, p));
        }
        if let Some(s) = key.label("service") {
            return Some(Entity::service(key.label("cell"), s));
        }
        if let Some(n) = key.label("node") {
            return Some(Entity::new(EntityKind::Node, n));
        }
        key.label("cell").map(|c| Entity::new(EntityKind::Cell, c))
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

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
