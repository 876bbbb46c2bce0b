//! The config examples from Anklet's two READMEs (tests/fixtures/config/seed*.yml) load as
//! Anklet would, render without secrets, and fail clearly where the README's YAML is invalid.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use anklet_core::config::{
    self, ConfigError, Origin, PluginKind, RunnerRegistration, Scope, WarningKind, render,
};

const SEED001_MAIN: &str = include_str!("../../tests/fixtures/config/seed001-main.yml");
const SEED001_AGGREGATOR: &str = include_str!("../../tests/fixtures/config/seed001-aggregator.yml");
const SEED000_VERBATIM: &str =
    include_str!("../../tests/fixtures/config/seed000-services-verbatim.yml");
const SEED000_REINDENTED: &str =
    include_str!("../../tests/fixtures/config/seed000-services-reindented.yml");
const SEED000_AGGREGATOR: &str = include_str!("../../tests/fixtures/config/seed000-aggregator.yml");

/// Every credential written in the seed fixtures.
const SEED_SECRETS: [&str; 4] = [
    "webhook-secret-SEED001-x7Qp",
    "redis-password-SEED001-k2Vb",
    "/Users/runner/.private-key-SEED001.pem",
    "github_pat_1XXXXX",
];

fn load(name: &str, text: &str) -> config::Loaded {
    match config::load(name, text, &BTreeMap::new()) {
        Ok(l) => l,
        Err(e) => panic!("{name} should load:\n{e}"),
    }
}

#[test]
fn seed001_main_loads_with_receiver_and_handler() {
    let loaded = load("seed001-main.yml", SEED001_MAIN);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = &loaded.config;
    assert_eq!(c.work_dir(), "/tmp/");
    assert_eq!(c.pid_file_dir.as_deref(), Some("/tmp/"));
    assert_eq!(c.plugins_path(), "~/.config/anklet/plugins");
    assert_eq!(c.plugins.len(), 2);

    let receiver = c.plugin("GITHUB_RECEIVER").unwrap();
    assert_eq!(receiver.kind, PluginKind::GithubReceiver);
    // `port: 54321` is a YAML integer; Anklet's key is a string and keeps the spelling.
    assert_eq!(receiver.port.as_deref(), Some("54321"));
    assert_eq!(receiver.port_number(), Some(54321));
    assert_eq!(receiver.hook_id, Some(489_747_753));
    assert_eq!(receiver.app_id, Some(949_431));
    assert_eq!(
        receiver.secret.as_ref().unwrap().expose(),
        "webhook-secret-SEED001-x7Qp"
    );
    assert_eq!(receiver.redeliver_window(), Duration::from_secs(24 * 3600));
    assert!(!receiver.skip_redeliver());
    assert_eq!(
        c.origin("plugins[0].hook_id"),
        Some(&Origin::File {
            line: 21,
            column: 14
        })
    );

    let handler = c.plugin("RUNNER1").unwrap();
    assert!(handler.is_handler());
    assert_eq!(handler.sleep_between_runs(), Duration::from_secs(10));
    assert_eq!(
        handler.scope(),
        Some(Scope::Repository {
            owner: "veertuinc",
            repo: "anklet"
        })
    );
    assert_eq!(
        handler.scope().unwrap().registration_url(),
        "https://github.com/veertuinc/anklet"
    );
    assert_eq!(handler.queue_owner(), "veertuinc");
    assert_eq!(handler.metrics_key_ending(), "veertuinc/RUNNER1");
    assert_eq!(
        handler.registry_url.as_deref(),
        Some("http://anka.registry:8089")
    );
    // Defaults of our keys.
    assert_eq!(handler.max_vms(), 2);
    assert_eq!(handler.runner_registration(), RunnerRegistration::Jit);
    assert_eq!(handler.registration_timeout(), Duration::from_secs(80));
    assert_eq!(handler.template_disk_buffer_percent(), 10.0);
    assert_eq!(handler.job_retry_attempts(), 5);
    assert_eq!(handler.pull_timeout(), Duration::from_secs(3600));
    assert_eq!(handler.pull_attempts(), 3);
    assert_eq!(handler.clone_timeout(), Duration::from_secs(600));
    assert_eq!(handler.start_timeout(), Duration::from_secs(300));
    assert_eq!(handler.start_runner_timeout(), Duration::from_secs(300));
    assert_eq!(handler.delete_timeout(), Duration::from_secs(300));
    assert_eq!(handler.github_timeout(), Duration::from_secs(30));
    assert_eq!(handler.store_timeout(), Duration::from_secs(10));
    assert_eq!(handler.job_max_lifetime(), Duration::from_secs(21_600));
    assert_eq!(handler.job_poll_interval(), Duration::from_secs(120));
    assert_eq!(handler.vm_health_interval(), Duration::from_secs(30));
    assert_eq!(handler.lease(), Duration::from_secs(60));
    assert_eq!(handler.fresh_vm_attempts(), 2);

    let db = handler.database_settings().unwrap();
    assert_eq!(db.url, "localhost");
    assert_eq!(db.port, 6379);
    assert_eq!(db.database, 0);
    assert_eq!(db.max_retries, 5);
    assert_eq!(db.retry_delay, Duration::from_millis(1000));
    assert_eq!(db.retry_backoff_factor, 2.0);
    assert_eq!(db.password.expose(), "redis-password-SEED001-k2Vb");
}

