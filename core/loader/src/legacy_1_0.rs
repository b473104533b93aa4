//! Plugins built against stowage-plugin-api 1.0.
//!
//! Their types carry the package `stowage-plugin-api 1.0.0`, which
//! abi_stable checks, and their provider vtable ends where 1.0's did, so they
//! are read with the frozen 1.0 crate (`core/legacy-1.0`) through its own
//! host side ([`v1_0::ffi::ProviderClient`]) and converted here into the
//! plain types of the current API. The methods 1.1 added answer with their
//! defaults: `list_keys` filters the plugin's `list`, `reads_ranges` is
//! `false` (so the host downloads whole objects), and a sync asked for
//! [`api::CompareMode::Planned`] reaches the plugin as `Checksum`, which is
//! what `Planned` allows.
//!
//! The growing enums are converted through their FFI codes, which every 1.x
//! release keeps.

use stowage_plugin_api::{self as api, ProgressSink, StorageProvider};
use stowage_plugin_api_1_0 as v1_0;
use v1_0::StorageProvider as _;

/// A provider of API 1.0, seen as a current [`StorageProvider`].
pub struct V1_0Provider(pub v1_0::ffi::ProviderClient);

fn location(location: &api::Location) -> v1_0::Location {
    match location {
        api::Location::Local { path } => v1_0::Location::Local { path: path.clone() },
        api::Location::Remote { url } => v1_0::Location::Remote { url: url.clone() },
    }
}

fn error_kind(kind: v1_0::ErrorKind) -> api::ErrorKind {
    let code = v1_0::ffi::ErrorKind::from_plain(kind).0;
    api::ffi::ErrorKind(code)
        .to_plain()
        .unwrap_or(api::ErrorKind::Other)
}

/// An API 1.0 error as a current one.
pub(crate) fn plain_error(error: v1_0::PluginError) -> api::PluginError {
    api::PluginError {
        kind: error_kind(error.kind),
        message: error.message,
    }
}

fn entry(entry: v1_0::ObjectEntry) -> api::ObjectEntry {
    api::ObjectEntry {
        key: entry.key,
        size: entry.size,
        md5: entry.md5,
        etag: entry.etag,
        last_modified: entry.last_modified,
    }
}

/// The compare mode an API 1.0 plugin is asked for: `Planned`, which it does
/// not know, as `Checksum`, which `Planned` allows.
fn compare_mode(mode: api::CompareMode) -> Result<v1_0::CompareMode, api::PluginError> {
    match mode {
        api::CompareMode::Checksum | api::CompareMode::Planned => Ok(v1_0::CompareMode::Checksum),
        api::CompareMode::SizeMtime => Ok(v1_0::CompareMode::SizeMtime),
        api::CompareMode::Size => Ok(v1_0::CompareMode::Size),
        newer => Err(api::PluginError::new(
            api::ErrorKind::InvalidInput,
            format!("compare mode {newer:?} is newer than this plugin (API 1.0)"),
        )),
    }
}

fn sync_options(options: &api::SyncOptions) -> Result<v1_0::SyncOptions, api::PluginError> {
    Ok(v1_0::SyncOptions {
        delete: options.delete,
        excludes: options.excludes.clone(),
        dry_run: options.dry_run,
        compare: compare_mode(options.compare)?,
        parallelism: options.parallelism,
        max_deletes: options.max_deletes,
    })
}

fn report(report: v1_0::SyncReport) -> api::SyncReport {
    let actions = report.actions.into_iter().map(|action| api::SyncAction {
        kind: api::ffi::ActionKind(v1_0::ffi::ActionKind::from_plain(action.kind).0)
            .to_plain()
            .unwrap_or(api::ActionKind::Other),
        key: action.key,
        bytes: action.bytes,
    });
    api::SyncReport::new(actions.collect())
}

fn config_key(key: v1_0::ConfigKey) -> api::ConfigKey {
    api::ConfigKey {
        name: key.name,
        kind: api::ffi::ConfigKind(v1_0::ffi::ConfigKind::from_plain(key.kind).0)
            .to_plain()
            .unwrap_or(api::ConfigKind::Other),
        default: key.default,
        help: key.help,
        secret: key.secret,
    }
}

