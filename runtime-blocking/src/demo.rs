//! `anklet-lite demo`: a whole fleet on one Linux machine, with nothing else installed.
//!
//! The GitHub emulator (in-process, loopback) plays github.com, the fake `anka` (this very
//! executable, called through a symlink named `anka`) plays two Macs, and the daemon runs the
//! receiver and two handler hosts on the embedded store: the real code path end to end. The
//! emulator sends a burst of signed `workflow_job` webhooks; the terminal shows progress; the
//! end is a table of where each job's time went. Exit 0 only if every job completed once and
//! no VM or runner is left. Nothing here is the real GitHub or the real Anka, and the output
//! says so.

use crate::common::{self, Control};
use anklet_core::config;
use anyhow::{Context, bail};
use github_emulator::{Emulator, EmulatorConfig, EmulatorHandle, JobSpec, TimeScale};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

pub use crate::cli::DemoArgs;

const OWNER: &str = "demo-org";
const REPO: &str = "demo-app";
const TEMPLATE: &str = "c0ffee00-demo-macos-15";
const TOKEN: &str = "ghp_demo_token_for_the_emulator_only";

/// Runs a daemon until a [`Control`] says stop; each binary passes its own (the blocking one
/// here, the tokio one in `anklet`), so the demo exercises the daemon of the binary it is in.
pub type DaemonRunner =
    fn(&config::Config, &BTreeMap<String, String>, std::sync::mpsc::Receiver<Control>) -> ExitCode;

/// Runs the demo with this binary's daemon; `bin` names the executable in messages.
pub fn run(bin: &str, args: &DemoArgs, daemon_runner: DaemonRunner) -> ExitCode {
    match demo(bin, args, daemon_runner) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn demo(bin: &str, args: &DemoArgs, daemon_runner: DaemonRunner) -> anyhow::Result<bool> {
    let temp = tempfile::Builder::new().prefix("anklet-demo-").tempdir()?;
    let dir = match &args.keep {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d.clone()
        }
        None => temp.path().to_path_buf(),
    };
    println!("{bin} demo: a local fleet with stand-ins, not the real GitHub or Anka");
    println!(
        "  GitHub emulator (loopback) · {} fake Macs (fake `anka`) · embedded store · files in {}",
        args.hosts,
        dir.display()
    );
    let port = free_port()?;
    let secret = "demo-webhook-secret";
    let emulator = Emulator::start(EmulatorConfig {
        pats: vec![TOKEN.to_owned()],
        webhook_urls: vec![format!("http://127.0.0.1:{port}/jobs/v1/receiver")],
        webhook_secret: Some(secret.to_owned()),
        time_scale: TimeScale::new(1.0).context("time scale")?,
        ..EmulatorConfig::default()
    })
    .context("cannot start the GitHub emulator")?;
    let hosts = fake_macs(&dir, args)?;
    let yaml = config_yaml(&dir, port, secret, emulator.base_url(), &hosts);
    let config_path = dir.join("config.yml");
    std::fs::write(&config_path, &yaml)?;
    let env: BTreeMap<String, String> = std::env::vars().filter(|(k, _)| k == "HOME").collect();
    let loaded = config::load(&config_path.display().to_string(), yaml.as_bytes(), &env)
        .map_err(|f| anyhow::anyhow!("the demo's own config is invalid: {f:?}"))?;
    common::logging::init(Some(&dir.join("logs")), &env)?;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

    let (controls, control_rx) = channel();
    let daemon_config = loaded.config.clone();
    let daemon_env = env.clone();
    let daemon = std::thread::spawn(move || daemon_runner(&daemon_config, &daemon_env, control_rx));
    wait_healthy(port)?;

    let started = Instant::now();
    let labels = [
        "self-hosted",
        &format!("anka-template:{TEMPLATE}"),
        "anka-template-tag:v1",
    ];
    let mut ids = Vec::new();
    for n in 0..args.jobs {
        let mut spec = JobSpec::new(
            OWNER,
            REPO,
            &labels.iter().map(|s| s.as_ref()).collect::<Vec<&str>>(),
        );
        spec.duration_ms = args.job_ms;
        spec.name = Some(format!("build-{}", n + 1));
        ids.push(
            emulator
                .create_job(spec)
                .context("emulator: create job")?
                .id,
        );
    }
    println!("  sent {} signed workflow_job webhooks", ids.len());
    let finished = progress(&emulator, args, started);
    let _ = controls.send(Control::Stop);
    let daemon_code = daemon
        .join()
        .map_err(|_| anyhow::anyhow!("the daemon thread panicked"))?;
    let ok = report(&emulator, &ids, &hosts, started, finished)?;
    let clean_exit = daemon_code == ExitCode::SUCCESS;
    if !clean_exit {
        println!(
            "✗ the daemon did not stop cleanly (see {}/logs)",
            dir.display()
        );
    }
    emulator.shutdown();
    Ok(ok && clean_exit)
}

/// One fake Mac: its `anka` wrapper and state folder.
struct FakeMac {
    name: String,
    anka: PathBuf,
}

