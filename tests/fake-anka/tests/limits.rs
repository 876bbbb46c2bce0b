//! The host limits the fake models: Apple's two running VMs, disk accounting (pulls fill the
//! disk in steps, a full disk leaves a partial template holding its bytes, templates free only
//! bytes no clone shares), and silent corruption by overlapping pulls of the same template.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Fake, TPL, TestResult, envelope, reap};
use serde_json::json;

#[test]
fn third_running_vm_is_refused() -> TestResult {
    let fake = Fake::new()?;
    fake.clones(&["vm-1", "vm-2", "vm-3"])?;
    fake.ok(&["start", "vm-1"])?;
    fake.ok(&["start", "vm-2"])?;
    let (code, env) = fake.j(&["start", "vm-3"])?;
    assert_eq!(code, 1);
    assert_eq!(
        env["message"],
        "maximum number of running instances exceeded"
    );
    assert_eq!(env["exception_type"], "AnkaLicenseLimitException");
    // run auto-starts, so it is refused the same way.
    let (code, env) = fake.j(&["run", "vm-3", "true"])?;
    assert_eq!(code, 1);
    assert_eq!(
        env["message"],
        "maximum number of running instances exceeded"
    );
    // Suspended VMs do not count.
    fake.ok(&["suspend", "vm-1"])?;
    fake.ok(&["start", "vm-3"])?;
    let stats = fake.stats()?;
    assert_eq!(stats["counters"]["max_running_seen"], 2);
    assert_eq!(stats["counters"]["licence_refusals"], 2);
    Ok(())
}

