//! Every command's JSON shape against anka-cli.md §1–2, and the output rules: one final compact
//! envelope line without a trailing newline, progress lines before it, varied exit statuses.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{Fake, TPL, TestResult, envelope};
use serde_json::json;

#[test]
fn bare_anka_prints_usage_and_exits_zero() -> TestResult {
    let fake = Fake::new()?;
    let out = fake.run(&[])?;
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stdout)?.contains("usage: anka"));
    Ok(())
}

#[test]
fn version_and_license() -> TestResult {
    let fake = Fake::new()?;
    let v = fake.ok(&["version"])?;
    assert_eq!(v["version"], "3.9.1");
    assert_eq!(v["build"], "216");
    assert!(v["product"].is_string());
    let l = fake.ok(&["license", "show"])?;
    assert_eq!(l["status"], "valid");
    assert_eq!(l["license_type"], "com.veertu.anka.entplus");
    assert!(l["product"].is_string() && l["expires"].is_string());
    let out = fake.run(&["--version"])?;
    assert!(String::from_utf8(out.stdout)?.contains("3.9.1 (build 216)"));
    Ok(())
}

#[test]
fn machine_readable_env_and_long_flag() -> TestResult {
    let fake = Fake::new()?;
    let out = fake
        .command(&["version"])
        .env("ANKA_MACHINE_READABLE", "1")
        .output()?;
    assert_eq!(envelope(&out)?["status"], "OK");
    let out = fake.run(&["--machine-readable", "version"])?;
    assert_eq!(envelope(&out)?["status"], "OK");
    let human = fake.run(&["version"])?;
    assert!(serde_json::from_slice::<serde_json::Value>(&human.stdout).is_err());
    Ok(())
}

#[test]
fn registry_list_show_and_download_size() -> TestResult {
    let fake = Fake::new()?;
    let list = fake.ok(&["registry", "--remote", "http://r.invalid", "list"])?;
    assert_eq!(
        list,
        json!([{"name": "macos-15", "uuid": TPL, "latest": "v2"}])
    );
    let show = fake.ok(&["registry", "show", TPL, "--tag", "v2"])?;
    assert_eq!(show["name"], "macos-15");
    assert_eq!(show["cpu_cores"], 6);
    assert_eq!(show["image_size"], 3000);
    assert!(show["ram_size"].is_u64());
    let repos = fake.ok(&["registry", "list-repos"])?;
    assert_eq!(repos[0]["default"], true);

    let (code, env) = fake.j(&["registry", "show", TPL, "--tag", "nope"])?;
    assert_eq!((code, env["code"].as_i64()), (3, Some(3)));
    assert!(env["message"].as_str().unwrap_or("").contains("not found"));
    let (code, env) = fake.j(&["registry", "show", "missing"])?;
    assert_eq!(code, 3);
    assert_eq!(env["message"], "missing: not found");

    let size = fake.ok(&[
        "pull",
        TPL,
        "--check-download-size",
        "--tag",
        "v1",
        "http://r.invalid",
    ])?;
    assert_eq!(
        size,
        json!({"size": 2000, "cached": 0, "available": 10000, "bytes": 2000})
    );
    fake.ok(&["registry", "pull", "--shrink", TPL, "--tag", "v1"])?;
    let (_, env) = fake.j(&["pull", TPL, "--check-download-size", "--tag", "v1"])?;
    assert_eq!(env["body"], json!({}));
    assert_eq!(env["message"], format!("{TPL}: available locally"));
    let size = fake.ok(&["pull", TPL, "--check-download-size"])?;
    assert_eq!(size["size"], 3000);
    assert_eq!(size["available"], 8000);
    Ok(())
}

#[test]
fn pull_prints_progress_then_one_envelope() -> TestResult {
    let fake = Fake::new()?;
    let out = fake.run(&["-j", "registry", "pull", "--shrink", TPL])?;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout.clone())?;
    let lines: Vec<&str> = text.split('\n').collect();
    assert!(lines.len() >= 3, "progress lines expected: {text}");
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .any(|l| l.contains("\"progress\""))
    );
    let env = envelope(&out)?;
    assert_eq!(env["status"], "OK");
    assert_eq!(env["code"], 0);
    let (code, env) = fake.j(&["registry", "pull", "nope"])?;
    assert_eq!((code, env["code"].as_i64()), (3, Some(3)));
    let (code, _) = fake.j(&["registry", "pull", TPL, "--tag", "v9"])?;
    assert_eq!(code, 3);
    Ok(())
}

