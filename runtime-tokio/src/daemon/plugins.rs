//! Starting the configured plugins as tasks: one [`HandlerTask`] per `github` plugin (with its
//! GitHub executor and anka driver), and per `github_receiver` plugin an axum
//! [`ReceiverServer`] plus, when it has GitHub access, a [`RecoveryTask`]. A receiver's notices
//! wake the handlers of this process at once (`QueueNotEmpty`, job news); handlers on other
//! hosts see the same through the store.

use super::handler::{Executors, HandlerInputs, HandlerTask};
use super::metrics::{MeteredStore, Registry};
use super::recovery::RecoveryTask;
use crate::github::GithubExecutor;
use crate::receiver::ReceiverServer;
use crate::store::shared::SharedStore;
use crate::vm::anka::AnkaRunner;
use anklet_core::config::{Config, Plugin};
use anklet_lite::clock::Clock;
use anklet_lite::common::expand_home;
use anklet_lite::common::plugins::{HandlerParts, ReceiverParts, RecoveryParts};
use anyhow::Context;
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
    for plugin in config.handlers() {
        let parts = HandlerParts::of(plugin, &plugins_path, registry, clock)?;
        let executor = GithubExecutor::start(parts.client, Arc::clone(clock))
            .with_context(|| format!("cannot start handler {}", parts.name))?;
        let exec = Executors {
            store: MeteredStore::new(store.clone(), Arc::clone(registry)),
            github: executor.handle(),
            anka: Arc::new(AnkaRunner::from(parts.anka)),
            anka_settings: parts.anka_settings,
            clock: Arc::clone(clock),
            notices: parts.notices,
        };
        let name = parts.name;
        let task = HandlerTask::start(parts.machine, exec);
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
    let wake = Arc::clone(wake);
    let parts = ReceiverParts::of(plugin, registry, clock, move |input| {
        for w in wake.iter() {
            w.send(input.clone());
        }
    })?;
    let server = ReceiverServer::start(
        &parts.addr(),
        parts.settings.clone(),
        store.clone(),
        Arc::clone(clock),
        parts.notices.clone(),
    )
    .await
    .with_context(|| format!("receiver {}", parts.name))?;
    parts.log_listening();
    let name = parts.name;
    let Some(recovery) = RecoveryParts::of(plugin, clock) else {
        let receiver = ReceiverPlugin {
            name,
            server,
            recovery: None,
        };
        return Ok((receiver, None));
    };
    let executor = GithubExecutor::start(recovery.client, Arc::clone(clock))
        .with_context(|| format!("receiver {name}"))?;
    let task = RecoveryTask::start(
        recovery.machine,
        executor.handle(),
        store.clone(),
        Arc::clone(clock),
        recovery.notices,
    );
    let receiver = ReceiverPlugin {
        name,
        server,
        recovery: Some(task),
    };
    Ok((receiver, Some(executor)))
}
