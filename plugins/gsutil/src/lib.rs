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

mod boto_config;
mod config;
mod copy;
mod delete;
mod listing;
mod locations;
mod messages;
mod objects;
mod sync_command;

use stowage_plugin_api::{
    export_plugin, Location, ObjectEntry, PluginError, PluginInfo, ProgressSink, StorageProvider,
    SyncOptions, SyncReport, ToolStatus,
};
use stowage_plugin_support::bucket::{ensure_bucket, BucketCommands};
use stowage_plugin_support::tool::Tool;

use crate::locations::gs_url;

export_plugin!(GsutilProvider::from_config);

/// The gsutil provider (built by [`GsutilProvider::from_config`]).
pub struct GsutilProvider {
    tool: Tool,
    /// The JSON API host the boto config names, for display.
    endpoint: String,
}

impl StorageProvider for GsutilProvider {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new(
            "gsutil",
            env!("CARGO_PKG_VERSION"),
            "Google Cloud Storage through gsutil (gsutil -m rsync).",
            Some("gsutil"),
            &["gs"],
            config::options(),
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
        listing::list(&self.tool, location)
    }

    fn sync(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        progress: &dyn ProgressSink,
    ) -> Result<SyncReport, PluginError> {
        sync_command::sync(&self.tool, source, destination, options, progress)
    }

    fn put(&self, file: &str, destination: &Location, key: &str) -> Result<(), PluginError> {
        objects::put(&self.tool, file, destination, key)
    }

    fn get(&self, source: &Location, key: &str, file: &str) -> Result<(), PluginError> {
        objects::get(&self.tool, source, key, file)
    }

    fn copy(
        &self,
        source: &Location,
        destination: &Location,
        keys: &[String],
    ) -> Result<SyncReport, PluginError> {
        copy::copy_keys(&self.tool, source, destination, keys)
    }

    fn delete(&self, location: &Location, keys: &[String]) -> Result<SyncReport, PluginError> {
        delete::delete_keys(&self.tool, location, keys)
    }

    fn ensure_bucket(&self, location: &Location) -> Result<bool, PluginError> {
        let bucket = format!("gs://{}", gs_url(location)?.bucket);
        ensure_bucket(
            &self.tool,
            &BucketCommands {
                probe: &["ls", "-b", &bucket],
                create: &["mb", &bucket],
                missing: &[],
                // 409: created by someone else since the check.
                already_exists: &["409"],
            },
        )
    }

    fn create_if_absent(
        &self,
        location: &Location,
        key: &str,
        bytes: &[u8],
    ) -> Result<bool, PluginError> {
        objects::create_if_absent(&self.tool, location, key, bytes)
    }

    fn conditional_create(&self) -> bool {
        true
    }
}
