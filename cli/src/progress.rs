//! Progress bars on stderr, shown only when stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use stowage_plugin_api::provider::ProgressSink;
use stowage_plugin_api::Progress;

/// A progress bar that plugins report into.
pub struct ProgressBarSink {
    bar: ProgressBar,
}

impl ProgressBarSink {
    /// A bar for `total_objects` objects labelled `label`; hidden when
    /// stderr is not a terminal or `quiet` is set.
    pub fn new(label: &str, total_objects: u64, quiet: bool) -> Self {
        let bar = ProgressBar::new(total_objects);
        if quiet || !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} objects, {msg} {elapsed_precise}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        ProgressBarSink { bar }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl ProgressSink for ProgressBarSink {
    fn report(&self, progress: &Progress) {
        self.bar.set_position(progress.objects_done);
        self.bar.set_message(format!(
            "{} {}",
            indicatif::HumanBytes(progress.bytes_done),
            progress.current_key
        ));
    }
}

/// A progress bar counting bytes (downloads, extraction).
pub struct ByteProgress {
    bar: ProgressBar,
}

impl ByteProgress {
    /// A bar for `total` bytes (unknown: a spinner), hidden when stderr is
    /// not a terminal or `quiet` is set.
    pub fn new(label: &str, total: Option<u64>, quiet: bool) -> Self {
        let bar = match total {
            Some(total) => ProgressBar::new(total),
            None => ProgressBar::new_spinner(),
        };
        if quiet || !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {elapsed_precise}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        ByteProgress { bar }
    }

    /// Sets the bytes done.
    pub fn set(&self, bytes: u64) {
        self.bar.set_position(bytes);
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
