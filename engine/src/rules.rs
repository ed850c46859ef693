//! The rule set: a small, documented mapping from an incident to a proposed plan. The policy
//! engine ([`crate::policy::decide`]) then decides it: guards refuse what they must, and the mode
//! says whether the rest is carried out or only recorded.
//!
//! | incident | top candidate | actions |
//! | --- | --- | --- |
//! | capacity (load rose, nothing broke) | — | `scale` +1 each service whose request rate rose |
//! | fault | external provider with error or latency evidence | `failover_provider`: shift its weight to the other providers |
//! | fault | node, zone or cell | `reroute` traffic away from the affected cell; `cordon` it (needs approval) |
//! | fault | non-essential service (`essential: false`) | `circuit_break` the feature |
//! | fault | service with memory evidence or a memory warning | `restart_pods` in batches (frees memory), `scale` +1 for headroom only while at or under its declared replicas; once a restart was decided and the workload rolled out a new revision within [`ROLLBACK_LOOKBACK_SECS`] before the trouble began: `rollback` to the previous revision (needs approval) |
//! | fault | service with queue-lag evidence whose throughput fell (a stalled consumer) | nothing a cluster action can do: a restart does not skip a poison-pill message and more replicas stall on it too; `notify` says so |
//! | fault | service with queue-lag evidence, still consuming | `scale` +1 (it falls behind) |
//! | fault | service with latency or error evidence that rolled out a new revision within [`ROLLBACK_LOOKBACK_SECS`] before the trouble began | `rollback` to the previous revision (needs approval) |
//! | fault | a service with no deployments (a datastore), in one cell | `reroute` traffic away from that cell (needs approval) |
//! | fault | service with error evidence, in one cell | `reroute` traffic away from that cell (needs approval) |
//! | fault | other service evidence (latency, cpu) | `scale` +1 |
//! | any | — | `notify` the on-call engineer |
//!
//! [`RuleSet::Legacy`] keeps the rules as they were before rollbacks (memory and queue lag both
//! `restart_pods` then `scale` +1, no rollback), so `cellwarden simulate` can compare the two.
//!
//! A proposed plan is never carried out as it stands: [`crate::policy::decide`] applies the
//! guards and the mode first.

use crate::policy::Rollout;
use cellwarden_models::topology::Topology;
use cellwarden_models::{Action, ActionKind, Decision, EntityKind, Incident, IncidentClass, Mode, Plan, Signal, Timestamp, Warning};
use std::collections::BTreeMap;

/// How long before the trouble began (the incident's first anomaly) a rollout of the blamed
/// workload makes it the suspect. Why 30 minutes: a regression shipped with a deploy shows
/// within minutes of the new pods taking traffic, and a leak begins as they start (in the
/// simulator's memory-leak scenario the deploy is 8 minutes before the leak; the leak's first
/// anomaly follows some minutes later); a rollout hours before a fault is more likely
/// unrelated, and rolling it back would undo a working release.
pub const ROLLBACK_LOOKBACK_SECS: i64 = 30 * 60;

/// Which rules plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuleSet {
    /// The rules in the table above.
    #[default]
    Current,
    /// The rules before rollbacks (as on main at d44be09): memory and queue lag both lead to a
    /// restart and a scale-out, and nothing proposes a rollback.
    Legacy,
}

impl RuleSet {
    /// Every rule set, with the name `--policy` takes.
    pub const ALL: [(RuleSet, &'static str); 2] = [(RuleSet::Current, "current"), (RuleSet::Legacy, "legacy")];

    /// The rule set named `name` (`current`, `legacy`).
    pub fn parse(name: &str) -> Option<RuleSet> {
        RuleSet::ALL.iter().find(|(_, n)| *n == name).map(|(r, _)| *r)
    }

    pub fn as_str(self) -> &'static str {
        RuleSet::ALL.iter().find(|(r, _)| *r == self).map_or("current", |(_, n)| n)
    }
}

/// What the rules see beside the incident: which rule set, the cluster's recent rollouts and
/// current replicas, and what was already decided for this incident (an escalation plans again
/// knowing the restart did not hold). `PlanContext::default()` knows nothing of the cluster.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanContext<'a> {
    pub rule_set: RuleSet,
    /// Rollouts of workloads to new revisions ([`crate::policy::ClusterSnapshot::rollouts`]).
    pub rollouts: &'a [Rollout],
    /// Current replicas by `cell/service` (`None`: unknown).
    pub replicas: Option<&'a BTreeMap<String, u32>>,
    /// The actions already decided for this incident.
    pub decided: &'a [Decision],
}

