//! Model-based property test of the in-memory queue: random operation sequences from several
//! hosts with time jumps, every answer checked against the semantics and the invariants checked
//! after every step by `anklet_core::queue::conformance::Harness` (each job in exactly one of
//! queued/claimed/dead, never two holders, attempts never decreasing except on a requeue from
//! the dead letter, no job lost or duplicated).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod queue_strategies;

use anklet_core::queue::conformance::{Harness, Op, Pick};
use anklet_core::queue::{MemoryQueue, QueueSettings};
use proptest::prelude::*;
use queue_strategies::{op, settings};

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_the_invariants(
        settings in settings(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let mut h = Harness::new(MemoryQueue::new(settings));
        if let Err(v) = h.run(&ops) {
            prop_assert!(false, "{}", v);
        }
    }
}

/// The harness is not vacuous: a long fixed sequence exercises every kind of success.
#[test]
fn harness_sees_successes() {
    let mut h = Harness::new(MemoryQueue::new(QueueSettings {
        max_attempts: 2,
        ..QueueSettings::default()
    }));
    let ops = [
        Op::Enqueue {
            job: 1,
            owner: 0,
            template: 0,
        },
        Op::Enqueue {
            job: 2,
            owner: 1,
            template: 1,
        },
        Op::Enqueue {
            job: 1,
            owner: 0,
            template: 0,
        },
        Op::Claim {
            host: 0,
            filter: 0,
            lease_s: 10,
        },
        Op::Claim {
            host: 1,
            filter: 2,
            lease_s: 10,
        },
        Op::Renew {
            job: 1,
            host: Pick::Holder,
            lease_s: 10,
        },
        Op::Renew {
            job: 1,
            host: Pick::Host(2),
            lease_s: 10,
        },
        Op::Requeue {
            job: 1,
            host: Pick::Holder,
            counted: true,
            delay_s: 1,
        },
        Op::Advance { ms: 1_000 },
        Op::Claim {
            host: 2,
            filter: 1,
            lease_s: 5,
        },
        Op::Advance { ms: 6_000 },
        Op::Complete {
            job: 1,
            host: Pick::Holder,
        },
        Op::Reap,
        Op::RequeueDead { job: 1 },
        Op::Claim {
            host: 0,
            filter: 0,
            lease_s: 5,
        },
        Op::DeadLetter {
            job: 1,
            host: Pick::Holder,
        },
        Op::RemoveDead { job: 1 },
        Op::Complete {
            job: 2,
            host: Pick::Holder,
        },
        Op::Enqueue {
            job: 2,
            owner: 0,
            template: 0,
        },
        Op::Status { job: 3, status: 2 },
        Op::Enqueue {
            job: 3,
            owner: 0,
            template: 0,
        },
        Op::Heartbeat { host: 1 },
    ];
    h.run(&ops).unwrap();
    assert!(h.ledger.gone.contains(&anklet_core::ids::JobId(1)));
    assert!(h.ledger.gone.contains(&anklet_core::ids::JobId(2)));
    assert!(h.q.records().next().is_none(), "{:?}", h.q.list(h.now));
}
