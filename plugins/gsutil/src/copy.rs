//! Copying keys between buckets: `gsutil rsync` restricted by `-x` to
//! exactly those keys, in batches under the argument limit.

use stowage_plugin_api::{Location, PluginError, SyncReport};
use stowage_plugin_support::regex_escape::escape;
use stowage_plugin_support::sync_driver::SyncCommand;
use stowage_plugin_support::tool::Tool;

use crate::locations::gs_url;
use crate::sync_command::GsutilSync;

/// The longest `-x` pattern one `gsutil rsync` of `copy` gets: Linux
/// refuses a single argument over 128 KiB.
const MAX_PATTERN_BYTES: usize = 100_000;

/// Copies `keys` from `source` to `destination`, server-side.
pub fn copy_keys(
    tool: &Tool,
    source: &Location,
    destination: &Location,
    keys: &[String],
) -> Result<SyncReport, PluginError> {
    gs_url(source)?;
    gs_url(destination)?;
    let command = GsutilSync::new(source, destination)?;
    let mut report = SyncReport::default();
    // `gsutil cp` cannot keep each key's path below a new prefix, and
    // writes into a "folder" where one exists; an rsync restricted to
    // exactly these keys does neither, copies server-side, and takes
    // them all in one process per batch. It skips keys whose copy is
    // already identical (gsutil compares checksums bucket to bucket).
    for batch in pattern_batches(keys, MAX_PATTERN_BYTES) {
        let pattern = all_but_regex(batch);
        let args = [
            "-m",
            "rsync",
            "-r",
            "-x",
            pattern.as_str(),
            command.source.as_str(),
            command.destination.as_str(),
        ];
        let output = tool.run(&args)?;
        report.actions.extend(
            output
                .stderr
                .lines()
                .filter_map(|line| command.parse_action(line, source, destination)),
        );
    }
    Ok(report)
}

/// A Python regex that `re.match`es every path except `keys`: as `-x`, it
/// makes `gsutil rsync` act on exactly those keys.
fn all_but_regex<S: AsRef<str>>(keys: &[S]) -> String {
    let alternatives: Vec<String> = keys.iter().map(|k| escape(k.as_ref())).collect();
    format!(r"(?!(?:{})\Z)", alternatives.join("|"))
}

/// `keys` split into runs whose [`all_but_regex`] stays under `max_bytes`.
fn pattern_batches<S: AsRef<str>>(keys: &[S], max_bytes: usize) -> Vec<&[S]> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, key) in keys.iter().enumerate() {
        // Escaping at most doubles a key; one byte more for its `|`.
        let cost = 2 * key.as_ref().len() + 1;
        if i > start && bytes + cost > max_bytes {
            batches.push(&keys[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += cost;
    }
    if start < keys.len() {
        batches.push(&keys[start..]);
    }
    batches
}

#[cfg(test)]
mod tests {
    use stowage_plugin_support::exclude_translation::to_regex;

    use super::*;

    #[test]
    fn copy_patterns_are_batched_under_the_argument_limit() {
        let keys: Vec<String> = (0..100).map(|i| format!("key-{i:03}")).collect();
        let batches = pattern_batches(&keys, 100);
        assert!(batches.len() > 1);
        assert_eq!(batches.concat(), keys);
        for batch in batches {
            assert!(all_but_regex(batch).len() <= 100 + r"(?!(?:)\Z)".len());
        }
        assert_eq!(pattern_batches(&[] as &[String], 100).len(), 0);
        assert_eq!(all_but_regex(&["a.b", "c"]), r"(?!(?:a\.b|c)\Z)");
    }

    /// The patterns are Python regexes, matched by gsutil with `re.match`:
    /// checked with Python itself where it is installed.
    #[test]
    fn patterns_mean_in_python_what_gsutil_needs() {
        let paths = [
            "a.b", "c", "c/d", "axb", "tmp/x", "tmp/x/y", "x.log", "d/x.log",
        ];
        let only = all_but_regex(&["a.b", "c"]);
        let excludes = [to_regex("tmp/*"), to_regex("*.log")].join("|");
        let script = "import re, sys\nfor pattern in sys.argv[1:3]:\n    print(' '.join(p for p in sys.argv[3:] if re.compile(pattern).match(p)))";
        let Ok(output) = std::process::Command::new("python3")
            .args(["-c", script, only.as_str(), excludes.as_str()])
            .args(paths)
            .output()
        else {
            eprintln!("python3 not found: Python regex semantics not checked");
            return;
        };
        let text = String::from_utf8(output.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            ["c/d axb tmp/x tmp/x/y x.log d/x.log", "tmp/x tmp/x/y x.log"]
        );
    }
}
