//! The webhook receiver as a sans-IO machine: HTTP requests in, store operations and HTTP
//! responses out.
//!
//! ```text
//! runtime HTTP server                         Receiver
//!   request (body ≤ 25 MiB) ───────────────▶ handle_request(now, id, request)
//!   poll_effect() ◀──────────────────────── Store { op } | Respond { .. } | Notice
//!   store answer ──────────────────────────▶ handle_store_result(now, id, result)
//!   poll_effect() ◀──────────────────────── Respond { 200 }  (only now: the event is stored)
//! ```
//!
//! Rules that fix Anklet's receiver: a delivery is answered 2xx only after the store confirmed
//! its operation (a store failure answers 503, so GitHub records the delivery as failed and
//! redelivery recovers it); a missing or wrong `X-Hub-Signature-256` answers 401 (Anklet
//! answers 200); a malformed body answers 400. Events we do not handle answer 200 so GitHub
//! does not retry them. Duplicate deliveries (same `X-GitHub-Delivery`) are answered from a
//! bounded memory; the store is idempotent on job ids, so redeliveries and reordered events
//! are harmless.

mod recent;
pub mod redeliver;
mod request;

pub use request::{BodyError, HttpRequest, HttpResponse, MAX_BODY_BYTES, RequestId, event_json};

use crate::github::webhook::{Delivery, parse_delivery, verify_signature};
use crate::handler::GithubJobStatus;
use crate::ids::{EffectId, JobId};
use crate::queue::txn::{Op, Reply};
use crate::secret::Secret;
use crate::time::Timestamp;
use recent::RecentDeliveries;
use serde_json::json;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// The route GitHub posts webhooks to (Anklet's).
pub const RECEIVER_ROUTE: &str = "/jobs/v1/receiver";

/// The route load balancers and operators probe.
pub const HEALTHCHECK_ROUTE: &str = "/healthcheck";

/// What the receiver needs to know.
#[derive(Clone, Debug)]
pub struct ReceiverSettings {
    /// The webhook secret (`secret` of the `github_receiver` plugin).
    pub secret: Secret,
    /// How many delivery GUIDs to remember for duplicate detection.
    pub recent_deliveries: usize,
    /// Deadline of one store operation; GitHub itself gives up after 10 s.
    pub store_timeout: Duration,
}

impl ReceiverSettings {
    /// Settings with defaults for everything but the secret.
    pub fn new(secret: Secret) -> Self {
        Self {
            secret,
            recent_deliveries: 10_000,
            store_timeout: Duration::from_secs(8),
        }
    }
}

/// One request from the receiver to its runtime.
#[derive(Clone, Debug, PartialEq)]
pub enum ReceiverEffect {
    /// Send this response to the request.
    Respond {
        /// The request answered.
        request: RequestId,
        /// The answer.
        response: HttpResponse,
    },
    /// Run this queue operation and report with [`Receiver::handle_store_result`].
    Store {
        /// Correlates the result.
        id: EffectId,
        /// Deadline after which the runtime abandons the call and reports a failure.
        timeout: Duration,
        /// The operation (always [`Op::Enqueue`] or [`Op::Status`] here).
        op: Op,
    },
    /// Something worth logging or counting; needs no result.
    Notice(ReceiverNotice),
}

/// Observations for logs and metrics; none carries a secret or a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceiverNotice {
    /// A delivery was stored and answered 200.
    Accepted {
        /// `X-GitHub-Delivery`.
        delivery: String,
        /// The job.
        job: JobId,
        /// What the store did (`enqueued`, `already_known`, `recorded`, ...).
        outcome: &'static str,
    },
    /// A stored status change that handlers of this process should hear about at once.
    JobNews {
        /// The job.
        job: JobId,
        /// Its new status.
        status: GithubJobStatus,
    },
    /// A new job entered the queue: wake idle claimers.
    Enqueued {
        /// The job.
        job: JobId,
    },
    /// A delivery was answered without a store operation (ping, ignored event, duplicate).
    Answered {
        /// `X-GitHub-Delivery`, or empty.
        delivery: String,
        /// Why no store operation was needed.
        detail: String,
    },
    /// A request was refused with a 4xx.
    Refused {
        /// `X-GitHub-Delivery`, or empty.
        delivery: String,
        /// The status sent.
        status: u16,
        /// Why.
        detail: String,
    },
    /// The store failed; the delivery was answered 503 so GitHub keeps it as failed.
    StoreFailed {
        /// `X-GitHub-Delivery`.
        delivery: String,
        /// The store's error (never a secret).
        detail: String,
    },
}

