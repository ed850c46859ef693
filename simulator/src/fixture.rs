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
