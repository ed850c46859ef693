//! Verification: every action states the effect it should have and by when, in a form the
//! operator can check against fresh telemetry; an action whose effect does not come is reverted
//! (where it can be) and escalated to a person.
//!
//! Pure: the caller passes the incident, the action, the time and the samples; nothing here reads
//! a clock or the network.
//!
//! What is watched: the incident's anomaly that best matches the action — the target's own
//! signal the action addresses (memory for a restart, latency or errors for a scale), else the
//! incident's strongest anomaly (a reroute or a failover must bring the symptom that opened the
//! incident back) — as the signal of its entity (the highest of the entity's series at each
//! time: pods come and go with a restart, the service stays). The effect has come when it has
//! closed at least half the gap between its level when the action was taken and its baseline;
//! for a memory forecast (memory heading for its limit, not yet above a baseline) when it has
//! fallen 20% below its level at the action and under 80% of the limit.
//!
//! A rollback promises more than a level: that the trend the bad revision brought stopped (a
//! restart resets a leak, only the revision before it ends it). Its expectation carries a trend
//! window ([`ROLLBACK_TREND_WINDOW_SECS`]): it passes once the level has come down and then,
//! over that window, rose by less than [`TREND_RISE_SHARE`] of the drop it was asked for. That
//! its pod template is the earlier revision's is read back by the actuator
//! ([`template_matches`]), as a cordon's nodes are.

use cellwarden_models::incident::ALERT_SERIES_METRIC;
use cellwarden_models::{Action, ActionKind, Anomaly, Entity, EntityKind, Incident, Sample, SeriesKey, Signal, Timestamp};
use serde::{Deserialize, Serialize};

/// Share of the gap between the level at the action and the baseline that must close.
const GAP_CLOSED: f64 = 0.5;
/// Points averaged to judge the level after the action (a single good scrape proves nothing).
const JUDGE_POINTS: usize = 3;
/// How long a rolled-back workload's level is watched after it came down, for its trend. Why
/// 10 minutes: a leak refills a restarted pod at its own rate, so within 10 minutes it has
/// climbed back by a large share of what it took it to be noticed (in the simulator the leak
/// is noticed 10–25 minutes after it began), while a flat series moves only by its noise.
pub const ROLLBACK_TREND_WINDOW_SECS: u64 = 600;
/// The most the level may rise over the trend window, as a share of the drop the action was
/// asked for (level at the action minus the level wanted, itself half the anomaly's gap): a
/// climb of a quarter of the gap that opened the incident within 10 minutes is still "rising".
const TREND_RISE_SHARE: f64 = 0.5;
/// Fewest points over the trend window to fit a slope through (20 at a 30 s scrape).
const TREND_POINTS: usize = 8;

/// What an action promised, in checkable form (stored in the Incident's status).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    /// The series that showed the anomaly (for people).
    pub series: SeriesKey,
    /// The entity whose signal is watched (`None`: the series itself).
    pub entity: Option<Entity>,
    pub signal: Signal,
    /// Its level when the action was taken.
    pub level_at_action: f64,
    /// The level it must come back to (or under).
    pub wanted_at_most: f64,
    /// When the action was taken.
    pub acted_at: Timestamp,
    /// When the effect must have come.
    pub deadline: Timestamp,
    /// Seconds the level must also stay flat once down (0: the level alone is judged).
    #[serde(default)]
    pub trend_window_secs: u64,
}

impl Expectation {
    /// One sentence for the Incident status and the report.
    pub fn describe(&self) -> String {
        let trend = if self.trend_window_secs > 0 {
            format!(", then no longer rising over {} min", self.trend_window_secs / 60)
        } else {
            String::new()
        };
        format!(
            "{} of {} from {} down to at most {}{trend} by {}",
            self.signal.label(),
            short(&self.series),
            fmt(self.signal, self.level_at_action),
            fmt(self.signal, self.wanted_at_most),
            self.deadline.to_rfc3339()
        )
    }
}

fn fmt(signal: Signal, x: f64) -> String {
    cellwarden_models::units::value(signal, x)
}

