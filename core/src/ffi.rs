//! What actually crosses the boundary: FFI-safe mirrors of [`crate::types`],
//! the provider and progress trait objects, and the root module.
//!
//! Plugin authors and the host never use this module directly:
//! [`crate::export_plugin!`] wraps a [`StorageProvider`] into a
//! [`ProviderBox`] on the plugin side, and [`ProviderClient`] turns one back
//! into a [`StorageProvider`] on the host side. Everything here is
//! `#[repr(C)]` and derives [`StableAbi`], so the host's loader checks that
//! both sides agree on every layout before the first call.
//!
//! Strings and vectors are moved across (`RString` from `String` and back
//! reuses the buffer when the same allocator owns it), not copied.
//!
//! Enums that may grow are `#[repr(transparent)]` codes (abi_stable's
//! "field-less enum as a struct wrapping an integer"): a code the reader
//! does not know becomes `ErrorKind::Other` or `ActionKind::Other`, or, for
//! a compare mode a plugin does not know, an error of kind `InvalidInput`.
//! So a plugin built against a newer 1.x API never hands the host a value
//! it cannot represent.

// abi_stable 0.11's `sabi_trait` expansion puts impls inside a const block.
#![allow(non_local_definitions)]

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_trait::TD_Opaque,
    sabi_types::{RRef, VersionStrings},
    std_types::{RBox, ROption, RResult, RSlice, RStr, RString, RVec},
    StableAbi,
};

use crate::guard::guard;
use crate::provider::{ProgressSink as PlainProgressSink, StorageProvider};
use crate::types;

