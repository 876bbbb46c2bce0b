//! YAML reading rules (Go yaml.v2 compatibility where sane), warnings for keys that do
//! nothing, scope helpers, the key reference against docs/configuration.md, and no panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use anklet_core::config::{
    self, ConfigError, LoadFailure, Loaded, Plugin, PluginKind, Scope, WarningKind, key_reference,
};

const DOCS: &str = include_str!("../../docs/configuration.md");

fn load(text: &str) -> Result<Loaded, LoadFailure> {
    config::load("t.yml", text, &BTreeMap::new())
}

fn ok(text: &str) -> Loaded {
    match load(text) {
        Ok(l) => l,
        Err(f) => panic!("should load:\n{f}"),
    }
}

const HANDLER: &str = "\
global_database_url: localhost
plugins:
  - name: RUNNER1
    plugin: github
    owner: acme
    token: ghp_x
";

#[test]
fn yaml_v2_scalars() {
    let l = ok(&format!(
        "{HANDLER}    skip_pull: yes\n    runner_group: 1.10\n    registry_url: 0x10\n    sleep_interval: 010\n"
    ));
    let p = &l.config.plugins[0];
    // YAML 1.1 booleans, like Go's yaml.v2.
    assert_eq!(p.skip_pull, Some(true));
    // A number written for a string key keeps its spelling.
    assert_eq!(p.runner_group.as_deref(), Some("1.10"));
    assert_eq!(p.registry_url.as_deref(), Some("0x10"));
    assert_eq!(p.sleep_interval, Some(10));

    let l = ok(
        "global_database_url: localhost\nglobal_receiver_secret: 000123\nplugins:\n  - name: R\n    plugin: github_receiver\n    owner: acme\n    token: t\n    port: 8080\n    skip_redeliver: true\n",
    );
    assert_eq!(
        l.config.plugins[0].secret.as_ref().unwrap().expose(),
        "000123"
    );
}

#[test]
fn quoted_values_get_a_hint() {
    let f = load(&format!(
        "{HANDLER}    max_vms: \"2\"\n    skip_pull: \"true\"\n"
    ))
    .unwrap_err();
    assert_eq!(f.errors.len(), 2, "{f}");
    for e in &f.errors {
        assert_eq!(e.hint(), Some("remove the quotes around the value"), "{e}");
    }
    assert_eq!(f.errors[0].line(), Some(7));
    assert!(f.errors[0].to_string().contains("found string \"2\""));
}

#[test]
fn lists_and_maps_in_the_wrong_place() {
    let f = load(&format!(
        "{HANDLER}    host_to_guest_folder_mounts: /cache\n    database: localhost\n"
    ))
    .unwrap_err();
    let texts: Vec<String> = f.errors.iter().map(ToString::to_string).collect();
    assert_eq!(texts.len(), 2, "{f}");
    assert!(texts[0].contains("`plugins[0].host_to_guest_folder_mounts`: expected a list of strings, found string \"/cache\""), "{}", texts[0]);
    assert!(
        texts[0].contains("hint: write a YAML list, e.g. [\"/cache\"]"),
        "{}",
        texts[0]
    );
    assert!(
        texts[1].contains("`plugins[0].database`: expected a mapping of settings"),
        "{}",
        texts[1]
    );
}

#[test]
fn secret_values_are_never_echoed_in_type_errors() {
    // `secret` does not apply to handlers: a warning, which does not show the value either.
    let l = ok(&format!("{HANDLER}    secret: [ghp_in_a_list]\n"));
    assert_eq!(l.warnings.len(), 1);
    assert!(!l.warnings[0].to_string().contains("ghp_in_a_list"));
    let f =
        load("plugins:\n  - name: R\n    plugin: github_receiver\n    secret: {value: s3cr3t}\n")
            .unwrap_err();
    let text = f.to_string();
    assert!(
        text.contains("`plugins[0].secret`: expected a string, found a mapping"),
        "{text}"
    );
    assert!(!text.contains("s3cr3t"));
}

