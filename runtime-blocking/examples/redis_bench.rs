//! Figures for the Redis store against one local `redis-server` (started here, loopback only,
//! no persistence), printed, never asserted:
//!
//! 1. enqueue rate with N concurrent clients, next to `redis-benchmark -t lpush -c N` on the
//!    same server (Anklet's enqueue is one LPUSH; ours is a read script plus a guarded commit
//!    script), with the ratio;
//! 2. claim + complete round trips per second, with one claimer and with N;
//! 3. pickup latency (p50/p99/max) from an enqueue to a claimer blocked in `wait_for_work`
//!    holding the job.
//!
//! `cargo run --release -p anklet-lite --example redis_bench [N]` (default N = 8). About 15 s.

use anklet_core::handler::Completion;
use anklet_core::ids::{HostId, JobId};
use anklet_core::labels::ClaimFilter;
use anklet_core::queue::conformance::sample_job;
use anklet_core::queue::redis_layout::{DEFAULT_PREFIX, RedisLayout};
use anklet_core::queue::{JobQueue, QueueSettings};
use anklet_core::secret::Secret;
use anklet_core::time::Timestamp;
use anklet_lite::store::redis::{RedisBackend, RedisOptions, RedisStore};
use anklet_tests::redis_server::RedisServer;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type Error = Box<dyn std::error::Error + Send + Sync>;

const PHASE: Duration = Duration::from_secs(3);
const LPUSH_REQUESTS: u32 = 100_000;
const PICKUPS: u64 = 500;

fn main() -> Result<(), Error> {
    let n: usize = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => 8,
    };
    let server = RedisServer::start()?;
    let version = server.cli(&["INFO", "server"])?;
    let version = String::from_utf8_lossy(&version.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:").map(str::to_owned))
        .unwrap_or_default();
    println!(
        "redis-server {} on 127.0.0.1:{}, N = {n}, {PHASE:?} per phase",
        version.trim(),
        server.port()
    );

    let ours = enqueue_rate(&server, n)?;
    let lpush = lpush_rate(&server, n)?;
    println!("enqueue, {n} clients:         {ours:>10.0} jobs/s");
    match lpush {
        Some(l) => println!(
            "redis-benchmark LPUSH -c {n}: {l:>10.0} req/s   (ours / LPUSH = {:.3})",
            ours / l
        ),
        None => println!("redis-benchmark LPUSH: not available"),
    }
    for claimers in [1, n] {
        let rate = claim_complete_rate(&server, claimers)?;
        println!("claim + complete, {claimers} claimer(s): {rate:>8.0} round trips/s");
    }
    pickup_latency(&server)?;
    Ok(())
}

fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    Timestamp::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

fn store(server: &RedisServer, queue: &str) -> Result<RedisStore, Error> {
    let settings = QueueSettings::default();
    let db = anklet_core::config::DatabaseSettings {
        url: "127.0.0.1".into(),
        port: server.port(),
        user: String::new(),
        password: Secret::default(),
        database: 0,
        max_retries: 3,
        retry_delay: Duration::from_millis(50),
        retry_backoff_factor: 2.0,
        cluster_mode: false,
        tls_enabled: false,
        tls_insecure: false,
    };
    let opts = RedisOptions::new(RedisLayout::new(DEFAULT_PREFIX, queue)?, &settings);
    Ok(RedisStore::new(RedisBackend::new(&db, opts)?, settings))
}

