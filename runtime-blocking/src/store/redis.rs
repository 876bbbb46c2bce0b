//! The Redis store over a blocking connection: a fleet of hosts shares one queue.
//!
//! Storage only. Every queue operation is core's [`Txn`](anklet_core::queue::txn::Txn) driven
//! by [`txn::Store`]; this backend answers its reads and applies its guarded commits through
//! the Lua scripts and encoders of [`anklet_core::queue::redis_layout`], which the tokio
//! runtime's async store uses too, so both runtimes share one layout and one commit.
//!
//! - **Timeouts.** Connecting is bounded by [`RedisOptions::connect_timeout`]; every command by
//!   [`RedisOptions::response_timeout`] (socket read and write timeouts); the blocking pop of
//!   [`RedisBackend::wait_for_work`] by its own timeout plus the response timeout.
//! - **Reconnects.** After an I/O error the connection is dropped and the next call reconnects.
//!   A failed connect waits `retry_delay * retry_backoff_factor^(n-1)` (capped at
//!   [`RedisOptions::max_backoff`]) before the next one, across calls too, so a caller looping
//!   on a dead server never spins; each step logs one `warn!` naming the attempt and the delay
//!   (never the password). [`RedisBackend::reconnects`] counts reconnects for metrics.
//! - **Retries.** A read that failed on I/O is retried after reconnecting (up to
//!   `max_retries`); a commit is not: it may have been applied, so the caller gets the error
//!   and retries the whole operation (every queue operation is safe to retry).
//! - **Corrupt records** come back from the decoder as dead-letter placeholders; the backend
//!   persists each one with a guarded commit before answering, and logs it.
//! - **Cluster** (`cluster_mode`) uses redis' sync `ClusterConnection`; all keys of a queue
//!   share one hash tag, so every script runs on one shard. Cluster mode has database 0 only.

use super::redis_conn::{connection_info, is_connection_error, is_loading};
use super::shared::CommitMany;
use anklet_core::config::DatabaseSettings;
use anklet_core::queue::QueueSettings;
use anklet_core::queue::redis_layout::{
    self, CommitLimits, DEFAULT_WAKE_CAP, DecodedRead, KeyName, LayoutError, MAX_COMMITS_PER_CALL,
    RedisLayout, Script, ScriptCall,
};
use anklet_core::queue::txn::{self, Commit, Fetched, Read};
use redis::ConnectionLike;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Connection and layout options that are not in Anklet's `database` config section.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// Where the queue's keys live.
    pub layout: RedisLayout,
    /// How many finished jobs the store remembers (from [`QueueSettings`]).
    pub finished_capacity: usize,
    /// How many wake tokens the wake list keeps.
    pub wake_cap: usize,
    /// Bound on opening a connection.
    pub connect_timeout: Duration,
    /// Bound on every command's answer.
    pub response_timeout: Duration,
    /// Longest wait between two connect attempts.
    pub max_backoff: Duration,
}

