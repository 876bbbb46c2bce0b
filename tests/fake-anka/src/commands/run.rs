//! `anka run [-w DIR] [-E] [-e V=X] [-f FILE] [-b] <vm> <cmd...>`: starts the VM if needed (subject
//! to the running limit), then runs the guest command in `vms/<name>/home` with `HOME` set and
//! stdin forwarded, passing its output through and exiting with its status. No envelope is
//! printed after guest output (only the fake's own errors print one). A `failed` VM → exit 125;
//! so does a VM stopped, deleted or crashed while the command runs (the command is killed).
//!
//! Built-ins, recognised in the command (or in the script of `bash -c '<script>'`):
//! - contains `run.sh --jitconfig`: JIT mode; the first stdin line is the JIT config, handed to a
//!   detached emulated runner; exit 0.
//! - `./install-runner.bash`: exit 0.
//! - `./register-runner.bash <name> <token> <url> <labels> <group>`: registers with the emulator.
//! - `./start-runner.bash`: starts the emulated runner from the registered files.
//!
//! Anything else: a command whose first word is `bash`/`sh`/`zsh` runs as given; otherwise the
//! words are joined with spaces and run by `bash -c`.

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::thread;

use crate::argv::RunArgs;
use crate::clock;
use crate::commands::vm;
use crate::context::{Ctx, Reply};
use crate::crash;
use crate::error::{AnkaError, Kind};
use crate::runner::{register, spawn};
use crate::shell;
use crate::state::{GuestProc, VmStatus};
use crate::store;

const SHELLS: &[&str] = &["bash", "sh", "zsh", "/bin/bash", "/bin/sh", "/bin/zsh"];

/// What the guest command turned out to be.
#[derive(Debug, PartialEq)]
enum Guest {
    Jit,
    Install,
    /// Register with these arguments; `reads` are the variables the script `read`s from stdin
    /// (the driver sends the token that way), substituted where an argument is `$NAME`.
    Register {
        args: Vec<String>,
        reads: Vec<String>,
    },
    StartRunner,
    Plain,
}

const OPERATORS: &[&str] = &["&&", "||", ";", "|", "&"];

/// Where `script` (e.g. `register-runner.bash`) is invoked as a command: the first word, or
/// after `exec` or a shell operator.
fn invoked_at(words: &[String], script: &str) -> Option<usize> {
    words.iter().enumerate().position(|(i, w)| {
        let is_script = w == script || w.ends_with(&format!("/{script}"));
        let at_command = i == 0
            || words
                .get(i.wrapping_sub(1))
                .is_some_and(|p| p == "exec" || OPERATORS.contains(&p.as_str()));
        is_script && at_command
    })
}

/// The variables of `read [-r] NAME` commands, in order.
fn reads(words: &[String]) -> Vec<String> {
    let mut names = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if w != "read" {
            continue;
        }
        let name = words[i + 1..]
            .iter()
            .take_while(|x| !OPERATORS.contains(&x.as_str()))
            .filter(|x| !x.starts_with('-'))
            .last();
        if let Some(n) = name {
            names.push(n.clone());
        }
    }
    names
}

fn classify(cmd: &[String]) -> Guest {
    let script = match cmd {
        [sh, c, script, ..] if SHELLS.contains(&sh.as_str()) && c == "-c" => script.clone(),
        _ => cmd.join(" "),
    };
    if script.contains("run.sh --jitconfig") {
        return Guest::Jit;
    }
    let words = shell::split(&script).unwrap_or_default();
    if let Some(i) = invoked_at(&words, "register-runner.bash") {
        let args = words[i + 1..]
            .iter()
            .take_while(|w| !OPERATORS.contains(&w.as_str()))
            .cloned()
            .collect();
        return Guest::Register {
            args,
            reads: reads(&words[..i]),
        };
    }
    if invoked_at(&words, "start-runner.bash").is_some() {
        return Guest::StartRunner;
    }
    if invoked_at(&words, "install-runner.bash").is_some() {
        return Guest::Install;
    }
    Guest::Plain
}

/// Fills `$NAME`/`${NAME}` arguments with the lines the script reads from stdin.
fn substitute(
    ctx: &mut Ctx<'_>,
    args: Vec<String>,
    reads: &[String],
) -> Result<Vec<String>, AnkaError> {
    let mut vars = BTreeMap::new();
    for name in reads {
        let line = match ctx.stdin.as_mut() {
            Some(input) => first_line(input.as_mut())?,
            None => None,
        };
        vars.insert(name.clone(), line.unwrap_or_default());
    }
    Ok(args
        .into_iter()
        .map(|a| {
            let name = a
                .strip_prefix("${")
                .and_then(|x| x.strip_suffix('}'))
                .or_else(|| a.strip_prefix('$'));
            match name.and_then(|n| vars.get(n)) {
                Some(v) => v.clone(),
                None => a,
            }
        })
        .collect())
}