#[test]
fn list_and_show_shapes() -> TestResult {
    let fake = Fake::new()?;
    assert_eq!(fake.ok(&["list"])?, json!([]));
    fake.clones(&["vm-a", "vm-b"])?;
    let list = fake.ok(&["list"])?;
    let rows = list.as_array().ok_or("not an array")?;
    assert_eq!(rows.len(), 3);
    for r in rows {
        for key in [
            "name",
            "uuid",
            "creation_date",
            "version",
            "status",
            "access_date",
        ] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
        assert!(r["creation_date"].as_str().unwrap_or("").ends_with('Z'));
    }
    fake.ok(&["start", "vm-a"])?;
    let running = fake.ok(&["list", "-r"])?;
    assert_eq!(running.as_array().map(Vec::len), Some(1));
    assert_eq!(running[0]["name"], "vm-a");
    let stopped = fake.ok(&["list", "--stopped"])?;
    assert_eq!(stopped.as_array().map(Vec::len), Some(2));
    let one = fake.ok(&["list", TPL])?;
    assert_eq!(one[0]["version"], "v2");
    let (code, env) = fake.j(&["list", "ghost"])?;
    assert_eq!(code, 3);
    assert_eq!(env["message"], "ghost: not found");

    let show = fake.ok(&["show", "vm-a"])?;
    for key in [
        "uuid",
        "name",
        "version",
        "creation_date",
        "cpu_cores",
        "ram",
        "ram_size",
        "hard_drive",
        "image_size",
        "status",
        "access_date",
        "ip",
        "arch",
    ] {
        assert!(show.get(key).is_some(), "{key} missing in {show}");
    }
    assert_eq!(show["status"], "running");
    assert_eq!(show["cpu_cores"], 6);
    let by_uuid = fake.ok(&["show", show["uuid"].as_str().ok_or("uuid")?])?;
    assert_eq!(by_uuid["name"], "vm-a");
    let tpl = fake.ok(&["show", TPL])?;
    assert_eq!(tpl["image_size"], 3000);
    assert_eq!(fake.ok(&["show", TPL, "tag"])?, json!([{"tag": "v2"}]));
    let (code, env) = fake.j(&["show", "ghost"])?;
    assert_eq!((code, env["code"].as_i64()), (3, Some(3)));
    Ok(())
}

#[test]
fn clone_start_stop_suspend_delete() -> TestResult {
    let fake = Fake::new()?;
    let (code, env) = fake.j(&["clone", TPL, "vm-a"])?;
    assert_eq!(
        (code, env["code"].as_i64()),
        (3, Some(3)),
        "clone of a missing template"
    );
    fake.clones(&["vm-a"])?;
    let (code, env) = fake.j(&["clone", TPL, "vm-a"])?;
    assert_eq!((code, env["code"].as_i64()), (18, Some(18)));
    assert_eq!(env["exception_type"], "AnkaNameAlreadyExistsException");
    assert_eq!(fake.ok(&["start", "vm-a"])?, json!({}));
    fake.ok(&["start", "vm-a"])?;
    fake.ok(&["stop", "vm-a"])?;
    assert_eq!(fake.ok(&["show", "vm-a"])?["status"], "stopped");
    fake.ok(&["start", "vm-a"])?;
    fake.ok(&["suspend", "vm-a"])?;
    assert_eq!(fake.ok(&["show", "vm-a"])?["status"], "suspended");
    assert_eq!(fake.ok(&["list", "-r"])?, json!([]));
    fake.ok(&["start", "vm-a"])?;
    fake.ok(&["stop", "-f", "vm-a"])?;
    fake.ok(&["start", "vm-a"])?;
    let (code, env) = fake.j(&["delete", "vm-a"])?;
    assert_ne!(code, 0, "delete without --yes must fail under -j");
    assert_eq!(env["status"], "ERROR");
    fake.ok(&["delete", "--yes", "vm-a"])?;
    assert!(!fake.vm_home("vm-a").exists());
    let (code, _) = fake.j(&["delete", "--yes", "vm-a"])?;
    assert_eq!(code, 3);
    let (code, _) = fake.j(&["start", "ghost"])?;
    assert_eq!(code, 3);
    let (code, _) = fake.j(&["stop", "ghost"])?;
    assert_eq!(code, 3);
    fake.ok(&["delete", TPL, "--yes"])?;
    assert_eq!(fake.ok(&["list"])?, json!([]));
    assert_eq!(fake.stats()?["disk"]["used"], 0);
    Ok(())
}

