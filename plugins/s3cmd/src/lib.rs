//! # stowage-plugin-s3cmd — S3 through s3cmd
//!
//! Drives [s3cmd](https://s3tools.org/s3cmd) as a child process: `s3cmd sync`
//! for syncs (local → bucket, bucket → local, bucket → bucket), `ls -r
//! --list-md5` for listings, `put`, `get`, `del`, `mb`. Deletes in a sync run
//! only after every upload (`--delete-after`).
//!
//! s3cmd compares size and MD5, but silently falls back to size only for
//! objects with a multipart ETag and no s3cmd MD5 metadata; the host's
//! verification catches what that misses.
//!
//! Config table in `plugins.toml` (all optional):
//!
//! ```toml
//! [plugins.s3cmd.config]
//! program = "s3cmd"              # name on PATH, or a path
//! config_file = "~/.s3cfg"       # s3cmd -c; holds the credentials
//! endpoint = "127.0.0.1:9000"    # host_base and host_bucket, for S3-compatible servers
//! use_https = true               # --ssl / --no-ssl
//! region = "us-east-1"           # --region
//! extra_args = []                # put before every command's own arguments
//! stall_timeout = 900            # seconds without output before a run is killed
//!                                # (STOWAGE_STALL_TIMEOUT overrides it)
//! parallelism = 4                # s3cmd processes for one large upload sync
//! shard_min_files = 100          # a sync of fewer files per process is not split
//! conditional_create = true      # false for a server that ignores If-None-Match
//! ```
//!
//! s3cmd transfers one file at a time, so an upload sync of many files
//! (local directory → bucket) is split into `parallelism` shards (or the
//! sync's own `parallelism`, when set): the files are hard-linked into one
//! temporary directory per shard, next to the source, balanced by size, and
//! one `s3cmd sync` (without deletes) runs per shard, all at once. Only when
//! every shard succeeded does one more `s3cmd sync --delete-removed
//! --delete-after` of the whole source run: it uploads what is still missing
//! (nothing, normally) and deletes the extraneous objects. Dry runs, syncs
//! into a directory or another bucket, and sources whose files cannot be
//! hard-linked run as one `s3cmd sync`, as before.
//!
//! Credentials stay in s3cmd's config file (or its environment, e.g.
//! `AWS_ACCESS_KEY_ID`); they never appear in s3cmd's argv, and the secret
//! values found there are redacted from every message.
//!
//! s3cmd cannot create an object only if it is absent, so for
//! `create_if_absent` the plugin sends that one request itself: a PUT with
//! `If-None-Match: *`, signed with the credentials of s3cmd's config file
//! (see `conditional_put.rs`). Without credentials in the file or the
//! environment, or with `conditional_create = false` (for a server that
//! ignores `If-None-Match`), the plugin does not claim the capability.

mod conditional_put;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use stowage_local_tree::{key_to_relative_path, walk_each, LocalFile};
use stowage_plugin_api::IgnoreProgress;
use stowage_plugin_api::{
    export_plugin, ActionKind, CompareMode, ConfigKey, ConfigKind, ErrorKind, Location,
    ObjectEntry, PluginError, PluginInfo, ProgressSink, RemoteUrl, StorageProvider, SyncAction,
    SyncOptions, SyncReport, ToolStatus,
};
use stowage_plugin_support::bucket::{ensure_bucket, BucketCommands};
use stowage_plugin_support::config::{
    conditional_create_option, parse_config, program_option, stall_timeout_option,
};
use stowage_plugin_support::exclude_translation::to_regex;
use stowage_plugin_support::io_errors::from_io;
use stowage_plugin_support::paths::{
    check_sync_sides, expand_home, object_url, quoted_key, served_remote, sync_root,
};
use stowage_plugin_support::regex_escape::escape;
use stowage_plugin_support::sync_driver::{run_concurrently, run_sync, SyncCommand};
use stowage_plugin_support::tool::Tool;
use stowage_plugin_support::tool_config::{secret_values, secret_variables, AWS_SECRET_VARIABLES};