/// A series as a person names it: its pod when it has one (`pod ledger-7d9`), else the key.
fn short(series: &SeriesKey) -> String {
    match series.label("pod") {
        Some(pod) => format!("pod {pod}"),
        None => series.to_string(),
    }
}

/// The verdict on an expectation at some time.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Not decided yet: the deadline has not come and the effect has not shown.
    Pending,
    /// The effect came; the sentence says what was seen.
    Passed(String),
    /// The deadline passed without the effect.
    Failed(String),
}

/// The signals an action addresses, most relevant first.
fn signals_for(kind: ActionKind) -> &'static [Signal] {
    match kind {
        ActionKind::RestartPods => &[Signal::Memory, Signal::QueueLag, Signal::ErrorRatio, Signal::Latency],
        ActionKind::Rollback => &[Signal::Memory, Signal::ErrorRatio, Signal::Latency],
        ActionKind::Scale => &[Signal::Latency, Signal::Cpu, Signal::ErrorRatio, Signal::QueueLag, Signal::Memory],
        ActionKind::FailoverProvider | ActionKind::Reroute | ActionKind::Cordon | ActionKind::CircuitBreak => {
            &[Signal::ErrorRatio, Signal::Latency]
        }
        ActionKind::Notify => &[],
    }
}

/// A memory forecast: the value is still under its limit (`expected` holds the limit) but
/// heading for it.
fn is_memory_forecast(a: &Anomaly) -> bool {
    a.signal == Signal::Memory && a.detector == "forecast" && a.observed < a.expected
}

/// Whether an anomaly describes the action's target (`cell/service`, a cell, a provider).
fn concerns(a: &Anomaly, target: &str) -> bool {
    let Some(e) = &a.entity else { return false };
    match e.kind {
        EntityKind::Service => e.name == target || e.name.split('/').next() == Some(target),
        _ => e.name == target,
    }
}

/// The expectation of `action`, taken at `now`, for `incident`; `None` when nothing checkable
/// was promised (a notification, or an incident without a hurting anomaly).
pub fn expect(action: &Action, incident: &Incident, now: Timestamp) -> Option<Expectation> {
    // A cordon's own effect (nodes unschedulable) is read back by the actuator; its traffic
    // effect is the reroute's, verified there.
    if matches!(action.kind, ActionKind::Notify | ActionKind::Cordon) || action.verify_within_secs == 0 {
        return None;
    }
    // Node and zone health is not what an action can change (a reroute moves traffic off a
    // broken node; the node stays broken): only series of user-facing work are watched.
    let hurting: Vec<&Anomaly> = incident
        .anomalies
        .iter()
        .filter(|a| (a.is_increase() || is_memory_forecast(a)) && a.observed.is_finite())
        // An alert no telemetry measured has no level to hold an action to.
        .filter(|a| a.series.metric != ALERT_SERIES_METRIC)
        .filter(|a| {
            !a.entity
                .as_ref()
                .is_some_and(|e| matches!(e.kind, EntityKind::Node | EntityKind::Zone))
        })
        .collect();
    let mut chosen = None;
    'outer: for s in signals_for(action.kind) {
        for a in &hurting {
            if a.signal == *s && concerns(a, &action.target) {
                chosen = Some(*a);
                break 'outer;
            }
        }
    }
    let a = chosen.or_else(|| {
        hurting
            .iter()
            .filter(|a| signals_for(action.kind).contains(&a.signal))
            .max_by(|x, y| x.score.total_cmp(&y.score))
            .copied()
    })?;
    let wanted = if is_memory_forecast(a) {
        (0.8 * a.observed).min(0.8 * a.expected)
    } else {
        a.expected + (1.0 - GAP_CLOSED) * (a.observed - a.expected)
    };
    Some(Expectation {
        series: a.series.clone(),
        entity: a.entity.clone(),
        signal: a.signal,
        level_at_action: a.observed,
        wanted_at_most: wanted,
        acted_at: now,
        deadline: Timestamp(now.millis() + action.verify_within_secs as i64 * 1000),
        trend_window_secs: if action.kind == ActionKind::Rollback {
            ROLLBACK_TREND_WINDOW_SECS
        } else {
            0
        },
    })
}

