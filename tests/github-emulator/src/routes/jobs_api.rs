//! Workflow jobs and runs of a repository: get a job, list a run's jobs, cancel a run.

use super::rest::not_found;
use super::{Ctx, authenticate_for, id_param, paging};
use crate::engine::Inner;
use crate::http::{Req, Resp};
use crate::payloads;
use crate::time::now_ms;
use serde_json::{Value, json};

/// `/repos/{o}/{r}/actions/{jobs|runs}/...`; `kind` is `jobs` or `runs`, `segs` what follows.
pub fn route(
    inner: &Inner,
    req: &Req,
    ctx: &mut Ctx,
    owner: &str,
    repo: &str,
    segs: &[&str],
    kind: &str,
) -> Resp {
    if let Err(r) = authenticate_for(inner, req, ctx, Some(owner)) {
        return r;
    }
    match (req.method.as_str(), kind, segs) {
        ("GET", "jobs", [id]) => match id_param(id) {
            Ok(id) => get_job(inner, owner, repo, id),
            Err(r) => r,
        },
        ("GET", "runs", [run, "jobs"]) => match id_param(run) {
            Ok(run) => run_jobs(inner, req, owner, repo, run),
            Err(r) => r,
        },
        ("POST", "runs", [run, "cancel"]) => match id_param(run) {
            Ok(run) => cancel(inner, owner, repo, run),
            Err(r) => r,
        },
        _ => not_found(),
    }
}

fn get_job(inner: &Inner, owner: &str, repo: &str, id: u64) -> Resp {
    let st = inner.state();
    match st
        .job(id)
        .filter(|j| j.owner.eq_ignore_ascii_case(owner) && j.repo.eq_ignore_ascii_case(repo))
    {
        Some(j) => Resp::json(200, &payloads::job(&st.urls, j)),
        None => not_found(),
    }
}

fn run_jobs(inner: &Inner, req: &Req, owner: &str, repo: &str, run: u64) -> Resp {
    let (per_page, page) = paging(req);
    let st = inner.state();
    let all: Vec<Value> = st
        .jobs()
        .iter()
        .filter(|j| {
            j.run_id == run
                && j.owner.eq_ignore_ascii_case(owner)
                && j.repo.eq_ignore_ascii_case(repo)
        })
        .map(|j| payloads::job(&st.urls, j))
        .collect();
    let total = all.len();
    let jobs: Vec<Value> = all
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    Resp::json(200, &json!({"total_count": total, "jobs": jobs}))
}

fn cancel(inner: &Inner, owner: &str, repo: &str, run: u64) -> Resp {
    let res = inner.state().cancel_run(owner, repo, run, now_ms());
    match res {
        Ok(out) => {
            inner.dispatch(out);
            Resp::json(202, &json!({}))
        }
        Err((status, msg)) => Resp::error(status, &msg),
    }
}
