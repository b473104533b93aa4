//! A tool that hangs, and SIGINT or SIGTERM sent to Stowage while a tool
//! runs: one line, the documented exit code, no tool process left, no
//! restore lock left, and a re-run converges. The real `stowage` binary,
//! the real s3cmd behind a wrapper that can hang, the S3 test server, read
//! back with boto3.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::s3::{s3_test_server, Instance};
use stowage_conformance::data::{content, LocalTree};
use stowage_conformance::scratch::{ScratchStore, ScratchStores};
use stowage_conformance::BucketToolStores;

/// The variable that makes the wrapper hang: a run of s3cmd whose
/// arguments contain its value hangs.
const HANG: &str = "STOWAGE_TEST_HANG";

/// The variable that makes a hanging run of the wrapper ignore SIGTERM.
const IGNORE_TERM: &str = "STOWAGE_TEST_IGNORE_TERM";

/// The s3cmd the instance runs: the real one, except that a run whose
/// arguments contain `$STOWAGE_TEST_HANG` waits on a child that never ends,
/// as a tool on a stalled connection does; both ignore SIGTERM when
/// `$STOWAGE_TEST_IGNORE_TERM` is set.
fn wrapper(dir: &std::path::Path, real: &std::path::Path) -> PathBuf {
    let path = dir.join("s3cmd");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nif [ -n \"${{{HANG}:-}}\" ]; then\n  case \"$*\" in *\"${HANG}\"*)\n    if [ -n \"${{{IGNORE_TERM}:-}}\" ]; then trap '' TERM; fi\n    sleep 3600 & wait ;;\n  esac\nfi\nexec {real:?} \"$@\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// An instance whose s3cmd is the wrapper, backed up, then drifted (so a
/// restore snapshots, then uploads).
struct Hanging {
    instance: Instance,
    /// Holds the wrapper, `s3cmd`.
    bin: tempfile::TempDir,
    tmp: Box<dyn ScratchStore>,
    timestamp: String,
    backed_up: BTreeMap<String, String>,
    /// The value of [`HANG`] that hangs the restore's upload sync (its
    /// source is below it); also marks every process the restore starts.
    upload_source: String,
}

impl Hanging {
    /// The instance on the S3 test server; `None` without one (see
    /// [`s3_test_server`]).
    fn on_the_test_server() -> Option<Hanging> {
        let (stores, s3cfg) = s3_test_server()?;
        Some(Hanging::new(&stores, &s3cfg))
    }

    fn new(stores: &BucketToolStores, s3cfg: &str) -> Hanging {
        let tree = LocalTree::new().unwrap();
        for i in 0..6u64 {
            tree.write(&format!("@hashed/{i:02}/file {i}.bin"), &content(i, 3_000))
                .unwrap();
        }
        let bin = tempfile::tempdir().unwrap();
        let venv = std::env::var("STOWAGE_TEST_VENV").unwrap();
        let wrapper = wrapper(bin.path(), &PathBuf::from(venv).join("bin/s3cmd"));
        let instance = Instance::new(stores, s3cfg, &tree, &format!("program = {wrapper:?}\n"));
        let timestamp = instance.backup();
        let backed_up = instance.uploads.contents().unwrap();
        let drift = LocalTree::new().unwrap();
        drift
            .write("@hashed/01/file 1.bin", &content(101, 3_000))
            .unwrap();
        drift.write("added.bin", &content(102, 500)).unwrap();
        instance.uploads.seed(drift.path()).unwrap();
        let upload_source = instance
            .staging()
            .join("restore/extract")
            .to_string_lossy()
            .into_owned();
        Hanging {
            bin,
            tmp: stores.new_store("tmp"),
            instance,
            timestamp,
            backed_up,
            upload_source,
        }
    }

    /// `stowage restore` of the backup.
    fn restore(&self) -> Command {
        self.instance.stowage(&[
            "restore",
            &self.timestamp,
            "--yes",
            "--tmp-bucket",
            &self.tmp.url(),
        ])
    }

    /// The processes (pid, command line) whose environment holds this
    /// instance's [`HANG`] value: the hanging restore and its tools.
    fn marked_processes(&self) -> Vec<(u32, String)> {
        let marker = format!("{HANG}={}", self.upload_source);
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            if environ.split(|b| *b == 0).any(|v| v == marker.as_bytes()) {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                found.push((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")));
            }
        }
        found
    }

    /// Starts `restore` in a process group of its own (as a shell runs a
    /// command) and waits until its upload sync hangs (the wrapper's
    /// `sleep` runs).
    fn start_hanging(&self, mut restore: Command) -> Child {
        let mut child = restore
            .env(HANG, &self.upload_source)
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let hanging = wait_until(Duration::from_secs(60), || {
            self.marked_processes()
                .iter()
                .any(|(_, cmdline)| cmdline.starts_with("sleep"))
                || child.try_wait().unwrap().is_some()
        });
        assert!(
            hanging && child.try_wait().unwrap().is_none(),
            "the restore ended before its upload sync"
        );
        child
    }

    /// No process of the restore is left: Stowage and its tools are gone.
    fn assert_no_process_is_left(&self) {
        assert!(
            wait_until(Duration::from_secs(5), || self
                .marked_processes()
                .is_empty()),
            "processes were left running: {:?}",
            self.marked_processes()
        );
    }

    /// No process of the restore is left, nor its lock.
    fn assert_stopped_cleanly(&self) {
        self.assert_no_process_is_left();
        assert_eq!(
            self.instance.locks(),
            Vec::<String>::new(),
            "the lock was left"
        );
    }

    /// A re-run converges to the backup, takes or leaves no lock, and
    /// leaves no unfinished write in staging.
    fn assert_a_rerun_converges(&self) {
        let rerun = self.restore().output().unwrap();
        assert!(
            rerun.status.success(),
            "the re-run failed: {}",
            String::from_utf8_lossy(&rerun.stderr)
        );
        assert_eq!(self.instance.uploads.contents().unwrap(), self.backed_up);
        assert_eq!(self.instance.locks(), Vec::<String>::new());
        assert_eq!(self.instance.partial_writes(), Vec::<PathBuf>::new());
    }
}

/// Polls `condition` every 50 ms for at most `limit`; whether it held.
fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !condition() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Waits for `child` (at most a minute, then kills it and fails) and
/// returns its status and stderr.
fn finish(mut child: Child) -> (ExitStatus, String) {
    let ended = wait_until(Duration::from_secs(60), || {
        child.try_wait().unwrap().is_some()
    });
    if !ended {
        let _ = child.kill();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        ended,
        "stowage did not end: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Sends `signal` (`TERM`, `INT`) to `target` (a pid, or `-` and a process group).
fn send(signal: &str, target: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), "--", target])
        .status()
        .unwrap();
    assert!(sent.success());
}

#[test]
fn a_tool_that_stalls_is_killed_and_the_restore_fails_in_one_line_releasing_its_lock() {
    let Some(hanging) = Hanging::on_the_test_server() else {
        return;
    };
    let mut restore = hanging.restore();
    // Long enough that no tool run that does answer (a listing, a lock
    // write) stalls this long on a loaded machine.
    restore.env("STOWAGE_STALL_TIMEOUT", "6");
    let (status, stderr) = finish(hanging.start_hanging(restore));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let wrapper = hanging.bin.path().join("s3cmd");
    assert!(
        stderr.starts_with("error: restore failed for uploads; uploads: plugin s3cmd: cannot sync ")
            && stderr.contains(&format!(
                "{} stalled: no output for 6 s during `sync`; killed it (raise stall_timeout of plugin s3cmd in plugins.toml, or STOWAGE_STALL_TIMEOUT)",
                wrapper.display()
            )),
        "{stderr}"
    );
    hanging.assert_stopped_cleanly();
    hanging.assert_a_rerun_converges();
}

/// Sends `signal` while the restore's tool hangs: to the restore's process
/// group (what a terminal's Ctrl-C does), or to its pid (what `kill` does).
fn interrupted_by(signal: &str, to_group: bool, code: i32, name: &str) {
    let Some(hanging) = Hanging::on_the_test_server() else {
        return;
    };
    let restore = hanging.start_hanging(hanging.restore());
    let pid = restore.id();
    send(
        signal,
        &if to_group {
            format!("-{pid}")
        } else {
            pid.to_string()
        },
    );
    let (status, stderr) = finish(restore);
    assert_eq!(status.code(), Some(code), "{stderr}");
    assert_eq!(
        stderr,
        format!("interrupted by {name}: stopped `stowage restore` and its tools (s3cmd); nothing was lost, and running the same command again converges\n")
    );
    hanging.assert_stopped_cleanly();
    hanging.assert_a_rerun_converges();
}

#[test]
fn sigterm_stops_the_tools_releases_the_lock_and_exits_143() {
    interrupted_by("TERM", false, 143, "SIGTERM");
}

#[test]
fn ctrl_c_stops_the_tools_releases_the_lock_and_exits_130() {
    interrupted_by("INT", true, 130, "SIGINT");
}

#[test]
fn a_second_signal_kills_the_tools_and_exits_at_once() {
    let Some(hanging) = Hanging::on_the_test_server() else {
        return;
    };
    let mut restore = hanging.restore();
    // The tool ignores the first signal's SIGTERM, so the run is still
    // waiting for it (until SIGKILL, 3 s later) when the second comes.
    restore.env(IGNORE_TERM, "1");
    let restore = hanging.start_hanging(restore);
    let pid = restore.id().to_string();
    send("TERM", &pid);
    std::thread::sleep(Duration::from_millis(700));
    let second = Instant::now();
    send("TERM", &pid);
    let (status, stderr) = finish(restore);
    assert!(
        second.elapsed() < Duration::from_secs(2),
        "{:?}",
        second.elapsed()
    );
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert_eq!(
        stderr,
        "interrupted again by SIGTERM: exited at once; a restore lock left behind is taken over by the next run on this host (elsewhere: --break-lock), and running the same command again converges\n"
    );
    hanging.assert_no_process_is_left();
    // Its lock is left, and taken over by the re-run: its holder is gone.
    assert_eq!(hanging.instance.locks().len(), 1);
    hanging.assert_a_rerun_converges();
}
