//! The embedded single-host store: the job queue in one local file, for a Mac that runs alone
//! (no `database` in the config, the default).
//!
//! # Why redb rather than SQLite
//!
//! [redb](https://www.redb.org) is a pure-Rust, single-file, ACID key-value store: no C
//! toolchain or system library to build or ship (SQLite needs a C compiler or a matching
//! system `libsqlite3`), one file to back up or delete, copy-on-write B-trees whose commit
//! with [`redb::Durability::Immediate`] fsyncs before it returns (so an acknowledged queue
//! operation survives a crash or power loss, and a torn write is never visible), and MVCC
//! readers that never block the writer. The queue needs nothing relational: its reads are
//! "one record by id", "queued records in claim order" and "claimed records by lease expiry",
//! which are ordered-map ranges, so SQL would add a query language and a C dependency for no
//! gain.
//!
//! # Layout
//!
//! | table | key | value |
//! |---|---|---|
//! | `records` | job id | (revision, place tag, place key, record JSON) |
//! | `queued` | (enqueued_at, job id) | () — claim order of queued records |
//! | `expiry` | (lease expires_at, job id) | () — claimed records by lease expiry |
//! | `finished` | job id | (finished at, how) |
//! | `finished_order` | (finished at, job id) | () — oldest forgotten first |
//! | `hosts` | host id | (last heartbeat, payload) |
//! | `meta` | name | u64 (`layout`, `revision`) |
//!
//! The place tag and key stored beside the JSON say which index entry a record has, so a
//! write removes the old entry without decoding the old JSON (which may be corrupt).
//!
//! # Semantics
//!
//! None here: every queue operation is core's [`anklet_core::queue::txn::Txn`], driven by
//! [`txn::Store`]; this backend only answers reads and applies guarded commits, each commit in
//! one redb write transaction that checks every guard first and returns only after the fsync.
//! A record that fails [`JobRecord::load`] is replaced, in a durable write before the read
//! answers, by the corrupt placeholder (dead letter, reason `corrupt_record`), logged with
//! `tracing`, and answered as that placeholder, so it stays visible to operators and nothing
//! panics.
//!
//! # Waking claimers
//!
//! There is no `wait_for_work` (Redis' blocking pop): the file is locked to one process, so
//! whatever enqueues (the daemon's webhook receiver) lives in the same process as the
//! claimers and wakes them in-process (`Input::QueueNotEmpty`).

