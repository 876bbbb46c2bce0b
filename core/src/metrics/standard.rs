//! The standard Prometheus exposition served at `/metrics`: `anklet_`-prefixed families with
//! help and type, counters ending in `_total`, histograms with `_bucket{le}`, `_sum` and
//! `_count`, labelled by `host` (a handler's name), `template` and `receiver`. It passes
//! `promtool check metrics`.

use super::datetime::unix_seconds;
use super::exposition::{Exposition, Kind, Sample};
use super::registry::{HandlerMetrics, Metrics, Step};
use crate::handler::HostStatus;
use std::collections::BTreeMap;

/// Every status a host can report, so a state-set gauge always shows all of them.
const STATUSES: [HostStatus; 6] = [
    HostStatus::Idle,
    HostStatus::InProgress,
    HostStatus::Pulling,
    HostStatus::Draining,
    HostStatus::Stopping,
    HostStatus::Stopped,
];

fn per_handler(m: &Metrics, f: impl Fn(&HandlerMetrics) -> f64) -> Vec<Sample> {
    m.handlers()
        .iter()
        .map(|h| Sample::new(&[("host", &h.identity.name)], f(h)))
        .collect()
}

fn keyed2(
    m: &Metrics,
    label: &str,
    f: impl Fn(&HandlerMetrics) -> &BTreeMap<(String, String), u64>,
) -> Vec<Sample> {
    m.handlers()
        .iter()
        .flat_map(|h| {
            f(h).iter().map(|((template, key), v)| {
                Sample::new(
                    &[
                        ("host", &h.identity.name),
                        ("template", template),
                        (label, key),
                    ],
                    *v as f64,
                )
            })
        })
        .collect()
}

