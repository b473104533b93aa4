//! Work in progress: the aws provider (being written now).
