//! Giving freed memory back to the system.
//!
//! Plugins that transfer in-process (objstore) read files of up to 16 MiB
//! on many threads at once. With glibc's defaults each such thread gets an
//! arena of its own (up to 8 per core) that keeps what it freed, and every
//! large free raises the mmap threshold (up to 32 MiB), after which large
//! buffers come from those arenas too: a 100,000-object restore peaked at
//! 314 MiB, 129 MiB with the two settings [`configure_allocator`] makes.
//!
//! A backup builds large maps (the bucket's inventory, the mirror's walk)
//! and a restore large lists (its plan); both drop large temporaries in
//! between (a plugin's listing as it came over the FFI). glibc keeps freed
//! chunks resident inside its heaps,
//! and with a thread per component several heaps: at 100,000 objects that
//! added ~20 MiB of peak RSS over the peak of live data. Trimming after each
//! large drop keeps the process near what it actually holds.

/// Tunes glibc's allocator for a process whose threads move large buffers:
/// two arenas at most, and a fixed mmap threshold of 256 KiB, so a freed
/// transfer buffer goes back to the system at once. Call it first, before
/// any thread starts. Elsewhere nothing.
pub fn configure_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets the allocator's parameters; it is called
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
    }
}

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
