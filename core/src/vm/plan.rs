//! How one [`VmCmd`] becomes a short sequence of `anka` invocations, and how their outputs fold
//! into one [`EffectResult`]: a small sans-IO step machine, so a runtime only runs processes.
//!
//! ```text
//! let mut plan = VmCallPlan::new(&cmd, &settings, timeout);
//! loop {
//!     match plan.step() {
//!         Step::Run(inv) => { let out = run_process(inv); plan.feed(out) }
//!         Step::ProbeDisk => { let d = probe_volume(); plan.feed_disk(d) }
//!         Step::Done(result) => break result.clone(),
//!     }
//! }
//! ```
//!
//! | command | invocations |
//! |---|---|
//! | `Inventory` | `list`, `show <uuid>` per template, then a disk probe |
//! | `CheckDownloadSize` | `pull <uuid> --check-download-size [--tag T] [registry]`, disk probe |
//! | `DeleteTemplate` | `delete --yes <uuid>` (not found = done) |
//! | `PullTemplate` | `registry [--remote R] pull --shrink <uuid> [--tag T]`, `show <uuid>` |
//! | `Clone` / `Start` | `clone <uuid> <vm>` / `start <vm>` |
//! | `StartRunner` (JIT) | `run <vm> bash -c <JIT_SCRIPT>`, JIT config + `\n` on stdin |
//! | `StartRunner` (token) | `cp -a` of the three Anklet scripts, then three `run`s, token on stdin |
//! | `InspectVm` | `show <vm>` (not found = missing) |
//! | `Delete` | `delete --yes <vm>` (not found = done) |

use super::anka;
use super::error::AnkaError;
use super::operand;
use super::output::{Envelope, interpret, interpret_run};
use super::process::{Invocation, ProcessOutput, Program};
use super::shell;
use crate::config::Plugin;
use crate::github::rfc3339;
use crate::handler::{DiskSpace, EffectResult, RunnerCredentials, TemplateInfo, VmCmd, VmState};
use crate::ids::{TemplateId, VmName};
use crate::secret::Secret;
use crate::time::Timestamp;
use serde_json::Value;
use std::collections::VecDeque;
use std::time::Duration;

/// Where the token-mode scripts live under `plugins_path`, as in Anklet.
pub const SCRIPTS_SUBDIR: &str = "handlers/github";
/// Anklet's script that downloads the actions runner in the guest.
pub const INSTALL_SCRIPT: &str = "install-runner.bash";
/// Anklet's script that runs `config.sh` with the registration token.
pub const REGISTER_SCRIPT: &str = "register-runner.bash";
/// Anklet's script that starts the runner service.
pub const START_SCRIPT: &str = "start-runner.bash";
/// Anklet gives `register-runner.bash` 60 s; so do we (bounded by the effect's timeout).
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(60);

/// The guest script of JIT mode (docs/emulators.md): the JIT config is read from the first
/// line of stdin, so it is never an argument of a host process nor written to the guest's disk,
/// and the runner is left running in the background so `anka run` returns.
pub const JIT_SCRIPT: &str = r#"IFS= read -r ANKLET_JIT; cd "$HOME/actions-runner" && nohup ./run.sh --jitconfig "$ANKLET_JIT" >runner.log 2>&1 &"#;

/// What the plans need from the handler's config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnkaSettings {
    /// `registry_url`: the registry to pull from; `None` uses anka's default registry.
    pub registry_url: Option<String>,
    /// `<plugins_path>/handlers/github`, `~` already expanded by the runtime.
    pub scripts_dir: String,
    /// The URL token-registered runners register against (`config.sh --url`).
    pub registration_url: String,
    /// `runner_group`, if any.
    pub runner_group: Option<String>,
}

impl AnkaSettings {
    /// The settings of a handler plugin; `plugins_path` is the config's `plugins_path` after the
    /// runtime expanded `~` (core reads no environment).
    pub fn from_plugin(plugin: &Plugin, plugins_path: &str) -> Self {
        let set = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        Self {
            registry_url: set(&plugin.registry_url),
            scripts_dir: format!("{}/{SCRIPTS_SUBDIR}", plugins_path.trim_end_matches('/')),
            registration_url: plugin
                .scope()
                .map(|s| s.registration_url())
                .unwrap_or_default(),
            runner_group: set(&plugin.runner_group),
        }
    }
}

