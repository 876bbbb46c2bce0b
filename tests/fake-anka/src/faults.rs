//! Fault injection: rules from `$FAKE_ANKA_HOME/faults.json` (re-read on every call, so a test
//! can change them between calls) and from the `FAKE_ANKA_FAULTS` env var (one-off, per process).
//!
//! Either source holds one rule object or an array of them (the file may also be
//! `{"rules": [...]}`). A rule is flat: `{"op": "start", "match": "anklet-vm-*", "action": "fail",
//! "code": 7, "message": "boom", "exit": 9, "times": 1}`.
//!
//! - `op`: the operation (default `*`): `version`, `license`, `list`, `show`, `registry_list`,
//!   `registry_show`, `pull` (registry pull, and `anka pull` without `--check-download-size`),
//!   `check_download_size`, `clone`, `start`, `stop`, `suspend`, `delete`, `run`, `cp`, `mount`,
//!   `modify`, `config`.
//! - `match`: a glob (`*`, `?`) tried against the command's subjects: the ids on the command
//!   line, the resolved VM name/uuid or template uuid/name, and `<uuid>@<tag>` / the tag for
//!   pulls. Default `*` (matches even commands without a subject).
//! - `times`: how often the rule may fire, counted in the state under its lock, so `times: 1`
//!   fires exactly once across concurrent processes. Absent = every time.
//! - `probability` (0..=1) and `seed`: a matching call fires the rule with that chance; the draws
//!   are deterministic (seeded, counted in the state), so a run can be replayed.
//! - `action` and its fields: `fail` {`code` (default 1), `message`, `exit` (default 1)} ·
//!   `hang` (sleeps until killed, with a `sleep` child in the same process group) · `slow`
//!   {`factor`} · `die` {`exit`, default 137; no output at all} · `garbage` (the command runs, but
//!   the last line is not JSON) · `disk_full_at` {`bytes`} (a pull fails with `No space left on
//!   device` once used bytes reach it) · `vm_crash` {`after_s`, fake seconds} (on `start`/`run`:
//!   the VM turns `failed` and its runner is killed) · `registry_down` (registry ops fail,
//!   exit 30) · `license_invalid` (`license show` reports an invalid develop licence).
//!
//! A rule counts as fired (and uses up one of its `times`) only for operations where its action
//! means something: `registry_down` for registry operations, `license_invalid` for `license`,
//! `disk_full_at` for `pull`, `vm_crash` for `start` and `run`; the others for any operation.

use std::env;
use std::fs;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::AnkaError;
use crate::glob;
use crate::home::Home;
use crate::state::State;

/// The environment variable holding extra fault rules as JSON.
pub const FAULTS_ENV: &str = "FAKE_ANKA_FAULTS";

fn any() -> String {
    "*".to_string()
}

/// One fault rule (see the module docs for the format).
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    /// Operation name or `*`.
    pub op: String,
    /// Glob over the subjects.
    #[serde(rename = "match")]
    pub pattern: String,
    /// How many times it may fire.
    pub times: Option<u32>,
    /// Chance (0..=1) that a matching call fires it; absent = always.
    pub probability: Option<f64>,
    /// Seed of the deterministic draws behind `probability` (default 0).
    pub seed: u64,
    /// What it does.
    #[serde(flatten)]
    pub action: Action,
}

impl Rule {
    /// Reads a rule object: `op`, `match` and `times` are taken out, the rest must be exactly one
    /// action with its fields (unknown fields are refused, so a typo does not silently disable a
    /// fault).
    fn from_value(v: Value) -> Result<Self, String> {
        let Value::Object(mut map) = v else {
            return Err("a rule must be an object".into());
        };
        let text =
            |map: &mut serde_json::Map<String, Value>, key: &str| -> Result<String, String> {
                match map.remove(key) {
                    None => Ok(any()),
                    Some(Value::String(s)) => Ok(s),
                    Some(other) => Err(format!("{key} must be a string, not {other}")),
                }
            };
        let op = text(&mut map, "op")?;
        let pattern = text(&mut map, "match")?;
        let times =
            match map.remove("times") {
                None | Some(Value::Null) => None,
                Some(t) => Some(t.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(
                    || format!("times must be a small non-negative integer, not {t}"),
                )?),
            };
        let probability = match map.remove("probability") {
            None | Some(Value::Null) => None,
            Some(p) => Some(
                p.as_f64()
                    .filter(|x| (0.0..=1.0).contains(x))
                    .ok_or_else(|| format!("probability must be between 0 and 1, not {p}"))?,
            ),
        };
        let seed = match map.remove("seed") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| format!("seed must be a non-negative integer, not {v}"))?,
        };
        let action: Action =
            serde_json::from_value(Value::Object(map)).map_err(|e| e.to_string())?;
        Ok(Self {
            op,
            pattern,
            times,
            probability,
            seed,
            action,
        })
    }
}

