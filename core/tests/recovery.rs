//! The recovery machine driven directly against a real in-memory store and a scripted GitHub:
//! failed deliveries are redelivered once per cycle (bounded per GUID), delivered ones never;
//! a wrong hook id is reported and the receiver's queue is still reconciled; queued jobs
//! GitHub finished are removed; cycles repeat on their interval.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::handler::{Failure, FailureClass, GithubJobStatus};
use anklet_core::ids::JobId;
use anklet_core::queue::txn::{Op, Reply};
use anklet_core::queue::{MemoryBackend, NewJob, QueueSettings, Store};
use anklet_core::receiver::redeliver::{
    DeliverySummary, Recovery, RecoveryAnswer, RecoveryCall, RecoveryEffect, RecoveryNotice,
    RecoverySettings,
};
use anklet_core::time::Timestamp;
use std::collections::BTreeMap;
use std::time::Duration;

const T0: Timestamp = Timestamp(1_700_000_000_000);

fn d(id: u64, guid: &str, at_s: u64, status: u16, redelivery: bool) -> DeliverySummary {
    DeliverySummary {
        id,
        guid: guid.into(),
        delivered_at: T0.saturating_add(Duration::from_secs(at_s)),
        redelivery,
        status_code: status,
        event: "workflow_job".into(),
        action: Some("queued".into()),
    }
}

fn job(id: u64) -> NewJob {
    NewJob {
        id: JobId(id),
        run_id: 7,
        owner: "acme".into(),
        repo: "app".into(),
        labels: vec!["anka-template:t".into()],
        payload: "{}".into(),
    }
}

/// A scripted GitHub: its delivery list, job statuses, and whether the hook exists.
struct Github {
    deliveries: Vec<DeliverySummary>,
    jobs: BTreeMap<u64, GithubJobStatus>,
    hook_exists: bool,
    calls: Vec<RecoveryCall>,
}

impl Github {
    fn answer(&mut self, call: &RecoveryCall) -> RecoveryAnswer {
        self.calls.push(call.clone());
        match call {
            RecoveryCall::ListDeliveries { .. } if !self.hook_exists => {
                RecoveryAnswer::Failed(Failure::new(FailureClass::NotFound, "404 Not Found"))
            }
            RecoveryCall::ListDeliveries { .. } => {
                RecoveryAnswer::Deliveries(self.deliveries.clone())
            }
            RecoveryCall::Redeliver { .. } => RecoveryAnswer::Redelivered,
            RecoveryCall::GetJob(j) => match self.jobs.get(&j.id.0) {
                Some(s) => RecoveryAnswer::Job(s.clone()),
                None => RecoveryAnswer::Failed(Failure::new(FailureClass::NotFound, "404")),
            },
        }
    }
}

/// Runs every effect until the machine is idle; returns its notices.
fn run(
    m: &mut Recovery,
    now: Timestamp,
    gh: &mut Github,
    store: &Store<MemoryBackend>,
) -> Vec<RecoveryNotice> {
    m.handle_timeout(now);
    let mut notices = Vec::new();
    while let Some(e) = m.poll_effect() {
        match e {
            RecoveryEffect::Github { id, call, .. } => {
                let a = gh.answer(&call);
                m.handle_github_result(now, id, a);
            }
            RecoveryEffect::Store { id, op, .. } => {
                let r = store.run(now, op).map_err(|e| e.to_string());
                m.handle_store_result(now, id, r);
            }
            RecoveryEffect::Notice(n) => notices.push(n),
        }
    }
    notices
}

fn rig(hook: Option<u64>) -> (Recovery, Github, Store<MemoryBackend>) {
    let settings = RecoverySettings {
        hook_id: hook,
        ..RecoverySettings::default()
    };
    let gh = Github {
        deliveries: Vec::new(),
        jobs: BTreeMap::new(),
        hook_exists: true,
        calls: Vec::new(),
    };
    let store = Store::new(MemoryBackend::new(100), QueueSettings::default());
    (Recovery::new(settings, T0), gh, store)
}

fn redelivered(gh: &Github) -> Vec<u64> {
    gh.calls
        .iter()
        .filter_map(|c| match c {
            RecoveryCall::Redeliver { delivery_id, .. } => Some(*delivery_id),
            _ => None,
        })
        .collect()
}

