//! The sweep's own guarantees: the correct core passes 1,000 seeds, a deliberately broken core
//! is caught with a seed that replays to the same violation, and a seed replays bit for bit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::handler::Defect;
use anklet_sim::sweep::{run_seed, sweep};
use anklet_sim::world::{Options, Violation};

#[test]
fn the_real_core_passes_a_thousand_seeds() {
    let runs = sweep(0, 1000, Options::default(), |_| {});
    let failed: Vec<String> = runs
        .iter()
        .filter_map(|r| {
            r.report
                .violation
                .as_ref()
                .map(|v| format!("seed {}: {v}", r.seed))
        })
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(runs.len(), 1000);
    // The sweep is not vacuous: jobs ran, VMs were made, faults hit.
    let ran: usize = runs.iter().map(|r| r.report.ran).sum();
    let pulls: u64 = runs.iter().map(|r| r.report.pulls).sum();
    assert!(ran > 5_000 && pulls > 1_000, "ran {ran}, pulls {pulls}");
}

#[test]
fn a_core_that_leaks_a_vm_after_a_failed_clone_is_caught_and_replays() {
    caught_and_replayed(Defect::LeakVmAfterCloneFailure);
}

#[test]
fn a_core_whose_sweep_keeps_orphan_runners_is_caught_and_replays() {
    // Caught by the runner invariant, not by some other symptom.
    let violation = caught_and_replayed(Defect::KeepOrphanRunners);
    assert!(violation.what.contains("still registered"), "{violation}");
}

/// Sweeps 1,000 seeds with a broken core: some seed must break an invariant, and replaying
/// that seed gives the very same violation.
fn caught_and_replayed(defect: Defect) -> Violation {
    let broken = Options {
        defect: Some(defect),
        ..Options::default()
    };
    let runs = sweep(0, 1000, broken, |_| {});
    let failed = runs.last().expect("ran at least one seed");
    let violation = failed
        .report
        .violation
        .clone()
        .expect("the sweep caught the defect");
    eprintln!("{defect:?} caught by seed {}: {violation}", failed.seed);
    // Replaying the seed gives the very same violation.
    let (again, tail) = run_seed(
        failed.seed,
        Options {
            trace: true,
            ..broken
        },
    );
    assert_eq!(again.violation, Some(violation.clone()));
    assert!(!tail.is_empty());
    violation
}

#[test]
fn the_same_seed_gives_the_same_run() {
    for seed in [3, 17, 99] {
        let options = Options {
            trace: true,
            trace_all: true,
            ..Options::default()
        };
        let a = run_seed(seed, options);
        let b = run_seed(seed, options);
        assert_eq!(a, b, "seed {seed} is not deterministic");
        assert!(a.1.len() > 50);
    }
}
