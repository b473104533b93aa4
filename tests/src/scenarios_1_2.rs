//! The conformance scenarios of what API 1.2 added: listing one page at a
//! time. Every plugin passes them: one that does not page natively answers
//! with the API's default (pages cut out of one whole `list`), which the
//! scenarios hold to the same results.

use anyhow::{ensure, Result};
use stowage_plugin_api::{ErrorKind, Location, ObjectEntry, StorageProvider};

use crate::data::{content, LocalTree};
use crate::harness::Harness;
use crate::scratch::ScratchStore;

fn remote(store: &dyn ScratchStore) -> Location {
    Location::parse(&store.url())
}

/// The keys of the paging scenarios, chosen for their order: a key that is
/// a string prefix of others (`a` beside `a-b`, `a.txt`, `a/x`, `a0`, `ab`:
/// `-` and `.` sort before `/`, `0` after it, as they do in a key, whatever
/// a filesystem's directories do), several levels of "directories",
/// capitals before small letters, and odd characters (space, `+`, `%`,
/// unicode, which sorts after ASCII by its UTF-8 bytes).
const PAGED_KEYS: [&str; 14] = [
    "a-b",
    "a.txt",
    "a/x",
    "a/y/z",
    "a/y0",
    "a0",
    "ab",
    "B upper.txt",
    "with space/file name.txt",
    "plus+sign.txt",
    "percent%20encoded.txt",
    "unicodé/ñandú/文件.bin",
    "z/é",
    "z/zz",
];

/// Size of the object stored with the plugin's own `put`: above the
/// multipart threshold the objstore harness sets (1 MiB), so that its
/// ETag is not its MD5 (which its entry must still carry as `list`'s does).
const LARGE_OBJECT_SIZE: usize = (1 << 20) + 1000;

/// A bucket holding [`PAGED_KEYS`], `a/large.bin` stored through the
/// plugin, and `a` itself where the store holds an object beside a
/// "directory" of the same name (object stores do; a filesystem does not).
fn paged_bucket(h: &Harness, hint: &str) -> Result<Box<dyn ScratchStore>> {
    let bucket = h.bucket(hint)?;
    for (i, key) in PAGED_KEYS.iter().enumerate() {
        bucket.put(key, &content(120 + i as u64, 10 + i))?;
    }
    let tree = LocalTree::new()?;
    tree.write("large.bin", &content(140, LARGE_OBJECT_SIZE))?;
    let large = tree.path().join("large.bin").to_string_lossy().into_owned();
    h.plugin
        .provider()
        .put(&large, &remote(&*bucket), "a/large.bin")?;
    let _ = bucket.put("a", b"a beside a/");
    Ok(bucket)
}

/// `list(location)` in ascending key order (as `str::cmp` orders keys).
fn sorted_listing(provider: &dyn StorageProvider, location: &Location) -> Result<Vec<ObjectEntry>> {
    let mut entries = provider.list(location)?;
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(entries)
}

/// `expected` from the first key above `after`, at most `limit` entries.
fn page_of(expected: &[ObjectEntry], after: &str, limit: usize) -> Vec<ObjectEntry> {
    let first = expected.partition_point(|entry| entry.key.as_str() <= after);
    expected[first..].iter().take(limit).cloned().collect()
}

/// Walks `location` as the host does: pages of `limit` from the first key,
/// each after the last key of the one before, until a short page. Checks
/// each page's size and order on the way.
fn walk_pages(
    provider: &dyn StorageProvider,
    location: &Location,
    limit: u32,
) -> Result<Vec<ObjectEntry>> {
    let mut walked: Vec<ObjectEntry> = Vec::new();
    loop {
        let after = walked.last().map_or("", |entry| entry.key.as_str());
        let page = provider.list_page(location, after, limit)?;
        ensure!(
            page.len() <= limit as usize,
            "list_page({location}, {after:?}, {limit}) gave {} entries",
            page.len()
        );
        let ascending = page.windows(2).all(|pair| pair[0].key < pair[1].key);
        let above = page.first().is_none_or(|first| first.key.as_str() > after);
        ensure!(
            ascending && above,
            "list_page({location}, {after:?}, {limit}) is not in key order above {after:?}: {:?}",
            page.iter().map(|e| &e.key).collect::<Vec<_>>()
        );
        let last_page = page.len() < limit as usize;
        walked.extend(page);
        if last_page {
            return Ok(walked);
        }
    }
}

