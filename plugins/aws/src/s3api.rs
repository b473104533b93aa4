//! What `aws s3api` prints with `--output json`, read back: object listings
//! (`list-objects-v2`, all pages merged by aws), an object's size
//! (`head-object`) and the outcome of `delete-objects`.

use serde::Deserialize;
use stowage_plugin_api::{ErrorKind, ObjectEntry, PluginError, RemoteUrl};
use stowage_plugin_support::tool::classify;

#[derive(Deserialize)]
struct ListObjectsOutput {
    /// Absent when nothing is listed (aws then prints only `Prefix` and the like).
    #[serde(rename = "Contents", default)]
    contents: Vec<ListedObject>,
}

#[derive(Deserialize)]
struct ListedObject {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Size")]
    size: u64,
    #[serde(rename = "ETag")]
    etag: Option<String>,
    #[serde(rename = "LastModified")]
    last_modified: Option<String>,
}

/// The objects of `list-objects-v2` output, with keys relative to `url`.
/// Empty output is an empty listing; a key equal to the prefix itself (a
/// "folder" marker of the location) is no object below it.
pub fn parse_listing(json: &str, url: &RemoteUrl) -> Result<Vec<ObjectEntry>, PluginError> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let output: ListObjectsOutput = serde_json::from_str(json).map_err(|e| {
        PluginError::new(
            ErrorKind::ToolFailed,
            format!("aws s3api list-objects-v2 printed unexpected JSON: {e}"),
        )
    })?;
    Ok(output
        .contents
        .into_iter()
        .filter_map(|object| {
            let key = url.relative_key(&object.key).filter(|k| !k.is_empty())?;
            let etag = object
                .etag
                .as_deref()
                .map(|e| e.trim_matches('"').to_string());
            // A multipart ETag (`<hex>-<parts>`) is no MD5 of the content.
            let md5 = etag
                .as_deref()
                .filter(|e| e.len() == 32 && e.chars().all(|c| c.is_ascii_hexdigit()))
                .map(|e| e.to_ascii_lowercase());
            Some(ObjectEntry {
                key: key.into(),
                size: object.size,
                md5,
                etag,
                last_modified: object.last_modified.as_deref().and_then(epoch_seconds),
            })
        })
        .collect())
}

#[derive(Deserialize)]
struct HeadObjectOutput {
    #[serde(rename = "ContentLength")]
    content_length: u64,
}

/// The size of an object in `head-object` output.
pub fn content_length(json: &str) -> Result<u64, PluginError> {
    let output: HeadObjectOutput = serde_json::from_str(json).map_err(|e| {
        PluginError::new(
            ErrorKind::ToolFailed,
            format!("aws s3api head-object printed unexpected JSON: {e}"),
        )
    })?;
    Ok(output.content_length)
}

/// Seconds since the epoch of an S3 timestamp as aws prints it
/// (`2026-11-26T02:38:46.000Z`, or `+00:00` instead of `Z`).
fn epoch_seconds(timestamp: &str) -> Option<i64> {
    let utc = match timestamp.strip_suffix("+00:00") {
        Some(rest) => format!("{rest}Z"),
        None => timestamp.to_string(),
    };
    humantime::parse_rfc3339(&utc)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs() as i64)
}

#[derive(Deserialize)]
struct DeleteObjectsOutput {
    /// With `Quiet`, S3 reports only the keys it could not delete.
    #[serde(rename = "Errors", default)]
    errors: Vec<DeleteError>,
}

