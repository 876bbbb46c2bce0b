//! What a run simulates: the fleet, the work and the faults. A seed chooses all of it (as
//! TigerBeetle's VOPR does), so a sweep over seeds explores fleets and fault mixes, not just
//! timings; command-line overrides pin parts of it to cut a failing run down.

use crate::dice::Dice;
use std::time::Duration;

/// Fault rates; zero means the fault never happens.
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// A webhook delivery is lost (GitHub shows it failed; the receiver redelivers it later).
    pub webhook_loss: f64,
    /// A webhook is delivered twice.
    pub webhook_dup: f64,
    /// Longest extra delay of a webhook, so deliveries reorder.
    pub webhook_jitter: Duration,
    /// A GitHub API call fails transiently (5xx, rate limit).
    pub api_fail: f64,
    /// A template pull fails.
    pub pull_fail: f64,
    /// A clone fails.
    pub clone_fail: f64,
    /// A VM fails to boot.
    pub start_fail: f64,
    /// A VM dies while its job runs.
    pub vm_death: f64,
    /// A runner never picks its job up.
    pub runner_dud: f64,
    /// GitHub cancels a queued or running job.
    pub cancel: f64,
    /// A runner that comes up is given another queued job with the same labels (job stealing).
    pub steal: f64,
    /// Host crashes during the run (each followed by a restart).
    pub host_crashes: u32,
    /// Store outages during the run.
    pub store_outages: u32,
    /// GitHub API rate-limit windows during the run (primary or secondary limits): the GitHub
    /// client sends nothing until the window ends, so every call answers late, and a call held
    /// past the client's command timeout fails as timed out.
    pub rate_limits: u32,
}

impl Faults {
    /// No faults at all.
    pub fn none() -> Self {
        Self {
            webhook_loss: 0.0,
            webhook_dup: 0.0,
            webhook_jitter: Duration::from_millis(200),
            api_fail: 0.0,
            pull_fail: 0.0,
            clone_fail: 0.0,
            start_fail: 0.0,
            vm_death: 0.0,
            runner_dud: 0.0,
            cancel: 0.0,
            steal: 0.0,
            host_crashes: 0,
            store_outages: 0,
            rate_limits: 0,
        }
    }
}

/// One job of a given arrival list (a recorded trace or a synthetic day), so capacity planning
/// can replay the same work against fleets of different sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// When GitHub queues the job, from the start of the run.
    pub at: Duration,
    /// The Anka template it asks for (its `anka-template:` label).
    pub template: String,
    /// How long it runs once a runner starts it.
    pub duration: Duration,
}

/// The fleet and the work.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Handler hosts.
    pub hosts: usize,
    /// VMs per host.
    pub max_vms: usize,
    /// Distinct templates jobs ask for.
    pub templates: usize,
    /// Template size in GiB.
    pub template_gb: u64,
    /// Template volume size in GiB per host.
    pub disk_gb: u64,
    /// Jobs that arrive.
    pub jobs: usize,
    /// Window over which they arrive (Poisson).
    pub arrival_window: Duration,
    /// Job run time range in seconds.
    pub job_secs: (f64, f64),
    /// Pull time range in seconds.
    pub pull_secs: (f64, f64),
    /// Faults.
    pub faults: Faults,
    /// The jobs to run, replacing the seeded Poisson draw (and `jobs`, `job_secs` and
    /// `templates`) when set; seeded sweeps leave it `None`.
    pub arrivals: Option<Vec<Arrival>>,
}

impl Scenario {
    /// The scenario a seed chooses for a sweep: a small fleet under a random mix of faults.
    pub fn from_seed(seed: u64) -> Self {
        let mut d = Dice::new(seed ^ 0x5ce7_a210);
        let level = |d: &mut Dice, high: f64| match d.between(0, 2) {
            0 => 0.0,
            1 => high / 5.0,
            _ => high,
        };
        let faults = Faults {
            webhook_loss: level(&mut d, 0.2),
            webhook_dup: level(&mut d, 0.2),
            webhook_jitter: d.secs(0.1, 30.0),
            api_fail: level(&mut d, 0.2),
            pull_fail: level(&mut d, 0.3),
            clone_fail: level(&mut d, 0.2),
            start_fail: level(&mut d, 0.2),
            vm_death: level(&mut d, 0.1),
            runner_dud: level(&mut d, 0.2),
            cancel: level(&mut d, 0.1),
            steal: level(&mut d, 0.3),
            host_crashes: u32::try_from(d.between(0, 2)).unwrap_or(0),
            store_outages: u32::try_from(d.between(0, 2)).unwrap_or(0),
            // Drawn last (below), so the scenarios of existing seeds stay as they were.
            rate_limits: 0,
        };
        let hosts = usize::try_from(d.between(1, 4)).unwrap_or(1);
        let mut s = Self {
            hosts,
            max_vms: 2,
            templates: usize::try_from(d.between(1, 3)).unwrap_or(1),
            template_gb: 40,
            disk_gb: d.between(90, 200),
            jobs: usize::try_from(d.between(3, 30)).unwrap_or(3),
            arrival_window: Duration::from_secs(d.between(60, 3600)),
            job_secs: (60.0, 1200.0),
            pull_secs: (60.0, 900.0),
            faults,
            arrivals: None,
        };
        s.faults.rate_limits = u32::try_from(d.between(0, 2)).unwrap_or(0);
        s
    }

    /// A fault-free fleet of `hosts` hosts receiving `jobs` jobs over `window` (planning and
    /// the benchmark).
    pub fn fleet(hosts: usize, jobs: usize, window: Duration) -> Self {
        Self {
            hosts,
            max_vms: 2,
            templates: 2,
            template_gb: 40,
            disk_gb: 200,
            jobs,
            arrival_window: window,
            job_secs: (60.0, 480.0),
            pull_secs: (120.0, 600.0),
            faults: Faults::none(),
            arrivals: None,
        }
    }
}
