//! The command line of the `github-emulator` binary: start an emulator from flags, print its
//! URL, and serve until `POST /_emulator/shutdown` (or the process is killed).

use crate::config::{AppConfig, EmulatorConfig, InstallationConfig};
use crate::handle::Emulator;
use crate::time::TimeScale;
use anyhow::{Context, bail};
use clap::Parser;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// A GitHub emulator for anklet-rs tests and demos. It is NOT GitHub: every response says
/// `x-github-emulator: anklet-rs`.
///
/// It serves GitHub's REST shapes (installation tokens, runner tokens, JIT configs, runners,
/// jobs, hook deliveries, rate limit), sends signed workflow_job webhooks to --webhook-url, runs
/// the runner service emulated runners use, and offers a JSON control API under /_emulator/
/// (POST /_emulator/jobs to queue a job, POST /_emulator/faults to arm a fault, GET
/// /_emulator/calls, /jobs, /runners, /deliveries, /counts to observe, POST
/// /_emulator/shutdown to stop). The first line on stdout is `github-emulator: listening on
/// <base url>`.
#[derive(Debug, Parser)]
#[command(name = "github-emulator", version, verbatim_doc_comment)]
struct Args {
    /// Address to listen on (keep it on loopback: there is no TLS and the control API has no
    /// authentication).
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Port to listen on; 0 picks a free one (read it from the first stdout line).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Webhook receiver URL; repeat for several hooks. Each gets a ping at start.
    #[arg(long = "webhook-url", value_name = "URL")]
    webhook_urls: Vec<String>,
    /// File holding the webhook secret (trailing newline ignored).
    #[arg(long, value_name = "PATH", conflicts_with = "secret_env")]
    secret_file: Option<PathBuf>,
    /// Environment variable holding the webhook secret.
    #[arg(long, value_name = "NAME")]
    secret_env: Option<String>,
    /// A personal access token the REST API accepts; repeatable.
    #[arg(long = "pat", value_name = "TOKEN")]
    pats: Vec<String>,
    /// GitHub App id whose JWTs the app endpoints accept (needs --app-public-key).
    #[arg(long, requires = "app_public_key")]
    app_id: Option<u64>,
    /// The app's client id, also accepted as the JWT issuer.
    #[arg(long, requires = "app_id")]
    app_client_id: Option<String>,
    /// PEM file with the app's RSA public key.
    #[arg(long, value_name = "PATH", requires = "app_id")]
    app_public_key: Option<PathBuf>,
    /// An installation known up front, as ID=ACCOUNT; repeatable. Other accounts get one on
    /// first lookup.
    #[arg(long = "installation", value_name = "ID=ACCOUNT")]
    installations: Vec<String>,
    /// Multiplies emulated durations (job run times, token lifetimes, vanished-runner delay);
    /// 0.01 makes an hour last 36 s.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Installation token lifetime in seconds, before scaling.
    #[arg(long, default_value_t = 3600)]
    token_ttl_secs: u64,
    /// Seconds after its runner vanished that a running job fails, before scaling.
    #[arg(long, default_value_t = 60)]
    vanished_failure_secs: u64,
    /// Primary rate limit per credential per hour.
    #[arg(long, default_value_t = 5000)]
    rate_limit: u32,
}

/// Runs the binary with `args` (program name first); returns the exit code.
pub fn run(args: Vec<String>) -> i32 {
    let args = match Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match serve(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("github-emulator: error: {e:#}");
            1
        }
    }
}

fn secret(args: &Args) -> anyhow::Result<Option<String>> {
    if let Some(p) = &args.secret_file {
        let s = std::fs::read_to_string(p)
            .with_context(|| format!("cannot read --secret-file {}", p.display()))?;
        return Ok(Some(s.trim_end_matches(['\n', '\r']).to_owned()));
    }
    if let Some(name) = &args.secret_env {
        let s = std::env::var(name)
            .with_context(|| format!("environment variable {name} (--secret-env) is not set"))?;
        return Ok(Some(s));
    }
    Ok(None)
}

fn config(args: &Args) -> anyhow::Result<EmulatorConfig> {
    let time_scale = TimeScale::new(args.time_scale)
        .with_context(|| format!("--time-scale must be > 0, got {}", args.time_scale))?;
    let installations = args
        .installations
        .iter()
        .map(|s| {
            let (id, account) = s
                .split_once('=')
                .with_context(|| format!("--installation {s:?} is not ID=ACCOUNT"))?;
            Ok(InstallationConfig {
                id: id
                    .parse()
                    .with_context(|| format!("--installation {s:?}: bad id"))?,
                account: account.to_owned(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let app = match (args.app_id, &args.app_public_key) {
        (Some(app_id), Some(path)) => Some(AppConfig {
            app_id,
            client_id: args.app_client_id.clone(),
            public_key_pem: std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --app-public-key {}", path.display()))?,
            installations,
        }),
        _ if !installations.is_empty() => bail!("--installation needs --app-id"),
        _ => None,
    };
    Ok(EmulatorConfig {
        listen: SocketAddr::new(args.bind, args.port),
        webhook_urls: args.webhook_urls.clone(),
        webhook_secret: secret(args)?,
        pats: args.pats.clone(),
        app,
        time_scale,
        installation_token_ttl: Duration::from_secs(args.token_ttl_secs),
        vanished_job_failure_delay: Duration::from_secs(args.vanished_failure_secs),
        rate_limit_per_hour: args.rate_limit,
        ..EmulatorConfig::default()
    })
}

fn serve(args: Args) -> anyhow::Result<()> {
    let config = config(&args)?;
    if config.pats.is_empty() && config.app.is_none() {
        eprintln!(
            "github-emulator: warning: no --pat and no --app-id: every REST call will get 401"
        );
    }
    let hooks = config.webhook_urls.len();
    let emu = Emulator::start(config)?;
    let mut out = std::io::stdout();
    writeln!(out, "github-emulator: listening on {}", emu.base_url())?;
    out.flush()?;
    eprintln!(
        "github-emulator: anklet-rs test stand-in (not GitHub), {hooks} hook(s); stop with POST {}/_emulator/shutdown",
        emu.base_url()
    );
    emu.wait_for_shutdown_request();
    eprintln!("github-emulator: shutting down");
    emu.shutdown();
    Ok(())
}
