//! # stowage-plugin-api — the plugin boundary
//!
//! Stowage backs up object-storage buckets into archives and restores them by
//! sync. Every storage provider (the local filesystem, s3cmd, aws, gsutil, and
//! whatever third parties ship) is a *plugin*: a dynamic library the `stowage`
//! binary loads at run time. This crate is everything that crosses that
//! boundary, and nothing else:
//!
//! - [`provider`]: the interface a plugin implements ([`StorageProvider`]),
//!   in plain Rust. **Start here.**
//! - [`types`]: the values that travel through it.
//! - [`export_plugin!`]: the one line that exports a plugin's root module.
//! - [`guard`]: the panic guard every entry point runs inside.
//! - [`ffi`]: the FFI-safe mirrors of the types, the trait objects and the
//!   root module that actually cross; the conversions both ways. No plugin
//!   needs it.
//!
//! Loading a library is the host's job (the `stowage-plugin-loader` crate).
//!
//! ## The contract
//!
//! **Calls block.** Every provider method runs to completion on the calling
//! thread and may take minutes (it usually drives an external tool). The
//! host calls them from worker threads, never from an async executor thread.
//!
//! **Thread safety.** A provider is `Send + Sync`: the host may call any
//! method from several threads at once (one per component being restored).
//! A provider keeps no per-call state in `self`.
//!
//! **Ownership.** Arguments are borrowed for the duration of the call; the
//! plugin copies what it wants to keep. Return values are owned by the host
//! once returned.
//!
//! **Errors.** A method returns [`PluginError`]: an [`ErrorKind`] the host can
//! act on (tool missing, bucket missing, credentials refused, ...) and a
//! one-line message a user can act on, naming the tool, its exit code and the
//! last line of its stderr where there is one. Never a backtrace, never a
//! credential.
//!
//! **Panics** never cross the boundary. [`export_plugin!`] runs every entry
//! point inside [`guard::guard`], so a panic in plugin code becomes an error
//! of kind [`ErrorKind::Panicked`] and the host carries on.
//!
//! **Secrets** never appear in a child process's argv, in a message, or in a
//! report: credentials reach tools through their own config files or
//! environment.
//!
//! ## How the API evolves
//!
//! This crate is versioned on its own, and its version *is* the API version
//! a plugin is built against (recorded in the library's root module). The
//! host loads a plugin built against any 1.x API, older or newer than its
//! own, and refuses another major with one line naming both versions. It
//! also loads plugins built against stowage-core 0.1, the API before 1.0.
//!
//! API 1.1 added [`StorageProvider::list_keys`], [`StorageProvider::get_range`]
//! with [`StorageProvider::reads_ranges`], and [`CompareMode::Planned`];
//! API 1.2 added [`StorageProvider::list_page`] with
//! [`StorageProvider::lists_pages`]. The types of API 1.0 and 1.1 are frozen
//! for the loader in `core/legacy-1.0` and `core/legacy-1.1`.
//!
//! - **Additive (a minor release, 1.x):** a new provider method after the
//!   last one, with a default body, so that plugins written earlier compile
//!   unchanged; a new variant of a growing enum ([`ErrorKind`],
//!   [`ActionKind`], [`CompareMode`], [`ConfigKind`]); a new type. abi_stable
//!   loads a library with *more* methods than the host knows but refuses one
//!   with fewer, so each minor release keeps the previous vtable and the
//!   host's loader falls back to it, answering the newer methods with their
//!   defaults. Each earlier minor release's crate is frozen as it was
//!   released (`core/legacy-1.1` for 1.1, `core/legacy-1.0` for 1.0:
//!   packages of another name compiled under this one's, as
//!   docs/PLUGINS.md, "Compatibility", explains).
//! - **Breaking (a major release):** changing or removing a method, a field
//!   of a type that travels by value, or the meaning of a value.
//! - A patch release changes nothing that crosses the boundary.
//!
//! A host keeps loading the plugins of every earlier minor of its major,
//! and of the previous major for at least one major release.

pub mod ffi;
pub mod guard;
pub mod provider;
pub mod types;

pub use provider::{IgnoreProgress, ProgressSink, StorageProvider};
pub use types::*;

/// Re-exported so plugin crates use the same abi_stable as the core they build against.
pub use abi_stable;
