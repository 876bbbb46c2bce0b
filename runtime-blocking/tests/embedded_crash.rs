//! Crash safety of the embedded store with a real process killed by SIGKILL mid-write.
//!
//! The test re-executes its own binary as a child in "writer mode" (selected by an environment
//! variable, running only `crash_writer_child`). The child enqueues, claims, requeues and
//! completes jobs as fast as it can, printing each operation to stdout (flushed) only after
//! the store acknowledged it, i.e. after the commit's fsync. The parent reads those lines,
//! SIGKILLs the child at a random moment, reopens the store and checks that every
//! acknowledged operation survived: a crash loses at most the one operation in flight.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::handler::Completion;
use anklet_core::ids::{HostId, JobId};
use anklet_core::labels::ClaimFilter;
use anklet_core::queue::conformance::sample_job;
use anklet_core::queue::txn::{Backend, Fetched, Read};
use anklet_core::queue::{JobQueue, QueueSettings};
use anklet_core::time::Timestamp;
use anklet_lite::store::embedded::{EmbeddedBackend, EmbeddedError, EmbeddedStore, open_store};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const WRITER_PATH: &str = "ANKLET_EMBEDDED_CRASH_WRITER_PATH";
const WRITER_ROUND: &str = "ANKLET_EMBEDDED_CRASH_WRITER_ROUND";
/// Job ids of round `r` start at `r * ROUND_IDS`, so rounds never reuse an id.
const ROUND_IDS: u64 = 1_000_000;
const ROUNDS: u64 = 8;

fn settings() -> QueueSettings {
    QueueSettings {
        // Remember every finished job, so completions are checked exactly.
        finished_capacity: 1_000_000,
        max_attempts: 1_000,
        ..QueueSettings::default()
    }
}

fn open(path: &Path) -> EmbeddedStore {
    open_store(path, settings()).unwrap()
}

/// Writer mode: a no-op unless the parent test set the environment.
#[test]
fn crash_writer_child() {
    let (Ok(path), Ok(round)) = (std::env::var(WRITER_PATH), std::env::var(WRITER_ROUND)) else {
        return;
    };
    let round: u64 = round.parse().unwrap();
    let mut q = open(Path::new(&path));
    let host = HostId("writer".into());
    let lease = Duration::from_secs(3_600);
    let out = std::io::stdout();
    let ack = |line: String| {
        let mut o = out.lock();
        writeln!(o, "ACK {line}").unwrap();
        o.flush().unwrap();
    };
    // Bounded, so a child whose parent died does not run forever.
    for i in 1..200_000u64 {
        let now = Timestamp(round * 1_000_000_000 + i * 10);
        let id = round * ROUND_IDS + i;
        q.enqueue(now, sample_job(id, "acme", Some("t1"))).unwrap();
        ack(format!("ENQ {id}"));
        if i % 2 == 0 {
            let Some(r) = q
                .claim(
                    now + Duration::from_millis(1),
                    &host,
                    &ClaimFilter::default(),
                    lease,
                )
                .unwrap()
            else {
                continue;
            };
            ack(format!("CLAIM {}", r.id.0));
            let later = now + Duration::from_millis(2);
            if i % 3 == 0 {
                q.requeue(later, r.id, &host, "test", false, Duration::ZERO)
                    .unwrap()
                    .unwrap();
                ack(format!("REQ {}", r.id.0));
            } else if i % 4 == 0 {
                q.complete(later, r.id, &host, &Completion::TimedOut)
                    .unwrap()
                    .unwrap();
                ack(format!("DONE {}", r.id.0));
            }
        }
    }
}

/// A small xorshift generator: the test needs a few random kill points, not a crate.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The last acknowledged operation on each job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Last {
    Enqueued,
    Claimed,
    Requeued,
    Done,
}

