//! POSIX shell quoting for the few strings we hand to `bash -c` inside a guest.
//!
//! `anka run <vm> bash -c <script>` gives the guest's bash one string to parse, so every value we
//! put in it (VM name, registration URL, labels, runner group) must reach the script as exactly
//! one word, whatever characters GitHub or the config put in it. Anklet joins its arguments
//! with spaces unquoted, so a label such as `a;reboot` would run a command; we never do that.

/// Quotes `value` as one POSIX shell word: wrapped in single quotes, with each embedded single
/// quote written as `'\''`. Inside single quotes the shell interprets nothing, so this is the
/// one quoting that is correct for every byte string without NUL (the caller rejects NUL and
/// other control characters before building a command line).
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Like [`quote`], but leaves a word bare when it holds only characters no shell interprets
/// (letters, digits and `@%+=:,./_-`, not empty): the same words, easier to read in logs.
pub fn quote_for_display(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b));
    if plain {
        value.to_owned()
    } else {
        quote(value)
    }
}

/// Joins `words` into one command line, each word quoted with [`quote`].
pub fn join<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_are_wrapped_in_single_quotes() {
        assert_eq!(quote("anklet-vm-1"), "'anklet-vm-1'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn single_quotes_are_closed_escaped_and_reopened() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("'"), r"''\'''");
    }

    #[test]
    fn shell_metacharacters_stay_inside_the_quotes() {
        let q = quote("a;reboot $(id) `x` \"y\" \\ *");
        assert_eq!(q, "'a;reboot $(id) `x` \"y\" \\ *'");
    }

    #[test]
    fn display_quoting_leaves_only_plain_words_bare() {
        assert_eq!(quote_for_display("-j"), "-j");
        assert_eq!(quote_for_display("anklet-vm-1:"), "anklet-vm-1:");
        assert_eq!(quote_for_display("a b"), "'a b'");
        assert_eq!(quote_for_display(""), "''");
        assert_eq!(quote_for_display("$HOME"), "'$HOME'");
    }

    #[test]
    fn join_quotes_every_word() {
        assert_eq!(join(&["a b", "c"]), "'a b' 'c'");
    }
}
