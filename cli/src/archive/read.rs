//! Reading archives strictly: validating a whole archive before any bucket
//! is touched, and extracting one component at a time.
//!
//! An archive is refused — with one line naming the entry and the reason —
//! when: a tar (outer or inner) ends before its end-of-archive marker or
//! has anything but zeros after it; a gzip member's CRC or length does not
//! hold; an entry is a link, a device or anything but a file or folder; a
//! name is absolute, has a `..` segment, is not UTF-8, holds a control
//! character, or appears twice; a size passes the extraction limit; or a
//! component's content differs from its manifest.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use filetime::FileTime;
use flate2::read::MultiGzDecoder;
use md5::{Digest, Md5};
use stowage_local_tree::{key_to_relative_path, write_atomically};

use crate::archive::manifest::{DigestedManifest, Manifest, ObjectsDigest};
use crate::exit::InvalidArchive;
use crate::parallel::{cores, map_in_parallel};
use crate::sync::md5_digest::Md5Digest;
use crate::sync::merge::{SourceCursor, SourceWalk};
use crate::sync::plan::{Fingerprint, Inventory, Key};
use crate::sync::spill::{SpillWriter, SpilledObjects};

/// Size of a tar block.
const BLOCK: u64 = 512;

/// Bounds on what reading an archive may produce.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most bytes one component may decompress to (a gzip bomb stops here).
    pub max_component_bytes: u64,
}

impl Default for Limits {
    /// 1 TiB per component.
    fn default() -> Self {
        Limits {
            max_component_bytes: 1 << 40,
        }
    }
}

/// What a validated archive holds.
pub struct ArchiveIndex {
    /// The text of `backup_information.yml`, if present.
    pub information: Option<String>,
    /// Component name → its objects, MD5s computed from the archive's bytes.
    pub components: BTreeMap<String, ComponentIndex>,
    /// Top-level entries that are not object storage (`db`, `repositories`, ...).
    pub ignored: BTreeSet<String>,
}

/// One component of a validated archive.
pub struct ComponentIndex {
    /// Its objects, on disk in key order.
    pub objects: SpilledObjects,
    /// Whether its tarball holds its files in key order (Stowage writes
    /// them so), so that extraction meets them in the order of `objects`.
    pub in_key_order: bool,
    /// Whether a Stowage manifest was present (and matched).
    pub has_manifest: bool,
    /// The MD5 of its tarball's bytes, as they were read.
    pub tarball_md5: Option<Md5Digest>,
}

fn invalid(message: String) -> anyhow::Error {
    InvalidArchive(message).into()
}

/// A tar reader's error as text fit for a terminal: the tar crate quotes
/// the header bytes it could not parse, which for a file that is not a
/// tar archive (or a damaged one) are raw binary.
fn tar_error(error: &std::io::Error) -> String {
    let text = error.to_string();
    if text
        .chars()
        .any(|c| c.is_control() || c == char::REPLACEMENT_CHARACTER)
    {
        "a damaged tar header".to_string()
    } else {
        text
    }
}

/// Refuses an archive that does not start with a tar header: a POSIX or
/// GNU header has "ustar" at offset 257. Says what it begins with instead,
/// in hex, never as raw bytes. Reads the first block of `archive`, then
/// goes back to its start.
fn check_tar_magic(archive: &mut (impl Read + Seek), what: &str) -> Result<()> {
    let cannot_read = |e: io::Error| anyhow::anyhow!("cannot read archive {what}: {e}");
    // One read of the block where it can (a read by ranges is a request).
    let mut block = [0u8; BLOCK as usize];
    let mut filled = 0;
    while filled < block.len() {
        match archive.read(&mut block[filled..]).map_err(cannot_read)? {
            0 => break,
            n => filled += n,
        }
    }
    let header = &block[..filled];
    archive.seek(SeekFrom::Start(0)).map_err(cannot_read)?;
    if header.get(257..262) == Some(b"ustar".as_slice()) {
        return Ok(());
    }
    if header.is_empty() {
        bail!(invalid(format!("{what}: an empty file, not a tar archive")));
    }
    let start: Vec<String> = header.iter().take(8).map(|b| format!("{b:02x}")).collect();
    bail!(invalid(format!(
        "{what}: not a tar archive (it begins with {})",
        start.join(" ")
    )))
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Tells `on_read` how many bytes each read returned (a progress bar).
struct Reporting<'a, R> {
    inner: R,
    on_read: &'a (dyn Fn(u64) + Sync),
}

