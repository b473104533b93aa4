//! # stowage-plugin-gsutil — Google Cloud Storage through gsutil
//!
//! Drives [gsutil](https://cloud.google.com/storage/docs/gsutil) as a child
//! process: `gsutil -m rsync -r` for syncs (local → bucket, bucket → local,
//! bucket → bucket), `ls -L` for listings, `cp` for single objects, `rm -I`
//! for deletes, `ls -b` / `mb` for buckets.
//!
//! Config table in `plugins.toml` (all optional):
//!
//! ```toml
//! [plugins.gsutil.config]
//! program = "gsutil"             # name on PATH, or a path
//! boto_config = "~/.boto"        # exported as BOTO_CONFIG; holds the credentials
//! parallel_thread_count = 8      # -o GSUtil:parallel_thread_count=N
//! parallel_process_count = 2     # -o GSUtil:parallel_process_count=N
//! extra_args = []                # put before every command's own arguments (not -q:
//!                                # the reports are read from gsutil's messages)
//! stall_timeout = 900            # seconds without output before a run is killed
//!                                # (STOWAGE_STALL_TIMEOUT overrides it)
//! ```
//!
//! Credentials stay in the boto config (or `GOOGLE_APPLICATION_CREDENTIALS`);
//! they never appear in gsutil's argv. Secret values found in the boto config
//! are redacted from every message.
//!
//! What gsutil can and cannot do, and how this plugin copes:
//!
//! - **Comparing.** `CompareMode::Checksum` passes `-c` (size, then MD5).
//!   Without it gsutil compares size and the file mtime it records in the
//!   object's metadata, and treats a *different* mtime (older or newer) as a
//!   change; that is what `SizeMtime` gets. gsutil has no size-only mode, so
//!   `Size` gets the size-and-mtime comparison too. Bucket to bucket, gsutil
//!   always compares checksums.
//! - **Deleting.** `rsync -d` deletes in the same pass as it copies, so the
//!   sync driver first runs a pass without `-d`, then one with it.
//! - **Excludes.** Stowage's globs become one Python regex for `-x`, which
//!   gsutil matches (`re.match`) against the path relative to the sync root,
//!   on both sides, so excluded objects are neither copied nor deleted.
//! - **Wildcards.** gsutil treats `*`, `?`, `[` and `]` in URLs and local
//!   paths as wildcards: `rsync` from `/srv/a[1]/` syncs `/srv/a1/` instead.
//!   Sync roots, bucket prefixes, and the keys and files of `put`, `get` and
//!   `delete` with such characters are refused with an `InvalidInput` error.
//!   Keys *inside* a sync (and in `copy`, which runs `rsync`) may contain
//!   them: gsutil lists those rather than expanding them.
//! - **Folders.** `gsutil cp FILE gs://b/key` writes `gs://b/key/FILE` when
//!   objects exist below `key/` but `key` itself does not; `put` checks for
//!   that first and refuses it instead of writing another object.
//! - **Listing.** `gsutil ls -L gs://b/p/**` (gsutil has no machine-readable
//!   listing): MD5s come base64 and are turned into hex; composite objects
//!   have none. `last_modified` is the file mtime gsutil recorded at upload
//!   (what its rsync compares), else the object's update time.
//! - **Copying keys.** `gsutil cp` cannot keep each key's path below another
//!   prefix, so `copy` runs `rsync` restricted by `-x` to exactly the keys:
//!   one process per ~100 KB of keys (the argument limit), each listing both
//!   roots. Keys already identical at the destination are skipped.
//! - **Reports.** gsutil prints what it does on stderr, without sizes: an
//!   upload's size is read from the local file, a download's from the file
//!   written; a bucket-to-bucket copy reports 0 bytes.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;
use stowage_plugin_api::{
    export_plugin, ActionKind, CompareMode, ErrorKind, Location, ObjectEntry, PluginError,
    PluginInfo, ProgressSink, RemoteUrl, StorageProvider, SyncAction, SyncOptions, SyncReport,
    ToolStatus,
};
use stowage_plugin_support::config::parse_config;
use stowage_plugin_support::exclude_translation::to_regex;
use stowage_plugin_support::local_tree::{hex, io_error};
use stowage_plugin_support::paths::{expand_home, object_url, remote, sync_root};
use stowage_plugin_support::regex_escape::escape;
use stowage_plugin_support::sync_driver::{run_sync, SyncCommand};
use stowage_plugin_support::tool::Tool;
use stowage_plugin_support::tool_input::{run_with_input, temporary_file_with};

