//! Deleting objects: `gsutil rm` of their URLs, and a check of what is
//! left when it fails.

use stowage_plugin_api::{ActionKind, ErrorKind, Location, PluginError, SyncReport};
use stowage_plugin_support::paths::sync_root;
use stowage_plugin_support::tool::Tool;
use stowage_plugin_support::tool_input::run_with_input;

use crate::listing::MATCHED_NOTHING;
use crate::locations::{gs_url, literal_object_url};
use crate::messages::{messages, parse_removed_key};

/// How many object URLs one `gsutil ls -d` existence check gets.
const EXISTENCE_BATCH: usize = 500;

/// Deletes `keys` below `location` (`gsutil -m rm -f -I`, the URLs on
/// its standard input); keys already gone are no failure.
pub fn delete_keys(
    tool: &Tool,
    location: &Location,
    keys: &[String],
) -> Result<SyncReport, PluginError> {
    gs_url(location)?;
    if keys.is_empty() {
        return Ok(SyncReport::default());
    }
    let urls = keys
        .iter()
        .map(|key| literal_object_url(location, key))
        .collect::<Result<Vec<_>, _>>()?;
    let input: String = urls.iter().map(|url| format!("{url}\n")).collect();
    // -f: go on past objects that are already gone (gsutil still exits
    // 1 for them, without saying which; checked below).
    let args = ["-m", "rm", "-f", "-I"];
    let (status, output) = run_with_input(tool, &args, input.as_bytes())?;
    if !status.success() {
        let failure = tool.failure(&args, status, &output.stderr);
        if failure.kind == ErrorKind::BucketMissing {
            return Err(failure);
        }
        let left = existing_objects(tool, &urls)?;
        if let Some(first) = left.first() {
            return Err(PluginError::new(
                failure.kind,
                format!(
                    "{} ({} of {} objects remain, e.g. {first})",
                    failure.message,
                    left.len(),
                    urls.len()
                ),
            ));
        }
    }
    let root = sync_root(location);
    let mut report = SyncReport::default();
    for key in output
        .stderr
        .lines()
        .flat_map(messages)
        .filter_map(|m| parse_removed_key(m, &root))
    {
        report.push(ActionKind::Delete, key, 0);
    }
    Ok(report)
}

/// Which of `urls` name existing objects (`gsutil ls -d`, batched).
fn existing_objects(tool: &Tool, urls: &[String]) -> Result<Vec<String>, PluginError> {
    let mut existing = Vec::new();
    for batch in urls.chunks(EXISTENCE_BATCH) {
        let mut args = vec!["ls", "-d"];
        args.extend(batch.iter().map(String::as_str));
        let (status, output) = tool.run_unchecked(&args)?;
        if !status.success() && !output.stderr.contains(MATCHED_NOTHING) {
            return Err(tool.failure(&args, status, &output.stderr));
        }
        existing.extend(
            output
                .stdout
                .lines()
                .filter(|line| batch.iter().any(|url| url == line))
                .map(str::to_string),
        );
    }
    Ok(existing)
}
