//! The crates' layering, read from `cargo metadata`: the host side (the
//! plugin API, the loader, the CLI, the conformance suite and the neutral
//! crates they share) never depends on a crate under `plugins/`, and the
//! plugin API depends on nothing of Stowage's.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The workspace's packages, as `cargo metadata --no-deps` reports them.
fn workspace_packages() -> Vec<Value> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
    metadata["packages"].as_array().unwrap().clone()
}

/// The path dependencies of `package` used outside its tests (normal and
/// build dependencies), as (name, path).
fn path_dependencies(package: &Value) -> Vec<(String, String)> {
    package["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"].as_str() != Some("dev"))
        .filter_map(|d| {
            let path = d["path"].as_str()?;
            Some((d["name"].as_str()?.to_string(), path.to_string()))
        })
        .collect()
}

fn package<'p>(packages: &'p [Value], name: &str) -> &'p Value {
    packages
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no package {name} in the workspace"))
}

#[test]
fn no_host_crate_depends_on_a_crate_under_plugins() {
    let packages = workspace_packages();
    let host = [
        "stowage",
        "stowage-plugin-api",
        "stowage-plugin-loader",
        "stowage-exclude",
        "stowage-local-tree",
        "stowage-conformance",
    ];
    for name in host {
        for (dependency, path) in path_dependencies(package(&packages, name)) {
            assert!(
                !Path::new(&path)
                    .components()
                    .any(|c| c.as_os_str() == "plugins"),
                "{name} depends on {dependency} at {path}, a crate under plugins/"
            );
        }
    }
}

#[test]
fn the_plugin_api_depends_on_no_other_stowage_crate() {
    let packages = workspace_packages();
    let api = package(&packages, "stowage-plugin-api");
    assert_eq!(path_dependencies(api), Vec::new());
}
