//! GitHub's own tools for the contract tests (`tests/tests/contract_*.rs`), installed by
//! `npm ci --prefix tests/contract` (scripts/test.sh does it): prism, which validates requests
//! against GitHub's OpenAPI description (`@octokit/openapi`), and octokit's webhook signer
//! (`@octokit/webhooks-methods`).
//!
//! Every helper is bounded in time and loopback only; a prism server runs in its own process
//! group and the whole group is killed when it is dropped. A missing tool is an error that says
//! how to install it: the contract tests fail, they never skip.
#![allow(dead_code)] // each contract test uses part of this

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How to get the tools; every "missing" error ends with it.
pub const INSTALL_HINT: &str = "run `bash scripts/test.sh` (it apt-get installs the Debian \
     packages nodejs and npm when missing, then runs `npm ci --prefix tests/contract`), or, \
     with node >= 18.20 and npm already installed, `npm ci --prefix tests/contract`";

/// The oldest node the pinned prism (5.14.2) supports.
const MIN_NODE_MAJOR: u32 = 18;

/// Why a contract tool could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// A tool or file is not installed.
    #[error("{what} is missing (CI={ci:?}): {hint}", hint = INSTALL_HINT)]
    Missing {
        /// What is missing, and where it was looked for.
        what: String,
        /// The `CI` variable, so a CI log shows that this is not a skip.
        ci: String,
    },
    /// A process could not be started or waited for.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A process did not finish, or a server did not listen, in time.
    #[error("{what} did not finish within {secs} s; log tail:\n{log}")]
    Timeout {
        /// The process.
        what: String,
        /// The bound.
        secs: u64,
        /// The end of its output.
        log: String,
    },
    /// A process exited unsuccessfully or too early.
    #[error("{what} exited with {status}; log tail:\n{log}")]
    Exited {
        /// The process.
        what: String,
        /// Its exit status.
        status: ExitStatus,
        /// The end of its output.
        log: String,
    },
}

fn ci() -> String {
    std::env::var("CI").unwrap_or_default()
}

fn missing(what: String) -> ContractError {
    ContractError::Missing { what, ci: ci() }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ContractError {
    let what = what.into();
    move |source| ContractError::Io { what, source }
}

/// `tests/contract/`, where package.json and the installed node_modules live.
pub fn contract_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contract")
}

/// The installed tools, all checked to exist.
#[derive(Clone, Debug)]
pub struct Tools {
    /// The `node` executable (from `PATH`).
    pub node: PathBuf,
    /// `node --version`, e.g. `v20.20.2`.
    pub node_version: String,
    /// prism's CLI script (run with `node`).
    pub prism: PathBuf,
    /// GitHub's description of api.github.com (`@octokit/openapi`).
    pub dotcom_spec: PathBuf,
    /// GitHub's description of GitHub Enterprise Cloud: the only one with the
    /// `/enterprises/{enterprise}/actions/...` endpoints.
    pub ghec_spec: PathBuf,
    /// Our node script that signs and verifies with `@octokit/webhooks-methods`.
    pub webhook_signer: PathBuf,
}

impl Tools {
    /// Finds node (>= 18) and the packages of `tests/contract/package.json`; fails with
    /// [`INSTALL_HINT`] when anything is missing.
    pub fn find() -> Result<Self, ContractError> {
        let node_version = Command::new("node")
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .ok_or_else(|| missing("`node` (not on PATH)".into()))?;
        let major = node_version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok())
            .unwrap_or(0);
        if major < MIN_NODE_MAJOR {
            return Err(missing(format!(
                "node >= {MIN_NODE_MAJOR} (found {node_version})"
            )));
        }
        let dir = contract_dir();
        let modules = dir.join("node_modules");
        let file = |rel: &str| -> Result<PathBuf, ContractError> {
            let p = modules.join(rel);
            if p.is_file() {
                Ok(p)
            } else {
                Err(missing(format!("{}", p.display())))
            }
        };
        let webhook_signer = dir.join("webhook-signatures.mjs");
        if !webhook_signer.is_file() {
            return Err(missing(format!("{}", webhook_signer.display())));
        }
        file("@octokit/webhooks-methods/package.json")?;
        Ok(Self {
            node: PathBuf::from("node"),
            node_version,
            prism: file("@stoplight/prism-cli/dist/index.js")?,
            dotcom_spec: file("@octokit/openapi/generated/api.github.com.json")?,
            ghec_spec: file("@octokit/openapi/generated/ghec.json")?,
            webhook_signer,
        })
    }

    /// Runs `node script` with `input` on stdin and returns its stdout; killed (with its
    /// process group) after `timeout`.
    pub fn run_node(
        &self,
        script: &Path,
        input: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, ContractError> {
        let what = format!("node {}", script.display());
        let dir = tempfile::tempdir().map_err(io("temporary folder"))?;
        let out_path = dir.path().join("stdout");
        let err_path = dir.path().join("stderr");
        let stdout = std::fs::File::create(&out_path).map_err(io("stdout file"))?;
        let stderr = std::fs::File::create(&err_path).map_err(io("stderr file"))?;
        let child = Command::new(&self.node)
            .arg(script)
            .current_dir(contract_dir())
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .map_err(io(format!("spawn {what}")))?;
        let mut group = GroupChild::new(child);
        if let Some(mut stdin) = group.child.stdin.take() {
            stdin
                .write_all(input)
                .map_err(io(format!("write stdin of {what}")))?;
        }
        let status = group
            .wait_for(timeout)
            .map_err(io(format!("wait {what}")))?;
        let log = || tail(&err_path);
        match status {
            None => Err(ContractError::Timeout {
                what,
                secs: timeout.as_secs(),
                log: log(),
            }),
            Some(s) if !s.success() => Err(ContractError::Exited {
                what,
                status: s,
                log: log(),
            }),
            Some(_) => std::fs::read(&out_path).map_err(io("read stdout")),
        }
    }
}