#[derive(Deserialize)]
struct DeleteError {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// Whether `delete-objects` deleted every key: an error naming how many
/// it could not delete and the first of them (kind from its code)
/// otherwise. A quiet run without errors may print nothing at all.
pub fn delete_failures(json: &str) -> Result<(), PluginError> {
    if json.trim().is_empty() {
        return Ok(());
    }
    let output: DeleteObjectsOutput = serde_json::from_str(json).map_err(|e| {
        PluginError::new(
            ErrorKind::ToolFailed,
            format!("aws s3api delete-objects printed unexpected JSON: {e}"),
        )
    })?;
    match output.errors.first() {
        None => Ok(()),
        Some(first) => Err(PluginError::new(
            classify(&first.code),
            format!(
                "aws s3api delete-objects could not delete {} object(s), e.g. {:?}: {} {}",
                output.errors.len(),
                first.key,
                first.code,
                first.message
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = r#"{
        "Contents": [
            {
                "Key": "p/d d/it's a to b.txt",
                "LastModified": "2026-11-26T02:38:46.000Z",
                "ETag": "\"764EFA883DDA1E11DB47671C4A3BBD9E\"",
                "ChecksumAlgorithm": ["CRC32"],
                "Size": 3,
                "StorageClass": "STANDARD"
            },
            {
                "Key": "p/big \"x\".bin",
                "LastModified": "2026-11-26T02:38:46+00:00",
                "ETag": "\"0123456789abcdef0123456789abcdef-2\"",
                "Size": 9000000
            },
            { "Key": "p/", "Size": 0, "ETag": "\"d41d8cd98f00b204e9800998ecf8427e\"" },
            { "Key": "pq/outside", "Size": 1 }
        ],
        "RequestCharged": null,
        "Prefix": "p/"
    }"#;

    #[test]
    fn listings_keep_awkward_keys_and_tell_md5s_from_multipart_etags() {
        let url = RemoteUrl::parse("s3://bkt/p").unwrap();
        let entries = parse_listing(LISTING, &url).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].key.as_str(), "d d/it's a to b.txt");
        assert_eq!(entries[0].size, 3);
        assert_eq!(
            entries[0].md5.as_ref().unwrap().as_str(),
            "764efa883dda1e11db47671c4a3bbd9e"
        );
        assert_eq!(entries[0].last_modified, Some(1795660726));
        assert_eq!(entries[1].key.as_str(), "big \"x\".bin");
        assert!(entries[1].md5.is_none());
        assert_eq!(
            entries[1].etag.as_ref().unwrap().as_str(),
            "0123456789abcdef0123456789abcdef-2"
        );
        assert_eq!(entries[1].last_modified, Some(1795660726));
    }

    #[test]
    fn empty_listings_are_empty() {
        let url = RemoteUrl::parse("s3://bkt").unwrap();
        for output in [
            "",
            "\n",
            "{\n    \"RequestCharged\": null,\n    \"Prefix\": \"\"\n}\n",
        ] {
            assert!(parse_listing(output, &url).unwrap().is_empty());
        }
        assert!(parse_listing("Contents: none", &url).is_err());
    }

    #[test]
    fn delete_errors_name_the_keys_that_stay() {
        assert!(delete_failures("").is_ok());
        assert!(delete_failures(r#"{"Deleted": [{"Key": "a"}]}"#).is_ok());
        let output = r#"{
            "Deleted": [{"Key": "p/a"}],
            "Errors": [
                {"Key": "p/b c", "Code": "AccessDenied", "Message": "Access Denied"},
                {"Key": "p/d", "Code": "InternalError", "Message": "oops"}
            ]
        }"#;
        let error = delete_failures(output).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Unauthorized);
        assert_eq!(
            error.message.as_str(),
            "aws s3api delete-objects could not delete 2 object(s), e.g. \"p/b c\": AccessDenied Access Denied"
        );
    }

    #[test]
    fn the_size_of_an_object_comes_from_head_object_output() {
        let head = r#"{"AcceptRanges": "bytes", "ContentLength": 100000, "ETag": "\"x\""}"#;
        assert_eq!(content_length(head).unwrap(), 100_000);
        let error = content_length("not json").unwrap_err();
        assert_eq!(error.kind, ErrorKind::ToolFailed);
    }
}
