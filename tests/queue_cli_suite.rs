// The `queue` operator tools, run as the real binary (included by
// runtime-blocking/tests/queue_cli.rs and runtime-tokio/tests/queue_cli.rs, which define
// `BIN_PATH` and `cmd()`): a store prepared through core's queue operations (queued, claimed, requeued and
// dead-lettered jobs with reasons), then `queue list`, `show`, `requeue` and `remove` against
// it, checked in the output and in the store afterwards; refusals (unknown job, not dead, no
// confirmation, locked store, no store) exit 1; one listing runs against a real redis-server.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anklet_core::ids::{HostId, JobId};
use anklet_core::labels::ClaimFilter;
use anklet_core::queue::conformance::sample_job;
use anklet_core::queue::txn::{Backend, Op, Reply, Store};
use anklet_core::queue::{JobRecord, Place, QueueSettings};
use anklet_core::time::Timestamp;
use predicates::prelude::*;

/// The jobs the prepared store holds (GitHub job ids).
const QUEUED_REQUEUED: u64 = 5001;
const QUEUED_FRESH_A: u64 = 1001;
const QUEUED_FRESH_B: u64 = 4001;
const CLAIMED: u64 = 2001;
const DEAD: u64 = 3001;

const MIN: Duration = Duration::from_secs(60);

fn wall() -> Timestamp {
    Timestamp(
        u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap(),
    )
}

fn run<B: Backend>(store: &Store<B>, now: Timestamp, op: Op) -> Reply
where
    B::Error: std::fmt::Debug,
{
    store.run(now, op).unwrap()
}

fn claim<B: Backend>(store: &Store<B>, now: Timestamp, host: &str, lease: Duration) -> JobId
where
    B::Error: std::fmt::Debug,
{
    match run(
        store,
        now,
        Op::Claim(HostId(host.into()), ClaimFilter::default(), lease),
    ) {
        Reply::Claimed(Some(r)) => r.id,
        other => panic!("claim answered {other:?}"),
    }
}

/// Fills a queue the way a fleet would have, over the last ten minutes:
/// - DEAD: claimed by mac-1, requeued (`vm_start_failed`), claimed by mac-2, dead-lettered
///   (`template_not_found`);
/// - CLAIMED: claimed by mac-1 under a one-hour lease;
/// - QUEUED_REQUEUED: claimed by mac-1, requeued (`runner_never_registered`);
/// - QUEUED_FRESH_A, QUEUED_FRESH_B: never claimed.
///
/// Queued claim order: QUEUED_REQUEUED (enqueued first), QUEUED_FRESH_A, QUEUED_FRESH_B.
fn fill<B: Backend>(store: &Store<B>)
where
    B::Error: std::fmt::Debug,
{
    let t0 = wall().saturating_sub(10 * MIN);
    let at = |m: u32| t0 + MIN * m;
    let enqueue = |id: u64, now: Timestamp| {
        let r = run(
            store,
            now,
            Op::Enqueue(sample_job(id, "acme", Some("tmpl-uuid"))),
        );
        assert!(matches!(r, Reply::Enqueued(_)), "{r:?}");
    };
    enqueue(DEAD, at(0));
    assert_eq!(claim(store, at(0), "mac-1", 5 * MIN), JobId(DEAD));
    let r = run(
        store,
        at(1),
        Op::Requeue(
            JobId(DEAD),
            HostId("mac-1".into()),
            "vm_start_failed".into(),
            true,
            Duration::ZERO,
        ),
    );
    assert!(matches!(r, Reply::Requeued(Ok(_))), "{r:?}");
    assert_eq!(claim(store, at(1), "mac-2", 5 * MIN), JobId(DEAD));
    let r = run(
        store,
        at(2),
        Op::DeadLetter(
            JobId(DEAD),
            HostId("mac-2".into()),
            "template_not_found".into(),
        ),
    );
    assert!(matches!(r, Reply::Written(Ok(()))), "{r:?}");

    enqueue(CLAIMED, at(3));
    assert_eq!(claim(store, at(3), "mac-1", 60 * MIN), JobId(CLAIMED));

    enqueue(QUEUED_REQUEUED, at(4));
    assert_eq!(
        claim(store, at(4), "mac-1", 5 * MIN),
        JobId(QUEUED_REQUEUED)
    );
    let r = run(
        store,
        at(5),
        Op::Requeue(
            JobId(QUEUED_REQUEUED),
            HostId("mac-1".into()),
            "runner_never_registered".into(),
            true,
            Duration::ZERO,
        ),
    );
    assert!(matches!(r, Reply::Requeued(Ok(_))), "{r:?}");

    enqueue(QUEUED_FRESH_A, at(7));
    enqueue(QUEUED_FRESH_B, at(8));
}

