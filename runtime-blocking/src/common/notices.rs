//! How the daemons log the notices of core's machines (handlers, receivers, recovery), so both
//! binaries write the same lines for the same events.

use anklet_core::handler::Notice;
use anklet_core::receiver::ReceiverNotice;
use anklet_core::receiver::redeliver::RecoveryNotice;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The fields every log line of a handler plugin carries, as Anklet's do.
#[derive(Clone, Debug)]
pub struct PluginLog {
    /// The plugin's `name`.
    pub plugin: String,
    /// `owner` (or `enterprise`), empty when unset.
    pub owner: String,
    /// `repo`, empty when unset.
    pub repo: String,
}

impl PluginLog {
    /// The log fields of a plugin entry.
    pub fn of(plugin: &anklet_core::config::Plugin) -> Self {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        Self {
            plugin: plugin.name.clone(),
            owner: plugin
                .owner
                .clone()
                .or_else(|| plugin.enterprise.clone())
                .unwrap_or_default(),
            repo: text(&plugin.repo),
        }
    }
}

/// Logs a handler notice with the plugin's fields and, when it has one, the job's id.
pub fn log_handler_notice(log: &PluginLog, n: &Notice) {
    let (plugin, owner, repo) = (log.plugin.as_str(), log.owner.as_str(), log.repo.as_str());
    let job = n.job().map(|j| j.0);
    match n {
        Notice::StepFailed { .. } | Notice::RunnerLeftBehind { .. } => {
            tracing::warn!(plugin, owner, repo, job, "{n}")
        }
        Notice::Phase { .. } | Notice::IgnoredResult { .. } => {
            tracing::debug!(plugin, owner, repo, job, "{n}")
        }
        _ => tracing::info!(plugin, owner, repo, job, "{n}"),
    }
}

/// Logs a receiver notice with tracing (the daemon's default sink).
pub fn log_receiver_notice(plugin: &str, n: &ReceiverNotice) {
    match n {
        ReceiverNotice::Accepted {
            delivery,
            job,
            outcome,
        } => tracing::info!(plugin, delivery, job = job.0, outcome, "webhook stored"),
        ReceiverNotice::JobNews { job, status } => {
            tracing::debug!(plugin, job = job.0, status = ?status, "job status news")
        }
        // The `webhook stored` line above already says `outcome=enqueued` with the job and the
        // delivery: one info line per webhook is enough at thousands a second.
        ReceiverNotice::Enqueued { job } => tracing::debug!(plugin, job = job.0, "job queued"),
        ReceiverNotice::Answered { delivery, detail } => {
            tracing::debug!(plugin, delivery, detail, "webhook answered without storing")
        }
        ReceiverNotice::Refused {
            delivery,
            status,
            detail,
        } => tracing::warn!(plugin, delivery, status, detail, "webhook refused"),
        ReceiverNotice::StoreFailed { delivery, detail } => tracing::error!(
            plugin,
            delivery,
            detail,
            "webhook not stored (answered 503; GitHub will show it failed and it will be redelivered)"
        ),
    }
}

/// Logs a recovery notice.
pub fn log_recovery_notice(plugin: &str, n: &RecoveryNotice) {
    match n {
        RecoveryNotice::Redelivering { guid, action } => {
            tracing::info!(plugin, delivery = guid, action = ?action, "asking GitHub to redeliver a failed webhook")
        }
        RecoveryNotice::HookNotFound { hook_id } => tracing::error!(
            plugin,
            hook_id,
            "hook_id {hook_id} was not found in this plugin's scope (or the credentials cannot read its deliveries): missed webhooks are not redelivered; set `hook_id` to the webhook's id (repository or organisation settings → Webhooks); the receiver keeps serving"
        ),
        RecoveryNotice::StepFailed { step, detail } => {
            tracing::warn!(
                plugin,
                step,
                detail,
                "recovery step failed; retried next cycle"
            )
        }
        RecoveryNotice::Reconciled { job, conclusion } => tracing::info!(
            plugin,
            job = job.0,
            conclusion = ?conclusion,
            "queued job already finished in GitHub; removed from the queue"
        ),
        RecoveryNotice::CycleDone {
            redelivered,
            checked,
            removed,
        } => tracing::info!(plugin, redelivered, checked, removed, "recovery cycle done"),
    }
}

/// Logs one external call of a job's lifecycle at debug: an anka plan (its child processes,
/// from the first spawn to the last exit) or a GitHub call (from the hand-over to the GitHub
/// executor to its answer). `start_us` is wall-clock µs since the epoch, so the daemon bench
/// can take these spans out of a job's webhook → runner start time (orchestration overhead).
pub fn log_external(call: &'static str, step: &str, start: SystemTime, took: Duration) {
    let start_us = start
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let took_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    tracing::debug!(call, step, start_us, took_us, "external call");
}

/// The variant name of an effect's command (`Clone`, `CreateRunnerConfig`), nothing else:
/// the fields may hold credentials.
pub fn step_name(cmd: &impl std::fmt::Debug) -> String {
    let text = format!("{cmd:?}");
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_owned()
}
