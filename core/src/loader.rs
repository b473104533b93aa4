//! Loading plugin libraries.
//!
//! Each library is opened with
//! `lib_header_from_path(path)?.init_root_module::<PluginModuleRef>()`, which
//! checks the core version and the layout of every type the root module
//! reaches; a library whose layout does not match is tried once more as a
//! plugin of the 0.1.0 interface ([`crate::legacy`]). (abi_stable's `load_from_file` is not used: it caches one module
//! per root-module *type*, so a second plugin would silently return the
//! first.) Libraries are never unloaded.
//!
//! Every failure becomes a [`LoadError`] whose `Display` is one line naming
//! the file and what to do; the full diagnostic (a layout mismatch runs to
//! 50–150 KB) is kept in [`LoadError::details`] for `--verbose`.

use std::fmt;
use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibraryError, RootModule};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::RStr;

use crate::legacy;
use crate::provider::{PluginModuleRef, ProviderBox, Provider_TO};
use crate::types::PluginError;

/// Why a library could not be loaded as a plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadErrorKind {
    /// No file at that path.
    Missing,
    /// The file exists but is not a loadable dynamic library.
    NotALibrary,
    /// A library, but it exports no Stowage root module.
    NotAPlugin,
    /// Built against a `stowage-core` with an incompatible version number.
    VersionMismatch,
    /// Built against a `stowage-core` (or abi_stable) whose types have another layout.
    LayoutMismatch,
    /// The library's own initialisation failed.
    InitFailed,
}

/// A plugin library that failed to load: one line for users, details for `--verbose`.
#[derive(Clone, Debug)]
pub struct LoadError {
    /// The library's path.
    pub path: PathBuf,
    /// What kind of failure.
    pub kind: LoadErrorKind,
    summary: String,
    details: String,
}

impl LoadError {
    /// The full diagnostic text from abi_stable (may be very long).
    pub fn details(&self) -> &str {
        &self.details
    }

    fn new(path: &Path, kind: LoadErrorKind, summary: String, details: String) -> Self {
        LoadError {
            path: path.to_path_buf(),
            kind,
            summary,
            details,
        }
    }

    fn from_library_error(path: &Path, error: LibraryError) -> Self {
        let details = error.to_string();
        let (kind, summary) = match &error {
            LibraryError::OpenError { err, .. } => (
                LoadErrorKind::NotALibrary,
                format!("not a loadable library ({})", first_line(&err.to_string())),
            ),
            LibraryError::GetSymbolError { .. } => (
                LoadErrorKind::NotAPlugin,
                "not a Stowage plugin: it exports no stowage_plugin root module".to_string(),
            ),
            LibraryError::IncompatibleVersionNumber {
                expected_version,
                actual_version,
                ..
            } => (
                LoadErrorKind::VersionMismatch,
                format!(
                    "built against stowage-core {actual_version}, but this stowage needs a plugin \
                     built against stowage-core {}.{}.x: rebuild the plugin",
                    expected_version.major, expected_version.minor
                ),
            ),
            LibraryError::InvalidAbiHeader(_) | LibraryError::InvalidCAbi { .. } => (
                LoadErrorKind::LayoutMismatch,
                "built with an incompatible abi_stable: rebuild the plugin against this \
                 stowage-core"
                    .to_string(),
            ),
            LibraryError::AbiInstability(_) => (
                LoadErrorKind::LayoutMismatch,
                format!(
                    "built against an incompatible stowage-core (type layout mismatch: {}); \
                     rebuild the plugin against stowage-core {}",
                    layout_error_lines(&details),
                    PluginModuleRef::VERSION_STRINGS.version
                ),
            ),
            LibraryError::RootModule { err, .. } => (
                LoadErrorKind::InitFailed,
                format!(
                    "its initialisation failed: {}",
                    first_line(&err.to_string())
                ),
            ),
            LibraryError::ParseVersionError(_) | LibraryError::Many(_) => (
                LoadErrorKind::LayoutMismatch,
                format!("cannot be loaded: {}", first_line(&details)),
            ),
        };
        LoadError::new(path, kind, summary, details)
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "plugin library {}: {}",
            self.path.display(),
            self.summary
        )
    }
}

impl std::error::Error for LoadError {}

fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unknown error")
}

/// The distinct `Error:` lines of a layout report, joined; at most three.
fn layout_error_lines(details: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for line in details.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Error:") {
            let rest = rest.trim();
            if !rest.is_empty() && !lines.contains(&rest) {
                lines.push(rest);
            }
        }
    }
    match lines.len() {
        0 => "no detail given".to_string(),
        n if n > 3 => format!("{} (and {} more)", lines[..3].join("; "), n - 3),
        _ => lines.join("; "),
    }
}

/// A plugin library's root module: of the current interface, or of an
/// earlier one this host still serves (see [`crate::legacy`]).
#[derive(Clone, Copy)]
pub enum PluginRoot {
    /// Built against this stowage-core.
    Current(PluginModuleRef),
    /// Built against stowage-core 0.1.0, before `create_if_absent`.
    V0_1_0(legacy::PluginModuleRef),
}

/// Opens the library at `path` and returns its root module: of the
/// current interface, else (a layout mismatch) of the 0.1.0 one, else the
/// error of the current one.
///
/// `path` should be absolute (a bare file name would be looked up on the
/// system's library path instead).
pub fn load_module(path: &Path) -> Result<PluginRoot, LoadError> {
    if !path.is_file() {
        return Err(LoadError::new(
            path,
            LoadErrorKind::Missing,
            "no such file (build the plugins with `cargo build --release`, or fix its \
             `library` entry in plugins.toml)"
                .to_string(),
            String::new(),
        ));
    }
    let header = lib_header_from_path(path).map_err(|e| LoadError::from_library_error(path, e))?;
    match header.init_root_module::<PluginModuleRef>() {
        Ok(module) => Ok(PluginRoot::Current(module)),
        Err(error @ LibraryError::AbiInstability(_)) => header
            .init_root_module::<legacy::PluginModuleRef>()
            .map(PluginRoot::V0_1_0)
            .map_err(|_| LoadError::from_library_error(path, error)),
        Err(error) => Err(LoadError::from_library_error(path, error)),
    }
}

/// Builds a provider from a loaded module and the plugin's config table
/// (TOML text). A 0.1.0 provider is wrapped so that the methods added since
/// answer with their defaults.
pub fn new_provider(module: PluginRoot, config: &str) -> Result<ProviderBox, PluginError> {
    let config = RStr::from_str(config);
    match module {
        PluginRoot::Current(module) => (module.new_provider())(config).into_result(),
        PluginRoot::V0_1_0(module) => (module.new_provider())(config)
            .into_result()
            .map(|old| Provider_TO::from_value(legacy::UpgradedProvider(old), TD_Opaque)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_summaries_keep_only_distinct_error_lines() {
        let text = "noise\n  Error: field a differs\nmore\nError: field a differs\nError: b\n";
        assert_eq!(layout_error_lines(text), "field a differs; b");
        assert_eq!(layout_error_lines("nothing"), "no detail given");
    }

    #[test]
    fn a_missing_file_is_one_line_naming_it() {
        let err = load_module(Path::new("/nonexistent/libx.so"))
            .err()
            .expect("the load fails");
        assert_eq!(err.kind, LoadErrorKind::Missing);
        let text = err.to_string();
        assert!(text.starts_with("plugin library /nonexistent/libx.so: no such file"));
        assert!(!text.contains('\n'));
    }
}
