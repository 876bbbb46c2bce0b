//! Repository and organisation hooks: listing them, pinging, and the deliveries API (list with
//! cursor paging and `Link`, get one with its request payload, redeliver).

use super::rest::not_found;
use super::{Ctx, authenticate_for, id_param};
use crate::deliveries::page;
use crate::engine::Inner;
use crate::http::{Req, Resp, percent_encode};
use serde_json::{Value, json};

/// `/{repos/o/r | orgs/o}/hooks/...` (segments after `hooks`).
pub fn route(inner: &Inner, req: &Req, ctx: &mut Ctx, owner: Option<&str>, segs: &[&str]) -> Resp {
    if let Err(r) = authenticate_for(inner, req, ctx, owner) {
        return r;
    }
    match (req.method.as_str(), segs) {
        ("GET", []) => list_hooks(inner),
        ("POST", [hid, "pings"]) => match id_param(hid) {
            Ok(h) => ping(inner, h),
            Err(r) => r,
        },
        (_, [hid, "deliveries", rest @ ..]) => match id_param(hid) {
            Ok(h) if inner.state().hooks.iter().any(|x| x.id == h) => {
                deliveries(inner, req, h, rest)
            }
            Ok(_) => not_found(),
            Err(r) => r,
        },
        _ => not_found(),
    }
}

fn list_hooks(inner: &Inner) -> Resp {
    let st = inner.state();
    let hooks: Vec<Value> = st
        .hooks
        .iter()
        .map(|h| {
            json!({
                "type": "Repository",
                "id": h.id,
                "name": "web",
                "active": true,
                "events": ["workflow_job"],
                "config": {"content_type": "json", "insecure_ssl": "0", "url": h.url},
            })
        })
        .collect();
    Resp::json(200, &json!(hooks))
}

fn ping(inner: &Inner, hook_id: u64) -> Resp {
    let out = {
        let st = inner.state();
        let Some(hook) = st.hooks.iter().find(|h| h.id == hook_id).cloned() else {
            return not_found();
        };
        st.ping(&hook, crate::time::now_ms())
    };
    inner.dispatch(vec![out]);
    Resp::empty(204)
}

/// The deliveries endpoints of hook `hook_id` (segments after `deliveries`).
pub fn deliveries(inner: &Inner, req: &Req, hook_id: u64, segs: &[&str]) -> Resp {
    match (req.method.as_str(), segs) {
        ("GET", []) => list(inner, req, hook_id),
        ("GET", [did]) => match id_param(did) {
            Ok(d) => inner
                .state()
                .deliveries
                .iter()
                .find(|x| x.id == d && x.hook_id == hook_id)
                .map_or_else(not_found, |x| Resp::json(200, &x.full_json())),
            Err(r) => r,
        },
        ("POST", [did, "attempts"]) => match id_param(did) {
            Ok(d) if inner.redeliver(hook_id, d) => Resp::json(202, &json!({})),
            Ok(_) => not_found(),
            Err(r) => r,
        },
        _ => not_found(),
    }
}

fn list(inner: &Inner, req: &Req, hook_id: u64) -> Resp {
    let per_page = req
        .query("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let cursor = match req.query("cursor") {
        Some(c) if !c.is_empty() => match c.parse::<u64>() {
            Ok(c) => Some(c),
            Err(_) => return Resp::error(422, "Invalid cursor"),
        },
        _ => None,
    };
    let status = req.query("status");
    let st = inner.state();
    let p = page(&st.deliveries, hook_id, per_page, cursor, status);
    let items: Vec<Value> = p.items.iter().map(|d| d.item_json()).collect();
    let mut resp = Resp::json(200, &json!(items));
    if let Some(next) = p.next_cursor {
        let mut url = format!(
            "{}{}?per_page={per_page}&cursor={next}",
            inner.base_url, req.path
        );
        if let Some(s) = status {
            url.push_str(&format!("&status={}", percent_encode(s)));
        }
        resp = resp.with_header("link", format!("<{url}>; rel=\"next\""));
    }
    resp
}
