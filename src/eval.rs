//! Scoring a replay against `truth.yaml`, exactly as FIXTURES.md's "How eval scores a fixture"
//! says, and the summary over many cases. Pure: alarms, warnings and candidates in, figures out.

use cellwarden_models::truth::Truth;
use cellwarden_models::{Candidate, Entity, Incident, Timestamp};
use serde::Serialize;

/// One candidate as eval prints it (the `--json` keys are an interface: keep them stable).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopEntry {
    pub entity: String,
    pub kind: String,
    pub class: String,
    pub score: f64,
}

impl From<&Candidate> for TopEntry {
    fn from(c: &Candidate) -> Self {
        TopEntry {
            entity: c.entity.name.clone(),
            kind: c.entity.kind.as_str().into(),
            class: c.class.as_str().into(),
            score: c.score,
        }
    }
}

/// The score of one case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseScore {
    pub case: String,
    /// Fault kind, for the breakdown (`healthy` for `faults: []`). Not part of the JSON contract.
    #[serde(skip)]
    pub kind: String,
    pub detected: bool,
    pub delay_s: Option<f64>,
    pub lead_s: Option<f64>,
    pub rank: Option<usize>,
    pub top5: Vec<TopEntry>,
    /// Healthy cases: false alarms and hours of telemetry.
    #[serde(skip)]
    pub false_alarms: usize,
    #[serde(skip)]
    pub hours: f64,
    #[serde(skip)]
    pub healthy: bool,
}

/// What a case's replay produced that eval needs.
pub struct CaseRun<'a> {
    pub alarms: &'a [Incident],
    pub warning_times: &'a [Timestamp],
    /// Telemetry span of the fixture, for the false-alarm rate.
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// `Some` when ranking at the truth's start (`--at-truth-start`): those candidates are scored.
    pub at_truth_start: Option<Vec<Candidate>>,
}

/// The detection window of a fault: `start` to (`end`, else `failure`, else `start` + 30 min)
/// + 5 min, cut short at the start of any other fault that begins inside it.
pub fn detection_window(truth: &Truth) -> Option<(Timestamp, Timestamp)> {
    let f = truth.faults.first()?;
    let mut end = f.end.or(f.failure).unwrap_or(f.start.plus_secs(1800)).plus_secs(300);
    for o in &truth.other_faults {
        if o.start > f.start && o.start < end {
            end = o.start;
        }
    }
    Some((f.start, end))
}

/// The telemetry a ranker at the truth's start may see: up to `end`, or `start` + 5 min.
pub fn truth_rank_window(truth: &Truth) -> Option<(Timestamp, Timestamp)> {
    let f = truth.faults.first()?;
    Some((f.start, f.end.unwrap_or(f.start.plus_secs(300))))
}

/// Scores one case.
pub fn score_case(case: &str, truth: &Truth, run: &CaseRun<'_>) -> CaseScore {
    let hours = match (run.from, run.to) {
        (Some(a), Some(b)) => (b.secs_since(a) / 3600.0).max(0.0),
        _ => 0.0,
    };
    let Some(fault) = truth.faults.first() else {
        let false_alarms = run
            .alarms
            .iter()
            .filter(|a| {
                let in_event = truth
                    .events
                    .iter()
                    .any(|e| a.opened_at >= e.start && e.end.is_none_or(|end| a.opened_at <= end));
                !in_event || a.blames_root_cause()
            })
            .count();
        return CaseScore {
            case: case.into(),
            kind: "healthy".into(),
            detected: false,
            delay_s: None,
            lead_s: None,
            rank: None,
            top5: vec![],
            false_alarms,
            hours,
            healthy: true,
        };
    };
    let (from, to) = detection_window(truth).expect("a fault exists");
    let first_alarm = run
        .alarms
        .iter()
        .filter(|a| a.opened_at >= from && a.opened_at <= to)
        .min_by_key(|a| a.opened_at);
    let first_signal = run
        .warning_times
        .iter()
        .copied()
        .filter(|t| *t >= from && *t <= to)
        .chain(first_alarm.map(|a| a.opened_at))
        .min();
    let lead_s = fault.failure.and_then(|f| first_signal.map(|s| f.secs_since(s)));
    let target = Entity::of_root_cause(&fault.root_cause);
    let candidates: Vec<Candidate> = match &run.at_truth_start {
        Some(c) => c.clone(),
        None => first_alarm.map(|a| a.candidates.clone()).unwrap_or_default(),
    };
    let rank = target
        .as_ref()
        .and_then(|t| candidates.iter().position(|c| c.entity.matches(t)).map(|i| i + 1));
    CaseScore {
        case: case.into(),
        kind: fault.kind.clone(),
        detected: first_alarm.is_some(),
        delay_s: first_alarm.map(|a| a.opened_at.secs_since(fault.start)),
        lead_s,
        rank,
        top5: candidates.iter().take(5).map(TopEntry::from).collect(),
        false_alarms: 0,
        hours,
        healthy: false,
    }
}

