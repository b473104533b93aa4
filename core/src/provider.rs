//! The provider interface: what a plugin implements and what it exports.
//!
//! A plugin author implements [`StorageProvider`] — plain Rust, `Result`s and
//! `&str`s — and writes one line:
//!
//! ```ignore
//! stowage_core::export_plugin!(MyProvider::from_config);
//! ```
//!
//! where `MyProvider::from_config(config_toml: &str) -> Result<MyProvider, PluginError>`
//! receives the plugin's table from `plugins.toml`, serialised as TOML, as-is.
//! The crate must be built as a `cdylib` and depend on `abi_stable` (the
//! export attribute names it) as well as on `stowage-core`.
//!
//! The macro exports the root module [`PluginModule`] and wraps the
//! provider so every call runs inside [`crate::guard::guard`]. The host sees
//! the provider as the FFI trait object [`ProviderBox`] and calls the methods
//! of [`Provider`], which mirror [`StorageProvider`] one to one.
//!
//! Keys in every call are relative to the location given; the host never
//! passes a key with a leading `/` or a `..` segment.

// abi_stable 0.11's `sabi_trait` expansion puts impls inside a const block.
#![allow(non_local_definitions)]

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::RRef,
    sabi_types::VersionStrings,
    std_types::{RBox, RResult, RSlice, RStr, RString, RVec},
    StableAbi,
};

use crate::guard::guard;
use crate::types::{
    ErrorKind, Location, ObjectEntry, PluginError, PluginInfo, Progress, SyncOptions, SyncReport,
    ToolStatus,
};

/// The operations a backup and a restore need. Implement this; the host
/// calls it through [`Provider`]. Every method blocks until done.
pub trait StorageProvider: Send + Sync + 'static {
    /// Who this plugin is and what it can do. Cheap: runs no tool.
    fn describe(&self) -> PluginInfo;

    /// Whether the plugin can work: the tool is installed, the endpoint
    /// answers, the credentials are accepted. One clear error when not.
    fn check(&self) -> Result<ToolStatus, PluginError>;

    /// Every object below `location`, recursively, with size and checksum.
    /// A missing bucket is an error of kind `BucketMissing`.
    fn list(&self, location: &Location) -> Result<Vec<ObjectEntry>, PluginError>;

    /// Makes `destination` hold what `source` holds, as `options` say. Either
    /// side may be local or remote (remote to remote only if the
    /// capabilities say so). Reports every action taken, or in a dry run,
    /// every action it would take.
    fn sync(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        progress: &ProgressReporter<'_>,
    ) -> Result<SyncReport, PluginError>;

    /// Uploads the local `file` as `key` below `destination`.
    fn put(&self, file: &str, destination: &Location, key: &str) -> Result<(), PluginError>;

    /// Downloads `key` below `source` into the local `file`.
    fn get(&self, source: &Location, key: &str, file: &str) -> Result<(), PluginError>;

    /// Copies `keys` from below `source` to the same keys below
    /// `destination` (server-side where the provider can). A missing
    /// destination bucket is an error of kind `BucketMissing` (the host then
    /// creates it and copies again).
    fn copy(
        &self,
        source: &Location,
        destination: &Location,
        keys: &[RString],
    ) -> Result<SyncReport, PluginError>;

    /// Deletes `keys` below `location`; a key that is already gone is not an error.
    fn delete(&self, location: &Location, keys: &[RString]) -> Result<SyncReport, PluginError>;

    /// Creates the bucket of `location` if it does not exist; returns whether
    /// it created one.
    fn ensure_bucket(&self, location: &Location) -> Result<bool, PluginError>;

    /// Stores `bytes` as `key` below `location` only if no object has that
    /// key, atomically: of several callers racing for one key, exactly one
    /// gets `Ok(true)`; the others get `Ok(false)`, and the object holds the
    /// winner's bytes, whole. A missing bucket is an error of kind
    /// `BucketMissing`.
    ///
    /// Implement it only with the store's own conditional create (S3
    /// `If-None-Match: *`, GCS `ifGenerationMatch=0`, a hard link or
    /// `O_EXCL` on a filesystem), never as a check followed by a write, and
    /// then say so with [`StorageProvider::conditional_create`]. The default
    /// says the plugin cannot. The host uses it for its restore locks and to
    /// claim archive names (added in stowage-core 0.1 after the first
    /// release: see [`Provider::create_if_absent`]).
    fn create_if_absent(
        &self,
        location: &Location,
        key: &str,
        bytes: &[u8],
    ) -> Result<bool, PluginError> {
        let _ = (location, key, bytes);
        Err(no_conditional_create(&self.describe().name))
    }

    /// Whether [`StorageProvider::create_if_absent`] is a real conditional
    /// create here. The host reads it before choosing how to lock; `false`
    /// (the default) makes it fall back to a weaker protocol.
    fn conditional_create(&self) -> bool {
        false
    }
}

