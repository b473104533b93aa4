//! Loading plugin libraries: the host side of the plugin boundary.
//!
//! Each library is opened with
//! `lib_header_from_path(path)?.init_root_module::<PluginModuleRef>()`, which
//! checks the API version the plugin was built against and the layout of
//! every type the root module reaches. A library that fails either check is
//! tried again as a plugin of each earlier API this host still serves: 1.1
//! ([`legacy_1_1`]), then 1.0 ([`legacy_1_0`]), then 0.1 ([`legacy`]). (abi_stable's
//! `load_from_file` is not used: it caches one module per root-module
//! *type*, so a second plugin would silently return the first.) Libraries
//! are never unloaded.
//!
//! Whatever API a plugin was built against, the host gets it as a plain
//! [`StorageProvider`] ([`PluginLibrary::new_provider`]).
//!
//! Every failure becomes a [`LoadError`] whose `Display` is one line naming
//! the file and what to do; the full diagnostic (a layout mismatch runs to
//! 50–150 KB) is kept in [`LoadError::details`] for `--verbose`. For a
//! layout mismatch the line names the first type and field that differ and
//! how, from abi_stable's structured errors (its report keeps only text, so
//! the loader runs the same check once more: [`first_layout_difference`]).

use std::fmt;
use std::path::{Path, PathBuf};

use abi_stable::abi_stability::abi_checking::{
    check_layout_compatibility, AbiInstability, AbiInstabilityErrors, ExpectedFound,
};
use abi_stable::library::{lib_header_from_path, LibHeader, LibraryError, RootModule};
use abi_stable::sabi_types::VersionNumber;
use abi_stable::std_types::{RResult, RStr};
use abi_stable::type_layout::{TLFieldOrFunction, TypeLayout};
use abi_stable::StableAbi;
use stowage_plugin_api::ffi::{PluginModuleRef, ProviderClient};
use stowage_plugin_api::{PluginError, StorageProvider};

#[macro_use]
mod legacy_1_x;
pub mod legacy;
pub mod legacy_1_0;
pub mod legacy_1_1;

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

    /// The error for `error`, from the library at `path` built against
    /// `plugin_api`; `layout_difference` is the first layout difference, when
    /// the caller could find it.
    fn from_library_error(
        path: &Path,
        plugin_api: &str,
        error: LibraryError,
        layout_difference: Option<String>,
    ) -> Self {
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
                    "built against API {plugin_api} (this stowage: {}), types differ at {}; \
                     rebuild it against stowage-plugin-api {}.x",
                    host_api_version(),
                    layout_difference.unwrap_or_else(|| layout_error_lines(&details)),
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

/// The first difference between the root module this host expects and
/// `found`, a library's: where (`` `Type.field: FieldType` ``) and what
/// (`size 16, expected 8`), in under 200 characters. `None` when the
/// layouts are compatible.
pub fn first_layout_difference(found: &'static TypeLayout) -> Option<String> {
    let errors = check_layout_compatibility(<PluginModuleRef as StableAbi>::LAYOUT, found).err()?;
    describe_first_difference(&errors)
}

/// abi_stable's first error: the innermost field of its path, the type
/// holding that field, and the first mismatch found there.
fn describe_first_difference(errors: &AbiInstabilityErrors) -> Option<String> {
    let (error, instability) = errors
        .errors
        .iter()
        .find_map(|e| e.errs.first().map(|first| (e, first)))?;
    let what = describe_instability(instability);
    let trace = &error.stack_trace;
    let holder = match trace.len() {
        0 | 1 => errors.interface,
        n => match &trace[n - 2].expected {
            TLFieldOrFunction::Field(field) => field.layout(),
            TLFieldOrFunction::Function(_) => errors.interface,
        },
    };
    let place = match trace.last() {
        None => format!("`{}`", type_name(holder)),
        // The field's type, unless the difference is that type's name.
        Some(step) => match &step.expected {
            TLFieldOrFunction::Field(field) if matches!(instability, AbiInstability::Name(_)) => {
                format!("`{}.{}`", type_name(holder), field.name())
            }
            TLFieldOrFunction::Field(field) => format!(
                "`{}.{}: {}`",
                type_name(holder),
                field.name(),
                type_name(field.layout())
            ),
            TLFieldOrFunction::Function(function) => {
                format!(
                    "`{}.{}` (a function pointer)",
                    type_name(holder),
                    function.name
                )
            }
        },
    };
    Some(format!("{place}: {what}"))
}

/// A type's name with its generic types but without lifetimes, at most 60
/// characters: `PrefixRef<PluginModule>`.
fn type_name(layout: &TypeLayout) -> String {
    shorten(&without_lifetimes(&layout.full_type().to_string()), 60)
}

/// `PrefixRef<'a, PluginModule>` → `PrefixRef<PluginModule>`.
fn without_lifetimes(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            out.push(c);
            continue;
        }
        while chars
            .next_if(|c| c.is_alphanumeric() || *c == '_')
            .is_some()
        {}
        if chars.next_if_eq(&',').is_some() {
            while chars.next_if_eq(&' ').is_some() {}
        }
    }
    out.replace("<>", "")
}

