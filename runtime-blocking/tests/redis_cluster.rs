//! The blocking Redis store in cluster mode (`cluster_mode: true`, redis' sync
//! `ClusterConnection`) on a real three-master Redis Cluster: every key of a queue shares one
//! hash tag, so the scripts run on one shard. The conformance suite, a pickup through
//! `wait_for_work`, and two queues landing on different shards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::ids::{HostId, JobId};
use anklet_core::labels::ClaimFilter;
use anklet_core::queue::conformance::{self, sample_job};
use anklet_core::queue::{JobQueue, QueueSettings};
use anklet_core::time::Timestamp;
use anklet_lite::store::redis::{RedisBackend, RedisStore};
use anklet_tests::redis_server::RedisCluster;
use std::time::{Duration, Instant};

mod redis_support;
use redis_support::{db, fresh_queue, options};

fn cluster_store(cluster: &RedisCluster, queue: &str, settings: QueueSettings) -> RedisStore {
    let mut db = db(cluster.nodes()[0].port());
    db.cluster_mode = true;
    let backend = RedisBackend::new(&db, options(queue, &settings)).unwrap();
    RedisStore::new(backend, settings)
}

#[test]
fn cluster_mode_passes_the_conformance_suite_and_wakes_claimers() {
    let cluster = RedisCluster::start(3).unwrap_or_else(|e| panic!("cluster: {e}"));
    let results =
        conformance::run_all(|settings| cluster_store(&cluster, &fresh_queue(), settings));
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|(name, r)| r.err().map(|v| format!("{name}: {v}")))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");

    // The suite's queues (one per store) landed on more than one shard.
    let with_keys = cluster
        .nodes()
        .iter()
        .filter(|n| {
            let o = n.cli(&["DBSIZE"]).unwrap();
            String::from_utf8_lossy(&o.stdout).trim() != "0"
        })
        .count();
    assert!(with_keys >= 2, "{with_keys} shards hold keys");

    let queue = fresh_queue();
    let settings = QueueSettings::default();
    let mut claimer = cluster_store(&cluster, &queue, settings.clone());
    let mut receiver = cluster_store(&cluster, &queue, settings);
    let t = Timestamp(1_000);
    let host = HostId("h".into());
    let lease = Duration::from_secs(60);
    let blocked = std::thread::spawn(move || {
        let woken = claimer
            .backend()
            .wait_for_work(Duration::from_secs(20))
            .unwrap();
        let got = claimer
            .claim(t, &host, &ClaimFilter::default(), lease)
            .unwrap();
        (woken, got)
    });
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    receiver
        .enqueue(t, sample_job(1, "acme", Some("t")))
        .unwrap();
    let (woken, got) = blocked.join().unwrap();
    println!("cluster pickup {:?} after the enqueue", start.elapsed());
    assert!(woken);
    assert_eq!(got.unwrap().id, JobId(1));
}
