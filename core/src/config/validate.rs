//! Semantic checks on the resolved config. Each error names the key and points at the line
//! of the value, or of the plugin entry when the key is missing, or at the environment
//! variable or global key the value came from.

use std::collections::BTreeMap;

use super::error::{ConfigError, Diag, WarningKind};
use super::keys;
use super::model::{Config, Database, Origin, Plugin, PluginKind, non_empty};
use crate::secret::Secret;

/// Where to point for `path`, falling back to `fallback` (the plugin entry) when unset.
struct Place {
    line: Option<u64>,
    column: Option<u64>,
    via: Option<String>,
}

fn place(config: &Config, path: &str, fallback: &str) -> Place {
    let file = |o: Option<&Origin>| match o {
        Some(Origin::File { line, column }) => (Some(*line), Some(*column)),
        _ => (None, None),
    };
    match config.origin(path) {
        Some(Origin::File { line, column }) => Place {
            line: Some(*line),
            column: Some(*column),
            via: None,
        },
        Some(Origin::Env { var }) => {
            let (line, column) = file(config.origin(fallback));
            Place {
                line,
                column,
                via: Some(format!("value from environment variable {var}")),
            }
        }
        Some(Origin::Global { key }) => {
            let (line, column, via) = match config.origin(key) {
                Some(Origin::File { line, column }) => (Some(*line), Some(*column), None),
                Some(Origin::Env { var }) => {
                    let (l, c) = file(config.origin(fallback));
                    (l, c, Some(format!("environment variable {var}")))
                }
                _ => {
                    let (l, c) = file(config.origin(fallback));
                    (l, c, None)
                }
            };
            Place {
                line,
                column,
                via: Some(match via {
                    Some(v) => format!("value copied from `{key}`, set by {v}"),
                    None => format!("value copied from `{key}`"),
                }),
            }
        }
        None => {
            let (line, column) = file(config.origin(fallback));
            Place {
                line,
                column,
                via: None,
            }
        }
    }
}

struct Checker<'a> {
    config: &'a Config,
    diag: &'a mut Diag,
}

impl Checker<'_> {
    fn error(
        &mut self,
        path: &str,
        fallback: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let at = place(self.config, path, fallback);
        self.diag.errors.push(ConfigError::Invalid {
            source_name: self.config.source_name.clone(),
            path: path.to_owned(),
            line: at.line,
            column: at.column,
            via: at.via,
            message: message.into(),
            hint,
        });
    }

    fn warn(&mut self, path: &str, fallback: &str, message: impl Into<String>) {
        let at = place(self.config, path, fallback);
        let line = at.line.zip(at.column);
        self.diag.warn(WarningKind::Suspicious, path, line, message);
    }

    fn port_string(&mut self, path: &str, fallback: &str, value: &Option<String>) {
        if let Some(p) = value.as_deref() {
            let ok = p.trim().parse::<u16>().is_ok_and(|n| n != 0);
            if !ok {
                self.error(
                    path,
                    fallback,
                    format!("{} is not a port number", super::yaml::quote_for_message(p)),
                    Some("use a number from 1 to 65535".to_owned()),
                );
            }
        }
    }

    fn database(&mut self, prefix: &str, fallback: &str, db: &Database) {
        if db.port == Some(0) {
            self.error(
                &format!("{prefix}port"),
                fallback,
                "port 0 is not a Redis port",
                Some("use the Redis port, usually 6379, or remove the key for 6379".to_owned()),
            );
        }
        if db.retry_backoff_factor.is_some_and(|f| f < 0.0) {
            self.error(
                &format!("{prefix}retry_backoff_factor"),
                fallback,
                "a negative backoff factor makes no sense",
                Some("use 1.0 for a constant delay or 2.0 (the default) to double it".to_owned()),
            );
        }
    }
}

fn set(s: &Option<Secret>) -> bool {
    s.as_ref().is_some_and(|s| !s.is_empty())
}

/// Our handler keys for which 0 is meaningless (a zero timeout, zero attempts).
const NON_ZERO_HANDLER_KEYS: [&str; 14] = [
    "max_vms",
    "pull_timeout_seconds",
    "pull_attempts",
    "clone_timeout_seconds",
    "start_timeout_seconds",
    "start_runner_timeout_seconds",
    "delete_timeout_seconds",
    "github_timeout_seconds",
    "store_timeout_seconds",
    "job_max_lifetime_seconds",
    "job_poll_interval_seconds",
    "vm_health_interval_seconds",
    "lease_seconds",
    "fresh_vm_attempts",
];

