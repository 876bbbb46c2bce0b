//! The conformance suite against the in-memory store: one test per rule, so a failure names
//! the rule. Later stores (Redis, embedded) run the same `anklet_core::queue::conformance`
//! functions with their own constructor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::queue::conformance::{self, Violation};
use anklet_core::queue::{MemoryQueue, QueueSettings};

fn run(check: fn(&mut dyn FnMut(QueueSettings) -> MemoryQueue) -> Result<(), Violation>) {
    let mut make = MemoryQueue::new;
    if let Err(v) = check(&mut make) {
        panic!("{v}");
    }
}

macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run(conformance::$name::<MemoryQueue>);
            }
        )*

        #[test]
        fn every_check_has_a_test() {
            let names: Vec<&str> = conformance::checks::<MemoryQueue>()
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            assert_eq!(names, vec![$(stringify!($name)),*]);
        }
    };
}

conformance_tests!(
    enqueue_is_idempotent,
    status_moves_forward_only,
    claim_respects_filter,
    claim_is_fifo,
    requeue_delay_and_fairness,
    lease_lost_after_expiry,
    reaper_requeues_lapsed_leases,
    dead_letter_after_max_attempts,
    dead_letter_by_holder,
    requeue_from_dead_letter,
    completed_job_is_dropped_not_requeued,
    finished_memory_is_bounded,
    heartbeats_mark_stale_hosts,
    listing_has_ages,
    handler_effects,
);

#[test]
fn run_all_passes() {
    let failures: Vec<String> = conformance::run_all(MemoryQueue::new)
        .into_iter()
        .filter_map(|(name, r)| r.err().map(|v| format!("{name}: {v}")))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}