/// What the runtime should do next for a plan.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Run this process and [`VmCallPlan::feed`] its output.
    Run(Invocation),
    /// Measure the template volume and [`VmCallPlan::feed_disk`] the answer.
    ProbeDisk,
    /// The plan is over; this is the effect's result.
    Done(EffectResult),
}

/// Whether a call's success is anka's envelope or the guest command's exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Envelope,
    GuestExit,
}

/// A local entry of `anka list`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ListEntry {
    name: Option<String>,
    uuid: Option<String>,
    version: Option<String>,
    access_date: Option<String>,
}

impl ListEntry {
    /// Our VMs are clones, not templates; every other entry is a template.
    fn template_uuid(&self) -> Option<&str> {
        let uuid = self.uuid.as_deref()?;
        let ours = self
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with(VmName::PREFIX));
        (!ours && operand::positional("template", uuid).is_ok()).then_some(uuid)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Flow {
    /// Listing, then showing `entries[next]`, then probing.
    Inventory {
        entries: Vec<ListEntry>,
        showing: Option<usize>,
        templates: Vec<TemplateInfo>,
    },
    /// Measuring, then probing.
    DownloadSize {
        download: u64,
        anka_available: Option<u64>,
    },
    /// Pulling, then showing the pulled template.
    Pull {
        template: String,
        tag: Option<String>,
        pulled: bool,
    },
    /// A delete: "not found" means done.
    Delete,
    /// `show <vm>` read as a VM state.
    Inspect,
    /// Calls that must all succeed, in order.
    Sequence {
        current: Expect,
        rest: VecDeque<(Invocation, Expect)>,
    },
}

/// The anka calls of one [`VmCmd`], run one at a time by a runtime.
#[derive(Clone, Debug, PartialEq)]
pub struct VmCallPlan {
    flow: Flow,
    step: Step,
    timeout: Duration,
    secrets: Vec<Secret>,
}

fn call(args: Vec<String>, timeout: Duration) -> Invocation {
    Invocation {
        program: Program::Anka,
        args,
        stdin: None,
        timeout,
    }
}

impl VmCallPlan {
    /// The plan of `cmd`; each invocation gets `timeout` (the effect's), and the runtime never
    /// lets the whole plan outlive it either. A value that is unsafe on a command line makes
    /// the plan finish at once with a permanent failure.
    pub fn new(cmd: &VmCmd, settings: &AnkaSettings, timeout: Duration) -> Self {
        let mut plan = Self {
            flow: Flow::Delete,
            step: Step::Done(EffectResult::Done),
            timeout,
            secrets: Vec::new(),
        };
        match plan.build(cmd, settings) {
            Ok((flow, step)) => {
                plan.flow = flow;
                plan.step = step;
            }
            Err(e) => plan.step = plan.fail(&e),
        }
        plan
    }

    /// What to do now. Stays the same until the runtime feeds an answer.
    pub fn step(&self) -> &Step {
        &self.step
    }

    /// The result once the plan is over.
    pub fn result(&self) -> Option<&EffectResult> {
        match &self.step {
            Step::Done(r) => Some(r),
            _ => None,
        }
    }

    /// Gives the output of the process [`Step::Run`] asked for; ignored at any other step.
    pub fn feed(&mut self, out: ProcessOutput) {
        if !matches!(self.step, Step::Run(_)) {
            return;
        }
        self.step = match self.advance(&out) {
            Ok(step) => step,
            Err(e) => self.fail(&e),
        };
    }

    /// Gives the template volume's space [`Step::ProbeDisk`] asked for (or the probe's error);
    /// ignored at any other step.
    pub fn feed_disk(&mut self, disk: Result<DiskSpace, String>) {
        if self.step != Step::ProbeDisk {
            return;
        }
        let disk = match disk {
            Ok(d) => d,
            Err(message) => {
                self.step = self.fail(&AnkaError::DiskProbe { message });
                return;
            }
        };
        self.step = match &mut self.flow {
            Flow::Inventory {
                entries, templates, ..
            } => Step::Done(EffectResult::Inventory {
                templates: std::mem::take(templates),
                disk,
                vms: entries
                    .iter()
                    .filter_map(|e| e.name.clone().map(VmName))
                    .collect(),
            }),
            Flow::DownloadSize {
                download,
                anka_available,
            } => Step::Done(EffectResult::DownloadSize {
                download_bytes: *download,
                disk: DiskSpace {
                    total_bytes: disk.total_bytes,
                    available_bytes: anka_available
                        .map_or(disk.available_bytes, |a| a.min(disk.available_bytes)),
                },
            }),
            _ => Step::Done(EffectResult::Done),
        };
    }

