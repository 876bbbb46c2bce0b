//! Figures for both daemons as operators run them (issue 8), printed, never asserted. Every
//! daemon is its real release binary in its own process, against the GitHub emulator (in this
//! process, loopback) and a fake Mac (the fake `anka` both binaries embed):
//!
//! 1. **Idle RSS** with 2 plugins (a `github_receiver` and a `github` handler, embedded store,
//!    the emulator as GitHub, recovery on): `VmRSS` of `/proc/<pid>/status` after 10 s idle
//!    (targets: `anklet` ≤ 8 MiB, `anklet-lite` ≤ 4 MiB; Anklet's README states ~15 MB), split
//!    into anonymous and file-backed pages, with PSS and USS from `/proc/<pid>/smaps_rollup`
//!    (file-backed pages are the binary's and libc's, shared by the processes that map them).
//! 2. **Idle CPU** of the same processes: utime + stime (`/proc/<pid>/stat`, all threads) over
//!    the next 30 s, as CPU-seconds per minute and as % of one core.
//! 3. **Redis commands per minute per idle handler host**: a process with one `github` handler
//!    on its own Redis (nothing else talks to that server); `INFO stats`
//!    `total_commands_processed` over 60 s after a 10 s settle (the bench's second `INFO` is
//!    subtracted), with the `INFO commandstats` delta per command.
//! 4. **Webhook → runner started, and orchestration overhead per job** with a zero-latency
//!    fake `anka` (`time_scale: 0`: the fake sleeps 0 ms in every step). Jobs are queued one at
//!    a time (each one after the previous one's VM is gone). Run twice: a receiver process and
//!    one handler process on Redis (`anklet_tests::fleet`, `appendfsync always`; skip with
//!    `--skip jobs`), and receiver and handler in one process on the embedded store (`--skip
//!    one`). Two figures per job:
//!    - **webhook → runner started**: the emulator's `started_at_ms - created_at_ms`: webhook
//!      sent → receiver stores → handler claims → anka clone / start → runner config (JIT) →
//!      anka run starts the runner → the emulated runner opens a session and is assigned the
//!      job. It includes the external tools' time: every `anka` call is a shell wrapper plus an
//!      exec of the daemon binary (their cost is printed), and GitHub is the emulator.
//!    - **orchestration overhead** (target p99 ≤ 10 ms): that window minus the union (overlaps
//!      counted once) of these external spans inside it, all on this machine's wall clock:
//!      1. *webhook queue*: job created → the emulator's worker began the webhook POST
//!         (`Delivery::delivered_at_ms` of the job's `queued` delivery): GitHub's side;
//!      2. *anka*: each VM effect of the handler, from just before the anka driver spawns the
//!         first child process of the effect's plan to the exit and output of the last (the
//!         handler's `external call` debug lines, `call: anka`, `start_us` + `took_us`);
//!      3. *github*: each GitHub effect of the handler, from its hand-over to the GitHub
//!         executor to the answer (`call: github`; includes the executor's hand-off to its
//!         worker, which is ours but microseconds);
//!      4. *runner*: from the start of the `StartRunner` effect (`anka run` of the runner) to
//!         `started_at_ms`: the runner's own start-up and its session with GitHub.
//!
//!      What remains is ours: the receiver's HTTP handling, signature check and store write,
//!      the wake-up and claim, store writes between steps (Redis round trips, the embedded
//!      store's commits), thread/task hand-offs and logging. It is printed in three parts
//!      (µs log timestamps): webhook POST began → the receiver's `job queued` line (its
//!      durable store write included), that line → the handler's `claimed job#N` line (wake-up
//!      and the claim's durable commit), and claimed → the `StartRunner` call minus the
//!      external calls in between. Emulator instants have ms resolution, so each figure is
//!      ±1 ms.
//! 5. **Pickup latency**: created (webhook sent) → the receiver's `job queued` log line →
//!    the handler's `claimed job#N` log line (JSON log timestamps, ms), from the same jobs,
//!    with the median time after the webhook at which each later phase began.
//!
//! ```text
//! cargo build --release -p anklet -p anklet-lite
//! cargo run --release -p anklet-lite --example daemon_bench -- [--jobs 200]
//!     [--skip idle,redis,jobs,one] [--only anklet|anklet-lite] [--lite PATH] [--tokio PATH]
//!     [--anka PATH]
//! ```
//! About 5 minutes (idle 40 s and Redis 70 s run both daemons side by side; each job takes
//! well under 1 s: across processes the handler is woken through Redis' wake list).

