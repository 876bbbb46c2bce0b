//! The running emulator's shared core: the state lock, the channel to the delivery worker,
//! and the step that turns an operation's outbound work into deliveries and timers (applying
//! the delivery faults on the way).

use crate::deliveries::Delivery;
use crate::faults::DeliveryFault;
use crate::hmac_sign::signature;
use crate::ids;
use crate::state::{Outbound, State, TimerAction, WebhookEvent};
use crate::time::now_ms;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One delivery ready to send.
#[derive(Clone, Debug)]
pub struct Pending {
    /// Hook id.
    pub hook_id: u64,
    /// Receiver URL.
    pub url: String,
    /// `X-GitHub-Delivery`.
    pub guid: String,
    /// Event name.
    pub event: String,
    /// Payload `action`.
    pub action: Option<String>,
    /// Payload.
    pub payload: Value,
    /// Request headers (signature included).
    pub headers: Vec<(String, String)>,
    /// Body bytes (what was signed).
    pub body: Vec<u8>,
    /// Redelivery through the API.
    pub redelivery: bool,
    /// For the deliveries API.
    pub installation_id: Option<u64>,
    /// For the deliveries API.
    pub repository_id: Option<u64>,
}

/// What the worker is asked to do.
#[derive(Debug)]
pub enum Work {
    /// Send now (twice when `duplicate`).
    Send {
        /// The delivery.
        pending: Box<Pending>,
        /// Send it twice.
        duplicate: bool,
    },
    /// Hold back, send after a later delivery or at the deadline.
    Hold {
        /// The delivery.
        pending: Box<Pending>,
        /// Latest send time.
        until: Instant,
    },
    /// Run a timer action at `at`.
    Timer {
        /// When.
        at: Instant,
        /// What.
        action: TimerAction,
    },
    /// Stop the worker.
    Stop,
}

/// Shared by the server threads, the worker and the handle.
pub struct Inner {
    state: Mutex<State>,
    work: Mutex<Sender<Work>>,
    /// Webhook secret (never logged).
    pub secret: Option<String>,
    /// Timeout of one delivery.
    pub webhook_timeout: Duration,
    /// Largest request body.
    pub max_body: usize,
    /// `http://host:port`.
    pub base_url: String,
    /// Deliveries and timers not done yet.
    pub pending: AtomicUsize,
    /// Set when shutting down.
    pub stopping: AtomicBool,
    shutdown_asked: Mutex<bool>,
    shutdown_cv: Condvar,
}

impl Inner {
    /// Wraps the state and the worker channel.
    pub fn new(
        state: State,
        work: Sender<Work>,
        secret: Option<String>,
        webhook_timeout: Duration,
        max_body: usize,
        base_url: String,
    ) -> Self {
        Self {
            state: Mutex::new(state),
            work: Mutex::new(work),
            secret,
            webhook_timeout,
            max_body,
            base_url,
            pending: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            shutdown_asked: Mutex::new(false),
            shutdown_cv: Condvar::new(),
        }
    }

    /// Records that someone (the control API) asked the emulator to stop.
    pub fn request_shutdown(&self) {
        let mut asked = self
            .shutdown_asked
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *asked = true;
        self.shutdown_cv.notify_all();
    }

