//! The offline pipeline: a fixture in memory → signals → streaming detector → incidents ranked and
//! planned → a report. The same stages the daemon runs live, with time taken from the telemetry.
//!
//! An incident is ranked when it opens, and ranked again [`RERANK_AFTER_SECS`] after that, each
//! time on the telemetry up to that moment only (its `ranked_at`): the streaming loop runs a due
//! re-rank before it feeds the first point after it. A re-rank keeps the incident's id, opening
//! time, anomalies and plan (the plan is decided once, at opening), and notes its new top
//! candidate on the timeline.
//!
//! One fault, one incident ([`crate::grouping::belongs`]): a detector alarm about an active
//! incident's opening symptom (same entity and signal), one of its top candidates, its cell soon
//! after opening, or load during a platform-wide surge joins it (and ranks it again); when a
//! verified fix had been carried out, the trouble back escalates it ("the fix did not hold"),
//! also within [`REOPEN_SECS`] after it resolved — never deciding an action it already decided. An incident resolves once every symptom has
//! been back inside its baseline for [`RESOLVE_HOLD_SECS`]. What happened comes back as
//! [`EngineEvent`]s, which the daemon, replay and the simulator consume alike.

use crate::grouping::{self, JoinReason, Symptoms};
pub use crate::grouping::{REOPEN_SECS, RESOLVE_HOLD_SECS};
use crate::policy::{self, CellView, ClusterSnapshot, ConfigLimits, PastAction};
use crate::policy::{CellState, PolicySpec};
use crate::rules;
use cellwarden_detector::alarms::{Detector, DetectorEvent, DetectorParams};
use cellwarden_detector::graph;
use cellwarden_detector::rca::{self, RcaInput, RcaParams};
use cellwarden_detector::signals::{self, SignalSeries};
use cellwarden_models::fixture::Fixture;
use cellwarden_models::graph::ServiceGraph;
use cellwarden_models::report::Ranking;
use cellwarden_models::report::{IncidentReport, Report, SeriesSnippet, TimelineEntry, REPORT_SCHEMA_VERSION};
use cellwarden_models::topology::Topology;
use cellwarden_models::{
    ActionKind, AlertNote, Anomaly, Candidate, Entity, Family, Incident, IncidentClass, Plan, SeriesKey, Signal, Span, Timestamp, Warning,
};
use cellwarden_models::{Decision, Notice, NoticeKind, Phase};
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

/// How many candidates an incident keeps.
pub const TOP_K: usize = 5;
/// Seconds after an incident opens at which it is ranked again, each time on the telemetry up to
/// then. Why: an alarm opens within seconds of the first anomalies (1–40 s after the fault's start
/// on Train Ticket), when few spans of the trouble have ended and few metric points follow its
/// onset, so the ranking at opening sees little of it. A minute later a scrape or two and about a
/// minute of finished requests are in; three minutes covers the first minutes of the trouble,
/// about what a ranker at the true start is shown (a fault's first 3–5 minutes). Later rankings
/// would increasingly see the effects of the plan's own actions (and of whatever happens next),
/// so re-ranking stops there. One setting for every incident.
pub const RERANK_AFTER_SECS: [i64; 2] = [60, 180];
/// How long after an incident opened a firing Alertmanager alert about the same cell (or entity)
/// still joins it rather than opening an incident of its own. Why 30 minutes: alert rules wait
/// their `for:` (commonly 5–15 minutes) and Alertmanager its `group_wait`/`group_interval` before
/// a webhook goes out, so an alert about the trouble an incident is about arrives well after it
/// opened; trouble twice that far apart is more likely a second fault.
pub const ALERT_JOIN_SECS: i64 = 1800;
/// How long a firing Alertmanager alert keeps its incident from resolving after it was last
/// heard: Alertmanager sends a still-firing alert again every `repeat_interval` (4 h by
/// default), so one not heard for longer than that (and a bit) is taken to have stopped, even
/// when its resolution was never sent (`send_resolved: false`).
pub const ALERT_REPEAT_SECS: i64 = 4 * 3600 + 600;

/// Most anomalies an incident keeps (strongest first) once alarms have joined it: the ranker
/// and the report need the strongest, not every repeat of a long fault.
const MAX_INCIDENT_ANOMALIES: usize = 30;
/// Most rankings an incident keeps in its history (the last one is replaced beyond that).
const MAX_RANKINGS: usize = 16;
/// A joining alarm ranks its incident again at most this often: each ranking reads the window.
const JOIN_RERANK_SECS: i64 = 60;
/// How often the resolution of active incidents is judged, in telemetry time.
const RESOLVE_CHECK_SECS: i64 = 15;

/// What the engine concluded, in order: what its callers (the daemon, replay, the simulator,
/// tests) act on, instead of diffing its state. `index` is into [`Pipeline::incidents`].
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    /// A new incident, with the plan decided for it.
    Opened { index: usize, plan: Plan },
    /// New evidence joined an incident (it was ranked again when due).
    Joined { index: usize, by: JoinedBy },
    /// A scheduled re-rank changed (or confirmed) its ranking.
    Reranked { index: usize },
    /// Every symptom back inside its baseline for the hold.
    Resolved { index: usize },
    /// A symptom of its fault came back within the reopen window; nothing had been carried out.
    Reopened { index: usize },
    /// A person is needed (the fix did not hold, or did not have its effect); `plan` holds what
    /// is proposed instead (never an action already decided for it).
    Escalated { index: usize, plan: Plan },
}

/// What joined an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinedBy {
    /// A detector alarm about its entities, leads or cell.
    Alarm,
    /// An Alertmanager alert.
    Alert,
}

/// What the engine tracks of an incident beside its report: what it is about, its symptoms, and
/// what was carried out for it.
#[derive(Debug, Clone, Default)]
struct Track {
    symptoms: Symptoms,
    /// What its opening evidence was about (entity and signal): what a later alarm must name
    /// to join it as the same trouble.
    opening: Vec<(Entity, Signal)>,
    /// Actions carried out for it (by an executor: the simulator, the daemon's controller).
    carried_out: Vec<(Timestamp, ActionKind, String)>,
    /// When it was last ranked (a joining alarm ranks again at most every [`JOIN_RERANK_SECS`]).
    last_rank: Timestamp,
}

/// What [`Pipeline::alert`] did with an alert.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertOutcome {
    /// It opened an incident (the last of [`Pipeline::incidents`]) with this plan.
    Opened(Plan),
    /// It joined, or changed its state in, the incident at this index.
    Joined(usize),
    /// Only noted on the timeline: heard again with nothing new, resolved without an incident,
    /// or about no entity (or of severity info/none with no incident to join).
    Noted,
}

/// Whether `incident` is about `entity`: one of its anomalies or candidates names the same
/// entity (a service without a cell matching it in any cell) or a service in the same cell, or
/// the incident names nothing at all (platform-wide symptoms only). No entity touches any
/// incident.
fn touches(incident: &Incident, entity: Option<&Entity>) -> bool {
    let Some(e) = entity else { return true };
    let named = incident
        .anomalies
        .iter()
        .filter_map(|a| a.entity.as_ref())
        .chain(incident.candidates.iter().map(|c| &c.entity));
    let mut any = false;
    for other in named {
        any = true;
        if grouping::same(other, e) || e.cell().is_some_and(|c| other.cell() == Some(c)) {
            return true;
        }
    }
    // An incident that names nothing (platform-wide symptoms only) takes any alert.
    !any
}

/// Most anomaly lines in a report's timeline (the count of all is kept beside it).
const MAX_TIMELINE_ANOMALIES: usize = 200;

/// Telemetry prepared for the pipeline: signal series, and spans in time order.
pub struct Prepared<'a> {
    pub series: Vec<SignalSeries>,
    pub spans: Cow<'a, [Span]>,
    /// Memory limit per series index, for memory series whose limit is known.
    pub limits: Vec<Option<f64>>,
    pub samples: usize,
    pub raw_series: usize,
    /// Request series of payment routes ([`crate::brief::payment_series`]), for the impact.
    pub payments: Vec<SignalSeries>,
}

/// Derives signals and memory limits from a fixture.
pub fn prepare(fx: &Fixture, rules: &signals::rules::SignalRules) -> Prepared<'static> {
    let mut spans = fx.spans.clone();
    spans.sort_by_key(|s| s.start_ns);
    prepare_parts(&fx.metrics.families, Cow::Owned(spans), fx.topology.as_ref(), rules)
}

/// [`prepare`] from the parts of a fixture (the closed-loop simulator has no fixture);
/// `spans` must be sorted by start time.
pub fn prepare_parts<'a>(
    families: &[Family],
    spans: Cow<'a, [Span]>,
    topology: Option<&Topology>,
    rules: &signals::rules::SignalRules,
) -> Prepared<'a> {
    let series = signals::derive(families, rules);
    let payments = crate::brief::payment_series(families, rules);
    // A memory series' limit: the limit series of the same pod (or entity), else the topology's.
    let mut limit_of: HashMap<(Option<String>, Option<String>), f64> = HashMap::new();
    for s in series.iter().filter(|s| s.signal == Signal::MemoryLimit) {
        if let Some(first) = s.points.first() {
            limit_of.insert(
                (s.entity.as_ref().map(|e| e.name.clone()), s.key.label("pod").map(str::to_string)),
                first.value,
            );
        }
    }
    let limits = series
        .iter()
        .map(|s| {
            if s.signal != Signal::Memory {
                return None;
            }
            let entity = s.entity.as_ref().map(|e| e.name.clone());
            limit_of
                .get(&(entity.clone(), s.key.label("pod").map(str::to_string)))
                .or_else(|| limit_of.get(&(entity, None)))
                .copied()
                .or_else(|| {
                    let e = s.entity.as_ref()?;
                    let topo = topology?;
                    let svc = topo.service(e.service_name()?)?;
                    svc.deployments
                        .iter()
                        .find(|d| d.cell.as_deref() == e.cell())
                        .and_then(|d| d.memory_limit_bytes)
                })
        })
        .collect();
    Prepared {
        series,
        spans,
        limits,
        samples: families.iter().map(Family::sample_count).sum(),
        raw_series: families.iter().map(|f| f.series.len()).sum(),
        payments,
    }
}