// A bench binary: it stops with a clear message when the machine is not set up for it.
#![allow(clippy::expect_used)]

#[path = "bench_support/mod.rs"]
mod bench_support;

use anklet_tests::fleet::{Fleet, FleetOptions};
use bench_support::{Daemon, RecordClamped};
use github_emulator::{Emulator, EmulatorConfig, EmulatorHandle, JobSpec};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TOKEN: &str = "ghp_daemon_bench_token";
const SECRET: &str = "daemon-bench-secret";
const TEMPLATE: &str = "b3nch-macos";
const IDLE_SETTLE: Duration = Duration::from_secs(10);
const IDLE_CPU: Duration = Duration::from_secs(30);
const REDIS_WINDOW: Duration = Duration::from_secs(60);

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let jobs: usize = arg("--jobs").map_or(200, |v| v.parse().expect("--jobs N"));
    let skip = arg("--skip").unwrap_or_default();
    let only = arg("--only");
    let bins: Vec<(&str, PathBuf)> = bench_support::daemon_binaries()
        .into_iter()
        .filter(|(n, _)| only.as_deref().is_none_or(|o| o == *n))
        .collect();
    let dir = tempfile::Builder::new()
        .prefix("daemon-bench-")
        .tempdir()
        .expect("temp dir");
    println!(
        "daemon bench; {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if !skip.contains("idle") {
        idle(&bins, dir.path());
    }
    if !skip.contains("redis") {
        redis_idle(&bins, dir.path());
    }
    if !skip.contains("jobs") {
        for (name, bin) in &bins {
            orchestration(name, bin, jobs);
        }
    }
    if !skip.contains("one") {
        for (name, bin) in &bins {
            orchestration_one_process(name, bin, jobs, dir.path());
        }
    }
}

/// The binary that plays `anka` for the idle and Redis phases: `--anka PATH` (a default build,
/// which embeds the fake, so binaries built without the `demo` feature can be measured), else
/// the daemon binary itself.
fn anka_bin(bin: &Path) -> PathBuf {
    arg("--anka").map_or_else(|| bin.to_owned(), PathBuf::from)
}

fn emulator() -> EmulatorHandle {
    Emulator::start(EmulatorConfig {
        pats: vec![TOKEN.to_owned()],
        webhook_secret: Some(SECRET.to_owned()),
        ping_on_start: false,
        ..EmulatorConfig::default()
    })
    .expect("the GitHub emulator starts")
}

fn handler_yaml(name: &str, emu: &EmulatorHandle, anka: &Path) -> String {
    format!(
        "  - name: {name}\n    plugin: github\n    owner: acme\n    repo: app\n    token: {TOKEN}\n    github_api_url: {}\n    anka_path: {}\n",
        emu.base_url(),
        anka.display()
    )
}

fn metrics_yaml() -> String {
    format!("metrics:\n  port: \"{}\"\n", bench_support::free_port())
}

