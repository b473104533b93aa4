//! The `stowage` binary: parse the command line, run it, print one line on failure.

use std::process::ExitCode;

use clap::Parser;
use stowage::commands::{arguments_as_invoked, Cli};
use stowage::exit::exit_code_for;
use stowage::interrupt;

fn main() -> ExitCode {
    stowage::memory::configure_allocator();
    let cli = Cli::parse_from(arguments_as_invoked(std::env::args_os()));
    let verbose = cli.verbose;
    let command = cli.command.name();
    if let Err(error) = interrupt::install() {
        eprintln!("error: cannot handle SIGINT and SIGTERM: {error}");
        return ExitCode::FAILURE;
    }
    let result = cli.run();
    // Whatever the run's own error (a stopped tool fails), an interrupted
    // run says so and exits with the signal's code.
    if let Some(interruption) = interrupt::received() {
        eprintln!("{}", interruption.message(command));
        return ExitCode::from(interruption.exit_code());
    }
    match result {
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
