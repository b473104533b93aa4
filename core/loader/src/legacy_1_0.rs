//! Plugins built against stowage-plugin-api 1.0.
//!
//! Their types carry the package `stowage-plugin-api 1.0.0`, which
//! abi_stable checks, and their provider vtable ends where 1.0's did, so they
//! are read with the frozen 1.0 crate (`core/legacy-1.0`) through its own
//! host side ([`v1_0::ffi::ProviderClient`]) and converted into the plain
//! types of the current API (the conversions are
//! `legacy_1_x`'s). The methods 1.1 and 1.2 added answer with
//! their defaults: `list_keys` filters the plugin's `list`, `reads_ranges`
//! is `false` (so the host downloads whole objects), `list_page` cuts a
//! page out of the plugin's `list` and `lists_pages` is `false`; and a sync
//! asked for [`api::CompareMode::Planned`] reaches the plugin as
//! `Checksum`, which is what `Planned` allows.

use stowage_plugin_api::{self as api, ProgressSink, StorageProvider};
use stowage_plugin_api_1_0 as v1_0;
use v1_0::StorageProvider as _;

/// A provider of API 1.0, seen as a current [`StorageProvider`].
pub struct V1_0Provider(pub v1_0::ffi::ProviderClient);

earlier_minor_conversions!(v1_0, "1.0");

/// The compare mode an API 1.0 plugin is asked for: `Planned`, which it does
/// not know, as `Checksum`, which `Planned` allows.
fn compare_mode(mode: api::CompareMode) -> Result<v1_0::CompareMode, api::PluginError> {
    match mode {
        api::CompareMode::Planned => Ok(v1_0::CompareMode::Checksum),
        known => compare_mode_by_code(known),
    }
}

impl StorageProvider for V1_0Provider {
    earlier_minor_methods!();
}

#[cfg(test)]
mod tests {
    use super::*;
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