    /// Blocks until a shutdown is asked for.
    pub fn wait_shutdown_request(&self) {
        let mut asked = self
            .shutdown_asked
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        while !*asked {
            asked = self
                .shutdown_cv
                .wait(asked)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The state, locked (a poisoned lock is taken over: the state stays usable for tests).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send_work(&self, w: Work) {
        let counts = !matches!(w, Work::Stop);
        if counts {
            self.pending.fetch_add(1, Ordering::SeqCst);
        }
        let tx = self.work.lock().unwrap_or_else(|p| p.into_inner());
        if tx.send(w).is_err() && counts {
            self.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Asks the worker to stop.
    pub fn stop_worker(&self) {
        self.send_work(Work::Stop);
    }

    /// Carries out an operation's outbound work.
    pub fn dispatch(&self, out: Vec<Outbound>) {
        for o in out {
            match o {
                Outbound::Timer { after, action } => self.send_work(Work::Timer {
                    at: Instant::now() + after,
                    action,
                }),
                Outbound::Webhook(ev) => self.deliver_event(&ev),
            }
        }
    }

    fn deliver_event(&self, ev: &WebhookEvent) {
        let body = ev.payload.to_string().into_bytes();
        let guid = ids::guid();
        let hooks: Vec<_> = {
            let st = self.state();
            st.hooks
                .iter()
                .filter(|h| ev.only_hook.is_none_or(|id| id == h.id))
                .cloned()
                .collect()
        };
        for hook in hooks {
            let mut headers = vec![
                ("Accept".to_owned(), "*/*".to_owned()),
                ("Content-Type".to_owned(), "application/json".to_owned()),
                (
                    "User-Agent".to_owned(),
                    "GitHub-Hookshot/emulator".to_owned(),
                ),
                ("X-GitHub-Delivery".to_owned(), guid.clone()),
                ("X-GitHub-Event".to_owned(), ev.event.clone()),
                ("X-GitHub-Hook-ID".to_owned(), hook.id.to_string()),
                (
                    "X-GitHub-Hook-Installation-Target-ID".to_owned(),
                    ev.target.1.to_string(),
                ),
                (
                    "X-GitHub-Hook-Installation-Target-Type".to_owned(),
                    ev.target.0.clone(),
                ),
                ("X-GitHub-Emulator".to_owned(), "anklet-rs".to_owned()),
            ];
            if let Some(secret) = &self.secret {
                headers.push(("X-Hub-Signature-256".to_owned(), signature(secret, &body)));
            }
            let pending = Pending {
                hook_id: hook.id,
                url: hook.url.clone(),
                guid: guid.clone(),
                event: ev.event.clone(),
                action: ev.action.clone(),
                payload: ev.payload.clone(),
                headers,
                body: body.clone(),
                redelivery: false,
                installation_id: ev.installation_id,
                repository_id: ev.repository_id,
            };
            let fault = self.state().faults.delivery(Instant::now());
            match fault {
                DeliveryFault::None => self.send_work(Work::Send {
                    pending: Box::new(pending),
                    duplicate: false,
                }),
                DeliveryFault::Duplicate => self.send_work(Work::Send {
                    pending: Box::new(pending),
                    duplicate: true,
                }),
                DeliveryFault::Hold(d) => self.send_work(Work::Hold {
                    pending: Box::new(pending),
                    until: Instant::now() + d,
                }),
                DeliveryFault::Lost => self.record_lost(&pending),
            }
        }
    }

    /// Records a delivery that was never sent as GitHub shows a failed one.
    fn record_lost(&self, p: &Pending) {
        let mut st = self.state();
        let id = st.next_delivery_id();
        st.deliveries.push(Delivery {
            id,
            guid: p.guid.clone(),
            hook_id: p.hook_id,
            delivered_at_ms: now_ms(),
            redelivery: p.redelivery,
            duration_s: 0.0,
            status: "Invalid HTTP Response: 502".into(),
            status_code: 502,
            event: p.event.clone(),
            action: p.action.clone(),
            installation_id: p.installation_id,
            repository_id: p.repository_id,
            url: p.url.clone(),
            request_headers: p.headers.clone(),
            payload: p.payload.clone(),
            response_headers: Vec::new(),
            response_body: String::new(),
        });
    }

    /// Sends delivery `id` again (same GUID, `redelivery: true`); `false` when unknown.
    pub fn redeliver(&self, hook_id: u64, id: u64) -> bool {
        let found = {
            let st = self.state();
            st.deliveries
                .iter()
                .find(|d| d.id == id && d.hook_id == hook_id)
                .map(|d| {
                    let body = d.payload.to_string().into_bytes();
                    let mut headers: Vec<(String, String)> = d
                        .request_headers
                        .iter()
                        .filter(|(k, _)| !k.eq_ignore_ascii_case("X-Hub-Signature-256"))
                        .cloned()
                        .collect();
                    if let Some(secret) = &self.secret {
                        headers.push(("X-Hub-Signature-256".to_owned(), signature(secret, &body)));
                    }
                    let url = st
                        .hooks
                        .iter()
                        .find(|h| h.id == hook_id)
                        .map_or_else(|| d.url.clone(), |h| h.url.clone());
                    Pending {
                        hook_id,
                        url,
                        guid: d.guid.clone(),
                        event: d.event.clone(),
                        action: d.action.clone(),
                        payload: d.payload.clone(),
                        headers,
                        body,
                        redelivery: true,
                        installation_id: d.installation_id,
                        repository_id: d.repository_id,
                    }
                })
        };
        match found {
            Some(p) => {
                self.send_work(Work::Send {
                    pending: Box::new(p),
                    duplicate: false,
                });
                true
            }
            None => false,
        }
    }
}
