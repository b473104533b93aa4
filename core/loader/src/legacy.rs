//! Plugins built against stowage-core 0.1, the API before 1.0.
//!
//! Their types carry the package `stowage-core 0.1.0`, which abi_stable
//! checks, so they are read with that crate's own types (the frozen copy in
//! `core/legacy-0.1`) and converted here into the plain types of the
//! current API. API 0.1 had no conditional create and no declared options:
//! such a plugin answers `conditional_create` with `false` (the host then
//! locks the weaker way) and declares no config keys (the host then takes
//! its table as given). The methods of API 1.1 and 1.2 answer with their
//! defaults, and a `Planned` sync reaches it as `Checksum`, as for a 1.0
//! plugin ([`crate::legacy_1_0`]).

use stowage_core as v0_1;
use stowage_core::abi_stable::std_types::{RResult, RString, RVec};
use stowage_plugin_api::{self as api, ProgressSink, StorageProvider};

/// A provider of API 0.1, seen as a current [`StorageProvider`].
pub struct V0_1Provider(pub v0_1::ProviderBox);

fn location(location: &api::Location) -> v0_1::Location {
    match location {
        api::Location::Local { path } => v0_1::Location::Local {
            path: path.as_str().into(),
        },
        api::Location::Remote { url } => v0_1::Location::Remote {
            url: url.as_str().into(),
        },
    }
}

fn error_kind(kind: v0_1::ErrorKind) -> api::ErrorKind {
    use v0_1::ErrorKind as Old;
    match kind {
        Old::Config => api::ErrorKind::Config,
        Old::ToolMissing => api::ErrorKind::ToolMissing,
        Old::Unreachable => api::ErrorKind::Unreachable,
        Old::Unauthorized => api::ErrorKind::Unauthorized,
        Old::BucketMissing => api::ErrorKind::BucketMissing,
        Old::NotFound => api::ErrorKind::NotFound,
        Old::InvalidInput => api::ErrorKind::InvalidInput,
        Old::LimitExceeded => api::ErrorKind::LimitExceeded,
        Old::ToolFailed => api::ErrorKind::ToolFailed,
        Old::Panicked => api::ErrorKind::Panicked,
        Old::Other => api::ErrorKind::Other,
    }
}

/// An API 0.1 error as a current one.
pub(crate) fn plain_error(error: v0_1::PluginError) -> api::PluginError {
    api::PluginError {
        kind: error_kind(error.kind),
        message: error.message.into_string(),
    }
}

fn plain<T, U>(
    outcome: RResult<T, v0_1::PluginError>,
    convert: impl FnOnce(T) -> U,
) -> Result<U, api::PluginError> {
    match outcome {
        RResult::ROk(value) => Ok(convert(value)),
        RResult::RErr(error) => Err(plain_error(error)),
    }
}

fn optional(text: v0_1::abi_stable::std_types::ROption<RString>) -> Option<String> {
    text.into_option().map(RString::into_string)
}

fn report(report: v0_1::SyncReport) -> api::SyncReport {
    use v0_1::ActionKind as Old;
    let actions = report.actions.into_iter().map(|action| api::SyncAction {
        kind: match action.kind {
            Old::Upload => api::ActionKind::Upload,
            Old::Download => api::ActionKind::Download,
            Old::Copy => api::ActionKind::Copy,
            Old::Delete => api::ActionKind::Delete,
            Old::Skip => api::ActionKind::Skip,
        },
        key: action.key.into_string(),
        bytes: action.bytes,
    });
    api::SyncReport::new(actions.collect())
}

fn keys(keys: &[String]) -> RVec<RString> {
    keys.iter().map(|k| RString::from(k.as_str())).collect()
}

/// A current progress sink, lent to an API 0.1 plugin.
struct SinkAdapter<'a>(&'a dyn ProgressSink);

