//! `aws s3 sync` as the sync driver runs it, and the way back from its
//! output lines to keys.
//!
//! aws prints one line per object, the same in a dry run after a
//! `(dryrun) ` prefix:
//!
//! ```text
//! upload: staging/d d/it's.txt to s3://bkt/p/d d/it's.txt
//! download: s3://bkt/p/a.txt to staging/a.txt
//! copy: s3://bkt/p/a.txt to s3://other/snap/a.txt
//! delete: s3://bkt/p/old.txt
//! ```
//!
//! Nothing is quoted or escaped, and keys may contain ` to `. Bucket sides
//! are printed as `s3://bucket/` and the full key, so they start with the
//! sync root. Local sides are printed *relative to aws's working directory*
//! (`os.path.relpath` of the file's directory, then the file name: `./a.txt`
//! for a file right in it), whatever form the root was given in. A line is
//! read by trying each ` to ` as the separator and keeping the split whose
//! two sides name the same key below their roots.

use std::ffi::OsString;
use std::path::PathBuf;

use stowage_local_tree::PARTIAL_SUFFIX;
use stowage_plugin_api::{
    ActionKind, CompareMode, ErrorKind, Location, PluginError, SyncAction, SyncOptions,
};
use stowage_plugin_support::paths::sync_root;
use stowage_plugin_support::sync_driver::SyncCommand;

use crate::excludes::exclude_patterns;

/// `aws s3 sync` for one sync call.
pub struct AwsSync {
    /// aws's working directory (the plugin's own, which the child inherits),
    /// as normalised path segments: aws prints local paths relative to it.
    cwd: Vec<String>,
}

impl AwsSync {
    /// A sync command for aws running in this process's working directory.
    pub fn new() -> AwsSync {
        let cwd = std::env::current_dir()
            .map(|dir| dir.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "/".to_string());
        AwsSync::in_directory(&cwd)
    }

    /// A sync command for aws running in `cwd` (an absolute path).
    pub fn in_directory(cwd: &str) -> AwsSync {
        AwsSync {
            cwd: normalised(&[], cwd),
        }
    }

    /// How aws names the objects of `location` in its output.
    fn side(&self, location: &Location) -> Side {
        match location {
            Location::Local { path } => Side::Local(normalised(&self.cwd, path)),
            Location::Remote { .. } => Side::Remote(sync_root(location)),
        }
    }

    /// The action one line of aws output reports, if any; `source` and
    /// `destination` are the two sides of the sync (or of a recursive copy).
    pub fn action(
        &self,
        line: &str,
        source: &Location,
        destination: &Location,
    ) -> Option<SyncAction> {
        let line = line.strip_prefix("(dryrun) ").unwrap_or(line);
        let (verb, rest) = line.split_once(": ")?;
        let (from, to) = (self.side(source), self.side(destination));
        let (kind, key) = match verb {
            "upload" => (ActionKind::Upload, self.transfer_key(rest, &from, &to)?),
            "download" => (ActionKind::Download, self.transfer_key(rest, &from, &to)?),
            "copy" => (ActionKind::Copy, self.transfer_key(rest, &from, &to)?),
            "delete" => (ActionKind::Delete, to.key(rest, &self.cwd)?),
            _ => return None,
        };
        // aws prints no sizes: the local copy has it, once it exists.
        let local_file = match kind {
            ActionKind::Upload => from.file(&key),
            ActionKind::Download => to.file(&key),
            _ => None,
        };
        let bytes = local_file
            .and_then(|file| file.metadata().ok())
            .map_or(0, |meta| meta.len());
        Some(SyncAction { kind, key, bytes })
    }

    /// The key of `SRC to DST`: the split at a ` to ` whose two sides name
    /// the same key.
    fn transfer_key(&self, text: &str, from: &Side, to: &Side) -> Option<String> {
        text.match_indices(" to ").find_map(|(at, separator)| {
            let key = from.key(&text[..at], &self.cwd)?;
            (to.key(&text[at + separator.len()..], &self.cwd)? == key).then_some(key)
        })
    }
}

/// One side of a sync as aws prints it.
enum Side {
    /// A bucket location: its sync root, `s3://bucket/prefix/`.
    Remote(String),
    /// A directory: its absolute, normalised path segments.
    Local(Vec<String>),
}

impl Side {
    /// The key `printed` names below this side, if it is below it.
    fn key(&self, printed: &str, cwd: &[String]) -> Option<String> {
        let key = match self {
            Side::Remote(root) => printed.strip_prefix(root.as_str())?.to_string(),
            Side::Local(root) => {
                // Joining aws's relative path to its working directory and
                // normalising undoes `os.path.relpath` exactly.
                let path = normalised(cwd, printed);
                path.strip_prefix(root.as_slice())?.join("/")
            }
        };
        Some(key).filter(|k| !k.is_empty())
    }

