//! The simulator's invariants — not its exact numbers: the same seed gives the same telemetry,
//! requests are conserved when routing changes, and memory never passes its limit without an OOM.

use cellwarden_models::Timestamp;
use cellwarden_models::{Action, ActionKind};
use cellwarden_simulator::model::SERVICES;
use cellwarden_simulator::scenario;
use cellwarden_simulator::wallet::{Deploy, FaultEffect, ScheduledFault, SimConfig, Wallet};

fn small(seed: u64, minutes: i64) -> SimConfig {
    SimConfig {
        seed,
        cells: 3,
        step_secs: 30,
        start: Timestamp::parse_rfc3339("2026-03-02T09:00:00Z").unwrap(),
        duration_secs: minutes * 60,
        traces_per_sec: 0.5,
        base_rps: 180.0,
        routine_restart_hours: 0.0,
        naming: Default::default(),
    }
}

fn run(w: &mut Wallet, steps: usize) {
    for _ in 0..steps {
        w.step();
    }
}

fn action(kind: ActionKind, target: &str) -> Action {
    Action {
        kind,
        target: target.into(),
        params: vec![],
        reason: "test".into(),
        needs_approval: false,
        expected_effect: String::new(),
        verify_within_secs: 60,
    }
}

#[test]
fn same_seed_same_telemetry_other_seed_other_telemetry() {
    let mk = |seed| {
        let mut w = Wallet::new(small(seed, 20), vec![], vec![]);
        run(&mut w, 40);
        (w.recorder.exposition(), w.recorder.spans.clone(), w.outcome.clone())
    };
    let (a, b, c) = (mk(7), mk(7), mk(8));
    assert_eq!(a.0, b.0);
    assert_eq!(a.1, b.1);
    assert_eq!(a.2, b.2);
    assert_ne!(a.0, c.0);
}

/// Requests the edge router sent to every cell, from its counters.
fn edge_requests(w: &Wallet) -> Vec<f64> {
    let expo = w.recorder.exposition();
    let mut per_cell = vec![0.0; w.cfg.cells];
    for s in expo
        .series()
        .filter(|s| s.key.metric == "http_server_requests_total" && s.key.label("service").is_none())
    {
        let cell: usize = s.key.label("cell").unwrap().trim_start_matches("cell-").parse().unwrap();
        per_cell[cell - 1] += s.samples.last().unwrap().value;
    }
    per_cell
}

#[test]
fn rerouting_moves_requests_between_cells_without_losing_any() {
    let cfg = small(3, 40);
    let mut acting = Wallet::new(cfg.clone(), vec![], vec![]);
    let mut control = Wallet::new(cfg, vec![], vec![]);
    run(&mut acting, 20);
    run(&mut control, 20);
    let before = edge_requests(&acting);
    acting.apply(&action(ActionKind::Reroute, "cell-2")).unwrap();
    run(&mut acting, 20);
    run(&mut control, 20);
    let after = edge_requests(&acting);
    let control_after = edge_requests(&control);
    // cell-2 got nothing after the reroute; the others took its share; the total is unchanged.
    assert!((after[1] - before[1]).abs() < 1.0, "cell-2 still served {}", after[1] - before[1]);
    let moved: f64 = after.iter().sum::<f64>() - before.iter().sum::<f64>();
    let expected: f64 = control_after.iter().sum::<f64>() - before.iter().sum::<f64>();
    assert!((moved - expected).abs() / expected < 0.001, "served {moved}, offered {expected}");
    assert!(after[0] - before[0] > control_after[0] - before[0]);
    // Weights say the same.
    let w = acting.cell_weights();
    assert_eq!(w[1], 0.0);
    assert!((w.iter().sum::<f64>() - 100.0).abs() < 1e-9);
}

#[test]
fn failover_moves_payments_to_the_other_providers() {
    let mut w = Wallet::new(small(4, 10), vec![], vec![]);
    w.apply(&action(ActionKind::FailoverProvider, "provider-a")).unwrap();
    let weights = w.provider_weights();
    assert_eq!(weights[0], 0.0);
    assert!((weights.iter().sum::<f64>() - 100.0).abs() < 1e-9);
    // The last provider with traffic is never failed away from.
    w.apply(&action(ActionKind::FailoverProvider, "provider-b")).unwrap();
    assert!(w.apply(&action(ActionKind::FailoverProvider, "provider-c")).is_err());
}

