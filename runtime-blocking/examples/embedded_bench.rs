//! Throughput of the embedded store on this machine's disk: enqueues, then claim + complete
//! pairs, each a durable (fsynced) commit. Bounded to about two seconds per phase.
//!
//! `cargo run --release -p anklet-lite --example embedded_bench [store-folder]` (default: the
//! system temp folder). The folder matters: fsync cost is the disk's.

use anklet_core::handler::Completion;
use anklet_core::ids::HostId;
use anklet_core::labels::ClaimFilter;
use anklet_core::queue::conformance::sample_job;
use anklet_core::queue::{JobQueue, QueueSettings};
use anklet_core::time::Timestamp;
use anklet_lite::store::embedded::open_store;
use std::time::{Duration, Instant};

const PHASE: Duration = Duration::from_secs(2);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    let path = dir.join(format!("anklet-embedded-bench-{}.redb", std::process::id()));
    let result = bench(&path);
    let _ = std::fs::remove_file(&path);
    result
}

fn bench(path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut q = open_store(path, QueueSettings::default())?;
    println!("store: {}", path.display());

    let start = Instant::now();
    let mut enqueued = 0u64;
    while start.elapsed() < PHASE {
        enqueued += 1;
        q.enqueue(
            Timestamp(enqueued),
            sample_job(enqueued, "acme", Some("t1")),
        )?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "enqueue:          {enqueued:>7} ops in {secs:.2} s = {:>8.0} ops/s",
        enqueued as f64 / secs
    );

    let host = HostId("bench".into());
    let filter = ClaimFilter::default();
    let lease = Duration::from_secs(60);
    let start = Instant::now();
    let mut pairs = 0u64;
    while start.elapsed() < PHASE {
        let now = Timestamp(1_000_000 + pairs);
        let Some(job) = q.claim(now, &host, &filter, lease)? else {
            break;
        };
        if q.complete(now, job.id, &host, &Completion::TimedOut)?
            .is_err()
        {
            return Err("lease lost during the benchmark".into());
        }
        pairs += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "claim + complete: {pairs:>7} pairs in {secs:.2} s = {:>8.0} pairs/s ({:.0} commits/s)",
        pairs as f64 / secs,
        2.0 * pairs as f64 / secs
    );
    let listing = q.list(Timestamp(u64::MAX / 2))?;
    println!(
        "left: {} queued, {} claimed",
        listing.queued.len(),
        listing.claimed.len()
    );
    Ok(())
}