/// Ranks root-cause candidates for trouble that started at `start`, seeing nothing after `until`.
/// With an incident's `anomalies`, `start` is their earliest and only an estimate of the onset.
pub fn rank_at(p: &Prepared<'_>, start: Timestamp, until: Timestamp, anomalies: &[Anomaly]) -> Vec<Candidate> {
    rca::rank(
        &RcaInput {
            series: &p.series,
            spans: &p.spans,
            start,
            until,
            anomalies,
            start_is_estimate: !anomalies.is_empty(),
        },
        &RcaParams::default(),
        TOP_K,
    )
}

/// Ranks `incident` again on `p` up to `at`, from the onset its anomalies give (their earliest).
fn rank_again(p: &Prepared<'_>, incident: &mut Incident, at: Timestamp) {
    let start = incident.anomalies.iter().map(|a| a.t).min().unwrap_or(incident.opened_at);
    incident.candidates = rank_at(p, start, at, &incident.anomalies);
    incident.ranked_at = at;
}

/// The streaming pipeline: detector state, and what it has concluded so far. Fed by
/// [`Pipeline::advance`] with telemetry up to a time; the same code serves replay and the
/// closed-loop simulator.
pub struct Pipeline {
    detector: Detector,
    // Points with a timestamp up to this one were fed already.
    fed_until: Option<Timestamp>,
    timeline: Vec<TimelineEntry>,
    warnings: Vec<Warning>,
    incidents: Vec<IncidentReport>,
    anomalies_total: usize,
    timeline_anomalies: usize,
    // Last anomaly time per series, so the timeline shows the first of each burst only.
    last_anomaly: HashMap<SeriesKey, Timestamp>,
    events: Vec<DetectorEvent>,
    // Re-ranks still to do, as (when, index into `incidents`), earliest first.
    reranks: BTreeSet<(Timestamp, usize)>,
    // Beside each incident: its symptoms and what was carried out.
    tracks: Vec<Track>,
    // Active incidents watching each series (resolution reads their points).
    watched: HashMap<SeriesKey, Vec<usize>>,
    // Next telemetry time at which resolutions are judged.
    next_resolve_check: Timestamp,
    // What happened since the caller last took the events.
    out: Vec<EngineEvent>,
    // The policy the guards apply, the daemon-wide limits, and what the engine knows of the
    // cluster (the history of decided actions is kept here, for cooldowns and rate limits).
    policy: PolicySpec,
    limits: ConfigLimits,
    cluster: ClusterSnapshot,
    // Which rules propose plans.
    rule_set: rules::RuleSet,
    /// The namespace of the Incident objects, for the commands a report shows.
    pub namespace: String,
}

/// The operator's namespace when nobody says (the chart's default).
pub const DEFAULT_NAMESPACE: &str = "cellwarden";

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline::new()
    }
}

impl Pipeline {
    pub fn new() -> Pipeline {
        Pipeline {
            detector: Detector::new(DetectorParams::default()),
            fed_until: None,
            timeline: Vec::new(),
            warnings: Vec::new(),
            incidents: Vec::new(),
            anomalies_total: 0,
            timeline_anomalies: 0,
            last_anomaly: HashMap::new(),
            events: Vec::new(),
            reranks: BTreeSet::new(),
            tracks: Vec::new(),
            watched: HashMap::new(),
            next_resolve_check: Timestamp(i64::MIN),
            out: Vec::new(),
            policy: default_policy(),
            limits: ConfigLimits::default(),
            cluster: ClusterSnapshot::default(),
            rule_set: rules::RuleSet::default(),
            namespace: DEFAULT_NAMESPACE.to_string(),
        }
    }

    /// The same pipeline deciding under `policy` and `limits`.
    pub fn with_policy(mut self, policy: PolicySpec, limits: ConfigLimits) -> Pipeline {
        self.policy = policy;
        self.limits = limits;
        self
    }

    /// The same pipeline planning with `rule_set` (e.g. the legacy rules, for comparison).
    pub fn with_rule_set(mut self, rule_set: rules::RuleSet) -> Pipeline {
        self.rule_set = rule_set;
        self
    }

    /// Tells the rules which workloads rolled out a new revision, and when.
    pub fn set_rollouts(&mut self, rollouts: Vec<policy::Rollout>) {
        self.cluster.rollouts = rollouts;
    }

    /// The actions already decided for incident `i`'s fault at `t`: its own, and any decided on
    /// the same targets within [`REOPEN_SECS`] (what [`Pipeline::decide`] counts as this fault's).
    fn decided_for(&self, i: Option<usize>, t: Timestamp) -> Vec<Decision> {
        let own = i
            .and_then(|i| self.incidents.get(i))
            .map_or(&[][..], |r| r.lifecycle.decisions.as_slice());
        let recent = self
            .incidents
            .iter()
            .flat_map(|r| &r.lifecycle.decisions)
            .filter(|d| t.secs_since(d.at) <= REOPEN_SECS as f64);
        let mut all: Vec<Decision> = own.iter().chain(recent).cloned().collect();
        all.dedup();
        all
    }

    /// What the rules see beside an incident: the cluster, and `decided` for its fault.
    fn plan_context<'a>(&'a self, decided: &'a [Decision]) -> rules::PlanContext<'a> {
        rules::PlanContext {
            rule_set: self.rule_set,
            rollouts: &self.cluster.rollouts,
            replicas: Some(&self.cluster.replicas),
            decided,
        }
    }

    /// Tells the policy engine what the cluster looks like now (cells and replicas); the
    /// history of decided actions is kept.
    pub fn set_cluster(&mut self, cells: Vec<CellView>, replicas: std::collections::BTreeMap<String, u32>) {
        self.cluster.cells = cells;
        self.cluster.replicas = replicas;
    }

    /// Adds an action decided before (e.g. by an earlier run, read back from `Incident`
    /// objects) to the history the guards see, so cooldowns and rate limits survive restarts.
    pub fn remember(&mut self, past: PastAction) {
        if !self.cluster.history.contains(&past) {
            self.cluster.history.push(past);
            self.cluster.history.sort_by_key(|a| a.at);
        }
    }

    /// `plan`, decided earlier and queued unwritten (while following, or while the API did not
    /// answer), decided again at `now` against `done` — what the cluster's Incidents record as
    /// decided, by this instance or another leader meanwhile — so that a queued action still
    /// passes every guard (the cooldown of a restart another leader did, the hour's rate limit)
    /// when it is written. What the guards refuse now joins the plan's refusals.
    pub fn recheck(&self, plan: Plan, done: &[PastAction], now: Timestamp) -> Plan {
        let snap = ClusterSnapshot {
            history: done.to_vec(),
            ..self.cluster.clone()
        };
        let proposed = Plan {
            incident_id: plan.incident_id,
            at: plan.at,
            mode: plan.mode,
            actions: plan.actions,
            refused: Vec::new(),
        };
        let mut again = policy::decide(proposed, &self.policy, &self.limits, &snap, now);
        let mut refused = plan.refused;
        refused.append(&mut again.refused);
        again.refused = refused;
        again
    }

    pub fn incidents(&self) -> &[IncidentReport] {
        &self.incidents
    }
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Adds a line to the timeline (e.g. an action the simulator carried out).
    pub fn note(&mut self, t: Timestamp, kind: &str, text: String) {
        self.timeline.push(TimelineEntry {
            t,
            kind: kind.into(),
            text,
        });
    }

