//! A faithful fake of Veertu's `anka` CLI (Anka 3.x), so the anklet driver can be tested on Linux
//! where no Mac exists. It speaks the argv grammar and JSON envelopes of
//! `shared/research/anka-cli.md` §1–2 and behaves per its §6 contract; every log line starts with
//! `fake-anka:` so it is never mistaken for the real thing.
//!
//! # Entry point
//! [`run`] takes the arguments after the program name and the three standard streams and returns
//! the exit status ([`run_at`] also takes the state directory). The `anka` binary calls it; a daemon can embed it busybox-style (a symlink
//! named `anka` to the daemon, dispatching on `argv[0]`). Helpers the fake spawns (the emulated
//! runner, the crash watcher) are its own executable re-run with `argv[0] = "anka"`.
//!
//! # Environment
//! - `FAKE_ANKA_HOME`: state directory (default `./.fake-anka`); see [`home`].
//! - `FAKE_ANKA_SEED`: seed file used when there is no state yet (default
//!   `$FAKE_ANKA_HOME/seed.json`); see [`seed`].
//! - `FAKE_ANKA_TIME_SCALE`: multiplier for every fake delay (default: the seed's `time_scale`,
//!   else 1.0).
//! - `FAKE_ANKA_FAULTS`: extra fault rules as JSON; see [`faults`].
//! - `ANKA_MACHINE_READABLE=1`: same as `-j`.
//!
//! # Output
//! Progress lines (pulls) first, then exactly one compact JSON envelope
//! `{"status":"OK"|"ERROR","code":N,"body":...,"message":"..."}` (+`exception_type` on ERROR)
//! without a trailing newline. `run` prints only the guest's output (an envelope only for the
//! fake's own errors). Exit statuses: 0 OK; 2 usage; 3 not found (code 3); 18 name exists (code
//! 18); 30 registry (code 30); 28 no space (code 28, fake); 5 corrupt template (code 5, fake); 1
//! licence limit, wrong VM state and internal errors (code 1); 125 failed VM; injected faults as
//! configured.
//!
//! # Fake-only commands
//! `anka __stats` reports counters (most VMs ever running at once, overlapping pulls, pulls,
//! licence refusals, runners started and killed, crashes) and what is left (VMs, templates,
//! partial templates, corrupt layers, live runners, disk usage).

#![warn(missing_docs)]

pub mod argv;
pub mod clock;
pub mod commands;
pub mod context;
pub mod crash;
pub mod error;
pub mod faults;
pub mod glob;
pub mod home;
pub mod output;
pub mod procs;
pub mod runner;
pub mod seed;
pub mod shell;
pub mod state;
pub mod store;

use std::env;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::Path;

use crate::argv::Command;
use crate::context::{Ctx, Reply};
use crate::error::{AnkaError, Kind};
use crate::faults::Active;
use crate::home::Home;
use crate::output::Out;

/// The environment variable overriding the time scale.
pub const TIME_SCALE_ENV: &str = "FAKE_ANKA_TIME_SCALE";

/// The standard streams handed to [`run`], boxed so `run` can move stdin into a pump thread
/// (a guest command may exit while the caller's stdin stays open).
pub struct Io {
    /// Standard input (forwarded to `run`'s guest command, or read for the JIT config).
    pub stdin: Box<dyn Read + Send>,
    /// Standard output (progress lines and the final envelope).
    pub stdout: Box<dyn Write + Send>,
    /// Standard error (`fake-anka:` log lines).
    pub stderr: Box<dyn Write + Send>,
}

impl Io {
    /// The process's own standard streams.
    pub fn std() -> Self {
        Self {
            stdin: Box::new(io::stdin()),
            stdout: Box::new(io::stdout()),
            stderr: Box::new(io::stderr()),
        }
    }
}

fn time_scale(state_scale: f64) -> Result<f64, AnkaError> {
    match env::var(TIME_SCALE_ENV) {
        Ok(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| AnkaError::internal(format!("{TIME_SCALE_ENV} is not a number: {v}"))),
        Err(_) => Ok(state_scale),
    }
}

/// Applies overdue crashes, evaluates fault rules (consuming `times` under the lock) and works
/// out the time scale. The fake's own `__` commands are never faulted, so a test can always read
/// its counters.
fn prelude(home: &Home, cmd: &Command) -> Result<(Active, f64), AnkaError> {
    store::update(home, |s| {
        crash::apply_due(s);
        let op = commands::op(cmd);
        let active = if op.starts_with("__") {
            Active::default()
        } else {
            let rules = faults::load(home)?;
            let subjects = commands::subjects(cmd, s);
            faults::evaluate(s, &rules, op, &subjects)
        };
        let scale = time_scale(s.time_scale)?;
        Ok((active, scale))
    })
}

