//! How a queue is laid out in Redis, the Lua scripts that read and commit it, and the pure
//! encoders and decoders between [`txn`](super::txn) requests and script calls.
//!
//! Both runtimes (the blocking `anklet-lite` and the tokio `anklet`) talk to Redis through the
//! same three scripts and the same functions here, so they cannot disagree on a key name or on
//! what a commit does. This module holds no Redis client: a runtime turns a [`ScriptCall`] into
//! `EVALSHA` and hands the reply back as plain bytes ([`decode_read`], [`decode_commit`]).
//!
//! # Keys
//!
//! Every key of one queue shares the Redis Cluster hash tag `{<queue>}`, so a script may touch
//! all of them on one shard: `<prefix>:{<queue>}:<name>` with the names of [`KeyName`]. Job ids
//! are stored zero-padded to 20 digits ([`member`]) so that members with equal scores sort by
//! job id, which makes the `queued` index sort exactly by [`JobRecord::order_key`].
//!
//! | key | type | holds |
//! |---|---|---|
//! | `jobs` | hash | id → record JSON ([`JobRecord::encode`]) |
//! | `revs` | hash | id → the store's revision of the record (absent or unreadable = 0) |
//! | `queued` | zset | id by `enqueued_at` ms (claim order) |
//! | `claimed` | zset | id by lease `expires_at` ms (the reaper's range) |
//! | `dead` | zset | id by `since` ms |
//! | `finished` | hash | id → `<at ms>:<how>` |
//! | `finished_order` | zset | id by `at` ms (oldest forgotten first) |
//! | `hosts` | hash | host → `<at ms>:<payload>` |
//! | `rev` | string | the revision counter |
//! | `wake` | list | tokens that wake claimers blocked in `BLPOP` |
//!
//! A record is the truth; the three index zsets are kept in step with it by the commit script.
//! A record that fails [`JobRecord::load`] is returned as the dead-letter placeholder and listed
//! in [`DecodedRead::corrupt`]: the runtime persists it with [`DecodedRead::quarantine`] (a
//! guarded commit, so it stays visible to operators) and logs it. Index members without a
//! record (only hand edits make them) are listed in [`DecodedRead::orphans`] and removed with
//! [`repair_call`].

use super::ops::Finished;
use super::record::{DecodeError, EncodeError, JobRecord, Loaded, Place};
use super::txn::{Commit, Fetched, Read, Versioned, Write};
use crate::ids::{HostId, JobId};
use crate::metrics::QueueDepth;
use crate::time::Timestamp;

/// The key prefix when the configuration names none (Anklet's keys start with `anklet` too).
pub const DEFAULT_PREFIX: &str = "anklet";

/// How many wake tokens the `wake` list keeps at most: enough to wake every claimer of a large
/// fleet, small enough that a queue nobody claims from does not grow.
pub const DEFAULT_WAKE_CAP: usize = 256;

/// The keys of one queue, in the order every script receives them as `KEYS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyName {
    /// Hash id → record JSON.
    Jobs,
    /// Hash id → revision.
    Revs,
    /// Zset of queued ids by `enqueued_at`.
    Queued,
    /// Zset of claimed ids by lease expiry.
    Claimed,
    /// Zset of dead ids by `since`.
    Dead,
    /// Hash id → `<at>:<how>` (finished memory).
    Finished,
    /// Zset of finished ids by `at`.
    FinishedOrder,
    /// Hash host → `<at>:<payload>`.
    Hosts,
    /// Revision counter.
    Rev,
    /// Wake-token list.
    Wake,
}

impl KeyName {
    /// Every key, in `KEYS` order.
    pub const ALL: [KeyName; 10] = [
        KeyName::Jobs,
        KeyName::Revs,
        KeyName::Queued,
        KeyName::Claimed,
        KeyName::Dead,
        KeyName::Finished,
        KeyName::FinishedOrder,
        KeyName::Hosts,
        KeyName::Rev,
        KeyName::Wake,
    ];

    /// The key's last path segment.
    pub fn suffix(self) -> &'static str {
        match self {
            KeyName::Jobs => "jobs",
            KeyName::Revs => "revs",
            KeyName::Queued => "queued",
            KeyName::Claimed => "claimed",
            KeyName::Dead => "dead",
            KeyName::Finished => "finished",
            KeyName::FinishedOrder => "finished_order",
            KeyName::Hosts => "hosts",
            KeyName::Rev => "rev",
            KeyName::Wake => "wake",
        }
    }
}

/// Why a layout could not be built, a request encoded or a reply decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// A prefix or queue name that would break the key scheme.
    #[error("invalid redis {what} {value:?}: {why}")]
    BadName {
        /// `prefix` or `queue`.
        what: &'static str,
        /// The offending name.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A record could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A script answered something this layout never produces (another version of the
    /// scripts, or a hand-edited key of the wrong type).
    #[error("malformed redis reply to {request}: {detail}")]
    MalformedReply {
        /// Which request.
        request: &'static str,
        /// What was wrong.
        detail: String,
    },
}

/// Where one queue lives in Redis: a prefix shared by every anklet key and the queue's name,
/// which becomes the Cluster hash tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisLayout {
    prefix: String,
    queue: String,
    keys: Vec<String>,
}

