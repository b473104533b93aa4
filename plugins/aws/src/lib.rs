//! # stowage-plugin-aws — S3 through the AWS CLI
//!
//! Drives the [AWS CLI](https://aws.amazon.com/cli/) (version 1; version 2
//! prints the same) as a child process: `aws s3 sync` for syncs (local →
//! bucket, bucket → local, bucket → bucket), `aws s3api list-objects-v2`
//! for listings (a page: `--start-after` its first key, `--max-items` its
//! length), `aws s3 cp` for single objects and server-side copies,
//! `aws s3api delete-objects` for deletes, `head-bucket` and `aws s3 mb`
//! for buckets, and `aws s3api put-object --if-none-match '*'` for a
//! conditional create (S3 answers 412 when the key exists).
//!
//! aws's sync compares size and modification time, never content: a file
//! changed without changing size, with an older mtime (an old backup
//! restored), is skipped. It also deletes while it still uploads, so the
//! sync driver runs it twice when deleting (transfers first, deletes only
//! after they all succeeded). The host's verification repairs whatever
//! aws skipped.
//!
//! Config table in `plugins.toml` (all optional):
//!
//! ```toml
//! [plugins.aws.config]
//! program = "aws"                          # name on PATH, or a path
//! config_file = "~/.aws/config"            # AWS_CONFIG_FILE
//! credentials_file = "~/.aws/credentials"  # AWS_SHARED_CREDENTIALS_FILE
//! profile = "backup"                       # AWS_PROFILE
//! endpoint_url = "https://minio.example.com:9000"  # --endpoint-url, for S3-compatible servers
//! region = "eu-west-1"                     # AWS_DEFAULT_REGION
//! max_concurrent_requests = 10             # aws's s3 transfer setting
//! extra_args = []                          # global aws options, before every command
//! stall_timeout = 900                      # seconds without output before a run is killed
//!                                          # (STOWAGE_STALL_TIMEOUT overrides it)
//! conditional_create = true                # false for a server that ignores If-None-Match
//! ```
//!
//! Credentials stay in aws's files or its environment (`AWS_ACCESS_KEY_ID`,
//! ...), never in its argv; the secret values the plugin can see are
//! redacted from every message. The endpoint goes on the command line
//! because there it takes precedence over anything in the environment
//! (`AWS_ENDPOINT_URL_S3`, `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`).
//! `max_concurrent_requests` (or a sync's `parallelism`) exists only as a
//! config-file setting, so for the calls that need it aws gets a private
//! temporary copy of the config file with that setting added to the
//! profile, deleted when the call ends.
//!
//! Local files aws cannot read (FIFOs, sockets, devices, files vanishing
//! mid-sync) make it skip them with a `warning:` and exit with code 2; the
//! sync then fails with that warning as its message. Symbolic links are
//! ignored (`--no-follow-symlinks`), as the host ignores them.

mod config_files;
mod excludes;
mod s3api;
mod sync_command;

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use stowage_plugin_api::{
    export_plugin, ActionKind, ConfigKey, ConfigKind, ErrorKind, Location, ObjectEntry,
    PluginError, PluginInfo, ProgressSink, RemoteUrl, StorageProvider, SyncOptions, SyncReport,
    ToolStatus,
};
use stowage_plugin_support::bucket::{ensure_bucket, BucketCommands};
use stowage_plugin_support::byte_range::range_end;
use stowage_plugin_support::config::{
    conditional_create_option, parse_config, program_option, stall_timeout_option,
};
use stowage_plugin_support::io_errors::from_io;
use stowage_plugin_support::paths::{
    check_sync_sides, expand_home, object_url, served_remote, sync_root,
};
use stowage_plugin_support::sync_driver::run_sync;
use stowage_plugin_support::tool::Tool;
use stowage_plugin_support::tool_config::{secret_values, secret_variables, AWS_SECRET_VARIABLES};
use stowage_plugin_support::tool_input::temporary_file_with;

use crate::config_files::{with_max_concurrent_requests, SECRET_KEYS};
use crate::s3api::{content_length, delete_failures, parse_listing};
use crate::sync_command::AwsSync;

export_plugin!(AwsProvider::from_config);