use crate::conditional_put::{config_values, DirectS3, EndpointOverrides};

export_plugin!(S3cmdProvider::from_config);

/// How many object URLs one `s3cmd del` gets.
const DELETE_BATCH: usize = 200;

/// Settings of s3cmd's config file whose values are secrets.
const SECRET_KEYS: [&str; 2] = ["secret_key", "access_token"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct S3cmdConfig {
    program: Option<String>,
    config_file: Option<String>,
    endpoint: Option<String>,
    use_https: Option<bool>,
    region: Option<String>,
    #[serde(default)]
    extra_args: Vec<String>,
    parallelism: Option<u32>,
    shard_min_files: Option<usize>,
    stall_timeout: Option<u64>,
    conditional_create: Option<bool>,
}

/// The keys of [`S3cmdConfig`], as `describe` declares them.
fn options() -> Vec<ConfigKey> {
    vec![
        program_option("s3cmd"),
        ConfigKey::new(
            "config_file",
            ConfigKind::Path,
            "s3cmd's config file, which holds the credentials (s3cmd -c); unset: \
             $S3CMD_CONFIG, else ~/.s3cfg.",
        ),
        ConfigKey::new(
            "endpoint",
            ConfigKind::String,
            "host:port of an S3-compatible server (s3cmd's host_base and host_bucket); \
             unset: the config file's.",
        ),
        ConfigKey::new(
            "use_https",
            ConfigKind::Boolean,
            "Whether to talk HTTPS (--ssl / --no-ssl); unset: the config file's use_https.",
        ),
        ConfigKey::new(
            "region",
            ConfigKind::String,
            "The buckets' region (--region); unset: the config file's bucket_location.",
        ),
        ConfigKey::new(
            "extra_args",
            ConfigKind::StringList,
            "Arguments put before every s3cmd command's own; they may hold credentials \
             (--secret_key), so they are never shown.",
        )
        .default("[]")
        .secret(),
        ConfigKey::new(
            "parallelism",
            ConfigKind::Integer,
            "s3cmd processes for one large upload sync, when the sync does not set its own.",
        )
        .default(&DEFAULT_PARALLELISM.to_string()),
        ConfigKey::new(
            "shard_min_files",
            ConfigKind::Integer,
            "Fewest files per s3cmd process worth splitting an upload sync for.",
        )
        .default(&DEFAULT_SHARD_MIN_FILES.to_string()),
        stall_timeout_option("s3cmd"),
        conditional_create_option(),
    ]
}

/// s3cmd processes for one upload sync, unless configured.
const DEFAULT_PARALLELISM: u32 = 4;
/// Fewest files per process worth splitting a sync for, unless configured.
const DEFAULT_SHARD_MIN_FILES: usize = 100;

/// The s3cmd provider.
pub struct S3cmdProvider {
    tool: Tool,
    /// The conditional PUT s3cmd cannot send; `None` without credentials.
    direct: Option<DirectS3>,
    parallelism: u32,
    shard_min_files: usize,
}

impl S3cmdProvider {
    /// Builds the provider from its `plugins.toml` table (TOML text).
    pub fn from_config(config: &str) -> Result<S3cmdProvider, PluginError> {
        let config: S3cmdConfig = parse_config("s3cmd", config)?;
        let program = config.program.as_deref().unwrap_or("s3cmd");
        let mut tool = Tool::new("s3cmd", program, "pip install s3cmd");
        tool.set_stall_timeout(config.stall_timeout)?;
        if let Some(file) = &config.config_file {
            tool.base_args.push("-c".into());
            tool.base_args.push(expand_home(file).into());
        }
        let config_text = read_s3cmd_config(config.config_file.as_deref());
        tool.secrets
            .extend(secret_values(&config_text, &SECRET_KEYS));
        tool.secrets.extend(secret_variables(&AWS_SECRET_VARIABLES));
        let settings = config_values(&config_text);
        // Off for a server that ignores `If-None-Match` (it would let two
        // "conditional" creates both succeed): the host then locks the weaker way.
        let direct = DirectS3::new(
            &settings,
            &EndpointOverrides {
                endpoint: config.endpoint.clone(),
                use_https: config.use_https,
                region: config.region.clone(),
            },
        )
        .filter(|_| config.conditional_create.unwrap_or(true));
        if let Some(endpoint) = &config.endpoint {
            tool.base_args.push(format!("--host={endpoint}").into());
            tool.base_args
                .push(format!("--host-bucket={endpoint}").into());
        }
        match config.use_https {
            Some(true) => tool.base_args.push("--ssl".into()),
            Some(false) => tool.base_args.push("--no-ssl".into()),
            None => {}
        }
        if let Some(region) = &config.region {
            tool.base_args.push(format!("--region={region}").into());
        }
        tool.base_args
            .extend(config.extra_args.iter().map(OsString::from));
        Ok(S3cmdProvider {
            tool,
            direct,
            parallelism: config.parallelism.unwrap_or(DEFAULT_PARALLELISM).max(1),
            shard_min_files: config
                .shard_min_files
                .unwrap_or(DEFAULT_SHARD_MIN_FILES)
                .max(1),
        })
    }
}

/// The text of the config file s3cmd reads: `config_file`, else
/// `$S3CMD_CONFIG`, else `~/.s3cfg`; empty when there is none.
fn read_s3cmd_config(configured: Option<&str>) -> String {
    let file = match (configured, std::env::var("S3CMD_CONFIG")) {
        (Some(file), _) => expand_home(file),
        (None, Ok(file)) => expand_home(&file),
        (None, Err(_)) => expand_home("~/.s3cfg"),
    };
    std::fs::read_to_string(file).unwrap_or_default()
}

/// The parts of an `s3://` location; another scheme or a local path is
/// `InvalidInput`.
fn s3_url(location: &Location) -> Result<RemoteUrl, PluginError> {
    served_remote("s3cmd", "s3", location)
}

/// One line of `s3cmd ls -r --list-md5`:
/// `2026-11-26 02:36            3  764efa...  s3://bkt/p/key with spaces`.
fn parse_listing_line(line: &str, root: &str) -> Option<ObjectEntry> {
    let start = line.find(root)?;
    let key = &line[start + root.len()..];
    let fields: Vec<&str> = line[..start].split_whitespace().collect();
    let [date, time, size, md5] = fields.as_slice() else {
        return None;
    };
    let etag = md5.to_string();
    let content_md5 = (etag.len() == 32 && etag.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| etag.to_ascii_lowercase());
    let last_modified = humantime::parse_rfc3339_weak(&format!("{date} {time}:00"))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64);
    Some(ObjectEntry {
        key: key.into(),
        size: size.parse().ok()?,
        md5: content_md5,
        etag: Some(etag),
        last_modified,
    })
}