/// What a fault does.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// An ERROR envelope with this code and message, and this exit status.
    Fail {
        /// Envelope code (default 1).
        #[serde(default)]
        code: Option<i64>,
        /// Envelope message.
        #[serde(default)]
        message: Option<String>,
        /// Exit status (default 1).
        #[serde(default)]
        exit: Option<i32>,
    },
    /// Never finishes: sleeps until killed, with a `sleep` child in its process group.
    Hang,
    /// Every delay of the operation takes `factor` times longer.
    Slow {
        /// Delay multiplier.
        factor: f64,
    },
    /// Exits at once with this status and prints nothing.
    Die {
        /// Exit status (default 137, like SIGKILL).
        #[serde(default)]
        exit: Option<i32>,
    },
    /// The operation runs, but its last output line is not JSON.
    Garbage,
    /// A pull fails with "No space left on device" once used bytes reach `bytes`.
    DiskFullAt {
        /// Threshold of used bytes.
        bytes: u64,
    },
    /// The VM crashes `after_s` fake seconds after it starts or runs.
    VmCrash {
        /// Fake seconds (scaled by the time scale).
        after_s: f64,
    },
    /// The registry cannot be reached.
    RegistryDown,
    /// The licence is invalid.
    LicenseInvalid,
}

/// A rule with the key its uses are counted under.
#[derive(Debug, Clone)]
pub struct Keyed {
    /// Source, position and text of the rule: editing the file starts a fresh count.
    pub key: String,
    /// The rule.
    pub rule: Rule,
}

/// The faults in force for one command.
#[derive(Debug, Clone)]
pub struct Active {
    /// Fail with (code, message, exit).
    pub fail: Option<(i64, String, i32)>,
    /// Hang forever.
    pub hang: bool,
    /// Die with this status, printing nothing.
    pub die: Option<i32>,
    /// Delay multiplier (1.0 = none).
    pub slow: f64,
    /// Replace the final JSON line with garbage.
    pub garbage: bool,
    /// Pull disk-full threshold.
    pub disk_full_at: Option<u64>,
    /// Crash the VM after this many fake seconds.
    pub vm_crash: Option<f64>,
    /// The registry is unreachable.
    pub registry_down: bool,
    /// The licence is invalid.
    pub license_invalid: bool,
}

impl Default for Active {
    fn default() -> Self {
        Self {
            fail: None,
            hang: false,
            die: None,
            slow: 1.0,
            garbage: false,
            disk_full_at: None,
            vm_crash: None,
            registry_down: false,
            license_invalid: false,
        }
    }
}

fn parse_rules(source: &str, text: &str) -> Result<Vec<Keyed>, AnkaError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let bad = |e: String| AnkaError::internal(format!("bad fault rules in {source}: {e}"));
    let doc: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let values = match doc {
        Value::Array(items) => items,
        Value::Object(mut map) if map.contains_key("rules") => match map.remove("rules") {
            Some(Value::Array(items)) => items,
            _ => return Err(bad("rules must be an array".into())),
        },
        one => vec![one],
    };
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let rule = Rule::from_value(v).map_err(|e| bad(format!("rule {i}: {e}")))?;
            let text = serde_json::to_string(&rule)?;
            Ok(Keyed {
                key: format!("{source}#{i}#{text}"),
                rule,
            })
        })
        .collect()
}