impl RedisLayout {
    /// The layout of queue `queue` under `prefix`. Neither may contain `{` or `}` (they would
    /// change the hash tag) and the queue name may not be empty (an empty tag is no tag).
    pub fn new(prefix: &str, queue: &str) -> Result<Self, LayoutError> {
        let bad = |what, value: &str, why| LayoutError::BadName {
            what,
            value: value.to_owned(),
            why,
        };
        if prefix.contains(['{', '}']) {
            return Err(bad("prefix", prefix, "may not contain '{' or '}'"));
        }
        if queue.is_empty() {
            return Err(bad("queue", queue, "may not be empty"));
        }
        if queue.contains(['{', '}']) {
            return Err(bad("queue", queue, "may not contain '{' or '}'"));
        }
        let keys = KeyName::ALL
            .iter()
            .map(|k| format!("{prefix}:{{{queue}}}:{}", k.suffix()))
            .collect();
        Ok(Self {
            prefix: prefix.to_owned(),
            queue: queue.to_owned(),
            keys,
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The queue name (the hash tag).
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The full name of one key, for tools and tests that inspect the store.
    pub fn key(&self, name: KeyName) -> &str {
        let i = KeyName::ALL.iter().position(|k| *k == name).unwrap_or(0);
        self.keys.get(i).map(String::as_str).unwrap_or_default()
    }

    /// Every key in `KEYS` order; every script call passes all of them so Cluster routes it.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }
}

/// A job id as stored in hashes and zsets: zero-padded so equal scores sort by id.
pub fn member(id: JobId) -> String {
    format!("{:020}", id.0)
}

/// Reads back a [`member`]; `None` for a field someone else wrote.
pub fn parse_member(s: &[u8]) -> Option<JobId> {
    let s = std::str::from_utf8(s).ok()?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().map(JobId)
}

/// Which script a call runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Script {
    /// [`COMMIT_SCRIPT`].
    Commit,
    /// [`READ_SCRIPT`].
    Read,
    /// [`REPAIR_SCRIPT`].
    Repair,
}

impl Script {
    /// Every script, so a runtime can prepare (hash, load) them once.
    pub const ALL: [Script; 3] = [Script::Commit, Script::Read, Script::Repair];

    /// This script's position in [`Script::ALL`], so a runtime keeps its prepared scripts in an
    /// array in that order.
    pub fn index(self) -> usize {
        match self {
            Script::Commit => 0,
            Script::Read => 1,
            Script::Repair => 2,
        }
    }

    /// The Lua source.
    pub fn source(self) -> &'static str {
        match self {
            Script::Commit => COMMIT_SCRIPT,
            Script::Read => READ_SCRIPT,
            Script::Repair => REPAIR_SCRIPT,
        }
    }
}

/// One script invocation: run `script` with these `KEYS` and `ARGV`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptCall {
    /// The script.
    pub script: Script,
    /// `KEYS` (all of the queue's keys, see [`RedisLayout::keys`]).
    pub keys: Vec<String>,
    /// `ARGV`.
    pub args: Vec<String>,
}

/// The commit: applies one or more independent commits in order, each exactly as if it were
/// a call of its own (a later one's guards see the earlier ones' writes). Per commit: checks
/// every guard against `revs`, then applies every write (bump the counter, set record and
/// revision, move the id to the index of the record's place, or delete it), remembers finished
/// jobs trimmed to capacity, and records a heartbeat. A commit that made a record queued
/// earns one wake token; the tokens go out in one capped push at the end. Returns one flag
/// per commit: 1 applied, 0 a guard failed (that commit changed nothing).
///
/// Several commits in one call is the group commit of concurrent enqueues: one script
/// invocation, one round trip and one replicated transaction instead of one each.
///
/// A write that creates a job (`expect` '') skips the index clean-up: its guard proved there is
/// no record, and only a record's own writes put an id in an index (an index entry without a
/// record comes from hand edits and is removed by the reads' repair).
///
/// `ARGV`: finished capacity, wake cap, number of commits, then per commit: number of writes,
/// then per write `id, expect ('' = must not exist nor be remembered as finished), op ('P'
/// put / 'D' delete), json, zone ('q' / 'c' / 'd'), score`; number of remembered jobs, then
/// per job `id, at, '<at>:<how>'`; then `'1', host, '<at>:<payload>'` for a heartbeat or `'0'`.
pub const COMMIT_SCRIPT: &str = r#"
local jobs, revs, queued, claimed, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local finished, forder, hosts, counter, wake = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local cap = tonumber(ARGV[1])
local wake_cap = tonumber(ARGV[2])
local commits = tonumber(ARGV[3])
local zones = { q = queued, c = claimed, d = dead }
local out = {}
local wakes = 0
local i = 4
for k = 1, commits do
  local n = tonumber(ARGV[i])
  local first = i + 1
  local r = first + n * 6
  local m = tonumber(ARGV[r])
  local h = r + 1 + m * 3
  local ok = true
  for w = 0, n - 1 do
    local b = first + w * 6
    local id, expect = ARGV[b], ARGV[b + 1]
    local exists = redis.call('HEXISTS', jobs, id) == 1
    if expect == '' then
      if exists or redis.call('HEXISTS', finished, id) == 1 then ok = false break end
    else
      if not exists then ok = false break end
      local cur = redis.call('HGET', revs, id)
      if not cur or not tonumber(cur) then cur = '0' end
      if cur ~= expect then ok = false break end
    end
  end
  if ok then
    local wake_up = false
    for w = 0, n - 1 do
      local b = first + w * 6
      local id, expect, op = ARGV[b], ARGV[b + 1], ARGV[b + 2]
      local json, zone, score = ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]
      local was_queued = false
      if expect ~= '' then
        was_queued = redis.call('ZREM', queued, id) == 1
        redis.call('ZREM', claimed, id)
        redis.call('ZREM', dead, id)
      end
      if op == 'P' then
        local rev = redis.call('INCR', counter)
        redis.call('HSET', jobs, id, json)
        redis.call('HSET', revs, id, rev)
        redis.call('ZADD', zones[zone], score, id)
        if zone == 'q' and not was_queued then wake_up = true end
      else
        redis.call('HDEL', jobs, id)
        redis.call('HDEL', revs, id)
      end
    end
    if cap > 0 then
      for x = 0, m - 1 do
        local b = r + 1 + x * 3
        redis.call('HSET', finished, ARGV[b], ARGV[b + 2])
        redis.call('ZADD', forder, ARGV[b + 1], ARGV[b])
      end
      if m > 0 or k == commits then
        local over = redis.call('ZCARD', forder) - cap
        if over > 0 then
          local gone = redis.call('ZPOPMIN', forder, over)
          for g = 1, #gone, 2 do redis.call('HDEL', finished, gone[g]) end
        end
      end
    end
    if ARGV[h] == '1' then redis.call('HSET', hosts, ARGV[h + 1], ARGV[h + 2]) end
    if wake_up then wakes = wakes + 1 end
  end
  out[k] = ok and 1 or 0
  if ARGV[h] == '1' then i = h + 3 else i = h + 1 end
