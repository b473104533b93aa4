//! One restore per bucket at a time.
//!
//! Two restores syncing into the same bucket at once would each delete what
//! the other uploads. So a restore takes a lock per component bucket: a
//! small object `.stowage-lock.<bucket>` in the backup destination (which
//! every restoring machine can reach), holding who took it and a random
//! token. The lock is removed when the restore ends.
//!
//! Taking it, where the destination can create an object only if it is
//! absent (a local directory; a bucket whose plugin has the
//! `conditional_create` capability — S3 `If-None-Match: *`, GCS generation
//! match 0, a hard link on a filesystem): create the lock object that way.
//! The store lets exactly one of several racing restores create it, however
//! slow each write is; the others read the holder and refuse.
//!
//! Elsewhere (a plugin without the capability), the weaker protocol: refuse
//! if a live lock is there; write ours; read it back after half a second; if
//! the token is not ours, another restore won the race and this one
//! refuses. A write slower than the pause can let two restores through.
//!
//! A lock left by a crash is stale when its holder ran on this host and
//! that process is gone, or when it is older than [`STALE_AFTER`]; a stale
//! lock is taken over, so a re-run after a crash goes on. `--break-lock`
//! takes over any lock (for a holder on another host that died). With a
//! conditional create, taking over is itself claimed first (an object
//! named after the stale lock's token), so of two restores taking over the
//! same stale lock one goes on.
//!
//! **Sharded restores.** Shard I of N (`stowage restore --shard I/N`)
//! takes its own lock, `.stowage-lock.<bucket>@shard-<I>-of-<N>`, by the
//! same protocol: two processes of one shard exclude each other. Shards of
//! one run (the same N and archive: the lock names the archive) do not
//! block each other; anything else must not run beside them — an
//! unsharded restore, or shards of a run with another N or archive, which
//! split the keys differently. So every restore, once its lock is
//! written, lists the bucket's locks in the destination and refuses if a
//! live one belongs to another kind of run (a write, then a read: of two
//! such restores racing, the later reader always sees the other's lock, so
//! at most one goes on — both may refuse, and are then run again). This
//! needs a destination whose listing shows a finished write, as S3, GCS,
//! Azure and a local directory do.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use stowage_plugin_api::Location;

use crate::exit::{NotFound, Refused};
use crate::restore::Shard;
use crate::store::backup_store::BackupStore;
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
    /// The archive the restore reads: the shards of one run read one (the
    /// split of the keys depends on it).
    #[serde(default)]
    archive: Option<String>,
}

/// Locks held by this process; released by [`RestoreLocks::release`] (also
/// attempted on drop).
pub struct RestoreLocks<'s, 'r> {
    store: &'s BackupStore<'r>,
    /// Lock object name, bucket, and the record written.
    held: Vec<(String, Location, LockRecord)>,
    /// Takeover claims made (see the module docs), removed with the locks.
    takeover_claims: Vec<String>,
    /// Whether the locks were created conditionally (nothing to confirm).
    conditional: bool,
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
    format!(".stowage-lock.{}", file_safe(&bucket.to_string()))
}

/// `name` fit for a file name in the backup destination: every character
/// but letters, digits, `-` and `.` replaced by `_`.
pub fn file_safe(name: &str) -> String {
    name.chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || matches!(c, '-' | '.') {
                true => c,
                false => '_',
            },
        )
        .collect()
}

/// What separates a shard's lock name from its bucket's: never part of
/// [`lock_name`], which keeps only letters, digits, `-`, `.` and `_`.
const SHARD_MARK: &str = "@shard-";

/// The lock object's name for `shard` of a restore into `bucket`: the
/// bucket's [`lock_name`], and for one shard of several
/// `<lock name>@shard-<I>-of-<N>`.
pub fn shard_lock_name(bucket: &Location, shard: Shard) -> String {
    match shard.is_sharded() {
        true => format!(
            "{}{SHARD_MARK}{}-of-{}",
            lock_name(bucket),
            shard.index,
            shard.count
        ),
        false => lock_name(bucket),
    }
}

/// How many shards the run holding the lock `name` of the bucket whose
/// [`lock_name`] is `base` has (1 for an unsharded restore); `None` when
/// `name` is not such a lock (another bucket's, a takeover claim).
fn shard_count_of(base: &str, name: &str) -> Option<u32> {
    let rest = name.strip_prefix(base)?;
    if rest.is_empty() {
        return Some(1);
    }
    let (index, count) = rest.strip_prefix(SHARD_MARK)?.split_once("-of-")?;
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if !digits(index) || !digits(count) {
        return None;
    }
    count.parse().ok()
}