impl RedisOptions {
    /// Defaults for `layout` under the queue's `settings`: 5 s connect and response timeouts,
    /// backoff capped at 30 s.
    pub fn new(layout: RedisLayout, settings: &QueueSettings) -> Self {
        Self {
            layout,
            finished_capacity: settings.finished_capacity,
            wake_cap: DEFAULT_WAKE_CAP,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Why a Redis store call failed. The display never contains the password.
#[derive(Debug, thiserror::Error)]
pub enum RedisStoreError {
    /// The settings cannot describe a connection.
    #[error("redis settings: {0}")]
    Config(String),
    /// No connection could be opened.
    #[error("redis at {host}:{port} unreachable after {attempts} connect attempts: {source}")]
    Unreachable {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
        /// Attempts made by this call.
        attempts: u32,
        /// The last error.
        #[source]
        source: redis::RedisError,
    },
    /// A command failed (I/O, timeout, or a server error).
    #[error("redis command failed: {0}")]
    Command(#[source] redis::RedisError),
    /// A reply did not fit the layout, or a record could not be encoded.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// The two kinds of sync connection redis offers; both speak the same commands.
enum Conn {
    Single(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl Conn {
    fn as_dyn(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Conn::Single(c) => c,
            Conn::Cluster(c) => c.as_mut(),
        }
    }

    fn set_read_timeout(&self, d: Duration) -> redis::RedisResult<()> {
        match self {
            Conn::Single(c) => c.set_read_timeout(Some(d)),
            Conn::Cluster(c) => c.set_read_timeout(Some(d)),
        }
    }
}

#[allow(
    clippy::large_enum_variant,
    reason = "one per store, built once; the size depends on redis' enabled features"
)]
enum Client {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

/// Counters a metrics endpoint reads; shared, so they can be read while the backend is busy.
#[derive(Debug, Default)]
pub struct RedisCounters {
    /// Connections re-established after a failure or a dropped connection.
    pub reconnects: AtomicU64,
    /// Connect attempts, successful or not (tests use it to prove there is no busy loop).
    pub connect_attempts: AtomicU64,
    /// Corrupt records moved to the dead letter.
    pub quarantined: AtomicU64,
}

/// A [`txn::Backend`] over one blocking Redis connection (see the module docs).
pub struct RedisBackend {
    db: DatabaseSettings,
    opts: RedisOptions,
    client: Client,
    conn: Option<Conn>,
    scripts: [redis::Script; 3],
    /// Consecutive failed connect attempts.
    failures: u32,
    /// No connect attempt before this instant (backoff).
    next_try: Option<Instant>,
    connected_once: bool,
    counters: Arc<RedisCounters>,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client holds the password; show only what identifies the store.
        f.debug_struct("RedisBackend")
            .field("host", &self.db.url)
            .field("port", &self.db.port)
            .field("queue", &self.opts.layout.queue())
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// A backend for `db` with `opts`. Does not connect yet: the first call does, so a daemon
    /// can start while Redis is still coming up.
    pub fn new(db: &DatabaseSettings, opts: RedisOptions) -> Result<Self, RedisStoreError> {
        let client = client(db, &opts)?;
        Ok(Self {
            db: db.clone(),
            opts,
            client,
            conn: None,
            scripts: Script::ALL.map(|s| redis::Script::new(s.source())),
            failures: 0,
            next_try: None,
            connected_once: false,
            counters: Arc::default(),
        })
    }

    /// The key layout.
    pub fn layout(&self) -> &RedisLayout {
        &self.opts.layout
    }

    /// Shared counters (reconnects, connect attempts, quarantined records) for metrics.
    pub fn counters(&self) -> Arc<RedisCounters> {
        Arc::clone(&self.counters)
    }

    /// Reconnects so far.
    pub fn reconnects(&self) -> u64 {
        self.counters.reconnects.load(Ordering::Relaxed)
    }

    /// Blocks until a job was queued (a wake token arrives) or `timeout` passes; `true` when
    /// woken. Claimers call it when a claim found nothing, so they pick up new jobs at once
    /// without polling. A token may be stale (the job was claimed by another host): callers
    /// just claim and wait again.
    pub fn wait_for_work(&mut self, timeout: Duration) -> Result<bool, RedisStoreError> {
        let key = self.opts.layout.key(KeyName::Wake).to_owned();
        self.ensure_connected()?;
        let block = timeout.max(Duration::from_millis(1));
        let response = self.opts.response_timeout;
        let Some(conn) = self.conn.as_mut() else {
            return Ok(false);
        };
        let result = conn.set_read_timeout(block + response).and_then(|()| {
            let popped: redis::RedisResult<Option<(String, String)>> = redis::cmd("BLPOP")
                .arg(&key)
                .arg(block.as_secs_f64())
                .query(conn.as_dyn());
            // Back to the normal bound whatever the pop answered.
            let restored = conn.set_read_timeout(response);
            let popped = popped?;
            restored.map(|()| popped)
        });
        match result {
            Ok(popped) => Ok(popped.is_some()),
            Err(e) => {
                self.on_command_error(&e);
                Err(RedisStoreError::Command(e))
            }
        }
    }

    /// Deletes every key of this queue (tests and `anklet-lite` operator tooling).
    pub fn clear(&mut self) -> Result<(), RedisStoreError> {
        self.ensure_connected()?;
        let keys = self.opts.layout.keys().to_vec();
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let result: redis::RedisResult<i64> = redis::cmd("DEL").arg(&keys).query(conn.as_dyn());
        result.map(|_| ()).map_err(|e| {
            self.on_command_error(&e);
            RedisStoreError::Command(e)
        })
    }

    fn backoff(&self, failures: u32) -> Duration {
        let exp = i32::try_from(failures.saturating_sub(1)).unwrap_or(i32::MAX);
        let factor = self.db.retry_backoff_factor.max(1.0).powi(exp);
        let secs = self.db.retry_delay.as_secs_f64() * factor;
        let max = self.opts.max_backoff;
        if secs.is_finite() && secs < max.as_secs_f64() {
            Duration::from_secs_f64(secs.max(0.0))
        } else {
            max
        }
    }

    /// Opens a connection if there is none, waiting out the backoff before each attempt.
    fn ensure_connected(&mut self) -> Result<(), RedisStoreError> {
        if self.conn.is_some() {
            return Ok(());
        }
        let mut attempts = 0;
        loop {
            if let Some(at) = self.next_try {
                let now = Instant::now();
                if at > now {
                    std::thread::sleep(at - now);
                }
            }
            attempts += 1;
            self.counters
                .connect_attempts
                .fetch_add(1, Ordering::Relaxed);
            match self.open() {
                Ok(conn) => {
                    if self.connected_once {
                        self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                            host = %self.db.url,
                            port = self.db.port,
                            after_failures = self.failures,
                            "redis reconnected"
                        );
                    }
                    self.connected_once = true;
                    self.failures = 0;
                    self.next_try = None;
                    self.conn = Some(conn);
                    return Ok(());
                }
                Err(e) => {
                    self.failures = self.failures.saturating_add(1);
                    let delay = self.backoff(self.failures);
                    self.next_try = Some(Instant::now() + delay);
                    tracing::warn!(
                        host = %self.db.url,
                        port = self.db.port,
                        attempt = self.failures,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        error = %e,
                        "redis connect failed; backing off"
                    );
                    if attempts > self.db.max_retries {
                        return Err(RedisStoreError::Unreachable {
                            host: self.db.url.clone(),
                            port: self.db.port,
                            attempts,
                            source: e,
                        });
                    }
                }
            }
        }
    }

    fn open(&self) -> redis::RedisResult<Conn> {
        let conn = match &self.client {
            Client::Single(c) => {
                let conn = c.get_connection_with_timeout(self.opts.connect_timeout)?;
                conn.set_read_timeout(Some(self.opts.response_timeout))?;
                conn.set_write_timeout(Some(self.opts.response_timeout))?;
                Conn::Single(conn)
            }
            Client::Cluster(c) => {
                let conn = c.get_connection()?;
                conn.set_read_timeout(Some(self.opts.response_timeout))?;
                conn.set_write_timeout(Some(self.opts.response_timeout))?;
                Conn::Cluster(Box::new(conn))
            }
        };
        Ok(conn)
    }

    /// Drops the connection after an error that may have left it unusable.
    fn on_command_error(&mut self, e: &redis::RedisError) {
        if is_connection_error(e) {
            tracing::warn!(
                host = %self.db.url,
                port = self.db.port,
                error = %e,
                "redis connection lost; reconnecting on the next call"
            );
            self.conn = None;
        }
    }

    /// Runs a script; `retry` says whether it may be repeated after an I/O error (reads).
    fn invoke<T: redis::FromRedisValue>(
        &mut self,
        call: &ScriptCall,
        retry: bool,
    ) -> Result<T, RedisStoreError> {
        let mut tries = 0;
        loop {
            self.ensure_connected()?;
            let script = &self.scripts[call.script.index()];
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let mut inv = script.prepare_invoke();
            for k in &call.keys {
                inv.key(k);
            }
            for a in &call.args {
                inv.arg(a);
            }
            match inv.invoke::<T>(conn.as_dyn()) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    self.on_command_error(&e);
                    let again = retry
                        && tries < self.db.max_retries
                        && (is_connection_error(&e) || is_loading(&e));
                    if !again {
                        return Err(RedisStoreError::Command(e));
                    }
                    tries += 1;
                    if is_loading(&e) {
                        std::thread::sleep(self.backoff(tries));
                    }
                }
            }
        }
    }

    fn limits(&self) -> CommitLimits {
        CommitLimits {
            finished_capacity: self.opts.finished_capacity,
            wake_cap: self.opts.wake_cap,
        }
    }

    /// Persists the placeholders of corrupt records and drops orphan index entries.
    fn repair(&mut self, decoded: &DecodedRead) -> Result<(), RedisStoreError> {
        for c in &decoded.corrupt {
            tracing::error!(
                job = %c.id,
                rev = c.rev,
                error = %c.error,
                queue = self.opts.layout.queue(),
                "corrupt job record moved to the dead letter (reason corrupt_record)"
            );
        }
        for commit in decoded.quarantine() {
            if self.apply(&commit)? {
                self.counters.quarantined.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(call) = redis_layout::repair_call(&self.opts.layout, &decoded.orphans) {
            tracing::warn!(
                jobs = ?decoded.orphans,
                queue = self.opts.layout.queue(),
                "index entries without a record removed"
            );
            let _removed: i64 = self.invoke(&call, true)?;
        }
        Ok(())
    }

    fn apply(&mut self, commit: &Commit) -> Result<bool, RedisStoreError> {
        let call = redis_layout::encode_commit(&self.opts.layout, commit, self.limits())?;
        let reply: Vec<i64> = self.invoke(&call, false)?;
        Ok(redis_layout::decode_commit(reply)?)
    }
}

impl txn::Backend for RedisBackend {
    type Error = RedisStoreError;

    fn read(&mut self, read: &Read) -> Result<Fetched, Self::Error> {
        let call = redis_layout::encode_read(&self.opts.layout, read);
        // A repair changes what the read sees: read again (twice at most, then answer with
        // the placeholders, which the transaction treats as dead records).
        for round in 0..3 {
            let reply: Vec<Option<Vec<u8>>> = self.invoke(&call, true)?;
            let decoded = redis_layout::decode_read(read, reply)?;
            if !decoded.junk.is_empty() {
                tracing::debug!(fields = ?decoded.junk, "ignored hash fields that are no job id");
            }
            if !decoded.needs_repair() || round == 2 {
                return Ok(decoded.fetched);
            }
            self.repair(&decoded)?;
        }
        Ok(Fetched::Records(Vec::new()))
    }

    fn commit(&mut self, commit: &Commit) -> Result<bool, Self::Error> {
        self.apply(commit)
    }
}

impl CommitMany for RedisBackend {
    /// One script call for all of them (at most [`MAX_COMMITS_PER_CALL`] per call): the group
    /// commit of concurrent enqueues.
    fn commit_many(&mut self, commits: &[Commit]) -> Result<Vec<bool>, Self::Error> {
        let mut applied = Vec::with_capacity(commits.len());
        for group in commits.chunks(MAX_COMMITS_PER_CALL) {
            let call = redis_layout::encode_commits(&self.opts.layout, group, self.limits())?;
            let reply: Vec<i64> = self.invoke(&call, false)?;
            applied.extend(redis_layout::decode_commits(reply, group.len())?);
        }
        Ok(applied)
    }
}

fn client(db: &DatabaseSettings, opts: &RedisOptions) -> Result<Client, RedisStoreError> {
    if db.url.is_empty() {
        return Err(RedisStoreError::Config("empty url".to_owned()));
    }
    if db.tls_enabled && rustls::crypto::CryptoProvider::get_default().is_none() {
        // redis builds its TLS config with rustls' process-wide provider and would panic
        // without one; the binary installs it at start.
        return Err(RedisStoreError::Config(
            "tls_enabled needs a rustls crypto provider; install one at process start \
             (rustls::crypto::CryptoProvider::install_default)"
                .to_owned(),
        ));
    }
    let info = connection_info(db, "anklet-lite").map_err(RedisStoreError::Config)?;
    if db.cluster_mode {
        if db.database != 0 {
            return Err(RedisStoreError::Config(format!(
                "cluster_mode supports database 0 only, not {}",
                db.database
            )));
        }
        let mut b = redis::cluster::ClusterClientBuilder::new(vec![info])
            .connection_timeout(opts.connect_timeout)
            .response_timeout(opts.response_timeout);
        if !db.user.is_empty() {
            b = b.username(&db.user);
        }
        if !db.password.is_empty() {
            b = b.password(db.password.expose());
        }
        if db.tls_enabled {
            b = b.tls(if db.tls_insecure {
                redis::TlsMode::Insecure
            } else {
                redis::TlsMode::Secure
            });
        }
        let c = b
            .build()
            .map_err(|e| RedisStoreError::Config(e.to_string()))?;
        Ok(Client::Cluster(c))
    } else {
        let c = redis::Client::open(info).map_err(|e| RedisStoreError::Config(e.to_string()))?;
        Ok(Client::Single(c))
    }
}

/// A queue over Redis: core's [`txn::Store`] driving a [`RedisBackend`].
pub type RedisStore = txn::Store<RedisBackend>;
