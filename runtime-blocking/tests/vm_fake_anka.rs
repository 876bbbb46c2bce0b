//! The blocking anka driver against the fake `anka` (tests/fake-anka), which speaks Anka 3.x's
//! argv grammar and envelopes: every `VmCmd` the handler sends is run as real processes and
//! folded into the result the lifecycle expects. This test binary is also the fake: run as
//! `anka` (a symlink to itself, busybox style), it hands its arguments to `fake_anka::run`.
#![cfg(feature = "vm")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::handler::{EffectResult, FailureClass, JobRef, RunnerCredentials, VmCmd, VmState};
use anklet_core::ids::{JobId, TemplateId, VmName};
use anklet_core::labels::VmSpec;
use anklet_core::secret::Secret;
use anklet_core::vm::AnkaSettings;
use anklet_lite::vm::anka::AnkaRunner;
use anklet_lite::vm::call::AnkaConfig;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

const TPL: &str = "c0847bc9-5d2d-4dbc-ba6a-240f7ff08032";
const T: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    if Path::new(&argv0).file_name().is_some_and(|n| n == "anka") {
        let code = fake_anka::run(args.collect(), fake_anka::Io::std());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    driver_against_the_fake();
    println!("vm_fake_anka: ok");
    ExitCode::SUCCESS
}

fn spec(tag: &str) -> VmSpec {
    VmSpec {
        template: TemplateId(TPL.into()),
        tag: Some(tag.into()),
    }
}

fn vm(n: u32) -> VmName {
    VmName(format!("anklet-vm-mac1-{n}-1"))
}

