//! The closed loop: the simulated wallet produces telemetry, the pipeline detects, ranks and
//! plans, and (when acting) the plan's actions change the simulated wallet as they would change
//! the real one. Actions that need approval are carried out after a simulated on-call response.
//! A run acts under one [`SimPolicy`]: none, or a rule set (today's, or the legacy one it
//! replaced), so one `simulate` compares them on the same scenario and seed.

use cellwarden_engine::drive::{self, Driver};
use cellwarden_engine::pipeline::{self, EngineEvent, Pipeline};
use cellwarden_engine::policy::{self, CellState, CellView, ConfigLimits};
use cellwarden_engine::rules::RuleSet;
use cellwarden_engine::verify::{self, Expectation, Verdict};
use cellwarden_models::report::Report;
use cellwarden_models::{Action, ActionKind, Mode};
use cellwarden_simulator::{Outcome, Scenario};
use std::borrow::Cow;

/// How long the simulated on-call engineer takes to approve an action that needs approval.
pub const APPROVAL_DELAY_SECS: i64 = 300;
/// How a run responds: not at all (plans are only recorded, as `replay` would), or by acting
/// on the plans of a rule set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimPolicy {
    NoAction,
    Act(RuleSet),
}

impl SimPolicy {
    /// The column heading of its run.
    pub fn label(self) -> String {
        match self {
            SimPolicy::NoAction => "without action".into(),
            SimPolicy::Act(RuleSet::Current) => "acting (current rules)".into(),
            SimPolicy::Act(r) => format!("acting ({} rules)", r.as_str()),
        }
    }
}

/// The rollouts the wallet's Deployments have made so far, for the rollback rule.
pub fn rollouts(w: &cellwarden_simulator::Wallet) -> Vec<policy::Rollout> {
    w.revision_history()
        .iter()
        .flat_map(|(target, revs)| policy::rollouts_of_revisions(target, revs))
        .collect()
}

/// What one run produced.
pub struct RunResult {
    pub outcome: Outcome,
    pub report: Report,
    /// What the pipeline asked for and what became of it, in order.
    pub decisions: Vec<String>,
}

/// The wallet's cells as the policy engine sees them.
pub fn cell_views(w: &cellwarden_simulator::Wallet) -> (Vec<CellView>, std::collections::BTreeMap<String, u32>) {
    let (cells, replicas) = w.cluster_view();
    let views = cells
        .into_iter()
        .map(|c| CellView {
            namespace: c.name.clone(),
            name: c.name,
            weight: c.weight.round() as u32,
            state: if c.cordoned { CellState::Cordoned } else { CellState::Active },
        })
        .collect();
    (views, replicas)
}

