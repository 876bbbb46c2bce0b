//! A tiny glob matcher (`*` and `?`) for fault rules' `match` field, so a rule can target
//! `anklet-vm-*` without pulling in a glob crate.

/// True when `text` matches `pattern`, where `*` matches any run of characters and `?` one.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_and_marks() {
        assert!(matches("*", ""));
        assert!(matches("anklet-vm-*", "anklet-vm-1234"));
        assert!(!matches("anklet-vm-*", "template"));
        assert!(matches("a?c", "abc"));
        assert!(matches("*b*d", "abcd"));
        assert!(!matches("*b*e", "abcd"));
        assert!(matches("exact", "exact"));
    }
}