/// The restore locks of `bucket` in `store`, each with the shard count of
/// its run (see [`shard_count_of`]); none in a store that does not exist.
fn locks_of(store: &BackupStore<'_>, bucket: &Location) -> Result<Vec<(String, u32)>> {
    let base = lock_name(bucket);
    let names = match store.file_names_starting_with(&base) {
        Ok(names) => names,
        Err(e) if e.is::<NotFound>() => Vec::new(),
        Err(e) => return Err(e),
    };
    Ok(names
        .into_iter()
        .filter_map(|name| {
            let count = shard_count_of(&base, &name)?;
            Some((name, count))
        })
        .collect())
}

impl LockRecord {
    fn ours(archive: &str) -> LockRecord {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        LockRecord {
            host: hostname(),
            pid: std::process::id(),
            started: now(),
            token: format!("{:x}-{:x}-{:x}", std::process::id(), now(), nanos),
            archive: Some(archive.to_string()),
        }
    }

    /// Why a restore refuses while this record holds the lock for `bucket`.
    fn refusal(&self, bucket: &Location) -> String {
        format!(
            "another restore into {bucket} is running (host {}, pid {}, since {}); if it is not, add --break-lock",
            self.host,
            self.pid,
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(self.started))
        )
    }

    fn is_stale(&self) -> bool {
        let dead_here = self.host == hostname()
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists();
        dead_here || now().saturating_sub(self.started) > STALE_AFTER.as_secs()
    }
}

impl<'s, 'r> RestoreLocks<'s, 'r> {
    /// Takes the lock of every bucket for an unsharded restore, or refuses
    /// naming the holder: [`RestoreLocks::take`], then [`RestoreLocks::confirm`].
    pub fn acquire(
        store: &'s BackupStore<'r>,
        buckets: &[Location],
        break_lock: bool,
    ) -> Result<Self> {
        let locks = Self::take(store, buckets, Shard::WHOLE, "", break_lock)?;
        locks.confirm()?;
        Ok(locks)
    }

    /// Takes this restore's lock (of `shard`) for every bucket, refusing if
    /// a live lock is there or a live lock of another kind of run is beside
    /// it: by conditional create where the store can, else by writing it
    /// (see the module docs). Nothing may change a bucket before
    /// [`RestoreLocks::confirm`] has passed; reading them meanwhile
    /// (listing, planning) is what the pause before confirming is for.
    pub fn take(
        store: &'s BackupStore<'r>,
        buckets: &[Location],
        shard: Shard,
        archive: &str,
        break_lock: bool,
    ) -> Result<Self> {
        let mut locks = RestoreLocks {
            store,
            held: Vec::new(),
            takeover_claims: Vec::new(),
            conditional: store.conditional_create(),
            written: Instant::now(),
        };
        for bucket in buckets {
            let name = shard_lock_name(bucket, shard);
            let record = LockRecord::ours(archive);
            if locks.conditional {
                locks.create(&name, bucket, &record, break_lock)?;
            } else {
                if let Some(holder) = read(store, &name)? {
                    if !break_lock && !holder.is_stale() {
                        bail!(Refused(holder.refusal(bucket)));
                    }
                }
                store.put_bytes(&name, &serde_json::to_vec(&record)?)?;
            }
            locks.held.push((name, bucket.clone(), record));
            locks.refuse_other_runs(bucket, shard, archive, break_lock)?;
        }
        locks.written = Instant::now();
        Ok(locks)
    }

    /// Refuses if a live lock of `bucket` belongs to a run that must not
    /// go on beside shard `shard` of a restore of `archive` (see the module
    /// docs); with `break_lock`, removes such locks instead.
    fn refuse_other_runs(
        &self,
        bucket: &Location,
        shard: Shard,
        archive: &str,
        break_lock: bool,
    ) -> Result<()> {
        let own = shard_lock_name(bucket, shard);
        for (name, count) in locks_of(self.store, bucket)? {
            if name == own {
                continue;
            }
            let holder = read(self.store, &name)?;
            let same_run = count == shard.count
                && holder
                    .as_ref()
                    .is_some_and(|h| h.archive.as_deref() == Some(archive));
            if same_run || holder.as_ref().is_some_and(LockRecord::is_stale) {
                continue;
            }
            if break_lock {
                self.store.delete(std::slice::from_ref(&name))?;
                continue;
            }
            let kind = match (count, &holder) {
                (1, _) => "an unsharded restore".to_string(),
                (n, Some(h)) if n == shard.count => format!(
                    "a restore in {n} shards of another archive ({})",
                    h.archive.as_deref().unwrap_or("unknown")
                ),
                (n, _) => format!("a restore in {n} shards"),
            };
            let holder = holder.map_or("holder unreadable".to_string(), |h| {
                format!(
                    "host {}, pid {}, since {}",
                    h.host,
                    h.pid,
                    rfc3339(h.started)
                )
            });
            bail!(Refused(format!(
                "{kind} into {bucket} is running ({holder}; lock {name}); only the shards of one run share a bucket; if it is not running, add --break-lock"
            )));
        }
        Ok(())
    }