impl<R: Read> Read for Reporting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.on_read)(n as u64);
        Ok(n)
    }
}

/// Hashes the bytes read through it.
struct Hashing<R> {
    inner: R,
    hasher: Md5,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Seeking sets the count to the new position: what a reader that had read
/// its way there would have counted.
impl<R: Seek> Seek for Counting<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.count = self.inner.seek(to)?;
        Ok(self.count)
    }
}

/// An entry's kind, after its name and type were checked.
enum Checked {
    /// A regular file, with its key (`./a/b` → `a/b`).
    File(String),
    /// A folder (nothing to do).
    Folder,
}

/// Checks an entry's name and type; `what` names the tar for messages.
fn check_entry<R: Read>(entry: &tar::Entry<'_, R>, what: &str) -> Result<Checked> {
    let raw = entry.path_bytes();
    let name = std::str::from_utf8(&raw).map_err(|_| {
        invalid(format!(
            "{what}: an entry name is not valid UTF-8 ({})",
            String::from_utf8_lossy(&raw)
        ))
    })?;
    if name.chars().any(char::is_control) {
        bail!(invalid(format!(
            "{what}: entry name {name:?} holds a control character"
        )));
    }
    if name.starts_with('/') {
        bail!(invalid(format!(
            "{what}: entry {name:?} has an absolute path"
        )));
    }
    if name.split('/').any(|segment| segment == "..") {
        bail!(invalid(format!(
            "{what}: entry {name:?} has a '..' segment"
        )));
    }
    let kind = entry.header().entry_type();
    let key = name.trim_start_matches("./").trim_end_matches('/');
    match kind {
        tar::EntryType::Directory => Ok(Checked::Folder),
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            key_to_relative_path(key)
                .map_err(|e| invalid(format!("{what}: entry {name:?}: {e}")))?;
            Ok(Checked::File(key.to_string()))
        }
        other => bail!(invalid(format!(
            "{what}: entry {name:?} is a {}, not a file or folder",
            describe_type(other)
        ))),
    }
}

fn describe_type(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Symlink => "symbolic link",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Char | tar::EntryType::Block => "device",
        tar::EntryType::Fifo => "FIFO",
        _ => "special entry",
    }
}

/// The end of an entry's data, padded to the next block.
fn entry_end<R: Read>(entry: &tar::Entry<'_, R>) -> u64 {
    entry.raw_file_position() + entry.size().div_ceil(BLOCK) * BLOCK
}

/// After the last entry ending at `end`, a tar holds its end-of-archive
/// marker (two zero blocks), then nothing but zero padding. `consumed` is
/// how much was read so far; the rest is read from `rest`, and all of it
/// may not pass `limit` bytes (zeros compress well).
fn check_end(what: &str, end: u64, consumed: u64, rest: &mut impl Read, limit: u64) -> Result<()> {
    let mut tail = 0u64;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = rest
            .read(&mut buffer)
            .map_err(|e| invalid(format!("{what}: cannot read to its end: {e}")))?;
        if n == 0 {
            break;
        }
        if buffer[..n].iter().any(|&b| b != 0) {
            bail!(invalid(format!(
                "{what}: data after the end of the archive"
            )));
        }
        tail += n as u64;
        if consumed + tail > limit {
            bail!(invalid(format!(
                "{what}: more than the extraction limit of {limit} bytes"
            )));
        }
    }
    if consumed + tail < end + 2 * BLOCK {
        bail!(invalid(format!(
            "{what}: truncated (no end-of-archive marker)"
        )));
    }
    Ok(())
}