/// 1 and 2: both daemons side by side, receiver + handler, embedded store.
fn idle(bins: &[(&str, PathBuf)], dir: &Path) {
    println!("\n== idle, 2 plugins (receiver + handler), embedded store");
    println!("load before: {}", bench_support::load());
    let emu = emulator();
    let mut daemons: Vec<Daemon> = bins
        .iter()
        .map(|(name, bin)| {
            let port = bench_support::free_port();
            let hook = emu
                .add_hook(&format!("http://127.0.0.1:{port}/jobs/v1/receiver"))
                .expect("hook added");
            let anka = bench_support::fake_mac(&anka_bin(bin), &dir.join(format!("mac-idle-{name}")), TEMPLATE, 0.0);
            let yaml = format!(
                "{}plugins:\n  - name: receiver\n    plugin: github_receiver\n    port: \"{port}\"\n    secret: {SECRET}\n    owner: acme\n    repo: app\n    token: {TOKEN}\n    github_api_url: {}\n    hook_id: {hook}\n{}",
                metrics_yaml(),
                emu.base_url(),
                handler_yaml("host-idle", &emu, &anka)
            );
            let mut d = Daemon::spawn(bin, dir, &format!("{name}-idle"), &yaml, "info");
            bench_support::wait_http_ok(port, &mut d);
            d
        })
        .collect();
    std::thread::sleep(IDLE_SETTLE);
    let rss: Vec<u64> = daemons.iter().map(Daemon::rss_kib).collect();
    let mem: Vec<bench_support::Smaps> = daemons.iter().map(Daemon::smaps).collect();
    let cpu0: Vec<f64> = daemons.iter().map(Daemon::cpu_seconds).collect();
    let t0 = Instant::now();
    std::thread::sleep(IDLE_CPU);
    let secs = t0.elapsed().as_secs_f64();
    for (i, d) in daemons.iter_mut().enumerate() {
        assert!(d.running(), "{} exited:\n{}", d.name, d.log_text());
        let cpu = d.cpu_seconds() - cpu0[i];
        let target = if bins[i].0 == "anklet" { 8.0 } else { 4.0 };
        let mib = rss[i] as f64 / 1024.0;
        println!(
            "{:<12} idle RSS after {IDLE_SETTLE:?}: {mib:.1} MiB (target ≤ {target} MiB: {}; Anklet ~15 MB) = anon {:.1} MiB + file-backed {:.1} MiB, {} threads; idle CPU over {secs:.0} s: {:.3} CPU-s ({:.2} CPU-s/min, {:.3}% of one core)",
            bins[i].0,
            if mib <= target { "met" } else { "NOT met" },
            mem[i].anon as f64 / 1024.0,
            mem[i].file() as f64 / 1024.0,
            d.threads(),
            cpu,
            cpu * 60.0 / secs,
            cpu * 100.0 / secs
        );
        // File-backed pages are shared with every process mapping the same file: PSS splits
        // them among those processes, USS leaves them out unless only this process maps them.
        println!(
            "{:<12} smaps_rollup: PSS {:.1} MiB (anon {:.1} + file {:.1}), USS {:.1} MiB",
            bins[i].0,
            mem[i].pss as f64 / 1024.0,
            mem[i].pss_anon as f64 / 1024.0,
            mem[i].pss_file as f64 / 1024.0,
            mem[i].uss as f64 / 1024.0
        );
    }
}