#[test]
fn run_passes_output_env_stdin_and_exit_status() -> TestResult {
    let fake = Fake::new()?;
    fake.clones(&["vm-a"])?;
    // Auto-start: the VM is stopped.
    let out = fake.run(&[
        "-j",
        "run",
        "-e",
        "GREETING=hi",
        "vm-a",
        "bash",
        "-c",
        "echo \"$GREETING $HOME $(pwd)\"; echo err >&2; exit 7",
    ])?;
    assert_eq!(out.status.code(), Some(7));
    let text = String::from_utf8(out.stdout)?;
    let home = fake.vm_home("vm-a");
    let home = home.canonicalize()?;
    assert_eq!(
        text.trim(),
        format!("hi {} {}", home.display(), home.display())
    );
    assert!(String::from_utf8(out.stderr)?.contains("err"));
    assert_eq!(fake.ok(&["show", "vm-a"])?["status"], "running");

    let mut child = fake
        .command(&[
            "-j",
            "run",
            "vm-a",
            "bash",
            "-c",
            "read -r line; echo \"got $line\"",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    if let Some(mut sin) = child.stdin.take() {
        sin.write_all(b"secret-line\n")?;
    }
    let out = child.wait_with_output()?;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stdout)?.trim(), "got secret-line");

    std::fs::create_dir_all(fake.vm_home("vm-a").join("sub"))?;
    let out = fake.run(&["-j", "run", "-w", "sub", "vm-a", "pwd"])?;
    assert!(String::from_utf8(out.stdout)?.trim().ends_with("/home/sub"));
    let (code, env) = fake.j(&["run", "ghost", "true"])?;
    assert_eq!((code, env["code"].as_i64()), (3, Some(3)));
    Ok(())
}

#[test]
fn cp_both_ways_and_mount() -> TestResult {
    let fake = Fake::new()?;
    fake.clones(&["vm-a"])?;
    let host = tempfile::tempdir()?;
    let script = host.path().join("install-runner.bash");
    std::fs::write(&script, "#!/bin/bash\necho installed\n")?;
    let script_arg = script.to_str().ok_or("path")?;
    let (code, env) = fake.j(&["cp", "-a", script_arg, "vm-a:"])?;
    assert_ne!(code, 0, "cp needs a running VM");
    assert_eq!(env["status"], "ERROR");
    fake.ok(&["start", "vm-a"])?;
    assert_eq!(fake.ok(&["cp", "-a", script_arg, "vm-a:"])?, json!({}));
    assert!(fake.vm_home("vm-a").join("install-runner.bash").exists());
    let out_dir = host.path().join("out");
    std::fs::create_dir_all(&out_dir)?;
    fake.ok(&[
        "cp",
        "-a",
        "vm-a:/Users/anka/install-runner.bash",
        out_dir.to_str().ok_or("path")?,
    ])?;
    assert!(out_dir.join("install-runner.bash").exists());
    let (code, _) = fake.j(&[
        "cp",
        "-a",
        "vm-a:../../state.json",
        out_dir.to_str().ok_or("path")?,
    ])?;
    assert_ne!(code, 0);

    assert_eq!(
        fake.ok(&[
            "mount",
            "vm-a",
            &format!("{}:shared", host.path().display())
        ])?,
        json!({})
    );
    assert_eq!(
        fake.state()?["vms"]["vm-a"]["mounts"][0]["guest_name"],
        "shared"
    );
    let (code, _) = fake.j(&["mount", "vm-a", "/does/not/exist"])?;
    assert_eq!(code, 3);
    Ok(())
}

