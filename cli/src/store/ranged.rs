//! Fetching part of an archive in a bucket: what a shard of a sharded
//! restore reads, by byte ranges (the plugin's `get_range`).
//!
//! The archive is copied into a sparse local file of its full size, every
//! fetched range at its own offset, the rest left as holes. First the
//! outer tar is walked through [`RangedReader`], which fetches exactly what
//! the walk reads — each entry's header, the small entries (backup
//! information, manifests), the end-of-archive marker — while the tar
//! reader seeks past everything else (see [`RangedReader`] for how reads
//! become requests). Then the component tarballs the
//! shard has a part of are fetched whole, one range each. Every later step
//! (validation, extraction) reads the local copy as if it were the whole
//! archive, and reads only those ranges.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, Result};

use crate::archive::read::{read_outer_of, OuterArchive, TarballSpan};
use crate::parallel::map_in_parallel;
use crate::progress::ByteProgress;

/// Size of a tar block.
const BLOCK: u64 = 512;
use crate::store::fetch::RemoteArchive;

/// The most one request of [`RangedReader`] fetches.
const MOST_PER_REQUEST: u64 = 8 << 20;

/// Reads a [`RemoteArchive`] by ranges and writes what it fetched into the
/// local copy at the same offsets. It fetches the bytes each read asks
/// for, except inside the data of an entry whose header it fetched: a
/// read there fetches the rest of that data (up to 8 MiB)
/// and the next header with it, so an entry that is read (a manifest)
/// costs one request, header and all. The last range fetched is kept, so
/// reading it again costs nothing.
pub struct RangedReader<'a, 'r> {
    archive: &'a RemoteArchive<'r>,
    copy: &'a File,
    /// Where each fetched range is downloaded before it is copied.
    scratch: &'a Path,
    position: u64,
    /// The last range fetched: its offset and bytes.
    last: (u64, Vec<u8>),
    /// Where the data of the entry whose header was fetched last lies,
    /// padded to the next block: `[start, end)`.
    entry_data: Option<(u64, u64)>,
}

impl<'a, 'r> RangedReader<'a, 'r> {
    /// A reader of `archive` at its start, copying what it fetches into
    /// `copy` and using the file `scratch` for each download.
    pub fn new(archive: &'a RemoteArchive<'r>, copy: &'a File, scratch: &'a Path) -> Self {
        RangedReader {
            archive,
            copy,
            scratch,
            position: 0,
            last: (0, Vec::new()),
            entry_data: None,
        }
    }

    /// How many bytes to fetch for a read of `wanted` bytes at `position`.
    fn fetch_length(&self, position: u64, wanted: u64) -> u64 {
        let size = self.archive.size();
        let end = match self.entry_data {
            Some((start, end)) if (start..end).contains(&position) => {
                (end + BLOCK).min(position + MOST_PER_REQUEST)
            }
            _ => position + wanted,
        };
        end.min(size) - position
    }

    /// Notes where the data of an entry lies when `block`, fetched at
    /// `offset`, is its header.
    fn note_header(&mut self, offset: u64, block: &[u8]) {
        if let Some(data) = entry_data_after(offset, block) {
            self.entry_data = Some(data);
        }
    }

    /// Fetches `length` bytes at `offset`, copies them into the local copy
    /// and keeps them as the last range.
    fn fetch(&mut self, offset: u64, length: u64) -> Result<()> {
        let archive = self.archive;
        archive.plugin.get_range(
            &archive.folder,
            &archive.file_name,
            offset,
            length,
            self.scratch,
        )?;
        let bytes = std::fs::read(self.scratch)
            .with_context(|| format!("cannot read {}", self.scratch.display()))?;
        anyhow::ensure!(
            bytes.len() as u64 == length,
            "{}: asked for {length} bytes at {offset}, got {}",
            archive.file_name,
            bytes.len()
        );
        self.copy.write_all_at(&bytes, offset)?;
        // The header this range starts with, or the next one it ends with.
        if let Some(first) = bytes.get(..BLOCK as usize) {
            self.note_header(offset, first);
        }
        if bytes.len() as u64 > BLOCK {
            let last_block = bytes.len() - BLOCK as usize;
            self.note_header(offset + last_block as u64, &bytes[last_block..]);
        }
        self.last = (offset, bytes);
        Ok(())
    }
}

impl Read for RangedReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.archive.size();
        if self.position >= size || buf.is_empty() {
            return Ok(0);
        }
        let (start, bytes) = &self.last;
        let in_last = self.position >= *start && self.position < start + bytes.len() as u64;
        if !in_last {
            let length = self.fetch_length(self.position, buf.len() as u64);
            self.fetch(self.position, length)
                .map_err(|e| io::Error::other(format!("{e:#}")))?;
        }
        let (start, bytes) = &self.last;
        let from = (self.position - start) as usize;
        let n = buf.len().min(bytes.len() - from);
        buf[..n].copy_from_slice(&bytes[from..from + n]);
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for RangedReader<'_, '_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let size = self.archive.size() as i128;
        let position = match to {
            SeekFrom::Start(n) => i128::from(n),
            SeekFrom::Current(n) => i128::from(self.position) + i128::from(n),
            SeekFrom::End(n) => size + i128::from(n),
        };
        self.position = u64::try_from(position)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.position)
    }
}

