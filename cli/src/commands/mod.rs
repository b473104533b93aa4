//! The command line: argument definitions and one module per command.

// The doc comments of the clap items are their --help text, where
// `<component>` and the like are meant as written, not as HTML.
#![allow(rustdoc::invalid_html_tags)]

mod backup;
mod completions;
mod gitlab;
mod ls;
mod manpages;
mod plugins;
mod restore;
mod snapshots;
mod sync;

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::exit::{ConfigError, EXIT_CODES_HELP};
use crate::plugins_file::PluginsFile;
use crate::registry::Registry;

/// Back up object-storage buckets into archives and restore them by sync.
///
/// Stowage moves only what changed: a sync uploads the objects that are
/// missing or different and deletes only the extraneous ones. Each storage
/// provider is a plugin (a dynamic library listed in plugins.toml) that
/// drives its own tool (s3cmd, aws, gsutil) or the local filesystem; Stowage
/// plans from listings and checksums, and verifies the result afterwards.
#[derive(Debug, Parser)]
#[command(name = "stowage", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// The plugins file. Default: ./plugins.toml, then
    /// $XDG_CONFIG_HOME/stowage/plugins.toml, then /etc/stowage/plugins.toml.
    #[arg(long, global = true, env = "STOWAGE_PLUGINS", value_name = "FILE")]
    pub plugins: Option<PathBuf>,

    /// Print reports as JSON on stdout, for automation.
    #[arg(long, global = true)]
    pub json: bool,

    /// Show full diagnostics (e.g. a plugin's complete layout-mismatch report).
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the plugins: name, version, the plugin API each was built
    /// against, the tool each drives and its version, the URL schemes it
    /// serves, and whether it is ready (or the problem).
    ///
    /// With --verbose, each plugin's keys in plugins.toml too: type,
    /// default, help and the configured value (secret ones as ***). With
    /// --json, the same as JSON. Exits 3 when any plugin cannot load or is
    /// not ready (after listing them all), so a cron job or a readiness
    /// probe can run it as a health check.
    Plugins,
    /// List the objects below a bucket URL, with size and MD5.
    Ls(ls::LsArgs),
    /// Back up every component's bucket into one archive in the backup
    /// destination (components and destination come from stowage.toml).
    Backup(backup::BackupArgs),
    /// Restore buckets from an archive by sync: upload only what is missing
    /// or changed, delete only what is extraneous, snapshot what changes
    /// first, verify after.
    ///
    /// The archive is validated completely before any bucket is touched.
    /// Each component is planned from its bucket's listing and the archive's
    /// MD5s; the objects the restore will overwrite or delete are copied to
    /// <tmp bucket>/<component>.<unix-ts>/ first. Disk needed in the staging
    /// directory: the archive (when it has to be downloaded) plus its largest
    /// component. Re-running a restore is safe: it converges, and changes
    /// nothing once the buckets match.
    Restore(restore::RestoreArgs),
    /// Work with the stored backups.
    Backups(backup::BackupsArgs),
    /// Work with the restore snapshots in the tmp bucket
    /// (<tmp bucket>/<component>.<unix-ts>/): list them, prune old ones.
    Snapshots(snapshots::SnapshotsArgs),
    /// Make DST hold what SRC holds: transfer what is missing or changed
    /// (compared by checksum), optionally delete what is extraneous, then
    /// verify the result and repair what the tool missed.
    Sync(sync::SyncArgs),
    /// GitLab's backup-utility for object storage: its flags (--restore -t
    /// ID, --skip, --backend, --s3tool, --maximum-backups, --cleanup) and
    /// the Helm chart's environment (BACKUP_BUCKET_NAME, TMP_BUCKET_NAME,
    /// <COMPONENT>_BUCKET_NAME), no stowage.toml.
    ///
    /// A backup stores <unix-ts>_<YYYY_MM_DD>_stowage_gitlab_backup.tar in
    /// the backup bucket; a restore syncs each bucket to the archive,
    /// copying what it replaces to the tmp bucket first, without asking.
    /// The database, repositories and CI job logs stay with GitLab's rake
    /// tasks: a request for them only is refused in one line (exit 2), and
    /// one that also names them says on stderr what is left to GitLab.
    /// Installed as a link named backup-utility, stowage behaves as this
    /// command. See docs/GITLAB.md.
    GitlabBackupUtility(gitlab::GitlabArgs),
    /// Print the completion script for a shell (bash, zsh, fish, elvish,
    /// powershell), e.g. `stowage completions bash >
    /// /usr/share/bash-completion/completions/stowage`.
    Completions(completions::CompletionsArgs),
    /// Write the man pages (stowage.1 and one per command) into a directory.
    #[command(hide = true)]
    Manpages(manpages::ManpagesArgs),
}

impl Command {
    /// The command's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Plugins => "plugins",
            Command::Ls(_) => "ls",
            Command::Backup(_) => "backup",
            Command::Restore(_) => "restore",
            Command::Backups(_) => "backups",
            Command::Snapshots(_) => "snapshots",
            Command::Sync(_) => "sync",
            Command::GitlabBackupUtility(_) => "gitlab-backup-utility",
            Command::Completions(_) => "completions",
            Command::Manpages(_) => "manpages",
        }
    }
}

impl Cli {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        let registry = || -> Result<Registry> {
            let file = find_plugins_file(self.plugins.as_deref())?;
            Ok(Registry::load(&file, self.verbose))
        };
        match &self.command {
            Command::Plugins => plugins::run(&registry()?, self.json, self.verbose),
            Command::Ls(args) => ls::run(&registry()?, args, self.json),
            Command::Sync(args) => sync::run(&registry()?, args, self.json),
            Command::Backup(args) => backup::run(&registry()?, args, self.json),
            Command::Restore(args) => restore::run(&registry()?, args, self.json, self.verbose),
            Command::Backups(args) => backup::run_backups(&registry()?, args, self.json),
            Command::Snapshots(args) => snapshots::run(&registry()?, args, self.json),
            Command::GitlabBackupUtility(args) => {
                gitlab::run(self.plugins.as_deref(), args, self.json, self.verbose)
            }
            Command::Completions(args) => {
                completions::run(args);
                Ok(())
            }
            Command::Manpages(args) => manpages::run(args),
        }
    }
}

/// The plugins file (`explicit`, else the first found), a problem with it
/// being a configuration error.
fn find_plugins_file(explicit: Option<&Path>) -> Result<PluginsFile> {
    PluginsFile::find(explicit).map_err(|e| ConfigError(format!("{e:#}")).into())
}

/// The command line as the user typed it, with `gitlab-backup-utility`
/// put first when the binary was invoked through a link named
/// `backup-utility` (so `backup-utility --restore -t ID` works as is).
pub fn arguments_as_invoked(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let mut args: Vec<_> = args.into_iter().collect();
    let invoked_as = args
        .first()
        .and_then(|first| Path::new(first).file_name())
        .and_then(|name| name.to_str());
    if invoked_as == Some("backup-utility") {
        args.insert(1, "gitlab-backup-utility".into());
    }
    args
}