use anklet_core::ids::{HostId, JobId};
use anklet_core::metrics::QueueDepth;
use anklet_core::queue::txn::{self, Commit, Fetched, Read, Versioned};
use anklet_core::queue::{
    EncodeError, Finished, JobRecord, Loaded, Place, QueueSettings, REASON_CORRUPT_RECORD,
};
use anklet_core::time::Timestamp;
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Record value: (revision, place tag, place key, record JSON).
type RecordValue = (u64, u8, u64, &'static [u8]);

const RECORDS: TableDefinition<u64, RecordValue> = TableDefinition::new("records");
const QUEUED: TableDefinition<(u64, u64), ()> = TableDefinition::new("queued");
const EXPIRY: TableDefinition<(u64, u64), ()> = TableDefinition::new("expiry");
const FINISHED: TableDefinition<u64, (u64, &str)> = TableDefinition::new("finished");
const FINISHED_ORDER: TableDefinition<(u64, u64), ()> = TableDefinition::new("finished_order");
const HOSTS: TableDefinition<&str, (u64, &str)> = TableDefinition::new("hosts");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Version of the table layout above; a file written with another layout is refused.
pub const LAYOUT: u64 = 1;

const META_LAYOUT: &str = "layout";
const META_REVISION: &str = "revision";

/// Place tags stored beside each record (see the module docs).
const TAG_QUEUED: u8 = 0;
const TAG_CLAIMED: u8 = 1;
const TAG_OTHER: u8 = 2;

/// Reads that find corrupt or mis-indexed records repair them and read again; a repair makes
/// every record load cleanly, so a second pass always suffices and this bound only guards
/// against a bug looping forever.
const MAX_REPAIR_PASSES: usize = 4;

/// Why the embedded store failed. Every variant says what to look at; none is retried inside
/// the store (the caller's operation may simply be run again: commits are guarded).
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// Another process (a second anklet daemon?) has the store file open; redb locks it so two
    /// writers never corrupt each other.
    #[error(
        "embedded store {path} is locked by another process (is another anklet running with the same store file?)"
    )]
    Locked {
        /// The store file.
        path: PathBuf,
    },
    /// The file could not be created, opened or read as a redb database.
    #[error("embedded store {path} could not be opened: {source}")]
    Open {
        /// The store file.
        path: PathBuf,
        /// redb's reason.
        #[source]
        source: redb::DatabaseError,
    },
    /// The folder for the store file could not be created.
    #[error("embedded store folder {path} could not be created: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was written by a build with another table layout.
    #[error("embedded store {path} has layout {found}, this build reads layout {LAYOUT}")]
    Layout {
        /// The store file.
        path: PathBuf,
        /// The layout found in the file.
        found: u64,
    },
    /// A read or write failed inside redb (I/O error, disk full, corrupted file).
    #[error("embedded store: {0}")]
    Database(#[from] redb::Error),
    /// A record could not be encoded (cannot happen for a well-formed record).
    #[error("embedded store: {0}")]
    Encode(#[from] EncodeError),
    /// Reads kept finding records to repair (a bug: one repair pass suffices).
    #[error("embedded store: records still needed repair after {MAX_REPAIR_PASSES} passes")]
    RepairLoop,
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for EmbeddedError {
            fn from(e: $t) -> Self {
                EmbeddedError::Database(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// The embedded store's [`txn::Backend`]: the queue's records, finished memory and host
/// registry in one redb file. See the module docs for the layout and guarantees.
pub struct EmbeddedBackend {
    db: Database,
    path: PathBuf,
    finished_capacity: usize,
    clock: fn() -> Timestamp,
}

impl std::fmt::Debug for EmbeddedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBackend")
            .field("path", &self.path)
            .field("finished_capacity", &self.finished_capacity)
            .finish_non_exhaustive()
    }
}

/// The embedded store as a [`anklet_core::queue::JobQueue`]: core's transactions driven over
/// [`EmbeddedBackend`]. Build it with [`open_store`].
pub type EmbeddedStore = txn::Store<EmbeddedBackend>;

/// Opens (creating if needed) the store file at `path` as a queue with `settings`; the finished
/// memory keeps `settings.finished_capacity` jobs.
pub fn open_store(
    path: impl AsRef<Path>,
    settings: QueueSettings,
) -> Result<EmbeddedStore, EmbeddedError> {
    let backend = EmbeddedBackend::open(path)?.with_finished_capacity(settings.finished_capacity);
    Ok(txn::Store::new(backend, settings))
}

/// The wall clock in milliseconds, used only to date corrupt-record placeholders (reads carry
/// no `now`); a clock before the epoch reads as 0.
fn wall_clock() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    Timestamp(ms)
}

/// Where a record is indexed: its place tag and key.
fn place_of(record: &JobRecord) -> (u8, u64) {
    match &record.place {
        Place::Queued => (TAG_QUEUED, record.enqueued_at.as_millis()),
        Place::Claimed { lease } => (TAG_CLAIMED, lease.expires_at.as_millis()),
        Place::Dead { since } => (TAG_OTHER, since.as_millis()),
    }
}

/// A fix a read found necessary; applied in one durable write before the read is answered.
#[derive(Debug)]
enum Repair {
    /// Rewrite the record (a corrupt one's placeholder, or a record whose index entry is wrong).
    Put(Box<JobRecord>),
    /// Drop a `queued` index entry whose record is gone or not queued.
    DropQueued((u64, u64)),
    /// Drop an `expiry` index entry whose record is gone or not claimed.
    DropExpiry((u64, u64)),
}

impl EmbeddedBackend {
    /// Opens the store file at `path`, creating it (and its folder) and the tables if needed.
    /// Fails with [`EmbeddedError::Locked`] when another process has it open. The finished
    /// memory keeps [`QueueSettings::default`]'s capacity unless changed with
    /// [`Self::with_finished_capacity`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, EmbeddedError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| EmbeddedError::Folder {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let db = Database::builder()
            // The queue is small; redb's default 1 GiB cache bound is far more than needed.
            .set_cache_size(64 * 1024 * 1024)
            .create(&path)
            .map_err(|source| match source {
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    EmbeddedError::Locked { path: path.clone() }
                }
                source => EmbeddedError::Open {
                    path: path.clone(),
                    source,
                },
            })?;
        let mut w = db.begin_write()?;
        w.set_durability(Durability::Immediate)?;
        {
            w.open_table(RECORDS)?;
            w.open_table(QUEUED)?;
            w.open_table(EXPIRY)?;
            w.open_table(FINISHED)?;
            w.open_table(FINISHED_ORDER)?;
            w.open_table(HOSTS)?;
            let mut meta = w.open_table(META)?;
            let found = meta.get(META_LAYOUT)?.map(|g| g.value());
            match found {
                None => {
                    meta.insert(META_LAYOUT, LAYOUT)?;
                }
                Some(LAYOUT) => {}
                Some(found) => return Err(EmbeddedError::Layout { path, found }),
            }
        }
        w.commit()?;
        tracing::debug!(path = %path.display(), "embedded store open");
        Ok(Self {
            db,
            path,
            finished_capacity: QueueSettings::default().finished_capacity,
            clock: wall_clock,
        })
    }

    /// Sets how many finished jobs the memory keeps (oldest forgotten first); it should match
    /// the queue's [`QueueSettings::finished_capacity`], which [`open_store`] does.
    pub fn with_finished_capacity(mut self, capacity: usize) -> Self {
        self.finished_capacity = capacity;
        self
    }

    /// The store file, for logs and operator messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Begins a write whose commit returns only after the fsync (redb's default, stated here
    /// so a change of default cannot weaken the guarantee).
    fn begin_durable(&self) -> Result<WriteTransaction, EmbeddedError> {
        let mut w = self.db.begin_write()?;
        w.set_durability(Durability::Immediate)?;
        Ok(w)
    }

    /// Answers a read once, collecting what needs repair instead of answering when something
    /// does.
    fn try_read(&self, read: &Read) -> Result<Result<Fetched, Vec<Repair>>, EmbeddedError> {
        let r = self.db.begin_read()?;
        let records = r.open_table(RECORDS)?;
        let now = (self.clock)();
        let mut repairs = Vec::new();
        let fetched = match read {
            Read::Job(id) => {
                let record = load(&records, id.0, now, &mut repairs)?;
                let finished = r.open_table(FINISHED)?.get(id.0)?.is_some();
                Fetched::Job { record, finished }
            }
            Read::Queued { offset, limit } => {
                let index = r.open_table(QUEUED)?;
                let mut page = Vec::new();
                for entry in index.range::<(u64, u64)>(..)?.skip(*offset).take(*limit) {
                    let (key, _) = entry?;
                    let key = key.value();
                    match load(&records, key.1, now, &mut repairs)? {
                        Some(v) if v.record.place == Place::Queued => {
                            if place_of(&v.record) != (TAG_QUEUED, key.0) {
                                repairs.push(Repair::DropQueued(key));
                                repairs.push(Repair::Put(Box::new(v.record)));
                            } else {
                                page.push(v);
                            }
                        }
                        _ => repairs.push(Repair::DropQueued(key)),
                    }
                }
                Fetched::Records(page)
            }
            Read::Expired(at) => {
                let index = r.open_table(EXPIRY)?;
                let mut expired = Vec::new();
                for entry in index.range((0, 0)..=(at.as_millis(), u64::MAX))? {
                    let (key, _) = entry?;
                    let key = key.value();
                    match load(&records, key.1, now, &mut repairs)? {
                        Some(v) if v.record.lease().is_some() => {
                            if place_of(&v.record) != (TAG_CLAIMED, key.0) {
                                repairs.push(Repair::DropExpiry(key));
                                repairs.push(Repair::Put(Box::new(v.record)));
                            } else if v.record.lease().is_some_and(|l| !l.is_live(*at)) {
                                expired.push(v);
                            }
                        }
                        _ => repairs.push(Repair::DropExpiry(key)),
                    }
                }
                Fetched::Records(expired)
            }
            Read::All => {
                let mut all = Vec::new();
                for entry in records.iter()? {
                    let (key, value) = entry?;
                    if let Some(v) = decode(key.value(), value.value(), now, &mut repairs) {
                        all.push(v);
                    }
                }
                Fetched::Records(all)
            }
            Read::Depth => {
                // Table lengths are stored in redb's table headers: O(1), no record decoded.
                // Every commit keeps one index entry per queued or claimed record, so the rest
                // of the records are dead.
                let queued = r.open_table(QUEUED)?.len()?;
                let claimed = r.open_table(EXPIRY)?.len()?;
                let dead = records
                    .len()?
                    .saturating_sub(queued)
                    .saturating_sub(claimed);
                Fetched::Depth(QueueDepth {
                    queued,
                    claimed,
                    dead,
                })
            }
            Read::Finished(id) => {
                let finished = r.open_table(FINISHED)?;
                let entry = finished.get(id.0)?.map(|g| {
                    let (at, how) = g.value();
                    Finished {
                        at: Timestamp(at),
                        how: how.to_owned(),
                    }
                });
                Fetched::Finished(entry)
            }
            Read::Hosts => {
                let hosts = r.open_table(HOSTS)?;
                let mut out = Vec::new();
                for entry in hosts.iter()? {
                    let (host, value) = entry?;
                    let (at, payload) = value.value();
                    out.push((
                        HostId(host.value().to_owned()),
                        Timestamp(at),
                        payload.to_owned(),
                    ));
                }
                Fetched::Hosts(out)
            }
        };
        Ok(if repairs.is_empty() {
            Ok(fetched)
        } else {
            Err(repairs)
        })
    }

    /// Applies read repairs in one durable write.
    fn repair(&self, repairs: Vec<Repair>) -> Result<(), EmbeddedError> {
        let w = self.begin_durable()?;
        {
            let mut t = Tables::open(&w)?;
            for fix in repairs {
                match fix {
                    Repair::Put(record) => {
                        tracing::info!(
                            path = %self.path.display(),
                            job = %record.id,
                            place = record.place.name(),
                            "embedded store: rewriting record"
                        );
                        t.put(record.id, &record)?;
                    }
                    Repair::DropQueued(key) => {
                        t.queued.remove(key)?;
                    }
                    Repair::DropExpiry(key) => {
                        t.expiry.remove(key)?;
                    }
                }
            }
        }
        w.commit()?;
        Ok(())
    }
}

