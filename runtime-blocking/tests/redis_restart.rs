//! Redis killed with SIGKILL and restarted (append-only file, `appendfsync always`) while a
//! producer enqueues and four claimers claim and complete: nothing acknowledged is lost and no
//! job is completed twice. Clients see errors while the server is down and retry the
//! operation, as the handler does (every queue operation is safe to retry).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::handler::Completion;
use anklet_core::ids::{HostId, JobId};
use anklet_core::labels::ClaimFilter;
use anklet_core::queue::conformance::sample_job;
use anklet_core::queue::{JobQueue, QueueSettings};
use anklet_tests::redis_server::{ServerOptions, must_start};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod redis_support;
use redis_support::{fresh_queue, now};

const JOBS: u64 = 600;
const CLAIMERS: usize = 4;
const LEASE: Duration = Duration::from_secs(3);
const PAUSE: Duration = Duration::from_millis(20);

#[derive(Default)]
struct Outcome {
    /// Completes the store acknowledged.
    acked: Vec<JobId>,
    /// Completes whose reply was lost but which the store applied (found finished while our
    /// lease could not have lapsed, so nobody else could have completed it).
    applied_unacked: Vec<JobId>,
    /// Lease lost with the lease already lapsed: someone else may have run it.
    ambiguous: Vec<JobId>,
    errors: usize,
}

