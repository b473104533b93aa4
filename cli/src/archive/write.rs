//! Writing archives: one `<component>.tar.gz` per component, then the outer tar.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use flate2::Compression;
use md5::{Digest, Md5};
use stowage_exclude::ExcludeMatcher;
use stowage_local_tree::{walk, write_atomically};

use crate::archive::manifest::Manifest;
use crate::archive::rsyncable::RsyncableGzWriter;
use crate::sync::md5_digest::Md5Digest;
use crate::sync::plan::{Fingerprint, Inventory};

/// Reads through to an inner reader, hashing what passes.
struct HashingReader<R> {
    inner: R,
    hasher: Md5,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The gzip stream of a component tarball: plain, or reset at
/// content-defined boundaries (`--rsyncable`).
enum GzipOut<W: Write> {
    Plain(GzEncoder<W>),
    Rsyncable(RsyncableGzWriter<W>),
}

impl<W: Write> GzipOut<W> {
    fn new(out: W, rsyncable: bool) -> io::Result<Self> {
        Ok(match rsyncable {
            true => GzipOut::Rsyncable(RsyncableGzWriter::new(out, Compression::default())?),
            false => GzipOut::Plain(GzEncoder::new(out, Compression::default())),
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            GzipOut::Plain(gz) => gz.finish(),
            GzipOut::Rsyncable(gz) => gz.finish(),
        }
    }
}

impl<W: Write> Write for GzipOut<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            GzipOut::Plain(gz) => gz.write(data),
            GzipOut::Rsyncable(gz) => gz.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            GzipOut::Plain(gz) => gz.flush(),
            GzipOut::Rsyncable(gz) => gz.flush(),
        }
    }
}

/// Packs every file below `dir` but the excluded ones into the
/// gzip-compressed tar `tarball`, as `tar -C <dir> . | gzip` would (the
/// tar crate writes `key` where tar writes `./key`; both extract alike, and
/// reading accepts both), and returns the inventory of what it packed, MD5s computed
/// from the bytes written. With `rsyncable`, the gzip stream is cut like
/// `gzip --rsyncable` ([`RsyncableGzWriter`]).
pub fn pack_component(
    dir: &Path,
    tarball: &Path,
    excludes: &[String],
    rsyncable: bool,
) -> Result<Inventory> {
    let excludes = ExcludeMatcher::new(excludes).map_err(anyhow::Error::msg)?;
    let mut inventory = Inventory::new();
    write_atomically(tarball, |partial| {
        let file = BufWriter::new(File::create(partial)?);
        let mut builder = tar::Builder::new(GzipOut::new(file, rsyncable)?);
        builder.mode(tar::HeaderMode::Deterministic);
        let files = walk(dir)?;
        for file in files.into_iter().filter(|f| !excludes.is_excluded(&f.key)) {
            let mut header = tar::Header::new_gnu();
            header.set_size(file.size);
            header.set_mode(0o644);
            header.set_mtime(file.mtime.max(0) as u64);
            header.set_entry_type(tar::EntryType::Regular);
            let mut reader = HashingReader {
                inner: File::open(&file.path)?,
                hasher: Md5::new(),
            };
            builder.append_data(&mut header, format!("./{}", file.key), &mut reader)?;
            let md5 = Md5Digest::from(reader.hasher);
            inventory.insert(file.key.into(), Fingerprint::content(file.size, md5));
        }
        builder.into_inner()?.finish()?.flush()
    })
    .with_context(|| format!("cannot pack {} into {}", dir.display(), tarball.display()))?;
    Ok(inventory)
}

/// What goes into the outer tar.
pub struct ArchiveContents<'a> {
    /// The text of `backup_information.yml`.
    pub information: String,
    /// One manifest per component.
    pub manifests: &'a [Manifest],
    /// `(component, path of its .tar.gz)`.
    pub tarballs: &'a [(String, PathBuf)],
}

/// Writes the outer (uncompressed) tar at `path`, atomically.
pub fn write_archive(path: &Path, contents: &ArchiveContents<'_>) -> Result<()> {
    write_atomically(path, |partial| {
        let mut builder = tar::Builder::new(BufWriter::new(File::create(partial)?));
        append_bytes(
            &mut builder,
            "backup_information.yml",
            contents.information.as_bytes(),
        )?;
        for manifest in contents.manifests {
            let json = serde_json::to_vec_pretty(manifest)?;
            append_bytes(
                &mut builder,
                &format!("manifests/{}.json", manifest.component),
                &json,
            )?;
        }
        for (component, tarball) in contents.tarballs {
            builder.append_path_with_name(tarball, format!("{component}.tar.gz"))?;
        }
        builder.into_inner()?.flush()
    })
    .with_context(|| format!("cannot write archive {}", path.display()))
}

fn append_bytes<W: Write>(
    builder: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, data)
}
