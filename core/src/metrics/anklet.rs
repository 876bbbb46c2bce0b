//! Anklet's own metric formats, for dashboards and aggregators built for Anklet:
//! - the JSON document Anklet exports to Redis (`anklet/metrics/...`, spec §4.2), served at
//!   `/metrics/v1?format=json` and sent as each handler's heartbeat payload;
//! - the `/metrics/v1?format=prometheus` text with Anklet's metric names (spec §4.1), made
//!   valid: label values quoted, the status as a `status` label with value 1, times as Unix
//!   seconds, every family grouped under one `# TYPE` line.

use super::datetime::{rfc3339_nanos, rfc3339_seconds, unix_seconds};
use super::exposition::{Exposition, Kind, Sample};
use super::registry::{HandlerMetrics, HostStats, LastRun, Metrics, ReceiverMetrics};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// One plugin in Anklet's export, with Go's field names (Anklet's aggregator reads exactly
/// these keys).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PluginExport {
    /// The plugin's `name`.
    #[serde(rename = "Name")]
    pub name: String,
    /// `github` or `github_receiver`.
    #[serde(rename = "PluginName")]
    pub plugin_name: String,
    /// `repo`.
    #[serde(rename = "RepoName")]
    pub repo_name: String,
    /// `owner` (else `enterprise`).
    #[serde(rename = "OwnerName")]
    pub owner_name: String,
    /// `idle`, `in_progress`, `pulling`, `draining`, `stopping`, `stopped`, `running`.
    #[serde(rename = "Status")]
    pub status: String,
    /// RFC 3339.
    #[serde(rename = "StatusSince")]
    pub status_since: String,
    /// Page of the last successful job.
    #[serde(rename = "LastSuccessfulRunJobUrl")]
    pub last_successful_run_job_url: String,
    /// Page of the last failed job.
    #[serde(rename = "LastFailedRunJobUrl")]
    pub last_failed_run_job_url: String,
    /// Page of the last canceled job.
    #[serde(rename = "LastCanceledRunJobUrl")]
    pub last_canceled_run_job_url: String,
    /// RFC 3339, Go's zero time when never.
    #[serde(rename = "LastSuccessfulRun")]
    pub last_successful_run: String,
    /// RFC 3339, Go's zero time when never.
    #[serde(rename = "LastFailedRun")]
    pub last_failed_run: String,
    /// RFC 3339, Go's zero time when never.
    #[serde(rename = "LastCanceledRun")]
    pub last_canceled_run: String,
    /// VMs booted for jobs.
    #[serde(rename = "TotalRanVMs")]
    pub total_ran_vms: u64,
    /// Successful runs since start.
    #[serde(rename = "TotalSuccessfulRunsSinceStart")]
    pub total_successful_runs_since_start: u64,
    /// Failed runs since start.
    #[serde(rename = "TotalFailedRunsSinceStart")]
    pub total_failed_runs_since_start: u64,
    /// Canceled runs since start.
    #[serde(rename = "TotalCanceledRunsSinceStart")]
    pub total_canceled_runs_since_start: u64,
}

/// Anklet's whole export document.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Export {
    /// RFC 3339 with fraction: when the document was made.
    pub last_update: String,
    /// VMs running now.
    pub total_running_vms: u64,
    /// Successful runs since start, all handlers.
    pub total_successful_runs_since_start: u64,
    /// Failed runs since start, all handlers.
    pub total_failed_runs_since_start: u64,
    /// Canceled runs since start, all handlers.
    pub total_canceled_runs_since_start: u64,
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
    /// The plugins.
    pub plugins: Vec<PluginExport>,
}

fn run_fields(last: Option<&LastRun>) -> (String, String) {
    (
        rfc3339_seconds(last.map(|l| l.at)),
        last.map(|l| l.job_url.clone()).unwrap_or_default(),
    )
}

fn handler_export(h: &HandlerMetrics) -> PluginExport {
    let (ok, ok_url) = run_fields(h.last_successful.as_ref());
    let (failed, failed_url) = run_fields(h.last_failed.as_ref());
    let (canceled, canceled_url) = run_fields(h.last_canceled.as_ref());
    PluginExport {
        name: h.identity.name.clone(),
        plugin_name: h.identity.plugin.clone(),
        repo_name: h.identity.repo.clone(),
        owner_name: h.identity.owner.clone(),
        status: h.status.as_str().to_owned(),
        status_since: rfc3339_seconds(Some(h.status_since)),
        last_successful_run_job_url: ok_url,
        last_failed_run_job_url: failed_url,
        last_canceled_run_job_url: canceled_url,
        last_successful_run: ok,
        last_failed_run: failed,
        last_canceled_run: canceled,
        total_ran_vms: h.total_ran_vms,
        total_successful_runs_since_start: h.successful,
        total_failed_runs_since_start: h.failed,
        total_canceled_runs_since_start: h.canceled,
    }
}