/// `s3cmd sync` as the sync driver runs it.
struct S3cmdSync;

impl SyncCommand for S3cmdSync {
    const DELETES_AFTER_TRANSFERS: bool = true;

    fn arguments(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        delete: bool,
        dry_run: bool,
    ) -> Result<Vec<OsString>, PluginError> {
        let mut args: Vec<OsString> = vec!["sync".into(), "--no-progress".into()];
        if delete {
            args.extend(["--delete-removed".into(), "--delete-after".into()]);
        }
        if dry_run {
            args.push("--dry-run".into());
        }
        // A planned sync compares as a checksum one (sync always compares).
        if !matches!(
            options.compare,
            CompareMode::Checksum | CompareMode::Planned
        ) {
            args.push("--no-check-md5".into());
        }
        for glob in &options.excludes {
            args.push("--rexclude".into());
            args.push(to_regex(glob).into());
        }
        args.push(sync_root(source).into());
        args.push(sync_root(destination).into());
        Ok(args)
    }

    fn parse_action(
        &self,
        line: &str,
        _source: &Location,
        destination: &Location,
    ) -> Option<SyncAction> {
        let action = |kind, key: &str| SyncAction {
            kind,
            key: key.into(),
            bytes: transferred_bytes(line),
        };
        if let Some(url) = line.strip_prefix("delete: '") {
            return quoted_key(url, &sync_root(destination))
                .map(|key| action(ActionKind::Delete, key));
        }
        let (kind, rest) = [
            ("upload: '", ActionKind::Upload),
            ("download: '", ActionKind::Download),
            ("remote copy: '", ActionKind::Copy),
        ]
        .into_iter()
        .find_map(|(prefix, kind)| line.strip_prefix(prefix).map(|rest| (kind, rest)))?;
        let root = sync_root(destination);
        let key = match rest.split_once(&format!("' -> '{root}")) {
            Some((_, after)) => quoted_key(&format!("{root}{after}"), &root)?.to_string(),
            // s3cmd uploads a file whose content it already uploaded in this
            // run as a server-side copy, printed with keys relative to the
            // destination: `remote copy: 'a.bin' -> 'same as a.bin'`.
            None if kind == ActionKind::Copy => {
                let (_, after) = rest.split_once("' -> '")?;
                quoted_key(&format!("{root}{after}"), &root)?.to_string()
            }
            None => return None,
        };
        Some(action(kind, &key))
    }
}

