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
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("warning: cannot write to standard output: {error}; the rest is not shown");
        }
    }
}

/// `println!` for results: see [`write_line`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_line(format_args!($($arg)*))
    };
}
