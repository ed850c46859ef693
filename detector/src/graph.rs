//! The service dependency graph, learned from spans: caller → callee edges where a span's parent
//! ran in another service, and edges to external dependencies from client spans that name a peer.

use cellwarden_models::graph::{GraphEdge, GraphNode, NodeKind, ServiceGraph};
use cellwarden_models::span::DependencyKind;
use cellwarden_models::{Entity, Span};
use std::collections::HashMap;

/// The graph node name of the service a span ran in (`cell/service` when the cell is known).
pub fn service_of(span: &Span) -> String {
    Entity::service(span.resource.cell.as_deref(), &span.resource.service).name
}

/// Builds the graph of `spans` (any order, any mix of traces).
pub fn build(spans: &[Span]) -> ServiceGraph {
    let mut owner: HashMap<(&str, &str), usize> = HashMap::with_capacity(spans.len());
    for (i, s) in spans.iter().enumerate() {
        owner.insert((s.trace_id.as_str(), s.span_id.as_str()), i);
    }
    let mut g = ServiceGraph::default();
    let mut index: HashMap<(String, NodeKind), usize> = HashMap::new();
    // (from, to) → (calls, errors, total latency)
    let mut acc: HashMap<(usize, usize), (u64, u64, f64)> = HashMap::new();
    let mut node = |g: &mut ServiceGraph, name: String, kind: NodeKind| -> usize {
        *index.entry((name.clone(), kind)).or_insert_with(|| {
            g.nodes.push(GraphNode { name, kind });
            g.nodes.len() - 1
        })
    };
    for s in spans {
        let me = service_of(s);
        let my = node(&mut g, me.clone(), NodeKind::Service);
        if !s.parent_span_id.is_empty() {
            if let Some(&pi) = owner.get(&(s.trace_id.as_str(), s.parent_span_id.as_str())) {
                let parent = service_of(&spans[pi]);
                if parent != me {
                    let from = node(&mut g, parent, NodeKind::Service);
                    let e = acc.entry((from, my)).or_default();
                    e.0 += 1;
                    e.1 += u64::from(s.failed());
                    e.2 += s.duration_secs();
                }
            }
        }
        if let Some((peer, kind)) = s.dependency() {
            // A datastore belongs to the caller's cell; a provider is shared by all cells.
            let to = match kind {
                DependencyKind::External => node(&mut g, peer.to_string(), NodeKind::External),
                DependencyKind::Datastore => node(&mut g, Entity::service(s.resource.cell.as_deref(), peer).name, NodeKind::Service),
            };
            let e = acc.entry((my, to)).or_default();
            e.0 += 1;
            e.1 += u64::from(s.failed());
            e.2 += s.duration_secs();
        }
    }
    let mut edges: Vec<GraphEdge> = acc
        .into_iter()
        .map(|((from, to), (calls, errors, lat))| GraphEdge {
            from,
            to,
            calls,
            errors,
            mean_latency_secs: lat / calls.max(1) as f64,
        })
        .collect();
    edges.sort_by_key(|e| (e.from, e.to));
    g.edges = edges;
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rca::traces::tests::SpanBuilder;
    use cellwarden_models::span::SpanKind;

    pub(crate) fn span(trace: &str, id: &str, parent: &str, service: &str, start_ms: i64, dur_ms: i64) -> Span {
        SpanBuilder::new(trace, id, parent, service)
            .at(start_ms as f64, dur_ms as f64)
            .build()
    }

    #[test]
    fn edges_follow_parent_spans_across_services_and_to_external_peers() {
        let mut pay = span("1", "3", "2", "payments", 0, 30);
        pay.kind = SpanKind::Client;
        pay.attributes.insert("peer.service".into(), "provider-a".into());
        let spans = vec![
            span("1", "1", "", "gateway", 0, 50),
            span("1", "2", "1", "wallet", 0, 40),
            span("1", "4", "2", "wallet", 0, 10),
            pay,
        ];
        let g = build(&spans);
        assert_eq!(g.callees("gateway"), vec!["wallet"]);
        assert_eq!(g.callees("wallet"), vec!["payments"]);
        assert_eq!(g.callees("payments"), vec!["provider-a"]);
        assert_eq!(g.nodes[g.index_of("provider-a").unwrap()].kind, NodeKind::External);
        assert_eq!(g.callers("wallet"), vec!["gateway"]);
    }
}
