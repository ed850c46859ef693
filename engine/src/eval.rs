//! Scoring a replay against `truth.yaml`, exactly as FIXTURES.md's "How eval scores a fixture"
//! says, and the summary over many cases. Pure: alarms, warnings and candidates in, figures out.

use cellwarden_models::report::{Certainty, IncidentReport};
use cellwarden_models::truth::Truth;
use cellwarden_models::{Candidate, Entity, Timestamp};
use serde::Serialize;
use std::collections::HashMap;

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
    /// Incidents opened (not reopened or joined) from the fault's start to the end of the
    /// telemetry or the next fault's start; `None` when the fault was not detected.
    pub incidents: Option<usize>,
    /// Action decisions (same kind, same target) after the first, in the same span.
    pub repeated_actions: usize,
    /// Open and escalation notices that paged, in the same span.
    pub pages: usize,
    /// Whether the first alarm's brief leads with the true root cause (its top candidate at the
    /// last ranking, or one of the two it is uncertain between); `None` when not detected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary_names_root_cause: Option<bool>,
    /// The first alarm's failed payments per minute at its last ranking, and what the truth
    /// counts for that minute (simulated fixtures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impact: Option<ImpactCheck>,
    /// Healthy cases: false alarms and hours of telemetry.
    #[serde(skip)]
    pub false_alarms: usize,
    #[serde(skip)]
    pub hours: f64,
    #[serde(skip)]
    pub healthy: bool,
}

/// A report's failed payments per minute against the truth's count of the same minute.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ImpactCheck {
    pub reported_per_min: f64,
    pub truth_per_min: f64,
}

/// How far a reported impact may be from the truth's and still count as right: 10%, or one
/// payment a minute when the truth counts almost none (a share of nothing is noise).
pub const IMPACT_TOLERANCE: f64 = 0.10;

impl ImpactCheck {
    pub fn within_tolerance(&self) -> bool {
        (self.reported_per_min - self.truth_per_min).abs() <= (IMPACT_TOLERANCE * self.truth_per_min).max(1.0)
    }
}

/// What a case's replay produced that eval needs.
pub struct CaseRun<'a> {
    /// Every incident the replay opened, with its lifecycle and ranking history.
    pub alarms: &'a [IncidentReport],
    /// When the ranking scored is taken, after an incident's opening (the last re-rank).
    pub rank_after_secs: i64,
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
            .filter(|r| {
                let a = &r.incident;
                let in_event = truth
                    .events
                    .iter()
                    .any(|e| a.opened_at >= e.start && e.end.is_none_or(|end| a.opened_at <= end));
                !in_event || a.blames_root_cause() || r.lifecycle.pages() > 0
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
            incidents: None,
            repeated_actions: 0,
            pages: 0,
            summary_names_root_cause: None,
            impact: None,
            false_alarms,
            hours,
            healthy: true,
        };
    };
    let (from, to) = detection_window(truth).expect("a fault exists");
    let first_alarm = run
        .alarms
        .iter()
        .filter(|r| r.incident.opened_at >= from && r.incident.opened_at <= to)
        .min_by_key(|r| r.incident.opened_at);
    let first_signal = run
        .warning_times
        .iter()
        .copied()
        .filter(|t| *t >= from && *t <= to)
        .chain(first_alarm.map(|r| r.incident.opened_at))
        .min();
    let lead_s = fault.failure.and_then(|f| first_signal.map(|s| f.secs_since(s)));
    let target = Entity::of_root_cause(&fault.root_cause);
    let candidates: Vec<Candidate> = match &run.at_truth_start {
        Some(c) => c.clone(),
        None => first_alarm
            .map(|r| r.ranking_at(r.incident.opened_at.plus_secs(run.rank_after_secs)).to_vec())
            .unwrap_or_default(),
    };
    let rank = target
        .as_ref()
        .and_then(|t| candidates.iter().position(|c| c.entity.matches(t)).map(|i| i + 1));
    let life = fault_span(truth, run.to).map(|(a, b)| lived(run.alarms, a, b));
    let summary_names_root_cause = first_alarm.map(|r| {
        let named = match r.brief.confidence.certainty {
            Certainty::Uncertain => 2,
            Certainty::NoCandidate => 0,
            _ => 1,
        };
        target
            .as_ref()
            .is_some_and(|t| r.incident.candidates.iter().take(named).any(|c| c.entity.matches(t)))
    });
    let impact = first_alarm.and_then(|r| {
        let im = r.brief.impact.as_ref()?;
        Some(ImpactCheck {
            reported_per_min: im.failed_payments_per_min?,
            truth_per_min: truth.failed_payments_per_min(im.at)?,
        })
    });
    CaseScore {
        case: case.into(),
        kind: fault.kind.clone(),
        detected: first_alarm.is_some(),
        delay_s: first_alarm.map(|r| r.incident.opened_at.secs_since(fault.start)),
        lead_s,
        rank,
        top5: candidates.iter().take(5).map(TopEntry::from).collect(),
        incidents: first_alarm.and(life.map(|l| l.incidents)),
        repeated_actions: life.map_or(0, |l| l.repeated_actions),
        pages: life.map_or(0, |l| l.pages),
        summary_names_root_cause,
        impact,
        false_alarms: 0,
        hours,
        healthy: false,
    }
}