export_plugin!(GsutilProvider::from_config);

/// Characters gsutil expands as wildcards in URLs and local paths.
const WILDCARDS: &[char] = &['*', '?', '[', ']'];

/// The longest `-x` pattern one `gsutil rsync` of `copy` gets: Linux
/// refuses a single argument over 128 KiB.
const MAX_PATTERN_BYTES: usize = 100_000;

/// How many object URLs one `gsutil ls -d` existence check gets.
const EXISTENCE_BATCH: usize = 500;

/// What gsutil says when a listing or `ls` URL matched nothing.
const MATCHED_NOTHING: &str = "matched no objects";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GsutilConfig {
    program: Option<String>,
    boto_config: Option<String>,
    parallel_thread_count: Option<u32>,
    parallel_process_count: Option<u32>,
    #[serde(default)]
    extra_args: Vec<String>,
    stall_timeout: Option<u64>,
}

/// The gsutil provider.
pub struct GsutilProvider {
    tool: Tool,
    /// The JSON API host the boto config names, for display.
    endpoint: String,
}

impl GsutilProvider {
    /// Builds the provider from its `plugins.toml` table (TOML text).
    pub fn from_config(config: &str) -> Result<GsutilProvider, PluginError> {
        let config: GsutilConfig = parse_config("gsutil", config)?;
        let program = config.program.as_deref().unwrap_or("gsutil");
        let mut tool = Tool::new("gsutil", program, "pip install gsutil");
        tool.set_stall_timeout(config.stall_timeout)?;
        let boto_file = match &config.boto_config {
            Some(file) => {
                let file = expand_home(file);
                tool.set_env("BOTO_CONFIG", &file);
                file
            }
            // The file gsutil itself reads, for redaction and display only.
            None => std::env::var_os("BOTO_CONFIG")
                .map(PathBuf::from)
                .unwrap_or_else(|| expand_home("~/.boto")),
        };
        let boto_text = std::fs::read_to_string(boto_file).unwrap_or_default();
        tool.secrets.extend(secret_values(&boto_text));
        for (name, value) in [
            ("parallel_thread_count", config.parallel_thread_count),
            ("parallel_process_count", config.parallel_process_count),
        ] {
            if let Some(count) = value {
                tool.base_args.push(gsutil_option(name, count));
            }
        }
        tool.base_args
            .extend(config.extra_args.iter().map(OsString::from));
        Ok(GsutilProvider {
            tool,
            endpoint: json_api_endpoint(&boto_text),
        })
    }

