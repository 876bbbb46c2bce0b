//! The transaction machines (`queue::txn`) that every persistent store runs, checked over the
//! in-memory backend: the whole conformance suite, the random-operation harness, and a
//! differential test that answers equal the in-memory model's (the oracle) op for op.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::queue::conformance::{self, Harness};
use anklet_core::queue::{JobQueue, MemoryBackend, MemoryQueue, QueueSettings, Store};
use proptest::prelude::*;

mod queue_state_machine;
mod queue_strategies;
use queue_strategies::{op, settings};

fn store(settings: QueueSettings) -> Store<MemoryBackend> {
    Store::new(MemoryBackend::new(settings.finished_capacity), settings)
}

#[test]
fn conformance_suite_passes() {
    let results = conformance::run_all(store);
    assert!(results.len() >= 15);
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|(name, r)| r.err().map(|v| format!("{name}: {v}")))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_the_invariants(settings in settings(), ops in prop::collection::vec(op(), 1..120)) {
        let mut h = Harness::new(store(settings));
        if let Err(v) = h.run(&ops) {
            prop_assert!(false, "{}", v);
        }
    }

    #[test]
    fn answers_equal_the_model(settings in settings(), ops in prop::collection::vec(op(), 1..120)) {
        let mut model = Harness::new(MemoryQueue::new(settings.clone()));
        let mut txn = Harness::new(store(settings));
        for (n, op) in ops.iter().enumerate() {
            let a = model.step(op).map_err(|v| v.to_string());
            let b = txn.step(op).map_err(|v| v.to_string());
            prop_assert_eq!(&a, &b, "step {} {:?}", n, op);
            let now = model.now;
            prop_assert_eq!(model.q.list(now), txn.q.list(now).unwrap(), "step {} {:?}", n, op);
        }
    }
}

mod interleaved {
    //! Transactions from several hosts stepped in random interleavings against one backend,
    //! as concurrent clients of a real store are: guards must make every outcome serial.
    use anklet_core::handler::Completion;
    use anklet_core::ids::{HostId, JobId};
    use anklet_core::labels::ClaimFilter;
    use anklet_core::queue::txn::{Backend, Op, Reply, Step, Txn};
    use anklet_core::queue::{MemoryBackend, NewJob, QueueSettings};
    use anklet_core::time::Timestamp;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn run_to_end(backend: &mut MemoryBackend, txn: &mut Txn) -> Reply {
        loop {
            if let Some(r) = step(backend, txn) {
                return r;
            }
        }
    }

    /// Advances one request; returns the reply when done.
    fn step(backend: &mut MemoryBackend, txn: &mut Txn) -> Option<Reply> {
        match txn.poll() {
            Step::Read(r) => txn.handle_read(backend.read(&r).unwrap()),
            Step::Commit(c) => txn.handle_commit(backend.commit(&c).unwrap()),
            Step::Done(reply) => return Some(reply),
            Step::Livelock => panic!("livelock"),
        }
        None
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        #[test]
        fn concurrent_claims_and_writes_stay_serial(
            jobs in 1u64..6,
            schedule in prop::collection::vec(0usize..8, 10..400),
        ) {
            let settings = QueueSettings::default();
            let now = Timestamp(1_000_000);
            let mut b = MemoryBackend::new(100);
            for id in 1..=jobs {
                let job = NewJob {
                    id: JobId(id),
                    run_id: id,
                    owner: "o".into(),
                    repo: "r".into(),
                    labels: vec!["anka-template:t".into()],
                    payload: "{}".into(),
                };
                run_to_end(&mut b, &mut Txn::new(Op::Enqueue(job), now, settings.clone()));
            }
            // Eight hosts, each claiming then completing what it got, interleaved by `schedule`.
            let hosts: Vec<HostId> = (0..8).map(|i| HostId(format!("h{i}"))).collect();
            let claim = |h: &HostId| Txn::new(
                Op::Claim(h.clone(), ClaimFilter::default(), Duration::from_secs(60)),
                now,
                settings.clone(),
            );
            let mut txns: Vec<Option<Txn>> = hosts.iter().map(|h| Some(claim(h))).collect();
            let mut got: BTreeMap<JobId, Vec<HostId>> = BTreeMap::new();
            let mut completed = 0;
            for &i in schedule.iter().chain((0..8).cycle().take(400).collect::<Vec<_>>().iter()) {
                let Some(txn) = txns[i].as_mut() else { continue };
                let Some(reply) = step(&mut b, txn) else { continue };
                txns[i] = match reply {
                    Reply::Claimed(Some(r)) => {
                        got.entry(r.id).or_default().push(hosts[i].clone());
                        let op = Op::Complete(r.id, hosts[i].clone(), Completion::TimedOut);
                        Some(Txn::new(op, now, settings.clone()))
                    }
                    Reply::Written(Ok(())) => {
                        completed += 1;
                        Some(claim(&hosts[i]))
                    }
                    Reply::Claimed(None) => None,
                    other => panic!("unexpected {other:?}"),
                };
            }
            for (job, holders) in &got {
                prop_assert_eq!(holders.len(), 1, "{} claimed by {:?}", job, holders);
            }
            prop_assert_eq!(got.len() as u64, jobs);
            prop_assert_eq!(completed, jobs);
            let left = b.read(&anklet_core::queue::txn::Read::All).unwrap();
            prop_assert_eq!(left, anklet_core::queue::txn::Fetched::Records(vec![]));
        }
    }
}

mod state_machine {
    //! The proptest-state-machine test against the model, for the transaction store over the
    //! in-memory backend (the persistent stores run the same test in their crates).
    use anklet_core::queue::{MemoryBackend, QueueSettings, Store};
    use proptest_state_machine::prop_state_machine;

    use super::queue_state_machine::{Against, MakeStore};

    struct Memory;

    impl MakeStore for Memory {
        type Q = Store<MemoryBackend>;
        fn make(settings: QueueSettings) -> Self::Q {
            Store::new(MemoryBackend::new(settings.finished_capacity), settings)
        }
    }

    prop_state_machine! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 300, ..Default::default() })]
        #[test]
        fn store_follows_the_model(sequential 1..80 => Against<Memory>);
    }
}
