//! The byte range of a `get_range` call, checked against the object's size
//! the same way by every plugin that reads ranges.

use stowage_plugin_api::{ErrorKind, PluginError};

/// The end (exclusive) of `[offset, offset + length)` of `object` (as
/// messages name it: `key in location`), which has `size` bytes; an
/// `InvalidInput` error when the range ends past the object's end.
pub fn range_end(object: &str, offset: u64, length: u64, size: u64) -> Result<u64, PluginError> {
    match offset.checked_add(length) {
        Some(end) if end <= size => Ok(end),
        _ => Err(PluginError::new(
            ErrorKind::InvalidInput,
            format!(
                "cannot read {length} bytes from offset {offset} of {object}: it has {size} \
                 bytes"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_within_the_object_ends_where_it_says() {
        assert_eq!(range_end("k in s3://b", 0, 10, 10).unwrap(), 10);
        assert_eq!(range_end("k in s3://b", 10, 0, 10).unwrap(), 10);
    }

    #[test]
    fn a_range_past_the_end_is_invalid_input_in_one_line() {
        let error = range_end("k in s3://b", 5, 6, 10).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidInput);
        assert_eq!(
            error.message,
            "cannot read 6 bytes from offset 5 of k in s3://b: it has 10 bytes"
        );
        assert!(range_end("k in s3://b", u64::MAX, 2, 10).is_err());
    }
}
