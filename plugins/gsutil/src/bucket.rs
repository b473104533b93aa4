//! Buckets: creating one that is not there yet.

use stowage_plugin_api::{ErrorKind, Location, PluginError};
use stowage_plugin_support::tool::Tool;

use crate::locations::gs_url;

/// Creates the bucket of `location` unless it exists; `Ok(true)` when it
/// was created.
pub fn ensure_bucket(tool: &Tool, location: &Location) -> Result<bool, PluginError> {
    let bucket = format!("gs://{}", gs_url(location)?.bucket);
    match tool.run(&["ls", "-b", bucket.as_str()]) {
        Ok(_) => Ok(false),
        Err(e) if e.kind == ErrorKind::BucketMissing => {
            match tool.run(&["mb", bucket.as_str()]) {
                Ok(_) => Ok(true),
                // Created by someone else since the check.
                Err(e) if e.message.contains("409") => Ok(false),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}