/// Loads job `id` from the records table, if present (see [`decode`]).
fn load(
    records: &impl ReadableTable<u64, RecordValue>,
    id: u64,
    now: Timestamp,
    repairs: &mut Vec<Repair>,
) -> Result<Option<Versioned>, EmbeddedError> {
    Ok(records
        .get(id)?
        .and_then(|g| decode(id, g.value(), now, repairs)))
}

/// Decodes a stored record through [`JobRecord::load`]. A corrupt one is logged and queued for
/// repair (its placeholder is written), and answers nothing now: the read runs again after the
/// repair and then answers the placeholder with its new revision.
fn decode(
    id: u64,
    (rev, tag, key, json): (u64, u8, u64, &[u8]),
    now: Timestamp,
    repairs: &mut Vec<Repair>,
) -> Option<Versioned> {
    match JobRecord::load(JobId(id), json, now) {
        Loaded::Record(record) => {
            if place_of(&record) != (tag, key) {
                // The index tag disagrees with the record: re-index it.
                repairs.push(Repair::Put(Box::new(record)));
                return None;
            }
            Some(Versioned { rev, record })
        }
        Loaded::Corrupt { placeholder, error } => {
            tracing::warn!(
                job = id,
                error = %error,
                reason = REASON_CORRUPT_RECORD,
                "embedded store: stored record does not decode; moving it to the dead letter"
            );
            repairs.push(Repair::Put(Box::new(placeholder)));
            None
        }
    }
}

