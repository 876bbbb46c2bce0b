//! The emulator-only runner service of docs/emulators.md: sessions, job assignment, completion,
//! vanishing runners, and registration with a registration token. Every call but `register`
//! carries the runner's session token.

use super::rest::not_found;
use super::{Ctx, id_param};
use crate::auth::{self, Principal};
use crate::engine::Inner;
use crate::http::{Req, Resp};
use crate::jit::{self, RUNNER_SERVICE_PATH};
use crate::time::now_ms;
use serde_json::{Value, json};
use std::time::Instant;

/// Answers a call under `/_emulator/runner-service`.
pub fn route(inner: &Inner, req: &Req, ctx: &mut Ctx) -> Resp {
    let rest = req.path.get(RUNNER_SERVICE_PATH.len()..).unwrap_or("");
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if req.method == "POST" && segs.as_slice() == ["register"] {
        return register(inner, req);
    }
    let Some(cred) = auth::credential(req) else {
        return Resp::error(401, "Requires authentication");
    };
    let Some(rid) = inner.state().runner_for_secret(cred.token) else {
        return Resp::error(401, "Bad credentials");
    };
    ctx.principal = Some(Principal::Runner { id: rid });
    match (req.method.as_str(), segs.as_slice()) {
        ("POST", ["sessions"]) => open(inner, req, rid),
        ("GET", ["sessions", sid, "job"]) => poll(inner, rid, sid),
        ("DELETE", ["sessions", sid]) => vanish(inner, rid, sid),
        ("POST", ["jobs", jid, "complete"]) => match id_param(jid) {
            Ok(j) => complete(inner, req, rid, j),
            Err(r) => r,
        },
        _ => not_found(),
    }
}

fn open(inner: &Inner, req: &Req, rid: u64) -> Resp {
    let asked = req
        .json()
        .ok()
        .and_then(|b| b.get("runner_id").and_then(Value::as_u64));
    if asked != Some(rid) {
        return Resp::error(403, "runner_id does not match the credentials");
    }
    match inner.state().open_session(rid) {
        Ok(sid) => Resp::json(200, &json!({"session_id": sid})),
        Err((s, m)) => Resp::error(s, &m),
    }
}

fn poll(inner: &Inner, rid: u64, sid: &str) -> Resp {
    let (assigned, out) = {
        let mut st = inner.state();
        if st.runner_of_session(sid) != Some(rid) {
            return Resp::error(404, "session not found");
        }
        st.assign(rid, now_ms(), Instant::now())
    };
    inner.dispatch(out);
    match assigned {
        Some(a) => Resp::json(
            200,
            &json!({"job_id": a.job_id, "run_id": a.run_id, "duration_ms": a.duration_ms}),
        ),
        None => Resp::empty(204),
    }
}

fn vanish(inner: &Inner, rid: u64, sid: &str) -> Resp {
    let res = {
        let mut st = inner.state();
        if st.runner_of_session(sid) != Some(rid) {
            return Resp::error(404, "session not found");
        }
        st.vanish(sid)
    };
    match res {
        Ok(out) => {
            inner.dispatch(out);
            Resp::json(200, &json!({}))
        }
        Err((s, m)) => Resp::error(s, &m),
    }
}

fn complete(inner: &Inner, req: &Req, rid: u64, jid: u64) -> Resp {
    let conclusion = req
        .json()
        .ok()
        .and_then(|b| {
            b.get("conclusion")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "success".to_owned());
    const ALLOWED: [&str; 7] = [
        "success",
        "failure",
        "cancelled",
        "skipped",
        "neutral",
        "timed_out",
        "action_required",
    ];
    if !ALLOWED.contains(&conclusion.as_str()) {
        return Resp::error(422, "unknown conclusion");
    }
    let res = inner.state().complete(rid, jid, &conclusion, now_ms());
    match res {
        Ok(out) => {
            inner.dispatch(out);
            Resp::json(200, &json!({}))
        }
        Err((s, m)) => Resp::error(s, &m),
    }
}

fn register(inner: &Inner, req: &Req) -> Resp {
    let body = match req.json() {
        Ok(v) => v,
        Err(m) => return Resp::error(400, &m),
    };
    let token = body.get("token").and_then(Value::as_str).unwrap_or("");
    let Some(name) = body
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        return Resp::error(422, "name is required");
    };
    let labels: Vec<String> = body
        .get("labels")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if labels.is_empty() {
        return Resp::error(422, "labels are required");
    }
    let ephemeral = body
        .get("ephemeral")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let made = {
        let mut st = inner.state();
        let Some(scope) = st.registration_scope(token, now_ms()) else {
            return Resp::error(404, "registration token is unknown or expired");
        };
        st.create_runner(scope, name, labels, false, ephemeral)
    };
    match made {
        Ok(new) => Resp::json(
            201,
            &json!({
                "runner": jit::runner_file(&inner.base_url, &new.runner, "_work"),
                "credentials": jit::credentials_file(&new.token),
            }),
        ),
        Err((s, m)) => Resp::error(s, &m),
    }
}
