//! The manifests in `deploy/kubernetes/`, checked offline.
//!
//! `kubectl apply --dry-run=client` needs an API server even with
//! `--validate=false` (it asks the server for its resource types), so this
//! test runs `kubectl label --local -f deploy/kubernetes/ -o json`, which
//! parses every manifest as kubectl does and prints it as JSON without a
//! cluster, and then checks the fields a sharded restore depends on: an
//! Indexed Job whose `--shards` equals its completions and parallelism,
//! the ConfigMap's stowage.toml and plugins.toml (read by Stowage's own
//! parsers), the Secret mounted as the plugin's credentials file and never
//! in argv, a staging volume per pod with a size, resource requests.
//! Without kubectl the test skips loudly, and fails under `CI=true`. A
//! second test checks the manifests against Kubernetes' own JSON schemas
//! (`kubernetes-validate --strict`, installed in the test venv), since
//! `kubectl apply --dry-run=client` needs a cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use stowage::config::{ConfigArgs, Settings};
use stowage::plugins_file::PluginsFile;
use stowage_conformance::infrastructure_missing;

/// The manifests' directory.
fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

/// Every object of the manifests as kubectl parses them, by kind; `None`
/// (see [`infrastructure_missing`]) without kubectl.
fn parsed_manifests() -> Option<BTreeMap<String, Value>> {
    let output = match Command::new("kubectl")
        .args(["label", "--local", "-o", "json", "-f"])
        .arg(manifests())
        .arg("stowage.test/parsed=offline")
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return infrastructure_missing("kubectl (to check deploy/kubernetes/)")
        }
        Err(e) => panic!("cannot run kubectl: {e}"),
    };
    assert!(
        output.status.success(),
        "kubectl cannot parse the manifests: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut objects = BTreeMap::new();
    for object in serde_json::Deserializer::from_slice(&output.stdout).into_iter::<Value>() {
        let object = object.expect("kubectl prints JSON");
        let kind = object["kind"].as_str().expect("every object has a kind");
        assert!(
            objects.insert(kind.to_string(), object.clone()).is_none(),
            "two {kind}s"
        );
    }
    Some(objects)
}

/// The entry named `name` of the list `list` (volumes, mounts, variables).
fn named<'v>(list: &'v Value, name: &str) -> &'v Value {
    list.as_array()
        .unwrap_or_else(|| panic!("no list holding {name}"))
        .iter()
        .find(|entry| entry["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

/// The volume of the pod template named `name`.
fn volume<'v>(pod: &'v Value, name: &str) -> &'v Value {
    named(&pod["volumes"], name)
}

/// Where the container mounts the volume `name`.
fn mount_path<'c>(container: &'c Value, name: &str) -> &'c str {
    named(&container["volumeMounts"], name)["mountPath"]
        .as_str()
        .unwrap()
}

/// The container's environment variable `name`.
fn env<'c>(container: &'c Value, name: &str) -> &'c str {
    named(&container["env"], name)["value"].as_str().unwrap()
}

