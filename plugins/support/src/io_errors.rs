//! Local I/O failures (of [`stowage_local_tree`] and of `std::fs`) as
//! plugin errors.

use std::io;

use stowage_local_tree::is_missing_root;
use stowage_plugin_api::{ErrorKind, PluginError};

/// `error` as a one-line plugin error with the same message, its kind
/// chosen from the I/O error's: a walk of a directory that does not exist
/// is `BucketMissing` (a plugin's bucket, or the local side of a sync,
/// is not there); a missing file `NotFound`; no permission `Unauthorized`;
/// an unsafe key or a file name that is not UTF-8 `InvalidInput`; anything
/// else `Other`.
pub fn from_io(error: io::Error) -> PluginError {
    let kind = match error.kind() {
        _ if is_missing_root(&error) => ErrorKind::BucketMissing,
        io::ErrorKind::NotFound => ErrorKind::NotFound,
        io::ErrorKind::PermissionDenied => ErrorKind::Unauthorized,
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => ErrorKind::InvalidInput,
        _ => ErrorKind::Other,
    };
    PluginError::new(kind, error.to_string())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use stowage_local_tree::{key_to_relative_path, md5_file, walk, with_path};

    use super::*;

    #[test]
    fn kinds_follow_what_went_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let kind = |error: io::Error| from_io(error).kind;
        assert_eq!(kind(walk(&missing).unwrap_err()), ErrorKind::BucketMissing);
        assert_eq!(kind(md5_file(&missing).unwrap_err()), ErrorKind::NotFound);
        assert_eq!(
            kind(key_to_relative_path("../x").unwrap_err()),
            ErrorKind::InvalidInput
        );
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(kind(denied), ErrorKind::Unauthorized);
        assert_eq!(kind(io::Error::other("disk on fire")), ErrorKind::Other);
    }

    #[test]
    fn the_message_is_kept_whole() {
        let error = with_path(
            "cannot create directory",
            Path::new("/srv/x"),
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        let message = error.to_string();
        assert_eq!(from_io(error).message.as_str(), message);
        assert!(
            message.starts_with("cannot create directory /srv/x: "),
            "{message}"
        );
    }
}