/// Whether a Deployment's pod template (`current`, JSON) is the one a ReplicaSet of an earlier
/// revision holds (`wanted`), as a rollback promised: equal but for the `pod-template-hash`
/// label the Deployment controller adds to its ReplicaSets' templates.
pub fn template_matches(current: &serde_json::Value, wanted: &serde_json::Value) -> bool {
    let strip = |v: &serde_json::Value| {
        let mut v = v.clone();
        if let Some(labels) = v.pointer_mut("/metadata/labels").and_then(|l| l.as_object_mut()) {
            labels.remove(POD_TEMPLATE_HASH);
        }
        v
    };
    strip(current) == strip(wanted)
}

/// The label the Deployment controller puts on each ReplicaSet's pod template.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// How far the level rose over the trend window at `now`, for an expectation with one:
/// `Some(rise)` from a least-squares line through the points since the level first came down
/// (the last window of them), `None` while fewer than a window's worth are in.
fn trend_rise(exp: &Expectation, after: &[(Timestamp, f64)], now: Timestamp) -> Option<f64> {
    let down = after.iter().position(|(_, v)| *v <= exp.wanted_at_most)?;
    let since = after[down].0;
    if now.secs_since(since) < exp.trend_window_secs as f64 {
        return None;
    }
    let from = Timestamp(now.millis() - exp.trend_window_secs as i64 * 1000);
    let pts: Vec<(f64, f64)> = after[down..]
        .iter()
        .filter(|(t, _)| *t >= from)
        .map(|(t, v)| (t.secs_since(from), *v))
        .collect();
    if pts.len() < TREND_POINTS {
        return None;
    }
    let n = pts.len() as f64;
    let (mx, my) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    Some(slope * exp.trend_window_secs as f64)
}

