//! Process plumbing without `unsafe`: liveness checks and group kills through rustix, and spawning
//! the fake's own detached helpers (emulated runner, crash watcher) in their own process group so
//! a driver's process-group kill of `anka run` does not take the runner down with it.

use std::collections::HashMap;
use std::env;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use rustix::process::{Pid, Signal};

use crate::error::AnkaError;
use crate::home::{HOME_ENV, Home};

/// True if a process with this pid exists and is not a zombie (a killed runner whose parent, init
/// in a container, has not reaped it yet is gone for our purposes).
pub fn alive(pid: u32) -> bool {
    let exists = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .is_some_and(|p| rustix::process::test_kill_process(p).is_ok());
    exists && !zombie(pid)
}

/// Reads the state letter from `/proc/<pid>/stat` where there is a /proc (Linux).
fn zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// The emulated runner's role word on its command line.
pub const RUNNER: &str = "__emulated-runner";

/// The crash watcher's role word on its command line.
pub const CRASH_WATCH: &str = "__crash-watch";

/// Whether `pid` is still one of our helpers (its command line has `role`), so a recycled pid of
/// an unrelated process is never killed. Where there is no `/proc`, it is assumed to be.
fn is_helper(pid: u32, role: &str) -> bool {
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(bytes) => bytes.split(|b| *b == 0).any(|arg| arg == role.as_bytes()),
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

/// SIGKILLs the process group led by our helper `pid` (and the process itself if it leads no
/// group), after checking that `pid` still is that helper.
pub fn kill_helper(pid: u32, role: &str) {
    if !is_helper(pid, role) {
        return;
    }
    if let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw)
        && rustix::process::kill_process_group(p, Signal::KILL).is_err()
    {
        let _ = rustix::process::kill_process(p, Signal::KILL);
    }
}

/// The parent pid of `pid` from `/proc/<pid>/stat`.
fn ppid(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `pid` and all its descendants (from `/proc`; just `pid` where there is none).
fn tree(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(pp) = ppid(p) {
                children.entry(pp).or_default().push(p);
            }
        }
    }
    let mut all = vec![pid];
    let mut i = 0;
    while let Some(&p) = all.get(i) {
        if let Some(kids) = children.get(&p) {
            all.extend(kids.iter().copied().filter(|k| *k != p));
        }
        i += 1;
        if all.len() > 4096 {
            break;
        }
    }
    all
}

/// SIGKILLs a guest command of `anka run` and everything it started, after checking that it
/// still is the child of the `anka run` process that recorded it (where there is no `/proc`, it is
/// assumed to be).
pub fn kill_guest(pid: u32, parent: u32) {
    let ours = if Path::new("/proc/self").exists() {
        ppid(pid) == Some(parent)
    } else {
        true
    };
    if !ours {
        return;
    }
    for p in tree(pid) {
        if let Some(p) = i32::try_from(p).ok().and_then(Pid::from_raw) {
            let _ = rustix::process::kill_process(p, Signal::KILL);
        }
    }
}

/// Spawns this executable as `anka <args>` in a new process group, with `input` on its stdin and
/// its output appended to `log` (or discarded). Returns its pid. The child is not waited for: it
/// outlives this short-lived `anka` process and is reaped by init.
pub fn spawn_self(
    home: &Home,
    args: &[&str],
    input: Option<&[u8]>,
    log: Option<&Path>,
) -> Result<u32, AnkaError> {
    let exe = env::current_exe()
        .map_err(|e| AnkaError::internal(format!("cannot find own executable: {e}")))?;
    let mut cmd = Command::new(exe);
    cmd.arg0("anka")
        .args(args)
        .env(HOME_ENV, &home.root)
        .process_group(0)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    match log {
        Some(path) => {
            let f = OpenOptions::new().create(true).append(true).open(path)?;
            cmd.stdout(f.try_clone()?).stderr(f);
        }
        None => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| AnkaError::internal(format!("cannot spawn anka {}: {e}", args.join(" "))))?;
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(data)?;
    }
    Ok(child.id())
}

/// The `hang` fault: forks a `sleep` child in this process group (so a test can check that the
/// driver's group kill reaches children), logs its pid, and sleeps until killed.
pub fn hang(log: &mut dyn FnMut(&str)) -> ! {
    match Command::new("sleep")
        .arg("600")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => log(&format!(
            "hang: injected; sleep child pid {} in process group {}",
            child.id(),
            rustix::process::getpgrp().as_raw_nonzero()
        )),
        Err(e) => log(&format!("hang: injected; could not fork sleep child: {e}")),
    }
    loop {
        thread::sleep(Duration::from_secs(3600));
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::is_helper;

    #[test]
    fn only_helpers_are_helpers() {
        let me = std::process::id();
        assert!(!is_helper(me, "__no-such-role__"));
        assert!(!is_helper(u32::MAX - 1, super::RUNNER));
    }
}