impl PlanContext<'_> {
    fn decided(&self, kind: ActionKind, target: &str) -> bool {
        self.decided.iter().any(|d| d.kind == kind && d.target == target)
    }

    /// The latest rollout of `target` to a revision with one before it, within
    /// [`ROLLBACK_LOOKBACK_SECS`] before `onset` (and not after the planning time `now`).
    fn suspect_rollout(&self, target: &str, onset: Timestamp, now: Timestamp) -> Option<&Rollout> {
        self.rollouts
            .iter()
            .filter(|r| r.target == target && r.previous.is_some() && r.at <= now)
            .filter(|r| r.at <= onset && onset.secs_since(r.at) <= ROLLBACK_LOOKBACK_SECS as f64)
            .max_by_key(|r| r.at)
    }
}

/// The rollback of `target` to the revision before `r`.
fn rollback(target: &str, r: &Rollout, rule: &str) -> Action {
    let previous = r.previous.unwrap_or(0).to_string();
    action(
        ActionKind::Rollback,
        target,
        &[("revision", &previous)],
        format!(
            "{rule} rule: {target} rolled out revision {} at {}, shortly before the trouble began; back to revision {previous}",
            r.revision,
            r.at.to_rfc3339()
        ),
        true,
        "the pod template back at the previous revision and the symptom's trend stopped",
        1200,
    )
}

/// When the trouble began: the incident's first anomaly (or its opening).
fn onset(incident: &Incident) -> Timestamp {
    incident
        .anomalies
        .iter()
        .map(|a| a.t)
        .min()
        .unwrap_or(incident.opened_at)
        .min(incident.opened_at)
}

/// The replicas `target` (`cell/service`) is declared with in the topology.
fn declared_replicas(topology: Option<&Topology>, target: &str) -> Option<u32> {
    let (cell, service) = target.split_once('/')?;
    topology?
        .service(service)?
        .deployments
        .iter()
        .find(|d| d.cell.as_deref() == Some(cell))?
        .replicas
}

fn action(
    kind: ActionKind,
    target: &str,
    params: &[(&str, &str)],
    reason: String,
    needs_approval: bool,
    expected_effect: &str,
    verify_within_secs: u64,
) -> Action {
    Action {
        kind,
        target: target.to_string(),
        params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        reason,
        needs_approval,
        expected_effect: expected_effect.to_string(),
        verify_within_secs,
    }
}