    /// Which of `urls` name existing objects (`gsutil ls -d`, batched).
    fn existing_objects(&self, urls: &[String]) -> Result<Vec<String>, PluginError> {
        let mut existing = Vec::new();
        for batch in urls.chunks(EXISTENCE_BATCH) {
            let mut args = vec!["ls", "-d"];
            args.extend(batch.iter().map(String::as_str));
            let (status, output) = self.tool.run_unchecked(&args)?;
            if !status.success() && !output.stderr.contains(MATCHED_NOTHING) {
                return Err(self.tool.failure(&args, status, &output.stderr));
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

    /// Refuses an upload to `url` that gsutil would write below `url/`
    /// instead: objects exist below `url/` and none at `url` itself.
    fn refuse_folder_destination(&self, url: &str) -> Result<(), PluginError> {
        let args = ["ls", "-d", url];
        let (status, output) = self.tool.run_unchecked(&args)?;
        if !status.success() {
            return if output.stderr.contains(MATCHED_NOTHING) {
                Ok(())
            } else {
                Err(self.tool.failure(&args, status, &output.stderr))
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
}

/// `-oGSUtil:NAME=VALUE`, attached so that the value never looks like a
/// subcommand in error messages.
fn gsutil_option(name: &str, value: u32) -> OsString {
    format!("-oGSUtil:{name}={value}").into()
}

/// The values of the secret entries of a boto config.
fn secret_values(boto_text: &str) -> Vec<String> {
    boto_entries(boto_text)
        .filter(|(name, _)| {
            matches!(
                *name,
                "gs_secret_access_key"
                    | "gs_oauth2_refresh_token"
                    | "aws_secret_access_key"
                    | "gs_service_key_file_password"
            )
        })
        .map(|(_, value)| value.to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// `gs_json_host[:gs_json_port]` of a boto config, or Google's default host.
fn json_api_endpoint(boto_text: &str) -> String {
    let value = |wanted: &str| {
        boto_entries(boto_text)
            .find(|(name, _)| *name == wanted)
            .map(|(_, value)| value.to_string())
    };
    let host = value("gs_json_host").unwrap_or_else(|| "storage.googleapis.com".to_string());
    match value("gs_json_port") {
        Some(port) => format!("https://{host}:{port}"),
        None => format!("https://{host}"),
    }
}

/// The `name = value` lines of an INI-style boto config.
fn boto_entries(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with(['#', ';']))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.trim(), value.trim()))
}

/// Refuses `text` (a URL part or a local path) if gsutil would expand it as
/// a wildcard.
fn refuse_wildcards(what: &str, text: &str) -> Result<(), PluginError> {
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
fn gs_url(location: &Location) -> Result<RemoteUrl, PluginError> {
    let url = remote(location)?;
    if url.scheme != "gs" {
        return Err(PluginError::new(
            ErrorKind::InvalidInput,
            format!("plugin gsutil serves gs:// URLs, not {location}"),
        ));
    }
    refuse_wildcards("bucket URL", &url.to_string())?;
    Ok(url)
}

/// The URL of one object, refusing keys gsutil would expand as wildcards.
fn literal_object_url(location: &Location, key: &str) -> Result<String, PluginError> {
    gs_url(location)?;
    refuse_wildcards("object key", key)?;
    object_url(location, key)
}

/// The root of a sync as gsutil takes it: a `gs://` URL, or an absolute
/// directory path (gsutil prints local paths as `file://` + the path given,
/// so an absolute one keeps its output predictable), ending in `/`.
fn rsync_root(location: &Location) -> Result<String, PluginError> {
    match location {
        Location::Remote { .. } => {
            gs_url(location)?;
            Ok(sync_root(location))
        }
        Location::Local { path } => {
            let absolute = std::path::absolute(path.as_str())
                .map_err(|e| io_error("cannot resolve", Path::new(path.as_str()), e))?;
            let absolute = absolute.to_string_lossy();
            refuse_wildcards("local directory", &absolute)?;
            Ok(sync_root(&Location::Local {
                path: absolute.as_ref().into(),
            }))
        }
    }
}

/// A root as gsutil prints it in its messages.
fn printed_root(root: &str) -> String {
    if root.contains("://") {
        root.to_string()
    } else {
        format!("file://{root}")
    }
}

/// Whether a root from [`rsync_root`] is a local directory.
fn is_local_root(root: &str) -> bool {
    !root.contains("://")
}

/// The action and key one message of `gsutil rsync` reports, given the
/// roots passed to it. The messages (on stderr):
///
/// - `Would copy SRC/key to DST/key` and `Would remove DST/key` (dry run);
/// - `Copying SRC/key [Content-Type=text/plain]...` (the content type only
///   for a bucket destination) and `Removing DST/key` (real run).
///
/// Local roots print as `file://` URLs. Other messages (`Copying mtime from
/// src to dst for ...`, a metadata update) are no transfer and give `None`.
fn parse_rsync_message(
    message: &str,
    source_root: &str,
    destination_root: &str,
) -> Option<(ActionKind, String)> {
    let source = printed_root(source_root);
    let destination = printed_root(destination_root);
    let transfer = match (is_local_root(source_root), is_local_root(destination_root)) {
        (true, _) => ActionKind::Upload,
        (_, true) => ActionKind::Download,
        _ => ActionKind::Copy,
    };
    let (kind, key) = if let Some(rest) = message
        .strip_prefix("Would copy ")
        .and_then(|r| r.strip_prefix(source.as_str()))
    {
        (transfer, dry_run_copy_key(rest, &destination)?)
    } else if let Some(key) = message
        .strip_prefix("Would remove ")
        .or_else(|| message.strip_prefix("Removing "))
        .and_then(|r| r.strip_prefix(destination.as_str()))
    {
        (ActionKind::Delete, key)
    } else if let Some(rest) = message
        .strip_prefix("Copying ")
        .and_then(|r| r.strip_prefix(source.as_str()))
    {
        let rest = rest.strip_suffix("...")?;
        let key = if is_local_root(destination_root) {
            rest
        } else {
            without_content_type(rest)
        };
        (transfer, key)
    } else {
        return None;
    };
    (!key.is_empty()).then(|| (kind, key.to_string()))
}

/// The key of the rest of a dry-run line, `key to DST/key`: the key occurs
/// twice, so its length follows from the line's, whatever it contains.
fn dry_run_copy_key<'m>(rest: &'m str, destination: &str) -> Option<&'m str> {
    let fixed = " to ".len() + destination.len();
    let doubled = rest.len().checked_sub(fixed)?;
    if doubled % 2 != 0 {
        return None;
    }
    let key = rest.get(..doubled / 2)?;
    (rest.get(doubled / 2..)? == format!(" to {destination}{key}")).then_some(key)
}

/// `key [Content-Type=...]` without the content type.
fn without_content_type(text: &str) -> &str {
    match text.rfind(" [Content-Type=") {
        Some(at) if text.ends_with(']') => &text[..at],
        _ => text,
    }
}

/// The key of one `Removing gs://bucket/prefix/key...` line of `gsutil rm`.
fn parse_removed_key<'m>(message: &'m str, root: &str) -> Option<&'m str> {
    message
        .strip_prefix("Removing ")?
        .strip_prefix(root)?
        .strip_suffix("...")
        .filter(|k| !k.is_empty())
}

/// The messages of one line of gsutil's stderr: its progress display ends
/// with `\r` rather than a newline, so a message may follow it on the line.
fn messages(line: &str) -> impl Iterator<Item = &str> {
    line.split('\r')
}

/// The objects of `gsutil ls -L`, keyed relative to `root` (`gs://b/p/`).
///
/// Each object is a block: a `gs://b/p/key:` line, then fields indented by
/// four spaces (`Content-Length:`, `Hash (md5):` in base64, `ETag:`,
/// `Update time:`) and custom metadata indented by eight
/// (`goog-reserved-file-mtime:SECONDS`, the file mtime gsutil records).
/// Composite objects have no MD5. A `TOTAL:` line ends the listing.
fn parse_long_listing(text: &str, root: &str) -> Vec<ObjectEntry> {
    let mut entries = Vec::new();
    let mut current: Option<ListedObject> = None;
    for line in text.lines() {
        if !line.starts_with(' ') {
            entries.extend(current.take().and_then(ListedObject::into_entry));
            current = line
                .strip_prefix(root)
                .and_then(|rest| rest.strip_suffix(':'))
                .filter(|key| !key.is_empty())
                .map(ListedObject::new);
            continue;
        }
        let Some(object) = current.as_mut() else {
            continue;
        };
        let depth = line.len() - line.trim_start_matches(' ').len();
        let Some((name, value)) = line.trim_start().split_once(':') else {
            continue;
        };
        let value = value.trim();
        match (depth, name) {
            (4, "Content-Length") => object.size = value.parse().ok(),
            (4, "Hash (md5)") => object.md5 = base64_md5_to_hex(value),
            (4, "ETag") => object.etag = Some(value.to_string()),
            (4, "Update time") => object.updated = http_date_to_unix(value),
            (8, "goog-reserved-file-mtime") => object.file_mtime = value.parse().ok(),
            _ => {}
        }
    }
    entries.extend(current.and_then(ListedObject::into_entry));
    entries
}

/// One object of a long listing, while its block is read.
struct ListedObject {
    key: String,
    size: Option<u64>,
    md5: Option<String>,
    etag: Option<String>,
    updated: Option<i64>,
    file_mtime: Option<i64>,
}

impl ListedObject {
    fn new(key: &str) -> Self {
        ListedObject {
            key: key.to_string(),
            size: None,
            md5: None,
            etag: None,
            updated: None,
            file_mtime: None,
        }
    }

    fn into_entry(self) -> Option<ObjectEntry> {
        Some(ObjectEntry {
            key: self.key,
            size: self.size?,
            md5: self.md5,
            etag: self.etag,
            // The recorded file mtime is what `gsutil rsync` compares with a
            // local file's, so a file given this time is not copied again.
            last_modified: self.file_mtime.or(self.updated),
        })
    }
}

/// Lowercase hex of a base64 MD5 (`1B2M2Y8AsgTpgAmY7PhCfg==`).
fn base64_md5_to_hex(value: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    (bytes.len() == 16).then(|| hex(&bytes))
}

/// Seconds since the Unix epoch of an HTTP date, `Thu, 26 Nov 2026 02:39:42 GMT`.
fn http_date_to_unix(value: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let [_, day, month, year, time, "GMT"] = value.split_whitespace().collect::<Vec<_>>()[..]
    else {
        return None;
    };
    let month = MONTHS.iter().position(|m| *m == month)? + 1;
    let day: u32 = day.parse().ok()?;
    let rfc3339 = format!("{year}-{month:02}-{day:02}T{time}Z");
    humantime::parse_rfc3339(&rfc3339)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs() as i64)
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

/// `gsutil -m rsync` between two roots, as the sync driver runs it.
struct GsutilSync {
    /// The source root as passed to gsutil (see [`rsync_root`]).
    source: String,
    /// The destination root as passed to gsutil.
    destination: String,
}

impl GsutilSync {
    fn new(source: &Location, destination: &Location) -> Result<GsutilSync, PluginError> {
        let (source, destination) = (rsync_root(source)?, rsync_root(destination)?);
        if is_local_root(&source) && is_local_root(&destination) {
            return Err(PluginError::new(
                ErrorKind::InvalidInput,
                "gsutil sync needs a gs:// URL on at least one side",
            ));
        }
        Ok(GsutilSync {
            source,
            destination,
        })
    }

    /// The size of the local file a key came from or went to, when there is one.
    fn local_size(root: &str, key: &str) -> u64 {
        if !is_local_root(root) {
            return 0;
        }
        std::fs::metadata(format!("{root}{key}")).map_or(0, |m| m.len())
    }
}

impl SyncCommand for GsutilSync {
    const DELETES_AFTER_TRANSFERS: bool = false;

    fn arguments(
        &self,
        _source: &Location,
        _destination: &Location,
        options: &SyncOptions,
        delete: bool,
        dry_run: bool,
    ) -> Result<Vec<OsString>, PluginError> {
        let mut args: Vec<OsString> = Vec::new();
        if options.parallelism > 0 {
            // Threads in one process: exactly `parallelism` transfers.
            args.push(gsutil_option("parallel_process_count", 1));
            args.push(gsutil_option("parallel_thread_count", options.parallelism));
        }
        args.extend(["-m".into(), "rsync".into(), "-r".into()]);
        if delete {
            args.push("-d".into());
        }
        if options.compare == CompareMode::Checksum {
            args.push("-c".into());
        }
        if dry_run {
            args.push("-n".into());
        }
        if !options.excludes.is_empty() {
            // gsutil keeps only the last -x, so all globs go into one.
            let patterns: Vec<String> = options.excludes.iter().map(|g| to_regex(g)).collect();
            args.push("-x".into());
            args.push(patterns.join("|").into());
        }
        args.push(self.source.as_str().into());
        args.push(self.destination.as_str().into());
        Ok(args)
    }

    fn parse_action(
        &self,
        line: &str,
        _source: &Location,
        _destination: &Location,
    ) -> Option<SyncAction> {
        let (kind, key) =
            messages(line).find_map(|m| parse_rsync_message(m, &self.source, &self.destination))?;
        let bytes = match kind {
            ActionKind::Upload => Self::local_size(&self.source, &key),
            _ => 0,
        };
        Some(SyncAction { kind, key, bytes })
    }
}

impl StorageProvider for GsutilProvider {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new(
            "gsutil",
            env!("CARGO_PKG_VERSION"),
            "Google Cloud Storage through gsutil (gsutil -m rsync).",
            Some("gsutil"),
            &["gs"],
            Vec::new(),
        )
    }

    fn check(&self) -> Result<ToolStatus, PluginError> {
        let version = self.tool.version(&["version"])?;
        // Lists the project's buckets: proves the endpoint answers and the
        // credentials (and default project) are accepted.
        self.tool.run(&["ls"])?;
        Ok(ToolStatus {
            tool_version: Some(version.trim_start_matches("gsutil version:").trim().into()),
            endpoint: self.endpoint.as_str().into(),
        })
    }

    fn list(&self, location: &Location) -> Result<Vec<ObjectEntry>, PluginError> {
        gs_url(location)?;
        let root = sync_root(location);
        let pattern = format!("{root}**");
        let args = ["ls", "-L", pattern.as_str()];
        let (status, output) = self.tool.run_unchecked(&args)?;
        if !status.success() {
            let failure = self.tool.failure(&args, status, &output.stderr);
            // An empty bucket or prefix is "no objects", not a failure.
            if failure.kind != ErrorKind::BucketMissing && output.stderr.contains(MATCHED_NOTHING) {
                return Ok(Vec::new());
            }
            return Err(failure);
        }
        Ok(parse_long_listing(&output.stdout, &root))
    }

    fn sync(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        progress: &dyn ProgressSink,
    ) -> Result<SyncReport, PluginError> {
        // gsutil refuses a local destination that does not exist. A real
        // run creates it; a dry run must not, so it runs against an empty
        // stand-in directory (whose contents are what a missing one has).
        let mut stand_in = None;
        if let Location::Local { path } = destination {
            let dir = Path::new(path.as_str());
            if !dir.is_dir() {
                if options.dry_run {
                    let empty = tempfile::tempdir().map_err(|e| {
                        PluginError::new(
                            ErrorKind::Other,
                            format!("cannot create a temporary directory: {e}"),
                        )
                    })?;
                    stand_in = Some(empty);
                } else {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| io_error("cannot create directory", dir, e))?;
                }
            }
        }
        let target = match &stand_in {
            Some(empty) => Location::Local {
                path: empty.path().to_string_lossy().as_ref().into(),
            },
            None => destination.clone(),
        };
        let command = GsutilSync::new(source, &target)?;
        let mut report = run_sync(&self.tool, &command, source, &target, options, progress)?;
        if !options.dry_run {
            // gsutil names a download before writing it; the file is there now.
            for action in report.actions.iter_mut() {
                if action.kind == ActionKind::Download {
                    action.bytes = GsutilSync::local_size(&command.destination, &action.key);
                }
            }
        }
        Ok(report)
    }