    /// Feeds every point of `p` after the last call and up to `until`, in time order; returns what
    /// the engine concluded meanwhile ([`EngineEvent`]: incidents opened with their plans,
    /// joined, re-ranked, resolved, reopened, escalated). Incidents whose re-rank falls due up to
    /// `until` are re-ranked on the way, each on `p` up to its due time only.
    /// `progress(done, total)` is called now and then.
    pub fn advance(
        &mut self,
        p: &Prepared<'_>,
        topology: Option<&Topology>,
        until: Timestamp,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Vec<EngineEvent> {
        let mut order: Vec<(Timestamp, u32, u32)> = Vec::new();
        for (si, s) in p.series.iter().enumerate() {
            let from = match self.fed_until {
                Some(f) => s.points.partition_point(|pt| pt.t <= f),
                None => 0,
            };
            let to = s.points.partition_point(|pt| pt.t <= until);
            for pi in from..to {
                order.push((s.points[pi].t, si as u32, pi as u32));
            }
        }
        order.sort_unstable();
        self.fed_until = Some(self.fed_until.map_or(until, |f| f.max(until)));
        let total = order.len();
        for (n, &(t, si, pi)) in order.iter().enumerate() {
            if n % 50_000 == 0 {
                progress(n, total);
            }
            // Every point up to a due re-rank's time has been fed: rank before this later one.
            self.rerank_due(p, |due| due < t);
            if t >= self.next_resolve_check {
                self.resolve_calm(t);
                self.next_resolve_check = t.plus_secs(RESOLVE_CHECK_SECS);
            }
            let s = &p.series[si as usize];
            let point = s.points[pi as usize];
            if let Some(ids) = self.watched.get(&s.key) {
                for &i in ids {
                    self.tracks[i].symptoms.observe(&s.key, t, point.value);
                }
            }
            self.detector.observe(s, p.limits[si as usize], point, &mut self.events);
            let events: Vec<DetectorEvent> = self.events.drain(..).collect();
            for ev in events {
                match ev {
                    DetectorEvent::Anomaly(a) => {
                        self.anomalies_total += 1;
                        self.trouble_on(&a.series, a.entity.as_ref(), a.signal, a.t, false);
                        let burst_start = self
                            .last_anomaly
                            .insert(s.key.clone(), t)
                            .is_none_or(|prev| t.secs_since(prev) > 300.0);
                        if burst_start && self.timeline_anomalies < MAX_TIMELINE_ANOMALIES {
                            self.timeline_anomalies += 1;
                            self.timeline.push(TimelineEntry {
                                t,
                                kind: "anomaly".into(),
                                text: a.explanation.clone(),
                            });
                        }
                    }
                    DetectorEvent::Warning(w) => {
                        self.trouble_on(&w.series, w.entity.as_ref(), w.signal, w.t, true);
                        self.timeline.push(TimelineEntry {
                            t,
                            kind: "warning".into(),
                            text: format!(
                                "{}: {} Predicted exhaustion at {}.",
                                w.entity.as_ref().map_or("platform", |e| e.name.as_str()),
                                w.explanation,
                                w.predicted_at
                            ),
                        });
                        self.warnings.push(w);
                    }
                    DetectorEvent::Alarm { t, class, anomalies } => self.place_alarm(p, topology, t, class, anomalies),
                }
            }
        }
        self.rerank_due(p, |due| due <= until);
        self.resolve_calm(until);
        progress(total, total);
        std::mem::take(&mut self.out)
    }

    /// An anomaly or warning on `series` (about `entity`'s `signal`) at `t`: trouble for every
    /// active incident watching that series; a `warning` is trouble too for the symptoms about
    /// the same entity and signal.
    fn trouble_on(&mut self, series: &SeriesKey, entity: Option<&Entity>, signal: Signal, t: Timestamp, warning: bool) {
        if let Some(ids) = self.watched.get(series) {
            for &i in ids {
                self.tracks[i].symptoms.trouble(series, t);
            }
        }
        let Some(e) = entity else { return };
        // Only a warning (a forecast about another pod of the same service) stretches a symptom:
        // any anomaly about the same entity and signal would keep a noisy platform's incidents
        // open for ever.
        if !warning {
            return;
        }
        for (i, r) in self.incidents.iter().enumerate() {
            if r.lifecycle.phase.is_active() && !self.tracks[i].symptoms.watches(series) {
                self.tracks[i].symptoms.trouble_about(e, signal, t);
            }
        }
    }

    /// Where a detector alarm goes ([`grouping::belongs`], latest incident first): into the
    /// incident an Alertmanager alert opened about the same trouble; into an active incident it
    /// is about (escalating it when a verified fix did not hold); reopening and escalating a
    /// resolved incident about the same symptom within [`REOPEN_SECS`] when a fix had been
    /// carried out for it; else a new incident.
    fn place_alarm(&mut self, p: &Prepared<'_>, topology: Option<&Topology>, t: Timestamp, class: IncidentClass, anomalies: Vec<Anomaly>) {
        if let Some(i) = self.opened_by_alerts_about(&anomalies, t) {
            return self.join(p, i, t, anomalies, JoinedBy::Alarm, None);
        }
        let found = self.incidents.iter().enumerate().rev().find_map(|(i, r)| {
            let lc = &r.lifecycle;
            let active = lc.phase.is_active();
            // A resolved incident is taken up again only when a fix was carried out for it: the
            // fix did not hold, and a person must hear so. Without one, trouble after the
            // hold is news (on Train Ticket, reopening without a fix lost a tenth of the faults
            // to incidents about the same symptom resolved minutes before).
            let fixed = !self.tracks[i].carried_out.is_empty();
            let recent = active || fixed && lc.resolved_at.is_some_and(|at| t.secs_since(at) <= REOPEN_SECS as f64);
            if !recent {
                return None;
            }
            grouping::belongs(&r.incident, &self.tracks[i].opening, active, &anomalies, t, topology).map(|why| (i, why))
        });
        let Some((i, why)) = found else {
            let index = self.open_incident(p, topology, t, class, anomalies, Vec::new());
            let plan = self.incidents[index].plan.clone();
            self.out.push(EngineEvent::Opened { index, plan });
            return;
        };
        let phase = self.incidents[i].lifecycle.phase;
        let back = anomalies
            .first()
            .map(|a| a.entity.as_ref().map_or("the platform", |e| e.name.as_str()).to_string())
            .unwrap_or_default();
        self.join(p, i, t, anomalies, JoinedBy::Alarm, Some(&why));
        let carried: Option<(Timestamp, ActionKind, String)> = self.tracks[i].carried_out.first().cloned();
        match (phase, carried) {
            (Phase::Mitigated, Some((at, kind, target))) => {
                let verified = self.incidents[i].lifecycle.mitigated_at.unwrap_or(at);
                let reason = format!(
                    "the fix did not hold: {kind} {target} took effect at {}, the trouble is back at {} ({back})",
                    verified.to_rfc3339(),
                    t.to_rfc3339()
                );
                self.escalate(topology, i, t, reason);
            }
            (Phase::Resolved, Some((at, kind, target))) => {
                self.reopen(i, t);
                let reason = format!(
                    "the fix did not hold: {kind} {target} was carried out at {}, the incident resolved, and its trouble is back at {} ({back})",
                    at.to_rfc3339(),
                    t.to_rfc3339()
                );
                self.escalate(topology, i, t, reason);
            }
            _ => {}
        }
    }

    /// A resolved incident `i` is active again at `now`: its symptoms are watched again. It
    /// pages nobody itself: the escalation that follows (a fix did not hold) or the alert that
    /// reopened it (Alertmanager notified) tells the person.
    fn reopen(&mut self, i: usize, now: Timestamp) {
        let id = self.incidents[i].incident.id.clone();
        let lc = &mut self.incidents[i].lifecycle;
        if lc.phase != Phase::Resolved {
            return;
        }
        lc.phase = Phase::Open;
        lc.resolved_at = None;
        lc.reopened_at.push(now);
        let text = format!(
            "{id} reopened: a symptom of its fault is back within {} min of its resolution.",
            REOPEN_SECS / 60
        );
        self.announce(i, now, None, text);
        let keys: Vec<SeriesKey> = self.tracks[i].symptoms.series().cloned().collect();
        self.watch(i, keys);
    }

    /// The latest incident opened by an Alertmanager alert (nothing but alerts in it yet) within
    /// [`ALERT_JOIN_SECS`] before `t`, with an alert still firing, that planned an action and
    /// that one of an alarm's anomalies with an entity touches: the alarm is about the trouble the
    /// alert already reported, so it joins that incident instead of opening another. An alarm
    /// about nothing named, or one next to an alert incident that could do nothing, opens its own
    /// (with a plan of its own).
    fn opened_by_alerts_about(&self, anomalies: &[Anomaly], t: Timestamp) -> Option<usize> {
        self.incidents.iter().rposition(|r| {
            let inc = &r.incident;
            inc.alerts.iter().any(|a| a.firing && a.entity.is_some())
                && inc.anomalies.iter().all(|a| a.detector == crate::alerts::ALERT_DETECTOR)
                && r.plan.actions.iter().any(|a| a.kind != ActionKind::Notify)
                && t.secs_since(inc.opened_at) <= ALERT_JOIN_SECS as f64
                && anomalies
                    .iter()
                    .filter(|a| a.entity.is_some())
                    .any(|a| touches(inc, a.entity.as_ref()))
        })
    }

    /// Incident `i`'s transition at `t`: a line on the timeline and, when `notice` gives its kind
    /// and whether it pages, a notice with the incident's key.
    fn announce(&mut self, i: usize, t: Timestamp, notice: Option<(NoticeKind, bool)>, text: String) {
        if let Some((kind, pages)) = notice {
            self.incidents[i].lifecycle.notices.push(Notice {
                at: t,
                kind,
                pages,
                text: text.clone(),
            });
        }
        self.timeline.push(TimelineEntry {
            t,
            kind: "incident".into(),
            text,
        });
    }

    /// Incident `i` watches `series` (their points are judged for its resolution).
    fn watch(&mut self, i: usize, series: impl IntoIterator<Item = SeriesKey>) {
        for k in series {
            let ids = self.watched.entry(k).or_default();
            if !ids.contains(&i) {
                ids.push(i);
            }
        }
    }

    /// Adds `anomalies` to incident `i` (its evidence and symptoms), strongest kept.
    fn absorb(&mut self, i: usize, anomalies: &[Anomaly]) {
        let inc = &mut self.incidents[i].incident;
        for a in anomalies {
            if !inc.anomalies.iter().any(|x| x.series == a.series) {
                inc.anomalies.push(a.clone());
            }
        }
        inc.anomalies.sort_by(|a, b| b.score.total_cmp(&a.score));
        inc.anomalies.truncate(MAX_INCIDENT_ANOMALIES);
        self.tracks[i].symptoms.add(anomalies);
        self.watch(i, anomalies.iter().map(|a| a.series.clone()));
    }

    /// Records ranking `why` of incident `i` (made at its `ranked_at`) in its history.
    fn record_ranking(&mut self, i: usize, why: &str) {
        let ir = &mut self.incidents[i];
        let r = Ranking {
            at: ir.incident.ranked_at,
            candidates: ir.incident.candidates.clone(),
            why: why.into(),
        };
        if ir.rankings.len() >= MAX_RANKINGS {
            ir.rankings.pop();
        }
        ir.rankings.push(r);
        self.tracks[i].last_rank = ir.incident.ranked_at;
    }

    /// A detector alarm (or alert) joins active incident `i`: its evidence grows, it is ranked
    /// again (at most every [`JOIN_RERANK_SECS`]; else at the next such time), it pages nobody.
    fn join(&mut self, p: &Prepared<'_>, i: usize, t: Timestamp, anomalies: Vec<Anomaly>, by: JoinedBy, why: Option<&JoinReason>) {
        let names: BTreeSet<&str> = anomalies
            .iter()
            .map(|a| a.entity.as_ref().map_or("the platform", |e| e.name.as_str()))
            .collect();
        let what = format!(
            "{} anomalous series ({})",
            anomalies.len(),
            names.into_iter().collect::<Vec<_>>().join(", ")
        );
        self.absorb(i, &anomalies);
        self.incidents[i].lifecycle.joined += 1;
        let id = self.incidents[i].incident.id.clone();
        let mut text = format!("{id}: an alarm of {what} joined it");
        if let Some(why) = why {
            text.push_str(": ");
            text.push_str(&why.describe());
        }
        if t.secs_since(self.tracks[i].last_rank) >= JOIN_RERANK_SECS as f64 {
            text.push_str(&self.rank_and_describe(p, i, t, "joined"));
        } else {
            self.reranks.insert((self.tracks[i].last_rank.plus_secs(JOIN_RERANK_SECS), i));
        }
        text.push('.');
        self.timeline.push(TimelineEntry {
            t,
            kind: "incident".into(),
            text,
        });
        self.out.push(EngineEvent::Joined { index: i, by });
    }

    /// Ranks incident `i` again at `t`, records it, and says how its top candidate moved.
    fn rank_and_describe(&mut self, p: &Prepared<'_>, i: usize, t: Timestamp, why: &str) -> String {
        let before = self.incidents[i].incident.candidates.first().map(|c| c.entity.name.clone());
        rank_again(p, &mut self.incidents[i].incident, t);
        self.record_ranking(i, why);
        match (before, self.incidents[i].incident.candidates.first()) {
            (Some(b), Some(c)) if b == c.entity.name => format!("; top candidate still {b}"),
            (Some(b), Some(c)) => format!(
                "; top candidate now {} ({}, {:.2}), was {b}: the added evidence points there",
                c.entity.name,
                c.class.as_str(),
                c.score
            ),
            (None, Some(c)) => format!("; top candidate {}", c.entity.name),
            _ => String::new(),
        }
    }

    /// Incident `i` needs a person: phase `Escalated`, a paging notice with `reason`, and a plan of
    /// what the rules would do now less every action already decided for it.
    fn escalate(&mut self, topology: Option<&Topology>, i: usize, t: Timestamp, reason: String) {
        let decided = self.decided_for(Some(i), t);
        let proposed = rules::plan(&self.incidents[i].incident, &self.warnings, topology, &self.plan_context(&decided));
        let plan = self.decide(i, proposed, t);
        let lc = &mut self.incidents[i].lifecycle;
        lc.phase = Phase::Escalated;
        lc.escalated_at = Some(t);
        lc.escalation = Some(reason.clone());
        let id = self.incidents[i].incident.id.clone();
        self.announce(i, t, Some((NoticeKind::Escalated, true)), format!("{id} escalated: {reason}."));
        self.note_plan(&id, &plan, t);
        self.out.push(EngineEvent::Escalated { index: i, plan });
    }

    /// Incidents whose every symptom has been calm for the hold at `now` resolve; one with an
    /// Alertmanager alert still firing does not (the alert's own `startsAt` may be long past:
    /// it is a person's rule saying the trouble is there now).
    fn resolve_calm(&mut self, now: Timestamp) {
        for i in 0..self.incidents.len() {
            let lc = &self.incidents[i].lifecycle;
            let alert_firing = self.incidents[i]
                .incident
                .alerts
                .iter()
                .any(|a| a.firing && now.secs_since(a.seen_at) <= ALERT_REPEAT_SECS as f64);
            if !lc.phase.is_active() || alert_firing || !self.tracks[i].symptoms.calm(now) {
                continue;
            }
            let id = self.incidents[i].incident.id.clone();
            let lc = &mut self.incidents[i].lifecycle;
            lc.phase = Phase::Resolved;
            lc.resolved_at = Some(now);
            let lasted = lc.duration_secs(now).unwrap_or(0.0) / 60.0;
            let text = format!(
                "{id} resolved: every symptom back inside its baseline for {} min; it lasted {lasted:.0} min.",
                RESOLVE_HOLD_SECS / 60
            );
            self.announce(i, now, Some((NoticeKind::Resolved, false)), text);
            let keys: Vec<SeriesKey> = self.tracks[i].symptoms.series().cloned().collect();
            for k in keys {
                if let Some(ids) = self.watched.get_mut(&k) {
                    ids.retain(|&x| x != i);
                    if ids.is_empty() {
                        self.watched.remove(&k);
                    }
                }
            }
            self.out.push(EngineEvent::Resolved { index: i });
        }
    }

    /// An executor carried out `kind` on `target` for the incident named `id` at `at`: it is
    /// `Mitigating` until the effect is verified ([`Pipeline::verified`]).
    pub fn carried_out(&mut self, id: &str, at: Timestamp, kind: ActionKind, target: &str) {
        let Some(i) = self.incidents.iter().position(|r| r.incident.id == id) else {
            return;
        };
        self.tracks[i].carried_out.push((at, kind, target.to_string()));
        let replicas_before = (kind == ActionKind::Scale)
            .then(|| self.cluster.replicas.get(target).copied())
            .flatten();
        let lc = &mut self.incidents[i].lifecycle;
        lc.taken.push(cellwarden_models::Taken {
            at,
            kind,
            target: target.to_string(),
            verified: None,
            verified_at: None,
            why: String::new(),
            replicas_before,
        });
        lc.mitigating_at.get_or_insert(at);
        if matches!(lc.phase, Phase::Open) {
            lc.phase = Phase::Mitigating;
        }
    }

    /// An executor judged the effect of `kind` on `target` for incident `id` at `at`: verified
    /// makes it `Mitigated`; not verified escalates it (`why` says what was missing).
    #[allow(clippy::too_many_arguments)]
    pub fn verified(
        &mut self,
        id: &str,
        at: Timestamp,
        kind: ActionKind,
        target: &str,
        passed: bool,
        why: &str,
        topology: Option<&Topology>,
    ) {
        let Some(i) = self.incidents.iter().position(|r| r.incident.id == id) else {
            return;
        };
        let text = format!(
            "{id}: {kind} {target} {}: {why}.",
            if passed { "verified" } else { "did not have its effect" }
        );
        self.timeline.push(TimelineEntry {
            t: at,
            kind: "verified".into(),
            text,
        });
        let taken = &mut self.incidents[i].lifecycle.taken;
        if let Some(x) = taken
            .iter_mut()
            .rev()
            .find(|x| x.kind == kind && x.target == target && x.verified.is_none())
        {
            x.verified = Some(passed);
            x.verified_at = Some(at);
            x.why = why.to_string();
        }
        if passed {
            let lc = &mut self.incidents[i].lifecycle;
            lc.mitigated_at.get_or_insert(at);
            if matches!(lc.phase, Phase::Open | Phase::Mitigating) {
                lc.phase = Phase::Mitigated;
            }
        } else if self.incidents[i].lifecycle.phase != Phase::Escalated {
            self.escalate(topology, i, at, format!("{kind} {target} did not have its effect: {why}"));
        }
    }

    /// The guards' verdict on `proposed` for incident `i` at `t`, after leaving out every action
    /// already decided for it (or for any incident within [`REOPEN_SECS`] on the same target:
    /// a repeat of what did not hold is not a fix); decided actions are recorded.
    fn decide(&mut self, i: usize, mut proposed: Plan, t: Timestamp) -> Plan {
        let mut tried = Vec::new();
        proposed.actions.retain(|a| {
            if a.kind == ActionKind::Notify {
                return true;
            }
            let own = self
                .incidents
                .get(i)
                .is_some_and(|r| r.lifecycle.decisions.iter().any(|d| d.kind == a.kind && d.target == a.target));
            let recent = self.incidents.iter().any(|r| {
                r.lifecycle
                    .decisions
                    .iter()
                    .any(|d| d.kind == a.kind && d.target == a.target && t.secs_since(d.at) <= REOPEN_SECS as f64)
            });
            if own || recent {
                tried.push(a.clone());
                false
            } else {
                true
            }
        });
        let mut plan = policy::decide(proposed, &self.policy, &self.limits, &self.cluster, t);
        plan.refused
            .extend(tried.into_iter().map(|a| cellwarden_models::plan::RefusedAction {
                reason: format!("{} {} was already decided for this fault; repeating it is no fix", a.kind, a.target),
                action: a,
                guard: policy::guard::ALREADY_DECIDED.into(),
            }));
        for a in plan.actions.iter().filter(|a| a.kind != ActionKind::Notify) {
            self.cluster.history.push(PastAction {
                kind: a.kind,
                target: a.target.clone(),
                at: t,
            });
            if let Some(r) = self.incidents.get_mut(i) {
                r.lifecycle.decisions.push(Decision {
                    at: t,
                    kind: a.kind,
                    target: a.target.clone(),
                });
            }
        }
        plan
    }

    /// The plan's line on the timeline.
    fn note_plan(&mut self, id: &str, plan: &Plan, t: Timestamp) {
        let mut actions: Vec<String> = plan
            .actions
            .iter()
            .map(|a| format!("{} {}{}", a.kind, a.target, if a.needs_approval { " (needs approval)" } else { "" }))
            .collect();
        actions.extend(
            plan.refused
                .iter()
                .map(|r| format!("{} {} refused by {}: {}", r.action.kind, r.action.target, r.guard, r.reason)),
        );
        self.timeline.push(TimelineEntry {
            t,
            kind: "plan".into(),
            text: format!("{id} ({}): {}.", plan.mode.as_str(), actions.join(", ")),
        });
    }

    /// Runs the pending re-ranks whose time `ready` accepts, earliest first.
    fn rerank_due(&mut self, p: &Prepared<'_>, ready: impl Fn(Timestamp) -> bool) {
        while let Some(&(due, i)) = self.reranks.first() {
            if !ready(due) {
                break;
            }
            self.reranks.pop_first();
            self.rerank(p, i, due);
        }
    }

    /// Ranks incident `i` again on the telemetry up to `at`, from the same onset estimate and
    /// anomalies as at opening; notes the outcome on the timeline. The plan is left as decided.
    fn rerank(&mut self, p: &Prepared<'_>, i: usize, at: Timestamp) {
        // A re-rank a joining alarm put off is moot once the incident was ranked at or after it.
        if self.tracks.get(i).is_none_or(|tr| tr.last_rank >= at) {
            return;
        }
        let Some(ir) = self.incidents.get_mut(i) else { return };
        let incident = &mut ir.incident;
        let before = incident.candidates.first().map(|c| (c.entity.name.clone(), c.class));
        rank_again(p, incident, at);
        let after_s = at.secs_since(incident.opened_at);
        let top = match incident.candidates.first() {
            None => "no candidate".to_string(),
            Some(c) => {
                let mut text = format!("top candidate {} ({}, {:.2})", c.entity.name, c.class.as_str(), c.score);
                if !incident.blames_root_cause() {
                    text.push_str(", not blamed: a capacity incident");
                }
                match &before {
                    Some((name, _)) if *name == c.entity.name => text.push_str(", unchanged"),
                    Some((name, _)) => text.push_str(&format!(", was {name}")),
                    None => {}
                }
                if let Some((_, class)) = before.filter(|(_, class)| *class != c.class) {
                    text.push_str(&format!(
                        "; its class changed from {} to {}, the plan decided at opening stands",
                        class.as_str(),
                        c.class.as_str()
                    ));
                }
                text
            }
        };
        let text = format!(
            "{} re-ranked at {} ({after_s:.0} s after opening) on telemetry up to then: {top}.",
            incident.id,
            at.to_rfc3339()
        );
        self.timeline.push(TimelineEntry {
            t: at,
            kind: "rerank".into(),
            text,
        });
        self.record_ranking(i, "rerank");
        self.out.push(EngineEvent::Reranked { index: i });
    }

    /// Takes an Alertmanager alert heard of at `note.seen_at` (telemetry up to then is in `p`):
    /// - the same alert (by fingerprint) of the same episode (`startsAt`) heard again updates its
    ///   note where it is: a repeat changes nothing, a resolution is noted, a resolved alert that
    ///   fires again is evidence again and the incident is ranked again;
    /// - a firing alert that names an entity joins the latest incident opened within
    ///   [`ALERT_JOIN_SECS`] that touches that entity ([`touches`]): it becomes one of the
    ///   incident's anomalies, and the incident is ranked again with it;
    /// - else it opens an incident of its own, ranked and planned like any other — unless its
    ///   severity is `info` or `none` (Alertmanager's `Watchdog`, say), which only joins;
    /// - an alert whose labels name no entity, or a resolution of an alert no incident has, is
    ///   only noted on the timeline: evidence about nothing in particular opens nothing.
    pub fn alert(&mut self, p: &Prepared<'_>, topology: Option<&Topology>, note: AlertNote, mut anomaly: Anomaly) -> AlertOutcome {
        let now = note.seen_at;
        crate::alerts::measure(&mut anomaly, &p.series, now);
        let same_episode = |a: &AlertNote| a.fingerprint == note.fingerprint && a.starts_at == note.starts_at;
        if let Some(i) = self.incidents.iter().rposition(|r| r.incident.alerts.iter().any(same_episode)) {
            let ir = &mut self.incidents[i];
            let inc = &mut ir.incident;
            let slot = inc.alerts.iter_mut().find(|a| same_episode(a)).expect("found above");
            let changed = slot.firing != note.firing;
            *slot = note;
            if !changed {
                return AlertOutcome::Noted;
            }
            let text = format!(
                "{}: Alertmanager alert {} {}.",
                inc.id,
                slot.name,
                if slot.firing { "firing again" } else { "resolved" }
            );
            let firing = slot.firing;
            if firing {
                inc.anomalies.push(anomaly.clone());
                rank_again(p, inc, now);
            }
            self.timeline.push(TimelineEntry {
                t: now,
                kind: "alert".into(),
                text,
            });
            if !firing {
                // The hold before resolving counts from the alert's resolution.
                let sy = &mut self.tracks[i].symptoms;
                sy.last_trouble = sy.last_trouble.max(now);
            }
            if firing {
                self.absorb(i, std::slice::from_ref(&anomaly));
                self.record_ranking(i, "alert");
                self.incidents[i].lifecycle.joined += 1;
                // A firing alert is a person's rule saying the trouble is there; Alertmanager notified
                // about it itself, so the reopening pages nobody again.
                self.reopen(i, now);
            }
            return AlertOutcome::Joined(i);
        }
        if !note.firing || note.entity.is_none() {
            let why = if note.firing {
                "its labels name no service, provider, node, zone or cell"
            } else {
                "resolved; it had opened or joined no incident"
            };
            self.timeline.push(TimelineEntry {
                t: now,
                kind: "alert".into(),
                text: format!("Alertmanager alert {} noted only: {why}.", note.name),
            });
            return AlertOutcome::Noted;
        }
        let joins = |r: &IncidentReport| {
            now.secs_since(r.incident.opened_at) <= ALERT_JOIN_SECS as f64 && touches(&r.incident, note.entity.as_ref())
        };
        if let Some(i) = self.incidents.iter().rposition(joins) {
            let inc = &mut self.incidents[i].incident;
            let text = format!(
                "{}: Alertmanager alert {} joined it{}.",
                inc.id,
                note.name,
                note.entity
                    .as_ref()
                    .map(|e| format!(" (about {} {})", e.kind.as_str(), e.name))
                    .unwrap_or_default()
            );
            inc.alerts.push(note);
            inc.anomalies.push(anomaly.clone());
            rank_again(p, inc, now);
            self.timeline.push(TimelineEntry {
                t: now,
                kind: "alert".into(),
                text,
            });
            self.absorb(i, std::slice::from_ref(&anomaly));
            self.record_ranking(i, "alert");
            self.incidents[i].lifecycle.joined += 1;
            // A firing alert is a person's rule saying the trouble is there; Alertmanager notified
            // about it itself, so the reopening pages nobody again.
            self.reopen(i, now);
            return AlertOutcome::Joined(i);
        }
        if matches!(
            note.severity.as_deref().map(str::to_ascii_lowercase).as_deref(),
            Some("info" | "none")
        ) {
            self.timeline.push(TimelineEntry {
                t: now,
                kind: "alert".into(),
                text: format!(
                    "Alertmanager alert {} noted only: severity {} opens no incident, and no recent one is about it.",
                    note.name,
                    note.severity.as_deref().unwrap_or_default()
                ),
            });
            return AlertOutcome::Noted;
        }
        let index = self.open_incident(p, topology, now, IncidentClass::Fault, vec![anomaly], vec![note]);
        AlertOutcome::Opened(self.incidents[index].plan.clone())
    }

    /// Opens an incident at `t`: ranked, planned under the guards (never an action already
    /// decided for this fault), watched for resolution; returns its index.
    fn open_incident(
        &mut self,
        p: &Prepared<'_>,
        topology: Option<&Topology>,
        t: Timestamp,
        class: IncidentClass,
        anomalies: Vec<Anomaly>,
        alerts: Vec<AlertNote>,
    ) -> usize {
        let start = anomalies.iter().map(|a| a.t).min().unwrap_or(t);
        let candidates = rank_at(p, start, t, &anomalies);
        let mut id = format!("inc-{}", t.millis());
        // Two incidents in one millisecond (an alert and an alarm, say) keep distinct names.
        while self.incidents.iter().rev().take(8).any(|r| r.incident.id == id) {
            id.push('b');
        }
        let incident = Incident {
            id: id.clone(),
            opened_at: t,
            ranked_at: t,
            class,
            anomalies,
            candidates,
            alerts,
        };
        let decided = self.decided_for(None, t);
        let proposed = rules::plan(&incident, &self.warnings, topology, &self.plan_context(&decided));
        let top = match incident.candidates.first() {
            Some(c) if incident.blames_root_cause() => format!(
                "; top candidate at opening {} ({}, {:.2})",
                c.entity.name,
                c.class.as_str(),
                c.score
            ),
            _ => String::new(),
        };
        let text = match incident.alerts.first() {
            Some(a) => format!("{} opened ({:?}) by Alertmanager alert {}{top}.", incident.id, class, a.name),
            None => format!(
                "{} opened ({:?}) from {} anomalous series{top}.",
                incident.id,
                class,
                incident.anomalies.len()
            ),
        };
        self.timeline.push(TimelineEntry {
            t,
            kind: "incident".into(),
            text: text.clone(),
        });
        let index = self.incidents.len();
        // A capacity incident blames nothing and pages nobody: it asks for capacity.
        let pages = incident.blames_root_cause();
        let lifecycle = cellwarden_models::Lifecycle {
            detected_at: Some(t),
            dedup_key: format!("cellwarden/{id}"),
            notices: vec![Notice {
                at: t,
                kind: NoticeKind::Opened,
                pages,
                text,
            }],
            ..Default::default()
        };
        let anomalies = incident.anomalies.clone();
        self.incidents.push(IncidentReport {
            incident,
            plan: Plan {
                incident_id: id.clone(),
                at: t,
                mode: cellwarden_models::Mode::DryRun,
                actions: vec![],
                refused: vec![],
            },
            key_series: Vec::new(),
            lifecycle,
            rankings: Vec::new(),
            brief: Default::default(),
        });
        self.tracks.push(Track {
            opening: anomalies.iter().filter_map(|a| a.entity.clone().map(|e| (e, a.signal))).collect(),
            ..Track::default()
        });
        self.absorb(index, &anomalies);
        self.record_ranking(index, "opened");
        let plan = self.decide(index, proposed, t);
        self.note_plan(&id, &plan, t);
        self.incidents[index].plan = plan;
        self.reranks
            .extend(RERANK_AFTER_SECS.iter().map(|secs| (t.plus_secs(*secs), index)));
        index
    }

    /// What the brief needs besides the incident: where the commands point, the cluster as
    /// known, payments and forecasts.
    fn brief_context<'a>(&'a self, p: &'a Prepared<'_>, graph: &ServiceGraph, now: Timestamp) -> crate::brief::BriefContext<'a> {
        let callees: std::collections::HashSet<usize> = graph.edges.iter().map(|e| e.to).collect();
        crate::brief::BriefContext {
            entries: graph
                .nodes
                .iter()
                .enumerate()
                .filter(|(i, n)| !callees.contains(i) && n.kind == cellwarden_models::graph::NodeKind::Service)
                .map(|(_, n)| n.name.clone())
                .collect(),
            namespace: &self.namespace,
            replicas: &self.cluster.replicas,
            rollouts: &self.cluster.rollouts,
            payments: &p.payments,
            warnings: &self.warnings,
            now,
        }
    }

    /// The report of everything seen so far.
    pub fn report(&self, source: &str, p: &Prepared<'_>) -> Report {
        let from = p
            .series
            .iter()
            .filter_map(|s| s.points.first().map(|x| x.t))
            .chain(p.spans.first().map(Span::start))
            .min();
        let to = p
            .series
            .iter()
            .filter_map(|s| s.points.last().map(|x| x.t))
            .chain(p.spans.iter().map(Span::start).max())
            .max();
        let mut timeline = self.timeline.clone();
        timeline.sort_by_key(|e| e.t);
        let graph = graph::build(&p.spans);
        let incidents = self
            .incidents
            .iter()
            .map(|ir| {
                let mut ir = IncidentReport {
                    key_series: key_series(&ir.incident, p),
                    ..ir.clone()
                };
                ir.brief = crate::brief::build(&ir, &p.series, &self.brief_context(p, &graph, to.unwrap_or_default()));
                ir
            })
            .collect();
        Report {
            schema_version: REPORT_SCHEMA_VERSION,
            source: source.to_string(),
            from,
            to,
            series: p.raw_series,
            samples: p.samples,
            spans: p.spans.len(),
            anomalies_total: self.anomalies_total,
            timeline,
            warnings: self.warnings.clone(),
            incidents,
            graph,
        }
    }
}

