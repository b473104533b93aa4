//! The conformance scenarios of what API 1.1 added: listing chosen keys,
//! reading byte ranges, and a planned sync. Every plugin passes them: one
//! that does not implement a method natively answers with the API's
//! default, which the scenarios hold to the same results.

use std::collections::BTreeSet;

use anyhow::{ensure, Result};
use stowage_plugin_api::{
    CompareMode, ErrorKind, IgnoreProgress, Location, ObjectEntry, StorageProvider, SyncOptions,
};

use crate::data::{content, LocalTree};
use crate::harness::Harness;
use crate::scratch::ScratchStore;

fn remote(store: &dyn ScratchStore) -> Location {
    Location::parse(&store.url())
}

/// The keys of the chosen-keys scenario: odd characters, and keys that
/// are string prefixes of others (`p/a` next to `p/ab` and `p/a.txt`).
const LISTED_KEYS: [&str; 8] = [
    "p/a",
    "p/ab",
    "p/a.txt",
    "with space/file name.txt",
    "plus+sign.txt",
    "percent%20encoded.txt",
    "unicodé/ñandú/文件.bin",
    "hash#tag.txt",
];

/// Size of the object stored with the plugin's own `put`: above the
/// multipart threshold the objstore harness sets (1 MiB), so that its
/// ETag is not its MD5.
const LARGE_OBJECT_SIZE: usize = (1 << 20) + 1000;

/// `entries` sorted by key, to compare two listings.
fn sorted(mut entries: Vec<ObjectEntry>) -> Vec<ObjectEntry> {
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    entries
}

/// The entries `list` gives below `location` for exactly `keys`.
fn listed_for(
    provider: &dyn StorageProvider,
    location: &Location,
    keys: &[String],
) -> Result<Vec<ObjectEntry>> {
    let asked: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    let mut entries = provider.list(location)?;
    entries.retain(|entry| asked.contains(entry.key.as_str()));
    Ok(sorted(entries))
}

/// Checks that `list_keys(location, keys)` gives the entries `list` gives
/// for those keys, field for field.
fn ensure_list_keys_matches_list(
    provider: &dyn StorageProvider,
    location: &Location,
    keys: &[String],
) -> Result<()> {
    let expected = listed_for(provider, location, keys)?;
    let got = sorted(provider.list_keys(location, keys)?);
    ensure!(
        got == expected,
        "list_keys({location}, {keys:?}) differs from list filtered to those keys\n  \
         list_keys: {got:?}\n  list:      {expected:?}"
    );
    Ok(())
}

/// `list_keys` gives exactly the entries `list` gives for the asked keys
/// that exist (size, MD5, ETag and time identical, a multipart object's
/// too), leaves absent keys out, does not take a key for the prefix of
/// longer ones, takes keys relative to a prefix location, and reports a
/// missing bucket as `list` does.
pub fn listing_chosen_keys_gives_the_entries_of_the_full_listing(h: &Harness) -> Result<()> {
    let provider = h.plugin.provider();
    let bucket = h.bucket("listkeys")?;
    let location = remote(&*bucket);
    for (i, key) in LISTED_KEYS.iter().enumerate() {
        bucket.put(key, &content(80 + i as u64, 300 + i))?;
    }
    let tree = LocalTree::new()?;
    tree.write("large.bin", &content(90, LARGE_OBJECT_SIZE))?;
    let large = tree.path().join("large.bin").to_string_lossy().into_owned();
    provider.put(&large, &location, "p/large.bin")?;
    // An object and a "directory" of the same name, checked where the
    // store holds both (object stores do; a filesystem refuses the second).
    let file_and_directory = bucket.put("q", b"q").is_ok() && bucket.put("q/r", b"r").is_ok();

    let mut asked: Vec<String> = LISTED_KEYS.iter().map(|k| k.to_string()).collect();
    asked.extend(["p/large.bin", "absent", "p/a/none", "p"].map(String::from));
    ensure_list_keys_matches_list(provider, &location, &asked)?;
    let found = provider.list_keys(&location, &asked)?;
    ensure!(
        found.len() == LISTED_KEYS.len() + 1,
        "list_keys found {} of the {} stored keys asked for: {found:?}",
        found.len(),
        LISTED_KEYS.len() + 1
    );

    let only_a = ["p/a".to_string()];
    let found = provider.list_keys(&location, &only_a)?;
    ensure!(
        found.len() == 1 && found[0].key == "p/a",
        "list_keys([p/a]) took in other keys: {found:?}"
    );
    if file_and_directory {
        ensure_list_keys_matches_list(provider, &location, &["q".to_string()])?;
        let found = provider.list_keys(&location, &["q".to_string()])?;
        ensure!(
            found.len() == 1 && found[0].key == "q",
            "list_keys([q]) next to q/r gave {found:?}"
        );
    }

    let below_p = location.join("p");
    let relative = ["a", "ab", "large.bin", "none"].map(String::from);
    ensure_list_keys_matches_list(provider, &below_p, &relative)?;
    ensure!(
        provider.list_keys(&location, &[])?.is_empty(),
        "list_keys of no keys found some"
    );

    let missing = remote(&*h.missing_bucket("listkeys-missing"));
    let err = provider
        .list_keys(&missing, &only_a)
        .expect_err("list_keys in a missing bucket");
    ensure!(
        err.kind == ErrorKind::BucketMissing,
        "list_keys in a missing bucket: kind {:?}: {}",
        err.kind,
        err.message
    );
    Ok(())
}