    fn put(&self, file: &str, destination: &Location, key: &str) -> Result<(), PluginError> {
        let url = literal_object_url(destination, key)?;
        refuse_wildcards("local file", file)?;
        self.refuse_folder_destination(&url)?;
        self.tool
            .run(&["cp", file, url.as_str()])
            .map(drop)
            .map_err(not_found_if_unmatched)
    }

    fn get(&self, source: &Location, key: &str, file: &str) -> Result<(), PluginError> {
        let url = literal_object_url(source, key)?;
        refuse_wildcards("local file", file)?;
        // gsutil downloads into a temporary name next to `file` and renames
        // it when the checksum matched, so `file` is never half-written.
        self.tool
            .run(&["cp", url.as_str(), file])
            .map(drop)
            .map_err(not_found_if_unmatched)
    }

    fn copy(
        &self,
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
            let output = self.tool.run(&args)?;
            report.actions.extend(
                output
                    .stderr
                    .lines()
                    .filter_map(|line| command.parse_action(line, source, destination)),
            );
        }
        Ok(report)
    }

    fn delete(&self, location: &Location, keys: &[String]) -> Result<SyncReport, PluginError> {
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
        let (status, output) = run_with_input(&self.tool, &args, input.as_bytes())?;
        if !status.success() {
            let failure = self.tool.failure(&args, status, &output.stderr);
            if failure.kind == ErrorKind::BucketMissing {
                return Err(failure);
            }
            let left = self.existing_objects(&urls)?;
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

    fn ensure_bucket(&self, location: &Location) -> Result<bool, PluginError> {
        let bucket = format!("gs://{}", gs_url(location)?.bucket);
        match self.tool.run(&["ls", "-b", bucket.as_str()]) {
            Ok(_) => Ok(false),
            Err(e) if e.kind == ErrorKind::BucketMissing => {
                match self.tool.run(&["mb", bucket.as_str()]) {
                    Ok(_) => Ok(true),
                    // Created by someone else since the check.
                    Err(e) if e.message.contains("409") => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn create_if_absent(
        &self,
        location: &Location,
        key: &str,
        bytes: &[u8],
    ) -> Result<bool, PluginError> {
        let url = literal_object_url(location, key)?;
        self.refuse_folder_destination(&url)?;
        let body = temporary_file_with(bytes)?;
        let file = body.path().to_string_lossy();
        refuse_wildcards("local file", &file)?;
        // Generation 0 means "no live object": GCS answers 412 when there is one.
        let args = ["-h", "x-goog-if-generation-match:0", "cp", &file, &url];
        match self.tool.run(&args) {
            Ok(_) => Ok(true),
            Err(e) if e.message.contains("412") || e.message.contains("PreconditionException") => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn conditional_create(&self) -> bool {
        true
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "\
gs://bkt/p/dir/one file.bin:
    Creation time:          Thu, 26 Nov 2026 02:39:42 GMT
    Update time:            Thu, 26 Nov 2026 02:39:43 GMT
    Storage class:          STANDARD
    Content-Length:         5000
    Content-Type:           application/octet-stream
    Metadata:               
        goog-reserved-file-mtime:1795660741
        Content-Length:999
    Hash (crc32c):          ODekbw==
    Hash (md5):             THhS5vUlq84icHcO9VqBqA==
    ETag:                   CJ2Q7d3q0ZEDEAE=
    Generation:             1795660782796989773
    Metageneration:         2
    ACL:                    []
gs://bkt/p/it's: #1 [x].txt:
    Creation time:          Thu, 26 Nov 2026 02:39:42 GMT
    Update time:            Thu, 26 Nov 2026 02:39:42 GMT
    Content-Length:         0
    Hash (crc32c):          AAAAAA==
    Hash (md5):             1B2M2Y8AsgTpgAmY7PhCfg==
gs://bkt/p/composite:
    Creation time:          Thu, 26 Nov 2026 02:51:59 GMT
    Update time:            Thu, 26 Nov 2026 02:51:59 GMT
    Content-Length:         8
    Component-Count:        2
    Hash (crc32c):          ZWMakQ==
    ETag:                   CMGgxNnq0ZEDEAE=
TOTAL: 3 objects, 5008 bytes (4.89 KiB)
";

    #[test]
    fn long_listings_give_sizes_hex_md5s_and_times() {
        let entries = parse_long_listing(LISTING, "gs://bkt/p/");
        let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["dir/one file.bin", "it's: #1 [x].txt", "composite"]);
        let first = &entries[0];
        assert_eq!(first.size, 5000);
        assert_eq!(
            first.md5.as_ref().unwrap().as_str(),
            "4c7852e6f525abce2270770ef55a81a8"
        );
        assert_eq!(first.etag.as_ref().unwrap().as_str(), "CJ2Q7d3q0ZEDEAE=");
        assert_eq!(first.last_modified, Some(1795660741));
        let empty = &entries[1];
        assert_eq!(
            (empty.size, empty.md5.as_ref().unwrap().as_str()),
            (0, "d41d8cd98f00b204e9800998ecf8427e")
        );
        // No recorded file mtime: the object's update time.
        assert_eq!(empty.last_modified, Some(1795660782));
    }

    #[test]
    fn composite_objects_have_no_md5() {
        let entries = parse_long_listing(LISTING, "gs://bkt/p/");
        assert_eq!(entries[2].size, 8);
        assert!(entries[2].md5.is_none());
    }

    #[test]
    fn listing_lines_outside_the_root_are_ignored() {
        let text = "gs://other/x:\n    Content-Length:         3\n";
        assert!(parse_long_listing(text, "gs://bkt/").is_empty());
    }

    #[test]
    fn http_dates_become_unix_seconds() {
        assert_eq!(
            http_date_to_unix("Thu, 01 Jan 1970 00:01:40 GMT"),
            Some(100)
        );
        assert_eq!(
            http_date_to_unix("Thu, 26 Nov 2026 02:39:42 GMT"),
            Some(1795660782)
        );
        assert_eq!(http_date_to_unix("yesterday"), None);
    }

    #[test]
    fn rsync_messages_become_actions_whatever_the_key_holds() {
        let up = ("/tmp/src/", "gs://bkt/p/");
        let down = ("gs://bkt/p/", "/tmp/d/");
        let across = ("gs://a/", "gs://b/snapshot.1/");
        let upload = |key: &str| Some((ActionKind::Upload, key.to_string()));
        let delete = |key: &str| Some((ActionKind::Delete, key.to_string()));
        let cases = [
            // Dry run: the key occurs twice, so " to URL" inside it is no trouble.
            (
                up,
                "Would copy file:///tmp/src/a to gs://bkt/p/b to gs://bkt/p/a to gs://bkt/p/b",
                upload("a to gs://bkt/p/b"),
            ),
            (up, "Would copy file:///tmp/src/a to gs://bkt/p/b", None),
            (up, "Would remove gs://bkt/p/old x", delete("old x")),
            (up, "Would set mtime for gs://bkt/p/a", None),
            // Real run.
            (
                up,
                "Copying file:///tmp/src/d d/it's [1]... [Content-Type=text/plain]...",
                upload("d d/it's [1]..."),
            ),
            (up, "Removing gs://bkt/p/dots...", delete("dots...")),
            (up, "Copying mtime from src to dst for gs://bkt/p/a", None),
            (
                down,
                "Copying gs://bkt/p/x [y]...",
                Some((ActionKind::Download, "x [y]".to_string())),
            ),
            (down, "Removing file:///tmp/d/old", delete("old")),
            (
                across,
                "Copying gs://a/f/0.bin [Content-Type=application/octet-stream]...",
                Some((ActionKind::Copy, "f/0.bin".to_string())),
            ),
            (up, "Operation completed over 7 objects/4.9 KiB.", None),
        ];
        for ((source, destination), message, expected) in cases {
            assert_eq!(
                parse_rsync_message(message, source, destination),
                expected,
                "{message}"
            );
        }
    }

    #[test]
    fn messages_after_a_progress_display_are_found() {
        let sync = GsutilSync {
            source: "/nonexistent-stowage/src/".into(),
            destination: "gs://bkt/".into(),
        };
        let line = "/ [0/7 files][    0.0 B/  4.9 KiB]   0% Done     \rCopying file:///nonexistent-stowage/src/a.txt [Content-Type=text/plain]...";
        let here = Location::parse("/");
        let action = sync.parse_action(line, &here, &here).unwrap();
        assert_eq!(
            (action.kind, action.key.as_str(), action.bytes),
            (ActionKind::Upload, "a.txt", 0)
        );
        assert!(sync
            .parse_action("Operation completed over 7 objects/4.9 KiB.", &here, &here)
            .is_none());
    }

    #[test]
    fn rm_messages_give_the_removed_keys() {
        assert_eq!(
            parse_removed_key("Removing gs://bkt/p/a b...", "gs://bkt/p/"),
            Some("a b")
        );
        assert_eq!(
            parse_removed_key("Removing gs://other/a...", "gs://bkt/p/"),
            None
        );
    }

    #[test]
    fn sync_arguments_follow_the_options() {
        let sync =
            GsutilSync::new(&Location::parse("/srv/x"), &Location::parse("gs://bkt/p")).unwrap();
        let options = SyncOptions {
            excludes: vec![String::from("tmp/*"), String::from("*.log")],
            parallelism: 3,
            ..SyncOptions::default()
        };
        let here = Location::parse("/");
        let args = sync.arguments(&here, &here, &options, true, true).unwrap();
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "-oGSUtil:parallel_process_count=1",
                "-oGSUtil:parallel_thread_count=3",
                "-m",
                "rsync",
                "-r",
                "-d",
                "-c",
                "-n",
                "-x",
                r"^tmp/[^/]*(?:/.*)?$|^[^/]*\.log(?:/.*)?$",
                "/srv/x/",
                "gs://bkt/p/",
            ]
        );
        let plain = SyncOptions {
            compare: CompareMode::SizeMtime,
            ..SyncOptions::default()
        };
        let args = sync.arguments(&here, &here, &plain, false, false).unwrap();
        assert_eq!(args, ["-m", "rsync", "-r", "/srv/x/", "gs://bkt/p/"]);
    }

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
        assert!(GsutilSync::new(&Location::parse("/a"), &Location::parse("/b")).is_err());
    }

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

    #[test]
    fn boto_secrets_and_endpoint_are_read() {
        let text = "[Credentials]\ngs_oauth2_refresh_token = 1//token\ngs_json_host = 127.0.0.1\ngs_json_port = 4443\n# gs_secret_access_key = old\n[Boto]\nnum_retries = 3\n";
        assert_eq!(secret_values(text), ["1//token"]);
        assert_eq!(json_api_endpoint(text), "https://127.0.0.1:4443");
        assert_eq!(json_api_endpoint(""), "https://storage.googleapis.com");
    }

    #[test]
    fn config_rejects_unknown_keys() {
        let err = GsutilProvider::from_config("bogus = 1\n").err().unwrap();
        assert_eq!(err.kind, ErrorKind::Config);
        let provider =
            GsutilProvider::from_config("parallel_thread_count = 4\nextra_args = [\"-D\"]\n")
                .unwrap();
        assert_eq!(
            provider.tool.base_args,
            [
                OsString::from("-oGSUtil:parallel_thread_count=4"),
                OsString::from("-D")
            ]
        );
    }
}