#[test]
fn failed_deliveries_are_redelivered_and_delivered_ones_are_not() {
    let (mut m, mut gh, store) = rig(Some(42));
    gh.deliveries = vec![
        d(1, "ok", 10, 200, false),
        d(2, "lost", 20, 502, false),
        d(3, "retried-ok", 30, 503, false),
        d(4, "retried-ok", 40, 200, true),
        d(5, "twice-failed", 50, 0, false),
        d(6, "twice-failed", 60, 500, true),
        DeliverySummary {
            event: "ping".into(),
            ..d(7, "ping", 5, 500, false)
        },
    ];
    let now = T0.saturating_add(Duration::from_secs(100));
    let notices = run(&mut m, now, &mut gh, &store);
    // Oldest first; the newest failed attempt of a GUID is the one repeated.
    assert_eq!(redelivered(&gh), vec![2, 6]);
    assert!(
        notices.contains(&RecoveryNotice::CycleDone {
            redelivered: 2,
            checked: 0,
            removed: 0
        }),
        "{notices:?}"
    );
    match &gh.calls[0] {
        RecoveryCall::ListDeliveries { hook_id, since } => {
            assert_eq!(*hook_id, 42);
            assert_eq!(now.saturating_since(*since), Duration::from_secs(24 * 3600));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_guid_is_redelivered_at_most_max_attempts_times() {
    let (mut m, mut gh, store) = rig(Some(1));
    gh.deliveries = vec![d(2, "lost", 0, 502, false)];
    let mut now = T0;
    for _ in 0..5 {
        run(&mut m, now, &mut gh, &store);
        now = m.poll_timeout().expect("the next cycle is scheduled");
    }
    assert_eq!(redelivered(&gh), vec![2, 2, 2], "default max_attempts is 3");
}

#[test]
fn cycles_repeat_on_their_interval_and_not_before() {
    let (mut m, mut gh, store) = rig(Some(1));
    run(&mut m, T0, &mut gh, &store);
    let next = m.poll_timeout().unwrap();
    assert_eq!(next.saturating_since(T0), Duration::from_secs(300));
    let calls = gh.calls.len();
    run(
        &mut m,
        next.saturating_sub(Duration::from_secs(1)),
        &mut gh,
        &store,
    );
    assert_eq!(gh.calls.len(), calls, "nothing happens before the interval");
    run(&mut m, next, &mut gh, &store);
    assert!(gh.calls.len() > calls);
}

#[test]
fn a_wrong_hook_id_is_reported_and_reconciliation_still_runs() {
    let (mut m, mut gh, store) = rig(Some(999));
    gh.hook_exists = false;
    store.run(T0, Op::Enqueue(job(5))).unwrap();
    gh.jobs.insert(
        5,
        GithubJobStatus::Completed {
            conclusion: Some("cancelled".into()),
        },
    );
    let later = T0.saturating_add(Duration::from_secs(600));
    let notices = run(&mut m, later, &mut gh, &store);
    assert!(notices.contains(&RecoveryNotice::HookNotFound { hook_id: 999 }));
    assert!(notices.contains(&RecoveryNotice::Reconciled {
        job: JobId(5),
        conclusion: Some("cancelled".into())
    }));
    assert!(m.poll_timeout().is_some(), "the machine keeps going");
}

#[test]
fn reconciliation_removes_only_jobs_github_finished() {
    let (mut m, mut gh, store) = rig(None);
    for id in [1, 2, 3, 4] {
        store.run(T0, Op::Enqueue(job(id))).unwrap();
    }
    gh.jobs.insert(
        1,
        GithubJobStatus::Completed {
            conclusion: Some("success".into()),
        },
    );
    gh.jobs.insert(2, GithubJobStatus::Queued);
    gh.jobs
        .insert(3, GithubJobStatus::InProgress { runner: None });
    // 4 is unknown to GitHub: left alone, reported.
    let later = T0.saturating_add(Duration::from_secs(600));
    let notices = run(&mut m, later, &mut gh, &store);
    let left: Vec<u64> = match store.run(later, Op::List).unwrap() {
        Reply::Listing(l) => l.queued.iter().map(|j| j.id.0).collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(left, vec![2, 3, 4]);
    assert!(notices.contains(&RecoveryNotice::CycleDone {
        redelivered: 0,
        checked: 3,
        removed: 1
    }));
    assert!(notices.iter().any(|n| matches!(
        n,
        RecoveryNotice::StepFailed {
            step: "get_job",
            ..
        }
    )));
    // The job reference sent to GitHub is the record's.
    assert!(gh.calls.iter().any(|c| matches!(c,
        RecoveryCall::GetJob(j) if j.owner == "acme" && j.repo == "app" && j.run_id == 7)));
}

#[test]
fn fresh_jobs_are_not_checked() {
    let (mut m, mut gh, store) = rig(None);
    store.run(T0, Op::Enqueue(job(1))).unwrap();
    run(
        &mut m,
        T0.saturating_add(Duration::from_secs(10)),
        &mut gh,
        &store,
    );
    assert!(gh.calls.is_empty(), "{:?}", gh.calls);
}
