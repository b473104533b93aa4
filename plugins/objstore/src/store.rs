//! The requests, as async functions on one bucket's store, whichever the
//! provider: listing with MD5s, uploads (one PUT, or multipart for big
//! files) that store the content's MD5 in the object's metadata, downloads
//! written atomically, copies, batched deletes and the conditional create.

use std::io::{Read, Write};
use std::path::PathBuf;

use base64::Engine;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, GetOptions, GetResult, ObjectStore, ObjectStoreExt, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, WriteMultipart,
};
use stowage_local_tree::{hex, md5_file_digest, write_atomically};
use stowage_plugin_api::{ErrorKind, PluginError};
use stowage_plugin_support::io_errors::from_io;

use crate::backend::PageSpan;
use crate::memory_budget::MemoryBudget;

/// The user-metadata key holding the content's MD5 (base64 of the 16
/// bytes), sent as `x-amz-meta-md5chksum` (GCS: `x-goog-meta-md5chksum`,
/// Azure: `x-ms-meta-md5chksum`): the name and encoding rclone uses, so
/// objects either tool uploaded compare by content.
pub const MD5_METADATA: &str = "md5chksum";

/// Size of one part of a multipart upload (S3 wants at least 5 MiB).
pub const PART_SIZE: usize = 8 << 20;

/// Parts of one multipart transfer in flight at once (one more is being
/// read meanwhile).
const PARTS_IN_FLIGHT: usize = 2;

/// What one multipart transfer holds of the memory budget.
const MULTIPART_MEMORY: u64 = ((PARTS_IN_FLIGHT + 1) * PART_SIZE) as u64;

/// How transfers of content are sized: where parts begin, and how much
/// content all of them together hold in memory.
#[derive(Debug)]
pub struct TransferLimits {
    /// Files and objects from this many bytes up go in parts.
    pub multipart_threshold: u64,
    /// The content held in memory at once, by every transfer together.
    pub memory: MemoryBudget,
}

impl TransferLimits {
    /// Waits until a transfer of `size` bytes may hold its content, and
    /// holds it: the whole object below the multipart threshold, else the
    /// parts in flight.
    async fn hold_for(&self, size: u64) -> crate::memory_budget::Held<'_> {
        match size < self.multipart_threshold {
            true => self.memory.hold(size).await,
            false => self.memory.hold(MULTIPART_MEMORY).await,
        }
    }
}

/// An object found by a listing, its key still the full key in the bucket.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The full key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The ETag, quotes removed.
    pub etag: Option<String>,
    /// The content's MD5: the ETag when it is one, else the MD5 stored in
    /// the object's metadata at upload.
    pub md5: Option<String>,
    /// Last modification, seconds since the Unix epoch.
    pub last_modified: i64,
}

/// Turns object_store's errors into plugin errors, with the secrets of the
/// settings redacted from every message.
#[derive(Clone, Debug, Default)]
pub struct Errors {
    secrets: Vec<String>,
}

impl Errors {
    /// Redacts `secrets` from every message.
    pub fn new(secrets: Vec<String>) -> Errors {
        Errors { secrets }
    }

    /// `message` without any secret (and without the query of a presigned URL).
    pub fn redact(&self, message: &str) -> String {
        let mut text = message.to_string();
        for secret in &self.secrets {
            text = text.replace(secret.as_str(), "<redacted>");
        }
        text
    }

    /// An error building a store (its settings refused) as a config error.
    pub fn config(&self, what: &str, error: object_store::Error) -> PluginError {
        PluginError::new(ErrorKind::Config, self.convert(what, error).message)
    }

    /// An object_store error about `what` as a plugin error of the kind the
    /// host can act on.
    pub fn convert(&self, what: &str, error: object_store::Error) -> PluginError {
        let text = self.redact(&full_message(&error));
        let kind = match &error {
            _ if text.contains("NoSuchBucket") || text.contains("ContainerNotFound") => {
                ErrorKind::BucketMissing
            }
            object_store::Error::NotFound { .. } => ErrorKind::NotFound,
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => ErrorKind::Unauthorized,
            _ if text.contains("InvalidAccessKeyId")
                || text.contains("SignatureDoesNotMatch")
                || text.contains("AccessDenied") =>
            {
                ErrorKind::Unauthorized
            }
            _ if text.contains("error sending request") || text.contains("connect") => {
                ErrorKind::Unreachable
            }
            _ => ErrorKind::Other,
        };
        PluginError::new(kind, format!("{what}: {text}"))
    }
}