impl v0_1::provider::ProgressSink for SinkAdapter<'_> {
    fn report(&self, progress: &v0_1::Progress) {
        self.0.report(&api::Progress {
            objects_done: progress.objects_done,
            bytes_done: progress.bytes_done,
            current_key: progress.current_key.to_string(),
        });
    }
}

impl StorageProvider for V0_1Provider {
    fn describe(&self) -> api::PluginInfo {
        let info = self.0.describe();
        api::PluginInfo {
            name: info.name.into_string(),
            version: info.version.into_string(),
            description: info.description.into_string(),
            tool: optional(info.tool),
            schemes: info.schemes.into_iter().map(RString::into_string).collect(),
            options: Vec::new(),
        }
    }

    fn check(&self) -> Result<api::ToolStatus, api::PluginError> {
        plain(self.0.check(), |status| api::ToolStatus {
            tool_version: optional(status.tool_version),
            endpoint: status.endpoint.into_string(),
        })
    }

    fn list(&self, at: &api::Location) -> Result<Vec<api::ObjectEntry>, api::PluginError> {
        plain(self.0.list(&location(at)), |entries| {
            entries
                .into_iter()
                .map(|entry| api::ObjectEntry {
                    key: entry.key.into_string(),
                    size: entry.size,
                    md5: optional(entry.md5),
                    etag: optional(entry.etag),
                    last_modified: entry.last_modified.into_option(),
                })
                .collect()
        })
    }

    fn sync(
        &self,
        source: &api::Location,
        destination: &api::Location,
        options: &api::SyncOptions,
        progress: &dyn ProgressSink,
    ) -> Result<api::SyncReport, api::PluginError> {
        let compare = match options.compare {
            // Planned allows comparing: as the checksum mode it knows.
            api::CompareMode::Checksum | api::CompareMode::Planned => v0_1::CompareMode::Checksum,
            api::CompareMode::SizeMtime => v0_1::CompareMode::SizeMtime,
            api::CompareMode::Size => v0_1::CompareMode::Size,
            newer => {
                return Err(api::PluginError::new(
                    api::ErrorKind::InvalidInput,
                    format!("compare mode {newer:?} is newer than this plugin (API 0.1)"),
                ))
            }
        };
        let old_options = v0_1::SyncOptions {
            delete: options.delete,
            excludes: options
                .excludes
                .iter()
                .map(|e| RString::from(e.as_str()))
                .collect(),
            dry_run: options.dry_run,
            compare,
            parallelism: options.parallelism,
            max_deletes: options.max_deletes.into(),
        };
        let sink = SinkAdapter(progress);
        let reporter = v0_1::provider::progress_reporter(&sink);
        plain(
            self.0.sync(
                &location(source),
                &location(destination),
                &old_options,
                &reporter,
            ),
            report,
        )
    }

    fn put(
        &self,
        file: &str,
        destination: &api::Location,
        key: &str,
    ) -> Result<(), api::PluginError> {
        plain(
            self.0.put(file.into(), &location(destination), key.into()),
            |()| (),
        )
    }

    fn get(&self, source: &api::Location, key: &str, file: &str) -> Result<(), api::PluginError> {
        plain(
            self.0.get(&location(source), key.into(), file.into()),
            |()| (),
        )
    }

    fn copy(
        &self,
        source: &api::Location,
        destination: &api::Location,
        copied: &[String],
    ) -> Result<api::SyncReport, api::PluginError> {
        plain(
            self.0
                .copy(&location(source), &location(destination), &keys(copied)),
            report,
        )
    }

    fn delete(
        &self,
        at: &api::Location,
        deleted: &[String],
    ) -> Result<api::SyncReport, api::PluginError> {
        plain(self.0.delete(&location(at), &keys(deleted)), report)
    }

    fn ensure_bucket(&self, at: &api::Location) -> Result<bool, api::PluginError> {
        plain(self.0.ensure_bucket(&location(at)), |created| created)
    }
}
