//! Plugins built against stowage-plugin-api 1.1.
//!
//! Their types carry the package `stowage-plugin-api 1.1.0`, which
//! abi_stable checks, and their provider vtable ends where 1.1's did
//! (`reads_ranges`), so they are read with the frozen 1.1 crate
//! (`core/legacy-1.1`) through its own host side
//! ([`v1_1::ffi::ProviderClient`]) and converted into the plain types of
//! the current API (the conversions are `legacy_1_x`'s). What 1.1
//! has passes through: `list_keys`, `get_range`, `reads_ranges`, the
//! conditional create and a `Planned` sync. The methods 1.2 added answer
//! with their defaults: `list_page` cuts a page out of the plugin's `list`
//! and `lists_pages` is `false`, so the host lists such a plugin whole.

use stowage_plugin_api::{self as api, ProgressSink, StorageProvider};
use stowage_plugin_api_1_1 as v1_1;
use v1_1::StorageProvider as _;

/// A provider of API 1.1, seen as a current [`StorageProvider`].
pub struct V1_1Provider(pub v1_1::ffi::ProviderClient);

earlier_minor_conversions!(v1_1, "1.1");

/// The compare mode an API 1.1 plugin is asked for: every current one is
/// a 1.1 one.
fn compare_mode(mode: api::CompareMode) -> Result<v1_1::CompareMode, api::PluginError> {
    compare_mode_by_code(mode)
}

impl StorageProvider for V1_1Provider {
    earlier_minor_methods!();

    fn list_keys(
        &self,
        at: &api::Location,
        keys: &[String],
    ) -> Result<Vec<api::ObjectEntry>, api::PluginError> {
        self.0
            .list_keys(&location(at), keys)
            .map(entries)
            .map_err(plain_error)
    }

    fn get_range(
        &self,
        source: &api::Location,
        key: &str,
        offset: u64,
        length: u64,
        file: &str,
    ) -> Result<(), api::PluginError> {
        self.0
            .get_range(&location(source), key, offset, length, file)
            .map_err(plain_error)
    }

    fn reads_ranges(&self) -> bool {
        self.0.reads_ranges()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn a_planned_sync_reaches_a_1_1_plugin_as_planned() {
        let options = api::SyncOptions {
            compare: api::CompareMode::Planned,
            ..api::SyncOptions::default()
        };
        assert_eq!(
            sync_options(&options).unwrap().compare,
            v1_1::CompareMode::Planned
        );
    }
}
