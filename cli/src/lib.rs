//! # stowage — the application
//!
//! The `stowage` binary is a thin shell over these modules. The application
//! is provider-neutral: it never knows which tool is behind a plugin.
//!
//! ## Where things are
//!
//! The engine, one module per command that moves objects:
//! - [`sync`]: a sync as Stowage runs it: [`sync::plan`] → the plugin's
//!   tool → [`sync::verify`]. `stowage sync` is this; backup and restore
//!   build on its steps.
//! - [`backup`]: `stowage backup`: mirror each bucket, pack, store, prune.
//! - [`restore`]: `stowage restore`: fetch, validate, plan, snapshot,
//!   transfer, verify, report — one file per step.
//!
//! What the engine reads and writes besides the buckets:
//! - [`archive`]: the archive format: its name, manifests, writing, strict
//!   reading.
//! - [`store`]: the backup destination, fetching an archive, restore locks,
//!   restore snapshots in the tmp bucket.
//!
//! Plugins and configuration:
//! - [`plugins_file`] and [`registry`]: finding and loading plugins;
//!   [`plugin`]: one facade over a loaded plugin, returning the host's errors;
//!   [`plugin_table`]: each plugin's table checked against the keys it
//!   declares, its secrets kept out of every message.
//! - [`config`]: `stowage.toml`, the components and where backups go.
//! - [`gitlab`]: the GitLab Helm chart's environment and backup-utility's
//!   tool flags, for `stowage gitlab-backup-utility`.
//!
//! The front end:
//! - [`commands`]: the command line, one module per command.
//! - [`confirm`]: asking before changing anything; [`progress`]: progress bars;
//!   [`output`]: results on stdout, a closed pipe ending them quietly.
//!
//! Used throughout:
//! - [`exit`]: exit codes, and the error types that choose them.
//! - [`interrupt`]: stopping on SIGINT or SIGTERM without losing anything.
//! - [`parallel`]: a few independent pieces of work at a time.
//! - [`memory`]: giving freed memory back to the system.
//! - [`unix_time`]: times as Stowage names things.

// First: its `outln!` macro is used by the modules below.
#[macro_use]
pub mod output;

pub mod backup;
pub mod restore;
pub mod sync;

pub mod archive;
pub mod store;

pub mod config;
pub mod gitlab;
pub mod plugin;
pub mod plugin_table;
pub mod plugins_file;
pub mod registry;

pub mod commands;
pub mod confirm;
pub mod progress;

pub mod exit;
pub mod interrupt;
pub mod memory;
pub mod parallel;
pub mod unix_time;