pub(crate) fn validate(config: &Config, diag: &mut Diag) {
    let mut c = Checker { config, diag };
    let g = config;

    c.port_string("metrics.port", "metrics.port", &g.metrics.port);
    c.database(
        "global_database_",
        "global_database_url",
        &g.global_database,
    );
    c.database(
        "metrics.database.",
        "metrics.database.url",
        &g.metrics.database,
    );
    if let Some(b) = g.global_template_disk_buffer
        && !(0.0..100.0).contains(&b)
    {
        c.error(
            "global_template_disk_buffer",
            "global_template_disk_buffer",
            format!("{b:?}% of the disk cannot be kept free"),
            Some("use a percentage from 0 to 99, e.g. 10.0".to_owned()),
        );
    }
    if g.metrics.is_aggregator() {
        if g.aggregator_database().settings().is_none() {
            c.error(
                "metrics.aggregator",
                "metrics.aggregator",
                "the metrics aggregator needs a database to read metrics from",
                Some("set `global_database_url` (or `metrics.database.url`)".to_owned()),
            );
        }
        if !g.plugins.is_empty() {
            c.warn(
                "metrics.aggregator",
                "metrics.aggregator",
                format!(
                    "aggregator mode runs no plugins; the {} entries under `plugins:` are ignored",
                    g.plugins.len()
                ),
            );
        }
    }

    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut prefixes: BTreeMap<String, usize> = BTreeMap::new();
    for (i, p) in g.plugins.iter().enumerate() {
        plugin(&mut c, i, p, &mut names, &mut prefixes);
    }
}

fn plugin(
    c: &mut Checker<'_>,
    i: usize,
    p: &Plugin,
    names: &mut BTreeMap<String, usize>,
    prefixes: &mut BTreeMap<String, usize>,
) {
    let entry = format!("plugins[{i}]");
    let key = |k: &str| format!("plugins[{i}].{k}");

    if p.name.chars().any(char::is_whitespace) {
        c.error(
            &key("name"),
            &entry,
            format!("the name {} contains whitespace", super::yaml::quote_for_message(&p.name)),
            Some("use letters, digits, `-` or `_` (e.g. RUNNER1); the name becomes part of Redis keys and env variable names".to_owned()),
        );
    }
    if let Some(&first) = names.get(p.name.as_str()) {
        let first_line = match c.config.origin(&format!("plugins[{first}]")) {
            Some(Origin::File { line, .. }) => format!(" (line {line})"),
            _ => String::new(),
        };
        c.error(
            &key("name"),
            &entry,
            format!("the name `{}` is already used by plugins[{first}]{first_line}", p.name),
            Some("give every plugin its own name; names must be unique across all hosts because they key the Redis queues".to_owned()),
        );
    } else {
        names.insert(p.name.clone(), i);
        let prefix = keys::env_prefix(&p.name);
        if let Some(&other) = prefixes.get(&prefix) {
            c.warn(
                &key("name"),
                &entry,
                format!(
                    "plugins[{other}] and this entry both read environment overrides named {prefix}_*"
                ),
            );
        } else {
            prefixes.insert(prefix, i);
        }
    }

    // Scope (Anklet's ValidateGitHubScope).
    let owner = non_empty(&p.owner);
    let enterprise = non_empty(&p.enterprise);
    let repo = non_empty(&p.repo);
    if enterprise.is_some() && owner.is_some() {
        c.error(
            &key("enterprise"),
            &entry,
            "`enterprise` and `owner` are both set",
            Some("keep `enterprise` for an enterprise-wide plugin, or `owner` (+ `repo`) for an organisation or repository".to_owned()),
        );
    } else if repo.is_some() && owner.is_none() {
        c.error(
            &key("repo"),
            &entry,
            "`repo` is set without `owner`",
            Some("add `owner: <organisation or user>` next to `repo`".to_owned()),
        );
    } else if enterprise.is_none() && owner.is_none() {
        c.error(
            &key("owner"),
            &entry,
            "neither `owner` nor `enterprise` is set",
            Some("add `owner: <organisation or user>` (and `repo:` for one repository), or `enterprise: <slug>`".to_owned()),
        );
    }

    // No database means the embedded single-host store, so it is not an error.
    c.database(&format!("plugins[{i}].database."), &entry, &p.database);

    let token = set(&p.token);
    let key_set = set(&p.private_key);
    let app = key_set && p.app_id.is_some_and(|a| a != 0);
    match p.kind {
        PluginKind::Github => handler(c, i, p, token, key_set, app, enterprise.is_some()),
        PluginKind::GithubReceiver => receiver(c, i, p, token, key_set, app, enterprise.is_some()),
    }
}

fn app_half(c: &mut Checker<'_>, i: usize, p: &Plugin, token: bool, key_set: bool) {
    let entry = format!("plugins[{i}]");
    let app_id = p.app_id.is_some_and(|a| a != 0);
    if key_set && !app_id {
        let path = format!("plugins[{i}].private_key");
        if token {
            c.warn(
                &path,
                &entry,
                "`private_key` is set without `app_id`, so GitHub App auth is off and `token` is used",
            );
        } else {
            c.error(
                &format!("plugins[{i}].app_id"),
                &entry,
                "`private_key` is set but `app_id` is not",
                Some("add the GitHub App's `app_id` next to `private_key`".to_owned()),
            );
        }
    }
    if app_id && !key_set && !token {
        c.error(
            &format!("plugins[{i}].private_key"),
            &entry,
            "`app_id` is set but `private_key` is not",
            Some(
                "add `private_key: <path to the App's .pem>` (or set `global_private_key`)"
                    .to_owned(),
            ),
        );
    }
}

