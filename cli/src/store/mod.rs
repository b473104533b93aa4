//! The places a backup or restore reads and writes besides the buckets
//! themselves.
//!
//! - [`backup_store`]: the backup destination, where archives live (a local
//!   directory, or a bucket served by a plugin).
//! - [`fetch`]: getting the archive a restore reads onto this machine.
//! - [`lock`]: the restore lock per bucket, kept in the backup destination.
//! - [`ranged`]: a shard's part of an archive in a bucket, fetched by ranges.
//! - [`snapshots`]: restore snapshots in the tmp bucket: listing, pruning.

pub mod backup_store;
pub mod fetch;
pub mod lock;
pub mod ranged;
pub mod snapshots;
