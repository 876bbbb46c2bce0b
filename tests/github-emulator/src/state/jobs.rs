//! Workflow jobs: queueing, the `workflow_job` payload of each state change, ending a job,
//! cancelling a run, and the timer that fails a job whose runner vanished.

use super::*;

impl State {
    /// Queues a job and returns it with its `queued` webhook.
    pub fn create_job(
        &mut self,
        spec: &JobSpec,
        now_ms: u64,
    ) -> Result<(Job, Vec<Outbound>), String> {
        if spec.owner.is_empty() || spec.repo.is_empty() {
            return Err("owner and repo must not be empty".into());
        }
        if spec.owner.contains('/') || spec.repo.contains('/') {
            return Err("owner and repo must not contain '/'".into());
        }
        if spec.labels.is_empty() || spec.labels.len() > 100 {
            return Err("a job needs 1 to 100 labels".into());
        }
        self.next_job_id += 1;
        let id = self.next_job_id;
        let run_id = spec.run_id.unwrap_or_else(|| {
            self.next_run_id += 1;
            self.next_run_id
        });
        let job = Job {
            id,
            run_id,
            owner: spec.owner.clone(),
            repo: spec.repo.clone(),
            labels: spec.labels.clone(),
            name: spec.name.clone().unwrap_or_else(|| "build".into()),
            status: JobStatus::Queued,
            conclusion: None,
            runner_id: None,
            runner_name: None,
            duration_ms: ms(self.scale.scale(Duration::from_millis(spec.duration_ms))),
            created_at_ms: now_ms,
            started_at_ms: None,
            completed_at_ms: None,
        };
        self.jobs.insert(id, job.clone());
        let out = self.job_event("queued", id).into_iter().collect();
        Ok((job, out))
    }

    /// A job.
    pub fn job(&self, id: u64) -> Option<&Job> {
        self.jobs.get(&id)
    }

    /// Every job, oldest first.
    pub fn jobs(&self) -> Vec<Job> {
        self.jobs.values().cloned().collect()
    }

    /// The `workflow_job` webhook for job `id`'s current state.
    pub(super) fn job_event(&mut self, action: &str, id: u64) -> Option<Outbound> {
        let job = self.jobs.get(&id)?.clone();
        let ids = self.repo_ids(&job.owner, &job.repo);
        let installation_id = self.installation_for(&job.owner);
        let payload = payloads::workflow_job(
            &self.templates,
            &self.urls,
            action,
            &job,
            ids,
            installation_id,
        );
        let target = match (&self.app, installation_id) {
            (Some(app), Some(_)) => ("integration".to_owned(), app.config.app_id),
            _ => ("repository".to_owned(), ids.repo_id),
        };
        Some(Outbound::Webhook(WebhookEvent {
            event: "workflow_job".into(),
            action: Some(action.to_owned()),
            payload,
            repository_id: Some(ids.repo_id),
            installation_id,
            target,
            only_hook: None,
        }))
    }

    /// Ends job `id` with `conclusion` and returns its `completed` webhook (nothing if it had
    /// already ended). Its ephemeral runner is removed, unless `keep_runner`.
    pub(super) fn finish(
        &mut self,
        id: u64,
        conclusion: &str,
        now_ms: u64,
        keep_runner: bool,
    ) -> Vec<Outbound> {
        let Some(job) = self.jobs.get_mut(&id) else {
            return Vec::new();
        };
        if job.status == JobStatus::Completed {
            return Vec::new();
        }
        job.status = JobStatus::Completed;
        job.conclusion = Some(conclusion.to_owned());
        job.completed_at_ms = Some(now_ms);
        let runner_id = job.runner_id;
        if let Some(rid) = runner_id
            && !keep_runner
        {
            self.release_runner(rid);
        }
        self.job_event("completed", id).into_iter().collect()
    }

    /// Cancels every unfinished job of run `run_id` in `owner/repo`.
    pub fn cancel_run(
        &mut self,
        owner: &str,
        repo: &str,
        run_id: u64,
        now_ms: u64,
    ) -> Result<Vec<Outbound>, Refusal> {
        let ids: Vec<(u64, JobStatus)> = self
            .jobs
            .values()
            .filter(|j| {
                j.run_id == run_id
                    && j.owner.eq_ignore_ascii_case(owner)
                    && j.repo.eq_ignore_ascii_case(repo)
            })
            .map(|j| (j.id, j.status))
            .collect();
        if ids.is_empty() {
            return Err(refuse(404, "Not Found"));
        }
        let open: Vec<u64> = ids
            .iter()
            .filter(|(_, s)| *s != JobStatus::Completed)
            .map(|(id, _)| *id)
            .collect();
        if open.is_empty() {
            return Err(refuse(
                409,
                "Cannot cancel a workflow run that is completed.",
            ));
        }
        let mut out = Vec::new();
        for id in open {
            // A runner running a cancelled job stays busy until it reports back.
            out.extend(self.finish(id, "cancelled", now_ms, true));
        }
        Ok(out)
    }
}
