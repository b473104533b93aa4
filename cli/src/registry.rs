//! The loaded plugins: name → provider, and which one serves a location.
//!
//! Every plugin named in `plugins.toml`, and every drop-in library found in
//! the plugin directories, is loaded at start, and its table checked
//! against the keys it declares before its provider is built
//! ([`crate::plugin_table`]). A plugin that fails to load keeps its
//! one-line error, so `stowage plugins` can show it while the others go on
//! working.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use stowage_plugin_api::{ConfigKey, Location};
use stowage_plugin_loader::load_library;

use crate::exit::ConfigError;
use crate::plugin::LoadedPlugin;
use crate::plugin_table::{check_table, Secrets};
use crate::plugins_file::{
    drop_in_dirs, find_drop_ins, plugin_search_dirs, resolve_library, PluginsFile,
};

/// One plugin, loaded or not.
pub struct PluginSlot {
    /// Its name in `plugins.toml` (or from the drop-in file name).
    pub name: String,
    /// The library path tried.
    pub library: PathBuf,
    /// Its table in `plugins.toml`, as written: it may hold secrets, so show
    /// it only through [`crate::plugin_table::configured_options`].
    pub config: toml::Table,
    /// The plugin API version the library was built against, once it loaded.
    pub api_version: Option<String>,
    /// The keys the plugin declares, once known (also when its table was refused).
    pub options: Vec<ConfigKey>,
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
        let mut libraries: BTreeMap<String, (PathBuf, toml::Table)> = file
            .plugins
            .iter()
            .map(|(name, entry)| {
                let path = resolve_library(entry, file.base_dir(), &search_dirs);
                (name.clone(), (path, entry.config.clone()))
            })
            .collect();
        for (name, path) in find_drop_ins(&drop_in_dirs()) {
            let listed = libraries.values().any(|(p, _)| same_file(p, &path));
            if !listed {
                libraries.entry(name).or_insert((path, toml::Table::new()));
            }
        }
        let slots = libraries
            .into_iter()
            .map(|(name, (library, config))| {
                (
                    name.clone(),
                    PluginSlot::load(name, library, config, verbose),
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

impl PluginSlot {
    /// Loads plugin `name` from `library` and builds it from its table
    /// `config`, checked first against the keys the plugin declares.
    fn load(name: String, library: PathBuf, config: toml::Table, verbose: bool) -> PluginSlot {
        let mut slot = PluginSlot {
            name,
            library,
            config,
            api_version: None,
            options: Vec::new(),
            state: Err(String::new()),
        };
        slot.state = slot.build(verbose);
        slot
    }

    /// The plugin, filling in what is learnt on the way ([`Self::api_version`],
    /// [`Self::options`]) even when a later step fails.
    ///
    /// The declaration comes from a provider built from an empty table,
    /// which every plugin takes ("possibly empty", says the API); the table
    /// is checked against it before the plugin sees the table. A plugin
    /// that needs keys to be built at all is built from its table first
    /// and checked right after, before anything is called on it.
    fn build(&mut self, verbose: bool) -> Result<LoadedPlugin, String> {
        let name = self.name.clone();
        let module = load_library(&self.library).map_err(|e| {
            if verbose && !e.details().is_empty() {
                format!("plugin {name}: {e}\n{}", e.details())
            } else {
                format!("plugin {name}: {e}")
            }
        })?;
        self.api_version = Some(module.api_version.clone());
        let text = toml::to_string(&self.config)
            .map_err(|e| format!("plugin {name}: its table cannot be passed on: {e}"))?;
        let provider = match module.new_provider("") {
            Ok(bare) => {
                self.options = bare.describe().options;
                check_table(&name, &self.options, &self.config)?;
                if self.config.is_empty() {
                    bare
                } else {
                    let secrets = Secrets::of(&self.options, &self.config);
                    module
                        .new_provider(&text)
                        .map_err(|e| secrets.redact(&plugin_message(&name, &e)))?
                }
            }
            Err(_) => {
                let provider = module
                    .new_provider(&text)
                    .map_err(|e| plugin_message(&name, &e))?;
                self.options = provider.describe().options;
                check_table(&name, &self.options, &self.config)?;
                provider
            }
        };
        let secrets = Secrets::of(&self.options, &self.config);
        Ok(
            LoadedPlugin::new(&name, &self.library, module.api_version.clone(), provider)
                .redacting(secrets),
        )
    }
}

/// A plugin's error as one message naming the plugin, once: plugins built
/// with the support crate already start theirs with `plugin NAME:`.
fn plugin_message(name: &str, error: &dyn std::fmt::Display) -> String {
    let text = error.to_string();
    let prefix = format!("plugin {name}: ");
    if text.starts_with(&prefix) {
        text
    } else {
        format!("{prefix}{text}")
    }
}
