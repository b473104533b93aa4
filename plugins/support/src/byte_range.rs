//! The byte range of a `get_range` call, checked against the object's size
//! the same way by every plugin that reads ranges.

use stowage_plugin_api::{ErrorKind, Location, PluginError};

/// The end (exclusive) of `[offset, offset + length)` of `key` below
/// `source`, an object of `size` bytes; an `InvalidInput` error when the
/// range ends past the object's end.
pub fn range_end(
    source: &Location,
    key: &str,
    offset: u64,
    length: u64,
    size: u64,
) -> Result<u64, PluginError> {
    match offset.checked_add(length) {
        Some(end) if end <= size => Ok(end),
        _ => Err(PluginError::new(
            ErrorKind::InvalidInput,
            format!(
                "cannot read {length} bytes from offset {offset} of {key} in {source}: the \
                 object has {size} bytes"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_within_the_object_ends_where_it_says() {
        let at = Location::parse("s3://b");
        assert_eq!(range_end(&at, "k", 0, 10, 10).unwrap(), 10);
        assert_eq!(range_end(&at, "k", 10, 0, 10).unwrap(), 10);
    }

    #[test]
    fn a_range_past_the_end_is_invalid_input_in_one_line() {
        let at = Location::parse("s3://b");
        let error = range_end(&at, "k", 5, 6, 10).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidInput);
        assert_eq!(
            error.message,
            "cannot read 6 bytes from offset 5 of k in s3://b: the object has 10 bytes"
        );
        assert!(range_end(&at, "k", u64::MAX, 2, 10).is_err());
    }
}