/// The summary over cases (the `--json` keys are an interface: keep them stable).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub cases: usize,
    pub faulty: usize,
    pub healthy: usize,
    pub detected: usize,
    pub recall: Option<f64>,
    pub false_alarms_per_hour: Option<f64>,
    pub median_delay_s: Option<f64>,
    pub median_lead_s: Option<f64>,
    pub ac1: Option<f64>,
    pub ac3: Option<f64>,
    pub avg5: Option<f64>,
}

/// The median of `v`, `None` when empty.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 })
}

/// AC@k: the fraction of `ranks` (one per faulty case; `None` = not ranked) at most `k`.
pub fn ac_at(ranks: &[Option<usize>], k: usize) -> Option<f64> {
    (!ranks.is_empty()).then(|| ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count() as f64 / ranks.len() as f64)
}

/// Avg@k: the mean of AC@1 … AC@k.
pub fn avg_at(ranks: &[Option<usize>], k: usize) -> Option<f64> {
    let acs: Option<Vec<f64>> = (1..=k).map(|i| ac_at(ranks, i)).collect();
    acs.map(|a| a.iter().sum::<f64>() / k as f64)
}

pub fn summarise(cases: &[CaseScore]) -> Summary {
    let faulty: Vec<&CaseScore> = cases.iter().filter(|c| !c.healthy).collect();
    let healthy: Vec<&CaseScore> = cases.iter().filter(|c| c.healthy).collect();
    let detected = faulty.iter().filter(|c| c.detected).count();
    let ranks: Vec<Option<usize>> = faulty.iter().map(|c| c.rank).collect();
    let hours: f64 = healthy.iter().map(|c| c.hours).sum();
    Summary {
        cases: cases.len(),
        faulty: faulty.len(),
        healthy: healthy.len(),
        detected,
        recall: (!faulty.is_empty()).then(|| detected as f64 / faulty.len() as f64),
        false_alarms_per_hour: (!healthy.is_empty() && hours > 0.0)
            .then(|| healthy.iter().map(|c| c.false_alarms).sum::<usize>() as f64 / hours),
        median_delay_s: median(faulty.iter().filter_map(|c| c.delay_s).collect()),
        median_lead_s: median(faulty.iter().filter_map(|c| c.lead_s).collect()),
        ac1: ac_at(&ranks, 1),
        ac3: ac_at(&ranks, 3),
        avg5: avg_at(&ranks, 5),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellwarden_models::truth::{Fault, RootCause, TruthEvent};
    use cellwarden_models::{Candidate, CauseClass, IncidentClass};

    fn t(mins: i64) -> Timestamp {
        Timestamp(mins * 60_000)
    }

    fn fault(start: i64, end: Option<i64>, failure: Option<i64>) -> Fault {
        Fault {
            kind: "memory_leak".into(),
            root_cause: RootCause {
                service: Some("ledger".into()),
                cell: Some("cell-2".into()),
                ..Default::default()
            },
            start: t(start),
            end: end.map(t),
            failure: failure.map(t),
        }
    }

    fn cand(name: &str) -> Candidate {
        Candidate {
            entity: Entity::service(name.split_once('/').map(|x| x.0), name.rsplit('/').next().unwrap()),
            class: CauseClass::Internal,
            score: 0.5,
            evidence: vec![],
        }
    }

    fn alarm(at: i64, cands: &[&str], class: IncidentClass) -> Incident {
        Incident {
            id: format!("inc-{at}"),
            opened_at: t(at),
            ranked_at: t(at),
            class,
            anomalies: vec![],
            candidates: cands.iter().map(|c| cand(c)).collect(),
            alerts: vec![],
        }
    }

    #[test]
    fn ac_at_k_counts_unranked_cases_as_misses() {
        let ranks = [Some(1), Some(2), Some(4), None];
        assert_eq!(ac_at(&ranks, 1), Some(0.25));
        assert_eq!(ac_at(&ranks, 3), Some(0.5));
        assert_eq!(ac_at(&ranks, 5), Some(0.75));
        // Avg@5 = (0.25 + 0.5 + 0.5 + 0.75 + 0.75) / 5
        assert!((avg_at(&ranks, 5).unwrap() - 0.55).abs() < 1e-12);
        assert_eq!(ac_at(&[], 1), None);
    }

    #[test]
    fn detection_window_ends_five_minutes_after_end_and_at_the_next_fault() {
        let mut truth = Truth {
            faults: vec![fault(10, Some(13), None)],
            ..Default::default()
        };
        assert_eq!(detection_window(&truth), Some((t(10), t(18))));
        truth.faults[0].end = None;
        assert_eq!(detection_window(&truth), Some((t(10), t(45))));
        truth.faults[0].failure = Some(t(50));
        assert_eq!(detection_window(&truth), Some((t(10), t(55))));
        truth.other_faults.push(fault(20, None, None));
        assert_eq!(detection_window(&truth), Some((t(10), t(20))));
        truth.other_faults[0].start = t(5); // began before: does not cut
        assert_eq!(detection_window(&truth), Some((t(10), t(55))));
    }

    #[test]
    fn alarm_before_start_is_not_a_detection_and_lead_counts_from_warning() {
        let truth = Truth {
            faults: vec![fault(10, None, Some(50))],
            ..Default::default()
        };
        let alarms = [
            alarm(5, &["cell-1/ledger"], IncidentClass::Fault),
            alarm(30, &["cell-1/ledger", "cell-2/ledger"], IncidentClass::Fault),
        ];
        let warnings = [t(2), t(20)];
        let run = CaseRun {
            alarms: &alarms,
            warning_times: &warnings,
            from: Some(t(0)),
            to: Some(t(60)),
            at_truth_start: None,
        };
        let s = score_case("c", &truth, &run);
        assert!(s.detected);
        assert_eq!(s.delay_s, Some(20.0 * 60.0));
        assert_eq!(s.lead_s, Some(30.0 * 60.0)); // from the warning at 20 to the failure at 50
        assert_eq!(s.rank, Some(2));
        let run = CaseRun {
            at_truth_start: Some(vec![cand("cell-2/ledger")]),
            ..run
        };
        assert_eq!(score_case("c", &truth, &run).rank, Some(1));
    }

    #[test]
    fn healthy_case_counts_false_alarms_except_capacity_during_events() {
        let truth = Truth {
            faults: vec![],
            events: vec![TruthEvent {
                kind: "load_surge".into(),
                start: t(60),
                end: Some(t(90)),
            }],
            ..Default::default()
        };
        let alarms = [
            alarm(10, &["a"], IncidentClass::Fault),
            alarm(70, &[], IncidentClass::Capacity),
            alarm(80, &["b"], IncidentClass::Fault),
        ];
        let run = CaseRun {
            alarms: &alarms,
            warning_times: &[],
            from: Some(t(0)),
            to: Some(t(120)),
            at_truth_start: None,
        };
        let s = score_case("h", &truth, &run);
        assert_eq!(s.false_alarms, 2);
        let sum = summarise(&[s]);
        assert_eq!(sum.false_alarms_per_hour, Some(1.0));
        assert_eq!(sum.recall, None);
        assert_eq!(sum.ac1, None);
    }
}
