//! Request routing: the control API under `/_emulator/`, the emulated runner service, and the
//! GitHub REST endpoints; plus what every answer shares (faults applied first, credentials,
//! rate counting and the `x-ratelimit-*` headers).

mod app_api;
mod control;
mod hooks_api;
mod jobs_api;
mod rest;
mod runner_api;
mod runner_service;

use crate::auth::{self, Principal};
use crate::engine::Inner;
use crate::faults::RequestFault;
use crate::http::{Req, Resp};
use crate::jit::RUNNER_SERVICE_PATH;
use crate::rate::RateInfo;
use crate::time::now_ms;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What the routing learned about a call, for the log and the headers.
#[derive(Debug, Default)]
pub struct Ctx {
    /// Who made it.
    pub principal: Option<Principal>,
    /// The fault that shaped the answer.
    pub fault: Option<String>,
    /// The bucket numbers for the headers.
    pub rate: Option<RateInfo>,
}

/// Answers one request.
pub fn handle(inner: &Inner, req: &Req) -> (Resp, Ctx) {
    let mut ctx = Ctx::default();
    let is_service = req.path.starts_with(RUNNER_SERVICE_PATH);
    if req.path.starts_with("/_emulator/") && !is_service {
        return (control::route(inner, req), ctx);
    }
    if let Some(resp) = apply_faults(inner, req, &mut ctx) {
        return (resp, ctx);
    }
    let resp = if is_service {
        runner_service::route(inner, req, &mut ctx)
    } else {
        rest::route(inner, req, &mut ctx)
    };
    (resp, ctx)
}

fn apply_faults(inner: &Inner, req: &Req, ctx: &mut Ctx) -> Option<Resp> {
    let delay = inner
        .state()
        .faults
        .slow(&req.method, &req.path, Instant::now());
    if let Some(d) = delay {
        ctx.fault = Some(format!("slow {} ms", d.as_millis()));
        // In small steps, so a shutdown never waits for a long delay.
        let end = Instant::now() + d;
        while !inner.stopping.load(Ordering::SeqCst) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
    let fault = inner
        .state()
        .faults
        .request(&req.method, &req.path, Instant::now())?;
    let now_s = now_ms() / 1000;
    Some(match fault {
        RequestFault::ServerError(status) => {
            ctx.fault = Some(format!("server_error {status}"));
            Resp::error(status, "Server Error (emulated fault)")
        }
        RequestFault::PrimaryRateLimit { reset_in_s } => {
            ctx.fault = Some("primary_rate_limit".into());
            let limit = inner.state().rate_limit;
            ctx.rate = Some(RateInfo {
                limit,
                used: limit,
                reset: now_s + reset_in_s,
            });
            Resp::error(
                403,
                "API rate limit exceeded for this credential. (emulated fault)",
            )
        }
        RequestFault::SecondaryRateLimit {
            status,
            retry_after_s,
        } => {
            ctx.fault = Some(format!("secondary_rate_limit {status}"));
            Resp::error(
                status,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. (emulated fault)",
            )
            .with_header("retry-after", retry_after_s.to_string())
        }
    })
}

/// The bucket numbers for a call made without a known credential.
pub fn anonymous_rate() -> RateInfo {
    RateInfo {
        limit: 60,
        used: 0,
        reset: now_ms() / 1000 + 3600,
    }
}

/// Authenticates a REST call made with a PAT or an installation token and counts it against
/// the caller's primary limit.
pub fn authenticate(inner: &Inner, req: &Req, ctx: &mut Ctx) -> Result<Principal, Resp> {
    let Some(cred) = auth::credential(req) else {
        return Err(Resp::error(401, "Requires authentication"));
    };
    let now = now_ms();
    let mut st = inner.state();
    let Some(p) = st.principal_for(cred.token, now) else {
        return Err(Resp::error(401, "Bad credentials"));
    };
    ctx.principal = Some(p.clone());
    let limit = st.rate_limit;
    match st.rate.hit(&p.bucket(), limit, now / 1000) {
        Ok(info) => {
            ctx.rate = Some(info);
            Ok(p)
        }
        Err(info) => {
            ctx.rate = Some(info);
            Err(Resp::error(
                403,
                "API rate limit exceeded for this credential.",
            ))
        }
    }
}

/// Authenticates an app endpoint: a valid app JWT with `Bearer`.
pub fn authenticate_app(inner: &Inner, req: &Req, ctx: &mut Ctx) -> Result<(), Resp> {
    let Some(cred) = auth::credential(req) else {
        return Err(Resp::error(401, "Requires authentication"));
    };
    let now = now_ms();
    let mut st = inner.state();
    let Some(app) = st.app.as_ref() else {
        return Err(Resp::error(401, "A JSON web token could not be decoded"));
    };
    if !cred.bearer || !auth::looks_like_jwt(cred.token) {
        return Err(Resp::error(401, "A JSON web token could not be decoded"));
    }
    app.verify(cred.token, i64::try_from(now / 1000).unwrap_or(i64::MAX))
        .map_err(|m| Resp::error(401, &m))?;
    ctx.principal = Some(Principal::App);
    let limit = st.rate_limit;
    match st.rate.hit("app", limit, now / 1000) {
        Ok(info) => {
            ctx.rate = Some(info);
            Ok(())
        }
        Err(info) => {
            ctx.rate = Some(info);
            Err(Resp::error(
                403,
                "API rate limit exceeded for this credential.",
            ))
        }
    }
}

/// Authenticates and checks that the caller may act on `owner` (an installation token only on
/// its own account, as GitHub answers 403 otherwise).
pub fn authenticate_for(
    inner: &Inner,
    req: &Req,
    ctx: &mut Ctx,
    owner: Option<&str>,
) -> Result<Principal, Resp> {
    let p = authenticate(inner, req, ctx)?;
    let allowed = match owner {
        Some(o) => inner.state().may_access(&p, o),
        None => matches!(p, Principal::Pat { .. }),
    };
    if allowed {
        Ok(p)
    } else {
        Err(Resp::error(403, "Resource not accessible by integration"))
    }
}

/// Parses a numeric path parameter.
pub fn id_param(s: &str) -> Result<u64, Resp> {
    s.parse().map_err(|_| Resp::error(404, "Not Found"))
}

/// `per_page` (default 30, at most 100) and `page` (from 1).
pub fn paging(req: &Req) -> (usize, usize) {
    let per_page = req
        .query("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = req
        .query("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    (per_page, page)
}
