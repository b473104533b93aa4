//! A sharded restore's validation, shared between its shards.
//!
//! A shard that reads the archive by ranges validates only the component
//! tarballs it fetched (with their manifests; every shard checks the whole
//! outer tar). It records a verdict per component in the backup
//! destination — `.stowage-validated.<archive>.<id>.<component>`, `<id>`
//! from the archive's size, ETag and modification time as listed, so a
//! verdict never speaks for another archive of the same name — holding
//! the tarball's place in the archive, the MD5 of its bytes and the digest
//! of the archive's layout. Then, before it changes anything, it waits
//! until every component tarball of the archive has a passing verdict
//! from whichever shard validated it, for the same archive and layout.
//! So no shard changes a bucket unless the whole archive validated, as in
//! an unsharded restore. A shard that finds the archive invalid records
//! failing verdicts, and the others stop with its reason instead of
//! waiting. Verdicts are small and stay behind: a shard re-run later finds
//! them and need not wait for the others again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::archive::read::{OuterArchive, TarballSpan};
use crate::exit::{InvalidArchive, Refused};
use crate::progress::Spinner;
use crate::restore::Shard;
use crate::store::backup_store::BackupStore;
use crate::store::lock::{file_safe, hostname};
use crate::sync::md5_digest::Md5Digest;
use crate::unix_time::{now, rfc3339};

/// How often a waiting shard lists the verdicts again.
const POLL: Duration = Duration::from_secs(2);

/// What a shard recorded about one component tarball.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Verdict {
    archive: String,
    layout: String,
    component: String,
    start: u64,
    len: u64,
    /// The MD5 of the tarball's bytes, when it passed.
    tarball_md5: Option<String>,
    /// Why it failed, when it did.
    problem: Option<String>,
    shard: String,
    host: String,
    at: u64,
}

/// The verdicts of one archive, as one shard writes and reads them.
pub struct SharedValidation<'s, 'r> {
    store: &'s BackupStore<'r>,
    /// What every verdict of this archive is named after.
    prefix: String,
    archive: String,
    layout: String,
    /// Every component tarball of the archive, by component.
    tarballs: BTreeMap<String, (u64, u64)>,
    shard: Shard,
}

impl<'s, 'r> SharedValidation<'s, 'r> {
    /// The verdicts about the archive `file_name` (with `identity`, see
    /// `RemoteArchive::identity`) whose outer tar is `outer`, kept in `store`.
    pub fn new(
        store: &'s BackupStore<'r>,
        file_name: &str,
        identity: &str,
        outer: &OuterArchive,
        shard: Shard,
    ) -> Self {
        let id = Md5Digest::from(Md5::new_with_prefix(identity.as_bytes())).to_string();
        SharedValidation {
            store,
            prefix: format!(".stowage-validated.{}.{}.", file_safe(file_name), &id[..12]),
            archive: file_name.to_string(),
            layout: outer.layout_digest().to_string(),
            tarballs: outer
                .tarballs()
                .map(
                    |TarballSpan {
                         component,
                         start,
                         len,
                     }| (component.to_string(), (start, len)),
                )
                .collect(),
            shard,
        }
    }

    /// Records that the tarballs of `components` passed validation, their
    /// bytes having the MD5s given.
    pub fn record_passed(&self, components: &[(String, Md5Digest)]) -> Result<()> {
        for (component, md5) in components {
            self.record(component, Some(md5.to_string()), None)?;
        }
        Ok(())
    }

    /// Records that this shard found the archive invalid while it
    /// validated `components`, for `problem`.
    pub fn record_failed(&self, components: &[String], problem: &str) -> Result<()> {
        for component in components {
            self.record(component, None, Some(problem.to_string()))?;
        }
        Ok(())
    }

    fn record(&self, component: &str, md5: Option<String>, problem: Option<String>) -> Result<()> {
        let (start, len) = self.tarballs[component];
        let verdict = Verdict {
            archive: self.archive.clone(),
            layout: self.layout.clone(),
            component: component.to_string(),
            start,
            len,
            tarball_md5: md5,
            problem,
            shard: self.shard.to_string(),
            host: hostname(),
            at: now(),
        };
        self.store.put_bytes(
            &format!("{}{component}", self.prefix),
            &serde_json::to_vec(&verdict)?,
        )
    }

    /// Waits until every component tarball of the archive has a passing
    /// verdict, at most `patience`. Fails as an invalid archive when a
    /// shard recorded a failing one or the verdicts speak of another
    /// layout; refuses when the patience runs out.
    /// The components in `own` passed in this shard (not read again).
    pub fn wait_for_all(&self, own: &[String], patience: Duration, quiet: bool) -> Result<()> {
        let started = Instant::now();
        let mut passed: BTreeSet<String> = own.iter().cloned().collect();
        let shown = Spinner::new(
            &format!(
                "wait for the other shards to validate their parts of {}",
                self.archive
            ),
            quiet,
        );
        loop {
            for name in self.store.file_names_starting_with(&self.prefix)? {
                let component = &name[self.prefix.len()..];
                if passed.contains(component) || !self.tarballs.contains_key(component) {
                    continue;
                }
                if self.judge(component, &self.store.get_listed(&name)?)? {
                    passed.insert(component.to_string());
                }
            }
            let waiting: Vec<&str> = self
                .tarballs
                .keys()
                .filter(|c| !passed.contains(*c))
                .map(String::as_str)
                .collect();
            if waiting.is_empty() {
                drop(shown);
                return Ok(());
            }
            if started.elapsed() >= patience {
                bail!(Refused(format!(
                    "no other shard validated {} of {} within {}; nothing was changed; run this shard again once the others have (or give more time with --shard-wait)",
                    waiting.join(", "),
                    self.archive,
                    humantime::format_duration(patience)
                )));
            }
            crate::interrupt::check()?;
            std::thread::sleep(POLL);
        }
    }

    /// Whether the verdict `bytes` about `component` says it passed, for
    /// this archive as this shard read it; an error when it failed or does
    /// not match.
    fn judge(&self, component: &str, bytes: &[u8]) -> Result<bool> {
        let Ok(verdict) = serde_json::from_slice::<Verdict>(bytes) else {
            // Half written by a store without atomic writes: read it again.
            return Ok(false);
        };
        let (start, len) = self.tarballs[component];
        if verdict.layout != self.layout || (verdict.start, verdict.len) != (start, len) {
            bail!(InvalidArchive(format!(
                "{}: shard {} read another layout than this shard (the archive changed between them); run the restore again",
                self.archive, verdict.shard
            )));
        }
        if let Some(problem) = verdict.problem {
            bail!(InvalidArchive(format!(
                "shard {} (host {}, {}) found {} invalid: {problem}; no bucket was changed by this shard (if that was a passing fault, such as a damaged download, remove {}* from the backup destination and run the shards again)",
                verdict.shard,
                verdict.host,
                rfc3339(verdict.at),
                self.archive,
                self.prefix
            )));
        }
        Ok(verdict.tarball_md5.is_some())
    }
}
