//! Checks on values from outside (job labels, config, VM names) before they go on a command
//! line, so a crafted label can neither become an option of `anka` nor break out of a word.

use super::error::AnkaError;

/// Longest value accepted; Anka's own names are far shorter.
pub const MAX_LEN: usize = 1024;

/// Accepts a value for a positional argument: non-empty, not starting with `-` (it would be
/// read as an option), no control characters (NUL cannot be in an argument; newlines split
/// log lines), at most [`MAX_LEN`] bytes.
pub fn positional<'a>(what: &'static str, value: &'a str) -> Result<&'a str, AnkaError> {
    let refuse = |why| AnkaError::InvalidOperand {
        what,
        value: value.chars().take(80).collect(),
        why,
    };
    if value.is_empty() {
        return Err(refuse("empty"));
    }
    if value.starts_with('-') {
        return Err(refuse("starts with '-'"));
    }
    text(what, value)?;
    Ok(value)
}

/// Accepts a VM name: a positional value without `:` or `/`, which `anka cp` would read as a
/// path separator.
pub fn vm_name(value: &str) -> Result<&str, AnkaError> {
    positional("VM name", value)?;
    if value.contains([':', '/']) {
        return Err(AnkaError::InvalidOperand {
            what: "VM name",
            value: value.chars().take(80).collect(),
            why: "contains ':' or '/'",
        });
    }
    Ok(value)
}

/// Accepts free text that will be shell-quoted (labels, runner group): only control
/// characters and excessive length are refused.
pub fn text<'a>(what: &'static str, value: &'a str) -> Result<&'a str, AnkaError> {
    let refuse = |why| AnkaError::InvalidOperand {
        what,
        value: value.chars().take(80).collect(),
        why,
    };
    if value.len() > MAX_LEN {
        return Err(refuse("too long"));
    }
    if value.chars().any(char::is_control) {
        return Err(refuse("contains control characters"));
    }
    Ok(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn option_lookalikes_and_control_characters_are_refused() {
        assert!(positional("template", "-rf").is_err());
        assert!(positional("template", "").is_err());
        assert!(positional("template", "a\0b").is_err());
        assert!(positional("template", "a\nb").is_err());
        assert!(positional("template", &"x".repeat(MAX_LEN + 1)).is_err());
        assert_eq!(positional("template", "c0847bc9-5d2d"), Ok("c0847bc9-5d2d"));
        assert!(vm_name("vm:1").is_err());
        assert!(vm_name("a/b").is_err());
        assert_eq!(text("label", "a;b $(x) 'q'"), Ok("a;b $(x) 'q'"));
    }
}
