//! The self-contained HTML report: one page an on-call engineer can act on — the ranked root cause
//! with its evidence, the dependency graph drawn as inline SVG with the root cause and the
//! propagation path highlighted, sparklines of the key series around the onset, the plan, and the
//! timeline. No scripts, fonts or images from elsewhere: the file works offline and in a ticket.
//!
//! The markup is XHTML-compatible (every element closed, attributes quoted, text escaped), so a
//! strict XML parser accepts it; tests rely on that.

use cellwarden_models::graph::{NodeKind, ServiceGraph};
use cellwarden_models::report::{IncidentReport, Report, SeriesSnippet, StepKind};
use cellwarden_models::{units, EntityKind, Timestamp};
use std::collections::{BTreeSet, VecDeque};
use std::fmt::Write;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1f2328;max-width:1400px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}\
h3{font-size:15px;margin:18px 0 6px}.muted{color:#656d76}table{border-collapse:collapse;font-size:13px;margin:6px 0}\
td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f6f8fa}\
tr.top td{background:#ffebe9;font-weight:600}.badge{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;margin-right:4px}\
.internal{background:#ddf4ff}.external{background:#fff8c5}.infrastructure{background:#ffe2cc}.fault{background:#ffebe9}.capacity{background:#dafbe1}\
.spark{display:inline-block;vertical-align:top;width:310px;margin:4px 16px 8px 0;font-size:12px;overflow-wrap:anywhere}.graph{overflow-x:auto;border:1px solid #d0d7de;border-radius:6px;padding:6px;background:#fff}\
ul.plan li{margin:3px 0}code{background:#f6f8fa;padding:0 4px;border-radius:4px}\
.brief{border:1px solid #d0d7de;border-radius:6px;padding:10px 14px;margin:8px 0 14px;background:#fbfcfd}\
.summary{font-size:17px;font-weight:600;margin:2px 0 10px}table.facts th{width:90px;background:none;border:none;color:#656d76;font-weight:500}table.facts td{border:none}\
.drift{background:#fff8c5;border-left:4px solid #bf8700;padding:6px 10px;font-weight:600}\
pre.cmd{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:6px 10px;white-space:pre-wrap;word-break:break-all;font-size:12px;margin:2px 0 8px}\
.certainty-clear{background:#dafbe1}.certainty-likely{background:#ddf4ff}.certainty-uncertain{background:#fff8c5}.certainty-no-candidate{background:#eaeef2}\
li.outcome-verified .badge{background:#dafbe1}li.outcome-failed .badge{background:#ffebe9}li.outcome-refused .badge{background:#eaeef2}li.outcome-awaiting_approval .badge{background:#fff8c5}li.outcome-planned .badge,li.outcome-done .badge{background:#ddf4ff}";

/// Renders `report` as a self-contained HTML page.
pub fn to_html(report: &Report) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head><meta charset=\"utf-8\"/><title>cellwarden report: {}</title><style>{STYLE}</style></head><body>",
        esc(&report.source)
    );
    let _ = write!(
        h,
        "<h1>cellwarden report</h1><p class=\"muted\">{} · {}</p>",
        esc(&report.source),
        esc(&crate::report::headline(report))
    );
    if report.incidents.is_empty() {
        h.push_str("<p data-cw=\"summary\" class=\"summary\">No incident was opened.</p>");
    }
    for (i, ir) in report.incidents.iter().enumerate() {
        incident_section(&mut h, i + 1, ir, &report.graph);
    }
    if !report.warnings.is_empty() {
        h.push_str("<h2>Warnings</h2><p class=\"muted\">One line per workload: the forecast exhausting soonest, its pod named.</p><ul>");
        for g in crate::report::grouped_warnings(&report.warnings) {
            let _ = write!(h, "<li>{}</li>", esc(&g.text()));
        }
        h.push_str("</ul>");
    }
    h.push_str("<h2>Timeline</h2><table><tr><th>time (UTC)</th><th>kind</th><th>what</th></tr>");
    for e in &report.timeline {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            units::clock(e.t),
            esc(&e.kind),
            esc(&e.text)
        );
    }
    h.push_str("</table>");
    let _ = write!(
        h,
        "<h2>About this report</h2><p class=\"muted\">{}</p>",
        esc(&crate::report::about(report))
    );
    h.push_str("</body></html>\n");
    h
}

fn incident_section(h: &mut String, n: usize, ir: &IncidentReport, graph: &ServiceGraph) {
    let inc = &ir.incident;
    let class = match inc.class {
        cellwarden_models::IncidentClass::Fault => "fault",
        cellwarden_models::IncidentClass::Capacity => "capacity",
    };
    let _ = write!(
        h,
        "<h2 id=\"{}\">Incident {n}: {} <span class=\"badge {class}\">{class}</span></h2>",
        esc(&inc.id),
        esc(&inc.id)
    );
    brief_section(h, ir);
    let _ = write!(
        h,
        "<p class=\"muted\">Opened {}; ranked on telemetry up to {}.</p>",
        inc.opened_at, inc.ranked_at
    );
    if !inc.candidates.is_empty() {
        h.push_str("<h3>Root-cause candidates</h3><table class=\"candidates\"><tr><th>rank</th><th>candidate</th><th>kind</th><th>class</th><th>score</th><th>evidence</th></tr>");
        for (r, c) in inc.candidates.iter().enumerate() {
            let evidence: Vec<String> = c
                .evidence
                .iter()
                .take(3)
                .map(|e| format!("<code>{}</code> {}", esc(&e.source), esc(&e.detail)))
                .collect();
            let _ = write!(
                h,
                "<tr{}><td>{}</td><td>{}</td><td>{}</td><td><span class=\"badge {}\">{}</span></td><td>{:.2}</td><td>{}</td></tr>",
                if r == 0 { " class=\"top\"" } else { "" },
                r + 1,
                esc(&c.entity.name),
                c.entity.kind.as_str(),
                c.class.as_str(),
                c.class.as_str(),
                c.score,
                evidence.join("<br/>")
            );
        }
        h.push_str("</table>");
    }
    if !graph.nodes.is_empty() {
        h.push_str("<h3>Dependency graph</h3><p class=\"muted\">Callers left, callees right. Red: the most likely root cause and the path its fault travels to the entry points; orange: other candidates.</p><div class=\"graph\">");
        h.push_str(&graph_svg(graph, ir));
        h.push_str("</div>");
    }
    if !ir.key_series.is_empty() {
        h.push_str("<h3>Key series around the onset</h3><div>");
        for s in &ir.key_series {
            h.push_str(&sparkline(s, inc.opened_at));
        }
        h.push_str("</div>");
    }
    if !inc.anomalies.is_empty() {
        h.push_str("<h3>Anomalies that opened it</h3><ul>");
        for a in &inc.anomalies {
            let _ = write!(
                h,
                "<li>{} (score {:.2}, {}): {}</li>",
                a.t,
                a.score,
                esc(&a.detector),
                esc(&a.explanation)
            );
        }
        h.push_str("</ul>");
    }
    if !inc.alerts.is_empty() {
        h.push_str("<h3>Alertmanager alerts</h3><ul>");
        for a in &inc.alerts {
            let _ = write!(h, "<li>{}</li>", esc(&crate::report::alert_line(a)));
        }
        h.push_str("</ul>");
    }
    let _ = write!(h, "<h3>Plan details ({})</h3><ul class=\"plan\">", ir.plan.mode.as_str());
    for a in &ir.plan.actions {
        let params = a.params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ");
        let _ = write!(
            h,
            "<li><code>{}</code> <b>{}</b>{}{} — {}; expect {} within {} s</li>",
            a.kind,
            esc(&a.target),
            if params.is_empty() {
                String::new()
            } else {
                format!(" ({})", esc(&params))
            },
            if a.needs_approval {
                " <span class=\"badge fault\">needs approval</span>"
            } else {
                ""
            },
            esc(&a.reason),
            esc(&a.expected_effect),
            a.verify_within_secs
        );
    }
    for r in &ir.plan.refused {
        let _ = write!(
            h,
            "<li><code>{}</code> <b>{}</b> <span class=\"badge fault\">refused by {}</span> — {}</li>",
            r.action.kind,
            esc(&r.action.target),
            esc(&r.guard),
            esc(&r.reason)
        );
    }
    h.push_str("</ul>");
}

/// The brief: what an on-call engineer reads first. Every part carries a `data-cw` marker the
/// browser test looks for.
fn brief_section(h: &mut String, ir: &IncidentReport) {
    let b = &ir.brief;
    let _ = write!(
        h,
        "<div class=\"brief\"><p class=\"summary\" data-cw=\"summary\">{}</p>",
        esc(&b.summary)
    );
    let _ = write!(
        h,
        "<table class=\"facts\"><tr><th>status</th><td data-cw=\"status\">{}</td></tr>",
        esc(&b.status)
    );
    let _ = write!(
        h,
        "<tr><th>impact</th><td data-cw=\"impact\">{}</td></tr>",
        esc(b.impact.as_ref().map_or(crate::report::NO_IMPACT, |im| im.text.as_str()))
    );
    let _ = write!(
        h,
        "<tr><th>confidence</th><td data-cw=\"confidence\"><span class=\"badge certainty-{}\">{}</span> {}</td></tr>",
        b.confidence.certainty.as_str().replace(' ', "-"),
        esc(b.confidence.certainty.as_str()),
        esc(&b.confidence.text)
    );
    for c in &b.changes {
        let _ = write!(h, "<tr><th>changed</th><td data-cw=\"changed\">{}</td></tr>", esc(c));
    }
    h.push_str("</table>");
    if let Some(d) = &b.plan_drift {
        let _ = write!(h, "<p class=\"drift\" data-cw=\"drift\">{}</p>", esc(d));
    }
    if !b.actions.is_empty() {
        h.push_str("<h3>Actions</h3><ul class=\"actions\" data-cw=\"actions\">");
        for a in &b.actions {
            let _ = write!(
                h,
                "<li class=\"outcome-{}\"><span class=\"badge\">{}</span> {}</li>",
                serde_json::to_value(a.outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                esc(a.outcome.as_str()),
                esc(&a.text)
            );
        }
        h.push_str("</ul>");
    }
    h.push_str("<h3>Next steps</h3>");
    let (approve, rest): (Vec<_>, Vec<_>) = b.next_steps.iter().partition(|s| s.kind == StepKind::Approve);
    h.push_str("<div data-cw=\"approve\">");
    if approve.is_empty() {
        h.push_str("<p class=\"muted\">Nothing waits for approval.</p>");
    }
    let step = |h: &mut String, s: &cellwarden_models::report::NextStep| {
        let _ = write!(
            h,
            "<p>{}:</p><pre class=\"cmd\"><code>{}</code></pre>",
            esc(&s.what),
            esc(&s.command)
        );
    };
    for s in approve {
        step(h, s);
    }
    h.push_str("</div><div data-cw=\"next\">");
    for s in rest {
        step(h, s);
    }
    h.push_str("</div></div>");
}

/// The graph nodes the incident's top candidate stands for: the node itself, or the services of
/// the cell (or zone's cells) an infrastructure candidate names.
fn root_nodes(graph: &ServiceGraph, ir: &IncidentReport) -> BTreeSet<usize> {
    let Some(top) = ir.incident.candidates.first() else {
        return BTreeSet::new();
    };
    let name = &top.entity.name;
    match top.entity.kind {
        EntityKind::Service | EntityKind::Provider => graph.index_of(name).into_iter().collect(),
        EntityKind::Cell => graph
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.name.starts_with(&format!("{name}/")))
            .map(|(i, _)| i)
            .collect(),
        EntityKind::Node | EntityKind::Zone => {
            // Cells named by the incident's evidence; else nothing to highlight.
            let cells: BTreeSet<String> = ir
                .incident
                .candidates
                .iter()
                .filter(|c| c.entity.kind == EntityKind::Cell)
                .map(|c| c.entity.name.clone())
                .collect();
            graph
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| cells.iter().any(|c| n.name.starts_with(&format!("{c}/"))))
                .map(|(i, _)| i)
                .collect()
        }
    }
}

/// Draws the graph left to right by call depth, with the propagation path highlighted.
pub fn graph_svg(graph: &ServiceGraph, ir: &IncidentReport) -> String {
    let n = graph.nodes.len();
    let mut callers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for e in &graph.edges {
        callers[e.to].push(e.from);
    }
    // Depth: longest call chain from an entry point, bounded so cycles cannot loop forever.
    let mut depth = vec![0usize; n];
    for _ in 0..n.min(64) {
        let mut changed = false;
        for e in &graph.edges {
            if depth[e.to] < depth[e.from] + 1 && depth[e.from] + 1 < n.max(1) {
                depth[e.to] = depth[e.from] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut columns: Vec<Vec<usize>> = Vec::new();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| graph.nodes[*a].name.cmp(&graph.nodes[*b].name));
    for i in order {
        if columns.len() <= depth[i] {
            columns.resize(depth[i] + 1, Vec::new());
        }
        columns[depth[i]].push(i);
    }
    let (col_w, row_h, box_w, box_h) = (230.0, 34.0, 200.0, 24.0);
    let mut pos = vec![(0.0, 0.0); n];
    for (c, nodes) in columns.iter().enumerate() {
        for (r, &i) in nodes.iter().enumerate() {
            pos[i] = (10.0 + c as f64 * col_w, 10.0 + r as f64 * row_h);
        }
    }
    let width = 20.0 + columns.len() as f64 * col_w;
    let height = 20.0 + columns.iter().map(Vec::len).max().unwrap_or(1) as f64 * row_h;
    // The root cause and every caller it can reach: the path the fault propagates along.
    let roots = root_nodes(graph, ir);
    let mut on_path: BTreeSet<usize> = roots.clone();
    let mut queue: VecDeque<usize> = roots.iter().copied().collect();
    while let Some(i) = queue.pop_front() {
        for &c in &callers[i] {
            if on_path.insert(c) {
                queue.push_back(c);
            }
        }
    }
    let others: BTreeSet<usize> = ir
        .incident
        .candidates
        .iter()
        .skip(1)
        .filter_map(|c| graph.index_of(&c.entity.name))
        .collect();
    let mut s = String::new();
    let _ = write!(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"depgraph\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-size=\"11\" font-family=\"system-ui,sans-serif\">");
    s.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#8c959f\"/></marker><marker id=\"arrow-hot\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#cf222e\"/></marker></defs>");
    let mut edges: Vec<&cellwarden_models::graph::GraphEdge> = graph.edges.iter().collect();
    // Hot edges last, so they are drawn on top.
    let hot = |e: &cellwarden_models::graph::GraphEdge| on_path.contains(&e.from) && on_path.contains(&e.to);
    edges.sort_by_key(|e| hot(e));
    for e in edges {
        let (x1, y1) = (pos[e.from].0 + box_w, pos[e.from].1 + box_h / 2.0);
        let (x2, y2) = (pos[e.to].0, pos[e.to].1 + box_h / 2.0);
        let is_hot = hot(e);
        let _ = write!(
            s,
            "<path class=\"{}\" d=\"M {x1:.1} {y1:.1} C {:.1} {y1:.1}, {:.1} {y2:.1}, {x2:.1} {y2:.1}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" marker-end=\"url(#{})\"><title>{} → {}: {} calls, {} errors, mean {:.1} ms</title></path>",
            if is_hot { "edge hot" } else { "edge" },
            x1 + 20.0,
            x2 - 20.0,
            if is_hot { "#cf222e" } else { "#c9d1d9" },
            if is_hot { 2.5 } else { 1.0 },
            if is_hot { "arrow-hot" } else { "arrow" },
            esc(&graph.nodes[e.from].name),
            esc(&graph.nodes[e.to].name),
            e.calls,
            e.errors,
            e.mean_latency_secs * 1000.0
        );
    }
    for (i, node) in graph.nodes.iter().enumerate() {
        let (x, y) = pos[i];
        let (fill, stroke, weight) = if roots.contains(&i) {
            ("#ffebe9", "#cf222e", 2.5)
        } else if others.contains(&i) {
            ("#fff8c5", "#bf8700", 2.0)
        } else if on_path.contains(&i) {
            ("#fff5f5", "#cf222e", 1.0)
        } else {
            ("#f6f8fa", "#8c959f", 1.0)
        };
        let rx = if node.kind == NodeKind::External { 12 } else { 4 };
        let label: String = if node.name.chars().count() > 30 {
            format!("{}…", node.name.chars().take(29).collect::<String>())
        } else {
            node.name.clone()
        };
        let _ = write!(
            s,
            "<g class=\"node{}\"><rect x=\"{x:.0}\" y=\"{y:.0}\" width=\"{box_w:.0}\" height=\"{box_h:.0}\" rx=\"{rx}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{weight}\"/><text x=\"{:.0}\" y=\"{:.0}\">{}</text><title>{}{}</title></g>",
            if roots.contains(&i) { " root" } else { "" },
            x + 6.0,
            y + 16.0,
            esc(&label),
            esc(&node.name),
            if node.kind == NodeKind::External { " (external)" } else { "" }
        );
    }
    s.push_str("</svg>");
    s
}

/// A small line chart of one series: a time axis (UTC), the incident's opening marked, the
/// series' limit as a line when it has one, and the value range in the series' unit.
pub fn sparkline(s: &SeriesSnippet, onset: Timestamp) -> String {
    let (w, plot_h, axis_h) = (300.0, 56.0, 14.0);
    let h = plot_h + axis_h;
    let t0 = s.points.first().map_or(0, |p| p.t.millis()) as f64;
    let t1 = s.points.last().map_or(1, |p| p.t.millis()) as f64;
    let mut lo = s.points.iter().map(|p| p.value).fold(f64::INFINITY, f64::min);
    let mut hi = s.points.iter().map(|p| p.value).fold(f64::NEG_INFINITY, f64::max);
    if let Some(l) = s.limit.filter(|l| l.is_finite()) {
        lo = lo.min(l);
        hi = hi.max(l);
    }
    let span_t = (t1 - t0).max(1.0);
    let span_v = if hi > lo { hi - lo } else { 1.0 };
    let x = |t: f64| 2.0 + (t - t0) / span_t * (w - 4.0);
    let y = |v: f64| 2.0 + (1.0 - (v - lo) / span_v) * (plot_h - 4.0);
    let points: Vec<String> = s
        .points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.t.millis() as f64), y(p.value)))
        .collect();
    let onset_x = x(onset.millis() as f64).clamp(0.0, w);
    let limit = s.limit.filter(|l| l.is_finite()).map_or(String::new(), |l| {
        format!(
            "<line class=\"limit\" x1=\"0\" y1=\"{y:.1}\" x2=\"{w:.0}\" y2=\"{y:.1}\" stroke=\"#bf8700\" stroke-dasharray=\"5,3\"/><text x=\"{:.0}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"end\" fill=\"#9a6700\">limit {}</text>",
            w - 3.0,
            (y(l) - 2.0).max(9.0),
            esc(&units::value(s.signal, l)),
            y = y(l)
        )
    });
    let axis = {
        let label = |t: f64, anchor: &str, tx: f64| {
            format!(
                "<text x=\"{tx:.0}\" y=\"{:.0}\" font-size=\"9\" text-anchor=\"{anchor}\" fill=\"#656d76\">{}</text>",
                h - 3.0,
                units::clock(Timestamp(t as i64))
            )
        };
        format!(
            "<line x1=\"0\" y1=\"{plot_h:.0}\" x2=\"{w:.0}\" y2=\"{plot_h:.0}\" stroke=\"#8c959f\"/>{}{}<text x=\"{onset_x:.0}\" y=\"{:.0}\" font-size=\"9\" text-anchor=\"middle\" fill=\"#cf222e\">opened</text>",
            label(t0, "start", 1.0),
            label(t1, "end", w - 1.0),
            h - 3.0
        )
    };
    format!(
        "<div class=\"spark\"><div><b>{}</b> {}</div><svg xmlns=\"http://www.w3.org/2000/svg\" class=\"sparkline\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" font-family=\"system-ui,sans-serif\"><rect width=\"{w:.0}\" height=\"{plot_h:.0}\" fill=\"#f6f8fa\"/>{limit}<line class=\"onset\" x1=\"{onset_x:.1}\" y1=\"0\" x2=\"{onset_x:.1}\" y2=\"{plot_h:.0}\" stroke=\"#cf222e\" stroke-dasharray=\"3,2\"/><polyline points=\"{}\" fill=\"none\" stroke=\"#0969da\" stroke-width=\"1.5\"/>{axis}</svg><div class=\"muted\">{} · from {} to {}</div></div>",
        esc(s.entity.as_deref().unwrap_or("platform")),
        s.signal.label(),
        points.join(" "),
        esc(&truncate(&s.series, 70)),
        esc(&units::value(s.signal, lo)),
        esc(&units::value(s.signal, hi))
    )
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    } else {
        s.to_string()
    }
}
