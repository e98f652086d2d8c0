//! Glob patterns as connections use them for ceilings (`allowedRepositories`,
//! `allowedRoleArns`): `*` matches any run of characters (including none and `/`), `?` exactly
//! one; everything else matches itself.

/// Whether `text` matches `pattern`, character for character.
pub fn matches(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was seen in the pattern, and the text position it is matched up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and retry from there.
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    p = sp + 1;
                    t = st + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_match_any_run_and_question_marks_one_character() {
        assert!(matches("app-*", "app-backend"));
        assert!(matches("app-*", "app-"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches(
            "arn:aws:iam::*:role/ci-*",
            "arn:aws:iam::123456789012:role/ci-deploy/x"
        ));
        assert!(!matches("lib", "lib-x"));
        assert!(matches("*", ""));
    }

    #[test]
    fn matching_is_exact_otherwise() {
        assert!(!matches("App", "app"));
    }
}
