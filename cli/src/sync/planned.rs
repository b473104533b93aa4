//! The objects a plan names, in key order, held compactly: a restore of
//! 1,000,000 new objects plans 1,000,000 uploads, and a list of keys with
//! GitLab-like keys (~120 bytes: `@hashed/<2>/<2>/<sha256>/<secret>/name`)
//! is ~190 bytes an object. Keys in key order share long prefixes, so each
//! is stored as the length it shares with the one before and the rest
//! ("front coding"); every 16th key is stored whole, so that a key
//! is found by a binary search over those and a short walk.

use std::fmt;

use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};

use crate::sync::plan::{Key, PlannedObject};

/// Keys a block: one stored whole, the others after it front-coded.
const BLOCK: usize = 16;

/// Objects in key order: keys front-coded, sizes beside them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PlannedObjects {
    /// Per key: the length it shares with the key before (0 at a block's
    /// start), the length of the rest, then the rest (lengths as LEB128).
    bytes: Vec<u8>,
    /// Where each block begins in `bytes`.
    blocks: Vec<usize>,
    /// The objects' sizes, in key order.
    sizes: Vec<u64>,
    /// The last key added.
    last: String,
}

impl PlannedObjects {
    /// Adds an object after the others: its key must come after theirs.
    ///
    /// # Panics
    /// If `key` does not come after the last key added: plans are made
    /// walking both sides in key order, so that would be a bug.
    pub fn push(&mut self, key: &str, size: u64) {
        assert!(
            self.sizes.is_empty() || self.last.as_str() < key,
            "planned out of key order: {key:?} after {:?}",
            self.last
        );
        let shared = match self.sizes.len() % BLOCK {
            0 => {
                self.blocks.push(self.bytes.len());
                0
            }
            _ => shared_prefix(&self.last, key),
        };
        let rest = &key.as_bytes()[shared..];
        write_length(&mut self.bytes, shared);
        write_length(&mut self.bytes, rest.len());
        self.bytes.extend_from_slice(rest);
        self.sizes.push(size);
        key.clone_into(&mut self.last);
    }

    /// These objects and `other`'s together, in key order (no key is in
    /// both), made one at a time.
    pub fn merged_with(&self, other: &PlannedObjects) -> PlannedObjects {
        let (mut ours, mut theirs) = (self.iter().peekable(), other.iter().peekable());
        let mut merged = PlannedObjects::default();
        loop {
            let next = match (ours.peek(), theirs.peek()) {
                (Some(a), Some(b)) if a.key <= b.key => ours.next(),
                (_, Some(_)) => theirs.next(),
                (Some(_), None) => ours.next(),
                (None, None) => return merged,
            };
            let object = next.expect("peeked");
            merged.push(&object.key, object.size);
        }
    }

    /// How many objects it holds.
    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// Their sizes added up.
    pub fn total_size(&self) -> u64 {
        self.sizes.iter().sum()
    }

    /// Whether it holds `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.search(key).is_ok()
    }

    /// How many of its keys come before `key`.
    pub fn count_before(&self, key: &str) -> usize {
        match self.search(key) {
            Ok(at) | Err(at) => at,
        }
    }

    /// Its objects, in key order.
    pub fn iter(&self) -> impl Iterator<Item = PlannedObject> + '_ {
        let mut keys = self.keys_from(0);
        self.sizes.iter().map(move |&size| {
            let key = keys.next(&self.bytes).expect("a key for every size");
            PlannedObject {
                key: Key::from(std::str::from_utf8(key).expect("keys are stored as UTF-8")),
                size,
            }
        })
    }

    /// Where `key` is (`Ok`), or would go (`Err`), as
    /// [`slice::binary_search`] says.
    fn search(&self, key: &str) -> Result<usize, usize> {
        // The last block whose first key is not after `key`.
        let block = self
            .blocks
            .partition_point(|&at| self.first_key(at) <= key.as_bytes());
        let Some(block) = block.checked_sub(1) else {
            return Err(0);
        };
        let start = block * BLOCK;
        let end = (start + BLOCK).min(self.len());
        let mut keys = self.keys_from(block);
        for index in start..end {
            let candidate = keys.next(&self.bytes).expect("a key for every size");
            match candidate.cmp(key.as_bytes()) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => return Ok(index),
                std::cmp::Ordering::Greater => return Err(index),
            }
        }
        Err(end)
    }

    /// The first key of the block beginning at `at` of `bytes` (stored whole).
    fn first_key(&self, at: usize) -> &[u8] {
        let (_, at) = read_length(&self.bytes, at);
        let (len, at) = read_length(&self.bytes, at);
        &self.bytes[at..at + len]
    }

    /// The keys from the start of `block` on.
    fn keys_from(&self, block: usize) -> KeyWalk {
        KeyWalk {
            at: self.blocks.get(block).copied().unwrap_or(self.bytes.len()),
            key: Vec::new(),
        }
    }
}

/// A walk over front-coded keys, each made again from the one before.
struct KeyWalk {
    /// Where the next key is stored.
    at: usize,
    /// The key last made.
    key: Vec<u8>,
}

