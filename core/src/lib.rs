//! # stowage-core — the plugin boundary
//!
//! Stowage backs up object-storage buckets into archives and restores them by
//! sync. Every storage provider (the local filesystem, s3cmd, aws, gsutil, and
//! whatever third parties ship) is a *plugin*: a dynamic library the `stowage`
//! binary loads at run time. This crate is everything that crosses that
//! boundary, and nothing else:
//!
//! - [`provider`]: the interface a plugin implements ([`StorageProvider`]), the
//!   root module every plugin library exports ([`PluginModule`]) and the
//!   [`export_plugin!`] macro that writes that export for you. **Start here.**
//! - [`types`]: the FFI-safe values that travel through the interface.
//! - [`exclude`]: what an exclude glob means, shared by the host and plugins.
//! - [`guard`]: the panic guard every entry point runs inside.
//! - [`loader`]: how the host loads a library and turns every failure into
//!   one line a user can act on.
//! - [`legacy`]: the interface of earlier releases, so plugins built
//!   against them still load.
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
//! once returned (`RString`, `RVec` free themselves through their own vtable,
//! so it does not matter which side allocated them).
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
//! ## How the ABI evolves
//!
//! The version of this crate *is* the ABI version. The loader refuses a
//! library built against another `0.MINOR` of `stowage-core` with one line
//! saying so, and then checks the layout of every type reachable from the
//! root module (abi_stable does this), so a plugin built against an
//! incompatible core is refused, never called.
//!
//! - A patch release (`0.1.x`) changes no type that crosses the boundary.
//! - New operations are added after the last prefix field of [`Provider`]
//!   (`ensure_bucket`), always with a default, so plugins written earlier
//!   compile unchanged (`create_if_absent` and `conditional_create` came
//!   so). abi_stable loads a library with *more* methods than the host
//!   knows, but refuses one with fewer, so the interface of each earlier
//!   release stays in [`legacy`] and the [`loader`] falls back to it: a
//!   plugin built before an addition still loads, and the host answers the
//!   added methods with their defaults.
//! - Changing or removing anything else is a new minor version, done rarely
//!   and on purpose, and listed in the changelog.

pub mod exclude;
pub mod guard;
pub mod legacy;
pub mod loader;
pub mod provider;
pub mod types;

pub use exclude::ExcludeMatcher;
pub use provider::{
    PluginModule, PluginModuleRef, ProgressReporter, Provider, ProviderBox, StorageProvider,
};
pub use types::*;

/// Re-exported so plugin crates use the same abi_stable as the core they build against.
pub use abi_stable;
