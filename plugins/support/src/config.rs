//! Reading a plugin's config table.

use serde::de::DeserializeOwned;
use stowage_plugin_api::{ErrorKind, PluginError};

/// Parses the TOML text of plugin `plugin`'s config table into `T`; an
/// unknown key or a wrong type is a one-line `Config` error.
pub fn parse_config<T: DeserializeOwned>(plugin: &str, text: &str) -> Result<T, PluginError> {
    toml::from_str(text).map_err(|e| {
        PluginError::new(
            ErrorKind::Config,
            format!(
                "plugin {plugin}: bad config in plugins.toml: {}",
                e.message()
            ),
        )
    })
}
