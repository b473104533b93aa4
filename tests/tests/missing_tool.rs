//! With one tool missing from PATH, its plugin reports the problem in one
//! line and the others still work. (Its own test binary: it changes PATH.)

use std::path::Path;

use stowage::plugins_file::PluginsFile;
use stowage::registry::Registry;
use stowage_conformance::infrastructure_missing;
use stowage_plugin_api::ErrorKind;

#[test]
fn a_plugin_whose_tool_is_missing_says_so_and_the_others_work() {
    let venv = std::env::var("STOWAGE_TEST_VENV").ok();
    let Some(venv) = venv.or_else(|| infrastructure_missing("the test venv (STOWAGE_TEST_VENV)"))
    else {
        return;
    };
    // A PATH holding every tool of the venv but aws.
    let bin = tempfile::tempdir().unwrap();
    for tool in ["s3cmd", "gsutil"] {
        std::os::unix::fs::symlink(
            Path::new(&venv).join("bin").join(tool),
            bin.path().join(tool),
        )
        .unwrap();
    }
    std::env::set_var("PATH", format!("{}:/usr/bin:/bin", bin.path().display()));

    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins.toml");
    let s3cfg = std::env::var("STOWAGE_TEST_S3CFG").unwrap();
    let library = |name: &str| deps.join(format!("libstowage_plugin_{name}.so"));
    std::fs::write(
        &plugins,
        format!(
            "[plugins.s3cmd]\nlibrary = {:?}\n[plugins.s3cmd.config]\nconfig_file = {s3cfg:?}\n\
             [plugins.aws]\nlibrary = {:?}\n",
            library("s3cmd"),
            library("aws")
        ),
    )
    .unwrap();
    let registry = Registry::load(&PluginsFile::read(&plugins).unwrap(), false);

    let aws = registry.get("aws").unwrap().provider().check().unwrap_err();
    assert_eq!(aws.kind, ErrorKind::ToolMissing);
    assert!(
        aws.message
            .starts_with("aws not found on PATH: `pip install awscli`"),
        "{}",
        aws.message
    );
    assert!(!aws.message.contains('\n'));

    let s3cmd = registry.get("s3cmd").unwrap().provider().check();
    let version = s3cmd.expect("s3cmd still works").tool_version.unwrap();
    assert!(version.starts_with("2."), "{version}");
}