fn failed(result: EffectResult) -> (FailureClass, String) {
    match result {
        EffectResult::Failed(f) => (f.class, f.message),
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn driver_against_the_fake() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("seed.json"),
        format!(
            r#"{{"disk_total": 10000, "time_scale": 0.001,
                "registry": [{{"uuid": "{TPL}", "name": "macos-15", "latest": "v2",
                              "tags": {{"v1": {{"size": 2000}}, "v2": {{"size": 3000}}}}}}]}}"#
        ),
    )
    .unwrap();
    let me = std::env::current_exe().unwrap();
    std::os::unix::fs::symlink(&me, dir.path().join("anka")).unwrap();
    let wrapper = dir.path().join("anka-wrapper");
    anklet_tests::script::write_executable(
        &wrapper,
        &format!(
            "#!/bin/sh\nFAKE_ANKA_HOME='{}' exec '{}' \"$@\"\n",
            home.display(),
            dir.path().join("anka").display()
        ),
    );
    let scripts = dir.path().join("plugins/handlers/github");
    std::fs::create_dir_all(&scripts).unwrap();
    for s in [
        "install-runner.bash",
        "register-runner.bash",
        "start-runner.bash",
    ] {
        std::fs::write(scripts.join(s), "#!/bin/bash\nexit 0\n").unwrap();
    }
    let runner = AnkaRunner::from(AnkaConfig {
        template_dir: dir.path().to_path_buf(),
        ..AnkaConfig::new(&wrapper)
    });
    let settings = AnkaSettings {
        registry_url: None,
        scripts_dir: scripts.display().to_string(),
        // Nothing listens there: registration must fail, and be reported as a failure.
        registration_url: "http://127.0.0.1:9/acme/widgets".into(),
        runner_group: None,
    };
    let run = |cmd: VmCmd| runner.execute(&cmd, &settings, T);

    let EffectResult::Inventory { templates, vms, .. } = run(VmCmd::Inventory) else {
        panic!("inventory failed")
    };
    assert!(templates.is_empty() && vms.is_empty());

    let EffectResult::DownloadSize {
        download_bytes,
        disk,
    } = run(VmCmd::CheckDownloadSize { spec: spec("v2") })
    else {
        panic!("download size failed")
    };
    assert_eq!(download_bytes, 3000);
    assert!(
        disk.available_bytes <= 10_000,
        "anka's own figure bounds the probe: {disk:?}"
    );

    assert_eq!(
        run(VmCmd::PullTemplate { spec: spec("v2") }),
        EffectResult::Pulled {
            tag: Some("v2".into()),
            size_bytes: 3000
        }
    );
    let EffectResult::DownloadSize { download_bytes, .. } =
        run(VmCmd::CheckDownloadSize { spec: spec("v2") })
    else {
        panic!("download size failed")
    };
    assert_eq!(download_bytes, 0, "already local");

    let missing = VmSpec {
        template: TemplateId("no-such-template".into()),
        tag: None,
    };
    assert_eq!(
        failed(run(VmCmd::PullTemplate { spec: missing })).0,
        FailureClass::NotFound
    );
    assert_eq!(
        failed(run(VmCmd::PullTemplate { spec: spec("v9") })).0,
        FailureClass::NotFound
    );

    let clone = |n| VmCmd::Clone {
        vm: vm(n),
        spec: spec("v2"),
    };
    assert_eq!(run(clone(1)), EffectResult::Done);
    assert_eq!(
        failed(run(clone(1))).0,
        FailureClass::Permanent,
        "name exists"
    );
    assert_eq!(
        run(VmCmd::InspectVm { vm: vm(1) }),
        EffectResult::VmState(VmState::Stopped)
    );
    assert_eq!(run(VmCmd::Start { vm: vm(1) }), EffectResult::Done);
    assert_eq!(
        run(VmCmd::InspectVm { vm: vm(1) }),
        EffectResult::VmState(VmState::Running)
    );
    assert_eq!(run(clone(2)), EffectResult::Done);
    assert_eq!(run(clone(3)), EffectResult::Done);
    assert_eq!(run(VmCmd::Start { vm: vm(2) }), EffectResult::Done);
    let (class, message) = failed(run(VmCmd::Start { vm: vm(3) }));
    assert_eq!(class, FailureClass::Transient);
    assert!(message.contains("licence limit"), "{message}");

    let EffectResult::Inventory { templates, vms, .. } = run(VmCmd::Inventory) else {
        panic!("inventory failed")
    };
    assert_eq!(templates.len(), 1);
    assert_eq!(templates[0].template.0, TPL);
    assert_eq!(templates[0].tag.as_deref(), Some("v2"));
    assert_eq!(templates[0].size_bytes, 3000);
    for n in 1..=3 {
        assert!(vms.contains(&vm(n)), "{vms:?}");
    }

    let token = VmCmd::StartRunner {
        vm: vm(2),
        job: JobRef {
            id: JobId(2),
            run_id: 1,
            owner: "acme".into(),
            repo: "widgets".into(),
        },
        labels: vec!["self-hosted".into(), "x;reboot".into()],
        credentials: RunnerCredentials::Token(Secret::new("FAKE-REG-TOKEN")),
    };
    let (class, message) = failed(run(token));
    assert_eq!(class, FailureClass::Transient);
    assert!(!message.contains("FAKE-REG-TOKEN"), "{message}");
    assert!(
        home.join("vms")
            .join(vm(2).0)
            .join("home/register-runner.bash")
            .exists()
    );

    assert_eq!(run(VmCmd::Delete { vm: vm(1) }), EffectResult::Done);
    assert_eq!(
        run(VmCmd::Delete { vm: vm(1) }),
        EffectResult::Done,
        "idempotent"
    );
    assert_eq!(
        run(VmCmd::InspectVm { vm: vm(1) }),
        EffectResult::VmState(VmState::Missing)
    );
    assert_eq!(
        run(VmCmd::DeleteTemplate {
            template: TemplateId(TPL.into())
        }),
        EffectResult::Done
    );
    assert_eq!(
        run(VmCmd::DeleteTemplate {
            template: TemplateId(TPL.into())
        }),
        EffectResult::Done,
        "idempotent"
    );
    for n in [2, 3] {
        assert_eq!(run(VmCmd::Delete { vm: vm(n) }), EffectResult::Done);
    }
    let EffectResult::Inventory { templates, vms, .. } = run(VmCmd::Inventory) else {
        panic!("inventory failed")
    };
    assert!(
        templates.is_empty() && vms.is_empty(),
        "{templates:?} {vms:?}"
    );
}
