//! The `anka` command-line grammar (the subset drivers use), parsed by hand because it is Anka's
//! grammar, not clap's: global options (`-j`/`--machine-readable`, `--debug`, `--log-level L`,
//! `--version`) come before the subcommand; subcommand flags may come before or after ids
//! (`delete <vm> --yes` works), except for `run`, whose guest command starts at the word after
//! the VM.

use std::collections::BTreeMap;
use std::ffi::OsString;

use crate::error::AnkaError;

/// One parsed invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// JSON output was asked for.
    pub json: bool,
    /// The subcommand.
    pub command: Command,
}

/// The subcommands the fake knows.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Bare `anka`: usage text, exit 0.
    Usage,
    /// `anka --version`: one line of text.
    VersionFlag,
    /// `anka version`.
    Version,
    /// `anka license show`.
    LicenseShow,
    /// `anka list [-r|-s|-a] [-f F] [ids]`.
    List {
        /// Only running VMs.
        running: bool,
        /// Only stopped or suspended ones.
        stopped: bool,
        /// Ids to show (each must exist).
        ids: Vec<String>,
    },
    /// `anka show [-t T] <id> [field]`.
    Show {
        /// VM or template.
        id: String,
        /// A field name such as `tag`.
        field: Option<String>,
    },
    /// `anka registry [--remote U] list`.
    RegistryList,
    /// `anka registry list-repos` (and `registry --list`).
    RegistryListRepos,
    /// `anka registry [--remote U] show <id> [--tag T] [field]`.
    RegistryShow {
        /// Template.
        id: String,
        /// Tag.
        tag: Option<String>,
    },
    /// `anka registry [--remote U] pull [--shrink] <id> [--tag T]`, or `anka pull <id>`.
    Pull {
        /// Template.
        id: String,
        /// Tag.
        tag: Option<String>,
        /// Free the template's other tags.
        shrink: bool,
    },
    /// `anka pull <id> --check-download-size [--tag T] [remote]`.
    CheckDownloadSize {
        /// Template.
        id: String,
        /// Tag.
        tag: Option<String>,
    },
    /// `anka clone [-c] [-t T] <template> <name>`.
    Clone {
        /// Full copy instead of copy-on-write.
        copy: bool,
        /// Tag to clone.
        tag: Option<String>,
        /// Template.
        template: String,
        /// New VM name.
        name: String,
    },
    /// `anka start <vm...>`.
    Start {
        /// VMs.
        ids: Vec<String>,
    },
    /// `anka stop [-f] [-a] <vm...>`.
    Stop {
        /// VMs.
        ids: Vec<String>,
        /// Forceful.
        force: bool,
        /// All running VMs.
        all: bool,
    },
    /// `anka suspend [-a] <vm...>`.
    Suspend {
        /// VMs.
        ids: Vec<String>,
        /// All running VMs.
        all: bool,
    },
    /// `anka delete [--yes] [-a] <id...>`.
    Delete {
        /// VMs or templates.
        ids: Vec<String>,
        /// Confirmation given.
        yes: bool,
        /// Every VM.
        all: bool,
    },
    /// `anka run [opts] <vm> <cmd...>`.
    Run(RunArgs),
    /// `anka cp [-a ...] <src> <dst>`.
    Cp {
        /// Source (`<vm>:path` or host path).
        src: String,
        /// Destination (`<vm>:[path]` or host path).
        dst: String,
    },
    /// `anka mount <vm> <host[:guest]>`.
    Mount {
        /// VM.
        vm: String,
        /// `host_path[:guest_name]`.
        spec: String,
    },
    /// `anka modify <vm> cpu [-c] N` or `anka modify <vm> ram <size>`.
    Modify {
        /// VM.
        vm: String,
        /// `cpu` or `ram`.
        field: String,
        /// Core count, or a size like `14G`.
        value: String,
    },
    /// `anka config [key [value]]`.
    Config {
        /// Key.
        key: Option<String>,
        /// New value.
        value: Option<String>,
    },
    /// `anka __stats`: the fake's counters.
    Stats,
    /// `anka __emulated-runner <vm>`: the runner process (internal).
    EmulatedRunner {
        /// VM it runs in.
        vm: String,
    },
    /// `anka __crash-watch <vm>`: applies a `vm_crash` fault on time (internal).
    CrashWatch {
        /// VM to crash.
        vm: String,
    },
}

