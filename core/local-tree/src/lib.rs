//! # stowage-local-tree — a local directory seen as a bucket
//!
//! Regular files keyed by their `/`-separated path relative to a root,
//! their MD5s, keys turned back into safe relative paths, and atomic
//! writes — what the host and the plugins both do with local files, written
//! once. It knows nothing of the plugin interface: every failure is a
//! [`std::io::Error`] whose message names the path (`cannot read
//! /srv/a.txt: Permission denied (os error 13)`), and each side turns it
//! into its own errors.
//!
//! The kinds of those errors carry their meaning: `NotFound` (a missing
//! file; a missing root of a walk, see [`is_missing_root`]),
//! `PermissionDenied`, `InvalidInput` (a key that could leave the root, see
//! [`key_to_relative_path`]), `InvalidData` (a file name that is not
//! UTF-8).

use std::error::Error;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};

mod key_order;

pub use key_order::KeyOrderWalk;

/// Files whose name ends with this are unfinished writes (see
/// [`write_atomically`]) and are not objects. They are named
/// `<file>.<n>.<pid of the writer>.<suffix>`; one whose writer is gone (a
/// run killed mid-write) is removed by the next walk of its tree.
pub const PARTIAL_SUFFIX: &str = ".stowage-partial";

/// One regular file below a root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalFile {
    /// Path relative to the root, `/`-separated.
    pub key: String,
    /// Absolute (or root-joined) path of the file.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
}

/// Every regular file below `root`, sorted by key. Symbolic links and
/// unfinished writes are left out (and those abandoned by a process that
/// is gone removed, see [`PARTIAL_SUFFIX`]). A missing `root` is a
/// `NotFound` error for which [`is_missing_root`] holds.
pub fn walk(root: &Path) -> io::Result<Vec<LocalFile>> {
    let mut files = Vec::new();
    walk_each(root, |file| {
        files.push(file);
        Ok(())
    })?;
    files.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(files)
}

/// The files of [`walk`], handed to `on_file` one at a time in directory
/// order (not sorted), holding none of them: for a tree too large to list
/// in memory twice over.
pub fn walk_each(
    root: &Path,
    mut on_file: impl FnMut(LocalFile) -> io::Result<()>,
) -> io::Result<()> {
    if !root.is_dir() {
        return Err(missing_root(root));
    }
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let entry = entry.map_err(|e| with_path("cannot read directory", root, e.into()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        if name.ends_with(PARTIAL_SUFFIX) {
            remove_if_abandoned(entry.path(), &name);
            continue;
        }
        let relative = entry
            .path()
            .strip_prefix(root)
            .expect("walkdir yields paths below its root");
        let key = relative_path_to_key(relative).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("file name is not valid UTF-8: {}", entry.path().display()),
            )
        })?;
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            // Removed since its directory was read: not there any more.
            Err(e) if e.io_error().map(io::Error::kind) == Some(io::ErrorKind::NotFound) => {
                continue
            }
            Err(e) => return Err(with_path("cannot stat", entry.path(), e.into())),
        };
        on_file(LocalFile {
            key,
            path: entry.path().to_path_buf(),
            size: meta.len(),
            mtime: mtime_seconds(&meta),
        })?;
    }
    Ok(())
}

/// The file `key` names below `root` as [`walk`] would find it, or `None`
/// where the walk would find none: nothing there, a directory, a symbolic
/// link, an unfinished write. An invalid key is an `InvalidInput` error.
pub fn stat_file(root: &Path, key: &str) -> io::Result<Option<LocalFile>> {
    let path = root.join(key_to_relative_path(key)?);
    if key.ends_with(PARTIAL_SUFFIX) {
        return Ok(None);
    }
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        // A file where the key wants a directory ("a/b" when "a" is a file).
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Ok(None),
        Err(e) => return Err(with_path("cannot stat", &path, e)),
    };
    if !meta.file_type().is_file() {
        return Ok(None);
    }
    Ok(Some(LocalFile {
        key: key.to_string(),
        path,
        size: meta.len(),
        mtime: mtime_seconds(&meta),
    }))
}