/// Reads one line (without the newline) byte by byte, so nothing after it is consumed.
fn first_line(input: &mut dyn Read) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match input.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => {
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((!line.is_empty()).then(|| String::from_utf8_lossy(&line).into_owned()))
}

/// The guest environment: a clean one with HOME set, plus `-E` (not overriding), env files and
/// `-e` (overriding).
fn guest_env(args: &RunArgs, home: &str, vm: &str) -> Result<BTreeMap<String, String>, AnkaError> {
    let mut envs = BTreeMap::new();
    envs.insert(
        "PATH".into(),
        env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
    );
    envs.insert("HOME".into(), home.to_string());
    envs.insert("USER".into(), "anka".into());
    envs.insert("LOGNAME".into(), "anka".into());
    envs.insert("SHELL".into(), "/bin/bash".into());
    envs.insert("FAKE_ANKA_VM".into(), vm.to_string());
    if args.inherit_env {
        for (k, v) in env::vars() {
            envs.entry(k).or_insert(v);
        }
    }
    for file in &args.env_files {
        let text = fs::read_to_string(file)
            .map_err(|e| AnkaError::new(Kind::NotFound, format!("{file}: {e}")))?;
        for line in text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            if let Some((k, v)) = line.split_once('=') {
                envs.insert(k.trim().to_string(), v.to_string());
            }
        }
    }
    for kv in &args.env {
        match kv.split_once('=') {
            Some((k, v)) => {
                envs.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = env::var(kv) {
                    envs.insert(kv.clone(), v);
                }
            }
        }
    }
    Ok(envs)
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Runs a plain guest command, forwarding stdin and passing output through.
fn plain(ctx: &mut Ctx<'_>, args: &RunArgs, name: &str) -> Result<Reply, AnkaError> {
    let home = ctx.home.vm_home(name);
    fs::create_dir_all(&home)?;
    let dir = match &args.workdir {
        Some(w) => home.join(w.trim_start_matches("/Users/anka").trim_start_matches('/')),
        None => home.clone(),
    };
    let envs = guest_env(args, &home.display().to_string(), name)?;
    let mut cmd = if SHELLS.contains(&args.cmd[0].as_str()) {
        let mut c = Command::new(&args.cmd[0]);
        c.args(&args.cmd[1..]);
        c
    } else {
        let mut c = Command::new("bash");
        c.arg("-c").arg(args.cmd.join(" "));
        c
    };
    cmd.current_dir(&dir).env_clear().envs(&envs);
    if args.background {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(ctx.home.vm_dir(name).join("background.log"))?;
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        cmd.spawn()
            .map_err(|e| AnkaError::new(Kind::State, format!("run: cannot start: {e}")))?;
        return Ok(Reply::Exit(0));
    }
    let input = ctx.stdin.take();
    let guest_stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    cmd.stdin(guest_stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| AnkaError::new(Kind::State, format!("run: cannot start: {e}")))?;
    let guest = GuestProc {
        pid: child.id(),
        parent: std::process::id(),
    };
    let recorded = store::update(&ctx.home, |s| {
        Ok(match s.vms.get_mut(name) {
            Some(vm) if vm.status == VmStatus::Running => {
                vm.guests.push(guest);
                true
            }
            _ => false,
        })
    })?;
    if !recorded {
        let _ = child.kill();
        let _ = child.wait();
        return Err(AnkaError::new(
            Kind::Disconnected,
            format!("{name}: connection to the VM was lost"),
        ));
    }
    if let (Some(mut input), Some(mut to_child)) = (input, child.stdin.take()) {
        // Not joined: a caller's stdin may stay open after the guest command exits.
        thread::spawn(move || {
            let _ = io::copy(&mut input, &mut to_child);
        });
    }
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let (stdout, stderr) = ctx.out.streams();
    thread::scope(|scope| {
        scope.spawn(|| {
            if let Some(o) = out.as_mut() {
                let _ = io::copy(o, stdout);
                let _ = stdout.flush();
            }
        });
        if let Some(e) = err.as_mut() {
            let _ = io::copy(e, stderr);
            let _ = stderr.flush();
        }
    });
    let status = child.wait()?;
    let (pid, me) = (child.id(), std::process::id());
    let still_up = store::update(&ctx.home, |s| {
        Ok(match s.vms.get_mut(name) {
            Some(vm) => {
                vm.guests.retain(|g| g.pid != pid || g.parent != me);
                vm.status == VmStatus::Running
            }
            None => false,
        })
    })?;
    if !still_up {
        return Err(AnkaError::new(
            Kind::Disconnected,
            format!("{name}: connection to the VM was lost"),
        ));
    }
    Ok(Reply::Exit(exit_code(status)))
}