/// Reads a component's `.tar.gz` stream to its very end (so every gzip
/// CRC is checked), handing each file to `on_file(key, size, mtime, data)`.
fn read_component<R: Read>(
    stream: R,
    component: &str,
    limits: Limits,
    mut on_file: impl FnMut(&str, u64, u64, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let what = format!("{component}.tar.gz");
    let mut decoded = Counting {
        inner: MultiGzDecoder::new(stream),
        count: 0,
    };
    let mut end = 0;
    {
        let mut archive = tar::Archive::new(&mut decoded);
        let entries = archive
            .entries()
            .map_err(|e| invalid(format!("{what}: not a tar.gz: {}", tar_error(&e))))?;
        for entry in entries {
            crate::interrupt::check()?;
            let mut entry = entry.map_err(|e| invalid(format!("{what}: {}", tar_error(&e))))?;
            end = entry_end(&entry);
            if end > limits.max_component_bytes {
                bail!(invalid(format!(
                    "{what}: more than the extraction limit of {} bytes",
                    limits.max_component_bytes
                )));
            }
            let Checked::File(key) = check_entry(&entry, &what)? else {
                continue;
            };
            let size = entry.size();
            let mtime = entry.header().mtime().unwrap_or(0);
            on_file(&key, size, mtime, &mut entry)?;
        }
    }
    let consumed = decoded.count;
    check_end(
        &what,
        end,
        consumed,
        &mut decoded,
        limits.max_component_bytes,
    )
}

/// Hashes everything `data` yields, checking it is `size` bytes.
fn hash_exactly(
    data: &mut dyn Read,
    size: u64,
    sink: &mut dyn Write,
    what: &str,
) -> Result<Md5Digest> {
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = data
            .read(&mut buffer)
            .map_err(|e| invalid(format!("{what}: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        sink.write_all(&buffer[..n])?;
        total += n as u64;
    }
    if total != size {
        bail!(invalid(format!(
            "{what}: {total} bytes where the header says {size}"
        )));
    }
    Ok(Md5Digest::from(hasher))
}

/// The component a top-level entry name is the tarball of.
fn tarball_component(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".tar.gz")?;
    (!stem.is_empty()
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then_some(stem)
}

/// Where an entry's data lies in the outer tar.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: u64,
    len: u64,
}

/// Walks the outer tar at `path`, checking every entry, and hands each
/// top-level entry to `on_entry(name, span, data)`; stops early when it
/// returns `false` (then the end of the archive is not checked). What
/// `on_entry` leaves unread is skipped by seeking, not read: a truncated
/// archive still fails, at its end.
fn walk_outer(
    path: &Path,
    on_entry: impl FnMut(&str, Span, &mut dyn Read) -> Result<bool>,
) -> Result<bool> {
    walk_outer_of(open_archive(path)?, &archive_name(path), on_entry)
}

/// How messages name the archive at `path`: its file name.
fn archive_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The archive at `path`, opened for reading.
fn open_archive(path: &Path) -> Result<BufReader<File>> {
    let file =
        File::open(path).with_context(|| format!("cannot open archive {}", path.display()))?;
    Ok(BufReader::new(file))
}

/// [`walk_outer`] over any reader of an archive (`what` names it): a local
/// file, or one read by ranges from a bucket.
fn walk_outer_of(
    mut archive: impl Read + Seek,
    what: &str,
    mut on_entry: impl FnMut(&str, Span, &mut dyn Read) -> Result<bool>,
) -> Result<bool> {
    check_tar_magic(&mut archive, what)?;
    let mut counted = Counting {
        inner: archive,
        count: 0,
    };
    let mut seen = BTreeSet::new();
    let mut end = 0;
    {
        let mut archive = tar::Archive::new(&mut counted);
        let entries = archive
            .entries_with_seek()
            .map_err(|e| invalid(format!("{what}: not a tar archive: {}", tar_error(&e))))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| invalid(format!("{what}: {}", tar_error(&e))))?;
            end = entry_end(&entry);
            let name = match check_entry(&entry, what)? {
                Checked::File(key) => key,
                Checked::Folder => continue,
            };
            if !seen.insert(name.clone()) {
                bail!(invalid(format!("{what}: entry {name:?} appears twice")));
            }
            let span = Span {
                start: entry.raw_file_position(),
                len: entry.size(),
            };
            if !on_entry(&name, span, &mut entry)? {
                return Ok(false);
            }
        }
    }
    let consumed = counted.count;
    check_end(what, end, consumed, &mut counted, u64::MAX)?;
    Ok(true)
}

/// An archive whose outer tar was checked ([`read_outer`]); its component
/// tarballs are not read yet ([`OuterArchive::validate`]).
#[derive(Debug)]
pub struct OuterArchive {
    information: Option<String>,
    manifests: BTreeMap<String, ManifestDigest>,
    /// Component name and where its tarball lies, in archive order.
    tarballs: Vec<(String, Span)>,
    ignored: BTreeSet<String>,
}

/// Walks the outer tar of the archive at `path` — every entry name and
/// type, the end-of-archive marker — and reads its small entries (backup
/// information, manifests). Quick: the component tarballs and the entries
/// that are not object storage are skipped by seeking.
pub fn read_outer(path: &Path) -> Result<OuterArchive> {
    read_outer_of(open_archive(path)?, &archive_name(path))
}

