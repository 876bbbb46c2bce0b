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

Exit codes: 0 = ok, 1 = daemon mode not available yet, 2 = bad config or usage.";

/// Flags and subcommands.
#[derive(Debug, Parser)]
#[command(version, after_help = AFTER_HELP)]
struct Cli {
    /// Config file [default: ~/.config/anklet/<ANKLET_CONFIG_FILE_NAME or config.yml>]
    #[arg(short = 'c', long = "config", value_name = "PATH", global = true)]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load the config and the environment, print warnings to stderr and the effective
    /// settings (secrets redacted) to stdout; exit 0 if the config is valid, 2 if not.
    CheckConfig,
}

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
pub fn run(bin: &'static str, about: &'static str) -> ExitCode {
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
    let report = config::check(&path.display().to_string(), &bytes, &env);
    emit(false, &report.stdout);
    emit(true, &report.stderr);
    if !report.valid {
        return ExitCode::from(2);
    }
    match cli.command {
        Some(Command::CheckConfig) => ExitCode::SUCCESS,
        None => {
            emit(
                true,
                &format!(
                    "{bin}: the daemon mode is not built yet; `{bin} check-config` validates a config\n"
                ),
            );
            ExitCode::from(1)
        }
    }
}
