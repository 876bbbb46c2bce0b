//! Figures for the webhook receiver of both daemons (issue 6), printed, never asserted. Each
//! daemon runs as its real release binary with a receiver-only config (one `github_receiver`
//! plugin with the GitHub emulator as GitHub: its recovery runs at start-up, then every 300 s,
//! so not during a run) on its own `redis-server` (loopback,
//! `appendonly yes`, `appendfsync everysec`), logging at the default level (info) to a file:
//!
//! 1. **Throughput**: N keep-alive clients (default 50) each post distinct, correctly signed
//!    `workflow_job` `queued` deliveries back to back for a fixed time (default 15 s, after a
//!    2 s warm-up). A 200 means the job was verified (HMAC-SHA256), parsed, filtered and
//!    committed to Redis before the answer (idempotent enqueue: one guarded commit script;
//!    concurrent enqueues are group-committed, several to a script call, and a refused commit
//!    reads to tell a known job). Printed: requests/s, p50/p99/max latency (client-side, request
//!    written → response read), non-200 answers; CPU per webhook of the daemon, redis-server
//!    and the load generator; script calls per webhook and Redis' µs per script call
//!    (`INFO commandstats`).
//! 2. **Against LPUSH**: `redis-benchmark -t lpush -c N -n 200000` on the same server (what
//!    Anklet's receiver stores per webhook: one LPUSH). Printed: its rate and p99, and the ratio
//!    ours / LPUSH (target ≥ 0.5×; our p99 target < 5 ms).
//! 3. **RSS at 1,000 req/s**: a fresh daemon process, 10 connections each paced at 100 req/s
//!    for 20 s (`--paced-seconds`); `VmRSS` of `/proc/<pid>/status` sampled every second (target < 20 MiB). Also
//!    its RSS before the load, the peak (`VmHWM`), and the rate and p99 achieved.
//!
//! The load generator, the daemon and Redis share the machine's cores, so the figures are for
//! this machine under its load (printed with `uptime` before each phase).
//!
//! ```text
//! cargo build --release -p anklet -p anklet-lite
//! cargo run --release -p anklet-lite --example receiver_bench -- [--clients 50] [--seconds 15]
//!     [--only anklet|anklet-lite] [--skip paced] [--lite PATH] [--tokio PATH]
//! ```

// A bench binary: it stops with a clear message when the machine is not set up for it.
#![allow(clippy::expect_used)]

#[path = "bench_support/mod.rs"]
mod bench_support;

use anklet_tests::receiver_suite::{SECRET, queued_payload, sign};
use bench_support::{Daemon, HttpClient, RecordClamped};
use github_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const TOKEN: &str = "ghp_receiver_bench_token";

/// Job ids (and delivery GUIDs) are unique across every phase of one run.
static NEXT_JOB: AtomicU64 = AtomicU64::new(1_000_000);

