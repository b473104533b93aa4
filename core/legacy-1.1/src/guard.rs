//! The panic guard.
//!
//! A panic that unwinds across an `extern "C"` boundary aborts the whole
//! process, taking the host (and a half-finished restore) down with it.
//! Every entry point of a plugin therefore runs inside [`guard`], which turns
//! a panic into a [`PluginError`] of kind [`ErrorKind::Panicked`].
//! [`crate::export_plugin!`] applies it to every method for you; call it
//! yourself only if you write an entry point by hand.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::types::{ErrorKind, PluginError};

/// Runs `body`, returning its result, or an error if it panicked.
///
/// ```
/// # use stowage_plugin_api::{guard::guard, ErrorKind};
/// let r = guard::<u32>(|| panic!("boom"));
/// assert_eq!(r.unwrap_err().kind, ErrorKind::Panicked);
/// ```
pub fn guard<T>(body: impl FnOnce() -> Result<T, PluginError>) -> Result<T, PluginError> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic payload".to_string());
            Err(PluginError::new(
                ErrorKind::Panicked,
                format!("the plugin panicked: {what}"),
            ))
        }
    }
}
