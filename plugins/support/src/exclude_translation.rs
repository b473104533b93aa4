//! Stowage's exclude globs (see the `stowage-exclude` crate) translated for
//! the tools, which each have their own syntax:
//!
//! - s3cmd `--rexclude` and gsutil `-x` take a Python regular expression
//!   matched against the path relative to the sync root: [`to_regex`] gives
//!   the exact equivalent (`{a,b}` alternatives included).
//! - aws `--exclude` takes a glob whose `*` also matches `/`: no exact
//!   equivalent exists, so [`to_broad_globs`] gives globs that exclude *at
//!   least* what Stowage excludes. Whatever the tool then skips that Stowage
//!   would not, the host's verification uploads; nothing excluded is ever
//!   touched.

use crate::glob_alternates::expand_alternates;
use crate::regex_escape::METACHARACTERS;

/// An anchored regular expression (Python `re` and Rust `regex` syntax)
/// matching exactly the keys `glob` excludes: the key itself or anything
/// below a matching folder.
///
/// ```
/// # use stowage_plugin_support::exclude_translation::to_regex;
/// assert_eq!(to_regex("tmp/builds/*"), r"^tmp/builds/[^/]*(?:/.*)?$");
/// ```
pub fn to_regex(glob: &str) -> String {
    let alternatives: Vec<String> = expand_alternates(glob.trim_start_matches('/'))
        .iter()
        .map(|plain| regex_body(plain))
        .collect();
    match alternatives.as_slice() {
        [one] => format!("^{one}(?:/.*)?$"),
        many => format!("^(?:{})(?:/.*)?$", many.join("|")),
    }
}

/// The regular expression of a glob without `{a,b}` alternatives, unanchored.
fn regex_body(glob: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                if chars.get(i + 2) == Some(&'/') {
                    out.push_str("(?:.*/)?");
                    i += 3;
                } else {
                    out.push_str(".*");
                    i += 2;
                }
                continue;
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '[' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|&c| c == ']')
                    .map(|p| p + i + 1);
                match close {
                    Some(end) if end > i + 1 => {
                        out.push('[');
                        let mut body: String = chars[i + 1..end].iter().collect();
                        if let Some(rest) = body.strip_prefix('!') {
                            body = format!("^{rest}");
                        }
                        out.push_str(&body.replace('\\', "\\\\"));
                        out.push(']');
                        i = end + 1;
                        continue;
                    }
                    _ => out.push_str("\\["),
                }
            }
            '\\' if i + 1 < chars.len() => {
                push_literal(&mut out, chars[i + 1]);
                i += 2;
                continue;
            }
            c => push_literal(&mut out, c),
        }
        i += 1;
    }
    out
}

fn push_literal(out: &mut String, c: char) {
    if METACHARACTERS.contains(c) {
        out.push('\\');
    }
    out.push(c);
}

/// Globs in aws's syntax (`*` matches across `/`) that together exclude
/// every key `glob` excludes (and possibly more). `glob` has no `{a,b}`
/// alternatives: expand them first with
/// [`crate::glob_alternates::expand_alternates`].
///
/// ```
/// # use stowage_plugin_support::exclude_translation::to_broad_globs;
/// assert_eq!(to_broad_globs("tmp/**/x"), ["tmp/*x", "tmp/*x/*"]);
/// ```
pub fn to_broad_globs(glob: &str) -> [String; 2] {
    // `**/` may match nothing at all, which aws's `*` does too.
    let mut broad = glob.trim_start_matches('/').replace("**/", "*");
    while broad.contains("**") {
        broad = broad.replace("**", "*");
    }
    let below = format!("{broad}/*");
    [broad, below]
}

#[cfg(test)]
mod tests {
    use super::*;
    use stowage_exclude::ExcludeMatcher;

    const KEYS: &[&str] = &[
        "tmp/builds/1.log",
        "tmp/builds/7/trace.log",
        "tmp/builds",
        "tmp/other.txt",
        "a.log",
        "dir/a.log",
        "dir/sub/b.log",
        "x+y (1).txt",
        "ünï/cödé.bin",
        "q?x",
        "data1.bin",
        "datax.bin",
    ];
    const GLOBS: &[&str] = &[
        "tmp/builds/*",
        "*.log",
        "**/*.log",
        "dir",
        "x+y (1).txt",
        "ünï/*",
        "data[0-9].bin",
        "data[!0-9].bin",
        "q\\?x",
        "tmp/**",
        "*.{log,txt}",
        "{dir,tmp/builds}/*",
    ];

    #[test]
    fn the_regex_excludes_exactly_what_stowage_excludes() {
        for glob in GLOBS {
            let matcher = ExcludeMatcher::new(&[glob]).unwrap();
            let regex = regex::Regex::new(&to_regex(glob)).unwrap();
            for key in KEYS {
                assert_eq!(
                    regex.is_match(key),
                    matcher.is_excluded(key),
                    "glob {glob:?} ({}) on {key:?}",
                    to_regex(glob)
                );
            }
        }
    }

    #[test]
    fn broad_globs_exclude_at_least_what_stowage_excludes() {
        for glob in GLOBS
            .iter()
            .filter(|g| !g.contains('\\') && !g.contains('{'))
        {
            let matcher = ExcludeMatcher::new(&[glob]).unwrap();
            let broad: Vec<regex::Regex> = to_broad_globs(glob)
                .iter()
                .map(|g| {
                    // aws semantics: `*` matches anything, `/` included.
                    let re = to_regex(g).replace("[^/]*", ".*").replace("(?:/.*)?$", "$");
                    regex::Regex::new(&re).unwrap()
                })
                .collect();
            for key in KEYS {
                if matcher.is_excluded(key) {
                    assert!(
                        broad.iter().any(|r| r.is_match(key)),
                        "{glob:?} misses {key:?}"
                    );
                }
            }
        }
    }
}
