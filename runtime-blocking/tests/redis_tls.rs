//! `tls_enabled` on a real TLS `redis-server` (self-signed CA): without a rustls crypto
//! provider the store refuses with an error instead of panicking inside redis; with one,
//! `tls_insecure: true` connects and works, and a verifying client refuses the unknown CA.
//! One test function: the provider is process-wide, so the order of the steps matters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::ids::JobId;
use anklet_core::queue::conformance::sample_job;
use anklet_core::queue::{EnqueueOutcome, JobQueue, QueueSettings};
use anklet_core::time::Timestamp;
use anklet_lite::store::redis::{RedisBackend, RedisStore, RedisStoreError};
use anklet_tests::redis_server::{ServerOptions, must_start};

mod redis_support;
use redis_support::{db, fresh_queue, options};

#[test]
fn tls_needs_a_provider_then_connects_insecure_and_refuses_an_unknown_ca() {
    let server = must_start(ServerOptions {
        tls: true,
        ..ServerOptions::default()
    });
    let mut db = db(server.tls_port().unwrap());
    db.tls_enabled = true;
    db.tls_insecure = true;
    db.max_retries = 0;
    let settings = QueueSettings::default();
    let opts = options(&fresh_queue(), &settings);

    let err = RedisBackend::new(&db, opts.clone()).unwrap_err();
    assert!(matches!(err, RedisStoreError::Config(_)), "{err}");
    assert!(err.to_string().contains("crypto provider"), "{err}");

    rustls::crypto::ring::default_provider()
        .install_default()
        .unwrap();
    let mut q = RedisStore::new(
        RedisBackend::new(&db, opts.clone()).unwrap(),
        settings.clone(),
    );
    let t = Timestamp(1_000);
    assert_eq!(
        q.enqueue(t, sample_job(1, "acme", Some("t"))).unwrap(),
        EnqueueOutcome::Enqueued
    );
    assert_eq!(q.get(JobId(1)).unwrap().unwrap().id, JobId(1));

    // Verifying the certificate against the system roots fails: the CA is our own.
    db.tls_insecure = false;
    let q = RedisStore::new(RedisBackend::new(&db, opts).unwrap(), settings);
    let err = q.get(JobId(1)).unwrap_err();
    println!("verifying client: {err}");
}