/// Judges `exp` at `now` from the watched series' samples (any range; those after the action
/// are used).
pub fn judge(exp: &Expectation, samples: &[Sample], now: Timestamp) -> Verdict {
    let timed: Vec<(Timestamp, f64)> = samples
        .iter()
        .filter(|s| s.t > exp.acted_at && s.t <= now && s.value.is_finite())
        .map(|s| (s.t, s.value))
        .collect();
    let after: Vec<f64> = timed.iter().map(|(_, v)| *v).collect();
    let level = (after.len() >= JUDGE_POINTS).then(|| after[after.len() - JUDGE_POINTS..].iter().sum::<f64>() / JUDGE_POINTS as f64);
    if exp.trend_window_secs > 0 {
        let allowed = TREND_RISE_SHARE * (exp.level_at_action - exp.wanted_at_most).abs();
        let rise = trend_rise(exp, &timed, now);
        return match (level, rise) {
            (Some(l), Some(r)) if l <= exp.wanted_at_most && r <= allowed => Verdict::Passed(format!(
                "{} of {} at {} (was {}, wanted at most {}) and no longer rising: {} over the last {} min (at most {})",
                exp.signal.label(),
                short(&exp.series),
                fmt(exp.signal, l),
                fmt(exp.signal, exp.level_at_action),
                fmt(exp.signal, exp.wanted_at_most),
                fmt(exp.signal, r),
                exp.trend_window_secs / 60,
                fmt(exp.signal, allowed)
            )),
            _ if now < exp.deadline => Verdict::Pending,
            (_, Some(r)) if r > allowed => Verdict::Failed(format!(
                "{} of {} still rising by the deadline: {} over the last {} min (at most {}): the trend did not stop",
                exp.signal.label(),
                short(&exp.series),
                fmt(exp.signal, r),
                exp.trend_window_secs / 60,
                fmt(exp.signal, allowed)
            )),
            (Some(l), _) => Verdict::Failed(format!(
                "{} of {} at {} by the deadline (was {}, wanted at most {}, then flat for {} min)",
                exp.signal.label(),
                short(&exp.series),
                fmt(exp.signal, l),
                fmt(exp.signal, exp.level_at_action),
                fmt(exp.signal, exp.wanted_at_most),
                exp.trend_window_secs / 60
            )),
            (None, _) => Verdict::Failed(format!(
                "{} of {}: only {} sample(s) since the action, too few to tell by the deadline",
                exp.signal.label(),
                short(&exp.series),
                after.len()
            )),
        };
    }
    match level {
        Some(l) if l <= exp.wanted_at_most => Verdict::Passed(format!(
            "{} of {} at {} (was {}, wanted at most {})",
            exp.signal.label(),
            short(&exp.series),
            fmt(exp.signal, l),
            fmt(exp.signal, exp.level_at_action),
            fmt(exp.signal, exp.wanted_at_most)
        )),
        _ if now < exp.deadline => Verdict::Pending,
        Some(l) => Verdict::Failed(format!(
            "{} of {} still at {} by the deadline (was {}, wanted at most {})",
            exp.signal.label(),
            short(&exp.series),
            fmt(exp.signal, l),
            fmt(exp.signal, exp.level_at_action),
            fmt(exp.signal, exp.wanted_at_most)
        )),
        // The series (nearly) stopped reporting: traffic left it (a drained cell, a failed-over
        // provider) — the effect of moving traffic. A memory or queue series going silent
        // proves nothing and fails below.
        None if matches!(exp.signal, Signal::ErrorRatio | Signal::Latency) => Verdict::Passed(format!(
            "{} stopped reporting ({} sample(s) since the action): its traffic has moved away",
            short(&exp.series),
            after.len()
        )),
        None => Verdict::Failed(format!(
            "{} of {}: only {} sample(s) since the action, too few to tell by the deadline",
            exp.signal.label(),
            short(&exp.series),
            after.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellwarden_models::{Entity, IncidentClass};

    fn anomaly(signal: Signal, entity: Entity, observed: f64, expected: f64, score: f64) -> Anomaly {
        Anomaly {
            t: Timestamp(0),
            series: SeriesKey::new(format!("{}_{}", signal.as_str(), entity.name.replace('/', "_")), []),
            signal,
            entity: Some(entity),
            score,
            observed,
            expected,
            detector: "robust_z".into(),
            explanation: String::new(),
        }
    }

    fn incident(anomalies: Vec<Anomaly>) -> Incident {
        Incident {
            id: "inc-1".into(),
            opened_at: Timestamp(0),
            ranked_at: Timestamp(0),
            class: IncidentClass::Fault,
            anomalies,
            candidates: vec![],
            alerts: vec![],
        }
    }

    fn action(kind: ActionKind, target: &str) -> Action {
        Action {
            kind,
            target: target.into(),
            params: vec![],
            reason: String::new(),
            needs_approval: false,
            expected_effect: String::new(),
            verify_within_secs: 300,
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp(secs * 1000)
    }

    fn samples(from_secs: i64, values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Sample {
                t: at(from_secs + 15 * i as i64),
                value: *v,
            })
            .collect()
    }

    #[test]
    fn an_alert_no_telemetry_measured_promises_nothing_checkable() {
        let mut alert = anomaly(Signal::ErrorRatio, Entity::service(Some("cell-2"), "ledger"), 1.0, 0.0, 0.9);
        alert.series = SeriesKey::new(ALERT_SERIES_METRIC, [("alertname".to_string(), "LedgerErrors".to_string())]);
        alert.detector = "alertmanager".into();
        let reroute = action(ActionKind::Reroute, "cell-2");
        assert_eq!(expect(&reroute, &incident(vec![alert.clone()]), at(0)), None);
        // Measured on the service's own series, it is held to that series' level.
        alert.series = SeriesKey::new("http:error_ratio", [("cell".to_string(), "cell-2".to_string())]);
        alert.observed = 0.12;
        alert.expected = 0.01;
        let e = expect(&reroute, &incident(vec![alert]), at(0)).unwrap();
        assert_eq!((e.series.metric.as_str(), e.level_at_action), ("http:error_ratio", 0.12));
    }

    #[test]
    fn a_restart_watches_the_targets_memory_not_the_strongest_anomaly() {
        let inc = incident(vec![
            anomaly(Signal::Latency, Entity::service(Some("cell-2"), "api"), 0.9, 0.1, 0.99),
            anomaly(Signal::Memory, Entity::service(Some("cell-2"), "ledger"), 900.0, 500.0, 0.7),
        ]);
        let e = expect(&action(ActionKind::RestartPods, "cell-2/ledger"), &inc, at(100)).unwrap();
        assert_eq!(e.signal, Signal::Memory);
        assert_eq!(e.wanted_at_most, 700.0);
        assert_eq!(e.deadline, at(400));
    }

    #[test]
    fn a_failover_watches_the_strongest_error_or_latency_anomaly() {
        let inc = incident(vec![
            anomaly(Signal::Memory, Entity::service(Some("cell-1"), "ledger"), 900.0, 500.0, 0.99),
            anomaly(Signal::ErrorRatio, Entity::service(Some("cell-1"), "payments"), 0.3, 0.01, 0.9),
        ]);
        let e = expect(&action(ActionKind::FailoverProvider, "provider-a"), &inc, at(0)).unwrap();
        assert_eq!(e.signal, Signal::ErrorRatio);
        assert!((e.wanted_at_most - 0.155).abs() < 1e-12);
        assert!(expect(&action(ActionKind::Notify, "x"), &inc, at(0)).is_none());
    }

    #[test]
    fn the_verdict_waits_passes_early_and_fails_at_the_deadline() {
        let inc = incident(vec![anomaly(Signal::Memory, Entity::service(Some("c"), "s"), 900.0, 500.0, 0.9)]);
        let e = expect(&action(ActionKind::RestartPods, "c/s"), &inc, at(0)).unwrap();
        // Still high before the deadline: pending.
        let high = samples(15, &[910.0, 920.0, 930.0]);
        assert_eq!(judge(&e, &high, at(60)), Verdict::Pending);
        // Still high at the deadline: failed, and the sentence says by how much.
        let still = samples(15, &[910.0; 20]);
        match judge(&e, &still, at(300)) {
            Verdict::Failed(why) => assert!(why.contains("910") && why.contains("700"), "{why}"),
            v => panic!("{v:?}"),
        }
        // Down after the restart: passed before the deadline.
        let down = samples(15, &[510.0, 505.0, 500.0]);
        assert!(matches!(judge(&e, &down, at(60)), Verdict::Passed(_)));
        // Samples from before the action do not count.
        let before = samples(-60, &[100.0, 100.0, 100.0]);
        assert_eq!(judge(&e, &before, at(60)), Verdict::Pending);
    }

    #[test]
    fn a_memory_forecast_wants_memory_well_below_its_level_and_the_limit() {
        let mut a = anomaly(Signal::Memory, Entity::service(Some("cell-2"), "ledger"), 450.0, 512.0, 0.8);
        a.detector = "forecast".into();
        let e = expect(&action(ActionKind::RestartPods, "cell-2/ledger"), &incident(vec![a]), at(0)).unwrap();
        assert_eq!(e.wanted_at_most, 360.0);
        assert_eq!(e.entity, Some(Entity::service(Some("cell-2"), "ledger")));
    }

    #[test]
    fn node_health_is_never_what_a_reroute_is_judged_by() {
        let inc = incident(vec![
            anomaly(
                Signal::ErrorRatio,
                Entity {
                    kind: EntityKind::Node,
                    name: "node-2-1".into(),
                },
                1.0,
                0.0,
                0.99,
            ),
            anomaly(
                Signal::ErrorRatio,
                Entity {
                    kind: EntityKind::Cell,
                    name: "cell-2".into(),
                },
                0.6,
                0.0,
                0.8,
            ),
        ]);
        let e = expect(&action(ActionKind::Reroute, "cell-2"), &inc, at(0)).unwrap();
        assert!(
            e.series.to_string().contains("cell-2") && !e.series.to_string().contains("node"),
            "{}",
            e.series
        );
        assert!(expect(&action(ActionKind::Cordon, "cell-2"), &inc, at(0)).is_none());
        let only_node = incident(vec![anomaly(
            Signal::ErrorRatio,
            Entity {
                kind: EntityKind::Node,
                name: "n".into(),
            },
            1.0,
            0.0,
            0.9,
        )]);
        assert!(expect(&action(ActionKind::Reroute, "cell-2"), &only_node, at(0)).is_none());
    }

    #[test]
    fn a_series_that_stops_reporting_after_a_reroute_is_traffic_moved_away() {
        let inc = incident(vec![anomaly(
            Signal::ErrorRatio,
            Entity::service(Some("cell-2"), "api"),
            0.5,
            0.0,
            0.9,
        )]);
        let e = expect(&action(ActionKind::Reroute, "cell-2"), &inc, at(0)).unwrap();
        assert!(matches!(judge(&e, &samples(-60, &[0.5, 0.5]), at(300)), Verdict::Passed(_)));
        // A memory series going silent proves nothing.
        let inc = incident(vec![anomaly(Signal::Memory, Entity::service(Some("c"), "s"), 900.0, 500.0, 0.9)]);
        let e = expect(&action(ActionKind::RestartPods, "c/s"), &inc, at(0)).unwrap();
        assert!(matches!(judge(&e, &[], at(300)), Verdict::Failed(_)));
    }

    #[test]
    fn a_rollback_passes_when_the_level_comes_down_and_stays_flat() {
        let inc = incident(vec![anomaly(Signal::Memory, Entity::service(Some("c"), "s"), 900.0, 500.0, 0.9)]);
        let mut rb = action(ActionKind::Rollback, "c/s");
        rb.verify_within_secs = 1200;
        let e = expect(&rb, &inc, at(0)).unwrap();
        assert_eq!((e.wanted_at_most, e.trend_window_secs), (700.0, ROLLBACK_TREND_WINDOW_SECS));
        // Down at once and flat (30 s points): pending until ten minutes of it are in, then passed.
        let flat = |n: usize| {
            (0..n)
                .map(|i| Sample {
                    t: at(30 * (i as i64 + 1)),
                    value: 500.0 + if i % 2 == 0 { 3.0 } else { -3.0 },
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(judge(&e, &flat(10), at(300)), Verdict::Pending);
        assert!(
            matches!(judge(&e, &flat(21), at(630)), Verdict::Passed(_)),
            "{:?}",
            judge(&e, &flat(21), at(630))
        );
    }

    #[test]
    fn a_rollback_whose_symptom_keeps_rising_fails_though_its_level_came_down() {
        // What a restart does to a leak: back to 500, then up again at the leak's pace.
        let inc = incident(vec![anomaly(Signal::Memory, Entity::service(Some("c"), "s"), 900.0, 500.0, 0.9)]);
        let mut rb = action(ActionKind::Rollback, "c/s");
        rb.verify_within_secs = 1200;
        let e = expect(&rb, &inc, at(0)).unwrap();
        // 0.25 per second: 150 in ten minutes, over the 100 allowed (half of 900 - 700).
        let leak: Vec<Sample> = (0..40)
            .map(|i| Sample {
                t: at(30 * (i + 1)),
                value: 500.0 + 0.25 * 30.0 * i as f64,
            })
            .collect();
        let by = |secs: i64| leak.iter().filter(|s| s.t <= at(secs)).cloned().collect::<Vec<_>>();
        assert_eq!(judge(&e, &by(900), at(900)), Verdict::Pending);
        match judge(&e, &by(1200), at(1200)) {
            Verdict::Failed(why) => assert!(why.contains("still rising"), "{why}"),
            v => panic!("{v:?}"),
        }
        // A restart is judged by its level alone: the same samples pass it.
        let restart = expect(&action(ActionKind::RestartPods, "c/s"), &inc, at(0)).unwrap();
        assert!(matches!(judge(&restart, &by(120), at(120)), Verdict::Passed(_)));
    }

    #[test]
    fn a_template_matches_its_revision_but_for_the_pod_template_hash() {
        let rs = serde_json::json!({"metadata": {"labels": {"app": "ledger", "pod-template-hash": "7d9c"}}, "spec": {"containers": [{"name": "ledger", "image": "ledger:1"}]}});
        let dep = serde_json::json!({"metadata": {"labels": {"app": "ledger"}}, "spec": {"containers": [{"name": "ledger", "image": "ledger:1"}]}});
        assert!(template_matches(&dep, &rs));
        let newer = serde_json::json!({"metadata": {"labels": {"app": "ledger"}}, "spec": {"containers": [{"name": "ledger", "image": "ledger:2"}]}});
        assert!(!template_matches(&newer, &rs));
    }
}
