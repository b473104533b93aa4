//! Helpers shared by Stowage plugins and the host, written once so no
//! adapter copies another:
//!
//! - [`local_tree`]: walking a local directory as a set of objects, MD5s of
//!   local files, turning keys into safe relative paths, and atomic writes.
//! - [`tool`]: driving an external CLI — finding it, a controlled
//!   environment, streamed output, one-line errors, redaction of secrets.

pub mod local_tree;
pub mod tool;