/// Runs `scn` under `how`. `progress(step, steps)` per step.
pub fn run(scn: &Scenario, how: SimPolicy, progress: &mut dyn FnMut(usize, usize)) -> RunResult {
    let act = how != SimPolicy::NoAction;
    let rule_set = match how {
        SimPolicy::Act(r) => r,
        SimPolicy::NoAction => RuleSet::Current,
    };
    let mut w = scn.wallet();
    let topology = w.topology();
    let mut policy = pipeline::default_policy();
    policy.mode = if act { "act" } else { "dry-run" }.into();
    let limits = ConfigLimits {
        mode: if act { Mode::Act } else { Mode::DryRun },
        paused: false,
    };
    let mut driver = Driver::new(
        Pipeline::new().with_policy(policy, limits).with_rule_set(rule_set),
        Default::default(),
        Some(topology.clone()),
    );
    let mut waiting: Vec<(i64, String, Action)> = Vec::new();
    // Actions carried out whose effect is still to be judged: (incident, action, promise).
    let mut verifying: Vec<(String, Action, Expectation)> = Vec::new();
    let mut decisions = Vec::new();
    let steps = scn.steps();
    for i in 0..steps {
        w.step();
        let now = w.now();
        let t = w.now_secs;
        // Approved actions whose wait is over.
        let (due, later): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|(at, _, _)| *at <= t);
        waiting = later;
        for (_, id, a) in due {
            let line = match w.apply(&a) {
                Ok(what) => {
                    carried_out(&mut driver.pipeline, &mut verifying, &id, &a, now);
                    format!(
                        "+{:.1} min {} {}: approved (simulated on-call, after {} s) and done: {what}",
                        minutes(scn, t),
                        a.kind,
                        a.target,
                        APPROVAL_DELAY_SECS
                    )
                }
                Err(why) => format!("+{:.1} min {} {}: approved but refused: {why}", minutes(scn, t), a.kind, a.target),
            };
            driver.pipeline.note(now, "action", line.clone());
            decisions.push(line);
        }
        // The policy engine sees the cluster as it is now.
        let (views, replicas) = cell_views(&w);
        driver.pipeline.set_cluster(views, replicas);
        driver.pipeline.set_rollouts(rollouts(&w));
        // The pipeline sees the recent window (the window store of the live daemon).
        let since = drive::window_start(now);
        let families = drive::recent(w.recorder.families(), since);
        let stepped = driver.step(&families, drive::spans_since(&w.recorder.spans, since), Vec::new(), now);
        let pipeline = &mut driver.pipeline;
        // Judge what was carried out against the telemetry up to now (remediator's verify).
        verifying.retain(|(id, a, exp)| {
            let entity = exp.entity.as_ref().map(|e| e.qualified()).unwrap_or_default();
            let samples = pipeline::samples_of(
                &stepped.series,
                exp.signal.as_str(),
                &entity,
                &exp.series.to_string(),
                exp.acted_at,
                now,
            );
            match verify::judge(exp, &samples, now) {
                Verdict::Pending => true,
                Verdict::Passed(why) => {
                    pipeline.verified(id, now, a.kind, &a.target, true, &why, Some(&topology));
                    false
                }
                Verdict::Failed(why) => {
                    pipeline.verified(id, now, a.kind, &a.target, false, &why, Some(&topology));
                    false
                }
            }
        });
        let plans: Vec<cellwarden_models::Plan> = stepped
            .events
            .into_iter()
            .filter_map(|ev| match ev {
                EngineEvent::Opened { plan, .. } | EngineEvent::Escalated { plan, .. } => Some(plan),
                _ => None,
            })
            .collect();
        for plan in plans {
            // A plan of nothing but a notification: say what it tells the person (e.g. why no
            // action can help).
            if plan.refused.is_empty() && plan.actions.iter().all(|a| a.kind == ActionKind::Notify) {
                for a in &plan.actions {
                    decisions.push(format!("+{:.1} min notify {}: {}", minutes(scn, t), a.target, a.reason));
                }
            }
            for r in &plan.refused {
                let line = format!(
                    "+{:.1} min {} {}: refused by the {} guard: {}",
                    minutes(scn, t),
                    r.action.kind,
                    r.action.target,
                    r.guard,
                    r.reason
                );
                if act {
                    pipeline.note(now, "action", line.clone());
                }
                decisions.push(line);
            }
            for a in plan.actions {
                if a.kind == ActionKind::Notify {
                    continue;
                }
                let line = if !act {
                    format!("+{:.1} min {} {}: planned (not acting)", minutes(scn, t), a.kind, a.target)
                } else if a.needs_approval {
                    let l = format!("+{:.1} min {} {}: waiting for approval", minutes(scn, t), a.kind, a.target);
                    waiting.push((t + APPROVAL_DELAY_SECS, plan.incident_id.clone(), a));
                    l
                } else {
                    match w.apply(&a) {
                        Ok(what) => {
                            carried_out(pipeline, &mut verifying, &plan.incident_id, &a, now);
                            format!("+{:.1} min {} {}: done: {what}", minutes(scn, t), a.kind, a.target)
                        }
                        Err(why) => format!("+{:.1} min {} {}: refused: {why}", minutes(scn, t), a.kind, a.target),
                    }
                };
                if act {
                    pipeline.note(now, "action", line.clone());
                }
                decisions.push(line);
            }
        }
        progress(i + 1, steps);
    }
    let prepared = pipeline::prepare_parts(
        w.recorder.families(),
        Cow::Borrowed(&w.recorder.spans),
        Some(&topology),
        &Default::default(),
    );
    let report = driver.pipeline.report(&format!("simulate {}", scn.id), &prepared);
    RunResult {
        outcome: w.outcome.clone(),
        report,
        decisions,
    }
}

/// Tells the engine `a` was carried out for incident `id` at `now`, and starts judging its effect.
fn carried_out(
    pipeline: &mut Pipeline,
    verifying: &mut Vec<(String, Action, Expectation)>,
    id: &str,
    a: &Action,
    now: cellwarden_models::Timestamp,
) {
    pipeline.carried_out(id, now, a.kind, &a.target);
    let Some(ir) = pipeline.incidents().iter().find(|r| r.incident.id == id) else {
        return;
    };
    if let Some(exp) = verify::expect(a, &ir.incident, now) {
        verifying.push((id.to_string(), a.clone(), exp));
    }
}

/// Minutes since the scenario started.
fn minutes(_scn: &Scenario, t: i64) -> f64 {
    t as f64 / 60.0
}
