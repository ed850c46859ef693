//! The policy engine: the rule set proposes, the guards dispose. Pure — incident plan + policy +
//! cluster snapshot + now in, a decided plan out (effects as data). Every guard that refuses says
//! which it is and why; refusals are part of the plan so reports, Events and the audit log show
//! them.
//!
//! Guards, in the order they are checked: pause, mode, protected namespaces, replica bounds,
//! cooldowns, rate limits (global and per kind), blast radius (cells out of service and the
//! spare-capacity floor), then approval for the kinds the policy marks risky.

use cellwarden_models::plan::RefusedAction;
use cellwarden_models::topology::{RevisionInfo, Topology};
use cellwarden_models::{Action, ActionKind, Mode, Plan, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a cell stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum CellState {
    /// Serving its share of traffic.
    #[default]
    Active,
    /// Traffic is being moved away.
    Draining,
    /// No traffic, nodes unschedulable.
    Cordoned,
}

/// How cellwarden may respond to incidents: the `RemediationPolicy` resource's spec as plain data
/// (the CRD in `cellwarden-remediator` flattens it; the engine needs no kube to read it).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// `observe` (act on nothing), `dry-run` (plan and record only) or `act`. Where the daemon's
    /// config and the policy disagree, the more restrictive mode wins.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Stop every action while true.
    #[serde(default)]
    pub paused: bool,
    /// Which signals lead to which actions; empty means cellwarden's built-in rules.
    #[serde(default)]
    pub rules: Vec<PolicyRule>,
    /// Replica bounds for `scale`.
    #[serde(default)]
    pub bounds: ReplicaBounds,
    /// Seconds before the same action may touch the same target again, per action kind
    /// (`scale`, `restart_pods`, `reroute`, `failover_provider`, `circuit_break`, `cordon`,
    /// `rollback`).
    #[serde(default = "default_cooldowns")]
    pub cooldown_secs: BTreeMap<String, u64>,
    /// Most actions in any hour, all kinds together.
    #[serde(default = "default_max_actions")]
    pub max_actions_per_hour: u32,
    /// Most actions in any hour, per action kind.
    #[serde(default)]
    pub max_actions_per_hour_by_kind: BTreeMap<String, u32>,
    /// How much of the platform one incident may take out of service.
    #[serde(default)]
    pub blast_radius: BlastRadius,
    /// Namespaces cellwarden never touches. Defaults to the control plane's own
    /// (`kube-system`, `kube-public`, `kube-node-lease`), so a policy that leaves the key out
    /// still keeps cellwarden away from them; set it to `[]` to allow them.
    #[serde(default = "default_protected_namespaces")]
    pub protected_namespaces: Vec<String>,
    /// Action kinds that wait for a person's approval (annotation `cellwarden.io/approved-by`).
    #[serde(default = "default_approval")]
    pub require_approval: Vec<String>,
    /// How long an approval holds, seconds.
    #[serde(default = "default_approval_ttl")]
    pub approval_ttl_secs: u64,
}

fn default_protected_namespaces() -> Vec<String> {
    ["kube-system", "kube-public", "kube-node-lease"].map(String::from).to_vec()
}
fn default_mode() -> String {
    "dry-run".into()
}
fn default_cooldowns() -> BTreeMap<String, u64> {
    [
        ("scale", 600),
        ("restart_pods", 900),
        ("reroute", 900),
        ("failover_provider", 900),
        ("circuit_break", 1800),
        ("cordon", 3600),
        // A rollback changes what runs: once an hour per workload at most (a second one would
        // roll back past the revision a person just approved going back to).
        ("rollback", 3600),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
fn default_max_actions() -> u32 {
    10
}
/// The risky kinds: a cordon takes a cell's nodes out; a rollback changes the code that runs
/// (the previous revision may lack a fix or a schema change the current one needs).
fn default_approval() -> Vec<String> {
    vec!["cordon".into(), "rollback".into()]
}
fn default_approval_ttl() -> u64 {
    3600
}

/// One rule: incidents whose top evidence is `signal` lead to `action`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// `memory`, `cpu`, `latency`, `error_ratio`, `request_rate`, `queue_lag`, or `any`.
    pub signal: String,
    /// The root-cause class it applies to: `internal`, `external`, `infrastructure`, or `any`.
    #[serde(default = "any")]
    pub class: String,
    /// The action kind to take.
    pub action: String,
}

fn any() -> String {
    "any".into()
}

/// Replica bounds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaBounds {
    pub min_replicas: u32,
    pub max_replicas: u32,
}

