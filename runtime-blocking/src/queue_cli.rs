//! `queue`: the operators' tools for the job queue, shared by both daemons' command lines.
//!
//! ```text
//! queue list [--json]                  queued (claim order), claimed, dead: age, attempts, host, reason
//! queue show <job-id> [--json]         one record and its whole reason history
//! queue requeue <job-id> [--reason T]  a dead job back to the queue (attempts reset)
//! queue remove <job-id> [--yes]        a dead job removed for good (asks unless --yes)
//! ```
//!
//! The tools open the store the daemon of the same config runs on ([`store_location`]): the
//! embedded file (which a running daemon holds locked: the error says so) or the fleet's Redis.
//! Every change is one of core's queue operations, so the tools keep the queue's rules (a job
//! is requeued or removed only from the dead letter, a removed job is remembered as finished).
//! Exit codes: 0 = done, 1 = refused or failed (unknown job, not dead, not confirmed, store
//! unreachable or locked), 2 = usage or config.

use crate::clock::Clock;
use crate::common::{StoreLocation, store_location};
use crate::store::embedded::{EmbeddedError, open_store};
use crate::store::redis::{RedisBackend, RedisOptions, RedisStoreError};
use crate::store::shared::{Exclusive, SharedStore};
use anklet_core::config::Config;
use anklet_core::ids::JobId;
use anklet_core::labels::VmSpec;
use anklet_core::queue::redis_layout::{DEFAULT_PREFIX, RedisLayout};
use anklet_core::queue::txn::{Op, Reply};
use anklet_core::queue::{JobRecord, JobSummary, Place, QueueListing, QueueSettings, Requeued};
use anklet_core::time::Timestamp;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

/// The history reason an operator's requeue records when `--reason` is not given.
pub const DEFAULT_REQUEUE_REASON: &str = "requeued_by_operator";

/// Reconnects the tools try before reporting Redis unreachable (the daemon's
/// `database.max_retries` applies when it is lower).
const CONNECT_RETRIES: u32 = 1;

/// `queue`'s arguments (a subcommand of the shared command line).
#[derive(Debug, clap::Args)]
pub struct QueueArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: QueueAction,
}

