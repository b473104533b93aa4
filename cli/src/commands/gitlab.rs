//! `stowage gitlab-backup-utility`: the object-storage part of the GitLab
//! Helm chart's `backup-utility`, with its flags and its environment, done
//! by Stowage (a restore by sync instead of wipe-and-reupload).
//!
//! The database, repositories and CI job logs stay with GitLab's rake
//! tasks. A request that leaves Stowage nothing to do, or a flag only they
//! could honour, is refused in one line (exit code 2) before anything is
//! touched; a request that also names them is done for object storage, and
//! one line on stderr says what is left to GitLab.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use stowage_plugin_api::Location;

use super::backup::print_backup_report;
use super::restore::{plan_viewer, restore_and_report};
use crate::backup::{prune, run_backup, BackupRequest};
use crate::exit::{NotFound, Unsupported};
use crate::gitlab::chart::{ChartEnvironment, LABEL, OBJECT_STORAGE_COMPONENTS, RAKE_COMPONENTS};
use crate::gitlab::tools::{Backend, S3Tool, ToolChoice};
use crate::registry::Registry;
use crate::restore::RestoreRequest;
use crate::store::backup_store::BackupStore;
use crate::store::fetch::ArchiveSource;

/// What GitLab names every backup archive after its backup ID.
const GITLAB_ARCHIVE_SUFFIX: &str = "_gitlab_backup.tar";

/// backup-utility's own flags (CNG's gitlab-toolbox/scripts/bin/backup-utility).
#[derive(Debug, Args)]
pub struct GitlabArgs {
    /// Restore the backup -t or -f names (default: make a backup).
    #[arg(long, conflicts_with = "cleanup")]
    restore: bool,
    /// Only delete old backups (with --maximum-backups); make none.
    #[arg(long)]
    cleanup: bool,
    /// With --restore: the backup ID, the part of the archive's name
    /// before `_gitlab_backup.tar` (`<unix-ts>_<YYYY_MM_DD>_<version>`).
    #[arg(short = 't', long = "timestamp", value_name = "BACKUP_ID")]
    timestamp: Option<String>,
    /// With --restore: the archive at this http(s)://, file:/// or bucket URL.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "URL",
        conflicts_with = "timestamp"
    )]
    file: Option<String>,
    /// Leave this component out: an object-storage one (registry, uploads,
    /// artifacts, lfs, packages, external_diffs, terraform_state, pages,
    /// ci_secure_files), or db, repositories, builds (GitLab's rake tasks
    /// do those anyway). Repeatable; a comma list works too.
    #[arg(long, value_name = "COMPONENT", value_delimiter = ',')]
    skip: Vec<String>,
    /// Where the buckets are: s3 (s3://), gcs (gs://), azure (az://).
    #[arg(long, env = "BACKUP_BACKEND", value_enum, default_value = "s3")]
    backend: Backend,
    /// Which plugin serves s3://: s3cmd (s3cmd), awscli (aws), s5cmd
    /// (objstore, Stowage's native client). Default: plugins.toml's choice.
    #[arg(long, env = "S3_TOOL", value_enum)]
    s3tool: Option<S3Tool>,
    /// s3cmd's config file (the s3cmd plugin's config_file).
    #[arg(long, value_name = "CONFIG")]
    s3config: Option<PathBuf>,
    /// Keep only the newest N of Stowage's archives (label stowage_gitlab)
    /// in the backup bucket after a backup (or with --cleanup).
    #[arg(long, value_name = "N")]
    maximum_backups: Option<usize>,
    /// Compress component tarballs like `gzip --rsyncable`.
    #[arg(long)]
    rsyncable: bool,
    /// Accepted: Stowage's restore here never asks (backup-utility's asks
    /// only in GitLab's database restore).
    #[arg(long)]
    skip_restore_prompt: bool,
    /// The aws plugin's endpoint_url.
    #[arg(long, value_name = "URL")]
    aws_s3_endpoint_url: Option<String>,
    /// The aws plugin's region.
    #[arg(long, value_name = "REGION")]
    aws_region: Option<String>,
    /// Refused: Gitaly's server-side repository backups are GitLab's.
    #[arg(long)]
    repositories_server_side: bool,
    /// Refused: Stowage stores archives in the bucket's default class.
    #[arg(long, value_name = "CLASSNAME")]
    storage_class: Option<String>,
    /// Refused: Stowage's plugins do not upload with a KMS key.
    #[arg(long, value_name = "KEY_ID")]
    aws_kms_key_id: Option<String>,
}

/// What the run does.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    Backup,
    Restore(RestoreTarget),
    Cleanup,
}

/// The archive a restore reads.
#[derive(Debug, PartialEq, Eq)]
enum RestoreTarget {
    /// `-t`: a backup ID in the backup bucket.
    BackupId(String),
    /// `-f`: a URL.
    Url(String),
}

