//! The process runner against real child processes: deadlines kill the whole process group
//! (grandchildren included), output is bounded, stdin arrives, exit statuses are reported.
#![cfg(feature = "vm")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::vm::Exit;
use anklet_lite::vm::process::{ProcessSpec, run};
use std::path::Path;
use std::time::{Duration, Instant};

const SH: &str = "/bin/sh";

fn sh(
    script: &str,
    stdin: Option<&[u8]>,
    timeout: Duration,
    limit: usize,
) -> anklet_core::vm::ProcessOutput {
    let args = vec!["-c".to_owned(), script.to_owned()];
    run(ProcessSpec {
        program: Path::new(SH),
        args: &args,
        stdin,
        timeout,
        output_limit: limit,
    })
}

/// Whether `pid` is still a live process (a zombie awaiting its reaper counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next());
            !matches!(state, Some("Z" | "X"))
        }
        Err(_) => false,
    }
}

#[test]
fn a_hung_command_and_its_grandchild_are_killed_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let script = format!(
        "sleep 300 & echo $! > {p}; echo started; wait",
        p = pidfile.display()
    );
    let started = Instant::now();
    let out = sh(&script, None, Duration::from_millis(700), 1 << 20);
    let took = started.elapsed();
    assert_eq!(
        out.exit,
        Exit::TimedOut {
            after: Duration::from_millis(700)
        }
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let gone_by = Instant::now() + Duration::from_secs(3);
    while alive(pid) && Instant::now() < gone_by {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(pid), "grandchild {pid} survived the group kill");
}

#[test]
fn output_is_bounded_to_the_newest_bytes() {
    let script = "head -c 3000000 /dev/zero | tr '\\0' a; echo; printf '{\"status\":\"OK\"}'";
    let out = sh(script, None, Duration::from_secs(20), 1 << 20);
    assert_eq!(out.exit, Exit::Code(0));
    assert_eq!(out.stdout.len(), 1 << 20);
    assert_eq!(out.stdout_dropped, 3_000_000 + 1 + 15 - (1 << 20));
    let env = anklet_core::vm::output::parse_envelope(&out.stdout).expect("last line kept");
    assert!(env.is_ok());
}

#[test]
fn stdin_is_delivered_and_closed() {
    let out = sh(
        "cat; echo '<eof>' >&2",
        Some(b"line one\nline two\n"),
        Duration::from_secs(10),
        1024,
    );
    assert_eq!(out.exit, Exit::Code(0));
    assert_eq!(out.stdout, b"line one\nline two\n");
    assert_eq!(out.stderr, b"<eof>\n");
}

#[test]
fn a_child_that_ignores_a_large_stdin_does_not_block_us() {
    let big = vec![b'x'; 4 << 20];
    let out = sh("exit 0", Some(&big), Duration::from_secs(10), 1024);
    assert_eq!(out.exit, Exit::Code(0));
}

#[test]
fn no_stdin_means_immediate_eof() {
    let out = sh("cat; echo done", None, Duration::from_secs(10), 1024);
    assert_eq!((out.exit, out.stdout), (Exit::Code(0), b"done\n".to_vec()));
}

#[test]
fn exit_codes_and_signals_are_reported() {
    assert_eq!(
        sh("exit 30", None, Duration::from_secs(10), 64).exit,
        Exit::Code(30)
    );
    assert_eq!(
        sh("exit 0", None, Duration::from_secs(10), 64).exit,
        Exit::Code(0)
    );
    assert_eq!(
        sh("kill -TERM $$", None, Duration::from_secs(10), 64).exit,
        Exit::Signal(15)
    );
}

#[test]
fn a_missing_executable_is_a_spawn_failure() {
    let out = run(ProcessSpec {
        program: Path::new("/nonexistent/anka"),
        args: &[],
        stdin: None,
        timeout: Duration::from_secs(1),
        output_limit: 64,
    });
    assert!(matches!(out.exit, Exit::SpawnFailed(_)), "{:?}", out.exit);
}