impl Metrics {
    /// `/metrics`: the standard exposition. See the module docs.
    pub fn prometheus(&self) -> String {
        let mut x = Exposition::new();
        x.family(
            "anklet_start_time_seconds",
            Kind::Gauge,
            "Unix time the process started.",
            &[Sample::new(&[], unix_seconds(Some(self.started_at())))],
        );
        let status: Vec<Sample> = self
            .handlers()
            .iter()
            .flat_map(|h| {
                STATUSES.iter().map(|s| {
                    Sample::new(
                        &[("host", &h.identity.name), ("status", s.as_str())],
                        if *s == h.status { 1.0 } else { 0.0 },
                    )
                })
            })
            .collect();
        x.family(
            "anklet_host_status",
            Kind::Gauge,
            "1 for the handler's current status, 0 for the others.",
            &status,
        );
        x.family(
            "anklet_host_status_since_seconds",
            Kind::Gauge,
            "Unix time the handler entered its current status.",
            &per_handler(self, |h| unix_seconds(Some(h.status_since))),
        );
        x.family(
            "anklet_jobs_in_flight",
            Kind::Gauge,
            "Jobs the handler holds now.",
            &per_handler(self, |h| h.jobs_in_flight() as f64),
        );
        x.family(
            "anklet_running_vms",
            Kind::Gauge,
            "VMs booted for the handler's jobs and not yet recycled.",
            &per_handler(self, |h| h.running_vms() as f64),
        );
        x.family(
            "anklet_vms_started_total",
            Kind::Counter,
            "VMs the handler booted for jobs.",
            &per_handler(self, |h| h.total_ran_vms as f64),
        );
        let claimed: Vec<Sample> = self
            .handlers()
            .iter()
            .flat_map(|h| {
                h.claimed.iter().map(|(t, v)| {
                    Sample::new(&[("host", &h.identity.name), ("template", t)], *v as f64)
                })
            })
            .collect();
        x.family(
            "anklet_jobs_claimed_total",
            Kind::Counter,
            "Jobs claimed from the queue.",
            &claimed,
        );
        x.family(
            "anklet_jobs_completed_total",
            Kind::Counter,
            "Jobs completed, by outcome (GitHub's conclusion, served_elsewhere, timed_out, vm_lost, aborted_by_stop).",
            &keyed2(self, "outcome", |h| &h.completed),
        );
        x.family(
            "anklet_jobs_requeued_total",
            Kind::Counter,
            "Jobs put back in the queue, by reason code.",
            &keyed2(self, "reason", |h| &h.requeued),
        );
        x.family(
            "anklet_jobs_dead_lettered_total",
            Kind::Counter,
            "Jobs moved to the dead letter, by reason code.",
            &keyed2(self, "reason", |h| &h.dead_lettered),
        );
        let runs: Vec<Sample> = self
            .handlers()
            .iter()
            .flat_map(|h| {
                [
                    ("success", h.successful),
                    ("failed", h.failed),
                    ("canceled", h.canceled),
                ]
                .into_iter()
                .map(|(r, v)| Sample::new(&[("host", &h.identity.name), ("result", r)], v as f64))
            })
            .collect();
        x.family(
            "anklet_runs_total",
            Kind::Counter,
            "Runs by Anklet's result classes (success, failed, canceled).",
            &runs,
        );
        let last: Vec<Sample> = self
            .handlers()
            .iter()
            .flat_map(|h| {
                [
                    ("success", &h.last_successful),
                    ("failed", &h.last_failed),
                    ("canceled", &h.last_canceled),
                ]
                .into_iter()
                .filter_map(|(r, l)| {
                    l.as_ref().map(|l| {
                        Sample::new(
                            &[("host", &h.identity.name), ("result", r)],
                            unix_seconds(Some(l.at)),
                        )
                    })
                })
            })
            .collect();
        x.family(
            "anklet_last_run_timestamp_seconds",
            Kind::Gauge,
            "Unix time of the last run of each result class.",
            &last,
        );
        for step in Step::ALL {
            let samples: Vec<Sample> = self
                .handlers()
                .iter()
                .flat_map(|h| {
                    h.histograms
                        .iter()
                        .filter(|((s, _), _)| *s == step)
                        .flat_map(|((_, t), hist)| {
                            hist.samples(&[("host", &h.identity.name), ("template", t)])
                        })
                })
                .collect();
            x.family(step.metric_name(), Kind::Histogram, step.help(), &samples);
        }
        let accepted: Vec<Sample> = self
            .receivers()
            .iter()
            .flat_map(|r| {
                r.accepted.iter().map(|(o, v)| {
                    Sample::new(&[("receiver", &r.identity.name), ("outcome", o)], *v as f64)
                })
            })
            .collect();
        x.family(
            "anklet_webhooks_accepted_total",
            Kind::Counter,
            "Webhook deliveries answered 2xx, by what the store did.",
            &accepted,
        );
        let refused: Vec<Sample> = self
            .receivers()
            .iter()
            .flat_map(|r| {
                r.refused.iter().map(|(s, v)| {
                    Sample::new(
                        &[("receiver", &r.identity.name), ("status", &s.to_string())],
                        *v as f64,
                    )
                })
            })
            .collect();
        x.family(
            "anklet_webhooks_refused_total",
            Kind::Counter,
            "Webhook deliveries refused, by HTTP status (503: the store failed).",
            &refused,
        );
        if let Some(q) = self.queue_depth() {
            let samples: Vec<Sample> = [
                ("queued", q.queued),
                ("claimed", q.claimed),
                ("dead", q.dead),
            ]
            .into_iter()
            .map(|(s, v)| Sample::new(&[("state", s)], v as f64))
            .collect();
            x.family(
                "anklet_queue_depth",
                Kind::Gauge,
                "Jobs in the queue by place, as last read.",
                &samples,
            );
        }
        if let Some(h) = self.host_stats() {
            for (name, help, v) in [
                ("anklet_host_cpus", "CPUs of the host.", h.cpu_count as f64),
                (
                    "anklet_host_cpu_usage_ratio",
                    "CPU busy, 0 to 1.",
                    h.cpu_usage_percentage / 100.0,
                ),
                (
                    "anklet_host_memory_total_bytes",
                    "Physical memory.",
                    h.memory_total_bytes as f64,
                ),
                (
                    "anklet_host_memory_used_bytes",
                    "Memory in use.",
                    h.memory_used_bytes as f64,
                ),
                (
                    "anklet_host_memory_available_bytes",
                    "Memory available to new processes.",
                    h.memory_available_bytes as f64,
                ),
                (
                    "anklet_host_disk_total_bytes",
                    "Size of the template volume.",
                    h.disk_total_bytes as f64,
                ),
                (
                    "anklet_host_disk_used_bytes",
                    "Bytes used on the template volume.",
                    h.disk_used_bytes as f64,
                ),
                (
                    "anklet_host_disk_available_bytes",
                    "Bytes available on the template volume.",
                    h.disk_available_bytes as f64,
                ),
            ] {
                x.family(name, Kind::Gauge, help, &[Sample::new(&[], v)]);
            }
        }
        x.finish()
    }
}