/// [`read_outer`] over any reader of an archive (`what` names it in
/// messages): what it reads of a bucket's archive by ranges (the headers,
/// the small entries and the end) is all a sharded restore fetches before
/// it knows which component tarballs are its own.
pub fn read_outer_of(archive: impl Read + Seek, what: &str) -> Result<OuterArchive> {
    let mut outer = OuterArchive {
        information: None,
        manifests: BTreeMap::new(),
        tarballs: Vec::new(),
        ignored: BTreeSet::new(),
    };
    walk_outer_of(archive, what, |name, span, data| {
        if name == "backup_information.yml" {
            let mut text = String::new();
            // Buffered here, not below: the archive may be a bucket read by
            // ranges, where every read is a request.
            BufReader::new(data)
                .take(1 << 20)
                .read_to_string(&mut text)
                .map_err(|e| invalid(format!("{name}: {e}")))?;
            outer.information = Some(text);
        } else if let Some(component) = name
            .strip_prefix("manifests/")
            .and_then(|n| n.strip_suffix(".json"))
        {
            let manifest: DigestedManifest = serde_json::from_reader(BufReader::new(data))
                .map_err(|e| invalid(format!("{name}: not a valid manifest: {e}")))?;
            if manifest.component != component {
                bail!(invalid(format!(
                    "{name}: names component {:?}",
                    manifest.component
                )));
            }
            outer.manifests.insert(
                component.to_string(),
                ManifestDigest {
                    span,
                    digest: manifest.digest,
                },
            );
        } else if let Some(component) = tarball_component(name) {
            outer.tarballs.push((component.to_string(), span));
        } else {
            // Not object storage (a database dump, repositories): only its
            // place in the outer tar is checked.
            let top = name.split('/').next().unwrap_or(name);
            outer.ignored.insert(top.to_string());
        }
        Ok(true)
    })?;
    Ok(outer)
}

/// A component tarball's place in the outer tar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TarballSpan<'a> {
    /// The component it holds.
    pub component: &'a str,
    /// Where its bytes begin in the outer tar.
    pub start: u64,
    /// How many bytes it has.
    pub len: u64,
}

impl OuterArchive {
    /// Every component tarball, in archive order.
    pub fn tarballs(&self) -> impl Iterator<Item = TarballSpan<'_>> {
        self.tarballs.iter().map(|(component, span)| TarballSpan {
            component,
            start: span.start,
            len: span.len,
        })
    }

    /// Whether the archive holds `component`'s tarball.
    pub fn has_component(&self, component: &str) -> bool {
        self.tarballs.iter().any(|(name, _)| name == component)
    }

    /// A digest of where the archive keeps what a restore reads: every
    /// tarball's and manifest's name and span. Two readers of one archive
    /// (the shards of a run) compute the same.
    pub fn layout_digest(&self) -> Md5Digest {
        let mut hasher = Md5::new();
        let manifests = self
            .manifests
            .iter()
            .map(|(component, m)| (format!("manifests/{component}.json"), m.span));
        let tarballs = self
            .tarballs
            .iter()
            .map(|(component, span)| (format!("{component}.tar.gz"), *span));
        for (name, span) in manifests.chain(tarballs) {
            hasher.update((name.len() as u64).to_le_bytes());
            hasher.update(name.as_bytes());
            hasher.update(span.start.to_le_bytes());
            hasher.update(span.len.to_le_bytes());
        }
        hasher.into()
    }

    /// Reads the component tarballs `validating` accepts (all of them for
    /// a whole restore; a shard's own when the others validate the rest)
    /// of the archive at `path` to their ends, and checks the rest of what
    /// the module docs list for them and their manifests. Nothing is
    /// written but each component's objects, to a file in `directory`. The
    /// tarballs are decompressed and hashed in parallel, one core each;
    /// `on_read` is told every count of compressed bytes read. The index
    /// holds the components validated.
    pub fn validate(
        self,
        path: &Path,
        limits: Limits,
        validating: &dyn Fn(&str) -> bool,
        on_read: &(dyn Fn(u64) + Sync),
        directory: &Path,
    ) -> Result<ArchiveIndex> {
        let mut index = ArchiveIndex {
            information: self.information,
            components: BTreeMap::new(),
            ignored: self.ignored,
        };
        let (read, skipped): (Vec<_>, Vec<_>) = self
            .tarballs
            .into_iter()
            .partition(|(component, _)| validating(component));
        let found = map_in_parallel(read, cores(), |(component, span)| {
            let objects = component_objects(path, &component, span, limits, on_read, directory);
            (component, objects)
        });
        let mut digests = BTreeMap::new();
        for (component, objects) in found {
            let (found, tarball_md5) = objects?;
            digests.insert(component.clone(), found.digest);
            index.components.insert(
                component,
                ComponentIndex {
                    objects: found.spilled,
                    in_key_order: found.in_key_order,
                    has_manifest: false,
                    tarball_md5: Some(tarball_md5),
                },
            );
        }
        for (component, manifest) in self.manifests {
            let Some(found) = index.components.get_mut(&component) else {
                if skipped.iter().any(|(name, _)| *name == component) {
                    continue;
                }
                bail!(invalid(format!(
                    "manifests/{component}.json has no {component}.tar.gz"
                )));
            };
            if digests[&component] != manifest.digest {
                // Read again only to say what differs.
                let listed = manifest_at(path, manifest.span)?;
                let found: Inventory = found
                    .objects
                    .read()?
                    .map(|object| object.map(|(key, f)| (Key::from(key), f)))
                    .collect::<Result<_>>()?;
                let difference = manifest_difference(&listed, &found)
                    .unwrap_or_else(|| "it lists an object more than once".to_string());
                bail!(invalid(format!(
                    "{component}.tar.gz differs from its manifest: {difference}"
                )));
            }
            found.has_manifest = true;
        }
        Ok(index)
    }
}