/// A code that stands for a variant of one of the API's growing enums.
macro_rules! growing_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name(pub u8);

        impl $name {
            /// The code of `kind`.
            pub fn from_plain(kind: types::$name) -> $name {
                #[allow(unreachable_patterns)]
                match kind {
                    $(types::$name::$variant => $name($code),)+
                    _ => unreachable!("every variant has a code"),
                }
            }

            /// The variant of this code, or `None` for one added after this
            /// side was built.
            pub fn to_plain(self) -> Option<types::$name> {
                match self.0 {
                    $($code => Some(types::$name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

growing_enum!(
    /// [`types::ErrorKind`] as a code.
    ErrorKind {
        Config = 0, ToolMissing = 1, Unreachable = 2, Unauthorized = 3, BucketMissing = 4,
        NotFound = 5, InvalidInput = 6, LimitExceeded = 7, ToolFailed = 8, Panicked = 9,
        Other = 10,
    }
);
growing_enum!(
    /// [`types::ActionKind`] as a code.
    ActionKind { Upload = 0, Download = 1, Copy = 2, Delete = 3, Skip = 4, Other = 255 }
);
growing_enum!(
    /// [`types::CompareMode`] as a code.
    CompareMode { Checksum = 0, SizeMtime = 1, Size = 2, Planned = 3 }
);
growing_enum!(
    /// [`types::ConfigKind`] as a code.
    ConfigKind { String = 0, Path = 1, Integer = 2, Boolean = 3, StringList = 4, Table = 5, Other = 255 }
);

/// [`types::Location`] across the boundary.
#[repr(u8)]
#[derive(StableAbi, Clone, Debug)]
pub enum Location {
    /// See [`types::Location::Local`].
    Local {
        /// The directory.
        path: RString,
    },
    /// See [`types::Location::Remote`].
    Remote {
        /// The URL.
        url: RString,
    },
}

impl From<&types::Location> for Location {
    fn from(location: &types::Location) -> Self {
        match location {
            types::Location::Local { path } => Location::Local {
                path: path.as_str().into(),
            },
            types::Location::Remote { url } => Location::Remote {
                url: url.as_str().into(),
            },
        }
    }
}

impl From<&Location> for types::Location {
    fn from(location: &Location) -> Self {
        match location {
            Location::Local { path } => types::Location::Local {
                path: path.to_string(),
            },
            Location::Remote { url } => types::Location::Remote {
                url: url.to_string(),
            },
        }
    }
}

/// [`types::ObjectEntry`] across the boundary.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct ObjectEntry {
    /// See [`types::ObjectEntry::key`].
    pub key: RString,
    /// See [`types::ObjectEntry::size`].
    pub size: u64,
    /// See [`types::ObjectEntry::md5`].
    pub md5: ROption<RString>,
    /// See [`types::ObjectEntry::etag`].
    pub etag: ROption<RString>,
    /// See [`types::ObjectEntry::last_modified`].
    pub last_modified: ROption<i64>,
}

impl From<types::ObjectEntry> for ObjectEntry {
    fn from(entry: types::ObjectEntry) -> Self {
        ObjectEntry {
            key: entry.key.into(),
            size: entry.size,
            md5: entry.md5.map(RString::from).into(),
            etag: entry.etag.map(RString::from).into(),
            last_modified: entry.last_modified.into(),
        }
    }
}

impl From<ObjectEntry> for types::ObjectEntry {
    fn from(entry: ObjectEntry) -> Self {
        types::ObjectEntry {
            key: entry.key.into_string(),
            size: entry.size,
            md5: entry.md5.into_option().map(RString::into_string),
            etag: entry.etag.into_option().map(RString::into_string),
            last_modified: entry.last_modified.into_option(),
        }
    }
}

/// [`types::SyncOptions`] across the boundary.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct SyncOptions {
    /// See [`types::SyncOptions::delete`].
    pub delete: bool,
    /// See [`types::SyncOptions::excludes`].
    pub excludes: RVec<RString>,
    /// See [`types::SyncOptions::dry_run`].
    pub dry_run: bool,
    /// See [`types::SyncOptions::compare`].
    pub compare: CompareMode,
    /// See [`types::SyncOptions::parallelism`].
    pub parallelism: u32,
    /// See [`types::SyncOptions::max_deletes`].
    pub max_deletes: ROption<u64>,
}

impl From<&types::SyncOptions> for SyncOptions {
    fn from(options: &types::SyncOptions) -> Self {
        SyncOptions {
            delete: options.delete,
            excludes: options
                .excludes
                .iter()
                .map(|e| RString::from(e.as_str()))
                .collect(),
            dry_run: options.dry_run,
            compare: CompareMode::from_plain(options.compare),
            parallelism: options.parallelism,
            max_deletes: options.max_deletes.into(),
        }
    }
}

impl TryFrom<&SyncOptions> for types::SyncOptions {
    type Error = types::PluginError;

    fn try_from(options: &SyncOptions) -> Result<Self, Self::Error> {
        let compare = options.compare.to_plain().ok_or_else(|| {
            types::PluginError::new(
                types::ErrorKind::InvalidInput,
                format!(
                    "compare mode {} is newer than this plugin: rebuild it against a newer \
                     stowage-plugin-api",
                    options.compare.0
                ),
            )
        })?;
        Ok(types::SyncOptions {
            delete: options.delete,
            excludes: options.excludes.iter().map(RString::to_string).collect(),
            dry_run: options.dry_run,
            compare,
            parallelism: options.parallelism,
            max_deletes: options.max_deletes.into_option(),
        })
    }
}

/// [`types::SyncAction`] across the boundary.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct SyncAction {
    /// See [`types::SyncAction::kind`].
    pub kind: ActionKind,
    /// See [`types::SyncAction::key`].
    pub key: RString,
    /// See [`types::SyncAction::bytes`].
    pub bytes: u64,
}

/// [`types::SyncReport`] across the boundary.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct SyncReport {
    /// See [`types::SyncReport::actions`].
    pub actions: RVec<SyncAction>,
}

impl From<types::SyncReport> for SyncReport {
    fn from(report: types::SyncReport) -> Self {
        SyncReport {
            actions: report
                .actions
                .into_iter()
                .map(|a| SyncAction {
                    kind: ActionKind::from_plain(a.kind),
                    key: a.key.into(),
                    bytes: a.bytes,
                })
                .collect(),
        }
    }
}

impl From<SyncReport> for types::SyncReport {
    fn from(report: SyncReport) -> Self {
        types::SyncReport {
            actions: report
                .actions
                .into_iter()
                .map(|a| types::SyncAction {
                    kind: a.kind.to_plain().unwrap_or(types::ActionKind::Other),
                    key: a.key.into_string(),
                    bytes: a.bytes,
                })
                .collect(),
        }
    }
}

/// [`types::Progress`] across the boundary.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct Progress {
    /// See [`types::Progress::objects_done`].
    pub objects_done: u64,
    /// See [`types::Progress::bytes_done`].
    pub bytes_done: u64,
    /// See [`types::Progress::current_key`].
    pub current_key: RString,
}