/// 3: one idle handler per daemon, each on its own Redis.
fn redis_idle(bins: &[(&str, PathBuf)], dir: &Path) {
    println!("\n== Redis commands of one idle handler host");
    println!("load before: {}", bench_support::load());
    let emu = emulator();
    let setups: Vec<_> = bins
        .iter()
        .map(|(name, bin)| {
            let redis = bench_support::redis_everysec();
            let anka = bench_support::fake_mac(
                &anka_bin(bin),
                &dir.join(format!("mac-redis-{name}")),
                TEMPLATE,
                0.0,
            );
            let yaml = format!(
                "global_database_url: 127.0.0.1\nglobal_database_port: {}\n{}plugins:\n{}",
                redis.port(),
                metrics_yaml(),
                handler_yaml("host-redis", &emu, &anka)
            );
            let d = Daemon::spawn(bin, dir, &format!("{name}-redis"), &yaml, "info");
            (redis, d)
        })
        .collect();
    std::thread::sleep(IDLE_SETTLE);
    let before: Vec<_> = setups
        .iter()
        .map(|(r, _)| {
            (
                bench_support::redis_commandstats(r),
                bench_support::redis_info(r, "stats", "total_commands_processed"),
            )
        })
        .collect();
    let t0 = Instant::now();
    std::thread::sleep(REDIS_WINDOW);
    let secs = t0.elapsed().as_secs_f64();
    for (i, (r, d)) in setups.iter().enumerate() {
        // The second INFO itself is counted once it ran; the commandstats call before it too.
        let total = bench_support::redis_info(r, "stats", "total_commands_processed");
        let after = bench_support::redis_commandstats(r);
        let ours = total.saturating_sub(before[i].1).saturating_sub(2);
        let old: BTreeMap<_, _> = before[i].0.iter().cloned().collect();
        let mut delta: Vec<(String, u64)> = after
            .into_iter()
            .filter(|(n, _)| n != "info")
            .map(|(n, c)| {
                let d = c - old.get(&n).copied().unwrap_or(0);
                (n, d)
            })
            .filter(|(_, d)| *d > 0)
            .collect();
        delta.sort_by_key(|(_, c)| std::cmp::Reverse(*c));
        println!(
            "{:<12} {:.1} commands/min over {secs:.0} s ({ours} commands); by command: {}; daemon {}",
            bins[i].0,
            ours as f64 * 60.0 / secs,
            delta
                .iter()
                .map(|(n, c)| format!("{n} {c}"))
                .collect::<Vec<_>>()
                .join(", "),
            if std::fs::metadata(format!("/proc/{}", d.pid())).is_ok() {
                "running"
            } else {
                "EXITED"
            }
        );
    }
}

/// 4 and 5 across processes: a receiver process and a handler process on Redis
/// (`anklet_tests::fleet`); the handler learns of a job through the store.
fn orchestration(name: &str, bin: &Path, jobs: usize) {
    println!(
        "\n== {name}: orchestration, receiver and handler in two processes on Redis, {jobs} jobs one at a time, fake anka time_scale 0"
    );
    let fleet = Fleet::start(
        bin,
        FleetOptions {
            hosts: 1,
            anka_time_scale: 0.0,
            template_local: true,
            ..FleetOptions::default()
        },
    );
    let anka = fleet.mac_dir(0).join("anka");
    let anka_ms = anka_cost(&anka);
    let times = run_jobs(
        name,
        jobs,
        anka_ms,
        || fleet.create_jobs(1, 0)[0],
        |id| fleet.emulator.job(id),
        || fleet.emulator.runners().is_empty() && fleet.vms_left(0).is_empty(),
    );
    let handler_log = fleet.hosts[0].log();
    overhead(
        name,
        &fleet.receiver.log(),
        &handler_log,
        &fleet.emulator.deliveries(),
        &times,
    );
    pickup(name, &fleet.receiver.log(), &handler_log, &created(&times));
}