/// The record tables of one write transaction.
struct Tables<'w> {
    records: redb::Table<'w, u64, RecordValue>,
    queued: redb::Table<'w, (u64, u64), ()>,
    expiry: redb::Table<'w, (u64, u64), ()>,
    meta: redb::Table<'w, &'static str, u64>,
}

impl<'w> Tables<'w> {
    fn open(w: &'w WriteTransaction) -> Result<Self, EmbeddedError> {
        Ok(Self {
            records: w.open_table(RECORDS)?,
            queued: w.open_table(QUEUED)?,
            expiry: w.open_table(EXPIRY)?,
            meta: w.open_table(META)?,
        })
    }

    /// The revision of job `id`'s record, if any.
    fn rev(&self, id: u64) -> Result<Option<u64>, EmbeddedError> {
        Ok(self.records.get(id)?.map(|g| g.value().0))
    }

    /// Removes job `id`'s record and its index entry.
    fn delete(&mut self, id: u64) -> Result<(), EmbeddedError> {
        let old = self.records.remove(id)?.map(|g| {
            let (_, tag, key, _) = g.value();
            (tag, key)
        });
        match old {
            Some((TAG_QUEUED, key)) => {
                self.queued.remove((key, id))?;
            }
            Some((TAG_CLAIMED, key)) => {
                self.expiry.remove((key, id))?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Writes job `id`'s record under a fresh revision, replacing its index entry.
    fn put(&mut self, id: JobId, record: &JobRecord) -> Result<(), EmbeddedError> {
        let json = record.encode()?;
        self.delete(id.0)?;
        let rev = self.meta.get(META_REVISION)?.map_or(0, |g| g.value()) + 1;
        self.meta.insert(META_REVISION, rev)?;
        let (tag, key) = place_of(record);
        self.records
            .insert(id.0, (rev, tag, key, json.as_bytes()))?;
        match tag {
            TAG_QUEUED => {
                self.queued.insert((key, id.0), ())?;
            }
            TAG_CLAIMED => {
                self.expiry.insert((key, id.0), ())?;
            }
            _ => {}
        }
        Ok(())
    }
}

impl txn::Backend for EmbeddedBackend {
    type Error = EmbeddedError;

    fn read(&mut self, read: &Read) -> Result<Fetched, Self::Error> {
        for _ in 0..MAX_REPAIR_PASSES {
            match self.try_read(read)? {
                Ok(fetched) => return Ok(fetched),
                Err(repairs) => self.repair(repairs)?,
            }
        }
        Err(EmbeddedError::RepairLoop)
    }

    fn commit(&mut self, commit: &Commit) -> Result<bool, Self::Error> {
        let w = self.begin_durable()?;
        {
            let mut t = Tables::open(&w)?;
            let finished = w.open_table(FINISHED)?;
            for write in &commit.writes {
                // `expect: None` also requires the job not to be remembered as finished.
                let remembered = write.expect.is_none() && finished.get(write.id.0)?.is_some();
                if remembered || t.rev(write.id.0)? != write.expect {
                    drop(finished);
                    drop(t);
                    w.abort()?;
                    return Ok(false);
                }
            }
            drop(finished);
            for write in &commit.writes {
                match &write.record {
                    Some(record) => t.put(write.id, record)?,
                    None => t.delete(write.id.0)?,
                }
            }
            if self.finished_capacity > 0 && !commit.remember.is_empty() {
                let mut finished = w.open_table(FINISHED)?;
                let mut order = w.open_table(FINISHED_ORDER)?;
                for (id, entry) in &commit.remember {
                    remember(
                        &mut finished,
                        &mut order,
                        self.finished_capacity,
                        *id,
                        entry,
                    )?;
                }
            }
            if let Some((host, at, payload)) = &commit.heartbeat {
                let mut hosts = w.open_table(HOSTS)?;
                hosts.insert(host.0.as_str(), (at.as_millis(), payload.as_str()))?;
            }
        }
        // Durability::Immediate: commit returns after the fsync.
        w.commit()?;
        Ok(true)
    }
}

/// Adds a job to the bounded finished memory, forgetting the oldest beyond `capacity`: the
/// same rule as [`anklet_core::queue::txn::remember`], over redb tables.
fn remember(
    finished: &mut redb::Table<'_, u64, (u64, &'static str)>,
    order: &mut redb::Table<'_, (u64, u64), ()>,
    capacity: usize,
    job: JobId,
    entry: &Finished,
) -> Result<(), EmbeddedError> {
    let at = entry.at.as_millis();
    let old = finished
        .insert(job.0, (at, entry.how.as_str()))?
        .map(|g| g.value().0);
    if let Some(old_at) = old {
        order.remove((old_at, job.0))?;
    }
    order.insert((at, job.0), ())?;
    let capacity = u64::try_from(capacity).unwrap_or(u64::MAX);
    while finished.len()? > capacity {
        let oldest = order.pop_first()?.map(|(k, _)| k.value());
        let Some((_, id)) = oldest else {
            break;
        };
        finished.remove(id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tokio daemon moves the backend into `spawn_blocking` closures.
    #[test]
    fn backend_is_send() {
        fn send<T: Send + 'static>() {}
        send::<EmbeddedBackend>();
        send::<EmbeddedStore>();
        send::<EmbeddedError>();
    }

    #[test]
    fn place_keys_follow_the_place() {
        let job = anklet_core::queue::NewJob {
            id: JobId(7),
            run_id: 1,
            owner: "o".into(),
            repo: "r".into(),
            labels: vec![],
            payload: "{}".into(),
        };
        let r = JobRecord::new(job, Timestamp(5));
        assert_eq!(place_of(&r), (TAG_QUEUED, 5));
    }
}
