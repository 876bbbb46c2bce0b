//! Shared by the Redis store tests: settings for a test server and fresh queues on it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use anklet_core::config::DatabaseSettings;
use anklet_core::queue::QueueSettings;
use anklet_core::queue::redis_layout::{DEFAULT_PREFIX, RedisLayout};
use anklet_core::time::Timestamp;
use anklet_lite::store::redis::{RedisBackend, RedisOptions, RedisStore};
use anklet_tests::redis_server::RedisServer;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Connection settings for a loopback server on `port` with short retry delays.
pub fn db(port: u16) -> DatabaseSettings {
    anklet_tests::redis_server::test_db(port)
}

static QUEUES: AtomicUsize = AtomicUsize::new(0);

/// A queue name no other store in this process used.
pub fn fresh_queue() -> String {
    format!(
        "q{}-{}",
        std::process::id(),
        QUEUES.fetch_add(1, Ordering::Relaxed)
    )
}

/// Options for `queue` with test-sized timeouts.
pub fn options(queue: &str, settings: &QueueSettings) -> RedisOptions {
    let mut o = RedisOptions::new(RedisLayout::new(DEFAULT_PREFIX, queue).unwrap(), settings);
    o.max_backoff = Duration::from_millis(400);
    o.connect_timeout = Duration::from_secs(2);
    o.response_timeout = Duration::from_secs(5);
    o
}

/// A backend for `queue` on `server`.
pub fn backend(server: &RedisServer, queue: &str, settings: &QueueSettings) -> RedisBackend {
    RedisBackend::new(&db(server.port()), options(queue, settings)).unwrap()
}

/// A store on a fresh queue of `server`.
pub fn store(server: &RedisServer, settings: QueueSettings) -> RedisStore {
    store_on(server, &fresh_queue(), settings)
}

/// A store on `queue` of `server` (several stores on one queue act as several hosts).
pub fn store_on(server: &RedisServer, queue: &str, settings: QueueSettings) -> RedisStore {
    RedisStore::new(backend(server, queue, &settings), settings)
}

/// The wall clock in milliseconds (tests with threads share the machine's clock).
pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    Timestamp::from_millis(u64::try_from(ms).unwrap())
}
