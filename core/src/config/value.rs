//! Converting YAML nodes and env strings into typed values, and showing values back.
//!
//! YAML follows Go's yaml.v2 where that is sane (a number written for a string key keeps its
//! spelling; `yes`/`on` are booleans), but is strict where yaml.v2 was strict (a quoted "5" is
//! not an integer): a hint then says to drop the quotes. Env values accept the forms operators
//! type in shells: `true/false/1/0/yes/no` for booleans, comma lists.

use super::keys::{Kind, SlotMut, SlotRef};
use super::model::RunnerRegistration;
use super::yaml::{Node, Value, quote_for_message};
use crate::secret::{REDACTED, Secret};

/// A converted value, before it is stored in its field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Parsed {
    Str(String),
    Bool(bool),
    Uint(u64),
    Float(f64),
    List(Vec<String>),
    Registration(RunnerRegistration),
}

/// Why a value was refused: what was found (already safe to print) and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bad {
    pub(crate) expected: String,
    pub(crate) found: Option<String>,
    pub(crate) hint: Option<String>,
}

fn max_of(kind: Kind) -> u64 {
    match kind {
        Kind::U16 => u64::from(u16::MAX),
        Kind::U32 => u64::from(u32::MAX),
        _ => u64::MAX,
    }
}

fn word_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// Converts a YAML node for a key of `kind`. `Ok(None)` = null, i.e. left unset (yaml.v2
/// leaves the zero value). `secret` hides the value in the message.
pub(crate) fn from_node(kind: Kind, node: &Node, secret: bool) -> Result<Option<Parsed>, Bad> {
    if node.value == Value::Null {
        return Ok(None);
    }
    let bad = |hint: Option<String>| Bad {
        expected: kind.expected().to_owned(),
        found: Some(node.describe(!secret)),
        hint,
    };
    let text = scalar_text(node);
    let unquote_hint =
        |ok: bool| (ok && node.quoted).then(|| "remove the quotes around the value".to_owned());
    match kind {
        Kind::Str | Kind::Secret => text.map(|t| Some(Parsed::Str(t))).ok_or_else(|| bad(None)),
        Kind::Bool => match &node.value {
            Value::Bool(b) => Ok(Some(Parsed::Bool(*b))),
            Value::Str(s) => Err(bad(unquote_hint(matches!(
                s.to_ascii_lowercase().as_str(),
                "true" | "false"
            )))),
            Value::Int(0 | 1) => Err(bad(Some("write `true` or `false`".to_owned()))),
            _ => Err(bad(None)),
        },
        Kind::U16 | Kind::U32 | Kind::U64 => {
            let max = max_of(kind);
            let value = match &node.value {
                Value::Int(i) => Some(*i),
                // Leading-zero spellings (`0300`) stay strings in the tree; as an integer key
                // they mean the decimal number, like Go's strconv on the plain scalar.
                Value::Str(s) if !node.quoted && is_decimal(s) => s.trim().parse::<i128>().ok(),
                _ => None,
            };
            match value {
                Some(i) if i < 0 => Err(bad(Some(if max == u64::MAX {
                    "use 0 or a positive whole number".to_owned()
                } else {
                    format!("use a value from 0 to {max}")
                }))),
                Some(i) if i > i128::from(max) => {
                    Err(bad(Some(format!("the largest allowed value is {max}"))))
                }
                Some(i) => Ok(Some(Parsed::Uint(u64::try_from(i).unwrap_or(max)))),
                None => match &node.value {
                    Value::Float(_) => Err(bad(Some("write a whole number".to_owned()))),
                    Value::Str(s) => Err(bad(unquote_hint(is_decimal(s)))),
                    _ => Err(bad(None)),
                },
            }
        }
        Kind::F64 => match &node.value {
            Value::Int(i) => Ok(Some(Parsed::Float(*i as f64))),
            Value::Float(x) if x.is_finite() => Ok(Some(Parsed::Float(*x))),
            Value::Str(s) if !node.quoted && is_decimal(s) => s
                .trim()
                .parse::<f64>()
                .map(|x| Some(Parsed::Float(x)))
                .map_err(|_| bad(None)),
            Value::Str(s) => Err(bad(unquote_hint(
                s.trim().parse::<f64>().is_ok_and(f64::is_finite),
            ))),
            _ => Err(bad(None)),
        },
        Kind::List => match &node.value {
            Value::Seq(items) => {
                let mut out = Vec::new();
                for item in items {
                    match (&item.value, scalar_text(item)) {
                        (Value::Null, _) => {}
                        (_, Some(t)) => out.push(t),
                        (_, None) => {
                            return Err(Bad {
                                expected: "a list of strings".to_owned(),
                                found: Some(format!("{} as a list item", item.describe(false))),
                                hint: Some(format!(
                                    "each item goes on its own `- ` line (item at line {})",
                                    item.pos.0
                                )),
                            });
                        }
                    }
                }
                Ok(Some(Parsed::List(out)))
            }
            _ => Err(bad(text.map(|t| {
                format!(
                    "write a YAML list, e.g. [{}] or one `- item` per line",
                    quote_for_message(&t)
                )
            }))),
        },
        Kind::Registration => match text.as_deref().and_then(RunnerRegistration::parse) {
            Some(r) => Ok(Some(Parsed::Registration(r))),
            None => Err(bad(None)),
        },
    }
}