/// Makes `path` a sparse copy of `archive` holding what reading its outer
/// tar reads (see the module docs), and reads that outer tar.
pub fn fetch_outer(archive: &RemoteArchive<'_>, path: &Path) -> Result<OuterArchive> {
    let copy = sparse_file(path, archive.size())?;
    let scratch = tempfile::NamedTempFile::new_in(path.parent().unwrap_or(Path::new(".")))?;
    let reader = RangedReader::new(archive, &copy, scratch.path());
    let outer = read_outer_of(reader, &archive.file_name)?;
    copy.sync_all()?;
    Ok(outer)
}

/// Fetches `tarballs` of `archive` into its sparse copy at `path`, `jobs`
/// at a time, one range each.
pub fn fetch_tarballs(
    archive: &RemoteArchive<'_>,
    path: &Path,
    tarballs: Vec<TarballSpan<'_>>,
    jobs: usize,
    quiet: bool,
) -> Result<()> {
    let total = tarballs.iter().map(|t| t.len).sum();
    let shown = ByteProgress::new(
        &format!("fetch this shard's part of {}", archive.file_name),
        Some(total),
        quiet,
    );
    let dir = path.parent().unwrap_or(Path::new("."));
    let fetched = map_in_parallel(tarballs, jobs, |tarball| -> Result<()> {
        let scratch = tempfile::NamedTempFile::new_in(dir)?;
        archive.plugin.get_range(
            &archive.folder,
            &archive.file_name,
            tarball.start,
            tarball.len,
            scratch.path(),
        )?;
        let copied = copy_into(scratch.path(), path, tarball.start).with_context(|| {
            format!(
                "cannot copy {}.tar.gz into {}",
                tarball.component,
                path.display()
            )
        })?;
        anyhow::ensure!(
            copied == tarball.len,
            "{}: asked for the {} bytes of {}.tar.gz, got {copied}",
            archive.file_name,
            tarball.len,
            tarball.component
        );
        shown.add(copied);
        Ok(())
    });
    shown.finish();
    fetched.into_iter().collect()
}

/// Where the data of the entry whose header is `block`, at `offset` of a
/// tar, lies, padded to the next block: `[start, end)`; `None` when
/// `block` is not a tar header (not a whole block at a block boundary, its
/// checksum does not hold, or all zeros: the end of the archive).
fn entry_data_after(offset: u64, block: &[u8]) -> Option<(u64, u64)> {
    if !offset.is_multiple_of(BLOCK) || block.len() != BLOCK as usize {
        return None;
    }
    if block.iter().all(|&b| b == 0) {
        return None;
    }
    let header = tar::Header::from_byte_slice(block);
    let mut checked = header.clone();
    checked.set_cksum();
    if header.cksum().ok()? != checked.cksum().ok()? {
        return None;
    }
    let size = header.entry_size().ok()?;
    let start = offset + BLOCK;
    Some((start, start + size.div_ceil(BLOCK) * BLOCK))
}

/// A file at `path` of `size` bytes, all holes.
fn sparse_file(path: &Path, size: u64) -> Result<File> {
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.set_len(size)
        .with_context(|| format!("cannot size {}", path.display()))?;
    Ok(file)
}

/// Copies the file `from` into `to` at `offset`; how many bytes.
fn copy_into(from: &Path, to: &Path, offset: u64) -> Result<u64> {
    let mut source = File::open(from)?;
    let mut target = File::options().write(true).open(to)?;
    target.seek(SeekFrom::Start(offset))?;
    let copied = io::copy(&mut source, &mut target)?;
    target.flush()?;
    target.sync_all()?;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar holding `manifests/a.json` of 1,000 bytes, then `b.tar.gz`.
    fn small_tar() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, size) in [("manifests/a.json", 1000), ("b.tar.gz", 10)] {
            let mut header = tar::Header::new_gnu();
            header.set_size(size);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, name, &vec![b'x'; size as usize][..])
                .unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn a_header_tells_where_its_entry_data_ends_and_the_next_header_is() {
        let tar = small_tar();
        // 1,000 bytes of data, padded to 1,024: the next header at 1,536.
        assert_eq!(entry_data_after(0, &tar[..512]), Some((512, 1536)));
        assert_eq!(entry_data_after(1536, &tar[1536..2048]), Some((2048, 2560)));
    }

    #[test]
    fn anything_but_a_header_tells_nothing() {
        let tar = small_tar();
        // Entry data, a block off its boundary, half a block, the end marker.
        assert_eq!(entry_data_after(512, &tar[512..1024]), None);
        assert_eq!(entry_data_after(1, &tar[..512]), None);
        assert_eq!(entry_data_after(0, &tar[..256]), None);
        assert_eq!(entry_data_after(2560, &tar[2560..3072]), None);
        let mut damaged = tar[..512].to_vec();
        damaged[100] ^= 1;
        assert_eq!(entry_data_after(0, &damaged), None);
    }
}