/// A current progress sink, lent to an API 1.0 plugin.
struct SinkAdapter<'a>(&'a dyn ProgressSink);

impl v1_0::ProgressSink for SinkAdapter<'_> {
    fn report(&self, progress: &v1_0::Progress) {
        self.0.report(&api::Progress {
            objects_done: progress.objects_done,
            bytes_done: progress.bytes_done,
            current_key: progress.current_key.clone(),
        });
    }
}

impl StorageProvider for V1_0Provider {
    fn describe(&self) -> api::PluginInfo {
        let info = self.0.describe();
        api::PluginInfo {
            name: info.name,
            version: info.version,
            description: info.description,
            tool: info.tool,
            schemes: info.schemes,
            options: info.options.into_iter().map(config_key).collect(),
        }
    }

    fn check(&self) -> Result<api::ToolStatus, api::PluginError> {
        let status = self.0.check().map_err(plain_error)?;
        Ok(api::ToolStatus {
            tool_version: status.tool_version,
            endpoint: status.endpoint,
        })
    }

    fn list(&self, at: &api::Location) -> Result<Vec<api::ObjectEntry>, api::PluginError> {
        let entries = self.0.list(&location(at)).map_err(plain_error)?;
        Ok(entries.into_iter().map(entry).collect())
    }

    fn sync(
        &self,
        source: &api::Location,
        destination: &api::Location,
        options: &api::SyncOptions,
        progress: &dyn ProgressSink,
    ) -> Result<api::SyncReport, api::PluginError> {
        let options = sync_options(options)?;
        let sink = SinkAdapter(progress);
        self.0
            .sync(&location(source), &location(destination), &options, &sink)
            .map(report)
            .map_err(plain_error)
    }

    fn put(
        &self,
        file: &str,
        destination: &api::Location,
        key: &str,
    ) -> Result<(), api::PluginError> {
        self.0
            .put(file, &location(destination), key)
            .map_err(plain_error)
    }

    fn get(&self, source: &api::Location, key: &str, file: &str) -> Result<(), api::PluginError> {
        self.0
            .get(&location(source), key, file)
            .map_err(plain_error)
    }

    fn copy(
        &self,
        source: &api::Location,
        destination: &api::Location,
        keys: &[String],
    ) -> Result<api::SyncReport, api::PluginError> {
        self.0
            .copy(&location(source), &location(destination), keys)
            .map(report)
            .map_err(plain_error)
    }

    fn delete(
        &self,
        at: &api::Location,
        keys: &[String],
    ) -> Result<api::SyncReport, api::PluginError> {
        self.0
            .delete(&location(at), keys)
            .map(report)
            .map_err(plain_error)
    }

    fn ensure_bucket(&self, at: &api::Location) -> Result<bool, api::PluginError> {
        self.0.ensure_bucket(&location(at)).map_err(plain_error)
    }

    fn create_if_absent(
        &self,
        at: &api::Location,
        key: &str,
        bytes: &[u8],
    ) -> Result<bool, api::PluginError> {
        self.0
            .create_if_absent(&location(at), key, bytes)
            .map_err(plain_error)
    }

    fn conditional_create(&self) -> bool {
        self.0.conditional_create()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stowage_plugin_api::abi_stable::StableAbi;

    #[test]
    fn the_frozen_types_carry_the_released_package_name_and_version() {
        let layout = <v1_0::ffi::ObjectEntry as StableAbi>::LAYOUT;
        assert_eq!(
            layout.item_info().package_and_version(),
            ("stowage-plugin-api", "1.0.0")
        );
    }

    #[test]
    fn a_planned_sync_reaches_a_1_0_plugin_as_checksum() {
        let options = api::SyncOptions {
            compare: api::CompareMode::Planned,
            ..api::SyncOptions::default()
        };
        assert_eq!(
            sync_options(&options).unwrap().compare,
            v1_0::CompareMode::Checksum
        );
    }
}
