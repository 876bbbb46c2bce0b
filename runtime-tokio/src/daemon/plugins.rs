//! Starting the configured plugins as tasks: one [`HandlerTask`] per `github` plugin (with its
//! GitHub executor and anka driver), and per `github_receiver` plugin an axum
//! [`ReceiverServer`] plus, when it has GitHub access, a [`RecoveryTask`]. A receiver's notices
//! wake the handlers of this process at once (`QueueNotEmpty`, job news); handlers on other
//! hosts see the same through the store.

use super::handler::{Executors, HandlerInputs, HandlerTask};
use super::metrics::{self, MeteredStore, Registry};
use super::recovery::RecoveryTask;
use crate::github::GithubExecutor;
use crate::receiver::ReceiverServer;
use crate::store::shared::SharedStore;
use crate::vm::anka::AnkaRunner;
use anklet_core::config::{Config, Plugin};
use anklet_core::handler::{HandlerSettings, HostHandler, Input, Notice};
use anklet_core::ids::HostId;
use anklet_core::receiver::redeliver::{Recovery, RecoverySettings};
use anklet_core::receiver::{ReceiverNotice, ReceiverSettings};
use anklet_core::vm::AnkaSettings;
use anklet_lite::clock::Clock;
use anklet_lite::common::notices::{
    PluginLog, log_handler_notice, log_receiver_notice, log_recovery_notice,
};
use anklet_lite::common::{client_config, expand_home};
use anyhow::{Context, anyhow};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A running receiver plugin.
pub struct ReceiverPlugin {
    /// The plugin's name.
    pub name: String,
    /// Its HTTP server.
    pub server: ReceiverServer,
    /// Its recovery loop, when it has GitHub access.
    pub recovery: Option<RecoveryTask>,
}

/// The daemon's running parts.
pub struct Plugins {
    /// Handler plugins by name.
    pub handlers: Vec<(String, HandlerTask)>,
    /// Receiver plugins.
    pub receivers: Vec<ReceiverPlugin>,
    /// The GitHub executors the handlers and recovery loops call through.
    pub executors: Vec<GithubExecutor>,
}

/// Starts every plugin of `config` on the current tokio runtime; their notices and claims
/// feed `registry`.
pub async fn start(
    config: &Config,
    env: &BTreeMap<String, String>,
    store: &SharedStore,
    clock: &Arc<Clock>,
    registry: &Registry,
) -> anyhow::Result<Plugins> {
    let mut plugins = Plugins {
        handlers: Vec::new(),
        receivers: Vec::new(),
        executors: Vec::new(),
    };
    let plugins_path = expand_home(config.plugins_path(), env);
    for plugin in config.plugins.iter().filter(|p| p.is_handler()) {
        let executor = GithubExecutor::start(client_config(plugin)?, Arc::clone(clock))
            .with_context(|| format!("cannot start handler {}", plugin.name))?;
        let name = plugin.name.clone();
        let notice_name = name.clone();
        let notice_log = PluginLog::of(plugin);
        let (notice_registry, notice_clock) = (Arc::clone(registry), Arc::clone(clock));
        let exec = Executors {
            store: MeteredStore::new(store.clone(), Arc::clone(registry)),
            github: executor.handle(),
            anka: Arc::new(AnkaRunner::new(plugin.anka_path())),
            anka_settings: Arc::new(AnkaSettings::from_plugin(
                plugin,
                &plugins_path.to_string_lossy(),
            )),
            clock: Arc::clone(clock),
            notices: Arc::new(move |n: &Notice| {
                log_handler_notice(&notice_log, n);
                metrics::lock(&notice_registry).record_handler_notice(
                    &notice_name,
                    notice_clock.now(),
                    n,
                );
            }),
        };
        let machine = HostHandler::new(
            HostId(name.clone()),
            HandlerSettings::from_plugin(plugin),
            clock.now(),
        );
        let task = HandlerTask::start(machine, exec);
        tracing::info!(plugin = name, "handler started");
        plugins.executors.push(executor);
        plugins.handlers.push((name, task));
    }
    let wake: Arc<[HandlerInputs]> = plugins.handlers.iter().map(|(_, h)| h.inputs()).collect();
    for plugin in config.plugins.iter().filter(|p| p.is_receiver()) {
        let (receiver, executor) = start_receiver(plugin, store, clock, &wake, registry).await?;
        plugins.receivers.push(receiver);
        plugins.executors.extend(executor);
    }
    Ok(plugins)
}

async fn start_receiver(
    plugin: &Plugin,
    store: &SharedStore,
    clock: &Arc<Clock>,
    wake: &Arc<[HandlerInputs]>,
    registry: &Registry,
) -> anyhow::Result<(ReceiverPlugin, Option<GithubExecutor>)> {
    let name = plugin.name.clone();
    let secret = plugin
        .secret
        .clone()
        .ok_or_else(|| anyhow!("receiver {name}: `secret` is not set"))?;
    let port = plugin
        .port_number()
        .ok_or_else(|| anyhow!("receiver {name}: `port` is not set"))?;
    let (log_name, wake) = (name.clone(), Arc::clone(wake));
    let (notice_registry, notice_clock) = (Arc::clone(registry), Arc::clone(clock));
    let notices = Arc::new(move |n: &ReceiverNotice| {
        log_receiver_notice(&log_name, n);
        metrics::lock(&notice_registry).record_receiver_notice(&log_name, notice_clock.now(), n);
        let input = match n {
            ReceiverNotice::Enqueued { .. } => Input::QueueNotEmpty,
            ReceiverNotice::JobNews { job, status } => Input::JobStatus {
                job: *job,
                status: status.clone(),
            },
            _ => return,
        };
        for w in wake.iter() {
            w.send(input.clone());
        }
    });
    let server = ReceiverServer::start(
        &format!("0.0.0.0:{port}"),
        ReceiverSettings::new(secret),
        store.clone(),
        Arc::clone(clock),
        notices,
    )
    .await
    .with_context(|| format!("receiver {name}"))?;
    tracing::info!(
        plugin = name,
        port,
        "receiver listening on /jobs/v1/receiver"
    );
    let client = match client_config(plugin) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(
                plugin = name,
                error = format!("{e:#}"),
                "no GitHub access: missed webhooks are not recovered"
            );
            let receiver = ReceiverPlugin {
                name,
                server,
                recovery: None,
            };
            return Ok((receiver, None));
        }
    };
    let executor = GithubExecutor::start(client, Arc::clone(clock))
        .with_context(|| format!("receiver {name}"))?;
    let settings = RecoverySettings::from_plugin(plugin);
    let log_name = name.clone();
    let recovery = RecoveryTask::start(
        Recovery::new(settings, clock.now()),
        executor.handle(),
        store.clone(),
        Arc::clone(clock),
        Arc::new(move |n| log_recovery_notice(&log_name, n)),
    );
    let receiver = ReceiverPlugin {
        name,
        server,
        recovery: Some(recovery),
    };
    Ok((receiver, Some(executor)))
}