end
if wakes > 0 then
  local tokens = {}
  for t = 1, math.min(wakes, wake_cap) do tokens[t] = '1' end
  if redis.call('RPUSH', wake, unpack(tokens)) > wake_cap then
    redis.call('LTRIM', wake, -wake_cap, -1)
  end
end
return out
"#;

/// The reads, so a record and its revision are read atomically together. The reply is a flat
/// array of bulk strings (nil where absent) starting with the server's `TIME` (seconds,
/// microseconds), which dates a corrupt record's placeholder.
///
/// `ARGV[1]` is the mode: `job <id>` → `json, rev, finished('1'/'0')`; `queued <offset>
/// <limit>` and `expired <now ms>` and `all` → triples `id, json, rev`; `finished <id>` →
/// `'<at>:<how>'`; `hosts` → pairs `host, '<at>:<payload>'`; `depth` → the `ZCARD`s of
/// `queued`, `claimed` and `dead` (O(1) each: no record is read).
pub const READ_SCRIPT: &str = r#"
local jobs, revs, queued, claimed, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local finished, hosts = KEYS[6], KEYS[8]
local t = redis.call('TIME')
local out = { t[1], t[2] }
local mode = ARGV[1]
local function triples(ids)
  for _, id in ipairs(ids) do
    out[#out + 1] = id
    out[#out + 1] = redis.call('HGET', jobs, id)
    out[#out + 1] = redis.call('HGET', revs, id)
  end
end
if mode == 'job' then
  out[3] = redis.call('HGET', jobs, ARGV[2])
  out[4] = redis.call('HGET', revs, ARGV[2])
  out[5] = tostring(redis.call('HEXISTS', finished, ARGV[2]))
elseif mode == 'queued' then
  local first, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
  if limit > 0 then triples(redis.call('ZRANGE', queued, first, first + limit - 1)) end
elseif mode == 'expired' then
  triples(redis.call('ZRANGEBYSCORE', claimed, '-inf', ARGV[2]))
elseif mode == 'all' then
  local all = redis.call('HGETALL', jobs)
  for k = 1, #all, 2 do
    out[#out + 1] = all[k]
    out[#out + 1] = all[k + 1]
    out[#out + 1] = redis.call('HGET', revs, all[k])
  end
elseif mode == 'depth' then
  out[3] = tostring(redis.call('ZCARD', queued))
  out[4] = tostring(redis.call('ZCARD', claimed))
  out[5] = tostring(redis.call('ZCARD', dead))
elseif mode == 'finished' then
  out[3] = redis.call('HGET', finished, ARGV[2])
elseif mode == 'hosts' then
  local all = redis.call('HGETALL', hosts)
  for k = 1, #all do out[#out + 1] = all[k] end
else
  return redis.error_reply('anklet: unknown read mode ' .. tostring(mode))
end
return out
"#;

/// Removes index members that have no record (`ARGV` = ids); returns how many it removed.
pub const REPAIR_SCRIPT: &str = r#"
local jobs, queued, claimed, dead = KEYS[1], KEYS[3], KEYS[4], KEYS[5]
local removed = 0
for _, id in ipairs(ARGV) do
  if redis.call('HEXISTS', jobs, id) == 0 then
    removed = removed + redis.call('ZREM', queued, id)
    removed = removed + redis.call('ZREM', claimed, id)
    removed = removed + redis.call('ZREM', dead, id)
  end
end
return removed
"#;

/// Limits the commit script enforces; they are the store's, not a request's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitLimits {
    /// [`QueueSettings::finished_capacity`](super::QueueSettings::finished_capacity).
    pub finished_capacity: usize,
    /// How many wake tokens to keep ([`DEFAULT_WAKE_CAP`]).
    pub wake_cap: usize,
}

/// The zone letter and score a record is indexed under.
fn zone(record: &JobRecord) -> (&'static str, u64) {
    match &record.place {
        Place::Queued => ("q", record.enqueued_at.as_millis()),
        Place::Claimed { lease } => ("c", lease.expires_at.as_millis()),
        Place::Dead { since } => ("d", since.as_millis()),
    }
}

/// `<at ms>:<text>`, how finished entries and heartbeats are stored.
fn stamped(at: Timestamp, text: &str) -> String {
    format!("{}:{text}", at.as_millis())
}

/// Reads back [`stamped`]; `None` when the number is missing.
fn unstamp(raw: &[u8]) -> Option<(Timestamp, String)> {
    let text = String::from_utf8_lossy(raw);
    let (at, rest) = text.split_once(':')?;
    let at = at.parse::<u64>().ok()?;
    Some((Timestamp::from_millis(at), rest.to_owned()))
}

/// The most commits one call of [`COMMIT_SCRIPT`] should carry: its wake tokens are pushed
/// with one `RPUSH` of at most this many arguments, and a call blocks Redis while it runs.
pub const MAX_COMMITS_PER_CALL: usize = 256;

/// Encodes a [`Commit`] as a call of [`COMMIT_SCRIPT`]; read its answer with
/// [`decode_commit`].
pub fn encode_commit(
    layout: &RedisLayout,
    commit: &Commit,
    limits: CommitLimits,
) -> Result<ScriptCall, LayoutError> {
    encode_commits(layout, std::slice::from_ref(commit), limits)
}

/// Encodes independent commits as one call of [`COMMIT_SCRIPT`] (a group commit); Redis
/// applies them in this order, each as if alone. Read the answer with [`decode_commits`].
pub fn encode_commits(
    layout: &RedisLayout,
    commits: &[Commit],
    limits: CommitLimits,
) -> Result<ScriptCall, LayoutError> {
    let mut args = vec![
        limits.finished_capacity.to_string(),
        limits.wake_cap.max(1).to_string(),
        commits.len().to_string(),
    ];
    for commit in commits {
        push_commit(&mut args, commit)?;
    }
    Ok(ScriptCall {
        script: Script::Commit,
        keys: layout.keys().to_vec(),
        args,
    })
}

fn push_commit(args: &mut Vec<String>, commit: &Commit) -> Result<(), LayoutError> {
    args.push(commit.writes.len().to_string());
    for Write { id, expect, record } in &commit.writes {
        args.push(member(*id));
        args.push(expect.map(|r| r.to_string()).unwrap_or_default());
        match record {
            Some(record) => {
                let (zone, score) = zone(record);
                args.push("P".to_owned());
                args.push(record.encode()?);
                args.push(zone.to_owned());
                args.push(score.to_string());
            }
            None => {
                args.extend(["D", "", "", "0"].map(str::to_owned));
            }
        }
    }
    args.push(commit.remember.len().to_string());
    for (id, f) in &commit.remember {
        args.push(member(*id));
        args.push(f.at.as_millis().to_string());
        args.push(stamped(f.at, &f.how));
    }
    match &commit.heartbeat {
        Some((host, at, payload)) => {
            args.push("1".to_owned());
            args.push(host.0.clone());
            args.push(stamped(*at, payload));
        }
        None => args.push("0".to_owned()),
    }
    Ok(())
}

/// Reads the commit script's answer to one commit: whether it was applied.
pub fn decode_commit(reply: Vec<i64>) -> Result<bool, LayoutError> {
    match decode_commits(reply, 1)?.as_slice() {
        [applied] => Ok(*applied),
        _ => Err(malformed("commit", "expected one flag")),
    }
}

/// Reads the commit script's answer to `commits` commits: whether each was applied.
pub fn decode_commits(reply: Vec<i64>, commits: usize) -> Result<Vec<bool>, LayoutError> {
    if reply.len() != commits {
        return Err(malformed(
            "commit",
            format!("expected {commits} flags, got {}", reply.len()),
        ));
    }
    reply
        .into_iter()
        .map(|flag| match flag {
            1 => Ok(true),
            0 => Ok(false),
            other => Err(malformed("commit", format!("expected 0 or 1, got {other}"))),
        })
        .collect()
}

/// Encodes a [`Read`] as a call of [`READ_SCRIPT`].
pub fn encode_read(layout: &RedisLayout, read: &Read) -> ScriptCall {
    let args: Vec<String> = match read {
        Read::Job(id) => vec!["job".to_owned(), member(*id)],
        Read::Queued { offset, limit } => {
            vec!["queued".to_owned(), offset.to_string(), limit.to_string()]
        }
        Read::Expired(now) => vec!["expired".to_owned(), now.as_millis().to_string()],
        Read::All => vec!["all".to_owned()],
        Read::Depth => vec!["depth".to_owned()],
        Read::Finished(id) => vec!["finished".to_owned(), member(*id)],
        Read::Hosts => vec!["hosts".to_owned()],
    };
    ScriptCall {
        script: Script::Read,
        keys: layout.keys().to_vec(),
        args,
    }
}

/// A stored record that did not load: what to put in the dead letter in its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorruptRecord {
    /// The job key it was stored under.
    pub id: JobId,
    /// The revision read (the quarantine commit is guarded by it).
    pub rev: u64,
    /// The dead-letter placeholder keeping the raw bytes.
    pub placeholder: JobRecord,
    /// Why it did not load (for the log).
    pub error: DecodeError,
}

/// A decoded read: the answer for the transaction plus the repairs the runtime should make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedRead {
    /// The answer; corrupt records appear as their placeholders.
    pub fetched: Fetched,
    /// The server's clock when it read.
    pub server_now: Timestamp,
    /// Records that did not load; persist each with [`DecodedRead::quarantine`] and log it.
    pub corrupt: Vec<CorruptRecord>,
    /// Index members without a record; remove them with [`repair_call`].
    pub orphans: Vec<JobId>,
    /// Hash fields that are no job id (someone else's writes); left alone, worth a log line.
    pub junk: Vec<String>,
}

impl DecodedRead {
    /// Whether the runtime has repairs to make before answering.
    pub fn needs_repair(&self) -> bool {
        !self.corrupt.is_empty() || !self.orphans.is_empty()
    }

    /// One guarded commit per corrupt record, moving its placeholder into the dead letter.
    /// Separate commits so one record changed meanwhile does not hold back the others.
    pub fn quarantine(&self) -> Vec<Commit> {
        self.corrupt
            .iter()
            .map(|c| Commit {
                writes: vec![Write {
                    id: c.id,
                    expect: Some(c.rev),
                    record: Some(c.placeholder.clone()),
                }],
                ..Commit::default()
            })
            .collect()
    }
}

/// The call that removes orphan index members, or `None` when there are none.
pub fn repair_call(layout: &RedisLayout, orphans: &[JobId]) -> Option<ScriptCall> {
    (!orphans.is_empty()).then(|| ScriptCall {
        script: Script::Repair,
        keys: layout.keys().to_vec(),
        args: orphans.iter().map(|id| member(*id)).collect(),
    })
}

fn malformed(request: &'static str, detail: impl Into<String>) -> LayoutError {
    LayoutError::MalformedReply {
        request,
        detail: detail.into(),
    }
}

fn request_name(read: &Read) -> &'static str {
    match read {
        Read::Job(_) => "read job",
        Read::Queued { .. } => "read queued",
        Read::Expired(_) => "read expired",
        Read::All => "read all",
        Read::Depth => "read depth",
        Read::Finished(_) => "read finished",
        Read::Hosts => "read hosts",
    }
}

fn number(request: &'static str, what: &str, raw: Option<&[u8]>) -> Result<u64, LayoutError> {
    let raw = raw.ok_or_else(|| malformed(request, format!("{what} missing")))?;
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| {
            malformed(
                request,
                format!("{what} is not a number: {:?}", String::from_utf8_lossy(raw)),
            )
        })
}

/// Collects what reading one stored record produced.
struct Loader {
    now: Timestamp,
    corrupt: Vec<CorruptRecord>,
    orphans: Vec<JobId>,
    junk: Vec<String>,
}

impl Loader {
    /// Loads the record stored under `id`; `None` when there is none.
    fn load(
        &mut self,
        request: &'static str,
        id: JobId,
        json: Option<&[u8]>,
        rev: Option<&[u8]>,
    ) -> Result<Option<Versioned>, LayoutError> {
        let Some(json) = json else {
            return Ok(None);
        };
        // A missing or unreadable revision counts as 0, as in the commit script's guard, so
        // a hand-edited record can still be replaced or quarantined.
        let rev = number(request, "revision", rev).unwrap_or(0);
        Ok(Some(match JobRecord::load(id, json, self.now) {
            Loaded::Record(record) => Versioned { rev, record },
            Loaded::Corrupt { placeholder, error } => {
                self.corrupt.push(CorruptRecord {
                    id,
                    rev,
                    placeholder: placeholder.clone(),
                    error,
                });
                Versioned {
                    rev,
                    record: placeholder,
                }
            }
        }))
    }

    /// Loads `id, json, rev` triples; ids without a record are orphans of the index.
    fn triples(
        &mut self,
        request: &'static str,
        rest: &[Option<Vec<u8>>],
    ) -> Result<Vec<Versioned>, LayoutError> {
        if !rest.len().is_multiple_of(3) {
            return Err(malformed(request, format!("{} values", rest.len())));
        }
        let mut out = Vec::with_capacity(rest.len() / 3);
        for t in rest.chunks_exact(3) {
            let [raw_id, json, rev] = t else { continue };
            let raw_id = raw_id.as_deref().unwrap_or_default();
            let Some(id) = parse_member(raw_id) else {
                self.junk.push(String::from_utf8_lossy(raw_id).into_owned());
                continue;
            };
            match self.load(request, id, json.as_deref(), rev.as_deref())? {
                Some(v) => out.push(v),
                None => self.orphans.push(id),
            }
        }
        Ok(out)
    }
}

/// Decodes [`READ_SCRIPT`]'s reply to `read`. Never panics: bad records become placeholders
/// (see [`DecodedRead::corrupt`]); only a reply of the wrong shape is an error.
pub fn decode_read(read: &Read, reply: Vec<Option<Vec<u8>>>) -> Result<DecodedRead, LayoutError> {
    let request = request_name(read);
    if reply.len() < 2 {
        return Err(malformed(request, "no server time"));
    }
    let secs = number(request, "server seconds", reply[0].as_deref())?;
    let micros = number(request, "server microseconds", reply[1].as_deref())?;
    let server_now = Timestamp::from_millis(secs.saturating_mul(1000) + micros / 1000);
    let rest = &reply[2..];
    let mut loader = Loader {
        now: server_now,
        corrupt: Vec::new(),
        orphans: Vec::new(),
        junk: Vec::new(),
    };
    let fetched = match read {
        Read::Job(id) => {
            let [json, rev, finished] = rest else {
                return Err(malformed(request, format!("{} values", rest.len())));
            };
            let record = loader.load(request, *id, json.as_deref(), rev.as_deref())?;
            Fetched::Job {
                record,
                finished: finished.as_deref() == Some(b"1"),
            }
        }
        Read::Queued { .. } | Read::Expired(_) => Fetched::Records(loader.triples(request, rest)?),
        Read::All => {
            let mut all = loader.triples(request, rest)?;
            all.sort_by_key(|v| v.record.id);
            // HGETALL only lists stored records, so nothing it returns is an orphan.
            loader.orphans.clear();
            Fetched::Records(all)
        }
        Read::Depth => {
            let [queued, claimed, dead] = rest else {
                return Err(malformed(request, format!("{} values", rest.len())));
            };
            Fetched::Depth(QueueDepth {
                queued: number(request, "queued count", queued.as_deref())?,
                claimed: number(request, "claimed count", claimed.as_deref())?,
                dead: number(request, "dead count", dead.as_deref())?,
            })
        }
        Read::Finished(_) => {
            let [entry] = rest else {
                return Err(malformed(request, format!("{} values", rest.len())));
            };
            Fetched::Finished(entry.as_deref().map(|raw| match unstamp(raw) {
                Some((at, how)) => Finished { at, how },
                // Unreadable: still finished (idempotency holds); show the raw text.
                None => Finished {
                    at: Timestamp::default(),
                    how: String::from_utf8_lossy(raw).into_owned(),
                },
            }))
        }
        Read::Hosts => {
            if !rest.len().is_multiple_of(2) {
                return Err(malformed(request, format!("{} values", rest.len())));
            }
            let mut hosts = Vec::with_capacity(rest.len() / 2);
            for pair in rest.chunks_exact(2) {
                let [Some(host), Some(value)] = pair else {
                    continue;
                };
                let host = HostId(String::from_utf8_lossy(host).into_owned());
                let (at, payload) = unstamp(value).unwrap_or_else(|| {
                    (
                        Timestamp::default(),
                        String::from_utf8_lossy(value).into_owned(),
                    )
                });
                hosts.push((host, at, payload));
            }
            hosts.sort_by(|a, b| a.0.cmp(&b.0));
            Fetched::Hosts(hosts)
        }
    };
    Ok(DecodedRead {
        fetched,
        server_now,
        corrupt: loader.corrupt,
        orphans: loader.orphans,
        junk: loader.junk,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::queue::conformance::sample_job;
    use crate::queue::record::{Lease, REASON_CORRUPT_RECORD};

    fn layout() -> RedisLayout {
        RedisLayout::new(DEFAULT_PREFIX, "acme").unwrap()
    }

    fn b(s: &str) -> Option<Vec<u8>> {
        Some(s.as_bytes().to_vec())
    }

    fn record(id: u64) -> JobRecord {
        JobRecord::new(sample_job(id, "acme", Some("t")), Timestamp(5_000))
    }

    const LIMITS: CommitLimits = CommitLimits {
        finished_capacity: 100,
        wake_cap: 8,
    };

    #[test]
    fn script_index_follows_all() {
        for (i, s) in Script::ALL.into_iter().enumerate() {
            assert_eq!(s.index(), i);
        }
    }

    #[test]
    fn keys_share_one_hash_tag() {
        let l = layout();
        assert_eq!(l.keys().len(), KeyName::ALL.len());
        for k in l.keys() {
            assert!(k.starts_with("anklet:{acme}:"), "{k}");
        }
        assert_eq!(l.key(KeyName::Jobs), "anklet:{acme}:jobs");
        assert_eq!(l.key(KeyName::Wake), "anklet:{acme}:wake");
        assert_eq!(
            l.key(KeyName::FinishedOrder),
            "anklet:{acme}:finished_order"
        );
    }

    #[test]
    fn names_that_break_the_tag_are_refused() {
        assert!(RedisLayout::new("a{b", "q").is_err());
        assert!(RedisLayout::new("a", "").is_err());
        assert!(RedisLayout::new("a", "q}").is_err());
        assert!(RedisLayout::new("", "q").is_ok());
    }

    #[test]
    fn members_sort_like_ids() {
        assert_eq!(member(JobId(42)), "00000000000000000042");
        assert!(member(JobId(9)) < member(JobId(10)));
        assert!(member(JobId(u64::MAX)).len() == 20);
        assert_eq!(parse_member(member(JobId(7)).as_bytes()), Some(JobId(7)));
        assert_eq!(parse_member(b"x7"), None);
        assert_eq!(parse_member(b""), None);
    }

    #[test]
    fn commit_encodes_guards_places_and_extras() {
        let queued = record(1);
        let mut claimed = record(2);
        claimed.attempts = 1;
        claimed.place = Place::Claimed {
            lease: Lease {
                host: HostId("h".into()),
                claimed_at: Timestamp(6_000),
                expires_at: Timestamp(66_000),
            },
        };
        let commit = Commit {
            writes: vec![
                Write {
                    id: JobId(1),
                    expect: None,
                    record: Some(queued.clone()),
                },
                Write {
                    id: JobId(2),
                    expect: Some(7),
                    record: Some(claimed.clone()),
                },
                Write {
                    id: JobId(3),
                    expect: Some(9),
                    record: None,
                },
            ],
            remember: vec![(
                JobId(3),
                Finished {
                    at: Timestamp(7_000),
                    how: "succeeded".into(),
                },
            )],
            heartbeat: Some((HostId("h".into()), Timestamp(8_000), "{\"a\":1}".into())),
        };
        let call = encode_commit(&layout(), &commit, LIMITS).unwrap();
        assert_eq!(call.script, Script::Commit);
        assert_eq!(call.keys, layout().keys());
        let m = |id| member(JobId(id));
        let expected: Vec<String> = vec![
            "100".into(),
            "8".into(),
            "1".into(),
            "3".into(),
            m(1),
            "".into(),
            "P".into(),
            queued.encode().unwrap(),
            "q".into(),
            "5000".into(),
            m(2),
            "7".into(),
            "P".into(),
            claimed.encode().unwrap(),
            "c".into(),
            "66000".into(),
            m(3),
            "9".into(),
            "D".into(),
            "".into(),
            "".into(),
            "0".into(),
            "1".into(),
            m(3),
            "7000".into(),
            "7000:succeeded".into(),
            "1".into(),
            "h".into(),
            "8000:{\"a\":1}".into(),
        ];
        assert_eq!(call.args, expected);
    }

    #[test]
    fn empty_commit_encodes_counts_only() {
        let call = encode_commit(&layout(), &Commit::default(), LIMITS).unwrap();
        assert_eq!(call.args, vec!["100", "8", "1", "0", "0", "0"]);
        let two = encode_commits(&layout(), &[Commit::default(), Commit::default()], LIMITS);
        assert_eq!(
            two.unwrap().args,
            vec!["100", "8", "2", "0", "0", "0", "0", "0", "0"]
        );
    }

    #[test]
    fn commit_reply_is_a_flag() {
        assert_eq!(decode_commit(vec![1]), Ok(true));
        assert_eq!(decode_commit(vec![0]), Ok(false));
        assert!(decode_commit(vec![2]).is_err());
        assert!(decode_commit(vec![1, 1]).is_err());
        assert_eq!(
            decode_commits(vec![1, 0, 1], 3),
            Ok(vec![true, false, true])
        );
        assert!(decode_commits(vec![1], 2).is_err());
    }

    #[test]
    fn reads_encode_their_mode() {
        let l = layout();
        assert_eq!(
            encode_read(&l, &Read::Job(JobId(3))).args,
            vec!["job".to_owned(), member(JobId(3))]
        );
        assert_eq!(
            encode_read(
                &l,
                &Read::Queued {
                    offset: 64,
                    limit: 64
                }
            )
            .args,
            vec!["queued", "64", "64"]
        );
        assert_eq!(
            encode_read(&l, &Read::Expired(Timestamp(99))).args,
            vec!["expired", "99"]
        );
        assert_eq!(encode_read(&l, &Read::All).args, vec!["all"]);
        assert_eq!(encode_read(&l, &Read::Depth).args, vec!["depth"]);
        assert_eq!(encode_read(&l, &Read::Hosts).args, vec!["hosts"]);
        assert_eq!(encode_read(&l, &Read::All).script, Script::Read);
    }

    const TIME: [&str; 2] = ["1700000000", "123456"];

    fn reply(rest: Vec<Option<Vec<u8>>>) -> Vec<Option<Vec<u8>>> {
        let mut v = vec![b(TIME[0]), b(TIME[1])];
        v.extend(rest);
        v
    }

    #[test]
    fn job_read_decodes_record_revision_and_finished() {
        let r = record(4);
        let d = decode_read(
            &Read::Job(JobId(4)),
            reply(vec![b(&r.encode().unwrap()), b("12"), b("0")]),
        )
        .unwrap();
        assert_eq!(d.server_now, Timestamp(1_700_000_000_123));
        assert_eq!(
            d.fetched,
            Fetched::Job {
                record: Some(Versioned { rev: 12, record: r }),
                finished: false
            }
        );
        assert!(!d.needs_repair());
        let d = decode_read(&Read::Job(JobId(4)), reply(vec![None, None, b("1")])).unwrap();
        assert_eq!(
            d.fetched,
            Fetched::Job {
                record: None,
                finished: true
            }
        );
    }

    #[test]
    fn corrupt_record_becomes_a_dead_placeholder_and_a_quarantine_commit() {
        let d = decode_read(
            &Read::Job(JobId(4)),
            reply(vec![b("{not json"), None, b("0")]),
        )
        .unwrap();
        let Fetched::Job {
            record: Some(v), ..
        } = &d.fetched
        else {
            panic!("{:?}", d.fetched)
        };
        assert_eq!(v.rev, 0);
        assert_eq!(
            v.record.place,
            Place::Dead {
                since: Timestamp(1_700_000_000_123)
            }
        );
        assert!(
            v.record.history[0]
                .reason
                .starts_with(REASON_CORRUPT_RECORD)
        );
        assert_eq!(v.record.payload, "{not json");
        assert_eq!(d.corrupt.len(), 1);
        assert!(d.needs_repair());
        let q = d.quarantine();
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].writes[0].expect, Some(0));
        assert_eq!(q[0].writes[0].record.as_ref(), Some(&v.record));
        // The quarantine commit indexes it as dead.
        let call = encode_commit(&layout(), &q[0], LIMITS).unwrap();
        assert_eq!(call.args[8], "d");
    }

    #[test]
    fn record_under_the_wrong_key_is_corrupt() {
        let r = record(5);
        let d = decode_read(
            &Read::Job(JobId(6)),
            reply(vec![b(&r.encode().unwrap()), b("3"), b("0")]),
        )
        .unwrap();
        assert_eq!(d.corrupt.len(), 1);
        assert_eq!(d.corrupt[0].id, JobId(6));
        assert_eq!(d.corrupt[0].rev, 3);
    }

    #[test]
    fn record_pages_keep_order_and_report_orphans_and_junk() {
        let (r1, r2) = (record(1), record(2));
        let rest = vec![
            b(&member(JobId(2))),
            b(&r2.encode().unwrap()),
            b("5"),
            b(&member(JobId(9))),
            None,
            None,
            b(&member(JobId(1))),
            b(&r1.encode().unwrap()),
            b("4"),
            b("garbage-field"),
            b("x"),
            None,
        ];
        let read = Read::Queued {
            offset: 0,
            limit: 64,
        };
        let d = decode_read(&read, reply(rest.clone())).unwrap();
        assert_eq!(
            d.fetched,
            Fetched::Records(vec![
                Versioned { rev: 5, record: r2 },
                Versioned { rev: 4, record: r1 }
            ])
        );
        assert_eq!(d.orphans, vec![JobId(9)]);
        assert_eq!(d.junk, vec!["garbage-field".to_owned()]);
        assert!(d.needs_repair());
        let call = repair_call(&layout(), &d.orphans).unwrap();
        assert_eq!(call.script, Script::Repair);
        assert_eq!(call.args, vec![member(JobId(9))]);
        assert!(repair_call(&layout(), &[]).is_none());
        // `All` sorts by id and has no orphans.
        let d = decode_read(&Read::All, reply(rest)).unwrap();
        let Fetched::Records(all) = d.fetched else {
            panic!()
        };
        assert_eq!(
            all.iter().map(|v| v.record.id).collect::<Vec<_>>(),
            vec![JobId(1), JobId(2)]
        );
        assert!(d.orphans.is_empty());
    }

    #[test]
    fn finished_and_hosts_decode() {
        let d = decode_read(
            &Read::Finished(JobId(1)),
            reply(vec![b("7000:github_completed(success)")]),
        )
        .unwrap();
        assert_eq!(
            d.fetched,
            Fetched::Finished(Some(Finished {
                at: Timestamp(7_000),
                how: "github_completed(success)".into()
            }))
        );
        let d = decode_read(&Read::Finished(JobId(1)), reply(vec![None])).unwrap();
        assert_eq!(d.fetched, Fetched::Finished(None));
        let d = decode_read(&Read::Finished(JobId(1)), reply(vec![b("junk")])).unwrap();
        assert!(matches!(d.fetched, Fetched::Finished(Some(_))));
        let d = decode_read(
            &Read::Hosts,
            reply(vec![b("h2"), b("9:{}"), b("h1"), b("8:a:b")]),
        )
        .unwrap();
        assert_eq!(
            d.fetched,
            Fetched::Hosts(vec![
                (HostId("h1".into()), Timestamp(8), "a:b".into()),
                (HostId("h2".into()), Timestamp(9), "{}".into()),
            ])
        );
    }

    #[test]
    fn depth_decodes_three_counts() {
        let d = decode_read(&Read::Depth, reply(vec![b("3"), b("2"), b("1")])).unwrap();
        assert_eq!(
            d.fetched,
            Fetched::Depth(QueueDepth {
                queued: 3,
                claimed: 2,
                dead: 1
            })
        );
        assert!(!d.needs_repair());
        assert!(decode_read(&Read::Depth, reply(vec![b("3"), b("2")])).is_err());
        assert!(decode_read(&Read::Depth, reply(vec![b("3"), None, b("1")])).is_err());
        assert!(decode_read(&Read::Depth, reply(vec![b("3"), b("x"), b("1")])).is_err());
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        assert!(decode_read(&Read::All, vec![]).is_err());
        assert!(decode_read(&Read::All, vec![b("x"), b("1")]).is_err());
        assert!(decode_read(&Read::All, reply(vec![b("1")])).is_err());
        assert!(decode_read(&Read::Job(JobId(1)), reply(vec![])).is_err());
        assert!(decode_read(&Read::Hosts, reply(vec![b("h")])).is_err());
        let r = record(1).encode().unwrap();
        let d = decode_read(
            &Read::All,
            reply(vec![b(&member(JobId(1))), b(&r), b("nan")]),
        )
        .unwrap();
        assert_eq!(
            d.fetched,
            Fetched::Records(vec![Versioned {
                rev: 0,
                record: record(1)
            }])
        );
    }

    #[test]
    fn scripts_name_every_key_they_use() {
        for s in Script::ALL {
            assert!(s.source().contains("KEYS[1]"));
        }
    }
}
