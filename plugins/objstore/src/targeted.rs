//! Reads of chosen objects rather than of a whole listing: the entries of
//! chosen keys (`list_keys`), one HEAD each, and a byte range of one
//! object (`get_range`), one ranged GET.

use std::path::PathBuf;

use futures_util::{StreamExt, TryStreamExt};
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use stowage_local_tree::write_atomically;
use stowage_plugin_api::PluginError;
use stowage_plugin_support::byte_range::range_end;
use stowage_plugin_support::io_errors::from_io;

use crate::store::{metadata_md5, object_path, write_to_file, Errors, Listed};

/// The objects of `keys` (full keys) that exist in `store`, each as
/// [`crate::store::list`] lists it: size, ETag and time from a HEAD, the
/// MD5 from the ETag when `etag_md5` takes it for one, else from the
/// metadata the same HEAD returns. `concurrency` HEADs at a time. When a key
/// is absent, one listing request tells an absent object from a missing
/// bucket (a HEAD answers 404 to both).
pub async fn head_each(
    store: &dyn ObjectStore,
    keys: &[String],
    etag_md5: impl Fn(&str) -> Option<String> + Sync,
    concurrency: usize,
    errors: &Errors,
) -> Result<Vec<Listed>, PluginError> {
    let etag_md5 = &etag_md5;
    // Owned keys: a future borrowing from the slice's items is not Send here.
    let found: Vec<Option<Listed>> = futures_util::stream::iter(keys.to_vec())
        .map(|key| async move { head(store, &key, etag_md5, errors).await })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    if keys.is_empty() || found.iter().any(Option::is_none) {
        ensure_bucket_exists(store, keys.first().map(String::as_str), errors).await?;
    }
    Ok(found.into_iter().flatten().collect())
}

/// One object as a listing gives it, from a HEAD; `None` when absent.
async fn head(
    store: &dyn ObjectStore,
    key: &str,
    etag_md5: &(impl Fn(&str) -> Option<String> + Sync),
    errors: &Errors,
) -> Result<Option<Listed>, PluginError> {
    let options = GetOptions {
        head: true,
        ..GetOptions::default()
    };
    let result = match store.get_opts(&object_path(key)?, options).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(errors.convert(&format!("cannot look up {key}"), e)),
    };
    let etag = result
        .meta
        .e_tag
        .as_deref()
        .map(|e| e.trim_matches('"').to_string());
    let md5 = etag
        .as_deref()
        .and_then(etag_md5)
        .or_else(|| metadata_md5(&result.attributes));
    Ok(Some(Listed {
        key: key.to_string(),
        size: result.meta.size,
        etag,
        md5,
        last_modified: result.meta.last_modified.timestamp(),
    }))
}

/// `BucketMissing` unless the store's bucket exists: one listing request,
/// below `key` (an object name has nothing below it, so the answer is
/// short) or at the top.
async fn ensure_bucket_exists(
    store: &dyn ObjectStore,
    key: Option<&str>,
    errors: &Errors,
) -> Result<(), PluginError> {
    let below = key.map(object_path).transpose()?;
    match store.list(below.as_ref()).next().await {
        Some(Err(e)) => Err(errors.convert("cannot list", e)),
        _ => Ok(()),
    }
}

/// Downloads the bytes `[offset, offset + length)` of `key` (a full key;
/// `object` names it in messages) into the local `file`, written
/// atomically, with one ranged GET. A range past the object's end is
/// `InvalidInput` (a HEAD tells the size when the store refuses the GET).
pub async fn download_range(
    store: &dyn ObjectStore,
    object: &str,
    key: &str,
    (offset, length): (u64, u64),
    file: PathBuf,
    errors: &Errors,
) -> Result<(), PluginError> {
    let path = object_path(key)?;
    let options = GetOptions {
        range: Some(GetRange::Bounded(offset..offset.saturating_add(length))),
        ..GetOptions::default()
    };
    let refused = match store.get_opts(&path, options).await {
        Ok(result) => {
            // A store answers a range that ends past the end with what there is.
            range_end(object, offset, length, result.meta.size)?;
            return write_to_file(result, file).await;
        }
        Err(error) => error,
    };
    // A range starting past the end, or an empty one: the object's size
    // says whether the range was the caller's mistake.
    let what = format!("cannot download a range of {object}");
    let size = store
        .head(&path)
        .await
        .map_err(|e| errors.convert(&what, e))?
        .size;
    range_end(object, offset, length, size)?;
    if length == 0 {
        return write_atomically(&file, |partial| std::fs::write(partial, b"")).map_err(from_io);
    }
    Err(errors.convert(&what, refused))
}
