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
use stowage_local_tree::PARTIAL_SUFFIX;
use stowage_plugin_api::{Location, ObjectEntry};
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
        let mut writer = SpillWriter::new(directory, excludes)?;
        provider.list_each(location, &mut |entries| {
            writer
                .add(entries)
                .with_context(|| format!("the listing of {location}"))
        })?;
        writer.finish()
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

/// A listing being written.
struct SpillWriter<'e> {
    file: NamedTempFile,
    out: BufWriter<std::fs::File>,
    excludes: &'e ExcludeMatcher,
    /// The last key written: the next must come after it.
    last: Option<String>,
    objects: usize,
}

impl<'e> SpillWriter<'e> {
    /// A new listing in `directory`, leaving out what `excludes` excludes.
    fn new(directory: &Path, excludes: &'e ExcludeMatcher) -> Result<Self> {
        let file = new_file(directory)?;
        let out = BufWriter::new(file.as_file().try_clone()?);
        Ok(SpillWriter {
            file,
            out,
            excludes,
            last: None,
            objects: 0,
        })
    }

    /// Writes the objects of `entries`: a page in key order after the
    /// last one, or a whole listing in any order.
    fn add(&mut self, mut entries: Vec<ObjectEntry>) -> Result<()> {
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        for entry in entries
            .into_iter()
            .filter(|e| is_listed_object(&e.key, self.excludes))
        {
            let (key, fingerprint) = listed_fingerprint(entry);
            if let Some(last) = self.last.as_ref().filter(|last| **last >= key) {
                bail!("not in key order: {key:?} came after {last:?}");
            }
            serde_json::to_writer(&mut self.out, &SpilledObject::new(&key, fingerprint))?;
            self.out.write_all(b"\n")?;
            self.objects += 1;
            self.last = Some(key);
        }
        Ok(())
    }

    /// The listing written.
    fn finish(mut self) -> Result<SpilledListing> {
        self.out.flush().context("cannot write a listing")?;
        Ok(SpilledListing {
            file: self.file,
            objects: self.objects,
        })
    }
}

/// A new file for a listing in `directory`, removed when dropped. Named
/// as a partial file of this process (`listing.<random>.<pid>` and
/// [`PARTIAL_SUFFIX`]), so that the next run removes it if this one is
/// killed.
fn new_file(directory: &Path) -> Result<NamedTempFile> {
    std::fs::create_dir_all(directory)
        .with_context(|| format!("cannot create {}", directory.display()))?;
    tempfile::Builder::new()
        .prefix("listing.")
        .suffix(&format!(".{}{PARTIAL_SUFFIX}", std::process::id()))
        .tempfile_in(directory)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, size: u64) -> ObjectEntry {
        ObjectEntry {
            key: key.to_string(),
            size,
            md5: Some("0123456789abcdef0123456789abcdef".to_string()),
            etag: Some("0123456789abcdef0123456789abcdef-2".to_string()),
            last_modified: Some(1_700_000_000),
        }
    }

    #[test]
    fn a_listing_reads_back_in_key_order_as_it_was_listed() {
        let directory = tempfile::tempdir().unwrap();
        let excludes = ExcludeMatcher::new(&["skip/**".to_string()]).unwrap();
        let mut writer = SpillWriter::new(directory.path(), &excludes).unwrap();
        // A whole listing comes in any order; odd keys keep their line.
        let odd = "line\nbreak \"quoted\" ünï";
        writer
            .add(vec![
                entry("b", 2),
                entry(odd, 3),
                entry("a", 1),
                entry("skip/x", 9),
                entry("dir/", 0),
            ])
            .unwrap();
        writer.add(vec![entry("m", 4)]).unwrap();
        let spilled = writer.finish().unwrap();
        assert_eq!(spilled.objects, 4);
        let read: Vec<(String, Fingerprint)> =
            spilled.read().unwrap().map(Result::unwrap).collect();
        let expected: Vec<(String, Fingerprint)> = ["a", "b", odd, "m"]
            .iter()
            .zip([1, 2, 3, 4])
            .map(|(key, size)| listed_fingerprint(entry(key, size)))
            .collect();
        assert_eq!(read, expected);
    }

    #[test]
    fn a_page_out_of_key_order_is_refused() {
        let directory = tempfile::tempdir().unwrap();
        let excludes = ExcludeMatcher::new::<String>(&[]).unwrap();
        let mut writer = SpillWriter::new(directory.path(), &excludes).unwrap();
        writer.add(vec![entry("b", 1)]).unwrap();
        let error = writer.add(vec![entry("a", 1)]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "not in key order: \"a\" came after \"b\""
        );
    }

    #[test]
    fn a_listing_is_a_partial_file_of_this_process_removed_with_it() {
        let directory = tempfile::tempdir().unwrap();
        let spilled = SpilledListing::empty(directory.path()).unwrap();
        let path = spilled.file.path().to_path_buf();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let ours = format!(".{}{PARTIAL_SUFFIX}", std::process::id());
        assert!(
            name.starts_with("listing.") && name.ends_with(&ours),
            "{name}"
        );
        drop(spilled);
        assert!(!path.exists());
    }
}