fn receiver_export(r: &ReceiverMetrics) -> PluginExport {
    PluginExport {
        name: r.identity.name.clone(),
        plugin_name: r.identity.plugin.clone(),
        repo_name: r.identity.repo.clone(),
        owner_name: r.identity.owner.clone(),
        status: "running".to_owned(),
        status_since: rfc3339_seconds(Some(r.since)),
        last_successful_run: rfc3339_seconds(None),
        last_failed_run: rfc3339_seconds(None),
        last_canceled_run: rfc3339_seconds(None),
        ..PluginExport::default()
    }
}

fn with_host(mut e: Export, host: Option<&HostStats>) -> Export {
    if let Some(h) = host {
        e.host_cpu_count = h.cpu_count;
        e.host_cpu_used_count = h.cpu_used_count();
        e.host_cpu_usage_percentage = h.cpu_usage_percentage;
        e.host_memory_total_bytes = h.memory_total_bytes;
        e.host_memory_used_bytes = h.memory_used_bytes;
        e.host_memory_available_bytes = h.memory_available_bytes;
        e.host_memory_usage_percentage = h.memory_usage_percentage();
        e.host_disk_total_bytes = h.disk_total_bytes;
        e.host_disk_used_bytes = h.disk_used_bytes;
        e.host_disk_available_bytes = h.disk_available_bytes;
        e.host_disk_usage_percentage = h.disk_usage_percentage();
    }
    e
}

impl Metrics {
    /// The process's export document at `now`: every plugin, handlers first.
    pub fn anklet_export(&self, now: Timestamp) -> Export {
        let [vms, ok, failed, canceled] = self.totals();
        let plugins = self
            .handlers()
            .iter()
            .map(handler_export)
            .chain(self.receivers().iter().map(receiver_export))
            .collect();
        let e = Export {
            last_update: rfc3339_nanos(now),
            total_running_vms: vms,
            total_successful_runs_since_start: ok,
            total_failed_runs_since_start: failed,
            total_canceled_runs_since_start: canceled,
            plugins,
            ..Export::default()
        };
        with_host(e, self.host_stats())
    }

    /// The heartbeat payload of handler `host`: the export document with that handler only
    /// (the process's host figures included), as JSON text; `None` for an unknown handler.
    pub fn heartbeat_payload(&self, host: &str, now: Timestamp) -> Option<String> {
        let h = self.handler(host)?;
        let e = Export {
            last_update: rfc3339_nanos(now),
            total_running_vms: h.running_vms(),
            total_successful_runs_since_start: h.successful,
            total_failed_runs_since_start: h.failed,
            total_canceled_runs_since_start: h.canceled,
            plugins: vec![handler_export(h)],
            ..Export::default()
        };
        serde_json::to_string(&with_host(e, self.host_stats())).ok()
    }

    /// `/metrics/v1?format=prometheus`: Anklet's names, valid text.
    pub fn anklet_prometheus(&self, now: Timestamp) -> String {
        let export = self.anklet_export(now);
        let mut x = Exposition::new();
        if !self.handlers().is_empty() {
            for (name, help, v) in [
                (
                    "total_running_vms",
                    "VMs running now.",
                    export.total_running_vms,
                ),
                (
                    "total_successful_runs_since_start",
                    "Successful runs since start, all handlers.",
                    export.total_successful_runs_since_start,
                ),
                (
                    "total_failed_runs_since_start",
                    "Failed runs since start, all handlers.",
                    export.total_failed_runs_since_start,
                ),
                (
                    "total_canceled_runs_since_start",
                    "Canceled runs since start, all handlers.",
                    export.total_canceled_runs_since_start,
                ),
            ] {
                x.family(name, Kind::Gauge, help, &[Sample::new(&[], v as f64)]);
            }
        }
        plugin_families(&mut x, &export.plugins, &[], true);
        host_families(&mut x, &export, &[]);
        x.finish()
    }
}