/// The byte count of a real run's line, `... (3 bytes in 0.0 seconds ...)`.
fn transferred_bytes(line: &str) -> u64 {
    line.rsplit_once(" bytes in ")
        .and_then(|(before, _)| before.rsplit_once('(').or_else(|| before.rsplit_once(' ')))
        .and_then(|(_, n)| n.trim().parse().ok())
        .unwrap_or(0)
}

impl StorageProvider for S3cmdProvider {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new(
            "s3cmd",
            env!("CARGO_PKG_VERSION"),
            "S3 and S3-compatible storage through s3cmd (s3cmd sync).",
            Some("s3cmd"),
            &["s3"],
            options(),
        )
    }

    fn check(&self) -> Result<ToolStatus, PluginError> {
        let version = self.tool.version(&["--version"])?;
        self.tool.run(&["ls"])?;
        Ok(ToolStatus {
            tool_version: Some(version.trim_start_matches("s3cmd version ").into()),
            endpoint: "s3cmd's configured endpoint".into(),
        })
    }

    fn list(&self, location: &Location) -> Result<Vec<ObjectEntry>, PluginError> {
        s3_url(location)?;
        let root = sync_root(location);
        // Parsed as it streams: a listing of 100,000 objects is ~20 MB of text.
        let mut entries = Vec::new();
        self.tool.run_streaming(
            &["ls", "-r", "--list-md5", root.as_str()],
            |line| entries.extend(parse_listing_line(line, &root)),
            |_| {},
        )?;
        Ok(entries)
    }

    fn sync(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        progress: &dyn ProgressSink,
    ) -> Result<SyncReport, PluginError> {
        check_sync_sides("s3cmd", "s3", source, destination)?;
        if let Some(report) = self.sharded_sync(source, destination, options, progress)? {
            return Ok(report);
        }
        run_sync(
            &self.tool,
            &S3cmdSync,
            source,
            destination,
            options,
            progress,
        )
    }

    fn put(&self, file: &str, destination: &Location, key: &str) -> Result<(), PluginError> {
        s3_url(destination)?;
        let url = object_url(destination, key)?;
        self.tool
            .run(&["put", "--no-progress", file, url.as_str()])
            .map(drop)
    }

    fn get(&self, source: &Location, key: &str, file: &str) -> Result<(), PluginError> {
        s3_url(source)?;
        let url = object_url(source, key)?;
        self.tool
            .run(&["get", "--no-progress", "--force", url.as_str(), file])
            .map(drop)
            .map_err(|e| {
                // `ERROR: Parameter problem: Source object '...' does not exist.`
                if e.message.contains("Source object") && e.message.contains("does not exist") {
                    PluginError::new(ErrorKind::NotFound, e.message)
                } else {
                    e
                }
            })
    }

    fn copy(
        &self,
        source: &Location,
        destination: &Location,
        keys: &[String],
    ) -> Result<SyncReport, PluginError> {
        s3_url(source)?;
        s3_url(destination)?;
        if keys.is_empty() {
            return Ok(SyncReport::default());
        }
        // One server-side `sync` restricted to exactly these keys, instead of
        // one s3cmd process per key.
        let mut include = tempfile::NamedTempFile::new().map_err(|e| {
            PluginError::new(
                ErrorKind::Other,
                format!("cannot create a temporary file: {e}"),
            )
        })?;
        for key in keys {
            writeln!(include, "^{}$", escape(key)).map_err(|e| {
                PluginError::new(
                    ErrorKind::Other,
                    format!("cannot write a temporary file: {e}"),
                )
            })?;
        }
        let include_path = include.path().to_string_lossy().into_owned();
        // `--acl-private`: otherwise s3cmd reads and rewrites each object's
        // ACL around the copy (two more requests per key, and moto answers
        // some object ACL reads with HTTP 500). Copies are snapshots and
        // repairs: private is what they should be.
        let args = [
            "sync",
            "--no-progress",
            "--acl-private",
            "--exclude",
            "*",
            "--rinclude-from",
            include_path.as_str(),
            &sync_root(source),
            &sync_root(destination),
        ];
        let output = self.tool.run(&args)?;
        let mut report = SyncReport::default();
        for line in output.stdout.lines() {
            if let Some(action) = S3cmdSync.parse_action(line, source, destination) {
                report.actions.push(action);
            }
        }
        Ok(report)
    }

    fn delete(&self, location: &Location, keys: &[String]) -> Result<SyncReport, PluginError> {
        s3_url(location)?;
        let mut report = SyncReport::default();
        for batch in keys.chunks(DELETE_BATCH) {
            let mut args: Vec<String> = vec!["del".into()];
            for key in batch {
                args.push(object_url(location, key)?);
            }
            self.tool.run(&args)?;
            for key in batch {
                report.push(ActionKind::Delete, key.clone(), 0);
            }
        }
        Ok(report)
    }

    fn ensure_bucket(&self, location: &Location) -> Result<bool, PluginError> {
        let bucket = format!("s3://{}", s3_url(location)?.bucket);
        ensure_bucket(
            &self.tool,
            &BucketCommands {
                probe: &["info", &bucket],
                create: &["mb", &bucket],
                missing: &[],
                already_exists: &["BucketAlreadyOwnedByYou"],
            },
        )
    }

    fn create_if_absent(
        &self,
        location: &Location,
        key: &str,
        bytes: &[u8],
    ) -> Result<bool, PluginError> {
        let url = s3_url(location)?;
        let Some(direct) = &self.direct else {
            return Err(PluginError::new(
                ErrorKind::Config,
                "plugin s3cmd: no credentials in s3cmd's config file or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, so it cannot send a conditional PUT",
            ));
        };
        direct.put_if_absent(&url.bucket, &url.key_for(key), bytes)
    }

    fn conditional_create(&self) -> bool {
        self.direct.is_some()
    }
}