/// A temp folder with an embedded store prepared by [`fill`] and a config naming it.
struct Prepared {
    dir: tempfile::TempDir,
}

impl Prepared {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let prepared = Self { dir };
        let store = prepared.open();
        fill(&store);
        drop(store);
        std::fs::write(
            prepared.config(),
            format!(
                "store_path: {}\nplugins: []\n",
                prepared.store_path().display()
            ),
        )
        .unwrap();
        prepared
    }

    fn store_path(&self) -> PathBuf {
        self.dir.path().join("queue.redb")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    fn open(&self) -> anklet_lite::store::embedded::EmbeddedStore {
        anklet_lite::store::embedded::open_store(self.store_path(), QueueSettings::default())
            .unwrap()
    }

    fn get(&self, id: u64) -> Option<JobRecord> {
        match run(&self.open(), wall(), Op::Get(JobId(id))) {
            Reply::Record(r) => r,
            other => panic!("get answered {other:?}"),
        }
    }

    fn queue(&self, args: &[&str]) -> assert_cmd::Command {
        queue_cmd(&self.config(), args)
    }
}

fn queue_cmd(config: &Path, args: &[&str]) -> assert_cmd::Command {
    let mut c = cmd();
    c.arg("-c").arg(config).arg("queue").args(args);
    // A pipe, never the developer's terminal: confirmation prompts must refuse.
    c.write_stdin("");
    c
}

/// The job id cell of each table row, by state, in printed order.
fn rows(stdout: &str) -> Vec<(String, u64)> {
    stdout
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split(['│', '┆']).map(str::trim).collect();
            let state = *cells.get(1)?;
            let id = cells.get(2)?.parse().ok()?;
            ["queued", "claimed", "dead"]
                .contains(&state)
                .then(|| (state.to_owned(), id))
        })
        .collect()
}

