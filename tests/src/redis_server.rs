//! A real `redis-server` per test: a free loopback port, a private temp directory, optional
//! append-only persistence, and SIGKILL/restart to test crash recovery. Store tests run against
//! the real server (not a mock) because the properties that matter, atomic Lua scripts,
//! `BLPOP` wake-ups and what survives a crash, only a real server has.
//!
//! A missing `redis-server` is a failure, never a skip: a skipped store test looks green while
//! testing nothing. The error says how to install it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// What to install when the server binary is missing; part of every such error message.
pub const INSTALL_HINT: &str = "apt-get install -y redis-server";

/// How long a server gets to answer PING after it starts (AOF replay included).
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a test server could not be started or driven.
#[derive(Debug, thiserror::Error)]
pub enum RedisServerError {
    /// `redis-server` is not on PATH.
    #[error(
        "redis-server is not installed (or not on PATH); the Redis store tests need a real \
         server: run `{INSTALL_HINT}` (CI={ci})"
    )]
    NotInstalled {
        /// The `CI` variable as seen, so a CI log shows the environment was a CI run.
        ci: String,
    },
    /// Spawning or talking to the process failed.
    #[error("redis-server {what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The server did not answer PING in time.
    #[error(
        "redis-server on port {port} did not become ready within {READY_TIMEOUT:?}; log:\n{log}"
    )]
    NotReady {
        /// Its port.
        port: u16,
        /// The tail of its log file.
        log: String,
    },
}

/// How to run the server.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// `appendonly yes` with `appendfsync always`: every acknowledged write survives SIGKILL.
    pub aof: bool,
    /// `cluster-enabled yes` (a node of a [`RedisCluster`]).
    pub cluster: bool,
    /// Also listen with TLS on [`RedisServer::tls_port`], with a self-signed CA and server
    /// certificate made by `openssl` in the server's directory ([`RedisServer::ca_cert`]).
    pub tls: bool,
}

/// A running (or killed, awaiting restart) `redis-server` owned by one test; dropped = killed.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    tls_port: Option<u16>,
    dir: tempfile::TempDir,
    options: ServerOptions,
}

impl RedisServer {
    /// Starts a server without persistence.
    pub fn start() -> Result<Self, RedisServerError> {
        Self::start_with(ServerOptions::default())
    }

    /// Starts a server with append-only persistence (`appendfsync always`).
    pub fn start_aof() -> Result<Self, RedisServerError> {
        Self::start_with(ServerOptions {
            aof: true,
            ..ServerOptions::default()
        })
    }

    /// Starts a server with `options` on a free loopback port, retrying with another port if
    /// the one picked was taken meanwhile.
    pub fn start_with(options: ServerOptions) -> Result<Self, RedisServerError> {
        ensure_installed()?;
        let dir = tempfile::Builder::new()
            .prefix("anklet-redis-")
            .tempdir()
            .map_err(|source| RedisServerError::Io {
                what: "temp dir",
                source,
            })?;
        let mut server = Self {
            child: None,
            port: 0,
            tls_port: None,
            dir,
            options,
        };
        let mut last = None;
        if server.options.tls {
            make_certs(server.dir.path())?;
        }
        for _ in 0..5 {
            server.port = free_port()?;
            if server.options.tls {
                server.tls_port = Some(free_port()?);
            }
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) => {
                    server.kill();
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(RedisServerError::NotInstalled { ci: ci() }))
    }

