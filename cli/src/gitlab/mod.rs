//! GitLab's toolbox: what `stowage gitlab-backup-utility` needs to stand in
//! for the object-storage part of the Helm chart's `backup-utility`.
//!
//! - [`chart`]: the environment the chart's toolbox gives backup-utility
//!   (bucket names, the backup and tmp buckets), turned into [`Settings`].
//! - [`tools`]: backup-utility's `--backend` and `--s3tool` (and their
//!   tools' config flags), turned into Stowage's scheme map and plugin
//!   tables.
//!
//! The database and repositories are not here: they stay with GitLab's
//! rake tasks, and the command says so (see `docs/GITLAB.md`).
//!
//! [`Settings`]: crate::config::Settings

pub mod chart;
pub mod tools;
