//! The on-call brief of an incident: the one model every output renders (Markdown, HTML, JSON,
//! the Incident's status). Pure: built from the incident's report, the signal series and the
//! cluster as the engine knows it, with time passed in.
//!
//! - [`build`]: the whole [`Brief`] — summary line, status, impact, confidence, plan drift,
//!   actions with their outcome, next steps as commands.
//! - [`confidence`]: label-free certainty from the scores (margin over the runner-up).
//! - [`impact`]: failed requests and payments per minute over the minute before the last ranking.
//! - [`payment_series`]: the request series of payment routes, derived by the same signal rules.
//!
//! Every value goes through [`cellwarden_models::units`].

use cellwarden_detector::signals::{self, rules::SignalRules, SignalSeries};
use cellwarden_models::plan::{APPROVED_AT, APPROVED_BY};
use cellwarden_models::report::{ActionLine, ActionOutcome, Brief, Certainty, Confidence, Impact, IncidentReport, NextStep, StepKind};
use cellwarden_models::{units, ActionKind, Candidate, EntityKind, Family, Phase, Signal, Timestamp, Warning};
use std::collections::BTreeMap;

/// Labels a request series names its endpoint by (OpenTelemetry `http_route`, Micrometer `uri`,
/// Spring's `path`, gRPC's `operation`, …).
pub const ROUTE_LABELS: &[&str] = &["route", "http_route", "uri", "path", "endpoint", "operation", "handler"];

/// A route whose name contains one of these (case-insensitive) carries payments: "/pay",
/// "/v1/payments", "transfer".
pub const PAYMENT_ROUTES: &[&str] = &["pay", "transfer"];

/// Below this lead over the runner-up (as a share of the top score) the top two are a near-tie:
/// 0.91 against 0.90 is 1%; the ranker's scores move by about 5% between re-ranks on the same
/// fault, so a lead under 10% could flip on the next one.
pub const NEAR_TIE_MARGIN: f64 = 0.10;
/// From this lead on the ranking is clear: the runner-up scores under two thirds of the top.
pub const CLEAR_MARGIN: f64 = 0.35;

/// Where the commands point: what a report cannot know from telemetry alone.
#[derive(Debug, Clone, PartialEq)]
pub struct BriefContext<'a> {
    /// The namespace of the Incident objects (the operator's).
    pub namespace: &'a str,
    /// Replicas by `cell/service`, as last known.
    pub replicas: &'a BTreeMap<String, u32>,
    /// Recent rollouts, as the guards see them.
    pub rollouts: &'a [crate::policy::Rollout],
    /// Series of payment routes ([`payment_series`]); empty when none carries a route.
    pub payments: &'a [SignalSeries],
    /// Entry services (`cell/service` nobody calls, from the traces' graph); empty without traces.
    pub entries: Vec<String>,
    /// The engine's warnings (forecasts), for the summary's "out of memory in …".
    pub warnings: &'a [Warning],
    /// The report's time: the end of the telemetry seen.
    pub now: Timestamp,
}

/// How far back "what changed" looks from the incident's opening: a deploy an hour before a
/// leak shows is still a suspect (the bundled leak follows its deploy by 8 min).
pub const CHANGE_LOOKBACK_SECS: i64 = 3600;

/// The brief of `ir`.
pub fn build(ir: &IncidentReport, series: &[SignalSeries], ctx: &BriefContext<'_>) -> Brief {
    let inc = &ir.incident;
    let confidence = confidence(&inc.candidates, inc.blames_root_cause());
    let at = ir.rankings.last().map_or(inc.ranked_at, |r| r.at);
    let impact = impact(series, ctx.payments, &ctx.entries, at, inc.opened_at);
    let actions = action_lines(ir, ctx);
    let plan_drift = plan_drift(ir);
    let name = &inc.id;
    let mut next_steps = Vec::new();
    if actions.iter().any(|a| a.outcome == ActionOutcome::AwaitingApproval) {
        next_steps.push(NextStep {
            kind: StepKind::Approve,
            what: "Approve the actions that wait for approval".into(),
            command: approve_command(ctx.namespace, name),
        });
    }
    next_steps.push(NextStep {
        kind: StepKind::Inspect,
        what: "See the incident as the operator keeps it".into(),
        command: format!("kubectl -n {} get incident {name} -o yaml", ctx.namespace),
    });
    if let Some(top) = inc.candidates.first().filter(|_| inc.blames_root_cause()) {
        if let (Some(cell), Some(svc)) = (top.entity.cell(), top.entity.service_name()) {
            next_steps.push(NextStep {
                kind: StepKind::Inspect,
                what: format!("Read {}'s recent logs", top.entity.name),
                command: format!("kubectl -n {cell} logs deployment/{svc} --since=30m --all-containers"),
            });
        }
    }
    for line in &actions {
        if let Some(cmd) = undo_command(line, ir) {
            next_steps.push(NextStep {
                kind: StepKind::Undo,
                what: format!("Undo: {}", line.text.split(" — ").next().unwrap_or(&line.text)),
                command: cmd,
            });
        }
    }
    next_steps.push(NextStep {
        kind: StepKind::Pause,
        what: "Pause every action of cellwarden (detection and reports go on)".into(),
        command: pause_command(ctx.namespace),
    });
    let changes = changes(ir, ctx);
    let status = status_line(ir, ctx.now);
    let summary = summary_line(ir, &confidence, impact.as_ref(), &actions, &changes, ctx);
    Brief {
        summary,
        status,
        impact,
        confidence,
        plan_drift,
        actions,
        next_steps,
        changes,
    }
}

