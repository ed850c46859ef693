//! Running a scenario open loop (no action) and turning what it recorded into a fixture.

use crate::scenario::Scenario;
use cellwarden_models::fixture::Fixture;
use cellwarden_models::truth::StepCount;

/// How long before the fault the truth's failed-payment counts start: the baseline a report's
/// impact is judged against is in them too.
const COUNT_BEFORE_FAULT_SECS: i64 = 1800;

/// Runs `scn` without any action and returns its fixture (truth included: `failure` is when the
/// run first violated the SLO after the fault started). `progress(done, total)` is called per step.
pub fn generate(scn: &Scenario, progress: &mut dyn FnMut(usize, usize)) -> Fixture {
    let mut w = scn.wallet();
    let topology = w.topology();
    let steps = scn.steps();
    for i in 0..steps {
        w.step();
        progress(i + 1, steps);
    }
    // The topology as at the start, with every deploy of the run in its deployments' revisions
    // (what the ReplicaSets would tell at the end).
    let mut topology = topology;
    let history = w.revision_history();
    for svc in &mut topology.services {
        for d in &mut svc.deployments {
            let key = format!("{}/{}", d.cell.as_deref().unwrap_or_default(), svc.name);
            if let Some((_, revs)) = history.iter().find(|(k, _)| *k == key) {
                d.revisions = revs.clone();
            }
        }
    }
    let failure = scn.fault_start().and_then(|start| {
        w.outcome
            .violating_steps
            .iter()
            .map(|v| scn.cfg.start.plus_secs(*v))
            .find(|t| *t >= start)
    });
    let mut truth = scn.truth(failure);
    if let Some(start) = scn.fault_start() {
        let from = start.plus_secs(-COUNT_BEFORE_FAULT_SECS);
        truth.failed_payments = w
            .outcome
            .failed_by_step
            .iter()
            .map(|(secs, n)| StepCount {
                t: scn.cfg.start.plus_secs(*secs),
                // One decimal: the counts are shares of simulated requests, not whole payments.
                n: (n * 10.0).round() / 10.0,
            })
            .filter(|s| s.t > from)
            .collect();
    }
    Fixture {
        metrics: w.recorder.exposition(),
        spans: std::mem::take(&mut w.recorder.spans),
        topology: Some(topology),
        truth: Some(truth),
    }
}
