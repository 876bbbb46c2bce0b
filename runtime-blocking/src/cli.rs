//! The command line both daemons share (`anklet` and `anklet-lite` take the same flags and print
//! the same output; only the name and the one-line description differ). The pure part lives in
//! `anklet_core::config`; this file only does I/O: argv, the environment, the file,
//! stdout/stderr and the exit code.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anklet_core::config;
use anyhow::{Context, bail};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

const AFTER_HELP: &str = "\
The config file is Anklet's config.yml; see docs/configuration.md for every key.
Environment variables (ANKLET_* and <PLUGIN NAME>_<KEY>) override the file.

Without a subcommand the daemon runs the config's plugins until stopped:
  first SIGINT/SIGTERM = graceful stop (jobs whose runner has not started go back to the
  queue), a second = exit 1 at once; SIGQUIT or the file ~/.config/anklet/.drain = finish
  running jobs, take no more, exit. `-s stop` and `-s drain` send those to a running daemon.

`queue` lists, shows, requeues and removes jobs on the store the daemon of this config uses.

Exit codes: 0 = ok, 1 = a plugin failed (queue tools: refused or failed), 2 = bad config or usage.";

/// Flags and subcommands.
#[derive(Debug, Parser)]
#[command(version, after_help = AFTER_HELP)]
struct Cli {
    /// Config file [default: ~/.config/anklet/<ANKLET_CONFIG_FILE_NAME or config.yml>]
    #[arg(short = 'c', long = "config", value_name = "PATH", global = true)]
    config: Option<PathBuf>,

    /// Signal the running daemon (pid file ~/.config/anklet/anklet.pid): `stop` = graceful
    /// stop (SIGTERM), `drain` = finish running jobs, then exit (SIGQUIT)
    #[arg(short = 's', value_name = "stop|drain", value_parser = ["stop", "drain"])]
    signal: Option<String>,

    #[command(subcommand)]
    command: Option<Command>,
}

/// A daemon entry point: the loaded config and the environment in, the exit code out.
pub type Daemon<'a> = &'a dyn Fn(&config::Config, &BTreeMap<String, String>) -> ExitCode;

/// Where the daemon writes its pid, `~/.config/anklet/anklet.pid`.
pub fn pid_file(env: &BTreeMap<String, String>) -> Option<PathBuf> {
    let home = env.get("HOME").filter(|h| !h.is_empty())?;
    Some(Path::new(home).join(".config/anklet/anklet.pid"))
}