/// A manifest as validation keeps it while the tarballs are read: where it
/// lies in the archive and the [`ObjectsDigest`] of its objects. The
/// objects themselves are not kept: at 100,000 objects their keys were
/// ~17 MiB alive beside the bucket listings, at the restore's peak.
#[derive(Debug)]
struct ManifestDigest {
    span: Span,
    digest: Md5Digest,
}

/// The manifest at `span` of the archive at `path` (already read once by
/// [`read_outer`], so it parses).
fn manifest_at(path: &Path, span: Span) -> Result<Manifest> {
    serde_json::from_reader(read_span(path, span, 8 * 1024)?)
        .map_err(|e| invalid(format!("a manifest no longer reads: {e}")))
}

/// The entry data at `span` of the archive at `path`, from its own file
/// handle (read through a buffer of `buffer` bytes).
fn read_span(path: &Path, span: Span, buffer: usize) -> Result<io::Take<BufReader<File>>> {
    let mut file =
        File::open(path).with_context(|| format!("cannot open archive {}", path.display()))?;
    file.seek(SeekFrom::Start(span.start))
        .with_context(|| format!("cannot read archive {}", path.display()))?;
    Ok(BufReader::with_capacity(buffer, file).take(span.len))
}

/// A component's objects as validation found them.
struct FoundObjects {
    /// On disk, in key order.
    spilled: SpilledObjects,
    /// Their [`ObjectsDigest`].
    digest: Md5Digest,
    /// Whether the tarball held them in key order.
    in_key_order: bool,
}

/// A component's objects written to disk as its tarball is read: straight
/// through while the tarball comes in key order, as Stowage writes it;
/// from the first key out of order on (another tool's tarball), gathered
/// in memory and sorted at the end. A name that appears twice is found
/// either way: in key order it cannot, and sorted it is next to itself.
struct FoundObjectsWriter<'d> {
    writer: SpillWriter,
    digest: ObjectsDigest,
    /// Every object, once one came out of key order.
    unsorted: Option<Vec<(String, Fingerprint)>>,
    directory: &'d Path,
    /// The tarball, for messages.
    what: String,
}

impl<'d> FoundObjectsWriter<'d> {
    fn new(directory: &'d Path, component: &str) -> Result<Self> {
        Ok(FoundObjectsWriter {
            writer: SpillWriter::new(directory, "archive.")?,
            digest: ObjectsDigest::default(),
            unsorted: None,
            directory,
            what: format!("{component}.tar.gz"),
        })
    }

