//! YAML -> a small positioned tree, with serde-saphyr.
//!
//! We do not deserialize straight into the model: Anklet's config is read non-strictly, and we
//! want every unknown key reported with its line (serde's `deny_unknown_fields` would make them
//! fatal, and `flatten` loses serde-saphyr's spans). So the document is read into a tree where
//! every key and value is a [`serde_saphyr::Spanned`], then walked by `parse.rs`, which knows
//! the keys. The raw source text of each scalar is kept so a string key keeps exactly what was
//! written (`secret: 00012` stays `00012`, as in Go's yaml.v2).

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use super::error::ConfigError;

/// Anything bigger is not a config file.
pub(crate) const MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;

/// A value with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) value: Value,
    /// 1-based line and column.
    pub(crate) pos: (u64, u64),
    /// The scalar as written (plain scalars only; quoted ones have `quoted` set instead).
    pub(crate) raw: Option<String>,
    /// Whether the scalar was quoted in the source.
    pub(crate) quoted: bool,
}

/// A mapping key with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    pub(crate) name: String,
    pub(crate) pos: (u64, u64),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

impl Node {
    /// How a diagnostic describes this node ("string \"abc\"", "a list").
    pub(crate) fn describe(&self, show_value: bool) -> String {
        let shown = |text: &str| -> String {
            if show_value {
                format!(" {}", quote_for_message(text))
            } else {
                String::new()
            }
        };
        match &self.value {
            Value::Null => "nothing (null)".to_owned(),
            Value::Bool(b) => {
                if show_value {
                    format!("boolean {}", self.raw.as_deref().unwrap_or(&b.to_string()))
                } else {
                    "a boolean".to_owned()
                }
            }
            Value::Int(i) => {
                if show_value {
                    format!("integer {}", self.raw.as_deref().unwrap_or(&i.to_string()))
                } else {
                    "an integer".to_owned()
                }
            }
            Value::Float(x) => {
                if show_value {
                    format!("number {}", self.raw.as_deref().unwrap_or(&x.to_string()))
                } else {
                    "a number".to_owned()
                }
            }
            Value::Str(s) => format!("string{}", shown(s)),
            Value::Seq(_) => "a list".to_owned(),
            Value::Map(_) => "a mapping".to_owned(),
        }
    }
}

/// Quotes a value for an error message, escaped and cut short so a stray paste cannot flood it.
pub(crate) fn quote_for_message(text: &str) -> String {
    const MAX: usize = 60;
    let mut out = String::from("\"");
    for (i, c) in text.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        out.extend(c.escape_debug());
    }
    out.push('"');
    out
}

// ---- serde side: a tree of Spanned values ----

#[derive(Debug)]
enum Raw {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<String>, Spanned<Raw>)>),
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Raw, E> {
        Ok(match i128::try_from(v) {
            Ok(i) => Raw::Int(i),
            // Too big for any key; keep it as a number so the type check reports it.
            Err(_) => Raw::Float(v as f64),
        })
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Raw, E> {
        Ok(Raw::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Raw>>()? {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Spanned<Raw>>()?;
            entries.push((key, value));
        }
        Ok(Raw::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = 32;
    budget.max_nodes = 100_000;
    budget.max_events = 400_000;
    budget.max_documents = 1;
    let mut opts = serde_saphyr::Options::default();
    opts.budget = Some(budget);
    opts.with_snippet = false;
    // Keep `0755`-style spellings as written; string keys use the raw text anyway.
    opts.leading_zero_numbers_as_strings = true;
    opts
}

fn pos(loc: &Location) -> (u64, u64) {
    (loc.line().max(1), loc.column().max(1))
}

/// Source text covered by a location, when the parser reported byte offsets.
fn slice<'a>(text: &'a str, loc: &Location) -> Option<&'a str> {
    let span = loc.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len()?).ok()?;
    text.get(start..start.checked_add(len)?)
}

fn convert(text: &str, raw: Spanned<Raw>) -> Node {
    // `defined` points at the anchor for aliases and at the original for merged keys, which is
    // both where the raw text lives and the line worth fixing.
    let loc = if raw.defined == Location::UNKNOWN {
        raw.referenced
    } else {
        raw.defined
    };
    let source = slice(text, &loc).map(str::trim);
    let quoted = source.is_some_and(|s| s.starts_with('"') || s.starts_with('\''));
    let plain = source.filter(|s| {
        !s.is_empty() && !quoted && !s.starts_with(['&', '*', '!', '|', '>', '[', '{'])
    });
    let value = match raw.value {
        Raw::Null => Value::Null,
        Raw::Bool(b) => Value::Bool(b),
        Raw::Int(i) => Value::Int(i),
        Raw::Float(x) => Value::Float(x),
        Raw::Str(s) => Value::Str(s),
        Raw::Seq(items) => Value::Seq(items.into_iter().map(|i| convert(text, i)).collect()),
        Raw::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| {
                    (
                        Key {
                            name: k.value,
                            pos: pos(&k.referenced),
                        },
                        convert(text, v),
                    )
                })
                .collect(),
        ),
    };
    let scalar = matches!(
        value,
        Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Str(_)
    );
    Node {
        value,
        pos: pos(&loc),
        raw: plain.filter(|_| scalar).map(str::to_owned),
        quoted,
    }
}

