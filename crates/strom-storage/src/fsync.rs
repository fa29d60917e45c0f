//! Every fsync of the storage engine goes through here, so that none runs on an async worker
//! thread: an fsync can take tens of milliseconds on a real disk, and a worker blocked in one
//! stalls every connection it serves (DESIGN.md: what may wait on the disk runs on blocking
//! threads). The broker marks its runtime's worker threads ([`mark_async_worker`]); an fsync on
//! a marked thread panics in debug builds (tests) and is logged in release builds.

use crate::error::{Result, StorageError};
use std::cell::Cell;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    static ASYNC_WORKER: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as an async worker (call from the runtime's thread hooks).
pub fn mark_async_worker() {
    ASYNC_WORKER.set(true);
}

fn check(path: &Path) {
    if !ASYNC_WORKER.get() {
        return;
    }
    if cfg!(debug_assertions) {
        panic!("fsync of {} on an async worker thread: run it on a blocking thread", path.display());
    }
    static LOGGED: AtomicBool = AtomicBool::new(false);
    if !LOGGED.swap(true, Ordering::Relaxed) {
        tracing::error!(path = %path.display(), "fsync on an async worker thread (reported once)");
    }
}

/// fsyncs a file's data (and the metadata needed to read it back).
pub(crate) fn sync_data(file: &File, path: &Path) -> Result<()> {
    check(path);
    file.sync_data().map_err(|source| StorageError::Fsync { path: path.to_path_buf(), source })
}

/// fsyncs a file or directory with all its metadata.
pub(crate) fn sync_all(file: &File, path: &Path) -> Result<()> {
    check(path);
    file.sync_all().map_err(|source| StorageError::Fsync { path: path.to_path_buf(), source })
}