/// `anka run`; see the module docs.
pub fn run(ctx: &mut Ctx<'_>, args: &RunArgs) -> Result<Reply, AnkaError> {
    let (name, status, run_ms) = {
        let s = store::lock(&ctx.home)?.state;
        let name = s
            .vm_name(&args.vm)
            .ok_or_else(|| AnkaError::not_found(&args.vm))?;
        let status = s.vms.get(&name).map(|v| v.status);
        (name, status, s.timings.run_ms)
    };
    if status == Some(VmStatus::Failed) {
        return Err(AnkaError::new(
            Kind::Disconnected,
            format!("{name}: connection to the VM was lost (VM failed)"),
        ));
    }
    let started = vm::start_vm(ctx, &name)?;
    if !started && let Some(after_s) = ctx.faults.vm_crash {
        let home = ctx.home.clone();
        let at = clock::now_secs() + after_s * ctx.scale;
        store::update(&ctx.home, |s| crash::schedule(&home, s, &name, at))?;
    }
    clock::sleep_scaled(run_ms, ctx.scale);
    match classify(&args.cmd) {
        Guest::Jit => {
            let line = match ctx.stdin.as_mut() {
                Some(input) => first_line(input.as_mut())?,
                None => None,
            };
            let Some(jit) = line.filter(|l| !l.trim().is_empty()) else {
                ctx.out
                    .log("run.sh --jitconfig: no JIT config on the first stdin line");
                let _ = writeln!(ctx.out.stderr(), "run.sh: missing JIT config");
                return Ok(Reply::Exit(1));
            };
            let pid = spawn::spawn(&ctx.home, &name, &jit)?;
            ctx.out.log(&format!(
                "{name}: emulated runner started (pid {pid}, JIT mode)"
            ));
            Ok(Reply::Exit(0))
        }
        Guest::Install => Ok(Reply::Exit(0)),
        Guest::Register { args, reads } => {
            let words = substitute(ctx, args, &reads)?;
            match register::register(&ctx.home, &name, &words) {
                Ok(()) => Ok(Reply::Exit(0)),
                Err(e) => {
                    let _ = writeln!(ctx.out.stderr(), "register-runner.bash: {}", e.message);
                    Ok(Reply::Exit(1))
                }
            }
        }
        Guest::StartRunner => match register::start(&ctx.home, &name) {
            Ok(pid) => {
                ctx.out.log(&format!(
                    "{name}: emulated runner started (pid {pid}, token mode)"
                ));
                Ok(Reply::Exit(0))
            }
            Err(e) => {
                let _ = writeln!(ctx.out.stderr(), "start-runner.bash: {}", e.message);
                Ok(Reply::Exit(1))
            }
        },
        Guest::Plain => plain(ctx, args, &name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|x| (*x).to_string()).collect()
    }

    #[test]
    fn recognises_the_drivers_scripts() {
        assert_eq!(
            classify(&words(&[
                "bash",
                "-c",
                r#"IFS= read -r ANKLET_JIT; cd "$HOME/actions-runner" && nohup ./run.sh --jitconfig "$ANKLET_JIT" >runner.log 2>&1 &"#
            ])),
            Guest::Jit
        );
        assert_eq!(
            classify(&words(&["bash", "-c", "./install-runner.bash"])),
            Guest::Install
        );
        assert_eq!(
            classify(&words(&["bash", "-c", "./start-runner.bash"])),
            Guest::StartRunner
        );
        assert_eq!(
            classify(&words(&[
                "bash",
                "-c",
                r#"IFS= read -r ANKLET_TOKEN && exec ./register-runner.bash 'vm-1' "$ANKLET_TOKEN" 'http://127.0.0.1:9/o/r' 'self-hosted,macos'"#
            ])),
            Guest::Register {
                args: words(&[
                    "vm-1",
                    "$ANKLET_TOKEN",
                    "http://127.0.0.1:9/o/r",
                    "self-hosted,macos"
                ]),
                reads: words(&["ANKLET_TOKEN"]),
            }
        );
        assert_eq!(
            classify(&words(&["bash", "-c", "cat ./register-runner.bash"])),
            Guest::Plain
        );
        assert_eq!(classify(&words(&["echo", "hi"])), Guest::Plain);
    }
}