/// Which components the run leaves out.
#[derive(Debug, PartialEq, Eq)]
struct Selection {
    /// Object-storage components skipped.
    skipped: Vec<String>,
    /// GitLab's rake-task components the request did not skip.
    left_to_gitlab: Vec<&'static str>,
}

fn unsupported(message: String) -> anyhow::Error {
    Unsupported(message).into()
}

impl GitlabArgs {
    /// The action asked for, or the one-line refusal of a flag Stowage
    /// does not carry out.
    fn action(&self) -> Result<Action> {
        if self.repositories_server_side {
            return Err(unsupported(
                "--repositories-server-side: repositories are GitLab's (Gitaly server-side backups through backup-utility or gitlab-backup); Stowage does object storage only".into(),
            ));
        }
        if self.storage_class.is_some() {
            return Err(unsupported(
                "--storage-class is not supported: Stowage stores archives in the backup bucket's default storage class".into(),
            ));
        }
        if self.aws_kms_key_id.is_some() {
            return Err(unsupported(
                "--aws-kms-key-id is not supported: Stowage's plugins upload without a KMS key (set the bucket's default encryption instead)".into(),
            ));
        }
        if self.restore {
            return match (&self.timestamp, &self.file) {
                (Some(id), _) => Ok(Action::Restore(RestoreTarget::BackupId(id.clone()))),
                (None, Some(url)) => Ok(Action::Restore(RestoreTarget::Url(url.clone()))),
                (None, None) => Err(unsupported(
                    "--restore needs the backup: -t BACKUP_ID or -f URL".into(),
                )),
            };
        }
        if self.timestamp.is_some() {
            return Err(unsupported(format!(
                "-t names a backup to restore (with --restore); a backup here is named <unix-ts>_<YYYY_MM_DD>_{LABEL}{}",
                crate::archive::name::ARCHIVE_SUFFIX
            )));
        }
        if self.file.is_some() {
            return Err(unsupported(
                "-f names an archive to restore: use it with --restore".into(),
            ));
        }
        Ok(match self.cleanup {
            true => Action::Cleanup,
            false => Action::Backup,
        })
    }

    /// The components `--skip` leaves out; an unknown name, or a request
    /// leaving no object-storage component, is refused in one line.
    fn selection(&self) -> Result<Selection> {
        let known = |name: &str| {
            OBJECT_STORAGE_COMPONENTS.contains(&name) || RAKE_COMPONENTS.contains(&name)
        };
        if let Some(name) = self.skip.iter().find(|name| !known(name)) {
            return Err(unsupported(format!(
                "--skip {name}: no such component; object storage: {}; GitLab's rake tasks: {}",
                OBJECT_STORAGE_COMPONENTS.join(", "),
                RAKE_COMPONENTS.join(", ")
            )));
        }
        let skipped: Vec<String> = OBJECT_STORAGE_COMPONENTS
            .iter()
            .filter(|name| self.skip.iter().any(|s| s == *name))
            .map(|name| name.to_string())
            .collect();
        if skipped.len() == OBJECT_STORAGE_COMPONENTS.len() {
            return Err(unsupported(
                "nothing here for Stowage: every object-storage component is skipped, and db, repositories and builds stay with GitLab's rake tasks (backup-utility, gitlab-backup)".into(),
            ));
        }
        let left_to_gitlab = RAKE_COMPONENTS
            .into_iter()
            .filter(|name| !self.skip.iter().any(|s| s == name))
            .collect();
        Ok(Selection {
            skipped,
            left_to_gitlab,
        })
    }

    fn tools(&self) -> ToolChoice {
        ToolChoice {
            backend: Some(self.backend),
            s3tool: self.s3tool,
            s3config: self.s3config.clone(),
            aws_endpoint_url: self.aws_s3_endpoint_url.clone(),
            aws_region: self.aws_region.clone(),
        }
    }
}

/// Runs backup-utility's request on object storage: checks it, then loads
/// the plugins (`plugins` as `--plugins` says) with the tool choices,
/// builds the settings from the chart's environment and does the action.
pub fn run(plugins: Option<&Path>, args: &GitlabArgs, json: bool, verbose: bool) -> Result<()> {
    let action = args.action()?;
    let selection = args.selection()?;
    let mut file = super::find_plugins_file(plugins)?;
    args.tools().apply(&mut file)?;
    let registry = Registry::load(&file, verbose);
    let settings = ChartEnvironment::from_env().settings(args.backend.scheme());
    settings.remove_abandoned_partials();
    if action != Action::Cleanup && !selection.left_to_gitlab.is_empty() {
        eprintln!(
            "note: {}: not done here; GitLab's rake tasks do them (backup-utility --skip <object components>, or gitlab-backup)",
            selection.left_to_gitlab.join(", ")
        );
    }
    match action {
        Action::Backup => {
            let request = BackupRequest {
                skip: selection.skipped,
                maximum_backups: args.maximum_backups,
                quiet: json,
                rsyncable: args.rsyncable,
                skip_missing_buckets: true,
            };
            print_backup_report(&run_backup(&settings, &registry, &request)?, json)
        }
        Action::Restore(target) => {
            let source = archive_source(&settings.destination, &registry, target)?;
            let request = RestoreRequest {
                skip: selection.skipped,
                yes: true,
                quiet: json,
                plan_viewer: plan_viewer(json, verbose),
                ..RestoreRequest::new(source)
            };
            restore_and_report(&settings, &registry, &request, json)
        }
        Action::Cleanup => cleanup(&settings.destination, &registry, args.maximum_backups, json),
    }
}