#[test]
fn keys_that_do_not_apply_or_do_not_exist() {
    let l = ok(&format!(
        "{HANDLER}    port: 8080\n    sleep_intervl: 5\n    global_token: x\nglobal_tokn: y\ntoken: z\ndatabase:\n  url: x\nmetrics:\n  prot: 1\n"
    ));
    let got: Vec<(WarningKind, &str, Option<u64>)> = l
        .warnings
        .iter()
        .map(|w| (w.kind, w.path.as_str(), w.line))
        .collect();
    assert_eq!(
        got,
        [
            (WarningKind::UnknownKey, "global_tokn", Some(10)),
            (WarningKind::UnknownKey, "token", Some(11)),
            (WarningKind::UnknownKey, "database", Some(12)),
            (WarningKind::UnknownKey, "metrics.prot", Some(15)),
            (WarningKind::NotApplicable, "plugins[0].port", Some(7)),
            (WarningKind::UnknownKey, "plugins[0].sleep_intervl", Some(8)),
            (WarningKind::UnknownKey, "plugins[0].global_token", Some(9)),
        ]
    );
    let texts: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
    assert!(
        texts[0].contains("did you mean `global_token`?"),
        "{}",
        texts[0]
    );
    assert!(
        texts[1].contains("it is a plugin key") && texts[1].contains("`global_token`"),
        "{}",
        texts[1]
    );
    assert!(texts[2].contains("global_database_*"), "{}", texts[2]);
    assert!(texts[3].contains("did you mean `port`?"), "{}", texts[3]);
    assert!(
        texts[4].contains("only applies to `github_receiver` receivers"),
        "{}",
        texts[4]
    );
    assert!(
        texts[6].contains("global keys go at the top level"),
        "{}",
        texts[6]
    );
    // A key that does not apply is not stored.
    assert_eq!(l.config.plugins[0].port, None);
}

