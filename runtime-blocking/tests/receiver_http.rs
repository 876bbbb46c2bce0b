//! The blocking receiver over real HTTP on loopback, with the embedded store and a real Redis:
//! a signed delivery is answered 200 only once stored; bad signatures 401; oversized 413;
//! a store outage answers 503 and the redelivery after it is stored; concurrent deliveries
//! all land exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod redis_support;

use anklet_core::ids::JobId;
use anklet_core::queue::QueueSettings;
use anklet_core::queue::txn::{Op, Reply};
use anklet_core::receiver::{MAX_BODY_BYTES, ReceiverNotice, ReceiverSettings};
use anklet_core::secret::Secret;
use anklet_core::time::Timestamp;
use anklet_lite::clock::Clock;
use anklet_lite::receiver::ReceiverServer;
use anklet_lite::store::embedded::open_store;
use anklet_lite::store::redis::RedisBackend;
use anklet_lite::store::shared::{Exclusive, Pool, SharedStore};
use anklet_tests::redis_server::{ServerOptions, must_start};
use hmac::{KeyInit, Mac};
use std::sync::{Arc, Mutex};

const SECRET: &str = "receiver-http-test-secret";

fn payload(job: u64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "action": "queued",
        "workflow_job": {
            "id": job, "run_id": 9, "labels": ["self-hosted", "anka-template:t1"],
            "status": "queued", "runner_name": null, "conclusion": null
        },
        "repository": { "name": "app", "full_name": "acme/app", "owner": { "login": "acme" } }
    }))
    .unwrap()
}

fn sign(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(20)))
        .build()
        .into()
}

/// Posts a delivery; returns status and body.
fn post(base: &str, guid: &str, body: &[u8], signature: Option<&str>) -> (u16, String) {
    let mut req = agent()
        .post(format!("{base}/jobs/v1/receiver"))
        .header("X-GitHub-Event", "workflow_job")
        .header("X-GitHub-Delivery", guid)
        .header("Content-Type", "application/json");
    if let Some(sig) = signature {
        req = req.header("X-Hub-Signature-256", sig);
    }
    let mut resp = req.send(body).unwrap();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}

type Notices = Arc<Mutex<Vec<ReceiverNotice>>>;

fn start(store: Arc<dyn SharedStore>) -> (ReceiverServer, String, Notices) {
    let notices: Notices = Arc::default();
    let sink = Arc::clone(&notices);
    let server = ReceiverServer::start(
        "127.0.0.1:0",
        ReceiverSettings::new(Secret::new(SECRET)),
        store,
        Arc::new(Clock::new()),
        4,
        Arc::new(move |n| sink.lock().unwrap().push(n.clone())),
    )
    .unwrap();
    let base = format!("http://{}", server.local_addr());
    (server, base, notices)
}

fn has_job(store: &dyn SharedStore, job: u64) -> bool {
    matches!(
        store.run(Timestamp(1), Op::Get(JobId(job))).unwrap(),
        Reply::Record(Some(_))
    )
}

#[test]
fn embedded_store_signed_unsigned_and_routes() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SharedStore> = Arc::new(Exclusive::new(
        open_store(dir.path().join("queue.redb"), QueueSettings::default()).unwrap(),
    ));
    let (server, base, notices) = start(Arc::clone(&store));

    let body = payload(101);
    let (status, text) = post(&base, "g1", &body, Some(&sign(&body)));
    assert_eq!(status, 200, "{text}");
    assert!(
        has_job(store.as_ref(), 101),
        "a 200 means the job is in the store"
    );

    let mut tampered = body.clone();
    tampered[10] ^= 1;
    assert_eq!(post(&base, "g2", &tampered, Some(&sign(&body))).0, 401);
    assert_eq!(post(&base, "g3", &body, None).0, 401);
    assert_eq!(post(&base, "g4", b"{", Some(&sign(b"{"))).0, 400);

    let mut resp = agent().get(format!("{base}/healthcheck")).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "ok");
    let resp = agent().post(format!("{base}/jobs")).send(&b""[..]).unwrap();
    assert_eq!(resp.status().as_u16(), 501);

    server.stop();
    let notices = notices.lock().unwrap();
    assert!(
        notices
            .iter()
            .any(|n| matches!(n, ReceiverNotice::Refused { status: 401, .. }))
    );
    assert!(!format!("{notices:?}").contains(SECRET));
}

#[test]
fn oversized_bodies_are_refused_with_413() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SharedStore> = Arc::new(Exclusive::new(
        open_store(dir.path().join("queue.redb"), QueueSettings::default()).unwrap(),
    ));
    let (server, base, _) = start(store);
    let big = vec![b' '; MAX_BODY_BYTES + 1];
    let sig = sign(&big);
    // The server may answer before the client finished sending; either way it is a 413 or
    // the connection is cut, never a 2xx.
    let result = agent()
        .post(format!("{base}/jobs/v1/receiver"))
        .header("X-GitHub-Event", "workflow_job")
        .header("X-Hub-Signature-256", &sig)
        .send(&big[..]);
    if let Ok(resp) = result {
        assert_eq!(resp.status().as_u16(), 413);
    }
    server.stop();
}

#[test]
fn redis_outage_answers_503_and_the_redelivery_is_stored() {
    let mut redis = must_start(ServerOptions::default());
    let port = redis.port();
    let queue = redis_support::fresh_queue();
    let settings = QueueSettings::default();
    let connect_settings = settings.clone();
    let store: Arc<dyn SharedStore> = Arc::new(Pool::new(
        Box::new(move || {
            RedisBackend::new(
                &redis_support::db(port),
                redis_support::options(&queue, &connect_settings),
            )
            .map_err(|e| e.to_string())
        }),
        settings,
    ));
    let (server, base, _) = start(Arc::clone(&store));

    // Concurrent deliveries all land exactly once.
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let base = base.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    let job = 1000 + t * 10 + i;
                    let body = payload(job);
                    let (status, text) = post(&base, &format!("c{job}"), &body, Some(&sign(&body)));
                    assert_eq!(status, 200, "{text}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let queued = match store.run(Timestamp(1), Op::List).unwrap() {
        Reply::Listing(l) => l.queued.len(),
        other => panic!("{other:?}"),
    };
    assert_eq!(queued, 80);

    redis.kill();
    let body = payload(7);
    let (status, text) = post(&base, "lost-1", &body, Some(&sign(&body)));
    assert_eq!(status, 503, "{text}");
    redis.restart().unwrap();
    // GitHub's redelivery: same GUID, same body.
    let mut stored = false;
    for _ in 0..50 {
        let (status, _) = post(&base, "lost-1", &body, Some(&sign(&body)));
        if status == 200 {
            stored = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(stored, "the redelivery was stored once Redis was back");
    assert!(has_job(store.as_ref(), 7));
    server.stop();
}
