//! Progress on stderr, shown only when stderr is a terminal: a bar per
//! step with a known size (objects or bytes, with rate and ETA), a spinner
//! saying what is happening where the size is unknown. Bars of steps that
//! run at once (components restored in parallel, validation beside the
//! listings) share one [`MultiProgress`], so they stack instead of
//! overwriting each other.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use stowage_plugin_api::provider::ProgressSink;
use stowage_plugin_api::Progress;

/// How often a spinner moves, and a bar redraws its rate and ETA, when
/// nothing else happens.
const TICK: Duration = Duration::from_millis(120);

/// The bars on screen.
fn screen() -> &'static MultiProgress {
    static SCREEN: OnceLock<MultiProgress> = OnceLock::new();
    SCREEN.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// `bar` on the screen, or hidden when `quiet` is set or stderr is not a
/// terminal.
fn shown(bar: ProgressBar, template: &str, label: &str, quiet: bool) -> ProgressBar {
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("the templates are valid")
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
        return bar;
    }
    let bar = screen().add(bar);
    bar.enable_steady_tick(TICK);
    bar
}

/// A progress bar that plugins report objects into: objects done of the
/// planned count, objects/s, bytes and bytes/s, elapsed and ETA. With no
/// count known (0), a spinner with the same figures.
pub struct ProgressBarSink {
    bar: ProgressBar,
    started: Instant,
}

impl ProgressBarSink {
    /// A bar for `total_objects` objects labelled `label`; hidden when
    /// stderr is not a terminal or `quiet` is set.
    pub fn new(label: &str, total_objects: u64, quiet: bool) -> Self {
        let bar = match total_objects {
            0 => shown(
                ProgressBar::new_spinner(),
                "{spinner} {prefix}: {pos} objects ({per_sec}), {msg} [{elapsed_precise}]",
                label,
                quiet,
            ),
            total => shown(
                ProgressBar::new(total),
                "{prefix} [{bar:30}] {pos}/{len} objects ({per_sec}), {msg} [{elapsed_precise}, ETA {eta}]",
                label,
                quiet,
            ),
        };
        ProgressBarSink {
            bar,
            started: Instant::now(),
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl ProgressSink for ProgressBarSink {
    fn report(&self, progress: &Progress) {
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = (progress.bytes_done as f64 / seconds) as u64;
        self.bar.set_position(progress.objects_done);
        self.bar.set_message(format!(
            "{} ({}/s) {}",
            indicatif::HumanBytes(progress.bytes_done),
            indicatif::HumanBytes(rate),
            progress.current_key
        ));
    }
}

/// A progress bar counting bytes (download, validation, extraction), with
/// bytes/s and ETA; a spinner when the total is unknown.
pub struct ByteProgress {
    bar: ProgressBar,
}

impl ByteProgress {
    /// A bar for `total` bytes (unknown: a spinner), hidden when stderr is
    /// not a terminal or `quiet` is set.
    pub fn new(label: &str, total: Option<u64>, quiet: bool) -> Self {
        let bar = match total {
            Some(total) => shown(
                ProgressBar::new(total),
                "{prefix} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}) [{elapsed_precise}, ETA {eta}]",
                label,
                quiet,
            ),
            None => shown(
                ProgressBar::new_spinner(),
                "{spinner} {prefix}: {bytes} ({bytes_per_sec}) [{elapsed_precise}]",
                label,
                quiet,
            ),
        };
        ByteProgress { bar }
    }

    /// Sets the bytes done.
    pub fn set(&self, bytes: u64) {
        self.bar.set_position(bytes);
    }

    /// Adds `bytes` to the bytes done (from any thread).
    pub fn add(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A spinner saying what is happening, for a step whose size is unknown
/// (a listing, a snapshot's copies, a verification); cleared when
/// finished or dropped, however the step ends.
pub struct Spinner {
    bar: ProgressBar,
}

impl Spinner {
    /// A spinner reading `label`, hidden when stderr is not a terminal or
    /// `quiet` is set.
    pub fn new(label: &str, quiet: bool) -> Self {
        Spinner {
            bar: shown(
                ProgressBar::new_spinner(),
                "{spinner} {prefix} [{elapsed_precise}]",
                label,
                quiet,
            ),
        }
    }

    /// Removes the spinner from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.finish();
    }
}