#[test]
fn the_manifests_are_an_indexed_job_with_its_config_credentials_and_staging() {
    let Some(objects) = parsed_manifests() else {
        return;
    };
    let kinds: Vec<&str> = objects.keys().map(String::as_str).collect();
    assert_eq!(kinds, ["ConfigMap", "Job", "Secret"]);
    let (config_map, job, secret) = (&objects["ConfigMap"], &objects["Job"], &objects["Secret"]);

    // An Indexed Job whose pods each run one shard of N = completions.
    let spec = &job["spec"];
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(spec["completionMode"], "Indexed");
    let completions = spec["completions"].as_u64().unwrap();
    assert!(completions >= 1);
    // All at once: each shard waits for the others' validation verdicts
    // before it changes anything.
    assert_eq!(spec["parallelism"].as_u64(), Some(completions));
    let pod = &spec["template"]["spec"];
    assert!(["Never", "OnFailure"].contains(&pod["restartPolicy"].as_str().unwrap()));
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "restore");
    let shards = args
        .iter()
        .position(|a| *a == "--shards")
        .expect("--shards N");
    assert_eq!(
        args[shards + 1],
        completions.to_string(),
        "--shards is not completions"
    );
    assert!(
        args.contains(&"--yes"),
        "a pod has no terminal to confirm on"
    );
    for resource in ["cpu", "memory"] {
        assert!(
            container["resources"]["requests"][resource].is_string(),
            "no {resource} request"
        );
    }

    // The config files, from the ConfigMap, read by Stowage's own parsers.
    let config_dir = mount_path(container, "config");
    assert_eq!(
        volume(pod, "config")["configMap"]["name"],
        config_map["metadata"]["name"]
    );
    let files = tempfile::tempdir().unwrap();
    for (name, variable) in [
        ("stowage.toml", "STOWAGE_CONFIG"),
        ("plugins.toml", "STOWAGE_PLUGINS"),
    ] {
        let text = config_map["data"][name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name}"));
        std::fs::write(files.path().join(name), text).unwrap();
        assert_eq!(env(container, variable), format!("{config_dir}/{name}"));
    }
    let settings = Settings::resolve(&ConfigArgs {
        config: Some(files.path().join("stowage.toml")),
        ..ConfigArgs::default()
    })
    .expect("stowage.toml is valid");
    assert!(
        settings.tmp_bucket.is_some(),
        "a restore snapshots into the tmp bucket"
    );
    PluginsFile::read(&files.path().join("plugins.toml")).expect("plugins.toml is valid");

    // Each pod's staging volume, sized: the archive plus its shard's share.
    assert_eq!(
        Path::new(mount_path(container, "staging")),
        settings.staging_dir,
        "staging_dir is not the staging volume"
    );
    let staging = volume(pod, "staging");
    let size =
        &staging["ephemeral"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"];
    assert!(
        size.is_string() || staging["emptyDir"]["sizeLimit"].is_string(),
        "the staging volume has no size: {staging}"
    );

    // The credentials: the Secret mounted as the plugin's credentials file.
    let credentials = volume(pod, "credentials");
    assert_eq!(
        credentials["secret"]["secretName"],
        secret["metadata"]["name"]
    );
    let plugins: toml::Table =
        toml::from_str(config_map["data"]["plugins.toml"].as_str().unwrap()).unwrap();
    let file = plugins["plugins"]["objstore"]["config"]["s3_credentials_file"]
        .as_str()
        .expect("the plugin reads its credentials from a file");
    let (dir, key) = file.rsplit_once('/').unwrap();
    assert_eq!(dir, mount_path(container, "credentials"));
    let secret_value = secret["stringData"][key]
        .as_str()
        .unwrap_or_else(|| panic!("the Secret has no {key}"));
    let secret_line = secret_value
        .lines()
        .find(|l| l.starts_with("aws_secret_access_key"))
        .unwrap();
    let manifests_but_the_secret = format!("{config_map}{job}");
    assert!(!manifests_but_the_secret.contains(secret_line.split('=').nth(1).unwrap().trim()));
    assert!(args
        .iter()
        .all(|a| !a.contains("secret") && !a.contains("key")));
}

/// `kubernetes-validate --strict` (Kubernetes' own JSON schemas, bundled
/// per release; from the test environment's venv) on `files`, against
/// Kubernetes `version`: its output, or `None` (see
/// [`infrastructure_missing`]) without the test environment.
fn schema_check(version: &str, files: &[PathBuf]) -> Option<std::process::Output> {
    let Some(venv) = std::env::var_os("STOWAGE_TEST_VENV") else {
        return infrastructure_missing("the test venv's kubernetes-validate (STOWAGE_TEST_VENV)");
    };
    let output = Command::new(Path::new(&venv).join("bin/kubernetes-validate"))
        .args(["--strict", "--kubernetes-version", version])
        .args(files)
        .output()
        .expect("kubernetes-validate runs (tests/servers/requirements.txt installs it)");
    Some(output)
}

#[test]
fn the_manifests_pass_the_kubernetes_schemas_of_the_oldest_release_they_need() {
    // backoffLimitPerIndex is in batch/v1 from Kubernetes 1.29 on.
    let files: Vec<PathBuf> = ["configmap.yaml", "job.yaml", "secret.yaml"]
        .iter()
        .map(|name| manifests().join(name))
        .collect();
    let Some(output) = schema_check("1.29.0", &files) else {
        return;
    };
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // The check can fail: a misspelt field and a count that is not a number.
    let broken = tempfile::tempdir().unwrap();
    let job = std::fs::read_to_string(manifests().join("job.yaml")).unwrap();
    let job = job
        .replace("completionMode:", "completionMod:")
        .replace("parallelism: 4", "parallelism: four");
    let broken_job = broken.path().join("job.yaml");
    std::fs::write(&broken_job, job).unwrap();
    let output = schema_check("1.29.0", &[broken_job]).unwrap();
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("parallelism"), "{said}");
}