/// 4 and 5 in one process: receiver and handler in the same daemon on the embedded store (the
/// receiver wakes the handler at once), as `anklet demo` runs them.
fn orchestration_one_process(name: &str, bin: &Path, jobs: usize, dir: &Path) {
    println!(
        "\n== {name}: orchestration, receiver and handler in one process, embedded store, {jobs} jobs one at a time, fake anka time_scale 0"
    );
    let emu = emulator();
    let port = bench_support::free_port();
    let hook = emu
        .add_hook(&format!("http://127.0.0.1:{port}/jobs/v1/receiver"))
        .expect("hook added");
    let anka = bench_support::fake_mac(bin, &dir.join(format!("mac-one-{name}")), TEMPLATE, 0.0);
    let yaml = format!(
        "{}plugins:\n  - name: receiver\n    plugin: github_receiver\n    port: \"{port}\"\n    secret: {SECRET}\n    owner: acme\n    repo: app\n    token: {TOKEN}\n    github_api_url: {}\n    hook_id: {hook}\n{}    registration_timeout_seconds: 20\n    job_poll_interval_seconds: 2\n    vm_health_interval_seconds: 2\n",
        metrics_yaml(),
        emu.base_url(),
        handler_yaml("host-one", &emu, &anka)
    );
    let mut d = Daemon::spawn(bin, dir, &format!("{name}-one"), &yaml, "debug");
    bench_support::wait_http_ok(port, &mut d);
    let anka_ms = anka_cost(&anka);
    let labels = [
        "self-hosted".to_owned(),
        format!("anka-template:{TEMPLATE}"),
        "anka-template-tag:v1".to_owned(),
    ];
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let vms_left = || {
        let out = std::process::Command::new(&anka)
            .args(["-j", "list"])
            .output()
            .expect("the fake anka runs");
        String::from_utf8_lossy(&out.stdout).contains("anklet-vm-")
    };
    let times = run_jobs(
        name,
        jobs,
        anka_ms,
        || {
            let mut spec = JobSpec::new("acme", "app", &labels);
            spec.duration_ms = 0;
            emu.create_job(spec).expect("job created").id
        },
        |id| emu.job(id),
        || emu.runners().is_empty() && !vms_left(),
    );
    let log = d.log_text();
    overhead(name, &log, &log, &emu.deliveries(), &times);
    pickup(name, &log, &log, &created(&times));
}

/// One anka call's own cost: the wrapper shell plus an exec of the daemon binary as `anka`.
fn anka_cost(anka: &Path) -> f64 {
    let t = Instant::now();
    for _ in 0..20 {
        let ok = std::process::Command::new(anka)
            .args(["-j", "version"])
            .output()
            .expect("the fake anka runs")
            .status
            .success();
        assert!(ok, "anka -j version failed");
    }
    t.elapsed().as_secs_f64() * 1000.0 / 20.0
}