/// The archive `target` names. A backup ID is looked up as backup-utility
/// does, `<ID>_gitlab_backup.tar` in the backup bucket (GitLab's archives
/// and this command's alike); failing that, a bare Unix timestamp names
/// the one archive there whose name begins with it.
fn archive_source(
    destination: &Location,
    registry: &Registry,
    target: RestoreTarget,
) -> Result<ArchiveSource> {
    let id = match target {
        RestoreTarget::Url(url) => return Ok(ArchiveSource::File(url)),
        RestoreTarget::BackupId(id) => id,
    };
    let id = id.strip_suffix(GITLAB_ARCHIVE_SUFFIX).unwrap_or(&id);
    let name = format!("{id}{GITLAB_ARCHIVE_SUFFIX}");
    if BackupStore::open(destination, registry)?.contains(&name)? {
        return Ok(ArchiveSource::File(destination.join(&name).to_string()));
    }
    match id.parse::<u64>() {
        Ok(timestamp) if id.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(ArchiveSource::Timestamp(timestamp))
        }
        _ => bail!(NotFound(format!("no backup {name} in {destination}"))),
    }
}

/// `--cleanup`: prunes Stowage's archives to `maximum_backups`.
fn cleanup(
    destination: &Location,
    registry: &Registry,
    maximum_backups: Option<usize>,
    json: bool,
) -> Result<()> {
    let pruned = match maximum_backups {
        Some(keep) => prune(&BackupStore::open(destination, registry)?, LABEL, keep)?,
        None => Vec::new(),
    };
    if json {
        outln!("{}", serde_json::json!({ "pruned": pruned }));
    } else if maximum_backups.is_none() {
        outln!("nothing to prune: --cleanup deletes old backups with --maximum-backups N");
    }
    for name in &pruned {
        if !json {
            outln!("pruned {name}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: GitlabArgs,
    }

    fn args(line: &[&str]) -> GitlabArgs {
        Command::try_parse_from([&["backup-utility"], line].concat())
            .unwrap()
            .args
    }

    fn refusal(error: anyhow::Error) -> String {
        assert!(error.is::<Unsupported>(), "{error}");
        error.to_string()
    }

    #[test]
    fn no_flag_is_a_backup_and_restore_takes_a_backup_id_or_a_url() {
        assert_eq!(args(&[]).action().unwrap(), Action::Backup);
        assert_eq!(args(&["--cleanup"]).action().unwrap(), Action::Cleanup);
        assert_eq!(
            args(&["--restore", "-t", "1700000000_2023_11_14_17.5.1"])
                .action()
                .unwrap(),
            Action::Restore(RestoreTarget::BackupId(
                "1700000000_2023_11_14_17.5.1".into()
            ))
        );
        assert_eq!(
            args(&["--restore", "-f", "file:///b.tar"])
                .action()
                .unwrap(),
            Action::Restore(RestoreTarget::Url("file:///b.tar".into()))
        );
    }

    #[test]
    fn flags_only_gitlab_or_no_plugin_can_honour_are_refused_in_one_line() {
        for line in [
            &["--repositories-server-side"][..],
            &["--storage-class", "STANDARD_IA"],
            &["--aws-kms-key-id", "k"],
            &["--restore"],
            &["-t", "1700000000"],
            &["-f", "https://example.com/b.tar"],
        ] {
            let message = refusal(args(line).action().unwrap_err());
            assert!(!message.contains('\n'), "{line:?}: {message}");
        }
    }

    #[test]
    fn skips_take_repeats_and_comma_lists_and_name_what_gitlab_keeps() {
        let selection = args(&["--skip", "db", "--skip", "lfs,registry"])
            .selection()
            .unwrap();
        assert_eq!(selection.skipped, ["registry", "lfs"]);
        assert_eq!(selection.left_to_gitlab, ["repositories", "builds"]);
    }

    #[test]
    fn a_request_for_gitlabs_components_only_or_an_unknown_one_is_refused() {
        let every_object_component = OBJECT_STORAGE_COMPONENTS.join(",");
        let message = refusal(
            args(&["--skip", &every_object_component])
                .selection()
                .unwrap_err(),
        );
        assert!(message.contains("rake tasks"), "{message}");
        let message = refusal(args(&["--skip", "upload"]).selection().unwrap_err());
        assert!(message.contains("--skip upload"), "{message}");
    }
}
