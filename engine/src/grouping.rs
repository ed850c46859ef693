//! Which incident a new symptom belongs to, and when an incident's symptoms are back to normal:
//! the pure rules behind "one fault, one incident" (issue #13).
//!
//! - [`belongs`]: whether a new alarm is about an incident's trouble, and why ([`JoinReason`]);
//!   the pipeline joins it to an active incident, or reopens a resolved one, instead of opening
//!   another.
//! - [`Symptoms`]: the series an incident watches, each with the baseline it left, and when each
//!   was last out of it; an incident resolves once all have been calm for [`RESOLVE_HOLD_SECS`].

use cellwarden_detector::alarms::absolute_floor;
use cellwarden_models::topology::Topology;
use cellwarden_models::{Anomaly, Entity, Incident, IncidentClass, SeriesKey, Signal, Timestamp};
use std::collections::{BTreeSet, HashMap};

/// How long every symptom of an incident must stay inside its baseline before it resolves.
/// Why 10 minutes: 20 scrapes at 30 s (40 at 15 s) — longer than a flap or a restart's blip,
/// short enough that a person is told soon after the platform is healthy again.
pub const RESOLVE_HOLD_SECS: i64 = 600;
/// How long after it resolved a symptom of the same fault reopens an incident rather than
/// opening a new one. Why an hour: a leak that a restart only reset comes back within about the
/// time it took to grow the first time (tens of minutes on the bundled scenarios); a fault of
/// the same entity after an hour of health is more likely a new one.
pub const REOPEN_SECS: i64 = 3600;
/// Share of an anomaly's departure from its baseline that still counts as out of it: a series
/// back within 30% of the way from its baseline to the anomalous level is back to normal.
/// Why 30%: the gap a verified fix must close is 50% (remediator's verify); resolution asks for
/// more than that, but not a return to the exact baseline a noisy series never sits on.
const BACK_INSIDE_SHARE: f64 = 0.3;

/// How many of an incident's ranked candidates an alarm may name to join it: the trouble's
/// propagation path as the ranker sees it. Why 3: the bundled scorecards put the true cause in
/// the top 3 of nearly every incident, and places 4–5 are mostly weak trace evidence.
pub const JOIN_CANDIDATES: usize = 3;
/// How long after an incident opened an alarm about another service of the same cell still
/// joins it. Why 10 minutes: a cell's fault reaches its other services within a few scrapes
/// (its callers' errors and latency); an alarm in that cell much later is more likely new.
pub const CELL_JOIN_SECS: i64 = 600;
/// Fewest cells a capacity incident's load anomalies must span for load and latency alarms to
/// join it: a surge reaches every cell's front door; one service's load rise is no surge.
pub const SURGE_MIN_CELLS: usize = 2;
/// Share of the level at which a memory forecast alarmed that memory must fall under to count
/// as freed (a restart, or an OOM kill): a leak's growth resumes from far lower. Why 70%: the
/// bundled leaks alarm at 75–95% of the limit and restart to 25–35%.
const FREED_SHARE: f64 = 0.7;

/// Why an alarm belongs to an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinReason {
    /// It names an entity one of the incident's symptoms is about.
    SameEntity(Entity),
    /// It names one of the incident's top ranked candidates (its propagation path).
    Candidate(Entity),
    /// It is about another service of the incident's cell, soon after it opened.
    SameCell(String),
    /// It is about the same service in another cell, soon after it opened: one fault seen in
    /// several cells (a shared dependency, or a release rolled out to every cell).
    SameService(String),
    /// Load or latency, while a platform-wide capacity incident is under way.
    Surge,
}

impl JoinReason {
    /// The reason in a timeline sentence: "… joined it: {why}".
    pub fn describe(&self) -> String {
        match self {
            JoinReason::SameEntity(e) => format!("it is about {} again", e.name),
            JoinReason::Candidate(e) => format!("it is about {}, one of its ranked candidates", e.name),
            JoinReason::SameCell(c) => format!(
                "it is about another service of {c}, within {} min of its opening",
                CELL_JOIN_SECS / 60
            ),
            JoinReason::SameService(s) => format!(
                "{s} is in trouble in another cell too, within {} min of its opening",
                CELL_JOIN_SECS / 60
            ),
            JoinReason::Surge => "load and latency while a platform-wide surge is under way".into(),
        }
    }
}

/// Whether two entities name the same thing (a service without a cell matches it in any cell).
pub(crate) fn same(a: &Entity, b: &Entity) -> bool {
    a == b || a.matches(b) || b.matches(a)
}