/// An error's message followed by its sources' (object_store keeps the
/// server's answer in them).
pub fn full_message(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// A key as object_store's path, refused (`InvalidInput`) when it has empty,
/// `.` or `..` segments or control characters. Unlike `Path::from`, no
/// character is percent-encoded: the key is stored as given.
pub fn object_path(key: &str) -> Result<Path, PluginError> {
    let refused = |why: &dyn std::fmt::Display| {
        PluginError::new(
            ErrorKind::InvalidInput,
            format!("unsafe object key {key:?}: {why}"),
        )
    };
    if key.is_empty() || key.starts_with('/') || key.ends_with('/') {
        return Err(refused(&"not a plain relative key"));
    }
    Path::parse(key).map_err(|e| refused(&e))
}

/// The MD5 an ETag is, if it is one: 32 hex digits (not a multipart
/// `<hex>-<parts>` ETag).
pub fn etag_md5(etag: &str) -> Option<String> {
    let etag = etag.trim_matches('"');
    (etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| etag.to_ascii_lowercase())
}

/// The metadata attribute holding `md5` (16 bytes).
fn md5_attributes(md5: &[u8; 16]) -> Attributes {
    let mut attributes = Attributes::new();
    attributes.insert(
        Attribute::Metadata(MD5_METADATA.into()),
        base64::engine::general_purpose::STANDARD.encode(md5).into(),
    );
    attributes
}

/// The hex MD5 held in `attributes`, if any and well-formed.
pub fn metadata_md5(attributes: &Attributes) -> Option<String> {
    base64_md5(attributes.get(&Attribute::Metadata(MD5_METADATA.into()))?)
}

/// The hex of an MD5 written in base64 (as metadata and `Content-MD5`
/// hold it), if it is one.
pub fn base64_md5(value: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    (bytes.len() == 16).then(|| hex(&bytes))
}

/// Every object below `prefix` (the whole bucket when empty), as a stream
/// of pages consumed as it comes. Objects whose ETag `etag_md5` does not
/// take for an MD5 get theirs from a HEAD request for their metadata,
/// `concurrency` at a time.
pub async fn list(
    store: &dyn ObjectStore,
    prefix: &str,
    etag_md5: impl Fn(&str) -> Option<String>,
    concurrency: usize,
    errors: &Errors,
) -> Result<Vec<Listed>, PluginError> {
    let prefix = prefix_path(prefix)?;
    let listed = listed_objects(
        store.list(prefix.as_ref()),
        "",
        usize::MAX,
        etag_md5,
        errors,
    );
    with_stored_md5s(listed.await?, store, concurrency, errors).await
}

/// The objects of the page `span`, in key order, each as [`list`] gives
/// it. The store is asked to start after `span.after` (`list_with_offset`:
/// S3's and GCS's `start-after`) and the stream is dropped once it gave
/// `span.limit` objects.
pub async fn list_page(
    store: &dyn ObjectStore,
    span: PageSpan<'_>,
    etag_md5: impl Fn(&str) -> Option<String>,
    concurrency: usize,
    errors: &Errors,
) -> Result<Vec<Listed>, PluginError> {
    let prefix = prefix_path(span.prefix)?;
    let stream = match span.after {
        "" => store.list(prefix.as_ref()),
        // A key that is no object path ("a/") starts the listing a little
        // early (at "a"): the objects up to `after` are passed over below.
        after => store.list_with_offset(prefix.as_ref(), &offset_path(after)?),
    };
    let listed = listed_objects(stream, span.after, span.limit, etag_md5, errors).await?;
    with_stored_md5s(listed, store, concurrency, errors).await
}

/// `prefix` as object_store's path; `None` for the whole bucket.
fn prefix_path(prefix: &str) -> Result<Option<Path>, PluginError> {
    match prefix {
        "" => Ok(None),
        prefix => object_path(prefix).map(Some),
    }
}

/// The greatest object path at or before the key `after`: the key itself,
/// without a trailing `/`.
fn offset_path(after: &str) -> Result<Path, PluginError> {
    Path::parse(after).map_err(|e| {
        PluginError::new(
            ErrorKind::InvalidInput,
            format!("cannot list after {after:?}: {e}"),
        )
    })
}

/// Up to `limit` objects of a listing `stream` with keys above `after`,
/// their MD5s from their ETags where `etag_md5` takes them for one.
async fn listed_objects(
    mut stream: futures_util::stream::BoxStream<'_, object_store::Result<object_store::ObjectMeta>>,
    after: &str,
    limit: usize,
    etag_md5: impl Fn(&str) -> Option<String>,
    errors: &Errors,
) -> Result<Vec<Listed>, PluginError> {
    let mut listed = Vec::new();
    while listed.len() < limit {
        let Some(meta) = stream.next().await else {
            break;
        };
        let meta = meta.map_err(|e| errors.convert("cannot list", e))?;
        let key = meta.location.to_string();
        if key.as_str() <= after {
            continue;
        }
        let etag = meta
            .e_tag
            .as_deref()
            .map(|e| e.trim_matches('"').to_string());
        listed.push(Listed {
            key,
            size: meta.size,
            md5: etag.as_deref().and_then(&etag_md5),
            etag,
            last_modified: meta.last_modified.timestamp(),
        });
    }
    Ok(listed)
}

/// `listed` with the MD5 of each object that has none yet taken from its
/// metadata: a HEAD each, `concurrency` at a time.
async fn with_stored_md5s(
    mut listed: Vec<Listed>,
    store: &dyn ObjectStore,
    concurrency: usize,
    errors: &Errors,
) -> Result<Vec<Listed>, PluginError> {
    let heads: Vec<usize> = (0..listed.len())
        .filter(|&i| listed[i].md5.is_none())
        .collect();
    let found: Vec<(usize, Option<String>)> = futures_util::stream::iter(heads)
        .map(|i| {
            let key = listed[i].key.clone();
            async move { Ok::<_, PluginError>((i, stored_md5(store, &key, errors).await?)) }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    for (i, md5) in found {
        listed[i].md5 = md5;
    }
    Ok(listed)
}

/// The MD5 stored in the metadata of `key`, from a HEAD request; `None`
/// when it has none or is gone.
async fn stored_md5(
    store: &dyn ObjectStore,
    key: &str,
    errors: &Errors,
) -> Result<Option<String>, PluginError> {
    let options = GetOptions {
        head: true,
        ..GetOptions::default()
    };
    match store.get_opts(&object_path(key)?, options).await {
        Ok(result) => Ok(metadata_md5(&result.attributes)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(errors.convert(&format!("cannot read the metadata of {key}"), e)),
    }
}

/// Runs blocking file work off the runtime's worker threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, PluginError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| PluginError::new(ErrorKind::Other, format!("file task failed: {e}")))?
        .map_err(from_io)
}

/// Uploads the local `file` as `key`, with its MD5 in the metadata: in one
/// PUT below the multipart threshold (its ETag is then the MD5 too), else
/// as a multipart upload read part by part; within the memory budget.
/// Returns its size.
pub async fn upload(
    store: &dyn ObjectStore,
    file: PathBuf,
    key: &str,
    limits: &TransferLimits,
    errors: &Errors,
) -> Result<u64, PluginError> {
    let path = object_path(key)?;
    let what = format!("cannot upload {}", file.display());
    let size = blocking({
        let file = file.clone();
        move || {
            std::fs::metadata(&file)
                .map(|m| m.len())
                .map_err(|e| stowage_local_tree::with_path("cannot stat", &file, e))
        }
    })
    .await?;
    let _held = limits.hold_for(size).await;
    if size < limits.multipart_threshold {
        let (bytes, md5) = blocking(move || {
            let bytes = std::fs::read(&file)
                .map_err(|e| stowage_local_tree::with_path("cannot read", &file, e))?;
            let md5 = md5_digest(&bytes);
            Ok((bytes, md5))
        })
        .await?;
        let options = PutOptions {
            attributes: md5_attributes(&md5),
            ..PutOptions::default()
        };
        store
            .put_opts(&path, PutPayload::from(bytes), options)
            .await
            .map_err(|e| errors.convert(&what, e))?;
        return Ok(size);
    }
    let md5 = blocking({
        let file = file.clone();
        move || md5_file_digest(&file)
    })
    .await?;
    let options = PutMultipartOptions {
        attributes: md5_attributes(&md5),
        ..PutMultipartOptions::default()
    };
    let upload = store
        .put_multipart_opts(&path, options)
        .await
        .map_err(|e| errors.convert(&what, e))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let mut reader = blocking({
        let file = file.clone();
        move || {
            std::fs::File::open(&file)
                .map_err(|e| stowage_local_tree::with_path("cannot open", &file, e))
        }
    })
    .await?;
    loop {
        let (returned, part) = blocking(move || {
            let mut part = Vec::with_capacity(PART_SIZE);
            (&mut reader)
                .take(PART_SIZE as u64)
                .read_to_end(&mut part)?;
            Ok((reader, part))
        })
        .await?;
        reader = returned;
        if part.is_empty() {
            break;
        }
        if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
            let _ = writer.abort().await;
            return Err(errors.convert(&what, e));
        }
        writer.put(Bytes::from(part));
    }
    writer
        .finish()
        .await
        .map_err(|e| errors.convert(&what, e))?;
    Ok(size)
}

fn md5_digest(bytes: &[u8]) -> [u8; 16] {
    use md5::{Digest, Md5};
    Md5::digest(bytes).into()
}

/// Downloads `key` into the local `file`, written atomically (a partial
/// file renamed into place). Returns its size.
pub async fn download(
    store: &dyn ObjectStore,
    key: &str,
    file: PathBuf,
    errors: &Errors,
) -> Result<u64, PluginError> {
    let what = format!("cannot download {key}");
    let result = store
        .get(&object_path(key)?)
        .await
        .map_err(|e| errors.convert(&what, e))?;
    let size = result.meta.size;
    write_to_file(result, file).await?;
    Ok(size)
}

/// Writes the bytes of a GET's answer into the local `file`, atomically.
pub async fn write_to_file(result: GetResult, file: PathBuf) -> Result<(), PluginError> {
    let mut stream = result.into_stream();
    let handle = tokio::runtime::Handle::current();
    blocking(move || {
        write_atomically(&file, |partial| {
            let mut out = std::fs::File::create(partial)?;
            handle.block_on(async {
                while let Some(chunk) = stream.next().await {
                    out.write_all(&chunk.map_err(std::io::Error::other)?)?;
                }
                Ok::<_, std::io::Error>(())
            })
        })
    })
    .await
}

/// The object a copy reads: its store and key, and its size and MD5 when
/// a listing gave them.
pub struct CopySource<'a> {
    /// The store of its bucket.
    pub store: &'a dyn ObjectStore,
    /// Its full key.
    pub key: &'a str,
    /// Its size, from a listing (else the copy finds it out).
    pub size: Option<u64>,
    /// Its MD5, from a listing, if known.
    pub md5: Option<&'a str>,
}

/// Copies `from` to `to_key` of `to`, and returns its size: server-side
/// within one bucket (metadata and all; a HEAD first when no listing gave
/// the size); between buckets through this process, in one GET (which
/// tells the size and the stored MD5 too) and one PUT (which stores the
/// MD5 of the bytes, and whose ETag is that MD5 too) below the multipart
/// threshold, else part by part keeping the MD5 listed or stored; within
/// the memory budget.
pub async fn copy(
    from: CopySource<'_>,
    to: &dyn ObjectStore,
    to_key: &str,
    same_bucket: bool,
    limits: &TransferLimits,
    errors: &Errors,
) -> Result<u64, PluginError> {
    let what = format!("cannot copy {}", from.key);
    let (from_path, to_path) = (object_path(from.key)?, object_path(to_key)?);
    if same_bucket {
        let size = match from.size {
            Some(size) => size,
            None => {
                from.store
                    .head(&from_path)
                    .await
                    .map_err(|e| errors.convert(&what, e))?
                    .size
            }
        };
        return from
            .store
            .copy(&from_path, &to_path)
            .await
            .map(|()| size)
            .map_err(|e| errors.convert(&what, e));
    }
    let source = from
        .store
        .get(&from_path)
        .await
        .map_err(|e| errors.convert(&what, e))?;
    let size = source.meta.size;
    let _held = limits.hold_for(size).await;
    if size < limits.multipart_threshold {
        let bytes = source.bytes().await.map_err(|e| errors.convert(&what, e))?;
        let options = PutOptions {
            attributes: md5_attributes(&md5_digest(&bytes)),
            ..PutOptions::default()
        };
        return to
            .put_opts(&to_path, PutPayload::from(bytes), options)
            .await
            .map(|_| size)
            .map_err(|e| errors.convert(&what, e));
    }
    let stored_md5 = metadata_md5(&source.attributes);
    let attributes = from
        .md5
        .or(stored_md5.as_deref())
        .and_then(|hex| {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect::<Option<_>>()?;
            <[u8; 16]>::try_from(bytes).ok()
        })
        .map(|md5| md5_attributes(&md5))
        .unwrap_or_default();
    let upload = to
        .put_multipart_opts(
            &to_path,
            PutMultipartOptions {
                attributes,
                ..PutMultipartOptions::default()
            },
        )
        .await
        .map_err(|e| errors.convert(&what, e))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let mut stream = source.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(errors.convert(&what, e));
            }
        };
        if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
            let _ = writer.abort().await;
            return Err(errors.convert(&what, e));
        }
        writer.write(&chunk);
    }
    writer
        .finish()
        .await
        .map(|_| size)
        .map_err(|e| errors.convert(&what, e))
}

