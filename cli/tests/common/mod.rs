//! What the `stowage` binary tests share: running it as a user does, and a
//! small instance on the fs plugin.

#![allow(dead_code)] // each test binary uses its own part of this

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The directory `cargo test` builds plugin libraries into.
pub fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().to_path_buf()
}

/// The repository, whose plugins.toml maps `file://` to the fs plugin.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `stowage ARGS` in `cwd`, with no plugins file from the user's home and
/// stdin not a terminal.
pub fn stowage(cwd: &Path, args: &[&str]) -> Output {
    stowage_with_plugin_path(cwd, args, &plugin_dir())
}

/// `stowage ARGS` in `cwd` (whose plugins.toml names libraries by path,
/// see [`plugins_file`]) with no drop-in plugins: exactly the plugins of
/// that file are loaded.
pub fn stowage_without_drop_ins(cwd: &Path, args: &[&str]) -> Output {
    let empty = tempfile::tempdir().unwrap();
    stowage_with_plugin_path(cwd, args, empty.path())
}

/// A directory holding a `plugins.toml` of `text`, in which `{lib:NAME}`
/// stands for the path of the plugin library `NAME` built by `cargo test`.
pub fn plugins_file(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut text = text.to_string();
    while let Some(start) = text.find("{lib:") {
        let end = start + text[start..].find('}').unwrap();
        let library = stowage_conformance::built_library(&text[start + 5..end]);
        text.replace_range(start..=end, &format!("{:?}", library.display().to_string()));
    }
    std::fs::write(dir.path().join("plugins.toml"), text).unwrap();
    dir
}

fn stowage_with_plugin_path(cwd: &Path, args: &[&str], plugin_path: &Path) -> Output {
    let home = tempfile::tempdir().unwrap();
    stowage_command(cwd, args, plugin_path, home.path())
        .output()
        .unwrap()
}

/// The command `stowage ARGS` in `cwd`, loading plugins from `plugins.toml`
/// there and drop-ins from `plugin_path`, with `home` as its home.
pub fn stowage_command(cwd: &Path, args: &[&str], plugin_path: &Path, home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stowage"));
    command
        .args(args)
        .current_dir(cwd)
        .env("STOWAGE_PLUGIN_PATH", plugin_path)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home)
        .env_remove("STOWAGE_PLUGINS")
        .stdin(std::process::Stdio::null());
    command
}

/// `stowage ARGS` with the `stowage.toml` and `plugins.toml` in `dir`,
/// plugins built by `cargo test`, and no input.
pub fn stowage_configured_in(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stowage"));
    command
        .args(args)
        .arg("--config")
        .arg(dir.join("stowage.toml"))
        .arg("--plugins")
        .arg(dir.join("plugins.toml"))
        .env("STOWAGE_PLUGIN_PATH", plugin_dir())
        .stdin(std::process::Stdio::null());
    command
}

/// Runs `command` with its standard output closed before it writes, as
/// when the reader of `stowage ... | head -1` has already gone away.
pub fn output_with_stdout_closed(mut command: Command) -> Output {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

/// Its standard output.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Its standard error.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One component, `uploads`, on the fs plugin: the buckets are directories
/// below `buckets/`, and a `stowage.toml` names them.
pub struct FsInstance {
    /// Holds everything.
    pub work: tempfile::TempDir,
}

impl FsInstance {
    /// An instance whose bucket holds `a.txt`; `destination` is the backup
    /// destination as written in stowage.toml (a directory or a URL),
    /// `{work}` standing for the instance's directory.
    pub fn new(destination: &str) -> FsInstance {
        let work = tempfile::tempdir().unwrap();
        let root = work.path().display().to_string();
        let instance = FsInstance { work };
        std::fs::create_dir_all(instance.bucket()).unwrap();
        std::fs::write(instance.bucket().join("a.txt"), b"backed up").unwrap();
        std::fs::write(
            instance.config(),
            format!(
                "label = \"stowage_gitlab\"\nbackup_destination = {:?}\ntmp_bucket = \"file://{root}/buckets/tmp\"\nstaging_dir = \"{root}/staging\"\n[components.uploads]\nbucket = \"file://{}\"\n",
                destination.replace("{work}", &root),
                instance.bucket().display()
            ),
        )
        .unwrap();
        instance
    }

    /// The instance's directory.
    pub fn path(&self) -> &Path {
        self.work.path()
    }

    /// The `uploads` bucket's directory.
    pub fn bucket(&self) -> PathBuf {
        self.path().join("buckets/uploads")
    }

    /// The tmp bucket's directory.
    pub fn tmp(&self) -> PathBuf {
        self.path().join("buckets/tmp")
    }

    /// Its stowage.toml.
    pub fn config(&self) -> PathBuf {
        self.path().join("stowage.toml")
    }

    /// `stowage backup --json`, returning the backup's timestamp.
    pub fn backup(&self, extra: &[&str]) -> String {
        let config = self.config();
        let args = [
            &["backup", "--config", config.to_str().unwrap(), "--json"],
            extra,
        ]
        .concat();
        let out = stowage(&repo_root(), &args);
        assert!(out.status.success(), "{}", stderr(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        report["information"]["created_at"].to_string()
    }

    /// `stowage ARGS --config <its stowage.toml>`.
    pub fn run(&self, args: &[&str]) -> Output {
        let config = self.config();
        let args = [args, &["--config", config.to_str().unwrap()]].concat();
        stowage(&repo_root(), &args)
    }
}

/// The instance on the S3 test server that the crash and interrupt tests share.
pub mod s3;