    /// The local file of `key`, for a local side.
    fn file(&self, key: &str) -> Option<PathBuf> {
        match self {
            Side::Local(root) => Some(PathBuf::from(format!("/{}/{key}", root.join("/")))),
            Side::Remote(_) => None,
        }
    }
}

/// The segments of `path` made absolute against `base` and normalised the
/// way Python's `os.path.abspath` does: no empty or `.` segments, `..`
/// removing the one before (never going above `/`). Symbolic links are not
/// resolved, as Python does not.
fn normalised(base: &[String], path: &str) -> Vec<String> {
    let mut segments = if path.starts_with('/') {
        Vec::new()
    } else {
        base.to_vec()
    };
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            name => segments.push(name.to_string()),
        }
    }
    segments
}

impl SyncCommand for AwsSync {
    // aws deletes while it still transfers; the driver makes it two passes.
    const DELETES_AFTER_TRANSFERS: bool = false;

    fn arguments(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        delete: bool,
        dry_run: bool,
    ) -> Result<Vec<OsString>, PluginError> {
        if !options.excludes.is_empty() {
            self.refuse_class_in_root(source)?;
            self.refuse_class_in_root(destination)?;
        }
        // A planned sync's transfers are every source file: `aws s3 sync`
        // would skip a same-size file older than its object, `cp` copies
        // them all. Deletes (the driver's second pass) stay with sync.
        let copies_all = options.compare == CompareMode::Planned && !delete;
        let mut args: Vec<OsString> = vec![
            "s3".into(),
            if copies_all { "cp" } else { "sync" }.into(),
            sync_root(source).into(),
            sync_root(destination).into(),
            "--no-progress".into(),
            // The host takes symbolic links for no objects at all; aws would
            // follow them (and warn about broken ones).
            "--no-follow-symlinks".into(),
            // Unfinished downloads of the host are not objects either.
            format!("--exclude=*{PARTIAL_SUFFIX}").into(),
        ];
        if copies_all {
            args.push("--recursive".into());
        }
        if delete {
            args.push("--delete".into());
        }
        if dry_run {
            args.push("--dryrun".into());
        }
        match options.compare {
            _ if copies_all => {}
            CompareMode::Size => args.push("--size-only".into()),
            // Closest to comparing content that aws has, and only for
            // downloads: a same-size file comes down unless its time matches.
            // (A planned sync's delete pass compares as a checksum one.)
            CompareMode::Checksum | CompareMode::Planned
                if matches!(destination, Location::Local { .. }) =>
            {
                args.push("--exact-timestamps".into())
            }
            _ => {}
        }
        for glob in &options.excludes {
            // `=` keeps a pattern starting with `-` from reading as an option.
            for pattern in exclude_patterns(glob) {
                args.push(format!("--exclude={pattern}").into());
            }
        }
        Ok(args)
    }

    fn parse_action(
        &self,
        line: &str,
        source: &Location,
        destination: &Location,
    ) -> Option<SyncAction> {
        self.action(line, source, destination)
    }
}

