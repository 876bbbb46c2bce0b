//! The exact command lines we give `anka`, one function per call, each starting with `-j` so
//! anka answers with a JSON envelope (anka-cli.md §0.1 and §2; Anklet issues the same lines).
//!
//! Values are passed as separate arguments (no shell on the host). Plans validate every value
//! that came from outside (labels, config, VM names) before calling these, so none can be read
//! as an option. Secrets never appear here: runner credentials go to `anka run`'s stdin.

/// Makes the argument vector from string slices.
fn argv(parts: &[&str]) -> Vec<String> {
    let mut v = Vec::with_capacity(parts.len() + 1);
    v.push("-j".to_owned());
    v.extend(parts.iter().map(|s| (*s).to_owned()));
    v
}

/// `registry` with an optional `--remote <url>` before the subcommand.
fn registry(remote: Option<&str>, rest: &[&str]) -> Vec<String> {
    let mut parts = vec!["registry"];
    if let Some(url) = remote {
        parts.extend(["--remote", url]);
    }
    parts.extend(rest);
    argv(&parts)
}

/// `anka -j version`: body `{product, version, build}`; the startup probe reads `version`.
pub fn version() -> Vec<String> {
    argv(&["version"])
}

/// `anka -j license show`: body `{status, license_type, product, ...}`; startup refuses a
/// licence that is not `valid` or is a run/develop licence.
pub fn license_show() -> Vec<String> {
    argv(&["license", "show"])
}

/// `anka -j list`: every local template and VM (`uuid`, `name`, `version`, `status`).
pub fn list() -> Vec<String> {
    argv(&["list"])
}

/// `anka -j list -r`: running VMs only, to count against Apple's two-VM limit.
pub fn list_running() -> Vec<String> {
    argv(&["list", "-r"])
}

/// `anka -j show <id>`: a template's `image_size` and `access_date`, a VM's `status`.
pub fn show(id: &str) -> Vec<String> {
    argv(&["show", id])
}

/// `anka -j show <id> tag`: the local tags of a template (body is an array).
pub fn show_tag(id: &str) -> Vec<String> {
    argv(&["show", id, "tag"])
}

/// `anka -j registry [--remote <url>] list`: whether the registry answers at all.
pub fn registry_list(remote: Option<&str>) -> Vec<String> {
    registry(remote, &["list"])
}

/// `anka -j registry [--remote <url>] show <template> [--tag <tag>]`: the registry's view of
/// a template (`cpu_cores`, `ram_size`, `image_size`).
pub fn registry_show(remote: Option<&str>, template: &str, tag: Option<&str>) -> Vec<String> {
    let mut rest = vec!["show", template];
    if let Some(t) = tag {
        rest.extend(["--tag", t]);
    }
    registry(remote, &rest)
}

/// `anka -j pull <template> --check-download-size [--tag <tag>] [<registry url>]`: how many
/// bytes a pull would download (`size`, `cached`, `available`; `{}` when already local). The
/// registry URL is positional here, as Anklet passes it.
pub fn check_download_size(template: &str, tag: Option<&str>, remote: Option<&str>) -> Vec<String> {
    let mut parts = vec!["pull", template, "--check-download-size"];
    if let Some(t) = tag {
        parts.extend(["--tag", t]);
    }
    if let Some(url) = remote {
        parts.push(url);
    }
    argv(&parts)
}

/// `anka -j registry [--remote <url>] pull --shrink <template> [--tag <tag>]`: download a
/// template; `--shrink` drops the template's other local tags to save space, as Anklet does.
pub fn registry_pull(remote: Option<&str>, template: &str, tag: Option<&str>) -> Vec<String> {
    let mut rest = vec!["pull", "--shrink", template];
    if let Some(t) = tag {
        rest.extend(["--tag", t]);
    }
    registry(remote, &rest)
}

/// `anka -j clone <template> <vm>`: a copy-on-write VM of the template's current local tag
/// (the pull task made sure it is the job's tag; Anklet passes no tag either).
pub fn clone(template: &str, vm: &str) -> Vec<String> {
    argv(&["clone", template, vm])
}

/// `anka -j start <vm>`: boot a cloned VM.
pub fn start(vm: &str) -> Vec<String> {
    argv(&["start", vm])
}

/// `anka -j mount <vm> <host_path>[:<guest_name>]`: a host folder in a running VM (Anka ≥ 3.9).
pub fn mount(vm: &str, host_path: &str, guest_name: Option<&str>) -> Vec<String> {
    let spec = match guest_name {
        Some(name) => format!("{host_path}:{name}"),
        None => host_path.to_owned(),
    };
    argv(&["mount", vm, &spec])
}

/// `anka -j cp -a <host_file> <vm>:`: copy a file into the guest user's home.
pub fn cp_in(host_file: &str, vm: &str) -> Vec<String> {
    let dest = format!("{vm}:");
    argv(&["cp", "-a", host_file, &dest])
}

/// `anka -j run <vm> bash -c <script>`: run a script in the guest; stdin is forwarded to it.
pub fn run(vm: &str, script: &str) -> Vec<String> {
    argv(&["run", vm, "bash", "-c", script])
}

/// `anka -j delete --yes <id>`: delete a VM (running or not) or a whole template.
pub fn delete(id: &str) -> Vec<String> {
    argv(&["delete", "--yes", id])
}
