//! The JSON GitHub answers and sends, built from GitHub's own examples (the fixtures in
//! `tests/fixtures/github/`, compiled in) with the emulator's values put in, so clients parse
//! the same shapes they will meet on github.com. URLs point at the emulator, never at GitHub.

use crate::Error;
use crate::jobs::{Job, JobStatus};
use crate::runners::{Runner, label_type};
use crate::time::rfc3339;
use serde_json::{Map, Value, json};

const QUEUED_FIXTURE: &str = include_str!("../../fixtures/github/workflow_job.queued.json");
const PING_FIXTURE: &str = include_str!("../../fixtures/github/ping.json");
const INSTALLATION_FIXTURE: &str = include_str!("../../fixtures/github/api/installation.json");
const RATE_LIMIT_FIXTURE: &str = include_str!("../../fixtures/github/api/rate-limit-overview.json");

/// The parsed fixtures the payloads are made from.
#[derive(Debug)]
pub struct Templates {
    repository: Value,
    sender: Value,
    ping_hook: Value,
    installation: Value,
    rate_limit: Value,
}

fn parse(name: &'static str, text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|_| Error::Fixture(name))
}

fn field(v: &Value, key: &str, name: &'static str) -> Result<Value, Error> {
    v.get(key).cloned().ok_or(Error::Fixture(name))
}

impl Templates {
    /// Parses the compiled-in fixtures.
    pub fn load() -> Result<Self, Error> {
        let queued = parse("workflow_job.queued.json", QUEUED_FIXTURE)?;
        let ping = parse("ping.json", PING_FIXTURE)?;
        Ok(Self {
            repository: field(&queued, "repository", "workflow_job.queued.json")?,
            sender: field(&queued, "sender", "workflow_job.queued.json")?,
            ping_hook: field(&ping, "hook", "ping.json")?,
            installation: parse("api/installation.json", INSTALLATION_FIXTURE)?,
            rate_limit: parse("api/rate-limit-overview.json", RATE_LIMIT_FIXTURE)?,
        })
    }
}

/// Where the emulator is, to write URLs that point at it.
#[derive(Clone, Debug)]
pub struct Urls {
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// `127.0.0.1:port`.
    pub host: String,
}

/// Replaces every string in `v` through `f`.
fn rewrite(v: &mut Value, f: &dyn Fn(&str) -> String) {
    match v {
        Value::String(s) => *s = f(s),
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite(x, f)),
        Value::Object(m) => m.values_mut().for_each(|x| rewrite(x, f)),
        _ => {}
    }
}

fn host_rewrite(s: &str, urls: &Urls) -> String {
    s.replace("https://api.github.com", &urls.base)
        .replace("https://github.com", &urls.base)
        .replace("github.com", &urls.host)
}

fn set(v: &mut Value, key: &str, value: Value) {
    if let Value::Object(m) = v {
        m.insert(key.to_owned(), value);
    }
}

/// Ids the payloads need for a repository and its owner.
#[derive(Clone, Copy, Debug)]
pub struct RepoIds {
    /// `repository.id`.
    pub repo_id: u64,
    /// `repository.owner.id`.
    pub owner_id: u64,
}

fn node_id(kind: &str, id: u64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{kind}{id}"))
}

impl Templates {
    /// The `repository` object of a webhook for `owner/repo`.
    pub fn repository(&self, urls: &Urls, owner: &str, repo: &str, ids: RepoIds) -> Value {
        let mut r = self.repository.clone();
        let full = format!("{owner}/{repo}");
        rewrite(&mut r, &|s| {
            host_rewrite(
                &s.replace("Codertocat/Hello-World", &full)
                    .replace("Octocoders", owner)
                    .replace("Codertocat", owner),
                urls,
            )
        });
        set(&mut r, "id", json!(ids.repo_id));
        set(&mut r, "node_id", json!(node_id("Repository", ids.repo_id)));
        set(&mut r, "name", json!(repo));
        set(&mut r, "full_name", json!(full));
        if let Some(o) = r.get_mut("owner") {
            set(o, "login", json!(owner));
            set(o, "id", json!(ids.owner_id));
            set(o, "node_id", json!(node_id("Organization", ids.owner_id)));
        }
        r
    }