#[test]
fn seed001_main_renders_without_secrets() {
    let loaded = load("seed001-main.yml", SEED001_MAIN);
    let text = render(&loaded.config);
    for secret in SEED_SECRETS {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    assert!(text.contains("secret: [redacted]"));
    assert!(text.contains("password: [redacted]"));
    assert!(text.contains("private_key: [redacted]"));
    // Debug output of the whole config is just as safe.
    let debug = format!("{:?}", loaded.config);
    for secret in SEED_SECRETS {
        assert!(!debug.contains(secret), "{secret} leaked in Debug");
    }
    insta::assert_snapshot!("seed001_main", text);
}

#[test]
fn seed001_aggregator_loads() {
    let loaded = load("seed001-aggregator.yml", SEED001_AGGREGATOR);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = &loaded.config;
    assert!(c.metrics.is_aggregator());
    assert_eq!(c.metrics.port_number(), Some(8081));
    assert_eq!(c.metrics.sleep_interval(), Duration::from_secs(10));
    let db = c.aggregator_database().settings().unwrap();
    assert_eq!(
        (db.url.as_str(), db.port, db.database),
        ("localhost", 6379, 0)
    );
    insta::assert_snapshot!("seed001_aggregator", render(c));
}

#[test]
fn seed000_services_verbatim_is_invalid_yaml_with_a_clear_error() {
    let failure = config::load(
        "seed000-services-verbatim.yml",
        SEED000_VERBATIM,
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert_eq!(failure.errors.len(), 1);
    let err = &failure.errors[0];
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
    assert_eq!(err.line(), Some(16), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("seed000-services-verbatim.yml:16:11: invalid YAML: "),
        "{text}"
    );
    assert!(text.contains("hint: check the indentation"), "{text}");
    assert!(!text.contains("github_pat_1XXXXX"), "{text}");
}

#[test]
fn seed000_services_reindented_loads_with_legacy_warnings() {
    let loaded = load("seed000-services-reindented.yml", SEED000_REINDENTED);
    let c = &loaded.config;
    assert_eq!(
        c.plugins
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["RUNNER1", "RUNNER2"]
    );
    assert_eq!(c.log_dir(), Some("/Users/myUser/Library/Logs/"));
    let legacy: Vec<(&str, Option<u64>)> = loaded
        .warnings
        .iter()
        .map(|w| {
            assert_eq!(w.kind, WarningKind::Legacy, "{w}");
            (w.path.as_str(), w.line)
        })
        .collect();
    assert_eq!(
        legacy,
        [
            ("services", Some(12)),
            ("plugins[0].registration", Some(16)),
            ("plugins[0].database.enabled", Some(22)),
            ("plugins[1].registration", Some(31)),
            ("plugins[1].database.enabled", Some(36)),
        ]
    );
    assert!(
        loaded.warnings[0]
            .to_string()
            .contains("legacy name of `plugins:`")
    );
    let text = render(c);
    assert!(!text.contains("github_pat_1XXXXX"), "{text}");
    insta::assert_snapshot!("seed000_services_reindented", text);
}

#[test]
fn seed000_aggregator_loads_with_legacy_warnings() {
    let loaded = load("seed000-aggregator.yml", SEED000_AGGREGATOR);
    let paths: Vec<&str> = loaded.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(paths, ["metrics.metrics_urls", "metrics.database.enabled"]);
    let c = &loaded.config;
    assert!(c.metrics.is_aggregator());
    assert_eq!(c.aggregator_database().settings().unwrap().url, "localhost");
    insta::assert_snapshot!("seed000_aggregator", render(c));
}