fn stdout_of(c: &mut assert_cmd::Command) -> String {
    let out = c.assert().success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

#[test]
fn list_shows_queued_in_claim_order_then_claimed_then_dead_with_reasons() {
    let p = Prepared::new();
    let out = stdout_of(&mut p.queue(&["list"]));
    assert_eq!(
        rows(&out),
        vec![
            ("queued".into(), QUEUED_REQUEUED),
            ("queued".into(), QUEUED_FRESH_A),
            ("queued".into(), QUEUED_FRESH_B),
            ("claimed".into(), CLAIMED),
            ("dead".into(), DEAD),
        ],
        "{out}"
    );
    for needle in [
        "runner_never_registered",
        "template_not_found",
        "mac-1, lease ",
        " left",
        "last on mac-2, dead 8m",
        "acme/repo",
        "tmpl-uuid:latest",
        "3 queued · 1 claimed · 1 dead",
    ] {
        assert!(out.contains(needle), "no {needle:?} in\n{out}");
    }
    let dead_row = out.lines().find(|l| l.contains(&DEAD.to_string())).unwrap();
    let cells: Vec<&str> = dead_row.split(['│', '┆']).map(str::trim).collect();
    assert_eq!(cells[5], "2", "dead job's attempts in {dead_row}");
    assert!(cells[6].starts_with("10m"), "dead job's age in {dead_row}");
}

#[test]
fn list_json_has_the_same_jobs_and_reasons() {
    let p = Prepared::new();
    let out = stdout_of(&mut p.queue(&["list", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ids = |state: &str| -> Vec<u64> {
        v[state]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(
        ids("queued"),
        [QUEUED_REQUEUED, QUEUED_FRESH_A, QUEUED_FRESH_B]
    );
    assert_eq!(ids("claimed"), [CLAIMED]);
    assert_eq!(ids("dead"), [DEAD]);
    assert_eq!(v["dead"][0]["last_reason"], "template_not_found");
    assert_eq!(v["dead"][0]["last_host"], "mac-2");
    assert_eq!(v["dead"][0]["attempts"], 2);
    assert_eq!(v["claimed"][0]["lease"]["host"], "mac-1");
    assert_eq!(v["queued"][0]["last_reason"], "runner_never_registered");
    assert_eq!(v["queued"][1]["last_reason"], serde_json::Value::Null);
}

#[test]
fn show_prints_the_record_and_its_whole_history() {
    let p = Prepared::new();
    let out = stdout_of(&mut p.queue(&["show", &DEAD.to_string()]));
    for needle in [
        "dead since 20",
        "acme/repo (run 30010)",
        "tmpl-uuid:latest",
        "attempts     2 (0 uncounted)",
        "history (2 entries, oldest first)",
    ] {
        assert!(out.contains(needle), "no {needle:?} in\n{out}");
    }
    let first = out.find("vm_start_failed").expect("first reason");
    let second = out.find("template_not_found").expect("second reason");
    assert!(first < second, "history out of order:\n{out}");
    let history_rows: Vec<&str> = out.lines().filter(|l| l.contains("_")).collect();
    assert!(
        history_rows
            .iter()
            .any(|l| l.contains("vm_start_failed") && l.contains("mac-1") && l.contains("9m")),
        "{out}"
    );
    assert!(
        history_rows
            .iter()
            .any(|l| l.contains("template_not_found") && l.contains("mac-2") && l.contains("8m")),
        "{out}"
    );

    let json = stdout_of(&mut p.queue(&["show", &format!("job#{DEAD}"), "--json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["id"], DEAD);
    assert_eq!(v["place"]["place"], "dead");
    let reasons: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["vm_start_failed", "template_not_found"]);
}

#[test]
fn requeue_moves_a_dead_job_back_to_the_queue() {
    let p = Prepared::new();
    p.queue(&["requeue", &DEAD.to_string(), "--reason", "template pushed"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "job {DEAD} is back in the queue"
        )));
    let r = p.get(DEAD).unwrap();
    assert_eq!(r.place, Place::Queued);
    assert_eq!(r.attempts, 0);
    assert_eq!(r.history.last().unwrap().reason, "template pushed");
    // Now queued: a second requeue is refused and says where the job is.
    p.queue(&["requeue", &DEAD.to_string()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "job {DEAD} (acme/repo) is queued, not in the dead letter"
        )));
    p.queue(&["requeue", &CLAIMED.to_string()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "is claimed by mac-1, not in the dead letter",
        ));
    assert!(matches!(
        p.get(CLAIMED).unwrap().place,
        Place::Claimed { .. }
    ));
}

#[test]
fn remove_asks_for_confirmation_and_refuses_without_a_terminal() {
    let p = Prepared::new();
    let mut c = p.queue(&["remove", &DEAD.to_string()]);
    // Even a "y" on a pipe is no confirmation.
    c.write_stdin("y\n");
    c.assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "refusing to remove job {DEAD} (acme/repo) without confirmation: stdin is not a terminal"
        )))
        .stderr(predicate::str::contains("--yes"));
    assert!(matches!(p.get(DEAD).unwrap().place, Place::Dead { .. }));

    p.queue(&["remove", &DEAD.to_string(), "--yes"])
        .assert()
        .success()
        .stdout(format!(
            "removed job {DEAD} (acme/repo) from the dead letter\n"
        ));
    assert_eq!(p.get(DEAD), None);
    match run(&p.open(), wall(), Op::Finished(JobId(DEAD))) {
        Reply::Finished(Some(f)) => assert_eq!(f.how, "removed_from_dead_letter"),
        other => panic!("finished answered {other:?}"),
    }
    // Gone: asking about it again is "not in the queue", with how it ended.
    p.queue(&["show", &DEAD.to_string()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "job {DEAD} is not in the queue"
        )))
        .stderr(predicate::str::contains("removed_from_dead_letter"));
    // Only dead jobs can be removed.
    p.queue(&["remove", &QUEUED_FRESH_A.to_string(), "--yes"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "is queued, not in the dead letter",
        ));
    assert_eq!(p.get(QUEUED_FRESH_A).unwrap().place, Place::Queued);
}

/// Runs `queue <args>` on a pseudo-terminal (util-linux `script`), typing `typed`; returns the
/// exit code and everything the terminal showed.
fn on_terminal(p: &Prepared, args: &str, typed: &str) -> (Option<i32>, String) {
    use std::io::Write;
    let line = format!("'{BIN_PATH}' -c '{}' queue {args}", p.config().display());
    let mut child = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux `script` (Debian: bsdutils) runs the tool on a terminal");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(typed.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

#[test]
fn remove_on_a_terminal_asks_and_acts_on_the_answer() {
    let p = Prepared::new();
    let prompt = format!("remove job {DEAD} (acme/repo) from the dead letter? [y/N]");
    let (code, text) = on_terminal(&p, &format!("remove {DEAD}"), "n\n");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains(&prompt), "{text}");
    assert!(
        text.contains(&format!("job {DEAD} not removed (not confirmed)")),
        "{text}"
    );
    assert!(matches!(p.get(DEAD).unwrap().place, Place::Dead { .. }));

    let (code, text) = on_terminal(&p, &format!("remove {DEAD}"), "y\n");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(&prompt), "{text}");
    assert!(
        text.contains(&format!(
            "removed job {DEAD} (acme/repo) from the dead letter"
        )),
        "{text}"
    );
    assert_eq!(p.get(DEAD), None);
}