#[test]
fn memory_never_exceeds_the_limit_without_an_oom_kill() {
    let leak = vec![ScheduledFault {
        at_secs: 60,
        effect: FaultEffect::MemoryLeak {
            cell: 0,
            service: 2,
            oom_after_secs: 600.0,
        },
    }];
    let mut w = Wallet::new(small(5, 40), leak, vec![]);
    let limit = SERVICES[2].memory_limit_bytes;
    run(&mut w, 80);
    assert!(w.outcome.oom_kills > 0, "the leak must end in an OOM kill");
    let expo = w.recorder.exposition();
    let memory: Vec<_> = expo
        .series()
        .filter(|s| s.key.metric == "container_memory_working_set_bytes")
        .collect();
    assert!(!memory.is_empty());
    for s in memory {
        for p in &s.samples {
            assert!(p.value < limit, "{} at {} is {} ≥ limit {}", s.key, p.t, p.value, limit);
        }
    }
    // Every OOM kill shows as a container restart.
    let restarts: f64 = expo
        .series()
        .filter(|s| s.key.metric == "kube_pod_container_status_restarts_total")
        .map(|s| s.samples.last().unwrap().value)
        .sum();
    assert_eq!(restarts as u64, w.outcome.oom_kills);
}

#[test]
fn restarting_a_leaking_workload_prevents_the_oom_kill() {
    let leak = || {
        vec![ScheduledFault {
            at_secs: 60,
            effect: FaultEffect::MemoryLeak {
                cell: 0,
                service: 2,
                oom_after_secs: 900.0,
            },
        }]
    };
    let mut idle = Wallet::new(small(6, 30), leak(), vec![]);
    run(&mut idle, 40);
    assert!(idle.outcome.oom_kills > 0);
    let mut acting = Wallet::new(small(6, 30), leak(), vec![]);
    run(&mut acting, 20);
    acting.apply(&action(ActionKind::RestartPods, "cell-1/ledger")).unwrap();
    run(&mut acting, 20);
    assert_eq!(acting.outcome.oom_kills, 0);
    assert!(acting.outcome.failed_payments < idle.outcome.failed_payments);
}

#[test]
fn a_zone_outage_fails_the_cells_traffic_until_it_is_rerouted() {
    let outage = || {
        vec![ScheduledFault {
            at_secs: 300,
            effect: FaultEffect::ZoneOutage { zone: 1 },
        }]
    };
    let mut idle = Wallet::new(small(7, 20), outage(), vec![]);
    run(&mut idle, 40);
    let mut acting = Wallet::new(small(7, 20), outage(), vec![]);
    run(&mut acting, 12);
    assert!(acting.cell_down(1));
    acting.apply(&action(ActionKind::Reroute, "cell-2")).unwrap();
    run(&mut acting, 28);
    assert!(
        idle.outcome.failed_payments > 5.0 * acting.outcome.failed_payments,
        "{} vs {}",
        idle.outcome.failed_payments,
        acting.outcome.failed_payments
    );
    let same_users = (idle.outcome.payments - acting.outcome.payments).abs() / idle.outcome.payments;
    assert!(
        same_users < 1e-9,
        "the same users came: {} vs {}",
        idle.outcome.payments,
        acting.outcome.payments
    );
}

#[test]
fn every_bundled_scenario_builds_and_names_its_truth() {
    for id in scenario::bundled_ids() {
        let s = scenario::scenario(id, None).unwrap();
        let truth = s.truth(None);
        assert_eq!(truth.faults.is_empty(), s.fault_kind.is_empty(), "{id}");
        assert!(s.steps() > 0);
    }
    assert!(scenario::scenario("no-such-thing", None).is_none());
}

#[test]
fn each_single_exporter_naming_records_only_its_exporters_families() {
    use cellwarden_simulator::telemetry::MetricNaming;
    for (id, _, naming, _) in scenario::PROFILE_VARIANTS {
        let s = scenario::scenario(id, None).unwrap();
        let mut w = s.wallet();
        run(&mut w, 10);
        let expo = w.recorder.exposition();
        let names: Vec<&str> = expo.families.iter().map(|f| f.name.as_str()).collect();
        let want: &[&str] = match naming {
            MetricNaming::Linkerd => &["response", "response_latency_ms"],
            MetricNaming::Envoy => &["envoy_cluster_upstream_rq_xx", "envoy_cluster_upstream_rq_time"],
            MetricNaming::IngressNginx => &[
                "nginx_ingress_controller_requests",
                "nginx_ingress_controller_request_duration_seconds",
            ],
            MetricNaming::Custom => &["acme_svc_errors_pct", "acme_svc_p99_ms"],
            MetricNaming::Micrometer => &["jvm_memory_used_bytes", "jvm_memory_max_bytes"],
            MetricNaming::PrometheusClient => &["process_resident_memory_bytes", "process_cpu_seconds"],
            MetricNaming::OpenTelemetry => &["db_client_operation_duration_seconds"],
            MetricNaming::PostgresExporter => &["pg_up", "pg_stat_activity_max_tx_duration"],
            MetricNaming::Cockroachdb => &["sql_service_latency"],
            MetricNaming::KafkaExporter => &["kafka_consumergroup_lag_sum"],
            MetricNaming::Kubernetes => &["container_memory_rss", "kube_pod_status_ready"],
            MetricNaming::NodeExporter => unreachable!("{id}: not a variant of a base scenario"),
            MetricNaming::Cellwarden | MetricNaming::Istio => unreachable!("{id}"),
        };
        let mut sorted = names.clone();
        sorted.sort();
        let mut want = want.to_vec();
        want.sort();
        assert_eq!(sorted, want, "{id}");
        assert!(w.recorder.spans.is_empty(), "{id}: no traces");
    }
    assert!(!scenario::bundled_ids().contains(&"loyalty-outage-custom-names"));
}

