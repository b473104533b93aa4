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

/// The parts of a `scheme://bucket/prefix` location for plugin `plugin`,
/// which serves only `scheme`: another scheme is the [`unserved`] error,
/// a local path or a URL without a bucket the error of [`remote`] (both
/// `InvalidInput`).
pub fn served_remote(
    plugin: &str,
    scheme: &str,
    location: &Location,
) -> Result<RemoteUrl, PluginError> {
    match location.scheme() {
        Some(other) if other != scheme => Err(unserved(plugin, &format!("{scheme}://"), location)),
        _ => remote(location),
    }
}

/// Checks the two sides of a sync for plugin `plugin`, which serves
/// `scheme`: each remote side must be of that scheme (see
/// [`served_remote`]), and at least one side must be remote.
pub fn check_sync_sides(
    plugin: &str,
    scheme: &str,
    source: &Location,
    destination: &Location,
) -> Result<(), PluginError> {
    check_remote_sides(
        plugin,
        &format!("{scheme}://"),
        source,
        destination,
        |location| served_remote(plugin, scheme, location).map(|_| ()),
    )
}

/// Checks the two sides of a sync for plugin `plugin`: `served` (each
/// remote side) must accept it, and at least one side must be remote;
/// `wanted` says what a remote side looks like (`s3://`).
pub fn check_remote_sides(
    plugin: &str,
    wanted: &str,
    source: &Location,
    destination: &Location,
    served: impl Fn(&Location) -> Result<(), PluginError>,
) -> Result<(), PluginError> {
    let mut remotes = 0;
    for location in [source, destination] {
        if let Location::Remote { .. } = location {
            served(location)?;
            remotes += 1;
        }
    }
    if remotes == 0 {
        return Err(PluginError::new(
            ErrorKind::InvalidInput,
            format!(
                "cannot sync two local directories: plugin {plugin} needs a {wanted} URL on one side"
            ),
        ));
    }
    Ok(())
}

/// The `InvalidInput` error of plugin `plugin` for a `location` it does not
/// serve; `served` says what it does serve (`s3://`, `file:///absolute/path`).
pub fn unserved(plugin: &str, served: &str, location: &Location) -> PluginError {
    PluginError::new(
        ErrorKind::InvalidInput,
        format!("plugin {plugin} serves {served} URLs, not {location}"),
    )
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
    fn other_schemes_are_refused_with_one_error() {
        let url = served_remote("aws", "s3", &Location::parse("s3://b/p")).unwrap();
        assert_eq!((url.bucket.as_str(), url.prefix.as_str()), ("b", "p"));
        let err = served_remote("aws", "s3", &Location::parse("gs://b/p")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert_eq!(
            err.message.as_str(),
            "plugin aws serves s3:// URLs, not gs://b/p"
        );
        for local in ["/srv/x", "s3://"] {
            let err = served_remote("aws", "s3", &Location::parse(local)).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{local}");
        }
    }

    #[test]
    fn a_sync_needs_one_served_remote_side() {
        let sides = |a: &str, b: &str| {
            check_sync_sides("s3cmd", "s3", &Location::parse(a), &Location::parse(b))
        };
        assert!(sides("/srv/x", "s3://b/p").is_ok());
        assert!(sides("s3://a", "s3://b").is_ok());
        assert!(sides("s3://b", "/srv/x").is_ok());
        for (a, b) in [
            ("/srv/x", "/srv/y"),
            ("/srv/x", "gs://b"),
            ("gs://a", "s3://b"),
        ] {
            let err = sides(a, b).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{a} {b}");
        }
        assert_eq!(
            sides("/srv/x", "/srv/y").unwrap_err().message.as_str(),
            "cannot sync two local directories: plugin s3cmd needs a s3:// URL on one side"
        );
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