/// Reads the rules from the file and the env var (file first).
pub fn load(home: &Home) -> Result<Vec<Keyed>, AnkaError> {
    let mut rules = match fs::read_to_string(home.faults()) {
        Ok(text) => parse_rules("faults.json", &text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(AnkaError::internal(format!("cannot read faults.json: {e}"))),
    };
    if let Some(text) = env::var_os(FAULTS_ENV) {
        let text = text
            .into_string()
            .map_err(|_| AnkaError::internal(format!("{FAULTS_ENV} is not UTF-8")))?;
        rules.extend(parse_rules(FAULTS_ENV, &text)?);
    }
    Ok(rules)
}

fn relevant(action: &Action, op: &str) -> bool {
    match action {
        Action::RegistryDown => matches!(
            op,
            "registry_list" | "registry_show" | "pull" | "check_download_size"
        ),
        Action::LicenseInvalid => op == "license",
        Action::DiskFullAt { .. } => op == "pull",
        Action::VmCrash { .. } => matches!(op, "start" | "run"),
        _ => true,
    }
}

/// The `n`th deterministic draw in [0, 1) of a rule seeded with `seed` (splitmix64), so a run
/// with probabilistic faults can be replayed.
fn unit(seed: u64, n: u64) -> f64 {
    let mut z = seed.wrapping_add(n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Picks the rules that fire for `op` on `subjects`, counting their uses in `state`
/// (call under the state lock, then save).
pub fn evaluate(state: &mut State, rules: &[Keyed], op: &str, subjects: &[String]) -> Active {
    let mut active = Active::default();
    for Keyed { key, rule } in rules {
        if rule.op != "*" && rule.op != op {
            continue;
        }
        let hit = rule.pattern == "*" || subjects.iter().any(|s| glob::matches(&rule.pattern, s));
        if !hit || !relevant(&rule.action, op) {
            continue;
        }
        let used = state.fault_uses.get(key).copied().unwrap_or(0);
        if rule.times.is_some_and(|t| used >= t) {
            continue;
        }
        if let Some(p) = rule.probability {
            let draws = state.fault_draws.entry(key.clone()).or_insert(0);
            let x = unit(rule.seed, *draws);
            *draws = draws.saturating_add(1);
            if x >= p {
                continue;
            }
        }
        state.fault_uses.insert(key.clone(), used.saturating_add(1));
        state.stats.faults_fired = state.stats.faults_fired.saturating_add(1);
        match &rule.action {
            Action::Fail {
                code,
                message,
                exit,
            } => {
                if active.fail.is_none() {
                    active.fail = Some((
                        code.unwrap_or(1),
                        message
                            .clone()
                            .unwrap_or_else(|| format!("fake-anka: injected failure of {op}")),
                        exit.unwrap_or(1),
                    ));
                }
            }
            Action::Hang => active.hang = true,
            Action::Slow { factor } => {
                if factor.is_finite() && *factor > 0.0 {
                    active.slow *= factor;
                }
            }
            Action::Die { exit } => {
                if active.die.is_none() {
                    active.die = Some(exit.unwrap_or(137));
                }
            }
            Action::Garbage => active.garbage = true,
            Action::DiskFullAt { bytes } => {
                active.disk_full_at = Some(active.disk_full_at.map_or(*bytes, |b| b.min(*bytes)));
            }
            Action::VmCrash { after_s } => active.vm_crash = Some(*after_s),
            Action::RegistryDown => active.registry_down = true,
            Action::LicenseInvalid => active.license_invalid = true,
        }
    }
    active
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_forms() -> Result<(), AnkaError> {
        let one = parse_rules("t", r#"{"op":"start","action":"hang"}"#)?;
        assert_eq!(one.len(), 1);
        let many = parse_rules(
            "t",
            r#"[{"action":"fail","code":7},{"action":"slow","factor":2},{"action":"vm_crash","after_s":1}]"#,
        )?;
        assert_eq!(many.len(), 3);
        let wrapped = parse_rules("t", r#"{"rules":[{"action":"garbage"}]}"#)?;
        assert_eq!(wrapped.len(), 1);
        assert!(parse_rules("t", r#"{"action":"nope"}"#).is_err());
        assert!(parse_rules("t", r#"{"action":"fail","cod":1}"#).is_err());
        assert!(parse_rules("t", r#"{"action":"slow"}"#).is_err());
        Ok(())
    }

    #[test]
    fn probability_is_seeded_and_roughly_right() -> Result<(), AnkaError> {
        let rules = parse_rules(
            "t",
            r#"{"op":"start","action":"fail","probability":0.25,"seed":7}"#,
        )?;
        let fire = |state: &mut State| {
            (0..400)
                .map(|_| evaluate(state, &rules, "start", &[]).fail.is_some())
                .collect::<Vec<_>>()
        };
        let a = fire(&mut State::default());
        let b = fire(&mut State::default());
        assert_eq!(a, b, "same seed, same draws");
        let n = a.iter().filter(|x| **x).count();
        assert!((60..=140).contains(&n), "{n} of 400 at p=0.25");
        assert!(parse_rules("t", r#"{"action":"hang","probability":2}"#).is_err());
        Ok(())
    }

    #[test]
    fn times_is_counted() -> Result<(), AnkaError> {
        let rules = parse_rules(
            "t",
            r#"{"op":"start","match":"vm-*","action":"fail","times":1}"#,
        )?;
        let mut state = State::default();
        let subj = vec!["vm-1".to_string()];
        assert!(evaluate(&mut state, &rules, "start", &subj).fail.is_some());
        assert!(evaluate(&mut state, &rules, "start", &subj).fail.is_none());
        assert!(evaluate(&mut state, &rules, "stop", &subj).fail.is_none());
        Ok(())
    }
}