/// The samples from `from` to `to` that verify an action: of the series named `series` when
/// `entity` is empty, else the highest of the entity's `signal` series at each time (pods come
/// and go; the service stays). `entity` is [`Entity::qualified`].
pub fn samples_of(
    series: &[SignalSeries],
    signal: &str,
    entity: &str,
    key: &str,
    from: Timestamp,
    to: Timestamp,
) -> Vec<cellwarden_models::Sample> {
    use cellwarden_models::Sample;
    let in_range = |p: &&Sample| p.t >= from && p.t <= to && p.value.is_finite();
    if entity.is_empty() {
        return series
            .iter()
            .find(|s| s.key.to_string() == key)
            .map(|s| s.points.iter().filter(in_range).copied().collect())
            .unwrap_or_default();
    }
    let mut by_t: std::collections::BTreeMap<Timestamp, f64> = std::collections::BTreeMap::new();
    for s in series
        .iter()
        .filter(|s| s.signal.as_str() == signal && s.entity.as_ref().is_some_and(|e| e.qualified() == entity))
    {
        for p in s.points.iter().filter(in_range) {
            let v = by_t.entry(p.t).or_insert(f64::NEG_INFINITY);
            *v = v.max(p.value);
        }
    }
    by_t.into_iter().map(|(t, value)| Sample { t, value }).collect()
}