/// The command that approves incident `name`'s waiting actions: the annotations the controller
/// reads (DESIGN.md's interfaces table).
pub fn approve_command(namespace: &str, name: &str) -> String {
    format!("kubectl -n {namespace} annotate incident {name} {APPROVED_BY}=\"$(whoami)\" {APPROVED_AT}=\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"")
}

/// The command that pauses every RemediationPolicy in `namespace`.
pub fn pause_command(namespace: &str) -> String {
    format!(
        "kubectl -n {namespace} get remediationpolicy -o name | xargs -I{{}} kubectl -n {namespace} patch {{}} --type merge -p '{{\"spec\":{{\"paused\":true}}}}'"
    )
}

/// Label-free confidence: the top score's lead over the runner-up's.
pub fn confidence(candidates: &[Candidate], blames: bool) -> Confidence {
    let Some(top) = candidates.first().filter(|_| blames) else {
        return Confidence {
            certainty: Certainty::NoCandidate,
            text: if candidates.is_empty() {
                "No root-cause candidate had evidence.".into()
            } else {
                "A capacity incident: load rose without errors or latency; it blames nothing.".into()
            },
            ..Confidence::default()
        };
    };
    // The same service in several cells, all near the top: one fault of that service (a shared
    // dependency or a bad release everywhere), named once with its cells, not a near-tie.
    let same_service = |c: &Candidate| c.entity.kind == EntityKind::Service && c.entity.service_name() == top.entity.service_name();
    let siblings: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| same_service(c) && c.score >= top.score * (1.0 - NEAR_TIE_MARGIN))
        .collect();
    let grouped = siblings.len() >= 2;
    let top_name = if grouped {
        let mut cells: Vec<&str> = siblings.iter().filter_map(|c| c.entity.cell()).collect();
        cells.sort();
        format!(
            "{} (in {})",
            top.entity.service_name().unwrap_or(&top.entity.name),
            cells.join(", ")
        )
    } else {
        top.entity.name.clone()
    };
    let second = candidates.iter().skip(1).find(|c| !(grouped && same_service(c)));
    let s2 = second.map_or(0.0, |c| c.score);
    let margin = if top.score > 0.0 {
        ((top.score - s2) / top.score).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let certainty = if second.is_some() && margin < NEAR_TIE_MARGIN {
        Certainty::Uncertain
    } else if margin < CLEAR_MARGIN {
        Certainty::Likely
    } else {
        Certainty::Clear
    };
    let pieces = top.evidence.len();
    let evidence = format!("{pieces} piece{} of evidence", if pieces == 1 { "" } else { "s" });
    let text = match (certainty, second) {
        (Certainty::Uncertain, Some(b)) => format!(
            "Uncertain between {} and {}: scores {:.2} and {:.2}, a lead of {} ({evidence} for {}).",
            top_name,
            b.entity.name,
            top.score,
            b.score,
            units::ratio_pct(margin),
            top.entity.name
        ),
        (_, Some(b)) => format!(
            "{}: {} leads {} by {} (scores {:.2} and {:.2}), on {evidence}.",
            capitalise(certainty.as_str()),
            top_name,
            b.entity.name,
            units::ratio_pct(margin),
            top.score,
            b.score
        ),
        (_, None) => format!(
            "{}: the only candidate, on {evidence} (score {:.2}).",
            capitalise(certainty.as_str()),
            top.score
        ),
    };
    Confidence {
        certainty,
        top: Some(top_name),
        runner_up: second.map(|c| c.entity.name.clone()),
        margin,
        text,
    }
}

/// The requests and error ratios of one entity's series, paired by time.
fn failed_per_min(rate: &SignalSeries, ratio: &SignalSeries, from: Timestamp, to: Timestamp) -> Option<(f64, f64)> {
    let ratios: BTreeMap<Timestamp, f64> = ratio.points.iter().map(|p| (p.t, p.value)).collect();
    let (mut req, mut failed, mut n) = (0.0, 0.0, 0usize);
    for p in rate.points.iter().filter(|p| p.t > from && p.t <= to && p.value.is_finite()) {
        let Some(r) = ratios.get(&p.t).filter(|r| r.is_finite()) else {
            continue;
        };
        req += p.value * 60.0;
        failed += p.value * r.clamp(0.0, 1.0) * 60.0;
        n += 1;
    }
    (n > 0).then(|| (req / n as f64, failed / n as f64))
}

/// Request-rate and error-ratio series of the same entity, paired.
fn pairs(series: &[SignalSeries]) -> Vec<(&SignalSeries, &SignalSeries)> {
    let mut out = Vec::new();
    for rate in series.iter().filter(|s| s.signal == Signal::RequestRate && s.entity.is_some()) {
        let family = rate.key.metric.rsplit_once(':').map_or(rate.key.metric.as_str(), |(f, _)| f);
        if let Some(ratio) = series.iter().find(|s| {
            s.signal == Signal::ErrorRatio
                && s.entity == rate.entity
                && s.key.labels == rate.key.labels
                && s.key.metric.rsplit_once(':').map_or(s.key.metric.as_str(), |(f, _)| f) == family
        }) {
            out.push((rate, ratio));
        }
    }
    out
}

/// One cell's figures over the minute before the last ranking.
#[derive(Debug, Clone, Copy, Default)]
struct CellFigures {
    requests: f64,
    failed: f64,
    /// Failing at least twice its own baseline and more than one a minute.
    hurt: bool,
    /// Every series of the cell stopped before the minute (after the baseline, within
    /// [`SILENCE_LOOKBACK_SECS`] of the opening): since when. Its baseline requests are then
    /// presumed failing — a cell whose nodes are gone sends no telemetry, and nobody is served.
    silent_since: Option<Timestamp>,
}

/// How long before an incident's opening a cell may have gone silent and still be counted as
/// this incident's: 10 min, the longest the bundled faults take from onset to alarm.
const SILENCE_LOOKBACK_SECS: i64 = 600;

/// Figures of one group of paired series, per cell.
fn per_cell<'a>(
    pairs: impl Iterator<Item = (&'a SignalSeries, &'a SignalSeries)>,
    at: Timestamp,
    opened: Timestamp,
) -> BTreeMap<String, CellFigures> {
    let (minute, base_from, base_to) = (at.plus_secs(-60), opened.plus_secs(-1800), opened.plus_secs(-300));
    let mut out: BTreeMap<String, CellFigures> = BTreeMap::new();
    let mut speaking: BTreeMap<String, bool> = BTreeMap::new();
    for (rate, ratio) in pairs {
        let cell = rate.entity.as_ref().and_then(|e| e.cell()).unwrap_or("").to_string();
        let (base_r, base_f) = failed_per_min(rate, ratio, base_from, base_to).unwrap_or((0.0, 0.0));
        let x = out.entry(cell.clone()).or_default();
        match failed_per_min(rate, ratio, minute, at) {
            Some((r, f)) => {
                *speaking.entry(cell).or_default() = true;
                x.requests += r;
                x.failed += f;
                x.hurt |= f > 2.0 * base_f && f > 1.0;
            }
            None => {
                let last = rate.points.iter().rev().find(|p| p.t <= at).map(|p| p.t);
                if let Some(last) = last.filter(|l| *l > base_to && *l >= opened.plus_secs(-SILENCE_LOOKBACK_SECS)) {
                    speaking.entry(cell).or_default();
                    x.requests += base_r;
                    x.failed += base_r;
                    x.hurt = true;
                    x.silent_since = Some(x.silent_since.map_or(last, |s| s.max(last)));
                }
            }
        }
    }
    // A cell with any series still speaking is not silent: only some of its routes paused.
    for (cell, x) in &mut out {
        if speaking.get(cell).copied().unwrap_or(false) && x.silent_since.is_some() {
            x.silent_since = None;
        }
    }
    out.retain(|cell, x| speaking.contains_key(cell) || x.requests > 0.0);
    out
}

