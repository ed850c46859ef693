//! The simulated wallet: cells of services with pods on nodes, shared payment providers, a queue
//! per cell, and the load that flows through them. [`Wallet::step`] advances time and records
//! telemetry; [`Wallet::apply`] carries out one of cellwarden's actions as a real cluster would.
//!
//! The model is deliberately simple but causal: utilisation drives latency and overload errors,
//! errors and latency of callees propagate to callers, memory grows with load (and leaks), a pod
//! above its limit is OOM-killed, and load redistributes when replicas or routing weights change.

use crate::model::*;
use crate::rng::Rng;
use crate::telemetry::Recorder;
use cellwarden_models::topology::{CellInfo, DeploymentInfo, ExternalInfo, NodeInfo, RevisionInfo, ServiceInfo, Topology};
use cellwarden_models::{Action, ActionKind, Timestamp};

const MIB: f64 = 1024.0 * 1024.0;
/// A payment ratio failing above this violates the SLO.
pub const SLO_MAX_FAILED_RATIO: f64 = 0.01;
/// A consumer lag above this many seconds of events violates the SLO.
pub const SLO_MAX_LAG_SECS: f64 = 300.0;
/// Seconds a restarted or OOM-killed pod is not ready.
const RESTART_SECS: i64 = 30;
/// Seconds of in-flight requests lost when a pod is OOM-killed (a graceful restart loses none).
const OOM_LOST_SECS: f64 = 10.0;
/// Seconds between pod replacements of a rollout (a deploy or a rollback), as a Deployment
/// with `maxSurge: 1, maxUnavailable: 0` and a 60 s readiness window rolls.
const ROLLOUT_INTERVAL_SECS: i64 = 60;
/// When revision 1 of every Deployment rolled out: a day before the run (a settled release).
const FIRST_REVISION_SECS: i64 = -86_400;
/// Ledger calls to the database time out above this latency, seconds.
const DB_TIMEOUT_SECS: f64 = 0.25;

/// Static settings of a run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub cells: usize,
    pub step_secs: i64,
    pub start: Timestamp,
    pub duration_secs: i64,
    /// Sampled traces per second (whole traces).
    pub traces_per_sec: f64,
    /// Platform-wide requests per second at the daily mean.
    pub base_rps: f64,
    /// Pods restart on their own about once per this many hours (0: never), as in a real cluster.
    pub routine_restart_hours: f64,
    /// The names the metrics are recorded under.
    pub naming: crate::telemetry::MetricNaming,
}

/// A change of behaviour injected at a time.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultEffect {
    /// The service's pods in the cell leak memory so they reach the limit after `oom_after_secs`.
    MemoryLeak { cell: usize, service: usize, oom_after_secs: f64 },
    /// The provider fails this share of calls.
    ProviderErrors { provider: usize, error_ratio: f64 },
    /// Every node of the zone goes down.
    ZoneOutage { zone: usize },
    /// The cell's database latency grows by this many seconds per second.
    DbLatencyDrift { cell: usize, secs_per_sec: f64 },
    /// A message the cell's consumer cannot process stalls it: every consumer that takes it
    /// fails, so neither a restart nor more replicas get past it.
    PoisonPill { cell: usize },
    /// The service fails in every cell (all calls error after a timeout).
    ServiceDown { service: usize },
    /// Something outside Kubernetes on the node (a runaway agent, a kernel slab leak) takes
    /// memory until the node's memory is full after `fill_after_secs`.
    NodeMemoryLeak { node: usize, fill_after_secs: f64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledFault {
    /// Seconds after the start.
    pub at_secs: i64,
    pub effect: FaultEffect,
}

/// A deploy: the service in the cell rolls out a new revision at a time (its pods replaced one
/// a minute). A fault that begins later on that workload came with it (a rollback ends it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deploy {
    /// Seconds after the start.
    pub at_secs: i64,
    pub cell: usize,
    pub service: usize,
}

/// One revision of a simulated Deployment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Revision {
    pub number: u64,
    /// The revision whose pod template it runs (itself, or an older one it rolled back to).
    pub code: u64,
    /// Seconds after the start it rolled out.
    pub at_secs: i64,
}

