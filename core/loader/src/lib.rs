//! Loading plugin libraries: the host side of the plugin boundary.
//!
//! Each library is opened with
//! `lib_header_from_path(path)?.init_root_module::<PluginModuleRef>()`, which
//! checks the API version the plugin was built against and the layout of
//! every type the root module reaches. A library that fails either check is
//! tried once more as a plugin of API 0.1 ([`legacy`]). (abi_stable's
//! `load_from_file` is not used: it caches one module per root-module
//! *type*, so a second plugin would silently return the first.) Libraries
//! are never unloaded.
//!
//! Whatever API a plugin was built against, the host gets it as a plain
//! [`StorageProvider`] ([`new_provider`]).
//!
//! Every failure becomes a [`LoadError`] whose `Display` is one line naming
//! the file and what to do; the full diagnostic (a layout mismatch runs to
//! 50–150 KB) is kept in [`LoadError::details`] for `--verbose`.

use std::fmt;
use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibraryError, RootModule};
use abi_stable::sabi_types::VersionNumber;
use abi_stable::std_types::{RResult, RStr};
use stowage_plugin_api::ffi::{PluginModuleRef, ProviderClient};
use stowage_plugin_api::{PluginError, StorageProvider};

pub mod legacy;

/// The plugin API this host is built against.
pub fn host_api_version() -> VersionNumber {
    PluginModuleRef::VERSION_STRINGS
        .parsed()
        .expect("the API crate's version parses")
}

/// Why a library could not be loaded as a plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadErrorKind {
    /// No file at that path.
    Missing,
    /// The file exists but is not a loadable dynamic library.
    NotALibrary,
    /// A library, but it exports no Stowage root module.
    NotAPlugin,
    /// Built against a plugin API of another major version.
    VersionMismatch,
    /// Built against a plugin API (or abi_stable) whose types have another layout.
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

    fn from_library_error(path: &Path, plugin_api: &str, error: LibraryError) -> Self {
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
            LibraryError::IncompatibleVersionNumber { actual_version, .. } => (
                LoadErrorKind::VersionMismatch,
                version_mismatch(*actual_version),
            ),
            LibraryError::InvalidAbiHeader(_) | LibraryError::InvalidCAbi { .. } => (
                LoadErrorKind::LayoutMismatch,
                format!(
                    "built with an incompatible abi_stable: rebuild the plugin against \
                     stowage-plugin-api {}",
                    host_api_version()
                ),
            ),
            LibraryError::AbiInstability(_) => (
                LoadErrorKind::LayoutMismatch,
                format!(
                    "built against a plugin API {} whose types differ from this stowage's API {} \
                     ({}): rebuild the plugin against stowage-plugin-api {}.x",
                    plugin_api,
                    host_api_version(),
                    layout_error_lines(&details),
                    host_api_version().major
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

/// The one line for a plugin built against API `plugin`, which this host
/// does not load.
fn version_mismatch(plugin: VersionNumber) -> String {
    let host = host_api_version();
    let advice = if plugin.major > host.major {
        "it needs a newer stowage"
    } else {
        "rebuild it against a newer stowage-plugin-api"
    };
    format!(
        "built against stowage plugin API {plugin}, but this stowage loads plugins built \
         against API {}.x (or 0.1): {advice}",
        host.major
    )
}

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

/// A plugin library that loaded: its root module, of the current API or
/// of an earlier one this host still serves (see [`legacy`]).
#[derive(Clone)]
pub struct PluginLibrary {
    /// The API version the plugin was built against, as it records it.
    pub api_version: String,
    root: PluginRoot,
}

#[derive(Clone, Copy)]
enum PluginRoot {
    /// Built against API 1.x.
    Current(PluginModuleRef),
    /// Built against stowage-core 0.1, the API before 1.0.
    V0_1(stowage_core::PluginModuleRef),
}

impl PluginLibrary {
    /// Builds a provider from the plugin's config table (TOML text), as a
    /// plain [`StorageProvider`] whatever API the plugin was built against.
    pub fn new_provider(&self, config: &str) -> Result<Box<dyn StorageProvider>, PluginError> {
        let config = RStr::from_str(config);
        match self.root {
            PluginRoot::Current(module) => match (module.new_provider())(config) {
                RResult::ROk(provider) => Ok(Box::new(ProviderClient(provider))),
                RResult::RErr(error) => Err(error.into()),
            },
            PluginRoot::V0_1(module) => match (module.new_provider())(config) {
                RResult::ROk(provider) => Ok(Box::new(legacy::V0_1Provider(provider))),
                RResult::RErr(error) => Err(legacy::plain_error(error)),
            },
        }
    }
}

/// Opens the library at `path` and returns its root module: of the
/// current API, else of API 0.1, else the error of the current one.
///
/// `path` should be absolute (a bare file name would be looked up on the
/// system's library path instead).
pub fn load_library(path: &Path) -> Result<PluginLibrary, LoadError> {
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
    let header =
        lib_header_from_path(path).map_err(|e| LoadError::from_library_error(path, "?", e))?;
    let api_version = header.version_strings().version.to_string();
    let root = match header.init_root_module::<PluginModuleRef>() {
        Ok(module) => PluginRoot::Current(module),
        Err(
            error @ (LibraryError::AbiInstability(_)
            | LibraryError::IncompatibleVersionNumber { .. }),
        ) => header
            .init_root_module::<stowage_core::PluginModuleRef>()
            .map(PluginRoot::V0_1)
            .map_err(|_| LoadError::from_library_error(path, &api_version, error))?,
        Err(error) => return Err(LoadError::from_library_error(path, &api_version, error)),
    };
    Ok(PluginLibrary { api_version, root })
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
        let err = load_library(Path::new("/nonexistent/libx.so"))
            .err()
            .expect("the load fails");
        assert_eq!(err.kind, LoadErrorKind::Missing);
        let text = err.to_string();
        assert!(text.starts_with("plugin library /nonexistent/libx.so: no such file"));
        assert!(!text.contains('\n'));
    }
}
