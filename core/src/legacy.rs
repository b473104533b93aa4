//! The provider interface of the first release, stowage-core 0.1.0,
//! frozen, so that this host still loads plugins built against it.
//!
//! abi_stable lets a library be *newer* than the interface its host was
//! built with (a prefix type or trait-object vtable with more fields than
//! the host knows loads; the host never sees the extra ones), but not
//! older: a vtable with fewer fields than the host's is refused at load
//! time ("too many fields" expected), however the missing methods are
//! marked. So each addition after the last prefix field keeps the previous
//! interface here, under the same type names, and the loader tries it when
//! the current one does not match ([`crate::loader::load_module`]). A
//! provider loaded this way is wrapped in [`UpgradedProvider`], which
//! forwards the methods the plugin has and answers the later ones with
//! their defaults: `conditional_create` is `false`, `create_if_absent` an
//! error of kind `InvalidInput`.
//!
//! The types that did not change (everything in [`crate::types`], the
//! progress sink) are shared; only the trait-object vtable and the root
//! module that reaches it differ.

// abi_stable 0.11's `sabi_trait` expansion puts impls inside a const block.
#![allow(non_local_definitions)]

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RResult, RStr, RString, RVec},
    StableAbi,
};

use crate::provider::{self, ProgressReporter};
use crate::types::{
    Location, ObjectEntry, PluginError, PluginInfo, SyncOptions, SyncReport, ToolStatus,
};

/// The provider trait object of stowage-core 0.1.0: the methods up to
/// `ensure_bucket`, and nothing after.
#[sabi_trait]
pub trait Provider: Send + Sync {
    /// See [`crate::StorageProvider::describe`].
    fn describe(&self) -> PluginInfo;
    /// See [`crate::StorageProvider::check`].
    fn check(&self) -> RResult<ToolStatus, PluginError>;
    /// See [`crate::StorageProvider::list`].
    fn list(&self, location: &Location) -> RResult<RVec<ObjectEntry>, PluginError>;
    /// See [`crate::StorageProvider::sync`].
    fn sync(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        progress: &ProgressReporter<'_>,
    ) -> RResult<SyncReport, PluginError>;
    /// See [`crate::StorageProvider::put`].
    fn put(
        &self,
        file: RStr<'_>,
        destination: &Location,
        key: RStr<'_>,
    ) -> RResult<(), PluginError>;
    /// See [`crate::StorageProvider::get`].
    fn get(&self, source: &Location, key: RStr<'_>, file: RStr<'_>) -> RResult<(), PluginError>;
    /// See [`crate::StorageProvider::copy`].
    fn copy(
        &self,
        source: &Location,
        destination: &Location,
        keys: &RVec<RString>,
    ) -> RResult<SyncReport, PluginError>;
    /// See [`crate::StorageProvider::delete`].
    fn delete(&self, location: &Location, keys: &RVec<RString>)
        -> RResult<SyncReport, PluginError>;
    /// See [`crate::StorageProvider::ensure_bucket`].
    #[sabi(last_prefix_field)]
    fn ensure_bucket(&self, location: &Location) -> RResult<bool, PluginError>;
}

/// A 0.1.0 provider as a 0.1.0 plugin hands it over.
pub type ProviderBox = Provider_TO<'static, RBox<()>>;

/// The root module of stowage-core 0.1.0.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// Builds a provider from the plugin's config table.
    #[sabi(last_prefix_field)]
    pub new_provider: extern "C" fn(config: RStr<'_>) -> RResult<ProviderBox, PluginError>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "stowage_plugin";
    const NAME: &'static str = "stowage_plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("0.1.0");
}

/// A 0.1.0 provider seen through the current interface: the methods it has
/// are forwarded, the later ones keep their defaults (it cannot).
pub struct UpgradedProvider(pub ProviderBox);

impl provider::Provider for UpgradedProvider {
    fn describe(&self) -> PluginInfo {
        self.0.describe()
    }
    fn check(&self) -> RResult<ToolStatus, PluginError> {
        self.0.check()
    }
    fn list(&self, location: &Location) -> RResult<RVec<ObjectEntry>, PluginError> {
        self.0.list(location)
    }
    fn sync(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        progress: &ProgressReporter<'_>,
    ) -> RResult<SyncReport, PluginError> {
        self.0.sync(source, destination, options, progress)
    }
    fn put(
        &self,
        file: RStr<'_>,
        destination: &Location,
        key: RStr<'_>,
    ) -> RResult<(), PluginError> {
        self.0.put(file, destination, key)
    }
    fn get(&self, source: &Location, key: RStr<'_>, file: RStr<'_>) -> RResult<(), PluginError> {
        self.0.get(source, key, file)
    }
    fn copy(
        &self,
        source: &Location,
        destination: &Location,
        keys: &RVec<RString>,
    ) -> RResult<SyncReport, PluginError> {
        self.0.copy(source, destination, keys)
    }
    fn delete(
        &self,
        location: &Location,
        keys: &RVec<RString>,
    ) -> RResult<SyncReport, PluginError> {
        self.0.delete(location, keys)
    }
    fn ensure_bucket(&self, location: &Location) -> RResult<bool, PluginError> {
        self.0.ensure_bucket(location)
    }
}
