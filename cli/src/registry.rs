//! The loaded plugins: name → provider, and which one serves a location.
//!
//! Every plugin named in `plugins.toml`, and every drop-in library found in
//! the plugin directories, is loaded at start. A plugin that fails to load
//! keeps its one-line error, so `stowage plugins` can show it while the
//! others go on working.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use stowage_plugin_api::Location;
use stowage_plugin_loader::load_library;

use crate::exit::ConfigError;
use crate::plugin::LoadedPlugin;
use crate::plugins_file::{
    drop_in_dirs, find_drop_ins, plugin_search_dirs, resolve_library, PluginsFile,
};

/// One plugin, loaded or not.
pub struct PluginSlot {
    /// Its name in `plugins.toml` (or from the drop-in file name).
    pub name: String,
    /// The library path tried.
    pub library: PathBuf,
    /// The plugin, or the one-line reason it could not be loaded.
    pub state: Result<LoadedPlugin, String>,
}

/// All plugins, and the scheme map.
pub struct Registry {
    slots: BTreeMap<String, PluginSlot>,
    schemes: BTreeMap<String, String>,
}

impl Registry {
    /// Loads every plugin of `file` plus the drop-ins. With `verbose`, load
    /// errors carry abi_stable's full diagnostic after their first line.
    pub fn load(file: &PluginsFile, verbose: bool) -> Registry {
        let search_dirs = plugin_search_dirs();
        let mut libraries: BTreeMap<String, (PathBuf, String)> = file
            .plugins
            .iter()
            .map(|(name, entry)| {
                let path = resolve_library(entry, file.base_dir(), &search_dirs);
                let config = toml::to_string(&entry.config).unwrap_or_default();
                (name.clone(), (path, config))
            })
            .collect();
        for (name, path) in find_drop_ins(&drop_in_dirs()) {
            let listed = libraries.values().any(|(p, _)| same_file(p, &path));
            if !listed {
                libraries.entry(name).or_insert((path, String::new()));
            }
        }
        let slots = libraries
            .into_iter()
            .map(|(name, (library, config))| {
                let state = load_plugin(&name, &library, &config, verbose);
                (
                    name.clone(),
                    PluginSlot {
                        name,
                        library,
                        state,
                    },
                )
            })
            .collect();
        Registry {
            slots,
            schemes: file.schemes.clone(),
        }
    }

    /// Every plugin, in name order.
    pub fn slots(&self) -> impl Iterator<Item = &PluginSlot> {
        self.slots.values()
    }

    /// The loaded plugin called `name`, or why there is none.
    pub fn get(&self, name: &str) -> Result<&LoadedPlugin> {
        match self.slots.get(name) {
            Some(slot) => slot
                .state
                .as_ref()
                .map_err(|e| ConfigError(e.clone()).into()),
            None => Err(ConfigError(format!(
                "unknown plugin {name:?}; known plugins: {}",
                self.slots.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
            .into()),
        }
    }

    /// The plugin that serves `location`: `chosen` if given, else the one
    /// `[schemes]` maps its scheme to, else the only loaded plugin that
    /// says it serves the scheme.
    pub fn for_location(&self, location: &Location, chosen: Option<&str>) -> Result<&LoadedPlugin> {
        if let Some(name) = chosen {
            return self.get(name);
        }
        let Some(scheme) = location.scheme() else {
            return Err(ConfigError(format!(
                "{location} is a local path, not a bucket URL (scheme://bucket/prefix)"
            ))
            .into());
        };
        if let Some(name) = self.schemes.get(&scheme) {
            return self.get(name);
        }
        let serving: Vec<&LoadedPlugin> = self
            .slots
            .values()
            .filter_map(|s| s.state.as_ref().ok())
            .filter(|p| p.info.schemes.iter().any(|s| s.as_str() == scheme))
            .collect();
        let problem = match serving.as_slice() {
            [one] => return Ok(one),
            [] => format!(
                "no plugin serves {scheme}:// URLs; add one to plugins.toml and map it under [schemes]"
            ),
            many => format!(
                "several plugins serve {scheme}:// URLs ({}); choose one with --plugin or under [schemes] in plugins.toml",
                many.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        };
        Err(ConfigError(problem).into())
    }
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn load_plugin(
    name: &str,
    library: &std::path::Path,
    config: &str,
    verbose: bool,
) -> Result<LoadedPlugin, String> {
    let module = load_library(library).map_err(|e| {
        if verbose && !e.details().is_empty() {
            format!("plugin {name}: {e}\n{}", e.details())
        } else {
            format!("plugin {name}: {e}")
        }
    })?;
    let provider = module
        .new_provider(config)
        .map_err(|e| format!("plugin {name}: {e}"))?;
    Ok(LoadedPlugin::new(
        name,
        library,
        module.api_version.clone(),
        provider,
    ))
}
