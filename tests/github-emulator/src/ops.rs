//! The operations a test can ask for, shared by the Rust handle and the HTTP control API so
//! both behave the same: create jobs, cancel runs, arm faults, add hooks, observe.

use crate::Error;
use crate::config::JobSpec;
use crate::engine::Inner;
use crate::faults::{ActiveFault, Fault};
use crate::jobs::Job;
use crate::time::now_ms;
use std::time::{Duration, Instant};

impl Inner {
    /// Queues a job and sends its `queued` webhook.
    pub fn create_job(&self, spec: &JobSpec) -> Result<Job, Error> {
        let (job, out) = self
            .state()
            .create_job(spec, now_ms())
            .map_err(Error::InvalidJob)?;
        self.dispatch(out);
        Ok(job)
    }

    /// Cancels a run as `POST .../runs/{id}/cancel` does.
    pub fn cancel_run(&self, owner: &str, repo: &str, run_id: u64) -> Result<(), Error> {
        let out = self
            .state()
            .cancel_run(owner, repo, run_id, now_ms())
            .map_err(|(_, m)| Error::NotFound(format!("run {run_id} of {owner}/{repo}: {m}")))?;
        self.dispatch(out);
        Ok(())
    }

    /// Arms a fault; returns its id.
    pub fn set_fault(&self, fault: Fault) -> Result<u64, Error> {
        fault.validate().map_err(Error::InvalidFault)?;
        Ok(self.state().faults.add(fault, Instant::now()))
    }

    /// The armed faults.
    pub fn faults(&self) -> Vec<ActiveFault> {
        self.state().faults.list(Instant::now())
    }

    /// Adds a hook (receiver URL) and pings it; returns the hook id.
    pub fn add_hook(&self, url: &str) -> Result<u64, Error> {
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(Error::InvalidConfig(format!(
                "webhook url must be http(s)://, got {url:?}"
            )));
        }
        let (hook, out) = self.state().add_hook(url, now_ms());
        self.dispatch(vec![out]);
        Ok(hook.id)
    }

    /// Waits until every queued delivery and timer is done, at most `timeout`; `true` when
    /// idle.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self.pending.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
