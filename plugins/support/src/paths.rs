//! How tools spell locations and keys, and the way back from their output
//! to keys.

use std::path::PathBuf;

use stowage_plugin_api::{ErrorKind, Location, PluginError, RemoteUrl};

/// The root of a sync as a tool takes it, with a trailing `/` so the tool
/// syncs the contents: `/srv/staging/` or `s3://bucket/prefix/`
/// (`s3://bucket/` for a whole bucket).
pub fn sync_root(location: &Location) -> String {
    match location {
        Location::Local { path } => format!("{}/", path.trim_end_matches('/')),
        Location::Remote { .. } => {
            let url = remote(location).expect("a remote location parses");
            format!(
                "{}://{}/{}",
                url.scheme,
                url.bucket,
                with_slash(&url.prefix)
            )
        }
    }
}

fn with_slash(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    }
}

/// The parts of a remote location, or an `InvalidInput` error for a local one.
pub fn remote(location: &Location) -> Result<RemoteUrl, PluginError> {
    location
        .remote()
        .filter(|u| !u.bucket.is_empty())
        .ok_or_else(|| {
            PluginError::new(
                ErrorKind::InvalidInput,
                format!("{location} is not a bucket URL (scheme://bucket/prefix)"),
            )
        })
}

/// The URL of one object: `s3://bucket/prefix/key`.
pub fn object_url(location: &Location, key: &str) -> Result<String, PluginError> {
    let url = remote(location)?;
    Ok(format!(
        "{}://{}/{}",
        url.scheme,
        url.bucket,
        url.key_for(key)
    ))
}

/// The directory of a local location.
pub fn local_dir(location: &Location) -> Option<PathBuf> {
    match location {
        Location::Local { path } => Some(PathBuf::from(path.as_str())),
        Location::Remote { .. } => None,
    }
}

/// Expands a leading `~/` to `$HOME`.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// The key in `text`, which starts with `root` (a [`sync_root`]) and ends
/// where a quote closes it: the last `'` after which only the tool's
/// trailing notes (` (3 bytes ...)`, ` [1 of 5]`) follow. Tools do not
/// escape quotes in names, so the known root and the known shape of the
/// tail are what make this unambiguous.
pub fn quoted_key<'t>(text: &'t str, root: &str) -> Option<&'t str> {
    let rest = text.strip_prefix(root)?;
    let end = rest
        .char_indices()
        .filter(|&(_, c)| c == '\'')
        .map(|(i, _)| i)
        .rfind(|&i| {
            let tail = &rest[i + 1..];
            tail.is_empty() || tail.starts_with(" (") || tail.trim_start().starts_with('[')
        })?;
    Some(&rest[..end]).filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_roots_end_with_a_slash() {
        assert_eq!(sync_root(&Location::parse("s3://b")), "s3://b/");
        assert_eq!(sync_root(&Location::parse("gs://b/p/q")), "gs://b/p/q/");
        assert_eq!(sync_root(&Location::parse("/srv/x/")), "/srv/x/");
    }

    #[test]
    fn quoted_keys_may_contain_quotes_and_brackets() {
        let line = "s3://b/p/it's [1] (x).txt' (3 bytes in 0.0 seconds) [1 of 1]";
        assert_eq!(quoted_key(line, "s3://b/p/"), Some("it's [1] (x).txt"));
        assert_eq!(quoted_key("s3://b/p/a'", "s3://b/p/"), Some("a"));
        assert_eq!(
            quoted_key("s3://b/p/a'  [part 1 of 2, 5MB] [1 of 1]", "s3://b/p/"),
            Some("a")
        );
        assert_eq!(quoted_key("s3://other/a'", "s3://b/p/"), None);
    }
}