/// [`types::ConfigKey`] across the boundary.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct ConfigKey {
    /// See [`types::ConfigKey::name`].
    pub name: RString,
    /// See [`types::ConfigKey::kind`].
    pub kind: ConfigKind,
    /// See [`types::ConfigKey::default`].
    pub default: ROption<RString>,
    /// See [`types::ConfigKey::help`].
    pub help: RString,
    /// See [`types::ConfigKey::secret`].
    pub secret: bool,
}

/// [`types::PluginInfo`] across the boundary.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct PluginInfo {
    /// See [`types::PluginInfo::name`].
    pub name: RString,
    /// See [`types::PluginInfo::version`].
    pub version: RString,
    /// See [`types::PluginInfo::description`].
    pub description: RString,
    /// See [`types::PluginInfo::tool`].
    pub tool: ROption<RString>,
    /// See [`types::PluginInfo::schemes`].
    pub schemes: RVec<RString>,
    /// See [`types::PluginInfo::options`].
    pub options: RVec<ConfigKey>,
}

impl From<types::PluginInfo> for PluginInfo {
    fn from(info: types::PluginInfo) -> Self {
        PluginInfo {
            name: info.name.into(),
            version: info.version.into(),
            description: info.description.into(),
            tool: info.tool.map(RString::from).into(),
            schemes: info.schemes.into_iter().map(RString::from).collect(),
            options: info
                .options
                .into_iter()
                .map(|key| ConfigKey {
                    name: key.name.into(),
                    kind: ConfigKind::from_plain(key.kind),
                    default: key.default.map(RString::from).into(),
                    help: key.help.into(),
                    secret: key.secret,
                })
                .collect(),
        }
    }
}

impl From<PluginInfo> for types::PluginInfo {
    fn from(info: PluginInfo) -> Self {
        types::PluginInfo {
            name: info.name.into_string(),
            version: info.version.into_string(),
            description: info.description.into_string(),
            tool: info.tool.into_option().map(RString::into_string),
            schemes: info.schemes.into_iter().map(RString::into_string).collect(),
            options: info
                .options
                .into_iter()
                .map(|key| types::ConfigKey {
                    name: key.name.into_string(),
                    // A kind newer than the host: the plugin checks its values.
                    kind: key.kind.to_plain().unwrap_or(types::ConfigKind::Other),
                    default: key.default.into_option().map(RString::into_string),
                    help: key.help.into_string(),
                    secret: key.secret,
                })
                .collect(),
        }
    }
}

/// [`types::ToolStatus`] across the boundary.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct ToolStatus {
    /// See [`types::ToolStatus::tool_version`].
    pub tool_version: ROption<RString>,
    /// See [`types::ToolStatus::endpoint`].
    pub endpoint: RString,
}

impl From<types::ToolStatus> for ToolStatus {
    fn from(status: types::ToolStatus) -> Self {
        ToolStatus {
            tool_version: status.tool_version.map(RString::from).into(),
            endpoint: status.endpoint.into(),
        }
    }
}

impl From<ToolStatus> for types::ToolStatus {
    fn from(status: ToolStatus) -> Self {
        types::ToolStatus {
            tool_version: status.tool_version.into_option().map(RString::into_string),
            endpoint: status.endpoint.into_string(),
        }
    }
}

/// [`types::PluginError`] across the boundary.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct PluginError {
    /// See [`types::PluginError::kind`].
    pub kind: ErrorKind,
    /// See [`types::PluginError::message`].
    pub message: RString,
}

impl From<types::PluginError> for PluginError {
    fn from(error: types::PluginError) -> Self {
        PluginError {
            kind: ErrorKind::from_plain(error.kind),
            message: error.message.into(),
        }
    }
}

impl From<PluginError> for types::PluginError {
    fn from(error: PluginError) -> Self {
        types::PluginError {
            kind: error.kind.to_plain().unwrap_or(types::ErrorKind::Other),
            message: error.message.into_string(),
        }
    }
}

/// The result of a provider call across the boundary.
pub type Outcome<T> = RResult<T, PluginError>;

