//! The typed config model.
//!
//! Every key is an `Option` holding what the user set (in the file or the environment), so
//! "unset" and "set to the default" stay distinguishable for the rendered settings and for
//! global-to-plugin inheritance. Methods on the types give effective values with defaults
//! applied; code that runs plugins should call those, never read the `Option`s and guess.

use std::collections::BTreeMap;
use std::time::Duration;

use super::defaults;
use crate::secret::Secret;

/// Where a value came from, so diagnostics and the rendered settings can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Set in the config file at this 1-based line and column.
    File {
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
    },
    /// Set by this environment variable.
    Env {
        /// Variable name, e.g. `ANKLET_GLOBAL_TOKEN` or `RUNNER1_SLEEP_INTERVAL`.
        var: String,
    },
    /// Copied from this global key (e.g. `global_token`) because the plugin left it unset.
    Global {
        /// The global key's path, e.g. `global_database_url`.
        key: String,
    },
}

/// The two plugin kinds Anklet supports; anything else is rejected at load time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginKind {
    /// `plugin: github`: takes jobs from the queue and runs them in Anka VMs (macOS only).
    Github,
    /// `plugin: github_receiver`: receives GitHub webhooks and fills the queue.
    GithubReceiver,
}

impl PluginKind {
    /// The spelling used in `config.yml`.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Github => "github",
            PluginKind::GithubReceiver => "github_receiver",
        }
    }

    /// Parses the `plugin:` value exactly as Anklet does (case-sensitive).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "github" => Some(PluginKind::Github),
            "github_receiver" => Some(PluginKind::GithubReceiver),
            _ => None,
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a handler registers the runner inside the VM (`runner_registration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunnerRegistration {
    /// Ask GitHub for a just-in-time runner config: one API call, no token on the VM's argv.
    Jit,
    /// Anklet's way: a registration token passed to `config.sh`.
    Token,
}

impl RunnerRegistration {
    /// The spelling used in `config.yml`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunnerRegistration::Jit => "jit",
            RunnerRegistration::Token => "token",
        }
    }

    /// Parses a config or env value, ignoring ASCII case so `JIT` from an env var works.
    pub fn parse(value: &str) -> Option<Self> {
        if value.eq_ignore_ascii_case("jit") {
            Some(RunnerRegistration::Jit)
        } else if value.eq_ignore_ascii_case("token") {
            Some(RunnerRegistration::Token)
        } else {
            None
        }
    }
}

/// Redis connection settings as written in the file (per plugin, `metrics.database`, or the
/// flat `global_database_*` keys, which share this shape).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Database {
    /// Host name or address; no database is used while this is unset or empty.
    pub url: Option<String>,
    /// TCP port.
    pub port: Option<u16>,
    /// ACL user name.
    pub user: Option<String>,
    /// Password; never printed.
    pub password: Option<Secret>,
    /// Redis database index (ignored in cluster mode).
    pub database: Option<u32>,
    /// Retries of a failed operation.
    pub max_retries: Option<u32>,
    /// Base delay between retries in milliseconds.
    pub retry_delay: Option<u64>,
    /// Multiplier applied to the retry delay.
    pub retry_backoff_factor: Option<f64>,
    /// Use a Redis Cluster client seeded with `url:port`.
    pub cluster_mode: Option<bool>,
    /// Connect with TLS.
    pub tls_enabled: Option<bool>,
    /// Skip TLS certificate verification.
    pub tls_insecure: Option<bool>,
    /// Legacy `enabled` flag from early Anklet; accepted and ignored.
    pub enabled: Option<bool>,
}

/// Effective Redis settings with defaults applied, for the code that opens connections.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseSettings {
    /// Host name or address (never empty).
    pub url: String,
    /// TCP port.
    pub port: u16,
    /// ACL user name (empty = default user).
    pub user: String,
    /// Password (empty = none).
    pub password: Secret,
    /// Database index.
    pub database: u32,
    /// Retries of a failed operation.
    pub max_retries: u32,
    /// Base delay between retries.
    pub retry_delay: Duration,
    /// Multiplier applied to the retry delay.
    pub retry_backoff_factor: f64,
    /// Use a cluster client.
    pub cluster_mode: bool,
    /// Connect with TLS.
    pub tls_enabled: bool,
    /// Skip certificate verification.
    pub tls_insecure: bool,
}

impl Database {
    /// The settings to connect with, or `None` when no `url` is set (no database).
    pub fn settings(&self) -> Option<DatabaseSettings> {
        let url = non_empty(&self.url)?;
        Some(DatabaseSettings {
            url: url.to_owned(),
            port: self.port.unwrap_or(defaults::DATABASE_PORT),
            user: self.user.clone().unwrap_or_default(),
            password: self.password.clone().unwrap_or_default(),
            database: self.database.unwrap_or(defaults::DATABASE_INDEX),
            max_retries: self.max_retries.unwrap_or(defaults::DATABASE_MAX_RETRIES),
            retry_delay: Duration::from_millis(
                self.retry_delay
                    .unwrap_or(defaults::DATABASE_RETRY_DELAY_MS),
            ),
            retry_backoff_factor: self
                .retry_backoff_factor
                .unwrap_or(defaults::DATABASE_RETRY_BACKOFF_FACTOR),
            cluster_mode: self.cluster_mode.unwrap_or(false),
            tls_enabled: self.tls_enabled.unwrap_or(false),
            tls_insecure: self.tls_insecure.unwrap_or(false),
        })
    }
}

/// `log:` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogConfig {
    /// Directory for log files; unset or empty = stdout only. Must exist.
    pub file_dir: Option<String>,
    /// Write each plugin's log to `<file_dir>anklet-<name>.log` instead of stdout.
    pub split_by_plugin: Option<bool>,
}

/// `metrics:` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricsConfig {
    /// Run as the metrics aggregator (no plugins run).
    pub aggregator: Option<bool>,
    /// Port of the metrics server (a string in Anklet's schema).
    pub port: Option<String>,
    /// Aggregator loop sleep in seconds.
    pub sleep_interval: Option<u64>,
    /// Legacy list of per-host metrics URLs; unused.
    pub metrics_urls: Option<Vec<String>>,
    /// Aggregator database, used when `global_database_*` is unset.
    pub database: Database,
}

impl MetricsConfig {
    /// Whether this process is an aggregator.
    pub fn is_aggregator(&self) -> bool {
        self.aggregator.unwrap_or(false)
    }

    /// The configured port, or `None` to probe upwards from 8080 like Anklet.
    /// Validation guarantees a set port is a number from 1 to 65535.
    pub fn port_number(&self) -> Option<u16> {
        non_empty(&self.port).and_then(|p| p.trim().parse().ok())
    }

    /// Aggregator loop sleep; 0 or unset means the default, never a busy loop.
    pub fn sleep_interval(&self) -> Duration {
        Duration::from_secs(match self.sleep_interval {
            Some(0) | None => defaults::METRICS_SLEEP_INTERVAL_SECONDS,
            Some(s) => s,
        })
    }
}

/// `workflows:` of a handler (parsed for compatibility; Anklet never used it either).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Workflows {
    /// Workflow names to include.
    pub include: Option<Vec<String>>,
    /// Workflow names to exclude.
    pub exclude: Option<Vec<String>>,
}

/// One entry of `plugins:`, after env overrides and global inheritance.
///
/// Handler-only and receiver-only keys live side by side as in Anklet; load-time validation
/// warns when a key does not apply to the entry's kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Plugin {
    /// Unique name (no spaces); keys Redis, so it must be unique across all hosts.
    pub name: String,
    /// `plugin:` kind.
    pub kind: PluginKind,
    /// Seconds to sleep between runs.
    pub sleep_interval: Option<u64>,
    /// Organisation or user login.
    pub owner: Option<String>,
    /// Repository name (requires `owner`).
    pub repo: Option<String>,
    /// Enterprise slug (excludes `owner`).
    pub enterprise: Option<String>,
    /// Overrides the queue namespace so several owners can share a queue.
    pub queue_name: Option<String>,
    /// Per-plugin Redis settings (after `global_database_*` were applied).
    pub database: Database,
    /// Personal access token.
    pub token: Option<Secret>,
    /// GitHub App private key: a file path, or the PEM text itself.
    pub private_key: Option<Secret>,
    /// GitHub App id.
    pub app_id: Option<u64>,
    /// `github_api_url`: GitHub's REST API base (GitHub Enterprise Server, or the emulator in
    /// tests and the demo).
    pub github_api_url: Option<String>,
    /// GitHub App installation id; 0 or unset = look it up.
    pub installation_id: Option<u64>,

    /// Handler: Anka registry URL for pulls.
    pub registry_url: Option<String>,
    /// Handler: never pull templates.
    pub skip_pull: Option<bool>,
    /// Handler: runner group passed to the runner's registration.
    pub runner_group: Option<String>,
    /// Handler: seconds a runner has to pick the job up; 0 = default.
    pub registration_timeout_seconds: Option<u64>,
    /// Handler: percent of disk kept free when pulling; 0 = default.
    pub template_disk_buffer: Option<f64>,
    /// Handler: retries of a job before giving up; 0 = default.
    pub job_retry_attempts: Option<u32>,
    /// Handler: skip the CPU/RAM admission check.
    pub skip_cpu_and_memory_resource_checks: Option<bool>,
    /// Handler: `host_path[:guest_name]` mounts (globals first, then the plugin's own).
    pub host_to_guest_folder_mounts: Option<Vec<String>>,
    /// Handler: workflow filters (unused).
    pub workflows: Workflows,
    /// Handler: VMs this handler may run at once.
    pub max_vms: Option<u32>,
    /// Handler: how runners are registered.
    pub runner_registration: Option<RunnerRegistration>,
    /// Handler: pull timeout in seconds.
    pub pull_timeout_seconds: Option<u64>,
    /// Handler: pull attempts per job.
    pub pull_attempts: Option<u32>,
    /// Handler: clone timeout in seconds.
    pub clone_timeout_seconds: Option<u64>,
    /// Handler: VM start timeout in seconds.
    pub start_timeout_seconds: Option<u64>,
    /// Handler: runner install+register+start timeout in seconds.
    pub start_runner_timeout_seconds: Option<u64>,
    /// Handler: VM delete timeout in seconds.
    pub delete_timeout_seconds: Option<u64>,
    /// Handler: GitHub API call timeout in seconds.
    pub github_timeout_seconds: Option<u64>,
    /// Handler: Redis operation timeout in seconds.
    pub store_timeout_seconds: Option<u64>,
    /// Handler: longest a job may run, in seconds.
    pub job_max_lifetime_seconds: Option<u64>,
    /// Handler: seconds between job status polls.
    pub job_poll_interval_seconds: Option<u64>,
    /// Handler: seconds between VM health checks.
    pub vm_health_interval_seconds: Option<u64>,
    /// Handler: job claim lease in seconds.
    pub lease_seconds: Option<u64>,
    /// Handler: fresh VMs tried per job.
    pub fresh_vm_attempts: Option<u32>,
    /// `anka_path`: the `anka` executable a handler runs.
    pub anka_path: Option<String>,

    /// Receiver: HTTP listen port (a string in Anklet's schema).
    pub port: Option<String>,
    /// Receiver: webhook secret.
    pub secret: Option<Secret>,
    /// Receiver: webhook id, needed to redeliver missed hooks.
    pub hook_id: Option<u64>,
    /// Receiver: skip redelivery at start-up.
    pub skip_redeliver: Option<bool>,
    /// Receiver: hours of deliveries to look back over; 0 = default.
    pub redeliver_hours: Option<u64>,
    /// `redeliver_interval_seconds`: time between recovery cycles (ours).
    pub redeliver_interval_seconds: Option<u64>,
    /// `reconcile_after_seconds`: how long a job stays queued before recovery checks it
    /// against GitHub's jobs API (ours).
    pub reconcile_after_seconds: Option<u64>,
}

/// Which GitHub object a plugin serves, derived from `enterprise`/`owner`/`repo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// `enterprise` is set.
    Enterprise(&'a str),
    /// `owner` and `repo` are set.
    Repository {
        /// Owner login.
        owner: &'a str,
        /// Repository name.
        repo: &'a str,
    },
    /// Only `owner` is set.
    Organization(&'a str),
}

impl Scope<'_> {
    /// The URL runners register against (`config.sh --url`).
    pub fn registration_url(&self) -> String {
        match self {
            Scope::Enterprise(e) => format!("https://github.com/enterprises/{e}"),
            Scope::Repository { owner, repo } => format!("https://github.com/{owner}/{repo}"),
            Scope::Organization(o) => format!("https://github.com/{o}"),
        }
    }
}

fn secs(value: Option<u64>, default: u64) -> Duration {
    Duration::from_secs(value.unwrap_or(default))
}

fn secs_zero_default(value: Option<u64>, default: u64) -> Duration {
    Duration::from_secs(match value {
        Some(0) | None => default,
        Some(v) => v,
    })
}

pub(crate) fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

impl Plugin {
    /// A plugin with only its identity set, for builders and tests (`..Plugin::new(..)`).
    pub fn new(name: impl Into<String>, kind: PluginKind) -> Self {
        Plugin {
            name: name.into(),
            kind,
            sleep_interval: None,
            owner: None,
            repo: None,
            enterprise: None,
            queue_name: None,
            database: Database::default(),
            token: None,
            private_key: None,
            app_id: None,
            installation_id: None,
            registry_url: None,
            skip_pull: None,
            runner_group: None,
            registration_timeout_seconds: None,
            template_disk_buffer: None,
            job_retry_attempts: None,
            skip_cpu_and_memory_resource_checks: None,
            host_to_guest_folder_mounts: None,
            workflows: Workflows::default(),
            max_vms: None,
            runner_registration: None,
            pull_timeout_seconds: None,
            pull_attempts: None,
            clone_timeout_seconds: None,
            start_timeout_seconds: None,
            start_runner_timeout_seconds: None,
            delete_timeout_seconds: None,
            github_timeout_seconds: None,
            store_timeout_seconds: None,
            job_max_lifetime_seconds: None,
            job_poll_interval_seconds: None,
            vm_health_interval_seconds: None,
            lease_seconds: None,
            fresh_vm_attempts: None,
            anka_path: None,
            github_api_url: None,
            port: None,
            secret: None,
            hook_id: None,
            skip_redeliver: None,
            redeliver_hours: None,
            redeliver_interval_seconds: None,
            reconcile_after_seconds: None,
        }
    }

    /// Whether this entry is a handler (`plugin: github`).
    pub fn is_handler(&self) -> bool {
        self.kind == PluginKind::Github
    }

    /// Whether this entry is a webhook receiver (`plugin: github_receiver`).
    pub fn is_receiver(&self) -> bool {
        self.kind == PluginKind::GithubReceiver
    }

    /// The GitHub scope; `None` only for configs that skipped validation.
    pub fn scope(&self) -> Option<Scope<'_>> {
        if let Some(e) = non_empty(&self.enterprise) {
            return Some(Scope::Enterprise(e));
        }
        let owner = non_empty(&self.owner)?;
        Some(match non_empty(&self.repo) {
            Some(repo) => Scope::Repository { owner, repo },
            None => Scope::Organization(owner),
        })
    }

    /// Queue namespace `Q` in `anklet/jobs/github/queued/{Q}`: queue_name, else enterprise, else owner.
    pub fn queue_owner(&self) -> &str {
        non_empty(&self.queue_name)
            .or_else(|| non_empty(&self.enterprise))
            .or_else(|| non_empty(&self.owner))
            .unwrap_or("")
    }

    /// Metrics key ending `(owner||enterprise)/name`, or just `name` (ignores queue_name, like Anklet).
    pub fn metrics_key_ending(&self) -> String {
        match non_empty(&self.owner).or_else(|| non_empty(&self.enterprise)) {
            Some(o) => format!("{o}/{}", self.name),
            None => self.name.clone(),
        }
    }

    /// Effective Redis settings, or `None` without a database url.
    pub fn database_settings(&self) -> Option<DatabaseSettings> {
        self.database.settings()
    }

    /// Sleep between two runs of the plugin loop.
    pub fn sleep_between_runs(&self) -> Duration {
        secs(self.sleep_interval, defaults::SLEEP_INTERVAL_SECONDS)
    }

    /// Never pull templates.
    pub fn skip_pull(&self) -> bool {
        self.skip_pull.unwrap_or(false)
    }

    /// Time a started runner has to pick up its job (`registration_timeout_seconds`).
    pub fn registration_timeout(&self) -> Duration {
        secs_zero_default(
            self.registration_timeout_seconds,
            defaults::REGISTRATION_TIMEOUT_SECONDS,
        )
    }

    /// Percent of disk to keep free when pulling (`template_disk_buffer`).
    pub fn template_disk_buffer_percent(&self) -> f64 {
        match self.template_disk_buffer {
            Some(v) if v != 0.0 => v,
            _ => defaults::TEMPLATE_DISK_BUFFER_PERCENT,
        }
    }

    /// Retries of a job before it is given up (`job_retry_attempts`).
    pub fn job_retry_attempts(&self) -> u32 {
        match self.job_retry_attempts {
            Some(0) | None => defaults::JOB_RETRY_ATTEMPTS,
            Some(v) => v,
        }
    }

    /// Skip the CPU/RAM admission check.
    pub fn skip_resource_checks(&self) -> bool {
        self.skip_cpu_and_memory_resource_checks.unwrap_or(false)
    }

    /// Host-to-guest mounts (`host_path[:guest_name]`).
    pub fn mounts(&self) -> &[String] {
        self.host_to_guest_folder_mounts.as_deref().unwrap_or(&[])
    }

    /// VMs this handler may run at once (`max_vms`).
    pub fn max_vms(&self) -> u32 {
        self.max_vms.unwrap_or(defaults::MAX_VMS)
    }

    /// How runners are registered (`runner_registration`).
    pub fn runner_registration(&self) -> RunnerRegistration {
        self.runner_registration
            .unwrap_or(defaults::RUNNER_REGISTRATION)
    }

    /// Upper bound for one pull (`pull_timeout_seconds`).
    pub fn pull_timeout(&self) -> Duration {
        secs(self.pull_timeout_seconds, defaults::PULL_TIMEOUT_SECONDS)
    }

    /// Pull attempts per job (`pull_attempts`).
    pub fn pull_attempts(&self) -> u32 {
        self.pull_attempts.unwrap_or(defaults::PULL_ATTEMPTS)
    }

    /// Upper bound for `anka clone` (`clone_timeout_seconds`).
    pub fn clone_timeout(&self) -> Duration {
        secs(self.clone_timeout_seconds, defaults::CLONE_TIMEOUT_SECONDS)
    }

    /// Upper bound for `anka start` (`start_timeout_seconds`).
    pub fn start_timeout(&self) -> Duration {
        secs(self.start_timeout_seconds, defaults::START_TIMEOUT_SECONDS)
    }

    /// Upper bound for getting the runner going in the VM (`start_runner_timeout_seconds`).
    pub fn start_runner_timeout(&self) -> Duration {
        secs(
            self.start_runner_timeout_seconds,
            defaults::START_RUNNER_TIMEOUT_SECONDS,
        )
    }

    /// Upper bound for `anka delete` (`delete_timeout_seconds`).
    pub fn delete_timeout(&self) -> Duration {
        secs(
            self.delete_timeout_seconds,
            defaults::DELETE_TIMEOUT_SECONDS,
        )
    }

    /// Upper bound for one GitHub API call (`github_timeout_seconds`).
    pub fn github_timeout(&self) -> Duration {
        secs(
            self.github_timeout_seconds,
            defaults::GITHUB_TIMEOUT_SECONDS,
        )
    }

    /// Upper bound for one Redis operation (`store_timeout_seconds`).
    pub fn store_timeout(&self) -> Duration {
        secs(self.store_timeout_seconds, defaults::STORE_TIMEOUT_SECONDS)
    }

    /// Longest a job may hold a VM (`job_max_lifetime_seconds`).
    pub fn job_max_lifetime(&self) -> Duration {
        secs(
            self.job_max_lifetime_seconds,
            defaults::JOB_MAX_LIFETIME_SECONDS,
        )
    }

    /// Interval of GitHub job status polls (`job_poll_interval_seconds`).
    pub fn job_poll_interval(&self) -> Duration {
        secs(
            self.job_poll_interval_seconds,
            defaults::JOB_POLL_INTERVAL_SECONDS,
        )
    }

    /// Interval of VM health checks (`vm_health_interval_seconds`).
    pub fn vm_health_interval(&self) -> Duration {
        secs(
            self.vm_health_interval_seconds,
            defaults::VM_HEALTH_INTERVAL_SECONDS,
        )
    }

    /// Lifetime of a job claim without renewal (`lease_seconds`).
    pub fn lease(&self) -> Duration {
        secs(self.lease_seconds, defaults::LEASE_SECONDS)
    }

    /// GitHub's REST API base without a trailing slash (`github_api_url`).
    pub fn github_api_url(&self) -> &str {
        non_empty(&self.github_api_url)
            .unwrap_or(defaults::GITHUB_API_URL)
            .trim_end_matches('/')
    }

    /// The `anka` executable (`anka_path`).
    pub fn anka_path(&self) -> &str {
        non_empty(&self.anka_path).unwrap_or(defaults::ANKA_PATH)
    }

    /// Fresh VMs tried per job (`fresh_vm_attempts`).
    pub fn fresh_vm_attempts(&self) -> u32 {
        self.fresh_vm_attempts
            .unwrap_or(defaults::FRESH_VM_ATTEMPTS)
    }

    /// Receiver listen port; validation guarantees it is set and numeric for receivers.
    pub fn port_number(&self) -> Option<u16> {
        non_empty(&self.port).and_then(|p| p.trim().parse().ok())
    }

    /// Skip redelivery of missed hooks (always true for enterprise receivers, like Anklet).
    pub fn skip_redeliver(&self) -> bool {
        self.skip_redeliver.unwrap_or(false) || non_empty(&self.enterprise).is_some()
    }

    /// Time between two recovery cycles (`redeliver_interval_seconds`).
    pub fn redeliver_interval(&self) -> Duration {
        Duration::from_secs(match self.redeliver_interval_seconds {
            Some(0) | None => defaults::REDELIVER_INTERVAL_SECONDS,
            Some(s) => s,
        })
    }

    /// How long a job stays queued before recovery reconciles it with GitHub
    /// (`reconcile_after_seconds`).
    pub fn reconcile_after(&self) -> Duration {
        Duration::from_secs(match self.reconcile_after_seconds {
            Some(0) | None => defaults::RECONCILE_AFTER_SECONDS,
            Some(s) => s,
        })
    }

    /// How far back missed deliveries are redelivered (`redeliver_hours`).
    pub fn redeliver_window(&self) -> Duration {
        Duration::from_secs(
            match self.redeliver_hours {
                Some(0) | None => defaults::REDELIVER_HOURS,
                Some(h) => h,
            }
            .saturating_mul(3600),
        )
    }
}

