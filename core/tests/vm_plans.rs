//! Golden transcripts of every `VmCmd`'s anka plan: the exact argv of each step, its stdin and
//! timeout, the answers fed back (fixtures from tests/fixtures/anka) and the folded result.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::handler::{DiskSpace, EffectResult, JobRef, RunnerCredentials, VmCmd};
use anklet_core::ids::{JobId, TemplateId, VmName};
use anklet_core::labels::VmSpec;
use anklet_core::secret::Secret;
use anklet_core::vm::plan::JIT_SCRIPT;
use anklet_core::vm::{AnkaSettings, Exit, Invocation, ProcessOutput, Step, VmCallPlan};
use std::fmt::Write as _;
use std::time::Duration;

const JIT: &str = "eyJhZ2VudElkIjo0Mn0SECRETJIT==";
const TOKEN: &str = "AABBCCSECRETTOKEN";

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../../tests/fixtures/anka/", $name)).as_slice()
    };
}

fn settings() -> AnkaSettings {
    AnkaSettings {
        registry_url: Some("https://registry.example:8089".into()),
        scripts_dir: "/Users/ci/.config/anklet/plugins/handlers/github".into(),
        registration_url: "https://github.com/acme/widgets".into(),
        runner_group: None,
    }
}

fn vm() -> VmName {
    VmName("anklet-vm-mac1-4242-1".into())
}

fn spec(tag: Option<&str>) -> VmSpec {
    VmSpec {
        template: TemplateId("c0847bc9-5d2d-4dbc-ba6a-240f7ff08032".into()),
        tag: tag.map(str::to_owned),
    }
}

fn job() -> JobRef {
    JobRef {
        id: JobId(4242),
        run_id: 77,
        owner: "acme".into(),
        repo: "widgets".into(),
    }
}

const DISK: DiskSpace = DiskSpace {
    total_bytes: 1_000_000_000_000,
    available_bytes: 150_000_000_000,
};

/// Runs `cmd`'s plan against `answer`, writing what happens; checks that no secret reaches an
/// argument or the transcript.
fn transcript(
    cmd: &VmCmd,
    settings: &AnkaSettings,
    mut answer: impl FnMut(&Invocation) -> ProcessOutput,
) -> String {
    let mut plan = VmCallPlan::new(cmd, settings, Duration::from_secs(300));
    let mut t = format!("cmd: {cmd}\n");
    for _ in 0..50 {
        match plan.step().clone() {
            Step::Run(inv) => {
                for a in &inv.args {
                    assert!(
                        !a.contains(JIT) && !a.contains(TOKEN),
                        "secret in argv: {a}"
                    );
                }
                let stdin = match &inv.stdin {
                    Some(s) => format!(" stdin={s} ({} bytes)", s.expose().len()),
                    None => String::new(),
                };
                writeln!(
                    t,
                    "run {:?} {:?} timeout={:?}{stdin}",
                    inv.program, inv.args, inv.timeout
                )
                .unwrap();
                let out = answer(&inv);
                let shown = String::from_utf8_lossy(&out.stdout);
                // The fake answer may echo a secret (that is the point of some cases); the
                // transcript shows it redacted so the final check covers only the plan's text.
                let last = shown
                    .lines()
                    .last()
                    .unwrap_or("")
                    .replace(JIT, "<JIT>")
                    .replace(TOKEN, "<TOKEN>");
                writeln!(t, "  <- {:?} {}", out.exit, last).unwrap();
                plan.feed(out);
            }
            Step::ProbeDisk => {
                writeln!(t, "probe disk <- {DISK:?}").unwrap();
                plan.feed_disk(Ok(DISK));
            }
            Step::Done(result) => {
                writeln!(t, "= {result:#?}").unwrap();
                assert!(
                    !t.contains(JIT) && !t.contains(TOKEN),
                    "secret leaked:\n{t}"
                );
                return t;
            }
        }
    }
    panic!("plan did not finish:\n{t}");
}

fn ok(bytes: &[u8]) -> ProcessOutput {
    ProcessOutput::exited(0, bytes)
}

fn fail(code: i32, bytes: &[u8]) -> ProcessOutput {
    ProcessOutput::exited(code, bytes)
}

fn sub(inv: &Invocation) -> &str {
    inv.args.get(1).map_or("", String::as_str)
}

