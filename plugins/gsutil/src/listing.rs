//! Listing objects: `gsutil ls -L` (gsutil has no machine-readable
//! listing), its blocks parsed into entries.

use base64::Engine;
use stowage_local_tree::hex;
use stowage_plugin_api::{ErrorKind, Location, ObjectEntry, PluginError};
use stowage_plugin_support::paths::sync_root;
use stowage_plugin_support::tool::Tool;

use crate::locations::gs_url;

/// What gsutil says when a listing or `ls` URL matched nothing.
pub const MATCHED_NOTHING: &str = "matched no objects";

/// The objects below `location` (`gsutil ls -L`); none for an empty
/// bucket or prefix.
pub fn list(tool: &Tool, location: &Location) -> Result<Vec<ObjectEntry>, PluginError> {
    gs_url(location)?;
    let root = sync_root(location);
    let pattern = format!("{root}**");
    let args = ["ls", "-L", pattern.as_str()];
    let (status, output) = tool.run_unchecked(&args)?;
    if !status.success() {
        let failure = tool.failure(&args, status, &output.stderr);
        // An empty bucket or prefix is "no objects", not a failure.
        if failure.kind != ErrorKind::BucketMissing && output.stderr.contains(MATCHED_NOTHING) {
            return Ok(Vec::new());
        }
        return Err(failure);
    }
    Ok(parse_long_listing(&output.stdout, &root))
}

/// The objects of `gsutil ls -L`, keyed relative to `root` (`gs://b/p/`).
///
/// Each object is a block: a `gs://b/p/key:` line, then fields indented by
/// four spaces (`Content-Length:`, `Hash (md5):` in base64, `ETag:`,
/// `Update time:`) and custom metadata indented by eight
/// (`goog-reserved-file-mtime:SECONDS`, the file mtime gsutil records).
/// Composite objects have no MD5. A `TOTAL:` line ends the listing.
fn parse_long_listing(text: &str, root: &str) -> Vec<ObjectEntry> {
    let mut entries = Vec::new();
    let mut current: Option<ListedObject> = None;
    for line in text.lines() {
        if !line.starts_with(' ') {
            entries.extend(current.take().and_then(ListedObject::into_entry));
            current = line
                .strip_prefix(root)
                .and_then(|rest| rest.strip_suffix(':'))
                .filter(|key| !key.is_empty())
                .map(ListedObject::new);
            continue;
        }
        let Some(object) = current.as_mut() else {
            continue;
        };
        let depth = line.len() - line.trim_start_matches(' ').len();
        let Some((name, value)) = line.trim_start().split_once(':') else {
            continue;
        };
        let value = value.trim();
        match (depth, name) {
            (4, "Content-Length") => object.size = value.parse().ok(),
            (4, "Hash (md5)") => object.md5 = base64_md5_to_hex(value),
            (4, "ETag") => object.etag = Some(value.to_string()),
            (4, "Update time") => object.updated = http_date_to_unix(value),
            (8, "goog-reserved-file-mtime") => object.file_mtime = value.parse().ok(),
            _ => {}
        }
    }
    entries.extend(current.and_then(ListedObject::into_entry));
    entries
}

/// One object of a long listing, while its block is read.
struct ListedObject {
    key: String,
    size: Option<u64>,
    md5: Option<String>,
    etag: Option<String>,
    updated: Option<i64>,
    file_mtime: Option<i64>,
}

impl ListedObject {
    fn new(key: &str) -> Self {
        ListedObject {
            key: key.to_string(),
            size: None,
            md5: None,
            etag: None,
            updated: None,
            file_mtime: None,
        }
    }

    fn into_entry(self) -> Option<ObjectEntry> {
        Some(ObjectEntry {
            key: self.key,
            size: self.size?,
            md5: self.md5,
            etag: self.etag,
            // The recorded file mtime is what `gsutil rsync` compares with a
            // local file's, so a file given this time is not copied again.
            last_modified: self.file_mtime.or(self.updated),
        })
    }
}

