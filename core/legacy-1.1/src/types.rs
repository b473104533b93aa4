//! The values a provider takes and returns: plain Rust (`String`, `Vec`,
//! `Option`), as both the plugin and the host see them.
//!
//! They never cross the boundary themselves: [`crate::ffi`] holds their
//! FFI-safe mirrors and converts, moving buffers rather than copying them.
//! Enums that may grow are `#[non_exhaustive]`: match them with a `_` arm.

use std::fmt;

use serde::Serialize;

/// Where objects live: a directory on this machine, or a remote bucket URL.
///
/// Remote URLs have the form `scheme://bucket/prefix` (`s3://gitlab-uploads`,
/// `gs://backups/2026`, and for the filesystem provider
/// `file:///srv/buckets/uploads`, whose "bucket" part is empty and whose
/// prefix is the directory). Object keys are always relative to the
/// location, with `/` as separator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Location {
    /// A directory on this machine (the staging area of a backup or restore).
    Local {
        /// Path of the directory.
        path: String,
    },
    /// A bucket, or a prefix inside one, served by a plugin.
    Remote {
        /// The URL, normalised: no trailing `/`.
        url: String,
    },
}

impl Location {
    /// Parses a command-line argument: anything with `scheme://` is remote,
    /// everything else is a local path.
    ///
    /// ```
    /// # use stowage_plugin_api::Location;
    /// assert_eq!(Location::parse("s3://b/p/").to_string(), "s3://b/p");
    /// assert!(matches!(Location::parse("./staging"), Location::Local { .. }));
    /// ```
    pub fn parse(text: &str) -> Location {
        match RemoteUrl::parse(text) {
            Some(url) => Location::Remote {
                url: url.to_string(),
            },
            None => Location::Local {
                path: text.to_string(),
            },
        }
    }

    /// The remote URL, split into its parts, or `None` for a local directory.
    pub fn remote(&self) -> Option<RemoteUrl> {
        match self {
            Location::Local { .. } => None,
            Location::Remote { url } => RemoteUrl::parse(url),
        }
    }

    /// The URL scheme (`s3`, `gs`, `file`), or `None` for a local directory.
    pub fn scheme(&self) -> Option<String> {
        self.remote().map(|url| url.scheme)
    }

    /// A location one level below this one: `s3://b/p` joined with `x/y`
    /// is `s3://b/p/x/y`.
    pub fn join(&self, child: &str) -> Location {
        let child = child.trim_matches('/');
        match self {
            Location::Local { path } => Location::Local {
                path: std::path::Path::new(path)
                    .join(child)
                    .to_string_lossy()
                    .into_owned(),
            },
            Location::Remote { url } => Location::parse(&format!("{url}/{child}")),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local { path } => f.write_str(path),
            Location::Remote { url } => f.write_str(url),
        }
    }
}

/// A remote URL split into scheme, bucket and prefix (a Rust-side view; it
/// never crosses the boundary).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteUrl {
    /// `s3`, `gs`, `file`, ...
    pub scheme: String,
    /// The part after `scheme://` up to the first `/`; empty for `file:///...`.
    pub bucket: String,
    /// The rest, without leading or trailing `/`; may be empty.
    pub prefix: String,
}

impl RemoteUrl {
    /// Splits `scheme://bucket/prefix`; `None` when `text` has no scheme.
    pub fn parse(text: &str) -> Option<RemoteUrl> {
        let (scheme, rest) = text.split_once("://")?;
        let scheme_ok = scheme.chars().next()?.is_ascii_alphabetic()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if !scheme_ok {
            return None;
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix
            .split('/')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        Some(RemoteUrl {
            scheme: scheme.to_ascii_lowercase(),
            bucket: bucket.to_string(),
            prefix,
        })
    }

    /// The full key of `relative_key` under this URL's prefix.
    pub fn key_for(&self, relative_key: &str) -> String {
        if self.prefix.is_empty() {
            relative_key.to_string()
        } else {
            format!("{}/{}", self.prefix, relative_key)
        }
    }

    /// The key relative to this URL's prefix, or `None` if `full_key` is not
    /// below it.
    pub fn relative_key<'k>(&self, full_key: &'k str) -> Option<&'k str> {
        if self.prefix.is_empty() {
            Some(full_key)
        } else {
            full_key
                .strip_prefix(self.prefix.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
        }
    }
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.bucket)?;
        if !self.prefix.is_empty() || self.bucket.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

/// One object as a listing reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectEntry {
    /// Key relative to the listed location, `/`-separated.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex MD5 of the content, only when the provider knows it is
    /// the content's MD5 (not a multipart ETag).
    pub md5: Option<String>,
    /// The provider's raw ETag (quotes removed), when it has one; a
    /// multipart upload's ETag looks like `<hex>-<parts>`.
    pub etag: Option<String>,
    /// Last modification, in seconds since the Unix epoch, when known.
    pub last_modified: Option<i64>,
}

