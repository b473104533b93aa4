//! Turning a plugin's error into the host's, keeping its meaning for the
//! exit code and for callers that act on its kind.

use std::fmt;

use stowage_core::{ErrorKind, PluginError};

use crate::exit::{ConfigError, Refused};

/// A plugin call that failed, with the plugin's kind kept.
#[derive(Debug)]
pub struct PluginFailure {
    /// What went wrong, as the plugin classified it.
    pub kind: ErrorKind,
    /// The message, with the caller's context in front.
    pub message: String,
}

impl fmt::Display for PluginFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PluginFailure {}

/// `error`, prefixed with `context`, as an `anyhow::Error` whose exit code
/// follows its kind: a refused limit exits 5, a missing tool or bad plugin
/// config exits 3, anything else 1 (as a [`PluginFailure`]).
pub fn from_plugin(context: impl fmt::Display, error: PluginError) -> anyhow::Error {
    let message = format!("{context}: {error}");
    match error.kind {
        ErrorKind::LimitExceeded => Refused(message).into(),
        ErrorKind::Config | ErrorKind::ToolMissing => ConfigError(message).into(),
        kind => PluginFailure { kind, message }.into(),
    }
}

/// The plugin error kind behind `error`, if a plugin call caused it.
pub fn plugin_error_kind(error: &anyhow::Error) -> Option<ErrorKind> {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<PluginFailure>().map(|f| f.kind))
}