/// What [`Receiver::check`] made of a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Checked {
    /// Answer this at once (health check, unknown routes).
    Answer(HttpResponse),
    /// Refuse with a 4xx (and a [`ReceiverNotice::Refused`]).
    Refused {
        /// `X-GitHub-Delivery`, or empty.
        delivery: String,
        /// The status to send.
        status: u16,
        /// Why.
        detail: String,
    },
    /// A verified, parsed delivery for [`Receiver::handle_delivery`].
    Delivery {
        /// `X-GitHub-Delivery`, or empty.
        delivery: String,
        /// What it means.
        parsed: Delivery,
    },
}

fn refused(delivery: &str, status: u16, detail: &str) -> Checked {
    Checked::Refused {
        delivery: delivery.to_owned(),
        status,
        detail: detail.to_owned(),
    }
}

/// A `POST` to the receiver route: signature first, then the event's JSON.
fn webhook(settings: &ReceiverSettings, req: &HttpRequest) -> Checked {
    let delivery = req.header_value("X-GitHub-Delivery").unwrap_or("");
    let signature = req.header_value("X-Hub-Signature-256");
    if let Err(e) = verify_signature(&settings.secret, &req.body, signature) {
        return refused(delivery, 401, &e.to_string());
    }
    let Some(event) = req.header_value("X-GitHub-Event") else {
        return refused(delivery, 400, "missing X-GitHub-Event header");
    };
    let json = match event_json(req.header_value("Content-Type"), &req.body) {
        Ok(json) => json,
        Err(e) => return refused(delivery, 400, &e.to_string()),
    };
    match parse_delivery(event, &json) {
        Ok(parsed) => Checked::Delivery {
            delivery: delivery.to_owned(),
            parsed,
        },
        Err(e) => refused(delivery, 400, &e.to_string()),
    }
}

/// A store operation in flight for a request.
#[derive(Clone, Debug)]
struct Pending {
    request: RequestId,
    delivery: String,
    job: JobId,
    news: Option<GithubJobStatus>,
}

/// The receiver machine. See the module docs.
#[derive(Debug)]
pub struct Receiver {
    settings: ReceiverSettings,
    recent: RecentDeliveries,
    pending: BTreeMap<EffectId, Pending>,
    effects: VecDeque<ReceiverEffect>,
    next_id: u64,
}

impl Receiver {
    /// A receiver with no history.
    pub fn new(settings: ReceiverSettings) -> Self {
        Self {
            recent: RecentDeliveries::new(settings.recent_deliveries),
            settings,
            pending: BTreeMap::new(),
            effects: VecDeque::new(),
            next_id: 0,
        }
    }

    /// Takes one request. Every request gets exactly one [`ReceiverEffect::Respond`], at once
    /// or after its store operation. The same as [`Receiver::check`] then
    /// [`Receiver::handle_checked`].
    pub fn handle_request(&mut self, _now: Timestamp, request: RequestId, req: HttpRequest) {
        let checked = Self::check(&self.settings, &req);
        self.handle_checked(request, checked);
    }

    /// The part of a request's handling that needs no receiver state: the route, the
    /// signature (HMAC-SHA256 over the body) and the parsing. A runtime serving requests
    /// concurrently runs it outside the lock around its receiver, so only
    /// [`Receiver::handle_checked`] is serialised.
    pub fn check(settings: &ReceiverSettings, req: &HttpRequest) -> Checked {
        let route = req.route();
        if route == HEALTHCHECK_ROUTE {
            return Checked::Answer(if req.method == "GET" || req.method == "HEAD" {
                HttpResponse::text(200, "ok")
            } else {
                HttpResponse::text(405, "use GET /healthcheck")
            });
        }
        if route == RECEIVER_ROUTE {
            if req.method != "POST" {
                return refused("", 405, "use POST /jobs/v1/receiver");
            }
            return webhook(settings, req);
        }
        if route == "/jobs" || route.starts_with("/jobs/") {
            return Checked::Answer(HttpResponse::text(501, "please use /jobs/v1"));
        }
        Checked::Answer(HttpResponse::text(
            404,
            format!("no route {route}: webhooks go to POST {RECEIVER_ROUTE}"),
        ))
    }

    /// Takes what [`Receiver::check`] made of a request: answers it, or starts its store
    /// operation.
    pub fn handle_checked(&mut self, request: RequestId, checked: Checked) {
        match checked {
            Checked::Answer(response) => self.respond(request, response),
            Checked::Refused {
                delivery,
                status,
                detail,
            } => self.refuse(request, &delivery, status, &detail),
            Checked::Delivery { delivery, parsed } => {
                self.handle_delivery(request, delivery, parsed)
            }
        }
    }

    /// Answers a request whose body exceeded [`MAX_BODY_BYTES`]; the runtime calls this
    /// instead of reading the body.
    pub fn handle_oversized(&mut self, request: RequestId, delivery: Option<&str>) {
        let detail = format!("body larger than {MAX_BODY_BYTES} bytes (GitHub's own cap)");
        self.refuse(request, delivery.unwrap_or(""), 413, &detail);
    }