/// The most keys one `delete-objects` request takes (an S3 limit).
const DELETE_BATCH: usize = 1000;

/// How many keys one `aws s3 cp --recursive` copies by name.
const COPY_BATCH: usize = 500;

/// Characters that make a key or root unusable in an aws `--include`
/// pattern (fnmatch would read them as wildcards).
const PATTERN_CHARACTERS: [char; 3] = ['*', '?', '['];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AwsConfig {
    program: Option<String>,
    config_file: Option<String>,
    credentials_file: Option<String>,
    profile: Option<String>,
    endpoint_url: Option<String>,
    region: Option<String>,
    max_concurrent_requests: Option<u32>,
    #[serde(default)]
    extra_args: Vec<String>,
    stall_timeout: Option<u64>,
    conditional_create: Option<bool>,
}

/// The keys of [`AwsConfig`], as `describe` declares them.
fn options() -> Vec<ConfigKey> {
    vec![
        program_option("aws"),
        ConfigKey::new(
            "config_file",
            ConfigKind::Path,
            "aws's config file (AWS_CONFIG_FILE); unset: $AWS_CONFIG_FILE, else ~/.aws/config.",
        ),
        ConfigKey::new(
            "credentials_file",
            ConfigKind::Path,
            "aws's credentials file (AWS_SHARED_CREDENTIALS_FILE); unset: \
             $AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials.",
        ),
        ConfigKey::new(
            "profile",
            ConfigKind::String,
            "The profile of those files to use (AWS_PROFILE); unset: $AWS_DEFAULT_PROFILE, \
             else $AWS_PROFILE, else default.",
        ),
        ConfigKey::new(
            "endpoint_url",
            ConfigKind::String,
            "URL of an S3-compatible server (--endpoint-url); unset: $AWS_ENDPOINT_URL_S3, \
             else $AWS_ENDPOINT_URL, else AWS.",
        ),
        ConfigKey::new(
            "region",
            ConfigKind::String,
            "The buckets' region (AWS_DEFAULT_REGION); unset: the profile's.",
        ),
        ConfigKey::new(
            "max_concurrent_requests",
            ConfigKind::Integer,
            "aws's s3 max_concurrent_requests for transfers, when a sync does not set its own \
             parallelism; unset: the profile's (aws's default is 10).",
        ),
        ConfigKey::new(
            "extra_args",
            ConfigKind::StringList,
            "Global aws options put before every command (aws takes no credential there).",
        )
        .default("[]"),
        stall_timeout_option("aws"),
        conditional_create_option(),
    ]
}

/// The aws provider.
pub struct AwsProvider {
    tool: Tool,
    /// The config file aws reads, which a private copy starts from.
    config_file: PathBuf,
    /// Files named in `plugins.toml`, which must exist.
    configured_files: Vec<PathBuf>,
    /// The profile aws uses, whose section the private copy changes.
    profile: String,
    max_concurrent_requests: Option<u32>,
    /// Where aws talks to, for display.
    endpoint: String,
    /// Whether to claim `conditional_create` (off for a server that
    /// ignores `If-None-Match`).
    conditional_create: bool,
}

/// The tool for one call, and the private config file it points aws at,
/// deleted when this is dropped.
struct CallTool {
    tool: Tool,
    _private_config: Option<tempfile::TempPath>,
}

