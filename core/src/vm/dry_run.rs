//! The dry-run backend: answers every VM command with success and touches nothing, so a
//! handler's whole lifecycle can be watched (each effect is logged by the runtime, secrets
//! redacted by their `Display`) on a machine without Anka.

use crate::handler::{DiskSpace, EffectResult, VmCmd, VmState};

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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::ids::VmName;

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
