//! Archive file names: `<unix-ts>_<YYYY_MM_DD>_<label>_backup.tar`.

use std::time::{Duration, UNIX_EPOCH};

/// The suffix every backup archive's name ends with.
pub const ARCHIVE_SUFFIX: &str = "_backup.tar";

/// A parsed archive name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveName {
    /// Seconds since the Unix epoch when the backup was made.
    pub timestamp: u64,
    /// The label, e.g. `stowage_gitlab`.
    pub label: String,
}

impl ArchiveName {
    /// The file name: `1764124800_2026_11_26_<label>_backup.tar`.
    pub fn file_name(&self) -> String {
        let date =
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(self.timestamp))
                .to_string();
        let ymd = date[..10].replace('-', "_");
        format!(
            "{:010}_{ymd}_{}{ARCHIVE_SUFFIX}",
            self.timestamp, self.label
        )
    }

    /// Parses a file name of that form (the pattern of
    /// `^\d{10}_\d{4}_\d{2}_\d{2}_.+_backup\.tar$`); `None` for anything else.
    pub fn parse(file_name: &str) -> Option<ArchiveName> {
        let stem = file_name.strip_suffix(ARCHIVE_SUFFIX)?;
        let mut parts = stem.splitn(5, '_');
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let timestamp = parts.next().filter(|s| digits(s, 10))?.parse().ok()?;
        for width in [4, 2, 2] {
            parts.next().filter(|s| digits(s, width))?;
        }
        let label = parts.next().filter(|l| !l.is_empty())?;
        Some(ArchiveName {
            timestamp,
            label: label.to_string(),
        })
    }
}

/// The backup timestamp `text` names: the timestamp itself
/// (`1764124800`), an archive's name or path
/// (`.../1764124800_2025_11_26_stowage_gitlab_backup.tar`), or GitLab's
/// backup ID (`1764124800_2025_11_26_17.5.1`): the digits before the
/// first `_` of the file name. `None` for anything else.
pub fn timestamp_in(text: &str) -> Option<u64> {
    let name = text.rsplit('/').next().unwrap_or(text);
    let first = name.split('_').next().unwrap_or_default();
    let digits = !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| first.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_an_archive_name_or_a_gitlab_backup_id_names_a_backup() {
        for text in [
            "1764124800",
            "1764124800_2025_11_26_stowage_gitlab_backup.tar",
            "/backups/1764124800_2025_11_26_stowage_gitlab_backup.tar",
            "1764124800_2025_11_26_17.5.1",
        ] {
            assert_eq!(timestamp_in(text), Some(1_764_124_800), "{text}");
        }
        for text in [
            "",
            "latest",
            "gitlab_backup.tar",
            "2025-11-26",
            "_1764124800",
        ] {
            assert_eq!(timestamp_in(text), None, "{text}");
        }
    }

    #[test]
    fn names_carry_the_timestamp_date_and_label() {
        let name = ArchiveName {
            timestamp: 1_764_124_800,
            label: "stowage_gitlab".into(),
        };
        assert_eq!(
            name.file_name(),
            "1764124800_2025_11_26_stowage_gitlab_backup.tar"
        );
        assert_eq!(ArchiveName::parse(&name.file_name()), Some(name));
    }

    #[test]
    fn gitlab_made_names_parse_and_others_do_not() {
        let gitlab = ArchiveName::parse("1700000000_2023_11_14_16.5.1_gitlab_backup.tar").unwrap();
        assert_eq!(gitlab.label, "16.5.1_gitlab");
        for other in [
            "backup.tar",
            "123_2023_11_14_x_backup.tar",
            "1700000000_2023_11_14__backup.tar",
            "1700000000_2023_11_14_x_backup.tar.gz",
        ] {
            assert_eq!(ArchiveName::parse(other), None, "{other}");
        }
    }
}