/// The queue tools. Jobs are named by GitHub's workflow job id (`123` or `job#123`).
#[derive(Debug, clap::Subcommand)]
pub enum QueueAction {
    /// List queued jobs (in claim order), then claimed, then dead-lettered ones, with age,
    /// attempts, host or lease, and the last reason.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one job's record and its whole reason history.
    Show {
        /// The job id.
        #[arg(value_name = "JOB_ID", value_parser = parse_job_id)]
        job: JobId,
        /// Print the stored record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put a dead-lettered job back in the queue, ready at once, its attempts reset to 0.
    Requeue {
        /// The job id.
        #[arg(value_name = "JOB_ID", value_parser = parse_job_id)]
        job: JobId,
        /// Why, recorded in the job's history.
        #[arg(long, value_name = "TEXT", default_value = DEFAULT_REQUEUE_REASON)]
        reason: String,
    },
    /// Remove a dead-lettered job for good (remembered as finished, so a redelivered webhook
    /// does not bring it back). Asks for confirmation on the terminal unless --yes.
    Remove {
        /// The job id.
        #[arg(value_name = "JOB_ID", value_parser = parse_job_id)]
        job: JobId,
        /// Remove without asking (required when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// Reads `123` or `job#123` (the form logs print) as a job id.
fn parse_job_id(s: &str) -> Result<JobId, String> {
    let digits = s.strip_prefix("job#").unwrap_or(s);
    digits
        .parse::<u64>()
        .map(JobId)
        .map_err(|_| format!("{s:?} is not a job id (GitHub's workflow job id, e.g. 123456)"))
}

/// A refusal or failure: what to print, and the exit code (1, or 2 for config problems).
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn refused(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }

    fn config(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }
}

/// The open store and a description of it for messages.
struct Opened {
    store: Box<dyn SharedStore>,
    name: String,
}

/// Runs one queue tool against the store `config` names; the exit code follows the module docs.
pub fn run(
    bin: &str,
    config: &Config,
    env: &BTreeMap<String, String>,
    args: &QueueArgs,
) -> ExitCode {
    let outcome = open(bin, config, env).and_then(|opened| {
        let clock = Clock::new();
        match &args.action {
            QueueAction::List { json } => list(&opened, &clock, *json),
            QueueAction::Show { job, json } => show(&opened, &clock, *job, *json),
            QueueAction::Requeue { job, reason } => requeue(&opened, &clock, *job, reason),
            QueueAction::Remove { job, yes } => remove(&opened, &clock, *job, *yes),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprint_text(&format!("error: {}\n", f.message));
            ExitCode::from(f.code)
        }
    }
}

/// Opens the daemon's store. The embedded file is never created here: a missing file means
/// the wrong config (or a daemon that never ran), which an operator should hear about.
fn open(bin: &str, config: &Config, env: &BTreeMap<String, String>) -> Result<Opened, Failure> {
    let settings = QueueSettings::default();
    match store_location(config, env) {
        StoreLocation::Embedded(path) => {
            if !path.exists() {
                return Err(Failure::refused(format!(
                    "no job store at {}\n  hint: the daemon creates it (store_path) when it first starts with this config; is -c the daemon's config?",
                    path.display()
                )));
            }
            match open_store(&path, settings) {
                Ok(store) => Ok(Opened {
                    store: Box::new(Exclusive::new(store)),
                    name: format!("embedded store {}", path.display()),
                }),
                Err(EmbeddedError::Locked { path }) => Err(Failure::refused(format!(
                    "the job store {} is locked: a running daemon ({bin} or another anklet with this config) holds the embedded store open\n  hint: the embedded store belongs to the one process running on it; stop that daemon (`{bin} -s stop`, or `{bin} -s drain` to let running jobs finish) and run the queue tools again, or configure a Redis database (global_database_url) so operators' tools and daemons share the queue",
                    path.display()
                ))),
                Err(e) => Err(Failure::refused(format!("cannot open the job store: {e}"))),
            }
        }
        StoreLocation::Redis { mut db, queue } => {
            // An operator waiting at a prompt should hear at once that Redis is down, not
            // after the daemon's whole reconnect schedule.
            db.max_retries = db.max_retries.min(CONNECT_RETRIES);
            let layout = RedisLayout::new(DEFAULT_PREFIX, &queue).map_err(|e| {
                Failure::config(format!("queue name {queue:?} cannot be used: {e}"))
            })?;
            let name = format!("Redis {}:{} queue {queue:?}", db.url, db.port);
            let backend = RedisBackend::new(&db, RedisOptions::new(layout, &settings)).map_err(
                |e| match e {
                    RedisStoreError::Config(_) => Failure::config(e.to_string()),
                    e => Failure::refused(format!("cannot reach {name}: {e}")),
                },
            )?;
            Ok(Opened {
                store: Box::new(Exclusive::new(anklet_core::queue::Store::new(
                    backend, settings,
                ))),
                name,
            })
        }
    }
}

impl Opened {
    /// Runs one operation; a store that cannot answer is a failure (exit 1).
    fn run(&self, clock: &Clock, op: Op) -> Result<Reply, Failure> {
        self.store
            .run(clock.now(), op)
            .map_err(|e| Failure::refused(format!("the {} did not answer: {e}", self.name)))
    }

    /// One job's record, or `None`.
    fn get(&self, clock: &Clock, job: JobId) -> Result<Option<JobRecord>, Failure> {
        match self.run(clock, Op::Get(job))? {
            Reply::Record(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    /// The refusal for a job the queue does not hold, saying how it ended if that is known.
    fn not_found(&self, clock: &Clock, job: JobId) -> Failure {
        let now = clock.now();
        let finished = match self.run(clock, Op::Finished(job)) {
            Ok(Reply::Finished(Some(f))) => {
                format!("; it finished ({}) at {}", f.how, when(f.at, now))
            }
            _ => String::new(),
        };
        Failure::refused(format!(
            "job {} is not in the queue ({}){finished}\n  hint: `queue list` shows the jobs it holds",
            job.0, self.name
        ))
    }
}

fn unexpected(reply: &Reply) -> Failure {
    Failure::refused(format!(
        "the store answered something unexpected: {reply:?}"
    ))
}

/// Writes to stdout, ignoring a closed pipe (`queue list | head` must not panic).
fn print_text(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Writes to stderr, ignoring errors.
fn eprint_text(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// A duration as an operator reads it: the two largest units (`45s`, `3m 12s`, `2h 05m`,
/// `3d 04h`).
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// An instant as RFC 3339 in UTC to the second (`2026-11-23T15:07:52Z`), the same on every
/// host of a fleet.
pub fn utc(at: Timestamp) -> String {
    i64::try_from(at.as_millis())
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .and_then(|t| t.round(jiff::Unit::Second).ok())
        .map_or_else(
            || format!("{} ms since the epoch", at.as_millis()),
            |t| t.to_string(),
        )
}

/// An instant with how far it is from `now` (`... (3m 12s ago)` or `... (in 20s)`).
fn when(at: Timestamp, now: Timestamp) -> String {
    if at <= now {
        format!(
            "{} ({} ago)",
            utc(at),
            human_duration(now.saturating_since(at))
        )
    } else {
        format!(
            "{} (in {})",
            utc(at),
            human_duration(at.saturating_since(now))
        )
    }
}

/// `template:tag` (`:latest` when the labels name no tag), or why there is none.
fn spec_text(spec: Option<&VmSpec>) -> String {
    match spec {
        Some(s) => format!("{}:{}", s.template, s.tag.as_deref().unwrap_or("latest")),
        None => "(no anka-template label)".to_owned(),
    }
}

/// The newest host named in a record's history (who last held or gave up the job).
fn last_host(record: &JobRecord) -> Option<String> {
    record
        .history
        .iter()
        .rev()
        .find_map(|e| e.host.as_ref().map(ToString::to_string))
}

/// The host / lease cell of a listing row: who holds a claimed job and for how long, the host
/// that last had a dead job, or a queued job's requeue delay.
fn host_cell(state: &str, s: &JobSummary, dead_host: Option<&String>, now: Timestamp) -> String {
    match (state, &s.lease) {
        ("claimed", Some(l)) if l.is_live(now) => format!(
            "{}, lease {} left",
            l.host,
            human_duration(l.expires_at.saturating_since(now))
        ),
        ("claimed", Some(l)) => format!(
            "{}, lease lapsed {} ago",
            l.host,
            human_duration(now.saturating_since(l.expires_at))
        ),
        ("dead", _) => {
            let since = s.dead_for.map(human_duration).unwrap_or_default();
            match dead_host {
                Some(h) => format!("last on {h}, dead {since}"),
                None => format!("dead {since}"),
            }
        }
        _ if !s.ready_in.is_zero() => format!("ready in {}", human_duration(s.ready_in)),
        _ => String::new(),
    }
}

fn list(opened: &Opened, clock: &Clock, json: bool) -> Result<(), Failure> {
    let now = clock.now();
    let listing = match opened.run(clock, Op::List)? {
        Reply::Listing(l) => l,
        other => return Err(unexpected(&other)),
    };
    // Dead records in full, for the host that last had each dead job.
    let dead_hosts: BTreeMap<JobId, String> = match opened.run(clock, Op::ListDead)? {
        Reply::Dead(records) => records
            .iter()
            .filter_map(|r| last_host(r).map(|h| (r.id, h)))
            .collect(),
        other => return Err(unexpected(&other)),
    };
    if json {
        print_text(&format!("{}\n", listing_json(&listing, &dead_hosts, now)));
        return Ok(());
    }
    let QueueListing {
        queued,
        claimed,
        dead,
    } = &listing;
    if queued.is_empty() && claimed.is_empty() && dead.is_empty() {
        print_text(&format!("the queue is empty ({})\n", opened.name));
        return Ok(());
    }
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header([
        "state",
        "job",
        "repo",
        "template:tag",
        "attempts",
        "age",
        "host / lease",
        "last reason",
    ]);
    let rows = [("queued", queued), ("claimed", claimed), ("dead", dead)];
    for (state, jobs) in rows {
        for s in jobs {
            table.add_row([
                state.to_owned(),
                s.id.0.to_string(),
                s.repo.clone(),
                spec_text(s.spec.as_ref()),
                s.attempts.to_string(),
                human_duration(s.age),
                host_cell(state, s, dead_hosts.get(&s.id), now),
                s.last_reason.clone().unwrap_or_default(),
            ]);
        }
    }
    print_text(&format!(
        "{table}\n{} queued · {} claimed · {} dead ({})\n",
        queued.len(),
        claimed.len(),
        dead.len(),
        opened.name
    ));
    Ok(())
}

fn listing_json(
    listing: &QueueListing,
    dead_hosts: &BTreeMap<JobId, String>,
    now: Timestamp,
) -> serde_json::Value {
    let row = |s: &JobSummary| {
        json!({
            "id": s.id.0,
            "repo": s.repo,
            "run_id": s.run_id,
            "template": s.spec.as_ref().map(|v| v.template.to_string()),
            "tag": s.spec.as_ref().and_then(|v| v.tag.clone()),
            "github": s.status,
            "attempts": s.attempts,
            "age_secs": s.age.as_secs(),
            "ready_in_secs": s.ready_in.as_secs(),
            "lease": s.lease.as_ref().map(|l| json!({
                "host": l.host.to_string(),
                "claimed_at": utc(l.claimed_at),
                "expires_at": utc(l.expires_at),
                "expires_in_secs": l.expires_at.saturating_since(now).as_secs(),
            })),
            "dead_for_secs": s.dead_for.map(|d| d.as_secs()),
            "last_host": dead_hosts.get(&s.id).cloned().or_else(|| s.lease.as_ref().map(|l| l.host.to_string())),
            "last_reason": s.last_reason,
        })
    };
    json!({
        "now": utc(now),
        "queued": listing.queued.iter().map(row).collect::<Vec<_>>(),
        "claimed": listing.claimed.iter().map(row).collect::<Vec<_>>(),
        "dead": listing.dead.iter().map(row).collect::<Vec<_>>(),
    })
}

fn show(opened: &Opened, clock: &Clock, job: JobId, json: bool) -> Result<(), Failure> {
    let now = clock.now();
    let Some(r) = opened.get(clock, job)? else {
        return Err(opened.not_found(clock, job));
    };
    if json {
        let value = serde_json::to_value(&r)
            .map_err(|e| Failure::refused(format!("cannot write the record as JSON: {e}")))?;
        let text = serde_json::to_string_pretty(&value)
            .map_err(|e| Failure::refused(format!("cannot write the record as JSON: {e}")))?;
        print_text(&format!("{text}\n"));
        return Ok(());
    }
    let place = match &r.place {
        Place::Queued if r.ready_at > now => format!("queued, ready {}", when(r.ready_at, now)),
        Place::Queued => "queued".to_owned(),
        Place::Claimed { lease } => format!(
            "claimed by {} since {}, lease until {}",
            lease.host,
            when(lease.claimed_at, now),
            when(lease.expires_at, now)
        ),
        Place::Dead { since } => format!("dead since {}", when(*since, now)),
    };
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<13}{v}\n"));
    line("job", r.id.0.to_string());
    line("state", place);
    line("repo", format!("{}/{} (run {})", r.owner, r.repo, r.run_id));
    line("template", spec_text(r.spec.as_ref()));
    line("labels", r.labels.join(", "));
    let github = serde_json::to_value(&r.status)
        .ok()
        .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_owned))
        .unwrap_or_default();
    line("github", github);
    line(
        "attempts",
        format!("{} ({} uncounted)", r.attempts, r.uncounted),
    );
    line("enqueued", when(r.enqueued_at, now));
    if let Some(at) = r.last_claimed_at {
        line("last claimed", when(at, now));
    }
    line("updated", when(r.updated_at, now));
    line(
        "payload",
        format!("{} bytes (--json shows it)", r.payload.len()),
    );
    out.push_str(&format!(
        "\nhistory ({} entries, oldest first):\n",
        r.history.len()
    ));
    if r.history.is_empty() {
        out.push_str("  (none: the job has not moved since it was queued)\n");
    } else {
        let mut table = comfy_table::Table::new();
        table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        table.set_header(["time (UTC)", "ago", "reason", "host"]);
        for e in &r.history {
            table.add_row([
                utc(e.at),
                human_duration(now.saturating_since(e.at)),
                e.reason.clone(),
                e.host.as_ref().map(ToString::to_string).unwrap_or_default(),
            ]);
        }
        out.push_str(&format!("{table}\n"));
    }
    print_text(&out);
    Ok(())
}

/// Why a job that is in the queue is not a dead job an operator may requeue or remove.
fn not_dead(r: &JobRecord, what: &str) -> Failure {
    let place = match &r.place {
        Place::Claimed { lease } => format!("claimed by {}", lease.host),
        other => other.name().to_owned(),
    };
    Failure::refused(format!(
        "job {} ({}/{}) is {place}, not in the dead letter: only dead jobs can be {what}",
        r.id.0, r.owner, r.repo
    ))
}

fn requeue(opened: &Opened, clock: &Clock, job: JobId, reason: &str) -> Result<(), Failure> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Failure::config("--reason must not be empty"));
    }
    match opened.run(clock, Op::RequeueDead(job, reason.to_owned()))? {
        Reply::DeadRequeued(Ok(Requeued::Queued { .. })) => {
            print_text(&format!(
                "job {} is back in the queue (attempts reset to 0, reason: {reason})\n",
                job.0
            ));
            Ok(())
        }
        Reply::DeadRequeued(Ok(Requeued::Dropped)) => Err(Failure::refused(format!(
            "job {} was not requeued: GitHub already reported it completed, so it was removed from the dead letter instead",
            job.0
        ))),
        Reply::DeadRequeued(Ok(Requeued::DeadLettered)) => Err(Failure::refused(format!(
            "job {} went straight back to the dead letter",
            job.0
        ))),
        Reply::DeadRequeued(Err(_)) => match opened.get(clock, job)? {
            Some(r) => Err(not_dead(&r, "requeued")),
            None => Err(opened.not_found(clock, job)),
        },
        other => Err(unexpected(&other)),
    }
}

fn remove(opened: &Opened, clock: &Clock, job: JobId, yes: bool) -> Result<(), Failure> {
    let Some(r) = opened.get(clock, job)? else {
        return Err(opened.not_found(clock, job));
    };
    if !matches!(r.place, Place::Dead { .. }) {
        return Err(not_dead(&r, "removed"));
    }
    let repo = format!("{}/{}", r.owner, r.repo);
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::refused(format!(
                "refusing to remove job {} ({repo}) without confirmation: stdin is not a terminal\n  hint: pass --yes to remove it without asking",
                job.0
            )));
        }
        eprint_text(&format!(
            "remove job {} ({repo}) from the dead letter? [y/N] ",
            job.0
        ));
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).is_err() {
            answer.clear();
        }
        let answer = answer.trim().to_ascii_lowercase();
        if answer != "y" && answer != "yes" {
            return Err(Failure::refused(format!(
                "job {} not removed (not confirmed)",
                job.0
            )));
        }
    }
    match opened.run(clock, Op::RemoveDead(job))? {
        Reply::DeadRemoved(Ok(_)) => {
            print_text(&format!(
                "removed job {} ({repo}) from the dead letter\n",
                job.0
            ));
            Ok(())
        }
        Reply::DeadRemoved(Err(_)) => Err(Failure::refused(format!(
            "job {} left the dead letter meanwhile; nothing was removed",
            job.0
        ))),
        other => Err(unexpected(&other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_two_units() {
        assert_eq!(human_duration(Duration::from_secs(0)), "0s");
        assert_eq!(human_duration(Duration::from_secs(59)), "59s");
        assert_eq!(human_duration(Duration::from_secs(192)), "3m 12s");
        assert_eq!(
            human_duration(Duration::from_secs(2 * 3600 + 5 * 60)),
            "2h 05m"
        );
        assert_eq!(
            human_duration(Duration::from_secs(3 * 86400 + 4 * 3600)),
            "3d 04h"
        );
    }

    #[test]
    fn instants_are_utc_to_the_second() {
        assert_eq!(utc(Timestamp(1_795_446_472_600)), "2026-11-23T15:07:53Z");
        assert_eq!(utc(Timestamp(0)), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn job_ids_parse_with_or_without_prefix() {
        assert_eq!(parse_job_id("123"), Ok(JobId(123)));
        assert_eq!(parse_job_id("job#7"), Ok(JobId(7)));
        assert!(parse_job_id("x7").is_err());
    }
}