    /// The `sender` object (GitHub's example user, with URLs pointing here).
    pub fn sender(&self, urls: &Urls) -> Value {
        let mut s = self.sender.clone();
        rewrite(&mut s, &|x| host_rewrite(x, urls));
        s
    }

    /// The `ping` payload for a new hook.
    pub fn ping(&self, urls: &Urls, hook_id: u64, hook_url: &str, now_ms: u64) -> Value {
        let mut hook = self.ping_hook.clone();
        let path = format!("{}/emulator/hooks/{hook_id}", urls.base);
        set(&mut hook, "id", json!(hook_id));
        set(&mut hook, "events", json!(["workflow_job"]));
        set(
            &mut hook,
            "config",
            json!({"content_type": "json", "url": hook_url, "insecure_ssl": "0"}),
        );
        set(&mut hook, "created_at", json!(rfc3339(now_ms)));
        set(&mut hook, "updated_at", json!(rfc3339(now_ms)));
        set(&mut hook, "url", json!(path));
        set(&mut hook, "test_url", json!(format!("{path}/test")));
        set(&mut hook, "ping_url", json!(format!("{path}/pings")));
        set(
            &mut hook,
            "deliveries_url",
            json!(format!("{path}/deliveries")),
        );
        json!({
            "zen": "Emulated, not GitHub: Keep it logically awesome.",
            "hook_id": hook_id,
            "hook": hook,
            "sender": self.sender(urls),
        })
    }

    /// An installation object for `account`.
    pub fn installation(
        &self,
        urls: &Urls,
        id: u64,
        account: &str,
        account_id: u64,
        app_id: u64,
        client_id: Option<&str>,
    ) -> Value {
        let mut i = self.installation.clone();
        rewrite(&mut i, &|s| {
            host_rewrite(&s.replace("github", account), urls)
        });
        set(&mut i, "id", json!(id));
        set(&mut i, "app_id", json!(app_id));
        set(
            &mut i,
            "client_id",
            json!(client_id.unwrap_or("Iv1.emulated")),
        );
        set(&mut i, "target_id", json!(account_id));
        set(&mut i, "app_slug", json!("anklet-rs-emulated-app"));
        set(
            &mut i,
            "access_tokens_url",
            json!(format!(
                "{}/app/installations/{id}/access_tokens",
                urls.base
            )),
        );
        set(&mut i, "permissions", permissions());
        set(&mut i, "events", json!(["workflow_job"]));
        if let Some(a) = i.get_mut("account") {
            set(a, "login", json!(account));
            set(a, "id", json!(account_id));
        }
        i
    }

    /// `GET /rate_limit` with the caller's `core` bucket.
    pub fn rate_limit(&self, limit: u32, used: u32, reset: u64) -> Value {
        let mut v = self.rate_limit.clone();
        let core = json!({"limit": limit, "used": used, "remaining": limit.saturating_sub(used), "reset": reset});
        if let Some(res) = v.get_mut("resources") {
            set(res, "core", core.clone());
        }
        set(&mut v, "rate", core);
        v
    }
}

/// The permissions the emulated app (and its tokens) have.
pub fn permissions() -> Value {
    json!({
        "actions": "read",
        "administration": "write",
        "metadata": "read",
        "organization_self_hosted_runners": "write"
    })
}