/// `-s stop|drain`: sends SIGTERM or SIGQUIT to the pid in the pid file.
fn signal_daemon(bin: &str, which: &str, env: &BTreeMap<String, String>) -> ExitCode {
    let Some(path) = pid_file(env) else {
        emit(
            true,
            "error: HOME is not set, so there is no pid file to read\n",
        );
        return ExitCode::from(2);
    };
    let pid = match std::fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse::<u32>() {
            Ok(pid) => pid,
            Err(_) => {
                emit(
                    true,
                    &format!("error: {} does not hold a pid\n", path.display()),
                );
                return ExitCode::from(1);
            }
        },
        Err(e) => {
            emit(
                true,
                &format!(
                    "error: cannot read {}: {e}\n  hint: is {bin} running? It writes that file when it starts\n",
                    path.display()
                ),
            );
            return ExitCode::from(1);
        }
    };
    let sig = if which == "drain" { "-QUIT" } else { "-TERM" };
    match std::process::Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
    {
        Ok(s) if s.success() => {
            emit(false, &format!("sent {which} to {bin} (pid {pid})\n"));
            ExitCode::SUCCESS
        }
        Ok(_) | Err(_) => {
            emit(
                true,
                &format!("error: could not signal pid {pid} (not running?)\n"),
            );
            ExitCode::from(1)
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load the config and the environment, print warnings to stderr and the effective
    /// settings (secrets redacted) to stdout; exit 0 if the config is valid, 2 if not.
    CheckConfig,
    /// Run a local fleet with stand-ins (the GitHub emulator and fake Macs), no config needed:
    /// a burst of jobs, live progress, a table of where their time went; exit 0 only if every
    /// job completed once and no VM or runner is left.
    Demo(DemoArgs),
    /// Operator tools for the job queue of this config's daemon (the embedded store file, or
    /// Redis): list jobs, show one job's history, requeue from or remove from the dead letter.
    #[cfg(feature = "queue-cli")]
    Queue(crate::queue_cli::QueueArgs),
}

/// The demo's knobs (the same for both daemons).
#[derive(Clone, Debug, clap::Args)]
pub struct DemoArgs {
    /// Jobs in the burst.
    #[arg(long, default_value_t = 12)]
    pub jobs: usize,
    /// Handler hosts (each a fake Mac with its own anka state and 2 VM slots).
    #[arg(long, default_value_t = 2)]
    pub hosts: usize,
    /// How long each job runs once a runner has it, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub job_ms: u64,
    /// Scale of the fake Macs' timings (pull, clone, boot): 1.0 is real time.
    #[arg(long, default_value_t = 0.02)]
    pub anka_time_scale: f64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
    /// Keep the demo's files (config, logs, store, fake anka state) in this folder.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

/// A demo entry point.
pub type Demo<'a> = &'a dyn Fn(&'static str, &DemoArgs) -> ExitCode;

/// Writes to stdout or stderr, ignoring a closed pipe (`anklet check-config | head` must not panic).
fn emit(to_stderr: bool, text: &str) {
    let _ = if to_stderr {
        std::io::stderr().lock().write_all(text.as_bytes())
    } else {
        std::io::stdout().lock().write_all(text.as_bytes())
    };
}

/// The process environment as UTF-8 pairs (other entries cannot be config values).
fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

fn read_config(bin: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "config file {} does not exist\n  hint: point -c (or --config) at your config.yml, e.g. `{bin} -c ./config.yml check-config`, or create the file there (ANKLET_CONFIG_FILE_NAME picks another name under ~/.config/anklet/)",
            path.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot read config file {}", path.display())),
    }
}

/// Parses argv, loads the config and runs the subcommand, as binary `bin` described by `about`.
pub fn run(bin: &'static str, about: &'static str, daemon: Daemon<'_>, demo: Demo<'_>) -> ExitCode {
    let command = Cli::command().name(bin).bin_name(bin).about(about);
    let parsed = command
        .try_get_matches_from(config::normalize_args(std::env::args_os()))
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let env = process_env();
    if let Some(which) = &cli.signal {
        return signal_daemon(bin, which, &env);
    }
    if let Some(Command::Demo(args)) = &cli.command {
        return demo(bin, args);
    }
    let path = match cli.config {
        Some(path) => path,
        None => match config::default_config_path(&env) {
            Some(path) => PathBuf::from(path),
            None => {
                emit(
                    true,
                    "error: HOME is not set, so there is no default config path\n  hint: pass -c <path to config.yml>\n",
                );
                return ExitCode::from(2);
            }
        },
    };
    let bytes = match read_config(bin, &path) {
        Ok(bytes) => bytes,
        Err(e) => {
            emit(true, &format!("error: {e:#}\n"));
            return ExitCode::from(2);
        }
    };
    // The queue tools print only their own output (their stdout may be JSON for a script);
    // the config is reported only when it is wrong.
    #[cfg(feature = "queue-cli")]
    if let Some(Command::Queue(args)) = &cli.command {
        let source = path.display().to_string();
        return match config::load(&source, &bytes, &env) {
            Ok(loaded) => crate::queue_cli::run(bin, &loaded.config, &env, args),
            Err(_) => {
                emit(true, &config::check(&source, &bytes, &env).stderr);
                ExitCode::from(2)
            }
        };
    }
    let report = config::check(&path.display().to_string(), &bytes, &env);
    emit(false, &report.stdout);
    emit(true, &report.stderr);
    if !report.valid {
        return ExitCode::from(2);
    }
    match cli.command {
        Some(Command::CheckConfig) => ExitCode::SUCCESS,
        Some(Command::Demo(_)) => ExitCode::SUCCESS,
        // Run (and returned) before the config report above.
        #[cfg(feature = "queue-cli")]
        Some(Command::Queue(_)) => ExitCode::SUCCESS,
        None => match config::load(&path.display().to_string(), &bytes, &env) {
            Ok(loaded) => daemon(&loaded.config, &env),
            Err(_) => ExitCode::from(2),
        },
    }
}
