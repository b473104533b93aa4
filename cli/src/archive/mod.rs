//! Backup archives, in the layout GitLab's backup-utility writes, so each
//! tool can read the other's object-storage parts:
//!
//! ```text
//! 1764124800_2026_11_26_stowage_gitlab_backup.tar   (plain tar)
//! ├── backup_information.yml
//! ├── manifests/<component>.json                     (Stowage's: key, size, MD5 of every object)
//! └── <component>.tar.gz                             (like `tar -C <dir> . | gzip`)
//! ```
//!
//! [`name`] is the file name, [`manifest`] the manifest, [`write`](mod@write) and
//! [`read`] the two directions ([`rsyncable`] the gzip that `write` uses).
//!
//! Reading is strict: [`read::read_outer`] and
//! [`read::OuterArchive::validate`] read everything to the end and refuse
//! the archive on the first doubt, before any bucket is changed.

pub mod manifest;
pub mod name;
pub mod read;
pub mod rsyncable;
pub mod write;