/// The `plugin_*` families for `plugins`; `extra` labels (the aggregator's) go first, and
/// `with_plugin_label` adds `plugin=` as the per-process output does.
pub(crate) fn plugin_families(
    x: &mut Exposition,
    plugins: &[PluginExport],
    extra: &[Vec<(String, String)>],
    with_plugin_label: bool,
) {
    let base = |i: usize, p: &PluginExport, repo: bool| -> Vec<(String, String)> {
        let mut l: Vec<(String, String)> = extra.get(i).cloned().unwrap_or_default();
        l.push(("name".into(), p.name.clone()));
        if with_plugin_label {
            l.push(("plugin".into(), p.plugin_name.clone()));
        }
        l.push(("owner".into(), p.owner_name.clone()));
        if repo && !p.repo_name.is_empty() {
            l.push(("repo".into(), p.repo_name.clone()));
        }
        l
    };
    let sample = |labels: Vec<(String, String)>, value: f64| Sample {
        suffix: "",
        labels,
        value,
    };
    let handlers = || {
        plugins
            .iter()
            .enumerate()
            .filter(|(_, p)| p.plugin_name != "github_receiver")
    };
    let status: Vec<Sample> = plugins
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut l = base(i, p, true);
            l.push(("status".into(), p.status.clone()));
            sample(l, 1.0)
        })
        .collect();
    x.family(
        "plugin_status",
        Kind::Gauge,
        "The plugin's status (Anklet's value as the status label; the sample is always 1).",
        &status,
    );
    type Pick = fn(&PluginExport) -> (&str, &str);
    let runs: [(&str, &str, Pick); 3] = [
        (
            "plugin_last_successful_run",
            "Unix time of the last successful run (0: never).",
            |p| (&p.last_successful_run, &p.last_successful_run_job_url),
        ),
        (
            "plugin_last_failed_run",
            "Unix time of the last failed run (0: never).",
            |p| (&p.last_failed_run, &p.last_failed_run_job_url),
        ),
        (
            "plugin_last_canceled_run",
            "Unix time of the last canceled run (0: never).",
            |p| (&p.last_canceled_run, &p.last_canceled_run_job_url),
        ),
    ];
    for (name, help, pick) in runs {
        let samples: Vec<Sample> = handlers()
            .map(|(i, p)| {
                let (at, url) = pick(p);
                let mut l = base(i, p, true);
                l.push(("job_url".into(), url.to_owned()));
                sample(l, rfc3339_unix(at))
            })
            .collect();
        x.family(name, Kind::Gauge, help, &samples);
    }
    let since: Vec<Sample> = plugins
        .iter()
        .enumerate()
        .map(|(i, p)| sample(base(i, p, true), rfc3339_unix(&p.status_since)))
        .collect();
    x.family(
        "plugin_status_since",
        Kind::Gauge,
        "Unix time the plugin entered its current status.",
        &since,
    );
    type Count = fn(&PluginExport) -> u64;
    let totals: [(&str, &str, Count); 4] = [
        (
            "plugin_total_ran_vms",
            "VMs the plugin booted for jobs.",
            |p| p.total_ran_vms,
        ),
        (
            "plugin_total_successful_runs_since_start",
            "Successful runs since the plugin started.",
            |p| p.total_successful_runs_since_start,
        ),
        (
            "plugin_total_failed_runs_since_start",
            "Failed runs since the plugin started.",
            |p| p.total_failed_runs_since_start,
        ),
        (
            "plugin_total_canceled_runs_since_start",
            "Canceled runs since the plugin started.",
            |p| p.total_canceled_runs_since_start,
        ),
    ];
    for (name, help, count) in totals {
        let samples: Vec<Sample> = handlers()
            .map(|(i, p)| {
                let mut l = extra.get(i).cloned().unwrap_or_default();
                l.push(("name".into(), p.name.clone()));
                l.push(("plugin".into(), p.plugin_name.clone()));
                l.push(("owner".into(), p.owner_name.clone()));
                sample(l, count(p) as f64)
            })
            .collect();
        x.family(name, Kind::Gauge, help, &samples);
    }
}

/// The `host_*` families of one export, with `labels` on every sample.
pub(crate) fn host_families(x: &mut Exposition, e: &Export, labels: &[(&str, &str)]) {
    host_families_many(x, &[(labels.to_vec(), e)]);
}

/// The `host_*` families of several exports (the aggregator's hosts), each with its labels.
pub(crate) fn host_families_many(x: &mut Exposition, rows: &[(Vec<(&str, &str)>, &Export)]) {
    type Field = fn(&Export) -> f64;
    let fields: [(&str, &str, Field); 11] = [
        ("host_cpu_count", "CPUs of the host.", |e| {
            e.host_cpu_count as f64
        }),
        ("host_cpu_used_count", "CPUs busy.", |e| {
            e.host_cpu_used_count as f64
        }),
        ("host_cpu_usage_percentage", "CPU busy, percent.", |e| {
            e.host_cpu_usage_percentage
        }),
        ("host_memory_total_bytes", "Physical memory.", |e| {
            e.host_memory_total_bytes as f64
        }),
        ("host_memory_used_bytes", "Memory in use.", |e| {
            e.host_memory_used_bytes as f64
        }),
        ("host_memory_available_bytes", "Memory available.", |e| {
            e.host_memory_available_bytes as f64
        }),
        (
            "host_memory_usage_percentage",
            "Memory in use, percent.",
            |e| e.host_memory_usage_percentage,
        ),
        ("host_disk_total_bytes", "Disk size.", |e| {
            e.host_disk_total_bytes as f64
        }),
        ("host_disk_used_bytes", "Disk in use.", |e| {
            e.host_disk_used_bytes as f64
        }),
        ("host_disk_available_bytes", "Disk available.", |e| {
            e.host_disk_available_bytes as f64
        }),
        ("host_disk_usage_percentage", "Disk in use, percent.", |e| {
            e.host_disk_usage_percentage
        }),
    ];
    for (name, help, field) in fields {
        let samples: Vec<Sample> = rows
            .iter()
            .map(|(labels, e)| Sample::new(labels, field(e)))
            .collect();
        x.family(name, Kind::Gauge, help, &samples);
    }
}

/// Unix seconds of an RFC 3339 text (0 for Go's zero time or anything unreadable).
pub(crate) fn rfc3339_unix(text: &str) -> f64 {
    unix_seconds(crate::github::rfc3339::parse(text).ok())
}