/// Lowercase hex of a base64 MD5 (`1B2M2Y8AsgTpgAmY7PhCfg==`).
fn base64_md5_to_hex(value: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    (bytes.len() == 16).then(|| hex(&bytes))
}

/// Seconds since the Unix epoch of an HTTP date, `Thu, 26 Nov 2026 02:39:42 GMT`.
fn http_date_to_unix(value: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let [_, day, month, year, time, "GMT"] = value.split_whitespace().collect::<Vec<_>>()[..]
    else {
        return None;
    };
    let month = MONTHS.iter().position(|m| *m == month)? + 1;
    let day: u32 = day.parse().ok()?;
    let rfc3339 = format!("{year}-{month:02}-{day:02}T{time}Z");
    humantime::parse_rfc3339(&rfc3339)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {

    use super::*;

    const LISTING: &str = "\
gs://bkt/p/dir/one file.bin:
    Creation time:          Thu, 26 Nov 2026 02:39:42 GMT
    Update time:            Thu, 26 Nov 2026 02:39:43 GMT
    Storage class:          STANDARD
    Content-Length:         5000
    Content-Type:           application/octet-stream
    Metadata:               
        goog-reserved-file-mtime:1795660741
        Content-Length:999
    Hash (crc32c):          ODekbw==
    Hash (md5):             THhS5vUlq84icHcO9VqBqA==
    ETag:                   CJ2Q7d3q0ZEDEAE=
    Generation:             1795660782796989773
    Metageneration:         2
    ACL:                    []
gs://bkt/p/it's: #1 [x].txt:
    Creation time:          Thu, 26 Nov 2026 02:39:42 GMT
    Update time:            Thu, 26 Nov 2026 02:39:42 GMT
    Content-Length:         0
    Hash (crc32c):          AAAAAA==
    Hash (md5):             1B2M2Y8AsgTpgAmY7PhCfg==
gs://bkt/p/composite:
    Creation time:          Thu, 26 Nov 2026 02:51:59 GMT
    Update time:            Thu, 26 Nov 2026 02:51:59 GMT
    Content-Length:         8
    Component-Count:        2
    Hash (crc32c):          ZWMakQ==
    ETag:                   CMGgxNnq0ZEDEAE=
TOTAL: 3 objects, 5008 bytes (4.89 KiB)
";

    #[test]
    fn long_listings_give_sizes_hex_md5s_and_times() {
        let entries = parse_long_listing(LISTING, "gs://bkt/p/");
        let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["dir/one file.bin", "it's: #1 [x].txt", "composite"]);
        let first = &entries[0];
        assert_eq!(first.size, 5000);
        assert_eq!(
            first.md5.as_ref().unwrap().as_str(),
            "4c7852e6f525abce2270770ef55a81a8"
        );
        assert_eq!(first.etag.as_ref().unwrap().as_str(), "CJ2Q7d3q0ZEDEAE=");
        assert_eq!(first.last_modified, Some(1795660741));
        let empty = &entries[1];
        assert_eq!(
            (empty.size, empty.md5.as_ref().unwrap().as_str()),
            (0, "d41d8cd98f00b204e9800998ecf8427e")
        );
        // No recorded file mtime: the object's update time.
        assert_eq!(empty.last_modified, Some(1795660782));
    }

    #[test]
    fn composite_objects_have_no_md5() {
        let entries = parse_long_listing(LISTING, "gs://bkt/p/");
        assert_eq!(entries[2].size, 8);
        assert!(entries[2].md5.is_none());
    }

    #[test]
    fn listing_lines_outside_the_root_are_ignored() {
        let text = "gs://other/x:\n    Content-Length:         3\n";
        assert!(parse_long_listing(text, "gs://bkt/").is_empty());
    }

    #[test]
    fn http_dates_become_unix_seconds() {
        assert_eq!(
            http_date_to_unix("Thu, 01 Jan 1970 00:01:40 GMT"),
            Some(100)
        );
        assert_eq!(
            http_date_to_unix("Thu, 26 Nov 2026 02:39:42 GMT"),
            Some(1795660782)
        );
        assert_eq!(http_date_to_unix("yesterday"), None);
    }
}
