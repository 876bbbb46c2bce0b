//! The Redis store for the tokio daemon: core's transactions driven by an async loop over an
//! async Redis connection.
//!
//! It is the twin of `anklet_lite::store::redis` (the blocking backend): same key layout, same
//! Lua scripts and the same encoders and decoders, all from
//! [`anklet_core::queue::redis_layout`], so the two daemons can share one queue. Only the
//! I/O differs:
//!
//! - **Timeouts.** Connecting and every command are bounded ([`AsyncRedisOptions`]); redis'
//!   own async defaults are replaced explicitly. `BLPOP` runs on a second, dedicated
//!   connection (a multiplexed connection would queue every other command behind it) with no
//!   response timeout of its own, bounded instead by `tokio::time::timeout(wait + response)`.
//! - **Reconnects.** A connection that failed on I/O is dropped; the next call reconnects,
//!   waiting `retry_delay * retry_backoff_factor^(n-1)` (capped) between failed attempts, one
//!   `warn!` per step with the attempt and the delay, never the password.
//! - **Retries.** Reads are retried after a reconnect; commits are not (they may have been
//!   applied; the caller retries the operation, which is always safe).
//! - **Corrupt records** are persisted as dead-letter placeholders before a read answers.
//! - **Cluster mode** (`cluster_mode`) uses redis' async cluster connection; all keys of a
//!   queue share one hash tag, so every script runs on one shard. Database 0 only.

use anklet_core::config::DatabaseSettings;
use anklet_core::queue::QueueSettings;
use anklet_core::queue::redis_layout::{
    self, CommitLimits, DEFAULT_WAKE_CAP, DecodedRead, KeyName, LayoutError, MAX_COMMITS_PER_CALL,
    RedisLayout, Script, ScriptCall,
};
use anklet_core::queue::txn::{Commit, Fetched, Op, Read, Reply, Step, StoreError, Txn};
use anklet_core::time::Timestamp;
use anklet_lite::store::redis_conn::{connection_info, is_connection_error, is_loading};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Connection and layout options that are not in Anklet's `database` config section.
#[derive(Clone, Debug)]
pub struct AsyncRedisOptions {
    /// Where the queue's keys live.
    pub layout: RedisLayout,
    /// How many wake tokens the wake list keeps.
    pub wake_cap: usize,
    /// Bound on opening a connection.
    pub connect_timeout: Duration,
    /// Bound on every command's answer.
    pub response_timeout: Duration,
    /// Longest wait between two connect attempts.
    pub max_backoff: Duration,
}