/// `n` threads enqueue distinct jobs into one queue for [`PHASE`].
fn enqueue_rate(server: &RedisServer, n: usize) -> Result<f64, Error> {
    let next = Arc::new(AtomicU64::new(1));
    let start = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let next = next.clone();
            let q = store(server, "bench");
            std::thread::spawn(move || -> Result<u64, Error> {
                let mut q = q?;
                let mut done = 0;
                while start.elapsed() < PHASE {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    q.enqueue(now(), sample_job(id, "acme", Some("t")))?;
                    done += 1;
                }
                Ok(done)
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.join().map_err(|_| "enqueue thread panicked")??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// `redis-benchmark -t lpush -c n -n M -q` against the same server; `None` if it is missing.
fn lpush_rate(server: &RedisServer, n: usize) -> Result<Option<f64>, Error> {
    let out = match std::process::Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port().to_string(),
            "-t",
            "lpush",
        ])
        .args([
            "-c",
            &n.to_string(),
            "-n",
            &LPUSH_REQUESTS.to_string(),
            "-q",
        ])
        .output()
    {
        Ok(o) => o,
        Err(_) => return Ok(None),
    };
    // "LPUSH: 123456.79 requests per second, p50=0.103 msec" (after \r progress lines).
    let text = String::from_utf8_lossy(&out.stdout);
    let rate = text
        .split(['\r', '\n'])
        .filter_map(|l| l.trim().strip_prefix("LPUSH:"))
        .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .next_back();
    Ok(rate)
}

/// `claimers` threads claim and complete jobs from the queue filled by [`enqueue_rate`].
fn claim_complete_rate(server: &RedisServer, claimers: usize) -> Result<f64, Error> {
    let start = Instant::now();
    let handles: Vec<_> = (0..claimers)
        .map(|i| {
            let q = store(server, "bench");
            std::thread::spawn(move || -> Result<u64, Error> {
                let mut q = q?;
                let host = HostId(format!("bench-{i}"));
                let how = Completion::Finished {
                    conclusion: Some("success".into()),
                };
                let mut done = 0;
                while start.elapsed() < PHASE {
                    let lease = Duration::from_secs(60);
                    let Some(r) = q.claim(now(), &host, &ClaimFilter::default(), lease)? else {
                        break;
                    };
                    q.complete(now(), r.id, &host, &how)?
                        .map_err(|e| e.to_string())?;
                    done += 1;
                }
                Ok(done)
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.join().map_err(|_| "claim thread panicked")??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// One claimer blocked in `wait_for_work`; jobs enqueued one at a time every 5 ms.
fn pickup_latency(server: &RedisServer) -> Result<(), Error> {
    let (tx, rx) = mpsc::channel::<(JobId, Instant)>();
    let mut claimer = store(server, "pickup")?;
    let handle = std::thread::spawn(move || -> Result<hdrhistogram::Histogram<u64>, Error> {
        let mut hist = hdrhistogram::Histogram::<u64>::new(3)?;
        let mut sent: HashMap<JobId, Instant> = HashMap::new();
        let host = HostId("pickup".into());
        let how = Completion::Finished {
            conclusion: Some("success".into()),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while hist.len() < PICKUPS && Instant::now() < deadline {
            let lease = Duration::from_secs(60);
            match claimer.claim(now(), &host, &ClaimFilter::default(), lease)? {
                Some(r) => {
                    let picked = Instant::now();
                    // The producer sends the enqueue instant once its enqueue returned.
                    loop {
                        if let Some(at) = sent.remove(&r.id) {
                            let us = u64::try_from(picked.duration_since(at).as_micros())?;
                            hist.record(us.max(1))?;
                            break;
                        }
                        match rx.recv_timeout(Duration::from_secs(1)) {
                            Ok((id, at)) => {
                                sent.insert(id, at);
                            }
                            Err(_) => break,
                        }
                    }
                    claimer
                        .complete(now(), r.id, &host, &how)?
                        .map_err(|e| e.to_string())?;
                }
                None => {
                    claimer.backend().wait_for_work(Duration::from_secs(1))?;
                }
            }
        }
        Ok(hist)
    });
    let mut producer = store(server, "pickup")?;
    for id in 1..=PICKUPS {
        std::thread::sleep(Duration::from_millis(5));
        let at = Instant::now();
        producer.enqueue(now(), sample_job(id, "acme", Some("t")))?;
        tx.send((JobId(id), at))?;
    }
    let hist = handle.join().map_err(|_| "pickup thread panicked")??;
    println!(
        "pickup latency (enqueue → blocked claimer holds the job), {} samples: p50 {} µs, p99 {} µs, max {} µs",
        hist.len(),
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.max()
    );
    Ok(())
}