    fn add(&mut self, key: &str, found: Fingerprint) -> Result<()> {
        self.digest.add(key, found.size, found.md5);
        if let Some(objects) = &mut self.unsorted {
            objects.push((key.to_string(), found));
        } else if self.writer.follows(key) {
            self.writer.push(key, &found)?;
        } else {
            let fresh = SpillWriter::new(self.directory, "archive.")?;
            let written = std::mem::replace(&mut self.writer, fresh).finish()?;
            let mut objects = written.read()?.collect::<Result<Vec<_>>>()?;
            objects.push((key.to_string(), found));
            self.unsorted = Some(objects);
        }
        Ok(())
    }

    fn finish(mut self) -> Result<FoundObjects> {
        let in_key_order = self.unsorted.is_none();
        if let Some(mut objects) = self.unsorted.take() {
            objects.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            if let Some(twice) = objects.windows(2).find(|pair| pair[0].0 == pair[1].0) {
                let (what, key) = (&self.what, &twice[0].0);
                bail!(invalid(format!("{what}: entry {key:?} appears twice")));
            }
            for (key, found) in objects {
                self.writer.push(&key, &found)?;
            }
        }
        Ok(FoundObjects {
            spilled: self.writer.finish()?,
            digest: self.digest.finish(),
            in_key_order,
        })
    }
}

/// Reads one component's tarball, at `span` of the archive at `path`, to
/// its end: every object's size and MD5 from its bytes (written to a file
/// in `directory`), and the MD5 of the tarball's own bytes.
fn component_objects(
    path: &Path,
    component: &str,
    span: Span,
    limits: Limits,
    on_read: &(dyn Fn(u64) + Sync),
    directory: &Path,
) -> Result<(FoundObjects, Md5Digest)> {
    let mut data = Hashing {
        inner: Reporting {
            inner: read_span(path, span, 256 * 1024)?,
            on_read,
        },
        hasher: Md5::new(),
    };
    let mut objects = FoundObjectsWriter::new(directory, component)?;
    read_component(
        &mut data,
        component,
        limits,
        |key, size, _mtime, content| {
            let md5 = hash_exactly(
                content,
                size,
                &mut io::sink(),
                &format!("{component}.tar.gz: {key}"),
            )?;
            objects.add(key, Fingerprint::content(size, md5))
        },
    )?;
    // Whatever the gzip reader left of the span counts too.
    io::copy(&mut data, &mut io::sink())
        .map_err(|e| invalid(format!("{component}.tar.gz: {e}")))?;
    Ok((objects.finish()?, data.hasher.into()))
}

/// The first object where `manifest` and what the tarball holds differ, described.
fn manifest_difference(manifest: &Manifest, found: &Inventory) -> Option<String> {
    for object in &manifest.objects {
        match found.get(object.key.as_str()) {
            None => return Some(format!("{} is missing", object.key)),
            Some(f) if f.size != object.size || f.md5 != Some(object.md5) => {
                return Some(format!("{} has other content", object.key))
            }
            Some(_) => {}
        }
    }
    if found.len() == manifest.objects.len() {
        return None;
    }
    let listed: std::collections::HashSet<&str> =
        manifest.objects.iter().map(|o| o.key.as_str()).collect();
    found
        .keys()
        .find(|k| !listed.contains(&***k))
        .map(|k| format!("{k} is not in the manifest"))
}

