//! The aggregator's view (Anklet's `metrics.aggregator: true`): the whole fleet read from the
//! store's host list, where every handler's heartbeat payload is its Anklet export document.
//! A host whose heartbeat stopped is listed with `stale: true` rather than dropped, so a dead
//! Mac shows up on a dashboard instead of vanishing from it.

use super::anklet::{Export, PluginExport, host_families_many, plugin_families, rfc3339_unix};
use super::datetime::{rfc3339_seconds, unix_seconds};
use super::exposition::{Exposition, Kind, Sample};
use crate::queue::HostInfo;
use crate::time::Timestamp;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// A host is stale once this many heartbeat intervals passed without one.
pub const STALE_AFTER_INTERVALS: u32 = 3;

/// How long a host may stay silent before the aggregator marks it stale.
pub fn stale_after(heartbeat_interval: Duration) -> Duration {
    heartbeat_interval.saturating_mul(STALE_AFTER_INTERVALS)
}

/// One host of the fleet as its last heartbeat described it.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetHost {
    /// The host id (a handler's name).
    pub host: String,
    /// Its last heartbeat, store time.
    pub last_seen: Timestamp,
    /// Time since then.
    pub age: Duration,
    /// The heartbeat stopped.
    pub stale: bool,
    /// The export document it sent; `None` when the payload was not one (logged by callers).
    pub export: Option<Export>,
}

/// One plugin of one host in Anklet's aggregator JSON (spec §4.3 field names), plus ours:
/// `host`, `stale`, `heartbeat_age_seconds`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FleetEntry {
    /// `repo`.
    pub repo_name: String,
    /// `github` or `github_receiver`.
    pub plugin_name: String,
    /// The plugin's `name`.
    pub custom_name: String,
    /// `owner` (else `enterprise`).
    pub owner_name: String,
    /// When the host last reported, RFC 3339.
    pub last_update: String,
    /// Status.
    pub plugin_status: String,
    /// RFC 3339.
    pub plugin_last_successful_run: String,
    /// RFC 3339.
    pub plugin_last_failed_run: String,
    /// RFC 3339.
    pub plugin_last_canceled_run: String,
    /// RFC 3339.
    pub plugin_status_since: String,
    /// VMs booted.
    pub plugin_total_ran_vms: u64,
    /// Successful runs.
    pub plugin_total_successful_runs_since_start: u64,
    /// Failed runs.
    pub plugin_total_failed_runs_since_start: u64,
    /// Canceled runs.
    pub plugin_total_canceled_runs_since_start: u64,
    /// Page of the last successful job.
    pub plugin_last_successful_run_job_url: String,
    /// Page of the last failed job.
    pub plugin_last_failed_run_job_url: String,
    /// Page of the last canceled job.
    pub plugin_last_canceled_run_job_url: String,
    /// CPUs.
    pub host_cpu_count: u64,
    /// CPUs busy.
    pub host_cpu_used_count: u64,
    /// CPU busy, percent.
    pub host_cpu_usage_percentage: f64,
    /// Memory.
    pub host_memory_total_bytes: u64,
    /// Memory used.
    pub host_memory_used_bytes: u64,
    /// Memory available.
    pub host_memory_available_bytes: u64,
    /// Memory used, percent.
    pub host_memory_usage_percentage: f64,
    /// Disk.
    pub host_disk_total_bytes: u64,
    /// Disk used.
    pub host_disk_used_bytes: u64,
    /// Disk available.
    pub host_disk_available_bytes: u64,
    /// Disk used, percent.
    pub host_disk_usage_percentage: f64,
    /// The host id that sent the heartbeat (ours).
    pub host: String,
    /// The heartbeat stopped (ours).
    pub stale: bool,
    /// Seconds since the last heartbeat (ours).
    pub heartbeat_age_seconds: f64,
}

/// The fleet. See the module docs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fleet {
    /// Hosts in the store's listing order.
    pub hosts: Vec<FleetHost>,
}

impl Fleet {
    /// Reads the store's host list; an unreadable payload leaves that host's `export` empty.
    pub fn from_hosts(hosts: &[HostInfo]) -> Self {
        Self {
            hosts: hosts
                .iter()
                .map(|h| FleetHost {
                    host: h.host.0.clone(),
                    last_seen: h.last_seen,
                    age: h.age,
                    stale: h.stale,
                    export: serde_json::from_str(&h.payload).ok(),
                })
                .collect(),
        }
    }

