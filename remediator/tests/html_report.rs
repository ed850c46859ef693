//! The HTML report is well-formed (a strict XML parser reads it whole), self-contained, and shows
//! the candidates, the dependency graph with the root cause and its propagation path, and sparklines.

use cellwarden_engine::rules;
use cellwarden_models::graph::{GraphEdge, GraphNode, NodeKind, ServiceGraph};
use cellwarden_models::report::{IncidentReport, Report, SeriesSnippet, TimelineEntry};
use cellwarden_models::{Candidate, Entity, EntityKind, Evidence, Incident, IncidentClass, Mode, Sample, Signal, Timestamp};
use cellwarden_remediator::html;
use quick_xml::events::Event;
use quick_xml::Reader;

fn node(name: &str, kind: NodeKind) -> GraphNode {
    GraphNode { name: name.into(), kind }
}

fn edge(from: usize, to: usize) -> GraphEdge {
    GraphEdge {
        from,
        to,
        calls: 10,
        errors: 0,
        mean_latency_secs: 0.02,
    }
}

fn candidate(kind: EntityKind, name: &str, score: f64) -> Candidate {
    let entity = Entity::new(kind, name);
    Candidate {
        class: kind.class(),
        entity,
        score,
        evidence: vec![Evidence {
            source: "metric:latency".into(),
            detail: "p99 <b>tripled</b> & more".into(),
            score,
        }],
    }
}

/// gateway → wallet → payments → provider-a, wallet → ledger; provider-a is the root cause.
fn report() -> Report {
    let graph = ServiceGraph {
        nodes: vec![
            node("cell-1/api-gateway", NodeKind::Service),
            node("cell-1/wallet-api", NodeKind::Service),
            node("cell-1/payments", NodeKind::Service),
            node("provider-a", NodeKind::External),
            node("cell-1/ledger", NodeKind::Service),
        ],
        edges: vec![edge(0, 1), edge(1, 2), edge(2, 3), edge(1, 4)],
    };
    let t = Timestamp::parse_rfc3339("2026-03-02T09:45:00Z").unwrap();
    let incident = Incident {
        id: "inc-1".into(),
        opened_at: t,
        ranked_at: t,
        class: IncidentClass::Fault,
        anomalies: vec![],
        candidates: vec![
            candidate(EntityKind::Provider, "provider-a", 0.9),
            candidate(EntityKind::Service, "cell-1/payments", 0.4),
        ],
        alerts: vec![],
    };
    let plan = rules::plan(&incident, &[], None, &rules::PlanContext::default());
    assert_eq!(plan.mode, Mode::DryRun);
    let spark = SeriesSnippet {
        series: "http_server_requests:error_ratio{provider=\"provider-a\"}".into(),
        entity: Some("provider-a".into()),
        signal: Signal::ErrorRatio,
        points: (0..20)
            .map(|i| Sample {
                t: t.plus_secs(i * 30 - 300),
                value: if i > 10 { 0.3 } else { 0.01 },
            })
            .collect(),
        limit: None,
    };
    Report {
        schema_version: 1,
        source: "fixtures/<provider-errors>".into(),
        from: Some(t.plus_secs(-2700)),
        to: Some(t.plus_secs(1800)),
        series: 10,
        samples: 100,
        spans: 50,
        anomalies_total: 3,
        timeline: vec![TimelineEntry {
            t,
            kind: "incident".into(),
            text: "inc-1 opened & ranked".into(),
        }],
        warnings: vec![],
        incidents: vec![IncidentReport {
            incident,
            plan,
            key_series: vec![spark],
            lifecycle: Default::default(),
            rankings: vec![],
            brief: Default::default(),
        }],
        graph,
    }
}

fn parse_all(xml: &str) -> Vec<(String, Vec<(String, String)>)> {
    // Skip the doctype line, which is not XML.
    let body = xml.split_once('\n').map(|(_, b)| b).unwrap();
    let mut reader = Reader::from_str(body);
    reader.config_mut().check_end_names = true;
    let mut elements = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                let attrs = e
                    .attributes()
                    .map(|a| a.unwrap())
                    .map(|a| {
                        (
                            String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                            a.unescape_value().unwrap().into_owned(),
                        )
                    })
                    .collect();
                elements.push((String::from_utf8(e.name().as_ref().to_vec()).unwrap(), attrs));
            }
            Ok(_) => {}
            Err(e) => panic!("not well-formed at {}: {e}", reader.buffer_position()),
        }
    }
    elements
}