const WARMUP: Duration = Duration::from_secs(2);
const LPUSH_REQUESTS: u32 = 200_000;
/// Upper bound of requests in the throughput phase (keeps Redis' memory bounded).
const MAX_REQUESTS: u64 = 1_000_000;
const PACED_RATE: u64 = 1_000;
const PACED_CONNECTIONS: u64 = 10;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let clients: u64 = arg("--clients").map_or(50, |v| v.parse().expect("--clients N"));
    let seconds: u64 = arg("--seconds").map_or(15, |v| v.parse().expect("--seconds N"));
    let only = arg("--only");
    let skip = arg("--skip").unwrap_or_default();
    let paced_for = Duration::from_secs(
        arg("--paced-seconds").map_or(20, |v| v.parse().expect("--paced-seconds N")),
    );
    let dir = tempfile::Builder::new()
        .prefix("receiver-bench-")
        .tempdir()
        .expect("temp dir");
    println!(
        "receiver bench: {clients} clients, {seconds} s per daemon (after {WARMUP:?} warm-up); {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let emu = Emulator::start(EmulatorConfig {
        pats: vec![TOKEN.to_owned()],
        webhook_secret: Some(SECRET.to_owned()),
        ping_on_start: false,
        ..EmulatorConfig::default()
    })
    .expect("the GitHub emulator starts");
    for (name, bin) in bench_support::daemon_binaries() {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        println!("\n== {name} ({})", bin.display());
        let redis = bench_support::redis_everysec();
        println!(
            "redis-server on 127.0.0.1:{} (appendonly yes, appendfsync everysec)",
            redis.port()
        );

        // 1. Throughput.
        let port = bench_support::free_port();
        let mut daemon = receiver(
            &bin,
            dir.path(),
            &format!("{name}-rx"),
            redis.port(),
            port,
            &emu,
        );
        bench_support::wait_http_ok(port, &mut daemon);
        let _ = load(port, clients, WARMUP);
        println!("load before throughput: {}", bench_support::load());
        let cpu0 = (
            daemon.cpu_seconds(),
            redis_cpu(&redis),
            bench_support::self_cpu_seconds(),
        );
        let run = load(port, clients, Duration::from_secs(seconds));
        let cpu = (
            daemon.cpu_seconds() - cpu0.0,
            redis_cpu(&redis) - cpu0.1,
            bench_support::self_cpu_seconds() - cpu0.2,
        );
        let (p50, p99, max) = bench_support::quantiles(&run.latency_us);
        let rate = run.ok as f64 / run.elapsed.as_secs_f64();
        println!(
            "receiver, {clients} clients: {rate:>8.0} webhooks/s stored ({} in {:.1} s, {} non-200, {} I/O errors); latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; daemon RSS after {} MiB",
            run.ok,
            run.elapsed.as_secs_f64(),
            run.refused,
            run.io_errors,
            ms(p50),
            ms(p99),
            ms(max),
            mib(daemon.rss_kib()),
        );
        let per = |c: f64| c * 1e6 / run.ok.max(1) as f64;
        println!(
            "  CPU during the run: daemon {:.1} s ({:.0} µs/webhook), redis-server {:.1} s ({:.0} µs/webhook), load generator {:.1} s ({:.0} µs/webhook); daemon threads {}",
            cpu.0,
            per(cpu.0),
            cpu.1,
            per(cpu.1),
            cpu.2,
            per(cpu.2),
            daemon.threads()
        );
        let evalsha = bench_support::redis_commandstats(&redis)
            .into_iter()
            .filter(|(n, _)| n.starts_with("eval"))
            .map(|(_, c)| c)
            .sum::<u64>();
        println!(
            "  Redis scripts per stored webhook (warm-up included): {:.2}; {}",
            evalsha as f64 / (run.ok as f64 + 1.0).max(1.0),
            script_stats(&redis)
        );
        drop(daemon);

        // 2. LPUSH at the same concurrency on the same server.
        println!("load before redis-benchmark: {}", bench_support::load());
        let rcpu = redis_cpu(&redis);
        match lpush(redis.port(), clients) {
            Some((lrate, lp99)) => println!(
                "redis-benchmark -t lpush -c {clients} -n {LPUSH_REQUESTS}: {lrate:>8.0} req/s, p99 {lp99:.2} ms (redis-server {:.1} µs CPU/LPUSH); ours / LPUSH = {:.3} (target ≥ 0.5); our p99 {:.2} ms (target < 5 ms)",
                (redis_cpu(&redis) - rcpu) * 1e6 / f64::from(LPUSH_REQUESTS),
                rate / lrate,
                ms(p99)
            ),
            None => println!("redis-benchmark: not available"),
        }

        if skip.contains("paced") {
            continue;
        }
        // 3. RSS at a steady 1,000 req/s: fresh processes on fresh Redis servers (so their
        // start-up reconciliation has no queue to read); first with nothing taking the jobs
        // (the queue grows by 1,000 a second), then with a consumer claiming and completing
        // them as handlers would (the queue stays short).
        drop(redis);
        for drain in [false, true] {
            let redis = bench_support::redis_everysec();
            let port = bench_support::free_port();
            let tag = if drain { "rss-drained" } else { "rss" };
            let mut daemon = receiver(
                &bin,
                dir.path(),
                &format!("{name}-{tag}"),
                redis.port(),
                port,
                &emu,
            );
            bench_support::wait_http_ok(port, &mut daemon);
            std::thread::sleep(Duration::from_secs(2));
            let idle = daemon.rss_kib();
            let stop = Arc::new(AtomicBool::new(false));
            let drainer = drain.then(|| drainer(&daemon, redis.port(), Arc::clone(&stop)));
            println!(
                "load before paced run ({}): {}",
                if drain {
                    "jobs drained by a consumer"
                } else {
                    "queue growing"
                },
                bench_support::load()
            );
            let paced = paced(port, &daemon, paced_for);
            stop.store(true, Ordering::Relaxed);
            let drained = drainer.map(|d| d.join().expect("drainer thread"));
            let (_, p99, max) = bench_support::quantiles(&paced.run.latency_us);
            println!(
                "receiver at {PACED_RATE} req/s for {paced_for:?}: achieved {:.0} req/s ({} non-200, {} I/O errors), p99 {:.2} ms, max {:.2} ms{}",
                paced.run.ok as f64 / paced.run.elapsed.as_secs_f64(),
                paced.run.refused,
                paced.run.io_errors,
                ms(p99),
                ms(max),
                drained.map_or(String::new(), |n| format!(
                    "; {n} jobs claimed and completed meanwhile"
                ))
            );
            println!(
                "  RSS: idle {} MiB, during load max {} MiB, at the end {} MiB (anon {} + file-backed {}), peak VmHWM {} MiB (target < 20 MiB); CPU {:.1} s over the run; threads {}",
                mib(idle),
                mib(paced.rss_max),
                mib(paced.rss_end),
                mib(daemon.rss_split_kib().0),
                mib(daemon.rss_split_kib().1),
                mib(daemon.hwm_kib()),
                paced.cpu,
                daemon.threads()
            );
        }
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// A receiver-only daemon on `redis_port`, receiver on `port`, with the emulator as GitHub
/// (its recovery runs once at start-up, on an empty queue, then every 300 s: not during a run).
fn receiver(
    bin: &std::path::Path,
    dir: &std::path::Path,
    name: &str,
    redis_port: u16,
    port: u16,
    emu: &EmulatorHandle,
) -> Daemon {
    let hook = emu
        .add_hook(&format!("http://127.0.0.1:{port}/jobs/v1/receiver"))
        .expect("hook added");
    let yaml = format!(
        "global_database_url: 127.0.0.1\nglobal_database_port: {redis_port}\nmetrics:\n  port: \"{}\"\nplugins:\n  - name: receiver\n    plugin: github_receiver\n    port: \"{port}\"\n    secret: {SECRET}\n    owner: acme\n    repo: app\n    token: {TOKEN}\n    github_api_url: {}\n    hook_id: {hook}\n",
        bench_support::free_port(),
        emu.base_url()
    );
    Daemon::spawn(bin, dir, name, &yaml, "info")
}
struct Run {
    ok: u64,
    refused: u64,
    io_errors: u64,
    elapsed: Duration,
    latency_us: Histogram<u64>,
}

/// `clients` connections posting back to back for `time` (or [`MAX_REQUESTS`] in all).
fn load(port: u16, clients: u64, time: Duration) -> Run {
    let start = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let sent = Arc::clone(&sent);
            std::thread::spawn(move || {
                let mut run = Run::empty();
                let mut c = HttpClient::connect(port).expect("connect to the receiver");
                while start.elapsed() < time && sent.fetch_add(1, Ordering::Relaxed) < MAX_REQUESTS
                {
                    one(&mut c, &mut run, port);
                }
                run
            })
        })
        .collect();
    let mut total = Run::empty();
    for h in handles {
        total.add(&h.join().expect("client thread"));
    }
    total.elapsed = start.elapsed();
    total
}

