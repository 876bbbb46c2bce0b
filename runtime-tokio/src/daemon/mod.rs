//! `anklet`'s daemon mode: the configured plugins as tokio tasks around core's machines, the
//! async twin of `anklet_lite::daemon` (same config, same decisions, same log lines).
//!
//! ```text
//! config.yml ─▶ store (embedded file through spawn_blocking, or a Redis pool)
//!             ├─ github_receiver plugins: axum server (Receiver) + recovery task (Recovery)
//!             └─ github plugins: one task per HostHandler, effects on the store, anka, GitHub
//! metrics: registry fed by every notice, axum server, heartbeat task (or aggregator mode only)
//! signals: 1st SIGINT/SIGTERM = graceful stop, 2nd = exit 1 now; SIGQUIT or the drain file =
//! finish running jobs, take no more, exit.
//! ```
//! Receivers tell the handlers of the same process about new jobs and job news at once;
//! handlers on other hosts see them through the store (on Redis, idle ones are woken through
//! its wake list by [`wake`]). Every `REAP_INTERVAL` the control loop
//! asks the store to requeue jobs whose host stopped renewing their lease.

pub mod handler;
pub mod metrics;
pub mod plugins;
pub mod recovery;
pub mod signals;
pub mod store;
pub mod wake;

use crate::store::shared::SharedStore;
use anklet_core::config::Config;
use anklet_core::handler::Input;
use anklet_core::queue::REAP_INTERVAL;
use anklet_core::queue::txn::{Op, Reply};
use anklet_lite::clock::Clock;
use anklet_lite::common::{Control, drain_file, logging};
use plugins::{Plugins, ReceiverPlugin};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

/// How often the control loop looks at the drain file and at handlers that have ended.
const CONTROL_TICK: Duration = Duration::from_millis(500);

/// How long the runtime waits for leftover blocking work (a store write, a disk probe) when
/// the daemon has ended; an abort must not hang on it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The daemon as the `anklet` binary runs it: logs, the crypto provider, a tokio runtime,
/// signals, the pid file, then [`serve`] until the plugins are done.
pub fn main(config: &Config, env: &BTreeMap<String, String>) -> ExitCode {
    if let Err(e) = logging::init_daemon(config, env) {
        eprintln!("error: {e:#}");
        return ExitCode::from(1);
    }
    // One process-wide rustls provider (aws-lc, as jsonwebtoken and reqwest use); an earlier
    // install (tests) is fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async {
        let controls = match signals::controls() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: cannot listen for signals: {e}");
                return ExitCode::from(1);
            }
        };
        let pid_file = anklet_lite::cli::pid_file(env);
        if let Some(path) = &pid_file {
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(path, std::process::id().to_string()));
            if let Err(e) = written {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the pid file; `-s stop` will not find this daemon");
            }
        }
        let code = serve(config, env, controls).await;
        if let Some(path) = &pid_file {
            let _ = std::fs::remove_file(path);
        }
        code
    });
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    code
}