/// Options of `anka run`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunArgs {
    /// VM.
    pub vm: String,
    /// Guest command and arguments.
    pub cmd: Vec<String>,
    /// Working directory, relative to the guest home.
    pub workdir: Option<String>,
    /// Inherit the host environment (not overriding).
    pub inherit_env: bool,
    /// `VAR=VALUE` (or `VAR`, taken from the host).
    pub env: Vec<String>,
    /// Env files of `VAR=VALUE` lines.
    pub env_files: Vec<String>,
    /// Run in the background and return at once.
    pub background: bool,
}

struct Flag {
    names: &'static [&'static str],
    value: bool,
}

const fn flag(names: &'static [&'static str]) -> Flag {
    Flag {
        names,
        value: false,
    }
}

const fn opt(names: &'static [&'static str]) -> Flag {
    Flag { names, value: true }
}

/// Parsed flags (by first name) and positionals.
struct Parsed {
    flags: BTreeMap<&'static str, Vec<String>>,
    positional: Vec<String>,
}

impl Parsed {
    fn has(&self, name: &str) -> bool {
        self.flags.contains_key(name)
    }

    fn value(&self, name: &str) -> Option<String> {
        self.flags.get(name).and_then(|v| v.last().cloned())
    }

    fn values(&self, name: &str) -> Vec<String> {
        self.flags.get(name).cloned().unwrap_or_default()
    }
}

/// Parses `words` against `spec`; when `stop_after` positionals have been seen, the rest is taken
/// verbatim as positionals (for `run`'s guest command).
fn parse(words: &[String], spec: &[Flag], stop_after: Option<usize>) -> Result<Parsed, AnkaError> {
    let mut flags: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut positional = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        i += 1;
        if stop_after.is_some_and(|n| positional.len() >= n) {
            positional.push(w.clone());
            continue;
        }
        if w == "--" {
            positional.extend(words[i..].iter().cloned());
            break;
        }
        if w.len() > 1 && w.starts_with('-') {
            let (name, inline) = match w.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
                _ => (w.as_str(), None),
            };
            let f = spec
                .iter()
                .find(|f| f.names.contains(&name))
                .ok_or_else(|| AnkaError::usage(format!("no such option: {name}")))?;
            let key = f.names[0];
            let value = if f.value {
                match inline {
                    Some(v) => v,
                    None => {
                        let v = words
                            .get(i)
                            .cloned()
                            .ok_or_else(|| AnkaError::usage(format!("{name} needs a value")))?;
                        i += 1;
                        v
                    }
                }
            } else {
                String::new()
            };
            flags.entry(key).or_default().push(value);
        } else {
            positional.push(w.clone());
        }
    }
    Ok(Parsed { flags, positional })
}

fn one(p: &Parsed, what: &str) -> Result<String, AnkaError> {
    p.positional
        .first()
        .cloned()
        .ok_or_else(|| AnkaError::usage(format!("missing argument: {what}")))
}

const REGISTRY_FLAGS: &[Flag] = &[
    opt(&["-r", "--remote"]),
    opt(&["-a", "--registry-path"]),
    flag(&["--insecure"]),
    opt(&["--cert"]),
    opt(&["--key"]),
    opt(&["--cacert"]),
    opt(&["--api-key-id"]),
    opt(&["--api-key"]),
    flag(&["--default"]),
    flag(&["--list"]),
];

