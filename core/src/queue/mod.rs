//! The job queue's semantics, defined once: every store (this in-memory one, the Redis store,
//! the embedded store) implements [`JobQueue`] and is checked by the same [`conformance`] suite.
//!
//! Anklet's queue is a set of Redis lists claimed with `LRANGE` + `LREM` (two hosts can take
//! the same job), has no lease (a dead host strands its job), no dead letter and puts returned
//! jobs at the head of the line (see `anklet-spec.md` §2.1, §7.1, §7.2, §7.11). Here:
//!
//! - **Records.** A job is one [`JobRecord`] keyed by GitHub's job id, in exactly one
//!   [`Place`]: queued, claimed (under a [`Lease`]) or dead. Stores persist it as JSON
//!   ([`JobRecord::encode`]) and reads it back through [`JobRecord::load`]: bytes that fail
//!   [`JobRecord::decode`] (or describe another job than their key) never panic a store; it
//!   puts a placeholder ([`JobRecord::corrupt`]) in the dead letter with reason
//!   [`REASON_CORRUPT_RECORD`], keeping the raw text for the operator to inspect and remove.
//! - **Enqueue** is idempotent on the job id: a duplicate delivery, a redelivery or a
//!   reconciliation of a job that is queued, claimed, dead or *recently finished* adds nothing
//!   and answers [`EnqueueOutcome::AlreadyKnown`]. "Recently finished" is a bounded memory of
//!   removed job ids ([`QueueSettings::finished_capacity`], oldest forgotten first): without it
//!   a `queued` webhook redelivered after the job ran would run it again.
//! - **Status news** only moves forward (queued → in_progress → completed); stale news is
//!   ignored. A queued (unclaimed) job that GitHub reports in progress, completed or cancelled,
//!   and a dead-lettered job GitHub completed, is removed and remembered as finished
//!   (`github_in_progress(<runner>)`, `github_completed(<conclusion>)`): GitHub never hands a
//!   job a runner took to another runner (if that runner dies, the job fails), so a claim
//!   would only start a VM whose runner gets no job, or takes another one. Any other news is
//!   recorded on the record without removing it (a claimer reads it from there). In-progress
//!   or completed news for an unknown job is remembered as finished, so a `queued` event that
//!   arrives late does not enqueue a job a runner already took.
//! - **Claim order.** A claim takes, atomically, among queued jobs whose `ready_at` has passed
//!   and that the host's [`ClaimFilter`](crate::labels::ClaimFilter) accepts, the one with the
//!   smallest `(enqueued_at, job id)`. A requeued job keeps its original `enqueued_at`: once its
//!   requeue delay is over it is served in its original place in line, before jobs GitHub
//!   queued after it, because its user has been waiting since then (Anklet instead pushes it to
//!   the head at once, and a plain ready-time FIFO would send it behind every job that arrived
//!   during its first try). A job that keeps failing cannot hog the head: each counted requeue
//!   carries the handler's backoff delay and `max_attempts` sends it to the dead letter.
//! - **Leases.** A claim takes a lease until `now + lease` and counts an attempt
//!   (`attempts` = claims so far, this one included). A lease is live while
//!   `now < expires_at`. `renew_lease`, `complete`, `requeue` and `dead_letter` by a host that
//!   does not hold a live lease answer [`LeaseLost`] and change nothing, whether or not the
//!   reaper has run yet.
//! - **Requeue** puts the job back with `ready_at = now + delay` and the reason appended to its
//!   history. An uncounted requeue (host trouble, such as a stop) gives the attempt back by
//!   counting it in `uncounted`, so `attempts` itself never decreases. A counted requeue when
//!   the job has used `max_attempts` counted claims dead-letters it instead, history kept.
//!   A job GitHub already reported in progress or completed (news recorded while it was
//!   claimed or dead) is never put back in the queue: requeue, the reaper and a requeue from
//!   the dead letter drop it ([`Requeued::Dropped`]) and remember it as finished, so no VM is
//!   started for a job a runner already took (two runners of one host that swap jobs: the
//!   lifecycle whose runner was taken requeues its job, which the other runner may be running)
//!   or that is over. Hence a queued job's status is always `queued`, and a claim also skips
//!   any queued record whose status says otherwise (written by an older version).
//! - **Reaper.** [`JobQueue::reap_expired`] treats every lapsed lease as a counted requeue with
//!   reason [`REASON_LEASE_EXPIRED`] (or a dead letter over the limit). Any live node may run it.
//! - **Dead letter.** Listed, inspected, requeued by an operator (attempts reset to zero, reason
//!   appended) or removed (remembered as finished).
//! - **Hosts** send heartbeats with an opaque payload; listing marks those silent for longer
//!   than the caller's `stale_after` (Anklet's `last_update`).
//!
//! Time is always a parameter: the store's single clock. The queue never reads a clock.

pub mod conformance;
mod memory;
mod ops;
mod record;
pub mod redis_layout;
mod rules;
pub mod txn;

pub use memory::MemoryQueue;
pub use ops::{
    EnqueueOutcome, Finished, HostInfo, JobQueue, JobSummary, LeaseLost, NEWS_POLL_INTERVAL,
    NotInDeadLetter, QueueListing, QueueSettings, REAP_INTERVAL, Reaped, Requeued, StatusOutcome,
    apply, execute, news_of, store_op, store_result,
};
pub use record::{
    DecodeError, EncodeError, JobRecord, JobStatus, Lease, Loaded, NewJob, Place,
    REASON_CORRUPT_RECORD, REASON_LEASE_EXPIRED, RECORD_SCHEMA, ReasonEntry,
};
pub use txn::{Backend, MemoryBackend, Store, StoreError};
