//! The tokio receiver over real HTTP on loopback, with the embedded store and a real Redis,
//! through the receiver suite both daemons share (`anklet_tests::receiver_suite`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet::receiver::ReceiverServer;
use anklet::store::redis::{AsyncRedisOptions, AsyncRedisStore};
use anklet::store::shared::{RedisPool, SharedStore};
use anklet_core::ids::JobId;
use anklet_core::queue::QueueSettings;
use anklet_core::queue::redis_layout::{DEFAULT_PREFIX, RedisLayout};
use anklet_core::queue::txn::{Op, Reply};
use anklet_core::receiver::{ReceiverNotice, ReceiverSettings};
use anklet_core::secret::Secret;
use anklet_core::time::Timestamp;
use anklet_lite::clock::Clock;
use anklet_lite::store::embedded::open_store;
use anklet_lite::store::shared::Exclusive;
use anklet_tests::receiver_suite as suite;
use anklet_tests::redis_server::{ServerOptions, must_start, test_db};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Notices = Arc<Mutex<Vec<ReceiverNotice>>>;

struct Rig {
    rt: tokio::runtime::Runtime,
    server: Option<ReceiverServer>,
    store: SharedStore,
    base: String,
    notices: Notices,
}

impl Rig {
    fn start(store: SharedStore) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let notices: Notices = Arc::default();
        let sink = Arc::clone(&notices);
        let server = rt
            .block_on(ReceiverServer::start(
                "127.0.0.1:0",
                ReceiverSettings::new(Secret::new(suite::SECRET)),
                store.clone(),
                Arc::new(Clock::new()),
                Arc::new(move |n| sink.lock().unwrap().push(n.clone())),
            ))
            .unwrap();
        let base = format!("http://{}", server.local_addr());
        Self {
            rt,
            server: Some(server),
            store,
            base,
            notices,
        }
    }

    fn run(&self, op: Op) -> Reply {
        self.rt.block_on(self.store.run(Timestamp(1), op)).unwrap()
    }

    fn has_job(&self, job: u64) -> bool {
        matches!(self.run(Op::Get(JobId(job))), Reply::Record(Some(_)))
    }

    fn stop(mut self) {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.stop());
        }
    }
}

fn embedded(dir: &tempfile::TempDir) -> SharedStore {
    SharedStore::Blocking(Arc::new(Exclusive::new(
        open_store(dir.path().join("queue.redb"), QueueSettings::default()).unwrap(),
    )))
}

#[test]
fn embedded_store_signed_unsigned_and_routes() {
    let dir = tempfile::tempdir().unwrap();
    let rig = Rig::start(embedded(&dir));
    suite::routes_and_signatures(&rig.base, &|job| rig.has_job(job));
    let notices = format!("{:?}", rig.notices.lock().unwrap());
    assert!(notices.contains("Refused") && !notices.contains(suite::SECRET));
    rig.stop();
}

#[test]
fn a_burst_of_keep_alive_connections_is_served_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let rig = Rig::start(embedded(&dir));
    suite::keep_alive_burst(&rig.base, 60, Duration::from_secs(5));
    rig.stop();
}

#[test]
fn oversized_bodies_are_refused_with_413() {
    let dir = tempfile::tempdir().unwrap();
    let rig = Rig::start(embedded(&dir));
    suite::oversized_is_refused(&rig.base);
    rig.stop();
}

#[test]
fn redis_concurrent_deliveries_and_an_outage() {
    let mut redis = must_start(ServerOptions::default());
    let port = redis.port();
    let queue = format!("rx{}", std::process::id());
    let pool = RedisPool::new(Box::new(move || {
        let mut o = AsyncRedisOptions::new(RedisLayout::new(DEFAULT_PREFIX, &queue).unwrap());
        o.max_backoff = Duration::from_millis(400);
        AsyncRedisStore::new(&test_db(port), o, QueueSettings::default()).map_err(|e| e.to_string())
    }));
    let rig = Rig::start(SharedStore::Redis(Arc::new(pool)));

    suite::concurrent_deliveries(&rig.base, 8, 10, 1000);
    suite::concurrent_duplicates(&rig.base, 8, 20, 2000);
    match rig.run(Op::List) {
        Reply::Listing(l) => assert_eq!(l.queued.len(), 100),
        other => panic!("{other:?}"),
    }
    redis.kill();
    suite::outage_then_redelivery(&rig.base, &mut || redis.restart().unwrap(), &|job| {
        rig.has_job(job)
    });
    rig.stop();
}
