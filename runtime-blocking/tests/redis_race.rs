//! Many hosts racing on one Redis queue, each through its own connection: every job is claimed
//! once and completed once; with a claimer that dies holding jobs, the reaper (run by live
//! hosts) gives them back and every job still completes exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::handler::Completion;
use anklet_core::ids::{HostId, JobId};
use anklet_core::labels::ClaimFilter;
use anklet_core::queue::conformance::sample_job;
use anklet_core::queue::{EnqueueOutcome, JobQueue, QueueSettings};
use anklet_tests::redis_server::{ServerOptions, must_start};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

mod redis_support;
use redis_support::{fresh_queue, now, store_on};

const JOBS: u64 = 2_000;
const CLAIMERS: usize = 8;

/// What one claimer did.
#[derive(Default)]
struct Log {
    claimed: Vec<JobId>,
    completed: Vec<JobId>,
    reaped: usize,
}

fn counts(ids: impl IntoIterator<Item = JobId>) -> BTreeMap<JobId, usize> {
    let mut m = BTreeMap::new();
    for id in ids {
        *m.entry(id).or_insert(0) += 1;
    }
    m
}

/// Runs `CLAIMERS` claimer threads over a queue of `JOBS` jobs. Claimer 0 "dies" after
/// `die_after` claims when set: it keeps its jobs, never renews and never completes them.
fn race(lease: Duration, die_after: Option<usize>) -> (Vec<Log>, Duration) {
    let server = Arc::new(must_start(ServerOptions::default()));
    let queue = fresh_queue();
    let settings = QueueSettings {
        finished_capacity: 10_000,
        ..QueueSettings::default()
    };
    let mut q = store_on(&server, &queue, settings.clone());
    for id in 1..=JOBS {
        let job = sample_job(id, "acme", Some("t"));
        assert_eq!(q.enqueue(now(), job).unwrap(), EnqueueOutcome::Enqueued);
    }
    let done = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(CLAIMERS));
    let start = Instant::now();
    let handles: Vec<_> = (0..CLAIMERS)
        .map(|i| {
            let (server, queue, settings) = (server.clone(), queue.clone(), settings.clone());
            let (done, barrier) = (done.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut q = store_on(&server, &queue, settings);
                let host = HostId(format!("host-{i}"));
                let mut log = Log::default();
                barrier.wait();
                let deadline = Instant::now() + Duration::from_secs(60);
                while done.load(Ordering::SeqCst) < JOBS as usize {
                    assert!(Instant::now() < deadline, "{host} timed out");
                    if i == 0 && die_after.is_some_and(|n| log.claimed.len() >= n) {
                        // Dead: holds its jobs, does nothing more.
                        break;
                    }
                    match q
                        .claim(now(), &host, &ClaimFilter::default(), lease)
                        .unwrap()
                    {
                        Some(r) => {
                            log.claimed.push(r.id);
                            if i == 0 && die_after.is_some() {
                                continue;
                            }
                            q.complete(
                                now(),
                                r.id,
                                &host,
                                &Completion::Finished {
                                    conclusion: Some("success".into()),
                                },
                            )
                            .unwrap()
                            .unwrap();
                            log.completed.push(r.id);
                            done.fetch_add(1, Ordering::SeqCst);
                        }
                        None => {
                            // Nothing claimable: any live node may reap lapsed leases.
                            log.reaped += q.reap_expired(now()).unwrap().len();
                            q.backend()
                                .wait_for_work(Duration::from_millis(50))
                                .unwrap();
                        }
                    }
                }
                log
            })
        })
        .collect();
    let logs: Vec<Log> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let took = start.elapsed();
    // The store is empty and remembers every job as finished.
    let listing = q.list(now()).unwrap();
    assert!(listing.queued.is_empty() && listing.claimed.is_empty() && listing.dead.is_empty());
    for id in 1..=JOBS {
        assert!(
            q.finished(JobId(id)).unwrap().is_some(),
            "job {id} not finished"
        );
    }
    (logs, took)
}

#[test]
fn eight_claimers_claim_and_complete_each_job_exactly_once() {
    let (logs, took) = race(Duration::from_secs(60), None);
    let claimed = counts(logs.iter().flat_map(|l| l.claimed.iter().copied()));
    let completed = counts(logs.iter().flat_map(|l| l.completed.iter().copied()));
    assert_eq!(claimed.len() as u64, JOBS);
    assert!(claimed.values().all(|&n| n == 1), "a job was claimed twice");
    assert_eq!(completed.len() as u64, JOBS);
    assert!(
        completed.values().all(|&n| n == 1),
        "a job was completed twice"
    );
    let per_host: Vec<usize> = logs.iter().map(|l| l.completed.len()).collect();
    println!(
        "{JOBS} jobs, {CLAIMERS} claimers: {:.0} claim+complete/s, per host {per_host:?}",
        JOBS as f64 / took.as_secs_f64()
    );
}

#[test]
fn a_dead_claimers_jobs_are_reaped_and_still_complete_exactly_once() {
    const HELD: usize = 5;
    let (logs, took) = race(Duration::from_millis(1_500), Some(HELD));
    let dead = &logs[0];
    assert_eq!(dead.claimed.len(), HELD);
    assert!(dead.completed.is_empty());
    let completed = counts(logs.iter().flat_map(|l| l.completed.iter().copied()));
    assert_eq!(completed.len() as u64, JOBS);
    assert!(
        completed.values().all(|&n| n == 1),
        "a job was completed twice"
    );
    let reaped: usize = logs.iter().map(|l| l.reaped).sum();
    assert_eq!(reaped, HELD, "exactly the dead claimer's jobs were reaped");
    // Each of the dead claimer's jobs was claimed twice (it, then a live host); all others once.
    let claimed = counts(logs.iter().flat_map(|l| l.claimed.iter().copied()));
    for (id, n) in &claimed {
        let expect = if dead.claimed.contains(id) { 2 } else { 1 };
        assert_eq!(*n, expect, "{id}");
    }
    println!(
        "dead claimer held {HELD} jobs; reaped {reaped}; all {JOBS} completed once in {took:?}"
    );
}
