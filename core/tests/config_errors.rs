//! Every malformed fixture (tests/fixtures/config/malformed/) fails with an error that names
//! the key path and the right line, and says how to fix it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use anklet_core::config::{self, ConfigError, LoadFailure, WarningKind};

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../tests/fixtures/config/malformed/", $name)),
        )
    };
}

fn fail((name, text): (&str, &str)) -> LoadFailure {
    match config::load(name, text, &BTreeMap::new()) {
        Ok(_) => panic!("{name} should not load"),
        Err(f) => f,
    }
}

/// Asserts exactly one error, at `path` and `line`, whose text contains every `needle`.
fn one_error(f: &LoadFailure, path: Option<&str>, line: u64, needles: &[&str]) {
    assert_eq!(f.errors.len(), 1, "{f}");
    let e = &f.errors[0];
    assert_eq!(e.path(), path, "{e}");
    assert_eq!(e.line(), Some(line), "{e}");
    let text = e.to_string();
    if let Some(path) = path {
        assert!(text.contains(&format!("`{path}`")), "{text}");
    }
    assert!(text.contains(&format!(":{line}:")), "{text}");
    for n in needles {
        assert!(text.contains(n), "missing {n:?} in:\n{text}");
    }
}

#[test]
fn wrong_type() {
    let f = fail(fixture!("wrong-type.yml"));
    one_error(
        &f,
        Some("plugins[1].hook_id"),
        16,
        &[
            "wrong-type.yml:16:14",
            "expected a non-negative integer, found string \"abc\"",
        ],
    );
}

#[test]
fn unknown_plugin() {
    let f = fail(fixture!("unknown-plugin.yml"));
    one_error(
        &f,
        Some("plugins[0].plugin"),
        6,
        &[
            "plugin `gitlab` is not supported",
            "hint: did you mean `github`?",
        ],
    );
}

#[test]
fn missing_name_points_at_the_entry() {
    let f = fail(fixture!("missing-name.yml"));
    one_error(
        &f,
        Some("plugins[1].name"),
        10,
        &["`name` is required", "hint: add `name: <unique name>`"],
    );
}

#[test]
fn bad_yaml_syntax() {
    let f = fail(fixture!("bad-syntax.yml"));
    one_error(&f, None, 8, &["invalid YAML", "hint:"]);
    assert!(matches!(f.errors[0], ConfigError::Syntax { .. }));
}

#[test]
fn duplicate_plugin_name() {
    let f = fail(fixture!("duplicate-name.yml"));
    one_error(
        &f,
        Some("plugins[1].name"),
        10,
        &[
            "already used by plugins[0] (line 7)",
            "unique across all hosts",
        ],
    );
}

#[test]
fn enterprise_with_owner() {
    let f = fail(fixture!("enterprise-owner.yml"));
    one_error(
        &f,
        Some("plugins[0].enterprise"),
        9,
        &["`enterprise` and `owner` are both set", "hint:"],
    );
}

#[test]
fn receiver_without_secret_and_the_typo_that_caused_it() {
    let f = fail(fixture!("receiver-without-secret.yml"));
    one_error(
        &f,
        Some("plugins[0].secret"),
        7,
        &["a receiver needs `secret`", "global_receiver_secret"],
    );
    assert_eq!(f.warnings.len(), 1);
    let w = &f.warnings[0];
    assert_eq!(w.kind, WarningKind::UnknownKey);
    assert_eq!(w.path, "plugins[0].secert");
    assert_eq!(w.line, Some(13));
    assert!(w.to_string().contains("did you mean `secret`?"), "{w}");
    // The value of the misspelt secret is not echoed either.
    assert!(!f.to_string().contains("receiver-secret-typo"));
    assert!(!w.to_string().contains("receiver-secret-typo"));
}

#[test]
fn repo_without_owner() {
    let f = fail(fixture!("repo-without-owner.yml"));
    one_error(
        &f,
        Some("plugins[0].repo"),
        8,
        &["`repo` is set without `owner`", "hint: add `owner:"],
    );
}

#[test]
fn handler_without_credentials() {
    let f = fail(fixture!("handler-without-credentials.yml"));
    one_error(
        &f,
        Some("plugins[0].token"),
        6,
        &["no GitHub credentials", "global_token"],
    );
    assert_eq!(f.warnings.len(), 1);
    assert_eq!(f.warnings[0].line, Some(9));
    assert!(
        f.warnings[0]
            .to_string()
            .contains("`plugins[0].sleep_intervl`: unknown key; it is ignored (did you mean `sleep_interval`?)"),
        "{}",
        f.warnings[0]
    );
}