/// Posts one fresh signed delivery and records the outcome; reconnects after an I/O error.
fn one(c: &mut HttpClient, run: &mut Run, port: u16) {
    let job = NEXT_JOB.fetch_add(1, Ordering::Relaxed);
    let body = queued_payload(job);
    let signature = sign(&body);
    let guid = format!("bench-{job}");
    let t0 = Instant::now();
    match c.post_webhook(&guid, &body, &signature) {
        Ok(200) => {
            run.ok += 1;
            let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
            run.latency_us.record_clamped(us.max(1));
        }
        Ok(_) => run.refused += 1,
        Err(_) => {
            run.io_errors += 1;
            if let Ok(fresh) = HttpClient::connect(port) {
                *c = fresh;
            }
        }
    }
}

impl Run {
    fn empty() -> Self {
        Self {
            ok: 0,
            refused: 0,
            io_errors: 0,
            elapsed: Duration::ZERO,
            latency_us: bench_support::histogram(),
        }
    }

    fn add(&mut self, other: &Run) {
        self.ok += other.ok;
        self.refused += other.refused;
        self.io_errors += other.io_errors;
        self.latency_us.add(&other.latency_us).expect("same bounds");
    }
}

struct Paced {
    run: Run,
    rss_max: u64,
    rss_end: u64,
    cpu: f64,
}

