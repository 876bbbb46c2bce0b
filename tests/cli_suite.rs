// The command-line suite both daemons run (included by runtime-blocking/tests/cli.rs and
// runtime-tokio/tests/cli.rs, which define `BIN` and `cmd()` for their binary): version flags
// (including Anklet's `-version`), `check-config` on good, bad and missing files, env
// overrides, the default path, and no secret in any output.

use std::path::PathBuf;

use predicates::prelude::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/config")
        .join(name)
}

const SECRETS: [&str; 3] = [
    "webhook-secret-SEED001-x7Qp",
    "redis-password-SEED001-k2Vb",
    "/Users/runner/.private-key-SEED001.pem",
];

#[test]
fn version_flags() {
    for flag in ["--version", "-V", "-version"] {
        cmd()
            .arg(flag)
            .assert()
            .success()
            .stdout(format!("{BIN} {}\n", env!("CARGO_PKG_VERSION")));
    }
}

#[test]
fn help_explains_the_config_and_check_config() {
    cmd()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("check-config"))
        .stdout(predicate::str::contains("-c, --config <PATH>"))
        .stdout(predicate::str::contains("~/.config/anklet/"))
        .stdout(predicate::str::contains("docs/configuration.md"));
}

#[test]
fn check_config_ok_prints_redacted_settings() {
    let out = cmd()
        .arg("-c")
        .arg(fixture("seed001-main.yml"))
        .arg("check-config")
        .env("GITHUB_RECEIVER_SECRET", "env-secret-should-not-show")
        .env("RUNNER1_MAX_VMS", "1")
        .assert()
        .success()
        .get_output()
        .clone();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stdout.contains("  - name: RUNNER1"), "{stdout}");
    assert!(stdout.contains("secret: [redacted]"), "{stdout}");
    assert!(stdout.contains("# env RUNNER1_MAX_VMS"), "{stdout}");
    assert!(
        stderr.contains("config is valid (2 plugins, 0 warnings)"),
        "{stderr}"
    );
    for secret in SECRETS.iter().chain(&["env-secret-should-not-show"]) {
        assert!(!stdout.contains(secret), "{secret} in stdout");
        assert!(!stderr.contains(secret), "{secret} in stderr");
    }
}

#[test]
fn check_config_malformed_names_file_key_line_and_fix() {
    cmd()
        .args(["check-config", "--config"])
        .arg(fixture("malformed/wrong-type.yml"))
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(
            "wrong-type.yml:16:14: `plugins[1].hook_id`: expected a non-negative integer, found string \"abc\"",
        ));
    cmd()
        .arg("-c")
        .arg(fixture("malformed/receiver-without-secret.yml"))
        .arg("check-config")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "receiver-without-secret.yml:13:5: `plugins[0].secert`: unknown key; it is ignored (did you mean `secret`?)",
        ))
        .stderr(predicate::str::contains(
            "receiver-without-secret.yml:7:5: `plugins[0].secret`: a receiver needs `secret`",
        ))
        .stderr(predicate::str::contains("hint: set `secret:`"))
        .stderr(predicate::str::contains("receiver-secret-typo").not());
    cmd()
        .arg("-c")
        .arg(fixture("seed000-services-verbatim.yml"))
        .arg("check-config")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "seed000-services-verbatim.yml:16:11: invalid YAML",
        ));
}

#[test]
fn bad_env_value_is_exit_2_and_names_the_variable() {
    cmd()
        .arg("-c")
        .arg(fixture("seed001-main.yml"))
        .arg("check-config")
        .env("RUNNER1_SLEEP_INTERVAL", "soon")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "environment variable RUNNER1_SLEEP_INTERVAL (sets `plugins[1].sleep_interval`): expected a non-negative integer, found \"soon\"",
        ));
}

#[test]
fn missing_file_names_the_path_and_how_to_point_at_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.yml");
    cmd()
        .arg("-c")
        .arg(&path)
        .arg("check-config")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "config file {} does not exist",
            path.display()
        )))
        .stderr(predicate::str::contains(
            "point -c (or --config) at your config.yml",
        ));
}

#[test]
fn default_path_uses_home_and_config_file_name() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".config/anklet");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture("seed001-aggregator.yml"), dir.join("config.yml")).unwrap();
    std::fs::copy(fixture("malformed/empty.yml"), dir.join("empty.yml")).unwrap();
    cmd()
        .arg("check-config")
        .env("HOME", home.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("aggregator: true"));
    cmd()
        .arg("check-config")
        .env("HOME", home.path())
        .env("ANKLET_CONFIG_FILE_NAME", "empty.yml")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "empty.yml: the config file is empty",
        ));
    cmd()
        .arg("check-config")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("HOME is not set"))
        .stderr(predicate::str::contains("pass -c"));
}

#[test]
fn no_subcommand_prints_the_summary_then_runs_the_daemon() {
    // The fixture's App key file does not exist here: the daemon starts, says so, exits 1.
    cmd()
        .arg("-c")
        .arg(fixture("seed001-main.yml"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("  - name: GITHUB_RECEIVER"))
        .stdout(predicate::str::contains(SECRETS[0]).not())
        .stderr(predicate::str::contains(
            "cannot read the GitHub App private key file",
        ))
        .stderr(predicate::str::contains(SECRETS[0]).not());
}

#[test]
fn unknown_flags_are_usage_errors() {
    cmd()
        .arg("--frobnicate")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--frobnicate"));
}
