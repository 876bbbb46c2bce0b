//! Self-hosted runner calls: registration and remove tokens, just-in-time configs, listing
//! (by name, paginated), reading and deleting runners, and runner groups (research §3.1–3.3).

use super::{ApiError, ApiScope, expect_status, parse_json};
use crate::github::http::{HttpRequest, HttpResponse, Method, encode_component};
use crate::github::link::{NextPage, next_page};
use crate::github::rfc3339;
use crate::handler::RunnerInfo;
use crate::secret::Secret;
use crate::time::Timestamp;
use serde::Deserialize;

/// Runners per page asked for (GitHub's maximum).
pub const PER_PAGE: u32 = 100;

/// The runner group every scope has (GitHub's "Default"); repository runners are always in it.
pub const DEFAULT_RUNNER_GROUP_ID: u64 = 1;

/// `POST {scope}/actions/runners/registration-token` (201 `{token, expires_at}`).
pub fn registration_token(base: &str, scope: &ApiScope) -> HttpRequest {
    let path = format!("{}/actions/runners/registration-token", scope.path());
    HttpRequest::api(Method::Post, base, &path, None)
}

/// `POST {scope}/actions/runners/remove-token` (201 `{token, expires_at}`).
pub fn remove_token(base: &str, scope: &ApiScope) -> HttpRequest {
    let path = format!("{}/actions/runners/remove-token", scope.path());
    HttpRequest::api(Method::Post, base, &path, None)
}

/// A registration or remove token (valid one hour).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnerToken {
    /// The token for `config.sh --token`.
    pub token: Secret,
    /// When it stops working.
    pub expires_at: Timestamp,
}

#[derive(Deserialize)]
struct TokenBody {
    token: Secret,
    expires_at: String,
}

/// Reads a registration or remove token (201).
pub fn parse_runner_token(response: &HttpResponse) -> Result<RunnerToken, ApiError> {
    expect_status(response, &[200, 201])?;
    let body: TokenBody = parse_json(response, "runner token")?;
    if body.token.is_empty() {
        return Err(ApiError::Body("runner token: empty token".into()));
    }
    let expires_at = rfc3339::parse(&body.expires_at)
        .map_err(|_| ApiError::Body("runner token: expires_at is not a date-time".into()))?;
    Ok(RunnerToken {
        token: body.token,
        expires_at,
    })
}

/// What a just-in-time runner is created with.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct JitRequest {
    /// The runner's name, unique in the scope (ours is the VM name).
    pub name: String,
    /// The runner group's id.
    pub runner_group_id: u64,
    /// The runner's labels (1 to 100): the job's `runs-on`, so GitHub routes the job to it.
    pub labels: Vec<String>,
    /// The work folder, relative to the runner directory.
    pub work_folder: String,
}

impl JitRequest {
    /// A request with the default work folder (`_work`); `self-hosted` is put first when the
    /// labels lack it (GitHub does not add it to JIT runners), and duplicates (ignoring case,
    /// as GitHub matches labels) are dropped.
    pub fn new(name: impl Into<String>, runner_group_id: u64, labels: &[String]) -> Self {
        let mut out: Vec<String> = vec!["self-hosted".to_owned()];
        for l in labels {
            if !l.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(l)) {
                out.push(l.clone());
            }
        }
        out.truncate(100);
        Self {
            name: name.into(),
            runner_group_id,
            labels: out,
            work_folder: "_work".to_owned(),
        }
    }
}

/// `POST {scope}/actions/runners/generate-jitconfig` (201 `{runner, encoded_jit_config}`).
pub fn generate_jitconfig(base: &str, scope: &ApiScope, request: &JitRequest) -> HttpRequest {
    let path = format!("{}/actions/runners/generate-jitconfig", scope.path());
    let body = serde_json::to_vec(request).unwrap_or_default();
    HttpRequest::api(Method::Post, base, &path, Some(body))
}

/// A created JIT runner: its id (to delete it) and its config (for `run.sh --jitconfig`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JitConfig {
    /// GitHub's id of the new runner.
    pub runner_id: u64,
    /// The base64 config; a credential.
    pub encoded_jit_config: Secret,
}

#[derive(Deserialize)]
struct JitBody {
    runner: RunnerBody,
    encoded_jit_config: Secret,
}

