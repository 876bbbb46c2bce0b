//! The control API under `/_emulator/` (JSON), so a separate process (tests of the real
//! daemons) can create jobs, arm faults and read state. Never faulted, never rate limited.

use crate::config::JobSpec;
use crate::engine::Inner;
use crate::faults::Fault;
use crate::http::{Req, Resp};
use crate::payloads;
use serde_json::{Value, json};

fn ok(v: &Value) -> Resp {
    Resp::json(200, v)
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn body<T: serde::de::DeserializeOwned>(req: &Req) -> Result<T, Resp> {
    serde_json::from_slice(&req.body).map_err(|e| Resp::error(400, &format!("bad JSON body: {e}")))
}

/// Answers a control call.
pub fn route(inner: &Inner, req: &Req) -> Resp {
    let segs = req.segments();
    match (req.method.as_str(), segs.get(1..).unwrap_or(&[])) {
        ("GET", ["health"]) => ok(&json!({"ok": true, "emulator": "anklet-rs github-emulator"})),
        ("GET", ["jobs"]) => ok(&to_json(&inner.state().jobs())),
        ("POST", ["jobs"]) => match body::<JobSpec>(req) {
            Ok(spec) => match inner.create_job(&spec) {
                Ok(job) => Resp::json(201, &to_json(&job)),
                Err(e) => Resp::error(422, &e.to_string()),
            },
            Err(r) => r,
        },
        ("GET", ["jobs", id]) => {
            let st = inner.state();
            match id.parse::<u64>().ok().and_then(|id| st.job(id)) {
                Some(j) => ok(&to_json(j)),
                None => Resp::error(404, "no such job"),
            }
        }
        ("GET", ["jobs", id, "payload"]) => {
            let st = inner.state();
            match id.parse::<u64>().ok().and_then(|id| st.job(id)) {
                Some(j) => ok(&payloads::job(&st.urls, j)),
                None => Resp::error(404, "no such job"),
            }
        }
        ("POST", ["runs", owner, repo, run, "cancel"]) => match run.parse::<u64>() {
            Ok(run) => match inner.cancel_run(owner, repo, run) {
                Ok(()) => Resp::json(202, &json!({})),
                Err(e) => Resp::error(404, &e.to_string()),
            },
            Err(_) => Resp::error(404, "no such run"),
        },
        ("GET", ["runners"]) => ok(&to_json(&inner.state().runners())),
        ("GET", ["calls"]) => ok(&to_json(&inner.state().calls.all())),
        ("GET", ["counts"]) => ok(&to_json(&inner.state().counts())),
        ("GET", ["deliveries"]) => {
            let st = inner.state();
            let v: Vec<Value> = st
                .deliveries
                .iter()
                .map(|d| {
                    let mut item = d.item_json();
                    if let Value::Object(m) = &mut item {
                        m.insert("hook_id".into(), json!(d.hook_id));
                    }
                    item
                })
                .collect();
            ok(&json!(v))
        }
        ("GET", ["faults"]) => ok(&to_json(&inner.faults())),
        ("POST", ["faults"]) => match body::<Fault>(req) {
            Ok(f) => match inner.set_fault(f) {
                Ok(id) => Resp::json(201, &json!({"id": id})),
                Err(e) => Resp::error(422, &e.to_string()),
            },
            Err(r) => r,
        },
        ("DELETE", ["faults"]) => {
            inner.state().faults.clear();
            Resp::empty(204)
        }
        ("POST", ["hooks"]) => {
            let url = req
                .json()
                .ok()
                .and_then(|b| b.get("url").and_then(Value::as_str).map(str::to_owned));
            match url.map(|u| inner.add_hook(&u)) {
                Some(Ok(id)) => Resp::json(201, &json!({"id": id})),
                Some(Err(e)) => Resp::error(422, &e.to_string()),
                None => Resp::error(422, "body must be {\"url\": \"http://...\"}"),
            }
        }
        ("POST", ["installation-tokens", "expire"]) => {
            inner.state().expire_installation_tokens();
            Resp::empty(204)
        }
        ("POST", ["shutdown"]) => {
            inner.request_shutdown();
            Resp::json(202, &json!({}))
        }
        _ => Resp::error(404, "unknown control route"),
    }
}
