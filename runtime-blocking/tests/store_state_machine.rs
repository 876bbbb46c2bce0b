//! The proptest-state-machine test of core's queue model, run against the embedded store and
//! against Redis: the same generated operations go to the model and to the real store, every
//! answer is checked against the rules, and the listings must agree after every step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../core/tests/queue_state_machine/mod.rs"]
mod queue_state_machine;
#[path = "../../core/tests/queue_strategies/mod.rs"]
mod queue_strategies;
mod redis_support;

use anklet_core::queue::QueueSettings;
use anklet_lite::store::embedded::{EmbeddedStore, open_store};
use anklet_lite::store::redis::RedisStore;
use anklet_tests::redis_server::RedisServer;
use proptest_state_machine::prop_state_machine;
use queue_state_machine::{Against, MakeStore};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Embedded;

impl MakeStore for Embedded {
    type Q = EmbeddedStore;
    fn make(settings: QueueSettings) -> Self::Q {
        static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
        let path = dir
            .path()
            .join(format!("case-{}.redb", N.fetch_add(1, Ordering::Relaxed)));
        open_store(&path, settings).unwrap()
    }
}

struct Redis;

impl MakeStore for Redis {
    type Q = RedisStore;
    fn make(settings: QueueSettings) -> Self::Q {
        // One server per test thread, killed when the thread ends (a static would never be
        // dropped and would leave redis-server running after the tests).
        thread_local! {
            static SERVER: RedisServer = RedisServer::start().unwrap();
        }
        SERVER.with(|server| redis_support::store(server, settings))
    }
}

prop_state_machine! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 60, ..Default::default() })]

    #[test]
    fn embedded_store_follows_the_model(sequential 1..60 => Against<Embedded>);

    #[test]
    fn redis_store_follows_the_model(sequential 1..60 => Against<Redis>);
}