#[test]
fn istio_naming_records_only_what_the_mesh_sidecars_expose() {
    let mut cfg = small(7, 5);
    cfg.naming = cellwarden_simulator::telemetry::MetricNaming::Istio;
    let mut w = Wallet::new(cfg, vec![], vec![]);
    run(&mut w, 10);
    let expo = w.recorder.exposition();
    let names: Vec<&str> = expo.families.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["istio_requests", "istio_request_duration_milliseconds"]);
    for s in expo.series() {
        match s.key.label("reporter") {
            Some("destination") => {
                let workload = s.key.label("destination_workload").expect("a workload");
                assert!(SERVICES.iter().any(|x| x.name == workload), "{}", s.key);
                assert!(s
                    .key
                    .label("destination_workload_namespace")
                    .is_some_and(|n| n.starts_with("cell-")));
            }
            // Calls to providers leave the mesh: only the caller's sidecar reports them.
            Some("source") => assert_eq!(s.key.label("source_workload"), Some("provider-gateway"), "{}", s.key),
            other => panic!("reporter {other:?} on {}", s.key),
        }
    }
    let le: Vec<&str> = expo
        .series()
        .filter(|s| s.key.metric.ends_with("_bucket"))
        .filter_map(|s| s.key.label("le"))
        .collect();
    assert!(le.contains(&"250") && le.contains(&"+Inf"), "buckets in milliseconds: {le:?}");
}

/// A leak that came with a deploy: a restart only resets it (the OOM kill still comes), a
/// rollback to the revision before the deploy ends it; a rollback with nothing earlier is refused.
#[test]
fn rolling_back_the_leaking_revision_ends_the_leak_a_restart_only_resets_it() {
    let leaky = || {
        let leak = vec![ScheduledFault {
            at_secs: 300,
            effect: FaultEffect::MemoryLeak {
                cell: 0,
                service: 2,
                oom_after_secs: 900.0,
            },
        }];
        Wallet::new(small(8, 60), leak, vec![]).with_deploys(vec![Deploy {
            at_secs: 120,
            cell: 0,
            service: 2,
        }])
    };
    assert!(
        Wallet::new(small(8, 60), vec![], vec![])
            .apply(&action(ActionKind::Rollback, "cell-1/ledger"))
            .is_err(),
        "revision 1 has nothing before it"
    );
    let mut restarted = leaky();
    run(&mut restarted, 30);
    restarted.apply(&action(ActionKind::RestartPods, "cell-1/ledger")).unwrap();
    run(&mut restarted, 90);
    assert!(restarted.outcome.oom_kills > 0, "the leak refills the restarted pods");
    let mut rolled_back = leaky();
    run(&mut rolled_back, 30);
    let what = rolled_back.apply(&action(ActionKind::Rollback, "cell-1/ledger")).unwrap();
    assert!(what.contains("back to revision 1"), "{what}");
    run(&mut rolled_back, 90);
    assert_eq!(rolled_back.outcome.oom_kills, 0);
    let history = rolled_back.revision_history();
    let revs: Vec<u64> = history[0].1.iter().map(|r| r.revision).collect();
    assert_eq!((history[0].0.as_str(), revs), ("cell-1/ledger", vec![1, 2, 3]));
}

/// A restarted consumer takes the poison-pill message again: its queue keeps growing.
#[test]
fn a_restart_does_not_skip_a_poison_pill_message() {
    let pill = vec![ScheduledFault {
        at_secs: 60,
        effect: FaultEffect::PoisonPill { cell: 1 },
    }];
    let mut w = Wallet::new(small(9, 30), pill, vec![]);
    run(&mut w, 10);
    w.apply(&action(ActionKind::RestartPods, "cell-2/consumer")).unwrap();
    run(&mut w, 10);
    let lag = |w: &Wallet| {
        let expo = w.recorder.exposition();
        expo.series()
            .filter(|s| s.key.metric == "messaging_consumer_lag_messages" && s.key.to_string().contains("cell-2"))
            .map(|s| s.samples.last().unwrap().value)
            .sum::<f64>()
    };
    let before = lag(&w);
    run(&mut w, 20);
    assert!(lag(&w) > before && before > 0.0, "lag {before} then {}", lag(&w));
}