impl AwsSync {
    /// An error when aws's excludes could not work below `location`: aws
    /// puts the root in front of each pattern, so a `[` in the root would be
    /// read as a character class, the patterns would match nothing, and
    /// excluded objects would be transferred or deleted.
    fn refuse_class_in_root(&self, location: &Location) -> Result<(), PluginError> {
        let root = match self.side(location) {
            Side::Local(segments) => format!("/{}", segments.join("/")),
            Side::Remote(root) => root,
        };
        if root.contains('[') {
            return Err(PluginError::new(
                ErrorKind::InvalidInput,
                format!(
                    "aws cannot apply excludes below {root}: it would read the `[` in that path as a pattern; use a location without `[`"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sync: &AwsSync, line: &str, from: &str, to: &str) -> Option<(ActionKind, String)> {
        sync.action(line, &Location::parse(from), &Location::parse(to))
            .map(|a| (a.kind, a.key.to_string()))
    }

    #[test]
    fn uploads_are_read_relative_to_the_working_directory() {
        let sync = AwsSync::in_directory("/tmp/ax");
        let cases = [
            // Below the working directory, given absolute or relative.
            (
                "upload: src/d d/it's a to b.txt to s3://bkt/p/d d/it's a to b.txt",
                "/tmp/ax/src",
                "d d/it's a to b.txt",
            ),
            (
                "upload: src/new.txt to s3://bkt/p/new.txt",
                "src/",
                "new.txt",
            ),
            // Elsewhere.
            (
                "upload: ../other/staging/q\"uote.txt to s3://bkt/p/q\"uote.txt",
                "/tmp/other/staging",
                "q\"uote.txt",
            ),
            // The working directory itself: `./` before top-level files only.
            (
                "(dryrun) upload: ./a.txt to s3://bkt/p/a.txt",
                "/tmp/ax",
                "a.txt",
            ),
            (
                "upload: sub/b.txt to s3://bkt/p/sub/b.txt",
                "/tmp/ax/.",
                "sub/b.txt",
            ),
        ];
        for (line, root, key) in cases {
            assert_eq!(
                parse(&sync, line, root, "s3://bkt/p"),
                Some((ActionKind::Upload, key.to_string())),
                "{line}"
            );
        }
    }

    #[test]
    fn keys_containing_the_separator_and_the_root_are_split_right() {
        let sync = AwsSync::in_directory("/");
        // A local file's key cannot hold `//`, so not a bucket's root either.
        let key = "a to srv/st/a to b";
        let line = format!("upload: srv/st/{key} to s3://bkt/p/{key}");
        assert_eq!(
            parse(&sync, &line, "/srv/st", "s3://bkt/p"),
            Some((ActionKind::Upload, key.to_string()))
        );
        let line = format!("download: s3://bkt/p/{key} to srv/st/{key}");
        assert_eq!(
            parse(&sync, &line, "s3://bkt/p", "/srv/st"),
            Some((ActionKind::Download, key.to_string()))
        );
        let key = "a to s3://other/a to b";
        let line = format!("copy: s3://bkt/p/{key} to s3://other/{key}");
        assert_eq!(
            parse(&sync, &line, "s3://bkt/p", "s3://other"),
            Some((ActionKind::Copy, key.to_string()))
        );
    }

    #[test]
    fn deletes_name_the_destination() {
        let sync = AwsSync::in_directory("/");
        assert_eq!(
            parse(
                &sync,
                "(dryrun) delete: s3://bkt/p/old x",
                "/srv/st",
                "s3://bkt/p"
            ),
            Some((ActionKind::Delete, "old x".to_string()))
        );
        assert_eq!(
            parse(
                &sync,
                "delete: tmp/ax/down/extra",
                "s3://bkt",
                "/tmp/ax/down"
            ),
            Some((ActionKind::Delete, "extra".to_string()))
        );
    }

    #[test]
    fn other_lines_are_no_actions() {
        let sync = AwsSync::in_directory("/");
        for line in [
            "upload failed: srv/st/a to s3://bkt/a An error occurred (AccessDenied)",
            "warning: Skipping file /srv/st/fifo. File is character special device, block special device, FIFO, or socket.",
            "upload: srv/elsewhere/a to s3://bkt/a",
            "delete: s3://other/a",
            "Completed 1 file(s) with 1 file(s) remaining",
        ] {
            assert_eq!(parse(&sync, line, "/srv/st", "s3://bkt"), None, "{line}");
        }
    }

    #[test]
    fn uploads_report_the_local_size() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"12345").unwrap();
        let root = dir.path().to_string_lossy().into_owned();
        let sync = AwsSync::in_directory("/");
        let line = format!("upload: {}/f to s3://bkt/f", root.trim_start_matches('/'));
        let action = sync
            .action(&line, &Location::parse(&root), &Location::parse("s3://bkt"))
            .unwrap();
        assert_eq!((action.key.as_str(), action.bytes), ("f", 5));
    }

    #[test]
    fn arguments_carry_the_options() {
        let sync = AwsSync::in_directory("/");
        let options = SyncOptions {
            excludes: vec!["tmp/*".into()],
            compare: CompareMode::Size,
            ..SyncOptions::default()
        };
        let arguments = |from: &str, to: &str| {
            let args = sync.arguments(
                &Location::parse(from),
                &Location::parse(to),
                &options,
                true,
                true,
            )?;
            Ok::<_, PluginError>(
                args.iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect::<Vec<_>>(),
            )
        };
        let expected = [
            "s3",
            "sync",
            "/srv/st/",
            "s3://b/p/",
            "--no-progress",
            "--no-follow-symlinks",
            "--exclude=*.stowage-partial",
            "--delete",
            "--dryrun",
            "--size-only",
            "--exclude=tmp/*",
            "--exclude=tmp/*/*",
        ];
        assert_eq!(arguments("/srv/st", "s3://b/p").unwrap(), expected);
        let err = arguments("/srv/x[1]", "s3://b").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
    }

    #[test]
    fn a_planned_transfer_pass_copies_every_file_and_its_delete_pass_syncs() {
        let sync = AwsSync::in_directory("/");
        let planned = SyncOptions {
            compare: CompareMode::Planned,
            ..SyncOptions::default()
        };
        let arguments = |delete: bool| {
            let args = sync
                .arguments(
                    &Location::parse("/srv/st"),
                    &Location::parse("s3://b"),
                    &planned,
                    delete,
                    false,
                )
                .unwrap();
            args.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        let transfers = arguments(false);
        assert_eq!(transfers[..2], ["s3", "cp"]);
        assert!(transfers.contains(&"--recursive".to_string()));
        let deletes = arguments(true);
        assert_eq!(deletes[..2], ["s3", "sync"]);
        assert!(deletes.contains(&"--delete".to_string()));
        assert!(!deletes.contains(&"--recursive".to_string()));
    }
}
