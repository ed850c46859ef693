//! The bundled incident scenarios: what breaks, when, and what the truth file says about it.
//!
//! Every scenario starts from the same healthy wallet (a seed picks its per-cell differences and
//! noise), runs 45 minutes of normal traffic so detectors have a baseline, then injects its fault.

use crate::model::*;
use crate::telemetry::MetricNaming;
use crate::wallet::{Deploy, FaultEffect, ScheduledFault, SimConfig, Surge, Wallet};
use cellwarden_models::truth::{ExpectedAction, Fault, RootCause, Truth, TruthEvent};
use cellwarden_models::Timestamp;

/// Minutes of normal traffic before the fault.
pub const WARMUP_MIN: i64 = 45;
/// Minutes before its leak that the memory-leak scenarios deploy the leaking revision: the leak
/// begins once the new pods have all started (3 pods, one a minute) and warmed their caches.
pub const LEAK_DEPLOY_BEFORE_MIN: i64 = 8;

/// A runnable scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// `memory-leak`, `provider-errors-s3`, …
    pub id: String,
    pub description: String,
    pub cfg: SimConfig,
    pub faults: Vec<ScheduledFault>,
    pub surges: Vec<Surge>,
    /// Deploys of new revisions (the memory leak comes with one).
    pub deploys: Vec<Deploy>,
    /// `kind` in truth.yaml; empty for healthy scenarios.
    pub fault_kind: String,
    pub root_cause: RootCause,
    pub expected_actions: Vec<ExpectedAction>,
}

/// The ids of the base scenarios, in the order the issue lists them.
pub const BASE_IDS: [&str; 8] = [
    "memory-leak",
    "provider-errors",
    "zone-outage",
    "db-latency-drift",
    "consumer-poison-pill",
    "loyalty-outage",
    "traffic-surge",
    "healthy-day",
];

fn cfg(seed: u64, cells: usize, minutes: i64) -> SimConfig {
    SimConfig {
        seed,
        cells,
        step_secs: 30,
        start: Timestamp::parse_rfc3339("2026-03-02T09:00:00Z").expect("valid"),
        duration_secs: minutes * 60,
        traces_per_sec: 0.35,
        base_rps: 60.0 * cells as f64,
        routine_restart_hours: 0.0,
        naming: MetricNaming::Cellwarden,
    }
}

fn cell_name(i: usize) -> String {
    format!("cell-{}", i + 1)
}

fn rc_service(service: &str, cell: Option<usize>) -> RootCause {
    RootCause {
        service: Some(service.into()),
        cell: cell.map(cell_name),
        ..Default::default()
    }
}

fn expect(kind: &str, target: &str) -> ExpectedAction {
    ExpectedAction {
        kind: kind.into(),
        target: Some(target.into()),
    }
}

/// The bundled scenarios that show one profile end to end: `(id, base scenario, naming, cells)`.
/// Each records only what that exporter would, with no traces, on as few cells as the fault
/// allows (the faulty cell must exist), so each fixture stays a few dozen KiB.
pub const PROFILE_VARIANTS: [(&str, &str, MetricNaming, usize); 11] = [
    ("loyalty-outage-linkerd", "loyalty-outage", MetricNaming::Linkerd, 2),
    ("loyalty-outage-envoy", "loyalty-outage", MetricNaming::Envoy, 2),
    ("loyalty-outage-ingress-nginx", "loyalty-outage", MetricNaming::IngressNginx, 2),
    ("loyalty-outage-custom-names", "loyalty-outage", MetricNaming::Custom, 2),
    ("memory-leak-micrometer", "memory-leak", MetricNaming::Micrometer, 2),
    ("memory-leak-prometheus-client", "memory-leak", MetricNaming::PrometheusClient, 2),
    ("memory-leak-kubernetes", "memory-leak", MetricNaming::Kubernetes, 2),
    ("db-latency-drift-opentelemetry", "db-latency-drift", MetricNaming::OpenTelemetry, 3),
    (
        "db-latency-drift-postgres-exporter",
        "db-latency-drift",
        MetricNaming::PostgresExporter,
        3,
    ),
    ("db-latency-drift-cockroachdb", "db-latency-drift", MetricNaming::Cockroachdb, 3),
    (
        "consumer-poison-pill-kafka-exporter",
        "consumer-poison-pill",
        MetricNaming::KafkaExporter,
        4,
    ),
];