/// A legitimate load change: traffic × `factor` between the two times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Surge {
    pub from_secs: i64,
    pub to_secs: i64,
    pub factor: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Pod {
    pub name: String,
    pub node: usize,
    // Smooth memory noise (AR(1)), bytes.
    pub mem_noise: f64,
    pub leaked: f64,
    pub cpu_secs: f64,
    pub restarts: u64,
    // Not ready until this many seconds after the start.
    pub unavailable_until: i64,
    pub memory: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Deployment {
    pub cell: usize,
    pub svc: usize,
    pub pods: Vec<Pod>,
    pub next_pod: u32,
    // Pods still to restart, one per `restart_interval_secs`.
    pub restart_queue: Vec<String>,
    pub restart_interval_secs: i64,
    pub next_restart_at: i64,
    pub leak_bytes_per_sec: f64,
    // The code (revision) the leak came with: a rollback to other code ends it.
    pub leak_code: Option<u64>,
    // Every revision, oldest first; the last one runs.
    pub revisions: Vec<Revision>,
    // Pods still to replace for a rollout, one per ROLLOUT_INTERVAL_SECS.
    pub rollout_queue: Vec<String>,
    pub next_rollout_at: i64,
    // This step's state: load, latency and error as callers see them (callees included), and
    // the service's own error before its callees'.
    pub rps: f64,
    pub latency: f64,
    pub error: f64,
    pub own_error: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Cell {
    pub name: String,
    pub zone: usize,
    pub weight: f64,
    pub cordoned: bool,
    pub capacity_factor: f64,
    pub latency_factor: f64,
    pub db_latency_base: f64,
    pub db_extra: f64,
    pub db_drift_per_sec: f64,
    pub db_latency: f64,
    pub queue_depth: f64,
    pub queue_offset: f64,
    pub poison: bool,
    pub event_rate: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Provider {
    pub weight: f64,
    pub error: f64,
    pub latency: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub name: String,
    pub zone: usize,
    pub cell: usize,
    pub ready: bool,
    pub unschedulable: bool,
    /// Memory taken outside Kubernetes (a [`FaultEffect::NodeMemoryLeak`]), bytes, and how fast
    /// it grows, bytes per second.
    pub leaked: f64,
    pub leak_per_sec: f64,
}

/// A node's memory (node_exporter's `MemTotal`): 16 GiB.
pub(crate) const NODE_MEMORY_BYTES: f64 = 16.0 * 1024.0 * MIB;
/// What the node's system and daemons hold besides the wallet's pods: 2 GiB.
const NODE_SYSTEM_BYTES: f64 = 2.0 * 1024.0 * MIB;

/// A cell's routing as an operator reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct CellRouting {
    pub name: String,
    /// Percent, as configured (not normalised).
    pub weight: f64,
    pub cordoned: bool,
}

/// What users felt: the figures `cellwarden simulate` compares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub payments: f64,
    pub failed_payments: f64,
    pub slo_violation_secs: f64,
    pub oom_kills: u64,
    /// Seconds after the start of every step that violated the SLO.
    pub violating_steps: Vec<i64>,
    /// Seconds after the start of each action carried out, with what it did.
    pub actions: Vec<(i64, String)>,
    /// Payments that failed in each step: (seconds after the start at the step's end, count).
    pub failed_by_step: Vec<(i64, f64)>,
}

/// The simulated platform.
pub struct Wallet {
    pub cfg: SimConfig,
    rng: Rng,
    /// Seconds since the start.
    pub now_secs: i64,
    pub(crate) cells: Vec<Cell>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) deployments: Vec<Deployment>,
    pub(crate) providers: Vec<Provider>,
    pub(crate) loyalty_enabled: bool,
    pub(crate) service_down: Vec<bool>,
    faults: Vec<ScheduledFault>,
    surges: Vec<Surge>,
    deploys: Vec<Deploy>,
    pub outcome: Outcome,
    pub recorder: Recorder,
    // Load noise (AR(1)), drawn from its own stream so actions (which change how many pods draw
    // noise) do not change the traffic: runs with and without action see the same users.
    load_noise: f64,
    load_rng: Rng,
}

fn lognormal_cdf(x: f64, median: f64, sigma: f64) -> f64 {
    0.5 * (1.0 + erf((x.ln() - median.ln()) / (sigma * std::f64::consts::SQRT_2)))
}

/// Abramowitz–Stegun 7.1.26, |error| < 1.5e-7.
fn erf(x: f64) -> f64 {
    let s = x.signum();
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let y =
        1.0 - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t + 0.254_829_592) * t * (-x * x).exp();
    s * y
}

impl Wallet {
    pub fn new(cfg: SimConfig, faults: Vec<ScheduledFault>, surges: Vec<Surge>) -> Wallet {
        let mut rng = Rng::new(cfg.seed);
        let mut cells = Vec::new();
        let mut nodes = Vec::new();
        for c in 0..cfg.cells {
            cells.push(Cell {
                name: format!("cell-{}", c + 1),
                zone: c % ZONES.len(),
                weight: 100.0 / cfg.cells as f64,
                cordoned: false,
                capacity_factor: 0.9 + 0.2 * rng.uniform(),
                latency_factor: 0.9 + 0.3 * rng.uniform(),
                db_latency_base: 0.004 + 0.003 * rng.uniform(),
                db_extra: 0.0,
                db_drift_per_sec: 0.0,
                db_latency: 0.005,
                queue_depth: 0.0,
                queue_offset: 0.0,
                poison: false,
                event_rate: 0.0,
            });
            for n in 0..NODES_PER_CELL {
                nodes.push(Node {
                    name: format!("node-{}-{}", c + 1, n + 1),
                    zone: c % ZONES.len(),
                    cell: c,
                    ready: true,
                    unschedulable: false,
                    leaked: 0.0,
                    leak_per_sec: 0.0,
                });
            }
        }
        let mut deployments = Vec::new();
        for c in 0..cfg.cells {
            for (si, spec) in SERVICES.iter().enumerate() {
                let mut d = Deployment {
                    cell: c,
                    svc: si,
                    pods: Vec::new(),
                    next_pod: 0,
                    restart_queue: Vec::new(),
                    restart_interval_secs: 60,
                    next_restart_at: 0,
                    leak_bytes_per_sec: 0.0,
                    leak_code: None,
                    revisions: vec![Revision {
                        number: 1,
                        code: 1,
                        at_secs: FIRST_REVISION_SECS,
                    }],
                    rollout_queue: Vec::new(),
                    next_rollout_at: 0,
                    rps: 0.0,
                    latency: spec.base_latency_secs,
                    error: 0.0,
                    own_error: 0.0,
                };
                for _ in 0..spec.replicas {
                    add_pod(&mut d, c, &mut rng);
                }
                deployments.push(d);
            }
        }
        let providers = PROVIDERS
            .iter()
            .map(|p| Provider {
                weight: p.weight,
                error: p.error_ratio,
                latency: p.latency_secs,
            })
            .collect();
        let recorder = Recorder::new(cfg.seed, cfg.naming);
        Wallet {
            rng,
            now_secs: 0,
            cells,
            nodes,
            deployments,
            providers,
            loyalty_enabled: true,
            service_down: vec![false; SERVICES.len()],
            faults,
            surges,
            deploys: Vec::new(),
            outcome: Outcome::default(),
            recorder,
            load_noise: 0.0,
            load_rng: Rng::derive(cfg.seed, "load"),
            cfg,
        }
    }