/// Where a plugin reads ranges, `get_range` writes exactly the bytes of
/// the range (at the start, in the middle, at the end, the whole object)
/// into a file it truncates, and a range past the end is `InvalidInput`.
/// Where it does not, `get_range` is refused as `InvalidInput`.
pub fn byte_ranges_read_exactly_those_bytes(h: &Harness) -> Result<()> {
    let provider = h.plugin.provider();
    let bucket = h.bucket("ranges")?;
    let location = remote(&*bucket);
    let data = content(95, 100_000);
    bucket.put("r/data file.bin", &data)?;
    let tree = LocalTree::new()?;
    let out = tree.path().join("out.bin");
    let out_text = out.to_string_lossy().into_owned();
    let read = |offset: u64, length: u64| {
        provider.get_range(&location, "r/data file.bin", offset, length, &out_text)
    };

    if !provider.reads_ranges() {
        let err = read(0, 10).expect_err("get_range where ranges are not read");
        ensure!(
            err.kind == ErrorKind::InvalidInput,
            "get_range where ranges are not read: kind {:?}: {}",
            err.kind,
            err.message
        );
        return Ok(());
    }
    for (offset, length) in [(0, 10), (50_000, 1_234), (99_990, 10), (0, 100_000), (7, 1)] {
        // A longer file is there already: the range replaces it.
        std::fs::write(&out, vec![b'x'; 200_000])?;
        read(offset, length)?;
        let range = offset as usize..(offset + length) as usize;
        ensure!(
            std::fs::read(&out)? == data[range],
            "get_range({offset}, {length}) wrote other bytes"
        );
    }
    for (offset, length) in [(99_995, 10), (100_000, 1), (200_000, 5)] {
        let err = read(offset, length).expect_err("a range past the end");
        ensure!(
            err.kind == ErrorKind::InvalidInput && !err.message.contains('\n'),
            "get_range({offset}, {length}) past the end: kind {:?}: {}",
            err.kind,
            err.message
        );
    }
    Ok(())
}

/// A sync told that the host planned it (`CompareMode::Planned`) leaves
/// the destination holding the source's bytes — stale objects of the same
/// key replaced, others kept without `delete` and removed with it — up
/// into a bucket and down into a directory.
pub fn a_planned_sync_leaves_the_destination_equal_to_the_source(h: &Harness) -> Result<()> {
    let provider = h.plugin.provider();
    let tree = LocalTree::new()?;
    tree.write("a.txt", &content(70, 10))?;
    tree.write("dir/b.bin", &content(71, 5_000))?;
    tree.write("dir/same size.bin", &content(72, 777))?;
    let bucket = h.bucket("planned")?;
    bucket.put("dir/same size.bin", &content(73, 777))?;
    bucket.put("extra.txt", b"not in the source")?;
    let planned = |delete: bool| SyncOptions {
        delete,
        compare: CompareMode::Planned,
        ..SyncOptions::default()
    };

    provider.sync(
        &tree.location(),
        &remote(&*bucket),
        &planned(false),
        &IgnoreProgress,
    )?;
    let mut expected = tree.contents()?;
    let kept = bucket.contents()?.get("extra.txt").cloned();
    ensure!(kept.is_some(), "a planned sync without delete deleted");
    expected.insert("extra.txt".into(), kept.unwrap_or_default());
    ensure!(
        bucket.contents()? == expected,
        "after a planned sync up: {:?} != {expected:?}",
        bucket.contents()?
    );

    provider.sync(
        &tree.location(),
        &remote(&*bucket),
        &planned(true),
        &IgnoreProgress,
    )?;
    ensure!(
        bucket.contents()? == tree.contents()?,
        "after a planned sync up with delete: {:?}",
        bucket.contents()?
    );

    let back = LocalTree::new()?;
    back.write("dir/same size.bin", &content(74, 777))?;
    provider.sync(
        &remote(&*bucket),
        &back.location(),
        &planned(true),
        &IgnoreProgress,
    )?;
    ensure!(
        back.contents()? == tree.contents()?,
        "after a planned sync down: {:?}",
        back.contents()?
    );
    Ok(())
}