/// [`PACED_CONNECTIONS`] connections, each sending on its own fixed schedule so the total is
/// [`PACED_RATE`] per second, for `time`; RSS sampled (and printed) every second meanwhile.
fn paced(port: u16, daemon: &Daemon, time: Duration) -> Paced {
    let start = Instant::now();
    let cpu0 = daemon.cpu_seconds();
    let every = Duration::from_nanos(1_000_000_000 * PACED_CONNECTIONS / PACED_RATE);
    let handles: Vec<_> = (0..PACED_CONNECTIONS)
        .map(|i| {
            std::thread::spawn(move || {
                let mut run = Run::empty();
                let mut c = HttpClient::connect(port).expect("connect to the receiver");
                // Connections are spread over one period.
                let mut next = start + every * u32::try_from(i).expect("few") / 10;
                while next < start + time {
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    one(&mut c, &mut run, port);
                    next += every;
                }
                run
            })
        })
        .collect();
    let mut rss_max = 0;
    let mut trace = Vec::new();
    while start.elapsed() < time {
        std::thread::sleep(Duration::from_secs(1));
        let rss = daemon.rss_kib();
        rss_max = rss_max.max(rss);
        trace.push(mib(rss));
    }
    println!("  RSS every second (MiB): {}", trace.join(" "));
    let mut run = Run::empty();
    for h in handles {
        run.add(&h.join().expect("client thread"));
    }
    run.elapsed = start.elapsed();
    Paced {
        run,
        rss_max,
        rss_end: daemon.rss_kib(),
        cpu: daemon.cpu_seconds() - cpu0,
    }
}

/// `redis-benchmark -t lpush -c clients -n LPUSH_REQUESTS --csv`: (req/s, p99 ms).
fn lpush(port: u16, clients: u64) -> Option<(f64, f64)> {
    let out = std::process::Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", "lpush"])
        .args([
            "-c",
            &clients.to_string(),
            "-n",
            &LPUSH_REQUESTS.to_string(),
        ])
        .arg("--csv")
        .output()
        .ok()?;
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text.lines().find(|l| l.starts_with("\"LPUSH"))?;
    let f: Vec<f64> = row
        .split(',')
        .skip(1)
        .filter_map(|v| v.trim_matches('"').parse().ok())
        .collect();
    Some((*f.first()?, *f.get(5)?))
}

/// A consumer standing in for the fleet's handlers: claims and completes every queued job of
/// the daemon's queue (named in its `job store: Redis` log line) until `stop`; the count.
fn drainer(
    daemon: &Daemon,
    redis_port: u16,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    use anklet_core::handler::Completion;
    use anklet_core::ids::HostId;
    use anklet_core::labels::ClaimFilter;
    use anklet_core::queue::redis_layout::{DEFAULT_PREFIX, RedisLayout};
    use anklet_core::queue::{JobQueue, QueueSettings};
    use anklet_lite::store::redis::{RedisBackend, RedisOptions, RedisStore};
    let log = daemon.log_text();
    let queue = log
        .lines()
        .find(|l| l.contains("job store: Redis"))
        .and_then(|l| {
            l.split("\"queue\":\"")
                .nth(1)?
                .split('"')
                .next()
                .map(str::to_owned)
        })
        .expect("the daemon logs its queue name");
    let settings = QueueSettings::default();
    let opts = RedisOptions::new(
        RedisLayout::new(DEFAULT_PREFIX, &queue).expect("queue name"),
        &settings,
    );
    let db = anklet_tests::redis_server::test_db(redis_port);
    let mut store = RedisStore::new(
        RedisBackend::new(&db, opts).expect("redis connection"),
        settings,
    );
    std::thread::spawn(move || {
        let host = HostId("drainer".into());
        let how = Completion::Finished {
            conclusion: Some("success".into()),
        };
        let mut done = 0;
        while !stop.load(Ordering::Relaxed) {
            let now = bench_support::now();
            match store.claim(now, &host, &ClaimFilter::default(), Duration::from_secs(60)) {
                Ok(Some(r)) => {
                    let _ = store.complete(now, r.id, &host, &how);
                    done += 1;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("drainer: {e}"),
            }
        }
        done
    })
}

/// Redis' own account of its script calls (`INFO commandstats`: calls and µs per call of
/// each `eval*` command), so the enqueue's cost inside Redis is seen apart from the rest.
fn script_stats(redis: &anklet_tests::redis_server::RedisServer) -> String {
    let out = redis
        .cli(&["INFO", "commandstats"])
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (name, stats) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            if !name.starts_with("eval") {
                return None;
            }
            let field = |f: &str| {
                stats
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(f))
                    .unwrap_or("?")
                    .to_owned()
            };
            Some(format!(
                "{name}: {} calls, {} µs/call",
                field("calls="),
                field("usec_per_call=")
            ))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// redis-server's own CPU time (`INFO cpu`: used_cpu_user + used_cpu_sys), seconds.
fn redis_cpu(redis: &anklet_tests::redis_server::RedisServer) -> f64 {
    let out = redis.cli(&["INFO", "cpu"]).expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("used_cpu_user:") || l.starts_with("used_cpu_sys:"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok())
        .sum()
}
