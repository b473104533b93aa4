//! `stowage manpages <dir>` (hidden, for packagers and `make install`): one
//! man page per command, `stowage.1`, `stowage-restore.1`,
//! `stowage-backups-list.1`, ..., written into a directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Command, CommandFactory};
use clap_mangen::Man;

use super::Cli;

/// Arguments of `stowage manpages`.
#[derive(Debug, Args)]
pub struct ManpagesArgs {
    /// The directory to write the pages into (created if missing).
    pub dir: PathBuf,
}

/// Writes the man pages of `stowage` and each of its visible commands, and
/// prints the path of each.
pub fn run(args: &ManpagesArgs) -> Result<()> {
    let dir = &args.dir;
    let mut cli = Cli::command().disable_help_subcommand(true);
    // Names the subcommands' pages `stowage-backups-list`, not `list`.
    cli.build();
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| write_pages(cli, dir))
        .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
    for page in written {
        outln!("{}", page.display());
    }
    Ok(())
}

/// Writes the page of `command`, then those of its visible subcommands.
fn write_pages(command: Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let subcommands: Vec<Command> = command
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .cloned()
        .collect();
    let page = Man::new(command)
        .source(concat!("stowage ", env!("CARGO_PKG_VERSION")))
        .manual("Stowage Manual")
        .generate_to(dir)?;
    let mut written = vec![page];
    for subcommand in subcommands {
        written.extend(write_pages(subcommand, dir)?);
    }
    Ok(written)
}
