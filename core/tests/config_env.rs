//! Environment overrides: `ANKLET_*` globals (including the ones Anklet documents but never
//! implemented), per-plugin `<PREFIX>_<KEY>` and `<PREFIX>_DATABASE_<KEY>`, bools, lists, bad
//! values, and how globals then flow into plugins.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use anklet_core::config::{
    self, ConfigError, Loaded, Origin, RunnerRegistration, WarningKind, env_prefix, render,
};

const BASE: &str = include_str!("../../tests/fixtures/config/malformed/env-target.yml");

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load_with(text: &str, pairs: &[(&str, &str)]) -> Loaded {
    match config::load("env-target.yml", text, &env(pairs)) {
        Ok(l) => l,
        Err(f) => panic!("should load:\n{f}"),
    }
}

fn env_origin(var: &str) -> Origin {
    Origin::Env {
        var: var.to_owned(),
    }
}

#[test]
fn prefix_rule_matches_anklet() {
    assert_eq!(env_prefix("github-handler-1"), "GITHUB_HANDLER_1");
    assert_eq!(env_prefix("RUNNER1"), "RUNNER1");
    assert_eq!(env_prefix("my.runner x"), "MY_RUNNER_X");
}

#[test]
fn global_overrides_including_ones_anklet_forgot() {
    let l = load_with(
        BASE,
        &[
            ("ANKLET_WORK_DIR", "/var/anklet/"),
            ("ANKLET_PID_FILE_DIR", "/var/run/"),
            ("ANKLET_LOG_FILE_DIR", "/var/log/anklet/"),
            ("ANKLET_PLUGINS_PATH", "/opt/anklet/plugins"),
            ("ANKLET_METRICS_PORT", "9090"),
            ("ANKLET_METRICS_AGGREGATOR", "FALSE"),
            ("ANKLET_METRICS_SLEEP_INTERVAL", "30"),
            ("ANKLET_GLOBAL_DATABASE_URL", "redis.internal"),
            ("ANKLET_GLOBAL_DATABASE_PORT", "6380"),
            ("ANKLET_GLOBAL_DATABASE_PASSWORD", "redis-env-password"),
            ("ANKLET_GLOBAL_DATABASE_MAX_RETRIES", "9"),
            ("ANKLET_GLOBAL_DATABASE_RETRY_DELAY", "250"),
            ("ANKLET_GLOBAL_DATABASE_RETRY_BACKOFF_FACTOR", "1.5"),
            ("ANKLET_GLOBAL_DATABASE_TLS_ENABLED", "Yes"),
            ("ANKLET_GLOBAL_DATABASE_CLUSTER_MODE", "1"),
        ],
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = &l.config;
    assert_eq!(c.work_dir(), "/var/anklet/");
    assert_eq!(c.pid_file_dir.as_deref(), Some("/var/run/"));
    assert_eq!(c.log_dir(), Some("/var/log/anklet/"));
    assert_eq!(
        c.origin("log.file_dir"),
        Some(&env_origin("ANKLET_LOG_FILE_DIR"))
    );
    assert_eq!(c.plugins_path(), "/opt/anklet/plugins");
    assert_eq!(c.metrics.port_number(), Some(9090));
    assert!(!c.metrics.is_aggregator());
    assert_eq!(c.metrics.sleep_interval(), Duration::from_secs(30));
    for p in &c.plugins {
        let db = p.database_settings().unwrap();
        assert_eq!(db.url, "redis.internal");
        assert_eq!(db.port, 6380);
        assert_eq!(db.password.expose(), "redis-env-password");
        // Anklet parsed these three and never used them; here they reach every plugin.
        assert_eq!(db.max_retries, 9);
        assert_eq!(db.retry_delay, Duration::from_millis(250));
        assert_eq!(db.retry_backoff_factor, 1.5);
        assert!(db.tls_enabled);
        assert!(db.cluster_mode);
    }
    assert_eq!(
        c.origin("plugins[0].database.max_retries"),
        Some(&Origin::Global {
            key: "global_database_max_retries".to_owned()
        })
    );
    let text = render(c);
    assert!(!text.contains("redis-env-password"));
    assert!(text.contains("max_retries: 9"), "{text}");
    assert!(
        text.contains("from global_database_max_retries (env ANKLET_GLOBAL_DATABASE_MAX_RETRIES)"),
        "{text}"
    );
}

#[test]
fn per_plugin_overrides_nested_database_bools_and_lists() {
    let l = load_with(
        BASE,
        &[
            ("RUNNER1_SLEEP_INTERVAL", "30"),
            ("RUNNER1_SKIP_PULL", "TRUE"),
            ("RUNNER1_DATABASE_PORT", "6390"),
            ("RUNNER1_DATABASE_TLS_INSECURE", "yes"),
            (
                "RUNNER1_HOST_TO_GUEST_FOLDER_MOUNTS",
                " /cache , /Users/me/src:src ,,",
            ),
            ("RUNNER1_WORKFLOWS_INCLUDE", "build,test"),
            ("RUNNER1_MAX_VMS", "1"),
            ("RUNNER1_RUNNER_REGISTRATION", "TOKEN"),
            ("RUNNER1_PULL_TIMEOUT_SECONDS", "7200"),
            ("RUNNER1_LEASE_SECONDS", "90"),
            ("RUNNER1_TEMPLATE_DISK_BUFFER", "12.5"),
            ("GITHUB_RECEIVER_1_HOOK_ID", "777"),
            ("GITHUB_RECEIVER_1_SKIP_REDELIVER", "no"),
            ("GITHUB_RECEIVER_1_REDELIVER_HOURS", "48"),
            ("GITHUB_RECEIVER_1_SECRET", "receiver-env-secret"),
        ],
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = &l.config;
    let h = &c.plugins[0];
    assert_eq!(h.sleep_between_runs(), Duration::from_secs(30));
    assert!(h.skip_pull());
    assert_eq!(h.database_settings().unwrap().port, 6390);
    assert!(h.database_settings().unwrap().tls_insecure);
    assert_eq!(h.mounts(), ["/cache", "/Users/me/src:src"]);
    assert_eq!(
        h.workflows.include.as_deref(),
        Some(&["build".to_owned(), "test".to_owned()][..])
    );
    assert_eq!(h.max_vms(), 1);
    assert_eq!(h.runner_registration(), RunnerRegistration::Token);
    assert_eq!(h.pull_timeout(), Duration::from_secs(7200));
    assert_eq!(h.lease(), Duration::from_secs(90));
    assert_eq!(h.template_disk_buffer_percent(), 12.5);
    assert_eq!(
        c.origin("plugins[0].database.port"),
        Some(&env_origin("RUNNER1_DATABASE_PORT"))
    );

    let r = &c.plugins[1];
    assert_eq!(r.hook_id, Some(777));
    assert!(!r.skip_redeliver());
    assert_eq!(r.redeliver_window(), Duration::from_secs(48 * 3600));
    assert_eq!(r.secret.as_ref().unwrap().expose(), "receiver-env-secret");

    let text = render(c);
    assert!(!text.contains("receiver-env-secret"));
    insta::assert_snapshot!("render_with_env", text);
}

#[test]
fn empty_values_count_as_unset() {
    let l = load_with(
        BASE,
        &[("RUNNER1_OWNER", ""), ("ANKLET_GLOBAL_DATABASE_URL", "")],
    );
    assert_eq!(l.config.plugins[0].owner.as_deref(), Some("veertuinc"));
    assert_eq!(
        l.config.plugins[0].database_settings().unwrap().url,
        "localhost"
    );
}

#[test]
fn bad_values_name_the_variable_and_hide_secrets() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "ANKLET_GLOBAL_DATABASE_PORT",
            "70000",
            "global_database_port",
            "expected an integer from 0 to 65535, found \"70000\"",
        ),
        (
            "RUNNER1_DATABASE_DATABASE",
            "one",
            "plugins[0].database.database",
            "expected a non-negative integer, found \"one\"",
        ),
        (
            "ANKLET_METRICS_AGGREGATOR",
            "enabled",
            "metrics.aggregator",
            "expected a boolean (true/false, 1/0 or yes/no, any case), found \"enabled\"",
        ),
        (
            "RUNNER1_SKIP_PULL",
            "sure",
            "plugins[0].skip_pull",
            "expected a boolean",
        ),
        (
            "ANKLET_GLOBAL_TEMPLATE_DISK_BUFFER",
            "ten",
            "global_template_disk_buffer",
            "expected a number (e.g. 10.0), found \"ten\"",
        ),
        (
            "RUNNER1_RUNNER_REGISTRATION",
            "pat",
            "plugins[0].runner_registration",
            "expected `jit` or `token`, found \"pat\"",
        ),
        (
            "GITHUB_RECEIVER_1_HOOK_ID",
            "-3",
            "plugins[1].hook_id",
            "expected a non-negative integer, found \"-3\"",
        ),
        (
            "RUNNER1_PULL_TIMEOUT_SECONDS",
            "60s",
            "plugins[0].pull_timeout_seconds",
            "hint: give a plain number, without a unit",
        ),
        (
            "ANKLET_JOB_RETRY_ATTEMPTS",
            "lots",
            "plugins[*].job_retry_attempts",
            "found \"lots\"",
        ),
    ];
    for (var, value, path, needle) in cases {
        let f = config::load(
            "env-target.yml",
            BASE,
            &env(&[(var, value), ("ANKLET_GLOBAL_TOKEN", "ghp_must_not_show")]),
        )
        .unwrap_err();
        assert_eq!(f.errors.len(), 1, "{var}: {f}");
        let e = &f.errors[0];
        assert!(matches!(e, ConfigError::Env { .. }), "{e:?}");
        assert_eq!(e.path(), Some(*path), "{var}");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("environment variable {var} (sets `{path}`)")),
            "{text}"
        );
        assert!(text.contains(needle), "{var}: {text}");
        assert!(!f.to_string().contains("ghp_must_not_show"));
    }
}

