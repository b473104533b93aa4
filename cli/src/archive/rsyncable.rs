//! gzip output that rsync (and deduplicating backup stores) can diff, like
//! `gzip --rsyncable`: the compressor is reset wherever a rolling sum of
//! the last 4 KiB of input hits a fixed value, so a change in the input
//! changes the compressed bytes only up to the next such boundary, and
//! the rest of two archives of almost the same data stays byte-identical.
//! The output is an ordinary gzip member any gunzip reads.

use std::io::{self, Write};

use flate2::{Compress, Compression, Crc, FlushCompress};

/// The rolling window, as in gzip.
const WINDOW: usize = 4096;

/// A boundary where the window's byte sum is ≡ 0 (mod [`WINDOW`]).
const BOUNDARY_MASK: u32 = (WINDOW as u32) - 1;

/// A gzip writer that resets its compressor at content-defined boundaries.
pub struct RsyncableGzWriter<W: Write> {
    out: W,
    compress: Compress,
    crc: Crc,
    window: Box<[u8; WINDOW]>,
    position: usize,
    filled: usize,
    sum: u32,
    buffer: Vec<u8>,
}

impl<W: Write> RsyncableGzWriter<W> {
    /// Writes the gzip header to `out`.
    pub fn new(mut out: W, level: Compression) -> io::Result<Self> {
        // Magic, deflate, no flags, no mtime, no extra flags, unknown OS.
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
        Ok(RsyncableGzWriter {
            out,
            compress: Compress::new(level, false),
            crc: Crc::new(),
            window: Box::new([0; WINDOW]),
            position: 0,
            filled: 0,
            sum: 0,
            buffer: Vec::with_capacity(128 * 1024),
        })
    }

    fn deflate(&mut self, input: &[u8], flush: FlushCompress) -> io::Result<()> {
        let mut input = input;
        loop {
            self.buffer.clear();
            let before_in = self.compress.total_in();
            self.compress
                .compress_vec(input, &mut self.buffer, flush)
                .map_err(io::Error::other)?;
            let consumed = (self.compress.total_in() - before_in) as usize;
            input = &input[consumed..];
            self.out.write_all(&self.buffer)?;
            // Done once all input is in and the output buffer was not filled.
            if input.is_empty() && self.buffer.len() < self.buffer.capacity() {
                return Ok(());
            }
        }
    }

    /// Finishes the stream (deflate end, CRC32 and size) and returns `out`.
    pub fn finish(mut self) -> io::Result<W> {
        self.deflate(&[], FlushCompress::Finish)?;
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        self.out.write_all(&self.crc.amount().to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for RsyncableGzWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.crc.update(data);
        let mut start = 0;
        for (i, &byte) in data.iter().enumerate() {
            let leaving = if self.filled == WINDOW {
                self.window[self.position]
            } else {
                0
            };
            self.sum = self
                .sum
                .wrapping_add(u32::from(byte))
                .wrapping_sub(u32::from(leaving));
            self.window[self.position] = byte;
            self.position = (self.position + 1) % WINDOW;
            self.filled = (self.filled + 1).min(WINDOW);
            if self.filled == WINDOW && self.sum & BOUNDARY_MASK == 0 {
                self.deflate(&data[start..=i], FlushCompress::Full)?;
                start = i + 1;
            }
        }
        self.deflate(&data[start..], FlushCompress::None)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn compress(data: &[u8]) -> Vec<u8> {
        let mut writer = RsyncableGzWriter::new(Vec::new(), Compression::default()).unwrap();
        for chunk in data.chunks(7777) {
            writer.write_all(chunk).unwrap();
        }
        writer.finish().unwrap()
    }

    fn data(seed: u64, len: usize) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Text-like bytes, so the data compresses.
                b"abcdefgh ijklmnop\n"[(state % 18) as usize]
            })
            .collect()
    }

    #[test]
    fn the_output_is_plain_gzip() {
        let input = data(1, 3 << 20);
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(compress(&input).as_slice())
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, input);
    }

    #[test]
    fn a_change_near_the_start_leaves_most_of_the_output_unchanged() {
        let original = data(2, 2 << 20);
        let mut changed = original.clone();
        changed[1000..1010].copy_from_slice(b"CHANGED!!!");
        let (a, b) = (compress(&original), compress(&changed));
        // The last 8 bytes are the CRC and length, which differ.
        let (a, b) = (&a[..a.len() - 8], &b[..b.len() - 8]);
        let common_suffix = a
            .iter()
            .rev()
            .zip(b.iter().rev())
            .take_while(|(x, y)| x == y)
            .count();
        assert!(
            common_suffix > a.len() * 9 / 10,
            "only {common_suffix} of {} trailing bytes are shared",
            a.len()
        );
    }
}