    /// Runs the plan to its end with the given process runner and disk probe: the whole loop
    /// of a blocking runtime, with every decision still here.
    pub fn drive(
        mut self,
        mut run: impl FnMut(&Invocation) -> ProcessOutput,
        mut probe: impl FnMut() -> Result<DiskSpace, String>,
    ) -> EffectResult {
        loop {
            match &self.step {
                Step::Run(inv) => {
                    let out = run(inv);
                    self.feed(out);
                }
                Step::ProbeDisk => {
                    let disk = probe();
                    self.feed_disk(disk);
                }
                Step::Done(result) => return result.clone(),
            }
        }
    }

    fn fail(&self, e: &AnkaError) -> Step {
        let secrets: Vec<&str> = self.secrets.iter().map(Secret::expose).collect();
        Step::Done(EffectResult::Failed(e.to_failure(&secrets)))
    }

    fn build(&mut self, cmd: &VmCmd, s: &AnkaSettings) -> Result<(Flow, Step), AnkaError> {
        let t = self.timeout;
        let remote = match &s.registry_url {
            Some(url) => Some(operand::positional("registry URL", url)?),
            None => None,
        };
        let run = |args| Ok(Step::Run(call(args, t)));
        Ok(match cmd {
            VmCmd::Inventory => (
                Flow::Inventory {
                    entries: Vec::new(),
                    showing: None,
                    templates: Vec::new(),
                },
                run(anka::list())?,
            ),
            VmCmd::CheckDownloadSize { spec } => {
                let (template, tag) = spec_operands(&spec.template, spec.tag.as_deref())?;
                (
                    Flow::DownloadSize {
                        download: 0,
                        anka_available: None,
                    },
                    run(anka::check_download_size(template, tag, remote))?,
                )
            }
            VmCmd::DeleteTemplate { template } => {
                let template = operand::positional("template", &template.0)?;
                (Flow::Delete, run(anka::delete(template))?)
            }
            VmCmd::PullTemplate { spec } => {
                let (template, tag) = spec_operands(&spec.template, spec.tag.as_deref())?;
                (
                    Flow::Pull {
                        template: template.to_owned(),
                        tag: tag.map(str::to_owned),
                        pulled: false,
                    },
                    run(anka::registry_pull(remote, template, tag))?,
                )
            }
            VmCmd::Clone { vm, spec } => {
                let (template, _) = spec_operands(&spec.template, spec.tag.as_deref())?;
                let vm = operand::vm_name(&vm.0)?;
                sequence(vec![(call(anka::clone(template, vm), t), Expect::Envelope)])
            }
            VmCmd::Start { vm } => {
                let vm = operand::vm_name(&vm.0)?;
                sequence(vec![(call(anka::start(vm), t), Expect::Envelope)])
            }
            VmCmd::StartRunner {
                vm,
                labels,
                credentials,
                ..
            } => {
                let vm = operand::vm_name(&vm.0)?;
                let secret = match credentials {
                    RunnerCredentials::Jit(s) | RunnerCredentials::Token(s) => s,
                };
                self.secrets.push(secret.clone());
                let stdin = stdin_line(secret)?;
                match credentials {
                    RunnerCredentials::Jit(_) => {
                        let mut inv = call(anka::run(vm, JIT_SCRIPT), t);
                        inv.stdin = Some(stdin);
                        sequence(vec![(inv, Expect::GuestExit)])
                    }
                    RunnerCredentials::Token(_) => sequence(token_calls(vm, labels, stdin, s, t)?),
                }
            }
            VmCmd::InspectVm { vm } => {
                let vm = operand::vm_name(&vm.0)?;
                (Flow::Inspect, run(anka::show(vm))?)
            }
            VmCmd::Delete { vm } => {
                let vm = operand::vm_name(&vm.0)?;
                (Flow::Delete, run(anka::delete(vm))?)
            }
        })
    }