/// Whether an alarm of `class` with `anomalies` raised at `t` is about the trouble of
/// `incident`, and why. `active`: the incident is not resolved (only the same-entity rule
/// reopens a resolved one; the others join active incidents only). Rules, first match wins:
/// the same entity as one of its symptoms; one of its top [`JOIN_CANDIDATES`] candidates; another
/// service of its cell within [`CELL_JOIN_SECS`] of its opening; load or latency only while a
/// capacity incident spanning [`SURGE_MIN_CELLS`] cells is active. An alarm that names no entity
/// joins nothing (it opens its own, platform-wide incident).
pub fn belongs(
    incident: &Incident,
    opening: &[(Entity, Signal)],
    active: bool,
    anomalies: &[Anomaly],
    t: Timestamp,
    topology: Option<&Topology>,
) -> Option<JoinReason> {
    let named: Vec<&Entity> = anomalies.iter().filter_map(|a| a.entity.as_ref()).collect();
    // The same symptom again: an entity and signal its opening evidence was about. (Any entity
    // of any joined symptom would let a noisy platform's incidents snowball: on Train Ticket
    // that lost more than half the faults to incidents already open about something else.)
    let hit = anomalies
        .iter()
        .filter_map(|a| a.entity.as_ref().map(|e| (e, a.signal)))
        .find(|(e, sig)| opening.iter().any(|(s, g)| g == sig && same(e, s)))
        .map(|(e, _)| e);
    if let Some(e) = hit {
        return Some(JoinReason::SameEntity(e.clone()));
    }
    if !active {
        return None;
    }
    if incident.blames_root_cause() {
        let top: Vec<&Entity> = incident.candidates.iter().take(JOIN_CANDIDATES).map(|c| &c.entity).collect();
        if let Some(e) = named.iter().find(|e| top.iter().any(|c| same(e, c))) {
            return Some(JoinReason::Candidate((*e).clone()));
        }
    }
    if t.secs_since(incident.opened_at) <= CELL_JOIN_SECS as f64 {
        let service_in_cells = |e: &Entity| e.kind == cellwarden_models::EntityKind::Service && e.cell().is_some();
        let shared = named.iter().filter(|e| service_in_cells(e)).find(|e| {
            opening
                .iter()
                .any(|(o, _)| service_in_cells(o) && o.cell() != e.cell() && o.service_name() == e.service_name())
        });
        if let Some(e) = shared {
            return Some(JoinReason::SameService(e.service_name().unwrap_or(&e.name).to_string()));
        }
        // A service's cell is in its name; a node's, in the topology.
        let cell_of = |e: &'_ Entity| -> Option<String> {
            match e.kind {
                cellwarden_models::EntityKind::Node => topology.and_then(|t| t.cell_of_node(&e.name)).map(str::to_string),
                _ => e.cell().map(str::to_string),
            }
        };
        // Every symptom so far counts here (only within the window after opening, so a noisy
        // cell cannot keep pulling alarms in).
        let cells: BTreeSet<String> = incident
            .anomalies
            .iter()
            .filter_map(|a| a.entity.as_ref())
            .chain(incident.candidates.first().map(|c| &c.entity))
            .filter_map(cell_of)
            .collect();
        if let Some(c) = named.iter().filter_map(|e| cell_of(e)).find(|c| cells.contains(c)) {
            return Some(JoinReason::SameCell(c));
        }
    }
    if incident.class == IncidentClass::Capacity {
        let load = |s: Signal| matches!(s, Signal::RequestRate | Signal::Cpu);
        let cells: BTreeSet<&str> = incident
            .anomalies
            .iter()
            .filter(|a| load(a.signal))
            .filter_map(|a| a.entity.as_ref().and_then(|e| e.cell()))
            .collect();
        let only_load_or_latency = anomalies
            .iter()
            .all(|a| load(a.signal) || matches!(a.signal, Signal::Latency | Signal::ClientLatency));
        if cells.len() >= SURGE_MIN_CELLS && only_load_or_latency {
            return Some(JoinReason::Surge);
        }
    }
    None
}

/// One series an incident watches: the baseline it left and how far out is still trouble.
#[derive(Debug, Clone, PartialEq)]
struct Symptom {
    signal: Signal,
    /// What it is about: an anomaly or warning about the same entity and signal (another pod
    /// of the same service, say) is trouble for it too.
    entity: Option<Entity>,
    expected: f64,
    /// Departure from `expected` (in the harmful direction) that still counts as out.
    band: f64,
    /// Whether values can be judged against the band (false for forecasts, whose `expected` is
    /// the limit, and for alerts' placeholder levels: only their anomalies count).
    judged_by_value: bool,
    last_out: Timestamp,
}