fn is_decimal(s: &str) -> bool {
    let s = s.trim();
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A scalar as a string: strings as they are, other scalars as written in the file.
fn scalar_text(node: &Node) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        Value::Bool(b) => Some(node.raw.clone().unwrap_or_else(|| b.to_string())),
        Value::Int(i) => Some(node.raw.clone().unwrap_or_else(|| i.to_string())),
        Value::Float(x) => Some(node.raw.clone().unwrap_or_else(|| format!("{x:?}"))),
        Value::Null | Value::Seq(_) | Value::Map(_) => None,
    }
}

/// Converts an env value. Empty values never reach here (they count as unset).
pub(crate) fn from_env(kind: Kind, text: &str, secret: bool) -> Result<Parsed, Bad> {
    let found = (!secret).then(|| quote_for_message(text));
    let bad = |expected: &str, hint: Option<String>| Bad {
        expected: expected.to_owned(),
        found: found.clone(),
        hint,
    };
    let trimmed = text.trim();
    match kind {
        Kind::Str | Kind::Secret => Ok(Parsed::Str(text.to_owned())),
        Kind::Bool => word_bool(trimmed)
            .map(Parsed::Bool)
            .ok_or_else(|| bad("a boolean (true/false, 1/0 or yes/no, any case)", None)),
        Kind::U16 | Kind::U32 | Kind::U64 => {
            let max = max_of(kind);
            let expected = kind.expected().to_owned();
            match trimmed.parse::<u64>() {
                Ok(n) if n <= max => Ok(Parsed::Uint(n)),
                Ok(_) => Err(bad(&expected, None)),
                Err(_) if is_decimal(trimmed) => Err(bad(&expected, None)),
                Err(_) => Err(bad(
                    &expected,
                    trimmed
                        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
                        .parse::<u64>()
                        .is_ok()
                        .then(|| "give a plain number, without a unit".to_owned()),
                )),
            }
        }
        Kind::F64 => match trimmed.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Parsed::Float(x)),
            _ => Err(bad("a number (e.g. 10.0)", None)),
        },
        Kind::List => Ok(Parsed::List(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )),
        Kind::Registration => RunnerRegistration::parse(trimmed)
            .map(Parsed::Registration)
            .ok_or_else(|| bad("`jit` or `token`", None)),
    }
}

