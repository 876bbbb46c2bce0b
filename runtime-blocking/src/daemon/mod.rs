//! `anklet-lite`'s daemon mode: the configured plugins as threads around core's machines.
//!
//! ```text
//! config.yml ─▶ store (embedded file, or Redis)
//!             ├─ github_receiver plugins: HTTP server (Receiver) + recovery thread (Recovery)
//!             └─ github plugins: one thread per HostHandler, effects on the store, anka, GitHub
//! signals: 1st SIGINT/SIGTERM = graceful stop, 2nd = exit 1 now; SIGQUIT or the drain file =
//! finish running jobs, take no more, exit.
//! ```
//! Receivers tell the handlers of the same process about new jobs and job news at once;
//! handlers on other hosts see them through the store (on Redis, idle ones are woken through
//! its wake list by [`wake`]).

pub mod handler;
pub mod metrics;
pub mod recovery;
pub mod signals;
pub mod wake;

use crate::common::plugins::{HandlerParts, ReceiverParts, RecoveryParts};
pub use crate::common::{Control, client_config, drain_file, expand_home, logging, state_dir};
use crate::common::{StoreLocation, store_location};

use crate::clock::Clock;
use crate::github::GithubExecutor;
use crate::receiver::ReceiverServer;
use crate::store::embedded::open_store;
use crate::store::shared::{Exclusive, Pool, SharedStore};
use crate::vm::anka::AnkaRunner;
use anklet_core::config::{Config, Plugin};
use anklet_core::handler::Input;
use anklet_core::queue::txn::{Op, Reply};
use anklet_core::queue::{QueueSettings, REAP_INTERVAL};
use anyhow::{Context, anyhow};
use handler::{Executors, HandlerThread};
use recovery::RecoveryThread;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The daemon as `anklet-lite` runs it: logs, the crypto provider, the pid file, signals,
/// then [`run`] until the plugins are done.
pub fn main(config: &Config, env: &BTreeMap<String, String>) -> ExitCode {
    if let Err(e) = logging::init_daemon(config, env) {
        eprintln!("error: {e:#}");
        return ExitCode::from(1);
    }
    // One process-wide rustls provider (aws-lc, as jsonwebtoken uses); an earlier install
    // (tests) is fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let controls = match signals::controls() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot listen for signals: {e}");
            return ExitCode::from(1);
        }
    };
    let pid_file = crate::cli::pid_file(env);
    if let Some(path) = &pid_file {
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(path, std::process::id().to_string()));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the pid file; `-s stop` will not find this daemon");
        }
    }
    let code = run(config, env, controls);
    if let Some(path) = &pid_file {
        let _ = std::fs::remove_file(path);
    }
    code
}

/// The daemon's running parts.
struct Plugins {
    handlers: Vec<(String, HandlerThread)>,
    receivers: Vec<(String, ReceiverServer, Option<RecoveryThread>)>,
    executors: Vec<GithubExecutor>,
}

