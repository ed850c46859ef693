//! Report rendering: Markdown for people, JSON (the [`Report`] schema of `cellwarden-models`) for
//! tools; the HTML page is in [`crate::html`].

use cellwarden_models::report::{Report, StepKind};
use cellwarden_models::{units, Timestamp, Warning};
use std::fmt::Write;

/// Renders `report` as Markdown: each incident's brief first (summary, status, impact,
/// confidence, actions, next steps), then the evidence, then the telemetry it came from.
pub fn to_markdown(report: &Report) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# cellwarden report: {}\n", report.source);
    let n = report.incidents.len();
    let _ = writeln!(md, "**{}.**\n", headline(report));
    if n == 0 {
        md.push_str("No incident was opened.\n\n");
    }
    for (i, ir) in report.incidents.iter().enumerate() {
        let inc = &ir.incident;
        let b = &ir.brief;
        let _ = writeln!(md, "## Incident {} — {} ({:?})\n", i + 1, inc.id, inc.class);
        let _ = writeln!(md, "**{}**\n", b.summary);
        let _ = writeln!(md, "- Status: {}", b.status);
        let _ = writeln!(md, "- Impact: {}", b.impact.as_ref().map_or(NO_IMPACT, |im| im.text.as_str()));
        let _ = writeln!(md, "- Confidence: {}", b.confidence.text);
        if let Some(d) = &b.plan_drift {
            let _ = writeln!(md, "- **{d}**");
        }
        for c in &b.changes {
            let _ = writeln!(md, "- Changed: {c}");
        }
        md.push('\n');
        if !b.actions.is_empty() {
            md.push_str("Actions:\n\n");
            for a in &b.actions {
                let _ = writeln!(md, "- {}", a.text);
            }
            md.push('\n');
        }
        md.push_str("Next steps:\n\n");
        if !b.next_steps.iter().any(|s| s.kind == StepKind::Approve) {
            md.push_str("- Nothing waits for approval.\n");
        }
        for s in &b.next_steps {
            let _ = writeln!(md, "- {}:\n\n  ```sh\n  {}\n  ```", s.what, s.command);
        }
        md.push('\n');
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
        let _ = writeln!(md, "Plan details ({}):\n", ir.plan.mode.as_str());
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
        for g in grouped_warnings(&report.warnings) {
            let _ = writeln!(md, "- {}", g.text());
        }
        md.push('\n');
    }
    md.push_str("## Timeline\n\n");
    for e in &report.timeline {
        let _ = writeln!(md, "- {} **{}** {}", e.t, e.kind, e.text);
    }
    let _ = writeln!(md, "\n## About this report\n\n{}", about(report));
    md
}

/// What an Impact line says when no request series tells who is hurt.
pub const NO_IMPACT: &str = "no request series says who is hurt";

/// The report's first line: how many incidents, and the first one's summary.
pub fn headline(report: &Report) -> String {
    let n = report.incidents.len();
    let mode = report.incidents.first().map_or("dry-run", |i| i.plan.mode.as_str());
    let count = format!("{n} incident{}", if n == 1 { "" } else { "s" });
    format!("{count}; plans are {mode}")
}

/// Where the report came from: telemetry span and counts.
pub fn about(report: &Report) -> String {
    let span = match (report.from, report.to) {
        (Some(f), Some(t)) => format!("{f} – {t} ({})", units::duration(t.secs_since(f))),
        _ => "no telemetry".to_string(),
    };
    let mut s = format!(
        "Telemetry {span}: {} series, {} samples, {} spans; {} anomalous points, {} warnings.",
        report.series,
        report.samples,
        report.spans,
        report.anomalies_total,
        report.warnings.len()
    );
    if !report.graph.nodes.is_empty() {
        s.push_str(&format!(
            " Dependency graph from traces: {} nodes, {} edges.",
            report.graph.nodes.len(),
            report.graph.edges.len()
        ));
    }
    s
}

/// The warnings about one entity (a workload's pods, each forecast on its own), folded into one
/// line: the one exhausting soonest (its pod named), and how many more.
pub struct WarningGroup<'a> {
    pub worst: &'a Warning,
    /// Warnings folded in besides the worst.
    pub more: usize,
    pub first: Timestamp,
    pub last: Timestamp,
}

impl WarningGroup<'_> {
    /// "cell-2/ledger (pod ledger-7d9) 10:00:30–10:35:00, 15 forecasts: memory grows …".
    pub fn text(&self) -> String {
        let w = self.worst;
        let entity = w.entity.as_ref().map_or("platform", |e| e.name.as_str());
        let pod = w.series.label("pod").map_or(String::new(), |p| format!(" (worst: pod {p})"));
        let when = if self.first == self.last {
            units::clock(self.first)
        } else {
            format!("{}–{}", units::clock(self.first), units::clock(self.last))
        };
        let more = if self.more == 0 {
            String::new()
        } else {
            format!(", {} forecasts in all", self.more + 1)
        };
        format!("{entity}{pod} {when}{more}: {}", w.explanation)
    }
}

/// Warnings grouped per entity and signal, the soonest exhaustion of each group as its worst.
pub fn grouped_warnings(warnings: &[Warning]) -> Vec<WarningGroup<'_>> {
    let mut groups: Vec<WarningGroup<'_>> = Vec::new();
    for w in warnings {
        match groups.iter_mut().find(|g| g.worst.entity == w.entity && g.worst.signal == w.signal) {
            Some(g) => {
                g.more += 1;
                g.first = g.first.min(w.t);
                g.last = g.last.max(w.t);
                if w.predicted_at.secs_since(w.t) < g.worst.predicted_at.secs_since(g.worst.t) {
                    g.worst = w;
                }
            }
            None => groups.push(WarningGroup {
                worst: w,
                more: 0,
                first: w.t,
                last: w.t,
            }),
        }
    }
    groups
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
