//! A plain service dependency graph: nodes are services and external dependencies, edges are
//! caller → callee with call counts, errors and latency. Built by `detector::graph` from spans.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Service,
    /// A dependency outside the platform (payment provider, KYC, a managed database).
    External,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphNode {
    pub name: String,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphEdge {
    /// Index into `nodes` of the caller.
    pub from: usize,
    /// Index into `nodes` of the callee.
    pub to: usize,
    pub calls: u64,
    pub errors: u64,
    /// Mean duration of the callee's spans on this edge, seconds.
    pub mean_latency_secs: f64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServiceGraph {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
}

impl ServiceGraph {
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }
    /// Names of the services `name` calls.
    pub fn callees(&self, name: &str) -> Vec<&str> {
        let Some(i) = self.index_of(name) else { return Vec::new() };
        self.edges
            .iter()
            .filter(|e| e.from == i)
            .map(|e| self.nodes[e.to].name.as_str())
            .collect()
    }
    /// Names of the services that call `name`.
    pub fn callers(&self, name: &str) -> Vec<&str> {
        let Some(i) = self.index_of(name) else { return Vec::new() };
        self.edges
            .iter()
            .filter(|e| e.to == i)
            .map(|e| self.nodes[e.from].name.as_str())
            .collect()
    }
}
