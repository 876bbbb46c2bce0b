//! The blocking anka driver end to end against small shell scripts standing in for `anka`:
//! a whole plan runs (inventory with the real disk probe), the JIT config travels on stdin and
//! never on any process's argv, and a plan never outlives its effect's timeout.
#![cfg(feature = "vm")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::handler::{EffectResult, FailureClass, JobRef, RunnerCredentials, VmCmd};
use anklet_core::ids::{JobId, VmName};
use anklet_core::secret::Secret;
use anklet_core::vm::AnkaSettings;
use anklet_lite::vm::anka::AnkaRunner;
use anklet_lite::vm::call::AnkaConfig;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const JIT: &str = "eyJydW5uZXIiOiJzZWNyZXQtaml0LWNvbmZpZyJ9";

/// The stand-in scripts, written once by a child process (see `anklet_tests::script`: a
/// script still open for writing while another thread forks cannot be executed, ETXTBSY).
fn scripts() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/anka");
        let write = |name: &str, body: &str| {
            let path = dir.path().join(name);
            anklet_tests::script::write_executable(&path, &format!("#!/bin/sh\n{body}\n"));
        };
        write(
            "anka-inventory",
            &format!(
                r#"F={f}
case "$2" in
  list) cat "$F/list_ok.json" ;;
  show) if [ "$3" = c0847bc9-5d2d-4dbc-ba6a-240f7ff08032 ]; then cat "$F/show_template_ok.json"; else cat "$F/show_not_found.json"; exit 3; fi ;;
  *) echo "unexpected $*" >&2; exit 1 ;;
esac"#,
                f = fixtures.display()
            ),
        );
        // Records its pid, waits until the test has read its argv, then records stdin.
        write(
            "anka-jit",
            r#"D=$(dirname "$0")
echo $$ > "$D/jit.pid"
while [ ! -e "$D/jit.go" ]; do sleep 0.02; done
IFS= read -r line
printf '%s' "$line" > "$D/jit.stdin"
printf '%s\n' "$@" > "$D/jit.args""#,
        );
        write("anka-slow", "sleep 30");
        dir
    })
    .path()
}

fn settings() -> AnkaSettings {
    AnkaSettings {
        registry_url: None,
        scripts_dir: "/nonexistent/handlers/github".into(),
        registration_url: "https://github.com/acme/widgets".into(),
        runner_group: None,
    }
}

fn runner(script: &str) -> AnkaRunner {
    AnkaRunner::from(AnkaConfig {
        template_dir: std::env::temp_dir(),
        ..AnkaConfig::new(scripts().join(script))
    })
}

#[test]
fn inventory_runs_list_show_and_the_disk_probe() {
    let result =
        runner("anka-inventory").execute(&VmCmd::Inventory, &settings(), Duration::from_secs(20));
    let EffectResult::Inventory {
        templates,
        disk,
        vms,
    } = result
    else {
        panic!("expected an inventory, got {result:?}");
    };
    assert_eq!(
        templates.len(),
        1,
        "the second template vanished between list and show"
    );
    assert_eq!(templates[0].size_bytes, 42_949_672_960);
    assert!(disk.total_bytes > 0 && disk.available_bytes <= disk.total_bytes);
    assert_eq!(vms.len(), 3);
}

#[test]
fn the_jit_config_is_on_stdin_and_on_no_argv() {
    let dir = scripts();
    let cmd = VmCmd::StartRunner {
        vm: VmName("anklet-vm-mac1-7-1".into()),
        job: JobRef {
            id: JobId(7),
            run_id: 1,
            owner: "acme".into(),
            repo: "widgets".into(),
        },
        labels: vec!["self-hosted".into()],
        credentials: RunnerCredentials::Jit(Secret::new(JIT)),
    };
    let worker = std::thread::spawn(move || {
        runner("anka-jit").execute(&cmd, &settings(), Duration::from_secs(20))
    });
    let pidfile = dir.join("jit.pid");
    let until = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Ok(text) = std::fs::read_to_string(&pidfile)
            && let Ok(pid) = text.trim().parse::<u32>()
        {
            break pid;
        }
        assert!(Instant::now() < until, "the fake anka never started");
        std::thread::sleep(Duration::from_millis(10));
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    std::fs::write(dir.join("jit.go"), b"").unwrap();
    assert_eq!(worker.join().unwrap(), EffectResult::Done);
    assert!(
        cmdline.contains("run anklet-vm-mac1-7-1 bash -c"),
        "{cmdline}"
    );
    assert!(cmdline.contains("--jitconfig"), "{cmdline}");
    assert!(!cmdline.contains(JIT), "JIT config on argv: {cmdline}");
    assert_eq!(std::fs::read_to_string(dir.join("jit.stdin")).unwrap(), JIT);
    assert!(
        !std::fs::read_to_string(dir.join("jit.args"))
            .unwrap()
            .contains(JIT)
    );
}

#[test]
fn a_plan_never_outlives_its_timeout() {
    let started = Instant::now();
    let result = runner("anka-slow").execute(
        &VmCmd::Start {
            vm: VmName("anklet-vm-mac1-8-1".into()),
        },
        &settings(),
        Duration::from_millis(500),
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let EffectResult::Failed(f) = result else {
        panic!("{result:?}")
    };
    assert_eq!(f.class, FailureClass::TimedOut);
}

#[test]
fn a_missing_anka_is_a_transient_failure() {
    let r = AnkaRunner::new(PathBuf::from("/nonexistent/anka"));
    let result = r.execute(
        &VmCmd::Delete {
            vm: VmName("anklet-vm-mac1-9-1".into()),
        },
        &settings(),
        Duration::from_secs(5),
    );
    let EffectResult::Failed(f) = result else {
        panic!("{result:?}")
    };
    assert_eq!(f.class, FailureClass::Transient);
}