/// Runs the daemon on a runtime of its own until the plugins are done; `controls` delivers
/// stop/drain requests (a dropped sender is a stop). This is `anklet`'s
/// [`DaemonRunner`](anklet_lite::demo::DaemonRunner) for `anklet demo`.
pub fn run(
    config: &Config,
    env: &BTreeMap<String, String>,
    controls: std::sync::mpsc::Receiver<Control>,
) -> ExitCode {
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let (tx, rx) = unbounded_channel();
    // A plain thread, not spawn_blocking: it may sit in `recv` after the runtime is gone.
    let bridge = std::thread::Builder::new()
        .name("controls".into())
        .spawn(move || {
            while let Ok(control) = controls.recv() {
                if tx.send(control).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = bridge {
        eprintln!("error: cannot start the control thread: {e}");
        return ExitCode::from(1);
    }
    let code = runtime.block_on(serve(config, env, rx));
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    code
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("anklet")
        .build()
}

/// Runs the daemon on the current runtime until the plugins are done; `controls` delivers
/// stop/drain requests (a closed channel is a stop).
pub async fn serve(
    config: &Config,
    env: &BTreeMap<String, String>,
    controls: UnboundedReceiver<Control>,
) -> ExitCode {
    match serve_inner(config, env, controls).await {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "daemon failed");
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn serve_inner(
    config: &Config,
    env: &BTreeMap<String, String>,
    mut controls: UnboundedReceiver<Control>,
) -> anyhow::Result<ExitCode> {
    if config.metrics.is_aggregator() {
        return metrics::run_aggregator(config, env, &mut controls).await;
    }
    let clock = Arc::new(Clock::new());
    let store = store::open_shared_store(config, env)?;
    // Metrics: one registry fed by every plugin's notices; served and heartbeated.
    let registry = metrics::registry(config, clock.now());
    let plugins = plugins::start(config, env, &store, &clock, &registry).await?;
    // On Redis: idle handlers learn of jobs other processes stored at once (see `wake`).
    let waker = wake::start(config, env, &plugins.handlers);
    let metrics = metrics::start(config, &registry, &store, &clock).await?;
    let drain_file = drain_file(env);
    let mut stopping = false;
    let mut draining = false;
    let mut controls_open = true;
    let mut next_reap = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next_reap {
            reap(&store, &clock).await;
            next_reap = tokio::time::Instant::now() + REAP_INTERVAL;
        }
        if plugins.handlers.iter().all(|(_, h)| h.is_finished()) && (stopping || draining)
            || (plugins.handlers.is_empty() && stopping)
        {
            break;
        }
        if !draining && !stopping && drain_file.exists() {
            tracing::info!(file = %drain_file.display(), "drain file found: finishing running jobs, taking no more");
            draining = true;
            send_all(&plugins, &Input::Drain);
        }
        let control = if controls_open {
            tokio::select! {
                c = controls.recv() => Some(c),
                () = tokio::time::sleep(CONTROL_TICK) => None,
            }
        } else {
            tokio::time::sleep(CONTROL_TICK).await;
            None
        };
        match control {
            Some(Some(Control::Abort)) => {
                tracing::warn!(
                    "second stop signal: exiting now; VMs of running jobs are left for the next start's sweep"
                );
                return Ok(ExitCode::from(1));
            }
            Some(Some(Control::Stop)) if !stopping => {
                tracing::info!(
                    "stopping: jobs not yet running go back to the queue, their VMs are deleted"
                );
                stopping = true;
                send_all(&plugins, &Input::Stop);
            }
            Some(Some(Control::Drain)) if !draining && !stopping => {
                tracing::info!("draining: finishing running jobs, taking no more");
                draining = true;
                send_all(&plugins, &Input::Drain);
            }
            Some(None) => {
                controls_open = false;
                if !stopping {
                    stopping = true;
                    send_all(&plugins, &Input::Stop);
                }
            }
            Some(Some(_)) | None => {}
        }
    }
    drop(waker);
    shut_down(plugins).await;
    metrics.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// Requeues jobs whose lease lapsed (their host died holding them).
async fn reap(store: &SharedStore, clock: &Clock) {
    match store.run(clock.now(), Op::Reap).await {
        Ok(Reply::Reaped(reaped)) => {
            for r in reaped {
                tracing::warn!(job = r.job.0, host = %r.host, outcome = ?r.outcome, "lease lapsed: the job's host stopped renewing it");
            }
        }
        Ok(other) => tracing::error!(reply = ?other, "store answered a reap with something else"),
        Err(e) => tracing::warn!(error = e, "reaping lapsed leases failed; retried later"),
    }
}

fn send_all(plugins: &Plugins, input: &Input) {
    for (_, h) in &plugins.handlers {
        h.send(input.clone());
    }
}

/// Waits for the handlers, then stops the receivers (exchanges in flight finish) and the
/// GitHub executors.
async fn shut_down(plugins: Plugins) {
    let Plugins {
        handlers,
        receivers,
        executors,
    } = plugins;
    for (name, h) in handlers {
        h.join().await;
        tracing::info!(plugin = name, "handler stopped");
    }
    for ReceiverPlugin {
        name,
        server,
        recovery,
    } in receivers
    {
        if let Some(r) = recovery {
            r.stop().await;
        }
        server.stop().await;
        tracing::info!(plugin = name, "receiver stopped");
    }
    for executor in executors {
        executor.stop().await;
    }
}
