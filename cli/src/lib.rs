//! # stowage — the application
//!
//! The `stowage` binary is a thin shell over these modules. The application
//! is provider-neutral: it never knows which tool is behind a plugin.
//!
//! - [`plugins_file`] and [`registry`]: finding and loading plugins.
//! - [`sync`]: a sync as Stowage runs it: [`sync::plan`] → the plugin's
//!   tool → [`sync::verify`].
//! - [`commands`]: the command line.

pub mod archive;
pub mod backup;
pub mod commands;
pub mod config;
pub mod confirm;
pub mod exit;
pub mod interrupt;
pub mod memory;
pub mod parallel;
pub mod plugin;
pub mod plugins_file;
pub mod progress;
pub mod registry;
pub mod restore;
pub mod store;
pub mod sync;
pub mod unix_time;