impl S3cmdProvider {
    /// An upload sync split into parallel `s3cmd sync` runs (see the crate
    /// docs), or `None` when this sync is not worth splitting or cannot be.
    fn sharded_sync(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        progress: &dyn ProgressSink,
    ) -> Result<Option<SyncReport>, PluginError> {
        let (Location::Local { path }, Location::Remote { .. }) = (source, destination) else {
            return Ok(None);
        };
        if options.dry_run {
            return Ok(None);
        }
        let wanted = match options.parallelism {
            0 => self.parallelism,
            n => n,
        } as usize;
        let root = Path::new(path.as_str());
        let mut files = 0;
        walk_each(root, |_| {
            files += 1;
            Ok(())
        })
        .map_err(from_io)?;
        let shards = wanted.min(files / self.shard_min_files);
        if shards < 2 {
            return Ok(None);
        }
        let Some(links) = ShardLinks::create(root, shards) else {
            return Ok(None);
        };
        // The delete limit is checked before anything changes, as unsharded.
        if let (true, Some(_)) = (options.delete, options.max_deletes) {
            let dry = SyncOptions {
                dry_run: true,
                ..options.clone()
            };
            run_sync(
                &self.tool,
                &S3cmdSync,
                source,
                destination,
                &dry,
                &IgnoreProgress,
            )?;
        }
        let mut runs = Vec::new();
        for dir in &links.dirs {
            let shard = Location::Local {
                path: dir.to_string_lossy().as_ref().into(),
            };
            runs.push(S3cmdSync.arguments(&shard, destination, options, false, false)?);
        }
        let mut report = run_concurrently(
            &self.tool,
            &runs,
            |line| S3cmdSync.parse_action(line, source, destination),
            progress,
        )?;
        drop(links);
        if options.delete {
            // Every shard succeeded: now the deletes, with whatever is still
            // missing. Sizes suffice here, the shards compared checksums.
            let mut args = S3cmdSync.arguments(source, destination, options, true, false)?;
            args.insert(2, "--no-check-md5".into());
            let last = run_concurrently(
                &self.tool,
                &[args],
                |line| S3cmdSync.parse_action(line, source, destination),
                progress,
            )?;
            report.actions.extend(last.actions);
        }
        Ok(Some(report))
    }
}