/// How a sync decides that an object is unchanged. May grow: a plugin
/// answers a mode it does not know with an error of kind `InvalidInput`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CompareMode {
    /// Same size and same MD5. The only mode that is always right.
    Checksum,
    /// Same size and the destination is not older than the source.
    SizeMtime,
    /// Same size.
    Size,
    /// No comparison needed (added in API 1.1): the host has compared
    /// already and the source holds exactly the files it planned to
    /// transfer, so a plugin may transfer every source file without listing
    /// or comparing the destination. A plugin that compares anyway (as
    /// [`CompareMode::Checksum`]) is still correct.
    Planned,
}

/// What a sync is asked to do beyond copying new and changed objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SyncOptions {
    /// Delete destination objects that are not in the source (excluded keys
    /// are never deleted).
    pub delete: bool,
    /// Globs relative to the sync root; see `stowage_exclude::ExcludeMatcher`
    /// for their meaning. Excluded keys are neither transferred nor deleted.
    pub excludes: Vec<String>,
    /// Report the actions without performing any.
    pub dry_run: bool,
    /// How unchanged objects are recognised.
    pub compare: CompareMode,
    /// Parallel transfers; 0 lets the plugin choose.
    pub parallelism: u32,
    /// Refuse, before deleting anything, a sync that would delete more objects.
    pub max_deletes: Option<u64>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            delete: false,
            excludes: Vec::new(),
            dry_run: false,
            compare: CompareMode::Checksum,
            parallelism: 0,
            max_deletes: None,
        }
    }
}

/// What happened (or, in a dry run, would happen) to one object. May grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActionKind {
    /// Local file → bucket.
    Upload,
    /// Bucket → local file.
    Download,
    /// Bucket → bucket, without passing through this machine where possible.
    Copy,
    /// Removed from the destination.
    Delete,
    /// Left alone because it was already up to date.
    Skip,
    /// An action of a kind added to the API after this host was built, as
    /// the host sees it. Plugins never report it.
    Other,
}

/// One entry of a [`SyncReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SyncAction {
    /// What was done.
    pub kind: ActionKind,
    /// Key relative to the sync root.
    pub key: String,
    /// Bytes moved (the object's size; 0 for deletes).
    pub bytes: u64,
}

/// Every action a sync, copy or delete took, in no particular order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// One entry per object acted on; skipped objects are listed when the
    /// provider knows them.
    pub actions: Vec<SyncAction>,
}

/// Counts and bytes of one kind of action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ActionTotal {
    /// Number of objects.
    pub objects: u64,
    /// Sum of their bytes.
    pub bytes: u64,
}

impl SyncReport {
    /// A report holding `actions`.
    pub fn new(actions: Vec<SyncAction>) -> Self {
        SyncReport { actions }
    }

    /// Adds one action.
    pub fn push(&mut self, kind: ActionKind, key: impl Into<String>, bytes: u64) {
        self.actions.push(SyncAction {
            kind,
            key: key.into(),
            bytes,
        });
    }

    /// Objects and bytes of one kind of action.
    pub fn total(&self, kind: ActionKind) -> ActionTotal {
        self.actions
            .iter()
            .filter(|a| a.kind == kind)
            .fold(ActionTotal::default(), |t, a| ActionTotal {
                objects: t.objects + 1,
                bytes: t.bytes + a.bytes,
            })
    }

    /// The keys of one kind of action, sorted.
    pub fn keys(&self, kind: ActionKind) -> Vec<String> {
        let mut keys: Vec<String> = self
            .actions
            .iter()
            .filter(|a| a.kind == kind)
            .map(|a| a.key.to_string())
            .collect();
        keys.sort();
        keys
    }
}

/// A progress update a plugin sends while it works.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Objects finished so far in this call.
    pub objects_done: u64,
    /// Bytes finished so far in this call.
    pub bytes_done: u64,
    /// The key being worked on now (may be empty).
    pub current_key: String,
}

/// Who a plugin is: shown by `stowage plugins`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PluginInfo {
    /// Short name, as used in `plugins.toml` (`fs`, `s3cmd`, ...).
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// One sentence on what it is.
    pub description: String,
    /// The external program it drives, if any (`s3cmd`, `aws`, `gsutil`);
    /// `None` for a plugin that talks to its store itself.
    pub tool: Option<String>,
    /// URL schemes it serves (`s3`, `gs`, `file`).
    pub schemes: Vec<String>,
    /// Every key its table in `plugins.toml` may hold. The host refuses a
    /// key not listed here (naming the closest one) and never shows the
    /// value of a key marked secret.
    pub options: Vec<ConfigKey>,
}

impl PluginInfo {
    /// A plugin called `name` at `version`, driving `tool` (`None` for a
    /// native one), serving `schemes`, taking the config keys `options`.
    pub fn new(
        name: &str,
        version: &str,
        description: &str,
        tool: Option<&str>,
        schemes: &[&str],
        options: Vec<ConfigKey>,
    ) -> PluginInfo {
        PluginInfo {
            name: name.to_string(),
            version: version.to_string(),
            description: description.to_string(),
            tool: tool.map(str::to_string),
            schemes: schemes.iter().map(|s| s.to_string()).collect(),
            options,
        }
    }
}