/// The error of a `create_if_absent` call on a plugin that cannot do it.
fn no_conditional_create(plugin: &str) -> PluginError {
    PluginError::new(
        ErrorKind::InvalidInput,
        format!("plugin {plugin} cannot create an object only if it is absent"),
    )
}

/// The FFI mirror of [`StorageProvider`]: what the host calls. Plugin
/// authors do not implement it by hand; [`crate::export_plugin!`] does.
///
/// The methods up to `ensure_bucket` (the last prefix field) are those of
/// the first release; every library has them. Methods below it were added
/// later, backward-compatibly: a library built before an addition has no
/// entry for it in its vtable, abi_stable still loads it, and calling the
/// method on it runs the default body written here (on the host side)
/// instead of crashing. New methods go at the end, always with a default.
#[sabi_trait]
pub trait Provider: Send + Sync {
    /// See [`StorageProvider::describe`].
    fn describe(&self) -> PluginInfo;
    /// See [`StorageProvider::check`].
    fn check(&self) -> RResult<ToolStatus, PluginError>;
    /// See [`StorageProvider::list`].
    fn list(&self, location: &Location) -> RResult<RVec<ObjectEntry>, PluginError>;
    /// See [`StorageProvider::sync`].
    fn sync(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        progress: &ProgressReporter<'_>,
    ) -> RResult<SyncReport, PluginError>;
    /// See [`StorageProvider::put`].
    fn put(
        &self,
        file: RStr<'_>,
        destination: &Location,
        key: RStr<'_>,
    ) -> RResult<(), PluginError>;
    /// See [`StorageProvider::get`].
    fn get(&self, source: &Location, key: RStr<'_>, file: RStr<'_>) -> RResult<(), PluginError>;
    /// See [`StorageProvider::copy`].
    fn copy(
        &self,
        source: &Location,
        destination: &Location,
        keys: &RVec<RString>,
    ) -> RResult<SyncReport, PluginError>;
    /// See [`StorageProvider::delete`].
    fn delete(&self, location: &Location, keys: &RVec<RString>)
        -> RResult<SyncReport, PluginError>;
    /// See [`StorageProvider::ensure_bucket`].
    #[sabi(last_prefix_field)]
    fn ensure_bucket(&self, location: &Location) -> RResult<bool, PluginError>;
    /// See [`StorageProvider::create_if_absent`]. Added after the first
    /// release: a plugin built before it answers with an error of kind
    /// `InvalidInput`.
    fn create_if_absent(
        &self,
        _location: &Location,
        _key: RStr<'_>,
        _bytes: RSlice<'_, u8>,
    ) -> RResult<bool, PluginError> {
        RResult::RErr(no_conditional_create(&self.describe().name))
    }
    /// See [`StorageProvider::conditional_create`]. Added after the first
    /// release: a plugin built before it answers `false`.
    fn conditional_create(&self) -> bool {
        false
    }
}

/// A provider as the host holds it: an owned FFI trait object.
pub type ProviderBox = Provider_TO<'static, RBox<()>>;

/// Receives progress updates; the host implements it (a progress bar).
#[sabi_trait]
pub trait ProgressSink: Sync {
    /// Called by the plugin whenever it finishes an object (or more often).
    /// Cheap and never blocking; must not panic.
    #[sabi(last_prefix_field)]
    fn report(&self, progress: &Progress);
}

/// A borrowed progress sink, as passed to [`StorageProvider::sync`]. Call
/// `progress.report(&Progress { .. })`.
pub type ProgressReporter<'a> = ProgressSink_TO<'a, RRef<'a, ()>>;

/// A sink that drops every update.
struct IgnoreProgress;

impl ProgressSink for IgnoreProgress {
    fn report(&self, _progress: &Progress) {}
}

static IGNORE_PROGRESS: IgnoreProgress = IgnoreProgress;

/// A reporter that ignores every update, for callers that show no progress.
pub fn ignore_progress() -> ProgressReporter<'static> {
    ProgressSink_TO::from_ptr(&IGNORE_PROGRESS, abi_stable::sabi_trait::TD_Opaque)
}

