//! The receiver machine driven directly, with GitHub's real payloads (tests/fixtures/github,
//! see SOURCE.md there) signed with a test secret and a real in-memory store: 2xx only after
//! the store confirmed, 401/400/413/404/405/501 for bad requests, duplicates answered from
//! memory, form-encoded bodies, and no secret in anything the machine emits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::handler::GithubJobStatus;
use anklet_core::ids::{EffectId, JobId};
use anklet_core::queue::txn::{Op, Reply};
use anklet_core::queue::{EnqueueOutcome, MemoryBackend, QueueSettings, Store};
use anklet_core::receiver::{
    HttpRequest, HttpResponse, Receiver, ReceiverEffect, ReceiverNotice, ReceiverSettings,
    RequestId,
};
use anklet_core::secret::Secret;
use anklet_core::time::Timestamp;
use hmac::{KeyInit, Mac};
use proptest::prelude::*;

const SECRET: &str = "test-webhook-secret-7f3a";
const NOW: Timestamp = Timestamp(1_700_000_000_000);

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../tests/fixtures/github/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).unwrap()
}

/// The fixture with our labels, so the anka-template rule lets it through.
fn ours(name: &str) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap();
    v["workflow_job"]["labels"] = serde_json::json!(["self-hosted", "anka-template:84266873-da90"]);
    serde_json::to_vec(&v).unwrap()
}

fn sign(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn delivery(event: &str, guid: &str, body: Vec<u8>) -> HttpRequest {
    let sig = sign(&body);
    HttpRequest::new("POST", "/jobs/v1/receiver")
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", guid)
        .header("x-hub-signature-256", &sig)
        .header("Content-Type", "application/json")
        .body(body)
}

/// A receiver wired to a real in-memory store; `fail_store` makes every store call fail.
struct Rig {
    rx: Receiver,
    store: Store<MemoryBackend>,
    fail_store: bool,
    store_ops: Vec<Op>,
    notices: Vec<ReceiverNotice>,
    next: u64,
}

impl Rig {
    fn new() -> Self {
        Self {
            rx: Receiver::new(ReceiverSettings::new(Secret::new(SECRET))),
            store: Store::new(MemoryBackend::new(100), QueueSettings::default()),
            fail_store: false,
            store_ops: Vec::new(),
            notices: Vec::new(),
            next: 0,
        }
    }

    /// Sends one request and runs every effect until its response comes out.
    fn send(&mut self, req: HttpRequest) -> HttpResponse {
        self.next += 1;
        let id = RequestId(self.next);
        self.rx.handle_request(NOW, id, req);
        self.drain(id)
    }

    fn drain(&mut self, id: RequestId) -> HttpResponse {
        let mut answer = None;
        while let Some(e) = self.rx.poll_effect() {
            match e {
                ReceiverEffect::Respond { request, response } => {
                    assert_eq!(request, id);
                    assert!(answer.is_none(), "two responses to one request");
                    answer = Some(response);
                }
                ReceiverEffect::Store { id: sid, op, .. } => {
                    assert!(answer.is_none(), "responded before the store answered");
                    self.store_ops.push(op.clone());
                    let result = if self.fail_store {
                        Err("redis: connection refused".to_owned())
                    } else {
                        Ok(self.store.run(NOW, op).unwrap())
                    };
                    self.rx.handle_store_result(NOW, sid, result);
                }
                ReceiverEffect::Notice(n) => self.notices.push(n),
            }
        }
        answer.expect("every request gets a response")
    }
}

#[test]
fn queued_is_stored_before_the_200() {
    let mut rig = Rig::new();
    let r = rig.send(delivery(
        "workflow_job",
        "g-1",
        ours("workflow_job.queued.json"),
    ));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("\"enqueued\""), "{}", r.body);
    assert!(matches!(rig.store_ops.as_slice(), [Op::Enqueue(j)] if j.id == JobId(289782451)));
    let reply = rig.store.run(NOW, Op::Get(JobId(289782451))).unwrap();
    assert!(matches!(reply, Reply::Record(Some(_))), "{reply:?}");
    assert!(rig.notices.contains(&ReceiverNotice::Enqueued {
        job: JobId(289782451)
    }));
}

