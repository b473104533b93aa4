//! Helpers shared by Stowage plugins, written once so no adapter copies
//! another (local files are `stowage-local-tree`'s, which the host uses
//! too):
//!
//! - [`io_errors`]: local I/O failures as plugin errors.
//! - [`config`]: reading a plugin's config table, and the test that its
//!   declared options match it.
//! - [`tool_config`]: a tool's own INI files, and the secrets in them and
//!   in its environment, for redaction.
//! - [`paths`]: how tools spell locations, the schemes a plugin serves,
//!   and keys back from their output.
//! - [`bucket`]: creating a bucket unless it exists.
//! - [`byte_range`]: the range of a `get_range`, checked against the object.
//! - [`exclude_translation`]: Stowage's exclude globs in each tool's syntax.
//! - [`regex_escape`]: exact keys as literal text in a tool's regex.
//! - [`glob_alternates`]: `{a,b}` alternatives expanded, for tools without them.
//! - [`sync_driver`]: running a tool's own sync with the rules every sync
//!   keeps (delete limits, no delete before the transfers succeeded).
//! - [`sync_plan`]: deciding a sync from two listings, for plugins that
//!   carry it out themselves (skips, excludes, deletes and their limit).
//! - [`tool`]: driving an external CLI — finding it, a controlled
//!   environment, streamed output, one-line errors, redaction of secrets.
//! - [`tool_input`]: running a tool with data on its standard input.

pub mod bucket;
pub mod byte_range;
pub mod config;
pub mod exclude_translation;
pub mod glob_alternates;
pub mod io_errors;
pub mod paths;
pub mod regex_escape;
pub mod sync_driver;
pub mod sync_plan;
pub mod tool;
pub mod tool_config;
pub mod tool_input;