impl AwsProvider {
    /// Builds the provider from its `plugins.toml` table (TOML text).
    pub fn from_config(config: &str) -> Result<AwsProvider, PluginError> {
        let config: AwsConfig = parse_config("aws", config)?;
        if config.max_concurrent_requests == Some(0) {
            return Err(PluginError::new(
                ErrorKind::Config,
                "plugin aws: max_concurrent_requests must be at least 1",
            ));
        }
        let program = config.program.as_deref().unwrap_or("aws");
        let mut tool = Tool::new("aws", program, "pip install awscli");
        tool.set_stall_timeout(config.stall_timeout)?;
        // aws v2 pipes JSON through a pager unless told not to; v1 ignores it.
        tool.set_env("AWS_PAGER", "");
        let mut configured_files = Vec::new();
        let mut file_setting = |configured: &Option<String>, variable: &str, default: &str| {
            let file = match configured {
                Some(file) => {
                    let file = expand_home(file);
                    tool.set_env(variable, &file);
                    configured_files.push(file.clone());
                    file
                }
                None => std::env::var(variable)
                    .map(|f| expand_home(&f))
                    .unwrap_or_else(|_| expand_home(default)),
            };
            if let Ok(text) = std::fs::read_to_string(&file) {
                tool.secrets.extend(secret_values(&text, &SECRET_KEYS));
            }
            file
        };
        let config_file = file_setting(&config.config_file, "AWS_CONFIG_FILE", "~/.aws/config");
        file_setting(
            &config.credentials_file,
            "AWS_SHARED_CREDENTIALS_FILE",
            "~/.aws/credentials",
        );
        let profile = match &config.profile {
            Some(profile) => {
                // botocore reads AWS_DEFAULT_PROFILE before AWS_PROFILE.
                tool.set_env("AWS_PROFILE", profile);
                tool.set_env("AWS_DEFAULT_PROFILE", profile);
                profile.clone()
            }
            None => std::env::var("AWS_DEFAULT_PROFILE")
                .or_else(|_| std::env::var("AWS_PROFILE"))
                .unwrap_or_else(|_| "default".to_string()),
        };
        if let Some(region) = &config.region {
            tool.set_env("AWS_DEFAULT_REGION", region);
        }
        let endpoint = match &config.endpoint_url {
            Some(url) => {
                tool.base_args.push(format!("--endpoint-url={url}").into());
                url.clone()
            }
            None => std::env::var("AWS_ENDPOINT_URL_S3")
                .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                .unwrap_or_else(|_| format!("AWS S3 (aws profile {profile})")),
        };
        tool.base_args
            .extend(config.extra_args.iter().map(OsString::from));
        tool.secrets.extend(secret_variables(&AWS_SECRET_VARIABLES));
        Ok(AwsProvider {
            tool,
            config_file,
            configured_files,
            profile,
            max_concurrent_requests: config.max_concurrent_requests,
            endpoint,
            conditional_create: config.conditional_create.unwrap_or(true),
        })
    }

    /// The tool for a call that transfers: with `parallelism` (or else the
    /// configured `max_concurrent_requests`) in a private copy of the
    /// config file, when either is set.
    fn transfer_tool(&self, parallelism: u32) -> Result<CallTool, PluginError> {
        let requests = Some(parallelism)
            .filter(|&n| n > 0)
            .or(self.max_concurrent_requests);
        let Some(requests) = requests else {
            return Ok(CallTool {
                tool: self.tool.clone(),
                _private_config: None,
            });
        };
        let user_config = match std::fs::read_to_string(&self.config_file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(PluginError::new(
                    ErrorKind::Config,
                    format!(
                        "cannot read the aws config file {}: {e}",
                        self.config_file.display()
                    ),
                ))
            }
        };
        let temporary_file_error = |e: std::io::Error| {
            PluginError::new(
                ErrorKind::Other,
                format!("cannot write a temporary aws config file: {e}"),
            )
        };
        // Created readable by this user only: the user's config may hold keys.
        let mut file = tempfile::Builder::new()
            .prefix("stowage-aws-config-")
            .tempfile()
            .map_err(temporary_file_error)?;
        file.write_all(
            with_max_concurrent_requests(&user_config, &self.profile, requests).as_bytes(),
        )
        .map_err(temporary_file_error)?;
        let path = file.into_temp_path();
        let mut tool = self.tool.clone();
        tool.env.retain(|(name, _)| name != "AWS_CONFIG_FILE");
        tool.set_env("AWS_CONFIG_FILE", path.as_os_str());
        Ok(CallTool {
            tool,
            _private_config: Some(path),
        })
    }

    /// Copies one object with `s3api copy-object` (up to 5 GB).
    fn copy_object(
        &self,
        source: &RemoteUrl,
        destination: &RemoteUrl,
        key: &str,
    ) -> Result<(), PluginError> {
        let args = [
            "s3api".to_string(),
            "copy-object".to_string(),
            format!("--bucket={}", destination.bucket),
            format!("--key={}", destination.key_for(key)),
            format!("--copy-source={}/{}", source.bucket, source.key_for(key)),
            "--output=json".to_string(),
        ];
        self.tool.run(&args).map(drop).map_err(|e| {
            if e.message.contains("NoSuchKey") {
                PluginError::new(ErrorKind::NotFound, e.message)
            } else {
                e
            }
        })
    }
}

