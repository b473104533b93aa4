//! Stopping on SIGINT or SIGTERM without losing anything.
//!
//! Every tool runs in a process group of its own (so that a stalled one is
//! killed with everything it started), which also means a terminal's
//! Ctrl-C no longer reaches it: the host stops the tools itself. On the
//! first signal a thread records it, sends SIGTERM to the process group of
//! every process descended from Stowage, and SIGKILL to those groups still
//! there after [`KILL_GRACE`]. The run sees its tools fail, or stops at the
//! next [`check`] between steps, and unwinds through its normal error path:
//! restore locks are released, and `main` prints [`Interruption::message`]
//! and exits 130 (SIGINT) or 143 (SIGTERM). A second signal kills the
//! tools' groups and exits at once.
//!
//! Nothing is lost by stopping anywhere: a restore snapshots what it
//! replaces before changing it and deletes only after every upload, so
//! running the same command again converges (the crash test proves it
//! for kill -9 at every step).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rustix::process::{getpid, kill_process_group, Pid, Signal};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// How long stopped tools get between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(3);

/// The first signal received (0: none yet).
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// The names of the tools the first signal stopped, for the message.
static STOPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A signal that asked Stowage to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interruption {
    /// SIGINT (Ctrl-C): exit code 130.
    Int,
    /// SIGTERM: exit code 143.
    Term,
}

impl Interruption {
    fn from_signal(signal: i32) -> Option<Interruption> {
        match signal {
            SIGINT => Some(Interruption::Int),
            SIGTERM => Some(Interruption::Term),
            _ => None,
        }
    }

    /// The exit code: 128 plus the signal's number, as shells report it.
    pub fn exit_code(self) -> u8 {
        match self {
            Interruption::Int => 130,
            Interruption::Term => 143,
        }
    }

    /// The signal's name.
    pub fn name(self) -> &'static str {
        match self {
            Interruption::Int => "SIGINT",
            Interruption::Term => "SIGTERM",
        }
    }

    /// The one line printed when `stowage <command>` was interrupted:
    /// what stopped, and that a re-run converges.
    pub fn message(self, command: &str) -> String {
        let stopped = STOPPED.lock().map(|s| s.join(", ")).unwrap_or_default();
        let tools = match stopped.is_empty() {
            true => String::new(),
            false => format!(" and its tools ({stopped})"),
        };
        format!(
            "interrupted by {}: stopped `stowage {command}`{tools}; nothing was lost, and running the same command again converges",
            self.name()
        )
    }
}

/// The error a run stops with at a [`check`] after a signal.
#[derive(Debug)]
pub struct Interrupted(pub Interruption);

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "interrupted by {}", self.0.name())
    }
}

impl std::error::Error for Interrupted {}

/// The signal that interrupted this run, if one came.
pub fn received() -> Option<Interruption> {
    Interruption::from_signal(RECEIVED.load(Ordering::SeqCst))
}

/// Fails with [`Interrupted`] once a signal came: called between the steps
/// of a run, so it stops where it stands and unwinds normally.
pub fn check() -> Result<(), Interrupted> {
    match received() {
        Some(interruption) => Err(Interrupted(interruption)),
        None => Ok(()),
    }
}

/// Handles SIGINT and SIGTERM from now on, as the module docs describe.
pub fn install() -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".to_string())
        .spawn(move || {
            let mut signals = signals.forever();
            if let Some(first) = signals.next() {
                stop_tools(first);
            }
            if let Some(second) = signals.next() {
                exit_at_once(second);
            }
        })?;
    Ok(())
}

/// The first signal: record it, SIGTERM every tool's group, SIGKILL after
/// [`KILL_GRACE`] those still running.
fn stop_tools(signal: i32) {
    RECEIVED.store(signal, Ordering::SeqCst);
    let groups = tool_groups();
    if let Ok(mut stopped) = STOPPED.lock() {
        stopped.extend(groups.values().cloned());
        stopped.sort();
        stopped.dedup();
    }
    signal_groups(groups.keys(), Signal::TERM);
    std::thread::spawn(move || {
        std::thread::sleep(KILL_GRACE);
        // Only groups of the first signal: a tool started since (the lock
        // release, say) is left alone.
        let still = tool_groups();
        signal_groups(
            groups.keys().filter(|g| still.contains_key(g)),
            Signal::KILL,
        );
    });
}

/// The second signal: SIGKILL every tool's group and exit.
fn exit_at_once(signal: i32) -> ! {
    signal_groups(tool_groups().keys(), Signal::KILL);
    let interruption = Interruption::from_signal(signal).unwrap_or(Interruption::Term);
    eprintln!(
        "interrupted again by {}: exited at once; a restore lock left behind is taken over by the next run on this host (elsewhere: --break-lock), and running the same command again converges",
        interruption.name()
    );
    std::process::exit(interruption.exit_code().into())
}

fn signal_groups<'a>(groups: impl Iterator<Item = &'a i32>, signal: Signal) {
    for group in groups.filter_map(|g| Pid::from_raw(*g)) {
        let _ = kill_process_group(group, signal);
    }
}

/// The process groups of Stowage's descendants other than its own (each
/// tool's), with the name of a process in each.
fn tool_groups() -> BTreeMap<i32, String> {
    descendant_groups(getpid().as_raw_nonzero().get())
}

/// The process groups of the descendants of process `ancestor`, other than
/// its own group, with the name of a process in each (the group leader's,
/// if it is one of them). Empty if `/proc` cannot be read.
pub fn descendant_groups(ancestor: i32) -> BTreeMap<i32, String> {
    let Ok(processes) = procfs::process::all_processes() else {
        return BTreeMap::new();
    };
    let mut own_group = None;
    let mut children: HashMap<i32, Vec<procfs::process::Stat>> = HashMap::new();
    for stat in processes.filter_map(|p| p.ok()?.stat().ok()) {
        if stat.pid == ancestor {
            own_group = Some(stat.pgrp);
        }
        children.entry(stat.ppid).or_default().push(stat);
    }
    let mut groups = BTreeMap::new();
    let mut parents = vec![ancestor];
    while let Some(parent) = parents.pop() {
        for child in children.remove(&parent).unwrap_or_default() {
            parents.push(child.pid);
            let leader = child.pid == child.pgrp;
            if Some(child.pgrp) != own_group && (leader || !groups.contains_key(&child.pgrp)) {
                groups.insert(child.pgrp, child.comm);
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_codes_are_128_plus_the_signal() {
        assert_eq!(Interruption::Int.exit_code() as i32, 128 + SIGINT);
        assert_eq!(Interruption::Term.exit_code() as i32, 128 + SIGTERM);
    }

    #[test]
    fn a_tool_in_a_group_of_its_own_is_found_by_name() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let groups = tool_groups();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            groups.get(&(child.id() as i32)).map(String::as_str),
            Some("sleep")
        );
    }
}