impl KeyWalk {
    /// The next key stored in `bytes`, if any.
    fn next<'k>(&'k mut self, bytes: &[u8]) -> Option<&'k [u8]> {
        if self.at >= bytes.len() {
            return None;
        }
        let (shared, at) = read_length(bytes, self.at);
        let (len, at) = read_length(bytes, at);
        self.key.truncate(shared);
        self.key.extend_from_slice(&bytes[at..at + len]);
        self.at = at + len;
        Some(&self.key)
    }
}

/// How many leading bytes `a` and `b` share.
fn shared_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

/// Appends `length` as LEB128 (7 bits a byte, the high bit set on all but
/// the last).
fn write_length(bytes: &mut Vec<u8>, mut length: usize) {
    while length >= 0x80 {
        bytes.push((length as u8 & 0x7f) | 0x80);
        length >>= 7;
    }
    bytes.push(length as u8);
}

/// The LEB128 length at `at` of `bytes`, and where what follows it begins.
fn read_length(bytes: &[u8], mut at: usize) -> (usize, usize) {
    let (mut length, mut shift) = (0usize, 0);
    loop {
        let byte = bytes[at];
        at += 1;
        length |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return (length, at);
        }
        shift += 7;
    }
}

impl FromIterator<PlannedObject> for PlannedObjects {
    /// Objects given in key order.
    fn from_iter<I: IntoIterator<Item = PlannedObject>>(objects: I) -> Self {
        let mut planned = PlannedObjects::default();
        for object in objects {
            planned.push(&object.key, object.size);
        }
        planned
    }
}

impl fmt::Debug for PlannedObjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// As a list of objects (key and size), made one at a time as written.
impl Serialize for PlannedObjects {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut list = serializer.serialize_seq(Some(self.len()))?;
        for object in self.iter() {
            list.serialize_element(&object)?;
        }
        list.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys in key order as GitLab's look, some sharing long prefixes,
    /// one of them longer than a one-byte length, some not ASCII.
    fn keys() -> Vec<String> {
        let mut keys: Vec<String> = (0..100)
            .map(|i| format!("@hashed/{:02x}/ab/{:064x}/file {i}.png", i % 7, i / 3))
            .chain([
                "a".into(),
                "b".repeat(300),
                "é/ü".into(),
                "éa".into(),
                "z".into(),
            ])
            .collect();
        keys.sort();
        keys
    }

    fn planned(keys: &[String]) -> PlannedObjects {
        let mut planned = PlannedObjects::default();
        for (size, key) in keys.iter().enumerate() {
            planned.push(key, size as u64);
        }
        planned
    }

    #[test]
    fn planned_objects_read_back_as_they_were_added() {
        let keys = keys();
        let planned = planned(&keys);
        assert_eq!(planned.len(), keys.len());
        let read: Vec<(String, u64)> = planned
            .iter()
            .map(|o| (o.key.to_string(), o.size))
            .collect();
        let added: Vec<(String, u64)> = keys.iter().cloned().zip(0..).collect();
        assert_eq!(read, added);
        assert_eq!(planned.total_size(), (0..keys.len() as u64).sum::<u64>());
        let json = serde_json::to_value(&planned).unwrap();
        assert_eq!(json[1], serde_json::json!({"key": keys[1], "size": 1}));
    }

    #[test]
    fn a_key_is_found_where_a_sorted_list_would_have_it() {
        let keys = keys();
        let planned = planned(&keys);
        for (index, key) in keys.iter().enumerate() {
            assert!(planned.contains(key), "{key}");
            assert_eq!(planned.count_before(key), index);
            // A key just after this one, and one just before, are not held.
            let after = format!("{key}\u{0}");
            assert!(!planned.contains(&after));
            assert_eq!(planned.count_before(&after), index + 1);
        }
        for absent in ["", "@", "@hashed/", "y", "zz", "\u{10ffff}"] {
            assert!(!planned.contains(absent), "{absent}");
            assert_eq!(
                planned.count_before(absent),
                keys.partition_point(|k| k.as_str() < absent)
            );
        }
        assert!(!PlannedObjects::default().contains("a"));
        assert_eq!(PlannedObjects::default().count_before("a"), 0);
    }

    #[test]
    fn two_plans_merged_are_one_in_key_order() {
        let keys = keys();
        let (even, odd): (Vec<_>, Vec<_>) = keys
            .iter()
            .cloned()
            .enumerate()
            .partition(|(i, _)| i % 2 == 0);
        let strip =
            |list: Vec<(usize, String)>| list.into_iter().map(|(_, k)| k).collect::<Vec<_>>();
        let (even, odd) = (planned(&strip(even)), planned(&strip(odd)));
        let merged = even.merged_with(&odd);
        let merged_keys: Vec<String> = merged.iter().map(|o| o.key.to_string()).collect();
        assert_eq!(merged_keys, keys);
        assert_eq!(merged.total_size(), even.total_size() + odd.total_size());
        assert_eq!(PlannedObjects::default().merged_with(&even), even);
    }

    #[test]
    #[should_panic(expected = "planned out of key order")]
    fn a_key_out_of_order_is_a_bug() {
        planned(&["b".into(), "a".into()]);
    }
}