/// One temporary directory per shard, next to the source, holding hard
/// links to that shard's files at their relative paths; removed on drop.
struct ShardLinks {
    _parent: tempfile::TempDir,
    dirs: Vec<PathBuf>,
}

impl ShardLinks {
    /// Splits the files below `root` into `shards` of about the same weight
    /// (bytes plus a per-file cost), each file going to the lightest shard
    /// as the walk meets it — no list of the tree is held. `None` when the
    /// links cannot be made (another filesystem, no write access): the
    /// caller does not split.
    fn create(root: &Path, shards: usize) -> Option<ShardLinks> {
        const PER_FILE_COST: u64 = 256 * 1024;
        let parent_dir = root.parent().filter(|p| !p.as_os_str().is_empty())?;
        let parent = tempfile::Builder::new()
            .prefix(".stowage-s3cmd-shards.")
            .tempdir_in(parent_dir)
            .ok()?;
        let dirs: Vec<PathBuf> = (0..shards)
            .map(|i| parent.path().join(i.to_string()))
            .collect();
        let mut load = vec![0u64; shards];
        let linked = walk_each(root, |file: LocalFile| {
            let (shard, _) = load
                .iter()
                .enumerate()
                .min_by_key(|(i, l)| (**l, *i))
                .expect("at least two shards");
            load[shard] += file.size + PER_FILE_COST;
            let link = dirs[shard].join(key_to_relative_path(&file.key)?);
            std::fs::create_dir_all(link.parent().expect("a link has a parent"))?;
            std::fs::hard_link(&file.path, &link)
        });
        linked.ok()?;
        Some(ShardLinks {
            _parent: parent,
            dirs,
        })
    }
}

#[cfg(test)]
mod tests {
    use stowage_plugin_support::config::assert_declared_options;

    use super::*;

    #[test]
    fn the_declared_options_are_the_config_keys() {
        let info = S3cmdProvider::from_config("").unwrap().describe();
        assert_declared_options::<S3cmdConfig>(&info.options);
    }

