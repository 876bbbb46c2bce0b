//! Workflow job and run calls: read a job's status (the check behind a lost webhook) and
//! cancel a run (for a job past its maximum lifetime) (research §3.4).

use super::{ApiError, expect_status, parse_json, repo_path};
use crate::github::http::{HttpRequest, HttpResponse, Method};
use crate::handler::GithubJobStatus;
use serde::Deserialize;

/// `GET /repos/{owner}/{repo}/actions/jobs/{job_id}`.
pub fn get_job(base: &str, owner: &str, repo: &str, job_id: u64) -> HttpRequest {
    let path = format!("{}/actions/jobs/{job_id}", repo_path(owner, repo));
    HttpRequest::api(Method::Get, base, &path, None)
}

#[derive(Deserialize)]
struct JobBody {
    status: String,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    runner_name: Option<String>,
}

/// Reads a job (200) into its status: `queued`/`waiting`/`pending`/`requested` are queued;
/// `in_progress` names its runner; `completed` carries the conclusion.
pub fn parse_job(response: &HttpResponse) -> Result<GithubJobStatus, ApiError> {
    expect_status(response, &[200])?;
    let body: JobBody = parse_json(response, "workflow job")?;
    match body.status.as_str() {
        "queued" | "waiting" | "pending" | "requested" => Ok(GithubJobStatus::Queued),
        "in_progress" => Ok(GithubJobStatus::InProgress {
            runner: body.runner_name.filter(|r| !r.is_empty()),
        }),
        "completed" => Ok(GithubJobStatus::Completed {
            conclusion: body.conclusion.filter(|c| !c.is_empty()),
        }),
        _ => Err(ApiError::Body("workflow job: unknown status".into())),
    }
}

/// `POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel` (202).
pub fn cancel_workflow_run(base: &str, owner: &str, repo: &str, run_id: u64) -> HttpRequest {
    let path = format!("{}/actions/runs/{run_id}/cancel", repo_path(owner, repo));
    HttpRequest::api(Method::Post, base, &path, None)
}

/// Checks a cancel answer: 202, or 409 when the run already finished (nothing to cancel,
/// which is what we wanted).
pub fn parse_cancel(response: &HttpResponse) -> Result<(), ApiError> {
    expect_status(response, &[202, 200, 204, 409])
}
