//! Workflow jobs as the emulator keeps them: the state GitHub reports through the jobs API and
//! the `workflow_job` webhooks.

use serde::Serialize;

/// Where a job is in its life (`workflow_job.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a runner.
    Queued,
    /// A runner has it.
    InProgress,
    /// Finished, whatever the outcome.
    Completed,
}

impl JobStatus {
    /// GitHub's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::InProgress => "in_progress",
            JobStatus::Completed => "completed",
        }
    }
}

/// One workflow job and everything the emulator knows about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Job {
    /// `workflow_job.id` (beyond 2^31, as on GitHub).
    pub id: u64,
    /// The workflow run.
    pub run_id: u64,
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// The `runs-on` labels.
    pub labels: Vec<String>,
    /// Job name.
    pub name: String,
    /// State.
    pub status: JobStatus,
    /// `success`, `failure`, `cancelled`, ... once completed.
    pub conclusion: Option<String>,
    /// The runner that took it.
    pub runner_id: Option<u64>,
    /// That runner's name.
    pub runner_name: Option<String>,
    /// Run time once started (already scaled), in milliseconds.
    pub duration_ms: u64,
    /// Creation time (ms since the epoch).
    pub created_at_ms: u64,
    /// When a runner took it.
    pub started_at_ms: Option<u64>,
    /// When it completed.
    pub completed_at_ms: Option<u64>,
}

/// Whether a runner with `runner_labels` may run a job with `job_labels`: it must carry every
/// job label, case-insensitively (GitHub's rule; extra runner labels do not matter).
pub fn labels_match(runner_labels: &[String], job_labels: &[String]) -> bool {
    job_labels
        .iter()
        .all(|j| runner_labels.iter().any(|r| r.eq_ignore_ascii_case(j)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn runner_labels_must_cover_the_job() {
        assert!(labels_match(
            &v(&["self-hosted", "macOS", "x"]),
            &v(&["macos"])
        ));
        assert!(!labels_match(
            &v(&["self-hosted"]),
            &v(&["self-hosted", "macOS"])
        ));
        assert!(labels_match(&v(&["a"]), &[]));
    }
}