/// Who is hurt over the minute before `at`: payments (when a series carries payment routes) and
/// requests into the entry services — `entries` (the graph's, services nobody calls), else per
/// cell the service with the most requests (the gateway every request passes) — so no request
/// is counted twice as it travels the call chain.
pub fn impact(series: &[SignalSeries], payments: &[SignalSeries], entries: &[String], at: Timestamp, opened: Timestamp) -> Option<Impact> {
    let all = pairs(series);
    let services = all
        .iter()
        .filter(|(rate, _)| rate.entity.as_ref().is_some_and(|e| e.kind == EntityKind::Service));
    let chosen: Vec<(&SignalSeries, &SignalSeries)> = if entries.is_empty() {
        let mut busiest: BTreeMap<String, (f64, (&SignalSeries, &SignalSeries))> = BTreeMap::new();
        for &(rate, ratio) in services {
            let e = rate.entity.as_ref().expect("paired series have an entity");
            let Some((req, _)) = failed_per_min(rate, ratio, opened.plus_secs(-1800), at) else {
                continue;
            };
            let cell = e.cell().unwrap_or("").to_string();
            if busiest.get(&cell).is_none_or(|(best, _)| req > *best) {
                busiest.insert(cell, (req, (rate, ratio)));
            }
        }
        busiest.into_values().map(|(_, p)| p).collect()
    } else {
        services
            .filter(|(rate, _)| rate.entity.as_ref().is_some_and(|e| entries.contains(&e.name)))
            .copied()
            .collect()
    };
    let entry = per_cell(chosen.into_iter(), at, opened);
    if entry.is_empty() {
        return None;
    }
    let pay = per_cell(pairs(payments).into_iter(), at, opened);
    let sum = |m: &BTreeMap<String, CellFigures>| m.values().fold((0.0, 0.0), |a, x| (a.0 + x.requests, a.1 + x.failed));
    let (req, failed) = sum(&entry);
    let (pay_req, pay_failed) = sum(&pay);
    let hurt_by = if pay.is_empty() { &entry } else { &pay };
    let mut cells: Vec<(&String, f64)> = hurt_by
        .iter()
        .filter(|(c, x)| x.hurt && !c.is_empty())
        .map(|(c, x)| (c, x.failed))
        .collect();
    cells.sort_by(|a, b| b.1.total_cmp(&a.1));
    let cells: Vec<String> = cells.into_iter().map(|(c, _)| c.clone()).collect();
    let silent: Vec<String> = hurt_by
        .iter()
        .filter_map(|(c, x)| x.silent_since.map(|t| format!("{c} silent since {}", units::clock(t))))
        .collect();
    let share = |f: f64, n: f64| units::ratio_pct(if n > 0.0 { f / n } else { 0.0 });
    let mut text = if pay.is_empty() {
        format!(
            "{} failed requests/min of {} at the entry ({}); no series names payment routes",
            units::number(failed),
            units::number(req),
            share(failed, req)
        )
    } else {
        format!(
            "{} failed payments/min of {} ({}); {} failed requests/min of {} at the entry",
            units::number(pay_failed),
            units::number(pay_req),
            share(pay_failed, pay_req),
            units::number(failed),
            units::number(req)
        )
    };
    if !cells.is_empty() {
        text.push_str(&format!("; hurt: {}", cells.join(", ")));
    }
    if !silent.is_empty() {
        text.push_str(&format!(" ({}: its usual requests are counted as failing)", silent.join(", ")));
    }
    text.push_str(&format!(", in the minute to {}", units::clock(at)));
    Some(Impact {
        at,
        cells,
        requests_per_min: req,
        failed_requests_per_min: failed,
        silent_cells: hurt_by
            .iter()
            .filter(|(_, x)| x.silent_since.is_some())
            .map(|(c, _)| c.clone())
            .collect(),
        payments_per_min: (!pay.is_empty()).then_some(pay_req),
        failed_payments_per_min: (!pay.is_empty()).then_some(pay_failed),
        text,
    })
}

