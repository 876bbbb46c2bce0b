//! Every fault action, matched by operation and glob, from `faults.json` (re-read on each call)
//! and from `FAKE_ANKA_FAULTS`; `times` consumed atomically across concurrent processes.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Fake, TPL, TestResult, alive, envelope, wait_for};
use serde_json::json;

#[test]
fn fail_matches_op_and_glob_and_the_file_is_reread() -> TestResult {
    let fake = Fake::new()?;
    fake.clones(&["vm-1", "other"])?;
    fake.faults(json!([{"op": "start", "match": "vm-*", "action": "fail", "code": 7, "message": "boom", "exit": 9}]))?;
    let (code, env) = fake.j(&["start", "vm-1"])?;
    assert_eq!(code, 9);
    assert_eq!(env["code"], 7);
    assert_eq!(env["message"], "boom");
    assert_eq!(env["exception_type"], "FakeAnkaInjectedFault");
    fake.ok(&["start", "other"])?;
    fake.ok(&["show", "vm-1"])?;
    // Matched by the VM's uuid too.
    let uuid = fake.ok(&["show", "vm-1"])?["uuid"]
        .as_str()
        .ok_or("uuid")?
        .to_string();
    let (code, _) = fake.j(&["start", &uuid])?;
    assert_eq!(code, 9);
    std::fs::remove_file(fake.home().join("faults.json"))?;
    fake.ok(&["start", "vm-1"])?;
    Ok(())
}