#[test]
fn anchors_and_merge_keys_work() {
    let l = ok("\
x-common: &common
  owner: acme
  token: ghp_x
  database:
    url: localhost
plugins:
  - <<: *common
    name: A
    plugin: github
  - <<: *common
    name: B
    plugin: github
    owner: other
");
    let names: Vec<(&str, Option<&str>)> = l
        .config
        .plugins
        .iter()
        .map(|p| (p.name.as_str(), p.owner.as_deref()))
        .collect();
    assert_eq!(names, [("A", Some("acme")), ("B", Some("other"))]);
    assert_eq!(l.warnings.len(), 1);
    assert_eq!(l.warnings[0].path, "x-common");
}

#[test]
fn plugins_and_services_together_is_an_error() {
    let f = load("plugins: []\nservices: []\n").unwrap_err();
    assert_eq!(f.errors[0].path(), Some("services"));
    assert_eq!(f.errors[0].line(), Some(2));
}

#[test]
fn top_level_must_be_a_mapping() {
    let f = load("- name: RUNNER1\n").unwrap_err();
    assert!(matches!(f.errors[0], ConfigError::WrongType { .. }));
    assert!(f.to_string().contains("expected a mapping of settings"));
}

#[test]
fn empty_plugins_list_is_fine() {
    let l = ok("plugins:\n");
    assert!(l.config.plugins.is_empty());
    let l = ok("plugins: []\n");
    assert!(l.config.plugins.is_empty());
}

#[test]
fn no_database_means_the_embedded_store_and_missing_hook_id_only_warns() {
    let l = ok(
        "plugins:\n  - name: R\n    plugin: github_receiver\n    owner: acme\n    token: t\n    secret: s\n    port: 8080\n",
    );
    assert!(l.config.plugins[0].database_settings().is_none());
    assert!(
        l.warnings
            .iter()
            .any(|w| w.path == "plugins[0].hook_id" && w.message.contains("not redelivered")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn validation_rules() {
    let cases: &[(&str, &str, &str)] = &[
        // (config, path, message part)
        (
            "global_database_url: h\nplugins:\n  - name: R\n    plugin: github_receiver\n    owner: acme\n    token: t\n    secret: s\n",
            "plugins[0].port",
            "a receiver needs `port`",
        ),
        (
            "global_database_url: h\nplugins:\n  - name: R\n    plugin: github_receiver\n    owner: acme\n    token: t\n    secret: s\n    port: http\n    skip_redeliver: true\n",
            "plugins[0].port",
            "is not a port number",
        ),
        (
            "global_database_url: h\nplugins:\n  - name: E\n    plugin: github\n    enterprise: ent\n    token: t\n",
            "plugins[0].private_key",
            "an enterprise handler needs both",
        ),
        (
            "global_database_url: h\nplugins:\n  - name: H\n    plugin: github\n    owner: acme\n    private_key: /k.pem\n",
            "plugins[0].app_id",
            "`private_key` is set but `app_id` is not",
        ),
        (
            "global_database_url: h\nplugins:\n  - name: H\n    plugin: github\n    token: t\n",
            "plugins[0].owner",
            "neither `owner` nor `enterprise`",
        ),
        (
            "global_database_url: h\nplugins:\n  - name: H\n    plugin: github\n    owner: o\n    token: t\n    lease_seconds: 0\n",
            "plugins[0].lease_seconds",
            "must be at least 1",
        ),
        (
            "global_database_url: h\nplugins:\n  - name: H\n    plugin: github\n    owner: o\n    token: t\n    template_disk_buffer: 150\n",
            "plugins[0].template_disk_buffer",
            "cannot be kept free",
        ),
        (
            "global_database_url: h\nplugins:\n  - name: H\n    plugin: github\n    owner: o\n    token: t\n    database:\n      port: 0\n",
            "plugins[0].database.port",
            "port 0",
        ),
        (
            "metrics:\n  aggregator: true\n",
            "metrics.aggregator",
            "needs a database",
        ),
        (
            "metrics:\n  port: eighty\n",
            "metrics.port",
            "is not a port number",
        ),
        (
            "plugins:\n  - name: H\n    plugin: ''\n",
            "plugins[0].plugin",
            "`plugin` is not set",
        ),
    ];
    for (text, path, needle) in cases {
        let f = load(text).unwrap_err();
        assert!(
            f.errors
                .iter()
                .any(|e| e.path() == Some(*path) && e.to_string().contains(needle)),
            "{path} / {needle}:\n{f}"
        );
    }
}

#[test]
fn suspicious_values_warn() {
    let l = ok(&format!(
        "{HANDLER}    max_vms: 3\n    registry_url: anka.registry:8089\n    private_key: /k.pem\n"
    ));
    let paths: Vec<&str> = l.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "plugins[0].private_key",
            "plugins[0].max_vms",
            "plugins[0].registry_url"
        ]
    );
    assert!(l.warnings.iter().all(|w| w.kind == WarningKind::Suspicious));
}

#[test]
fn zero_means_default_for_anklet_keys() {
    let l = ok(&format!(
        "{HANDLER}    registration_timeout_seconds: 0\n    template_disk_buffer: 0\n    job_retry_attempts: 0\n"
    ));
    let p = &l.config.plugins[0];
    assert_eq!(p.registration_timeout().as_secs(), 80);
    assert_eq!(p.template_disk_buffer_percent(), 10.0);
    assert_eq!(p.job_retry_attempts(), 5);
    assert!(config::render(&l.config).contains("registration_timeout_seconds: 80"));
}

#[test]
fn scope_helpers() {
    let mut p = Plugin::new("E1", PluginKind::Github);
    p.enterprise = Some("ent".into());
    p.queue_name = Some("shared".into());
    assert_eq!(p.scope(), Some(Scope::Enterprise("ent")));
    assert_eq!(
        p.scope().unwrap().registration_url(),
        "https://github.com/enterprises/ent"
    );
    assert_eq!(p.queue_owner(), "shared");
    assert_eq!(p.metrics_key_ending(), "ent/E1");
    let mut o = Plugin::new("O1", PluginKind::GithubReceiver);
    o.owner = Some("acme".into());
    assert_eq!(o.scope(), Some(Scope::Organization("acme")));
    assert_eq!(
        o.scope().unwrap().registration_url(),
        "https://github.com/acme"
    );
    assert_eq!(
        Plugin::new("N", PluginKind::Github).metrics_key_ending(),
        "N"
    );
}

#[test]
fn every_key_is_documented() {
    let keys = key_reference();
    assert!(keys.len() > 80, "{}", keys.len());
    for k in &keys {
        assert!(
            DOCS.contains(&format!("`{}`", k.path)),
            "docs/configuration.md does not list `{}`",
            k.path
        );
        if let Some(env) = &k.env {
            assert!(
                DOCS.contains(env.as_str()),
                "docs/configuration.md does not mention {env}"
            );
        }
    }
}

proptest::proptest! {
    #[test]
    fn never_panics_on_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
        let _ = load(&String::from_utf8_lossy(&bytes));
        let _ = config::load("b", &bytes, &BTreeMap::new());
    }

    #[test]
    fn never_panics_on_yamlish_text(text in "[a-z_:\\- \\[\\]{}\n#'\"&*!|>0-9.,]{0,200}") {
        if let Ok(l) = load(&text) {
            let _ = config::render(&l.config);
        }
    }

    #[test]
    fn never_panics_on_env(value in "\\PC{0,20}") {
        let env: BTreeMap<String, String> = [
            "RUNNER1_MAX_VMS", "RUNNER1_SKIP_PULL", "ANKLET_GLOBAL_DATABASE_PORT",
            "RUNNER1_TEMPLATE_DISK_BUFFER", "RUNNER1_HOST_TO_GUEST_FOLDER_MOUNTS",
        ]
        .into_iter()
        .map(|k| (k.to_owned(), value.clone()))
        .collect();
        let _ = config::load("e", HANDLER, &env).map(|l| config::render(&l.config));
    }
}
