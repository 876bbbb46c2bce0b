//! `store_op` + `store_result` (how runtimes run handler store effects on a shared store) give
//! the same answers as `execute` (the direct mapping), effect for effect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::handler::{Completion, EffectResult, Reason, StoreCmd};
use anklet_core::ids::{HostId, JobId};
use anklet_core::labels::ClaimFilter;
use anklet_core::queue::conformance::sample_job;
use anklet_core::queue::txn::Op;
use anklet_core::queue::{
    MemoryBackend, MemoryQueue, QueueSettings, Store, execute, store_op, store_result,
};
use anklet_core::time::Timestamp;
use std::time::Duration;

#[test]
fn shared_store_path_matches_execute() {
    let settings = QueueSettings::default();
    let mut direct = MemoryQueue::new(settings.clone());
    let shared = Store::new(MemoryBackend::new(100), settings);
    let host = HostId("h1".into());
    let claim = StoreCmd::Claim {
        host: host.clone(),
        filter: ClaimFilter::default(),
        lease: Duration::from_secs(60),
    };
    let cmds = vec![
        claim.clone(),
        claim.clone(),
        StoreCmd::RenewLease {
            job: JobId(1),
            host: host.clone(),
            lease: Duration::from_secs(60),
        },
        StoreCmd::Requeue {
            job: JobId(1),
            host: host.clone(),
            reason: Reason::PullFailed,
            count_attempt: true,
            delay: Duration::ZERO,
        },
        claim.clone(),
        StoreCmd::DeadLetter {
            job: JobId(2),
            host: host.clone(),
            reason: Reason::CloneFailed,
        },
        StoreCmd::Complete {
            job: JobId(1),
            host: host.clone(),
            outcome: Completion::Finished { conclusion: None },
        },
        StoreCmd::Complete {
            job: JobId(1),
            host: host.clone(),
            outcome: Completion::ServedElsewhere,
        },
    ];
    let now = Timestamp(1_000);
    for id in [1, 2] {
        direct.enqueue(now, sample_job(id, "o", Some("t")));
        shared
            .run(now, Op::Enqueue(sample_job(id, "o", Some("t"))))
            .unwrap();
    }
    let mut kinds = Vec::new();
    for cmd in &cmds {
        let a = execute(&mut direct, now, cmd).unwrap();
        let b = store_result(shared.run(now, store_op(cmd)).unwrap()).unwrap();
        assert_eq!(a, b, "{cmd}");
        kinds.push(std::mem::discriminant(&a));
    }
    assert!(kinds.contains(&std::mem::discriminant(&EffectResult::LeaseLost)));
    assert!(kinds.contains(&std::mem::discriminant(&EffectResult::Stored)));
}