fn registry(words: &[String]) -> Result<Command, AnkaError> {
    // Registry-level options precede the registry subcommand.
    let split = words
        .iter()
        .enumerate()
        .find(|(i, w)| {
            !w.starts_with('-')
                && (*i == 0
                    || !REGISTRY_FLAGS
                        .iter()
                        .any(|f| f.value && f.names.contains(&words[i - 1].as_str())))
        })
        .map(|(i, _)| i);
    let Some(at) = split else {
        let p = parse(words, REGISTRY_FLAGS, None)?;
        if p.has("--list") {
            return Ok(Command::RegistryListRepos);
        }
        return Err(AnkaError::usage("missing registry command"));
    };
    parse(&words[..at], REGISTRY_FLAGS, None)?;
    let rest = &words[at + 1..];
    match words[at].as_str() {
        "list" => {
            parse(rest, &[flag(&["-l", "--local"])], None)?;
            Ok(Command::RegistryList)
        }
        "list-repos" => {
            parse(rest, &[flag(&["-d", "--default"])], None)?;
            Ok(Command::RegistryListRepos)
        }
        "show" => {
            let p = parse(rest, &[opt(&["-t", "--tag"]), flag(&["--latest"])], None)?;
            Ok(Command::RegistryShow {
                id: one(&p, "template id")?,
                tag: p.value("-t"),
            })
        }
        "pull" => {
            let p = parse(
                rest,
                &[
                    opt(&["-t", "--tag"]),
                    flag(&["-l", "--local"]),
                    flag(&["-s", "--shrink"]),
                    flag(&["-q", "--quiet"]),
                ],
                None,
            )?;
            Ok(Command::Pull {
                id: one(&p, "template id")?,
                tag: p.value("-t"),
                shrink: p.has("-s"),
            })
        }
        other => Err(AnkaError::usage(format!(
            "unknown registry command: {other}"
        ))),
    }
}

fn ids_of(p: &Parsed) -> Vec<String> {
    p.positional.clone()
}

fn run_args(words: &[String]) -> Result<RunArgs, AnkaError> {
    let p = parse(
        words,
        &[
            opt(&["-w", "-D", "--workdir"]),
            flag(&["-E"]),
            opt(&["-e", "--env"]),
            opt(&["-f", "--env-file"]),
            flag(&["-q", "--quiet"]),
            flag(&["-b", "--background"]),
            flag(&["-n", "--no-volume"]),
        ],
        Some(1),
    )?;
    let mut pos = p.positional.iter().cloned();
    let vm = pos
        .next()
        .ok_or_else(|| AnkaError::usage("missing argument: vm"))?;
    let cmd: Vec<String> = pos.collect();
    if cmd.is_empty() {
        return Err(AnkaError::usage("missing argument: command"));
    }
    Ok(RunArgs {
        vm,
        cmd,
        workdir: p.value("-w"),
        inherit_env: p.has("-E"),
        env: p.values("-e"),
        env_files: p.values("-f"),
        background: p.has("-b"),
    })
}

