//! The HTTP server: a tiny_http listener served by a small fixed pool of threads, with a body
//! cap, the headers every answer carries (`x-github-emulator`, rate limit, request id), and
//! the call log.

use crate::calls::Call;
use crate::engine::Inner;
use crate::http::{Req, Resp};
use crate::ids;
use crate::routes::{self, anonymous_rate};
use crate::time::now_ms;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Serves requests until `inner.stopping` is set.
pub fn serve(inner: Arc<Inner>, server: Arc<tiny_http::Server>) {
    while !inner.stopping.load(Ordering::SeqCst) {
        match server.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(request)) => handle(&inner, request),
            Ok(None) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn handle(inner: &Inner, mut request: tiny_http::Request) {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let url = request.url().to_owned();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.as_str().to_owned(),
            )
        })
        .collect();
    let declared = request.body_length().unwrap_or(0);
    let mut body = Vec::new();
    let too_big = if declared > inner.max_body {
        true
    } else {
        let limit = u64::try_from(inner.max_body).unwrap_or(u64::MAX) + 1;
        let read = request.as_reader().take(limit).read_to_end(&mut body);
        read.is_err() || body.len() > inner.max_body
    };
    let req = Req::new(
        &method,
        &url,
        headers,
        if too_big { Vec::new() } else { body },
    );
    let (resp, ctx) = if too_big {
        (
            Resp::error(413, "Payload too large"),
            routes::Ctx::default(),
        )
    } else {
        routes::handle(inner, &req)
    };
    let rate = ctx.rate.unwrap_or_else(anonymous_rate);
    let mut out = tiny_http::Response::from_data(resp.body).with_status_code(resp.status);
    let mut all = resp.headers;
    all.push(("x-github-emulator".into(), "anklet-rs".into()));
    all.push(("x-github-request-id".into(), ids::request_id()));
    all.push(("x-github-api-version-selected".into(), "2022-11-28".into()));
    all.extend(rate.headers());
    for (k, v) in all {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            out.add_header(h);
        }
    }
    // Logged before answering, so a client that got its answer finds the call in the log.
    inner.state().calls.push(Call {
        seq: 0,
        at_ms: now_ms(),
        method,
        path: req.path,
        status: resp.status,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        principal: ctx.principal,
        fault: ctx.fault,
    });
    let _ = request.respond(out);
}