/// The request series of payment routes: `families` cut to series whose route label names a
/// payment ([`PAYMENT_ROUTES`]), through the same signal rules as everything else.
pub fn payment_series(families: &[Family], rules: &SignalRules) -> Vec<SignalSeries> {
    let is_payment = |key: &cellwarden_models::SeriesKey| {
        ROUTE_LABELS.iter().any(|l| {
            key.label(l).is_some_and(|r| {
                let r = r.to_ascii_lowercase();
                PAYMENT_ROUTES.iter().any(|p| r.contains(p))
            })
        })
    };
    let cut: Vec<Family> = families
        .iter()
        .filter_map(|f| {
            let series: Vec<_> = f.series.iter().filter(|s| is_payment(&s.key)).cloned().collect();
            (!series.is_empty()).then(|| Family {
                name: f.name.clone(),
                kind: f.kind,
                help: None,
                unit: f.unit.clone(),
                series,
            })
        })
        .collect();
    if cut.is_empty() {
        return Vec::new();
    }
    signals::derive(&cut, rules)
        .into_iter()
        .filter(|s| matches!(s.signal, Signal::RequestRate | Signal::ErrorRatio))
        .collect()
}

/// The plan's actions and refusals with their outcome so far.
fn action_lines(ir: &IncidentReport, ctx: &BriefContext<'_>) -> Vec<ActionLine> {
    let taken = &ir.lifecycle.taken;
    let mut out = Vec::new();
    for a in &ir.plan.actions {
        let line = match taken.iter().rev().find(|t| t.kind == a.kind && t.target == a.target) {
            Some(t) => taken_line(t, &a.params, ""),
            None => {
                let outcome = if a.needs_approval && ir.plan.mode != cellwarden_models::Mode::Observe {
                    ActionOutcome::AwaitingApproval
                } else {
                    ActionOutcome::Planned
                };
                let mut text = describe(a.kind, &a.target, &a.params, ctx.replicas);
                text.push_str(&format!(" — {}", outcome.as_str()));
                if ir.plan.mode != cellwarden_models::Mode::Act {
                    text.push_str(&format!(" ({}: not carried out)", ir.plan.mode.as_str()));
                }
                ActionLine {
                    kind: a.kind,
                    target: a.target.clone(),
                    outcome,
                    text,
                }
            }
        };
        out.push(line);
    }
    // Carried out under a later plan (an escalation's): shown with its outcome too.
    out.extend(
        taken
            .iter()
            .filter(|t| !ir.plan.actions.iter().any(|a| a.kind == t.kind && a.target == t.target))
            .map(|t| taken_line(t, &[], " (a later plan)")),
    );
    for r in &ir.plan.refused {
        out.push(ActionLine {
            kind: r.action.kind,
            target: r.action.target.clone(),
            outcome: ActionOutcome::Refused,
            text: format!(
                "{} — refused by the {} guard: {}",
                describe(r.action.kind, &r.action.target, &r.action.params, ctx.replicas),
                r.guard,
                r.reason
            ),
        });
    }
    out
}