/// Queues `jobs` jobs one at a time, each once the previous one completed and its runner and
/// VM are gone; prints webhook sent → runner started; the jobs' creation and start instants
/// (ms since the epoch).
fn run_jobs(
    name: &str,
    jobs: usize,
    anka_ms: f64,
    create: impl Fn() -> u64,
    job: impl Fn(u64) -> Option<github_emulator::Job>,
    quiet: impl Fn() -> bool,
) -> BTreeMap<u64, (u64, u64)> {
    println!("load before: {}", bench_support::load());
    let mut overhead = bench_support::histogram();
    let mut created = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    for _ in 0..jobs {
        if Instant::now() > deadline {
            println!("(stopped at the 600 s bound)");
            break;
        }
        let id = create();
        let j = loop {
            let j = job(id).expect("the emulator knows the job");
            if j.started_at_ms.is_some() {
                break j;
            }
            assert!(Instant::now() < deadline, "job {id} never started");
            std::thread::sleep(Duration::from_millis(1));
        };
        let started = j.started_at_ms.expect("started");
        overhead.record_clamped(started.saturating_sub(j.created_at_ms).max(1));
        created.insert(id, (j.created_at_ms, started));
        // The next job starts on a quiet host: this one completed, its runner and VM gone.
        let until = Instant::now() + Duration::from_secs(60);
        while !(job(id).is_some_and(|j| j.completed_at_ms.is_some()) && quiet()) {
            assert!(Instant::now() < until, "job {id} did not end cleanly");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let (p50, p99, max) = bench_support::quantiles(&overhead);
    println!(
        "{name}: webhook sent → runner started (emulator started_at − created_at), {} jobs: p50 {p50} ms, p99 {p99} ms, max {max} ms (target p99 ≤ 10 ms: {}); fake anka delays 0 ms; one anka call costs {anka_ms:.1} ms here (shell wrapper + exec)",
        overhead.len(),
        if p99 <= 10 { "met" } else { "NOT met" }
    );
    created
}

/// Each job's creation instant.
fn created(times: &BTreeMap<u64, (u64, u64)>) -> BTreeMap<u64, u64> {
    times.iter().map(|(id, (c, _))| (*id, *c)).collect()
}

/// One external span of a job, in µs since the epoch.
#[derive(Clone, Copy)]
struct Span {
    from: u64,
    to: u64,
    kind: usize,
}

/// What the orchestration overhead subtracts, by kind (indexes of [`Span::kind`]).
const EXTERNAL: [&str; 4] = ["webhook queue", "anka", "github", "runner"];

/// Orchestration overhead per job: webhook → runner started minus the external spans inside
/// it (see the module docs, 4). Prints p50/p99/max of the overhead and the median of each
/// kind of external time per job.
fn overhead(
    name: &str,
    receiver_log: &str,
    handler_log: &str,
    deliveries: &[github_emulator::Delivery],
    times: &BTreeMap<u64, (u64, u64)>,
) {
    // The handler's `external call` lines: call, step, start_us, took_us.
    let field = |line: &str, key: &str| -> Option<String> {
        let rest = line.split(&format!("\"{key}\":")).nth(1)?;
        let rest = rest.trim_start_matches('"');
        Some(rest.split(['"', ',', '}']).next()?.to_owned())
    };
    let calls: Vec<(Span, String)> = handler_log
        .lines()
        .filter(|l| l.contains("\"external call\""))
        .filter_map(|l| {
            let start: u64 = field(l, "start_us")?.parse().ok()?;
            let took: u64 = field(l, "took_us")?.parse().ok()?;
            let kind = if field(l, "call")? == "anka" { 1 } else { 2 };
            let span = Span {
                from: start,
                to: start + took,
                kind,
            };
            Some((span, field(l, "step")?))
        })
        .collect();
    // GitHub's delivery of the `queued` webhook: job created → the POST began.
    let sent: BTreeMap<u64, u64> = deliveries
        .iter()
        .filter(|d| d.action.as_deref() == Some("queued") && !d.redelivery)
        .filter_map(|d| Some((d.payload["workflow_job"]["id"].as_u64()?, d.delivered_at_ms)))
        .collect();
    let queued_us = job_lines_us(receiver_log, |m| m == "job queued", true);
    let claimed_us = job_lines_us(
        handler_log,
        |m| m.starts_with("claimed job#") && m.ends_with("attempt=1"),
        false,
    );
    // Where our time goes: the receiver (webhook POST began → stored), the pickup (stored →
    // claimed), and between the steps (claimed → the runner's start, minus external calls).
    let mut receive = bench_support::histogram();
    let mut pickup = bench_support::histogram();
    let mut between = bench_support::histogram();
    let mut ours = bench_support::histogram();
    let mut by_kind: Vec<Histogram<u64>> = EXTERNAL
        .iter()
        .map(|_| bench_support::histogram())
        .collect();
    for (id, (created, started)) in times {
        let (w0, w1) = (created * 1000, started * 1000);
        let mut spans: Vec<Span> = calls
            .iter()
            .map(|(s, _)| *s)
            .filter(|s| s.to > w0 && s.from < w1)
            .collect();
        if let Some(at) = sent.get(id) {
            spans.push(Span {
                from: w0,
                to: at * 1000,
                kind: 0,
            });
            if let Some(q) = queued_us.get(id) {
                receive.record_clamped(q.saturating_sub(at * 1000).max(1));
            }
        }
        if let (Some(q), Some(c)) = (queued_us.get(id), claimed_us.get(id)) {
            pickup.record_clamped(c.saturating_sub(*q).max(1));
        }
        // From the start of the call that starts the runner, the time is the runner's own
        // (its start, its session with GitHub, the job's assignment).
        if let Some((s, _)) = calls
            .iter()
            .filter(|(s, step)| step == "StartRunner" && s.from >= w0 && s.from < w1)
            .min_by_key(|(s, _)| s.from)
        {
            spans.push(Span {
                from: s.from,
                to: w1,
                kind: 3,
            });
        }
        if let (Some(c), Some(r)) = (
            claimed_us.get(id),
            spans.iter().find(|s| s.kind == 3).map(|s| s.from),
        ) {
            let busy = union_us(&spans, *c, r);
            between.record_clamped(r.saturating_sub(*c).saturating_sub(busy).max(1));
        }
        let mut per_kind = [0u64; EXTERNAL.len()];
        for s in &spans {
            per_kind[s.kind] += s.to.min(w1).saturating_sub(s.from.max(w0));
        }
        for (k, v) in per_kind.iter().enumerate() {
            by_kind[k].record_clamped((*v).max(1));
        }
        let external = union_us(&spans, w0, w1);
        let window = w1.saturating_sub(w0);
        ours.record_clamped(window.saturating_sub(external).max(1));
    }
    let ms = |v: u64| v as f64 / 1000.0;
    let q = |h: &Histogram<u64>| {
        (
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max()),
        )
    };
    let (p50, p99, max) = q(&ours);
    println!(
        "{name}: orchestration overhead (webhook → runner started minus external time), {} jobs: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms (target p99 ≤ 10 ms: {}); {} external call lines",
        ours.len(),
        if p99 <= 10.0 { "met" } else { "NOT met" },
        calls.len()
    );
    println!(
        "{name}:   median external time per job: {}",
        EXTERNAL
            .iter()
            .zip(&by_kind)
            .map(|(k, h)| format!("{k} {:.1} ms", ms(h.value_at_quantile(0.5))))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let part = |h: &Histogram<u64>| {
        let (p50, p99, _) = q(h);
        format!("p50 {p50:.1} ms, p99 {p99:.1} ms")
    };
    println!(
        "{name}:   our time: webhook POST began → receiver stored ({} jobs) {}; stored → handler claimed ({}) {}; claimed → runner start call, minus external calls ({}) {}",
        receive.len(),
        part(&receive),
        pickup.len(),
        part(&pickup),
        between.len(),
        part(&between)
    );
    let mut steps: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (s, step) in &calls {
        steps.entry(step.as_str()).or_default().push(s.to - s.from);
    }
    println!(
        "{name}:   median external call: {}",
        steps
            .iter_mut()
            .map(|(k, v)| {
                v.sort_unstable();
                format!("{k} {:.1} ms (×{})", ms(v[v.len() / 2]), v.len())
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// The µs timestamp of each job's first log line whose message `matches`; the job is the
/// line's `"job":N` field (`by_field`) or the `job#N` in its message.
fn job_lines_us(log: &str, matches: impl Fn(&str) -> bool, by_field: bool) -> BTreeMap<u64, u64> {
    let number =
        |s: &str| -> Option<u64> { s.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok() };
    let mut out = BTreeMap::new();
    for line in log.lines() {
        let Some(msg) = line
            .split("\"message\":\"")
            .nth(1)
            .and_then(|m| m.split('"').next())
        else {
            continue;
        };
        if !matches(msg) {
            continue;
        }
        let job = if by_field {
            line.split("\"job\":").nth(1).and_then(number)
        } else {
            msg.split("job#").nth(1).and_then(number)
        };
        if let (Some(job), Some(ts)) = (job, log_timestamp_us(line)) {
            out.entry(job).or_insert(ts);
        }
    }
    out
}

/// A JSON log line's timestamp in µs since the epoch (`2026-11-23T15:08:55.123456Z`).
fn log_timestamp_us(line: &str) -> Option<u64> {
    let ms = bench_support::log_timestamp_ms(line)?;
    let i = line.find("\"timestamp\":\"")? + 13;
    let us = line
        .get(i + 23..i + 26)
        .and_then(|d| d.parse::<u64>().ok())
        .unwrap_or(0);
    Some(ms * 1000 + us)
}

/// Length of the union of `spans` clipped to `[w0, w1]`, in µs.
fn union_us(spans: &[Span], w0: u64, w1: u64) -> u64 {
    let mut clipped: Vec<(u64, u64)> = spans
        .iter()
        .map(|s| (s.from.max(w0), s.to.min(w1)))
        .filter(|(a, b)| a < b)
        .collect();
    clipped.sort_unstable();
    let (mut total, mut end) = (0, 0);
    for (a, b) in clipped {
        if b <= end {
            continue;
        }
        total += b - a.max(end);
        end = b;
    }
    total
}

/// Reads the receiver's `job queued` lines (`"job":N`) and the handler's `claimed job#N` and
/// `job#N phase=P` lines (JSON logs, ms timestamps).
fn pickup(name: &str, receiver_log: &str, log: &str, created: &BTreeMap<u64, u64>) {
    let mut stored_at = BTreeMap::new();
    let mut delivery = bench_support::histogram();
    for line in receiver_log
        .lines()
        .filter(|l| l.contains("\"job queued\""))
    {
        let job = line.split("\"job\":").nth(1).and_then(|r| {
            r.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        });
        if let (Some(job), Some(ts)) = (job, bench_support::log_timestamp_ms(line))
            && let Some(at) = created.get(&job)
        {
            stored_at.insert(job, ts);
            delivery.record_clamped(ts.saturating_sub(*at).max(1));
        }
    }
    let mut handler_pickup = bench_support::histogram();
    let mut claim = bench_support::histogram();
    let mut phases: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for line in log.lines() {
        let Some(ts) = bench_support::log_timestamp_ms(line) else {
            continue;
        };
        let Some(msg) = line
            .split("\"message\":\"")
            .nth(1)
            .and_then(|m| m.split('"').next())
        else {
            continue;
        };
        let job_of = |s: &str| -> Option<u64> {
            let rest = s.split("job#").nth(1)?;
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        };
        let Some(job) = job_of(msg) else { continue };
        let Some(at) = created.get(&job) else {
            continue;
        };
        let since = ts.saturating_sub(*at).max(1);
        if msg.starts_with("claimed job#") && msg.ends_with("attempt=1") {
            claim.record_clamped(since);
            if let Some(stored) = stored_at.get(&job) {
                handler_pickup.record_clamped(ts.saturating_sub(*stored).max(1));
            }
        } else if let Some(p) = msg.split("phase=").nth(1) {
            phases
                .entry(p.to_owned())
                .or_insert_with(bench_support::histogram)
                .record_clamped(since);
        }
    }
    let (p50, p99, max) = bench_support::quantiles(&claim);
    println!(
        "{name}: pickup (webhook sent → handler claimed, log timestamps), {} jobs: p50 {p50} ms, p99 {p99} ms, max {max} ms",
        claim.len()
    );
    let (d50, d99, dmax) = bench_support::quantiles(&delivery);
    let (h50, h99, hmax) = bench_support::quantiles(&handler_pickup);
    println!(
        "{name}:   of which webhook sent → receiver stored it ({} jobs): p50 {d50} ms, p99 {d99} ms, max {dmax} ms; stored → handler claimed ({} jobs): p50 {h50} ms, p99 {h99} ms, max {hmax} ms",
        delivery.len(),
        handler_pickup.len()
    );
    let mut order: Vec<_> = phases.iter().collect();
    order.sort_by_key(|(_, h)| h.value_at_quantile(0.5));
    println!(
        "{name}: median ms after the webhook at which each phase began: {}",
        order
            .iter()
            .map(|(p, h)| format!("{p} {}", h.value_at_quantile(0.5)))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
