//! One table per level (global keys, plugin keys) drives parsing, env overrides, rendering,
//! did-you-mean suggestions and the documented key list, so adding a key is one line and the
//! five cannot disagree.

use super::defaults as d;
use super::model::{Config, Plugin, RunnerRegistration};
use crate::secret::Secret;

/// Value type of a key; decides how YAML nodes and env strings are converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    Secret,
    Bool,
    U16,
    U32,
    U64,
    F64,
    List,
    Registration,
}

impl Kind {
    /// What a diagnostic says was expected.
    pub(crate) fn expected(self) -> &'static str {
        match self {
            Kind::Str | Kind::Secret => "a string",
            Kind::Bool => "a boolean (true or false)",
            Kind::U16 => "an integer from 0 to 65535",
            Kind::U32 | Kind::U64 => "a non-negative integer",
            Kind::F64 => "a number",
            Kind::List => "a list of strings",
            Kind::Registration => "one of `jit` or `token`",
        }
    }

    /// Type column of the key reference.
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            Kind::Str => "string",
            Kind::Secret => "string (secret)",
            Kind::Bool => "bool",
            Kind::U16 => "integer (0-65535)",
            Kind::U32 | Kind::U64 => "integer (>= 0)",
            Kind::F64 => "number",
            Kind::List => "list of strings",
            Kind::Registration => "`jit` | `token`",
        }
    }
}