/// A carried-out action's line: what it did (a scale from the replicas it found), when, and
/// what its verification found.
fn taken_line(t: &cellwarden_models::Taken, params: &[(String, String)], note: &str) -> ActionLine {
    let before: BTreeMap<String, u32> = t.replicas_before.map(|n| [(t.target.clone(), n)].into()).unwrap_or_default();
    let outcome = match t.verified {
        Some(true) => ActionOutcome::Verified,
        Some(false) => ActionOutcome::Failed,
        None => ActionOutcome::Done,
    };
    let mut text = describe(t.kind, &t.target, params, &before);
    text.push_str(&format!(" — done {}{note}", units::clock(t.at)));
    if let (Some(v), Some(at)) = (t.verified, t.verified_at) {
        text.push_str(&format!(", {} {}", if v { "verified" } else { "not verified" }, units::clock(at)));
        if !v && !t.why.is_empty() {
            text.push_str(&format!(": {}", t.why));
        }
    }
    ActionLine {
        kind: t.kind,
        target: t.target.clone(),
        outcome,
        text,
    }
}

/// An action in words, with counts: "scale cell-2/ledger from 3 to 4 replicas".
pub fn describe(kind: ActionKind, target: &str, params: &[(String, String)], replicas: &BTreeMap<String, u32>) -> String {
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match kind {
        ActionKind::Scale => {
            let by = param("replicas").unwrap_or("+1");
            match (replicas.get(target), by.strip_prefix('+').and_then(|n| n.parse::<u32>().ok())) {
                (Some(now), Some(add)) => format!("scale {target} from {now} to {} replicas", now + add),
                _ => format!("scale {target} by {by} replicas"),
            }
        }
        ActionKind::RestartPods => format!("restart {target}'s pods in batches"),
        ActionKind::Rollback => format!("roll {target} back to its previous revision"),
        ActionKind::Reroute => match param("weight") {
            Some(w) => format!("reroute traffic away from {target} (weight {w}%)"),
            None => format!("reroute traffic away from {target}"),
        },
        ActionKind::FailoverProvider => format!("shift payments from {target} to the other providers"),
        ActionKind::CircuitBreak => format!("switch the non-essential feature {target} off"),
        ActionKind::Cordon => format!("drain and cordon {target}"),
        ActionKind::Notify => format!("page {target}"),
    }
}

/// The command that undoes a carried-out action, where one exists.
fn undo_command(line: &ActionLine, ir: &IncidentReport) -> Option<String> {
    if !matches!(line.outcome, ActionOutcome::Done | ActionOutcome::Verified | ActionOutcome::Failed) {
        return None;
    }
    let (cell, svc) = line.target.split_once('/')?;
    match line.kind {
        ActionKind::Scale => {
            let before = ir
                .lifecycle
                .taken
                .iter()
                .find(|t| t.kind == ActionKind::Scale && t.target == line.target)
                .and_then(|t| t.replicas_before)?;
            Some(format!("kubectl -n {cell} scale deployment/{svc} --replicas={before}"))
        }
        ActionKind::Rollback => Some(format!("kubectl -n {cell} rollout undo deployment/{svc}")),
        _ => None,
    }
}

/// Rollouts of the incident's candidates (or of any workload when none is named) within
/// [`CHANGE_LOOKBACK_SECS`] before it opened.
fn changes(ir: &IncidentReport, ctx: &BriefContext<'_>) -> Vec<String> {
    let opened = ir.incident.opened_at;
    let named: Vec<&str> = ir.incident.candidates.iter().map(|c| c.entity.name.as_str()).collect();
    let mut out: Vec<(Timestamp, String)> = ctx
        .rollouts
        .iter()
        .filter(|r| r.at <= opened && opened.secs_since(r.at) <= CHANGE_LOOKBACK_SECS as f64)
        .filter(|r| named.is_empty() || named.contains(&r.target.as_str()))
        .map(|r| {
            let from = r.previous.map_or(String::new(), |p| format!(" from revision {p}"));
            (
                r.at,
                format!(
                    "{} rolled out revision {}{from} at {}, {} before the incident opened",
                    r.target,
                    r.revision,
                    units::clock(r.at),
                    units::duration(opened.secs_since(r.at))
                ),
            )
        })
        .collect();
    out.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    out.into_iter().map(|(_, s)| s).collect()
}

/// "plan made for X at 10:10; now ranked Y first" when the top candidate moved after the plan.
fn plan_drift(ir: &IncidentReport) -> Option<String> {
    if (ir.plan.actions.is_empty() && ir.plan.refused.is_empty()) || !ir.incident.blames_root_cause() {
        return None;
    }
    let then = ir.ranking_at(ir.plan.at).first()?;
    let now = ir.incident.candidates.first()?;
    if then.entity == now.entity {
        return None;
    }
    Some(format!(
        "Plan made for {} at {}; now ranked {} first. The plan acts on what was believed then: check it before approving.",
        then.entity.name,
        units::clock(ir.plan.at),
        now.entity.name
    ))
}

