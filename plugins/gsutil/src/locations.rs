//! Locations as gsutil takes them: `gs://` URLs, object URLs and sync
//! roots, refusing what gsutil would expand as a wildcard.

use std::path::Path;

use stowage_local_tree::with_path;
use stowage_plugin_api::{ErrorKind, Location, PluginError, RemoteUrl};
use stowage_plugin_support::io_errors::from_io;
use stowage_plugin_support::paths::{object_url, served_remote, sync_root};

/// Characters gsutil expands as wildcards in URLs and local paths.
const WILDCARDS: &[char] = &['*', '?', '[', ']'];

/// Refuses `text` (a URL part or a local path) if gsutil would expand it as
/// a wildcard.
pub fn refuse_wildcards(what: &str, text: &str) -> Result<(), PluginError> {
    if text.contains(WILDCARDS) {
        return Err(PluginError::new(
            ErrorKind::InvalidInput,
            format!(
                "{what} {text:?} contains a wildcard character (* ? [ ]), which gsutil would expand to other names"
            ),
        ));
    }
    Ok(())
}

/// The parts of a `gs://` location, refusing other schemes and prefixes
/// gsutil would expand as wildcards.
pub fn gs_url(location: &Location) -> Result<RemoteUrl, PluginError> {
    let url = served_remote("gsutil", "gs", location)?;
    refuse_wildcards("bucket URL", &url.to_string())?;
    Ok(url)
}

/// The URL of one object, refusing keys gsutil would expand as wildcards.
pub fn literal_object_url(location: &Location, key: &str) -> Result<String, PluginError> {
    gs_url(location)?;
    refuse_wildcards("object key", key)?;
    object_url(location, key)
}

/// The root of a sync as gsutil takes it: a `gs://` URL, or an absolute
/// directory path (gsutil prints local paths as `file://` + the path given,
/// so an absolute one keeps its output predictable), ending in `/`.
pub fn rsync_root(location: &Location) -> Result<String, PluginError> {
    match location {
        Location::Remote { .. } => {
            gs_url(location)?;
            Ok(sync_root(location))
        }
        Location::Local { path } => {
            let absolute = std::path::absolute(path.as_str())
                .map_err(|e| from_io(with_path("cannot resolve", Path::new(path.as_str()), e)))?;
            let absolute = absolute.to_string_lossy();
            refuse_wildcards("local directory", &absolute)?;
            Ok(sync_root(&Location::Local {
                path: absolute.as_ref().into(),
            }))
        }
    }
}

/// Whether a root from [`rsync_root`] is a local directory.
pub fn is_local_root(root: &str) -> bool {
    !root.contains("://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_other_schemes_are_refused() {
        let bucket = Location::parse("gs://bkt/p");
        for key in ["a[1].txt", "q?x", "st*r"] {
            let err = literal_object_url(&bucket, key).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{key}");
        }
        assert_eq!(
            literal_object_url(&bucket, "a b#%'.txt").unwrap(),
            "gs://bkt/p/a b#%'.txt"
        );
        assert!(rsync_root(&Location::parse("/srv/a[1]")).is_err());
        assert!(rsync_root(&Location::parse("gs://bkt/p*")).is_err());
        assert!(gs_url(&Location::parse("s3://bkt")).is_err());
    }
}