/// Reads `component`'s tarball in the archive at `path`, handing each file
/// `wanted(key)` accepts to `on_file(key, size, archive mtime, content)`
/// (the others are read past). Stops after that tarball.
pub fn read_files(
    path: &Path,
    component: &str,
    limits: Limits,
    wanted: impl Fn(&str) -> bool,
    mut on_file: impl FnMut(&str, u64, u64, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let tarball = format!("{component}.tar.gz");
    let mut found = false;
    walk_outer(path, |name, _span, data| {
        if name != tarball {
            return Ok(true);
        }
        found = true;
        read_component(data, component, limits, |key, size, mtime, content| {
            if wanted(key) {
                on_file(key, size, mtime, content)
            } else {
                io::copy(content, &mut io::sink())?;
                Ok(())
            }
        })?;
        Ok(false)
    })?;
    if !found {
        bail!(invalid(format!(
            "{tarball} is no longer in {}",
            path.display()
        )));
    }
    Ok(())
}

/// The validated objects an extraction takes, each checked against its
/// file as the tarball hands it over.
pub enum ExpectedFiles<'a> {
    /// Met in key order, as a tarball in key order holds them: nothing
    /// held but the next.
    InKeyOrder(SourceCursor<'a>),
    /// Looked up by key: a tarball out of key order (held in memory).
    Held(Inventory),
}

impl<'a> ExpectedFiles<'a> {
    /// The objects of `walk` (in key order), for a tarball that holds its
    /// files `in_key_order` or not.
    pub fn new(walk: SourceWalk<'a>, in_key_order: bool) -> Result<Self> {
        Ok(match in_key_order {
            true => ExpectedFiles::InKeyOrder(SourceCursor::new(walk)),
            false => ExpectedFiles::Held(walk.collect::<Result<_>>()?),
        })
    }

    /// The object expected for the file `key`, if one is (each is given
    /// once); `missed` counts the expected ones passed over.
    fn take(&mut self, key: &str, missed: &mut usize) -> Result<Option<Fingerprint>> {
        match self {
            ExpectedFiles::Held(objects) => Ok(objects.remove(key)),
            ExpectedFiles::InKeyOrder(objects) => {
                while objects.next_if(|next| next < key)?.is_some() {
                    *missed += 1;
                }
                Ok(objects
                    .next_if(|next| next == key)?
                    .map(|(_, expected)| expected))
            }
        }
    }

    /// How many expected objects were never given.
    fn left(self) -> Result<usize> {
        match self {
            ExpectedFiles::Held(objects) => Ok(objects.len()),
            ExpectedFiles::InKeyOrder(mut objects) => {
                let mut left = 0;
                while objects.next_if(|_| true)?.is_some() {
                    left += 1;
                }
                Ok(left)
            }
        }
    }
}

/// Extracts the files of `component` that `expected` lists (all, or only
/// those a restore will upload) from the archive, each into the directory
/// `directory_of` gives for its key (as the path its key names below it),
/// setting each file's mtime to `mtime_for(key)` or, when that is `None`,
/// to the time in the archive. Every file must match `expected` (from
/// [`OuterArchive::validate`]): the archive may not have changed since it
/// was validated.
pub fn extract_component(
    path: &Path,
    component: &str,
    directory_of: &dyn Fn(&str) -> PathBuf,
    mut expected: ExpectedFiles<'_>,
    limits: Limits,
    mtime_for: impl Fn(&str) -> Option<i64>,
) -> Result<()> {
    let changed = |what: String| {
        invalid(format!(
            "{component}.tar.gz changed since it was validated: {what}"
        ))
    };
    let mut missed = 0usize;
    read_files(
        path,
        component,
        limits,
        |_| true,
        |key, size, archive_mtime, content| {
            let Some(want) = expected.take(key, &mut missed)? else {
                io::copy(content, &mut io::sink())?;
                return Ok(());
            };
            let target = directory_of(key).join(key_to_relative_path(key)?);
            let mut md5 = None;
            write_atomically(&target, |partial| {
                let mut file = io::BufWriter::new(File::create(partial)?);
                md5 = Some(hash_exactly(content, size, &mut file, key).map_err(io::Error::other)?);
                file.flush()?;
                let mtime = mtime_for(key).unwrap_or(archive_mtime as i64);
                filetime::set_file_mtime(partial, FileTime::from_unix_time(mtime, 0))
            })?;
            if want.size != size || want.md5 != md5 {
                return Err(changed(format!("{key} has other content")));
            }
            Ok(())
        },
    )?;
    let missing = missed + expected.left()?;
    if missing > 0 {
        return Err(changed(format!("{missing} files are missing")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use flate2::write::GzEncoder;

    use super::*;
    use crate::sync::merge::SourceObjects;

    /// An archive at `path` whose `uploads` tarball holds `files` (key and
    /// content) in the order given, without a manifest.
    fn archive_of(path: &Path, files: &[(&str, &str)]) {
        let mut tarball = tar::Builder::new(GzEncoder::new(Vec::new(), Default::default()));
        for (key, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            tarball
                .append_data(&mut header, format!("./{key}"), content.as_bytes())
                .unwrap();
        }
        let tarball = tarball.into_inner().unwrap().finish().unwrap();
        let mut outer = tar::Builder::new(File::create(path).unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_size(tarball.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        outer
            .append_data(&mut header, "uploads.tar.gz", tarball.as_slice())
            .unwrap();
        outer.finish().unwrap();
    }

    /// The `uploads` component of the archive at `path`, validated with
    /// its objects written below `directory`.
    fn validated(path: &Path, directory: &Path) -> ComponentIndex {
        let index = read_outer(path)
            .unwrap()
            .validate(path, Limits::default(), &|_| true, &|_| {}, directory)
            .unwrap();
        index.components.into_iter().next().unwrap().1
    }

    fn keys_and_sizes(found: &SpilledObjects) -> Vec<(String, u64)> {
        found
            .read()
            .unwrap()
            .map(|object| object.map(|(key, f)| (key, f.size)).unwrap())
            .collect()
    }

    /// Extracts every object of `found` from the archive at `path` into
    /// `into`; the files extracted, read back.
    fn extract_all(path: &Path, found: &ComponentIndex, into: &Path) -> Result<Vec<String>> {
        let objects: Inventory = found
            .objects
            .read()?
            .map(|object| object.map(|(key, f)| (Key::from(key), f)))
            .collect::<Result<_>>()?;
        let expected = ExpectedFiles::new(objects.walk()?, found.in_key_order)?;
        let directory = into.to_path_buf();
        extract_component(
            path,
            "uploads",
            &|_| directory.clone(),
            expected,
            Limits::default(),
            |_| None,
        )?;
        let mut read = Vec::new();
        for key in objects.keys() {
            read.push(std::fs::read_to_string(into.join(&**key)).unwrap_or_default());
        }
        Ok(read)
    }

    #[test]
    fn a_tarball_in_key_order_is_validated_straight_to_disk_and_extracted_in_step() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("archive.tar");
        archive_of(&archive, &[("a-b/c", "1"), ("a/b", "22"), ("a0", "333")]);
        let found = validated(&archive, &dir.path().join("objects"));
        assert!(found.in_key_order);
        assert_eq!(
            keys_and_sizes(&found.objects),
            [("a-b/c".into(), 1), ("a/b".into(), 2), ("a0".into(), 3)]
        );
        let read = extract_all(&archive, &found, &dir.path().join("out")).unwrap();
        assert_eq!(read, ["1", "22", "333"]);
    }

    #[test]
    fn a_tarball_out_of_key_order_is_sorted_and_digested_as_if_it_were_not() {
        let dir = tempfile::tempdir().unwrap();
        let sorted = dir.path().join("sorted.tar");
        let unsorted = dir.path().join("unsorted.tar");
        let files = [("a", "1"), ("b/c", "22"), ("d", "333"), ("e", "4444")];
        archive_of(&sorted, &files);
        archive_of(&unsorted, &[files[2], files[0], files[3], files[1]]);
        let objects = dir.path().join("objects");
        let (in_order, out_of_order) =
            (validated(&sorted, &objects), validated(&unsorted, &objects));
        assert!(!out_of_order.in_key_order);
        assert_eq!(
            keys_and_sizes(&out_of_order.objects),
            keys_and_sizes(&in_order.objects)
        );
        let read = extract_all(&unsorted, &out_of_order, &dir.path().join("out")).unwrap();
        assert_eq!(read, ["1", "22", "333", "4444"]);
    }

    #[test]
    fn a_name_that_appears_twice_is_refused_in_key_order_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("archive.tar");
        for files in [
            [("a", "1"), ("b", "2"), ("b", "3")],
            [("b", "1"), ("a", "2"), ("b", "3")],
        ] {
            archive_of(&archive, &files);
            let error = read_outer(&archive)
                .unwrap()
                .validate(&archive, Limits::default(), &|_| true, &|_| {}, dir.path())
                .err()
                .unwrap();
            assert_eq!(
                error.to_string(),
                "invalid archive: uploads.tar.gz: entry \"b\" appears twice"
            );
        }
    }

    #[test]
    fn an_expected_file_the_tarball_no_longer_holds_fails_the_extraction_either_way() {
        let dir = tempfile::tempdir().unwrap();
        let (sorted, unsorted) = (
            dir.path().join("sorted.tar"),
            dir.path().join("unsorted.tar"),
        );
        archive_of(&sorted, &[("a", "1"), ("b", "2"), ("c", "3")]);
        archive_of(&unsorted, &[("c", "3"), ("a", "1"), ("b", "2")]);
        let objects = dir.path().join("objects");
        for archive in [&sorted, &unsorted] {
            let found = validated(archive, &objects);
            // The archive changes after validation: "b" is gone.
            archive_of(archive, &[("a", "1"), ("c", "3")]);
            let error = extract_all(archive, &found, &dir.path().join("out")).unwrap_err();
            assert_eq!(
                error.to_string(),
                "invalid archive: uploads.tar.gz changed since it was validated: 1 files are missing"
            );
        }
    }
}
