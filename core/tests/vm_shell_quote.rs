//! `vm::shell::quote` against a real POSIX shell: whatever the string, the shell reads it back
//! as exactly one word with the same bytes, so labels cannot inject commands into the guest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::vm::shell;
use proptest::prelude::*;
use std::process::Command;

fn echo_back(words: &[String]) -> Vec<String> {
    let script = format!(
        "for w in {}; do printf '%s\\0' \"$w\"; done",
        shell::join(words)
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("sh runs");
    assert!(out.status.success(), "sh failed on {script:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8 back");
    let mut back: Vec<String> = text.split('\0').map(str::to_owned).collect();
    back.pop();
    back
}

#[test]
fn hostile_strings_come_back_unchanged() {
    let words: Vec<String> = [
        "plain",
        "",
        "it's",
        "'",
        "''",
        "a;reboot",
        "$(touch /tmp/pwned)",
        "`id`",
        "\"quoted\"",
        "back\\slash",
        "*",
        "~",
        "a b  c",
        "ünïcødé",
        "!event",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(echo_back(&words), words);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn any_text_without_nul_is_one_word(words in proptest::collection::vec("[^\\x00]{0,40}", 1..5)) {
        prop_assert_eq!(echo_back(&words), words);
    }
}
