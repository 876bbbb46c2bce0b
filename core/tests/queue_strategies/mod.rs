//! Random operation sequences for the queue tests, shared by every store's property tests.
#![allow(dead_code)]

use anklet_core::queue::QueueSettings;
use anklet_core::queue::conformance::{Op, Pick};
use proptest::prelude::*;
use std::time::Duration;

/// Job ids 1..=6: few enough that operations collide on the same jobs.
pub fn job() -> impl Strategy<Value = u8> {
    1u8..=6
}

pub fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![3 => Just(Pick::Holder), 1 => (0u8..3).prop_map(Pick::Host)]
}

pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (job(), 0u8..2, 0u8..3).prop_map(|(job, owner, template)| Op::Enqueue { job, owner, template }),
        1 => (job(), 0u8..3).prop_map(|(job, status)| Op::Status { job, status }),
        4 => (0u8..3, 0u8..4, 1u8..60).prop_map(|(host, filter, lease_s)| Op::Claim { host, filter, lease_s }),
        2 => (job(), pick(), 0u8..60).prop_map(|(job, host, lease_s)| Op::Renew { job, host, lease_s }),
        1 => (job(), pick()).prop_map(|(job, host)| Op::Complete { job, host }),
        3 => (job(), pick(), any::<bool>(), 0u8..20)
            .prop_map(|(job, host, counted, delay_s)| Op::Requeue { job, host, counted, delay_s }),
        1 => (job(), pick()).prop_map(|(job, host)| Op::DeadLetter { job, host }),
        2 => Just(Op::Reap),
        3 => prop_oneof![0u32..2_000, 0u32..120_000].prop_map(|ms| Op::Advance { ms }),
        1 => job().prop_map(|job| Op::RequeueDead { job }),
        1 => job().prop_map(|job| Op::RemoveDead { job }),
        1 => (0u8..3).prop_map(|host| Op::Heartbeat { host }),
    ]
}

pub fn settings() -> impl Strategy<Value = QueueSettings> {
    (0u32..4, 0u64..10).prop_map(|(max_attempts, reap_delay_s)| QueueSettings {
        max_attempts,
        reap_delay: Duration::from_secs(reap_delay_s),
        finished_capacity: 100,
    })
}