#[test]
fn concurrent_starts_never_exceed_the_limit() -> TestResult {
    let fake = Fake::with(json!({"timings": {"start_ms": 100_000.0}}))?;
    fake.clones(&["vm-1", "vm-2", "vm-3", "vm-4"])?;
    let children: Vec<_> = ["vm-1", "vm-2", "vm-3", "vm-4"]
        .iter()
        .map(|vm| {
            fake.command(&["-j", "start", vm])
                .stdout(std::process::Stdio::piped())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    let mut ok = 0;
    for c in children {
        let out = c.wait_with_output()?;
        if out.status.success() {
            ok += 1;
        }
    }
    assert_eq!(ok, 2);
    assert_eq!(fake.stats()?["counters"]["max_running_seen"], 2);
    Ok(())
}

#[test]
fn pull_fills_the_disk_in_steps() -> TestResult {
    // 3000 bytes at 1500 B/s in 5 steps = 2 s at scale 1.
    let fake = Fake::with(json!({
        "time_scale": 1.0,
        "timings": {"pull_bytes_per_sec": 1500.0, "pull_steps": 5, "query_ms": 0.0}
    }))?;
    let child = fake
        .command(&["-j", "registry", "pull", TPL])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut seen = BTreeSet::new();
    let mut available = BTreeSet::new();
    let mut hidden_while_pulling = false;
    for _ in 0..200 {
        let used = fake.stats()?["disk"]["used"].as_u64().ok_or("used")?;
        seen.insert(used);
        if used > 0 && used < 3000 {
            let (code, _) = fake.j(&["list", TPL])?;
            hidden_while_pulling |= code == 3;
        }
        let size = fake.ok(&["pull", TPL, "--check-download-size"])?;
        if let Some(a) = size["available"].as_u64() {
            available.insert(a);
        }
        if used == 3000 {
            break;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    let out = child.wait_with_output()?;
    assert_eq!(envelope(&out)?["status"], "OK");
    let middle: Vec<_> = seen.iter().filter(|u| **u > 0 && **u < 3000).collect();
    assert!(
        middle.len() >= 2,
        "used bytes should grow in steps: {seen:?}"
    );
    assert!(
        available.len() >= 3,
        "probes should see free space shrink: {available:?}"
    );
    assert!(
        hidden_while_pulling,
        "a template being pulled for the first time is not listed"
    );
    assert_eq!(fake.ok(&["list", TPL])?[0]["status"], "stopped");
    Ok(())
}

#[test]
fn disk_full_leaves_a_partial_template_until_deleted() -> TestResult {
    let fake = Fake::with(json!({"disk_total": 2_500}))?;
    let (code, env) = fake.j(&["registry", "pull", "--shrink", TPL])?;
    assert_eq!(code, 28);
    assert!(
        env["message"]
            .as_str()
            .unwrap_or("")
            .contains("No space left on device")
    );
    let stats = fake.stats()?;
    assert_eq!(
        stats["disk"]["used"], 2500,
        "the partial template holds its bytes"
    );
    assert_eq!(stats["partial_templates"], json!([TPL]));
    assert_eq!(fake.ok(&["list", TPL])?[0]["status"], "failed");
    let (code, _) = fake.j(&["clone", TPL, "vm"])?;
    assert_ne!(code, 0, "a partial template cannot be cloned");
    fake.ok(&["delete", "--yes", TPL])?;
    assert_eq!(fake.stats()?["disk"]["used"], 0);
    // The smaller tag fits.
    fake.ok(&["registry", "pull", "--shrink", TPL, "--tag", "v1"])?;
    assert_eq!(fake.stats()?["disk"]["used"], 2000);
    Ok(())
}

#[test]
fn concurrent_pulls_of_different_templates_fill_the_disk() -> TestResult {
    let fake = Fake::with(json!({
        "disk_total": 5_000,
        "time_scale": 1.0,
        "timings": {"pull_bytes_per_sec": 3000.0, "pull_steps": 6},
        "registry": [
            {"uuid": "a", "tags": {"t": {"size": 3_000}}},
            {"uuid": "b", "tags": {"t": {"size": 3_000}}}
        ]
    }))?;
    let a = fake
        .command(&["-j", "registry", "pull", "a"])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let b = fake
        .command(&["-j", "registry", "pull", "b"])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let (oa, ob) = (a.wait_with_output()?, b.wait_with_output()?);
    let codes = [oa.status.code(), ob.status.code()];
    assert!(
        codes.contains(&Some(28)),
        "one pull must hit the full disk: {codes:?}"
    );
    let stats = fake.stats()?;
    assert_eq!(stats["disk"]["used"], 5000);
    assert_eq!(stats["counters"]["max_concurrent_pulls"], 2);
    assert_eq!(
        stats["counters"]["overlapping_pulls"], 0,
        "different templates do not overlap"
    );
    Ok(())
}

#[test]
fn deleting_a_template_frees_only_unshared_bytes() -> TestResult {
    let fake = Fake::new()?;
    fake.ok(&["registry", "pull", TPL, "--tag", "v1"])?;
    fake.ok(&["registry", "pull", TPL, "--tag", "v2"])?;
    assert_eq!(
        fake.stats()?["disk"]["used"],
        5000,
        "without --shrink both tags stay"
    );
    fake.ok(&["clone", TPL, "shared"])?;
    fake.ok(&["delete", "--yes", TPL])?;
    assert_eq!(
        fake.stats()?["disk"]["used"],
        3000,
        "v2 is still shared by the clone"
    );
    fake.ok(&["start", "shared"])?;
    fake.ok(&["delete", "--yes", "shared"])?;
    assert_eq!(fake.stats()?["disk"]["used"], 0);

    // --shrink frees the other tag; clone -c takes a full copy.
    fake.ok(&["registry", "pull", TPL, "--tag", "v1"])?;
    fake.ok(&["registry", "pull", "--shrink", TPL, "--tag", "v2"])?;
    assert_eq!(fake.stats()?["disk"]["used"], 3000);
    fake.ok(&["clone", "-c", TPL, "copy"])?;
    assert_eq!(fake.stats()?["disk"]["used"], 6000);
    assert_eq!(fake.ok(&["show", "copy"])?["image_size"], 3000);
    fake.ok(&["clone", "-c", TPL, "copy2"])?;
    let (code, env) = fake.j(&["clone", "-c", TPL, "copy3"])?;
    assert_eq!(code, 28);
    assert_eq!(env["exception_type"], "AnkaNoSpaceException");
    Ok(())
}

#[test]
fn overlapping_pulls_of_one_template_corrupt_it() -> TestResult {
    let fake = Fake::with(json!({
        "time_scale": 1.0,
        "timings": {"pull_bytes_per_sec": 3000.0, "pull_steps": 5, "start_ms": 0.0, "clone_ms": 0.0, "query_ms": 0.0}
    }))?;
    let a = fake
        .command(&["-j", "registry", "pull", "--shrink", TPL])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut b = None;
    if common::wait_for(Duration::from_secs(5), || {
        fake.state()
            .is_ok_and(|s| s["pulls"].as_array().is_some_and(|p| !p.is_empty()))
    }) {
        b = Some(
            fake.command(&["-j", "registry", "pull", "--shrink", TPL])
                .stdout(std::process::Stdio::piped())
                .spawn()?,
        );
    }
    let Some(b) = b else {
        reap(a);
        return Err("the first pull never registered".into());
    };
    let (oa, ob) = (a.wait_with_output()?, b.wait_with_output()?);
    assert_eq!(
        envelope(&oa)?["status"],
        "OK",
        "Anka's corruption is silent"
    );
    assert_eq!(envelope(&ob)?["status"], "OK");
    let stats = fake.stats()?;
    assert_eq!(stats["counters"]["overlapping_pulls"], 1);
    assert_eq!(
        stats["disk"]["used"], 3000,
        "both pulls wrote the same layer"
    );
    assert_eq!(stats["corrupt_layers"], json!([format!("{TPL}@v2")]));
    fake.ok(&["clone", TPL, "vm"])?;
    let (code, env) = fake.j(&["start", "vm"])?;
    assert_eq!(code, 5);
    assert!(
        env["message"]
            .as_str()
            .unwrap_or("")
            .contains("Input/output error")
    );
    // Deleting and pulling again repairs it.
    fake.ok(&["delete", "--yes", "vm"])?;
    fake.ok(&["delete", "--yes", TPL])?;
    fake.ok(&["registry", "pull", TPL])?;
    fake.ok(&["clone", TPL, "vm"])?;
    fake.ok(&["start", "vm"])?;
    Ok(())
}

#[test]
fn overlapping_pull_can_be_made_to_fail_fast() -> TestResult {
    let fake = Fake::with(json!({
        "time_scale": 1.0,
        "overlapping_pulls": "fail",
        "timings": {"pull_bytes_per_sec": 3000.0, "pull_steps": 5, "query_ms": 0.0}
    }))?;
    let a = fake
        .command(&["-j", "registry", "pull", TPL])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    if !common::wait_for(Duration::from_secs(5), || {
        fake.state()
            .is_ok_and(|s| s["pulls"].as_array().is_some_and(|p| !p.is_empty()))
    }) {
        reap(a);
        return Err("the first pull never registered".into());
    }
    let (code, env) = fake.j(&["registry", "pull", TPL])?;
    assert_eq!(code, 1);
    assert!(
        env["message"]
            .as_str()
            .unwrap_or("")
            .contains("already in progress")
    );
    assert_eq!(envelope(&a.wait_with_output()?)?["status"], "OK");
    let stats = fake.stats()?;
    assert_eq!(stats["counters"]["overlapping_pulls"], 1);
    assert_eq!(stats["corrupt_layers"], json!([]));
    Ok(())
}

#[test]
fn concurrent_churn_keeps_the_state_whole_and_the_limit() -> TestResult {
    let fake = Fake::with(json!({"timings": {"start_ms": 20.0, "stop_ms": 20.0}}))?;
    let vms = ["vm-1", "vm-2", "vm-3", "vm-4"];
    fake.clones(&vms)?;
    let mut children = Vec::new();
    for round in 0..4 {
        for (i, vm) in vms.iter().enumerate() {
            let op = match (round + i) % 4 {
                0 | 2 => "start",
                1 => "stop",
                _ => "list",
            };
            let args = if op == "list" {
                vec!["-j", "list", "-r"]
            } else {
                vec!["-j", op, vm]
            };
            children.push(
                fake.command(&args)
                    .stdout(std::process::Stdio::piped())
                    .spawn()?,
            );
        }
    }
    for c in children {
        let out = c.wait_with_output()?;
        let env = envelope(&out)?;
        if env["status"] == "ERROR" {
            assert_eq!(
                env["message"],
                "maximum number of running instances exceeded"
            );
        }
    }
    let stats = fake.stats()?;
    assert!(stats["counters"]["max_running_seen"].as_u64() <= Some(2));
    assert!(stats["running_now"].as_u64() <= Some(2));
    assert_eq!(fake.ok(&["list"])?.as_array().map(Vec::len), Some(5));
    Ok(())
}
