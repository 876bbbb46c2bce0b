//! The GitHub REST surface: splits a path into its registration level (repo, org,
//! enterprise) and hands it to the endpoint family that owns it.

use super::{Ctx, app_api, hooks_api, jobs_api, runner_api};
use crate::engine::Inner;
use crate::http::{Req, Resp};
use crate::runners::Scope;
use crate::time::now_ms;

/// Answers a REST call, recording what it learned in `ctx`.
pub fn route(inner: &Inner, req: &Req, ctx: &mut Ctx) -> Resp {
    if req.header("user-agent").is_none_or(str::is_empty) {
        // GitHub refuses API calls without a User-Agent.
        return Resp::error(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
        );
    }
    let segs = req.segments();
    let m = req.method.as_str();
    match (m, segs.as_slice()) {
        ("GET", ["rate_limit"]) => rate_limit(inner, req, ctx),
        (_, ["app", ..]) => app_api::route(inner, req, ctx, &segs[1..]),
        ("GET", ["repos", o, _, "installation"])
        | ("GET", ["orgs", o, "installation"])
        | ("GET", ["users", o, "installation"]) => app_api::installation_of(inner, req, ctx, o),
        (_, ["repos", o, r, rest @ ..]) => {
            let scope = Scope::Repo {
                owner: (*o).to_owned(),
                repo: (*r).to_owned(),
            };
            match rest {
                ["actions", "jobs", ..] | ["actions", "runs", ..] => {
                    jobs_api::route(inner, req, ctx, o, r, &rest[2..], rest[1])
                }
                ["hooks", ..] => hooks_api::route(inner, req, ctx, Some(o), &rest[1..]),
                ["actions", "runners", ..] => runner_api::route(inner, req, ctx, scope, &rest[2..]),
                _ => not_found(),
            }
        }
        ("GET", ["orgs", o, "actions", "runner-groups"]) => runner_api::groups(
            inner,
            req,
            ctx,
            Scope::Org {
                org: (*o).to_owned(),
            },
        ),
        ("GET", ["enterprises", e, "actions", "runner-groups"]) => runner_api::groups(
            inner,
            req,
            ctx,
            Scope::Enterprise {
                enterprise: (*e).to_owned(),
            },
        ),
        (_, ["orgs", o, rest @ ..]) => match rest {
            ["hooks", ..] => hooks_api::route(inner, req, ctx, Some(o), &rest[1..]),
            ["actions", "runners", ..] => runner_api::route(
                inner,
                req,
                ctx,
                Scope::Org {
                    org: (*o).to_owned(),
                },
                &rest[2..],
            ),
            _ => not_found(),
        },
        (_, ["enterprises", e, "actions", "runners", rest @ ..]) => runner_api::route(
            inner,
            req,
            ctx,
            Scope::Enterprise {
                enterprise: (*e).to_owned(),
            },
            rest,
        ),
        _ => not_found(),
    }
}

/// GitHub's 404.
pub fn not_found() -> Resp {
    Resp::error(404, "Not Found")
}

fn rate_limit(inner: &Inner, req: &Req, ctx: &mut Ctx) -> Resp {
    let Some(cred) = crate::auth::credential(req) else {
        let r = super::anonymous_rate();
        return Resp::json(
            200,
            &inner.state().templates.rate_limit(r.limit, r.used, r.reset),
        );
    };
    let now = now_ms();
    let mut st = inner.state();
    let Some(p) = st.principal_for(cred.token, now) else {
        return Resp::error(401, "Bad credentials");
    };
    let limit = st.rate_limit;
    let info = st.rate.peek(&p.bucket(), limit, now / 1000);
    ctx.principal = Some(p);
    ctx.rate = Some(info);
    Resp::json(
        200,
        &st.templates.rate_limit(info.limit, info.used, info.reset),
    )
}