/// The whole `config.yml` after env overrides and global inheritance.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// Name of the source the config was read from, used in every message.
    pub source_name: String,
    /// `log:` section.
    pub log: LogConfig,
    /// Parsed, unused (Anklet never daemonises either).
    pub pid_file_dir: Option<String>,
    /// Legacy, unused; `log.file_dir` is the key that works.
    pub log_file_dir: Option<String>,
    /// Parsed, unused.
    pub work_dir: Option<String>,
    /// Where handler scripts live.
    pub plugins_path: Option<String>,
    /// `store_path`: the embedded store file, used when no database is configured (ours).
    pub store_path: Option<String>,
    /// `metrics:` section.
    pub metrics: MetricsConfig,
    /// Private key copied into plugins that have none.
    pub global_private_key: Option<Secret>,
    /// Token copied into plugins that have none.
    pub global_token: Option<Secret>,
    /// The flat `global_database_*` keys.
    pub global_database: Database,
    /// Webhook secret for receivers whose own `secret` is empty.
    pub global_receiver_secret: Option<Secret>,
    /// `template_disk_buffer` for handlers that set none.
    pub global_template_disk_buffer: Option<f64>,
    /// When true, every handler skips the CPU/RAM admission check.
    pub global_skip_cpu_and_memory_resource_checks: Option<bool>,
    /// Mounts added to every handler, before the plugin's own.
    pub global_host_to_guest_folder_mounts: Option<Vec<String>>,
    /// Plugin entries in file order (Anklet starts them in this order).
    pub plugins: Vec<Plugin>,
    /// Where each set value came from, keyed by path (`plugins[1].hook_id`).
    pub(crate) origins: BTreeMap<String, Origin>,
}

