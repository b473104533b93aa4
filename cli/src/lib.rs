//! # stowage — the application
//!
//! The `stowage` binary is a thin shell over these modules. The application
//! is provider-neutral: it never knows which tool is behind a plugin.
//!
//! - [`plugins_file`] and [`registry`]: finding and loading plugins;
//!   [`plugin_table`]: each plugin's table checked against the keys it
//!   declares, its secrets kept out of every message.
//! - [`plan`]: deciding what a sync must do from listings and checksums.
//! - [`sync`]: a sync as Stowage runs it: plan → the plugin's tool → [`verify`].
//! - [`commands`]: the command line.

pub mod archive;
pub mod backup;
pub mod backup_store;
pub mod commands;
pub mod config;
pub mod confirm;
pub mod exit;
pub mod fetch;
pub mod interrupt;
pub mod lock;
pub mod manifest;
pub mod md5_digest;
pub mod memory;
pub mod multipart_etag;
pub mod parallel;
pub mod plan;
pub mod plugin;
pub mod plugin_table;
pub mod plugins_file;
pub mod progress;
pub mod registry;
pub mod restore;
pub mod snapshots;
pub mod sync;
pub mod unix_time;
pub mod verify;