    #[test]
    fn listing_lines_keep_spaces_and_quotes_in_keys() {
        let line = "2026-11-26 02:36            3  764efa883dda1e11db47671c4a3bbd9e     s3://bkt/p/d d/it's #1+%.txt";
        let entry = parse_listing_line(line, "s3://bkt/p/").unwrap();
        assert_eq!(entry.key.as_str(), "d d/it's #1+%.txt");
        assert_eq!(entry.size, 3);
        assert_eq!(
            entry.md5.unwrap().as_str(),
            "764efa883dda1e11db47671c4a3bbd9e"
        );
    }

    #[test]
    fn multipart_etags_are_not_taken_for_md5s() {
        let line =
            "2026-11-26 02:36      9000000  0123456789abcdef0123456789abcdef-2  s3://bkt/big";
        let entry = parse_listing_line(line, "s3://bkt/").unwrap();
        assert!(entry.md5.is_none());
        assert_eq!(
            entry.etag.unwrap().as_str(),
            "0123456789abcdef0123456789abcdef-2"
        );
    }

    #[test]
    fn sync_output_lines_become_actions() {
        let src = Location::parse("/tmp/src");
        let dst = Location::parse("s3://bkt/p");
        let upload = "upload: '/tmp/src/d d/it's.txt' -> 's3://bkt/p/d d/it's.txt' (3 bytes in 0.0 seconds, 466.40 B/s) [1 of 1]";
        let action = S3cmdSync.parse_action(upload, &src, &dst).unwrap();
        assert_eq!(
            (action.kind, action.key.as_str(), action.bytes),
            (ActionKind::Upload, "d d/it's.txt", 3)
        );
        let dry = "upload: '/tmp/src/a' -> 's3://bkt/p/a'";
        assert_eq!(
            S3cmdSync
                .parse_action(dry, &src, &dst)
                .unwrap()
                .key
                .as_str(),
            "a"
        );
        let delete = S3cmdSync
            .parse_action("delete: 's3://bkt/p/old x'", &src, &dst)
            .unwrap();
        assert_eq!(
            (delete.kind, delete.key.as_str()),
            (ActionKind::Delete, "old x")
        );
        assert!(S3cmdSync
            .parse_action(
                "Done. Uploaded 3 bytes in 1.0 seconds, 3.00 B/s.",
                &src,
                &dst
            )
            .is_none());
    }

    #[test]
    fn secret_keys_are_read_from_the_config_for_redaction() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s3cfg");
        std::fs::write(
            &file,
            "[default]\naccess_key = AKIA\nsecret_key = s3cr3t\naccess_token = t0k\nhost_base = x\n",
        )
        .unwrap();
        let table = format!("config_file = {:?}\n", file.display().to_string());
        let provider = S3cmdProvider::from_config(&table).unwrap();
        for secret in ["s3cr3t", "t0k"] {
            assert!(
                provider.tool.secrets.iter().any(|s| s == secret),
                "{secret}"
            );
        }
        assert!(!provider.tool.secrets.iter().any(|s| s == "AKIA"));
    }

    #[test]
    fn other_schemes_are_refused() {
        let provider = S3cmdProvider::from_config("").unwrap();
        let gs = Location::parse("gs://bkt/p");
        let local = Location::parse("/tmp/src");
        let refusals = [
            provider.list(&gs).err(),
            provider.put("/tmp/f", &gs, "k").err(),
            provider.get(&gs, "k", "/tmp/f").err(),
            provider.copy(&gs, &Location::parse("s3://b"), &[]).err(),
            provider.delete(&gs, &[]).err(),
            provider.ensure_bucket(&gs).err(),
            provider.create_if_absent(&gs, "k", b"x").err(),
            provider
                .sync(&local, &gs, &SyncOptions::default(), &IgnoreProgress)
                .err(),
            provider
                .sync(&local, &local, &SyncOptions::default(), &IgnoreProgress)
                .err(),
        ];
        for (i, refusal) in refusals.into_iter().enumerate() {
            let err = refusal.unwrap_or_else(|| panic!("call {i} was not refused"));
            assert_eq!(
                err.kind,
                ErrorKind::InvalidInput,
                "call {i}: {}",
                err.message
            );
        }
    }
}
