//! Runs many seeds and summarises; the first violation is replayable with its seed.

use crate::scenario::Scenario;
use crate::world::{Options, Report, World};

/// The outcome of one seed.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedRun {
    /// The seed.
    pub seed: u64,
    /// Its report.
    pub report: Report,
}

/// Runs one seed's scenario (with a trace tail if asked).
pub fn run_seed(seed: u64, options: Options) -> (Report, Vec<String>) {
    World::new(Scenario::from_seed(seed), seed, options).run()
}

/// Runs seeds `start..start+count`, calling `progress` after each; stops at the first
/// violation and returns every run so far.
pub fn sweep(
    start: u64,
    count: u64,
    options: Options,
    mut progress: impl FnMut(&SeedRun),
) -> Vec<SeedRun> {
    let mut runs = Vec::new();
    for seed in start..start.saturating_add(count) {
        let (report, _) = run_seed(seed, options);
        let run = SeedRun { seed, report };
        progress(&run);
        let failed = run.report.violation.is_some();
        runs.push(run);
        if failed {
            break;
        }
    }
    runs
}
