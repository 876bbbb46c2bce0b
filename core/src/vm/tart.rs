//! The command lines we would give Cirrus Labs' `tart` (anka-cli.md §5), for hosts that use
//! tart instead of Anka. tart answers in plain text (JSON only from `list`/`get` with
//! `--format json`) and keeps a VM alive only while `tart run` runs, so a driver spawns `run`
//! detached and talks to the guest with `exec`.

/// How long `tart ip` waits for the guest to get an address, in seconds.
pub const IP_WAIT_SECONDS: u32 = 60;

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

/// `tart clone <source> <vm>`: an APFS copy-on-write clone (pulls `source` if it is remote).
pub fn clone(source: &str, vm: &str) -> Vec<String> {
    argv(&["clone", source, vm])
}

/// `tart run <vm> --no-graphics`: boots the VM and lives as long as it runs.
pub fn run(vm: &str) -> Vec<String> {
    argv(&["run", vm, "--no-graphics"])
}

/// `tart ip <vm> --wait 60`: the guest's address once it has one.
pub fn ip(vm: &str) -> Vec<String> {
    let wait = IP_WAIT_SECONDS.to_string();
    argv(&["ip", vm, "--wait", &wait])
}

/// `tart exec -i <vm> <command...>`: run a command through the guest agent, stdin forwarded.
pub fn exec(vm: &str, command: &[&str]) -> Vec<String> {
    let mut parts = vec!["exec", "-i", vm];
    parts.extend(command);
    argv(&parts)
}

/// `tart stop <vm>`: graceful, then forced after tart's own timeout.
pub fn stop(vm: &str) -> Vec<String> {
    argv(&["stop", vm])
}

/// `tart delete <vm>`: tart refuses a running VM, so stop it first.
pub fn delete(vm: &str) -> Vec<String> {
    argv(&["delete", vm])
}

/// `tart list --format json`: local and OCI VMs with `Name`, `State`, `Size`, `Accessed`.
pub fn list_json() -> Vec<String> {
    argv(&["list", "--format", "json"])
}
