//! The runner service's rules: sessions, job assignment (its own job first, unless the
//! stealing fault says otherwise), completion, and runners that vanish mid-job.

use super::*;

impl State {
    /// The runner comes online; 409 when it already has a session.
    pub fn open_session(&mut self, runner_id: u64) -> Result<String, Refusal> {
        let r = self
            .runners
            .get_mut(&runner_id)
            .ok_or_else(|| refuse(404, "runner not found"))?;
        if r.session_id.is_some() {
            return Err(refuse(409, "the runner already has a session"));
        }
        let sid = ids::session_id();
        r.session_id = Some(sid.clone());
        r.online = true;
        Ok(sid)
    }

    /// The runner owning session `sid`.
    pub fn runner_of_session(&self, sid: &str) -> Option<u64> {
        self.runners
            .values()
            .find(|r| r.session_id.as_deref() == Some(sid))
            .map(|r| r.id)
    }

    /// Gives runner `rid` a job if one is there for it (see [`crate::faults::Fault::JobStealing`]
    /// for the exception to "its own job first").
    pub fn assign(
        &mut self,
        rid: u64,
        now_ms: u64,
        now: std::time::Instant,
    ) -> (Option<Assignment>, Vec<Outbound>) {
        let Some(runner) = self.runners.get(&rid).cloned() else {
            return (None, Vec::new());
        };
        if let Some(jid) = runner.job_id {
            let a = self.jobs.get(&jid).map(|j| Assignment {
                job_id: j.id,
                run_id: j.run_id,
                duration_ms: j.duration_ms,
            });
            return (a, Vec::new());
        }
        if runner.done && runner.ephemeral {
            return (None, Vec::new());
        }
        let eligible = self.eligible(&runner);
        let own = runner.made_for.filter(|j| eligible.contains(j));
        let swap_only = runner.made_for.is_some() && self.faults.stealing(now) == Some(true);
        let idle_own_runner = self.reserved_by_others(rid);
        let other = eligible
            .iter()
            .copied()
            .find(|j| Some(*j) != runner.made_for && (!swap_only || idle_own_runner.contains(j)));
        if swap_only && other.is_none() && eligible.iter().any(|j| Some(*j) != runner.made_for) {
            // A swap is due but the other job's runner is not there yet: hold this runner
            // (GitHub may take a while to route a job too) until it is.
            return (None, Vec::new());
        }
        let steal = runner.made_for.is_some() && self.faults.steal(now, other.is_some());
        let chosen = if steal {
            other
        } else if own.is_some() {
            own
        } else {
            let reserved = self.reserved_by_others(rid);
            eligible.into_iter().find(|j| !reserved.contains(j))
        };
        let Some(jid) = chosen else {
            return (None, Vec::new());
        };
        let Some(job) = self.jobs.get_mut(&jid) else {
            return (None, Vec::new());
        };
        job.status = JobStatus::InProgress;
        job.runner_id = Some(rid);
        job.runner_name = Some(runner.name.clone());
        job.started_at_ms = Some(now_ms);
        let a = Assignment {
            job_id: job.id,
            run_id: job.run_id,
            duration_ms: job.duration_ms,
        };
        if let Some(r) = self.runners.get_mut(&rid) {
            r.job_id = Some(jid);
        }
        (
            Some(a),
            self.job_event("in_progress", jid).into_iter().collect(),
        )
    }

    /// Runner `rid` reports job `jid` finished.
    pub fn complete(
        &mut self,
        rid: u64,
        jid: u64,
        conclusion: &str,
        now_ms: u64,
    ) -> Result<Vec<Outbound>, Refusal> {
        let job = self
            .jobs
            .get(&jid)
            .ok_or_else(|| refuse(404, "job not found"))?;
        if job.runner_id != Some(rid) {
            return Err(refuse(409, "this runner does not run that job"));
        }
        if job.status == JobStatus::Completed {
            // Cancelled meanwhile: the runner is free now.
            self.release_runner(rid);
            return Ok(Vec::new());
        }
        Ok(self.finish(jid, conclusion, now_ms, false))
    }

    /// The session ends without the runner completing (its machine died): the runner goes
    /// offline and its job fails after the configured delay.
    pub fn vanish(&mut self, sid: &str) -> Result<Vec<Outbound>, Refusal> {
        let rid = self
            .runner_of_session(sid)
            .ok_or_else(|| refuse(404, "session not found"))?;
        let mut out = Vec::new();
        if let Some(r) = self.runners.get_mut(&rid) {
            r.online = false;
            r.session_id = None;
            if let Some(job_id) = r.job_id {
                out.push(Outbound::Timer {
                    after: self.scale.scale(self.vanished_delay),
                    action: TimerAction::FailVanished {
                        job_id,
                        runner_id: rid,
                    },
                });
            }
        }
        Ok(out)
    }

    /// A timer fired.
    pub fn on_timer(&mut self, action: &TimerAction, now_ms: u64) -> Vec<Outbound> {
        match action {
            TimerAction::FailVanished { job_id, runner_id } => {
                let still_there = self.jobs.get(job_id).is_some_and(|j| {
                    j.runner_id == Some(*runner_id) && j.status == JobStatus::InProgress
                });
                if still_there {
                    self.finish(*job_id, "failure", now_ms, false)
                } else {
                    if self.runners.get(runner_id).is_some_and(|r| !r.online) {
                        self.release_runner(*runner_id);
                    }
                    Vec::new()
                }
            }
        }
    }
}