/// Plans the response to `incident`, given the warnings seen so far, the topology if known and
/// what `ctx` says of the cluster and of the actions already decided for it.
pub fn plan(incident: &Incident, warnings: &[Warning], topology: Option<&Topology>, ctx: &PlanContext<'_>) -> Plan {
    let mut actions = Vec::new();
    let current = ctx.rule_set == RuleSet::Current;
    // Why no cluster action is proposed, when none can help (said in the notification).
    let mut no_action_helps: Option<String> = None;
    match incident.class {
        IncidentClass::Capacity => {
            let mut targets: Vec<&str> = incident
                .anomalies
                .iter()
                .filter(|a| a.signal == Signal::RequestRate && a.is_increase())
                .filter_map(|a| a.entity.as_ref())
                .filter(|e| e.kind == EntityKind::Service)
                .map(|e| e.name.as_str())
                .collect();
            targets.sort();
            targets.dedup();
            for t in targets {
                actions.push(action(
                    ActionKind::Scale,
                    t,
                    &[("replicas", "+1")],
                    "load rose without errors or latency (capacity rule)".into(),
                    false,
                    "cpu per replica back under its baseline",
                    300,
                ));
            }
        }
        IncidentClass::Fault => {
            if let Some(top) = incident.candidates.first() {
                let e = &top.entity;
                // Decide by the strongest evidence (a memory blip beside a latency spike is no leak).
                let primary = top
                    .evidence
                    .iter()
                    .max_by(|a, b| a.score.total_cmp(&b.score))
                    .map(|ev| ev.source.as_str())
                    .unwrap_or("");
                let has = |source: &str| primary.contains(source);
                let why = |rule: &str| format!("{rule} rule: top candidate {} (score {:.2})", e.name, top.score);
                match e.kind {
                    // More traffic alone is no reason to fail over.
                    EntityKind::Provider
                        if !top
                            .evidence
                            .iter()
                            .any(|ev| ev.source.contains("error") || ev.source.contains("latency")) => {}
                    EntityKind::Provider => actions.push(action(
                        ActionKind::FailoverProvider,
                        &e.name,
                        &[("weight", "0")],
                        why("provider"),
                        false,
                        "payment error ratio back under its baseline",
                        300,
                    )),
                    // One node is not its cell: moving the cell's traffic and cordoning every
                    // node of it would take out two healthy nodes for one sick one. The node is
                    // a person's to cordon and drain (Kubernetes reschedules its pods).
                    EntityKind::Node => {
                        no_action_helps = Some(format!(
                            "{} itself is in trouble ({}): cordon and drain that node so its pods move to healthy nodes \
                             (kubectl drain {} --ignore-daemonsets --delete-emptydir-data); its cell's traffic need not move",
                            e.name,
                            top.evidence.first().map_or("its own metrics", |ev| ev.detail.trim_end_matches('.')),
                            e.name
                        ));
                    }
                    EntityKind::Zone | EntityKind::Cell => {
                        let cell = match e.kind {
                            EntityKind::Cell => Some(e.name.clone()),
                            _ => topology
                                .and_then(|t| t.cells.iter().find(|c| c.zone.as_deref() == Some(e.name.as_str())))
                                .map(|c| c.name.clone()),
                        };
                        if let Some(cell) = cell {
                            actions.push(action(
                                ActionKind::Reroute,
                                &cell,
                                &[("weight", "0")],
                                why("infrastructure"),
                                false,
                                "the cell's traffic served by its siblings with errors at baseline",
                                300,
                            ));
                            actions.push(action(
                                ActionKind::Cordon,
                                &cell,
                                &[],
                                why("infrastructure"),
                                true,
                                "no pod scheduled onto the cell's nodes",
                                300,
                            ));
                        }
                    }
                    EntityKind::Service => {
                        let service = e.service_name().unwrap_or(&e.name);
                        let memory_warned = warnings.iter().any(|w| w.entity.as_ref() == Some(e) && w.signal == Signal::Memory);
                        if topology.is_some_and(|t| t.is_non_essential(service)) {
                            actions.push(action(
                                ActionKind::CircuitBreak,
                                service,
                                &[("feature", service), ("state", "off")],
                                why("non-essential"),
                                false,
                                "core-path error ratio and latency back at baseline",
                                300,
                            ));
                        } else if memory_warned || has("memory") {
                            actions.push(action(
                                ActionKind::RestartPods,
                                &e.name,
                                &[("batch", "1"), ("interval_secs", "60")],
                                why("memory"),
                                false,
                                "memory back under 80% of the limit after the restarts",
                                600,
                            ));
                            // Scaling out does not cure a leak: one replica of headroom while
                            // the workload is at (or under) its declared size, never a ratchet.
                            let at_declared = match (ctx.replicas.and_then(|r| r.get(&e.name)), declared_replicas(topology, &e.name)) {
                                (Some(now), Some(declared)) => *now <= declared,
                                _ => true,
                            };
                            if !current || at_declared {
                                actions.push(action(
                                    ActionKind::Scale,
                                    &e.name,
                                    &[("replicas", "+1")],
                                    why("memory"),
                                    false,
                                    "no pod above 80% of its memory limit",
                                    300,
                                ));
                            }
                            // A restart only resets a leak the code brought: once one was
                            // decided, go back to the revision before the leak came.
                            if current && ctx.decided(ActionKind::RestartPods, &e.name) {
                                if let Some(r) = ctx.suspect_rollout(&e.name, onset(incident), incident.ranked_at) {
                                    actions.push(rollback(&e.name, r, "memory-after-rollout"));
                                }
                            }
                        } else if current && has("queue_lag") {
                            let stalled = incident
                                .anomalies
                                .iter()
                                .any(|a| a.signal == Signal::RequestRate && !a.is_increase() && a.entity.as_ref() == Some(e));
                            if stalled {
                                no_action_helps = Some(format!(
                                    "{} stopped consuming while its lag grows (a poison-pill message?): a restart does not skip the message \
                                     and more replicas stall on it too; no cluster action can help — dead-letter or skip the message \
                                     at the head of its queue",
                                    e.name
                                ));
                            } else {
                                actions.push(action(
                                    ActionKind::Scale,
                                    &e.name,
                                    &[("replicas", "+1")],
                                    why("queue"),
                                    false,
                                    "consumer lag falling within 5 minutes",
                                    300,
                                ));
                            }
                        } else if let Some(r) = current
                            .then(|| ctx.suspect_rollout(&e.name, onset(incident), incident.ranked_at))
                            .flatten()
                            .filter(|_| has("latency") || has("error"))
                        {
                            actions.push(rollback(&e.name, r, "regression-after-rollout"));
                        } else if has("queue_lag") {
                            actions.push(action(
                                ActionKind::RestartPods,
                                &e.name,
                                &[("batch", "1"), ("interval_secs", "60")],
                                why("queue"),
                                false,
                                "consumer lag falling within 5 minutes",
                                300,
                            ));
                            actions.push(action(
                                ActionKind::Scale,
                                &e.name,
                                &[("replicas", "+1")],
                                why("queue"),
                                false,
                                "consumer lag falling within 5 minutes",
                                300,
                            ));
                        } else if topology.and_then(|t| t.service(service)).is_some_and(|s| s.deployments.is_empty()) && e.cell().is_some()
                        {
                            // Not a workload we can scale (a datastore): move the cell's traffic.
                            let cell = e.cell().expect("checked");
                            actions.push(action(
                                ActionKind::Reroute,
                                cell,
                                &[("weight", "0")],
                                why("datastore"),
                                true,
                                "latency and errors of the rerouted traffic at baseline",
                                300,
                            ));
                        } else if has("error") && e.cell().is_some() {
                            let cell = e.cell().expect("checked");
                            actions.push(action(
                                ActionKind::Reroute,
                                cell,
                                &[("weight", "0")],
                                why("errors-in-one-cell"),
                                true,
                                "error ratio of the rerouted traffic at baseline",
                                300,
                            ));
                        } else {
                            actions.push(action(
                                ActionKind::Scale,
                                &e.name,
                                &[("replicas", "+1")],
                                why("saturation"),
                                false,
                                "latency back under its baseline",
                                300,
                            ));
                        }
                    }
                }
            }
        }
    }
    let mut summary = match incident.candidates.first() {
        Some(c) if incident.blames_root_cause() => format!("likely root cause {} ({})", c.entity.name, c.class.as_str()),
        _ => "capacity incident, no root cause blamed".to_string(),
    };
    if let Some(why) = no_action_helps {
        summary = format!("{summary}; {why}");
    }
    actions.push(action(
        ActionKind::Notify,
        "on-call",
        &[],
        summary,
        false,
        "an engineer acknowledges",
        900,
    ));
    Plan {
        incident_id: incident.id.clone(),
        at: incident.ranked_at,
        mode: Mode::DryRun,
        actions,
        refused: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellwarden_models::topology::{ServiceInfo, Topology};
    use cellwarden_models::{Candidate, Entity, Evidence, Timestamp};

    fn incident(entity: Entity, source: &str) -> Incident {
        Incident {
            id: "inc-1".into(),
            opened_at: Timestamp(0),
            ranked_at: Timestamp(0),
            class: IncidentClass::Fault,
            anomalies: vec![],
            candidates: vec![Candidate {
                class: entity.kind.class(),
                entity,
                score: 0.9,
                evidence: vec![Evidence {
                    source: source.into(),
                    detail: String::new(),
                    score: 0.9,
                }],
            }],
            alerts: vec![],
        }
    }

    fn kinds(p: &Plan) -> Vec<ActionKind> {
        p.actions.iter().map(|a| a.kind).collect()
    }

    #[test]
    fn provider_fault_fails_over() {
        let p = plan(
            &incident(Entity::new(EntityKind::Provider, "provider-a"), "trace:errors"),
            &[],
            None,
            &PlanContext::default(),
        );
        assert_eq!(kinds(&p), vec![ActionKind::FailoverProvider, ActionKind::Notify]);
        assert_eq!(p.mode, Mode::DryRun);
    }

    #[test]
    fn memory_evidence_restarts_then_scales() {
        let p = plan(
            &incident(Entity::service(Some("cell-2"), "ledger"), "metric:memory"),
            &[],
            None,
            &PlanContext::default(),
        );
        assert_eq!(kinds(&p), vec![ActionKind::RestartPods, ActionKind::Scale, ActionKind::Notify]);
        assert_eq!(p.actions[0].target, "cell-2/ledger");
    }

    #[test]
    fn non_essential_service_is_circuit_broken() {
        let topo = Topology {
            services: vec![ServiceInfo {
                name: "loyalty".into(),
                essential: Some(false),
                deployments: vec![],
            }],
            ..Default::default()
        };
        let p = plan(
            &incident(Entity::service(Some("cell-1"), "loyalty"), "metric:error_ratio"),
            &[],
            Some(&topo),
            &PlanContext::default(),
        );
        assert_eq!(kinds(&p), vec![ActionKind::CircuitBreak, ActionKind::Notify]);
    }

    /// A node's own trouble moves no cell: only the on-call is told, to drain that node.
    #[test]
    fn a_sick_node_is_for_a_person_to_drain_not_a_reason_to_move_its_cell() {
        let p = plan(
            &incident(Entity::new(EntityKind::Node, "node-2-1"), "metric:memory"),
            &[],
            None,
            &PlanContext::default(),
        );
        assert_eq!(kinds(&p), vec![ActionKind::Notify]);
        assert!(p.actions[0].reason.contains("kubectl drain node-2-1"), "{}", p.actions[0].reason);
    }

    #[test]
    fn cordon_needs_approval() {
        let p = plan(
            &incident(Entity::new(EntityKind::Cell, "cell-3"), "metric:error_ratio"),
            &[],
            None,
            &PlanContext::default(),
        );
        assert_eq!(kinds(&p), vec![ActionKind::Reroute, ActionKind::Cordon, ActionKind::Notify]);
        assert!(p.actions[1].needs_approval && !p.actions[0].needs_approval);
    }

    fn rollout(target: &str, revision: u64, at_secs: i64) -> Rollout {
        Rollout {
            target: target.into(),
            revision,
            previous: Some(revision - 1),
            at: Timestamp(at_secs * 1000),
        }
    }

    /// An incident about `entity` whose trouble began (first anomaly) at `onset_secs`.
    fn incident_at(entity: Entity, source: &str, signal: Signal, onset_secs: i64) -> Incident {
        let mut inc = incident(entity.clone(), source);
        inc.opened_at = Timestamp((onset_secs + 300) * 1000);
        inc.ranked_at = inc.opened_at;
        inc.anomalies.push(cellwarden_models::Anomaly {
            t: Timestamp(onset_secs * 1000),
            series: cellwarden_models::SeriesKey::new("m", []),
            signal,
            entity: Some(entity),
            score: 0.9,
            observed: 2.0,
            expected: 1.0,
            detector: "robust_z".into(),
            explanation: String::new(),
        });
        inc
    }

    fn ledger_topology(replicas: u32) -> Topology {
        Topology {
            services: vec![ServiceInfo {
                name: "ledger".into(),
                essential: Some(true),
                deployments: vec![cellwarden_models::topology::DeploymentInfo {
                    cell: Some("cell-2".into()),
                    name: "ledger".into(),
                    replicas: Some(replicas),
                    ..Default::default()
                }],
            }],
            ..Default::default()
        }
    }

    fn restart_decided() -> Vec<Decision> {
        vec![Decision {
            at: Timestamp(0),
            kind: ActionKind::RestartPods,
            target: "cell-2/ledger".into(),
        }]
    }

    #[test]
    fn a_leak_after_a_rollout_restarts_first_and_rolls_back_once_the_restart_was_decided() {
        let ledger = Entity::service(Some("cell-2"), "ledger");
        let inc = incident_at(ledger, "metric:memory", Signal::Memory, 3600);
        // Deployed 8 minutes before the leak began.
        let rollouts = [rollout("cell-2/ledger", 2, 3600 - 480)];
        let first = plan(
            &inc,
            &[],
            None,
            &PlanContext {
                rollouts: &rollouts,
                ..Default::default()
            },
        );
        assert_eq!(kinds(&first), vec![ActionKind::RestartPods, ActionKind::Scale, ActionKind::Notify]);
        // The escalation plans again knowing the restart was decided: the rollback is in it.
        let decided = restart_decided();
        let again = plan(
            &inc,
            &[],
            None,
            &PlanContext {
                rollouts: &rollouts,
                decided: &decided,
                ..Default::default()
            },
        );
        let rb = again.actions.iter().find(|a| a.kind == ActionKind::Rollback).expect("a rollback");
        assert_eq!(rb.target, "cell-2/ledger");
        assert_eq!(rb.params, vec![("revision".to_string(), "1".to_string())]);
        assert!(rb.needs_approval);
        // The legacy rules never propose one.
        let legacy = plan(
            &inc,
            &[],
            None,
            &PlanContext {
                rule_set: RuleSet::Legacy,
                rollouts: &rollouts,
                decided: &decided,
                ..Default::default()
            },
        );
        assert!(!kinds(&legacy).contains(&ActionKind::Rollback));
    }

    #[test]
    fn a_rollout_long_before_the_trouble_or_after_it_is_no_suspect() {
        let ledger = Entity::service(Some("cell-2"), "ledger");
        let inc = incident_at(ledger, "metric:memory", Signal::Memory, 7200);
        let decided = restart_decided();
        for r in [
            // Two hours before the onset: outside the 30 min lookback.
            rollout("cell-2/ledger", 2, 0),
            // After the trouble began: it cannot have caused it.
            rollout("cell-2/ledger", 2, 7300),
            // Another workload's deploy.
            rollout("cell-3/ledger", 2, 7000),
        ] {
            let rollouts = [r];
            let p = plan(
                &inc,
                &[],
                None,
                &PlanContext {
                    rollouts: &rollouts,
                    decided: &decided,
                    ..Default::default()
                },
            );
            assert!(!kinds(&p).contains(&ActionKind::Rollback), "{:?}", rollouts[0]);
        }
    }

    #[test]
    fn a_latency_regression_after_a_rollout_is_rolled_back_at_once() {
        let ledger = Entity::service(Some("cell-2"), "ledger");
        let inc = incident_at(ledger, "metric:latency", Signal::Latency, 3600);
        let rollouts = [rollout("cell-2/ledger", 5, 3500)];
        let p = plan(
            &inc,
            &[],
            None,
            &PlanContext {
                rollouts: &rollouts,
                ..Default::default()
            },
        );
        assert_eq!(kinds(&p), vec![ActionKind::Rollback, ActionKind::Notify]);
        assert_eq!(p.actions[0].params[0].1, "4");
        // Without a rollout it is scaled, as before.
        let p = plan(&inc, &[], None, &PlanContext::default());
        assert_eq!(kinds(&p), vec![ActionKind::Scale, ActionKind::Notify]);
    }

    #[test]
    fn a_leaking_workload_above_its_declared_replicas_gets_no_more() {
        let ledger = Entity::service(Some("cell-2"), "ledger");
        let inc = incident(ledger, "metric:memory");
        let topo = ledger_topology(3);
        let replicas: BTreeMap<String, u32> = [("cell-2/ledger".to_string(), 4)].into();
        let ctx = PlanContext {
            replicas: Some(&replicas),
            ..Default::default()
        };
        assert_eq!(
            kinds(&plan(&inc, &[], Some(&topo), &ctx)),
            vec![ActionKind::RestartPods, ActionKind::Notify]
        );
        let at_declared: BTreeMap<String, u32> = [("cell-2/ledger".to_string(), 3)].into();
        let ctx = PlanContext {
            replicas: Some(&at_declared),
            ..Default::default()
        };
        assert_eq!(
            kinds(&plan(&inc, &[], Some(&topo), &ctx)),
            vec![ActionKind::RestartPods, ActionKind::Scale, ActionKind::Notify]
        );
    }

    #[test]
    fn a_stalled_consumer_gets_no_restart_and_the_notification_says_why() {
        let consumer = Entity::service(Some("cell-4"), "consumer");
        let mut inc = incident(consumer.clone(), "metric:queue_lag");
        inc.anomalies.push(cellwarden_models::Anomaly {
            t: Timestamp(0),
            series: cellwarden_models::SeriesKey::new("rate", []),
            signal: Signal::RequestRate,
            entity: Some(consumer),
            score: 0.9,
            observed: 0.0,
            expected: 40.0,
            detector: "robust_z".into(),
            explanation: String::new(),
        });
        let p = plan(&inc, &[], None, &PlanContext::default());
        assert_eq!(kinds(&p), vec![ActionKind::Notify]);
        assert!(p.actions[0].reason.contains("a restart does not skip"), "{}", p.actions[0].reason);
        // The legacy rules restarted and scaled it.
        let legacy = plan(
            &inc,
            &[],
            None,
            &PlanContext {
                rule_set: RuleSet::Legacy,
                ..Default::default()
            },
        );
        assert_eq!(kinds(&legacy), vec![ActionKind::RestartPods, ActionKind::Scale, ActionKind::Notify]);
        // A consumer still consuming but falling behind gets one more replica.
        inc.anomalies.clear();
        assert_eq!(
            kinds(&plan(&inc, &[], None, &PlanContext::default())),
            vec![ActionKind::Scale, ActionKind::Notify]
        );
    }

    #[test]
    fn rule_sets_are_named() {
        for (r, name) in RuleSet::ALL {
            assert_eq!(RuleSet::parse(name), Some(r));
            assert_eq!(r.as_str(), name);
        }
        assert_eq!(RuleSet::parse("legcy"), None);
    }
}
