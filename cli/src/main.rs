//! The `stowage` binary: parse the command line, run it, print one line on failure.

use std::process::ExitCode;

use clap::Parser;
use stowage::commands::Cli;
use stowage::exit::exit_code_for;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if verbose {
                eprintln!("error: {error:#}");
            } else {
                eprintln!("error: {}", first_line(&format!("{error:#}")));
            }
            ExitCode::from(exit_code_for(&error))
        }
    }
}

/// The first line of a message: errors stay one line unless `--verbose`.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}