    /// Creates the lock `name` holding `record` if it is absent; if a
    /// stale one (or with `break_lock`, any) is there, takes it over once.
    fn create(
        &mut self,
        name: &str,
        bucket: &Location,
        record: &LockRecord,
        break_lock: bool,
    ) -> Result<()> {
        let bytes = serde_json::to_vec(record)?;
        for _ in 0..2 {
            if self.store.create_if_absent(name, &bytes)? {
                return Ok(());
            }
            match read(self.store, name)? {
                // Our own write, answered "taken" by a retried request.
                Some(holder) if &holder == record => return Ok(()),
                Some(holder) if break_lock || holder.is_stale() => {
                    self.take_over(name, bucket, &holder)?;
                }
                Some(holder) => bail!(Refused(holder.refusal(bucket))),
                // Unreadable (not a lock record) and broken on purpose.
                None if break_lock => self.store.delete(&[name.to_string()])?,
                // Released between the two calls: create again.
                None => {}
            }
        }
        bail!(Refused(format!(
            "the lock for {bucket} cannot be read or keeps changing hands; if no other restore is running, add --break-lock"
        )))
    }

    /// Removes the stale lock `name` held by `holder`, after claiming the
    /// right to: of several restores taking over the same stale lock, only
    /// the one that creates the claim goes on.
    fn take_over(&mut self, name: &str, bucket: &Location, holder: &LockRecord) -> Result<()> {
        let claim = format!("{name}.taken-over.{}", holder.token);
        if !self
            .store
            .create_if_absent(&claim, holder.token.as_bytes())?
        {
            bail!(Refused(format!(
                "another restore is taking over the stale lock for {bucket} (host {}, pid {}); try again later",
                holder.host, holder.pid
            )));
        }
        self.takeover_claims.push(claim);
        if read(self.store, name)?.as_ref() == Some(holder) {
            self.store.delete(&[name.to_string()])?;
        }
        Ok(())
    }

    /// With the weaker protocol, reads every lock back, at least half a
    /// second after they were written: a restore that wrote at the same time has
    /// overwritten ours by then, and exactly one of us reads itself back;
    /// the other refuses. Locks created conditionally need no confirming.
    pub fn confirm(&self) -> Result<()> {
        if self.conditional {
            return Ok(());
        }
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
        ours.append(&mut self.takeover_claims);
        self.store.delete(&ours)
    }
}

impl Drop for RestoreLocks<'_, '_> {
    fn drop(&mut self) {
        let _ = self.release_held();
    }
}

/// A restore lock of `bucket` (its own or a shard's) while a restore into
/// it may still be running — there and not stale (an unreadable lock
/// counts as live) — as a phrase naming the lock object and its holder;
/// `None` when there is no such lock.
pub fn running_restore(store: &BackupStore<'_>, bucket: &Location) -> Result<Option<String>> {
    for (name, _) in locks_of(store, bucket)? {
        if let Some(running) = live_lock(store, &name)? {
            return Ok(Some(running));
        }
    }
    Ok(None)
}

/// The lock `name`, if it is there and live, as [`running_restore`] says it.
fn live_lock(store: &BackupStore<'_>, name: &str) -> Result<Option<String>> {
    let Some(bytes) = store.get_bytes(name)? else {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_name_tells_the_shard_count_of_its_run() {
        let bucket = Location::parse("s3://gitlab-uploads");
        let base = lock_name(&bucket);
        assert_eq!(base, ".stowage-lock.s3___gitlab-uploads");
        let shard = Shard::new(2, 3).unwrap();
        assert_eq!(
            shard_lock_name(&bucket, shard),
            ".stowage-lock.s3___gitlab-uploads@shard-2-of-3"
        );
        assert_eq!(shard_lock_name(&bucket, Shard::WHOLE), base);
        assert_eq!(shard_count_of(&base, &base), Some(1));
        assert_eq!(
            shard_count_of(&base, &shard_lock_name(&bucket, shard)),
            Some(3)
        );
        for other in [
            format!("{base}.taken-over.abc"),
            format!("{base}@shard-2-of-3.taken-over.abc"),
            format!("{base}-more"),
            format!("{base}@shard-x-of-3"),
            ".stowage-lock.s3___gitlab".to_string(),
        ] {
            assert_eq!(shard_count_of(&base, &other), None, "{other}");
        }
    }
}
