//! Objects written to a file as they are found, in key order, and read
//! back as a stream: a bucket's listing, or a component of the archive. A
//! restore lists its buckets while the archive is validated (before the
//! archive's objects are known), so each listing waits on disk instead of
//! in memory (at 1,000,000 objects, hundreds of MiB) until planning walks
//! it beside the archive's objects ([`super::merge`]), which wait on disk
//! too, from validation to verification.
//!
//! One JSON object a line: a key with a line break in it stays on its line.

use std::borrow::Cow;
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

/// Objects on disk, in key order; the file goes when this does.
pub struct SpilledObjects {
    file: NamedTempFile,
    /// The objects it holds.
    pub objects: usize,
}

/// One object, as a line of the file (written from borrowed strings).
#[derive(Serialize, Deserialize)]
struct SpilledObject<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    size: u64,
    md5: Option<Md5Digest>,
    #[serde(borrow)]
    etag: Option<Cow<'a, str>>,
    modified: Option<i64>,
}

impl SpilledObjects {
    /// Lists `location` through `provider` into a new file in `directory`,
    /// leaving out excluded keys and folder markers.
    pub fn write(
        provider: &LoadedPlugin,
        location: &Location,
        excludes: &ExcludeMatcher,
        directory: &Path,
    ) -> Result<SpilledObjects> {
        let mut writer = SpillWriter::new(directory, "listing.")?;
        provider.list_each(location, &mut |entries| {
            add_listed(&mut writer, entries, excludes)
                .with_context(|| format!("the listing of {location}"))
        })?;
        writer.finish()
    }

    /// An empty listing (of a bucket that does not exist), in `directory`.
    pub fn empty(directory: &Path) -> Result<SpilledObjects> {
        Ok(SpilledObjects {
            file: new_file(directory, "listing.")?,
            objects: 0,
        })
    }

    /// Its objects, in key order.
    pub fn read(&self) -> Result<impl Iterator<Item = Result<(String, Fingerprint)>>> {
        let file = self.file.reopen().context("cannot read objects back")?;
        Ok(BufReader::new(file).lines().map(|line| {
            let line = line.context("cannot read objects back")?;
            let object: SpilledObject<'_> = serde_json::from_str(&line)?;
            Ok(object.into_owned())
        }))
    }
}

/// Writes the listed objects of `entries` (a page in key order after the
/// last one, or a whole listing in any order) but excluded keys and folder
/// markers.
fn add_listed(
    writer: &mut SpillWriter,
    mut entries: Vec<ObjectEntry>,
    excludes: &ExcludeMatcher,
) -> Result<()> {
    entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    for entry in entries
        .into_iter()
        .filter(|e| is_listed_object(&e.key, excludes))
    {
        let (key, fingerprint) = listed_fingerprint(entry);
        writer.push(&key, &fingerprint)?;
    }
    Ok(())
}

/// Objects being written, in key order.
pub struct SpillWriter {
    file: NamedTempFile,
    out: BufWriter<std::fs::File>,
    /// The last key written: the next must come after it.
    last: Option<String>,
    objects: usize,
}

impl SpillWriter {
    /// A new file in `directory`, its name starting with `prefix`.
    pub fn new(directory: &Path, prefix: &str) -> Result<Self> {
        let file = new_file(directory, prefix)?;
        let out = BufWriter::new(file.as_file().try_clone()?);
        Ok(SpillWriter {
            file,
            out,
            last: None,
            objects: 0,
        })
    }

    /// Whether `key` may come next: after every key written.
    pub fn follows(&self, key: &str) -> bool {
        self.last.as_deref().is_none_or(|last| last < key)
    }

    /// Writes one object, refused if its key does not come after the last.
    pub fn push(&mut self, key: &str, fingerprint: &Fingerprint) -> Result<()> {
        if !self.follows(key) {
            let last = self.last.as_deref().unwrap_or_default();
            bail!("not in key order: {key:?} came after {last:?}");
        }
        let object = SpilledObject {
            key: Cow::Borrowed(key),
            size: fingerprint.size,
            md5: fingerprint.md5,
            etag: fingerprint.etag.as_deref().map(Cow::Borrowed),
            modified: fingerprint.modified,
        };
        serde_json::to_writer(&mut self.out, &object)?;
        self.out.write_all(b"\n")?;
        self.objects += 1;
        match &mut self.last {
            Some(last) => key.clone_into(last),
            None => self.last = Some(key.to_string()),
        }
        Ok(())
    }

    /// The objects written.
    pub fn finish(mut self) -> Result<SpilledObjects> {
        self.out.flush().context("cannot write objects to disk")?;
        Ok(SpilledObjects {
            file: self.file,
            objects: self.objects,
        })
    }
}

/// A new file in `directory`, removed when dropped. Named as a partial
/// file of this process (`<prefix><random>.<pid>` and [`PARTIAL_SUFFIX`]),
/// so that the next run removes it if this one is killed.
fn new_file(directory: &Path, prefix: &str) -> Result<NamedTempFile> {
    std::fs::create_dir_all(directory)
        .with_context(|| format!("cannot create {}", directory.display()))?;
    tempfile::Builder::new()
        .prefix(prefix)
        .suffix(&format!(".{}{PARTIAL_SUFFIX}", std::process::id()))
        .tempfile_in(directory)
        .with_context(|| format!("cannot create a file in {}", directory.display()))
}

impl SpilledObject<'_> {
    fn into_owned(self) -> (String, Fingerprint) {
        let fingerprint = Fingerprint {
            size: self.size,
            md5: self.md5,
            etag: self.etag.map(|etag| etag.into()),
            modified: self.modified,
        };
        (self.key.into_owned(), fingerprint)
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
        let mut writer = SpillWriter::new(directory.path(), "listing.").unwrap();
        // A whole listing comes in any order; odd keys keep their line.
        let odd = "line\nbreak \"quoted\" ünï";
        let listed = vec![
            entry("b", 2),
            entry(odd, 3),
            entry("a", 1),
            entry("skip/x", 9),
            entry("dir/", 0),
        ];
        add_listed(&mut writer, listed, &excludes).unwrap();
        add_listed(&mut writer, vec![entry("m", 4)], &excludes).unwrap();
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
        let mut writer = SpillWriter::new(directory.path(), "listing.").unwrap();
        add_listed(&mut writer, vec![entry("b", 1)], &excludes).unwrap();
        let error = add_listed(&mut writer, vec![entry("a", 1)], &excludes).unwrap_err();
        assert_eq!(
            error.to_string(),
            "not in key order: \"a\" came after \"b\""
        );
    }

    #[test]
    fn a_listing_is_a_partial_file_of_this_process_removed_with_it() {
        let directory = tempfile::tempdir().unwrap();
        let spilled = SpilledObjects::empty(directory.path()).unwrap();
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