impl Default for ReplicaBounds {
    fn default() -> Self {
        ReplicaBounds {
            min_replicas: 1,
            max_replicas: 10,
        }
    }
}

/// Blast-radius budget.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlastRadius {
    /// Most cells drained or cordoned at once.
    pub max_cells_out: u32,
    /// Share of cells (percent) that must keep serving: a spare-capacity floor.
    pub min_active_cells_percent: u32,
}

impl Default for BlastRadius {
    fn default() -> Self {
        BlastRadius {
            max_cells_out: 1,
            min_active_cells_percent: 50,
        }
    }
}

/// The daemon-wide switches from the config file (DESIGN.md: the more restrictive wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigLimits {
    pub mode: Mode,
    pub paused: bool,
}

impl Default for ConfigLimits {
    fn default() -> Self {
        ConfigLimits {
            mode: Mode::DryRun,
            paused: false,
        }
    }
}

/// A cell as the engine sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct CellView {
    pub name: String,
    pub namespace: String,
    pub weight: u32,
    pub state: CellState,
}

/// An action already decided (carried out, or planned in dry-run), for cooldowns and rate limits.
#[derive(Debug, Clone, PartialEq)]
pub struct PastAction {
    pub kind: ActionKind,
    pub target: String,
    pub at: Timestamp,
}

/// A workload's rollout to a new revision (a deploy): what a Deployment's ReplicaSets say
/// (`deployment.kubernetes.io/revision` and their creation times), a fixture's topology
/// (`revisions:`), or the simulator's own deploys.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// The workload, `cell/service`.
    pub target: String,
    /// The revision it rolled out to.
    pub revision: u64,
    /// The revision it replaced (`None`: the first one, nothing to go back to).
    pub previous: Option<u64>,
    /// When the new revision rolled out.
    pub at: Timestamp,
}

/// The rollouts `revisions` of workload `target` (`cell/service`) record: each revision after
/// the first, with the one before it.
pub fn rollouts_of_revisions(target: &str, revisions: &[RevisionInfo]) -> Vec<Rollout> {
    let mut revs = revisions.to_vec();
    revs.sort_by_key(|r| r.revision);
    revs.windows(2)
        .map(|pair| Rollout {
            target: target.to_string(),
            revision: pair[1].revision,
            previous: Some(pair[0].revision),
            at: pair[1].at,
        })
        .collect()
}

/// The rollouts of every workload a topology lists with revisions.
pub fn rollouts_of(topology: &Topology) -> Vec<Rollout> {
    topology
        .services
        .iter()
        .flat_map(|s| {
            s.deployments.iter().filter_map(move |d| {
                let cell = d.cell.as_deref()?;
                Some(rollouts_of_revisions(&format!("{cell}/{}", s.name), &d.revisions))
            })
        })
        .flatten()
        .collect()
}

/// What the engine knows of the cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterSnapshot {
    pub cells: Vec<CellView>,
    /// Replicas by `cell/service`.
    pub replicas: BTreeMap<String, u32>,
    pub history: Vec<PastAction>,
    /// Recent rollouts of workloads to new revisions (for the rollback rule).
    pub rollouts: Vec<Rollout>,
}

/// The names guards report (bounded: fit for metric labels).
pub mod guard {
    pub const PAUSE: &str = "pause";
    pub const MODE: &str = "mode";
    pub const PROTECTED_NAMESPACE: &str = "protected-namespace";
    pub const BOUNDS: &str = "bounds";
    pub const COOLDOWN: &str = "cooldown";
    pub const RATE_LIMIT: &str = "rate-limit";
    pub const BLAST_RADIUS: &str = "blast-radius";
    /// The incident engine's own: the same action on the same target was already decided for
    /// this fault (a repeat of what did not hold is no fix).
    pub const ALREADY_DECIDED: &str = "already-decided";
}

fn mode_of(s: &str) -> Mode {
    match s {
        "act" => Mode::Act,
        "observe" => Mode::Observe,
        _ => Mode::DryRun,
    }
}