fn class_of(attrs: &[(String, String)]) -> &str {
    attrs.iter().find(|(k, _)| k == "class").map_or("", |(_, v)| v.as_str())
}

#[test]
fn html_report_is_well_formed_and_shows_graph_candidates_and_sparklines() {
    let page = html::to_html(&report());
    assert!(page.starts_with("<!DOCTYPE html>"));
    let elements = parse_all(&page);
    // The graph: one node per service, the root cause marked, the path to the entry point hot.
    let svg = elements.iter().filter(|(n, a)| n == "svg" && class_of(a) == "depgraph").count();
    assert_eq!(svg, 1);
    let nodes = elements.iter().filter(|(n, a)| n == "g" && class_of(a).starts_with("node")).count();
    assert_eq!(nodes, 5);
    let roots = elements.iter().filter(|(n, a)| n == "g" && class_of(a) == "node root").count();
    assert_eq!(roots, 1);
    // provider-a ← payments ← wallet-api ← api-gateway: three hot edges; wallet → ledger is not hot.
    let hot = elements.iter().filter(|(n, a)| n == "path" && class_of(a) == "edge hot").count();
    assert_eq!(hot, 3);
    assert_eq!(elements.iter().filter(|(n, a)| n == "path" && class_of(a) == "edge").count(), 1);
    // Candidates with their evidence, escaped.
    assert!(page.contains("<table class=\"candidates\">"));
    assert!(page.contains("provider-a") && page.contains("cell-1/payments"));
    assert!(page.contains("p99 &lt;b&gt;tripled&lt;/b&gt; &amp; more"));
    assert!(page.contains("fixtures/&lt;provider-errors&gt;"));
    // A sparkline with the onset marked, and the plan.
    assert_eq!(elements.iter().filter(|(n, a)| n == "svg" && class_of(a) == "sparkline").count(), 1);
    assert!(page.contains("failover_provider"));
    // Self-contained: nothing loaded from elsewhere.
    assert!(!page.contains("<script") && !page.contains("src=\"http") && !page.contains("href=\"http"));
}

#[test]
fn a_cell_candidate_highlights_the_cells_services() {
    let mut r = report();
    r.incidents[0].incident.candidates = vec![candidate(EntityKind::Cell, "cell-1", 0.9)];
    let page = html::to_html(&r);
    let elements = parse_all(&page);
    let roots = elements.iter().filter(|(n, a)| n == "g" && class_of(a) == "node root").count();
    assert_eq!(roots, 4, "every cell-1 service, not the shared provider");
}

#[test]
fn alerts_that_opened_or_joined_an_incident_are_listed_in_html_and_markdown() {
    let mut r = report();
    r.incidents[0].incident.alerts = vec![cellwarden_models::AlertNote {
        fingerprint: "9f1c".into(),
        name: "CardSchemeErrors".into(),
        firing: true,
        starts_at: Some(r.incidents[0].incident.opened_at.plus_secs(-240)),
        seen_at: r.incidents[0].incident.opened_at,
        entity: Some(Entity::new(EntityKind::Provider, "provider-a")),
        severity: Some("critical".into()),
        summary: "declines > 5% <for 5m>".into(),
        generator_url: "http://prometheus:9090/graph?g0.expr=x&g0.tab=1".into(),
    }];
    let page = html::to_html(&r);
    parse_all(&page);
    assert!(page.contains("<h3>Alertmanager alerts</h3>"));
    assert!(
        page.contains(
            "CardSchemeErrors (firing, critical) on provider provider-a since 2026-03-02T09:41:00Z: declines &gt; 5% &lt;for 5m&gt;"
        ),
        "{page}"
    );
    assert!(
        !page.contains("href=\"http"),
        "the rule link is text, the page stays self-contained"
    );
    let md = cellwarden_remediator::report::to_markdown(&r);
    assert!(
        md.contains("Alertmanager alerts:\n\n- CardSchemeErrors (firing, critical) on provider provider-a since"),
        "{md}"
    );
    assert!(md.contains("— rule: http://prometheus:9090/graph?g0.expr=x&g0.tab=1"));
}
