//! Property test: proptest generates fleets and fault schedules (and shrinks a failing one to a
//! small fleet with few faults), each run by the simulator with every invariant checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_sim::scenario::{Faults, Scenario};
use anklet_sim::world::{Options, World};
use proptest::prelude::*;
use std::time::Duration;

fn rate() -> impl Strategy<Value = f64> {
    prop_oneof![3 => Just(0.0), 1 => Just(0.05), 1 => Just(0.3)]
}

prop_compose! {
    fn faults()(
        loss in rate(), dup in rate(), api in rate(), pull in rate(), clone in rate(),
        start in rate(), death in rate(), dud in rate(), cancel in rate(), steal in rate(),
        jitter_s in 0u64..60, crashes in 0u32..3, outages in 0u32..3, limits in 0u32..3,
    ) -> Faults {
        Faults {
            webhook_loss: loss,
            webhook_dup: dup,
            webhook_jitter: Duration::from_secs(jitter_s),
            api_fail: api,
            pull_fail: pull,
            clone_fail: clone,
            start_fail: start,
            vm_death: death,
            runner_dud: dud,
            cancel,
            steal,
            host_crashes: crashes,
            store_outages: outages,
            rate_limits: limits,
        }
    }
}

prop_compose! {
    fn scenario()(
        hosts in 1usize..5, jobs in 1usize..25, window_min in 1u64..90,
        templates in 1usize..4, disk_gb in 80u64..240, faults in faults(),
    ) -> Scenario {
        let mut s = Scenario::fleet(hosts, jobs, Duration::from_secs(window_min * 60));
        s.templates = templates;
        s.disk_gb = disk_gb;
        s.faults = faults;
        s
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn generated_fleets_and_fault_schedules_keep_every_invariant(scenario in scenario(), seed in any::<u64>()) {
        let (report, tail) = World::new(scenario.clone(), seed, Options { trace: true, ..Options::default() }).run();
        prop_assert!(
            report.violation.is_none(),
            "{:?} with seed {seed} in {scenario:#?}\nlast events:\n{}",
            report.violation,
            tail.join("\n")
        );
        // Every job is accounted for exactly once: ran (success or failure), cancelled, or dead.
        prop_assert_eq!(report.ran + report.cancelled + report.dead, scenario.jobs);
    }
}
