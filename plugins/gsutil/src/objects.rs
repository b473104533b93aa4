//! Single objects: `gsutil cp` up, down, and only if absent.

use stowage_plugin_api::{ErrorKind, Location, PluginError};
use stowage_plugin_support::tool::Tool;
use stowage_plugin_support::tool_input::temporary_file_with;

use crate::listing::MATCHED_NOTHING;
use crate::locations::{literal_object_url, refuse_wildcards};

/// Uploads `file` as `key` below `destination`.
pub fn put(tool: &Tool, file: &str, destination: &Location, key: &str) -> Result<(), PluginError> {
    let url = literal_object_url(destination, key)?;
    refuse_wildcards("local file", file)?;
    refuse_folder_destination(tool, &url)?;
    tool.run(&["cp", file, url.as_str()])
        .map(drop)
        .map_err(not_found_if_unmatched)
}

/// Downloads `key` below `source` into `file`.
pub fn get(tool: &Tool, source: &Location, key: &str, file: &str) -> Result<(), PluginError> {
    let url = literal_object_url(source, key)?;
    refuse_wildcards("local file", file)?;
    // gsutil downloads into a temporary name next to `file` and renames
    // it when the checksum matched, so `file` is never half-written.
    tool.run(&["cp", url.as_str(), file])
        .map(drop)
        .map_err(not_found_if_unmatched)
}

/// Writes `bytes` as `key` below `location` unless an object has that
/// name: `Ok(false)` then.
pub fn create_if_absent(
    tool: &Tool,
    location: &Location,
    key: &str,
    bytes: &[u8],
) -> Result<bool, PluginError> {
    let url = literal_object_url(location, key)?;
    refuse_folder_destination(tool, &url)?;
    let body = temporary_file_with(bytes)?;
    let file = body.path().to_string_lossy();
    refuse_wildcards("local file", &file)?;
    // Generation 0 means "no live object": GCS answers 412 when there is one.
    let args = ["-h", "x-goog-if-generation-match:0", "cp", &file, &url];
    match tool.run(&args) {
        Ok(_) => Ok(true),
        Err(e) if e.message.contains("412") || e.message.contains("PreconditionException") => {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Refuses an upload to `url` that gsutil would write below `url/`
/// instead: objects exist below `url/` and none at `url` itself.
fn refuse_folder_destination(tool: &Tool, url: &str) -> Result<(), PluginError> {
    let args = ["ls", "-d", url];
    let (status, output) = tool.run_unchecked(&args)?;
    if !status.success() {
        return if output.stderr.contains(MATCHED_NOTHING) {
            Ok(())
        } else {
            Err(tool.failure(&args, status, &output.stderr))
        };
    }
    let folder = format!("{url}/");
    let lines: Vec<&str> = output.stdout.lines().collect();
    if lines.contains(&folder.as_str()) && !lines.contains(&url) {
        return Err(PluginError::new(
            ErrorKind::InvalidInput,
            format!(
                "cannot upload {url} with gsutil: objects exist below {folder}, and gsutil cp would write into that folder instead"
            ),
        ));
    }
    Ok(())
}

/// A `cp` failure because a source matched nothing becomes `NotFound`.
fn not_found_if_unmatched(error: PluginError) -> PluginError {
    if error.message.contains("No URLs matched") {
        PluginError {
            kind: ErrorKind::NotFound,
            ..error
        }
    } else {
        error
    }
}
