//! Which S3 operation a request is, from its method, path, query and
//! headers. Path-style addressing (`/bucket/key`), as the test configs use.

use serde::Serialize;

/// The request classes the proxy counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Class {
    /// PutObject: an object's whole content in one request.
    Put,
    /// UploadPart: one part of a multipart upload.
    UploadPart,
    /// CopyObject or UploadPartCopy (`x-amz-copy-source`): server-side copy.
    Copy,
    /// CreateMultipartUpload (`POST ?uploads`).
    MultipartCreate,
    /// CompleteMultipartUpload (`POST ?uploadId=`).
    MultipartComplete,
    /// AbortMultipartUpload (`DELETE ?uploadId=`).
    MultipartAbort,
    /// DeleteObjects (`POST ?delete`): many keys in one request.
    MultiDelete,
    /// ListObjects / ListObjectsV2 / ListObjectVersions (GET on a bucket).
    List,
    /// GetObject.
    Get,
    /// HeadObject or HeadBucket.
    Head,
    /// DeleteObject.
    Delete,
    /// Anything else: bucket creation, ACLs, locations, ...
    Other,
}

impl Class {
    /// Every class, in the order stats are shown.
    pub const ALL: [Class; 12] = [
        Class::Put,
        Class::UploadPart,
        Class::Copy,
        Class::MultipartCreate,
        Class::MultipartComplete,
        Class::MultipartAbort,
        Class::MultiDelete,
        Class::List,
        Class::Get,
        Class::Head,
        Class::Delete,
        Class::Other,
    ];

    /// The class's name as in the stats JSON (`PUT`, `UPLOAD_PART`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Class::Put => "PUT",
            Class::UploadPart => "UPLOAD_PART",
            Class::Copy => "COPY",
            Class::MultipartCreate => "MULTIPART_CREATE",
            Class::MultipartComplete => "MULTIPART_COMPLETE",
            Class::MultipartAbort => "MULTIPART_ABORT",
            Class::MultiDelete => "MULTI_DELETE",
            Class::List => "LIST",
            Class::Get => "GET",
            Class::Head => "HEAD",
            Class::Delete => "DELETE",
            Class::Other => "OTHER",
        }
    }

    /// The class named `name` (as [`Class::name`] spells it, any case).
    pub fn from_name(name: &str) -> Option<Class> {
        Class::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// Whether requests of this class carry an object's bytes.
    pub fn is_upload(self) -> bool {
        matches!(self, Class::Put | Class::UploadPart)
    }
}

/// Bucket-level GET subresources that are not listings.
const BUCKET_SUBRESOURCES: &[&str] = &[
    "acl",
    "accelerate",
    "analytics",
    "cors",
    "encryption",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "tagging",
    "uploads",
    "versioning",
    "website",
];

/// Object-level subresources that make a GET or PUT something other than
/// reading or writing the content.
const OBJECT_SUBRESOURCES: &[&str] = &[
    "acl",
    "attributes",
    "legal-hold",
    "restore",
    "retention",
    "tagging",
    "torrent",
];