/// A file's modification time in whole seconds since the Unix epoch (0 when
/// the platform cannot tell).
fn mtime_seconds(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

/// Whether `error` says that the root of a [`walk`] does not exist — not
/// that a file below it vanished during the walk, which is `NotFound` too.
pub fn is_missing_root(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<MissingRoot>())
}

/// The error of a walk whose root does not exist.
#[derive(Debug)]
struct MissingRoot(PathBuf);

/// The `NotFound` error of a walk of `root`, which does not exist.
fn missing_root(root: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, MissingRoot(root.to_path_buf()))
}

impl fmt::Display for MissingRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "directory {} does not exist", self.0.display())
    }
}

impl Error for MissingRoot {}

/// Removes the unfinished writes below `root` whose writer is gone (see
/// [`PARTIAL_SUFFIX`]), for a tree nothing walks (a staging directory).
/// Those of live processes are left alone; a missing `root` holds none.
pub fn remove_abandoned_partials(root: &Path) {
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy();
        if entry.file_type().is_file() && name.ends_with(PARTIAL_SUFFIX) {
            remove_if_abandoned(entry.path(), &name);
        }
    }
}

/// Removes the partial file `path` (named `name`) if the process that
/// wrote it is gone: no process has its pid, or the one that has it started
/// after the file was last written (a pid used again, as in a container
/// restarted with the same pids). Best effort: one that cannot be removed
/// stays, still skipped by every walk.
fn remove_if_abandoned(path: &Path, name: &str) {
    let writer = name
        .strip_suffix(PARTIAL_SUFFIX)
        .and_then(|stem| stem.rsplit_once('.'))
        .and_then(|(_, pid)| pid.parse::<i32>().ok());
    let written = path.symlink_metadata().and_then(|m| m.modified());
    if let (Some(writer), Ok(written)) = (writer, written) {
        if writer_is_gone(writer, written) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Whether process `pid` cannot have written a file last modified at
/// `written`: it does not exist, or it started later.
fn writer_is_gone(pid: i32, written: SystemTime) -> bool {
    let Ok(process) = procfs::process::Process::new(pid) else {
        return true;
    };
    let started = process
        .stat()
        .ok()
        .zip(procfs::boot_time_secs().ok())
        .map(|(stat, boot)| {
            let since_boot =
                Duration::from_secs_f64(stat.starttime as f64 / procfs::ticks_per_second() as f64);
            UNIX_EPOCH + Duration::from_secs(boot) + since_boot
        });
    // The boot time has whole seconds only.
    started.is_some_and(|started| started > written + Duration::from_secs(2))
}

fn relative_path_to_key(relative: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect();
    parts.map(|p| p.join("/"))
}

/// Lowercase hex MD5 of a file's content, read in 64 KiB blocks.
pub fn md5_file(path: &Path) -> io::Result<String> {
    Ok(hex(&md5_file_digest(path)?))
}

/// The MD5 of a file's content as its 16 bytes (see [`md5_file`]).
pub fn md5_file_digest(path: &Path) -> io::Result<[u8; 16]> {
    let mut file = File::open(path).map_err(|e| with_path("cannot open", path, e))?;
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|e| with_path("cannot read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.finalize().into())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The relative path a key maps to, refusing anything that could leave the
/// root (an `InvalidInput` error): empty keys, absolute keys, `.` and `..`
/// segments, empty segments.
pub fn key_to_relative_path(key: &str) -> io::Result<PathBuf> {
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unsafe object key {key:?}: {why}"),
        )
    };
    if key.is_empty() {
        return Err(bad("empty"));
    }
    if key.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    let mut path = PathBuf::new();
    for segment in key.split('/') {
        match segment {
            "" => return Err(bad("empty path segment or leading '/'")),
            "." | ".." => return Err(bad("'.' or '..' segment")),
            _ => path.push(segment),
        }
    }
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(bad("not a plain relative path"));
    }
    Ok(path)
}

/// Writes `target` by filling a sibling partial file with `fill` and renaming
/// it into place, so a crash never leaves a half-written object under its
/// real name. Parent directories are created.
pub fn write_atomically(
    target: &Path,
    fill: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<()> {
    let partial = partial_path(target)?;
    let result = fill(&partial).and_then(|()| std::fs::rename(&partial, target));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(with_path("cannot write", target, e));
    }
    Ok(())
}

/// A partial file next to `target`, its parent directory created:
/// `<name>.<n>.<pid>.stowage-partial`, where `n` counts this process's
/// partial files, so that two threads writing one target at once never
/// share one, and the pid comes last, for [`remove_if_abandoned`].
fn partial_path(target: &Path) -> io::Result<PathBuf> {
    static PARTIALS: AtomicU64 = AtomicU64::new(0);
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| with_path("cannot create directory", parent, e))?;
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(format!(
        ".{}.{}{PARTIAL_SUFFIX}",
        PARTIALS.fetch_add(1, Ordering::Relaxed),
        std::process::id()
    ));
    Ok(parent.join(name))
}