/// "Open for 25 min (since 09:50:00)"; "Resolved after 40 min (at 10:30:00)".
fn status_line(ir: &IncidentReport, now: Timestamp) -> String {
    let lc = &ir.lifecycle;
    let since = lc.detected_at.unwrap_or(ir.incident.opened_at);
    let lasted = lc.duration_secs(now).unwrap_or_else(|| now.secs_since(since).max(0.0));
    let mut s = match lc.phase {
        Phase::Resolved => format!(
            "Resolved after {} (opened {}, resolved {})",
            units::duration(lasted),
            units::clock(since),
            lc.resolved_at.map_or("?".into(), units::clock)
        ),
        phase => format!(
            "{} for {} (opened {})",
            phase.as_str(),
            units::duration(lasted),
            units::clock(since)
        ),
    };
    if let Some(why) = &lc.escalation {
        s.push_str(&format!("; escalated: {why}"));
    }
    if lc.joined > 0 {
        s.push_str(&format!(
            "; {} later alarm{} joined it",
            lc.joined,
            if lc.joined == 1 { "" } else { "s" }
        ));
    }
    s.push('.');
    s
}

/// What is wrong with the top candidate, in a clause: a forecast's exhaustion, else its
/// strongest anomaly, else the incident's.
fn symptom(ir: &IncidentReport, ctx: &BriefContext<'_>) -> Option<String> {
    let inc = &ir.incident;
    let top = inc.candidates.first().map(|c| &c.entity);
    let at = ir.rankings.last().map_or(inc.ranked_at, |r| r.at);
    if let Some(w) = ctx
        .warnings
        .iter()
        .filter(|w| w.t <= at && w.entity.as_ref() == top && top.is_some())
        .max_by_key(|w| w.t)
    {
        let left = w.predicted_at.secs_since(w.t);
        return Some(if w.predicted_at > at {
            format!(
                "{} reaches its limit at ≈ {} (in ≈ {}, forecast at {})",
                w.signal.label(),
                units::clock(w.predicted_at),
                units::duration(left),
                units::clock(w.t)
            )
        } else {
            format!("{} reached its limit at ≈ {}", w.signal.label(), units::clock(w.predicted_at))
        });
    }
    let a = inc
        .anomalies
        .iter()
        .filter(|a| top.is_none() || a.entity.as_ref() == top)
        .max_by(|a, b| a.score.total_cmp(&b.score))
        .or_else(|| inc.anomalies.first())?;
    if a.series.metric == cellwarden_models::incident::ALERT_SERIES_METRIC {
        return inc.alerts.first().map(|al| format!("alert {} fires", al.name));
    }
    Some(format!(
        "{}{} is {} against {} before",
        a.entity
            .as_ref()
            .filter(|e| Some(*e) != top)
            .map_or(String::new(), |e| format!("{}'s ", e.name)),
        a.signal.label(),
        units::value(a.signal, a.observed),
        units::value(a.signal, a.expected)
    ))
}

