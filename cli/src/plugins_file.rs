//! `plugins.toml`: which plugin libraries to load, which URL scheme each
//! serves, and each plugin's own config table.
//!
//! ```toml
//! [schemes]
//! s3 = "s3cmd"
//!
//! [plugins.s3cmd]
//! library = "stowage_plugin_s3cmd"   # a name, or a path relative to this file
//! [plugins.s3cmd.config]             # checked against the keys s3cmd declares
//! config_file = "~/.s3cfg"
//! ```

use std::collections::BTreeMap;
use std::env;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use crate::config::toml_problem;

/// The parsed file, with the directory its relative paths are resolved from.
#[derive(Debug, Clone)]
pub struct PluginsFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// URL scheme → plugin name.
    pub schemes: BTreeMap<String, String>,
    /// Plugin name → its entry, in name order.
    pub plugins: BTreeMap<String, PluginEntry>,
}

/// One `[plugins.NAME]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// A library name (`stowage_plugin_fs`) or a path to the library.
    pub library: String,
    /// The plugin's own settings, checked against the keys it declares
    /// ([`crate::plugin_table`]) and passed to it as TOML text.
    #[serde(default)]
    pub config: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    schemes: BTreeMap<String, String>,
    #[serde(default)]
    plugins: BTreeMap<String, PluginEntry>,
}

/// The places `plugins.toml` is looked for, in order: `--plugins FILE` /
/// `$STOWAGE_PLUGINS` (given explicitly), `./plugins.toml`,
/// `$XDG_CONFIG_HOME/stowage/plugins.toml` (or `~/.config/...`),
/// `/etc/stowage/plugins.toml`.
pub fn candidate_paths(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(path) = explicit {
        return vec![path.to_path_buf()];
    }
    let mut paths = vec![PathBuf::from("plugins.toml")];
    let config_home = env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(dir) = config_home {
        paths.push(dir.join("stowage/plugins.toml"));
    }
    paths.push(PathBuf::from("/etc/stowage/plugins.toml"));
    paths
}

impl PluginsFile {
    /// Finds and reads the file (see [`candidate_paths`]).
    pub fn find(explicit: Option<&Path>) -> Result<PluginsFile> {
        let candidates = candidate_paths(explicit);
        match candidates.iter().find(|p| p.is_file()) {
            Some(path) => PluginsFile::read(path),
            None if explicit.is_some() => {
                bail!("plugins file {} not found", candidates[0].display())
            }
            None => bail!(
                "no plugins.toml found (looked for {}); pass --plugins FILE or set STOWAGE_PLUGINS",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Reads and parses one file.
    pub fn read(path: &Path) -> Result<PluginsFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read plugins file {}", path.display()))?;
        // The message without the quoted line, which may hold a secret; the
        // line number instead.
        let raw: RawFile = toml::from_str(&text).map_err(|e| {
            anyhow!(
                "plugins file {} is not valid{}",
                path.display(),
                toml_problem(&text, &e)
            )
        })?;
        for (scheme, plugin) in &raw.schemes {
            if !raw.plugins.contains_key(plugin) {
                bail!(
                    "plugins file {}: scheme {scheme:?} names plugin {plugin:?}, which has no [plugins.{plugin}] table",
                    path.display()
                );
            }
        }
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(PluginsFile {
            path,
            schemes: raw.schemes,
            plugins: raw.plugins,
        })
    }

    /// The directory relative library paths are resolved from.
    pub fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }
}

/// The directories searched for a library given by name, in order:
/// `$STOWAGE_PLUGIN_PATH` (colon-separated), the installation's plugin
/// directory ([`installed_plugin_dir`]), the directory of the running
/// `stowage`, then [`SYSTEM_PLUGIN_DIRS`].
pub fn plugin_search_dirs() -> Vec<PathBuf> {
    let exe_dir = running_exe_dir();
    let mut dirs = env_plugin_path();
    dirs.extend(exe_dir.as_deref().and_then(installed_plugin_dir));
    dirs.extend(exe_dir);
    dirs.extend(SYSTEM_PLUGIN_DIRS.iter().map(PathBuf::from));
    without_repeats(dirs)
}

/// Where distribution packages install plugin libraries.
pub const SYSTEM_PLUGIN_DIRS: [&str; 2] =
    ["/usr/local/lib/stowage/plugins", "/usr/lib/stowage/plugins"];

/// The directories whose `libstowage_plugin_<name>` libraries are loaded
/// even when `plugins.toml` does not list them (drop-in packages):
/// `$STOWAGE_PLUGIN_PATH`, the installation's plugin directory and the
/// system plugin directories.
pub fn drop_in_dirs() -> Vec<PathBuf> {
    let mut dirs = env_plugin_path();
    dirs.extend(running_exe_dir().as_deref().and_then(installed_plugin_dir));
    dirs.extend(SYSTEM_PLUGIN_DIRS.iter().map(PathBuf::from));
    without_repeats(dirs)
}

/// The plugin directory of the installation a `stowage` in `exe_dir` belongs
/// to: `<prefix>/lib/stowage/plugins` for `<prefix>/bin/stowage`, as `make
/// install` lays it out, so an installation under any `PREFIX` (`/opt/stowage`)
/// finds its own plugins.
pub fn installed_plugin_dir(exe_dir: &Path) -> Option<PathBuf> {
    exe_dir
        .parent()
        .map(|prefix| prefix.join("lib/stowage/plugins"))
}

fn running_exe_dir() -> Option<PathBuf> {
    env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
}

/// `dirs` in order, each once (an installation in `/usr` names
/// `/usr/lib/stowage/plugins` twice).
fn without_repeats(dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut unique: Vec<PathBuf> = Vec::with_capacity(dirs.len());
    for dir in dirs {
        if !unique.contains(&dir) {
            unique.push(dir);
        }
    }
    unique
}

/// The drop-in plugin libraries in `dirs`: (plugin name, path), first one
/// found for each name.
pub fn find_drop_ins(dirs: &[PathBuf]) -> BTreeMap<String, PathBuf> {
    let prefix = format!("{}stowage_plugin_", env::consts::DLL_PREFIX);
    let mut found = BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if let Some(name) = file_name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(env::consts::DLL_SUFFIX))
            {
                found
                    .entry(name.to_string())
                    .or_insert_with(|| entry.path());
            }
        }
    }
    found
}

