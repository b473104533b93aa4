//! Exit codes, and the error types that choose them.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the work failed (a tool failed, verification failed, I/O error) |
//! | 2 | bad command line |
//! | 3 | configuration problem: plugins.toml, a plugin that does not load, unknown plugin |
//! | 5 | refused by a safety rule (e.g. more deletions than `--max-delete`); nothing was changed |

use std::fmt;
use std::process::ExitCode;

/// The table above, for `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  the work failed (a tool failed, verification failed, I/O error)
  2  bad command line
  3  configuration problem: plugins.toml, a plugin that does not load, unknown plugin
  5  refused by a safety rule (e.g. more deletions than --max-delete); nothing was changed";

/// A configuration problem (exit code 3).
#[derive(Debug)]
pub struct ConfigError(pub String);

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

/// The exit code an error ends the run with.
pub fn exit_code_for(error: &anyhow::Error) -> ExitCode {
    let chain = || error.chain();
    if chain().any(|e| e.is::<ConfigError>()) {
        ExitCode::from(3)
    } else if chain().any(|e| e.is::<Refused>()) {
        ExitCode::from(5)
    } else {
        ExitCode::from(1)
    }
}
