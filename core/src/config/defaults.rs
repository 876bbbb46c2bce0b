//! Built-in defaults, in one place so the model's effective-value methods, the rendered
//! settings and `docs/configuration.md` cannot drift apart.
//!
//! Values marked "Anklet" are Anklet's own defaults; the others belong to keys anklet-rs adds.

use super::model::RunnerRegistration;

/// `work_dir` when unset (Anklet: parsed, never read).
pub const WORK_DIR: &str = "./";
/// `plugins_path` when unset (Anklet); handler scripts live under `<plugins_path>/handlers/github/`.
pub const PLUGINS_PATH: &str = "~/.config/anklet/plugins";

/// The embedded store file, used when no database is configured (ours).
pub const STORE_PATH: &str = "~/.config/anklet/queue.redb";

/// GitHub's REST API; GitHub Enterprise Server and the test emulator set another (ours).
pub const GITHUB_API_URL: &str = "https://api.github.com";

/// The `anka` executable (ours: Anklet always ran `anka` from PATH).
pub const ANKA_PATH: &str = "anka";
/// First port tried for the metrics server when `metrics.port` is unset (Anklet probes upwards).
pub const METRICS_PORT: u16 = 8080;
/// Aggregator loop sleep in seconds when `metrics.sleep_interval` is unset or 0
/// (Anklet has no default and spins; we never busy-loop).
pub const METRICS_SLEEP_INTERVAL_SECONDS: u64 = 10;

/// Redis port when a database `url` is set without `port` (Anklet would dial port 0).
pub const DATABASE_PORT: u16 = 6379;
/// Redis database index when unset (Anklet).
pub const DATABASE_INDEX: u32 = 0;
/// Retries of a failed Redis operation when unset (Anklet's client default).
pub const DATABASE_MAX_RETRIES: u32 = 5;
/// Base delay between Redis retries, in milliseconds (Anklet's client default).
pub const DATABASE_RETRY_DELAY_MS: u64 = 1000;
/// Multiplier applied to the retry delay (Anklet's client default).
pub const DATABASE_RETRY_BACKOFF_FACTOR: f64 = 2.0;

/// Seconds between two runs of a plugin's loop (Anklet: 0 = no sleep).
pub const SLEEP_INTERVAL_SECONDS: u64 = 0;
/// Seconds a started runner has to show up as `in_progress` (Anklet, when <= 0).
pub const REGISTRATION_TIMEOUT_SECONDS: u64 = 80;
/// Percentage of the disk kept free when pulling templates (Anklet, when 0).
pub const TEMPLATE_DISK_BUFFER_PERCENT: f64 = 10.0;
/// Times a job is retried before it is given up (Anklet, when 0).
pub const JOB_RETRY_ATTEMPTS: u32 = 5;
/// Hours of webhook deliveries a receiver looks back over at start-up (Anklet, when 0).
pub const REDELIVER_HOURS: u64 = 24;

/// Seconds between two recovery cycles of a receiver (ours: Anklet redelivers once, at start).
pub const REDELIVER_INTERVAL_SECONDS: u64 = 300;

/// Seconds a job must have been queued before a receiver's recovery asks GitHub whether it is
/// still queued (ours: a fresh job surely is).
pub const RECONCILE_AFTER_SECONDS: u64 = 120;

/// VMs one handler may run at once; Apple's macOS licence allows two per host.
pub const MAX_VMS: u32 = 2;
/// How a handler registers its runner: JIT configs avoid registration tokens in argv.
pub const RUNNER_REGISTRATION: RunnerRegistration = RunnerRegistration::Jit;
/// Upper bound for one `anka registry pull`, in seconds.
pub const PULL_TIMEOUT_SECONDS: u64 = 3600;
/// Pull attempts before a job is handed back to the queue.
pub const PULL_ATTEMPTS: u32 = 3;
/// Upper bound for `anka clone`, in seconds.
pub const CLONE_TIMEOUT_SECONDS: u64 = 600;
/// Upper bound for `anka start`, in seconds.
pub const START_TIMEOUT_SECONDS: u64 = 300;
/// Upper bound for installing, registering and starting the runner in the VM, in seconds.
pub const START_RUNNER_TIMEOUT_SECONDS: u64 = 300;
/// Upper bound for `anka delete`, in seconds.
pub const DELETE_TIMEOUT_SECONDS: u64 = 300;
/// Upper bound for one GitHub API call, in seconds.
pub const GITHUB_TIMEOUT_SECONDS: u64 = 30;
/// Upper bound for one Redis operation, in seconds.
pub const STORE_TIMEOUT_SECONDS: u64 = 10;
/// Longest a job may hold a VM before it is cancelled, in seconds (6 h, like Anklet's hard limit).
pub const JOB_MAX_LIFETIME_SECONDS: u64 = 21_600;
/// Seconds between GitHub API checks of a running job's status.
pub const JOB_POLL_INTERVAL_SECONDS: u64 = 120;
/// Seconds between checks that a job's VM is still running.
pub const VM_HEALTH_INTERVAL_SECONDS: u64 = 30;
/// Seconds a claim on a job stays valid without renewal.
pub const LEASE_SECONDS: u64 = 60;
/// Fresh VMs tried for one job before it goes back to the queue.
pub const FRESH_VM_ATTEMPTS: u32 = 2;