#[test]
fn die_prints_nothing() -> TestResult {
    let fake = Fake::new()?;
    let out = fake
        .command(&["-j", "version"])
        .env(
            "FAKE_ANKA_FAULTS",
            r#"{"op": "version", "action": "die", "exit": 77}"#,
        )
        .output()?;
    assert_eq!(out.status.code(), Some(77));
    assert!(out.stdout.is_empty());
    let out = fake
        .command(&["-j", "version"])
        .env("FAKE_ANKA_FAULTS", r#"{"action": "die"}"#)
        .output()?;
    assert_eq!(out.status.code(), Some(137));
    // The fake's own counters are never faulted.
    let out = fake
        .command(&["-j", "__stats"])
        .env("FAKE_ANKA_FAULTS", r#"{"action": "die"}"#)
        .output()?;
    assert_eq!(out.status.code(), Some(0));
    Ok(())
}

#[test]
fn garbage_last_line_is_not_json() -> TestResult {
    let fake = Fake::new()?;
    fake.faults(json!({"op": "list", "action": "garbage"}))?;
    let out = fake.run(&["-j", "list"])?;
    assert_eq!(out.status.code(), Some(0));
    assert!(envelope(&out).is_err());
    assert!(!out.stdout.is_empty());
    fake.ok(&["version"])?;
    Ok(())
}

#[test]
fn slow_multiplies_delays() -> TestResult {
    let fake = Fake::with(json!({"timings": {"start_ms": 100.0}}))?;
    fake.clones(&["vm-1", "vm-2"])?;
    let t = Instant::now();
    fake.ok(&["start", "vm-1"])?;
    let fast = t.elapsed();
    fake.faults(json!({"op": "start", "action": "slow", "factor": 5000}))?;
    let t = Instant::now();
    fake.ok(&["start", "vm-2"])?;
    let slow = t.elapsed();
    assert!(
        slow >= Duration::from_millis(450),
        "slow start took {slow:?}"
    );
    assert!(slow > fast * 2, "{fast:?} vs {slow:?}");
    Ok(())
}

/// (state, pgrp) from /proc/<pid>/stat.
fn stat(pid: u32) -> Option<(char, u32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let _ppid = f.next()?;
    let pgrp = f.next()?.parse().ok()?;
    Some((state, pgrp))
}

#[test]
fn hang_sleeps_with_a_sleep_child_in_its_process_group() -> TestResult {
    let fake = Fake::new()?;
    fake.clones(&["vm-1"])?;
    fake.faults(json!({"op": "delete", "match": "vm-1", "action": "hang"}))?;
    let mut cmd = fake.command(&["-j", "delete", "--yes", "vm-1"]);
    // Like the driver: anka in its own process group, killed as a group.
    cmd.process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let anka = child.id();
    let stderr = child.stderr.take().ok_or("stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stderr).read_line(&mut line);
        let _ = tx.send(line);
    });
    let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) else {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{anka}")])
            .status();
        let _ = child.wait();
        return Err("the hanging anka never logged its sleep child".into());
    };
    let sleep_pid: u32 = line
        .split("sleep child pid ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("no sleep pid in {line:?}"))?;
    assert_eq!(
        stat(sleep_pid).map(|s| s.1),
        Some(anka),
        "sleep child in anka's group"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(child.try_wait()?.is_none(), "anka must still hang");
    let killed = Command::new("kill")
        .args(["-KILL", "--", &format!("-{anka}")])
        .status()?;
    assert!(killed.success());
    child.wait()?;
    assert!(
        wait_for(Duration::from_secs(5), || !alive(sleep_pid)),
        "group kill reaches the sleep child"
    );
    // The VM was not deleted: the hang came first.
    std::fs::remove_file(fake.home().join("faults.json"))?;
    fake.ok(&["show", "vm-1"])?;
    Ok(())
}

#[test]
fn disk_full_at_fails_the_pull_at_the_threshold() -> TestResult {
    let fake = Fake::new()?;
    fake.faults(json!({"op": "pull", "match": TPL, "action": "disk_full_at", "bytes": 1000}))?;
    let (code, env) = fake.j(&["registry", "pull", "--shrink", TPL])?;
    assert_eq!(code, 28);
    assert!(
        env["message"]
            .as_str()
            .unwrap_or("")
            .contains("No space left on device")
    );
    assert_eq!(fake.stats()?["disk"]["used"], 1000);
    Ok(())
}

#[test]
fn registry_down_fails_registry_operations_only() -> TestResult {
    let fake = Fake::new()?;
    fake.faults(json!({"action": "registry_down"}))?;
    for args in [
        &["registry", "list"][..],
        &["registry", "--remote", "http://r.invalid", "show", TPL],
        &["pull", TPL, "--check-download-size"],
        &["registry", "pull", "--shrink", TPL],
    ] {
        let (code, env) = fake.j(args)?;
        assert_eq!((code, env["code"].as_i64()), (30, Some(30)), "{args:?}");
        assert!(
            env["message"]
                .as_str()
                .unwrap_or("")
                .contains("Connection refused")
        );
    }
    fake.ok(&["list"])?;
    fake.ok(&["version"])?;
    Ok(())
}

#[test]
fn license_invalid() -> TestResult {
    let fake = Fake::new()?;
    fake.faults(json!({"action": "license_invalid"}))?;
    let l = fake.ok(&["license", "show"])?;
    assert_eq!(l["status"], "invalid");
    assert_eq!(l["license_type"], "com.veertu.anka.develop");
    Ok(())
}

#[test]
fn vm_crash_fails_the_vm_and_run_exits_125() -> TestResult {
    let fake = Fake::with(json!({"timings": {"start_ms": 0.0}}))?;
    fake.clones(&["vm-1", "vm-2"])?;
    fake.faults(
        json!({"op": "start", "match": "vm-1", "action": "vm_crash", "after_s": 100, "times": 1}),
    )?;
    fake.ok(&["start", "vm-1"])?;
    fake.ok(&["start", "vm-2"])?;
    assert!(
        wait_for(Duration::from_secs(5), || fake
            .ok(&["show", "vm-1"])
            .is_ok_and(|s| s["status"] == "failed")),
        "the watcher crashes the VM"
    );
    assert_eq!(fake.ok(&["show", "vm-2"])?["status"], "running");
    let out = fake.run(&["-j", "run", "vm-1", "true"])?;
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(envelope(&out)?["code"], 125);
    assert_eq!(fake.ok(&["list", "-r"])?.as_array().map(Vec::len), Some(1));
    assert_eq!(fake.stats()?["counters"]["crashes"], 1);
    assert_eq!(fake.stats()?["failed_vms"], json!(["vm-1"]));
    fake.ok(&["delete", "--yes", "vm-1"])?;
    Ok(())
}

#[test]
fn times_one_fires_once_across_concurrent_processes() -> TestResult {
    let fake = Fake::new()?;
    fake.ok(&["version"])?;
    fake.faults(json!({"op": "version", "action": "fail", "exit": 4, "times": 1}))?;
    let children: Vec<_> = (0..8)
        .map(|_| {
            fake.command(&["-j", "version"])
                .stdout(Stdio::piped())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    let mut failed = 0;
    for c in children {
        let out = c.wait_with_output()?;
        match out.status.code() {
            Some(0) => {}
            Some(4) => failed += 1,
            other => return Err(format!("unexpected exit {other:?}").into()),
        }
        envelope(&out)?;
    }
    assert_eq!(failed, 1);
    assert_eq!(fake.stats()?["counters"]["faults_fired"], 1);
    Ok(())
}
