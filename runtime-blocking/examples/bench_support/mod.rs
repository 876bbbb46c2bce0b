//! What `receiver_bench` and `daemon_bench` share: finding the release binaries, running a
//! daemon binary as a child process (killed on drop), reading its RSS and CPU time from
//! `/proc`, a Redis with `appendfsync everysec`, a fake Mac for a handler, a minimal keep-alive
//! HTTP/1.1 client for signed webhooks, and the machine's load.
//!
//! Bench code only: it panics with a clear message when the machine is not set up for it.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use anklet_tests::redis_server::RedisServer;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The daemon binaries under test, by name (`anklet-lite`, `anklet`).
pub fn daemon_binaries() -> Vec<(&'static str, PathBuf)> {
    // `--lite PATH` / `--tokio PATH` override; otherwise target/release next to the workspace.
    let args: Vec<String> = std::env::args().collect();
    let arg = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
    };
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let pick = |flag: &str, name: &str| {
        let path = arg(flag).unwrap_or_else(|| target.join("release").join(name));
        assert!(
            path.is_file(),
            "{} not found: run `cargo build --release -p anklet -p anklet-lite` first, or pass {flag} PATH",
            path.display()
        );
        path
    };
    vec![
        ("anklet-lite", pick("--lite", "anklet-lite")),
        ("anklet", pick("--tokio", "anklet")),
    ]
}

/// `uptime`'s line, printed before each measurement (the machine is shared).
pub fn load() -> String {
    let out = Command::new("uptime").output().expect("uptime runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The 1-minute load average.
pub fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// A Redis started with `appendonly yes` and then switched to `appendfsync everysec` (what a
/// production Redis normally runs; Anklet's LPUSH pays the same).
pub fn redis_everysec() -> RedisServer {
    let server =
        RedisServer::start_aof().expect("redis-server starts (apt-get install redis-server)");
    let out = server
        .cli(&["CONFIG", "SET", "appendfsync", "everysec"])
        .expect("redis-cli runs");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("OK"),
        "CONFIG SET appendfsync everysec failed"
    );
    server
}

/// One `INFO` field of `server` as a number.
pub fn redis_info(server: &RedisServer, section: &str, field: &str) -> u64 {
    let out = server.cli(&["INFO", section]).expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:"))?.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no {field}"))
}