/// The provider trait object: what the host calls through a plugin's
/// vtable. It mirrors [`StorageProvider`] one to one.
///
/// The methods up to the last prefix field (`lists_pages`) are those of
/// API 1.2 (1.1's end at `reads_ranges`, 1.0's at `conditional_create`). A
/// later 1.x adds methods after it, always with a default, and keeps the
/// previous vtable so that the host still loads plugins built before the
/// addition (see the crate docs; the loader reads 1.0 and 1.1 plugins with
/// the frozen types of those releases).
#[sabi_trait]
pub trait Provider: Send + Sync {
    /// See [`StorageProvider::describe`].
    fn describe(&self) -> PluginInfo;
    /// See [`StorageProvider::check`].
    fn check(&self) -> Outcome<ToolStatus>;
    /// See [`StorageProvider::list`].
    fn list(&self, location: &Location) -> Outcome<RVec<ObjectEntry>>;
    /// See [`StorageProvider::sync`].
    fn sync(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        progress: &ProgressReporter<'_>,
    ) -> Outcome<SyncReport>;
    /// See [`StorageProvider::put`].
    fn put(&self, file: RStr<'_>, destination: &Location, key: RStr<'_>) -> Outcome<()>;
    /// See [`StorageProvider::get`].
    fn get(&self, source: &Location, key: RStr<'_>, file: RStr<'_>) -> Outcome<()>;
    /// See [`StorageProvider::copy`].
    fn copy(
        &self,
        source: &Location,
        destination: &Location,
        keys: RSlice<'_, RString>,
    ) -> Outcome<SyncReport>;
    /// See [`StorageProvider::delete`].
    fn delete(&self, location: &Location, keys: RSlice<'_, RString>) -> Outcome<SyncReport>;
    /// See [`StorageProvider::ensure_bucket`].
    fn ensure_bucket(&self, location: &Location) -> Outcome<bool>;
    /// See [`StorageProvider::create_if_absent`].
    fn create_if_absent(
        &self,
        location: &Location,
        key: RStr<'_>,
        bytes: RSlice<'_, u8>,
    ) -> Outcome<bool>;
    /// See [`StorageProvider::conditional_create`].
    fn conditional_create(&self) -> bool;
    /// See [`StorageProvider::list_keys`].
    fn list_keys(
        &self,
        location: &Location,
        keys: RSlice<'_, RString>,
    ) -> Outcome<RVec<ObjectEntry>>;
    /// See [`StorageProvider::get_range`].
    fn get_range(
        &self,
        source: &Location,
        key: RStr<'_>,
        offset: u64,
        length: u64,
        file: RStr<'_>,
    ) -> Outcome<()>;
    /// See [`StorageProvider::reads_ranges`].
    fn reads_ranges(&self) -> bool;
    /// See [`StorageProvider::list_page`].
    fn list_page(
        &self,
        location: &Location,
        after: RStr<'_>,
        limit: u32,
    ) -> Outcome<RVec<ObjectEntry>>;
    /// See [`StorageProvider::lists_pages`].
    #[sabi(last_prefix_field)]
    fn lists_pages(&self) -> bool;
}

/// A provider as the host holds it: an owned FFI trait object.
pub type ProviderBox = Provider_TO<'static, RBox<()>>;

/// Receives progress updates across the boundary.
#[sabi_trait]
pub trait ProgressSink: Sync {
    /// See [`crate::ProgressSink::report`].
    #[sabi(last_prefix_field)]
    fn report(&self, progress: &Progress);
}

/// A borrowed progress sink, as passed to [`Provider::sync`].
pub type ProgressReporter<'a> = ProgressSink_TO<'a, RRef<'a, ()>>;

/// The root module every plugin library exports: a prefix type, so a later
/// 1.x may add fields after the last prefix field.
///
/// Its version string is the API version the plugin was built against
/// (this crate's version); the host refuses another major version.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// Builds a provider from the plugin's config table (TOML text, possibly
    /// empty). A bad config is an error of kind `Config`.
    #[sabi(last_prefix_field)]
    pub new_provider: extern "C" fn(config: RStr<'_>) -> Outcome<ProviderBox>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "stowage_plugin";
    const NAME: &'static str = "stowage_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// Runs `body` in the panic guard and converts its result for the boundary.
fn guarded<T, U: From<T>>(body: impl FnOnce() -> Result<T, types::PluginError>) -> Outcome<U> {
    match guard(body) {
        Ok(value) => RResult::ROk(U::from(value)),
        Err(error) => RResult::RErr(error.into()),
    }
}

/// The keys of a call, as the plain trait takes them.
fn plain_keys(keys: RSlice<'_, RString>) -> Vec<String> {
    keys.iter().map(RString::to_string).collect()
}

/// The plugin side: a [`StorageProvider`] seen through the FFI trait, every
/// call converted and run in the panic guard.
struct Guarded<P>(P);

/// A borrowed FFI progress sink, seen as the plain one a provider reports to.
struct ReporterAdapter<'a, 'b>(&'a ProgressReporter<'b>);

impl PlainProgressSink for ReporterAdapter<'_, '_> {
    fn report(&self, progress: &types::Progress) {
        self.0.report(&Progress {
            objects_done: progress.objects_done,
            bytes_done: progress.bytes_done,
            current_key: progress.current_key.as_str().into(),
        });
    }
}

impl<P: StorageProvider> Provider for Guarded<P> {
    fn describe(&self) -> PluginInfo {
        match guard(|| Ok(self.0.describe())) {
            Ok(info) => info.into(),
            Err(e) => {
                types::PluginInfo::new("unknown", "unknown", &e.message, None, &[], vec![]).into()
            }
        }
    }
    fn check(&self) -> Outcome<ToolStatus> {
        guarded(|| self.0.check())
    }
    fn list(&self, location: &Location) -> Outcome<RVec<ObjectEntry>> {
        guarded(|| self.0.list(&location.into()).map(ffi_entries))
    }
    fn sync(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        progress: &ProgressReporter<'_>,
    ) -> Outcome<SyncReport> {
        guarded(|| {
            let options = types::SyncOptions::try_from(options)?;
            let sink = ReporterAdapter(progress);
            self.0
                .sync(&source.into(), &destination.into(), &options, &sink)
        })
    }
    fn put(&self, file: RStr<'_>, destination: &Location, key: RStr<'_>) -> Outcome<()> {
        guarded(|| self.0.put(file.as_str(), &destination.into(), key.as_str()))
    }
    fn get(&self, source: &Location, key: RStr<'_>, file: RStr<'_>) -> Outcome<()> {
        guarded(|| self.0.get(&source.into(), key.as_str(), file.as_str()))
    }
    fn copy(
        &self,
        source: &Location,
        destination: &Location,
        keys: RSlice<'_, RString>,
    ) -> Outcome<SyncReport> {
        guarded(|| {
            self.0
                .copy(&source.into(), &destination.into(), &plain_keys(keys))
        })
    }
    fn delete(&self, location: &Location, keys: RSlice<'_, RString>) -> Outcome<SyncReport> {
        guarded(|| self.0.delete(&location.into(), &plain_keys(keys)))
    }
    fn ensure_bucket(&self, location: &Location) -> Outcome<bool> {
        guarded(|| self.0.ensure_bucket(&location.into()))
    }
    fn create_if_absent(
        &self,
        location: &Location,
        key: RStr<'_>,
        bytes: RSlice<'_, u8>,
    ) -> Outcome<bool> {
        guarded(|| {
            self.0
                .create_if_absent(&location.into(), key.as_str(), bytes.as_slice())
        })
    }
    fn conditional_create(&self) -> bool {
        // A panic here means "cannot": the weaker protocol is always safe to choose.
        matches!(guard(|| Ok(self.0.conditional_create())), Ok(true))
    }
    fn list_keys(
        &self,
        location: &Location,
        keys: RSlice<'_, RString>,
    ) -> Outcome<RVec<ObjectEntry>> {
        guarded(|| {
            self.0
                .list_keys(&location.into(), &plain_keys(keys))
                .map(ffi_entries)
        })
    }
    fn get_range(
        &self,
        source: &Location,
        key: RStr<'_>,
        offset: u64,
        length: u64,
        file: RStr<'_>,
    ) -> Outcome<()> {
        guarded(|| {
            self.0
                .get_range(&source.into(), key.as_str(), offset, length, file.as_str())
        })
    }
    fn reads_ranges(&self) -> bool {
        // A panic here means "cannot": a whole download is always correct.
        matches!(guard(|| Ok(self.0.reads_ranges())), Ok(true))
    }
    fn list_page(
        &self,
        location: &Location,
        after: RStr<'_>,
        limit: u32,
    ) -> Outcome<RVec<ObjectEntry>> {
        guarded(|| {
            self.0
                .list_page(&location.into(), after.as_str(), limit)
                .map(ffi_entries)
        })
    }
    fn lists_pages(&self) -> bool {
        // A panic here means "cannot": one whole listing is always correct.
        matches!(guard(|| Ok(self.0.lists_pages())), Ok(true))
    }
}

/// A listing, as it crosses the boundary.
fn ffi_entries(entries: Vec<types::ObjectEntry>) -> RVec<ObjectEntry> {
    entries.into_iter().map(ObjectEntry::from).collect()
}

/// Builds the guarded provider box; what [`crate::export_plugin!`]'s
/// generated `new_provider` calls. Not meant to be called by hand.
pub fn new_provider_box<P: StorageProvider>(
    config: RStr<'_>,
    constructor: fn(&str) -> Result<P, types::PluginError>,
) -> Outcome<ProviderBox> {
    match guard(|| constructor(config.as_str())) {
        Ok(provider) => RResult::ROk(Provider_TO::from_value(Guarded(provider), TD_Opaque)),
        Err(error) => RResult::RErr(error.into()),
    }
}

/// The host side: a plugin's [`ProviderBox`] seen as a [`StorageProvider`],
/// every argument and result converted.
pub struct ProviderClient(pub ProviderBox);

/// A plain progress sink, lent to a plugin as an FFI one.
struct SinkAdapter<'a>(&'a dyn PlainProgressSink);

impl ProgressSink for SinkAdapter<'_> {
    fn report(&self, progress: &Progress) {
        self.0.report(&types::Progress {
            objects_done: progress.objects_done,
            bytes_done: progress.bytes_done,
            current_key: progress.current_key.to_string(),
        });
    }
}