#[test]
fn sigkill_and_aof_restart_lose_nothing_acknowledged_and_duplicate_nothing() {
    let mut server = must_start(ServerOptions {
        aof: true,
        ..ServerOptions::default()
    });
    let port = server.port();
    let queue = fresh_queue();
    let settings = QueueSettings {
        finished_capacity: 10_000,
        ..QueueSettings::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let completed = Arc::new(AtomicUsize::new(0));
    let enqueued = Arc::new(Mutex::new(BTreeSet::new()));

    // Stores only need the port: they reconnect to the restarted server by themselves.
    let shared_store = |q: &str, s: &QueueSettings| {
        let db = redis_support::db(port);
        let o = redis_support::options(q, s);
        anklet_lite::store::redis::RedisStore::new(
            anklet_lite::store::redis::RedisBackend::new(&db, o).unwrap(),
            s.clone(),
        )
    };

    let producer = {
        let (queue, settings, enqueued, stop) = (
            queue.clone(),
            settings.clone(),
            enqueued.clone(),
            stop.clone(),
        );
        let mut q = shared_store(&queue, &settings);
        std::thread::spawn(move || {
            let mut errors = 0;
            for id in 1..=JOBS {
                loop {
                    assert!(
                        !stop.load(Ordering::SeqCst),
                        "stopped before enqueueing {id}"
                    );
                    match q.enqueue(now(), sample_job(id, "acme", Some("t"))) {
                        Ok(_) => break,
                        Err(_) => {
                            errors += 1;
                            std::thread::sleep(PAUSE);
                        }
                    }
                }
                enqueued.lock().unwrap().insert(JobId(id));
                if id % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            (errors, q.backend().reconnects())
        })
    };

    let claimers: Vec<_> = (0..CLAIMERS)
        .map(|i| {
            let (stop, completed) = (stop.clone(), completed.clone());
            let mut q = shared_store(&queue, &settings);
            std::thread::spawn(move || {
                let host = HostId(format!("host-{i}"));
                let mut out = Outcome::default();
                while !stop.load(Ordering::SeqCst) {
                    let claimed = match q.claim(now(), &host, &ClaimFilter::default(), LEASE) {
                        Ok(c) => c,
                        Err(_) => {
                            out.errors += 1;
                            std::thread::sleep(PAUSE);
                            continue;
                        }
                    };
                    let Some(r) = claimed else {
                        if q.reap_expired(now()).is_err()
                            || q.backend().wait_for_work(PAUSE).is_err()
                        {
                            out.errors += 1;
                            std::thread::sleep(PAUSE);
                        }
                        continue;
                    };
                    let expires = r.lease().unwrap().expires_at;
                    let how = Completion::Finished {
                        conclusion: Some("success".into()),
                    };
                    loop {
                        match q.complete(now(), r.id, &host, &how) {
                            Ok(Ok(())) => {
                                out.acked.push(r.id);
                                completed.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                            Ok(Err(_lost)) => {
                                // Our earlier attempt may have been applied before the crash.
                                let t = now();
                                let finished = loop {
                                    match q.finished(r.id) {
                                        Ok(f) => break f,
                                        Err(_) => std::thread::sleep(PAUSE),
                                    }
                                };
                                if t < expires && finished.is_some() {
                                    out.applied_unacked.push(r.id);
                                    completed.fetch_add(1, Ordering::SeqCst);
                                } else {
                                    out.ambiguous.push(r.id);
                                }
                                break;
                            }
                            Err(_) => {
                                out.errors += 1;
                                std::thread::sleep(PAUSE);
                            }
                        }
                    }
                }
                (out, q.backend().reconnects())
            })
        })
        .collect();

    // Kill the server twice mid-run, each time restarting it from its append-only file.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut kills = 0;
    for at in [150usize, 400] {
        while completed.load(Ordering::SeqCst) < at {
            assert!(Instant::now() < deadline, "stuck before kill at {at}");
            std::thread::sleep(Duration::from_millis(5));
        }
        server.kill();
        kills += 1;
        std::thread::sleep(Duration::from_millis(300));
        server.restart().unwrap();
        assert_eq!(server.port(), port);
    }
    let (producer_errors, producer_reconnects) = producer.join().unwrap();

    // Done when every job is finished: nothing queued, claimed or dead is left.
    let check = shared_store(&queue, &settings);
    loop {
        assert!(
            Instant::now() < deadline,
            "jobs left over: {:?}",
            check.list(now())
        );
        if let Ok(l) = check.list(now())
            && l.queued.is_empty()
            && l.claimed.is_empty()
            && l.dead.is_empty()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::SeqCst);
    let results: Vec<(Outcome, u64)> = claimers.into_iter().map(|h| h.join().unwrap()).collect();

    // Nothing acknowledged is lost: every acknowledged enqueue is finished (so it survived).
    let enqueued = enqueued.lock().unwrap().clone();
    assert_eq!(enqueued.len() as u64, JOBS);
    for id in &enqueued {
        assert!(check.finished(*id).unwrap().is_some(), "{id} lost");
    }
    // Nothing duplicated: each job's completion landed exactly once across all hosts.
    let mut landed: BTreeMap<JobId, usize> = BTreeMap::new();
    for (o, _) in &results {
        for id in o.acked.iter().chain(&o.applied_unacked) {
            *landed.entry(*id).or_default() += 1;
        }
    }
    let ambiguous: usize = results.iter().map(|(o, _)| o.ambiguous.len()).sum();
    assert_eq!(ambiguous, 0, "a lease lapsed during the restart");
    assert_eq!(landed.len() as u64, JOBS, "every job completed");
    assert!(landed.values().all(|&n| n == 1), "a job completed twice");
    let acked: usize = results.iter().map(|(o, _)| o.acked.len()).sum();
    let unacked: usize = results.iter().map(|(o, _)| o.applied_unacked.len()).sum();
    let errors: usize = results.iter().map(|(o, _)| o.errors).sum::<usize>() + producer_errors;
    let reconnects: u64 = results.iter().map(|(_, r)| r).sum::<u64>() + producer_reconnects;
    assert!(reconnects >= CLAIMERS as u64, "every claimer reconnected");
    println!(
        "{kills} SIGKILL+restart: {JOBS} jobs, {acked} completes acked, {unacked} applied but \
         unacked, {errors} client errors retried, {reconnects} reconnects"
    );
}