/// `INFO commandstats` as (command, calls).
pub fn redis_commandstats(server: &RedisServer) -> Vec<(String, u64)> {
    let out = server
        .cli(&["INFO", "commandstats"])
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("cmdstat_")?;
            let (name, stats) = rest.split_once(':')?;
            let calls = stats.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

/// One daemon process; killed (and reaped) on drop.
pub struct Daemon {
    pub name: String,
    pub home: PathBuf,
    pub log: PathBuf,
    child: Child,
}

impl Daemon {
    /// Runs `bin -c <dir>/<name>.yml` with `HOME=<dir>/home-<name>`, logs to `<dir>/<name>.log`,
    /// and waits for its pid file (signal handlers installed, plugins starting).
    pub fn spawn(bin: &Path, dir: &Path, name: &str, yaml: &str, log_level: &str) -> Self {
        let home = dir.join(format!("home-{name}"));
        std::fs::create_dir_all(&home).expect("home dir");
        let config = dir.join(format!("{name}.yml"));
        std::fs::write(&config, yaml).expect("config written");
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&config)
            .env("HOME", &home)
            .env("LOG_LEVEL", log_level)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let mut d = Self {
            name: name.to_owned(),
            home,
            log,
            child,
        };
        let pid_file = d.home.join(".config/anklet/anklet.pid");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !pid_file.exists() {
            assert!(
                d.running() && Instant::now() < deadline,
                "{name} did not start:\n{}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `VmRSS` from `/proc/<pid>/status`, in KiB.
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS")
    }

    /// `RssAnon` (heap, stacks: the process' own memory) and `RssFile` (mapped files: mostly
    /// the binary's code pages, shared with every process running the same binary) in KiB.
    pub fn rss_split_kib(&self) -> (u64, u64) {
        (
            proc_status_kib(self.pid(), "RssAnon"),
            proc_status_kib(self.pid(), "RssFile"),
        )
    }

    /// The memory figures of `/proc/<pid>/smaps_rollup`, in KiB: RSS counts every resident
    /// page, PSS divides each shared page by the number of processes mapping it, and USS
    /// (private) is what stopping this process would free.
    pub fn smaps(&self) -> Smaps {
        let text = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", self.pid()))
            .expect("/proc/<pid>/smaps_rollup readable");
        let field = |name: &str| -> u64 {
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(name)?
                        .strip_prefix(':')?
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse()
                        .ok()
                })
                .unwrap_or_else(|| panic!("no {name} in smaps_rollup"))
        };
        Smaps {
            rss: field("Rss"),
            anon: field("Anonymous"),
            pss: field("Pss"),
            pss_anon: field("Pss_Anon"),
            pss_file: field("Pss_File"),
            uss: field("Private_Clean") + field("Private_Dirty"),
        }
    }

    /// `VmHWM` (peak RSS) from `/proc/<pid>/status`, in KiB.
    pub fn hwm_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmHWM")
    }

    /// utime + stime of the whole process (all threads) from `/proc/<pid>/stat`, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .expect("/proc/<pid>/stat readable");
        // Fields after the command name (which may hold spaces) start at field 3 (state).
        let rest = &stat[stat.rfind(')').expect("stat has a command") + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 =
            f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
        ticks as f64 / clk_tck()
    }

    /// Threads of the process.
    pub fn threads(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Threads:")?.trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

/// A process' memory from `/proc/<pid>/smaps_rollup`, in KiB (see [`Daemon::smaps`]).
#[derive(Debug, Clone, Copy)]
pub struct Smaps {
    /// Resident pages, shared or not (`VmRSS`).
    pub rss: u64,
    /// Resident anonymous pages: heap, stacks, dirtied private mappings.
    pub anon: u64,
    /// Proportional set size: each resident page divided by the processes that map it.
    pub pss: u64,
    /// The anonymous part of `pss`.
    pub pss_anon: u64,
    /// The file-backed part of `pss` (the binary's and libc's pages).
    pub pss_file: u64,
    /// Unique set size: pages no other process maps (private clean + private dirty).
    pub uss: u64,
}

impl Smaps {
    /// `rss` minus `anon`: resident pages of mapped files.
    pub fn file(&self) -> u64 {
        self.rss.saturating_sub(self.anon)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// utime + stime of this process (the load generator), seconds.
pub fn self_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat readable");
    let rest = &stat[stat.rfind(')').expect("stat has a command") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
    ticks as f64 / clk_tck()
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{field}:"))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Waits until `GET http://127.0.0.1:<port>/healthcheck` answers 200.
pub fn wait_http_ok(port: u16, daemon: &mut Daemon) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut c) = HttpClient::connect(port)
            && let Ok((200, _)) = c.get("/healthcheck")
        {
            return;
        }
        assert!(
            daemon.running() && Instant::now() < deadline,
            "{} does not answer on port {port}:\n{}",
            daemon.name,
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    anklet_tests::redis_server::free_port().expect("a free port")
}

/// A keep-alive HTTP/1.1 client on one connection, as light as possible so the load generator
/// takes little of the CPU the server needs (a webhook is ~500 bytes; responses carry a
/// `Content-Length`).
pub struct HttpClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    buf: Vec<u8>,
}

impl HttpClient {
    pub fn connect(port: u16) -> std::io::Result<Self> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Self {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
            buf: Vec::with_capacity(2048),
        })
    }

    /// Posts a signed `workflow_job` delivery to `/jobs/v1/receiver`; the status code.
    pub fn post_webhook(
        &mut self,
        guid: &str,
        body: &[u8],
        signature: &str,
    ) -> std::io::Result<u16> {
        self.buf.clear();
        write!(
            self.buf,
            "POST /jobs/v1/receiver HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: GitHub-Hookshot/bench\r\n\
             X-GitHub-Event: workflow_job\r\nX-GitHub-Delivery: {guid}\r\nX-Hub-Signature-256: {signature}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )?;
        self.buf.extend_from_slice(body);
        self.writer.write_all(&self.buf)?;
        Ok(self.read_response()?.0)
    }

    pub fn get(&mut self, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
        write!(
            self.writer,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        )?;
        self.read_response()
    }

    fn read_response(&mut self) -> std::io::Result<(u16, Vec<u8>)> {
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(bad("connection closed"));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad status line"))?;
        let mut length = None;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(bad("connection closed in headers"));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse::<usize>().ok();
                } else if k.eq_ignore_ascii_case("transfer-encoding") {
                    return Err(bad(
                        "chunked responses are not supported by the bench client",
                    ));
                }
            }
        }
        let mut body = vec![0; length.ok_or_else(|| bad("no content-length"))?];
        self.reader.read_exact(&mut body)?;
        Ok((status, body))
    }
}