fn command(name: &str, rest: &[String]) -> Result<Command, AnkaError> {
    Ok(match name {
        "version" => Command::Version,
        "license" => match rest.first().map(String::as_str) {
            Some("show") => Command::LicenseShow,
            _ => return Err(AnkaError::usage("usage: anka license show")),
        },
        "list" => {
            let p = parse(
                rest,
                &[
                    flag(&["-r", "--running"]),
                    flag(&["-s", "--stopped"]),
                    flag(&["-a", "--all"]),
                    opt(&["-f", "--field"]),
                ],
                None,
            )?;
            Command::List {
                running: p.has("-r"),
                stopped: p.has("-s"),
                ids: ids_of(&p),
            }
        }
        "show" => {
            let p = parse(rest, &[opt(&["-t", "--tag"]), flag(&["--current"])], None)?;
            Command::Show {
                id: one(&p, "vm id")?,
                field: p.positional.get(1).cloned(),
            }
        }
        "registry" => registry(rest)?,
        "pull" => {
            let p = parse(
                rest,
                &[
                    opt(&["-t", "--tag"]),
                    flag(&["-l", "--local"]),
                    flag(&["--fetch-only"]),
                    flag(&["-s", "--shrink"]),
                    flag(&["--check-download-size"]),
                    flag(&["-q", "--quiet"]),
                ],
                None,
            )?;
            let id = one(&p, "template id")?;
            if p.has("--check-download-size") {
                Command::CheckDownloadSize {
                    id,
                    tag: p.value("-t"),
                }
            } else {
                Command::Pull {
                    id,
                    tag: p.value("-t"),
                    shrink: p.has("-s"),
                }
            }
        }
        "clone" => {
            let p = parse(
                rest,
                &[flag(&["-c", "--copy"]), opt(&["-t", "--tag"])],
                None,
            )?;
            let (Some(template), Some(name)) = (p.positional.first(), p.positional.get(1)) else {
                return Err(AnkaError::usage("usage: anka clone [-c] <template> <name>"));
            };
            Command::Clone {
                copy: p.has("-c"),
                tag: p.value("-t"),
                template: template.clone(),
                name: name.clone(),
            }
        }
        "start" => {
            let p = parse(
                rest,
                &[
                    flag(&["-f", "--force"]),
                    flag(&["-q", "--quiet"]),
                    flag(&["-v", "--view"]),
                    flag(&["-u", "--update-addons"]),
                    opt(&["--mount"]),
                    flag(&["--disable-auto-mount"]),
                ],
                None,
            )?;
            Command::Start { ids: ids_of(&p) }
        }
        "stop" => {
            let p = parse(
                rest,
                &[flag(&["-f", "--force"]), flag(&["-a", "--all"])],
                None,
            )?;
            Command::Stop {
                ids: ids_of(&p),
                force: p.has("-f"),
                all: p.has("-a"),
            }
        }
        "suspend" => {
            let p = parse(rest, &[flag(&["-a", "--all"])], None)?;
            Command::Suspend {
                ids: ids_of(&p),
                all: p.has("-a"),
            }
        }
        "delete" => {
            let p = parse(
                rest,
                &[
                    flag(&["--yes", "-y"]),
                    flag(&["-a", "--all"]),
                    opt(&["-t", "--tag"]),
                    flag(&["--cache"]),
                ],
                None,
            )?;
            Command::Delete {
                ids: ids_of(&p),
                yes: p.has("--yes"),
                all: p.has("-a"),
            }
        }
        "run" => Command::Run(run_args(rest)?),
        "cp" => {
            let spec: &[Flag] = &[
                flag(&["-R"]),
                flag(&["-L"]),
                flag(&["-H"]),
                flag(&["-P"]),
                flag(&["-f"]),
                flag(&["-n"]),
                flag(&["-p"]),
                flag(&["-a"]),
                flag(&["-v"]),
            ];
            let p = parse(rest, spec, None)?;
            let [src, dst] = p.positional.as_slice() else {
                return Err(AnkaError::usage("usage: anka cp [-a] <src> <dst>"));
            };
            Command::Cp {
                src: src.clone(),
                dst: dst.clone(),
            }
        }
        "mount" => {
            let p = parse(rest, &[], None)?;
            let [vm, spec] = p.positional.as_slice() else {
                return Err(AnkaError::usage(
                    "usage: anka mount <vm> <host_path[:guest_name]>",
                ));
            };
            Command::Mount {
                vm: vm.clone(),
                spec: spec.clone(),
            }
        }
        "modify" => {
            let p = parse(
                rest,
                &[opt(&["-c", "--core"]), opt(&["-f", "--freq"])],
                None,
            )?;
            let (Some(vm), Some(field)) = (p.positional.first(), p.positional.get(1)) else {
                return Err(AnkaError::usage(
                    "usage: anka modify <vm> cpu <N> | ram <size>",
                ));
            };
            let value = p
                .value("-c")
                .or_else(|| p.positional.get(2).cloned())
                .ok_or_else(|| AnkaError::usage(format!("modify {field}: missing value")))?;
            Command::Modify {
                vm: vm.clone(),
                field: field.clone(),
                value,
            }
        }
        "config" => {
            let p = parse(
                rest,
                &[flag(&["-l", "--list"]), flag(&["-r", "--reset"])],
                None,
            )?;
            Command::Config {
                key: p.positional.first().cloned(),
                value: p.positional.get(1).cloned(),
            }
        }
        "__stats" => Command::Stats,
        "__emulated-runner" => Command::EmulatedRunner {
            vm: one(&parse(rest, &[], None)?, "vm")?,
        },
        "__crash-watch" => Command::CrashWatch {
            vm: one(&parse(rest, &[], None)?, "vm")?,
        },
        other => return Err(AnkaError::usage(format!("no such command: {other}"))),
    })
}