impl AsyncRedisOptions {
    /// Defaults for `layout`: 5 s connect and response timeouts, backoff capped at 30 s.
    pub fn new(layout: RedisLayout) -> Self {
        Self {
            layout,
            wake_cap: DEFAULT_WAKE_CAP,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Why an async Redis store call failed. The display never contains the password.
#[derive(Debug, thiserror::Error)]
pub enum AsyncRedisError {
    /// The settings cannot describe a connection this store supports.
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
    /// A command did not answer within the response timeout.
    #[error("redis command timed out after {0:?}")]
    Timeout(Duration),
    /// A reply did not fit the layout, or a record could not be encoded.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// Counters a metrics endpoint reads; shared, so they can be read while the store is busy.
#[derive(Debug, Default)]
pub struct AsyncRedisCounters {
    /// Connections re-established after a failure or a dropped connection.
    pub reconnects: AtomicU64,
    /// Connect attempts, successful or not.
    pub connect_attempts: AtomicU64,
    /// Corrupt records moved to the dead letter.
    pub quarantined: AtomicU64,
}

/// An open connection: one server, or a cluster. Both are cheap handles to shared
/// multiplexed connections.
#[derive(Clone)]
enum Conn {
    Single(MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// How connections are opened.
#[allow(
    clippy::large_enum_variant,
    reason = "one per store, built once; the size depends on redis' enabled features"
)]
enum Client {
    Single(redis::Client),
    /// The second client has no practical response timeout: it serves the blocking pop,
    /// which its caller bounds.
    Cluster(redis::cluster::ClusterClient, redis::cluster::ClusterClient),
}

/// One lazily opened connection with its backoff state.
struct Slot {
    conn: Option<Conn>,
    failures: u32,
    next_try: Option<Instant>,
    connected_once: bool,
}

impl Slot {
    fn new() -> Self {
        Self {
            conn: None,
            failures: 0,
            next_try: None,
            connected_once: false,
        }
    }
}

/// The job queue over Redis for the tokio runtime (see the module docs).
pub struct AsyncRedisStore {
    db: DatabaseSettings,
    opts: AsyncRedisOptions,
    settings: QueueSettings,
    client: Client,
    main: Slot,
    waiter: Slot,
    scripts: [redis::Script; 3],
    counters: Arc<AsyncRedisCounters>,
}

impl std::fmt::Debug for AsyncRedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client holds the password; show only what identifies the store.
        f.debug_struct("AsyncRedisStore")
            .field("host", &self.db.url)
            .field("port", &self.db.port)
            .field("queue", &self.opts.layout.queue())
            .field("connected", &self.main.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl AsyncRedisStore {
    /// A store for `db` under the queue's `settings`. Does not connect yet: the first call
    /// does, so the daemon can start while Redis is still coming up.
    pub fn new(
        db: &DatabaseSettings,
        opts: AsyncRedisOptions,
        settings: QueueSettings,
    ) -> Result<Self, AsyncRedisError> {
        if db.url.is_empty() {
            return Err(AsyncRedisError::Config("empty url".to_owned()));
        }
        if db.tls_enabled && rustls::crypto::CryptoProvider::get_default().is_none() {
            return Err(AsyncRedisError::Config(
                "tls_enabled needs a rustls crypto provider; install one at process start \
                 (rustls::crypto::CryptoProvider::install_default)"
                    .to_owned(),
            ));
        }
        let client = client(db, &opts)?;
        Ok(Self {
            db: db.clone(),
            opts,
            settings,
            client,
            main: Slot::new(),
            waiter: Slot::new(),
            scripts: Script::ALL.map(|s| redis::Script::new(s.source())),
            counters: Arc::default(),
        })
    }

    /// The queue's settings.
    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    /// The key layout.
    pub fn layout(&self) -> &RedisLayout {
        &self.opts.layout
    }

    /// Shared counters (reconnects, connect attempts, quarantined records) for metrics.
    pub fn counters(&self) -> Arc<AsyncRedisCounters> {
        Arc::clone(&self.counters)
    }

    /// Runs one queue operation at `now` to its reply: the async twin of core's
    /// `txn::drive`.
    pub async fn run(
        &mut self,
        now: Timestamp,
        op: Op,
    ) -> Result<Reply, StoreError<AsyncRedisError>> {
        self.drive(Txn::new(op, now, self.settings.clone())).await
    }

    /// Drives a transaction to its reply.
    async fn drive(&mut self, mut txn: Txn) -> Result<Reply, StoreError<AsyncRedisError>> {
        loop {
            match txn.poll() {
                Step::Read(read) => {
                    txn.handle_read(self.read(&read).await.map_err(StoreError::Backend)?)
                }
                Step::Commit(commit) => {
                    txn.handle_commit(self.commit(&commit).await.map_err(StoreError::Backend)?)
                }
                Step::Done(reply) => return Ok(reply),
                Step::Livelock => return Err(StoreError::Livelock),
            }
        }
    }

    /// Answers one transaction read (repairing corrupt records first, see the module docs).
    pub async fn read(&mut self, read: &Read) -> Result<Fetched, AsyncRedisError> {
        let call = redis_layout::encode_read(&self.opts.layout, read);
        for round in 0..3 {
            let reply: Vec<Option<Vec<u8>>> = self.invoke(&call, true).await?;
            let decoded = redis_layout::decode_read(read, reply)?;
            if !decoded.junk.is_empty() {
                tracing::debug!(fields = ?decoded.junk, "ignored hash fields that are no job id");
            }
            if !decoded.needs_repair() || round == 2 {
                return Ok(decoded.fetched);
            }
            self.repair(&decoded).await?;
        }
        Ok(Fetched::Records(Vec::new()))
    }

    /// Applies one transaction commit; `false` when a guard no longer held.
    pub async fn commit(&mut self, commit: &Commit) -> Result<bool, AsyncRedisError> {
        let limits = CommitLimits {
            finished_capacity: self.settings.finished_capacity,
            wake_cap: self.opts.wake_cap,
        };
        let call = redis_layout::encode_commit(&self.opts.layout, commit, limits)?;
        let reply: Vec<i64> = self.invoke(&call, false).await?;
        Ok(redis_layout::decode_commit(reply)?)
    }

    /// Applies independent commits in order, each as if alone, with one script call per
    /// [`MAX_COMMITS_PER_CALL`] of them (the group commit of concurrent enqueues); whether
    /// each was applied. An error leaves all of them in doubt, as a failed commit does.
    pub async fn commit_many(&mut self, commits: &[Commit]) -> Result<Vec<bool>, AsyncRedisError> {
        let limits = CommitLimits {
            finished_capacity: self.settings.finished_capacity,
            wake_cap: self.opts.wake_cap,
        };
        let mut applied = Vec::with_capacity(commits.len());
        for group in commits.chunks(MAX_COMMITS_PER_CALL) {
            let call = redis_layout::encode_commits(&self.opts.layout, group, limits)?;
            let reply: Vec<i64> = self.invoke(&call, false).await?;
            applied.extend(redis_layout::decode_commits(reply, group.len())?);
        }
        Ok(applied)
    }

    /// Runs enqueues as one group: their optimistic commits in one [`Self::commit_many`],
    /// then whatever each still needs (a refused commit reads to tell a known job) on its
    /// own. One reply per operation, in order; errors as text (one failed group commit is
    /// every member's error).
    pub async fn run_group(&mut self, ops: Vec<(Timestamp, Op)>) -> Vec<Result<Reply, String>> {
        let mut txns = Vec::with_capacity(ops.len());
        let mut commits = Vec::new();
        for (now, op) in ops {
            let mut txn = Txn::new(op, now, self.settings.clone());
            let first = txn.poll();
            if let Step::Commit(commit) = &first {
                commits.push(commit.clone());
            }
            txns.push((txn, first));
        }
        let mut flags = match self.commit_many(&commits).await {
            Ok(flags) => flags.into_iter(),
            Err(e) => {
                let e = StoreError::Backend(e).to_string();
                return txns.into_iter().map(|_| Err(e.clone())).collect();
            }
        };
        let mut replies = Vec::with_capacity(txns.len());
        for (mut txn, first) in txns {
            if matches!(first, Step::Commit(_)) {
                match flags.next() {
                    Some(applied) => txn.handle_commit(applied),
                    None => {
                        replies.push(Err(StoreError::<AsyncRedisError>::WrongReply.to_string()));
                        continue;
                    }
                }
            }
            replies.push(self.drive(txn).await.map_err(|e| e.to_string()));
        }
        replies
    }

    /// Waits until a job was queued (a wake token arrives) or `timeout` passes; `true` when
    /// woken. Runs on its own connection so other commands are not held up behind it.
    pub async fn wait_for_work(&mut self, timeout: Duration) -> Result<bool, AsyncRedisError> {
        let key = self.opts.layout.key(KeyName::Wake).to_owned();
        let block = timeout.max(Duration::from_millis(1));
        let bound = block + self.opts.response_timeout;
        let mut conn = self.connection(true).await?;
        let cmd = redis::cmd("BLPOP")
            .arg(&key)
            .arg(block.as_secs_f64())
            .to_owned();
        let popped = tokio::time::timeout(
            bound,
            cmd.query_async::<Option<(String, String)>>(&mut conn),
        )
        .await;
        match popped {
            Ok(Ok(v)) => Ok(v.is_some()),
            Ok(Err(e)) => {
                self.on_error(true, &e);
                Err(AsyncRedisError::Command(e))
            }
            Err(_) => {
                // The reply may still arrive on this connection: drop it.
                self.waiter.conn = None;
                Err(AsyncRedisError::Timeout(bound))
            }
        }
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

    /// Opens a connection: the main one, or (with `waiter`) the one for the blocking pop,
    /// which has no response timeout of its own (its caller bounds it).
    async fn open(&self, waiter: bool) -> redis::RedisResult<Conn> {
        match &self.client {
            Client::Single(c) => {
                let response = (!waiter).then_some(self.opts.response_timeout);
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.opts.connect_timeout))
                    .set_response_timeout(response);
                let conn = c
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                Ok(Conn::Single(conn))
            }
            Client::Cluster(main, blocking) => {
                let c = if waiter { blocking } else { main };
                Ok(Conn::Cluster(c.get_async_connection().await?))
            }
        }
    }

    /// The main (or, with `waiter`, the blocking-pop) connection, opened with backoff.
    async fn connection(&mut self, waiter: bool) -> Result<Conn, AsyncRedisError> {
        let mut attempts = 0;
        loop {
            let slot = if waiter { &self.waiter } else { &self.main };
            if let Some(c) = &slot.conn {
                return Ok(c.clone());
            }
            if let Some(at) = slot.next_try {
                tokio::time::sleep_until(at).await;
            }
            attempts += 1;
            self.counters
                .connect_attempts
                .fetch_add(1, Ordering::Relaxed);
            let bound = self.opts.connect_timeout + Duration::from_millis(100);
            let opened = tokio::time::timeout(bound, self.open(waiter))
                .await
                .unwrap_or_else(|_| {
                    Err(redis::RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "connect timed out",
                    )))
                });
            let failures = if waiter {
                self.waiter.failures
            } else {
                self.main.failures
            };
            let delay = self.backoff(failures.saturating_add(1));
            let (host, port, max_retries) =
                (self.db.url.clone(), self.db.port, self.db.max_retries);
            let slot = if waiter {
                &mut self.waiter
            } else {
                &mut self.main
            };
            match opened {
                Ok(conn) => {
                    if slot.connected_once {
                        self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(host = %host, port, after_failures = slot.failures, "redis reconnected");
                    }
                    slot.connected_once = true;
                    slot.failures = 0;
                    slot.next_try = None;
                    slot.conn = Some(conn.clone());
                    return Ok(conn);
                }
                Err(e) => {
                    slot.failures = slot.failures.saturating_add(1);
                    slot.next_try = Some(Instant::now() + delay);
                    tracing::warn!(
                        host = %host,
                        port,
                        attempt = slot.failures,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        error = %e,
                        "redis connect failed; backing off"
                    );
                    if attempts > max_retries {
                        return Err(AsyncRedisError::Unreachable {
                            host,
                            port,
                            attempts,
                            source: e,
                        });
                    }
                }
            }
        }
    }

    /// Drops a connection after an error that may have left it unusable.
    fn on_error(&mut self, waiter: bool, e: &redis::RedisError) {
        if is_connection_error(e) {
            tracing::warn!(
                host = %self.db.url,
                port = self.db.port,
                error = %e,
                "redis connection lost; reconnecting on the next call"
            );
            if waiter {
                self.waiter.conn = None;
            } else {
                self.main.conn = None;
            }
        }
    }

    /// Runs a script; `retry` says whether it may be repeated after an I/O error (reads).
    async fn invoke<T: redis::FromRedisValue>(
        &mut self,
        call: &ScriptCall,
        retry: bool,
    ) -> Result<T, AsyncRedisError> {
        let mut tries = 0;
        loop {
            let mut conn = self.connection(false).await?;
            let script = &self.scripts[call.script.index()];
            let mut inv = script.prepare_invoke();
            for k in &call.keys {
                inv.key(k);
            }
            for a in &call.args {
                inv.arg(a);
            }
            let bound = self.opts.response_timeout * 2;
            let result = match tokio::time::timeout(bound, inv.invoke_async::<T>(&mut conn)).await {
                Ok(r) => r,
                Err(_) => Err(redis::RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "script timed out",
                ))),
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) => {
                    self.on_error(false, &e);
                    let again = retry
                        && tries < self.db.max_retries
                        && (is_connection_error(&e) || is_loading(&e));
                    if !again {
                        return Err(AsyncRedisError::Command(e));
                    }
                    tries += 1;
                    if is_loading(&e) {
                        tokio::time::sleep(self.backoff(tries)).await;
                    }
                }
            }
        }
    }

    /// Persists the placeholders of corrupt records and drops orphan index entries.
    async fn repair(&mut self, decoded: &DecodedRead) -> Result<(), AsyncRedisError> {
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
            if self.commit(&commit).await? {
                self.counters.quarantined.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(call) = redis_layout::repair_call(&self.opts.layout, &decoded.orphans) {
            tracing::warn!(
                jobs = ?decoded.orphans,
                queue = self.opts.layout.queue(),
                "index entries without a record removed"
            );
            let _removed: i64 = self.invoke(&call, true).await?;
        }
        Ok(())
    }
}

/// A day: the blocking-pop cluster client's response timeout, i.e. none in practice (its
/// caller bounds every wait with `tokio::time::timeout`).
const NO_RESPONSE_TIMEOUT: Duration = Duration::from_secs(86_400);

fn client(db: &DatabaseSettings, opts: &AsyncRedisOptions) -> Result<Client, AsyncRedisError> {
    let info = connection_info(db, "anklet").map_err(AsyncRedisError::Config)?;
    if !db.cluster_mode {
        let c = redis::Client::open(info).map_err(|e| AsyncRedisError::Config(e.to_string()))?;
        return Ok(Client::Single(c));
    }
    if db.database != 0 {
        return Err(AsyncRedisError::Config(format!(
            "cluster_mode supports database 0 only, not {}",
            db.database
        )));
    }
    let build = |response: Duration| {
        let mut b = redis::cluster::ClusterClientBuilder::new(vec![info.clone()])
            .connection_timeout(opts.connect_timeout)
            .response_timeout(response);
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
        b.build()
            .map_err(|e| AsyncRedisError::Config(e.to_string()))
    };
    Ok(Client::Cluster(
        build(opts.response_timeout)?,
        build(NO_RESPONSE_TIMEOUT)?,
    ))
}