#[test]
fn env_values_are_validated_and_errors_say_where_they_came_from() {
    let f = config::load("env-target.yml", BASE, &env(&[("RUNNER1_MAX_VMS", "0")])).unwrap_err();
    assert_eq!(f.errors.len(), 1, "{f}");
    let text = f.errors[0].to_string();
    assert_eq!(f.errors[0].line(), Some(6), "{text}");
    assert!(
        text.contains("`plugins[0].max_vms`: `max_vms` must be at least 1 (value from environment variable RUNNER1_MAX_VMS)"),
        "{text}"
    );
}

#[test]
fn globals_fill_only_what_plugins_leave_unset() {
    let text = "\
global_database_url: localhost
global_token: ghp_global
global_receiver_secret: global-receiver-secret
global_template_disk_buffer: 20.0
global_skip_cpu_and_memory_resource_checks: true
global_host_to_guest_folder_mounts: [/cache, /tools:t]
global_database_max_retries: 3
plugins:
  - name: OWN
    plugin: github
    owner: acme
    token: ghp_own
    template_disk_buffer: 5.0
    host_to_guest_folder_mounts: [/cache:mine, /src]
    database:
      max_retries: 8
  - name: INHERITS
    plugin: github
    owner: acme
  - name: R_OWN
    plugin: github_receiver
    owner: acme
    secret: own-receiver-secret
    port: 1234
    skip_redeliver: true
  - name: R_INHERITS
    plugin: github_receiver
    owner: acme
    port: 1235
    skip_redeliver: true
";
    let l = load_with(text, &[]);
    let c = &l.config;
    let own = c.plugin("OWN").unwrap();
    assert_eq!(own.token.as_ref().unwrap().expose(), "ghp_own");
    assert_eq!(own.template_disk_buffer_percent(), 5.0);
    assert_eq!(own.database_settings().unwrap().max_retries, 8);
    assert!(own.skip_resource_checks());
    // Globals first, then the plugin's own; `/cache:mine` repeats the host path `/cache`.
    assert_eq!(own.mounts(), ["/cache", "/tools:t", "/src"]);

    let inherits = c.plugin("INHERITS").unwrap();
    assert_eq!(inherits.token.as_ref().unwrap().expose(), "ghp_global");
    assert_eq!(inherits.template_disk_buffer_percent(), 20.0);
    assert_eq!(inherits.database_settings().unwrap().max_retries, 3);
    assert_eq!(inherits.mounts(), ["/cache", "/tools:t"]);
    assert_eq!(
        c.origin("plugins[1].token"),
        Some(&Origin::Global {
            key: "global_token".to_owned()
        })
    );

    // Anklet overwrote every receiver's secret with the global one; we only fill empty ones.
    let r_own = c.plugin("R_OWN").unwrap();
    assert_eq!(
        r_own.secret.as_ref().unwrap().expose(),
        "own-receiver-secret"
    );
    let r_inherits = c.plugin("R_INHERITS").unwrap();
    assert_eq!(
        r_inherits.secret.as_ref().unwrap().expose(),
        "global-receiver-secret"
    );
    assert!(r_inherits.template_disk_buffer.is_none());

    let rendered = render(c);
    for secret in [
        "ghp_global",
        "ghp_own",
        "own-receiver-secret",
        "global-receiver-secret",
    ] {
        assert!(!rendered.contains(secret), "{secret}");
    }
    assert!(
        rendered.contains("from global_receiver_secret (line 3)"),
        "{rendered}"
    );
}

