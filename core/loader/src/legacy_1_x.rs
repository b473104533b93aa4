//! What the adapters of earlier 1.x releases ([`crate::legacy_1_0`],
//! [`crate::legacy_1_1`]) share: the conversions between a frozen release's
//! plain types and the current ones, and the provider methods every 1.x
//! release has. The frozen crates declare types of the same names and
//! fields, but each its own, so the code is written once here as macros
//! and expanded in each adapter's module, for that release's crate.
//!
//! The growing enums are converted through their FFI codes, which every
//! 1.x release keeps.

/// The conversions for the frozen crate `$old` (API `$release`): a
/// location to it; an error, an entry, a report and a config key from it;
/// sync options to it (with the adapter's own `compare_mode`); a compare
/// mode to it by its code; a progress sink lent to it.
macro_rules! earlier_minor_conversions {
    ($old:ident, $release:literal) => {
        fn location(location: &api::Location) -> $old::Location {
            match location {
                api::Location::Local { path } => $old::Location::Local { path: path.clone() },
                api::Location::Remote { url } => $old::Location::Remote { url: url.clone() },
            }
        }

        fn error_kind(kind: $old::ErrorKind) -> api::ErrorKind {
            let code = $old::ffi::ErrorKind::from_plain(kind).0;
            api::ffi::ErrorKind(code)
                .to_plain()
                .unwrap_or(api::ErrorKind::Other)
        }

        #[doc = concat!("An API ", $release, " error as a current one.")]
        pub(crate) fn plain_error(error: $old::PluginError) -> api::PluginError {
            api::PluginError {
                kind: error_kind(error.kind),
                message: error.message,
            }
        }

        fn entries(entries: Vec<$old::ObjectEntry>) -> Vec<api::ObjectEntry> {
            let entry = |entry: $old::ObjectEntry| api::ObjectEntry {
                key: entry.key,
                size: entry.size,
                md5: entry.md5,
                etag: entry.etag,
                last_modified: entry.last_modified,
            };
            entries.into_iter().map(entry).collect()
        }

        /// `mode` as the plugin's compare mode of the same code; one it
        /// does not know is refused.
        fn compare_mode_by_code(
            mode: api::CompareMode,
        ) -> Result<$old::CompareMode, api::PluginError> {
            $old::ffi::CompareMode(api::ffi::CompareMode::from_plain(mode).0)
                .to_plain()
                .ok_or_else(|| {
                    api::PluginError::new(
                        api::ErrorKind::InvalidInput,
                        format!(
                            "compare mode {mode:?} is newer than this plugin (API {})",
                            $release
                        ),
                    )
                })
        }

        fn sync_options(options: &api::SyncOptions) -> Result<$old::SyncOptions, api::PluginError> {
            Ok($old::SyncOptions {
                delete: options.delete,
                excludes: options.excludes.clone(),
                dry_run: options.dry_run,
                compare: compare_mode(options.compare)?,
                parallelism: options.parallelism,
                max_deletes: options.max_deletes,
            })
        }

        fn report(report: $old::SyncReport) -> api::SyncReport {
            let actions = report.actions.into_iter().map(|action| api::SyncAction {
                kind: api::ffi::ActionKind($old::ffi::ActionKind::from_plain(action.kind).0)
                    .to_plain()
                    .unwrap_or(api::ActionKind::Other),
                key: action.key,
                bytes: action.bytes,
            });
            api::SyncReport::new(actions.collect())
        }

        fn config_key(key: $old::ConfigKey) -> api::ConfigKey {
            api::ConfigKey {
                name: key.name,
                kind: api::ffi::ConfigKind($old::ffi::ConfigKind::from_plain(key.kind).0)
                    .to_plain()
                    .unwrap_or(api::ConfigKind::Other),
                default: key.default,
                help: key.help,
                secret: key.secret,
            }
        }

        #[doc = concat!("A current progress sink, lent to an API ", $release, " plugin.")]
        struct SinkAdapter<'a>(&'a dyn ProgressSink);

        impl $old::ProgressSink for SinkAdapter<'_> {
            fn report(&self, progress: &$old::Progress) {
                self.0.report(&api::Progress {
                    objects_done: progress.objects_done,
                    bytes_done: progress.bytes_done,
                    current_key: progress.current_key.clone(),
                });
            }
        }
    };
}

/// The provider methods of API 1.0, which every 1.x release has, passed
/// to the plugin (`self.0`) through the conversions of
/// [`earlier_minor_conversions!`].
macro_rules! earlier_minor_methods {
    () => {
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
            self.0.list(&location(at)).map(entries).map_err(plain_error)
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

        fn get(
            &self,
            source: &api::Location,
            key: &str,
            file: &str,
        ) -> Result<(), api::PluginError> {
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
    };
}
