//! The delivery worker: one thread that POSTs webhooks (with a timeout, over plain HTTP),
//! records each attempt for the deliveries API, releases held-back deliveries after a later
//! one (out-of-order fault), and fires timers.

use crate::deliveries::Delivery;
use crate::engine::{Inner, Pending, Work};
use crate::state::TimerAction;
use crate::time::now_ms;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const RESPONSE_CAP: u64 = 64 * 1024;

/// Runs until [`Work::Stop`] or until every sender is gone.
pub fn run(inner: Arc<Inner>, rx: Receiver<Work>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(inner.webhook_timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let mut held: Vec<(Pending, Instant)> = Vec::new();
    let mut timers: Vec<(Instant, TimerAction)> = Vec::new();
    loop {
        let next = held
            .iter()
            .map(|(_, t)| *t)
            .chain(timers.iter().map(|(t, _)| *t))
            .min();
        let wait = next.map_or(Duration::from_millis(500), |t| {
            t.saturating_duration_since(Instant::now())
        });
        match rx.recv_timeout(wait) {
            Ok(Work::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            Ok(Work::Send { pending, duplicate }) => {
                send(&inner, &agent, &pending);
                if duplicate {
                    send(&inner, &agent, &pending);
                }
                done(&inner);
                // Held deliveries now arrive after a later one.
                for (p, _) in held.drain(..) {
                    send(&inner, &agent, &p);
                    done(&inner);
                }
            }
            Ok(Work::Hold { pending, until }) => held.push((*pending, until)),
            Ok(Work::Timer { at, action }) => timers.push((at, action)),
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        let (due, keep): (Vec<_>, Vec<_>) = held.drain(..).partition(|(_, t)| *t <= now);
        held = keep;
        for (p, _) in due {
            send(&inner, &agent, &p);
            done(&inner);
        }
        let (due, keep): (Vec<_>, Vec<_>) = timers.drain(..).partition(|(t, _)| *t <= now);
        timers = keep;
        for (_, action) in due {
            let out = inner.state().on_timer(&action, now_ms());
            inner.dispatch(out);
            done(&inner);
        }
    }
}

fn done(inner: &Inner) {
    inner.pending.fetch_sub(1, Ordering::SeqCst);
}

/// POSTs one delivery and records the attempt.
fn send(inner: &Inner, agent: &ureq::Agent, p: &Pending) {
    let started = Instant::now();
    let delivered_at_ms = now_ms();
    let mut req = agent.post(&p.url);
    for (k, v) in &p.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let (status_code, status, response_headers, response_body) = match req.send(&p.body[..]) {
        Ok(mut resp) => {
            let code = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let mut body = String::new();
            let mut reader = resp.body_mut().as_reader().take(RESPONSE_CAP);
            let _ = reader.read_to_string(&mut body);
            let status = if (200..400).contains(&code) {
                "OK".to_owned()
            } else {
                format!("Invalid HTTP Response: {code}")
            };
            (code, status, headers, body)
        }
        Err(ureq::Error::Timeout(_)) => (0, "timed out".to_owned(), Vec::new(), String::new()),
        Err(_) => (0, "failed to connect".to_owned(), Vec::new(), String::new()),
    };
    let mut st = inner.state();
    let id = st.next_delivery_id();
    st.deliveries.push(Delivery {
        id,
        guid: p.guid.clone(),
        hook_id: p.hook_id,
        delivered_at_ms,
        redelivery: p.redelivery,
        duration_s: started.elapsed().as_secs_f64(),
        status,
        status_code,
        event: p.event.clone(),
        action: p.action.clone(),
        installation_id: p.installation_id,
        repository_id: p.repository_id,
        url: p.url.clone(),
        request_headers: p.headers.clone(),
        payload: p.payload.clone(),
        response_headers,
        response_body,
    });
}
