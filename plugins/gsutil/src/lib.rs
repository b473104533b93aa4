//! Work in progress: the gsutil provider (being written now).
