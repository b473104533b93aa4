//! Stowage's exclude globs as aws `--exclude` patterns.
//!
//! aws joins each pattern to the sync root (`/srv/staging/PATTERN`,
//! `bucket/prefix/PATTERN`) and matches the whole path with Python's
//! `fnmatch`: `*` and `?` cross `/`, `[...]` is a class negated by `!` only,
//! and there are neither `{a,b}` alternatives nor backslash escapes. Nothing
//! in fnmatch says exactly what a Stowage glob says, so the patterns here
//! exclude *at least* what Stowage excludes: the host's verification
//! transfers whatever aws skipped in excess, while an object Stowage
//! excludes must never be touched.

use stowage_plugin_support::exclude_translation::to_broad_globs;
use stowage_plugin_support::glob_alternates::{class_end, expand_alternates};

/// The aws `--exclude` patterns that together exclude every key `glob`
/// excludes (and possibly more).
pub fn exclude_patterns(glob: &str) -> Vec<String> {
    expand_alternates(glob)
        .iter()
        .flat_map(|plain| to_broad_globs(&fnmatch_syntax(plain)))
        .collect()
}

/// A glob without alternatives, in fnmatch's syntax: an escaped
/// metacharacter becomes a one-character class (`\*` → `[*]`), `[^` becomes
/// `[!`, and a class naming a POSIX class (`[[:digit:]]`), which fnmatch
/// lacks, becomes `?`. `*`, `**` and `?` are left for
/// [`to_broad_globs`].
fn fnmatch_syntax(glob: &str) -> String {
    let chars: Vec<char> = glob.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if let Some(&escaped) = chars.get(i + 1) {
                    if "*?[".contains(escaped) {
                        out.extend(['[', escaped, ']']);
                    } else {
                        out.push(escaped);
                    }
                }
                i += 1;
            }
            '[' => match class_end(&chars, i) {
                Some(end) => {
                    let body: String = chars[i + 1..end].iter().collect();
                    if body.contains("[:") {
                        out.push('?');
                    } else {
                        let body = match body.strip_prefix('^') {
                            Some(negated) => format!("!{negated}"),
                            None => body,
                        };
                        out.push('[');
                        out.push_str(&body);
                        out.push(']');
                    }
                    i = end;
                }
                None => out.push_str("[[]"),
            },
            c => out.push(c),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use stowage_exclude::ExcludeMatcher;

    /// Whether aws would exclude `key` (relative to the root) with `pattern`:
    /// Python's fnmatch, translated the way `fnmatch.translate` does.
    fn aws_excludes(pattern: &str, key: &str) -> bool {
        let chars: Vec<char> = pattern.chars().collect();
        let mut re = String::from("^");
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                '[' => match class_end(&chars, i) {
                    Some(end) => {
                        // What the regex crate would read as syntax inside a
                        // class is literal to fnmatch.
                        let body: String = chars[i + 1..end]
                            .iter()
                            .map(|&c| match c {
                                '\\' | '[' | '&' | '~' => format!("\\{c}"),
                                c => c.to_string(),
                            })
                            .collect();
                        let body = match (body.strip_prefix('!'), body.starts_with('^')) {
                            (Some(negated), _) => format!("^{negated}"),
                            (None, true) => format!("\\{body}"),
                            (None, false) => body,
                        };
                        re.push('[');
                        re.push_str(&body);
                        re.push(']');
                        i = end;
                    }
                    None => re.push_str("\\["),
                },
                c => re.push_str(&regex::escape(&c.to_string())),
            }
            i += 1;
        }
        re.push('$');
        regex::Regex::new(&re).unwrap().is_match(key)
    }

    /// Keys that tell fnmatch's reading of a pattern from globset's.
    const KEYS: &[&str] = &[
        "a.log",
        "a.tmp",
        "dir/a.log",
        "dir/sub/b.log",
        "tmp/builds",
        "tmp/builds/1.log",
        "tmp/builds/7/trace.log",
        "cache/a",
        "logs/b",
        "q?x",
        "q*x",
        "qzx",
        "data1.bin",
        "datax.bin",
        "data^.bin",
        "x+y (1).txt",
    ];

    #[test]
    fn aws_excludes_at_least_what_stowage_excludes() {
        let globs = [
            "tmp/builds/*",
            "*.log",
            "**/*.log",
            "dir",
            "x+y (1).txt",
            "*.{log,tmp}",
            "{cache,logs}/**",
            r"q\?x",
            r"q\*x",
            "data[0-9].bin",
            "data[!0-9].bin",
            "data[^0-9].bin",
            "data[[:digit:]].bin",
        ];
        for glob in globs {
            let matcher = ExcludeMatcher::new(&[glob]).unwrap();
            let patterns = exclude_patterns(glob);
            for key in KEYS {
                if matcher.is_excluded(key) {
                    assert!(
                        patterns.iter().any(|p| aws_excludes(p, key)),
                        "{glob:?} ({patterns:?}) misses {key:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn escapes_stay_narrow_where_fnmatch_can_say_it() {
        assert_eq!(exclude_patterns(r"q\?x"), ["q[?]x", "q[?]x/*"]);
        assert!(!aws_excludes("q[?]x", "qzx"));
        assert_eq!(
            exclude_patterns("data[^0-9].bin"),
            ["data[!0-9].bin", "data[!0-9].bin/*"]
        );
        assert_eq!(exclude_patterns("*.{log,tmp}").len(), 4);
        assert_eq!(exclude_patterns("a[[:digit:]]"), ["a?", "a?/*"]);
    }
}