/// The symptoms of one incident.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Symptoms {
    by_series: HashMap<SeriesKey, Symptom>,
    /// The latest time any symptom was out of its baseline (or an anomaly touched it).
    pub last_trouble: Timestamp,
}

impl Symptoms {
    /// Watches the series of `anomalies` (a series already watched keeps its first baseline).
    pub fn add(&mut self, anomalies: &[Anomaly]) {
        for a in anomalies {
            self.last_trouble = self.last_trouble.max(a.t);
            let forecast = a.detector == "forecast";
            let judged_by_value =
                a.series.metric != cellwarden_models::incident::ALERT_SERIES_METRIC && a.observed.is_finite() && a.expected.is_finite();
            // A forecast's `expected` is the limit: its symptom is out until memory is freed.
            let (expected, band) = if forecast {
                (FREED_SHARE * a.observed, 0.0)
            } else {
                let departure = (a.observed - a.expected).abs();
                (a.expected, (BACK_INSIDE_SHARE * departure).max(absolute_floor(a.signal)))
            };
            self.by_series.entry(a.series.clone()).or_insert(Symptom {
                signal: a.signal,
                entity: a.entity.clone(),
                expected,
                band,
                judged_by_value,
                last_out: a.t,
            });
        }
    }

    pub fn watches(&self, series: &SeriesKey) -> bool {
        self.by_series.contains_key(series)
    }

    pub fn series(&self) -> impl Iterator<Item = &SeriesKey> {
        self.by_series.keys()
    }

    /// A point of a watched series: out of its baseline counts as trouble.
    pub fn observe(&mut self, series: &SeriesKey, t: Timestamp, value: f64) {
        let Some(s) = self.by_series.get_mut(series) else { return };
        if !s.judged_by_value || !value.is_finite() {
            return;
        }
        let out = match s.signal {
            // A drop of traffic hurts as much as a surge: either side is out.
            Signal::RequestRate => (value - s.expected).abs() > s.band,
            _ => value - s.expected > s.band,
        };
        if out {
            s.last_out = s.last_out.max(t);
            self.last_trouble = self.last_trouble.max(t);
        }
    }

    /// An anomaly (or warning) on a watched series at `t`: trouble, whatever its value.
    pub fn trouble(&mut self, series: &SeriesKey, t: Timestamp) {
        if let Some(s) = self.by_series.get_mut(series) {
            s.last_out = s.last_out.max(t);
            self.last_trouble = self.last_trouble.max(t);
        }
    }

    /// An anomaly or warning about `entity`'s `signal` on a series it does not watch (another
    /// pod of the same service): trouble for the symptoms about the same entity and signal.
    pub fn trouble_about(&mut self, entity: &Entity, signal: Signal, t: Timestamp) {
        let mut any = false;
        for s in self.by_series.values_mut() {
            if s.signal == signal && s.entity.as_ref().is_some_and(|e| same(e, entity)) {
                s.last_out = s.last_out.max(t);
                any = true;
            }
        }
        if any {
            self.last_trouble = self.last_trouble.max(t);
        }
    }