fn handler(
    c: &mut Checker<'_>,
    i: usize,
    p: &Plugin,
    token: bool,
    key_set: bool,
    app: bool,
    enterprise: bool,
) {
    let entry = format!("plugins[{i}]");
    let key = |k: &str| format!("plugins[{i}].{k}");
    if enterprise {
        if !(token && app) {
            let missing = match (token, app) {
                (false, false) => "`token` and `private_key` + `app_id`",
                (false, true) => "`token`",
                _ => "`private_key` + `app_id`",
            };
            c.error(
                &key(if token { "private_key" } else { "token" }),
                &entry,
                format!("an enterprise handler needs both a classic token and a GitHub App; {missing} missing"),
                Some("set `token` (classic PAT, for the runner APIs) and `private_key` + `app_id` (GitHub App, for the job APIs)".to_owned()),
            );
        }
    } else if !token && !app {
        if !key_set && p.app_id.is_none() {
            c.error(
                &key("token"),
                &entry,
                "no GitHub credentials: the handler needs `token`, or `private_key` and `app_id`",
                Some("set `token:` (or `private_key:` + `app_id:`) in this entry, or `global_token` / `global_private_key` at the top level".to_owned()),
            );
        }
        app_half(c, i, p, token, key_set);
    } else {
        app_half(c, i, p, token, key_set);
    }

    let specs: Vec<_> = keys::plugin_keys().collect();
    for name in NON_ZERO_HANDLER_KEYS {
        let Some(spec) = specs.iter().find(|s| s.path == name) else {
            continue;
        };
        if (spec.get)(p).is_zero() {
            let default = keys::default_text(spec.default).unwrap_or_default();
            c.error(
                &key(name),
                &entry,
                format!("`{name}` must be at least 1"),
                Some(format!("remove it to use the default ({default})")),
            );
        }
    }
    if p.max_vms.is_some_and(|n| n > 2) {
        c.warn(
            &key("max_vms"),
            &entry,
            "Apple's macOS licence allows two VMs per host; anka will refuse to start a third",
        );
    }
    if let Some(b) = p.template_disk_buffer
        && !(0.0..100.0).contains(&b)
    {
        c.error(
            &key("template_disk_buffer"),
            &entry,
            format!("{b:?}% of the disk cannot be kept free"),
            Some("use a percentage from 0 to 99 (0 = the default, 10.0)".to_owned()),
        );
    }
    for (n, mount) in p.mounts().iter().enumerate() {
        let host = mount.split(':').next().unwrap_or_default();
        if host.trim().is_empty() {
            c.error(
                &key("host_to_guest_folder_mounts"),
                &entry,
                format!(
                    "mount #{} ({}) has no host path",
                    n + 1,
                    super::yaml::quote_for_message(mount)
                ),
                Some("write mounts as `host_path` or `host_path:guest_name`".to_owned()),
            );
        }
    }
    if let Some(url) = non_empty(&p.registry_url)
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        c.warn(
            &key("registry_url"),
            &entry,
            "the registry URL does not start with http:// or https://",
        );
    }
}

fn receiver(
    c: &mut Checker<'_>,
    i: usize,
    p: &Plugin,
    token: bool,
    key_set: bool,
    app: bool,
    enterprise: bool,
) {
    let entry = format!("plugins[{i}]");
    let key = |k: &str| format!("plugins[{i}].{k}");
    if !set(&p.secret) {
        c.error(
            &key("secret"),
            &entry,
            "a receiver needs `secret`, the webhook secret GitHub signs deliveries with",
            Some("set `secret:` in this entry (the same value as in the webhook's settings), or `global_receiver_secret` at the top level".to_owned()),
        );
    }
    match non_empty(&p.port) {
        None => c.error(
            &key("port"),
            &entry,
            "a receiver needs `port`, the port its webhook server listens on",
            Some("add e.g. `port: 54321` and point the GitHub webhook at http(s)://<host>:<port>/jobs/v1/receiver".to_owned()),
        ),
        Some(_) => c.port_string(&key("port"), &entry, &p.port),
    }
    if !enterprise {
        if !token && !app && !key_set && p.app_id.is_none() {
            c.error(
                &key("token"),
                &entry,
                "no GitHub credentials: a receiver that is not enterprise-wide needs `token`, or `private_key` and `app_id`",
                Some("set them in this entry, or `global_token` / `global_private_key` at the top level".to_owned()),
            );
        } else {
            app_half(c, i, p, token, key_set);
        }
        if !p.skip_redeliver() && p.hook_id.is_none_or(|h| h == 0) {
            c.warn(
                &key("hook_id"),
                &entry,
                "`hook_id` is not set, so webhooks missed while the receiver was down are not redelivered; set it (the number at the end of the webhook's settings URL), or `skip_redeliver: true` to silence this",
            );
        }
    }
}