#[test]
fn inventory() {
    let s = settings();
    let mut out = transcript(&VmCmd::Inventory, &s, |inv| {
        match (sub(inv), inv.args.get(2).map(String::as_str)) {
            ("list", _) => ok(fixture!("list_ok.json")),
            ("show", Some("c0847bc9-5d2d-4dbc-ba6a-240f7ff08032")) => {
                ok(fixture!("show_template_ok.json"))
            }
            ("show", _) => ok(fixture!("show_template_b_ok.json")),
            _ => fail(1, b"unexpected"),
        }
    });
    out += &transcript(&VmCmd::Inventory, &s, |inv| match sub(inv) {
        "list" => ok(fixture!("list_ok.json")),
        _ => fail(1, fixture!("show_not_found.json")),
    });
    out += &transcript(&VmCmd::Inventory, &s, |_| ok(fixture!("list_empty.json")));
    out += &transcript(&VmCmd::Inventory, &s, |_| {
        fail(1, fixture!("garbage_human_error.txt"))
    });
    insta::assert_snapshot!(out);
}

#[test]
fn check_download_size() {
    let s = settings();
    let cmd = VmCmd::CheckDownloadSize {
        spec: spec(Some("vanilla+port-forward")),
    };
    let mut out = transcript(&cmd, &s, |_| ok(fixture!("check_download_size_ok.json")));
    let cmd = VmCmd::CheckDownloadSize { spec: spec(None) };
    let local = AnkaSettings {
        registry_url: None,
        ..settings()
    };
    out += &transcript(&cmd, &local, |_| {
        ok(fixture!("check_download_size_local.json"))
    });
    out += &transcript(&cmd, &s, |_| {
        fail(3, fixture!("registry_pull_not_found.json"))
    });
    insta::assert_snapshot!(out);
}

#[test]
fn delete_template() {
    let s = settings();
    let cmd = VmCmd::DeleteTemplate {
        template: spec(None).template,
    };
    let mut out = transcript(&cmd, &s, |_| ok(fixture!("delete_ok.json")));
    out += &transcript(&cmd, &s, |_| fail(1, fixture!("show_not_found.json")));
    insta::assert_snapshot!(out);
}

#[test]
fn pull_template() {
    let s = settings();
    let cmd = VmCmd::PullTemplate {
        spec: spec(Some("vanilla+port-forward")),
    };
    let mut out = transcript(&cmd, &s, |inv| match sub(inv) {
        "registry" => ok(fixture!("registry_pull_progress.txt")),
        _ => ok(fixture!("show_template_ok.json")),
    });
    let latest = VmCmd::PullTemplate { spec: spec(None) };
    let no_registry = AnkaSettings {
        registry_url: None,
        ..settings()
    };
    out += &transcript(&latest, &no_registry, |inv| match sub(inv) {
        "registry" => ok(fixture!("registry_pull_progress.txt")),
        _ => ok(fixture!("show_template_ok.json")),
    });
    out += &transcript(&cmd, &s, |_| {
        fail(3, fixture!("registry_pull_not_found.json"))
    });
    out += &transcript(&cmd, &s, |_| {
        fail(1, fixture!("registry_pull_disk_full.txt"))
    });
    out += &transcript(&cmd, &s, |_| {
        ProcessOutput::new(
            Exit::TimedOut {
                after: Duration::from_secs(300),
            },
            "{\"progress\":3}\n",
        )
    });
    insta::assert_snapshot!(out);
}

#[test]
fn clone_and_start() {
    let s = settings();
    let clone = VmCmd::Clone {
        vm: vm(),
        spec: spec(Some("vanilla+port-forward")),
    };
    let mut out = transcript(&clone, &s, |_| ok(fixture!("clone_ok.json")));
    out += &transcript(&clone, &s, |_| fail(1, fixture!("clone_exists.json")));
    let start = VmCmd::Start { vm: vm() };
    out += &transcript(&start, &s, |_| ok(fixture!("start_ok.json")));
    out += &transcript(&start, &s, |_| {
        fail(1, fixture!("start_licence_limit.json"))
    });
    insta::assert_snapshot!(out);
}

fn start_runner(credentials: RunnerCredentials, labels: &[&str]) -> VmCmd {
    VmCmd::StartRunner {
        vm: vm(),
        job: job(),
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        credentials,
    }
}

#[test]
fn start_runner_jit() {
    let s = settings();
    let cmd = start_runner(RunnerCredentials::Jit(Secret::new(JIT)), &["self-hosted"]);
    let mut seen_stdin = String::new();
    let mut out = transcript(&cmd, &s, |inv| {
        seen_stdin = inv
            .stdin
            .as_ref()
            .map(|s| s.expose().to_owned())
            .unwrap_or_default();
        ok(b"")
    });
    assert_eq!(seen_stdin, format!("{JIT}\n"));
    // A guest that echoes the credential in its error output: the failure is redacted.
    out += &transcript(&cmd, &s, |_| {
        fail(
            125,
            format!("connection lost while running {JIT}").as_bytes(),
        )
    });
    insta::assert_snapshot!(out);
}

