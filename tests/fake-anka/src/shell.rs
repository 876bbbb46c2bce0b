//! Splits a shell command line into words (single quotes, double quotes with backslash escapes,
//! backslashes), enough to read the arguments of `./register-runner.bash ...` inside the
//! `bash -c '<script>'` that drivers send to `anka run`.

/// The words of `line`, or `None` if a quote is left open.
pub fn split(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        x => cur.push(x),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => {
                            let x = chars.next()?;
                            if !matches!(x, '"' | '\\' | '$' | '`') {
                                cur.push('\\');
                            }
                            cur.push(x);
                        }
                        x => cur.push(x),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(
            split(r#"./register-runner.bash vm 'tok en' "http://x:1/o" a,b \"g\""#),
            Some(vec![
                "./register-runner.bash".to_string(),
                "vm".into(),
                "tok en".into(),
                "http://x:1/o".into(),
                "a,b".into(),
                "\"g\"".into()
            ])
        );
        assert_eq!(split("'open"), None);
        assert_eq!(split("  "), Some(vec![]));
    }
}