/// Parses one YAML document. `Ok(None)` means the document is empty (only comments or `---`).
pub(crate) fn parse(source_name: &str, text: &str) -> Result<Option<Node>, Box<ConfigError>> {
    let parsed: Result<Spanned<Raw>, _> = serde_saphyr::from_str_with_options(text, options());
    match parsed {
        Ok(root) => {
            let node = convert(text, root);
            Ok(match node.value {
                Value::Null => None,
                _ => Some(node),
            })
        }
        Err(err) => Err(Box::new(syntax_error(source_name, &err))),
    }
}

fn syntax_error(source_name: &str, err: &serde_saphyr::Error) -> ConfigError {
    use serde_saphyr::MessageFormatter;
    let inner = err.without_snippet();
    let location = err.location().filter(|l| *l != Location::UNKNOWN);
    let mut message: String = serde_saphyr::UserMessageFormatter
        .format_message(inner)
        .chars()
        .flat_map(char::escape_default)
        .collect::<String>()
        .replace("\\'", "'")
        .replace("\\\"", "\"");
    let mut hint = None;
    if let serde_saphyr::Error::DuplicateMappingKey { key, .. } = inner {
        message = match key {
            Some(k) => format!("the key `{k}` appears twice in the same mapping"),
            None => "a key appears twice in the same mapping".to_owned(),
        };
        hint = Some("keep one of them (Anklet silently used the last one)".to_owned());
    } else if message.contains("budget") {
        hint = Some(
            "the document is nested too deeply or is far too large to be an anklet config"
                .to_owned(),
        );
    } else if message.contains("multiple YAML documents") {
        hint = Some("a config is one YAML document: remove the extra `---` line".to_owned());
    } else if message.contains("mapping values are not allowed")
        || message.contains("indentation")
        || message.contains("did not find expected")
    {
        hint = Some(
            "check the indentation: keys of one mapping (e.g. one plugin entry) must start in the same column"
                .to_owned(),
        );
    } else if message.contains("indicator") {
        hint = Some(
            "a `[` or `{` opened on an earlier line is probably never closed, or a value needs quotes"
                .to_owned(),
        );
    } else if message.contains("tab") {
        hint = Some("YAML does not allow tabs for indentation; use spaces".to_owned());
    }
    ConfigError::Syntax {
        source_name: source_name.to_owned(),
        line: location.map(|l| l.line()),
        column: location.map(|l| l.column()),
        message,
        hint,
    }
}

/// Bytes -> text, with the file-level checks (size, UTF-8, BOM).
pub(crate) fn decode<'a>(source_name: &str, bytes: &'a [u8]) -> Result<&'a str, Box<ConfigError>> {
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(Box::new(ConfigError::TooLarge {
            source_name: source_name.to_owned(),
            size: bytes.len(),
            limit: MAX_CONFIG_BYTES,
        }));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let good = bytes.get(..e.valid_up_to()).unwrap_or_default();
        let line = good.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        Box::new(ConfigError::NotUtf8 {
            source_name: source_name.to_owned(),
            line,
            column: (good.len() - line_start) as u64 + 1,
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parse_ok(text: &str) -> Node {
        parse("t.yml", text).unwrap().unwrap()
    }

    #[test]
    fn keeps_positions_and_raw_text() {
        let root = parse_ok("a: 00012\nb: \"x\"\nc: yes\n");
        let Value::Map(entries) = root.value else {
            panic!("not a map")
        };
        assert_eq!(entries[0].0.name, "a");
        assert_eq!(entries[0].1.raw.as_deref(), Some("00012"));
        assert_eq!(entries[1].1.pos, (2, 4));
        assert!(entries[1].1.quoted);
        assert_eq!(entries[2].1.value, Value::Bool(true));
        assert_eq!(entries[2].1.raw.as_deref(), Some("yes"));
    }

    #[test]
    fn empty_documents() {
        assert_eq!(parse("t", "").unwrap(), None);
        assert_eq!(parse("t", "# c\n").unwrap(), None);
        assert_eq!(parse("t", "---\n").unwrap(), None);
    }

    #[test]
    fn syntax_errors_have_lines() {
        let err = parse("t.yml", "a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.line(), Some(2));
        assert!(err.to_string().contains("appears twice"), "{err}");
    }

    #[test]
    fn bad_utf8() {
        let err = decode("t.yml", b"a: 1\nb: \xff\n").unwrap_err();
        assert_eq!(err.line(), Some(2));
    }
}