#[test]
fn negative_integer_is_a_type_error() {
    let f = fail(fixture!("nonsense-values.yml"));
    one_error(
        &f,
        Some("plugins[0].sleep_interval"),
        11,
        &["found integer -5", "hint: use 0 or a positive whole number"],
    );
}

#[test]
fn max_vms_zero_is_invalid() {
    let (name, text) = fixture!("nonsense-values.yml");
    let text = text.replace("    sleep_interval: -5\n", "");
    let f = fail((name, &text));
    one_error(
        &f,
        Some("plugins[0].max_vms"),
        10,
        &["`max_vms` must be at least 1", "default (2)"],
    );
}

#[test]
fn name_with_space() {
    let f = fail(fixture!("name-with-space.yml"));
    one_error(
        &f,
        Some("plugins[0].name"),
        6,
        &["\"RUNNER 1\" contains whitespace"],
    );
}

#[test]
fn duplicate_key() {
    let f = fail(fixture!("duplicate-key.yml"));
    one_error(&f, None, 9, &["the key `owner` appears twice"]);
}

#[test]
fn empty_file() {
    let f = fail(fixture!("empty.yml"));
    assert_eq!(f.errors.len(), 1);
    assert!(matches!(f.errors[0], ConfigError::Empty { .. }));
    assert!(
        f.to_string()
            .contains("empty.yml: the config file is empty")
    );
    for text in ["", "\n\n", "---\n", "# nothing\n"] {
        let f = fail(("x.yml", text));
        assert!(matches!(f.errors[0], ConfigError::Empty { .. }), "{text:?}");
    }
}

#[test]
fn bad_env_int_names_the_variable() {
    let (name, text) = fixture!("env-target.yml");
    let env: BTreeMap<String, String> = [
        ("RUNNER1_SLEEP_INTERVAL", "soon"),
        ("ANKLET_GLOBAL_TOKEN", "ghp_env_secret_value"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let f = config::load(name, text, &env).unwrap_err();
    assert_eq!(f.errors.len(), 1, "{f}");
    let e = &f.errors[0];
    assert_eq!(e.path(), Some("plugins[0].sleep_interval"));
    assert_eq!(
        e.to_string(),
        "environment variable RUNNER1_SLEEP_INTERVAL (sets `plugins[0].sleep_interval`): expected a non-negative integer, found \"soon\""
    );
    assert!(!f.to_string().contains("ghp_env_secret_value"));
}

#[test]
fn all_errors_of_a_stage_are_reported_together() {
    let text = "\
plugins:
  - name: A
    plugin: github
    max_vms: many
    sleep_interval: [1]
  - name: B
    plugin: gitlab
";
    let f = fail(("multi.yml", text));
    let found: Vec<(Option<&str>, Option<u64>)> =
        f.errors.iter().map(|e| (e.path(), e.line())).collect();
    assert_eq!(
        found,
        [
            (Some("plugins[0].max_vms"), Some(4)),
            (Some("plugins[0].sleep_interval"), Some(5)),
            (Some("plugins[1].plugin"), Some(7)),
        ]
    );
}

#[test]
fn no_panic_on_hostile_or_odd_input() {
    let inputs: &[&[u8]] = &[
        b"\xff\xfe\x00",
        b"plugins: {",
        b"plugins: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        b"a: &a [*a]",
        b"- 1\n- 2\n",
        b"42",
        b"plugins: 3",
        b"plugins:\n  - 3\n  - [a]\n  -\n",
        b"? [a, b]\n: c\n",
        b"plugins:\n  - name: x\n    plugin: github\n    database: 5\n",
        b"a: 1\n---\nb: 2\n",
        b"metrics:\n  port: 99999999999999999999999999999\n",
        b"\t- a",
        b"global_template_disk_buffer: .nan\n",
    ];
    for input in inputs {
        let result = config::load("odd.yml", input, &BTreeMap::new());
        assert!(result.is_err(), "{:?}", String::from_utf8_lossy(input));
        let _ = result.map_err(|f| f.to_string());
    }
}
