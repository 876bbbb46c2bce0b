//! The dry-run backend: answers every VM command with success and touches nothing, so a
//! handler's whole lifecycle can be watched on a machine without Anka. The runtime logs each
//! effect (secrets redacted by their `Display`) with the command lines the anka driver would
//! have run ([`commands`]).

use super::plan::{AnkaSettings, Step, VmCallPlan};
use super::process::{ProcessOutput, Program};
use super::shell;
use crate::handler::{DiskSpace, EffectResult, VmCmd, VmState};
use std::time::Duration;

/// The volume a dry run pretends to have: 1 TiB, all free, so no eviction is ever planned.
pub const DRY_RUN_DISK: DiskSpace = DiskSpace {
    total_bytes: 1 << 40,
    available_bytes: 1 << 40,
};

/// The successful answer a real backend would give to `cmd` on an empty, roomy host.
pub fn answer(cmd: &VmCmd) -> EffectResult {
    match cmd {
        VmCmd::Inventory => EffectResult::Inventory {
            templates: Vec::new(),
            disk: DRY_RUN_DISK,
            vms: Vec::new(),
        },
        VmCmd::CheckDownloadSize { .. } => EffectResult::DownloadSize {
            download_bytes: 0,
            disk: DRY_RUN_DISK,
        },
        VmCmd::PullTemplate { spec } => EffectResult::Pulled {
            tag: spec.tag.clone(),
            size_bytes: 0,
        },
        VmCmd::InspectVm { .. } => EffectResult::VmState(VmState::Running),
        VmCmd::DeleteTemplate { .. }
        | VmCmd::Clone { .. }
        | VmCmd::Start { .. }
        | VmCmd::StartRunner { .. }
        | VmCmd::Delete { .. } => EffectResult::Done,
    }
}

/// The command lines a real Anka host would run for `cmd`, for the dry run's log: the plan is
/// walked with successful answers of an empty host (one `show` where a body is read), so the
/// lines are exactly the driver's. Arguments are shell-quoted where needed; stdin is never shown.
pub fn commands(cmd: &VmCmd, settings: &AnkaSettings) -> Vec<String> {
    let mut plan = VmCallPlan::new(cmd, settings, Duration::from_secs(1));
    let mut lines = Vec::new();
    // A plan is a handful of calls; the bound only guards against a plan that loops.
    for _ in 0..32 {
        match plan.step() {
            Step::Run(inv) => {
                let program = match inv.program {
                    Program::Anka => Program::Anka.default_name(),
                    Program::Tart => Program::Tart.default_name(),
                };
                let stdin = if inv.stdin.is_some() {
                    " < [redacted]"
                } else {
                    ""
                };
                let args: Vec<String> = inv
                    .args
                    .iter()
                    .map(|a| shell::quote_for_display(a))
                    .collect();
                lines.push(format!("{program} {}{stdin}", args.join(" ")));
                let body = match inv.args.get(1).map(String::as_str) {
                    Some("list") => "[]",
                    Some("show") => r#"{"image_size":0,"status":"running"}"#,
                    _ => "{}",
                };
                let answer = format!(r#"{{"status":"OK","code":0,"body":{body},"message":""}}"#);
                plan.feed(ProcessOutput::exited(0, answer));
            }
            Step::ProbeDisk => plan.feed_disk(Ok(DRY_RUN_DISK)),
            Step::Done(_) => break,
        }
    }
    lines
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::ids::VmName;

    #[test]
    fn the_log_shows_the_drivers_command_lines_without_secrets() {
        use crate::handler::{JobRef, RunnerCredentials};
        use crate::ids::JobId;
        use crate::secret::Secret;
        let settings = AnkaSettings {
            registry_url: None,
            scripts_dir: "/p/handlers/github".into(),
            registration_url: "https://github.com/o/r".into(),
            runner_group: None,
        };
        let vm = VmName("anklet-vm-h-1-1".into());
        let start = VmCmd::StartRunner {
            vm: vm.clone(),
            job: JobRef {
                id: JobId(1),
                run_id: 2,
                owner: "o".into(),
                repo: "r".into(),
            },
            labels: vec!["self-hosted".into()],
            credentials: RunnerCredentials::Jit(Secret::new("JITSECRET")),
        };
        let lines = commands(&start, &settings);
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with("anka -j run anklet-vm-h-1-1 bash -c 'IFS= read -r ANKLET_JIT;")
        );
        assert!(lines[0].ends_with(" < [redacted]") && !lines[0].contains("JITSECRET"));
        assert_eq!(
            commands(&VmCmd::Delete { vm }, &settings),
            ["anka -j delete --yes anklet-vm-h-1-1"]
        );
        assert_eq!(commands(&VmCmd::Inventory, &settings), ["anka -j list"]);
    }

    #[test]
    fn every_command_succeeds() {
        let vm = VmName("anklet-vm-h-1-1".into());
        assert_eq!(
            answer(&VmCmd::Delete { vm: vm.clone() }),
            EffectResult::Done
        );
        assert_eq!(
            answer(&VmCmd::InspectVm { vm }),
            EffectResult::VmState(VmState::Running)
        );
        assert!(matches!(
            answer(&VmCmd::Inventory),
            EffectResult::Inventory {
                disk: DRY_RUN_DISK,
                ..
            }
        ));
    }
}