/// Parses the arguments after the program name. `env_json` is `ANKA_MACHINE_READABLE` being set.
pub fn parse_invocation(args: Vec<OsString>, env_json: bool) -> Result<Invocation, AnkaError> {
    let words: Vec<String> = args
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| AnkaError::usage(format!("argument is not UTF-8: {a:?}")))
        })
        .collect::<Result<_, _>>()?;
    let mut json = env_json;
    let mut i = 0;
    while let Some(w) = words.get(i) {
        match w.as_str() {
            "-j" | "--machine-readable" => json = true,
            "--debug" => {}
            "--log-level" => i += 1,
            "--version" => {
                return Ok(Invocation {
                    json,
                    command: Command::VersionFlag,
                });
            }
            s if s.starts_with('-') => {
                return Err(AnkaError::usage(format!("no such option: {s}")));
            }
            _ => break,
        }
        i += 1;
    }
    let command = match words.get(i) {
        None => Command::Usage,
        Some(name) => command(name, words.get(i + 1..).unwrap_or(&[]))?,
    };
    Ok(Invocation { json, command })
}

/// The usage text of bare `anka`.
pub const USAGE: &str = "usage: anka [options] <command> [args]\n\n\
options:\n  -j, --machine-readable  JSON output\n  --version\n\n\
commands: list show clone start stop suspend delete run cp mount pull registry license version config\n\
(fake-anka: a stand-in for Veertu's anka CLI; state in $FAKE_ANKA_HOME)\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(words: &[&str]) -> Result<Invocation, AnkaError> {
        parse_invocation(words.iter().map(OsString::from).collect(), false)
    }

    #[test]
    fn global_and_registry_grammar() -> Result<(), AnkaError> {
        assert_eq!(inv(&[])?.command, Command::Usage);
        let i = inv(&[
            "-j", "registry", "--remote", "http://r", "pull", "--shrink", "u1", "--tag", "t",
        ])?;
        assert!(i.json);
        assert_eq!(
            i.command,
            Command::Pull {
                id: "u1".into(),
                tag: Some("t".into()),
                shrink: true
            }
        );
        assert_eq!(
            inv(&["-j", "registry", "list"])?.command,
            Command::RegistryList
        );
        assert_eq!(
            inv(&[
                "-j",
                "pull",
                "u1",
                "--check-download-size",
                "--tag",
                "t",
                "http://r"
            ])?
            .command,
            Command::CheckDownloadSize {
                id: "u1".into(),
                tag: Some("t".into())
            }
        );
        Ok(())
    }

    #[test]
    fn run_keeps_the_guest_command_verbatim() -> Result<(), AnkaError> {
        let i = inv(&["-j", "run", "-e", "A=1", "vm", "bash", "-c", "echo -x"])?;
        let Command::Run(r) = i.command else {
            return Err(AnkaError::usage("not run"));
        };
        assert_eq!(r.vm, "vm");
        assert_eq!(r.cmd, vec!["bash", "-c", "echo -x"]);
        assert_eq!(r.env, vec!["A=1"]);
        Ok(())
    }

    #[test]
    fn delete_flag_after_id() -> Result<(), AnkaError> {
        assert_eq!(
            inv(&["-j", "delete", "vm", "--yes"])?.command,
            Command::Delete {
                ids: vec!["vm".into()],
                yes: true,
                all: false
            }
        );
        assert!(inv(&["-j", "delete", "--bogus", "vm"]).is_err());
        Ok(())
    }
}