#[test]
fn unknown_jobs_bad_ids_and_missing_or_locked_stores_are_refused() {
    let p = Prepared::new();
    for args in [
        vec!["show", "999"],
        vec!["requeue", "999"],
        vec!["remove", "999", "--yes"],
    ] {
        p.queue(&args)
            .assert()
            .code(1)
            .stdout("")
            .stderr(predicate::str::contains(
                "error: job 999 is not in the queue",
            ));
    }
    p.queue(&["show", "nine"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a job id"));

    // The daemon holds the embedded store open: the tool says so and how to proceed.
    let held = p.open();
    p.queue(&["list"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is locked: a running daemon"))
        .stderr(predicate::str::contains("-s stop"));
    drop(held);
    p.queue(&["list"]).assert().success();

    // A config whose store does not exist: nothing is created.
    let other = p.dir.path().join("other.yml");
    let absent = p.dir.path().join("absent/queue.redb");
    std::fs::write(
        &other,
        format!("store_path: {}\nplugins: []\n", absent.display()),
    )
    .unwrap();
    queue_cmd(&other, &["list"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "no job store at {}",
            absent.display()
        )));
    assert!(!absent.exists());

    // A malformed config is a config error.
    std::fs::write(&other, "plugins: [\n").unwrap();
    queue_cmd(&other, &["list"]).assert().code(2);
}

#[test]
fn list_reads_the_fleet_queue_on_redis() {
    use anklet_core::queue::redis_layout::{DEFAULT_PREFIX, RedisLayout};
    use anklet_lite::store::redis::{RedisBackend, RedisOptions};

    let server = anklet_tests::redis_server::must_start(Default::default());
    let settings = QueueSettings::default();
    let layout = RedisLayout::new(DEFAULT_PREFIX, "acme").unwrap();
    let backend = RedisBackend::new(
        &anklet_tests::redis_server::test_db(server.port()),
        RedisOptions::new(layout, &settings),
    )
    .unwrap();
    let store = Store::new(backend, settings);
    fill(&store);
    drop(store);

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "global_database_url: 127.0.0.1\nglobal_database_port: {}\nplugins:\n  - name: mac-1\n    plugin: github\n    owner: acme\n    token: test-token\n",
            server.port()
        ),
    )
    .unwrap();
    let out = stdout_of(&mut queue_cmd(&config, &["list"]));
    assert_eq!(
        rows(&out),
        vec![
            ("queued".into(), QUEUED_REQUEUED),
            ("queued".into(), QUEUED_FRESH_A),
            ("queued".into(), QUEUED_FRESH_B),
            ("claimed".into(), CLAIMED),
            ("dead".into(), DEAD),
        ],
        "{out}"
    );
    assert!(out.contains("template_not_found"), "{out}");
    assert!(
        out.contains(&format!("Redis 127.0.0.1:{} queue \"acme\"", server.port())),
        "{out}"
    );

    // Redis gone: the store is unreachable, exit 1.
    drop(server);
    queue_cmd(&config, &["list"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("did not answer"));
}