/// What abi_stable found different, found and expected, shortened.
fn describe_instability(instability: &AbiInstability) -> String {
    use AbiInstability as AI;
    let pair = |what: &str, values: ExpectedFound<String>| {
        let one_line = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        format!(
            "{what} {}, expected {}",
            shorten(&one_line(&values.found), 60),
            shorten(&one_line(&values.expected), 60)
        )
    };
    match instability {
        AI::Package(v) => pair("package", shown(v)),
        AI::PackageVersion(v) => pair("package version", shown(v)),
        AI::Name(v) => pair("type", shown(v).map(|t| without_lifetimes(&t))),
        AI::Size(v) => pair("size", shown(v)),
        AI::Alignment(v) => pair("alignment", shown(v)),
        AI::FieldCountMismatch(v) => pair("field count", shown(v)),
        AI::UnexpectedField(v) => pair("field", v.as_ref().map(|f| format!("`{}`", f.name()))),
        AI::TooManyVariants(v) => pair("variant count", shown(v)),
        AI::UnexpectedVariant(v) => pair("variant", shown(v)),
        AI::MismatchedPrefixSize(v) => pair("prefix of fields", shown(v)),
        AI::MismatchedPrimitive(v) => pair("primitive", debugged(v)),
        AI::TLDataDiscriminant(v) => pair("kind of type", debugged(v)),
        AI::ReprAttr(v) => pair("repr", debugged(v)),
        AI::FnLifetimeMismatch(_) | AI::FieldLifetimeMismatch(_) => "other lifetimes".to_string(),
        AI::FnQualifierMismatch(_) => "other function qualifiers".to_string(),
        // The variant's name says what differs; its data can run to pages.
        other => {
            let debug = format!("{other:?}");
            let name = debug
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or("layout");
            format!("{name} differs")
        }
    }
}

fn shown<T: fmt::Display>(values: &ExpectedFound<T>) -> ExpectedFound<String> {
    values.as_ref().map(|v| v.to_string())
}

fn debugged<T: fmt::Debug>(values: &ExpectedFound<T>) -> ExpectedFound<String> {
    values.as_ref().map(|v| format!("{v:?}"))
}

/// `text` cut to at most `max` characters, with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
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
    /// Built against this host's API, or a later 1.x.
    Current(PluginModuleRef),
    /// Built against stowage-plugin-api 1.1.
    V1_1(stowage_plugin_api_1_1::ffi::PluginModuleRef),
    /// Built against stowage-plugin-api 1.0.
    V1_0(stowage_plugin_api_1_0::ffi::PluginModuleRef),
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
            PluginRoot::V1_1(module) => match (module.new_provider())(config) {
                RResult::ROk(provider) => Ok(Box::new(legacy_1_1::V1_1Provider(
                    stowage_plugin_api_1_1::ffi::ProviderClient(provider),
                ))),
                RResult::RErr(error) => Err(legacy_1_1::plain_error(error.into())),
            },
            PluginRoot::V1_0(module) => match (module.new_provider())(config) {
                RResult::ROk(provider) => Ok(Box::new(legacy_1_0::V1_0Provider(
                    stowage_plugin_api_1_0::ffi::ProviderClient(provider),
                ))),
                RResult::RErr(error) => Err(legacy_1_0::plain_error(error.into())),
            },
            PluginRoot::V0_1(module) => match (module.new_provider())(config) {
                RResult::ROk(provider) => Ok(Box::new(legacy::V0_1Provider(provider))),
                RResult::RErr(error) => Err(legacy::plain_error(error)),
            },
        }
    }
}