/// A child that leads its own process group; dropping it kills the group and reaps the child.
#[derive(Debug)]
struct GroupChild {
    child: Child,
    done: bool,
}

impl GroupChild {
    fn new(child: Child) -> Self {
        Self { child, done: false }
    }

    /// Waits up to `timeout`; `None` when still running.
    fn wait_for(&mut self, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait()? {
                self.done = true;
                // The leader is gone; anything it left in its group goes too.
                kill_group(&self.child);
                return Ok(Some(s));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

fn kill_group(child: &Child) {
    let pid = rustix::process::Pid::from_child(child);
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        kill_group(&self.child);
        if !self.done {
            let _ = self.child.wait();
        }
    }
}

/// The last 40 lines of a log file.
fn tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16, ContractError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(io("free loopback port"))
}

/// The description as prism can load it. ghec.json (23.0.2) has three `$ref`s to files that
/// are not published (`server-statistics-*.yaml`, inside an example of the enterprise server
/// statistics call, which we do not make); prism fails to start on them. Such a reference is
/// renamed to `x-unresolvable-ref` in a copy under `dir`; everything else is kept byte for byte.
/// A description without them is used as it is.
fn servable(spec: &Path, dir: &Path) -> Result<PathBuf, ContractError> {
    const REF: &str = "\"$ref\": \"";
    let text = std::fs::read_to_string(spec).map_err(io(format!("read {}", spec.display())))?;
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    let mut renamed = 0;
    while let Some(i) = rest.find(REF) {
        let (before, at) = rest.split_at(i);
        out.push_str(before);
        if at[REF.len()..].starts_with('#') {
            out.push_str(REF);
        } else {
            out.push_str("\"x-unresolvable-ref\": \"");
            renamed += 1;
        }
        rest = &at[REF.len()..];
    }
    out.push_str(rest);
    if renamed == 0 {
        return Ok(spec.to_path_buf());
    }
    let name = spec.file_name().unwrap_or_default();
    let copy = dir.join(name);
    std::fs::write(&copy, out).map_err(io(format!("write {}", copy.display())))?;
    Ok(copy)
}

/// `prism mock --errors` for one OpenAPI description on a loopback port: a request that
/// violates the description is answered with a 4xx (and an `sl-violations` header when the
/// spec has an error response to use); a valid one with the description's example.
#[derive(Debug)]
pub struct PrismMock {
    child: GroupChild,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PrismMock {
    /// Starts prism on `spec` and waits (at most `ready_within`) until it listens.
    pub fn start(
        tools: &Tools,
        spec: &Path,
        ready_within: Duration,
    ) -> Result<Self, ContractError> {
        let dir = tempfile::tempdir().map_err(io("temporary folder"))?;
        let spec = servable(spec, dir.path())?;
        let log = dir.path().join("prism.log");
        let out = std::fs::File::create(&log).map_err(io("prism log"))?;
        let err = out.try_clone().map_err(io("prism log"))?;
        let port = free_port()?;
        let child = Command::new(&tools.node)
            .arg(&tools.prism)
            .args(["mock", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--errors")
            .arg(&spec)
            .current_dir(contract_dir())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(io("spawn prism"))?;
        let mut server = Self {
            child: GroupChild::new(child),
            port,
            log,
            _dir: dir,
        };
        server.wait_ready(ready_within)?;
        Ok(server)
    }

    fn wait_ready(&mut self, within: Duration) -> Result<(), ContractError> {
        let what = format!("prism mock on 127.0.0.1:{}", self.port);
        let deadline = Instant::now() + within;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Some(status) = self.child.try_status() {
                self.child.done = true;
                return Err(ContractError::Exited {
                    what,
                    status,
                    log: self.log_tail(),
                });
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ContractError::Timeout {
                    what,
                    secs: within.as_secs(),
                    log: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `http://127.0.0.1:PORT`, the API base URL to build requests on.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The end of prism's log (what it validated and why it refused).
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    /// Whether prism still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_status().is_none()
    }
}