#[test]
fn the_response_waits_for_the_store() {
    let mut rx = Receiver::new(ReceiverSettings::new(Secret::new(SECRET)));
    let body = ours("workflow_job.queued.json");
    rx.handle_request(NOW, RequestId(7), delivery("workflow_job", "g", body));
    let Some(ReceiverEffect::Store { id, .. }) = rx.poll_effect() else {
        panic!("a store operation comes first");
    };
    assert_eq!(
        rx.poll_effect(),
        None,
        "nothing is answered before the store"
    );
    assert_eq!(rx.in_flight(), 1);
    rx.handle_store_result(NOW, id, Ok(Reply::Enqueued(EnqueueOutcome::Enqueued)));
    let effects: Vec<_> = std::iter::from_fn(|| rx.poll_effect()).collect();
    assert!(effects.iter().any(|e| matches!(e,
        ReceiverEffect::Respond { request: RequestId(7), response } if response.status == 200)));
    // A second (late, duplicate) answer for the same id changes nothing.
    rx.handle_store_result(NOW, id, Err("late".into()));
    assert_eq!(rx.poll_effect(), None);
    assert_eq!(rx.in_flight(), 0);
    let _ = EffectId(0);
}

#[test]
fn a_store_failure_answers_503_and_the_redelivery_is_stored() {
    let mut rig = Rig::new();
    rig.fail_store = true;
    let req = delivery("workflow_job", "g-2", ours("workflow_job.queued.json"));
    let r = rig.send(req.clone());
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(matches!(
        rig.notices.last(),
        Some(ReceiverNotice::StoreFailed { .. })
    ));
    // GitHub's redelivery carries the same GUID: it must not be taken for a duplicate.
    rig.fail_store = false;
    let r = rig.send(req);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(rig.store_ops.len(), 2);
}

#[test]
fn duplicate_deliveries_are_answered_from_memory() {
    let mut rig = Rig::new();
    let req = delivery("workflow_job", "g-3", ours("workflow_job.queued.json"));
    assert_eq!(rig.send(req.clone()).status, 200);
    let r = rig.send(req);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("duplicate"), "{}", r.body);
    assert_eq!(
        rig.store_ops.len(),
        1,
        "the duplicate did not reach the store"
    );
    // Another delivery of the same job (new GUID) reaches the store, which knows the job.
    let r = rig.send(delivery(
        "workflow_job",
        "g-4",
        ours("workflow_job.queued.json"),
    ));
    assert!(r.body.contains("already_known"), "{}", r.body);
}

#[test]
fn status_news_is_stored_forward_only_and_announced() {
    let mut rig = Rig::new();
    rig.send(delivery(
        "workflow_job",
        "a",
        ours("workflow_job.queued.json"),
    ));
    let done = ours("workflow_job.completed.success.with-organization.json");
    let r = rig.send(delivery("workflow_job", "c", done));
    assert_eq!(r.status, 200);
    assert!(r.body.contains("\"removed\""), "{}", r.body);
    assert!(rig.notices.iter().any(|n| matches!(
        n,
        ReceiverNotice::JobNews {
            status: GithubJobStatus::Completed { .. },
            ..
        }
    )));
    // A late in_progress after completed is stale.
    let late = rig.send(delivery(
        "workflow_job",
        "b",
        ours("workflow_job.in_progress.json"),
    ));
    assert!(
        late.body.contains("stale") || late.body.contains("unknown_job"),
        "{}",
        late.body
    );
}

#[test]
fn form_encoded_payloads_are_accepted() {
    let json = ours("workflow_job.queued.json");
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", std::str::from_utf8(&json).unwrap())
        .finish();
    let mut req = delivery("workflow_job", "f", form.into_bytes());
    req.headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
    let req = req.header("Content-Type", "application/x-www-form-urlencoded");
    let mut rig = Rig::new();
    let r = rig.send(req);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("enqueued"));
}

