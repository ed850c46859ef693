//! `topology.yaml`: what the cluster looked like (FIXTURES.md). Every part is optional.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Topology {
    /// Free text naming the system (`wallet`, `train-ticket`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cells: Vec<CellInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external: Vec<ExternalInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeInfo>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CellInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Share of traffic routed to the cell, percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceInfo {
    pub name: String,
    /// On the payment-authorization path; non-essential services may be circuit-broken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub essential: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deployments: Vec<DeploymentInfo>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DeploymentInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cell: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<f64>,
    /// When each revision of the Deployment rolled out, oldest first (what its ReplicaSets'
    /// `deployment.kubernetes.io/revision` annotations and creation times say). Optional: a
    /// fault that began shortly after a rollout gets a rollback proposed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<RevisionInfo>,
}

/// One revision of a Deployment and when it rolled out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionInfo {
    /// The `deployment.kubernetes.io/revision` number (1, 2, …).
    pub revision: u64,
    /// When it rolled out (RFC 3339, UTC).
    pub at: crate::time::Timestamp,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalInfo {
    pub name: String,
    /// e.g. `payment-provider`, `kyc`, `card-scheme`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Share of calls routed to it, percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cell: Option<String>,
}

impl Topology {
    pub fn service(&self, name: &str) -> Option<&ServiceInfo> {
        self.services.iter().find(|s| s.name == name)
    }
    /// Whether the topology marks `service` as non-essential (`essential: false`).
    pub fn is_non_essential(&self, service: &str) -> bool {
        self.service(service).and_then(|s| s.essential) == Some(false)
    }
    pub fn is_external(&self, name: &str) -> bool {
        self.external.iter().any(|e| e.name == name)
    }
    pub fn cell_of_node(&self, node: &str) -> Option<&str> {
        self.nodes.iter().find(|n| n.name == node).and_then(|n| n.cell.as_deref())
    }
    pub fn zone_of_cell(&self, cell: &str) -> Option<&str> {
        self.cells.iter().find(|c| c.name == cell).and_then(|c| c.zone.as_deref())
    }
}
