//! Running a tool's own sync command (`s3cmd sync`, `aws s3 sync`,
//! `gsutil rsync`) the same way for every adapter: the adapter says which
//! arguments to pass and how to read one line of output; this module
//! enforces the rules every sync keeps.
//!
//! - `max_deletes`: the tool's own dry run is run first, and a sync that
//!   would delete more is refused before anything changes.
//! - Deletes never run before every transfer has succeeded. A tool that
//!   can promise that itself (s3cmd `--delete-after`) does it in one run;
//!   for the others the sync runs twice: first without deleting, then — only
//!   if that succeeded — with deleting, when nothing is left to transfer.
//! - Every line that reports an action becomes a [`SyncAction`] and a
//!   progress update, from stdout or stderr (gsutil reports on stderr).

use std::collections::HashSet;
use std::ffi::OsString;
use std::sync::Mutex;

use stowage_core::{
    ActionKind, ErrorKind, Location, PluginError, Progress, ProgressReporter, SyncAction,
    SyncOptions, SyncReport,
};

use crate::tool::Tool;

/// What one tool's sync command looks like.
pub trait SyncCommand: Sync {
    /// Whether the tool, given the arguments from [`SyncCommand::arguments`]
    /// with `delete`, runs every delete only after every transfer succeeded.
    const DELETES_AFTER_TRANSFERS: bool;

    /// The arguments of one run. `delete` and `dry_run` may differ from
    /// `options` (the driver runs dry-runs and no-delete passes itself).
    fn arguments(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        delete: bool,
        dry_run: bool,
    ) -> Result<Vec<OsString>, PluginError>;

    /// The action one line of output reports, if any. `source` and
    /// `destination` are the locations of the sync, to turn the tool's
    /// paths and URLs back into keys.
    fn parse_action(
        &self,
        line: &str,
        source: &Location,
        destination: &Location,
    ) -> Option<SyncAction>;
}

/// Runs the sync `options` ask for with `tool`, as described above.
pub fn run_sync<C: SyncCommand>(
    tool: &Tool,
    command: &C,
    source: &Location,
    destination: &Location,
    options: &SyncOptions,
    progress: &ProgressReporter<'_>,
) -> Result<SyncReport, PluginError> {
    let run = |delete: bool, dry_run: bool| {
        let args = command.arguments(source, destination, options, delete, dry_run)?;
        run_once(
            tool,
            &args,
            |line| command.parse_action(line, source, destination),
            progress,
        )
    };
    if let (true, Some(max)) = (options.delete, options.max_deletes.into_option()) {
        let plan = run(true, true)?;
        let deletes = plan.total(ActionKind::Delete).objects;
        if deletes > max {
            return Err(PluginError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "sync would delete {deletes} objects from {destination}, more than the limit of {max}; nothing was changed"
                ),
            ));
        }
        if options.dry_run {
            return Ok(plan);
        }
    }
    if options.dry_run || !options.delete || C::DELETES_AFTER_TRANSFERS {
        return run(options.delete, options.dry_run);
    }
    let mut report = run(false, false)?;
    let deletes = run(true, false)?;
    report.actions.extend(deletes.actions);
    Ok(report)
}

/// Runs the tool once, turning output lines into actions and progress.
fn run_once(
    tool: &Tool,
    args: &[OsString],
    parse: impl Fn(&str) -> Option<SyncAction> + Sync,
    progress: &ProgressReporter<'_>,
) -> Result<SyncReport, PluginError> {
    let report = Mutex::new(SyncReport::default());
    let totals = Mutex::new(Progress::default());
    // A tool may report one object on several lines (s3cmd, one per part).
    let seen = Mutex::new(HashSet::new());
    let on_line = |line: &str| {
        let Some(action) = parse(line) else { return };
        if !seen
            .lock()
            .expect("no panics while held")
            .insert((action.kind, action.key.clone()))
        {
            return;
        }
        let update = {
            let mut totals = totals.lock().expect("no panics while held");
            totals.objects_done += 1;
            totals.bytes_done += action.bytes;
            totals.current_key = action.key.clone();
            totals.clone()
        };
        progress.report(&update);
        report
            .lock()
            .expect("no panics while held")
            .actions
            .push(action);
    };
    tool.run_streaming(args, on_line, on_line)?;
    Ok(report.into_inner().expect("no panics while held"))
}