/// A plugin's answer, converted for the host.
fn plain<T, U: From<T>>(outcome: Outcome<T>) -> Result<U, types::PluginError> {
    match outcome {
        RResult::ROk(value) => Ok(U::from(value)),
        RResult::RErr(error) => Err(error.into()),
    }
}

/// The keys of a call, as the FFI trait takes them.
fn ffi_keys(keys: &[String]) -> RVec<RString> {
    keys.iter().map(|k| RString::from(k.as_str())).collect()
}

impl StorageProvider for ProviderClient {
    fn describe(&self) -> types::PluginInfo {
        self.0.describe().into()
    }
    fn check(&self) -> Result<types::ToolStatus, types::PluginError> {
        plain(self.0.check())
    }
    fn list(
        &self,
        location: &types::Location,
    ) -> Result<Vec<types::ObjectEntry>, types::PluginError> {
        plain_entries(self.0.list(&location.into()))
    }
    fn sync(
        &self,
        source: &types::Location,
        destination: &types::Location,
        options: &types::SyncOptions,
        progress: &dyn PlainProgressSink,
    ) -> Result<types::SyncReport, types::PluginError> {
        let sink = SinkAdapter(progress);
        let reporter = ProgressSink_TO::from_ptr(&sink, TD_Opaque);
        plain(self.0.sync(
            &source.into(),
            &destination.into(),
            &options.into(),
            &reporter,
        ))
    }
    fn put(
        &self,
        file: &str,
        destination: &types::Location,
        key: &str,
    ) -> Result<(), types::PluginError> {
        plain(self.0.put(file.into(), &destination.into(), key.into()))
    }
    fn get(
        &self,
        source: &types::Location,
        key: &str,
        file: &str,
    ) -> Result<(), types::PluginError> {
        plain(self.0.get(&source.into(), key.into(), file.into()))
    }
    fn copy(
        &self,
        source: &types::Location,
        destination: &types::Location,
        keys: &[String],
    ) -> Result<types::SyncReport, types::PluginError> {
        let keys = ffi_keys(keys);
        plain(
            self.0
                .copy(&source.into(), &destination.into(), keys.as_rslice()),
        )
    }
    fn delete(
        &self,
        location: &types::Location,
        keys: &[String],
    ) -> Result<types::SyncReport, types::PluginError> {
        let keys = ffi_keys(keys);
        plain(self.0.delete(&location.into(), keys.as_rslice()))
    }
    fn ensure_bucket(&self, location: &types::Location) -> Result<bool, types::PluginError> {
        plain(self.0.ensure_bucket(&location.into()))
    }
    fn create_if_absent(
        &self,
        location: &types::Location,
        key: &str,
        bytes: &[u8],
    ) -> Result<bool, types::PluginError> {
        plain(
            self.0
                .create_if_absent(&location.into(), key.into(), bytes.into()),
        )
    }
    fn conditional_create(&self) -> bool {
        self.0.conditional_create()
    }
    fn list_keys(
        &self,
        location: &types::Location,
        keys: &[String],
    ) -> Result<Vec<types::ObjectEntry>, types::PluginError> {
        let keys = ffi_keys(keys);
        plain_entries(self.0.list_keys(&location.into(), keys.as_rslice()))
    }
    fn get_range(
        &self,
        source: &types::Location,
        key: &str,
        offset: u64,
        length: u64,
        file: &str,
    ) -> Result<(), types::PluginError> {
        plain(
            self.0
                .get_range(&source.into(), key.into(), offset, length, file.into()),
        )
    }
    fn reads_ranges(&self) -> bool {
        self.0.reads_ranges()
    }
    fn list_page(
        &self,
        location: &types::Location,
        after: &str,
        limit: u32,
    ) -> Result<Vec<types::ObjectEntry>, types::PluginError> {
        plain_entries(self.0.list_page(&location.into(), after.into(), limit))
    }
    fn lists_pages(&self) -> bool {
        self.0.lists_pages()
    }
}

