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
//! | fault | service with memory evidence or a memory warning | `restart_pods` in batches, then `scale` +1 |
//! | fault | service with queue-lag evidence | `restart_pods` of the consumer (a stalled consumer), `scale` +1 |
//! | fault | a service with no deployments (a datastore), in one cell | `reroute` traffic away from that cell (needs approval) |
//! | fault | service with error evidence, in one cell | `reroute` traffic away from that cell (needs approval) |
//! | fault | other service evidence (latency, cpu) | `scale` +1 |
//! | any | — | `notify` the on-call engineer |
//!
//! A proposed plan is never carried out as it stands: [`crate::policy::decide`] applies the
//! guards and the mode first.

use cellwarden_models::topology::Topology;
use cellwarden_models::{Action, ActionKind, EntityKind, Incident, IncidentClass, Mode, Plan, Signal, Warning};

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

/// Plans the response to `incident`, given the warnings seen so far and the topology if known.
pub fn plan(incident: &Incident, warnings: &[Warning], topology: Option<&Topology>) -> Plan {
    let mut actions = Vec::new();
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
                    EntityKind::Node | EntityKind::Zone | EntityKind::Cell => {
                        let cell = match e.kind {
                            EntityKind::Cell => Some(e.name.clone()),
                            EntityKind::Node => topology.and_then(|t| t.cell_of_node(&e.name)).map(str::to_string),
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
                            actions.push(action(
                                ActionKind::Scale,
                                &e.name,
                                &[("replicas", "+1")],
                                why("memory"),
                                false,
                                "no pod above 80% of its memory limit",
                                300,
                            ));
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
    let summary = match incident.candidates.first() {
        Some(c) if incident.blames_root_cause() => format!("likely root cause {} ({})", c.entity.name, c.class.as_str()),
        _ => "capacity incident, no root cause blamed".to_string(),
    };
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
        );
        assert_eq!(kinds(&p), vec![ActionKind::FailoverProvider, ActionKind::Notify]);
        assert_eq!(p.mode, Mode::DryRun);
    }

    #[test]
    fn memory_evidence_restarts_then_scales() {
        let p = plan(&incident(Entity::service(Some("cell-2"), "ledger"), "metric:memory"), &[], None);
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
        );
        assert_eq!(kinds(&p), vec![ActionKind::CircuitBreak, ActionKind::Notify]);
    }

    #[test]
    fn cordon_needs_approval() {
        let p = plan(&incident(Entity::new(EntityKind::Cell, "cell-3"), "metric:error_ratio"), &[], None);
        assert_eq!(kinds(&p), vec![ActionKind::Reroute, ActionKind::Cordon, ActionKind::Notify]);
        assert!(p.actions[1].needs_approval && !p.actions[0].needs_approval);
    }
}