    pub fn now(&self) -> Timestamp {
        self.cfg.start.plus_secs(self.now_secs)
    }

    /// The same wallet with these deploys scheduled.
    pub fn with_deploys(mut self, deploys: Vec<Deploy>) -> Wallet {
        self.deploys = deploys;
        self
    }

    /// The revisions of every Deployment that rolled out more than one so far, by
    /// `cell/service`, oldest first (what its ReplicaSets would say).
    pub fn revision_history(&self) -> Vec<(String, Vec<RevisionInfo>)> {
        self.deployments
            .iter()
            .filter(|d| d.revisions.len() > 1)
            .map(|d| {
                (
                    format!("{}/{}", self.cells[d.cell].name, SERVICES[d.svc].name),
                    self.revision_infos(d.cell, d.svc),
                )
            })
            .collect()
    }

    /// The revisions of a deployment when it has rolled out more than one (a topology lists
    /// none for a workload that never changed).
    fn revision_infos(&self, cell: usize, svc: usize) -> Vec<RevisionInfo> {
        let d = self.dep(cell, svc);
        if d.revisions.len() < 2 {
            return vec![];
        }
        d.revisions
            .iter()
            .map(|r| RevisionInfo {
                revision: r.number,
                at: self.cfg.start.plus_secs(r.at_secs),
            })
            .collect()
    }

    /// Rolls deployment `i` out to a new revision running `code`; its pods are replaced one a
    /// minute from now. Returns the new revision's number.
    fn roll_out(&mut self, i: usize, code: u64) -> u64 {
        let now = self.now_secs;
        let d = &mut self.deployments[i];
        let number = d.revisions.last().map_or(1, |r| r.number + 1);
        d.revisions.push(Revision {
            number,
            code,
            at_secs: now,
        });
        d.rollout_queue = d.pods.iter().map(|p| p.name.clone()).collect();
        d.next_rollout_at = now;
        number
    }

    pub fn cell_names(&self) -> Vec<String> {
        self.cells.iter().map(|c| c.name.clone()).collect()
    }