impl Config {
    /// The handler plugins, in file order: each is a host of the fleet, so the metrics
    /// heartbeat and the daemons' start-up walk exactly these.
    pub fn handlers(&self) -> impl Iterator<Item = &Plugin> {
        self.plugins.iter().filter(|p| p.is_handler())
    }

    /// Where the value at `path` (e.g. `plugins[0].token`, `global_database_url`) came from;
    /// `None` means it was not set (a default applies, if any).
    pub fn origin(&self, path: &str) -> Option<&Origin> {
        self.origins.get(path)
    }

    /// Every recorded origin, in path order, for tools that list them.
    pub fn origins(&self) -> impl Iterator<Item = (&str, &Origin)> {
        self.origins.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The plugin with this name.
    pub fn plugin(&self, name: &str) -> Option<&Plugin> {
        self.plugins.iter().find(|p| p.name == name)
    }

    /// `work_dir` with its default.
    pub fn work_dir(&self) -> &str {
        non_empty(&self.work_dir).unwrap_or(defaults::WORK_DIR)
    }

    /// `store_path` with its default (may start with `~/`; the runtime expands it).
    pub fn store_path(&self) -> &str {
        non_empty(&self.store_path).unwrap_or(defaults::STORE_PATH)
    }

    /// `plugins_path` with its default (may start with `~/`; the runtime expands it).
    pub fn plugins_path(&self) -> &str {
        non_empty(&self.plugins_path).unwrap_or(defaults::PLUGINS_PATH)
    }

    /// Log directory, or `None` for stdout.
    pub fn log_dir(&self) -> Option<&str> {
        non_empty(&self.log.file_dir)
    }

    /// The aggregator's database: `global_database_*` field by field, else `metrics.database.*`.
    pub fn aggregator_database(&self) -> Database {
        let g = &self.global_database;
        let m = &self.metrics.database;
        Database {
            url: non_empty(&g.url)
                .map(str::to_owned)
                .or_else(|| m.url.clone()),
            port: g.port.or(m.port),
            user: g.user.clone().or_else(|| m.user.clone()),
            password: g.password.clone().or_else(|| m.password.clone()),
            database: g.database.or(m.database),
            max_retries: g.max_retries.or(m.max_retries),
            retry_delay: g.retry_delay.or(m.retry_delay),
            retry_backoff_factor: g.retry_backoff_factor.or(m.retry_backoff_factor),
            cluster_mode: g.cluster_mode.or(m.cluster_mode),
            tls_enabled: g.tls_enabled.or(m.tls_enabled),
            tls_insecure: g.tls_insecure.or(m.tls_insecure),
            enabled: None,
        }
    }
}