fn steps(job: &Job) -> Value {
    let at = |ms: Option<u64>| ms.map(rfc3339).map_or(Value::Null, Value::String);
    match job.status {
        JobStatus::Queued => json!([]),
        JobStatus::InProgress => json!([{
            "name": "Set up job", "status": "in_progress", "conclusion": null, "number": 1,
            "started_at": at(job.started_at_ms), "completed_at": null
        }]),
        JobStatus::Completed if job.started_at_ms.is_none() => json!([]),
        JobStatus::Completed => json!([
            {"name": "Set up job", "status": "completed", "conclusion": "success", "number": 1,
             "started_at": at(job.started_at_ms), "completed_at": at(job.started_at_ms)},
            {"name": "Run job", "status": "completed", "conclusion": job.conclusion, "number": 2,
             "started_at": at(job.started_at_ms), "completed_at": at(job.completed_at_ms)}
        ]),
    }
}

/// The job object: `GET /repos/{o}/{r}/actions/jobs/{id}` and the webhook's `workflow_job`
/// (same field names, as on GitHub).
pub fn job(urls: &Urls, job: &Job) -> Value {
    let repo_api = format!("{}/repos/{}/{}", urls.base, job.owner, job.repo);
    let at = |ms: Option<u64>| ms.map(rfc3339).map_or(Value::Null, Value::String);
    let has_runner = job.runner_id.is_some();
    json!({
        "id": job.id,
        "run_id": job.run_id,
        "run_url": format!("{repo_api}/actions/runs/{}", job.run_id),
        "run_attempt": 1,
        "node_id": node_id("WorkflowJob", job.id),
        "head_sha": format!("{:040x}", job.run_id),
        "head_branch": "main",
        "url": format!("{repo_api}/actions/jobs/{}", job.id),
        "html_url": format!("{}/{}/{}/actions/runs/{}/job/{}", urls.base, job.owner, job.repo, job.run_id, job.id),
        "status": job.status.as_str(),
        "conclusion": job.conclusion,
        "created_at": rfc3339(job.created_at_ms),
        "started_at": at(job.started_at_ms.or(Some(job.created_at_ms))),
        "completed_at": at(job.completed_at_ms),
        "name": job.name,
        "steps": steps(job),
        "check_run_url": format!("{repo_api}/check-runs/{}", job.id),
        "labels": job.labels,
        "runner_id": job.runner_id,
        "runner_name": job.runner_name,
        "runner_group_id": if has_runner { json!(1) } else { Value::Null },
        "runner_group_name": if has_runner { json!("Default") } else { Value::Null },
        "workflow_name": "CI",
    })
}

/// A stable id for a label name (the runners API gives labels ids).
fn label_id(name: &str) -> u64 {
    name.to_ascii_lowercase()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
        % 1_000_000
        + 1
}

/// The runners API's runner object.
pub fn runner(r: &Runner) -> Value {
    let labels: Vec<Value> = r
        .labels
        .iter()
        .map(|l| json!({"id": label_id(l), "name": l, "type": label_type(l)}))
        .collect();
    let connected = r.online || r.job_id.is_some() || r.done;
    json!({
        "id": r.id,
        "name": r.name,
        "os": if connected { "macOS" } else { "unknown" },
        "status": if r.online { "online" } else { "offline" },
        "busy": r.job_id.is_some(),
        "ephemeral": r.ephemeral,
        "runner_group_id": 1,
        "version": if connected { json!("2.336.0") } else { Value::Null },
        "labels": labels,
    })
}

/// A GitHub-style error body.
pub fn error(status: u16, message: &str) -> Value {
    json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": status.to_string(),
    })
}

/// The `workflow_job` webhook payload.
pub fn workflow_job(
    t: &Templates,
    urls: &Urls,
    action: &str,
    j: &Job,
    ids: RepoIds,
    installation_id: Option<u64>,
) -> Value {
    let mut m = Map::new();
    m.insert("action".into(), json!(action));
    m.insert("workflow_job".into(), job(urls, j));
    m.insert(
        "repository".into(),
        t.repository(urls, &j.owner, &j.repo, ids),
    );
    m.insert("sender".into(), t.sender(urls));
    if let Some(id) = installation_id {
        m.insert(
            "installation".into(),
            json!({"id": id, "node_id": node_id("Installation", id)}),
        );
    }
    Value::Object(m)
}
