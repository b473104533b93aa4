//! Brace alternatives (`{a,b}`) in Stowage's exclude globs, expanded into
//! plain globs for tools whose syntax has none (Python's `fnmatch`, which
//! aws uses, and the regular expressions of
//! [`crate::exclude_translation::to_regex`], which take `{` literally).
//!
//! Stowage's globs are globset globs: `{a,b}` matches `a` or `b`, and groups
//! may nest. A tool that reads `{` as a plain character excludes less than
//! Stowage does, and excluded objects must never be touched; so a glob with
//! alternatives goes to such a tool as the list of globs it stands for.

/// The globs `glob` stands for, one per combination of its alternatives, in
/// order; a glob without any comes back alone. An escaped `\{` and a `{`
/// inside a character class `[...]` are literal, as in globset.
///
/// ```
/// # use stowage_plugin_support::glob_alternates::expand_alternates;
/// assert_eq!(expand_alternates("*.{log,tmp}"), ["*.log", "*.tmp"]);
/// assert_eq!(expand_alternates("a{b,c{d,e}}"), ["ab", "acd", "ace"]);
/// assert_eq!(expand_alternates(r"x\{a,b}"), [r"x\{a,b}"]);
/// ```
pub fn expand_alternates(glob: &str) -> Vec<String> {
    let chars: Vec<char> = glob.chars().collect();
    let Some(group) = first_group(&chars) else {
        return vec![glob.to_string()];
    };
    let text = |range: std::ops::Range<usize>| chars[range].iter().collect::<String>();
    let (head, tail) = (text(0..group.open), text(group.close + 1..chars.len()));
    let mut bounds = vec![group.open];
    bounds.extend(&group.commas);
    bounds.push(group.close);
    // Substituting one alternative leaves any nested or later groups in
    // place; expanding the result again takes care of them.
    bounds
        .windows(2)
        .flat_map(|pair| {
            let alternative = text(pair[0] + 1..pair[1]);
            expand_alternates(&format!("{head}{alternative}{tail}"))
        })
        .collect()
}

/// Where the first top-level `{...}` group of a glob is.
struct Group {
    open: usize,
    close: usize,
    /// The commas that separate its alternatives (not those of nested groups).
    commas: Vec<usize>,
}

fn first_group(chars: &[char]) -> Option<Group> {
    let mut open = None;
    let mut depth = 0;
    let mut commas = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '[' => i = class_end(chars, i).unwrap_or(i),
            '{' => {
                depth += 1;
                open.get_or_insert(i);
            }
            ',' if depth == 1 => commas.push(i),
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    return open.map(|open| Group {
                        open,
                        close: i,
                        commas,
                    });
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the `]` closing the character class that opens at `start`,
/// globset's way: a `]` right after `[`, `[!` or `[^` belongs to the class,
/// and so does the `]` of a POSIX class (`[[:digit:]]`).
pub fn class_end(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if matches!(chars.get(i), Some('!' | '^')) {
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        i += 1;
    }
    while i < chars.len() {
        match chars[i] {
            ']' => return Some(i),
            '[' if chars.get(i + 1) == Some(&':') => {
                let posix_end = (i + 2..chars.len() - 1).find(|&j| chars[j..j + 2] == [':', ']']);
                i = posix_end.map_or(i + 1, |j| j + 2);
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use stowage_exclude::ExcludeMatcher;

    #[test]
    fn the_expansion_excludes_exactly_what_the_glob_excludes() {
        let keys = [
            "a.log", "a.tmp", "a.txt", "d/x.log", "ab", "acd", "ace", "ac", "{x}", "b,",
        ];
        for glob in [
            "*.{log,tmp}",
            "a{b,c{d,e}}",
            "{*.log,d/*}",
            r"\{x\}",
            "b[,]",
        ] {
            let whole = ExcludeMatcher::new(&[glob]).unwrap();
            let parts = ExcludeMatcher::new(&expand_alternates(glob)).unwrap();
            for key in keys {
                assert_eq!(
                    whole.is_excluded(key),
                    parts.is_excluded(key),
                    "{glob:?} on {key:?}: {:?}",
                    expand_alternates(glob)
                );
            }
        }
    }

    #[test]
    fn braces_inside_classes_and_unclosed_groups_are_literal() {
        assert_eq!(expand_alternates("x[{]y"), ["x[{]y"]);
        assert_eq!(expand_alternates("x{a"), ["x{a"]);
        assert_eq!(expand_alternates("{a,b}{c,d}"), ["ac", "ad", "bc", "bd"]);
    }

    #[test]
    fn class_ends_follow_globset() {
        let chars: Vec<char> = "[]a]b".chars().collect();
        assert_eq!(class_end(&chars, 0), Some(3));
        let chars: Vec<char> = "[!]]".chars().collect();
        assert_eq!(class_end(&chars, 0), Some(3));
        let chars: Vec<char> = "[abc".chars().collect();
        assert_eq!(class_end(&chars, 0), None);
        let chars: Vec<char> = "[[:digit:]a]x".chars().collect();
        assert_eq!(class_end(&chars, 0), Some(11));
    }
}