/// Deletes `keys`, 1,000 to a multi-object delete request, several
/// requests at once (object_store's `delete_stream`). Keys already gone
/// are no error.
pub async fn delete(
    store: &dyn ObjectStore,
    keys: &[String],
    errors: &Errors,
) -> Result<(), PluginError> {
    let paths: Vec<object_store::Result<Path>> = keys
        .iter()
        .map(|k| object_path(k))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(Ok)
        .collect();
    let mut deleted = store.delete_stream(futures_util::stream::iter(paths).boxed());
    while let Some(result) = deleted.next().await {
        match result {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(errors.convert("cannot delete", e)),
        }
    }
    Ok(())
}

/// Stores `bytes` as `key` only if no object has it: object_store's create
/// mode, a conditional PUT (S3 and Azure: `If-None-Match: *`; GCS:
/// generation 0). `Ok(false)` when the store answers that the key is
/// taken (412), or that another conditional write to it was under way
/// (S3's 409 ConditionalRequestConflict).
pub async fn create_if_absent(
    store: &dyn ObjectStore,
    key: &str,
    bytes: &[u8],
    errors: &Errors,
) -> Result<bool, PluginError> {
    let options = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    let payload = PutPayload::from(Bytes::copy_from_slice(bytes));
    match store.put_opts(&object_path(key)?, payload, options).await {
        Ok(_) => Ok(true),
        Err(
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
        ) => Ok(false),
        Err(e) if full_message(&e).contains("ConditionalRequestConflict") => Ok(false),
        Err(e) => Err(errors.convert(&format!("cannot create {key}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_part_etags_are_md5s() {
        let md5 = "9e107d9d372bb6826bd81d3542a419d6";
        assert_eq!(etag_md5(&format!("\"{md5}\"")).as_deref(), Some(md5));
        assert_eq!(etag_md5(&md5.to_uppercase()).as_deref(), Some(md5));
        assert_eq!(etag_md5(&format!("{md5}-2")), None);
        assert_eq!(etag_md5("abc"), None);
    }

    #[test]
    fn the_metadata_md5_is_base64_as_rclone_writes_it() {
        let md5 = md5_digest(b"The quick brown fox jumps over the lazy dog");
        let attributes = md5_attributes(&md5);
        let value = attributes
            .get(&Attribute::Metadata(MD5_METADATA.into()))
            .unwrap();
        assert_eq!(value.as_ref(), "nhB9nTcrtoJr2B01QqQZ1g==");
        assert_eq!(
            metadata_md5(&attributes).as_deref(),
            Some("9e107d9d372bb6826bd81d3542a419d6")
        );
    }

    #[test]
    fn keys_are_kept_as_given_and_unsafe_ones_refused() {
        for key in ["a b/c#d%20.txt", "ünïcödé/[x]{y}", "dir/file"] {
            assert_eq!(object_path(key).unwrap().as_ref(), key);
        }
        for key in ["", "/abs", "a//b", "a/../b", "./a", "dir/", "a\u{1}b"] {
            let error = object_path(key).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidInput, "{key:?}");
        }
    }

    #[test]
    fn secrets_are_redacted() {
        let errors = Errors::new(vec!["s3cr3t".into()]);
        assert_eq!(
            errors.redact("key s3cr3t refused"),
            "key <redacted> refused"
        );
    }
}