/// Classifies one request. `path` is the URL path (percent-encoded or not),
/// `query` the raw query string without `?`, `has_copy_source` whether the
/// request has an `x-amz-copy-source` header.
pub fn classify(method: &str, path: &str, query: &str, has_copy_source: bool) -> Class {
    let names: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map_or(p, |(name, _)| name))
        .collect();
    let has = |name: &str| names.contains(&name);
    let trimmed = path.trim_start_matches('/');
    let (bucket, key) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let object_level = !bucket.is_empty() && !key.is_empty();
    let object_subresource = OBJECT_SUBRESOURCES.iter().any(|s| has(s));
    match method {
        "PUT" if object_level => {
            if has_copy_source {
                Class::Copy
            } else if has("partNumber") && has("uploadId") {
                Class::UploadPart
            } else if object_subresource {
                Class::Other
            } else {
                Class::Put
            }
        }
        "POST" if !bucket.is_empty() => {
            if has("delete") && !object_level {
                Class::MultiDelete
            } else if has("uploads") && object_level {
                Class::MultipartCreate
            } else if has("uploadId") && object_level {
                Class::MultipartComplete
            } else {
                Class::Other
            }
        }
        "GET" if object_level => {
            if object_subresource || has("uploadId") {
                Class::Other
            } else {
                Class::Get
            }
        }
        "GET" if !bucket.is_empty() => {
            if BUCKET_SUBRESOURCES.iter().any(|s| has(s)) {
                Class::Other
            } else {
                Class::List
            }
        }
        "HEAD" if !bucket.is_empty() => Class::Head,
        "DELETE" if object_level => {
            if has("uploadId") {
                Class::MultipartAbort
            } else if object_subresource {
                Class::Other
            } else {
                Class::Delete
            }
        }
        _ => Class::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_writes_parts_and_copies_are_told_apart() {
        assert_eq!(classify("PUT", "/b/k", "", false), Class::Put);
        assert_eq!(classify("PUT", "/b/dir/k%20x", "", false), Class::Put);
        assert_eq!(
            classify("PUT", "/b/k", "partNumber=2&uploadId=abc", false),
            Class::UploadPart
        );
        assert_eq!(classify("PUT", "/b/k", "", true), Class::Copy);
        assert_eq!(
            classify("PUT", "/b/k", "partNumber=1&uploadId=abc", true),
            Class::Copy
        );
        assert_eq!(classify("PUT", "/b/k", "acl", false), Class::Other);
        assert_eq!(classify("PUT", "/b", "", false), Class::Other);
        assert_eq!(classify("PUT", "/b/", "", false), Class::Other);
    }

    #[test]
    fn posts_are_multi_deletes_or_multipart_steps() {
        assert_eq!(classify("POST", "/b", "delete", false), Class::MultiDelete);
        assert_eq!(
            classify("POST", "/b/", "delete=", false),
            Class::MultiDelete
        );
        assert_eq!(
            classify("POST", "/b/k", "uploads", false),
            Class::MultipartCreate
        );
        assert_eq!(
            classify("POST", "/b/k", "uploadId=x", false),
            Class::MultipartComplete
        );
        assert_eq!(
            classify("DELETE", "/b/k", "uploadId=x", false),
            Class::MultipartAbort
        );
    }

    #[test]
    fn bucket_gets_are_listings_unless_a_subresource() {
        assert_eq!(classify("GET", "/b", "", false), Class::List);
        assert_eq!(
            classify("GET", "/b/", "list-type=2&prefix=a%2F", false),
            Class::List
        );
        assert_eq!(
            classify("GET", "/b", "prefix=x&marker=y", false),
            Class::List
        );
        assert_eq!(classify("GET", "/b", "location", false), Class::Other);
        assert_eq!(classify("GET", "/b", "versioning", false), Class::Other);
        assert_eq!(classify("GET", "/", "", false), Class::Other);
    }

    #[test]
    fn object_reads_heads_and_deletes() {
        assert_eq!(classify("GET", "/b/k", "", false), Class::Get);
        assert_eq!(classify("GET", "/b/k", "acl", false), Class::Other);
        assert_eq!(classify("HEAD", "/b/k", "", false), Class::Head);
        assert_eq!(classify("HEAD", "/b", "", false), Class::Head);
        assert_eq!(classify("DELETE", "/b/k", "", false), Class::Delete);
        assert_eq!(classify("DELETE", "/b", "", false), Class::Other);
    }

    #[test]
    fn names_round_trip() {
        for class in Class::ALL {
            assert_eq!(Class::from_name(class.name()), Some(class));
        }
        assert_eq!(Class::from_name("multi_delete"), Some(Class::MultiDelete));
        assert_eq!(Class::from_name("nope"), None);
    }
}