/// Mutable access to one field, by kind.
pub(crate) enum SlotMut<'a> {
    Str(&'a mut Option<String>),
    Secret(&'a mut Option<Secret>),
    Bool(&'a mut Option<bool>),
    U16(&'a mut Option<u16>),
    U32(&'a mut Option<u32>),
    U64(&'a mut Option<u64>),
    F64(&'a mut Option<f64>),
    List(&'a mut Option<Vec<String>>),
    Registration(&'a mut Option<RunnerRegistration>),
}

/// Shared access to one field, by kind.
pub(crate) enum SlotRef<'a> {
    Str(&'a Option<String>),
    Secret(&'a Option<Secret>),
    Bool(&'a Option<bool>),
    U16(&'a Option<u16>),
    U32(&'a Option<u32>),
    U64(&'a Option<u64>),
    F64(&'a Option<f64>),
    List(&'a Option<Vec<String>>),
    Registration(&'a Option<RunnerRegistration>),
}

impl SlotRef<'_> {
    pub(crate) fn is_set(&self) -> bool {
        match self {
            SlotRef::Str(v) => v.is_some(),
            SlotRef::Secret(v) => v.is_some(),
            SlotRef::Bool(v) => v.is_some(),
            SlotRef::U16(v) => v.is_some(),
            SlotRef::U32(v) => v.is_some(),
            SlotRef::U64(v) => v.is_some(),
            SlotRef::F64(v) => v.is_some(),
            SlotRef::List(v) => v.is_some(),
            SlotRef::Registration(v) => v.is_some(),
        }
    }

    /// Whether the value is Go's zero value, which several Anklet keys treat as "use the default".
    pub(crate) fn is_zero(&self) -> bool {
        match self {
            SlotRef::U16(v) => **v == Some(0),
            SlotRef::U32(v) => **v == Some(0),
            SlotRef::U64(v) => **v == Some(0),
            SlotRef::F64(v) => **v == Some(0.0),
            _ => false,
        }
    }
}

/// Which plugin kinds a plugin key means something for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applies {
    All,
    Handler,
    Receiver,
}

impl Applies {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Applies::All => "all plugins",
            Applies::Handler => "`github` handlers",
            Applies::Receiver => "`github_receiver` receivers",
        }
    }
}

/// A key's default as shown in the rendered settings and the docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Dflt {
    None,
    Bool(bool),
    U64(u64),
    F64(f64),
    Str(&'static str),
    Registration(RunnerRegistration),
    /// Behaviour rather than a value (e.g. "stdout").
    Text(&'static str),
}

/// Which environment variable overrides a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EnvName {
    /// `ANKLET_<PATH>` for globals, `<PREFIX>_<PATH>` for plugins ('.' -> '_', upper case).
    Derived,
    /// A fixed name (Anklet's README spelling).
    Named(&'static str),
    /// No variable.
    None,
}

/// Extra meaning attached to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Note {
    None,
    /// Accepted and shown, does nothing (like in Anklet).
    Unused,
    /// Accepted, does nothing, and warned about with this message.
    Legacy(&'static str),
}

/// One key of one level.
pub(crate) struct KeySpec<T: 'static> {
    pub(crate) path: &'static str,
    pub(crate) kind: Kind,
    pub(crate) applies: Applies,
    pub(crate) default: Dflt,
    /// 0 means "use the default" (Anklet's Go zero-value semantics for this key).
    pub(crate) zero_is_default: bool,
    pub(crate) env: EnvName,
    pub(crate) note: Note,
    pub(crate) get: for<'a> fn(&'a T) -> SlotRef<'a>,
    pub(crate) get_mut: for<'a> fn(&'a mut T) -> SlotMut<'a>,
}

impl<T> KeySpec<T> {
    pub(crate) fn is_secret(&self) -> bool {
        self.kind == Kind::Secret
    }
}

/// A key with no field: accepted for old configs and warned about.
pub(crate) struct LegacyKey {
    pub(crate) path: &'static str,
    pub(crate) message: &'static str,
}

macro_rules! key {
    ($ty:ty, $path:expr, $kind:ident, $($field:ident).+ $(, $attr:ident = $val:expr)* $(,)?) => {{
        #[allow(unused_mut)]
        let mut spec: KeySpec<$ty> = KeySpec {
            path: $path,
            kind: Kind::$kind,
            applies: Applies::All,
            default: Dflt::None,
            zero_is_default: false,
            env: EnvName::Derived,
            note: Note::None,
            get: |c| SlotRef::$kind(&c.$($field).+),
            get_mut: |c| SlotMut::$kind(&mut c.$($field).+),
        };
        $( spec.$attr = $val; )*
        spec
    }};
}

const DB_ENABLED_LEGACY: &str = "`enabled` is a legacy key from early Anklet and is ignored: a database is used whenever `url` is set";

macro_rules! database_keys {
    ($ty:ty, $prefix:literal, $($field:ident).+) => {
        [
            key!($ty, concat!($prefix, "url"), Str, $($field).+.url),
            key!($ty, concat!($prefix, "port"), U16, $($field).+.port, default = Dflt::U64(d::DATABASE_PORT as u64)),
            key!($ty, concat!($prefix, "user"), Str, $($field).+.user),
            key!($ty, concat!($prefix, "password"), Secret, $($field).+.password),
            key!($ty, concat!($prefix, "database"), U32, $($field).+.database, default = Dflt::U64(d::DATABASE_INDEX as u64)),
            key!($ty, concat!($prefix, "max_retries"), U32, $($field).+.max_retries, default = Dflt::U64(d::DATABASE_MAX_RETRIES as u64)),
            key!($ty, concat!($prefix, "retry_delay"), U64, $($field).+.retry_delay, default = Dflt::U64(d::DATABASE_RETRY_DELAY_MS)),
            key!($ty, concat!($prefix, "retry_backoff_factor"), F64, $($field).+.retry_backoff_factor, default = Dflt::F64(d::DATABASE_RETRY_BACKOFF_FACTOR)),
            key!($ty, concat!($prefix, "cluster_mode"), Bool, $($field).+.cluster_mode, default = Dflt::Bool(false)),
            key!($ty, concat!($prefix, "tls_enabled"), Bool, $($field).+.tls_enabled, default = Dflt::Bool(false)),
            key!($ty, concat!($prefix, "tls_insecure"), Bool, $($field).+.tls_insecure, default = Dflt::Bool(false)),
        ]
    };
}

static GLOBAL_HEAD: &[KeySpec<Config>] = &[
    key!(
        Config,
        "log.file_dir",
        Str,
        log.file_dir,
        default = Dflt::Text("stdout")
    ),
    key!(
        Config,
        "log.split_by_plugin",
        Bool,
        log.split_by_plugin,
        default = Dflt::Bool(false)
    ),
    key!(
        Config,
        "pid_file_dir",
        Str,
        pid_file_dir,
        note = Note::Unused
    ),
    key!(
        Config,
        "log_file_dir",
        Str,
        log_file_dir,
        env = EnvName::None,
        note = Note::Legacy(
            "`log_file_dir` is a legacy key that does nothing; use `log.file_dir` (ANKLET_LOG_FILE_DIR sets that one)"
        )
    ),
    key!(
        Config,
        "work_dir",
        Str,
        work_dir,
        default = Dflt::Str(d::WORK_DIR),
        note = Note::Unused
    ),
    key!(
        Config,
        "plugins_path",
        Str,
        plugins_path,
        default = Dflt::Str(d::PLUGINS_PATH)
    ),
    key!(
        Config,
        "store_path",
        Str,
        store_path,
        default = Dflt::Str(d::STORE_PATH)
    ),
    key!(
        Config,
        "metrics.aggregator",
        Bool,
        metrics.aggregator,
        default = Dflt::Bool(false)
    ),
    key!(
        Config,
        "metrics.port",
        Str,
        metrics.port,
        default = Dflt::Text("first free port from 8080")
    ),
    key!(
        Config,
        "metrics.sleep_interval",
        U64,
        metrics.sleep_interval,
        default = Dflt::U64(d::METRICS_SLEEP_INTERVAL_SECONDS),
        zero_is_default = true
    ),
    key!(
        Config,
        "metrics.metrics_urls",
        List,
        metrics.metrics_urls,
        env = EnvName::Named("ANKLET_METRICS_URLS"),
        note = Note::Legacy(
            "`metrics_urls` is a legacy key that does nothing: the aggregator reads every host's metrics from the database"
        )
    ),
    key!(
        Config,
        "metrics.database.enabled",
        Bool,
        metrics.database.enabled,
        note = Note::Legacy(DB_ENABLED_LEGACY)
    ),
];

static METRICS_DB: &[KeySpec<Config>] =
    &database_keys!(Config, "metrics.database.", metrics.database);

static GLOBAL_CREDENTIALS: &[KeySpec<Config>] = &[
    key!(Config, "global_private_key", Secret, global_private_key),
    key!(Config, "global_token", Secret, global_token),
];

static GLOBAL_DB: &[KeySpec<Config>] = &database_keys!(Config, "global_database_", global_database);

static GLOBAL_TAIL: &[KeySpec<Config>] = &[
    key!(
        Config,
        "global_receiver_secret",
        Secret,
        global_receiver_secret
    ),
    key!(
        Config,
        "global_template_disk_buffer",
        F64,
        global_template_disk_buffer
    ),
    key!(
        Config,
        "global_skip_cpu_and_memory_resource_checks",
        Bool,
        global_skip_cpu_and_memory_resource_checks
    ),
    key!(
        Config,
        "global_host_to_guest_folder_mounts",
        List,
        global_host_to_guest_folder_mounts
    ),
];

static GLOBAL_GROUPS: &[&[KeySpec<Config>]] = &[
    GLOBAL_HEAD,
    METRICS_DB,
    GLOBAL_CREDENTIALS,
    GLOBAL_DB,
    GLOBAL_TAIL,
];

static PLUGIN_COMMON: &[KeySpec<Plugin>] = &[
    key!(
        Plugin,
        "sleep_interval",
        U64,
        sleep_interval,
        default = Dflt::U64(d::SLEEP_INTERVAL_SECONDS)
    ),
    key!(Plugin, "owner", Str, owner),
    key!(Plugin, "repo", Str, repo),
    key!(Plugin, "enterprise", Str, enterprise),
    key!(Plugin, "queue_name", Str, queue_name),
    key!(Plugin, "token", Secret, token),
    key!(Plugin, "private_key", Secret, private_key),
    key!(Plugin, "app_id", U64, app_id),
    key!(
        Plugin,
        "github_api_url",
        Str,
        github_api_url,
        default = Dflt::Str(d::GITHUB_API_URL)
    ),
    key!(
        Plugin,
        "installation_id",
        U64,
        installation_id,
        default = Dflt::Text("looked up")
    ),
];

static PLUGIN_DB: &[KeySpec<Plugin>] = &database_keys!(Plugin, "database.", database);

static PLUGIN_DB_LEGACY: &[KeySpec<Plugin>] = &[key!(
    Plugin,
    "database.enabled",
    Bool,
    database.enabled,
    note = Note::Legacy(DB_ENABLED_LEGACY)
)];

static PLUGIN_HANDLER: &[KeySpec<Plugin>] = &[
    key!(
        Plugin,
        "registry_url",
        Str,
        registry_url,
        applies = Applies::Handler,
        default = Dflt::Text("anka's default registry")
    ),
    key!(
        Plugin,
        "skip_pull",
        Bool,
        skip_pull,
        applies = Applies::Handler,
        default = Dflt::Bool(false)
    ),
    key!(
        Plugin,
        "runner_group",
        Str,
        runner_group,
        applies = Applies::Handler
    ),
    key!(
        Plugin,
        "registration_timeout_seconds",
        U64,
        registration_timeout_seconds,
        applies = Applies::Handler,
        default = Dflt::U64(d::REGISTRATION_TIMEOUT_SECONDS),
        zero_is_default = true
    ),
    key!(
        Plugin,
        "template_disk_buffer",
        F64,
        template_disk_buffer,
        applies = Applies::Handler,
        default = Dflt::F64(d::TEMPLATE_DISK_BUFFER_PERCENT),
        zero_is_default = true
    ),
    key!(
        Plugin,
        "job_retry_attempts",
        U32,
        job_retry_attempts,
        applies = Applies::Handler,
        default = Dflt::U64(d::JOB_RETRY_ATTEMPTS as u64),
        zero_is_default = true
    ),
    key!(
        Plugin,
        "skip_cpu_and_memory_resource_checks",
        Bool,
        skip_cpu_and_memory_resource_checks,
        applies = Applies::Handler,
        default = Dflt::Bool(false)
    ),
    key!(
        Plugin,
        "host_to_guest_folder_mounts",
        List,
        host_to_guest_folder_mounts,
        applies = Applies::Handler
    ),
    key!(
        Plugin,
        "workflows.include",
        List,
        workflows.include,
        applies = Applies::Handler,
        note = Note::Unused
    ),
    key!(
        Plugin,
        "workflows.exclude",
        List,
        workflows.exclude,
        applies = Applies::Handler,
        note = Note::Unused
    ),
    // Keys of ours.
    key!(
        Plugin,
        "max_vms",
        U32,
        max_vms,
        applies = Applies::Handler,
        default = Dflt::U64(d::MAX_VMS as u64)
    ),
    key!(
        Plugin,
        "runner_registration",
        Registration,
        runner_registration,
        applies = Applies::Handler,
        default = Dflt::Registration(d::RUNNER_REGISTRATION)
    ),
    key!(
        Plugin,
        "pull_timeout_seconds",
        U64,
        pull_timeout_seconds,
        applies = Applies::Handler,
        default = Dflt::U64(d::PULL_TIMEOUT_SECONDS)
    ),
    key!(
        Plugin,
        "pull_attempts",
        U32,
        pull_attempts,
        applies = Applies::Handler,
        default = Dflt::U64(d::PULL_ATTEMPTS as u64)
    ),
    key!(
        Plugin,
        "clone_timeout_seconds",
        U64,
        clone_timeout_seconds,
        applies = Applies::Handler,
        default = Dflt::U64(d::CLONE_TIMEOUT_SECONDS)
    ),
    key!(
        Plugin,
        "start_timeout_seconds",
        U64,
        start_timeout_seconds,
        applies = Applies::Handler,
        default = Dflt::U64(d::START_TIMEOUT_SECONDS)
    ),
    key!(
        Plugin,
        "start_runner_timeout_seconds",
        U64,
        start_runner_timeout_seconds,
        applies = Applies::Handler,
        default = Dflt::U64(d::START_RUNNER_TIMEOUT_SECONDS)
    ),
    key!(
        Plugin,
        "delete_timeout_seconds",
        U64,
        delete_timeout_seconds,
        applies = Applies::Handler,
        default = Dflt::U64(d::DELETE_TIMEOUT_SECONDS)
    ),
    key!(
        Plugin,
        "github_timeout_seconds",
        U64,
        github_timeout_seconds,
        applies = Applies::Handler,
        default = Dflt::U64(d::GITHUB_TIMEOUT_SECONDS)
    ),
    key!(
        Plugin,
        "store_timeout_seconds",
        U64,
        store_timeout_seconds,
        applies = Applies::Handler,
        default = Dflt::U64(d::STORE_TIMEOUT_SECONDS)
    ),
    key!(
        Plugin,
        "job_max_lifetime_seconds",
        U64,
        job_max_lifetime_seconds,
        applies = Applies::Handler,
        default = Dflt::U64(d::JOB_MAX_LIFETIME_SECONDS)
    ),
    key!(
        Plugin,
        "job_poll_interval_seconds",
        U64,
        job_poll_interval_seconds,
        applies = Applies::Handler,
        default = Dflt::U64(d::JOB_POLL_INTERVAL_SECONDS)
    ),
    key!(
        Plugin,
        "vm_health_interval_seconds",
        U64,
        vm_health_interval_seconds,
        applies = Applies::Handler,
        default = Dflt::U64(d::VM_HEALTH_INTERVAL_SECONDS)
    ),
    key!(
        Plugin,
        "lease_seconds",
        U64,
        lease_seconds,
        applies = Applies::Handler,
        default = Dflt::U64(d::LEASE_SECONDS)
    ),
    key!(
        Plugin,
        "fresh_vm_attempts",
        U32,
        fresh_vm_attempts,
        applies = Applies::Handler,
        default = Dflt::U64(d::FRESH_VM_ATTEMPTS as u64)
    ),
    key!(
        Plugin,
        "anka_path",
        Str,
        anka_path,
        applies = Applies::Handler,
        default = Dflt::Str(d::ANKA_PATH)
    ),
];

static PLUGIN_RECEIVER: &[KeySpec<Plugin>] = &[
    key!(Plugin, "port", Str, port, applies = Applies::Receiver),
    key!(
        Plugin,
        "secret",
        Secret,
        secret,
        applies = Applies::Receiver
    ),
    key!(Plugin, "hook_id", U64, hook_id, applies = Applies::Receiver),
    key!(
        Plugin,
        "skip_redeliver",
        Bool,
        skip_redeliver,
        applies = Applies::Receiver,
        default = Dflt::Bool(false)
    ),
    key!(
        Plugin,
        "redeliver_hours",
        U64,
        redeliver_hours,
        applies = Applies::Receiver,
        default = Dflt::U64(d::REDELIVER_HOURS),
        zero_is_default = true
    ),
    key!(
        Plugin,
        "redeliver_interval_seconds",
        U64,
        redeliver_interval_seconds,
        applies = Applies::Receiver,
        default = Dflt::U64(d::REDELIVER_INTERVAL_SECONDS),
        zero_is_default = true
    ),
    key!(
        Plugin,
        "reconcile_after_seconds",
        U64,
        reconcile_after_seconds,
        applies = Applies::Receiver,
        default = Dflt::U64(d::RECONCILE_AFTER_SECONDS),
        zero_is_default = true
    ),
];

static PLUGIN_GROUPS: &[&[KeySpec<Plugin>]] = &[
    PLUGIN_COMMON,
    PLUGIN_DB,
    PLUGIN_DB_LEGACY,
    PLUGIN_HANDLER,
    PLUGIN_RECEIVER,
];

/// Keys of a plugin entry that have no field: accepted from old configs, warned about.
pub(crate) static PLUGIN_LEGACY: &[LegacyKey] = &[LegacyKey {
    path: "registration",
    message: "`registration` is a legacy key from early Anklet and is ignored: the scope comes from `enterprise`, `owner` and `repo`",
}];

/// Plugin keys handled outside the table because they decide how the entry is read.
pub(crate) const PLUGIN_IDENTITY_KEYS: [&str; 2] = ["name", "plugin"];

/// Top-level keys handled outside the table.
pub(crate) const TOP_LIST_KEYS: [&str; 2] = ["plugins", "services"];

/// Every global key, in the order the rendered settings and the docs list them.
pub(crate) fn global_keys() -> impl Iterator<Item = &'static KeySpec<Config>> {
    GLOBAL_GROUPS.iter().flat_map(|g| g.iter())
}

/// Every plugin key, in the order the rendered settings and the docs list them.
pub(crate) fn plugin_keys() -> impl Iterator<Item = &'static KeySpec<Plugin>> {
    PLUGIN_GROUPS.iter().flat_map(|g| g.iter())
}

pub(crate) fn global_key(path: &str) -> Option<&'static KeySpec<Config>> {
    global_keys().find(|k| k.path == path)
}

pub(crate) fn plugin_key(path: &str) -> Option<&'static KeySpec<Plugin>> {
    plugin_keys().find(|k| k.path == path)
}

/// The env variable of a global key, if it has one.
pub(crate) fn global_env_name(spec: &KeySpec<Config>) -> Option<String> {
    match spec.env {
        EnvName::Derived => Some(format!("ANKLET_{}", env_suffix(spec.path))),
        EnvName::Named(n) => Some(n.to_owned()),
        EnvName::None => None,
    }
}

/// The env variable of a plugin key for a plugin whose env prefix is `prefix`.
pub(crate) fn plugin_env_name(spec: &KeySpec<Plugin>, prefix: &str) -> Option<String> {
    match spec.env {
        EnvName::Derived => Some(format!("{prefix}_{}", env_suffix(spec.path))),
        EnvName::Named(n) => Some(n.to_owned()),
        EnvName::None => None,
    }
}

/// `metrics.database.url` -> `METRICS_DATABASE_URL`.
pub(crate) fn env_suffix(path: &str) -> String {
    path.chars()
        .map(|c| match c {
            '.' | '-' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// Anklet's per-plugin env prefix: the name upper-cased, every character that is not an ASCII
/// letter, digit or `_` replaced by `_` (`github-handler-1` -> `GITHUB_HANDLER_1`).
pub fn env_prefix(plugin_name: &str) -> String {
    plugin_name
        .chars()
        .flat_map(char::to_uppercase)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Global env variables that are not a key's own: legacy names and process-level settings.
pub(crate) const LEGACY_DB_ENV: [(&str, &str); 5] = [
    ("ANKLET_DATABASE_URL", "global_database_url"),
    ("ANKLET_DATABASE_PORT", "global_database_port"),
    ("ANKLET_DATABASE_USER", "global_database_user"),
    ("ANKLET_DATABASE_PASSWORD", "global_database_password"),
    ("ANKLET_DATABASE_DATABASE", "global_database_database"),
];

/// Applied to every plugin's `job_retry_attempts` (Anklet's only env that targets all plugins).
pub(crate) const JOB_RETRY_ATTEMPTS_ENV: &str = "ANKLET_JOB_RETRY_ATTEMPTS";
/// Legacy switch, accepted and ignored.
pub(crate) const DATABASE_ENABLED_ENV: &str = "ANKLET_DATABASE_ENABLED";
/// Picks the file name under `~/.config/anklet/` (read by the CLI, not here).
pub const CONFIG_FILE_NAME_ENV: &str = "ANKLET_CONFIG_FILE_NAME";

/// One row of the key reference (`docs/configuration.md` is checked against it in tests).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyInfo {
    /// Path as written in YAML; plugin keys start with `plugins[].`.
    pub path: String,
    /// Value type.
    pub type_name: &'static str,
    /// Default, if the key has one.
    pub default: Option<String>,
    /// Environment variable; plugin keys use `<PREFIX>` for the plugin's env prefix.
    pub env: Option<String>,
    /// Which entries the key applies to.
    pub applies_to: &'static str,
    /// Accepted but does nothing (Anklet parsed it without using it, or it is legacy).
    pub unused: bool,
}

/// Every key anklet-rs accepts, for docs and tooling.
pub fn key_reference() -> Vec<KeyInfo> {
    let mut out = Vec::new();
    for k in global_keys() {
        out.push(KeyInfo {
            path: k.path.to_owned(),
            type_name: k.kind.type_name(),
            default: default_text(k.default),
            env: global_env_name(k),
            applies_to: "global",
            unused: k.note != Note::None,
        });
    }
    for name in PLUGIN_IDENTITY_KEYS {
        out.push(KeyInfo {
            path: format!("plugins[].{name}"),
            type_name: "string",
            default: None,
            env: None,
            applies_to: Applies::All.label(),
            unused: false,
        });
    }
    for k in plugin_keys() {
        out.push(KeyInfo {
            path: format!("plugins[].{}", k.path),
            type_name: k.kind.type_name(),
            default: default_text(k.default),
            env: plugin_env_name(k, "<PREFIX>"),
            applies_to: k.applies.label(),
            unused: k.note != Note::None,
        });
    }
    out
}

pub(crate) fn default_text(d: Dflt) -> Option<String> {
    match d {
        Dflt::None => None,
        Dflt::Bool(b) => Some(b.to_string()),
        Dflt::U64(n) => Some(n.to_string()),
        Dflt::F64(f) => Some(format!("{f:?}")),
        Dflt::Str(s) => Some(s.to_owned()),
        Dflt::Registration(r) => Some(r.as_str().to_owned()),
        Dflt::Text(t) => Some(t.to_owned()),
    }
}