fn env_plugin_path() -> Vec<PathBuf> {
    env::var_os("STOWAGE_PLUGIN_PATH")
        .map(|v| {
            env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The file name a library called `name` has on this platform
/// (`libname.so` on Linux).
pub fn library_file_name(name: &str) -> String {
    format!(
        "{}{name}{}",
        env::consts::DLL_PREFIX,
        env::consts::DLL_SUFFIX
    )
}

/// Where the library of `entry` is: an absolute path for a path-like entry
/// (it has a `/` or the platform's library suffix), else the first match on
/// the search path. Returns the path even when missing, so the loader can
/// name it in its error.
pub fn resolve_library(entry: &PluginEntry, base_dir: &Path, search_dirs: &[PathBuf]) -> PathBuf {
    let library = entry.library.as_str();
    if library.contains('/') || library.ends_with(env::consts::DLL_SUFFIX) {
        let path = Path::new(library);
        return if path.is_absolute() {
            path.to_path_buf()
        } else {
            base_dir.join(path)
        };
    }
    let file_name = library_file_name(library);
    search_dirs
        .iter()
        .map(|dir| dir.join(&file_name))
        .find(|p| p.is_file())
        .map(|p| std::path::absolute(&p).unwrap_or(p))
        .unwrap_or_else(|| {
            PathBuf::from(format!(
                "{file_name} (not found in {})",
                describe_dirs(search_dirs)
            ))
        })
}

fn describe_dirs(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(library: &str) -> PluginEntry {
        PluginEntry {
            library: library.to_string(),
            config: toml::Table::new(),
        }
    }

    #[test]
    fn relative_library_paths_are_resolved_from_the_file() {
        let p = resolve_library(&entry("lib/x.so"), Path::new("/etc/stowage"), &[]);
        assert_eq!(p, PathBuf::from("/etc/stowage/lib/x.so"));
    }

    #[test]
    fn library_names_are_searched_in_order() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(b.path().join(library_file_name("x")), b"").unwrap();
        let dirs = [a.path().to_path_buf(), b.path().to_path_buf()];
        let p = resolve_library(&entry("x"), Path::new("/"), &dirs);
        assert_eq!(p, b.path().join(library_file_name("x")));
    }

    #[test]
    fn an_installation_finds_the_plugins_beside_its_bin_directory() {
        assert_eq!(
            installed_plugin_dir(Path::new("/opt/stowage/bin")),
            Some(PathBuf::from("/opt/stowage/lib/stowage/plugins"))
        );
        assert_eq!(installed_plugin_dir(Path::new("/")), None);
    }

    #[test]
    fn the_installation_is_searched_before_the_binary_and_system_directories() {
        let exe_dir = running_exe_dir().unwrap();
        let installed = installed_plugin_dir(&exe_dir).unwrap();
        let search = plugin_search_dirs();
        let position = |dir: &Path| search.iter().position(|d| d == dir);
        let system = Path::new(SYSTEM_PLUGIN_DIRS[0]);
        assert!(position(&installed) < position(&exe_dir), "{search:?}");
        assert!(position(&exe_dir) < position(system), "{search:?}");
        assert!(drop_in_dirs().contains(&installed));
    }

    #[test]
    fn a_directory_named_twice_is_searched_once() {
        let dirs = [
            "/usr/lib/stowage/plugins",
            "/usr/bin",
            "/usr/lib/stowage/plugins",
        ];
        assert_eq!(
            without_repeats(dirs.iter().map(PathBuf::from).collect()),
            [PathBuf::from(dirs[0]), PathBuf::from(dirs[1])]
        );
    }

    #[test]
    fn a_scheme_naming_an_unknown_plugin_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plugins.toml");
        std::fs::write(&file, "[schemes]\ns3 = \"nope\"\n").unwrap();
        let err = PluginsFile::read(&file).unwrap_err().to_string();
        assert!(err.contains("names plugin \"nope\""), "{err}");
    }

    #[test]
    fn a_broken_file_is_named_by_line_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plugins.toml");
        let table = "[plugins.p]\nlibrary = \"x\"\n[plugins.p.config]\n";
        for (config, line) in [
            ("token = \"hunter2-secret\nnext = 1\n", 4),
            (
                "token = \"hunter2-secret\"\ntoken = \"hunter2-secret\"\n",
                5,
            ),
            ("token = hunter2-secret\n", 4),
        ] {
            std::fs::write(&file, format!("{table}{config}")).unwrap();
            let err = PluginsFile::read(&file).unwrap_err().to_string();
            assert!(!err.contains("hunter2"), "{err}");
            assert!(!err.contains('\n'), "{err}");
            assert!(
                err.contains(&format!("is not valid (line {line}, column ")),
                "{err}"
            );
        }
    }

    #[test]
    fn an_explicit_missing_file_is_named() {
        let err = PluginsFile::find(Some(Path::new("/no/such/plugins.toml")))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "plugins file /no/such/plugins.toml not found");
    }
}
