//! Giving freed memory back to the system.
//!
//! A restore builds large maps (the archive's inventory, each bucket's
//! listing) and drops large temporaries in between (a plugin's listing as
//! it came over the FFI). glibc keeps freed chunks resident inside its heaps,
//! and with a thread per component several heaps: at 100,000 objects that
//! added ~20 MiB of peak RSS over the peak of live data. Trimming after each
//! large drop keeps the process near what it actually holds.

/// Returns free heap memory to the system (glibc `malloc_trim`; elsewhere
/// nothing: other allocators release on their own schedule).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it
    // takes no pointers and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
