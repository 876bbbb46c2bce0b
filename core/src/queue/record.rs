//! The stored form of one job: what the queue knows about it, persisted as JSON by real stores.

use crate::handler::{ClaimedJob, GithubJobStatus, JobRef};
use crate::ids::{HostId, JobId};
use crate::labels::VmSpec;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Version of the JSON layout of [`JobRecord`]; bumped on incompatible changes so an old binary
/// reading a newer record reports [`DecodeError::UnsupportedSchema`] instead of misreading it.
pub const RECORD_SCHEMA: u32 = 1;

/// Reason code the reaper writes when a lease lapsed without being renewed.
pub const REASON_LEASE_EXPIRED: &str = "lease_expired";

/// Reason code a store writes when a stored record cannot be decoded; the record goes to the
/// dead letter as a placeholder ([`JobRecord::corrupt`]) so an operator sees it and nothing
/// crashes or silently drops a job.
pub const REASON_CORRUPT_RECORD: &str = "corrupt_record";

/// What the queue is told about a new job (by the receiver's webhook, a redelivery or a
/// reconciliation pass); everything else in a [`JobRecord`] is the queue's own bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    /// GitHub's workflow job id, the job's key everywhere.
    pub id: JobId,
    /// Workflow run id, needed to cancel a run.
    pub run_id: u64,
    /// Repository owner; claim filters may restrict hosts to one owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// The job's `runs-on` labels; they say which template it needs.
    pub labels: Vec<String>,
    /// The raw webhook or API payload (JSON text), kept verbatim for operators and debugging.
    pub payload: String,
}

/// A job's status in GitHub as the queue last heard it; it only ever moves forward
/// (queued → in_progress → completed) so late or duplicate news cannot undo newer news.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a runner.
    Queued,
    /// A runner took it.
    InProgress {
        /// The runner's name, when GitHub said it.
        runner: Option<String>,
    },
    /// GitHub finished it (success, failure, cancelled...).
    Completed {
        /// GitHub's conclusion, when it gave one.
        conclusion: Option<String>,
    },
}

impl JobStatus {
    /// Position in the forward-only order; news with a rank not above the current is stale.
    pub fn rank(&self) -> u8 {
        match self {
            JobStatus::Queued => 0,
            JobStatus::InProgress { .. } => 1,
            JobStatus::Completed { .. } => 2,
        }
    }
}

impl JobStatus {
    /// Whether GitHub finished the job: nothing is left to run, so it is never queued again.
    pub fn is_completed(&self) -> bool {
        matches!(self, JobStatus::Completed { .. })
    }

    /// Whether the job still waits for a runner. GitHub never hands a job that a runner took
    /// (`in_progress`) to another runner: if that runner dies the job fails. So a job past
    /// `queued` is never claimable; a claim would start a VM whose runner gets no job (or
    /// another job, which is then requeued though GitHub runs it).
    pub fn waits_for_runner(&self) -> bool {
        matches!(self, JobStatus::Queued)
    }
}

impl From<&GithubJobStatus> for JobStatus {
    fn from(s: &GithubJobStatus) -> Self {
        match s {
            GithubJobStatus::Queued => JobStatus::Queued,
            GithubJobStatus::InProgress { runner } => JobStatus::InProgress {
                runner: runner.clone(),
            },
            GithubJobStatus::Completed { conclusion } => JobStatus::Completed {
                conclusion: conclusion.clone(),
            },
        }
    }
}

/// A claim on a job: who holds it and until when. A lease is live while `now < expires_at`;
/// at or after `expires_at` it is expired even before the reaper has run, so every store can
/// decide "does this host still hold the job" from the record and `now` alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The claiming host.
    pub host: HostId,
    /// When the claim was taken.
    pub claimed_at: Timestamp,
    /// When it lapses unless renewed.
    pub expires_at: Timestamp,
}

impl Lease {
    /// Whether the lease still holds at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

/// Where a job is in the queue. One enum rather than flags, so a record is in exactly one of
/// queued, claimed or dead by construction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "place", rename_all = "snake_case")]
pub enum Place {
    /// Waiting to be claimed (once `ready_at` has passed).
    Queued,
    /// Claimed by a host under a lease.
    Claimed {
        /// The lease.
        lease: Lease,
    },
    /// In the dead letter, waiting for an operator.
    Dead {
        /// When it got there.
        since: Timestamp,
    },
}

impl Place {
    /// A short name for listings and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Place::Queued => "queued",
            Place::Claimed { .. } => "claimed",
            Place::Dead { .. } => "dead",
        }
    }
}