/// The scenario `id` (a base id or a listed variant), with its seed replaced when `seed` is given.
pub fn scenario(id: &str, seed: Option<u64>) -> Option<Scenario> {
    if let Some((_, base, naming, cells)) = PROFILE_VARIANTS.iter().find(|v| v.0 == id) {
        let mut s = scenario(base, seed)?;
        s.id = id.into();
        s.description = format!("{} (seen only through {naming:?}'s metrics)", s.description);
        s.cfg.naming = *naming;
        s.cfg.traces_per_sec = 0.0;
        s.cfg.cells = *cells;
        s.cfg.base_rps = 60.0 * *cells as f64;
        return Some(s);
    }
    let at = WARMUP_MIN * 60;
    let fault = |effect| vec![ScheduledFault { at_secs: at, effect }];
    let mut s = match id {
        "memory-leak" | "memory-leak-s2" => {
            let (seed, cells, cell) = if id == "memory-leak" { (1, 4, 1) } else { (2, 5, 4) };
            Scenario {
                id: id.into(),
                description: format!(
                    "ledger in {} leaks memory since a deploy {LEAK_DEPLOY_BEFORE_MIN} min before; without action its pods are OOM-killed about 40 min in",
                    cell_name(cell)
                ),
                cfg: cfg(seed, cells, 100),
                faults: fault(FaultEffect::MemoryLeak {
                    cell,
                    service: LEDGER,
                    oom_after_secs: 2400.0,
                }),
                surges: vec![],
                deploys: vec![Deploy {
                    at_secs: at - LEAK_DEPLOY_BEFORE_MIN * 60,
                    cell,
                    service: LEDGER,
                }],
                fault_kind: "memory_leak".into(),
                root_cause: rc_service("ledger", Some(cell)),
                expected_actions: vec![
                    expect("restart_pods", &format!("{}/ledger", cell_name(cell))),
                    expect("scale", &format!("{}/ledger", cell_name(cell))),
                    expect("rollback", &format!("{}/ledger", cell_name(cell))),
                ],
            }
        }
        "provider-errors" | "provider-errors-s3" => {
            let (seed, provider, ratio) = if id == "provider-errors" { (1, 0, 0.3) } else { (3, 1, 0.4) };
            Scenario {
                id: id.into(),
                description: format!(
                    "{} fails {:.0}% of payment calls (payment rail degradation)",
                    PROVIDERS[provider].name,
                    ratio * 100.0
                ),
                cfg: cfg(seed, 4, 75),
                faults: fault(FaultEffect::ProviderErrors {
                    provider,
                    error_ratio: ratio,
                }),
                surges: vec![],
                deploys: vec![],
                fault_kind: "provider_errors".into(),
                root_cause: RootCause {
                    provider: Some(PROVIDERS[provider].name.into()),
                    ..Default::default()
                },
                expected_actions: vec![expect("failover_provider", PROVIDERS[provider].name)],
            }
        }
        "zone-outage" | "zone-outage-s4" => {
            let (seed, cells, zone) = if id == "zone-outage" { (1, 4, 1) } else { (4, 5, 2) };
            // The cells of the zone (with these sizes, exactly one).
            let cell = (0..cells).find(|c| c % ZONES.len() == zone).expect("a cell in the zone");
            Scenario {
                id: id.into(),
                description: format!("{} goes down, taking out every node of {}", ZONES[zone], cell_name(cell)),
                cfg: cfg(seed, cells, 75),
                faults: fault(FaultEffect::ZoneOutage { zone }),
                surges: vec![],
                deploys: vec![],
                fault_kind: "zone_outage".into(),
                root_cause: RootCause {
                    zone: Some(ZONES[zone].into()),
                    cell: Some(cell_name(cell)),
                    ..Default::default()
                },
                expected_actions: vec![expect("reroute", &cell_name(cell)), expect("cordon", &cell_name(cell))],
            }
        }
        "db-latency-drift" | "db-latency-drift-s5" => {
            let (seed, cell) = if id == "db-latency-drift" { (1, 2) } else { (5, 0) };
            Scenario {
                id: id.into(),
                description: format!(
                    "the database of {} slows down steadily: its p99 creeps up over an hour until the ledger times out",
                    cell_name(cell)
                ),
                cfg: cfg(seed, 4, 110),
                faults: fault(FaultEffect::DbLatencyDrift {
                    cell,
                    secs_per_sec: 0.4 / 3600.0,
                }),
                surges: vec![],
                deploys: vec![],
                fault_kind: "latency".into(),
                root_cause: rc_service(DATABASE, Some(cell)),
                expected_actions: vec![expect("reroute", &cell_name(cell))],
            }
        }
        "consumer-poison-pill" => Scenario {
            id: id.into(),
            description: "a poison-pill message stalls the event consumer of cell-4 while its lag grows".into(),
            cfg: cfg(1, 4, 80),
            faults: fault(FaultEffect::PoisonPill { cell: 3 }),
            surges: vec![],
            deploys: vec![],
            fault_kind: "queue_stall".into(),
            root_cause: rc_service("consumer", Some(3)),
            expected_actions: vec![expect("restart_pods", "cell-4/consumer")],
        },
        // The loyalty outage as only an Istio mesh sees it (Istio's standard metrics, no traces),
        // on a smaller wallet so the fixture stays small: the Istio profile end to end.
        "loyalty-outage-istio" => {
            let mut c = cfg(6, 2, 60);
            c.traces_per_sec = 0.0;
            c.naming = MetricNaming::Istio;
            Scenario {
                id: id.into(),
                description: "loyalty fails in every cell, seen only through Istio's sidecar metrics".into(),
                cfg: c,
                faults: fault(FaultEffect::ServiceDown { service: LOYALTY }),
                surges: vec![],
                deploys: vec![],
                fault_kind: "error_rate".into(),
                root_cause: rc_service("loyalty", None),
                expected_actions: vec![expect("circuit_break", "loyalty")],
            }
        }
        // A node's memory fills from outside Kubernetes (a runaway agent on node-2-1), seen only
        // through node_exporter on a two-cell wallet: the node-exporter profile end to end.
        "node-memory-leak-node-exporter" => {
            let mut c = cfg(7, 2, 75);
            c.traces_per_sec = 0.0;
            c.naming = MetricNaming::NodeExporter;
            let node = crate::model::NODES_PER_CELL;
            Scenario {
                id: id.into(),
                description: "something outside Kubernetes on node-2-1 takes its memory until the node is full about 40 min in, seen only through node_exporter".into(),
                cfg: c,
                faults: fault(FaultEffect::NodeMemoryLeak {
                    node,
                    fill_after_secs: 2400.0,
                }),
                surges: vec![],
                deploys: vec![],
                fault_kind: "memory_leak".into(),
                root_cause: RootCause {
                    node: Some(format!("node-{}-1", node / crate::model::NODES_PER_CELL + 1)),
                    cell: Some(cell_name(1)),
                    ..Default::default()
                },
                expected_actions: vec![],
            }
        }
        "loyalty-outage" => Scenario {
            id: id.into(),
            description: "loyalty fails in every cell; calls to it time out and drag payments down with them".into(),
            cfg: cfg(1, 4, 75),
            faults: fault(FaultEffect::ServiceDown { service: LOYALTY }),
            surges: vec![],
            deploys: vec![],
            fault_kind: "error_rate".into(),
            root_cause: rc_service("loyalty", None),
            expected_actions: vec![expect("circuit_break", "loyalty")],
        },
        "traffic-surge" => Scenario {
            id: id.into(),
            description: "a legitimate surge doubles traffic for 30 minutes: asking for capacity is right, blaming a root cause is not"
                .into(),
            cfg: cfg(1, 4, 90),
            faults: vec![],
            deploys: vec![],
            surges: vec![Surge {
                from_secs: at,
                to_secs: at + 1800,
                factor: 2.0,
            }],
            fault_kind: String::new(),
            root_cause: RootCause::default(),
            expected_actions: vec![expect("scale", "wallet-api")],
        },
        "healthy-day" => {
            // Three cells: a day of four would make a 5.2 MiB metrics file (over the 5 MiB file cap).
            let mut c = cfg(1, 3, 24 * 60);
            c.start = Timestamp::parse_rfc3339("2026-03-02T00:00:00Z").expect("valid");
            c.step_secs = 60;
            c.traces_per_sec = 0.03;
            c.routine_restart_hours = 12.0;
            Scenario {
                id: id.into(),
                description: "24 hours of diurnal load and routine pod restarts; any alarm is a false alarm".into(),
                cfg: c,
                faults: vec![],
                surges: vec![],
                deploys: vec![],
                fault_kind: String::new(),
                root_cause: RootCause::default(),
                expected_actions: vec![],
            }
        }
        _ => return None,
    };
    if let Some(seed) = seed {
        s.cfg.seed = seed;
    }
    Some(s)
}