/// A reporter that forwards updates to `sink`.
pub fn progress_reporter<S: ProgressSink>(sink: &S) -> ProgressReporter<'_> {
    ProgressSink_TO::from_ptr(sink, abi_stable::sabi_trait::TD_Opaque)
}

/// The root module every plugin library exports (a prefix type: later
/// versions of the core may add fields after the last prefix field).
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// Builds a provider from the plugin's config table (TOML text, possibly
    /// empty). A bad config is an error of kind `Config`.
    #[sabi(last_prefix_field)]
    pub new_provider: extern "C" fn(config: RStr<'_>) -> RResult<ProviderBox, PluginError>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "stowage_plugin";
    const NAME: &'static str = "stowage_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// Wraps a [`StorageProvider`] so each call runs in the panic guard.
struct Guarded<P>(P);

impl<P: StorageProvider> Provider for Guarded<P> {
    fn describe(&self) -> PluginInfo {
        match guard(|| Ok(self.0.describe())) {
            RResult::ROk(info) => info,
            RResult::RErr(e) => PluginInfo {
                name: "unknown".into(),
                version: "unknown".into(),
                description: e.message,
                tool: abi_stable::std_types::ROption::RNone,
                schemes: RVec::new(),
                capabilities: Default::default(),
            },
        }
    }
    fn check(&self) -> RResult<ToolStatus, PluginError> {
        guard(|| self.0.check())
    }
    fn list(&self, location: &Location) -> RResult<RVec<ObjectEntry>, PluginError> {
        guard(|| self.0.list(location).map(RVec::from))
    }
    fn sync(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        progress: &ProgressReporter<'_>,
    ) -> RResult<SyncReport, PluginError> {
        guard(|| self.0.sync(source, destination, options, progress))
    }
    fn put(
        &self,
        file: RStr<'_>,
        destination: &Location,
        key: RStr<'_>,
    ) -> RResult<(), PluginError> {
        guard(|| self.0.put(file.as_str(), destination, key.as_str()))
    }
    fn get(&self, source: &Location, key: RStr<'_>, file: RStr<'_>) -> RResult<(), PluginError> {
        guard(|| self.0.get(source, key.as_str(), file.as_str()))
    }
    fn copy(
        &self,
        source: &Location,
        destination: &Location,
        keys: &RVec<RString>,
    ) -> RResult<SyncReport, PluginError> {
        guard(|| self.0.copy(source, destination, keys.as_slice()))
    }
    fn delete(
        &self,
        location: &Location,
        keys: &RVec<RString>,
    ) -> RResult<SyncReport, PluginError> {
        guard(|| self.0.delete(location, keys.as_slice()))
    }
    fn ensure_bucket(&self, location: &Location) -> RResult<bool, PluginError> {
        guard(|| self.0.ensure_bucket(location))
    }
    fn create_if_absent(
        &self,
        location: &Location,
        key: RStr<'_>,
        bytes: RSlice<'_, u8>,
    ) -> RResult<bool, PluginError> {
        guard(|| {
            self.0
                .create_if_absent(location, key.as_str(), bytes.as_slice())
        })
    }
    fn conditional_create(&self) -> bool {
        // A panic here means "cannot": the weaker protocol is always safe to choose.
        matches!(
            guard(|| Ok(self.0.conditional_create())),
            RResult::ROk(true)
        )
    }
}

/// Builds the guarded provider box; what [`crate::export_plugin!`]'s
/// generated `new_provider` calls. Not meant to be called by hand.
pub fn new_provider_box<P: StorageProvider>(
    config: RStr<'_>,
    constructor: fn(&str) -> Result<P, PluginError>,
) -> RResult<ProviderBox, PluginError> {
    guard(|| {
        let provider = constructor(config.as_str())?;
        Ok(Provider_TO::from_value(
            Guarded(provider),
            abi_stable::sabi_trait::TD_Opaque,
        ))
    })
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
        pub fn stowage_plugin_root_module() -> $crate::PluginModuleRef {
            use ::abi_stable::prefix_type::PrefixTypeTrait;
            extern "C" fn new_provider(
                config: ::abi_stable::std_types::RStr<'_>,
            ) -> ::abi_stable::std_types::RResult<$crate::ProviderBox, $crate::PluginError> {
                $crate::provider::new_provider_box(config, $constructor)
            }
            $crate::PluginModule { new_provider }.leak_into_prefix()
        }
    };
}
