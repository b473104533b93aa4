//! Asking before a command changes or deletes something.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Result};

use crate::exit::Refused;

/// Shows `summary` (unless empty) and asks `question` on the terminal; without one,
/// refuses (exit code 5) saying that `what` needs `--yes` — never waits
/// for input that cannot come.
pub fn confirm_on_terminal(what: &str, summary: &str, question: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        bail!(Refused(format!(
            "{what} and there is no terminal to confirm on; add --yes"
        )));
    }
    if !summary.is_empty() {
        eprintln!("{summary}");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