/// Opens the library at `path` and returns its root module: of the
/// current API, else of API 1.1, else of API 1.0, else of API 0.1, else
/// the error of the current one.
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
    let header = lib_header_from_path(path)
        .map_err(|e| LoadError::from_library_error(path, "?", e, None))?;
    let api_version = header.version_strings().version.to_string();
    let root = match header.init_root_module::<PluginModuleRef>() {
        Ok(module) => PluginRoot::Current(module),
        Err(
            error @ (LibraryError::AbiInstability(_)
            | LibraryError::IncompatibleVersionNumber { .. }),
        ) => earlier_api_root(header).ok_or_else(|| {
            let difference = match error {
                LibraryError::AbiInstability(_) => {
                    header.layout().and_then(first_layout_difference)
                }
                _ => None,
            };
            LoadError::from_library_error(path, &api_version, error, difference)
        })?,
        Err(error) => {
            return Err(LoadError::from_library_error(
                path,
                &api_version,
                error,
                None,
            ))
        }
    };
    Ok(PluginLibrary { api_version, root })
}

/// The library's root module as one of an earlier API this host still
/// serves, newest first; `None` when it is none of them.
fn earlier_api_root(header: &LibHeader) -> Option<PluginRoot> {
    if let Ok(module) = header.init_root_module::<stowage_plugin_api_1_1::ffi::PluginModuleRef>() {
        return Some(PluginRoot::V1_1(module));
    }
    if let Ok(module) = header.init_root_module::<stowage_plugin_api_1_0::ffi::PluginModuleRef>() {
        return Some(PluginRoot::V1_0(module));
    }
    header
        .init_root_module::<stowage_core::PluginModuleRef>()
        .ok()
        .map(PluginRoot::V0_1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frozen_types_carry_the_released_package_names_and_versions() {
        let package = |layout: &TypeLayout| layout.item_info().package_and_version();
        assert_eq!(
            package(<stowage_plugin_api_1_1::ffi::ObjectEntry as StableAbi>::LAYOUT),
            ("stowage-plugin-api", "1.1.0")
        );
        assert_eq!(
            package(<stowage_plugin_api_1_0::ffi::ObjectEntry as StableAbi>::LAYOUT),
            ("stowage-plugin-api", "1.0.0")
        );
    }

    #[test]
    fn layout_summaries_keep_only_distinct_error_lines() {
        let text = "noise\n  Error: field a differs\nmore\nError: field a differs\nError: b\n";
        assert_eq!(layout_error_lines(text), "field a differs; b");
        assert_eq!(layout_error_lines("nothing"), "no detail given");
    }

    /// Two releases of the same types, whose only difference is the type
    /// of `Entry.size`.
    macro_rules! api_release {
        ($release:ident, $size:ty) => {
            mod $release {
                use abi_stable::std_types::RString;
                use abi_stable::StableAbi;

                #[repr(C)]
                #[derive(StableAbi)]
                pub struct Entry {
                    pub key: RString,
                    pub size: $size,
                }

                #[repr(C)]
                #[derive(StableAbi)]
                pub struct Listing {
                    pub count: u64,
                    pub first: Entry,
                }
            }
        };
    }
    api_release!(v1, u32);
    api_release!(v2, u64);

    #[test]
    fn a_layout_difference_names_the_type_the_field_and_how() {
        let errors = check_layout_compatibility(
            <v1::Listing as StableAbi>::LAYOUT,
            <v2::Listing as StableAbi>::LAYOUT,
        )
        .unwrap_err();
        assert_eq!(
            describe_first_difference(&errors).unwrap(),
            "`Entry.size`: type u64, expected u32"
        );
    }

    #[test]
    fn lifetimes_are_left_out_of_type_names() {
        assert_eq!(
            without_lifetimes("PrefixRef<'a, PluginModule>"),
            "PrefixRef<PluginModule>"
        );
        assert_eq!(without_lifetimes("RStr<'static>"), "RStr");
        assert_eq!(without_lifetimes("Pair<'a, 'b, T, U>"), "Pair<T, U>");
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