/// Writes `bytes` to `target` only if no file has that name, atomically:
/// the bytes go into a partial file first, which is then hard-linked to
/// `target`. `link(2)` fails when the name exists (the `O_EXCL` of a
/// filesystem, and atomic on NFS too), so of several writers racing for one
/// name exactly one gets `Ok(true)`, and the file appears whole or not at
/// all. `Ok(false)`: the name was taken. Parent directories are created.
pub fn create_new_atomically(target: &Path, bytes: &[u8]) -> io::Result<bool> {
    let partial = partial_path(target)?;
    let linked =
        std::fs::write(&partial, bytes).and_then(|()| std::fs::hard_link(&partial, target));
    let _ = std::fs::remove_file(&partial);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(with_path("cannot create", target, e)),
    }
}

/// Removes `file`, then each parent directory up to (not including) `root`
/// that became empty, as deleting the last object of a "folder" would.
pub fn remove_file_and_empty_parents(root: &Path, file: &Path) -> io::Result<()> {
    match std::fs::remove_file(file) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(with_path("cannot delete", file, e)),
    }
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}

/// `error`, of the same kind, with what was done to which path in front of
/// its message: `cannot read /srv/a.txt: Permission denied (os error 13)`.
pub fn with_path(what: &str, path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{what} {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_escape_the_root_are_refused() {
        for key in ["", "/etc/passwd", "a/../b", "./a", "a//b", "a/"] {
            assert!(key_to_relative_path(key).is_err(), "{key:?} was accepted");
        }
        assert_eq!(
            key_to_relative_path("dir/sub dir/ü + 'x'#%.txt").unwrap(),
            PathBuf::from("dir/sub dir/ü + 'x'#%.txt")
        );
    }

    #[test]
    fn errors_keep_their_kind_and_name_the_path() {
        let root = tempfile::tempdir().unwrap();
        let missing = root.path().join("missing");
        let err = walk(&missing).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(is_missing_root(&err));
        assert_eq!(
            err.to_string(),
            format!("directory {} does not exist", missing.display())
        );
        let err = md5_file(&missing).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(!is_missing_root(&err));
        assert!(
            err.to_string()
                .starts_with(&format!("cannot open {}: ", missing.display())),
            "{err}"
        );
        let err = key_to_relative_path("a/../b").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            "unsafe object key \"a/../b\": '.' or '..' segment"
        );
    }

    #[test]
    fn walk_lists_files_with_sizes_and_skips_partial_writes() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("a/b")).unwrap();
        std::fs::write(root.path().join("a/b/c.txt"), b"hello").unwrap();
        std::fs::write(root.path().join("top"), b"").unwrap();
        std::fs::write(root.path().join(format!("x{PARTIAL_SUFFIX}")), b"half").unwrap();
        let files = walk(root.path()).unwrap();
        let keys: Vec<_> = files.iter().map(|f| (f.key.as_str(), f.size)).collect();
        assert_eq!(keys, [("a/b/c.txt", 5), ("top", 0)]);
        assert_eq!(
            md5_file(&files[0].path).unwrap(),
            "5d41402abc4b2a76b9719d911017c592"
        );
    }

    /// Writes `<file>.<pid>.stowage-partial` from a shell that is then
    /// killed mid-write, as a run killed by kill -9 leaves it.
    fn partial_of_a_killed_writer(file: &Path) -> PathBuf {
        let status = std::process::Command::new("sh")
            .args([
                "-c",
                "echo half > \"$1.$$.stowage-partial\"; echo $$ > \"$1.pid\"; kill -9 $$",
            ])
            .arg("sh")
            .arg(file)
            .status()
            .unwrap();
        assert!(!status.success());
        let with = |suffix: &str| {
            let mut name = file.as_os_str().to_os_string();
            name.push(suffix);
            PathBuf::from(name)
        };
        let pid = std::fs::read_to_string(with(".pid")).unwrap();
        std::fs::remove_file(with(".pid")).unwrap();
        with(&format!(".{}{PARTIAL_SUFFIX}", pid.trim()))
    }

    #[test]
    fn a_walk_removes_partial_writes_whose_writer_is_gone_and_keeps_live_ones() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("a")).unwrap();
        let killed = partial_of_a_killed_writer(&root.path().join("a/x"));
        let live = root
            .path()
            .join(format!("y.{}{PARTIAL_SUFFIX}", std::process::id()));
        std::fs::write(&live, b"being written").unwrap();
        // Our pid, but written a day before this process started: a pid
        // used again (a container restarted).
        let reused = root
            .path()
            .join(format!("z.{}{PARTIAL_SUFFIX}", std::process::id()));
        let file = File::create(&reused).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(86_400))
            .unwrap();
        std::fs::write(root.path().join("a/kept"), b"object").unwrap();

        let keys: Vec<_> = walk(root.path())
            .unwrap()
            .into_iter()
            .map(|f| f.key)
            .collect();
        assert_eq!(keys, ["a/kept"]);
        assert!(!killed.exists(), "{} was left", killed.display());
        assert!(!reused.exists(), "{} was left", reused.display());
        assert!(live.exists(), "a live process's partial write was removed");
    }

    #[test]
    fn abandoned_partial_writes_are_removed_from_a_tree_nothing_walks() {
        let root = tempfile::tempdir().unwrap();
        let killed = partial_of_a_killed_writer(&root.path().join("archive.tar"));
        remove_abandoned_partials(root.path());
        assert!(!killed.exists());
        remove_abandoned_partials(&root.path().join("missing"));
    }

    #[test]
    fn removing_the_last_file_removes_its_empty_folders_but_not_the_root() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("a/b/c");
        write_atomically(&file, |p| std::fs::write(p, b"x")).unwrap();
        remove_file_and_empty_parents(root.path(), &file).unwrap();
        assert!(!root.path().join("a").exists());
        assert!(root.path().exists());
    }

    #[test]
    fn only_the_first_of_racing_creates_wins_and_its_content_is_whole() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("d/lock");
        let winners: Vec<usize> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..8)
                .map(|i| {
                    let target = &target;
                    scope.spawn(move || {
                        create_new_atomically(target, format!("writer {i}").as_bytes()).unwrap()
                    })
                })
                .collect();
            racers
                .into_iter()
                .enumerate()
                .filter_map(|(i, racer)| racer.join().unwrap().then_some(i))
                .collect()
        });
        assert_eq!(winners.len(), 1, "{winners:?}");
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            format!("writer {}", winners[0])
        );
        let names = std::fs::read_dir(root.path().join("d")).unwrap().count();
        assert_eq!(names, 1, "no partial file is left");
    }

    #[test]
    fn two_writes_of_one_target_never_share_a_partial_file_and_name_their_writer_last() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("t.bin");
        let (a, b) = (
            partial_path(&target).unwrap(),
            partial_path(&target).unwrap(),
        );
        assert_ne!(a, b);
        let pid_last = format!(".{}{PARTIAL_SUFFIX}", std::process::id());
        for partial in [a, b] {
            let name = partial.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name.starts_with("t.bin.") && name.ends_with(&pid_last),
                "{name}"
            );
        }
    }
}
