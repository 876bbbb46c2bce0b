//! The blocking receiver over real HTTP on loopback, with the embedded store and a real Redis,
//! through the receiver suite both daemons share (`anklet_tests::receiver_suite`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod redis_support;

use anklet_core::ids::JobId;
use anklet_core::queue::QueueSettings;
use anklet_core::queue::txn::{Op, Reply};
use anklet_core::receiver::{ReceiverNotice, ReceiverSettings};
use anklet_core::secret::Secret;
use anklet_core::time::Timestamp;
use anklet_lite::clock::Clock;
use anklet_lite::receiver::ReceiverServer;
use anklet_lite::store::embedded::open_store;
use anklet_lite::store::redis::RedisBackend;
use anklet_lite::store::shared::{Exclusive, Pool, SharedStore};
use anklet_tests::receiver_suite as suite;
use anklet_tests::redis_server::{ServerOptions, must_start};
use std::sync::{Arc, Mutex};

type Notices = Arc<Mutex<Vec<ReceiverNotice>>>;

fn start(store: Arc<dyn SharedStore>) -> (ReceiverServer, String, Notices) {
    let notices: Notices = Arc::default();
    let sink = Arc::clone(&notices);
    let server = ReceiverServer::start(
        "127.0.0.1:0",
        ReceiverSettings::new(Secret::new(suite::SECRET)),
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

fn embedded(dir: &tempfile::TempDir) -> Arc<dyn SharedStore> {
    Arc::new(Exclusive::new(
        open_store(dir.path().join("queue.redb"), QueueSettings::default()).unwrap(),
    ))
}

#[test]
fn embedded_store_signed_unsigned_and_routes() {
    let dir = tempfile::tempdir().unwrap();
    let store = embedded(&dir);
    let (server, base, notices) = start(Arc::clone(&store));
    suite::routes_and_signatures(&base, &|job| has_job(store.as_ref(), job));
    server.stop();
    let notices = notices.lock().unwrap();
    assert!(
        notices
            .iter()
            .any(|n| matches!(n, ReceiverNotice::Refused { status: 401, .. }))
    );
    assert!(!format!("{notices:?}").contains(suite::SECRET));
}

#[test]
fn a_burst_of_keep_alive_connections_is_served_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base, _) = start(embedded(&dir));
    suite::keep_alive_burst(&base, 60, std::time::Duration::from_secs(5));
    server.stop();
}

#[test]
fn oversized_bodies_are_refused_with_413() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base, _) = start(embedded(&dir));
    suite::oversized_is_refused(&base);
    server.stop();
}

#[test]
fn redis_concurrent_deliveries_and_an_outage() {
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

    suite::concurrent_deliveries(&base, 8, 10, 1000);
    suite::concurrent_duplicates(&base, 8, 20, 2000);
    let queued = match store.run(Timestamp(1), Op::List).unwrap() {
        Reply::Listing(l) => l.queued.len(),
        other => panic!("{other:?}"),
    };
    assert_eq!(queued, 100);

    redis.kill();
    suite::outage_then_redelivery(&base, &mut || redis.restart().unwrap(), &|job| {
        has_job(store.as_ref(), job)
    });
    server.stop();
}

/// Sends raw bytes on a fresh connection and reads until the server closes it.
fn raw_exchange(base: &str, bytes: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn chunked_pipelined_and_malformed_requests() {
    let dir = tempfile::tempdir().unwrap();
    let store = embedded(&dir);
    let (server, base, _) = start(Arc::clone(&store));

    // A chunked body, the signature over the whole body, then a pipelined request that
    // closes the connection.
    let body = suite::queued_payload(501);
    let (a, b) = body.split_at(body.len() / 2);
    let mut req = format!(
        "POST /jobs/v1/receiver HTTP/1.1\r\nHost: t\r\nX-GitHub-Event: workflow_job\r\n\
         X-GitHub-Delivery: chunked-1\r\nX-Hub-Signature-256: {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        suite::sign(&body)
    )
    .into_bytes();
    for part in [a, b] {
        req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        req.extend_from_slice(part);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    req.extend_from_slice(b"HEAD /healthcheck HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let out = raw_exchange(&base, &req);
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
    assert!(out.contains("\"result\":\"enqueued\""), "{out}");
    assert!(
        out.ends_with("Content-Length: 2\r\nConnection: close\r\n\r\n"),
        "{out}"
    );
    assert!(has_job(store.as_ref(), 501));

    // HTTP/1.0 closes after one answer; garbage and bad lengths are refused with 400.
    let out = raw_exchange(&base, b"GET /healthcheck HTTP/1.0\r\n\r\n");
    assert!(
        out.starts_with("HTTP/1.1 200 OK") && out.ends_with("ok"),
        "{out}"
    );
    assert!(raw_exchange(&base, b"\x01\x02 nonsense\r\n\r\n").starts_with("HTTP/1.1 400"));
    let out = raw_exchange(
        &base,
        b"POST /jobs/v1/receiver HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    );
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    server.stop();
}

#[test]
fn stop_closes_idle_keep_alive_connections() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (server, base, _) = start(embedded(&dir));
    let mut idle = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    idle.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut got = [0u8; 256];
    assert!(idle.read(&mut got).unwrap() > 0);
    let t0 = std::time::Instant::now();
    server.stop();
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(5),
        "stop waited {:?} for an idle connection",
        t0.elapsed()
    );
}
