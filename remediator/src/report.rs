//! Report rendering: Markdown for people, JSON (the [`Report`] schema of `cellwarden-models`) for
//! tools; the HTML page is in [`crate::html`].

use cellwarden_models::report::Report;
use std::fmt::Write;

/// Renders `report` as Markdown.
pub fn to_markdown(report: &Report) -> String {
    let mut md = String::new();
    let span = match (report.from, report.to) {
        (Some(f), Some(t)) => format!("{f} – {t} ({:.0} min)", t.secs_since(f) / 60.0),
        _ => "no telemetry".to_string(),
    };
    let _ = writeln!(md, "# cellwarden report: {}\n", report.source);
    let _ = writeln!(
        md,
        "- Telemetry: {span}; {} series, {} samples, {} spans.",
        report.series, report.samples, report.spans
    );
    let _ = writeln!(
        md,
        "- Anomalous points: {}; warnings: {}; incidents: {}.",
        report.anomalies_total,
        report.warnings.len(),
        report.incidents.len()
    );
    if !report.graph.nodes.is_empty() {
        let _ = writeln!(
            md,
            "- Dependency graph from traces: {} nodes, {} edges.",
            report.graph.nodes.len(),
            report.graph.edges.len()
        );
    }
    md.push('\n');
    for (i, ir) in report.incidents.iter().enumerate() {
        let inc = &ir.incident;
        let _ = writeln!(md, "## Incident {} — {} ({:?})\n", i + 1, inc.id, inc.class);
        let _ = writeln!(md, "Opened {}, ranked on telemetry up to {}.\n", inc.opened_at, inc.ranked_at);
        if inc.candidates.is_empty() {
            md.push_str("No root-cause candidate had evidence.\n\n");
        } else {
            md.push_str("| rank | candidate | kind | class | score | strongest evidence |\n| --- | --- | --- | --- | --- | --- |\n");
            for (r, c) in inc.candidates.iter().enumerate() {
                let ev = c
                    .evidence
                    .first()
                    .map(|e| format!("{}: {}", e.source, e.detail))
                    .unwrap_or_default();
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {:.2} | {} |",
                    r + 1,
                    c.entity.name,
                    c.entity.kind.as_str(),
                    c.class.as_str(),
                    c.score,
                    ev.replace('|', "\\|")
                );
            }
            md.push('\n');
        }
        if !inc.anomalies.is_empty() {
            md.push_str("Anomalies that opened it:\n\n");
            for a in &inc.anomalies {
                let _ = writeln!(md, "- {} (score {:.2}): {}", a.t, a.score, a.explanation);
            }
            md.push('\n');
        }
        if !inc.alerts.is_empty() {
            md.push_str("Alertmanager alerts:\n\n");
            for a in &inc.alerts {
                let _ = writeln!(md, "- {}", alert_line(a));
            }
            md.push('\n');
        }
        let _ = writeln!(md, "Plan ({}):\n", ir.plan.mode.as_str());
        for a in &ir.plan.actions {
            let params = a.params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ");
            let approval = if a.needs_approval { " — needs approval" } else { "" };
            let _ = writeln!(
                md,
                "- `{}` {}{}{} — {}; expect: {} within {} s",
                a.kind,
                a.target,
                if params.is_empty() { String::new() } else { format!(" ({params})") },
                approval,
                a.reason,
                a.expected_effect,
                a.verify_within_secs
            );
        }
        for r in &ir.plan.refused {
            let _ = writeln!(
                md,
                "- refused `{}` {} by the {} guard: {}",
                r.action.kind, r.action.target, r.guard, r.reason
            );
        }
        md.push('\n');
    }
    if !report.warnings.is_empty() {
        md.push_str("## Warnings\n\n");
        for w in &report.warnings {
            let _ = writeln!(
                md,
                "- {} {}: {} Predicted at {}.",
                w.t,
                w.entity.as_ref().map_or("platform", |e| e.name.as_str()),
                w.explanation,
                w.predicted_at
            );
        }
        md.push('\n');
    }
    md.push_str("## Timeline\n\n");
    for e in &report.timeline {
        let _ = writeln!(md, "- {} **{}** {}", e.t, e.kind, e.text);
    }
    md
}

/// Renders `report` as pretty JSON (schema: `cellwarden_models::report`).
pub fn to_json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("a report always serialises")
}

/// One alert as a line of text: name, state, severity, entity, since when, summary, rule link.
pub fn alert_line(a: &cellwarden_models::AlertNote) -> String {
    let mut line = format!("{} ({}", a.name, if a.firing { "firing" } else { "resolved" });
    if let Some(sev) = &a.severity {
        line.push_str(&format!(", {sev}"));
    }
    line.push(')');
    if let Some(e) = &a.entity {
        line.push_str(&format!(" on {} {}", e.kind.as_str(), e.name));
    }
    if let Some(t) = a.starts_at {
        line.push_str(&format!(" since {t}"));
    }
    if !a.summary.is_empty() {
        line.push_str(&format!(": {}", a.summary));
    }
    if !a.generator_url.is_empty() {
        line.push_str(&format!(" — rule: {}", a.generator_url));
    }
    line
}