/// Runs the daemon until the plugins are done; `controls` delivers stop/drain requests.
pub fn run(
    config: &Config,
    env: &BTreeMap<String, String>,
    controls: std::sync::mpsc::Receiver<Control>,
) -> ExitCode {
    match run_inner(config, env, controls) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "daemon failed");
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run_inner(
    config: &Config,
    env: &BTreeMap<String, String>,
    controls: std::sync::mpsc::Receiver<Control>,
) -> anyhow::Result<ExitCode> {
    if config.metrics.is_aggregator() {
        return metrics::run_aggregator(config, env, &controls);
    }
    let clock = Arc::new(Clock::new());
    let store = open_shared_store(config, env)?;
    // Metrics: one registry fed by every plugin's notices; served and heartbeated.
    let registry = metrics::registry(config, clock.now());
    let plugins = start_plugins(config, env, &store, &clock, &registry)?;
    // On Redis: idle handlers learn of jobs other processes stored at once (see `wake`).
    let waker = wake::start(config, env, &plugins.handlers);
    let metrics = metrics::start(config, &registry, &store, &clock)?;
    let drain_file = drain_file(env);
    let mut stopping = false;
    let mut draining = false;
    let mut next_reap = std::time::Instant::now();
    loop {
        if std::time::Instant::now() >= next_reap {
            reap(store.as_ref(), &clock);
            next_reap = std::time::Instant::now() + REAP_INTERVAL;
        }
        if plugins.handlers.iter().all(|(_, h)| h.is_finished()) && (stopping || draining)
            || (plugins.handlers.is_empty() && stopping)
        {
            break;
        }
        if !draining && !stopping && drain_file.exists() {
            tracing::info!(file = %drain_file.display(), "drain file found: finishing running jobs, taking no more");
            draining = true;
            plugins
                .handlers
                .iter()
                .for_each(|(_, h)| h.send(Input::Drain));
        }
        match controls.recv_timeout(Duration::from_millis(500)) {
            Ok(Control::Abort) => {
                tracing::warn!(
                    "second stop signal: exiting now; VMs of running jobs are left for the next start's sweep"
                );
                return Ok(ExitCode::from(1));
            }
            Ok(Control::Stop) if !stopping => {
                tracing::info!(
                    "stopping: jobs not yet running go back to the queue, their VMs are deleted"
                );
                stopping = true;
                plugins
                    .handlers
                    .iter()
                    .for_each(|(_, h)| h.send(Input::Stop));
            }
            Ok(Control::Drain) if !draining && !stopping => {
                tracing::info!("draining: finishing running jobs, taking no more");
                draining = true;
                plugins
                    .handlers
                    .iter()
                    .for_each(|(_, h)| h.send(Input::Drain));
            }
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if !stopping {
                    stopping = true;
                    plugins
                        .handlers
                        .iter()
                        .for_each(|(_, h)| h.send(Input::Stop));
                }
            }
        }
    }
    let Plugins {
        handlers,
        receivers,
        executors,
    } = plugins;
    for (name, h) in handlers {
        h.join();
        tracing::info!(plugin = name, "handler stopped");
    }
    for (name, server, recovery) in receivers {
        if let Some(r) = recovery {
            r.stop();
        }
        server.stop();
        tracing::info!(plugin = name, "receiver stopped");
    }
    drop(waker);
    drop(executors);
    metrics.stop();
    Ok(ExitCode::SUCCESS)
}

/// Requeues jobs whose lease lapsed (their host died holding them).
fn reap(store: &dyn SharedStore, clock: &Clock) {
    match store.run(clock.now(), Op::Reap) {
        Ok(Reply::Reaped(reaped)) => {
            for r in reaped {
                tracing::warn!(job = r.job.0, host = %r.host, outcome = ?r.outcome, "lease lapsed: the job's host stopped renewing it");
            }
        }
        Ok(other) => tracing::error!(reply = ?other, "store answered a reap with something else"),
        Err(e) => tracing::warn!(error = e, "reaping lapsed leases failed; retried later"),
    }
}