    /// Whether every symptom has been calm for [`RESOLVE_HOLD_SECS`] at `now`.
    pub fn calm(&self, now: Timestamp) -> bool {
        now.secs_since(self.last_trouble) >= RESOLVE_HOLD_SECS as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellwarden_models::Entity;

    fn at(secs: i64) -> Timestamp {
        Timestamp(secs * 1000)
    }

    fn anomaly(entity: Option<Entity>, metric: &str, signal: Signal, observed: f64, expected: f64, secs: i64) -> Anomaly {
        Anomaly {
            t: at(secs),
            series: SeriesKey::new(metric, entity.iter().map(|e| ("entity".to_string(), e.name.clone()))),
            signal,
            entity,
            score: 0.9,
            observed,
            expected,
            detector: "robust_z".into(),
            explanation: String::new(),
        }
    }

    fn svc(cell: &str, name: &str) -> Option<Entity> {
        Some(Entity::service(Some(cell), name))
    }

    #[test]
    fn symptoms_resolve_after_the_hold_once_back_inside_their_baseline() {
        let mut sy = Symptoms::default();
        let a = anomaly(svc("cell-2", "api"), "lat", Signal::Latency, 1.0, 0.1, 100);
        let key = a.series.clone();
        sy.add(&[a]);
        // 0.5 s is still more than 30% of the way from 0.1 to 1.0: trouble.
        sy.observe(&key, at(200), 0.5);
        assert!(!sy.calm(at(200 + RESOLVE_HOLD_SECS - 1)));
        // Back near the baseline from 230 s on.
        for secs in (230..2000).step_by(30) {
            sy.observe(&key, at(secs), 0.12);
        }
        assert!(sy.calm(at(200 + RESOLVE_HOLD_SECS)));
        // An anomaly on it later is trouble again.
        sy.trouble(&key, at(2000));
        assert!(!sy.calm(at(2000 + RESOLVE_HOLD_SECS - 1)));
        assert!(sy.calm(at(2000 + RESOLVE_HOLD_SECS)));
        // Points of series it does not watch change nothing.
        sy.observe(&SeriesKey::new("other", []), at(2700), 99.0);
        assert!(sy.calm(at(2000 + RESOLVE_HOLD_SECS)));
    }

    #[test]
    fn a_forecast_symptom_stays_out_until_memory_is_freed() {
        let mut sy = Symptoms::default();
        let mut a = anomaly(svc("cell-2", "ledger"), "mem", Signal::Memory, 4e8, 5.12e8, 100);
        a.detector = "forecast".into();
        let key = a.series.clone();
        sy.add(&[a]);
        // Still growing towards the limit: trouble.
        sy.observe(&key, at(500), 4.5e8);
        assert!(!sy.calm(at(500 + RESOLVE_HOLD_SECS - 1)));
        // A restart frees it (under 70% of 400 MB); calm after the hold.
        sy.observe(&key, at(530), 1.2e8);
        assert!(sy.calm(at(500 + RESOLVE_HOLD_SECS)));
        // A warning about another pod of the same service and signal is trouble again.
        sy.trouble_about(&Entity::service(Some("cell-2"), "ledger"), Signal::Memory, at(1200));
        assert!(!sy.calm(at(1200 + RESOLVE_HOLD_SECS - 1)));
        // About another service, or another signal, it is not.
        sy.trouble_about(&Entity::service(Some("cell-2"), "api"), Signal::Memory, at(2000));
        sy.trouble_about(&Entity::service(Some("cell-2"), "ledger"), Signal::Cpu, at(2000));
        assert!(sy.calm(at(1200 + RESOLVE_HOLD_SECS)));
    }

    fn incident(class: IncidentClass, anomalies: Vec<Anomaly>, top: &[Entity]) -> (Incident, Vec<(Entity, Signal)>) {
        let opening = anomalies.iter().filter_map(|a| a.entity.clone().map(|e| (e, a.signal))).collect();
        let inc = Incident {
            id: "inc-1".into(),
            opened_at: at(100),
            ranked_at: at(100),
            class,
            anomalies,
            candidates: top
                .iter()
                .map(|e| cellwarden_models::Candidate {
                    entity: e.clone(),
                    class: cellwarden_models::CauseClass::Internal,
                    score: 0.7,
                    evidence: vec![],
                })
                .collect(),
            alerts: vec![],
        };
        (inc, opening)
    }

    #[test]
    fn the_same_symptom_and_the_propagation_path_join_and_an_unrelated_fault_elsewhere_does_not() {
        let ledger = Entity::service(Some("cell-2"), "ledger");
        let (inc, opening) = incident(
            IncidentClass::Fault,
            vec![anomaly(svc("cell-2", "ledger"), "err", Signal::ErrorRatio, 0.3, 0.0, 100)],
            &[ledger.clone(), Entity::service(Some("cell-2"), "ledger-db")],
        );
        // The same entity and signal, much later: the same trouble (also once resolved).
        let again = [anomaly(svc("cell-2", "ledger"), "err2", Signal::ErrorRatio, 0.4, 0.0, 3000)];
        assert_eq!(
            belongs(&inc, &opening, true, &again, at(3000), None),
            Some(JoinReason::SameEntity(ledger.clone()))
        );
        assert_eq!(
            belongs(&inc, &opening, false, &again, at(3000), None),
            Some(JoinReason::SameEntity(ledger))
        );
        // Its database, on the ranked candidates: the propagation path, while active only.
        let db = [anomaly(svc("cell-2", "ledger-db"), "lat", Signal::Latency, 0.4, 0.05, 400)];
        assert!(matches!(
            belongs(&inc, &opening, true, &db, at(400), None),
            Some(JoinReason::Candidate(_))
        ));
        assert_eq!(belongs(&inc, &opening, false, &db, at(400), None), None);
        // Another service of cell-2 soon after: the same cell; much later it is news.
        let api = [anomaly(svc("cell-2", "api"), "lat", Signal::Latency, 0.4, 0.05, 300)];
        assert_eq!(
            belongs(&inc, &opening, true, &api, at(300), None),
            Some(JoinReason::SameCell("cell-2".into()))
        );
        assert_eq!(belongs(&inc, &opening, true, &api, at(100 + CELL_JOIN_SECS + 1), None), None);
        // The same service in another cell soon after: one fault seen in two cells.
        let other_cell = [anomaly(svc("cell-3", "ledger"), "err", Signal::ErrorRatio, 0.3, 0.0, 300)];
        assert_eq!(
            belongs(&inc, &opening, true, &other_cell, at(300), None),
            Some(JoinReason::SameService("ledger".into()))
        );
        // A fault of another cell's service, or of a provider: its own incident.
        let elsewhere = [anomaly(svc("cell-4", "loyalty"), "err", Signal::ErrorRatio, 0.5, 0.0, 300)];
        assert_eq!(belongs(&inc, &opening, true, &elsewhere, at(300), None), None);
        let provider = [anomaly(
            Some(Entity::new(cellwarden_models::EntityKind::Provider, "provider-a")),
            "err",
            Signal::ErrorRatio,
            0.5,
            0.0,
            300,
        )];
        assert_eq!(belongs(&inc, &opening, true, &provider, at(300), None), None);
        // The same entity with another signal is not the same symptom once the cell window passed.
        let cpu = [anomaly(svc("cell-2", "ledger"), "cpu", Signal::Cpu, 0.9, 0.1, 3000)];
        assert_eq!(belongs(&inc, &opening, false, &cpu, at(3000), None), None);
    }

    #[test]
    fn load_and_latency_join_a_platform_wide_surge_but_errors_do_not() {
        let (inc, opening) = incident(
            IncidentClass::Capacity,
            vec![
                anomaly(svc("cell-1", "gateway"), "rps", Signal::RequestRate, 90.0, 40.0, 100),
                anomaly(svc("cell-3", "gateway"), "rps", Signal::RequestRate, 90.0, 40.0, 100),
            ],
            &[],
        );
        let latency = [anomaly(svc("cell-4", "wallet-api"), "lat", Signal::Latency, 0.33, 0.16, 900)];
        assert_eq!(belongs(&inc, &opening, true, &latency, at(900), None), Some(JoinReason::Surge));
        let drop = [anomaly(svc("cell-2", "gateway"), "rps", Signal::RequestRate, 20.0, 80.0, 1800)];
        assert_eq!(belongs(&inc, &opening, true, &drop, at(1800), None), Some(JoinReason::Surge));
        let errors = [anomaly(svc("cell-4", "wallet-api"), "err", Signal::ErrorRatio, 0.2, 0.0, 900)];
        assert_eq!(belongs(&inc, &opening, true, &errors, at(900), None), None);
        // One cell's load rise is no surge.
        let (one, opening1) = incident(
            IncidentClass::Capacity,
            vec![anomaly(svc("cell-1", "gateway"), "rps", Signal::RequestRate, 90.0, 40.0, 100)],
            &[],
        );
        assert_eq!(belongs(&one, &opening1, true, &latency, at(900), None), None);
    }

    #[test]
    fn a_node_of_the_incidents_cell_joins_it_through_the_topology() {
        let (inc, opening) = incident(
            IncidentClass::Fault,
            vec![anomaly(
                Some(Entity::new(cellwarden_models::EntityKind::Cell, "cell-2")),
                "err",
                Signal::ErrorRatio,
                0.5,
                0.0,
                100,
            )],
            &[Entity::new(cellwarden_models::EntityKind::Zone, "zone-b")],
        );
        let node = [anomaly(
            Some(Entity::new(cellwarden_models::EntityKind::Node, "node-2-2")),
            "err",
            Signal::ErrorRatio,
            0.5,
            0.0,
            130,
        )];
        assert_eq!(
            belongs(&inc, &opening, true, &node, at(130), None),
            None,
            "without a topology a node has no cell"
        );
        let topology = Topology {
            nodes: vec![cellwarden_models::topology::NodeInfo {
                name: "node-2-2".into(),
                zone: Some("zone-b".into()),
                cell: Some("cell-2".into()),
            }],
            ..Topology::default()
        };
        assert_eq!(
            belongs(&inc, &opening, true, &node, at(130), Some(&topology)),
            Some(JoinReason::SameCell("cell-2".into()))
        );
    }
}
