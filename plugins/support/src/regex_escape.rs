//! Literal text inside the regular expressions tools take (Python `re`, as
//! s3cmd `--rexclude` and gsutil `-x` use it, and Rust `regex`): the one
//! place that knows which characters must be escaped, for adapters that
//! have to name exact keys with a pattern.

/// The characters that mean something in Python `re` and Rust `regex`
/// outside a character class (outside verbose mode).
pub const METACHARACTERS: &str = "\\.^$*+?()[]{}|";

/// `text` with every regular-expression metacharacter escaped, so that the
/// result matches exactly `text` in Python `re` and in Rust `regex`.
///
/// ```
/// # use stowage_plugin_support::regex_escape::escape;
/// assert_eq!(escape("a+b (1).txt"), r"a\+b \(1\)\.txt");
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if METACHARACTERS.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_keys_match_only_themselves() {
        let keys = [
            "plain.txt",
            "a+b (1).txt",
            "q?x",
            "st*r",
            "a[1].txt",
            "a1.txt",
            "back\\slash",
            "^caret$",
            "{brace}|pipe",
            "ünï/cödé #%'.bin",
        ];
        for key in keys {
            let regex = regex::Regex::new(&format!("^{}$", escape(key))).unwrap();
            for other in keys {
                assert_eq!(regex.is_match(other), key == other, "{key:?} vs {other:?}");
            }
        }
    }
}
