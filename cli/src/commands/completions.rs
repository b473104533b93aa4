//! `stowage completions <shell>`: the shell's completion script, on stdout.

use clap::{Args, Command, CommandFactory};
use clap_complete::Shell;

use super::Cli;

/// Arguments of `stowage completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Prints the completion script for `args.shell`.
pub fn run(args: &CompletionsArgs) {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut completed_command(), "stowage", &mut script);
    crate::output::write_text(&String::from_utf8_lossy(&script));
}

/// The command line as completion offers it: without the hidden commands,
/// which clap_complete would otherwise offer as well.
fn completed_command() -> Command {
    let cli = Cli::command();
    Command::new("stowage")
        .version(env!("CARGO_PKG_VERSION"))
        .args(cli.get_arguments().cloned())
        .subcommands(cli.get_subcommands().filter(|c| !c.is_hide_set()).cloned())
}
