//! `vm::shell::quote` against a real POSIX shell: whatever the string, the shell reads it back
//! as exactly one word with the same bytes, so labels cannot inject commands into the guest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::vm::shell;
use proptest::prelude::*;
use std::process::Command;

fn echo_back(words: &[String]) -> Vec<String> {
    let script = format!(
        "for w in {}; do printf '%s\\0' \"$w\"; done",
        shell::join(words)
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("sh runs");
    assert!(out.status.success(), "sh failed on {script:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8 back");
    let mut back: Vec<String> = text.split('\0').map(str::to_owned).collect();
    back.pop();
    back
}

#[test]
fn hostile_strings_come_back_unchanged() {
    let words: Vec<String> = [
        "plain",
        "",
        "it's",
        "'",
        "''",
        "a;reboot",
        "$(touch /tmp/pwned)",
        "`id`",
        "\"quoted\"",
        "back\\slash",
        "*",
        "~",
        "a b  c",
        "ünïcødé",
        "!event",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(echo_back(&words), words);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn any_text_without_nul_is_one_word(words in proptest::collection::vec("[^\\x00]{0,40}", 1..5)) {
        prop_assert_eq!(echo_back(&words), words);
    }
}

mod register_line {
    //! The token-mode register command the plan builds, run by a real bash with a stub
    //! `register-runner.bash`: the script receives exactly Anklet's five arguments, the token
    //! from stdin, whatever the labels and group contain.
    use anklet_core::handler::{JobRef, RunnerCredentials, VmCmd};
    use anklet_core::ids::{JobId, VmName};
    use anklet_core::secret::Secret;
    use anklet_core::vm::{AnkaSettings, ProcessOutput, Step, VmCallPlan};
    use proptest::prelude::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};
    use std::sync::OnceLock;
    use std::time::Duration;

    /// A directory with a stub script that prints its arguments NUL-separated.
    fn stub_dir() -> &'static std::path::Path {
        static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
        DIR.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("anklet-vm-quote-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("register-runner.bash");
            std::fs::write(&path, "#!/bin/bash\nprintf '%s\\0' \"$@\"\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            dir
        })
    }

    /// The `bash -c` script and stdin of the register step of a token plan.
    fn register_step(labels: &[String], group: Option<&str>, token: &str) -> (String, String) {
        let settings = AnkaSettings {
            registry_url: None,
            scripts_dir: "/p/handlers/github".into(),
            registration_url: "https://github.com/acme/widgets".into(),
            runner_group: group.map(str::to_owned),
        };
        let cmd = VmCmd::StartRunner {
            vm: VmName("anklet-vm-mac1-5-1".into()),
            job: JobRef {
                id: JobId(5),
                run_id: 1,
                owner: "acme".into(),
                repo: "widgets".into(),
            },
            labels: labels.to_vec(),
            credentials: RunnerCredentials::Token(Secret::new(token)),
        };
        let mut plan = VmCallPlan::new(&cmd, &settings, Duration::from_secs(60));
        loop {
            match plan.step().clone() {
                Step::Run(inv) if inv.args.iter().any(|a| a.contains("register-runner.bash ")) => {
                    let script = inv.args.last().cloned().unwrap();
                    let stdin = inv.stdin.map(|s| s.expose().to_owned()).unwrap();
                    return (script, stdin);
                }
                Step::Run(inv) => {
                    let ok = if inv.args[1] == "cp" {
                        "{\"status\":\"OK\"}"
                    } else {
                        ""
                    };
                    plan.feed(ProcessOutput::exited(0, ok));
                }
                other => panic!("no register step: {other:?}"),
            }
        }
    }

    /// Runs the script as `anka run` would in the guest. Exit 126 ("Text file busy") is retried:
    /// another test thread may fork while the stub is being written, holding it open briefly.
    fn run_in_bash(script: &str, stdin: &str) -> Vec<String> {
        for _ in 0..20 {
            let mut child = Command::new("bash")
                .arg("-c")
                .arg(script)
                .current_dir(stub_dir())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(stdin.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            if out.status.code() == Some(126) {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            assert!(
                out.status.success(),
                "bash failed on {script:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap();
            let mut args: Vec<String> = text.split('\0').map(str::to_owned).collect();
            args.pop();
            return args;
        }
        panic!("the stub stayed busy");
    }

    #[test]
    fn hostile_labels_and_group_reach_the_script_intact() {
        let labels = vec![
            "self-hosted".to_owned(),
            "x;reboot $(id) `id` 'q'".to_owned(),
        ];
        let (script, stdin) = register_step(&labels, Some("fleet's \"group\""), "TOKEN-1");
        assert!(!script.contains("TOKEN-1"));
        let args = run_in_bash(&script, &stdin);
        assert_eq!(
            args,
            [
                "anklet-vm-mac1-5-1",
                "TOKEN-1",
                "https://github.com/acme/widgets",
                "self-hosted,x;reboot $(id) `id` 'q'",
                "fleet's \"group\"",
            ]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_printable_labels_arrive_as_one_argument(
            labels in proptest::collection::vec("[^\\p{Cc}]{0,20}", 1..4),
            // GitHub registration tokens are 29 upper-case letters and digits; a shorter one
            // (say "5") could appear in the script by chance, as a digit of the VM name.
            token in "[A-Z0-9]{29}",
        ) {
            let (script, stdin) = register_step(&labels, None, &token);
            prop_assert!(!script.contains(&token));
            let args = run_in_bash(&script, &stdin);
            prop_assert_eq!(args.len(), 4);
            prop_assert_eq!(&args[1], &token);
            prop_assert_eq!(&args[3], &labels.join(","));
        }
    }
}
