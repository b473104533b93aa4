//! Standard output, for results. A reader that goes away early
//! (`stowage plugins | head -1`) ends the output, not the run: the rest
//! is dropped quietly instead of panicking ("failed printing to stdout"),
//! and a restore under way finishes. Any other write error is reported
//! once, on stderr.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set when stdout failed: later lines are dropped.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes one line to stdout, unless an earlier write failed.
pub fn write_line(line: std::fmt::Arguments<'_>) {
    write_stdout(|stdout| writeln!(stdout, "{line}"));
}

/// Writes `text` to stdout as it is (a generated script, already ending in
/// a newline), unless an earlier write failed.
pub fn write_text(text: &str) {
    write_stdout(|stdout| stdout.write_all(text.as_bytes()));
}

/// Writes `value` to stdout as pretty JSON and a line break, as it is
/// serialized (a restore's report of a million planned objects is never
/// one string in memory), unless an earlier write failed.
pub fn write_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut unserializable = None;
    write_stdout(|stdout| {
        let mut out = std::io::BufWriter::new(stdout);
        match serde_json::to_writer_pretty(&mut out, value) {
            Err(error) if error.is_io() => return Err(error.into()),
            Err(error) => unserializable = Some(error),
            Ok(()) => writeln!(out)?,
        }
        out.flush()
    });
    unserializable.map_or(Ok(()), |error| Err(error.into()))
}

fn write_stdout(write: impl FnOnce(&mut std::io::StdoutLock<'static>) -> std::io::Result<()>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = write(&mut stdout).and_then(|()| stdout.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("warning: cannot write to standard output: {error}; the rest is not shown");
        }
    }
}

/// `count` followed by `noun`, plural unless the count is 1: "1 object",
/// "3 objects".
pub fn counted(count: impl Into<u64>, noun: &str) -> String {
    match count.into() {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// `println!` for results: see [`write_line`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_line(format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::counted;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(counted(1u64, "object"), "1 object");
        assert_eq!(counted(0u64, "object"), "0 objects");
        assert_eq!(counted(3u32, "snapshot"), "3 snapshots");
    }
}