/// The parts of an `s3://` location; another scheme or a local path is
/// `InvalidInput`.
fn s3_url(location: &Location) -> Result<RemoteUrl, PluginError> {
    served_remote("aws", "s3", location)
}

/// A local path as aws takes it as an argument: `-` alone would mean
/// standard input, and a leading `-` an option.
fn local_argument(file: &str) -> String {
    if file.starts_with('-') {
        format!("./{file}")
    } else {
        file.to_string()
    }
}

/// The version in `aws --version` output (`aws-cli/1.46.3 Python/3.11.7
/// Linux/6.1 botocore/1.43.62` → `1.46.3`), or the whole line.
fn cli_version(line: &str) -> String {
    line.split_whitespace()
        .next()
        .and_then(|first| first.strip_prefix("aws-cli/"))
        .unwrap_or(line)
        .to_string()
}

/// The directory part shared by all `sorted` keys (`a/b/` of `a/b/c` and
/// `a/b/d/e`), empty when there is none.
fn common_directory(sorted: &[&str]) -> String {
    let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
        return String::new();
    };
    let shared = first
        .char_indices()
        .zip(last.chars())
        .find(|((_, a), b)| a != b)
        .map_or(first.len().min(last.len()), |((i, _), _)| i);
    first[..shared]
        .rfind('/')
        .map_or(String::new(), |slash| first[..=slash].to_string())
}

/// What aws says when S3 answered a HEAD request with a bare 404: the
/// bucket (or object) is not there.
const HEAD_NOT_FOUND: &str = "(404)";

/// Whether an error says the bucket (or object) is not there.
fn is_not_found(error: &PluginError) -> bool {
    error.kind == ErrorKind::BucketMissing || error.message.contains(HEAD_NOT_FOUND)
}

/// The error of a read of one object, as `NotFound` when it says the
/// object (or its bucket) is not there.
fn not_found(error: PluginError) -> PluginError {
    if is_not_found(&error) {
        PluginError::new(ErrorKind::NotFound, error.message)
    } else {
        error
    }
}

