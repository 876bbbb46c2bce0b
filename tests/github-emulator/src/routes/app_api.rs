//! GitHub App endpoints (JWT only): installation lookups, installation access tokens, and the
//! app hook's deliveries.

use super::rest::not_found;
use super::{Ctx, authenticate_app, hooks_api, id_param};
use crate::engine::Inner;
use crate::http::{Req, Resp};
use crate::payloads::permissions;
use crate::time::{now_ms, rfc3339};
use serde_json::json;

/// `/app/...` (segments after `app`).
pub fn route(inner: &Inner, req: &Req, ctx: &mut Ctx, segs: &[&str]) -> Resp {
    if let Err(r) = authenticate_app(inner, req, ctx) {
        return r;
    }
    match (req.method.as_str(), segs) {
        ("POST", ["installations", id, "access_tokens"]) => match id_param(id) {
            Ok(id) => access_token(inner, id),
            Err(r) => r,
        },
        ("GET", ["installations"]) => {
            let st = inner.state();
            let list: Vec<_> = st
                .installation_ids()
                .into_iter()
                .filter_map(|id| st.installation_json(id))
                .collect();
            Resp::json(200, &json!(list))
        }
        ("GET", ["installations", id]) => match id_param(id) {
            Ok(id) => inner
                .state()
                .installation_json(id)
                .map_or_else(not_found, |v| Resp::json(200, &v)),
            Err(r) => r,
        },
        (_, ["hook", "deliveries", rest @ ..]) => {
            let hook = inner.state().hooks.first().map(|h| h.id);
            match hook {
                Some(h) => hooks_api::deliveries(inner, req, h, rest),
                None => not_found(),
            }
        }
        _ => not_found(),
    }
}

fn access_token(inner: &Inner, id: u64) -> Resp {
    let minted = inner.state().mint_installation_token(id, now_ms());
    match minted {
        Some((token, exp)) => Resp::json(
            201,
            &json!({
                "token": token,
                "expires_at": rfc3339(exp),
                "permissions": permissions(),
                "repository_selection": "all",
            }),
        ),
        None => not_found(),
    }
}

/// `GET /repos/{o}/{r}/installation`, `/orgs/{o}/installation`, `/users/{u}/installation`.
pub fn installation_of(inner: &Inner, req: &Req, ctx: &mut Ctx, owner: &str) -> Resp {
    if let Err(r) = authenticate_app(inner, req, ctx) {
        return r;
    }
    let mut st = inner.state();
    match st
        .installation_for(owner)
        .and_then(|id| st.installation_json(id))
    {
        Some(v) => Resp::json(200, &v),
        None => not_found(),
    }
}