    fn advance(&mut self, out: &ProcessOutput) -> Result<Step, AnkaError> {
        let t = self.timeout;
        match &mut self.flow {
            Flow::Inventory {
                entries,
                showing,
                templates,
            } => {
                let from = match *showing {
                    None => {
                        *entries = list_entries(&interpret(out)?.body)?;
                        0
                    }
                    Some(i) => {
                        match interpret(out) {
                            Ok(env) => {
                                if let Some(entry) = entries.get(i) {
                                    templates.push(template_info(entry, &env)?);
                                }
                            }
                            // Deleted between `list` and `show`: it is simply gone.
                            Err(AnkaError::NotFound { .. }) => {}
                            Err(e) => return Err(e),
                        }
                        i + 1
                    }
                };
                let next = entries
                    .iter()
                    .enumerate()
                    .skip(from)
                    .find_map(|(i, e)| e.template_uuid().map(|u| (i, u.to_owned())));
                Ok(match next {
                    Some((i, uuid)) => {
                        *showing = Some(i);
                        Step::Run(call(anka::show(&uuid), t))
                    }
                    None => Step::ProbeDisk,
                })
            }
            Flow::DownloadSize {
                download,
                anka_available,
            } => {
                let env = interpret(out)?;
                let (d, a) = download_size(&env.body)?;
                *download = d;
                *anka_available = a;
                Ok(Step::ProbeDisk)
            }
            Flow::Pull {
                template,
                tag,
                pulled,
            } => {
                let env = interpret(out)?;
                if !*pulled {
                    *pulled = true;
                    return Ok(Step::Run(call(anka::show(template), t)));
                }
                let size_bytes = field_bytes(&env.body, "image_size").ok_or_else(|| {
                    AnkaError::UnexpectedBody {
                        what: "show",
                        detail: "no image_size after the pull".into(),
                    }
                })?;
                let tag = tag.clone().or_else(|| field_str(&env.body, "version"));
                Ok(Step::Done(EffectResult::Pulled { tag, size_bytes }))
            }
            Flow::Delete => match interpret(out) {
                Ok(_) | Err(AnkaError::NotFound { .. }) => Ok(Step::Done(EffectResult::Done)),
                Err(e) => Err(e),
            },
            Flow::Inspect => {
                let env = match interpret(out) {
                    Ok(env) => env,
                    Err(AnkaError::NotFound { .. }) => {
                        return Ok(Step::Done(EffectResult::VmState(VmState::Missing)));
                    }
                    Err(e) => return Err(e),
                };
                let status = field_str(first(&env.body), "status").ok_or_else(|| {
                    AnkaError::UnexpectedBody {
                        what: "show",
                        detail: "no status".into(),
                    }
                })?;
                let state = if status.eq_ignore_ascii_case("running") {
                    VmState::Running
                } else {
                    VmState::Stopped
                };
                Ok(Step::Done(EffectResult::VmState(state)))
            }
            Flow::Sequence { current, rest } => {
                match current {
                    Expect::Envelope => interpret(out).map(drop)?,
                    Expect::GuestExit => interpret_run(out)?,
                }
                Ok(match rest.pop_front() {
                    Some((inv, expect)) => {
                        *current = expect;
                        Step::Run(inv)
                    }
                    None => Step::Done(EffectResult::Done),
                })
            }
        }
    }
}

/// The template and tag of a spec, checked for the command line.
fn spec_operands<'a>(
    template: &'a TemplateId,
    tag: Option<&'a str>,
) -> Result<(&'a str, Option<&'a str>), AnkaError> {
    let template = operand::positional("template", &template.0)?;
    let tag = match tag {
        Some(t) => Some(operand::positional("tag", t)?),
        None => None,
    };
    Ok((template, tag))
}

/// A flow of calls that must all succeed, and its first step.
fn sequence(calls: Vec<(Invocation, Expect)>) -> (Flow, Step) {
    let mut rest: VecDeque<_> = calls.into();
    match rest.pop_front() {
        Some((inv, current)) => (Flow::Sequence { current, rest }, Step::Run(inv)),
        None => (
            Flow::Sequence {
                current: Expect::Envelope,
                rest,
            },
            Step::Done(EffectResult::Done),
        ),
    }
}

/// A credential as one stdin line. A credential with a line break would be cut by `read`, so
/// it is refused (without showing it).
fn stdin_line(secret: &Secret) -> Result<Secret, AnkaError> {
    if secret.is_empty() || secret.expose().chars().any(char::is_control) {
        return Err(AnkaError::InvalidOperand {
            what: "runner credential",
            value: crate::secret::REDACTED.to_owned(),
            why: "empty or contains control characters",
        });
    }
    Ok(Secret::new(format!("{}\n", secret.expose())))
}