/// Most sparklines per incident.
const MAX_KEY_SERIES: usize = 6;

/// The series worth a sparkline for `incident`: those of its anomalies, then the strongest signal
/// of each top candidate; 30 minutes before the opening to 15 minutes after.
fn key_series(incident: &Incident, p: &Prepared<'_>) -> Vec<SeriesSnippet> {
    let from = incident.opened_at.plus_secs(-1800);
    let to = incident.opened_at.plus_secs(900);
    let mut keys: Vec<&SeriesKey> = incident.anomalies.iter().map(|a| &a.series).collect();
    for c in incident.candidates.iter().take(3) {
        let wanted: Vec<&str> = c.evidence.iter().filter_map(|e| e.source.rsplit(':').next()).collect();
        if let Some(s) = p
            .series
            .iter()
            .filter(|s| s.entity.as_ref() == Some(&c.entity))
            .find(|s| wanted.contains(&s.signal.as_str()))
        {
            keys.push(&s.key);
        }
    }
    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| seen.insert(*k));
    keys.into_iter()
        .filter_map(|k| p.series.iter().position(|s| &s.key == k))
        .map(|i| {
            let s = &p.series[i];
            SeriesSnippet {
                series: s.key.to_string(),
                entity: s.entity.as_ref().map(|e| e.name.clone()),
                signal: s.signal,
                points: s.points.iter().filter(|x| x.t >= from && x.t <= to).copied().collect(),
                limit: p.limits.get(i).copied().flatten(),
            }
        })
        .filter(|s| s.points.len() >= 2)
        .take(MAX_KEY_SERIES)
        .collect()
}

