//! Helpers shared by Stowage plugins and the host, written once so no
//! adapter copies another:
//!
//! - [`local_tree`]: walking a local directory as a set of objects, MD5s of
//!   local files, turning keys into safe relative paths, and atomic writes.
//! - [`config`]: reading a plugin's config table, and the test that its
//!   declared options match it.
//! - [`paths`]: how tools spell locations, and keys back from their output.
//! - [`exclude_translation`]: Stowage's exclude globs in each tool's syntax.
//! - [`regex_escape`]: exact keys as literal text in a tool's regex.
//! - [`glob_alternates`]: `{a,b}` alternatives expanded, for tools without them.
//! - [`sync_driver`]: running a tool's own sync with the rules every sync
//!   keeps (delete limits, no delete before the transfers succeeded).
//! - [`tool`]: driving an external CLI — finding it, a controlled
//!   environment, streamed output, one-line errors, redaction of secrets.
//! - [`tool_input`]: running a tool with data on its standard input.

pub mod config;
pub mod exclude_translation;
pub mod glob_alternates;
pub mod local_tree;
pub mod paths;
pub mod regex_escape;
pub mod sync_driver;
pub mod tool;
pub mod tool_input;
