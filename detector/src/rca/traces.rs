//! What the ranker reads from spans: each service's *entry* spans (the first span of a request in
//! a service, whose parent ran elsewhere or is absent) with the calls they made, in order, and the
//! time they spent on their own.
//!
//! A call is a remote child span in another service, reached through the caller's local spans, or
//! a local client span naming a dependency (`peer.service`, `db.system`, …): an external provider,
//! or a datastore or other service of the platform, in the caller's cell, that has no spans of its
//! own. When the remote child hangs under a local client span, that span is the call as the caller
//! saw it; the difference between the two durations is time on the wire and in the callee's queues
//! (the *network gap*). When it hangs directly under a server span (no client span recorded), the
//! child's own interval is the call and there is no gap.

use crate::graph::service_of;
use cellwarden_models::span::{DependencyKind, SpanKind};
use cellwarden_models::{Entity, Span};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One outgoing call of an entry span.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    /// The callee: a service entity name (`cell/service` or `service`), or an external peer.
    pub callee: String,
    /// Whether the callee is outside the platform (an external peer named by the client span).
    pub external: bool,
    /// Whether the callee's own span is seen (else only the caller's client span is).
    pub traced: bool,
    pub start_ns: i64,
    pub end_ns: i64,
    /// Caller's client span duration minus the callee's server span duration, when both exist.
    pub gap_ns: Option<i64>,
    /// The callee's span (or the external client span) failed.
    pub failed: bool,
}

/// Where an entry span falls: before the trouble (baseline) or after its start (test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Base,
    Test,
}

/// An entry span of a service and what it did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// Service entity name.
    pub service: String,
    /// The entry span's name: the operation.
    pub op: String,
    pub phase: Phase,
    /// A baseline entry in the guard band just before the start.
    pub guarded: bool,
    /// Duration minus the time covered by its calls.
    pub self_secs: f64,
    /// In start order.
    pub calls: Vec<Call>,
    pub failed: bool,
}

impl Entry {
    /// The failure is its own: it failed while none of its calls did.
    pub fn own_failure(&self) -> bool {
        self.failed && !self.calls.iter().any(|c| c.failed)
    }
}

/// Entry spans, and the nodes each service ran on.
#[derive(Debug, Default)]
pub(crate) struct TraceView {
    pub entries: Vec<Entry>,
    pub nodes_of: BTreeMap<String, BTreeSet<String>>,
}

/// Builds the view of `spans` (any order): entries starting before `start_ns` are baseline
/// (`guarded` from `guard_ns` on), the others test. `own_services` (entity names) tells which
/// peers named by client spans are the platform's own services rather than external ones.
pub(crate) fn view(spans: &[&Span], start_ns: i64, guard_ns: i64, own_services: &BTreeSet<String>) -> TraceView {
    let mut index: HashMap<(&str, &str), usize> = HashMap::with_capacity(spans.len());
    for (i, s) in spans.iter().enumerate() {
        index.insert((s.trace_id.as_str(), s.span_id.as_str()), i);
    }
    let services: Vec<String> = spans.iter().map(|s| service_of(s)).collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    let mut parent: Vec<Option<usize>> = vec![None; spans.len()];
    for (i, s) in spans.iter().enumerate() {
        if s.parent_span_id.is_empty() {
            continue;
        }
        if let Some(&p) = index.get(&(s.trace_id.as_str(), s.parent_span_id.as_str())) {
            if p != i {
                children[p].push(i);
                parent[i] = Some(p);
            }
        }
    }
    let mut out = TraceView::default();
    let mut stack = Vec::new();
    let mut intervals: Vec<(i64, i64)> = Vec::new();
    for (e, s) in spans.iter().enumerate() {
        if let Some(node) = &s.resource.node {
            out.nodes_of.entry(services[e].clone()).or_default().insert(node.clone());
        }
        if parent[e].is_some_and(|p| services[p] == services[e]) {
            continue; // not an entry span
        }
        let mut calls = Vec::new();
        stack.clear();
        stack.push(e);
        while let Some(x) = stack.pop() {
            let local = spans[x];
            let remote_children = children[x].iter().filter(|&&c| services[c] != services[e]).count();
            // A local span around exactly one call of another service, not the entry itself nor
            // a server span: the caller's client span, its view of the call.
            let wrapped = x != e && remote_children == 1 && !matches!(local.kind, SpanKind::Server | SpanKind::Consumer);
            for &c in &children[x] {
                if services[c] == services[e] {
                    stack.push(c);
                    continue;
                }
                let callee = spans[c];
                let (from, to) = if wrapped {
                    (local.start_ns, local.end_ns)
                } else {
                    (callee.start_ns, callee.end_ns)
                };
                calls.push(Call {
                    callee: services[c].clone(),
                    external: false,
                    traced: true,
                    start_ns: from,
                    end_ns: to,
                    gap_ns: wrapped.then(|| (local.end_ns - local.start_ns) - (callee.end_ns - callee.start_ns)),
                    failed: callee.failed(),
                });
            }
            if remote_children == 0 {
                if let Some((peer, kind)) = local.dependency() {
                    // A datastore or queue belongs to the caller's cell, and so does a peer that
                    // is one of the platform's own services; anything else is a provider.
                    let own = Entity::service(local.resource.cell.as_deref(), peer).name;
                    let external = kind == DependencyKind::External && !own_services.contains(&own);
                    calls.push(Call {
                        callee: if external { peer.to_string() } else { own },
                        external,
                        traced: false,
                        start_ns: local.start_ns,
                        end_ns: local.end_ns,
                        gap_ns: None,
                        failed: local.failed(),
                    });
                }
            }
        }
        calls.sort_by_key(|c| (c.start_ns, c.end_ns));
        intervals.clear();
        intervals.extend(calls.iter().map(|c| (c.start_ns.max(s.start_ns), c.end_ns.min(s.end_ns))));
        let busy = covered_ns(&mut intervals);
        let duration_ns = (s.end_ns - s.start_ns).max(0);
        out.entries.push(Entry {
            service: services[e].clone(),
            op: s.name.clone(),
            phase: if s.start_ns < start_ns { Phase::Base } else { Phase::Test },
            guarded: s.start_ns < start_ns && s.start_ns >= guard_ns,
            self_secs: (duration_ns - busy).max(0) as f64 / 1e9,
            calls,
            failed: s.failed(),
        });
    }
    out
}