fn fake_macs(dir: &Path, args: &DemoArgs) -> anyhow::Result<Vec<FakeMac>> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    let link = bin.join("anka");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&exe, &link)
        .with_context(|| format!("cannot create {}", link.display()))?;
    // The daemon measures the template volume on this machine's real disk (only `anka` is
    // fake), so the template is small and the config keeps a 1% disk buffer: the demo must not
    // depend on how full the disk it runs on is.
    let seed = serde_json::json!({
        "disk_total": 200_000_000_000u64,
        "time_scale": args.anka_time_scale,
        "registry": [{
            "uuid": TEMPLATE, "name": "macos-15-demo", "latest": "v1",
            "tags": { "v1": { "size": 2_000_000_000u64 } }
        }],
        "local": []
    });
    (1..=args.hosts.max(1))
        .map(|n| {
            let name = format!("demo-mac-{n}");
            let home = dir.join(&name);
            std::fs::create_dir_all(&home)?;
            std::fs::write(home.join("seed.json"), seed.to_string())?;
            let anka = home.join("anka");
            let script = format!(
                "#!/bin/sh\n# The fake `anka` of {name} (anklet-rs demo; not Veertu's Anka).\nFAKE_ANKA_HOME='{}' exec '{}' \"$@\"\n",
                home.display(),
                link.display()
            );
            std::fs::write(&anka, script)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&anka, std::fs::Permissions::from_mode(0o755))?;
            Ok(FakeMac { name, anka })
        })
        .collect()
}

fn config_yaml(dir: &Path, port: u16, secret: &str, api: &str, hosts: &[FakeMac]) -> String {
    let mut y = format!(
        "# anklet demo: every URL points at the GitHub emulator on loopback.\nlog:\n  file_dir: {logs}\nstore_path: {store}\nplugins_path: {plugins}\nplugins:\n  - name: demo-receiver\n    plugin: github_receiver\n    port: \"{port}\"\n    secret: {secret}\n    owner: {OWNER}\n    repo: {REPO}\n    token: {TOKEN}\n    github_api_url: {api}\n    skip_redeliver: true\n",
        logs = dir.join("logs").display(),
        store = dir.join("queue.redb").display(),
        plugins = dir.join("plugins").display(),
    );
    for h in hosts {
        y.push_str(&format!(
            "  - name: {name}\n    plugin: github\n    owner: {OWNER}\n    repo: {REPO}\n    token: {TOKEN}\n    github_api_url: {api}\n    anka_path: {anka}\n    registration_timeout_seconds: 30\n    job_poll_interval_seconds: 2\n    vm_health_interval_seconds: 2\n    template_disk_buffer: 1\n",
            name = h.name,
            anka = h.anka.display(),
        ));
    }
    y
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn wait_healthy(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if healthy(port) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the receiver did not answer http://127.0.0.1:{port}/healthcheck within 15 s")
}

/// One `GET /healthcheck` over a plain socket (the demo needs no HTTP client of its own).
fn healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut socket) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET /healthcheck HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if socket.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    socket.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}

/// Shows progress until every job completed or the timeout; returns when the last one did.
fn progress(emulator: &EmulatorHandle, args: &DemoArgs, started: Instant) -> Option<Duration> {
    let bar = indicatif::ProgressBar::new(args.jobs as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "  [{elapsed_precise}] {bar:30} {pos}/{len} completed · {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let result = loop {
        let c = emulator.counts();
        bar.set_position(c.completed as u64);
        bar.set_message(format!(
            "{} queued, {} running, {} runners",
            c.queued, c.in_progress, c.runners
        ));
        if c.completed >= args.jobs {
            break Some(started.elapsed());
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    bar.finish();
    result
}

/// Prints the job table and the verdict; `true` when everything is as it should be.
fn report(
    emulator: &EmulatorHandle,
    ids: &[u64],
    hosts: &[FakeMac],
    started: Instant,
    finished: Option<Duration>,
) -> anyhow::Result<bool> {
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header([
        "job",
        "status",
        "ran on",
        "waited (s)",
        "ran (s)",
        "total (s)",
    ]);
    let secs = |ms: u64| format!("{:.1}", ms as f64 / 1000.0);
    let mut completed = 0;
    for id in ids {
        let Some(job) = emulator.job(*id) else {
            table.add_row([
                id.to_string(),
                "missing".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
            continue;
        };
        let ok = job.conclusion.as_deref() == Some("success");
        completed += usize::from(ok);
        let waited = job
            .started_at_ms
            .map(|s| s.saturating_sub(job.created_at_ms));
        let ran = job
            .started_at_ms
            .zip(job.completed_at_ms)
            .map(|(s, e)| e.saturating_sub(s));
        let total = job
            .completed_at_ms
            .map(|e| e.saturating_sub(job.created_at_ms));
        table.add_row([
            job.name.clone(),
            format!(
                "{} {}",
                job.status.as_str(),
                job.conclusion.as_deref().unwrap_or("")
            ),
            job.runner_name.clone().unwrap_or_default(),
            waited.map_or_else(String::new, secs),
            ran.map_or_else(String::new, secs),
            total.map_or_else(String::new, secs),
        ]);
    }
    println!("{table}");
    let runners_left = emulator.runners().len();
    let mut vms_left = 0;
    for h in hosts {
        vms_left += vms_on(&h.anka)?;
    }
    let all = completed == ids.len();
    println!(
        "  {completed}/{} jobs completed once · {runners_left} runners left · {vms_left} VMs left · {:.1} s{}",
        ids.len(),
        finished.unwrap_or_else(|| started.elapsed()).as_secs_f64(),
        if finished.is_none() {
            " (timed out)"
        } else {
            ""
        }
    );
    let ok = all && runners_left == 0 && vms_left == 0;
    println!(
        "{}",
        if ok {
            "✓ demo passed"
        } else {
            "✗ demo failed"
        }
    );
    Ok(ok)
}

/// VMs (not templates) a fake Mac still has, through its own `anka -j list`.
fn vms_on(anka: &Path) -> anyhow::Result<usize> {
    let out = std::process::Command::new(anka)
        .args(["-j", "list"])
        .output()
        .with_context(|| format!("cannot run {}", anka.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(last)
        .with_context(|| format!("{} -j list printed no JSON", anka.display()))?;
    Ok(v["body"].as_array().map_or(0, |a| {
        a.iter()
            .filter(|e| {
                e["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("anklet-vm-"))
            })
            .count()
    }))
}
