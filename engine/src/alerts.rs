//! Alertmanager alerts as incident evidence. Pure: a received alert in, the note an incident keeps
//! and the anomaly the ranking weighs out. [`crate::pipeline::Pipeline::alert`] decides whether an
//! alert opens an incident or joins one.

use cellwarden_models::alert::{Alert, AlertStatus};
use cellwarden_models::incident::ALERT_SERIES_METRIC;
use cellwarden_models::{AlertNote, Anomaly, Entity, EntityKind, SeriesKey, Signal, Timestamp};

/// The `detector` of an alert's anomaly.
pub const ALERT_DETECTOR: &str = "alertmanager";

/// What an incident keeps of `alert`, heard of at `now`.
pub fn note_of(alert: &Alert, now: Timestamp) -> AlertNote {
    let summary = alert
        .annotations
        .get("summary")
        .or(alert.annotations.get("description"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    AlertNote {
        fingerprint: if alert.fingerprint.is_empty() {
            // Alertmanager always sends one; a hand-made payload may not. Its labels identify it.
            format!("labels:{:?}", alert.labels)
        } else {
            alert.fingerprint.clone()
        },
        name: alert.labels.get("alertname").cloned().unwrap_or_else(|| "unnamed".into()),
        firing: alert.status == AlertStatus::Firing,
        starts_at: alert.starts_at,
        seen_at: now,
        entity: entity_of(alert),
        severity: alert.labels.get("severity").cloned(),
        summary,
        generator_url: alert.generator_url.clone(),
    }
}

/// The entity an alert's labels name, the object the alert is about before the labels of
/// whatever measured it (kube-state-metrics' and node-exporter's alerts carry their own `job`
/// and `service` too): a provider; else the workload its Kubernetes labels name
/// ([`Entity::workload_of_labels`]: `deployment`, `pod`, `container`, …); else a node; else the
/// `service` or `job` label's service (a `job` of `namespace/name`, as Kubernetes service
/// discovery names jobs, gives both); else a zone (`zone` or `topology_kubernetes_io_zone`) or a
/// cell (`cell` only: a namespace alone is not known to be a cell). A service's cell is its
/// `cell` label, else its `namespace`. `None` when the labels name none of these.
pub fn entity_of(alert: &Alert) -> Option<Entity> {
    let l = |k: &str| alert.labels.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if let Some(p) = l("provider") {
        return Some(Entity::new(EntityKind::Provider, p));
    }
    let cell = l("cell").or(l("namespace"));
    if let Some(w) = Entity::workload_of_labels(|k| alert.labels.get(k).map(String::as_str)) {
        return Some(Entity::service(cell, w));
    }
    if let Some(n) = l("node") {
        return Some(Entity::new(EntityKind::Node, n));
    }
    if let Some(s) = l("service").or(l("job")) {
        return Some(match (cell, s.rsplit_once('/')) {
            (Some(c), Some((_, name))) => Entity::service(Some(c), name),
            (None, Some((c, name))) => Entity::service(Some(c), name),
            (c, None) => Entity::service(c, s),
        });
    }
    if let Some(z) = l("zone").or(l("topology_kubernetes_io_zone")) {
        return Some(Entity::new(EntityKind::Zone, z));
    }
    l("cell").map(|c| Entity::new(EntityKind::Cell, c))
}

/// The words of an alert name: `PaymentsP99LatencyHigh` → payments, p99, latency, high;
/// `kafka_consumer_lag` → kafka, consumer, lag.
fn words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The signal an alert is about: its `signal` label when it names one of ours, else a guess
/// from whole words of its name (latency, errors, memory, lag, CPU); [`Signal::Other`] when none
/// fits.
pub fn signal_of(alert: &Alert) -> Signal {
    if let Some(s) = alert.labels.get("signal").and_then(|s| Signal::parse(s)) {
        return s;
    }
    let words = words(alert.labels.get("alertname").map(String::as_str).unwrap_or(""));
    let has = |set: &[&str]| words.iter().any(|w| set.contains(&w.as_str()));
    if has(&["latency", "slow", "duration", "p99", "p95", "p90"]) {
        Signal::Latency
    } else if has(&[
        "error",
        "errors",
        "failure",
        "failures",
        "failing",
        "failed",
        "5xx",
        "unavailable",
        "down",
    ]) {
        Signal::ErrorRatio
    } else if has(&["memory", "oom", "oomkilled"]) {
        Signal::Memory
    } else if has(&["lag", "backlog", "queue"]) {
        Signal::QueueLag
    } else if has(&["cpu", "throttling", "throttled"]) {
        Signal::Cpu
    } else {
        Signal::Other
    }
}

/// How strongly a firing alert points at its entity, by its `severity` label. Why these: an
/// alert is a person's rule crossing its threshold — strong evidence, but not measured against a
/// baseline the way a detector's score is, so it never outweighs a clear detector finding (≤ 0.9)
/// and a page counts more than a ticket.
pub fn score_of(severity: Option<&str>) -> f64 {
    match severity.map(str::to_ascii_lowercase).as_deref() {
        Some("critical" | "page" | "error" | "high") => 0.9,
        Some("info" | "low" | "none") => 0.4,
        _ => 0.7,
    }
}

/// The anomaly a firing alert adds to its incident: evidence about the alert's entity, at the
/// time it started firing (never after it was heard of). Its level is a placeholder (1 against
/// 0) until [`measure`] finds the entity's own series of that signal.
pub fn anomaly_of(alert: &Alert, note: &AlertNote) -> Anomaly {
    let mut labels: Vec<(String, String)> = vec![("alertname".into(), note.name.clone())];
    if let Some(e) = &note.entity {
        labels.push((e.kind.as_str().into(), e.name.clone()));
    }
    let t = note.starts_at.map_or(note.seen_at, |s| s.min(note.seen_at));
    let mut explanation = format!("Alertmanager alert {} firing", note.name);
    if let Some(t) = note.starts_at {
        explanation.push_str(&format!(" since {t}"));
    }
    if !note.summary.is_empty() {
        explanation.push_str(&format!(": {}", note.summary));
    }
    explanation.push('.');
    Anomaly {
        t,
        series: SeriesKey::new(ALERT_SERIES_METRIC, labels),
        signal: signal_of(alert),
        entity: note.entity.clone(),
        score: score_of(note.severity.as_deref()),
        observed: 1.0,
        expected: 0.0,
        detector: ALERT_DETECTOR.into(),
        explanation,
    }
}

/// Gives an alert's anomaly the level the telemetry shows: the entity's own series of the
/// alert's signal in `series` (one matching the entity exactly, else its service in any cell),
/// its last value up to `now` as observed and the median of the 30 minutes before the alert
/// started as expected. Unchanged when no such series has points on both sides.
pub fn measure(anomaly: &mut Anomaly, series: &[cellwarden_detector::signals::SignalSeries], now: Timestamp) {
    let Some(entity) = &anomaly.entity else { return };
    if matches!(anomaly.signal, Signal::Other) {
        return;
    }
    let of = |exact: bool| {
        series.iter().find(|s| {
            s.signal == anomaly.signal
                && s.entity
                    .as_ref()
                    .is_some_and(|e| if exact { e == entity } else { e.matches(entity) })
        })
    };
    let Some(s) = of(true).or_else(|| of(false)) else { return };
    let start = anomaly.t;
    let Some(last) = s.points.iter().rev().find(|p| p.t <= now && p.value.is_finite()) else {
        return;
    };
    let mut before: Vec<f64> = s
        .points
        .iter()
        .filter(|p| p.t < start && p.t >= start.plus_secs(-1800) && p.value.is_finite())
        .map(|p| p.value)
        .collect();
    if before.is_empty() {
        return;
    }
    before.sort_by(f64::total_cmp);
    anomaly.series = s.key.clone();
    anomaly.observed = last.value;
    anomaly.expected = before[before.len() / 2];
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn alert(labels: &[(&str, &str)]) -> Alert {
        Alert {
            status: AlertStatus::Firing,
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            annotations: BTreeMap::from([("summary".to_string(), "  Ledger answers 5xx.  ".to_string())]),
            starts_at: Some(Timestamp(1_000_000)),
            ends_at: None,
            fingerprint: "f1".into(),
            generator_url: "http://prometheus/graph?g0.expr=x".into(),
        }
    }

    #[test]
    fn labels_name_the_entity_in_kubernetes_terms() {
        let e = |l: &[(&str, &str)]| entity_of(&alert(l));
        assert_eq!(
            e(&[("provider", "card-scheme"), ("service", "payments")]),
            Some(Entity::new(EntityKind::Provider, "card-scheme"))
        );
        assert_eq!(
            e(&[("job", "ledger"), ("namespace", "cell-2")]),
            Some(Entity::service(Some("cell-2"), "ledger"))
        );
        assert_eq!(e(&[("job", "cell-3/ledger")]), Some(Entity::service(Some("cell-3"), "ledger")));
        assert_eq!(e(&[("service", "ledger")]), Some(Entity::service(None, "ledger")));
        assert_eq!(
            e(&[("node", "node-7"), ("namespace", "cell-2")]),
            Some(Entity::new(EntityKind::Node, "node-7"))
        );
        assert_eq!(
            e(&[("topology_kubernetes_io_zone", "eu-west-1b")]),
            Some(Entity::new(EntityKind::Zone, "eu-west-1b"))
        );
        assert_eq!(e(&[("cell", "cell-4")]), Some(Entity::new(EntityKind::Cell, "cell-4")));
        // The object the alert is about, not the exporter that measured it.
        let crash = [
            ("namespace", "cell-2"),
            ("pod", "ledger-7d9f8b6c5d-x2x7q"),
            ("job", "kube-state-metrics"),
            ("service", "kube-state-metrics"),
        ];
        assert_eq!(e(&crash), Some(Entity::service(Some("cell-2"), "ledger")));
        let node_down = [("node", "node-7"), ("job", "kube-state-metrics"), ("service", "kube-state-metrics")];
        assert_eq!(e(&node_down), Some(Entity::new(EntityKind::Node, "node-7")));
        // A namespace alone is not known to be a cell.
        assert_eq!(e(&[("namespace", "monitoring")]), None);
        assert_eq!(e(&[("alertname", "Watchdog"), ("job", "")]), None);
    }

    #[test]
    fn a_firing_alert_is_evidence_at_its_start_never_after_it_was_heard_of() {
        let a = alert(&[
            ("alertname", "LedgerHighErrorRate"),
            ("service", "ledger"),
            ("cell", "cell-2"),
            ("severity", "critical"),
        ]);
        let note = note_of(&a, Timestamp(2_000_000));
        assert_eq!(note.summary, "Ledger answers 5xx.");
        assert!(note.firing);
        let an = anomaly_of(&a, &note);
        assert_eq!(an.t, Timestamp(1_000_000));
        assert_eq!(an.signal, Signal::ErrorRatio);
        assert_eq!(an.score, 0.9);
        assert_eq!(an.entity, Some(Entity::service(Some("cell-2"), "ledger")));
        assert!(an.explanation.contains("LedgerHighErrorRate firing since"), "{}", an.explanation);
        // A start in the future (a clock ahead of ours) is clamped to when we heard of it.
        let mut ahead = a.clone();
        ahead.starts_at = Some(Timestamp(9_000_000));
        let note = note_of(&ahead, Timestamp(2_000_000));
        assert_eq!(anomaly_of(&ahead, &note).t, Timestamp(2_000_000));
    }

    #[test]
    fn an_alert_is_measured_on_its_entitys_own_series_when_there_is_one() {
        use cellwarden_detector::signals::SignalSeries;
        use cellwarden_models::Sample;
        let a = alert(&[("alertname", "LedgerHighErrorRate"), ("service", "ledger"), ("cell", "cell-2")]);
        let note = note_of(&a, Timestamp(2_000_000));
        let mut an = anomaly_of(&a, &note);
        assert_eq!(an.series.metric, ALERT_SERIES_METRIC);
        let ratio = |cell: &str, level: f64| SignalSeries {
            key: SeriesKey::new("http_server_requests:error_ratio", [("cell".to_string(), cell.to_string())]),
            signal: Signal::ErrorRatio,
            entity: Some(Entity::service(Some(cell), "ledger")),
            points: (0..200)
                .map(|i| Sample {
                    t: Timestamp(i * 15_000),
                    value: if i * 15_000 >= 1_000_000 { level } else { 0.01 },
                })
                .collect(),
        };
        // Another cell's ledger is not this one's.
        measure(&mut an, &[ratio("cell-1", 0.9)], Timestamp(2_000_000));
        assert_eq!((an.observed, an.expected), (1.0, 0.0));
        measure(&mut an, &[ratio("cell-1", 0.9), ratio("cell-2", 0.12)], Timestamp(2_000_000));
        assert_eq!((an.observed, an.expected), (0.12, 0.01));
        assert_eq!(an.series.label("cell"), Some("cell-2"));
    }

    #[test]
    fn the_signal_comes_from_a_label_or_the_alert_name() {
        let s = |l: &[(&str, &str)]| signal_of(&alert(l));
        assert_eq!(s(&[("alertname", "X"), ("signal", "queue_lag")]), Signal::QueueLag);
        assert_eq!(s(&[("alertname", "PaymentsP99LatencyHigh")]), Signal::Latency);
        assert_eq!(s(&[("alertname", "KubePodOOMKilled")]), Signal::Memory);
        assert_eq!(s(&[("alertname", "KafkaConsumerLag")]), Signal::QueueLag);
        assert_eq!(s(&[("alertname", "Watchdog")]), Signal::Other);
        // Whole words only: a failover or a feature flag is no error rate or queue lag.
        assert_eq!(s(&[("alertname", "ProviderFailoverActive")]), Signal::Other);
        assert_eq!(s(&[("alertname", "FeatureFlagChanged")]), Signal::Other);
        assert_eq!(s(&[("alertname", "ledger_high_error_rate")]), Signal::ErrorRatio);
        assert_eq!(score_of(Some("warning")), 0.7);
        assert_eq!(score_of(None), 0.7);
        assert_eq!(score_of(Some("Info")), 0.4);
    }
}