    pub fn zone_of_cell(&self, cell: usize) -> &'static str {
        ZONES[self.cells[cell].zone]
    }

    pub(crate) fn dep(&self, cell: usize, svc: usize) -> &Deployment {
        &self.deployments[cell * SERVICES.len() + svc]
    }

    fn dep_index(&self, cell: usize, svc: usize) -> usize {
        cell * SERVICES.len() + svc
    }

    /// Routing weights in use, percent per cell (cells drained or cordoned get none).
    pub fn cell_weights(&self) -> Vec<f64> {
        let raw: Vec<f64> = self
            .cells
            .iter()
            .map(|c| if c.cordoned { 0.0 } else { c.weight.max(0.0) })
            .collect();
        let total: f64 = raw.iter().sum();
        if total <= 0.0 {
            return vec![100.0 / self.cells.len() as f64; self.cells.len()];
        }
        raw.iter().map(|w| w * 100.0 / total).collect()
    }

    /// Payment provider weights in use, percent.
    pub fn provider_weights(&self) -> Vec<f64> {
        let total: f64 = self.providers.iter().map(|p| p.weight).sum();
        self.providers
            .iter()
            .map(|p| if total > 0.0 { p.weight * 100.0 / total } else { 0.0 })
            .collect()
    }

    /// Each cell's name, routing weight (percent, as configured) and whether it is cordoned, and
    /// the replicas of every `cell/service`: what an operator reads from the cluster.
    pub fn cluster_view(&self) -> (Vec<CellRouting>, std::collections::BTreeMap<String, u32>) {
        let cells = self
            .cells
            .iter()
            .map(|c| CellRouting {
                name: c.name.clone(),
                weight: c.weight,
                cordoned: c.cordoned,
            })
            .collect();
        let replicas = self
            .deployments
            .iter()
            .map(|d| (format!("{}/{}", self.cells[d.cell].name, SERVICES[d.svc].name), d.pods.len() as u32))
            .collect();
        (cells, replicas)
    }

    /// Sets a cell's routing weight (percent), as a router reading `Cell.spec.weight` would.
    pub fn set_cell_weight(&mut self, cell: &str, weight: f64) {
        if let Some(c) = self.cells.iter_mut().find(|c| c.name == cell) {
            c.weight = weight.max(0.0);
        }
    }

    /// Sets a deployment's replicas, as the Deployment controller would (new pods start not ready).
    pub fn set_replicas(&mut self, cell: &str, service: &str, replicas: usize) {
        let (Some(c), Some(s)) = (self.cells.iter().position(|x| x.name == cell), service_index(service)) else {
            return;
        };
        let i = self.dep_index(c, s);
        let now = self.now_secs;
        let mut rng = Rng::derive(self.cfg.seed, &format!("replicas-{now}-{cell}-{service}"));
        while self.deployments[i].pods.len() < replicas.min(10) {
            add_pod(&mut self.deployments[i], c, &mut rng);
            self.deployments[i].pods.last_mut().expect("added").unavailable_until = now + RESTART_SECS;
        }
        while self.deployments[i].pods.len() > replicas.max(1) {
            self.deployments[i].pods.pop();
        }
    }

    /// Restarts a deployment's pods one a minute (a rolling restart).
    pub fn restart_deployment(&mut self, cell: &str, service: &str) {
        let action = Action {
            kind: ActionKind::RestartPods,
            target: format!("{cell}/{service}"),
            params: vec![],
            reason: "rolling restart seen on the API".into(),
            needs_approval: false,
            expected_effect: String::new(),
            verify_within_secs: 0,
        };
        let _ = self.apply(&action);
    }

    /// Sets a provider's weight (percent), as the provider gateway reading its ConfigMap would.
    pub fn set_provider_weight(&mut self, provider: &str, weight: f64) {
        if let Some(p) = PROVIDERS.iter().position(|p| p.name == provider) {
            self.providers[p].weight = weight.max(0.0);
        }
    }

    /// Switches a feature flag (only `loyalty` exists).
    pub fn set_feature(&mut self, feature: &str, on: bool) {
        if feature == SERVICES[LOYALTY].name {
            self.loyalty_enabled = on;
        }
    }

    /// Whether every node of the cell is down.
    pub fn cell_down(&self, cell: usize) -> bool {
        self.nodes.iter().filter(|n| n.cell == cell).all(|n| !n.ready)
    }

    /// The topology a fixture of this wallet records.
    pub fn topology(&self) -> Topology {
        let weights = self.cell_weights();
        Topology {
            system: Some("wallet".into()),
            cells: self
                .cells
                .iter()
                .zip(&weights)
                .map(|(c, w)| CellInfo {
                    name: c.name.clone(),
                    zone: Some(ZONES[c.zone].into()),
                    weight: Some((w * 100.0).round() / 100.0),
                })
                .collect(),
            services: SERVICES
                .iter()
                .enumerate()
                .map(|(si, s)| ServiceInfo {
                    name: s.name.into(),
                    essential: Some(s.essential),
                    deployments: (0..self.cells.len())
                        .map(|c| DeploymentInfo {
                            cell: Some(self.cells[c].name.clone()),
                            name: s.name.into(),
                            namespace: Some(self.cells[c].name.clone()),
                            replicas: Some(self.dep(c, si).pods.len() as u32),
                            memory_limit_bytes: Some(s.memory_limit_bytes),
                            revisions: self.revision_infos(c, si),
                        })
                        .collect(),
                })
                .chain(std::iter::once(ServiceInfo {
                    name: DATABASE.into(),
                    essential: Some(true),
                    deployments: vec![],
                }))
                .collect(),
            external: PROVIDERS
                .iter()
                .zip(self.provider_weights())
                .map(|(p, w)| ExternalInfo {
                    name: p.name.into(),
                    kind: Some("payment-provider".into()),
                    weight: Some((w * 100.0).round() / 100.0),
                })
                .collect(),
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeInfo {
                    name: n.name.clone(),
                    zone: Some(ZONES[n.zone].into()),
                    cell: Some(self.cells[n.cell].name.clone()),
                })
                .collect(),
        }
    }

    fn activate(&mut self, effect: &FaultEffect) {
        match *effect {
            FaultEffect::MemoryLeak {
                cell,
                service,
                oom_after_secs,
            } => {
                let limit = SERVICES[service].memory_limit_bytes;
                let i = self.dep_index(cell, service);
                let highest = self.deployments[i].pods.iter().map(|p| p.memory).fold(0.0, f64::max);
                self.deployments[i].leak_bytes_per_sec = ((limit - highest) / oom_after_secs).max(0.0);
                self.deployments[i].leak_code = self.deployments[i].revisions.last().map(|r| r.code);
            }
            FaultEffect::ProviderErrors { provider, error_ratio } => self.providers[provider].error = error_ratio,
            FaultEffect::ZoneOutage { zone } => {
                for n in self.nodes.iter_mut().filter(|n| n.zone == zone) {
                    n.ready = false;
                }
            }
            FaultEffect::DbLatencyDrift { cell, secs_per_sec } => self.cells[cell].db_drift_per_sec = secs_per_sec,
            FaultEffect::PoisonPill { cell } => self.cells[cell].poison = true,
            FaultEffect::ServiceDown { service } => self.service_down[service] = true,
            FaultEffect::NodeMemoryLeak { node, fill_after_secs } => {
                let free = NODE_MEMORY_BYTES - NODE_SYSTEM_BYTES - self.node_pod_memory()[node];
                self.nodes[node].leak_per_sec = (free / fill_after_secs).max(0.0);
            }
        }
    }

    /// Advances one step and records its telemetry.
    // Cell and service indices address several parallel tables (deployments, weights, loads).
    #[allow(clippy::needless_range_loop)]
    pub fn step(&mut self) {
        let dt = self.cfg.step_secs;
        let dtf = dt as f64;
        self.now_secs += dt;
        let now = self.now_secs;
        let due: Vec<FaultEffect> = self
            .faults
            .iter()
            .filter(|f| f.at_secs > now - dt && f.at_secs <= now)
            .map(|f| f.effect.clone())
            .collect();
        for e in &due {
            self.activate(e);
        }
        let deploys: Vec<Deploy> = self
            .deploys
            .iter()
            .filter(|d| d.at_secs > now - dt && d.at_secs <= now)
            .copied()
            .collect();
        for d in deploys {
            let i = self.dep_index(d.cell, d.service);
            let code = self.deployments[i].revisions.last().map_or(1, |r| r.number + 1);
            self.roll_out(i, code);
        }
        // Load: diurnal (trough at 03:00 UTC, peak at 15:00), surges, slow noise.
        let hour = self.now().millis().rem_euclid(86_400_000) as f64 / 3_600_000.0;
        let diurnal = 1.0 + 0.45 * ((hour - 9.0) / 24.0 * 2.0 * std::f64::consts::PI).sin();
        let surge: f64 = self
            .surges
            .iter()
            .filter(|s| now > s.from_secs && now <= s.to_secs)
            .map(|s| s.factor)
            .product();
        self.load_noise = 0.9 * self.load_noise + 0.1 * 0.1 * self.load_rng.normal();
        let total_rps = self.cfg.base_rps * diurnal * surge * (1.0 + self.load_noise);
        let weights = self.cell_weights();
        for c in &mut self.cells {
            c.db_extra += c.db_drift_per_sec * dtf;
        }

        let mut step_payments = 0.0;
        let mut step_failed = 0.0;
        let mut lag_violation = false;
        for c in 0..self.cells.len() {
            let rps = total_rps * weights[c] / 100.0;
            let pay_rps = rps * PAYMENT_SHARE;
            let down = self.cell_down(c);
            self.recorder
                .edge(self.now(), &self.cells[c].name, rps * dtf, if down { rps * dtf } else { 0.0 });
            if down {
                step_payments += pay_rps * dtf;
                step_failed += pay_rps * dtf;
                for svc in 0..SERVICES.len() {
                    let i = self.dep_index(c, svc);
                    self.deployments[i].rps = 0.0;
                }
                continue;
            }
            let loyalty_rps = if self.loyalty_enabled { pay_rps } else { 0.0 };
            let consumer_rps = self.cells[c].event_rate;
            let loads = [rps, rps, rps, pay_rps, pay_rps, loyalty_rps, consumer_rps];
            // Own latency and error of every service of the cell.
            let mut own_lat = [0.0; 7];
            let mut own_err = [0.0; 7];
            for svc in 0..SERVICES.len() {
                let (lat, err) = self.serve(c, svc, loads[svc]);
                own_lat[svc] = lat;
                own_err[svc] = err;
            }
            // Database behind the ledger.
            let cell = &mut self.cells[c];
            cell.db_latency = (cell.db_latency_base + cell.db_extra) * (1.0 + 0.08 * self.rng.normal()).max(0.5);
            let db_lat = cell.db_latency;
            let db_err = ((db_lat - DB_TIMEOUT_SECS) / 0.5).clamp(0.0, 1.0);
            // Providers, weighted.
            let pw = self.provider_weights();
            let prov_err: f64 = self.providers.iter().zip(&pw).map(|(p, w)| p.error * w / 100.0).sum();
            let prov_lat: f64 = self.providers.iter().zip(&pw).map(|(p, w)| p.latency * w / 100.0).sum();
            let comb = |a: f64, b: f64| 1.0 - (1.0 - a) * (1.0 - b);
            let ledger = (own_lat[LEDGER] + db_lat.min(DB_TIMEOUT_SECS), comb(own_err[LEDGER], db_err));
            let pgw = (own_lat[PROVIDER_GATEWAY] + prov_lat, comb(own_err[PROVIDER_GATEWAY], prov_err));
            let payments = (own_lat[PAYMENTS] + pgw.0, comb(own_err[PAYMENTS], pgw.1));
            let loyalty = if self.loyalty_enabled {
                (own_lat[LOYALTY], own_err[LOYALTY])
            } else {
                (0.0, 0.0)
            };
            // A failing loyalty call fails half the payments (the other half degrade gracefully).
            let pay_route = (
                own_lat[WALLET_API] + ledger.0 + payments.0 + loyalty.0,
                comb(comb(comb(own_err[WALLET_API], ledger.1), payments.1), 0.5 * loyalty.1),
            );
            let bal_route = (own_lat[WALLET_API] + ledger.0, comb(own_err[WALLET_API], ledger.1));
            let wallet = (
                PAYMENT_SHARE * pay_route.0 + (1.0 - PAYMENT_SHARE) * bal_route.0,
                PAYMENT_SHARE * pay_route.1 + (1.0 - PAYMENT_SHARE) * bal_route.1,
            );
            let gateway = (own_lat[API_GATEWAY] + wallet.0, comb(own_err[API_GATEWAY], wallet.1));
            let pay_fail = comb(own_err[API_GATEWAY], pay_route.1);
            step_payments += pay_rps * dtf;
            step_failed += pay_rps * dtf * pay_fail;
            // Events: each successful payment publishes one; the consumer drains what it can.
            let produced = pay_rps * (1.0 - pay_fail);
            let consumer_cap =
                self.ready_pods(c, CONSUMER) as f64 * SERVICES[CONSUMER].capacity_rps_per_pod * self.cells[c].capacity_factor;
            let cell = &mut self.cells[c];
            let drain = if cell.poison {
                0.0
            } else {
                (cell.queue_depth / dtf + produced).min(consumer_cap)
            };
            cell.queue_depth = (cell.queue_depth + (produced - drain) * dtf).max(0.0);
            cell.queue_offset += drain * dtf;
            cell.event_rate = drain;
            if produced > 0.0 && cell.queue_depth / produced > SLO_MAX_LAG_SECS {
                lag_violation = true;
            }
            // Record per-deployment state (latency and error as callers see them).
            let seen = [
                gateway,
                wallet,
                ledger,
                payments,
                pgw,
                loyalty,
                (own_lat[CONSUMER], own_err[CONSUMER]),
            ];
            for svc in 0..SERVICES.len() {
                let i = self.dep_index(c, svc);
                let d = &mut self.deployments[i];
                d.rps = loads[svc];
                d.latency = seen[svc].0;
                d.error = seen[svc].1;
                d.own_error = own_err[svc];
            }
            let now_t = self.now();
            let cname = self.cells[c].name.clone();
            // Requests and latency histograms per deployment.
            for svc in 0..SERVICES.len() {
                let d = &self.deployments[self.dep_index(c, svc)];
                let n = d.rps * dtf;
                let fractions: Vec<f64> = BUCKETS.iter().map(|b| lognormal_cdf(*b, d.latency.max(1e-4), 0.5)).collect();
                self.recorder
                    .service_requests(now_t, &cname, SERVICES[svc].name, svc, n, d.error, d.latency, &fractions);
            }
            // Wallet-api routes.
            self.recorder.route_requests(
                now_t,
                &cname,
                rps * dtf * PAYMENT_SHARE,
                pay_route.1,
                rps * dtf * (1.0 - PAYMENT_SHARE),
                bal_route.1,
            );
            // Provider calls from the provider gateway.
            for (pi, p) in self.providers.iter().enumerate() {
                let calls = pay_rps * dtf * pw[pi] / 100.0;
                self.recorder.provider_requests(now_t, &cname, PROVIDERS[pi].name, calls, p.error);
            }
            let cell = &self.cells[c];
            self.recorder.database(now_t, &cname, cell.db_latency);
            self.recorder.queue(now_t, &cname, cell.queue_depth, cell.queue_offset);
        }
        // Pods: memory, cpu, restarts (payments lost to OOM kills count this step); nodes.
        step_failed += self.pods_step(dtf);
        let now_t = self.now();
        let pod_memory = self.node_pod_memory();
        for (i, n) in self.nodes.iter_mut().enumerate() {
            n.leaked = (n.leaked + n.leak_per_sec * dtf).min(NODE_MEMORY_BYTES - NODE_SYSTEM_BYTES);
            let active = (NODE_SYSTEM_BYTES + pod_memory[i] + n.leaked).min(NODE_MEMORY_BYTES);
            self.recorder.node(
                now_t,
                &n.name,
                ZONES[n.zone],
                &self.cells[n.cell].name,
                n.ready,
                active,
                NODE_MEMORY_BYTES,
            );
        }
        // Traces.
        let sampled = self.rng.poisson(self.cfg.traces_per_sec * dtf);
        for _ in 0..sampled {
            self.trace(dt);
        }
        self.recorder.end_step();
        self.outcome.payments += step_payments;
        self.outcome.failed_payments += step_failed.min(step_payments);
        self.outcome.failed_by_step.push((now, step_failed.min(step_payments)));
        if (step_payments > 0.0 && step_failed / step_payments > SLO_MAX_FAILED_RATIO) || lag_violation {
            self.outcome.slo_violation_secs += dtf;
            self.outcome.violating_steps.push(now);
        }
    }

    fn ready_pods(&self, cell: usize, svc: usize) -> usize {
        let now = self.now_secs;
        self.dep(cell, svc)
            .pods
            .iter()
            .filter(|p| p.unavailable_until <= now && self.nodes[p.node].ready)
            .count()
    }

    /// Own latency and error of a service under `rps` this step.
    fn serve(&mut self, cell: usize, svc: usize, rps: f64) -> (f64, f64) {
        let spec = SERVICES[svc];
        let ready = self.ready_pods(cell, svc);
        if self.service_down[svc] {
            return (2.0, 1.0); // calls time out after 2 s and fail
        }
        if ready == 0 {
            return (spec.base_latency_secs, if rps > 0.0 { 1.0 } else { 0.0 });
        }
        let cap = ready as f64 * spec.capacity_rps_per_pod * self.cells[cell].capacity_factor;
        let rho = rps / cap;
        // (rho²)² rather than powi(4): powi may round differently in debug and release builds.
        let rho2 = rho * rho;
        let queueing = 1.0 + rho2 * rho2 / (1.0 - rho.min(0.95));
        let lat = spec.base_latency_secs * self.cells[cell].latency_factor * queueing * (1.0 + 0.06 * self.rng.normal()).max(0.5);
        let mut err = 0.0005 * (1.0 + 0.3 * self.rng.normal()).max(0.0);
        if rho > 1.0 {
            err += 1.0 - 1.0 / rho;
        }
        (lat, err.min(1.0))
    }

    /// Advances every pod; returns the payments lost to OOM kills.
    /// The memory of the pods on each node, bytes (by node index).
    fn node_pod_memory(&self) -> Vec<f64> {
        let mut per_node = vec![0.0; self.nodes.len()];
        for p in self.deployments.iter().flat_map(|d| &d.pods) {
            per_node[p.node] += p.memory;
        }
        per_node
    }

    fn pods_step(&mut self, dtf: f64) -> f64 {
        let now = self.now_secs;
        let routine_p = if self.cfg.routine_restart_hours > 0.0 {
            dtf / (self.cfg.routine_restart_hours * 3600.0)
        } else {
            0.0
        };
        let mut oom_losses: Vec<(usize, f64)> = Vec::new();
        for di in 0..self.deployments.len() {
            let (cell, svc) = (self.deployments[di].cell, self.deployments[di].svc);
            let spec = SERVICES[svc];
            let ready = self.ready_pods(cell, svc).max(1) as f64;
            let per_pod_rps = self.deployments[di].rps / ready;
            // Staggered restarts requested by an action: one pod per interval.
            if !self.deployments[di].restart_queue.is_empty() && now >= self.deployments[di].next_restart_at {
                let name = self.deployments[di].restart_queue.remove(0);
                if let Some(p) = self.deployments[di].pods.iter_mut().find(|p| p.name == name) {
                    p.leaked = 0.0;
                    p.restarts += 1;
                    p.unavailable_until = now + RESTART_SECS;
                }
                self.deployments[di].next_restart_at = now + self.deployments[di].restart_interval_secs;
            }
            // A rollout replaces one pod per interval with one of the new revision: a fresh heap,
            // not ready for a moment. (The simulator keeps the pod's name, and with it its
            // series; a real rollout names new pods.)
            if !self.deployments[di].rollout_queue.is_empty() && now >= self.deployments[di].next_rollout_at {
                let name = self.deployments[di].rollout_queue.remove(0);
                if let Some(p) = self.deployments[di].pods.iter_mut().find(|p| p.name == name) {
                    p.leaked = 0.0;
                    p.unavailable_until = now + RESTART_SECS;
                }
                self.deployments[di].next_rollout_at = now + ROLLOUT_INTERVAL_SECS;
            }
            let leak = self.deployments[di].leak_bytes_per_sec;
            let cell_down = self.cell_down(cell);
            for p in &mut self.deployments[di].pods {
                if cell_down || !self.nodes[p.node].ready {
                    continue;
                }
                if routine_p > 0.0 && self.rng.uniform() < routine_p {
                    p.leaked = 0.0;
                    p.restarts += 1;
                    p.unavailable_until = now + RESTART_SECS;
                }
                p.mem_noise = 0.95 * p.mem_noise + 0.05 * 6.0 * MIB * self.rng.normal() * 4.0;
                let running = p.unavailable_until <= now;
                if running {
                    p.leaked += leak * dtf;
                }
                p.memory = (spec.memory_base_bytes + 0.5 * MIB * per_pod_rps + p.mem_noise + p.leaked).max(32.0 * MIB);
                if p.memory >= spec.memory_limit_bytes {
                    // OOM kill: the container restarts with a fresh heap; in-flight requests are lost.
                    p.restarts += 1;
                    p.leaked = 0.0;
                    p.unavailable_until = now + RESTART_SECS;
                    p.memory = spec.memory_base_bytes;
                    self.outcome.oom_kills += 1;
                    oom_losses.push((di, per_pod_rps * OOM_LOST_SECS));
                }
                let cpu = if running { 0.02 + 0.004 * per_pod_rps } else { 0.0 };
                p.cpu_secs += cpu * dtf * (1.0 + 0.05 * self.rng.normal()).max(0.0);
            }
        }
        // Requests lost to OOM kills fail payments when the service is on the payment path.
        let mut lost_payments = 0.0;
        for (di, lost) in oom_losses {
            let svc = self.deployments[di].svc;
            if matches!(svc, API_GATEWAY | WALLET_API | LEDGER | PAYMENTS | PROVIDER_GATEWAY) {
                let share = if matches!(svc, PAYMENTS | PROVIDER_GATEWAY) {
                    1.0
                } else {
                    PAYMENT_SHARE
                };
                lost_payments += lost * share;
                self.recorder
                    .extra_errors(self.now(), &self.cells[self.deployments[di].cell].name, SERVICES[svc].name, lost);
            }
        }
        let now_t = self.now();
        for d in &self.deployments {
            let cname = &self.cells[d.cell].name;
            for p in &d.pods {
                let node = &self.nodes[p.node];
                if !node.ready {
                    continue; // no kubelet, no metrics
                }
                self.recorder.pod(
                    now_t,
                    cname,
                    SERVICES[d.svc].name,
                    &p.name,
                    &node.name,
                    p.memory,
                    SERVICES[d.svc].memory_limit_bytes,
                    p.cpu_secs,
                    p.restarts,
                );
            }
        }
        lost_payments
    }

    fn trace(&mut self, dt: i64) {
        let weights = self.cell_weights();
        let c = self.rng.weighted(&weights);
        let offset_ns = (self.rng.uniform() * dt as f64 * 1e9) as i64;
        let start_ns = self.cfg.start.plus_secs(self.now_secs - dt).millis() * 1_000_000 + offset_ns;
        let is_payment = self.rng.uniform() < PAYMENT_SHARE;
        crate::traces::emit(self, c, start_ns, is_payment);
    }

    pub(crate) fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Carries out one of cellwarden's actions. Returns what changed, or why nothing did.
    pub fn apply(&mut self, action: &Action) -> Result<String, String> {
        let t = self.now_secs;
        let result = match action.kind {
            ActionKind::Notify => return Ok("notified".into()),
            ActionKind::Scale => {
                let (c, s) = self.parse_deployment(&action.target)?;
                let i = self.dep_index(c, s);
                if self.deployments[i].pods.len() >= 10 {
                    return Err(format!("{} already has 10 replicas", action.target));
                }
                let mut rng = Rng::derive(self.cfg.seed, &format!("scale-{t}-{}", action.target));
                add_pod(&mut self.deployments[i], c, &mut rng);
                let pod = self.deployments[i].pods.last_mut().expect("just added");
                pod.unavailable_until = t + RESTART_SECS;
                Ok(format!("scaled {} to {} replicas", action.target, self.deployments[i].pods.len()))
            }
            ActionKind::RestartPods => {
                let (c, s) = self.parse_deployment(&action.target)?;
                let i = self.dep_index(c, s);
                let interval: i64 = action
                    .params
                    .iter()
                    .find(|(k, _)| k == "interval_secs")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(60);
                let d = &mut self.deployments[i];
                d.restart_queue = d.pods.iter().map(|p| p.name.clone()).collect();
                d.restart_interval_secs = interval;
                d.next_restart_at = t;
                // A restarted consumer takes the poison-pill message again and stalls on it.
                Ok(format!(
                    "restarting the {} pods of {} one every {interval} s",
                    d.pods.len(),
                    action.target
                ))
            }
            ActionKind::Rollback => {
                let (c, s) = self.parse_deployment(&action.target)?;
                let i = self.dep_index(c, s);
                let current = *self.deployments[i].revisions.last().expect("a deployment has a revision");
                let wanted = match action.params.iter().find(|(k, _)| k == "revision") {
                    Some((_, v)) => v.parse::<u64>().map_err(|_| format!("revision {v:?} is not a number"))?,
                    None => current.number.saturating_sub(1),
                };
                let Some(to) = self.deployments[i].revisions.iter().find(|r| r.number == wanted).copied() else {
                    return Err(format!("{} has no revision {wanted}", action.target));
                };
                if to.number >= current.number {
                    return Err(format!(
                        "{} is at revision {}: nothing earlier than it to go back to",
                        action.target, current.number
                    ));
                }
                let number = self.roll_out(i, to.code);
                let d = &mut self.deployments[i];
                // The leak came with its code: other code does not leak.
                if d.leak_code.is_some_and(|code| code != to.code) {
                    d.leak_bytes_per_sec = 0.0;
                }
                Ok(format!(
                    "rolled {} back to revision {} (as revision {number}), its pods replaced one a minute",
                    action.target, to.number
                ))
            }
            ActionKind::Reroute | ActionKind::Cordon => {
                let c = self
                    .cells
                    .iter()
                    .position(|x| x.name == action.target)
                    .ok_or_else(|| format!("no cell {}", action.target))?;
                let others_up = (0..self.cells.len())
                    .filter(|&o| o != c && !self.cells[o].cordoned && self.cells[o].weight > 0.0)
                    .count();
                if others_up == 0 {
                    return Err(format!("{} is the last cell serving traffic", action.target));
                }
                if self.cells[c].weight == 0.0 && (action.kind == ActionKind::Reroute || self.cells[c].cordoned) {
                    return Ok(format!("no change: {} already takes no traffic", action.target));
                }
                self.cells[c].weight = 0.0;
                if action.kind == ActionKind::Cordon {
                    self.cells[c].cordoned = true;
                    for n in self.nodes.iter_mut().filter(|n| n.cell == c) {
                        n.unschedulable = true;
                    }
                    Ok(format!("cordoned {} (traffic drained, nodes unschedulable)", action.target))
                } else {
                    Ok(format!("rerouted traffic away from {}", action.target))
                }
            }
            ActionKind::FailoverProvider => {
                let p = PROVIDERS
                    .iter()
                    .position(|p| p.name == action.target)
                    .ok_or_else(|| format!("no provider {}", action.target))?;
                if self.providers.iter().enumerate().all(|(i, x)| i == p || x.weight <= 0.0) {
                    return Err(format!("{} is the last provider with traffic", action.target));
                }
                if self.providers[p].weight == 0.0 {
                    return Ok(format!("no change: {} already takes no payments", action.target));
                }
                self.providers[p].weight = 0.0;
                Ok(format!("moved payments off {}", action.target))
            }
            ActionKind::CircuitBreak => {
                let feature = action
                    .params
                    .iter()
                    .find(|(k, _)| k == "feature")
                    .map(|(_, v)| v.as_str())
                    .unwrap_or(action.target.as_str());
                if feature != SERVICES[LOYALTY].name {
                    return Err(format!("no feature flag for {feature}"));
                }
                if !self.loyalty_enabled {
                    return Ok("no change: the loyalty feature is already off".into());
                }
                self.loyalty_enabled = false;
                Ok("switched the loyalty feature off".into())
            }
        };
        if let Ok(what) = result.as_ref() {
            if !what.starts_with("no change") {
                self.outcome.actions.push((t, what.clone()));
            }
        }
        result
    }

    fn parse_deployment(&self, target: &str) -> Result<(usize, usize), String> {
        let (cell, svc) = target.split_once('/').ok_or_else(|| format!("{target} is not <cell>/<service>"))?;
        let c = self
            .cells
            .iter()
            .position(|x| x.name == cell)
            .ok_or_else(|| format!("no cell {cell}"))?;
        let s = service_index(svc).ok_or_else(|| format!("no service {svc}"))?;
        Ok((c, s))
    }
}

fn add_pod(d: &mut Deployment, cell: usize, rng: &mut Rng) {
    let spec = SERVICES[d.svc];
    let suffix: String = (0..5).map(|_| (b'a' + (rng.next_u64() % 26) as u8) as char).collect();
    let node = cell * NODES_PER_CELL + (d.next_pod as usize % NODES_PER_CELL);
    d.pods.push(Pod {
        name: format!("{}-{}", spec.name, suffix),
        node,
        mem_noise: 0.0,
        leaked: 0.0,
        cpu_secs: 0.0,
        restarts: 0,
        unavailable_until: 0,
        memory: spec.memory_base_bytes,
    });
    d.next_pod += 1;
}