/// Reads a generate-jitconfig answer (201).
pub fn parse_jitconfig(response: &HttpResponse) -> Result<JitConfig, ApiError> {
    expect_status(response, &[200, 201])?;
    let body: JitBody = parse_json(response, "JIT config")?;
    if body.encoded_jit_config.is_empty() {
        return Err(ApiError::Body(
            "JIT config: empty encoded_jit_config".into(),
        ));
    }
    Ok(JitConfig {
        runner_id: body.runner.id,
        encoded_jit_config: body.encoded_jit_config,
    })
}

/// `GET {scope}/actions/runners?per_page=100[&name=..][&page=..]`.
pub fn list_runners(
    base: &str,
    scope: &ApiScope,
    name: Option<&str>,
    page: Option<&NextPage>,
) -> HttpRequest {
    let mut path = format!("{}/actions/runners?per_page={PER_PAGE}", scope.path());
    if let Some(name) = name {
        path.push_str("&name=");
        path.push_str(&encode_component(name));
    }
    if let Some(page) = page {
        path.push('&');
        path.push_str(&page.query());
    }
    HttpRequest::api(Method::Get, base, &path, None)
}

/// One page of runners and where the next starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnerPage {
    /// The runners on this page.
    pub runners: Vec<RunnerInfo>,
    /// The next page, from the `Link` header.
    pub next: Option<NextPage>,
}

#[derive(Deserialize)]
struct RunnerBody {
    id: u64,
    name: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    busy: bool,
}

impl From<RunnerBody> for RunnerInfo {
    fn from(r: RunnerBody) -> Self {
        RunnerInfo {
            id: r.id,
            name: r.name,
            online: r.status == "online",
            busy: r.busy,
        }
    }
}

#[derive(Deserialize)]
struct RunnerList {
    runners: Vec<RunnerBody>,
}

/// Reads a page of runners (200).
pub fn parse_runner_page(response: &HttpResponse) -> Result<RunnerPage, ApiError> {
    expect_status(response, &[200])?;
    let body: RunnerList = parse_json(response, "runner list")?;
    Ok(RunnerPage {
        runners: body.runners.into_iter().map(RunnerInfo::from).collect(),
        next: next_page(response.header("link")),
    })
}

/// `GET {scope}/actions/runners/{runner_id}`.
pub fn get_runner(base: &str, scope: &ApiScope, runner_id: u64) -> HttpRequest {
    let path = format!("{}/actions/runners/{runner_id}", scope.path());
    HttpRequest::api(Method::Get, base, &path, None)
}

/// Reads one runner (200).
pub fn parse_runner(response: &HttpResponse) -> Result<RunnerInfo, ApiError> {
    expect_status(response, &[200])?;
    let body: RunnerBody = parse_json(response, "runner")?;
    Ok(body.into())
}

/// `DELETE {scope}/actions/runners/{runner_id}` (204; 422 while it runs a job).
pub fn delete_runner(base: &str, scope: &ApiScope, runner_id: u64) -> HttpRequest {
    let path = format!("{}/actions/runners/{runner_id}", scope.path());
    HttpRequest::api(Method::Delete, base, &path, None)
}

/// Checks a delete answer (204).
pub fn parse_delete_runner(response: &HttpResponse) -> Result<(), ApiError> {
    expect_status(response, &[204, 200])
}

/// `GET {scope}/actions/runner-groups?per_page=100` (organisations and enterprises only).
pub fn list_runner_groups(base: &str, scope: &ApiScope, page: Option<&NextPage>) -> HttpRequest {
    let mut path = format!("{}/actions/runner-groups?per_page={PER_PAGE}", scope.path());
    if let Some(page) = page {
        path.push('&');
        path.push_str(&page.query());
    }
    HttpRequest::api(Method::Get, base, &path, None)
}

/// A runner group's id and name.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RunnerGroup {
    /// The id JIT configs take.
    pub id: u64,
    /// The name config files use.
    pub name: String,
}

#[derive(Deserialize)]
struct GroupList {
    runner_groups: Vec<RunnerGroup>,
}

/// Reads a page of runner groups (200) and where the next starts.
pub fn parse_runner_groups(
    response: &HttpResponse,
) -> Result<(Vec<RunnerGroup>, Option<NextPage>), ApiError> {
    expect_status(response, &[200])?;
    let body: GroupList = parse_json(response, "runner group list")?;
    Ok((body.runner_groups, next_page(response.header("link"))))
}
