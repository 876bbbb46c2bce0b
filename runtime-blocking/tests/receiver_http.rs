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
    let queued = match store.run(Timestamp(1), Op::List).unwrap() {
        Reply::Listing(l) => l.queued.len(),
        other => panic!("{other:?}"),
    };
    assert_eq!(queued, 80);

    redis.kill();
    suite::outage_then_redelivery(&base, &mut || redis.restart().unwrap(), &|job| {
        has_job(store.as_ref(), job)
    });
    server.stop();
}
