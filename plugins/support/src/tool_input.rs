//! Handing data to a [`Tool`]: on its standard input, for tools that read
//! their argument lists there (`gsutil rm -I`, `gsutil cp -I`: no limit on
//! how many names one process gets, and no name ever in argv), or in a
//! temporary file named on its command line.

use std::ffi::OsStr;
use std::io::Write;
use std::process::ExitStatus;

use stowage_plugin_api::{ErrorKind, PluginError};

use crate::tool::{Kept, Tool, ToolOutput};

/// Runs `tool` with `args` and `input` on its standard input, and returns
/// its exit status and output without judging them (see
/// [`Tool::failure`] for the error of a failed run). A run that stalls is
/// killed, as every tool run is (see [`Tool::stall_timeout`]).
pub fn run_with_input<S: AsRef<OsStr>>(
    tool: &Tool,
    args: &[S],
    input: &[u8],
) -> Result<(ExitStatus, ToolOutput), PluginError> {
    tool.spawn_and_collect(args, Some(input), Kept::All, &mut |_| {}, &mut |_| {})
}

/// A temporary file holding `bytes`, for a tool that reads a file named on
/// its command line (an object's body, a request document); removed when
/// dropped.
pub fn temporary_file_with(bytes: &[u8]) -> Result<tempfile::NamedTempFile, PluginError> {
    tempfile::NamedTempFile::new()
        .and_then(|mut file| {
            file.write_all(bytes)?;
            Ok(file)
        })
        .map_err(|e| {
            PluginError::new(
                ErrorKind::Other,
                format!("cannot write a temporary file: {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_reaches_the_tool_and_its_output_comes_back() {
        let tool = Tool::new("x", "sh", "");
        let input = "line 1\n".repeat(100_000);
        let (status, output) = run_with_input(
            &tool,
            &["-c", "wc -l; echo done >&2; exit 3"],
            input.as_bytes(),
        )
        .unwrap();
        assert_eq!(status.code(), Some(3));
        assert_eq!(output.stdout.trim(), "100000");
        assert_eq!(output.stderr, "done\n");
    }

    #[test]
    fn a_tool_that_ignores_its_input_does_not_block() {
        let tool = Tool::new("x", "sh", "");
        let input = vec![b'x'; 1 << 20];
        let (status, _) = run_with_input(&tool, &["-c", "exit 0"], &input).unwrap();
        assert!(status.success());
    }
}
