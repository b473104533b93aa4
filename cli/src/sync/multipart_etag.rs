//! Multipart ETags, worked out from content.
//!
//! An object uploaded in parts has the ETag `md5(md5(part 1) ‖ … ‖ md5(part
//! N))-N`, not its content's MD5, so a listing cannot say whether it equals
//! a file — unless the part size is known. The tools all cut parts in whole
//! MiB (aws 8 MiB, s3cmd 15 MiB, many others 5 MiB), and the ETag names the
//! part count, which leaves only a few whole-MiB part sizes possible: the
//! ETag of the file is computed for each, in one pass over its bytes. A
//! match proves the content equal (as much as an MD5 does); no match leaves
//! the object *possibly changed*, checked by size only.

use std::io::{self, Read};

use md5::{Digest, Md5};
use stowage_local_tree::hex;

const MIB: u64 = 1 << 20;

/// The most part sizes tried for one object.
pub const MAX_CANDIDATES: usize = 64;

/// The part count of a multipart ETag (`<32 hex>-<N>`).
pub fn part_count(etag: &str) -> Option<u64> {
    let (digest, parts) = etag.split_once('-')?;
    let hex_digest = digest.len() == 32 && digest.chars().all(|c| c.is_ascii_hexdigit());
    parts.parse().ok().filter(|&n| hex_digest && n > 0)
}

/// The whole-MiB part sizes that cut `size` bytes into exactly `parts`
/// parts; empty when there are more than [`MAX_CANDIDATES`].
pub fn candidate_part_sizes(size: u64, parts: u64) -> Vec<u64> {
    if parts == 0 || size == 0 {
        return Vec::new();
    }
    if parts == 1 {
        // One part: its size does not change the ETag.
        return vec![size.div_ceil(MIB).max(1) * MIB];
    }
    // (parts - 1) * p < size <= parts * p
    let smallest = size.div_ceil(parts).div_ceil(MIB);
    let largest = (size - 1) / (parts - 1) / MIB;
    if largest < smallest || (largest - smallest) as usize >= MAX_CANDIDATES {
        return Vec::new();
    }
    (smallest..=largest).map(|m| m * MIB).collect()
}

/// The multipart ETag `data` gets when uploaded in parts of each of
/// `part_sizes`, read in one pass.
pub fn multipart_etags(data: &mut dyn Read, part_sizes: &[u64]) -> io::Result<Vec<String>> {
    struct Cut {
        part_size: u64,
        in_part: u64,
        part: Md5,
        digests: Md5,
        parts: u64,
    }
    let mut cuts: Vec<Cut> = part_sizes
        .iter()
        .map(|&part_size| Cut {
            part_size,
            in_part: 0,
            part: Md5::new(),
            digests: Md5::new(),
            parts: 0,
        })
        .collect();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = data.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        for cut in &mut cuts {
            let mut chunk = &buffer[..n];
            while !chunk.is_empty() {
                let room = (cut.part_size - cut.in_part) as usize;
                let (head, rest) = chunk.split_at(room.min(chunk.len()));
                cut.part.update(head);
                cut.in_part += head.len() as u64;
                if cut.in_part == cut.part_size {
                    cut.digests.update(cut.part.finalize_reset());
                    cut.parts += 1;
                    cut.in_part = 0;
                }
                chunk = rest;
            }
        }
    }
    Ok(cuts
        .into_iter()
        .map(|mut cut| {
            if cut.in_part > 0 {
                cut.digests.update(cut.part.finalize_reset());
                cut.parts += 1;
            }
            format!("{}-{}", hex(&cut.digests.finalize()), cut.parts)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn etag_by_hand(data: &[u8], part_size: usize) -> String {
        let mut digests = Md5::new();
        let chunks: Vec<&[u8]> = data.chunks(part_size).collect();
        for chunk in &chunks {
            digests.update(Md5::digest(chunk));
        }
        format!("{}-{}", hex(&digests.finalize()), chunks.len())
    }

    #[test]
    fn etags_match_the_s3_definition_for_every_part_size() {
        let data: Vec<u8> = (0..(21 * MIB as usize + 12345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let sizes = [5 * MIB, 8 * MIB, 15 * MIB];
        let etags = multipart_etags(&mut data.as_slice(), &sizes).unwrap();
        for (etag, size) in etags.iter().zip(sizes) {
            assert_eq!(etag, &etag_by_hand(&data, size as usize));
        }
    }

    #[test]
    fn the_part_count_narrows_the_part_sizes_down() {
        // 21 MiB + a bit in 3 parts: 8, 9 or 10 MiB parts.
        let sizes = candidate_part_sizes(21 * MIB + 12345, 3);
        assert_eq!(sizes, [8 * MIB, 9 * MIB, 10 * MIB]);
        assert!(sizes.contains(&(8 * MIB)));
        assert_eq!(candidate_part_sizes(10, 1), [MIB]);
        assert!(
            candidate_part_sizes(10 * MIB, 20).is_empty(),
            "no whole MiB fits"
        );
    }

    #[test]
    fn only_multipart_etags_have_a_part_count() {
        assert_eq!(part_count("0123456789abcdef0123456789abcdef-3"), Some(3));
        assert_eq!(part_count("0123456789abcdef0123456789abcdef"), None);
        assert_eq!(part_count("abc-3"), None);
    }
}
