//! The plugin's `plugins.toml` table: the gsutil command it sets up, with
//! the secrets of the boto config it points gsutil at.

use std::ffi::OsString;
use std::path::PathBuf;

use serde::Deserialize;
use stowage_plugin_api::{ConfigKey, ConfigKind, PluginError};
use stowage_plugin_support::config::{parse_config, program_option, stall_timeout_option};
use stowage_plugin_support::paths::expand_home;
use stowage_plugin_support::tool::Tool;
use stowage_plugin_support::tool_config::secret_values;

use crate::boto_config::{json_api_endpoint, SECRET_KEYS};
use crate::GsutilProvider;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GsutilConfig {
    program: Option<String>,
    boto_config: Option<String>,
    parallel_thread_count: Option<u32>,
    parallel_process_count: Option<u32>,
    #[serde(default)]
    extra_args: Vec<String>,
    stall_timeout: Option<u64>,
}

/// The keys of [`GsutilConfig`], as `describe` declares them.
pub fn options() -> Vec<ConfigKey> {
    vec![
        program_option("gsutil"),
        ConfigKey::new(
            "boto_config",
            ConfigKind::Path,
            "The boto config gsutil reads, which holds the credentials (BOTO_CONFIG); unset: \
             $BOTO_CONFIG, else ~/.boto.",
        ),
        ConfigKey::new(
            "parallel_thread_count",
            ConfigKind::Integer,
            "Threads per gsutil process (-o GSUtil:parallel_thread_count); unset: gsutil's.",
        ),
        ConfigKey::new(
            "parallel_process_count",
            ConfigKind::Integer,
            "gsutil processes for a transfer (-o GSUtil:parallel_process_count); unset: \
             gsutil's.",
        ),
        ConfigKey::new(
            "extra_args",
            ConfigKind::StringList,
            "Arguments put before every gsutil command's own (not -q); they may hold \
             credentials (-o Credentials:...), so they are never shown.",
        )
        .default("[]")
        .secret(),
        stall_timeout_option("gsutil"),
    ]
}

impl GsutilProvider {
    /// Builds the provider from its `plugins.toml` table (TOML text).
    pub fn from_config(config: &str) -> Result<GsutilProvider, PluginError> {
        let config: GsutilConfig = parse_config("gsutil", config)?;
        let program = config.program.as_deref().unwrap_or("gsutil");
        let mut tool = Tool::new("gsutil", program, "pip install gsutil");
        tool.set_stall_timeout(config.stall_timeout)?;
        let boto_file = match &config.boto_config {
            Some(file) => {
                let file = expand_home(file);
                tool.set_env("BOTO_CONFIG", &file);
                file
            }
            // The file gsutil itself reads, for redaction and display only.
            None => std::env::var_os("BOTO_CONFIG")
                .map(PathBuf::from)
                .unwrap_or_else(|| expand_home("~/.boto")),
        };
        let boto_text = std::fs::read_to_string(boto_file).unwrap_or_default();
        tool.secrets.extend(secret_values(&boto_text, &SECRET_KEYS));
        for (name, value) in [
            ("parallel_thread_count", config.parallel_thread_count),
            ("parallel_process_count", config.parallel_process_count),
        ] {
            if let Some(count) = value {
                tool.base_args.push(gsutil_option(name, count));
            }
        }
        tool.base_args
            .extend(config.extra_args.iter().map(OsString::from));
        Ok(GsutilProvider {
            tool,
            endpoint: json_api_endpoint(&boto_text),
        })
    }
}

/// `-oGSUtil:NAME=VALUE`, attached so that the value never looks like a
/// subcommand in error messages.
pub fn gsutil_option(name: &str, value: u32) -> OsString {
    format!("-oGSUtil:{name}={value}").into()
}

#[cfg(test)]
mod tests {
    use stowage_plugin_api::{ErrorKind, StorageProvider};
    use stowage_plugin_support::config::assert_declared_options;

    use super::*;

    #[test]
    fn the_declared_options_are_the_config_keys() {
        let info = GsutilProvider::from_config("").unwrap().describe();
        assert_declared_options::<GsutilConfig>(&info.options);
    }

    #[test]
    fn config_rejects_unknown_keys() {
        let err = GsutilProvider::from_config("bogus = 1\n").err().unwrap();
        assert_eq!(err.kind, ErrorKind::Config);
        let provider =
            GsutilProvider::from_config("parallel_thread_count = 4\nextra_args = [\"-D\"]\n")
                .unwrap();
        assert_eq!(
            provider.tool.base_args,
            [
                OsString::from("-oGSUtil:parallel_thread_count=4"),
                OsString::from("-D")
            ]
        );
    }
}
