//! Exit codes, and the error types that choose them.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the work failed (a tool failed, verification failed, I/O error) |
//! | 2 | bad command line, or a request the command does not carry out (`stowage gitlab-backup-utility` asked for the database or repositories) |
//! | 3 | configuration problem: plugins.toml, stowage.toml, a plugin that does not load, a missing tool; for `stowage plugins`, any plugin that cannot load or is not ready |
//! | 4 | the archive is invalid (truncated, corrupt, unsafe names); no bucket was changed |
//! | 5 | refused by a safety rule (e.g. more deletions than `--max-delete`); nothing was changed |
//! | 6 | not found: no backup with that timestamp, no such archive file, no such bucket to back up or list |
//! | 7 | finished, but someone else changed the destination meanwhile: the objects they touched were left as found and are named in the report; run again to converge |
//! | 130 | interrupted by SIGINT (Ctrl-C): the tools were stopped, nothing was lost, a re-run converges |
//! | 143 | interrupted by SIGTERM: the same |

use std::fmt;

/// The table above, for `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
    0  success
    1  the work failed (a tool failed, verification failed, I/O error)
    2  bad command line, or a request the command does not carry out
       (gitlab-backup-utility asked for the database or repositories only)
    3  configuration problem: plugins.toml, stowage.toml, a plugin that does not load, a missing tool;
       for `stowage plugins`: any plugin that cannot load or is not ready
    4  the archive is invalid (truncated, corrupt, unsafe names); no bucket was changed
    5  refused by a safety rule (e.g. more deletions than --max-delete); nothing was changed
    6  not found: no backup with that timestamp, no such archive file, no such bucket to back up or list
    7  finished, but someone else changed the destination meanwhile: the objects
       they touched were left as found and are named in the report; run again
  130  interrupted by SIGINT (Ctrl-C): the tools were stopped, nothing was lost, a re-run converges
  143  interrupted by SIGTERM: the same";

/// A configuration problem (exit code 3).
#[derive(Debug)]
pub struct ConfigError(pub String);

/// An archive that failed validation (exit code 4).
#[derive(Debug)]
pub struct InvalidArchive(pub String);

impl fmt::Display for InvalidArchive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid archive: {}", self.0)
    }
}

impl std::error::Error for InvalidArchive {}

/// A backup, archive or bucket that does not exist (exit code 6).
#[derive(Debug)]
pub struct NotFound(pub String);

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotFound {}

/// A finished run whose destination moved under it (exit code 7): objects
/// someone else changed after planning were left as found.
#[derive(Debug)]
pub struct Drifted(pub String);

impl fmt::Display for Drifted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Drifted {}

/// A request this command does not carry out, said in one line before
/// anything changed (exit code 2, like a bad command line): e.g. the
/// database or repositories asked of `stowage gitlab-backup-utility`.
#[derive(Debug)]
pub struct Unsupported(pub String);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unsupported {}

/// A refusal by a safety rule, before anything changed (exit code 5).
#[derive(Debug)]
pub struct Refused(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}
impl std::error::Error for Refused {}

/// The exit code an error ends the run with (see the table above).
pub fn exit_code_for(error: &anyhow::Error) -> u8 {
    let chain = || error.chain();
    if chain().any(|e| e.is::<Unsupported>()) {
        2
    } else if chain().any(|e| e.is::<ConfigError>()) {
        3
    } else if chain().any(|e| e.is::<InvalidArchive>()) {
        4
    } else if chain().any(|e| e.is::<Refused>()) {
        5
    } else if chain().any(|e| e.is::<NotFound>()) {
        6
    } else if chain().any(|e| e.is::<Drifted>()) {
        7
    } else {
        1
    }
}