    /// The answer to a [`ReceiverEffect::Store`]; `Err` carries the store's error text.
    pub fn handle_store_result(
        &mut self,
        _now: Timestamp,
        id: EffectId,
        result: Result<Reply, String>,
    ) {
        let Some(p) = self.pending.remove(&id) else {
            return;
        };
        let outcome = match result {
            Ok(Reply::Enqueued(crate::queue::EnqueueOutcome::Enqueued)) => {
                self.notice(ReceiverNotice::Enqueued { job: p.job });
                "enqueued"
            }
            Ok(Reply::Enqueued(crate::queue::EnqueueOutcome::AlreadyKnown)) => "already_known",
            Ok(Reply::Status(o)) => {
                use crate::queue::StatusOutcome as S;
                if let (Some(status), S::Recorded | S::Removed) = (&p.news, o) {
                    self.notice(ReceiverNotice::JobNews {
                        job: p.job,
                        status: status.clone(),
                    });
                }
                match o {
                    S::Unknown => "unknown_job",
                    S::Stale => "stale",
                    S::Recorded => "recorded",
                    S::Removed => "removed",
                }
            }
            Ok(other) => {
                let detail = format!("store answered {other:?} to a receiver operation");
                return self.store_failed(p, detail);
            }
            Err(detail) => return self.store_failed(p, detail),
        };
        if !p.delivery.is_empty() {
            self.recent.remember(&p.delivery);
        }
        self.notice(ReceiverNotice::Accepted {
            delivery: p.delivery.clone(),
            job: p.job,
            outcome,
        });
        // Built by hand: this runs for every stored webhook (the simulator's hottest path).
        let delivery = serde_json::to_string(&p.delivery).unwrap_or_else(|_| "\"\"".to_owned());
        let body = format!(
            "{{\"result\":\"{outcome}\",\"job\":{},\"delivery\":{delivery}}}",
            p.job.0
        );
        self.respond(
            p.request,
            HttpResponse {
                status: 200,
                content_type: "application/json",
                body,
            },
        );
    }

    /// The next thing to do, in order.
    pub fn poll_effect(&mut self) -> Option<ReceiverEffect> {
        self.effects.pop_front()
    }

    /// Store operations still waiting for their result.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Takes a delivery already verified and parsed (the HTTP path above, or a simulator that
    /// models GitHub's deliveries without bytes): duplicate detection, the store operation, and
    /// the response once the store answered.
    pub fn handle_delivery(&mut self, request: RequestId, delivery: String, parsed: Delivery) {
        if !delivery.is_empty() && self.recent.contains(&delivery) {
            return self.answered(request, delivery, "duplicate delivery, already stored");
        }
        let (job, op, news) = match parsed {
            Delivery::Ping => return self.answered(request, delivery, "pong"),
            Delivery::Ignored(why) => return self.answered(request, delivery, &why),
            Delivery::Queued(new) => (new.id, Op::Enqueue(new), None),
            Delivery::Status { job, status } => {
                (job, Op::Status(job, status.clone()), Some(status))
            }
        };
        let id = EffectId(self.next_id);
        self.next_id += 1;
        self.pending.insert(
            id,
            Pending {
                request,
                delivery,
                job,
                news,
            },
        );
        self.effects.push_back(ReceiverEffect::Store {
            id,
            timeout: self.settings.store_timeout,
            op,
        });
    }

    fn store_failed(&mut self, p: Pending, detail: String) {
        self.notice(ReceiverNotice::StoreFailed {
            delivery: p.delivery,
            detail,
        });
        let body = json!({ "error": "the job store is unavailable; GitHub will show this delivery as failed and it will be redelivered" });
        self.respond(p.request, HttpResponse::json(503, &body));
    }

    fn answered(&mut self, request: RequestId, delivery: String, detail: &str) {
        let body = json!({ "result": "ignored", "detail": detail });
        self.notice(ReceiverNotice::Answered {
            delivery,
            detail: detail.to_owned(),
        });
        self.respond(request, HttpResponse::json(200, &body));
    }

    fn refuse(&mut self, request: RequestId, delivery: &str, status: u16, detail: &str) {
        self.notice(ReceiverNotice::Refused {
            delivery: delivery.to_owned(),
            status,
            detail: detail.to_owned(),
        });
        let body = json!({ "error": detail });
        self.respond(request, HttpResponse::json(status, &body));
    }

    fn respond(&mut self, request: RequestId, response: HttpResponse) {
        self.effects
            .push_back(ReceiverEffect::Respond { request, response });
    }

    fn notice(&mut self, n: ReceiverNotice) {
        self.effects.push_back(ReceiverEffect::Notice(n));
    }
}