    /// Every plugin of every host, in listing order.
    pub fn entries(&self) -> Vec<FleetEntry> {
        self.hosts
            .iter()
            .flat_map(|h| {
                let export = h.export.clone().unwrap_or_default();
                let plugins = if export.plugins.is_empty() {
                    vec![PluginExport {
                        name: h.host.clone(),
                        plugin_name: "github".to_owned(),
                        status: "unknown".to_owned(),
                        ..PluginExport::default()
                    }]
                } else {
                    export.plugins.clone()
                };
                plugins
                    .into_iter()
                    .map(move |p| entry(h, &export, p))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// `/metrics/v1?format=json`: an object keyed by plugin name.
    pub fn json_v1(&self) -> Value {
        let map: serde_json::Map<String, Value> = self
            .entries()
            .into_iter()
            .filter_map(|e| Some((e.custom_name.clone(), serde_json::to_value(e).ok()?)))
            .collect();
        Value::Object(map)
    }

    /// `/metrics/v2?format=json`: an array in listing order.
    pub fn json_v2(&self) -> Value {
        serde_json::to_value(self.entries()).unwrap_or(Value::Null)
    }

    /// `/metrics/v1|v2?format=prometheus`: Anklet's aggregator names, valid text, plus
    /// `plugin_stale` and `plugin_heartbeat_age_seconds`.
    pub fn anklet_prometheus(&self) -> String {
        let entries = self.entries();
        let plugins: Vec<PluginExport> = entries.iter().map(plugin_of).collect();
        let mut x = Exposition::new();
        plugin_families(&mut x, &plugins, &[], false);
        let exports: Vec<Export> = entries.iter().map(export_of).collect();
        let rows: Vec<(Vec<(&str, &str)>, &Export)> = entries
            .iter()
            .zip(&exports)
            .map(|(e, x)| {
                (
                    vec![
                        ("name", e.custom_name.as_str()),
                        ("owner", e.owner_name.as_str()),
                    ],
                    x,
                )
            })
            .collect();
        host_families_many(&mut x, &rows);
        let per = |f: &dyn Fn(&FleetEntry) -> f64| -> Vec<Sample> {
            entries
                .iter()
                .map(|e| Sample::new(&[("name", &e.custom_name), ("owner", &e.owner_name)], f(e)))
                .collect()
        };
        x.family(
            "last_update",
            Kind::Gauge,
            "Unix time of the host's last report.",
            &per(&|e| rfc3339_unix(&e.last_update)),
        );
        x.family(
            "plugin_stale",
            Kind::Gauge,
            "1 when the host's heartbeat stopped.",
            &per(&|e| if e.stale { 1.0 } else { 0.0 }),
        );
        x.family(
            "plugin_heartbeat_age_seconds",
            Kind::Gauge,
            "Seconds since the host's last heartbeat.",
            &per(&|e| e.heartbeat_age_seconds),
        );
        x.finish()
    }

    /// `/metrics` on the aggregator: the standard exposition of the fleet.
    pub fn prometheus(&self) -> String {
        let mut x = Exposition::new();
        let stale = self.hosts.iter().filter(|h| h.stale).count() as f64;
        x.family(
            "anklet_fleet_hosts",
            Kind::Gauge,
            "Hosts in the store's list, by whether their heartbeat is live or stale.",
            &[
                Sample::new(&[("state", "live")], self.hosts.len() as f64 - stale),
                Sample::new(&[("state", "stale")], stale),
            ],
        );
        let per = |f: &dyn Fn(&FleetHost) -> f64| -> Vec<Sample> {
            self.hosts
                .iter()
                .map(|h| Sample::new(&[("host", &h.host)], f(h)))
                .collect()
        };
        x.family(
            "anklet_fleet_host_stale",
            Kind::Gauge,
            "1 when the host's heartbeat stopped.",
            &per(&|h| if h.stale { 1.0 } else { 0.0 }),
        );
        x.family(
            "anklet_fleet_host_heartbeat_age_seconds",
            Kind::Gauge,
            "Seconds since the host's last heartbeat.",
            &per(&|h| h.age.as_secs_f64()),
        );
        x.family(
            "anklet_fleet_host_last_heartbeat_seconds",
            Kind::Gauge,
            "Unix time of the host's last heartbeat.",
            &per(&|h| unix_seconds(Some(h.last_seen))),
        );
        let exported = || {
            self.hosts
                .iter()
                .filter_map(|h| h.export.as_ref().map(|e| (h, e)))
        };
        let status: Vec<Sample> = exported()
            .flat_map(|(h, e)| {
                e.plugins.iter().map(move |p| {
                    Sample::new(
                        &[
                            ("host", &h.host),
                            ("plugin", &p.name),
                            ("status", &p.status),
                        ],
                        1.0,
                    )
                })
            })
            .collect();
        x.family(
            "anklet_fleet_plugin_status",
            Kind::Gauge,
            "The plugin's last reported status (the sample is always 1).",
            &status,
        );
        let vms: Vec<Sample> = exported()
            .map(|(h, e)| Sample::new(&[("host", &h.host)], e.total_running_vms as f64))
            .collect();
        x.family(
            "anklet_fleet_running_vms",
            Kind::Gauge,
            "VMs running on the host at its last heartbeat.",
            &vms,
        );
        let runs: Vec<Sample> = exported()
            .flat_map(|(h, e)| {
                [
                    ("success", e.total_successful_runs_since_start),
                    ("failed", e.total_failed_runs_since_start),
                    ("canceled", e.total_canceled_runs_since_start),
                ]
                .into_iter()
                .map(move |(r, v)| Sample::new(&[("host", &h.host), ("result", r)], v as f64))
            })
            .collect();
        x.family(
            "anklet_fleet_runs_total",
            Kind::Counter,
            "Runs since the host's process started, by Anklet's result classes.",
            &runs,
        );
        x.finish()
    }
}

fn entry(h: &FleetHost, e: &Export, p: PluginExport) -> FleetEntry {
    let last_update = match crate::github::rfc3339::parse(&e.last_update) {
        Ok(t) => rfc3339_seconds(Some(t)),
        Err(_) => rfc3339_seconds(Some(h.last_seen)),
    };
    FleetEntry {
        repo_name: p.repo_name,
        plugin_name: p.plugin_name,
        custom_name: p.name,
        owner_name: p.owner_name,
        last_update,
        plugin_status: p.status,
        plugin_last_successful_run: p.last_successful_run,
        plugin_last_failed_run: p.last_failed_run,
        plugin_last_canceled_run: p.last_canceled_run,
        plugin_status_since: p.status_since,
        plugin_total_ran_vms: p.total_ran_vms,
        plugin_total_successful_runs_since_start: p.total_successful_runs_since_start,
        plugin_total_failed_runs_since_start: p.total_failed_runs_since_start,
        plugin_total_canceled_runs_since_start: p.total_canceled_runs_since_start,
        plugin_last_successful_run_job_url: p.last_successful_run_job_url,
        plugin_last_failed_run_job_url: p.last_failed_run_job_url,
        plugin_last_canceled_run_job_url: p.last_canceled_run_job_url,
        host_cpu_count: e.host_cpu_count,
        host_cpu_used_count: e.host_cpu_used_count,
        host_cpu_usage_percentage: e.host_cpu_usage_percentage,
        host_memory_total_bytes: e.host_memory_total_bytes,
        host_memory_used_bytes: e.host_memory_used_bytes,
        host_memory_available_bytes: e.host_memory_available_bytes,
        host_memory_usage_percentage: e.host_memory_usage_percentage,
        host_disk_total_bytes: e.host_disk_total_bytes,
        host_disk_used_bytes: e.host_disk_used_bytes,
        host_disk_available_bytes: e.host_disk_available_bytes,
        host_disk_usage_percentage: e.host_disk_usage_percentage,
        host: h.host.clone(),
        stale: h.stale,
        heartbeat_age_seconds: h.age.as_secs_f64(),
    }
}

fn plugin_of(e: &FleetEntry) -> PluginExport {
    PluginExport {
        name: e.custom_name.clone(),
        plugin_name: e.plugin_name.clone(),
        repo_name: e.repo_name.clone(),
        owner_name: e.owner_name.clone(),
        status: e.plugin_status.clone(),
        status_since: e.plugin_status_since.clone(),
        last_successful_run_job_url: e.plugin_last_successful_run_job_url.clone(),
        last_failed_run_job_url: e.plugin_last_failed_run_job_url.clone(),
        last_canceled_run_job_url: e.plugin_last_canceled_run_job_url.clone(),
        last_successful_run: e.plugin_last_successful_run.clone(),
        last_failed_run: e.plugin_last_failed_run.clone(),
        last_canceled_run: e.plugin_last_canceled_run.clone(),
        total_ran_vms: e.plugin_total_ran_vms,
        total_successful_runs_since_start: e.plugin_total_successful_runs_since_start,
        total_failed_runs_since_start: e.plugin_total_failed_runs_since_start,
        total_canceled_runs_since_start: e.plugin_total_canceled_runs_since_start,
    }
}

fn export_of(e: &FleetEntry) -> Export {
    Export {
        host_cpu_count: e.host_cpu_count,
        host_cpu_used_count: e.host_cpu_used_count,
        host_cpu_usage_percentage: e.host_cpu_usage_percentage,
        host_memory_total_bytes: e.host_memory_total_bytes,
        host_memory_used_bytes: e.host_memory_used_bytes,
        host_memory_available_bytes: e.host_memory_available_bytes,
        host_memory_usage_percentage: e.host_memory_usage_percentage,
        host_disk_total_bytes: e.host_disk_total_bytes,
        host_disk_used_bytes: e.host_disk_used_bytes,
        host_disk_available_bytes: e.host_disk_available_bytes,
        host_disk_usage_percentage: e.host_disk_usage_percentage,
        ..Export::default()
    }
}