/// Anklet's token path: copy the three scripts in, then install, register (token read from
/// stdin into a variable, so it is on no host argv) and start. Every value in the register
/// line is shell-quoted.
fn token_calls(
    vm: &str,
    labels: &[String],
    stdin: Secret,
    s: &AnkaSettings,
    t: Duration,
) -> Result<Vec<(Invocation, Expect)>, AnkaError> {
    let dir = s.scripts_dir.trim_end_matches('/');
    let mut calls = Vec::new();
    for script in [INSTALL_SCRIPT, REGISTER_SCRIPT, START_SCRIPT] {
        let path = format!("{dir}/{script}");
        let path = operand::positional("script path", &path)?;
        calls.push((call(anka::cp_in(path, vm), t), Expect::Envelope));
    }
    for l in labels {
        operand::text("label", l)?;
    }
    let url = operand::positional("registration URL", &s.registration_url)?;
    let mut args = vec![url.to_owned(), labels.join(",")];
    if let Some(group) = &s.runner_group {
        args.push(operand::text("runner group", group)?.to_owned());
    }
    let line = format!(
        "IFS= read -r ANKLET_TOKEN && exec ./{REGISTER_SCRIPT} {} \"$ANKLET_TOKEN\" {}",
        shell::quote(vm),
        shell::join(&args)
    );
    let mut register = call(anka::run(vm, &line), t.min(REGISTER_TIMEOUT));
    register.stdin = Some(stdin);
    calls.push((
        call(anka::run(vm, &format!("./{INSTALL_SCRIPT}")), t),
        Expect::GuestExit,
    ));
    calls.push((register, Expect::GuestExit));
    calls.push((
        call(anka::run(vm, &format!("./{START_SCRIPT}")), t),
        Expect::GuestExit,
    ));
    Ok(calls)
}

/// The entries of `anka list`; a missing body is an empty host.
fn list_entries(body: &Value) -> Result<Vec<ListEntry>, AnkaError> {
    let items = match body {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => {
            return Err(AnkaError::UnexpectedBody {
                what: "list",
                detail: "body is not an array".into(),
            });
        }
    };
    Ok(items
        .iter()
        .map(|item| ListEntry {
            name: field_str(item, "name"),
            uuid: field_str(item, "uuid"),
            version: field_str(item, "version"),
            access_date: field_str(item, "access_date"),
        })
        .collect())
}

/// A template's size and last use from `show` (falling back to `list`). An unreadable date
/// counts as the epoch, so an unknown template is the first eviction candidate.
fn template_info(entry: &ListEntry, show: &Envelope) -> Result<TemplateInfo, AnkaError> {
    let body = first(&show.body);
    let uuid = entry
        .uuid
        .clone()
        .ok_or_else(|| AnkaError::UnexpectedBody {
            what: "list",
            detail: "entry without uuid".into(),
        })?;
    let date = field_str(body, "access_date").or_else(|| entry.access_date.clone());
    Ok(TemplateInfo {
        template: TemplateId(uuid),
        tag: entry.version.clone().or_else(|| field_str(body, "version")),
        size_bytes: field_bytes(body, "image_size").unwrap_or(0),
        last_used: date
            .as_deref()
            .and_then(|d| rfc3339::parse(d).ok())
            .unwrap_or(Timestamp::from_millis(0)),
    })
}

/// `(size − cached, available)` from `pull --check-download-size`; `{}` means already local.
fn download_size(body: &Value) -> Result<(u64, Option<u64>), AnkaError> {
    let Value::Object(map) = body else {
        return Err(AnkaError::UnexpectedBody {
            what: "pull --check-download-size",
            detail: "body is not an object".into(),
        });
    };
    if map.is_empty() {
        return Ok((0, None));
    }
    let size = field_bytes(body, "size").ok_or_else(|| AnkaError::UnexpectedBody {
        what: "pull --check-download-size",
        detail: "no size".into(),
    })?;
    let cached = field_bytes(body, "cached").unwrap_or(0);
    Ok((size.saturating_sub(cached), field_bytes(body, "available")))
}

/// The first element of an array body, or the body itself (`show` answers an object; `list
/// <id>` an array of one).
fn first(body: &Value) -> &Value {
    match body {
        Value::Array(items) => items.first().unwrap_or(&Value::Null),
        other => other,
    }
}

fn field_str(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// A byte count, whether anka wrote it as an integer, a float or a string.
fn field_bytes(v: &Value, key: &str) -> Option<u64> {
    match v.get(key)? {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1.8e19)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}