#[test]
fn jit_script_is_the_one_docs_emulators_md_specifies() {
    let doc = include_str!("../../docs/emulators.md");
    assert!(
        doc.contains(JIT_SCRIPT),
        "docs/emulators.md and JIT_SCRIPT differ"
    );
}

#[test]
fn start_runner_token() {
    let s = AnkaSettings {
        runner_group: Some("mac fleet's".into()),
        ..settings()
    };
    let cmd = start_runner(
        RunnerCredentials::Token(Secret::new(TOKEN)),
        &[
            "self-hosted",
            "anka-template:c0847bc9-5d2d-4dbc-ba6a-240f7ff08032",
            "x;reboot $(id)",
        ],
    );
    let mut stdins = Vec::new();
    let mut out = transcript(&cmd, &s, |inv| {
        stdins.push(inv.stdin.as_ref().map(|s| s.expose().to_owned()));
        match sub(inv) {
            "cp" => ok(fixture!("cp_ok.json")),
            _ => ok(b"runner output\n"),
        }
    });
    assert_eq!(
        stdins.iter().flatten().collect::<Vec<_>>(),
        [&format!("{TOKEN}\n")]
    );
    out += &transcript(&cmd, &s, |inv| match sub(inv) {
        "cp" => ok(fixture!("cp_ok.json")),
        _ if inv.args.iter().any(|a| a.contains("register")) => {
            fail(1, b"Http response code: NotFound")
        }
        _ => ok(b""),
    });
    insta::assert_snapshot!(out);
}

#[test]
fn inspect_and_delete() {
    let s = settings();
    let inspect = VmCmd::InspectVm { vm: vm() };
    let mut out = transcript(&inspect, &s, |_| ok(fixture!("show_vm_running.json")));
    out += &transcript(&inspect, &s, |_| ok(fixture!("show_vm_failed.json")));
    out += &transcript(&inspect, &s, |_| fail(1, fixture!("show_not_found.json")));
    let delete = VmCmd::Delete { vm: vm() };
    out += &transcript(&delete, &s, |_| ok(fixture!("delete_ok.json")));
    out += &transcript(&delete, &s, |_| fail(3, fixture!("show_not_found.json")));
    out += &transcript(&delete, &s, |_| fail(1, fixture!("garbage_truncated.txt")));
    out += &transcript(&delete, &s, |_| {
        ProcessOutput::new(
            Exit::SpawnFailed("No such file or directory (os error 2)".into()),
            "",
        )
    });
    insta::assert_snapshot!(out);
}

#[test]
fn unsafe_values_never_reach_a_command_line() {
    let s = settings();
    let bad = VmCmd::Clone {
        vm: vm(),
        spec: VmSpec {
            template: TemplateId("--help".into()),
            tag: None,
        },
    };
    let mut out = transcript(&bad, &s, |_| panic!("nothing may run"));
    let bad_vm = VmCmd::Delete {
        vm: VmName("vm:/etc".into()),
    };
    out += &transcript(&bad_vm, &s, |_| panic!("nothing may run"));
    let bad_label = start_runner(RunnerCredentials::Token(Secret::new(TOKEN)), &["a\nb"]);
    out += &transcript(&bad_label, &s, |_| panic!("nothing may run"));
    let bad_jit = start_runner(RunnerCredentials::Jit(Secret::new("abc\ndef")), &[]);
    out += &transcript(&bad_jit, &s, |_| panic!("nothing may run"));
    insta::assert_snapshot!(out);
}

#[test]
fn feeding_at_the_wrong_step_changes_nothing() {
    let mut plan = VmCallPlan::new(&VmCmd::Inventory, &settings(), Duration::from_secs(5));
    plan.feed_disk(Ok(DISK));
    assert!(matches!(plan.step(), Step::Run(_)));
    plan.feed(ok(fixture!("list_empty.json")));
    assert_eq!(plan.step(), &Step::ProbeDisk);
    plan.feed(ok(fixture!("list_ok.json")));
    assert_eq!(plan.step(), &Step::ProbeDisk);
    plan.feed_disk(Err("statvfs failed".into()));
    assert!(matches!(plan.result(), Some(EffectResult::Failed(_))));
}

#[test]
fn drive_runs_a_plan_to_its_result() {
    let plan = VmCallPlan::new(
        &VmCmd::Start { vm: vm() },
        &settings(),
        Duration::from_secs(5),
    );
    let mut calls = 0;
    let result = plan.drive(
        |_| {
            calls += 1;
            ok(fixture!("start_ok.json"))
        },
        || Ok(DISK),
    );
    assert_eq!((result, calls), (EffectResult::Done, 1));
}