#[test]
fn job_retry_attempts_env_applies_to_every_handler() {
    let l = load_with(BASE, &[("ANKLET_JOB_RETRY_ATTEMPTS", "7")]);
    assert_eq!(l.config.plugins[0].job_retry_attempts(), 7);
    assert_eq!(l.config.plugins[1].job_retry_attempts, None);
    let l = load_with(
        BASE,
        &[
            ("ANKLET_JOB_RETRY_ATTEMPTS", "7"),
            ("RUNNER1_JOB_RETRY_ATTEMPTS", "2"),
        ],
    );
    assert_eq!(l.config.plugins[0].job_retry_attempts(), 2);
}

#[test]
fn unknown_and_legacy_variables_are_warned_about() {
    let l = load_with(
        BASE,
        &[
            ("ANKLET_GLOBAL_TOKN", "x"),
            ("ANKLET_DATABASE_URL", "legacy.redis"),
            ("ANKLET_DATABASE_ENABLED", "true"),
            ("ANKLET_METRICS_DATABASE_ENABLED", "true"),
            ("ANKLET_CONFIG_FILE_NAME", "other.yml"),
            ("RUNNER1_PORT", "1234"),
            ("RUNNER1_NAME", "renamed"),
            ("HOME", "/Users/me"),
        ],
    );
    let got: Vec<(WarningKind, &str)> = l
        .warnings
        .iter()
        .map(|w| (w.kind, w.path.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (WarningKind::Legacy, "ANKLET_METRICS_DATABASE_ENABLED"),
            (WarningKind::Legacy, "ANKLET_DATABASE_URL"),
            (WarningKind::Legacy, "ANKLET_DATABASE_ENABLED"),
            (WarningKind::NotApplicable, "RUNNER1_NAME"),
            (WarningKind::NotApplicable, "RUNNER1_PORT"),
            (WarningKind::UnknownEnv, "ANKLET_GLOBAL_TOKN"),
        ]
    );
    let unknown = l.warnings.last().unwrap().to_string();
    assert!(
        unknown.contains("did you mean ANKLET_GLOBAL_TOKEN?"),
        "{unknown}"
    );
    assert_eq!(
        l.config.global_database.url.as_deref(),
        Some("legacy.redis")
    );
    assert_eq!(l.config.plugins[0].name, "RUNNER1");
}