/// The span a fault's incidents are counted in: from its `start` to the end of the telemetry
/// (`to`) or the `start` of the next fault (`faults` or `other_faults`), whichever is first.
pub fn fault_span(truth: &Truth, to: Option<Timestamp>) -> Option<(Timestamp, Timestamp)> {
    let f = truth.faults.first()?;
    let mut end = to.unwrap_or(Timestamp(i64::MAX));
    for o in truth.faults.iter().skip(1).chain(&truth.other_faults) {
        if o.start > f.start && o.start < end {
            end = o.start;
        }
    }
    Some((f.start, end))
}

/// What an on-call engineer lived through in a span: incidents opened, repeated decisions, pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lived {
    pub incidents: usize,
    pub repeated_actions: usize,
    pub pages: usize,
}

/// [`Lived`] from `from` to `to` (inclusive), over the incidents of a run.
pub fn lived(incidents: &[IncidentReport], from: Timestamp, to: Timestamp) -> Lived {
    let within = |t: Timestamp| t >= from && t <= to;
    let mut decided: HashMap<(cellwarden_models::ActionKind, &str), usize> = HashMap::new();
    let mut out = Lived::default();
    for r in incidents {
        if within(r.incident.opened_at) {
            out.incidents += 1;
        }
        for d in r.lifecycle.decisions.iter().filter(|d| within(d.at)) {
            *decided.entry((d.kind, d.target.as_str())).or_default() += 1;
        }
        out.pages += r.lifecycle.notices.iter().filter(|n| n.pages && within(n.at)).count();
    }
    out.repeated_actions = decided.values().map(|n| n.saturating_sub(1)).sum();
    out
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
    /// Mean incidents opened per detected fault, and the most in any case.
    pub incidents_per_fault: Option<f64>,
    pub max_incidents_per_fault: Option<usize>,
    /// Repeated action decisions, summed over faults.
    pub repeated_actions: usize,
    /// Mean pages per detected fault.
    pub pages_per_fault: Option<f64>,
    /// Detected faults whose brief leads with the true root cause, of those detected.
    pub summaries_naming_root_cause: usize,
    /// Reported impacts within [`IMPACT_TOLERANCE`] of the truth's, and how many were checked.
    pub impacts_within_tolerance: usize,
    pub impacts_checked: usize,
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
        incidents_per_fault: mean(faulty.iter().filter_map(|c| c.incidents.map(|n| n as f64))),
        max_incidents_per_fault: faulty.iter().filter_map(|c| c.incidents).max(),
        repeated_actions: faulty.iter().map(|c| c.repeated_actions).sum(),
        pages_per_fault: mean(faulty.iter().filter(|c| c.detected).map(|c| c.pages as f64)),
        summaries_naming_root_cause: faulty.iter().filter(|c| c.summary_names_root_cause == Some(true)).count(),
        impacts_within_tolerance: faulty.iter().filter(|c| c.impact.is_some_and(|i| i.within_tolerance())).count(),
        impacts_checked: faulty.iter().filter(|c| c.impact.is_some()).count(),
    }
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = v.collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellwarden_models::report::Ranking;
    use cellwarden_models::truth::{Fault, RootCause, TruthEvent};
    use cellwarden_models::{ActionKind, Candidate, CauseClass, Decision, Incident, IncidentClass, Mode, Notice, NoticeKind, Plan};

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

    fn alarm(at: i64, cands: &[&str], class: IncidentClass) -> IncidentReport {
        let incident = Incident {
            id: format!("inc-{at}"),
            opened_at: t(at),
            ranked_at: t(at),
            class,
            anomalies: vec![],
            candidates: cands.iter().map(|c| cand(c)).collect(),
            alerts: vec![],
        };
        IncidentReport {
            plan: Plan {
                incident_id: incident.id.clone(),
                at: t(at),
                mode: Mode::DryRun,
                actions: vec![],
                refused: vec![],
            },
            incident,
            key_series: vec![],
            lifecycle: Default::default(),
            rankings: vec![],
            brief: Default::default(),
        }
    }

    fn decided(r: &mut IncidentReport, at: i64, kind: ActionKind, target: &str) {
        r.lifecycle.decisions.push(Decision {
            at: t(at),
            kind,
            target: target.into(),
        });
    }

    fn paged(r: &mut IncidentReport, at: i64, kind: NoticeKind, pages: bool) {
        r.lifecycle.notices.push(Notice {
            at: t(at),
            kind,
            pages,
            text: String::new(),
        });
    }

    #[test]
    fn what_a_fault_put_people_through_is_counted_until_the_next_fault() {
        let mut truth = Truth {
            faults: vec![fault(10, None, Some(50))],
            ..Default::default()
        };
        let mut a = alarm(12, &["cell-2/ledger"], IncidentClass::Fault);
        paged(&mut a, 12, NoticeKind::Opened, true);
        decided(&mut a, 12, ActionKind::RestartPods, "cell-2/ledger");
        paged(&mut a, 40, NoticeKind::Escalated, true);
        paged(&mut a, 60, NoticeKind::Resolved, false);
        let mut b = alarm(27, &["cell-2/ledger"], IncidentClass::Fault);
        paged(&mut b, 27, NoticeKind::Opened, true);
        decided(&mut b, 27, ActionKind::RestartPods, "cell-2/ledger");
        decided(&mut b, 27, ActionKind::Scale, "cell-2/ledger");
        // Before the fault: not its incident.
        let early = alarm(5, &["x"], IncidentClass::Fault);
        let alarms = [early, a, b];
        let run = CaseRun {
            alarms: &alarms,
            rank_after_secs: 180,
            warning_times: &[],
            from: Some(t(0)),
            to: Some(t(90)),
            at_truth_start: None,
        };
        let s = score_case("c", &truth, &run);
        assert_eq!((s.incidents, s.repeated_actions, s.pages), (Some(2), 1, 3));
        // Another fault from minute 20 on ends the span: b and its repeat are not this one's.
        truth.other_faults.push(fault(20, None, None));
        let s = score_case("c", &truth, &run);
        assert_eq!((s.incidents, s.repeated_actions, s.pages), (Some(1), 0, 1));
        let sum = summarise(&[s]);
        assert_eq!(sum.incidents_per_fault, Some(1.0));
        assert_eq!(sum.max_incidents_per_fault, Some(1));
    }

    #[test]
    fn the_ranking_scored_is_the_one_in_force_after_the_last_rerank() {
        let truth = Truth {
            faults: vec![fault(10, None, None)],
            ..Default::default()
        };
        let mut a = alarm(11, &["cell-9/late"], IncidentClass::Fault);
        for (secs, name) in [(0, "cell-1/first"), (180, "cell-2/ledger"), (600, "cell-9/late")] {
            a.rankings.push(Ranking {
                at: t(11).plus_secs(secs),
                candidates: vec![cand(name)],
                why: "rerank".into(),
            });
        }
        let alarms = [a];
        let run = CaseRun {
            alarms: &alarms,
            rank_after_secs: 180,
            warning_times: &[],
            from: Some(t(0)),
            to: Some(t(90)),
            at_truth_start: None,
        };
        assert_eq!(score_case("c", &truth, &run).rank, Some(1));
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
            rank_after_secs: 180,
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
            rank_after_secs: 180,
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
