//! A bucket's listing written to a file as it arrives, in key order, and
//! read back as a stream: a restore lists its buckets while the archive is
//! validated (before the archive's inventory is known), so the listing
//! waits on disk instead of in memory (at 1,000,000 objects, hundreds of
//! MiB) until planning walks it beside the archive ([`super::merge`]).
//!
//! One JSON object a line: a key with a line break in it stays on its line.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use stowage_exclude::ExcludeMatcher;
use stowage_plugin_api::Location;
use tempfile::NamedTempFile;

use crate::plugin::LoadedPlugin;
use crate::sync::md5_digest::Md5Digest;
use crate::sync::plan::{is_listed_object, listed_fingerprint, Fingerprint};

/// A listing on disk, in key order; the file goes when this does.
pub struct SpilledListing {
    file: NamedTempFile,
    /// The objects it holds.
    pub objects: usize,
}

/// One listed object, as a line of the file.
#[derive(Serialize, Deserialize)]
struct SpilledObject {
    key: String,
    size: u64,
    md5: Option<Md5Digest>,
    etag: Option<Box<str>>,
    modified: Option<i64>,
}

impl SpilledListing {
    /// Lists `location` through `provider` into a new file in `directory`,
    /// leaving out excluded keys and folder markers.
    pub fn write(
        provider: &LoadedPlugin,
        location: &Location,
        excludes: &ExcludeMatcher,
        directory: &Path,
    ) -> Result<SpilledListing> {
        let file = new_file(directory)?;
        let mut out = BufWriter::new(file.as_file());
        let mut last: Option<String> = None;
        let mut objects = 0;
        provider.list_each(location, &mut |mut entries| {
            // A whole listing comes in any order; a page is sorted already.
            entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
            for entry in entries
                .into_iter()
                .filter(|e| is_listed_object(&e.key, excludes))
            {
                let (key, fingerprint) = listed_fingerprint(entry);
                if let Some(last) = last.as_ref().filter(|last| **last >= key) {
                    bail!("the listing of {location} is not in key order: {key:?} came after {last:?}");
                }
                serde_json::to_writer(&mut out, &SpilledObject::new(&key, fingerprint))?;
                out.write_all(b"\n")?;
                objects += 1;
                last = Some(key);
            }
            Ok(())
        })?;
        out.flush()
            .with_context(|| format!("cannot write to {}", directory.display()))?;
        drop(out);
        Ok(SpilledListing { file, objects })
    }

    /// An empty listing (of a bucket that does not exist), in `directory`.
    pub fn empty(directory: &Path) -> Result<SpilledListing> {
        Ok(SpilledListing {
            file: new_file(directory)?,
            objects: 0,
        })
    }

    /// Its objects, in key order.
    pub fn read(&self) -> Result<impl Iterator<Item = Result<(String, Fingerprint)>>> {
        let file = self.file.reopen().context("cannot read a listing back")?;
        Ok(BufReader::new(file).lines().map(|line| {
            let object: SpilledObject = serde_json::from_str(&line?)?;
            Ok(object.into_listed())
        }))
    }
}

/// A new file for a listing in `directory`, removed when dropped.
fn new_file(directory: &Path) -> Result<NamedTempFile> {
    std::fs::create_dir_all(directory)
        .with_context(|| format!("cannot create {}", directory.display()))?;
    NamedTempFile::with_prefix_in("listing.", directory)
        .with_context(|| format!("cannot create a file in {}", directory.display()))
}

impl SpilledObject {
    fn new(key: &str, fingerprint: Fingerprint) -> SpilledObject {
        SpilledObject {
            key: key.to_string(),
            size: fingerprint.size,
            md5: fingerprint.md5,
            etag: fingerprint.etag,
            modified: fingerprint.modified,
        }
    }

    fn into_listed(self) -> (String, Fingerprint) {
        let fingerprint = Fingerprint {
            size: self.size,
            md5: self.md5,
            etag: self.etag,
            modified: self.modified,
        };
        (self.key, fingerprint)
    }
}
