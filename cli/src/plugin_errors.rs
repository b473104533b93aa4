//! Turning a plugin's error into the host's, keeping its meaning for the exit code.

use stowage_core::{ErrorKind, PluginError};

use crate::exit::{ConfigError, Refused};

/// `error`, prefixed with `context`, as an `anyhow::Error` whose exit code
/// follows its kind: a refused limit exits 5, a missing tool or bad plugin
/// config exits 3, anything else 1.
pub fn from_plugin(context: impl std::fmt::Display, error: PluginError) -> anyhow::Error {
    let message = format!("{context}: {error}");
    match error.kind {
        ErrorKind::LimitExceeded => Refused(message).into(),
        ErrorKind::Config | ErrorKind::ToolMissing => ConfigError(message).into(),
        _ => anyhow::anyhow!(message),
    }
}