fn cell_of(target: &str) -> &str {
    target.split_once('/').map_or(target, |(c, _)| c)
}

/// Decides `proposed` (the rule set's plan) under `policy`, `config` and the snapshot at `now`.
pub fn decide(proposed: Plan, policy: &PolicySpec, config: &ConfigLimits, snap: &ClusterSnapshot, now: Timestamp) -> Plan {
    let mode = config.mode.min(mode_of(&policy.mode));
    let mut allowed: Vec<Action> = Vec::new();
    let mut refused: Vec<RefusedAction> = Vec::new();
    let hour_ago = now.plus_secs(-3600);
    let recent: Vec<&PastAction> = snap.history.iter().filter(|a| a.at > hour_ago && a.at <= now).collect();
    // Cells already out of service, counting the ones this plan takes out.
    let mut out_now: Vec<String> = snap
        .cells
        .iter()
        .filter(|c| c.state != CellState::Active || c.weight == 0)
        .map(|c| c.name.clone())
        .collect();
    for mut action in proposed.actions {
        let refuse = |guard: &str, reason: String| RefusedAction {
            action: action.clone(),
            guard: guard.into(),
            reason,
        };
        if action.kind == ActionKind::Notify {
            allowed.push(action);
            continue;
        }
        if config.paused || policy.paused {
            refused.push(refuse(
                guard::PAUSE,
                if config.paused {
                    "cellwarden is paused in its config".into()
                } else {
                    "the RemediationPolicy is paused".into()
                },
            ));
            continue;
        }
        if mode == Mode::Observe {
            refused.push(refuse(guard::MODE, "observe mode: detect and report only".into()));
            continue;
        }
        let kind = action.kind.as_str();
        let cell = cell_of(&action.target);
        let namespace = snap
            .cells
            .iter()
            .find(|c| c.name == cell)
            .map_or(cell.to_string(), |c| c.namespace.clone());
        if matches!(
            action.kind,
            ActionKind::Scale
                | ActionKind::RestartPods
                | ActionKind::Reroute
                | ActionKind::Cordon
                | ActionKind::CircuitBreak
                | ActionKind::Rollback
        ) && policy.protected_namespaces.contains(&namespace)
        {
            refused.push(refuse(guard::PROTECTED_NAMESPACE, format!("namespace {namespace} is protected")));
            continue;
        }
        if action.kind == ActionKind::Scale {
            let current = snap
                .replicas
                .get(&action.target)
                .copied()
                .unwrap_or(policy.bounds.min_replicas.max(1));
            let delta: i64 = action
                .params
                .iter()
                .find(|(k, _)| k == "replicas")
                .and_then(|(_, v)| v.trim_start_matches('+').parse().ok())
                .unwrap_or(1);
            let next = current as i64 + delta;
            if next > policy.bounds.max_replicas as i64 || next < policy.bounds.min_replicas as i64 {
                refused.push(refuse(
                    guard::BOUNDS,
                    format!(
                        "{} would go from {current} to {next} replicas, outside {}..={}",
                        action.target, policy.bounds.min_replicas, policy.bounds.max_replicas
                    ),
                ));
                continue;
            }
        }
        if let Some(cooldown) = policy.cooldown_secs.get(kind) {
            if let Some(last) = snap
                .history
                .iter()
                .filter(|a| a.at <= now && a.kind == action.kind && a.target == action.target)
                .map(|a| a.at)
                .max()
            {
                let since = now.secs_since(last);
                if since < *cooldown as f64 {
                    refused.push(refuse(
                        guard::COOLDOWN,
                        format!("{kind} {} was decided {:.0} s ago; cooldown {cooldown} s", action.target, since),
                    ));
                    continue;
                }
            }
        }
        let done_this_hour = recent.len() + allowed.iter().filter(|a| a.kind != ActionKind::Notify).count();
        if done_this_hour >= policy.max_actions_per_hour as usize {
            refused.push(refuse(
                guard::RATE_LIMIT,
                format!(
                    "{done_this_hour} actions in the last hour; the limit is {}",
                    policy.max_actions_per_hour
                ),
            ));
            continue;
        }
        if let Some(limit) = policy.max_actions_per_hour_by_kind.get(kind) {
            let n = recent.iter().filter(|a| a.kind == action.kind).count() + allowed.iter().filter(|a| a.kind == action.kind).count();
            if n >= *limit as usize {
                refused.push(refuse(
                    guard::RATE_LIMIT,
                    format!("{n} {kind} actions in the last hour; the limit is {limit}"),
                ));
                continue;
            }
        }
        if matches!(action.kind, ActionKind::Reroute | ActionKind::Cordon) && !out_now.iter().any(|c| c == cell) {
            let total = snap.cells.len().max(1);
            let out_after = out_now.len() + 1;
            let active_after = total.saturating_sub(out_after);
            if out_after > policy.blast_radius.max_cells_out as usize {
                refused.push(refuse(
                    guard::BLAST_RADIUS,
                    format!(
                        "{} cell(s) already out of service ({}); at most {} may be",
                        out_now.len(),
                        out_now.join(", "),
                        policy.blast_radius.max_cells_out
                    ),
                ));
                continue;
            }
            if active_after * 100 < policy.blast_radius.min_active_cells_percent as usize * total {
                refused.push(refuse(
                    guard::BLAST_RADIUS,
                    format!(
                        "only {active_after} of {total} cells would keep serving; the floor is {}%",
                        policy.blast_radius.min_active_cells_percent
                    ),
                ));
                continue;
            }
            out_now.push(cell.to_string());
        }
        if policy.require_approval.iter().any(|k| k == kind) {
            action.needs_approval = true;
        }
        allowed.push(action);
    }
    Plan {
        incident_id: proposed.incident_id,
        at: proposed.at,
        mode,
        actions: allowed,
        refused,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn policy() -> PolicySpec {
        serde_json::from_value(serde_json::json!({"mode": "act"})).unwrap()
    }

    fn act() -> ConfigLimits {
        ConfigLimits {
            mode: Mode::Act,
            paused: false,
        }
    }

    /// An action of `kind` on `target` with no parameters (for the engine's tests).
    pub(crate) fn action(kind: ActionKind, target: &str) -> Action {
        Action {
            kind,
            target: target.into(),
            params: vec![],
            reason: "test".into(),
            needs_approval: false,
            expected_effect: String::new(),
            verify_within_secs: 300,
        }
    }

    fn plan(actions: Vec<Action>) -> Plan {
        Plan {
            incident_id: "inc-1".into(),
            at: Timestamp(0),
            mode: Mode::DryRun,
            actions,
            refused: vec![],
        }
    }

    fn cells(n: usize) -> ClusterSnapshot {
        ClusterSnapshot {
            cells: (1..=n)
                .map(|i| CellView {
                    name: format!("cell-{i}"),
                    namespace: format!("cell-{i}"),
                    weight: 25,
                    state: CellState::Active,
                })
                .collect(),
            replicas: [("cell-2/ledger".to_string(), 3)].into(),
            history: vec![],
            rollouts: vec![],
        }
    }

    fn t(mins: i64) -> Timestamp {
        Timestamp(mins * 60_000)
    }

    fn refused_by(p: &Plan) -> Vec<&str> {
        p.refused.iter().map(|r| r.guard.as_str()).collect()
    }

    #[test]
    fn allowed_actions_pass_and_the_stricter_mode_wins() {
        let p = decide(
            plan(vec![action(ActionKind::Scale, "cell-2/ledger")]),
            &policy(),
            &act(),
            &cells(4),
            t(0),
        );
        assert_eq!((p.actions.len(), p.mode), (1, Mode::Act));
        let dry = decide(
            plan(vec![action(ActionKind::Scale, "cell-2/ledger")]),
            &policy(),
            &ConfigLimits::default(),
            &cells(4),
            t(0),
        );
        assert_eq!(dry.mode, Mode::DryRun);
        let mut obs = policy();
        obs.mode = "observe".into();
        let p = decide(
            plan(vec![action(ActionKind::Scale, "cell-2/ledger")]),
            &obs,
            &act(),
            &cells(4),
            t(0),
        );
        assert_eq!(refused_by(&p), vec![guard::MODE]);
    }

    #[test]
    fn pause_in_policy_or_config_refuses_everything_but_notify() {
        let mut paused = policy();
        paused.paused = true;
        let p = decide(
            plan(vec![
                action(ActionKind::Scale, "cell-2/ledger"),
                action(ActionKind::Notify, "on-call"),
            ]),
            &paused,
            &act(),
            &cells(4),
            t(0),
        );
        assert_eq!(refused_by(&p), vec![guard::PAUSE]);
        assert_eq!(p.actions[0].kind, ActionKind::Notify);
        let p = decide(
            plan(vec![action(ActionKind::Scale, "cell-2/ledger")]),
            &policy(),
            &ConfigLimits {
                mode: Mode::Act,
                paused: true,
            },
            &cells(4),
            t(0),
        );
        assert_eq!(refused_by(&p), vec![guard::PAUSE]);
    }

    #[test]
    fn protected_namespaces_are_never_touched() {
        let mut pol = policy();
        pol.protected_namespaces = vec!["cell-2".into()];
        let p = decide(
            plan(vec![
                action(ActionKind::RestartPods, "cell-2/ledger"),
                action(ActionKind::RestartPods, "cell-3/ledger"),
            ]),
            &pol,
            &act(),
            &cells(4),
            t(0),
        );
        assert_eq!(refused_by(&p), vec![guard::PROTECTED_NAMESPACE]);
        assert_eq!(p.actions[0].target, "cell-3/ledger");
    }

    #[test]
    fn scaling_beyond_max_replicas_is_refused_by_bounds() {
        let mut pol = policy();
        pol.bounds.max_replicas = 3;
        let p = decide(
            plan(vec![action(ActionKind::Scale, "cell-2/ledger")]),
            &pol,
            &act(),
            &cells(4),
            t(0),
        );
        assert_eq!(refused_by(&p), vec![guard::BOUNDS]);
    }

    #[test]
    fn the_same_action_on_the_same_target_waits_for_its_cooldown() {
        let mut snap = cells(4);
        snap.history.push(PastAction {
            kind: ActionKind::Scale,
            target: "cell-2/ledger".into(),
            at: t(0),
        });
        let p = decide(
            plan(vec![action(ActionKind::Scale, "cell-2/ledger")]),
            &policy(),
            &act(),
            &snap,
            t(5),
        );
        assert_eq!(refused_by(&p), vec![guard::COOLDOWN]);
        // Another target, or after the 600 s cooldown, is fine.
        let p = decide(
            plan(vec![action(ActionKind::Scale, "cell-3/ledger")]),
            &policy(),
            &act(),
            &snap,
            t(5),
        );
        assert!(p.refused.is_empty());
        let p = decide(
            plan(vec![action(ActionKind::Scale, "cell-2/ledger")]),
            &policy(),
            &act(),
            &snap,
            t(11),
        );
        assert!(p.refused.is_empty());
    }

    /// The daemon's clock is the runtime's: with tokio's time paused and advanced by hand the
    /// cooldown holds for exactly its 600 s, with nothing slept for real.
    #[tokio::test(start_paused = true)]
    async fn the_cooldown_runs_out_on_the_runtime_clock() {
        let start = tokio::time::Instant::now();
        let clock = || Timestamp(t(0).millis() + start.elapsed().as_millis() as i64);
        let mut snap = cells(4);
        snap.history.push(PastAction {
            kind: ActionKind::RestartPods,
            target: "cell-2/ledger".into(),
            at: clock(),
        });
        let mut pol = policy();
        pol.cooldown_secs.insert("restart_pods".into(), 600);
        let again = || plan(vec![action(ActionKind::RestartPods, "cell-2/ledger")]);
        tokio::time::advance(std::time::Duration::from_secs(599)).await;
        assert_eq!(refused_by(&decide(again(), &pol, &act(), &snap, clock())), vec![guard::COOLDOWN]);
        tokio::time::advance(std::time::Duration::from_secs(2)).await;
        assert!(decide(again(), &pol, &act(), &snap, clock()).refused.is_empty());
    }

    #[test]
    fn rate_limits_count_the_last_hour_globally_and_per_kind() {
        let mut pol = policy();
        pol.max_actions_per_hour = 2;
        let mut snap = cells(4);
        snap.history.push(PastAction {
            kind: ActionKind::RestartPods,
            target: "cell-1/x".into(),
            at: t(10),
        });
        let p = decide(
            plan(vec![action(ActionKind::Scale, "cell-2/a"), action(ActionKind::Scale, "cell-2/b")]),
            &pol,
            &act(),
            &snap,
            t(20),
        );
        assert_eq!(p.actions.len(), 1);
        assert_eq!(refused_by(&p), vec![guard::RATE_LIMIT]);
        // An hour later the old action no longer counts.
        let p = decide(plan(vec![action(ActionKind::Scale, "cell-2/a")]), &pol, &act(), &snap, t(71));
        assert!(p.refused.is_empty());
        let mut by_kind = policy();
        by_kind.max_actions_per_hour_by_kind = [("restart_pods".to_string(), 1)].into();
        let p = decide(
            plan(vec![action(ActionKind::RestartPods, "cell-2/a")]),
            &by_kind,
            &act(),
            &snap,
            t(20),
        );
        assert_eq!(refused_by(&p), vec![guard::RATE_LIMIT]);
    }

    #[test]
    fn second_cordon_refused_by_blast_radius() {
        let mut snap = cells(4);
        snap.cells[0].state = CellState::Cordoned;
        let p = decide(plan(vec![action(ActionKind::Cordon, "cell-3")]), &policy(), &act(), &snap, t(0));
        assert_eq!(refused_by(&p), vec![guard::BLAST_RADIUS]);
        assert!(p.refused[0].reason.contains("cell-1"));
        // Re-draining the cell already out is no new blast.
        let p = decide(plan(vec![action(ActionKind::Reroute, "cell-1")]), &policy(), &act(), &snap, t(0));
        assert!(p.refused.is_empty());
        // Two of four cells out would leave 50%: allowed with max_cells_out 2; three of four not.
        let mut pol = policy();
        pol.blast_radius.max_cells_out = 3;
        snap.cells[1].weight = 0;
        let p = decide(plan(vec![action(ActionKind::Reroute, "cell-3")]), &pol, &act(), &snap, t(0));
        assert_eq!(refused_by(&p), vec![guard::BLAST_RADIUS]);
        assert!(p.refused[0].reason.contains("floor"));
    }

    #[test]
    fn risky_kinds_wait_for_approval() {
        let p = decide(
            plan(vec![
                action(ActionKind::Cordon, "cell-2"),
                action(ActionKind::Scale, "cell-2/ledger"),
                action(ActionKind::Rollback, "cell-2/ledger"),
            ]),
            &policy(),
            &act(),
            &cells(4),
            t(0),
        );
        assert!(p.actions[0].needs_approval);
        assert!(!p.actions[1].needs_approval);
        assert!(p.actions[2].needs_approval, "a rollback waits for a person by default");
        // A policy that lists only cordon lets a rollback through without one.
        let mut pol = policy();
        pol.require_approval = vec!["cordon".into()];
        let p = decide(
            plan(vec![action(ActionKind::Rollback, "cell-2/ledger")]),
            &pol,
            &act(),
            &cells(4),
            t(0),
        );
        assert!(!p.actions[0].needs_approval);
    }

    #[test]
    fn a_rollback_in_a_protected_namespace_is_refused() {
        let mut pol = policy();
        pol.protected_namespaces = vec!["cell-2".into()];
        let p = decide(
            plan(vec![action(ActionKind::Rollback, "cell-2/ledger")]),
            &pol,
            &act(),
            &cells(4),
            t(0),
        );
        assert_eq!(refused_by(&p), vec![guard::PROTECTED_NAMESPACE]);
    }

    #[test]
    fn rollouts_come_from_a_topologys_revisions_each_with_the_one_before() {
        use cellwarden_models::topology::{DeploymentInfo, ServiceInfo};
        let topo = Topology {
            services: vec![ServiceInfo {
                name: "ledger".into(),
                deployments: vec![DeploymentInfo {
                    cell: Some("cell-2".into()),
                    name: "ledger".into(),
                    revisions: vec![
                        RevisionInfo { revision: 3, at: t(50) },
                        RevisionInfo { revision: 1, at: t(0) },
                        RevisionInfo { revision: 2, at: t(20) },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = rollouts_of(&topo);
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[1].target.as_str(), r[1].revision, r[1].previous, r[1].at),
            ("cell-2/ledger", 3, Some(2), t(50))
        );
    }
}