/// Runs one writer child and SIGKILLs it after `kill_after` acknowledgements, returning what
/// it acknowledged (in order).
fn run_child(path: &Path, round: u64, kill_after: u64, extra_spin: u64) -> Vec<(String, u64)> {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "crash_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WRITER_PATH, path)
        .env(WRITER_ROUND, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut acked = Vec::new();
    // libtest may print "test crash_writer_child ... " in front of the first ack.
    let parse = |line: &str, acked: &mut Vec<(String, u64)>| {
        if let Some((_, rest)) = line.split_once("ACK ") {
            let (op, id) = rest.split_once(' ').unwrap();
            acked.push((op.to_owned(), id.parse().unwrap()));
        }
    };
    let mut lock_checked = false;
    while (acked.len() as u64) < kill_after {
        match lines.next() {
            Some(line) => parse(&line.unwrap(), &mut acked),
            None => panic!("writer child exited early after {} acks", acked.len()),
        }
        if !lock_checked && !acked.is_empty() {
            // While the child has the store open, this process is refused, naming the file.
            let err = EmbeddedBackend::open(path).unwrap_err();
            assert!(matches!(err, EmbeddedError::Locked { .. }), "{err:?}");
            assert!(err.to_string().contains(&path.display().to_string()));
            lock_checked = true;
        }
    }
    // Land the kill at a random point inside the next write, not right after a line.
    let spin_until = std::time::Instant::now() + Duration::from_micros(extra_spin);
    while std::time::Instant::now() < spin_until {
        std::hint::spin_loop();
    }
    child.kill().unwrap(); // SIGKILL on Unix
    // Lines the child printed before it died were acknowledged too.
    for line in lines {
        match line {
            Ok(line) => parse(&line, &mut acked),
            Err(_) => break, // a torn last line is not an acknowledgement
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed: {status:?}");
    acked
}

#[test]
fn acknowledged_operations_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    drop(open(&path)); // create it
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let mut last: BTreeMap<u64, Last> = BTreeMap::new();
    let mut total = 0;
    let mut landed = 0;
    for round in 1..=ROUNDS {
        let kill_after = 1 + rng.below(300);
        let spin = rng.below(3_000);
        let acked = run_child(&path, round, kill_after, spin);
        total += acked.len();
        let mut max_enq = 0;
        for (op, id) in &acked {
            let state = match op.as_str() {
                "ENQ" => {
                    max_enq = max_enq.max(*id);
                    Last::Enqueued
                }
                "CLAIM" => Last::Claimed,
                "REQ" => Last::Requeued,
                "DONE" => Last::Done,
                other => panic!("unknown ack {other}"),
            };
            last.insert(*id, state);
        }
        // The store opens fine and holds every acknowledged operation.
        let q = open(&path);
        let Fetched::Records(all) = q.backend().read(&Read::All).unwrap() else {
            panic!("records");
        };
        let stored: BTreeMap<u64, _> = all.into_iter().map(|v| (v.record.id.0, v)).collect();
        let mut surprises = Vec::new();
        for (&id, &state) in &last {
            let present = stored.get(&id);
            let finished = q.finished(JobId(id)).unwrap();
            assert!(
                !(present.is_some() && finished.is_some()),
                "round {round} seed {seed}: job {id} both stored and finished"
            );
            match state {
                Last::Done => {
                    assert!(
                        present.is_none(),
                        "round {round} seed {seed}: completed job {id} is back"
                    );
                    let f = finished.unwrap_or_else(|| {
                        panic!("round {round} seed {seed}: completed job {id} forgotten")
                    });
                    assert_eq!(f.how, Completion::TimedOut.to_string());
                }
                Last::Enqueued | Last::Claimed | Last::Requeued => {
                    assert!(
                        present.is_some() || finished.is_some(),
                        "round {round} seed {seed}: acknowledged job {id} ({state:?}) lost"
                    );
                    let r = present.map(|v| &v.record);
                    let consistent = match (state, r) {
                        (Last::Claimed, Some(r)) => r.lease().is_some(),
                        (Last::Requeued, Some(r)) => r.lease().is_none(),
                        (Last::Enqueued, Some(_)) => true,
                        _ => false,
                    };
                    if !consistent {
                        surprises.push((id, state));
                    }
                }
            }
        }
        // Only the operation in flight at the kill may have landed unacknowledged.
        assert!(
            surprises.len() <= 1,
            "round {round} seed {seed}: several jobs moved without an ack: {surprises:?}"
        );
        let unknown: Vec<u64> = stored
            .keys()
            .filter(|id| !last.contains_key(id))
            .copied()
            .collect();
        assert!(
            unknown.is_empty() || unknown == vec![max_enq + 1],
            "round {round} seed {seed}: unexpected jobs {unknown:?} (last acked enqueue {max_enq})"
        );
        // What the in-flight operation did is now the known state of its job.
        landed += unknown.len() + surprises.len();
        for id in unknown {
            last.insert(id, Last::Enqueued);
        }
        for (id, _) in surprises {
            let state = match stored.get(&id) {
                None => Last::Done,
                Some(v) if v.record.lease().is_some() => Last::Claimed,
                Some(_) => Last::Enqueued,
            };
            last.insert(id, state);
        }
        // Indexes agree with the records.
        let listing = q.list(Timestamp(u64::MAX / 2)).unwrap();
        assert_eq!(
            listing.queued.len() + listing.claimed.len() + listing.dead.len(),
            stored.len()
        );
        let Fetched::Records(queued) = q
            .backend()
            .read(&Read::Queued {
                offset: 0,
                limit: usize::MAX,
            })
            .unwrap()
        else {
            panic!("queued");
        };
        assert_eq!(
            queued.len(),
            listing.queued.len(),
            "round {round} seed {seed}"
        );
        let ids: BTreeSet<u64> = queued.iter().map(|v| v.record.id.0).collect();
        assert_eq!(ids.len(), queued.len(), "duplicates in the claim order");
    }
    eprintln!(
        "{ROUNDS} rounds, {total} acknowledged operations checked, {landed} unacknowledged in-flight operations landed"
    );
    assert!(total >= ROUNDS as usize);
}