/// Every scenario bundled as a fixture: the base ones and their variants.
pub fn bundled_ids() -> Vec<&'static str> {
    let mut ids = BASE_IDS.to_vec();
    ids.extend([
        "memory-leak-s2",
        "provider-errors-s3",
        "zone-outage-s4",
        "db-latency-drift-s5",
        "loyalty-outage-istio",
        "node-memory-leak-node-exporter",
    ]);
    // The custom-names scenario is left out: without the config rule it names (see
    // fixtures/README.md) nothing in it is a signal, and `eval fixtures/` would count a miss.
    ids.extend(PROFILE_VARIANTS.iter().filter(|v| v.2 != MetricNaming::Custom).map(|v| v.0));
    ids
}

impl Scenario {
    pub fn wallet(&self) -> Wallet {
        Wallet::new(self.cfg.clone(), self.faults.clone(), self.surges.clone()).with_deploys(self.deploys.clone())
    }

    pub fn steps(&self) -> usize {
        (self.cfg.duration_secs / self.cfg.step_secs) as usize
    }

    /// When the fault starts (none for healthy scenarios).
    pub fn fault_start(&self) -> Option<Timestamp> {
        self.faults.first().map(|f| self.cfg.start.plus_secs(f.at_secs))
    }

    /// The truth file, given when users were first hurt in a run without action.
    pub fn truth(&self, failure: Option<Timestamp>) -> Truth {
        let faults = match self.fault_start() {
            Some(start) => vec![Fault {
                kind: self.fault_kind.clone(),
                root_cause: self.root_cause.clone(),
                start,
                end: None,
                failure: failure.filter(|f| *f >= start),
            }],
            None => vec![],
        };
        let events = self
            .surges
            .iter()
            .map(|s| TruthEvent {
                kind: "load_surge".into(),
                start: self.cfg.start.plus_secs(s.from_secs),
                end: Some(self.cfg.start.plus_secs(s.to_secs)),
            })
            .collect();
        Truth {
            faults,
            expected_actions: self.expected_actions.clone(),
            events,
            other_faults: vec![],
            failed_payments: vec![],
        }
    }
}