#[test]
fn bad_signatures_are_401_and_store_nothing() {
    let mut rig = Rig::new();
    let good = delivery("workflow_job", "x", ours("workflow_job.queued.json"));
    let mut tampered = good.clone();
    tampered.body[50] ^= 1;
    let mut unsigned = good.clone();
    unsigned
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("x-hub-signature-256"));
    let mut garbled = good.clone();
    for h in &mut garbled.headers {
        if h.0.eq_ignore_ascii_case("x-hub-signature-256") {
            h.1 = "sha1=abc".into();
        }
    }
    for req in [tampered, unsigned, garbled] {
        let r = rig.send(req);
        assert_eq!(r.status, 401, "{}", r.body);
    }
    assert!(rig.store_ops.is_empty());
}

#[test]
fn malformed_bodies_are_400() {
    let mut rig = Rig::new();
    let r = rig.send(delivery(
        "workflow_job",
        "m",
        b"{\"action\": \"queued\"".to_vec(),
    ));
    assert_eq!(r.status, 400);
    assert!(r.body.contains("line"), "{}", r.body);
    let mut no_event = delivery("workflow_job", "m2", ours("workflow_job.queued.json"));
    no_event
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("x-github-event"));
    assert_eq!(rig.send(no_event).status, 400);
    assert!(rig.store_ops.is_empty());
}

#[test]
fn ping_other_events_and_foreign_jobs_are_200_without_store() {
    let mut rig = Rig::new();
    let ping = rig.send(delivery("ping", "p", fixture("ping.json")));
    assert_eq!(ping.status, 200);
    assert!(ping.body.contains("pong"));
    let push = rig.send(delivery("push", "q", b"{}".to_vec()));
    assert_eq!(push.status, 200);
    let foreign = rig.send(delivery(
        "workflow_job",
        "r",
        fixture("workflow_job.queued.json"),
    ));
    assert_eq!(foreign.status, 200);
    assert!(foreign.body.contains("anka-template"), "{}", foreign.body);
    assert!(rig.store_ops.is_empty());
}

#[test]
fn routes_methods_and_oversized_bodies() {
    let mut rig = Rig::new();
    let cases = [
        (HttpRequest::new("GET", "/healthcheck"), 200),
        (HttpRequest::new("POST", "/healthcheck"), 405),
        (HttpRequest::new("GET", "/jobs/v1/receiver"), 405),
        (HttpRequest::new("POST", "/jobs"), 501),
        (HttpRequest::new("POST", "/jobs/v2/receiver"), 501),
        (HttpRequest::new("GET", "/nope"), 404),
    ];
    for (req, status) in cases {
        let path = req.path.clone();
        assert_eq!(rig.send(req).status, status, "{path}");
    }
    rig.rx.handle_oversized(RequestId(99), Some("big"));
    assert_eq!(rig.drain(RequestId(99)).status, 413);
}

#[test]
fn the_secret_never_leaves_the_machine() {
    let mut rig = Rig::new();
    let mut responses = Vec::new();
    let mut bad = delivery("workflow_job", "s", ours("workflow_job.queued.json"));
    bad.body.push(b' ');
    for req in [
        delivery("workflow_job", "s1", ours("workflow_job.queued.json")),
        bad,
        delivery("workflow_job", "s2", b"nope".to_vec()),
    ] {
        responses.push(rig.send(req));
    }
    let all = format!("{responses:?} {:?} {:?}", rig.notices, rig.rx);
    assert!(!all.contains(SECRET), "{all}");
}

proptest! {
    /// Any request gets exactly one response and never panics the machine.
    #[test]
    fn every_request_gets_one_response(
        method in prop::sample::select(vec!["GET", "POST", "PUT"]),
        path in prop::sample::select(vec!["/jobs/v1/receiver", "/healthcheck", "/x", "/jobs"]),
        event in prop::sample::select(vec!["workflow_job", "ping", "push", ""]),
        body in prop::collection::vec(any::<u8>(), 0..300),
        signed in any::<bool>(),
        fail_store in any::<bool>(),
    ) {
        let mut rig = Rig::new();
        rig.fail_store = fail_store;
        let mut req = HttpRequest::new(method, path).header("X-GitHub-Event", event);
        if signed {
            req = req.header("X-Hub-Signature-256", &sign(&body));
        }
        let r = rig.send(req.body(body));
        prop_assert!((200..600).contains(&r.status));
    }
}
