//! Self-hosted runner endpoints at any level (repo, org, enterprise): registration and remove
//! tokens, JIT configs, and list/get/delete of runners.

use super::rest::not_found;
use super::{Ctx, authenticate_for, id_param, paging};
use crate::engine::Inner;
use crate::http::{Req, Resp, percent_encode};
use crate::jit;
use crate::payloads;
use crate::runners::Scope;
use crate::time::{now_ms, rfc3339};
use serde_json::{Value, json};

fn owner_of(scope: &Scope) -> Option<&str> {
    match scope {
        Scope::Repo { owner, .. } => Some(owner),
        Scope::Org { org } => Some(org),
        Scope::Enterprise { .. } => None,
    }
}

/// `.../actions/runners/...` (segments after `runners`).
pub fn route(inner: &Inner, req: &Req, ctx: &mut Ctx, scope: Scope, segs: &[&str]) -> Resp {
    if let Err(r) = authenticate_for(inner, req, ctx, owner_of(&scope)) {
        return r;
    }
    match (req.method.as_str(), segs) {
        ("POST", ["registration-token"]) => token(inner, scope, false),
        ("POST", ["remove-token"]) => token(inner, scope, true),
        ("POST", ["generate-jitconfig"]) => generate_jit(inner, req, scope),
        ("GET", []) => list(inner, req, &scope),
        ("GET", [id]) => match id_param(id) {
            Ok(id) => inner
                .state()
                .runner(id)
                .filter(|r| r.scope.same(&scope))
                .map_or_else(not_found, |r| Resp::json(200, &payloads::runner(r))),
            Err(r) => r,
        },
        ("DELETE", [id]) => match id_param(id) {
            Ok(id) => match inner.state().delete_runner(&scope, id) {
                Ok(()) => Resp::empty(204),
                Err((status, msg)) => Resp::error(status, &msg),
            },
            Err(r) => r,
        },
        _ => not_found(),
    }
}

/// `GET {org|enterprise}/actions/runner-groups`: the emulator has one group, `Default` (id 1),
/// the group every JIT runner is put in.
pub fn groups(inner: &Inner, req: &Req, ctx: &mut Ctx, scope: Scope) -> Resp {
    if let Err(r) = authenticate_for(inner, req, ctx, owner_of(&scope)) {
        return r;
    }
    let runners_url = format!(
        "{}/{}/actions/runner-groups/1/runners",
        inner.base_url,
        match &scope {
            Scope::Org { org } => format!("orgs/{org}"),
            Scope::Enterprise { enterprise } => format!("enterprises/{enterprise}"),
            Scope::Repo { owner, repo } => format!("repos/{owner}/{repo}"),
        }
    );
    Resp::json(
        200,
        &json!({
            "total_count": 1,
            "runner_groups": [{
                "id": 1,
                "name": "Default",
                "visibility": "all",
                "default": true,
                "runners_url": runners_url,
                "inherited": false,
                "allows_public_repositories": true,
                "restricted_to_workflows": false,
                "selected_workflows": [],
                "workflow_restrictions_read_only": false
            }]
        }),
    )
}

fn token(inner: &Inner, scope: Scope, remove: bool) -> Resp {
    let (token, exp) = inner.state().issue_runner_token(scope, remove, now_ms());
    Resp::json(201, &json!({"token": token, "expires_at": rfc3339(exp)}))
}

fn generate_jit(inner: &Inner, req: &Req, scope: Scope) -> Resp {
    let body = match req.json() {
        Ok(v) => v,
        Err(m) => return Resp::error(400, &m),
    };
    let invalid = |what: &str| Resp::error(422, &format!("Invalid request.\n\n{what}"));
    let Some(name) = body
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        return invalid("\"name\" wasn't supplied.");
    };
    if body
        .get("runner_group_id")
        .and_then(Value::as_u64)
        .is_none()
    {
        return invalid("\"runner_group_id\" wasn't supplied.");
    }
    let labels: Option<Vec<String>> = body.get("labels").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    });
    let labels = match labels {
        Some(l) if !l.is_empty() && l.len() <= 100 => l,
        _ => return invalid("\"labels\" must have 1 to 100 items."),
    };
    let work_folder = body
        .get("work_folder")
        .and_then(Value::as_str)
        .unwrap_or("_work")
        .to_owned();
    let made = inner.state().create_runner(scope, name, labels, true, true);
    match made {
        Ok(new) => {
            let file = jit::runner_file(&inner.base_url, &new.runner, &work_folder);
            let encoded = jit::encode(&file, &jit::credentials_file(&new.token));
            inner
                .state()
                .record_secret(crate::state::SecretKind::JitConfig, &encoded, None);
            Resp::json(
                201,
                &json!({"runner": payloads::runner(&new.runner), "encoded_jit_config": encoded}),
            )
        }
        Err((status, msg)) => Resp::error(status, &msg),
    }
}

fn list(inner: &Inner, req: &Req, scope: &Scope) -> Resp {
    let (per_page, page) = paging(req);
    let name = req.query("name").filter(|n| !n.is_empty());
    let st = inner.state();
    let all: Vec<Value> = st
        .runners_at(scope)
        .into_iter()
        .filter(|r| name.is_none_or(|n| r.name == n))
        .map(payloads::runner)
        .collect();
    let total = all.len();
    let runners: Vec<Value> = all
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut resp = Resp::json(200, &json!({"total_count": total, "runners": runners}));
    let last = total.div_ceil(per_page).max(1);
    if page < last {
        let mut base = format!("{}{}?per_page={per_page}", inner.base_url, req.path);
        if let Some(n) = name {
            base.push_str(&format!("&name={}", percent_encode(n)));
        }
        resp = resp.with_header(
            "link",
            format!(
                "<{base}&page={}>; rel=\"next\", <{base}&page={last}>; rel=\"last\"",
                page + 1
            ),
        );
    }
    resp
}
