//! Seeded models of what cannot run in a simulation: GitHub's job and runner service, and the
//! Anka CLI on each Mac. They answer the handler's effects the way the real systems do (the
//! contract in `shared/research/anka-cli.md` and `github.md`), including the 2-running-VM
//! licence limit, disk accounting and one pull at a time.

use anklet_core::handler::{DiskSpace, GithubJobStatus, TemplateInfo};
use anklet_core::ids::{JobId, TemplateId, VmName};
use anklet_core::time::Timestamp;
use std::collections::BTreeMap;

/// A workflow job as GitHub holds it.
#[derive(Clone, Debug)]
pub struct GhJob {
    /// Labels (template and tag).
    pub labels: Vec<String>,
    /// Status.
    pub status: GithubJobStatus,
    /// When GitHub queued it.
    pub queued_at: Timestamp,
    /// When a runner started it.
    pub started_at: Option<Timestamp>,
    /// When it completed.
    pub finished_at: Option<Timestamp>,
    /// How long it runs once started.
    pub run_for: std::time::Duration,
    /// Runners it was started on; more than one is a double run.
    pub executions: u32,
    /// The runner that ran it.
    pub ran_on: Option<String>,
}

/// GitHub's side: jobs and registered runners.
#[derive(Clone, Debug, Default)]
pub struct GitHub {
    /// Jobs by id.
    pub jobs: BTreeMap<JobId, GhJob>,
    /// Registered runners: name -> the job it was made for, and the job it runs.
    pub runners: BTreeMap<String, (JobId, Option<JobId>)>,
    /// Jobs GitHub has queued and no runner has started, by id (what a new runner may get).
    pub waiting: std::collections::BTreeSet<JobId>,
}

impl GitHub {
    /// Whether every job is over (completed or cancelled).
    pub fn all_done(&self) -> bool {
        self.jobs
            .values()
            .all(|j| matches!(j.status, GithubJobStatus::Completed { .. }))
    }
}

/// A VM on a Mac.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vm {
    /// Booted.
    pub running: bool,
    /// Template it was cloned from.
    pub template: TemplateId,
}

/// One Mac's Anka state.
#[derive(Clone, Debug, Default)]
pub struct Anka {
    /// Local templates: tag, size, last use.
    pub templates: BTreeMap<TemplateId, (Option<String>, u64, Timestamp)>,
    /// Volume size.
    pub disk_total: u64,
    /// VMs by name.
    pub vms: BTreeMap<VmName, Vm>,
    /// A pull is running until this instant.
    pub pulling_until: Option<Timestamp>,
}

impl Anka {
    /// Free bytes: volume minus templates.
    pub fn free(&self) -> u64 {
        let used: u64 = self.templates.values().map(|t| t.1).sum();
        self.disk_total.saturating_sub(used)
    }

    /// The disk as `anka` reports it.
    pub fn disk(&self) -> DiskSpace {
        DiskSpace {
            total_bytes: self.disk_total,
            available_bytes: self.free(),
        }
    }

    /// Templates as `anka list` + `show` report them.
    pub fn inventory(&self) -> Vec<TemplateInfo> {
        self.templates
            .iter()
            .map(|(id, (tag, size, used))| TemplateInfo {
                template: id.clone(),
                tag: tag.clone(),
                size_bytes: *size,
                last_used: *used,
            })
            .collect()
    }

    /// Running VMs (the licence allows two).
    pub fn running(&self) -> usize {
        self.vms.values().filter(|v| v.running).count()
    }
}