    fn spawn(&mut self) -> Result<(), RedisServerError> {
        let dir = self.dir.path();
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--daemonize", "no", "--save", ""])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"));
        if let Some(tls_port) = self.tls_port {
            cmd.arg("--tls-port")
                .arg(tls_port.to_string())
                .arg("--tls-cert-file")
                .arg(dir.join("server.crt"))
                .arg("--tls-key-file")
                .arg(dir.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(dir.join("ca.crt"))
                .args(["--tls-auth-clients", "no"]);
        }
        if self.options.cluster {
            cmd.args(["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"])
                .args(["--cluster-config-file", "nodes.conf"]);
        }
        if self.options.aof {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => RedisServerError::NotInstalled { ci: ci() },
                _ => RedisServerError::Io {
                    what: "spawn",
                    source,
                },
            })?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), RedisServerError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                break;
            }
            if ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(RedisServerError::NotReady {
            port: self.port,
            log: self.log_tail(),
        })
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS port, when started with [`ServerOptions::tls`].
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The CA certificate that signed the server's certificate (TLS servers).
    pub fn ca_cert(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's working directory (AOF files, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server with SIGKILL (no shutdown save) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Child::kill sends SIGKILL on Unix.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Starts it again on the same port and directory (replaying the AOF when enabled).
    pub fn restart(&mut self) -> Result<(), RedisServerError> {
        self.kill();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return Ok(()),
                // The port may linger for a moment after the kill.
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => {
                    self.kill();
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// Runs `redis-cli -p <port> <args>` (to poke at keys the way an operator would).
    pub fn cli(&self, args: &[&str]) -> Result<Output, RedisServerError> {
        Command::new("redis-cli")
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .map_err(|source| RedisServerError::Io {
                what: "redis-cli",
                source,
            })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis Cluster of masters on loopback (no replicas), for the store's cluster mode.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` (at least 3) cluster nodes and joins them with
    /// `redis-cli --cluster create`, waiting until the cluster state is ok.
    pub fn start(masters: usize) -> Result<Self, RedisServerError> {
        let options = ServerOptions {
            cluster: true,
            ..ServerOptions::default()
        };
        let nodes = (0..masters.max(3))
            .map(|_| RedisServer::start_with(options.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .map_err(|source| RedisServerError::Io {
                what: "redis-cli --cluster create",
                source,
            })?;
        if !out.status.success() {
            return Err(RedisServerError::Io {
                what: "redis-cli --cluster create",
                source: std::io::Error::other(String::from_utf8_lossy(&out.stdout).into_owned()),
            });
        }
        let cluster = Self { nodes };
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            let ok = cluster.nodes.iter().all(|n| {
                n.cli(&["CLUSTER", "INFO"])
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
            });
            if ok {
                return Ok(cluster);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(RedisServerError::NotReady {
            port: cluster.nodes[0].port(),
            log: cluster.nodes[0].log_tail(),
        })
    }

    /// The nodes.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }
}

/// Starts a server or panics with the install hint: for tests, where a missing server must
/// fail the run (with `CI=true` and without).
#[track_caller]
pub fn must_start(options: ServerOptions) -> RedisServer {
    match RedisServer::start_with(options) {
        Ok(s) => s,
        Err(e) => panic!("cannot start the test redis-server: {e}"),
    }
}

/// A CA and a server certificate for `localhost` / `127.0.0.1`, made with `openssl`.
fn make_certs(dir: &Path) -> Result<(), RedisServerError> {
    let run = |args: &[&str]| -> Result<(), RedisServerError> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|source| RedisServerError::Io {
                what: "openssl",
                source,
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(RedisServerError::Io {
                what: "openssl",
                source: std::io::Error::other(String::from_utf8_lossy(&out.stderr).into_owned()),
            })
        }
    };
    std::fs::write(
        dir.join("san.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .map_err(|source| RedisServerError::Io {
        what: "write san.cnf",
        source,
    })?;
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=anklet-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ])?;
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ])?;
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
        "-out",
        "server.crt",
    ])
}

fn ci() -> String {
    std::env::var("CI").unwrap_or_default()
}

/// Fails with [`RedisServerError::NotInstalled`] unless `redis-server` runs.
pub fn ensure_installed() -> Result<(), RedisServerError> {
    match Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        _ => Err(RedisServerError::NotInstalled { ci: ci() }),
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> Result<u16, RedisServerError> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|source| RedisServerError::Io {
            what: "free port",
            source,
        })?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|source| RedisServerError::Io {
            what: "free port",
            source,
        })
}

/// Sends PING; true on `+PONG` (not while the server still loads its AOF).
fn ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

/// Connection settings for a loopback test server on `port`: no password, database 0, short
/// retry delays so reconnect tests stay quick.
pub fn test_db(port: u16) -> anklet_core::config::DatabaseSettings {
    anklet_core::config::DatabaseSettings {
        url: "127.0.0.1".into(),
        port,
        user: String::new(),
        password: anklet_core::secret::Secret::default(),
        database: 0,
        max_retries: 3,
        retry_delay: Duration::from_millis(50),
        retry_backoff_factor: 2.0,
        cluster_mode: false,
        tls_enabled: false,
        tls_insecure: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_server_says_how_to_install_it() {
        let e = RedisServerError::NotInstalled { ci: "true".into() };
        let text = e.to_string();
        assert!(text.contains("apt-get install -y redis-server"), "{text}");
        assert!(text.contains("CI=true"), "{text}");
    }
}