/// One entry of a job's reason history: why it left a host or changed place, kept across
/// requeues and dead letter so an operator can see the whole story.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonEntry {
    /// When.
    pub at: Timestamp,
    /// Stable snake_case code (the handler's `Reason::code`, `lease_expired`, an operator's).
    pub reason: String,
    /// The host involved (the claimer, or the lease holder for a reaped job); `None` for
    /// operator and store actions.
    pub host: Option<HostId>,
}

/// Everything the queue keeps about one job, keyed by GitHub's job id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Layout version ([`RECORD_SCHEMA`]).
    pub schema: u32,
    /// GitHub's workflow job id.
    pub id: JobId,
    /// Workflow run id.
    pub run_id: u64,
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// The `runs-on` labels.
    pub labels: Vec<String>,
    /// Template and tag read from the labels; `None` when the labels name none, so the job is
    /// stored (visible to operators) but no host will ever claim it.
    pub spec: Option<VmSpec>,
    /// GitHub's status as last heard.
    pub status: JobStatus,
    /// Where the job is.
    pub place: Place,
    /// Claims so far, including the current one. Never decreases, except when an operator
    /// requeues the job from the dead letter (which resets it to 0).
    pub attempts: u32,
    /// How many of those claims ended in an uncounted requeue (host trouble, such as a stop);
    /// they do not count toward `max_attempts`.
    pub uncounted: u32,
    /// When the queue first heard of the job; the claim order key (see the module docs).
    pub enqueued_at: Timestamp,
    /// The job may not be claimed before this instant (a requeue delay).
    pub ready_at: Timestamp,
    /// When it was last claimed.
    pub last_claimed_at: Option<Timestamp>,
    /// Last change of any kind.
    pub updated_at: Timestamp,
    /// Why it moved, oldest first.
    pub history: Vec<ReasonEntry>,
    /// The raw event payload (JSON text), opaque to the queue.
    pub payload: String,
}

/// What [`JobRecord::load`] made of stored bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    /// A good record.
    Record(JobRecord),
    /// Undecodable bytes: the placeholder to store in the dead letter, and why (for the log).
    Corrupt {
        /// The dead-letter placeholder keeping the raw bytes.
        placeholder: JobRecord,
        /// What was wrong.
        error: DecodeError,
    },
}

/// Why stored bytes could not be read back as a [`JobRecord`]. Stores never panic on these:
/// they move the record to the dead letter with reason [`REASON_CORRUPT_RECORD`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or JSON of the wrong shape.
    #[error("record is not valid JSON for a job record at line {line} column {column}: {message}")]
    Json {
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// Written by a newer (or unknown) layout.
    #[error("record has schema {0}, this build reads schema {RECORD_SCHEMA}")]
    UnsupportedSchema(u32),
    /// Parsed, but breaks a rule every record keeps.
    #[error("record is inconsistent: {0}")]
    Inconsistent(String),
}

/// Why a record could not be written as JSON (cannot happen for a well-formed record; typed so
/// library code never unwraps).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("record could not be encoded: {0}")]
pub struct EncodeError(pub String);

impl JobRecord {
    /// A freshly enqueued record: queued, no attempts, ready at once.
    pub fn new(job: NewJob, now: Timestamp) -> Self {
        let spec = VmSpec::from_labels(&job.labels).ok();
        Self {
            schema: RECORD_SCHEMA,
            id: job.id,
            run_id: job.run_id,
            owner: job.owner,
            repo: job.repo,
            labels: job.labels,
            spec,
            status: JobStatus::Queued,
            place: Place::Queued,
            attempts: 0,
            uncounted: 0,
            enqueued_at: now,
            ready_at: now,
            last_claimed_at: None,
            updated_at: now,
            history: Vec::new(),
            payload: job.payload,
        }
    }