/// The built-in policy: every default of `RemediationPolicy` (dry-run, cordon needs approval).
pub fn default_policy() -> PolicySpec {
    serde_json::from_value(serde_json::json!({})).expect("every field has a default")
}

/// The cells and replicas a topology describes, for the policy engine.
pub fn cluster_of(topology: &Topology) -> (Vec<CellView>, std::collections::BTreeMap<String, u32>) {
    let cells = topology
        .cells
        .iter()
        .map(|c| CellView {
            name: c.name.clone(),
            namespace: c.name.clone(),
            weight: c.weight.unwrap_or(0.0).round() as u32,
            state: CellState::Active,
        })
        .collect();
    let replicas = topology
        .services
        .iter()
        .flat_map(|s| {
            s.deployments
                .iter()
                .filter_map(move |d| Some((format!("{}/{}", d.cell.as_ref()?, s.name), d.replicas?)))
        })
        .collect();
    (cells, replicas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellwarden_models::{Entity, Sample};

    /// A plan queued while another leader restarted the same pods: written later, the restart
    /// meets that restart's cooldown; an action nobody did still passes, and the plan's earlier
    /// refusals stay.
    #[test]
    fn a_queued_plan_is_decided_again_against_what_was_done_meanwhile() {
        let limits = ConfigLimits {
            mode: cellwarden_models::Mode::Act,
            paused: false,
        };
        let p = Pipeline::new().with_policy(serde_json::from_value(serde_json::json!({"mode": "act"})).unwrap(), limits);
        use crate::policy::tests::action;
        let queued = Plan {
            incident_id: "inc-1".into(),
            at: at(1000),
            mode: cellwarden_models::Mode::Act,
            actions: vec![
                action(ActionKind::RestartPods, "cell-2/ledger"),
                action(ActionKind::Scale, "cell-2/ledger"),
            ],
            refused: vec![cellwarden_models::plan::RefusedAction {
                action: action(ActionKind::Cordon, "cell-2"),
                guard: policy::guard::BLAST_RADIUS.into(),
                reason: "earlier".into(),
            }],
        };
        let done = [PastAction {
            kind: ActionKind::RestartPods,
            target: "cell-2/ledger".into(),
            at: at(1010),
        }];
        let again = p.recheck(queued.clone(), &done, at(1030));
        let kinds: Vec<ActionKind> = again.actions.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, [ActionKind::Scale]);
        let guards: Vec<&str> = again.refused.iter().map(|r| r.guard.as_str()).collect();
        assert_eq!(guards, [policy::guard::BLAST_RADIUS, policy::guard::COOLDOWN]);
        assert!(again.refused[1].reason.contains("20 s ago"), "{}", again.refused[1].reason);
        // With nothing done meanwhile the plan passes as it was.
        assert_eq!(p.recheck(queued.clone(), &[], at(1030)).actions, queued.actions);
    }

    /// Points come every 15 s; the fault of `a` starts at `T0`, a worse one of `b` at `T0 + 120 s`.
    const STEP_SECS: i64 = 15;
    const T0_SECS: i64 = 3600;
    const B_ONSET_SECS: i64 = T0_SECS + 120;
    const END_SECS: i64 = T0_SECS + 600;

    fn at(secs: i64) -> Timestamp {
        Timestamp(secs * 1000)
    }

    /// The error ratio of `service`: a little noise around 0, then `level` from `onset_secs` on.
    fn errors(service: &str, onset_secs: i64, level: f64) -> SignalSeries {
        SignalSeries {
            key: SeriesKey::new("errors", [("service".to_string(), service.to_string())]),
            signal: Signal::ErrorRatio,
            entity: Some(Entity::service(None, service)),
            points: (0..=END_SECS / STEP_SECS)
                .map(|i| {
                    let secs = i * STEP_SECS;
                    let value = if secs >= onset_secs { level } else { (i % 3) as f64 * 0.001 };
                    Sample { t: at(secs), value }
                })
                .collect(),
        }
    }

    fn prepared() -> Prepared<'static> {
        let series = vec![errors("a", T0_SECS, 0.15), errors("b", B_ONSET_SECS, 1.0)];
        Prepared {
            limits: vec![None; series.len()],
            samples: series.iter().map(|s| s.points.len()).sum(),
            raw_series: series.len(),
            series,
            spans: Cow::Owned(Vec::new()),
            payments: Vec::new(),
        }
    }

    /// The error ratio of `cell`/`service` every 15 s until `end_secs`: noise around 0, and
    /// `level` inside each of `bad` (from, to) seconds.
    fn bursts(cell: &str, service: &str, bad: &[(i64, i64)], level: f64, end_secs: i64) -> SignalSeries {
        SignalSeries {
            key: SeriesKey::new(
                "errors",
                [("cell".to_string(), cell.to_string()), ("service".to_string(), service.to_string())],
            ),
            signal: Signal::ErrorRatio,
            entity: Some(Entity::service(Some(cell), service)),
            points: (0..=end_secs / STEP_SECS)
                .map(|i| {
                    let secs = i * STEP_SECS;
                    let bad = bad.iter().any(|(f, t)| secs >= *f && secs < *t);
                    let value = if bad { level } else { (i % 3) as f64 * 0.001 };
                    Sample { t: at(secs), value }
                })
                .collect(),
        }
    }

    fn prepared_of(series: Vec<SignalSeries>) -> Prepared<'static> {
        Prepared {
            limits: vec![None; series.len()],
            samples: series.iter().map(|s| s.points.len()).sum(),
            raw_series: series.len(),
            series,
            spans: Cow::Owned(Vec::new()),
            payments: Vec::new(),
        }
    }

    fn phases(events: &[EngineEvent]) -> Vec<&'static str> {
        events
            .iter()
            .map(|e| match e {
                EngineEvent::Opened { .. } => "opened",
                EngineEvent::Joined { .. } => "joined",
                EngineEvent::Reranked { .. } => "reranked",
                EngineEvent::Resolved { .. } => "resolved",
                EngineEvent::Reopened { .. } => "reopened",
                EngineEvent::Escalated { .. } => "escalated",
            })
            .filter(|p| *p != "reranked" && *p != "joined")
            .collect()
    }

    #[test]
    fn an_incident_resolves_after_the_hold_with_one_page_and_one_key() {
        let end = T0_SECS + 300 + 1800;
        let p = prepared_of(vec![
            bursts("cell-2", "ledger", &[(T0_SECS, T0_SECS + 300)], 0.3, end),
            bursts("cell-2", "ledger-db", &[(T0_SECS, T0_SECS + 300)], 0.3, end),
        ]);
        let mut pipeline = Pipeline::new();
        let events = pipeline.advance(&p, None, at(T0_SECS + 300 + RESOLVE_HOLD_SECS - 60), &mut |_, _| {});
        assert_eq!(phases(&events), ["opened"]);
        // Still in the hold: active.
        assert_eq!(pipeline.incidents()[0].lifecycle.phase, Phase::Open);
        let events = pipeline.advance(&p, None, at(end), &mut |_, _| {});
        assert_eq!(phases(&events), ["resolved"]);
        let lc = &pipeline.incidents()[0].lifecycle;
        assert_eq!(lc.phase, Phase::Resolved);
        let resolved_at = lc.resolved_at.expect("resolved");
        assert!(resolved_at >= at(T0_SECS + 300 + RESOLVE_HOLD_SECS - 30), "{resolved_at}");
        assert!(resolved_at <= at(T0_SECS + 300 + RESOLVE_HOLD_SECS + 60), "{resolved_at}");
        let kinds: Vec<NoticeKind> = lc.notices.iter().map(|n| n.kind).collect();
        assert_eq!(kinds, [NoticeKind::Opened, NoticeKind::Resolved]);
        assert_eq!(lc.pages(), 1, "only the opening paged");
        assert_eq!(lc.dedup_key, format!("cellwarden/{}", pipeline.incidents()[0].incident.id));
    }

    #[test]
    fn a_fix_without_its_effect_escalates_and_is_never_decided_again() {
        let back = T0_SECS + 300 + 1800;
        let end = back + 600;
        let p = prepared_of(vec![
            bursts("cell-2", "ledger", &[(T0_SECS, T0_SECS + 300), (back, end)], 0.3, end),
            bursts("cell-2", "ledger-db", &[(T0_SECS, T0_SECS + 300), (back, end)], 0.3, end),
        ]);
        let mut pipeline = Pipeline::new();
        let cells = (1..=4)
            .map(|i| CellView {
                name: format!("cell-{i}"),
                namespace: format!("cell-{i}"),
                weight: 25,
                state: CellState::Active,
            })
            .collect();
        pipeline.set_cluster(cells, Default::default());
        let events = pipeline.advance(&p, None, at(T0_SECS + 120), &mut |_, _| {});
        let Some(EngineEvent::Opened { index, plan }) = events.first().cloned() else {
            panic!("{events:?}")
        };
        let id = pipeline.incidents()[index].incident.id.clone();
        let acted: Vec<(ActionKind, String)> = plan
            .actions
            .iter()
            .filter(|a| a.kind != ActionKind::Notify)
            .map(|a| (a.kind, a.target.clone()))
            .collect();
        assert!(!acted.is_empty(), "{plan:?}");
        for (kind, target) in &acted {
            pipeline.carried_out(&id, at(T0_SECS + 120), *kind, target);
        }
        assert_eq!(pipeline.incidents()[index].lifecycle.phase, Phase::Mitigating);
        pipeline.verified(&id, at(T0_SECS + 400), acted[0].0, &acted[0].1, false, "errors still at 30%", None);
        let lc = &pipeline.incidents()[index].lifecycle;
        assert_eq!(lc.phase, Phase::Escalated);
        assert!(
            lc.escalation.as_deref().is_some_and(|e| e.contains("did not have its effect")),
            "{lc:?}"
        );
        assert_eq!(lc.pages(), 2, "the opening and the escalation paged");
        // It resolves; the trouble back later (same service) reopens it and escalates it again
        // (the fix did not hold): nothing opens, and nothing already decided is decided again.
        let events = pipeline.advance(&p, None, at(end), &mut |_, _| {});
        assert_eq!(opened_count(&events), 0, "{events:?}");
        assert!(
            events.iter().any(|e| matches!(e, EngineEvent::Joined { index: 0, .. })),
            "{events:?}"
        );
        let lc = &pipeline.incidents()[index].lifecycle;
        for (kind, target) in &acted {
            let n = lc.decisions.iter().filter(|d| d.kind == *kind && &d.target == target).count();
            assert_eq!(n, 1, "{kind} {target} decided {n} times");
        }
        assert!(lc.escalation.as_deref().is_some_and(|e| e.contains("did not hold")), "{lc:?}");
        assert_eq!(lc.reopened_at.len(), 1);
        assert_eq!(lc.pages(), 3, "the opening and the two escalations paged");
    }

    fn opened_count(events: &[EngineEvent]) -> usize {
        events.iter().filter(|e| matches!(e, EngineEvent::Opened { .. })).count()
    }

    fn top(pipeline: &Pipeline) -> String {
        pipeline.incidents()[0].incident.candidates[0].entity.name.clone()
    }

    #[test]
    fn a_rerank_sees_only_the_telemetry_up_to_its_time() {
        let p = prepared();
        let mut pipeline = Pipeline::new();
        // a's errors open an incident, ranked on what is known then: a.
        let events = pipeline.advance(&p, None, at(T0_SECS + 60), &mut |_, _| {});
        assert_eq!(opened_count(&events), 1);
        assert_eq!(pipeline.incidents().len(), 1);
        let opened = pipeline.incidents()[0].incident.clone();
        assert!(opened.opened_at >= at(T0_SECS) && opened.opened_at < at(T0_SECS + 60));
        assert_eq!(opened.ranked_at, opened.opened_at);
        assert_eq!(top(&pipeline), "a");

        // Fed past b's onset, but the first re-rank is due before it: b is not among the
        // candidates, and the ranking is exactly the ranker's on the data up to its time.
        let events = pipeline.advance(&p, None, at(B_ONSET_SECS + 30), &mut |_, _| {});
        // b's own alarm (another service, no call between them, not on a's candidates) opens an
        // incident of its own; the re-rank of a's opens nothing.
        for e in &events {
            if let EngineEvent::Opened { index, .. } = e {
                assert_ne!(*index, 0, "a re-rank makes no plan");
                let about: Vec<&str> = pipeline.incidents()[*index]
                    .incident
                    .anomalies
                    .iter()
                    .filter_map(|a| a.entity.as_ref().map(|e| e.name.as_str()))
                    .collect();
                assert_eq!(about, ["b"]);
            }
        }
        let first = pipeline.incidents()[0].incident.clone();
        let first_at = opened.opened_at.plus_secs(RERANK_AFTER_SECS[0]);
        assert!(first_at < at(B_ONSET_SECS), "the test needs the first re-rank before b's onset");
        assert_eq!(first.ranked_at, first_at);
        assert_eq!(top(&pipeline), "a");
        assert!(first.candidates.iter().all(|c| c.entity.name != "b"), "{:?}", first.candidates);
        assert_eq!(first.candidates, rank_at(&p, at(T0_SECS), first_at, &opened.anomalies));

        // The second re-rank, after b's onset, puts b first.
        pipeline.advance(&p, None, at(END_SECS), &mut |_, _| {});
        let last = pipeline.incidents()[0].incident.clone();
        let last_at = opened.opened_at.plus_secs(RERANK_AFTER_SECS[1]);
        assert!(last_at > at(B_ONSET_SECS));
        assert_eq!(last.ranked_at, last_at);
        assert_eq!(top(&pipeline), "b");
        assert_eq!(last.candidates, rank_at(&p, at(T0_SECS), last_at, &opened.anomalies));
        // The incident is the same one: id, opening and anomalies kept.
        assert_eq!(
            (&last.id, last.opened_at, &last.anomalies),
            (&opened.id, opened.opened_at, &opened.anomalies)
        );

        let reranks: Vec<&TimelineEntry> = pipeline
            .timeline
            .iter()
            .filter(|e| e.kind == "rerank" && e.text.starts_with(&opened.id))
            .collect();
        assert_eq!(reranks.len(), 2);
        assert_eq!((reranks[0].t, reranks[1].t), (first_at, last_at));
        assert!(reranks[0].text.contains("top candidate a ") && reranks[0].text.contains("unchanged"));
        assert!(
            reranks[1].text.contains("top candidate b ") && reranks[1].text.contains("was a"),
            "{}",
            reranks[1].text
        );
    }

    #[test]
    fn replaying_at_once_or_step_by_step_ranks_alike() {
        let p = prepared();
        let mut whole = Pipeline::new();
        whole.advance(&p, None, at(END_SECS), &mut |_, _| {});
        let mut stepped = Pipeline::new();
        for secs in (0..=END_SECS).step_by(45) {
            stepped.advance(&p, None, at(secs), &mut |_, _| {});
        }
        assert_eq!(whole.incidents(), stepped.incidents());
        assert_eq!(whole.timeline.len(), stepped.timeline.len());
    }

    #[test]
    fn no_rerank_is_due_before_telemetry_reaches_it() {
        let p = prepared();
        let mut pipeline = Pipeline::new();
        pipeline.advance(&p, None, at(T0_SECS + 45), &mut |_, _| {});
        let opened_at = pipeline.incidents()[0].incident.opened_at;
        // Fed up to one millisecond before the first re-rank: still the ranking at opening.
        pipeline.advance(
            &p,
            None,
            Timestamp(opened_at.plus_secs(RERANK_AFTER_SECS[0]).millis() - 1),
            &mut |_, _| {},
        );
        assert_eq!(pipeline.incidents()[0].incident.ranked_at, opened_at);
        assert!(pipeline.timeline.iter().all(|e| e.kind != "rerank"));
    }

    /// A webhook's alert about `labels`, firing since `started`, heard of at `secs`.
    fn alert(labels: &[(&str, &str)], firing: bool, started: i64, secs: i64) -> (AlertNote, Anomaly) {
        use cellwarden_models::alert::{Alert, AlertStatus};
        let a = Alert {
            status: if firing { AlertStatus::Firing } else { AlertStatus::Resolved },
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            annotations: Default::default(),
            starts_at: Some(at(started)),
            ends_at: None,
            fingerprint: format!("{labels:?}"),
            generator_url: String::new(),
        };
        let note = crate::alerts::note_of(&a, at(secs));
        let anomaly = crate::alerts::anomaly_of(&a, &note);
        (note, anomaly)
    }

    #[test]
    fn an_alert_about_an_incidents_service_joins_it_and_is_weighed_in_its_ranking() {
        let p = prepared();
        let mut pipeline = Pipeline::new();
        pipeline.advance(&p, None, at(T0_SECS + 60), &mut |_, _| {});
        assert_eq!(pipeline.incidents().len(), 1);
        let labels = [("alertname", "AHighErrorRate"), ("service", "a"), ("severity", "critical")];
        let (note, anomaly) = alert(&labels, true, T0_SECS + 30, T0_SECS + 90);
        assert_eq!(pipeline.alert(&p, None, note, anomaly), AlertOutcome::Joined(0));
        let inc = &pipeline.incidents()[0].incident;
        assert_eq!(inc.alerts.len(), 1);
        assert_eq!(inc.ranked_at, at(T0_SECS + 90), "ranked again with the alert");
        assert_eq!(top(&pipeline), "a");
        let evidence: Vec<&str> = inc.candidates[0].evidence.iter().map(|e| e.source.as_str()).collect();
        assert!(evidence.contains(&"detector:alertmanager:error_ratio"), "{evidence:?}");
        // Alertmanager repeats a firing alert: nothing new.
        let (note, anomaly) = alert(&labels, true, T0_SECS + 30, T0_SECS + 150);
        assert_eq!(pipeline.alert(&p, None, note, anomaly), AlertOutcome::Noted);
        assert_eq!(pipeline.incidents()[0].incident.alerts.len(), 1);
        assert_eq!(pipeline.incidents()[0].incident.alerts[0].seen_at, at(T0_SECS + 150));
        // Its resolution is a change to the same incident.
        let (note, anomaly) = alert(&labels, false, T0_SECS + 30, T0_SECS + 300);
        assert_eq!(pipeline.alert(&p, None, note, anomaly), AlertOutcome::Joined(0));
        assert!(!pipeline.incidents()[0].incident.alerts[0].firing);
        assert_eq!(pipeline.incidents().len(), 1);
        let texts: Vec<&str> = pipeline
            .timeline
            .iter()
            .filter(|e| e.kind == "alert")
            .map(|e| e.text.as_str())
            .collect();
        assert!(texts[0].contains("AHighErrorRate joined it (about service a)"), "{texts:?}");
        assert!(texts[1].contains("AHighErrorRate resolved"), "{texts:?}");
    }

    #[test]
    fn an_alert_about_something_else_opens_an_incident_that_blames_its_entity() {
        let p = prepared();
        let mut pipeline = Pipeline::new();
        pipeline.advance(&p, None, at(T0_SECS + 60), &mut |_, _| {});
        let (note, anomaly) = alert(
            &[("alertname", "CardSchemeErrors"), ("provider", "card-scheme")],
            true,
            T0_SECS + 30,
            T0_SECS + 90,
        );
        let AlertOutcome::Opened(plan) = pipeline.alert(&p, None, note, anomaly) else {
            panic!("a provider alert should open its own incident")
        };
        assert_eq!(pipeline.incidents().len(), 2);
        let inc = &pipeline.incidents()[1].incident;
        assert_eq!(inc.class, IncidentClass::Fault);
        assert_eq!(inc.alerts[0].name, "CardSchemeErrors");
        let c = &inc.candidates[0];
        assert_eq!(c.entity, Entity::new(cellwarden_models::EntityKind::Provider, "card-scheme"));
        assert_eq!(c.class, cellwarden_models::CauseClass::External);
        // The plan is the rules' and guards' for an external provider (decided as for any incident).
        assert_eq!(plan, pipeline.incidents()[1].plan);
        assert!(pipeline
            .timeline
            .iter()
            .any(|e| e.kind == "incident" && e.text.contains("by Alertmanager alert CardSchemeErrors")));
        // Reranks are scheduled for it as for any incident.
        assert!(pipeline.reranks.iter().any(|&(_, i)| i == 1));
    }

    /// An alert that had been firing for an hour when first heard opens an incident that stays
    /// open while the alert fires — its `startsAt` is no sign of calm — and resolves the hold
    /// after Alertmanager says it resolved.
    #[test]
    fn an_incident_stays_open_while_its_alert_fires_and_resolves_the_hold_after_it_stops() {
        let p = prepared();
        let mut pipeline = Pipeline::new();
        let labels = [("alertname", "LedgerHighMemory"), ("provider", "card-scheme")];
        let (note, anomaly) = alert(&labels, true, T0_SECS - 3600, T0_SECS);
        assert!(matches!(pipeline.alert(&p, None, note, anomaly), AlertOutcome::Opened(_)));
        let phase = |pl: &Pipeline| {
            pl.incidents()
                .iter()
                .find(|r| !r.incident.alerts.is_empty())
                .unwrap()
                .lifecycle
                .phase
        };
        for secs in [60, RESOLVE_HOLD_SECS + 60, 3 * RESOLVE_HOLD_SECS] {
            pipeline.resolve_calm(at(T0_SECS + secs));
            assert!(phase(&pipeline).is_active(), "resolved {secs} s in while its alert fires");
        }
        let resolved_at = T0_SECS + 3 * RESOLVE_HOLD_SECS + 30;
        let (note, anomaly) = alert(&labels, false, T0_SECS - 3600, resolved_at);
        assert!(matches!(pipeline.alert(&p, None, note, anomaly), AlertOutcome::Joined(_)));
        pipeline.resolve_calm(at(resolved_at + RESOLVE_HOLD_SECS - 15));
        assert!(
            phase(&pipeline).is_active(),
            "resolved before the hold after the alert's resolution"
        );
        pipeline.resolve_calm(at(resolved_at + RESOLVE_HOLD_SECS));
        assert_eq!(phase(&pipeline), Phase::Resolved);
    }

    #[test]
    fn an_alert_resolved_long_ago_that_fires_again_opens_a_new_incident() {
        let p = prepared();
        let mut pipeline = Pipeline::new();
        let labels = [("alertname", "LedgerDown"), ("service", "ledger"), ("cell", "cell-2")];
        let (note, anomaly) = alert(&labels, true, 50, 100);
        assert!(matches!(pipeline.alert(&p, None, note, anomaly), AlertOutcome::Opened(_)));
        // An alert whose labels name nothing opens and joins nothing; neither does a watchdog.
        let (note, anomaly) = alert(&[("alertname", "CheckoutSloBurn")], true, 150, 200);
        assert_eq!(pipeline.alert(&p, None, note, anomaly), AlertOutcome::Noted);
        let (note, anomaly) = alert(&[("alertname", "Watchdog"), ("service", "x"), ("severity", "none")], true, 150, 200);
        assert_eq!(pipeline.alert(&p, None, note, anomaly), AlertOutcome::Noted);
        assert_eq!(pipeline.incidents()[0].incident.alerts.len(), 1);
        let (note, anomaly) = alert(&labels, false, 50, 700);
        assert_eq!(pipeline.alert(&p, None, note, anomaly), AlertOutcome::Joined(0));
        // Resolved, then firing again from the same start (a flap): evidence again, same incident.
        let (note, anomaly) = alert(&labels, true, 50, 760);
        assert_eq!(pipeline.alert(&p, None, note, anomaly), AlertOutcome::Joined(0));
        assert_eq!(pipeline.incidents()[0].incident.ranked_at, at(760));
        let (note, anomaly) = alert(&labels, false, 50, 800);
        assert_eq!(pipeline.alert(&p, None, note, anomaly), AlertOutcome::Joined(0));
        // A new episode (a later startsAt) long after: an incident of its own.
        let (note, anomaly) = alert(&labels, true, 2400, 800 + ALERT_JOIN_SECS + 1);
        assert!(matches!(pipeline.alert(&p, None, note, anomaly), AlertOutcome::Opened(_)));
        assert_eq!(pipeline.incidents().len(), 2);
        assert_eq!(pipeline.incidents()[1].incident.candidates[0].entity.name, "cell-2/ledger");
        // A resolution of an alert no incident knows is only noted.
        let (note, anomaly) = alert(&[("alertname", "Other"), ("service", "x")], false, 4000, 5000);
        assert_eq!(pipeline.alert(&p, None, note, anomaly), AlertOutcome::Noted);
        assert_eq!(pipeline.incidents().len(), 2);
    }

    #[test]
    fn the_detectors_alarm_joins_the_incident_an_alert_about_it_opened_when_that_one_acts() {
        let p = prepared();
        let mut pipeline = Pipeline::new();
        // Alertmanager is first: an alert about `a` before its errors reach the detector.
        let (note, anomaly) = alert(
            &[("alertname", "AErrors"), ("service", "a"), ("cell", "cell-1")],
            true,
            T0_SECS - 60,
            T0_SECS - 30,
        );
        pipeline.advance(&p, None, at(T0_SECS - 30), &mut |_, _| {});
        assert!(matches!(pipeline.alert(&p, None, note, anomaly), AlertOutcome::Opened(_)));
        let events = pipeline.advance(&p, None, at(T0_SECS + 60), &mut |_, _| {});
        assert_eq!(opened_count(&events), 0, "the alarm made no second plan");
        assert_eq!(pipeline.incidents().len(), 1);
        assert!(events.contains(&EngineEvent::Joined {
            index: 0,
            by: JoinedBy::Alarm
        }));
        let inc = &pipeline.incidents()[0].incident;
        assert!(inc.anomalies.iter().any(|a| a.detector != crate::alerts::ALERT_DETECTOR));
        assert!(
            inc.candidates[0].entity.matches(&Entity::service(None, "a")),
            "{:?}",
            inc.candidates[0]
        );
        assert!(pipeline.incidents()[0].plan.actions.iter().any(|a| a.kind != ActionKind::Notify));
        assert!(pipeline
            .timeline
            .iter()
            .any(|e| e.text.contains("an alarm of 1 anomalous series (a) joined it")));
    }

    #[test]
    fn an_alarm_next_to_an_alert_incident_that_could_do_nothing_opens_its_own() {
        let p = prepared();
        let mut pipeline = Pipeline::new();
        // An alert about a node: nothing the rules would do about `a`'s errors.
        let (note, anomaly) = alert(
            &[("alertname", "NodeDiskPressure"), ("node", "n1")],
            true,
            T0_SECS - 60,
            T0_SECS - 30,
        );
        pipeline.advance(&p, None, at(T0_SECS - 30), &mut |_, _| {});
        assert!(matches!(pipeline.alert(&p, None, note, anomaly), AlertOutcome::Opened(_)));
        let events = pipeline.advance(&p, None, at(T0_SECS + 60), &mut |_, _| {});
        assert!(!events.iter().any(|e| matches!(e, EngineEvent::Joined { .. })));
        assert_eq!(pipeline.incidents().len(), 2, "the alarm about `a` is an incident of its own");
    }
}
