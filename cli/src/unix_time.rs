//! Times as Stowage names things: seconds since the Unix epoch, shown as RFC 3339.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now (0 if the clock is before it).
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `unix` (seconds since the epoch) as RFC 3339 in UTC, to the second:
/// `2026-11-26T00:00:00Z`.
pub fn rfc3339(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unix_time_is_shown_as_rfc3339() {
        assert_eq!(rfc3339(1_764_115_200), "2025-11-26T00:00:00Z");
    }
}