/// The store every plugin of this process shares: Redis when a database is configured,
/// else the embedded file at `store_path`.
fn open_shared_store(
    config: &Config,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<Arc<dyn SharedStore>> {
    let settings = QueueSettings::default();
    match store_location(config, env) {
        #[cfg(feature = "redis")]
        StoreLocation::Redis { db, queue } => {
            use crate::store::redis::{RedisBackend, RedisOptions};
            use anklet_core::queue::redis_layout::{DEFAULT_PREFIX, RedisLayout};
            let layout = RedisLayout::new(DEFAULT_PREFIX, &queue)
                .map_err(|e| anyhow!("queue name {queue:?} cannot be used: {e}"))?;
            let opts = RedisOptions::new(layout, &settings);
            tracing::info!(host = db.url, port = db.port, queue, "job store: Redis");
            Ok(Arc::new(Pool::new(
                Box::new(move || RedisBackend::new(&db, opts.clone()).map_err(|e| e.to_string())),
                settings,
            )))
        }
        #[cfg(not(feature = "redis"))]
        StoreLocation::Redis { .. } => Err(anyhow!(
            "a database is configured but this build has no Redis support"
        )),
        StoreLocation::Embedded(path) => {
            tracing::info!(path = %path.display(), "job store: embedded file (one host)");
            let store = open_store(&path, settings)
                .with_context(|| format!("cannot open the job store {}", path.display()))?;
            Ok(Arc::new(Exclusive::new(store)))
        }
    }
}

fn start_plugins(
    config: &Config,
    env: &BTreeMap<String, String>,
    store: &Arc<dyn SharedStore>,
    clock: &Arc<Clock>,
    registry: &metrics::Registry,
) -> anyhow::Result<Plugins> {
    let mut plugins = Plugins {
        handlers: Vec::new(),
        receivers: Vec::new(),
        executors: Vec::new(),
    };
    let plugins_path = expand_home(config.plugins_path(), env);
    for plugin in config.handlers() {
        let parts = HandlerParts::of(plugin, &plugins_path, registry, clock)?;
        let executor = GithubExecutor::start(parts.client, Arc::clone(clock));
        let exec = Executors {
            store: Arc::new(metrics::MeteredStore::new(
                Arc::clone(store),
                Arc::clone(registry),
            )),
            github: executor.handle(),
            anka: Arc::new(AnkaRunner::from(parts.anka)),
            anka_settings: parts.anka_settings,
            clock: Arc::clone(clock),
            notices: parts.notices,
        };
        let name = parts.name;
        let thread = HandlerThread::start(&name, parts.machine, exec)
            .with_context(|| format!("cannot start handler {name}"))?;
        tracing::info!(plugin = name, "handler started");
        plugins.executors.push(executor);
        plugins.handlers.push((name, thread));
    }
    let wake: Vec<_> = plugins.handlers.iter().map(|(_, h)| h.inputs()).collect();
    let wake = Arc::new(Mutex::new(wake));
    for plugin in config.plugins.iter().filter(|p| p.is_receiver()) {
        let (server, recovery, executor) = start_receiver(plugin, store, clock, &wake, registry)?;
        plugins
            .receivers
            .push((plugin.name.clone(), server, recovery));
        plugins.executors.extend(executor);
    }
    Ok(plugins)
}

fn start_receiver(
    plugin: &Plugin,
    store: &Arc<dyn SharedStore>,
    clock: &Arc<Clock>,
    wake: &Arc<Mutex<Vec<impl Fn(Input) + Send + Sync + 'static>>>,
    registry: &metrics::Registry,
) -> anyhow::Result<(
    ReceiverServer,
    Option<RecoveryThread>,
    Option<GithubExecutor>,
)> {
    let wake = Arc::clone(wake);
    let parts = ReceiverParts::of(plugin, registry, clock, move |input| {
        for w in wake.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            w(input.clone());
        }
    })?;
    let server = ReceiverServer::start(
        &parts.addr(),
        parts.settings.clone(),
        Arc::clone(store),
        Arc::clone(clock),
        8,
        parts.notices.clone(),
    )
    .with_context(|| format!("receiver {}", parts.name))?;
    parts.log_listening();
    let Some(recovery) = RecoveryParts::of(plugin, clock) else {
        return Ok((server, None, None));
    };
    let executor = GithubExecutor::start(recovery.client, Arc::clone(clock));
    let thread = RecoveryThread::start(
        recovery.machine,
        executor.handle(),
        Arc::clone(store),
        Arc::clone(clock),
        recovery.notices,
    );
    Ok((server, Some(thread), Some(executor)))
}

/// Logs a handler notice (shared with `anklet`).
pub use crate::common::notices::{PluginLog, log_handler_notice};
