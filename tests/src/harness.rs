//! Loading the plugin under test and running scenarios against it.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use stowage::plugin::LoadedPlugin;
use stowage::plugins_file::PluginsFile;
use stowage::registry::Registry;
use stowage::sync::{run_sync, SyncOutcome};
use stowage_plugin_api::IgnoreProgress;
use stowage_plugin_api::{Location, SyncOptions};
use stowage_plugin_loader::load_library;

use crate::scratch::{BucketToolStores, LocalDirStores, ScratchStore, ScratchStores};

/// A plugin under test and a source of scratch buckets for it.
pub struct Harness {
    /// The plugin, loaded from its library like `stowage` loads it.
    pub plugin: LoadedPlugin,
    /// Its config table (TOML text).
    pub config: String,
    stores: Box<dyn ScratchStores>,
}

impl Harness {
    /// Loads the library at `library` with the plugin config `config` (TOML).
    pub fn load(library: &Path, config: &str, stores: Box<dyn ScratchStores>) -> Result<Harness> {
        let module = load_library(library)?;
        let provider = module.new_provider(config)?;
        let name = provider.describe().name;
        Ok(Harness {
            plugin: LoadedPlugin::new(&name, library, module.api_version.clone(), provider),
            config: config.to_string(),
            stores,
        })
    }

    /// A registry holding only this plugin, mapped to its schemes, loaded
    /// through a `plugins.toml` the way `stowage` loads one.
    pub fn registry(&self) -> Result<Registry> {
        let dir = tempfile::tempdir()?;
        let name = &self.plugin.name;
        let mut text = String::from("[schemes]\n");
        for scheme in self.plugin.info.schemes.iter() {
            text.push_str(&format!("{scheme} = {name:?}\n"));
        }
        text.push_str(&format!(
            "[plugins.{name}]\nlibrary = {:?}\n[plugins.{name}.config]\n{}\n",
            self.plugin.library, self.config
        ));
        let path = dir.path().join("plugins.toml");
        std::fs::write(&path, text)?;
        Ok(Registry::load(&PluginsFile::read(&path)?, false))
    }

    /// A fresh scratch bucket, created and empty.
    pub fn bucket(&self, hint: &str) -> Result<Box<dyn ScratchStore>> {
        let store = self.stores.new_store(hint);
        store.create()?;
        Ok(store)
    }

    /// A fresh scratch bucket that does not exist.
    pub fn missing_bucket(&self, hint: &str) -> Box<dyn ScratchStore> {
        self.stores.new_store(hint)
    }

    /// Runs a sync exactly as `stowage sync` does.
    pub fn sync(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
    ) -> Result<SyncOutcome> {
        run_sync(&self.plugin, source, destination, options, &IgnoreProgress)
    }
}

/// The S3 test server's endpoint (`http://127.0.0.1:PORT`), or `None`
/// (see [`infrastructure_missing`]) without the test environment.
pub fn s3_test_endpoint() -> Option<String> {
    match std::env::var("STOWAGE_TEST_S3_ENDPOINT") {
        Ok(endpoint) => Some(endpoint),
        Err(_) => infrastructure_missing("the S3 test server (STOWAGE_TEST_S3_ENDPOINT)"),
    }
}

/// The `s3cmd` or `aws` plugin talking to the S3 test server at
/// `endpoint` (the server itself, or a proxy in front of it), with the
/// test environment's credentials and `extra_config` (TOML lines), scratch
/// buckets read back with boto3.
pub fn s3_tool_harness(plugin: &str, endpoint: &str, extra_config: &str) -> Option<Harness> {
    let Some(stores) = BucketToolStores::from_env("s3") else {
        return infrastructure_missing("the S3 test server (STOWAGE_TEST_VENV)");
    };
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let config = match plugin {
        "s3cmd" => format!(
            "config_file = {:?}\nendpoint = {:?}\n",
            env("STOWAGE_TEST_S3CFG"),
            endpoint.trim_start_matches("http://")
        ),
        _ => format!(
            "config_file = {:?}\ncredentials_file = {:?}\nendpoint_url = {endpoint:?}\n",
            env("STOWAGE_TEST_AWS_CONFIG"),
            env("STOWAGE_TEST_AWS_CREDENTIALS")
        ),
    };
    let config = format!("{config}{extra_config}");
    let library = built_library(&format!("stowage_plugin_{plugin}"));
    Some(Harness::load(&library, &config, Box::new(stores)).expect("the plugin loads"))
}

/// The native objstore plugin with `provider_keys` (its table's keys for
/// one provider), 8 requests at once and multipart uploads from 1 MiB (so
/// the suites store and read back MD5s from metadata too), scratch buckets
/// from `stores`.
pub fn objstore_harness(mut provider_keys: toml::Table, stores: BucketToolStores) -> Harness {
    provider_keys.insert("concurrency".into(), 8.into());
    provider_keys.insert("multipart_threshold_mib".into(), 1.into());
    let config = toml::to_string(&provider_keys).expect("a table serialises");
    let library = built_library("stowage_plugin_objstore");
    Harness::load(&library, &config, Box::new(stores)).expect("the objstore plugin loads")
}

/// A plugin serving `file://` buckets (the fs plugin, or a build of it
/// against another API release), loaded from its built library
/// `crate_lib_name` with an empty config; scratch buckets are directories
/// below a new temporary directory, read back with `std::fs`.
pub fn local_dir_harness(crate_lib_name: &str) -> Harness {
    let stores = LocalDirStores::new().expect("a temporary directory");
    let library = built_library(crate_lib_name);
    Harness::load(&library, "", Box::new(stores))
        .unwrap_or_else(|e| panic!("the plugin {crate_lib_name} loads: {e:#}"))
}

/// The path of a plugin library built by `cargo test` (the plugin crate must
/// be a dev-dependency with `crate-type = ["cdylib", "rlib"]`): looked up in
/// the test binary's directory (`target/<profile>/deps`) and its parent.
pub fn built_library(crate_lib_name: &str) -> PathBuf {
    let file = format!(
        "{}{crate_lib_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let exe = std::env::current_exe().expect("the test binary has a path");
    let deps = exe.parent().expect("the test binary is in a directory");
    [deps.to_path_buf(), deps.join("..")]
        .into_iter()
        .map(|dir| dir.join(&file))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{file} was not built next to {}; is the plugin a dev-dependency?",
                exe.display()
            )
        })
}

/// What a harness function returns when its test server is not there:
/// under `CI=true` (or `STOWAGE_TEST_STRICT=1`, which `scripts/test` sets
/// there) that is a failure — a missing server must never pass silently;
/// elsewhere the skip is printed loudly and the test returns.
pub fn infrastructure_missing<T>(what: &str) -> Option<T> {
    let strict = std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("STOWAGE_TEST_STRICT").is_ok_and(|v| v == "1");
    if strict {
        panic!("CI=true but the test infrastructure is missing: {what}; run the tests with scripts/test");
    }
    eprintln!("SKIPPED: {what} is not available; run the tests with scripts/test to include them");
    None
}

/// Runs one scenario; a failure panics with the scenario's error.
pub fn run_scenario(
    name: &str,
    harness: fn() -> Option<Harness>,
    scenario: fn(&Harness) -> Result<()>,
) {
    let Some(harness) = harness() else { return };
    if let Err(error) =
        scenario(&harness).map_err(|e| anyhow!("{name} with plugin {}: {e:#}", harness.plugin.name))
    {
        panic!("{error}");
    }
}
