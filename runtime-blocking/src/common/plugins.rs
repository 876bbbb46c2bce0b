//! What a plugin is made of before it runs, the same in both daemons: a handler's machine,
//! GitHub client config, anka settings and notice sink ([`HandlerParts`]); a receiver's
//! settings, address and notice sink ([`ReceiverParts`]) and its recovery loop's
//! ([`RecoveryParts`]). Each daemon only spawns them its own way (threads here, tokio tasks
//! in `anklet`), so a plugin is read from the config, logged and counted in one place.

use super::client_config;
use super::notices::{PluginLog, log_handler_notice, log_receiver_notice, log_recovery_notice};
use crate::clock::Clock;
use crate::vm::call::AnkaConfig;
use anklet_core::config::Plugin;
use anklet_core::github::client::ClientConfig;
use anklet_core::handler::{HandlerSettings, HostHandler, Input, Notice};
use anklet_core::ids::HostId;
use anklet_core::metrics::Metrics;
use anklet_core::receiver::redeliver::{Recovery, RecoveryNotice, RecoverySettings};
use anklet_core::receiver::{ReceiverNotice, ReceiverSettings};
use anklet_core::vm::AnkaSettings;
use anyhow::anyhow;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// The metrics registry every plugin of a process writes to (both daemons use this type).
pub type Registry = Arc<Mutex<Metrics>>;

/// Called with every notice of a handler, for logs and metrics.
pub type HandlerNoticeSink = Arc<dyn Fn(&Notice) + Send + Sync>;

/// Called with every notice of a receiver, for logs, metrics and waking this process's
/// handlers.
pub type ReceiverNoticeSink = Arc<dyn Fn(&ReceiverNotice) + Send + Sync>;

/// Called with every notice of a receiver's recovery loop, for logs.
pub type RecoveryNoticeSink = Arc<dyn Fn(&RecoveryNotice) + Send + Sync>;

/// Locks the registry; a panic elsewhere never leaves it half-updated in a way that matters
/// for counting, so a poisoned lock is taken over.
fn lock(registry: &Registry) -> MutexGuard<'_, Metrics> {
    registry.lock().unwrap_or_else(|p| p.into_inner())
}

/// A handler plugin (`plugin: github`) ready to be started.
pub struct HandlerParts {
    /// The plugin's name (its host id).
    pub name: String,
    /// Its GitHub client config, for the daemon's GitHub executor.
    pub client: ClientConfig,
    /// The handler machine.
    pub machine: HostHandler,
    /// Where `anka` is, for the daemon's anka driver.
    pub anka: AnkaConfig,
    /// The plugin's anka settings.
    pub anka_settings: Arc<AnkaSettings>,
    /// Logs each notice with the plugin's fields and counts it in the registry.
    pub notices: HandlerNoticeSink,
}

impl HandlerParts {
    /// The parts of handler `plugin`; `plugins_path` holds its handler scripts. An error (no
    /// usable GitHub credentials or scope) names the plugin.
    pub fn of(
        plugin: &Plugin,
        plugins_path: &Path,
        registry: &Registry,
        clock: &Arc<Clock>,
    ) -> anyhow::Result<Self> {
        let client = client_config(plugin)?;
        let name = plugin.name.clone();
        let log = PluginLog::of(plugin);
        let (notice_name, registry, notice_clock) =
            (name.clone(), Arc::clone(registry), Arc::clone(clock));
        Ok(Self {
            client,
            machine: HostHandler::new(
                HostId(name.clone()),
                HandlerSettings::from_plugin(plugin),
                clock.now(),
            ),
            anka: AnkaConfig {
                plugin: Some(name.clone()),
                ..AnkaConfig::new(plugin.anka_path())
            },
            anka_settings: Arc::new(AnkaSettings::from_plugin(
                plugin,
                &plugins_path.to_string_lossy(),
            )),
            notices: Arc::new(move |n: &Notice| {
                log_handler_notice(&log, n);
                lock(&registry).record_handler_notice(&notice_name, notice_clock.now(), n);
            }),
            name,
        })
    }
}

/// A receiver plugin (`plugin: github_receiver`) ready to be served.
pub struct ReceiverParts {
    /// The plugin's name.
    pub name: String,
    /// The port it listens on (all interfaces).
    pub port: u16,
    /// The receiver machine's settings.
    pub settings: ReceiverSettings,
    /// Logs each notice, counts it in the registry and tells this process's handlers about
    /// new jobs and job news at once.
    pub notices: ReceiverNoticeSink,
}

impl ReceiverParts {
    /// The parts of receiver `plugin`; `wake` passes an input to every handler of this
    /// process. An error (no `secret`, no `port`) names the plugin.
    pub fn of(
        plugin: &Plugin,
        registry: &Registry,
        clock: &Arc<Clock>,
        wake: impl Fn(Input) + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        let name = plugin.name.clone();
        let secret = plugin
            .secret
            .clone()
            .ok_or_else(|| anyhow!("receiver {name}: `secret` is not set"))?;
        let port = plugin
            .port_number()
            .ok_or_else(|| anyhow!("receiver {name}: `port` is not set"))?;
        let (log_name, registry, clock) = (name.clone(), Arc::clone(registry), Arc::clone(clock));
        let notices = Arc::new(move |n: &ReceiverNotice| {
            log_receiver_notice(&log_name, n);
            lock(&registry).record_receiver_notice(&log_name, clock.now(), n);
            match n {
                ReceiverNotice::Enqueued { .. } => wake(Input::QueueNotEmpty),
                ReceiverNotice::JobNews { job, status } => wake(Input::JobStatus {
                    job: *job,
                    status: status.clone(),
                }),
                _ => {}
            }
        });
        Ok(Self {
            name,
            port,
            settings: ReceiverSettings::new(secret),
            notices,
        })
    }

    /// The address to listen on.
    pub fn addr(&self) -> String {
        format!("0.0.0.0:{}", self.port)
    }

    /// Logs that the receiver serves.
    pub fn log_listening(&self) {
        tracing::info!(
            plugin = self.name,
            port = self.port,
            "receiver listening on /jobs/v1/receiver"
        );
    }
}

/// A receiver's recovery loop (redelivery of failed webhooks, reconciliation of queued jobs)
/// ready to be started.
pub struct RecoveryParts {
    /// The receiver's GitHub client config, for the daemon's GitHub executor.
    pub client: ClientConfig,
    /// The recovery machine.
    pub machine: Recovery,
    /// Logs each notice with the plugin's name.
    pub notices: RecoveryNoticeSink,
}

impl RecoveryParts {
    /// The recovery loop of receiver `plugin`, or `None` (with a warning: missed webhooks are
    /// then not recovered, the receiver still serves) when it has no GitHub access.
    pub fn of(plugin: &Plugin, clock: &Clock) -> Option<Self> {
        let name = plugin.name.clone();
        let client = match client_config(plugin) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(
                    plugin = name,
                    error = format!("{e:#}"),
                    "no GitHub access: missed webhooks are not recovered"
                );
                return None;
            }
        };
        Some(Self {
            client,
            machine: Recovery::new(RecoverySettings::from_plugin(plugin), clock.now()),
            notices: Arc::new(move |n| log_recovery_notice(&name, n)),
        })
    }
}