/// A fake Mac in `dir` for a handler: a seed (template local, `time_scale`) and an `anka`
/// wrapper that runs `bin` (both daemons embed the fake `anka`) through a symlink named
/// `anka`. Returns the wrapper's path.
pub fn fake_mac(bin: &Path, dir: &Path, template: &str, time_scale: f64) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mac dir");
    let seed = serde_json::json!({
        "disk_total": 200_000_000_000u64,
        "time_scale": time_scale,
        "registry": [{ "uuid": template, "name": "macos-bench", "latest": "v1",
                       "tags": { "v1": { "size": 20_000_000_000u64 } } }],
        "local": [{ "uuid": template, "tag": "v1" }],
    });
    std::fs::write(dir.join("seed.json"), seed.to_string()).expect("seed written");
    let link = dir.join("bin").join("anka");
    std::fs::create_dir_all(link.parent().expect("parent")).expect("bin dir");
    if !link.exists() {
        std::os::unix::fs::symlink(bin, &link).expect("anka symlink");
    }
    let wrapper = dir.join("anka");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nFAKE_ANKA_HOME='{}' exec '{}' \"$@\"\n",
            dir.display(),
            link.display()
        ),
    )
    .expect("wrapper written");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    wrapper
}

/// Milliseconds since the epoch of a log line's RFC 3339 `"timestamp"` (UTC, `Z`).
pub fn log_timestamp_ms(line: &str) -> Option<u64> {
    let i = line.find("\"timestamp\":\"")? + 13;
    let ts = line.get(i..i + 23)?; // 2026-11-23T15:08:55.123
    let n = |a: usize, b: usize| ts.get(a..b)?.parse::<i64>().ok();
    let (y, mo, d) = (n(0, 4)?, n(5, 7)?, n(8, 10)?);
    let (h, mi, s, ms) = (n(11, 13)?, n(14, 16)?, n(17, 19)?, n(20, 23)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from((((days * 24 + h) * 60 + mi) * 60 + s) * 1000 + ms).ok()
}

/// A histogram of 1 ..= 10 minutes in µs (or ms), 3 significant digits.
pub fn histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

/// Records `v`, clamped into the histogram's bounds.
pub trait RecordClamped {
    fn record_clamped(&mut self, v: u64);
}

impl RecordClamped for hdrhistogram::Histogram<u64> {
    fn record_clamped(&mut self, v: u64) {
        let v = v.clamp(self.low(), self.high());
        self.record(v).expect("value within bounds");
    }
}

/// p50 / p99 / max of a histogram in its unit.
pub fn quantiles(h: &hdrhistogram::Histogram<u64>) -> (u64, u64, u64) {
    (h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max())
}

/// Now, as the stores take it.
pub fn now() -> anklet_core::time::Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    anklet_core::time::Timestamp::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}
