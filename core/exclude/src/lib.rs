//! What an exclude glob means.
//!
//! Stowage has one exclude syntax, shared by the host's planner and every
//! plugin (which translates it for its tool):
//!
//! - a pattern is matched against the key relative to the sync root;
//! - `*` and `?` never match `/`; `**` matches any number of path segments;
//!   `[abc]` is a character class;
//! - a key is excluded when the pattern matches the key itself or any of its
//!   parent directories, so `tmp/builds/*` excludes `tmp/builds/1/trace.log`
//!   and `tmp` excludes everything under `tmp/`.
//!
//! Excluded keys are neither transferred nor deleted.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// A compiled set of exclude globs.
#[derive(Clone, Debug)]
pub struct ExcludeMatcher {
    set: GlobSet,
}

impl ExcludeMatcher {
    /// Compiles `patterns`; an invalid pattern is an error naming it.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, String> {
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            let pattern = pattern.as_ref().trim_start_matches('/');
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| format!("invalid exclude pattern {pattern:?}: {}", e.kind()))?;
            builder.add(glob);
        }
        let set = builder
            .build()
            .map_err(|e| format!("invalid exclude patterns: {e}"))?;
        Ok(ExcludeMatcher { set })
    }

    /// Whether no pattern was given.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Whether `key` (relative to the sync root) is excluded.
    pub fn is_excluded(&self, key: &str) -> bool {
        if self.set.is_empty() {
            return false;
        }
        let key = key.trim_start_matches('/');
        key.char_indices()
            .filter(|&(_, c)| c == '/')
            .map(|(i, _)| &key[..i])
            .chain(std::iter::once(key))
            .any(|candidate| self.set.is_match(candidate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_glob_excludes_everything_below_it() {
        let m = ExcludeMatcher::new(&["tmp/builds/*"]).unwrap();
        assert!(m.is_excluded("tmp/builds/1.log"));
        assert!(m.is_excluded("tmp/builds/7/trace.log"));
        assert!(!m.is_excluded("tmp/other/1.log"));
        assert!(!m.is_excluded("tmp/builds"));
    }

    #[test]
    fn star_does_not_cross_slashes() {
        let m = ExcludeMatcher::new(&["*.log"]).unwrap();
        assert!(m.is_excluded("a.log"));
        assert!(!m.is_excluded("dir/a.log"));
        let deep = ExcludeMatcher::new(&["**/*.log"]).unwrap();
        assert!(deep.is_excluded("dir/sub/a.log"));
    }

    #[test]
    fn bad_patterns_are_named() {
        let err = ExcludeMatcher::new(&["a[b"]).unwrap_err();
        assert!(err.contains("\"a[b\""), "{err}");
    }

    #[test]
    fn no_patterns_exclude_nothing() {
        let m = ExcludeMatcher::new::<&str>(&[]).unwrap();
        assert!(m.is_empty());
        assert!(!m.is_excluded("anything"));
    }
}
