//! One restore per bucket at a time.
//!
//! Two restores syncing into the same bucket at once would each delete what
//! the other uploads. So a restore takes a lock per component bucket: a
//! small object `.stowage-lock.<bucket>` in the backup destination (which
//! every restoring machine can reach), holding who took it and a random
//! token. Taking it: refuse if a live lock is there; write ours; read it
//! back after a pause; if the token is not ours, another restore won the
//! race and this one refuses. The lock is removed when the restore ends.
//!
//! A lock left by a crash is stale when its holder ran on this host and
//! that process is gone, or when it is older than [`STALE_AFTER`]; a stale
//! lock is taken over, so a re-run after a crash goes on. `--break-lock`
//! takes over any lock (for a holder on another host that died).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use stowage_core::Location;

use crate::backup_store::BackupStore;
use crate::exit::Refused;
use crate::unix_time::{now, rfc3339};

/// A lock older than this is stale whoever holds it.
pub const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How long to wait before reading a freshly written lock back.
const SETTLE: Duration = Duration::from_millis(500);

/// What a lock object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LockRecord {
    host: String,
    pid: u32,
    started: u64,
    token: String,
}

/// Locks held by this process; released by [`RestoreLocks::release`] (also
/// attempted on drop).
pub struct RestoreLocks<'s, 'r> {
    store: &'s BackupStore<'r>,
    /// Lock object name, bucket, and the record written.
    held: Vec<(String, Location, LockRecord)>,
    /// When the last record was written.
    written: Instant,
}

/// This machine's host name, as lock records name it.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".to_string())
}

/// The lock object's name for `bucket`.
pub fn lock_name(bucket: &Location) -> String {
    let safe: String = bucket
        .to_string()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(".stowage-lock.{safe}")
}

impl LockRecord {
    fn ours() -> LockRecord {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        LockRecord {
            host: hostname(),
            pid: std::process::id(),
            started: now(),
            token: format!("{:x}-{:x}-{:x}", std::process::id(), now(), nanos),
        }
    }

    fn is_stale(&self) -> bool {
        let dead_here = self.host == hostname()
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists();
        dead_here || now().saturating_sub(self.started) > STALE_AFTER.as_secs()
    }
}

impl<'s, 'r> RestoreLocks<'s, 'r> {
    /// Takes the lock of every bucket, or refuses naming the holder:
    /// [`RestoreLocks::take`], then [`RestoreLocks::confirm`].
    pub fn acquire(
        store: &'s BackupStore<'r>,
        buckets: &[Location],
        break_lock: bool,
    ) -> Result<Self> {
        let locks = Self::take(store, buckets, break_lock)?;
        locks.confirm()?;
        Ok(locks)
    }

    /// Writes this restore's lock for every bucket, refusing if a live lock
    /// is there. Nothing may change a bucket before [`RestoreLocks::confirm`]
    /// has passed; reading them meanwhile (listing, planning) is what the pause
    /// before confirming is for.
    pub fn take(
        store: &'s BackupStore<'r>,
        buckets: &[Location],
        break_lock: bool,
    ) -> Result<Self> {
        let mut locks = RestoreLocks {
            store,
            held: Vec::new(),
            written: Instant::now(),
        };
        for bucket in buckets {
            let name = lock_name(bucket);
            if let Some(holder) = read(store, &name)? {
                if !break_lock && !holder.is_stale() {
                    bail!(Refused(format!(
                        "another restore into {bucket} is running (host {}, pid {}, since {}); if it is not, add --break-lock",
                        holder.host,
                        holder.pid,
                        rfc3339(holder.started)
                    )));
                }
            }
            let record = LockRecord::ours();
            store.put_bytes(&name, &serde_json::to_vec(&record)?)?;
            locks.held.push((name, bucket.clone(), record));
        }
        locks.written = Instant::now();
        Ok(locks)
    }

    /// Reads every lock back, at least [`SETTLE`] after they were written:
    /// a restore that wrote at the same time has overwritten ours by then,
    /// and exactly one of us reads itself back; the other refuses.
    pub fn confirm(&self) -> Result<()> {
        std::thread::sleep(SETTLE.saturating_sub(self.written.elapsed()));
        for (name, bucket, record) in &self.held {
            match read(self.store, name)? {
                Some(found) if &found == record => {}
                Some(found) => bail!(Refused(format!(
                    "another restore into {bucket} started at the same time (host {}, pid {}); try again later",
                    found.host, found.pid
                ))),
                None => bail!(Refused(format!("the lock for {bucket} vanished while it was taken; try again"))),
            }
        }
        Ok(())
    }

    /// Removes the locks this process still holds; a failure names the
    /// lock objects left behind, for the operator to remove.
    pub fn release(mut self) -> Result<()> {
        let names: Vec<String> = self.held.iter().map(|(name, ..)| name.clone()).collect();
        let (locks, them) = match names.len() {
            1 => ("lock", "it"),
            _ => ("locks", "them"),
        };
        self.release_held().with_context(|| {
            format!(
                "the restore {locks} {} in {} could not be removed; remove {them} by hand",
                names.join(", "),
                self.store.location()
            )
        })
    }

    fn release_held(&mut self) -> Result<()> {
        let mut ours = Vec::new();
        for (name, _, record) in self.held.drain(..) {
            if read(self.store, &name)?.as_ref() == Some(&record) {
                ours.push(name);
            }
        }
        self.store.delete(&ours)
    }
}

impl Drop for RestoreLocks<'_, '_> {
    fn drop(&mut self) {
        let _ = self.release_held();
    }
}

/// The restore lock of `bucket` while a restore into it may still be
/// running — there and not stale (an unreadable lock counts as live) — as
/// a phrase naming the lock object and its holder; `None` when there is
/// no such lock.
pub fn running_restore(store: &BackupStore<'_>, bucket: &Location) -> Result<Option<String>> {
    let name = lock_name(bucket);
    let Some(bytes) = store.get_bytes(&name)? else {
        return Ok(None);
    };
    Ok(match serde_json::from_slice::<LockRecord>(&bytes) {
        Ok(holder) if holder.is_stale() => None,
        Ok(holder) => Some(format!(
            "lock {name} in {} held by host {}, pid {}, since {}",
            store.location(),
            holder.host,
            holder.pid,
            rfc3339(holder.started)
        )),
        Err(_) => Some(format!("lock {name} in {} (unreadable)", store.location())),
    })
}

fn read(store: &BackupStore<'_>, name: &str) -> Result<Option<LockRecord>> {
    Ok(store
        .get_bytes(name)?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}
