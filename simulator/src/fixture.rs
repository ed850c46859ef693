//! Running a scenario open loop (no action) and turning what it recorded into a fixture.

use crate::scenario::Scenario;
use cellwarden_models::fixture::Fixture;

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
    Fixture {
        metrics: w.recorder.exposition(),
        spans: std::mem::take(&mut w.recorder.spans),
        topology: Some(topology),
        truth: Some(scn.truth(failure)),
    }
}