    /// The placeholder a store puts in the dead letter for bytes under job key `id` that
    /// failed to decode: the raw text is kept in `payload` for the operator, the decode error
    /// is the history's `corrupt_record` entry, and no host can claim it (no labels).
    pub fn corrupt(id: JobId, raw: &[u8], error: &DecodeError, now: Timestamp) -> Self {
        Self {
            schema: RECORD_SCHEMA,
            id,
            run_id: 0,
            owner: String::new(),
            repo: String::new(),
            labels: Vec::new(),
            spec: None,
            status: JobStatus::Queued,
            place: Place::Dead { since: now },
            attempts: 0,
            uncounted: 0,
            enqueued_at: now,
            ready_at: now,
            last_claimed_at: None,
            updated_at: now,
            history: vec![ReasonEntry {
                at: now,
                reason: format!("{REASON_CORRUPT_RECORD}: {error}"),
                host: None,
            }],
            payload: String::from_utf8_lossy(raw).into_owned(),
        }
    }

    /// Reads a stored record; never panics, so a store can dead-letter what it cannot read.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let record: Self = serde_json::from_slice(bytes).map_err(|e| DecodeError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        if record.schema != RECORD_SCHEMA {
            return Err(DecodeError::UnsupportedSchema(record.schema));
        }
        if record.uncounted > record.attempts {
            return Err(DecodeError::Inconsistent(format!(
                "{} uncounted claims out of {} claims",
                record.uncounted, record.attempts
            )));
        }
        if matches!(record.place, Place::Claimed { .. }) && record.attempts == 0 {
            return Err(DecodeError::Inconsistent(
                "claimed with zero attempts".to_owned(),
            ));
        }
        Ok(record)
    }

    /// Reads the record a store holds under key `key`, or, when the bytes do not decode or
    /// belong to another job, builds the [`JobRecord::corrupt`] placeholder to put in the dead
    /// letter instead. Every store loads records through this, so a corrupt record is handled
    /// the same way everywhere.
    pub fn load(key: JobId, bytes: &[u8], now: Timestamp) -> Loaded {
        let decoded = Self::decode(bytes).and_then(|r| {
            if r.id == key {
                Ok(r)
            } else {
                Err(DecodeError::Inconsistent(format!(
                    "stored under {key} but describes {}",
                    r.id
                )))
            }
        });
        match decoded {
            Ok(record) => Loaded::Record(record),
            Err(error) => Loaded::Corrupt {
                placeholder: Self::corrupt(key, bytes, &error, now),
                error,
            },
        }
    }

    /// The JSON a store persists.
    pub fn encode(&self) -> Result<String, EncodeError> {
        serde_json::to_string(self).map_err(|e| EncodeError(e.to_string()))
    }

    /// The current lease, if the job is claimed.
    pub fn lease(&self) -> Option<&Lease> {
        match &self.place {
            Place::Claimed { lease } => Some(lease),
            _ => None,
        }
    }

    /// Whether `host` holds a live lease on the job at `now`: the one test behind every
    /// `LeaseLost` answer.
    pub fn is_held_by(&self, host: &HostId, now: Timestamp) -> bool {
        self.lease()
            .is_some_and(|l| &l.host == host && l.is_live(now))
    }

    /// Claims that count toward `max_attempts` (claims minus uncounted requeues).
    pub fn counted_attempts(&self) -> u32 {
        self.attempts.saturating_sub(self.uncounted)
    }

    /// The claim order key: oldest enqueue first, job id to break ties deterministically.
    pub fn order_key(&self) -> (Timestamp, JobId) {
        (self.enqueued_at, self.id)
    }

    /// Where the job lives in GitHub's API.
    pub fn job_ref(&self) -> JobRef {
        JobRef {
            id: self.id,
            run_id: self.run_id,
            owner: self.owner.clone(),
            repo: self.repo.clone(),
        }
    }

    /// What the handler receives for a claim: `attempt` is the counted claims so far, this one
    /// included, the same count the store's `max_attempts` limits. A claim given back uncounted
    /// (host trouble, a runner another job took, a job already held on that host) gave its
    /// attempt back, so it must not bring the handler's own retry limit closer either.
    pub fn claimed_job(&self) -> ClaimedJob {
        ClaimedJob {
            job: self.job_ref(),
            labels: self.labels.clone(),
            attempt: self.counted_attempts().max(1),
        }
    }

    /// Appends to the reason history.
    pub(crate) fn note(&mut self, now: Timestamp, reason: &str, host: Option<&HostId>) {
        self.history.push(ReasonEntry {
            at: now,
            reason: reason.to_owned(),
            host: host.cloned(),
        });
        self.updated_at = now;
    }
}

impl From<&JobRecord> for ClaimedJob {
    fn from(r: &JobRecord) -> Self {
        r.claimed_job()
    }
}