/// A plugin's listing, converted for the host.
fn plain_entries(
    outcome: Outcome<RVec<ObjectEntry>>,
) -> Result<Vec<types::ObjectEntry>, types::PluginError> {
    match outcome {
        RResult::ROk(entries) => Ok(entries.into_iter().map(types::ObjectEntry::from).collect()),
        RResult::RErr(error) => Err(error.into()),
    }
}

/// Exports a plugin's root module.
///
/// `$constructor` is a `fn(&str) -> Result<P, PluginError>` where
/// `P: StorageProvider`; it receives the plugin's config table as TOML text.
/// Use it once per plugin crate, at the crate root.
#[macro_export]
macro_rules! export_plugin {
    ($constructor:path) => {
        /// The root module of this Stowage plugin.
        #[::abi_stable::export_root_module]
        pub fn stowage_plugin_root_module() -> $crate::ffi::PluginModuleRef {
            use ::abi_stable::prefix_type::PrefixTypeTrait;
            extern "C" fn new_provider(
                config: ::abi_stable::std_types::RStr<'_>,
            ) -> $crate::ffi::Outcome<$crate::ffi::ProviderBox> {
                $crate::ffi::new_provider_box(config, $constructor)
            }
            $crate::ffi::PluginModule { new_provider }.leak_into_prefix()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_read_as_other() {
        for kind in [types::ErrorKind::Config, types::ErrorKind::Other] {
            assert_eq!(ErrorKind::from_plain(kind).to_plain(), Some(kind));
        }
        let from_a_newer_plugin = PluginError {
            kind: ErrorKind(200),
            message: "new".into(),
        };
        let seen = types::PluginError::from(from_a_newer_plugin);
        assert_eq!(seen.kind, types::ErrorKind::Other);
        assert_eq!(ActionKind(77).to_plain(), None);
        assert_eq!(ConfigKind(77).to_plain(), None);
    }

    #[test]
    fn a_compare_mode_newer_than_the_plugin_is_refused() {
        let options = SyncOptions {
            compare: CompareMode(42),
            ..SyncOptions::from(&types::SyncOptions::default())
        };
        let error = types::SyncOptions::try_from(&options).unwrap_err();
        assert_eq!(error.kind, types::ErrorKind::InvalidInput);
        assert!(error.message.contains("compare mode 42"));
    }

    #[test]
    fn entries_survive_the_round_trip() {
        let entry = types::ObjectEntry {
            key: "a/b.txt".into(),
            size: 3,
            md5: Some("900150983cd24fb0d6963f7d28e17f72".into()),
            etag: None,
            last_modified: Some(1),
        };
        assert_eq!(
            types::ObjectEntry::from(ObjectEntry::from(entry.clone())),
            entry
        );
    }
}