/// Stores a converted value; the kinds always match because both come from one `KeySpec`.
pub(crate) fn store(slot: SlotMut<'_>, value: Parsed) {
    match (slot, value) {
        (SlotMut::Str(f), Parsed::Str(v)) => *f = Some(v),
        (SlotMut::Secret(f), Parsed::Str(v)) => *f = Some(Secret::new(v)),
        (SlotMut::Bool(f), Parsed::Bool(v)) => *f = Some(v),
        (SlotMut::U16(f), Parsed::Uint(v)) => *f = u16::try_from(v).ok(),
        (SlotMut::U32(f), Parsed::Uint(v)) => *f = u32::try_from(v).ok(),
        (SlotMut::U64(f), Parsed::Uint(v)) => *f = Some(v),
        (SlotMut::F64(f), Parsed::Float(v)) => *f = Some(v),
        (SlotMut::List(f), Parsed::List(v)) => *f = Some(v),
        (SlotMut::Registration(f), Parsed::Registration(v)) => *f = Some(v),
        _ => debug_assert!(false, "key table kind and slot disagree"),
    }
}

/// Shows a value for the rendered settings; secrets become `[redacted]`.
pub(crate) fn show(slot: &SlotRef<'_>) -> Option<String> {
    match slot {
        SlotRef::Str(v) => v.as_deref().map(yaml_string),
        SlotRef::Secret(v) => v.as_ref().map(|s| {
            if s.is_empty() {
                "\"\"".to_owned()
            } else {
                REDACTED.to_owned()
            }
        }),
        SlotRef::Bool(v) => v.map(|b| b.to_string()),
        SlotRef::U16(v) => v.map(|n| n.to_string()),
        SlotRef::U32(v) => v.map(|n| n.to_string()),
        SlotRef::U64(v) => v.map(|n| n.to_string()),
        SlotRef::F64(v) => v.map(|n| format!("{n:?}")),
        SlotRef::List(v) => v.as_ref().map(|items| {
            let inner: Vec<String> = items.iter().map(|s| yaml_string(s)).collect();
            format!("[{}]", inner.join(", "))
        }),
        SlotRef::Registration(v) => v.map(|r| r.as_str().to_owned()),
    }
}

/// A string as YAML would need it: bare when that reads back the same, else double-quoted.
pub(crate) fn yaml_string(s: &str) -> String {
    let needs_quotes = s.is_empty()
        || s != s.trim()
        || s.starts_with([
            '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%',
            '@', '`',
        ])
        || s.contains(": ")
        || s.contains(" #")
        || s.contains([',', '[', ']', '{', '}'])
        || s.chars().any(char::is_control)
        || word_bool(s).is_some()
        || matches!(
            s.to_ascii_lowercase().as_str(),
            "null" | "~" | "on" | "off" | "y" | "n"
        )
        || s.parse::<f64>().is_ok();
    if needs_quotes {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn env_bools() {
        for t in ["true", "TRUE", "Yes", "1", " yes "] {
            assert_eq!(
                from_env(Kind::Bool, t, false),
                Ok(Parsed::Bool(true)),
                "{t}"
            );
        }
        for f in ["false", "No", "0"] {
            assert_eq!(
                from_env(Kind::Bool, f, false),
                Ok(Parsed::Bool(false)),
                "{f}"
            );
        }
        assert!(from_env(Kind::Bool, "enabled", false).is_err());
    }

    #[test]
    fn env_ints() {
        assert_eq!(from_env(Kind::U16, "6379", false), Ok(Parsed::Uint(6379)));
        let err = from_env(Kind::U16, "70000", false).unwrap_err();
        assert_eq!(err.expected, "an integer from 0 to 65535");
        let err = from_env(Kind::U64, "10s", false).unwrap_err();
        assert_eq!(err.found.as_deref(), Some("\"10s\""));
        assert!(err.hint.is_some());
        let err = from_env(Kind::U64, "-1", true).unwrap_err();
        assert_eq!(err.found, None);
    }

    #[test]
    fn strings_quote_when_needed() {
        assert_eq!(yaml_string("localhost"), "localhost");
        assert_eq!(yaml_string(""), "\"\"");
        assert_eq!(yaml_string("8080"), "\"8080\"");
        assert_eq!(yaml_string("yes"), "\"yes\"");
        assert_eq!(yaml_string("/tmp/"), "/tmp/");
        assert_eq!(yaml_string("a: b"), "\"a: b\"");
    }
}