/// One key a plugin's table in `plugins.toml` may hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigKey {
    /// The key, as written in the table (`endpoint`, `config_file`).
    pub name: String,
    /// What its value is.
    pub kind: ConfigKind,
    /// The value used when the key is absent, as the user would write it in
    /// TOML (`4`, `"s3cmd"`, `[]`); `None` when there is none (the key is
    /// optional or required) or it depends on the environment (the help
    /// then says how).
    pub default: Option<String>,
    /// One sentence for `stowage plugins --verbose`.
    pub help: String,
    /// Its value is a credential: never shown, logged or reported.
    pub secret: bool,
}

impl ConfigKey {
    /// A key called `name` of `kind`, explained by `help`; no default, not secret.
    pub fn new(name: &str, kind: ConfigKind, help: &str) -> ConfigKey {
        ConfigKey {
            name: name.to_string(),
            kind,
            default: None,
            help: help.to_string(),
            secret: false,
        }
    }

    /// The same key with `default` as its value when absent.
    pub fn default(mut self, default: &str) -> ConfigKey {
        self.default = Some(default.to_string());
        self
    }

    /// The same key, marked as holding a credential.
    pub fn secret(mut self) -> ConfigKey {
        self.secret = true;
        self
    }
}

/// What a config key's value is. May grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConfigKind {
    /// Any text.
    String,
    /// A path on this machine (`~` is expanded).
    Path,
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// A list of texts.
    StringList,
    /// A table of texts (environment variables, headers).
    Table,
    /// A kind added to the API after this host was built, as the host sees
    /// it: the host leaves its values to the plugin to check. Plugins never
    /// declare it.
    Other,
}

impl fmt::Display for ConfigKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigKind::String => "string",
            ConfigKind::Path => "path",
            ConfigKind::Integer => "integer",
            ConfigKind::Boolean => "boolean",
            ConfigKind::StringList => "list of strings",
            ConfigKind::Table => "table",
            ConfigKind::Other => "value",
        })
    }
}

/// The answer of a successful [`crate::StorageProvider::check`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ToolStatus {
    /// The external tool's version as it reports it, if the plugin drives one.
    pub tool_version: Option<String>,
    /// Where the provider talks to (endpoint, or directory root), for display.
    pub endpoint: String,
}

/// Why a provider call failed, as something the host can act on. May
/// grow: a kind the host does not know reaches it as `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The plugin's configuration table is wrong.
    Config,
    /// The external tool is not installed or not runnable.
    ToolMissing,
    /// The endpoint could not be reached.
    Unreachable,
    /// The credentials were refused.
    Unauthorized,
    /// The bucket (or directory) does not exist.
    BucketMissing,
    /// A named object or file does not exist.
    NotFound,
    /// An argument the plugin cannot serve (wrong scheme, bad key, ...).
    InvalidInput,
    /// A safety limit (such as `max_deletes`) would be exceeded; nothing was done.
    LimitExceeded,
    /// The tool ran and failed.
    ToolFailed,
    /// The plugin panicked; the panic was caught at the boundary.
    Panicked,
    /// Anything else.
    Other,
}

/// An error from a plugin: a kind and a one-line message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PluginError {
    /// What went wrong, for the host.
    pub kind: ErrorKind,
    /// What went wrong, for a user: one line, no credentials.
    pub message: String,
}

impl PluginError {
    /// An error of `kind`; line breaks in `message` are folded into one line.
    pub fn new(kind: ErrorKind, message: impl AsRef<str>) -> Self {
        let one_line = message
            .as_ref()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" | ");
        PluginError {
            kind,
            message: one_line,
        }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PluginError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls_split_into_bucket_and_prefix() {
        let url = RemoteUrl::parse("s3://gitlab-uploads/a//b/").unwrap();
        assert_eq!(url.bucket, "gitlab-uploads");
        assert_eq!(url.prefix, "a/b");
        assert_eq!(url.to_string(), "s3://gitlab-uploads/a/b");
        assert_eq!(url.key_for("x.txt"), "a/b/x.txt");
        assert_eq!(url.relative_key("a/b/x.txt"), Some("x.txt"));
        assert_eq!(url.relative_key("a/bc/x.txt"), None);
    }

    #[test]
    fn file_urls_keep_their_path_in_the_prefix() {
        let url = RemoteUrl::parse("file:///srv/buckets/uploads").unwrap();
        assert_eq!(url.bucket, "");
        assert_eq!(url.prefix, "srv/buckets/uploads");
        assert_eq!(url.to_string(), "file:///srv/buckets/uploads");
        let joined = Location::parse("file:///srv/buckets").join("tmp/");
        assert_eq!(joined.to_string(), "file:///srv/buckets/tmp");
    }

    #[test]
    fn plain_paths_are_local() {
        assert_eq!(
            Location::parse("/var/backups"),
            Location::Local {
                path: "/var/backups".to_string()
            }
        );
        assert_eq!(Location::parse("C:/x").scheme(), None);
    }

    #[test]
    fn error_messages_are_folded_into_one_line() {
        let e = PluginError::new(ErrorKind::ToolFailed, "first\n\n  second  \n");
        assert_eq!(e.message, "first | second");
    }
}