/// The one line: root cause, symptom, impact, what was done.
fn summary_line(
    ir: &IncidentReport,
    confidence: &Confidence,
    impact: Option<&Impact>,
    actions: &[ActionLine],
    changes: &[String],
    ctx: &BriefContext<'_>,
) -> String {
    let inc = &ir.incident;
    let mut parts: Vec<String> = Vec::new();
    let head = match (confidence.certainty, &confidence.top, &confidence.runner_up) {
        (Certainty::NoCandidate, ..) => match inc.class {
            cellwarden_models::IncidentClass::Capacity => "Capacity: load rose without errors or latency".to_string(),
            _ => "A fault with no root-cause candidate".to_string(),
        },
        (Certainty::Uncertain, Some(a), Some(b)) => format!("Uncertain between {a} and {b}"),
        (_, Some(top), _) => {
            let class = inc.candidates.first().map_or("", |c| c.class.as_str());
            format!(
                "{top} ({class}) is the {} root cause",
                if confidence.certainty == Certainty::Clear {
                    "clear"
                } else {
                    "likely"
                }
            )
        }
        _ => "An incident".to_string(),
    };
    match symptom(ir, ctx) {
        Some(s) => parts.push(format!("{head}: {s}")),
        None => parts.push(head),
    }
    if let Some(im) = impact {
        let hurt = if im.cells.is_empty() {
            " (no cell above its usual level)".to_string()
        } else {
            format!(" ({})", im.cells.join(", "))
        };
        parts.push(match im.failed_payments_per_min {
            Some(p) => format!("{} failed payments/min{hurt}", units::number(p)),
            None => format!("{} failed requests/min{hurt}", units::number(im.failed_requests_per_min)),
        });
    }
    // The action that tells most: the last verified one, else the last carried out, else the
    // first planned; its line up to the verification's reasons (those are in the actions list).
    let live: Vec<&ActionLine> = actions.iter().filter(|a| a.outcome != ActionOutcome::Refused).collect();
    let telling = live
        .iter()
        .rev()
        .find(|a| a.outcome == ActionOutcome::Verified)
        .or_else(|| {
            live.iter()
                .rev()
                .find(|a| matches!(a.outcome, ActionOutcome::Done | ActionOutcome::Failed))
        })
        .or_else(|| live.first());
    if let Some(a) = telling {
        parts.push(a.text.split_once(": ").map_or(a.text.clone(), |(head, _)| head.to_string()));
        if live.len() > 1 {
            let more = live.len() - 1;
            parts.push(format!("{more} more action{}", if more == 1 { "" } else { "s" }));
        }
    } else if !actions.is_empty() {
        parts.push("every proposed action refused by a guard".into());
    } else if inc.blames_root_cause() {
        parts.push("no action proposed".into());
    }
    if let Some(c) = changes.first() {
        parts.push(format!("changed: {c}"));
    }
    let mut s = parts.join("; ");
    s.push('.');
    s
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellwarden_models::report::Ranking;
    use cellwarden_models::{Action, CauseClass, Entity, Incident, IncidentClass, Mode, Plan, Sample, SeriesKey};

    const T0: i64 = 1_772_445_000; // 2026-03-02T09:50:00Z

    fn at(secs: i64) -> Timestamp {
        Timestamp((T0 + secs) * 1000)
    }

    fn cand(kind: EntityKind, name: &str, score: f64) -> Candidate {
        Candidate {
            entity: Entity { kind, name: name.into() },
            class: if kind == EntityKind::Provider {
                CauseClass::External
            } else {
                CauseClass::Internal
            },
            score,
            evidence: vec![],
        }
    }

    fn incident(candidates: Vec<Candidate>) -> IncidentReport {
        IncidentReport {
            incident: Incident {
                id: "inc-1".into(),
                opened_at: at(0),
                ranked_at: at(0),
                class: IncidentClass::Fault,
                anomalies: vec![],
                candidates: candidates.clone(),
                alerts: vec![],
            },
            plan: Plan {
                incident_id: "inc-1".into(),
                at: at(0),
                mode: Mode::DryRun,
                actions: vec![],
                refused: vec![],
            },
            key_series: vec![],
            lifecycle: Default::default(),
            rankings: vec![Ranking {
                at: at(0),
                candidates,
                why: "opened".into(),
            }],
            brief: Default::default(),
        }
    }

    fn restart(target: &str, needs_approval: bool) -> Action {
        Action {
            kind: ActionKind::RestartPods,
            target: target.into(),
            params: vec![],
            reason: String::new(),
            needs_approval,
            expected_effect: String::new(),
            verify_within_secs: 300,
        }
    }

    fn ctx<'a>(replicas: &'a BTreeMap<String, u32>, payments: &'a [SignalSeries]) -> BriefContext<'a> {
        BriefContext {
            namespace: "ops",
            replicas,
            rollouts: &[],
            payments,
            entries: vec![],
            warnings: &[],
            now: at(600),
        }
    }

    #[test]
    fn a_plan_made_for_another_candidate_says_so() {
        let mut ir = incident(vec![
            cand(EntityKind::Provider, "provider-a", 0.6),
            cand(EntityKind::Service, "cell-2/ledger", 0.5),
        ]);
        ir.plan.actions.push(restart("cell-2/ledger", false));
        // Re-ranked 3 minutes later: the ledger leads now.
        let now = vec![
            cand(EntityKind::Service, "cell-2/ledger", 0.9),
            cand(EntityKind::Provider, "provider-a", 0.3),
        ];
        ir.rankings.push(Ranking {
            at: at(180),
            candidates: now.clone(),
            why: "rerank".into(),
        });
        ir.incident.candidates = now;
        let replicas = BTreeMap::new();
        let b = build(&ir, &[], &ctx(&replicas, &[]));
        assert_eq!(
            b.plan_drift.as_deref(),
            Some("Plan made for provider-a at 09:50:00; now ranked cell-2/ledger first. The plan acts on what was believed then: check it before approving.")
        );
        // Unchanged top: no notice.
        let mut same = incident(vec![cand(EntityKind::Service, "cell-2/ledger", 0.9)]);
        same.plan.actions.push(restart("cell-2/ledger", false));
        assert_eq!(build(&same, &[], &ctx(&replicas, &[])).plan_drift, None);
    }

    #[test]
    fn a_near_tie_is_named_and_one_service_in_every_cell_is_not_a_tie() {
        let tie = confidence(
            &[cand(EntityKind::Zone, "zone-b", 0.91), cand(EntityKind::Cell, "cell-2", 0.90)],
            true,
        );
        assert_eq!(tie.certainty, Certainty::Uncertain);
        assert!(tie.text.starts_with("Uncertain between zone-b and cell-2"), "{}", tie.text);
        let clear = confidence(
            &[
                cand(EntityKind::Service, "cell-2/ledger", 0.86),
                cand(EntityKind::Service, "cell-3/api-gateway", 0.37),
            ],
            true,
        );
        assert_eq!(clear.certainty, Certainty::Clear);
        assert!((clear.margin - 0.5698).abs() < 1e-3, "{}", clear.margin);
        let everywhere = confidence(
            &[
                cand(EntityKind::Service, "cell-1/loyalty", 0.99),
                cand(EntityKind::Service, "cell-3/loyalty", 0.99),
                cand(EntityKind::Service, "cell-2/loyalty", 0.98),
                cand(EntityKind::Service, "cell-1/wallet-api", 0.40),
            ],
            true,
        );
        assert_eq!(everywhere.top.as_deref(), Some("loyalty (in cell-1, cell-2, cell-3)"));
        assert_eq!(everywhere.runner_up.as_deref(), Some("cell-1/wallet-api"));
        assert_eq!(everywhere.certainty, Certainty::Clear);
        assert_eq!(
            confidence(&[cand(EntityKind::Service, "a", 0.5)], false).certainty,
            Certainty::NoCandidate
        );
    }

    #[test]
    fn an_action_awaiting_approval_gets_the_annotation_the_controller_reads() {
        let mut ir = incident(vec![cand(EntityKind::Service, "cell-2/ledger", 0.9)]);
        ir.plan.actions.push(restart("cell-2/ledger", true));
        let replicas = BTreeMap::new();
        let b = build(&ir, &[], &ctx(&replicas, &[]));
        assert_eq!(b.actions[0].outcome, ActionOutcome::AwaitingApproval);
        let approve = b.next_steps.iter().find(|s| s.kind == StepKind::Approve).expect("an approve step");
        assert!(
            approve
                .command
                .starts_with(&format!("kubectl -n ops annotate incident inc-1 {}=", APPROVED_BY)),
            "{}",
            approve.command
        );
        assert!(approve.command.contains(&format!(" {APPROVED_AT}=")));
        // Nothing awaiting: no approve step.
        ir.plan.actions[0].needs_approval = false;
        assert!(!build(&ir, &[], &ctx(&replicas, &[]))
            .next_steps
            .iter()
            .any(|s| s.kind == StepKind::Approve));
    }

    /// Requests and error ratio of `cell`'s wallet-api every 30 s from −30 min to `until`.
    fn requests(cell: &str, until: i64, rate: f64, bad_from: i64, bad_ratio: f64) -> Vec<SignalSeries> {
        let labels = [
            ("cell".to_string(), cell.to_string()),
            ("service".to_string(), "wallet-api".to_string()),
        ];
        let points = |f: &dyn Fn(i64) -> f64| -> Vec<Sample> {
            (-60..=until / 30)
                .map(|i| Sample {
                    t: at(i * 30),
                    value: f(i * 30),
                })
                .collect()
        };
        vec![
            SignalSeries {
                key: SeriesKey::new("req:rate", labels.clone()),
                signal: Signal::RequestRate,
                entity: Some(Entity::service(Some(cell), "wallet-api")),
                points: points(&|_| rate),
            },
            SignalSeries {
                key: SeriesKey::new("req:error_ratio", labels),
                signal: Signal::ErrorRatio,
                entity: Some(Entity::service(Some(cell), "wallet-api")),
                points: points(&|s| if s >= bad_from { bad_ratio } else { 0.001 }),
            },
        ]
    }

    #[test]
    fn impact_counts_failures_per_minute_and_a_silent_cell_as_failing() {
        // cell-1 fails 20% of 10 payments/s from +60 s; cell-2 stops reporting at +30 s.
        let mut pay = requests("cell-1", 300, 10.0, 60, 0.2);
        pay.extend(requests("cell-2", 30, 5.0, i64::MAX, 0.0));
        let im = impact(&pay, &pay, &[], at(300), at(60)).expect("an impact");
        // cell-1: 600/min × 20% = 120; cell-2: its 300/min baseline, presumed failing.
        assert_eq!(im.failed_payments_per_min, Some(420.0));
        assert_eq!(im.payments_per_min, Some(900.0));
        assert_eq!(im.cells, vec!["cell-2", "cell-1"]);
        assert_eq!(im.silent_cells, vec!["cell-2"]);
        assert!(im.text.contains("cell-2 silent since 09:50:30"), "{}", im.text);
        // Without payment series, requests are reported and payments are not guessed.
        let im = impact(&pay, &[], &[], at(300), at(60)).expect("an impact");
        assert_eq!(im.failed_payments_per_min, None);
        assert!(im.text.contains("no series names payment routes"), "{}", im.text);
    }

    #[test]
    fn a_scale_names_its_target_count_and_its_undo() {
        let replicas: BTreeMap<String, u32> = [("cell-2/ledger".to_string(), 3)].into();
        let params = vec![("replicas".to_string(), "+1".to_string())];
        assert_eq!(
            describe(ActionKind::Scale, "cell-2/ledger", &params, &replicas),
            "scale cell-2/ledger from 3 to 4 replicas"
        );
        let mut ir = incident(vec![cand(EntityKind::Service, "cell-2/ledger", 0.9)]);
        ir.plan.mode = Mode::Act;
        ir.plan.actions.push(Action {
            kind: ActionKind::Scale,
            params,
            ..restart("cell-2/ledger", false)
        });
        ir.lifecycle.taken.push(cellwarden_models::Taken {
            at: at(60),
            kind: ActionKind::Scale,
            target: "cell-2/ledger".into(),
            verified: Some(true),
            verified_at: Some(at(360)),
            why: String::new(),
            replicas_before: Some(3),
        });
        let b = build(&ir, &[], &ctx(&replicas, &[]));
        assert_eq!(b.actions[0].outcome, ActionOutcome::Verified);
        assert_eq!(
            b.actions[0].text,
            "scale cell-2/ledger from 3 to 4 replicas — done 09:51:00, verified 09:56:00"
        );
        assert!(b
            .next_steps
            .iter()
            .any(|s| s.command == "kubectl -n cell-2 scale deployment/ledger --replicas=3"));
        assert!(b.summary.contains("verified 09:56:00"), "{}", b.summary);
    }
}