impl StorageProvider for AwsProvider {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new(
            "aws",
            env!("CARGO_PKG_VERSION"),
            "S3 and S3-compatible storage through the AWS CLI (aws s3 sync).",
            Some("aws"),
            &["s3"],
            options(),
        )
    }

    fn check(&self) -> Result<ToolStatus, PluginError> {
        if let Some(missing) = self.configured_files.iter().find(|f| !f.is_file()) {
            return Err(PluginError::new(
                ErrorKind::Config,
                format!("{} (set in plugins.toml) does not exist", missing.display()),
            ));
        }
        let version = cli_version(&self.tool.version(&["--version"])?);
        // Cheap, and proves the endpoint answers and takes the credentials.
        self.tool.run(&["s3api", "list-buckets", "--output=json"])?;
        Ok(ToolStatus {
            tool_version: Some(version),
            endpoint: self.endpoint.as_str().into(),
        })
    }

    fn list(&self, location: &Location) -> Result<Vec<ObjectEntry>, PluginError> {
        let url = s3_url(location)?;
        // aws v1 follows the continuation tokens itself and prints one
        // merged document.
        let output = self.tool.run(&list_objects_args(&url))?;
        parse_listing(&output.stdout, &url)
    }

    fn sync(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        progress: &dyn ProgressSink,
    ) -> Result<SyncReport, PluginError> {
        check_sync_sides("aws", "s3", source, destination)?;
        let call = self.transfer_tool(options.parallelism)?;
        run_sync(
            &call.tool,
            &AwsSync::new(),
            source,
            destination,
            options,
            progress,
        )
    }

    fn put(&self, file: &str, destination: &Location, key: &str) -> Result<(), PluginError> {
        let url = s3_url(destination)?;
        if !Path::new(file).is_file() {
            return Err(PluginError::new(
                ErrorKind::NotFound,
                format!("cannot upload {file}: no such file"),
            ));
        }
        if key.ends_with('/') {
            // `aws s3 cp` would append the file's name to such a key.
            let args = [
                "s3api".to_string(),
                "put-object".to_string(),
                format!("--bucket={}", url.bucket),
                format!("--key={}", url.key_for(key)),
                format!("--body={file}"),
                "--output=json".to_string(),
            ];
            return self.tool.run(&args).map(drop);
        }
        let call = self.transfer_tool(0)?;
        let args = [
            "s3".to_string(),
            "cp".to_string(),
            "--no-progress".to_string(),
            local_argument(file),
            object_url(destination, key)?,
        ];
        call.tool.run(&args).map(drop)
    }

    /// `s3api head-object` for the size (a range past the end is refused
    /// before anything is fetched), then `s3api get-object --range`.
    fn get_range(
        &self,
        source: &Location,
        key: &str,
        offset: u64,
        length: u64,
        file: &str,
    ) -> Result<(), PluginError> {
        let url = s3_url(source)?;
        let s3api = |command: &str| {
            vec![
                "s3api".to_string(),
                command.to_string(),
                format!("--bucket={}", url.bucket),
                format!("--key={}", url.key_for(key)),
                "--output=json".to_string(),
            ]
        };
        let head = self.tool.run(&s3api("head-object")).map_err(not_found)?;
        let size = content_length(&head.stdout)?;
        let end = range_end(&format!("{key} in {source}"), offset, length, size)?;
        if length == 0 {
            return std::fs::File::create(file).map(drop).map_err(from_io);
        }
        let mut args = s3api("get-object");
        args.push(format!("--range=bytes={offset}-{}", end - 1));
        args.push(local_argument(file));
        let call = self.transfer_tool(0)?;
        call.tool.run(&args).map(drop).map_err(not_found)
    }

    fn reads_ranges(&self) -> bool {
        true
    }

    fn get(&self, source: &Location, key: &str, file: &str) -> Result<(), PluginError> {
        let url = s3_url(source)?;
        let args = if key.ends_with('/') {
            // `aws s3 cp` would take such a key for a folder.
            vec![
                "s3api".to_string(),
                "get-object".to_string(),
                format!("--bucket={}", url.bucket),
                format!("--key={}", url.key_for(key)),
                "--output=json".to_string(),
                local_argument(file),
            ]
        } else {
            vec![
                "s3".to_string(),
                "cp".to_string(),
                "--no-progress".to_string(),
                object_url(source, key)?,
                local_argument(file),
            ]
        };
        let call = self.transfer_tool(0)?;
        call.tool.run(&args).map(drop).map_err(not_found)
    }

    fn copy(
        &self,
        source: &Location,
        destination: &Location,
        keys: &[String],
    ) -> Result<SyncReport, PluginError> {
        let (from, to) = (s3_url(source)?, s3_url(destination)?);
        // aws matches `--include` patterns against `bucket/prefix/KEY`; only
        // keys and roots free of wildcards can be named that way.
        let nameable = |key: &str| {
            ![from.bucket.as_str(), &from.prefix, &to.prefix, key]
                .iter()
                .any(|text| text.contains(PATTERN_CHARACTERS))
        };
        let mut by_name: Vec<&str> = keys
            .iter()
            .map(String::as_str)
            .filter(|k| nameable(k))
            .collect();
        by_name.sort_unstable();
        by_name.dedup();
        let call = self.transfer_tool(0)?;
        let sync = AwsSync::new();
        let mut report = SyncReport::default();
        let mut copied: HashSet<String> = HashSet::new();
        for chunk in by_name.chunks(COPY_BATCH) {
            // Listing only the chunk's common folder, not the whole source.
            let folder = common_directory(chunk);
            let mut args: Vec<String> = vec![
                "s3".into(),
                "cp".into(),
                "--recursive".into(),
                "--no-progress".into(),
                sync_root(&source.join(&folder)),
                sync_root(&destination.join(&folder)),
                "--exclude=*".into(),
            ];
            args.extend(
                chunk
                    .iter()
                    .map(|k| format!("--include={}", &k[folder.len()..])),
            );
            let output = call.tool.run(&args)?;
            for line in output.stdout.lines() {
                let Some(action) = sync.action(line, source, destination) else {
                    continue;
                };
                if action.kind == ActionKind::Copy && copied.insert(action.key.to_string()) {
                    report.actions.push(action);
                }
            }
        }
        // Keys no pattern can name, and any aws did not report copying (a
        // missing key then fails here, clearly): one request each.
        for key in keys {
            if copied.insert(key.to_string()) {
                self.copy_object(&from, &to, key)?;
                report.push(ActionKind::Copy, key.clone(), 0);
            }
        }
        Ok(report)
    }

    fn delete(&self, location: &Location, keys: &[String]) -> Result<SyncReport, PluginError> {
        let url = s3_url(location)?;
        let mut report = SyncReport::default();
        for batch in keys.chunks(DELETE_BATCH) {
            let objects: Vec<serde_json::Value> = batch
                .iter()
                .map(|key| serde_json::json!({ "Key": url.key_for(key) }))
                .collect();
            let request = serde_json::json!({ "Objects": objects, "Quiet": true });
            let file = temporary_file_with(request.to_string().as_bytes())?;
            let args = [
                "s3api".to_string(),
                "delete-objects".to_string(),
                format!("--bucket={}", url.bucket),
                format!("--delete=file://{}", file.path().display()),
                "--output=json".to_string(),
            ];
            let output = self.tool.run(&args)?;
            // S3 answers 200 even when some keys failed; they are listed.
            delete_failures(&output.stdout)
                .map_err(|e| PluginError::new(e.kind, self.tool.redact(&e.message)))?;
            for key in batch {
                report.push(ActionKind::Delete, key.clone(), 0);
            }
        }
        Ok(report)
    }

    fn ensure_bucket(&self, location: &Location) -> Result<bool, PluginError> {
        let bucket = s3_url(location)?.bucket;
        ensure_bucket(
            &self.tool,
            &BucketCommands {
                probe: &["s3api", "head-bucket", &format!("--bucket={bucket}")],
                // `s3 mb` also sets the location constraint for the region.
                create: &["s3", "mb", &format!("s3://{bucket}")],
                missing: &[HEAD_NOT_FOUND],
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
        let body = temporary_file_with(bytes)?;
        let args = [
            "s3api".to_string(),
            "put-object".to_string(),
            format!("--bucket={}", url.bucket),
            format!("--key={}", url.key_for(key)),
            format!("--body={}", body.path().display()),
            "--if-none-match=*".to_string(),
            "--output=json".to_string(),
        ];
        match self.tool.run(&args) {
            Ok(_) => Ok(true),
            Err(e) if is_taken(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn conditional_create(&self) -> bool {
        self.conditional_create
    }

    /// `list-objects-v2 --start-after` the key, `--max-items` the page: aws
    /// stops requesting once it has them.
    fn list_page(
        &self,
        location: &Location,
        after: &str,
        limit: u32,
    ) -> Result<Vec<ObjectEntry>, PluginError> {
        let url = s3_url(location)?;
        let mut args = list_objects_args(&url);
        if !after.is_empty() {
            args.push(format!("--start-after={}", url.key_for(after)));
        }
        // The first page below a prefix may hold the prefix's own "folder"
        // object, which is no entry: one more item, so the page stays full.
        let items = u64::from(limit) + u64::from(after.is_empty() && !url.prefix.is_empty());
        args.push(format!("--max-items={items}"));
        let output = self.tool.run(&args)?;
        let mut entries = parse_listing(&output.stdout, &url)?;
        entries.truncate(limit as usize);
        Ok(entries)
    }

    fn lists_pages(&self) -> bool {
        true
    }
}

/// The arguments of a `list-objects-v2` of every object below `url`.
fn list_objects_args(url: &RemoteUrl) -> Vec<String> {
    let mut args = vec![
        "s3api".to_string(),
        "list-objects-v2".to_string(),
        format!("--bucket={}", url.bucket),
        "--output=json".to_string(),
    ];
    if !url.prefix.is_empty() {
        args.push(format!("--prefix={}/", url.prefix));
    }
    args
}

/// Whether a conditional PUT failed because the key exists (412
/// PreconditionFailed) or another conditional write to it was under way
/// (409 ConditionalRequestConflict): either way it was not created.
fn is_taken(error: &PluginError) -> bool {
    ["PreconditionFailed", "ConditionalRequestConflict"]
        .iter()
        .any(|code| error.message.contains(code))
}

#[cfg(test)]
mod tests {
    use stowage_plugin_support::config::assert_declared_options;

    use super::*;

    #[test]
    fn the_declared_options_are_the_config_keys() {
        let info = AwsProvider::from_config("").unwrap().describe();
        assert_declared_options::<AwsConfig>(&info.options);
    }

    #[test]
    fn the_version_is_read_from_the_first_word() {
        assert_eq!(
            cli_version("aws-cli/1.46.3 Python/3.11.7 Linux/6.18.44 botocore/1.43.62"),
            "1.46.3"
        );
        assert_eq!(cli_version("something else"), "something else");
    }

    #[test]
    fn chunks_are_copied_from_their_common_folder() {
        assert_eq!(common_directory(&["a/b/c", "a/b/d/e"]), "a/b/");
        assert_eq!(common_directory(&["a/bc", "a/bd"]), "a/");
        assert_eq!(common_directory(&["a/x", "b/x"]), "");
        assert_eq!(common_directory(&["dir/one file.bin"]), "dir/");
        assert_eq!(common_directory(&[]), "");
    }

    #[test]
    fn unknown_config_keys_are_refused() {
        let err = AwsProvider::from_config("endpoint = \"x\"\n")
            .err()
            .unwrap();
        assert_eq!(err.kind, ErrorKind::Config);
        let err = AwsProvider::from_config("max_concurrent_requests = 0\n")
            .err()
            .unwrap();
        assert_eq!(err.kind, ErrorKind::Config);
    }

    #[test]
    fn settings_reach_aws_through_its_environment_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        let credentials = dir.path().join("credentials");
        std::fs::write(
            &config,
            "[profile backup]\ns3 =\n  addressing_style = path\n",
        )
        .unwrap();
        std::fs::write(
            &credentials,
            "[backup]\naws_access_key_id = AKIA\naws_secret_access_key = hunter2\n",
        )
        .unwrap();
        let table = format!(
            "config_file = {:?}\ncredentials_file = {:?}\nprofile = \"backup\"\nendpoint_url = \"http://127.0.0.1:9\"\nregion = \"eu-west-1\"\nmax_concurrent_requests = 4\n",
            config.display().to_string(),
            credentials.display().to_string()
        );
        let provider = AwsProvider::from_config(&table).unwrap();
        assert!(provider.tool.secrets.contains(&"hunter2".to_string()));
        assert_eq!(
            provider.tool.base_args,
            ["--endpoint-url=http://127.0.0.1:9"]
        );
        assert_eq!(provider.endpoint, "http://127.0.0.1:9");
        let env = |tool: &Tool, name: &str| {
            tool.env
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        assert_eq!(
            env(&provider.tool, "AWS_PROFILE").as_deref(),
            Some("backup")
        );
        assert_eq!(
            env(&provider.tool, "AWS_DEFAULT_REGION").as_deref(),
            Some("eu-west-1")
        );
        let call = provider.transfer_tool(0).unwrap();
        let private = env(&call.tool, "AWS_CONFIG_FILE").unwrap();
        assert_ne!(private, config.display().to_string());
        assert_eq!(
            std::fs::read_to_string(&private).unwrap(),
            "[profile backup]\ns3 =\n    max_concurrent_requests = 4\n  addressing_style = path\n"
        );
        drop(call);
        assert!(!Path::new(&private).exists(), "the private copy is deleted");
    }

    #[test]
    fn other_schemes_are_refused() {
        let err = s3_url(&Location::parse("gs://b/p")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert_eq!(local_argument("-"), "./-");
        assert_eq!(local_argument("/tmp/x"), "/tmp/x");
    }
}