/// Checks that `list_page(location, after, limit)` is the page of
/// `expected` (the sorted listing) above `after`, entry for entry.
fn ensure_page(
    provider: &dyn StorageProvider,
    location: &Location,
    expected: &[ObjectEntry],
    after: &str,
    limit: u32,
) -> Result<()> {
    let got = provider.list_page(location, after, limit)?;
    let want = page_of(expected, after, limit as usize);
    ensure!(
        got == want,
        "list_page({location}, {after:?}, {limit}) differs from the sorted list\n  \
         list_page: {got:?}\n  list:      {want:?}"
    );
    Ok(())
}

/// Pages of 1, 2, 3 and 1000 entries, each after the last key of the page
/// before until a short page, concatenate to exactly `list`'s entries in
/// key order (sizes, MD5s, ETags and times identical, a multipart
/// object's too), across keys that are prefixes of others, "directories"
/// and odd characters.
pub fn pages_of_a_listing_concatenate_to_the_sorted_listing(h: &Harness) -> Result<()> {
    let provider = h.plugin.provider();
    let bucket = paged_bucket(h, "pages")?;
    let location = remote(&*bucket);
    let expected = sorted_listing(provider, &location)?;
    ensure!(
        expected.len() > PAGED_KEYS.len(),
        "list found {} objects, fewer than the {} stored",
        expected.len(),
        PAGED_KEYS.len() + 1
    );
    for limit in [1, 2, 3, 1000] {
        let walked = walk_pages(provider, &location, limit)?;
        ensure!(
            walked == expected,
            "pages of {limit} differ from the sorted list\n  pages: {walked:?}\n  list:  {expected:?}"
        );
    }
    Ok(())
}

/// A page starts strictly after `after` whether or not that key exists (a
/// key between two others, a "directory" prefix, one before the first
/// and past the last); after the last key the page is empty; below a
/// prefix location the keys (and `after`) are relative to it; a missing
/// bucket is `BucketMissing`, as for `list`.
pub fn a_page_starts_after_any_key_below_any_prefix(h: &Harness) -> Result<()> {
    let provider = h.plugin.provider();
    let bucket = paged_bucket(h, "after")?;
    let location = remote(&*bucket);
    let expected = sorted_listing(provider, &location)?;
    let last = expected.last().map(|entry| entry.key.clone());
    let last = last.unwrap_or_default();
    for after in [
        "", "A", "a", "a-b", "a/", "a/x0", "a/y", "a0", "aa", "unicodé", "zzz", &last,
    ] {
        for limit in [2, 1000] {
            ensure_page(provider, &location, &expected, after, limit)?;
        }
    }
    let empty = provider.list_page(&location, &last, 1000)?;
    ensure!(
        empty.is_empty(),
        "list_page after the last key {last:?} gave {empty:?}"
    );

    let below_a = location.join("a");
    let expected_below_a = sorted_listing(provider, &below_a)?;
    ensure!(
        expected_below_a.iter().any(|entry| entry.key == "y/z"),
        "list below the prefix a gave {expected_below_a:?}"
    );
    for after in ["", "large.bin", "x", "y", "y/z"] {
        ensure_page(provider, &below_a, &expected_below_a, after, 2)?;
    }

    let missing = remote(&*h.missing_bucket("pages-missing"));
    let err = provider
        .list_page(&missing, "", 1000)
        .expect_err("list_page in a missing bucket");
    ensure!(
        err.kind == ErrorKind::BucketMissing,
        "list_page in a missing bucket: kind {:?}: {}",
        err.kind,
        err.message
    );
    Ok(())
}
