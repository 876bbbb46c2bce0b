//! Runner registrations: creating (unique names per scope), which queued jobs a runner may
//! take and which job it was made for, listing, and force-removal (422 while busy).

use super::*;

impl State {
    /// Registers a runner at `scope`; 409 when the name is taken there.
    pub fn create_runner(
        &mut self,
        scope: Scope,
        name: &str,
        labels: Vec<String>,
        jit: bool,
        ephemeral: bool,
    ) -> Result<NewRunner, Refusal> {
        if self
            .runners
            .values()
            .any(|r| r.scope.same(&scope) && r.name == name)
        {
            return Err(refuse(
                409,
                format!("Already exists - A runner with the name {name} already exists."),
            ));
        }
        self.next_runner_id += 1;
        let id = self.next_runner_id;
        let mut runner = Runner {
            id,
            name: name.to_owned(),
            scope,
            labels,
            ephemeral,
            jit,
            online: false,
            session_id: None,
            job_id: None,
            made_for: None,
            done: false,
        };
        runner.made_for = self.intended_job(&runner);
        let token = ids::session_token();
        self.runner_secrets.insert(token.clone(), id);
        self.record_secret(SecretKind::RunnerSession, &token, None);
        self.runners.insert(id, runner.clone());
        Ok(NewRunner { runner, token })
    }

    /// Queued jobs `runner` may run, oldest first.
    pub(super) fn eligible(&self, runner: &Runner) -> Vec<u64> {
        self.jobs
            .values()
            .filter(|j| {
                j.status == JobStatus::Queued
                    && runner.scope.covers(&j.owner, &j.repo)
                    && labels_match(&runner.labels, &j.labels)
            })
            .map(|j| j.id)
            .collect()
    }

    /// Jobs other idle runners were made for.
    pub(super) fn reserved_by_others(&self, runner_id: u64) -> Vec<u64> {
        self.runners
            .values()
            .filter(|r| r.id != runner_id && r.job_id.is_none() && !r.done)
            .filter_map(|r| r.made_for)
            .collect()
    }

    pub(super) fn intended_job(&self, runner: &Runner) -> Option<u64> {
        let eligible = self.eligible(runner);
        if let Some(j) = job_named_in(&runner.name, &eligible) {
            return Some(j);
        }
        let reserved = self.reserved_by_others(runner.id);
        eligible.into_iter().find(|j| !reserved.contains(j))
    }

    /// Every runner.
    pub fn runners(&self) -> Vec<Runner> {
        self.runners.values().cloned().collect()
    }

    /// A runner.
    pub fn runner(&self, id: u64) -> Option<&Runner> {
        self.runners.get(&id)
    }

    /// Runners registered exactly at `scope`, by id.
    pub fn runners_at(&self, scope: &Scope) -> Vec<&Runner> {
        self.runners
            .values()
            .filter(|r| r.scope.same(scope))
            .collect()
    }

    /// Force-removes a runner (the delete endpoint): 422 while it runs a job.
    pub fn delete_runner(&mut self, scope: &Scope, id: u64) -> Result<(), Refusal> {
        let r = self
            .runners
            .get(&id)
            .filter(|r| r.scope.same(scope))
            .ok_or_else(|| refuse(404, "Not Found"))?;
        if r.job_id.is_some() {
            return Err(refuse(
                422,
                format!("Bad request - Runner \"{}\" is still running a job", r.name),
            ));
        }
        self.remove_runner(id);
        Ok(())
    }

    /// The runner is done with its job: free it, and remove it when ephemeral.
    pub(super) fn release_runner(&mut self, rid: u64) {
        let remove = match self.runners.get_mut(&rid) {
            Some(r) => {
                r.job_id = None;
                r.done = true;
                r.ephemeral
            }
            None => false,
        };
        if remove {
            self.remove_runner(rid);
        }
    }

    pub(super) fn remove_runner(&mut self, rid: u64) {
        self.runners.remove(&rid);
        self.runner_secrets.retain(|_, v| *v != rid);
    }
}