/// Total length of the union of `intervals` (sorted in place; empty ones ignored).
fn covered_ns(intervals: &mut [(i64, i64)]) -> i64 {
    intervals.sort_unstable();
    let mut total = 0;
    let mut current: Option<(i64, i64)> = None;
    for &(a, b) in intervals.iter() {
        if b <= a {
            continue;
        }
        current = match current {
            Some((ca, cb)) if a <= cb => Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total += cb - ca;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    total + current.map_or(0, |(a, b)| b - a)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cellwarden_models::span::SpanResource;

    /// Builds spans of one trace: `span(id, parent, service)` then timing and kind.
    pub(crate) struct SpanBuilder(Span);

    impl SpanBuilder {
        pub fn new(trace: &str, id: &str, parent: &str, service: &str) -> SpanBuilder {
            SpanBuilder(Span {
                trace_id: format!("{trace:0>32}"),
                span_id: format!("{id:0>16}"),
                parent_span_id: if parent.is_empty() {
                    String::new()
                } else {
                    format!("{parent:0>16}")
                },
                name: "op".into(),
                kind: SpanKind::Server,
                start_ns: 0,
                end_ns: 0,
                error: false,
                resource: SpanResource {
                    service: service.into(),
                    ..Default::default()
                },
                attributes: Default::default(),
            })
        }
        /// Starts at `start_ms` and lasts `dur_ms`.
        pub fn at(mut self, start_ms: f64, dur_ms: f64) -> Self {
            self.0.start_ns = (start_ms * 1e6) as i64;
            self.0.end_ns = ((start_ms + dur_ms) * 1e6) as i64;
            self
        }
        pub fn named(mut self, name: &str) -> Self {
            self.0.name = name.into();
            self
        }
        /// A local span of the caller (a client span, or an unspecified one as some tracers write).
        pub fn client(mut self) -> Self {
            self.0.kind = SpanKind::Client;
            self
        }
        pub fn peer(mut self, peer: &str) -> Self {
            self.0.kind = SpanKind::Client;
            self.0.attributes.insert("peer.service".into(), peer.into());
            self
        }
        /// A client span to a datastore of the platform.
        pub fn datastore(mut self, name: &str) -> Self {
            self.0.kind = SpanKind::Client;
            self.0.attributes.insert("peer.service".into(), name.into());
            self.0.attributes.insert("db.system".into(), "postgresql".into());
            self
        }
        pub fn failed(mut self) -> Self {
            self.0.error = true;
            self
        }
        pub fn cell(mut self, cell: &str) -> Self {
            self.0.resource.cell = Some(cell.into());
            self
        }
        pub fn node(mut self, node: &str) -> Self {
            self.0.resource.node = Some(node.into());
            self
        }
        pub fn build(self) -> Span {
            self.0
        }
    }

    #[test]
    fn calls_through_client_spans_carry_the_network_gap_and_self_time_excludes_them() {
        let spans = [
            SpanBuilder::new("1", "1", "", "a").at(0.0, 100.0).build(),
            SpanBuilder::new("1", "2", "1", "a").client().at(10.0, 50.0).build(),
            SpanBuilder::new("1", "3", "2", "b").at(20.0, 30.0).build(),
            SpanBuilder::new("1", "4", "1", "a").peer("provider-x").at(70.0, 20.0).build(),
        ];
        let refs: Vec<&Span> = spans.iter().collect();
        let v = view(&refs, 1_000_000_000, 0, &BTreeSet::new());
        let a = v.entries.iter().find(|e| e.service == "a").unwrap();
        assert_eq!(a.calls.len(), 2);
        assert_eq!(a.calls[0].callee, "b");
        assert_eq!(a.calls[0].gap_ns, Some(20_000_000));
        assert_eq!(a.calls[1].callee, "provider-x");
        assert!(a.calls[1].external);
        assert!((a.self_secs - 0.030).abs() < 1e-9);
        assert_eq!(a.phase, Phase::Base);
        let b = v.entries.iter().find(|e| e.service == "b").unwrap();
        assert!(b.calls.is_empty());
        assert!((b.self_secs - 0.030).abs() < 1e-9);
    }

    #[test]
    fn a_callee_directly_under_a_server_span_is_a_call_without_gap_and_its_failure_not_the_callers_own() {
        let spans = [
            SpanBuilder::new("1", "1", "", "a").at(0.0, 100.0).failed().build(),
            SpanBuilder::new("1", "2", "1", "b").at(10.0, 40.0).failed().build(),
        ];
        let refs: Vec<&Span> = spans.iter().collect();
        let v = view(&refs, 0, 0, &BTreeSet::new());
        let a = &v.entries[0];
        assert_eq!(a.calls[0].gap_ns, None);
        assert!((a.self_secs - 0.060).abs() < 1e-9);
        assert!(a.calls[0].failed);
        assert_eq!(a.phase, Phase::Test);
        assert!(a.failed && !a.own_failure());
        assert!(v.entries[1].own_failure());
    }
}