/// Opens the state directory: the given one, else `$FAKE_ANKA_HOME`, else `./.fake-anka`.
fn open_home(dir: Option<&Path>) -> Result<Home, AnkaError> {
    match dir {
        Some(d) => Home::open(d.to_path_buf()),
        None => Home::from_env(),
    }
}

/// The fake's internal helper processes (they never create the state directory).
fn internal(
    dir: Option<&Path>,
    cmd: &Command,
    stdin: &mut dyn Read,
    out: &mut Out<'_>,
) -> Option<i32> {
    let home = || Home::open_existing(dir.map_or_else(Home::env_dir, Path::to_path_buf));
    let result = match cmd {
        Command::EmulatedRunner { vm } => {
            home().and_then(|h| runner::emulated::main(&h, vm, stdin).map(|_| ()))
        }
        Command::CrashWatch { vm } => home().and_then(|h| crash::watch(&h, vm)),
        _ => return None,
    };
    Some(match result {
        Ok(()) => 0,
        Err(e) => {
            out.log(&e.message);
            e.exit()
        }
    })
}

/// Runs one `anka` invocation: `args` are the arguments after the program name. Returns the exit
/// status. The state directory is `$FAKE_ANKA_HOME` (default `./.fake-anka`). See the crate docs
/// for output and exit statuses.
pub fn run(args: Vec<OsString>, io: Io) -> i32 {
    run_in(None, args, io)
}

/// Like [`run`], with the state directory given instead of read from `$FAKE_ANKA_HOME`, so an
/// embedding process (or an in-process test) need not change its environment. Helper processes
/// it spawns are told the same directory.
pub fn run_at(home: &Path, args: Vec<OsString>, io: Io) -> i32 {
    run_in(Some(home), args, io)
}

fn run_in(dir: Option<&Path>, args: Vec<OsString>, io: Io) -> i32 {
    let Io {
        mut stdin,
        mut stdout,
        mut stderr,
    } = io;
    let env_json = env::var("ANKA_MACHINE_READABLE").is_ok_and(|v| v == "1" || v == "true");
    let json_hint = env_json || args.iter().any(|a| a == "-j" || a == "--machine-readable");
    let inv = match argv::parse_invocation(args, env_json) {
        Ok(i) => i,
        Err(e) => {
            Out::new(&mut *stdout, &mut *stderr, json_hint).error(&e);
            return e.exit();
        }
    };
    let mut out = Out::new(&mut *stdout, &mut *stderr, inv.json);
    if inv.command == Command::Usage {
        let _ = write!(out.stdout(), "{}", argv::USAGE);
        return 0;
    }
    if let Some(code) = internal(dir, &inv.command, &mut *stdin, &mut out) {
        return code;
    }
    let home = match open_home(dir) {
        Ok(h) => h,
        Err(e) => {
            out.error(&e);
            return e.exit();
        }
    };
    let (faults, scale) = match prelude(&home, &inv.command) {
        Ok(p) => p,
        Err(e) => {
            out.error(&e);
            return e.exit();
        }
    };
    if let Some(exit) = faults.die {
        return exit;
    }
    if faults.hang {
        procs::hang(&mut |m| out.log(m));
    }
    if let Some((code, message, exit)) = faults.fail.clone() {
        out.log(&format!("injected failure: {message}"));
        out.error(&AnkaError::new(Kind::Injected { code, exit }, message));
        return if exit == 0 { 1 } else { exit };
    }
    let garbage = faults.garbage;
    let scale = scale * faults.slow;
    let mut ctx = Ctx {
        home,
        out,
        stdin: Some(stdin),
        faults,
        scale,
    };
    let result = commands::execute(&mut ctx, &inv.command);
    let out = &mut ctx.out;
    let code = match &result {
        Ok(Reply::Envelope { .. }) => 0,
        Ok(Reply::Exit(code)) => *code,
        Err(e) => e.exit(),
    };
    if garbage {
        out.garbage();
        return code;
    }
    match result {
        Ok(Reply::Envelope { body, message }) => out.ok(&body, &message),
        Ok(Reply::Exit(_)) => {}
        Err(e) => out.error(&e),
    }
    code
}