#[test]
fn usage_errors_are_envelopes_with_their_own_exit() -> TestResult {
    let fake = Fake::new()?;
    for args in [
        &["-j", "frobnicate"][..],
        &["-j", "list", "--bogus"],
        &["-j", "clone", "only-one"],
        &["-j", "run", "vm"],
    ] {
        let out = fake.run(args)?;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let env = envelope(&out)?;
        assert_eq!(env["status"], "ERROR");
        assert_eq!(env["exception_type"], "AnkaUsageException");
    }
    Ok(())
}

#[test]
fn log_lines_are_marked_fake() -> TestResult {
    let fake = Fake::new()?;
    let out = fake.run(&["-j", "show", "ghost"])?;
    let err = String::from_utf8(out.stderr)?;
    assert!(!err.is_empty());
    assert!(err.lines().all(|l| l.starts_with("fake-anka:")), "{err}");
    Ok(())
}

#[test]
fn config_prints_raw_values() -> TestResult {
    let fake = Fake::new()?;
    let out = fake.run(&["-j", "config", "img_lib_dir"])?;
    assert_eq!(out.status.code(), Some(0));
    let path = String::from_utf8(out.stdout)?;
    assert!(std::path::Path::new(path.trim()).is_dir(), "{path}");
    let all = fake.ok(&["config"])?;
    assert_eq!(all["max_vms_allowed"], 255);
    Ok(())
}

#[test]
fn modify_cpu_and_ram_of_a_stopped_vm() -> TestResult {
    let fake = Fake::new()?;
    fake.clones(&["vm-a"])?;
    assert_eq!(fake.ok(&["modify", "vm-a", "cpu", "8"])?, json!({}));
    fake.ok(&["modify", "vm-a", "ram", "14G"])?;
    let show = fake.ok(&["show", "vm-a"])?;
    assert_eq!(show["cpu_cores"], 8);
    assert_eq!(show["ram_size"], 14_u64 << 30);
    assert_eq!(show["ram"], "14G");
    fake.ok(&["start", "vm-a"])?;
    let (code, env) = fake.j(&["modify", "vm-a", "cpu", "2"])?;
    assert_eq!(code, 1);
    assert_eq!(env["exception_type"], "AnkaVMStateException");
    let (code, _) = fake.j(&["modify", "ghost", "cpu", "2"])?;
    assert_eq!(code, 3);
    Ok(())
}

#[test]
fn human_mode_errors_are_marked_fake_too() -> TestResult {
    let fake = Fake::new()?;
    let out = fake.run(&["show", "ghost"])?;
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr)?;
    assert_eq!(err, "fake-anka: error: ghost: not found\n");
    Ok(())
}

#[test]
fn a_vm_going_down_cuts_off_run_with_125() -> TestResult {
    let fake = Fake::new()?;
    fake.clones(&["vm-a", "vm-b"])?;
    for (vm, down) in [
        ("vm-a", &["delete", "--yes", "vm-a"][..]),
        ("vm-b", &["stop", "vm-b"]),
    ] {
        let child = fake
            .command(&[
                "-j",
                "run",
                vm,
                "bash",
                "-c",
                "echo started; sleep 30; echo never",
            ])
            .stdout(Stdio::piped())
            .spawn()?;
        let registered = common::wait_for(std::time::Duration::from_secs(10), || {
            fake.state().is_ok_and(|s| {
                s["vms"][vm]["guests"]
                    .as_array()
                    .is_some_and(|g| !g.is_empty())
            })
        });
        if !registered {
            common::reap(child);
            return Err(format!("{vm}: the guest command was never recorded").into());
        }
        let t = std::time::Instant::now();
        fake.ok(down)?;
        let out = child.wait_with_output()?;
        assert!(t.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(125), "{vm}");
        let text = String::from_utf8(out.stdout.clone())?;
        assert!(text.starts_with("started\n"), "{text}");
        assert_eq!(envelope(&out)?["code"], 125);
    }
    Ok(())
}
