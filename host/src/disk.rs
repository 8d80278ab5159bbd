//! The data directory's free space, as the host sees it: a write that failed for lack of
//! space (SQLite `SQLITE_FULL`, `ENOSPC` from the results writer) marks the disk full; the
//! queue is then on hold (`hold_reason: "disk full"`, in memory, apart from the user's
//! pause) until [`watch_space`]'s probe write succeeds again.
//!
//! Also the test-only "no space" fault: with it on, the store refuses writes (SQLite's
//! `query_only`, reported as a full disk) and the results writer and the probe fail with
//! `ENOSPC`. Only the `/test/faults` route (compiled with the `fault-injection` feature and
//! enabled by `AGENT_SCHEDULER_TEST_FAULTS` at start) turns it on.
//!
//! The store sits below: it reports to a [`Disk`] through [`crate::store::Space`], which
//! the disk implements, and knows nothing of this module.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::store::{SharedStore, Space};

/// The words of the hold while the disk is full.
pub const HOLD_DISK_FULL: &str = "disk full";

/// How often a full disk is probed for space.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);

/// What the host knows about its data directory's space.
#[derive(Debug)]
pub struct Disk {
    dir: PathBuf,
    full: watch::Sender<bool>,
    inject_full: AtomicBool,
    inject_files_full: AtomicBool,
}

impl Disk {
    /// The disk of `data_dir`, not full.
    pub fn new(data_dir: &Path) -> Arc<Disk> {
        Arc::new(Disk {
            dir: data_dir.to_path_buf(),
            full: watch::channel(false).0,
            inject_full: AtomicBool::new(false),
            inject_files_full: AtomicBool::new(false),
        })
    }

    /// Whether a write failed for lack of space and no probe has succeeded since.
    pub fn is_full(&self) -> bool {
        *self.full.borrow()
    }

    /// Sees every change of [`Self::is_full`].
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.full.subscribe()
    }

    /// A write failed for lack of space.
    pub fn mark_full(&self) {
        self.full.send_if_modified(|f| !std::mem::replace(f, true));
    }

    /// A probe write succeeded.
    pub fn mark_free(&self) {
        self.full.send_if_modified(|f| std::mem::replace(f, false));
    }

    /// The test fault: the store refuses writes.
    pub fn store_fault(&self) -> bool {
        self.inject_full.load(Ordering::Relaxed)
    }

    /// The test fault: file writes fail with `ENOSPC`.
    pub fn files_fault(&self) -> bool {
        self.store_fault() || self.inject_files_full.load(Ordering::Relaxed)
    }

    /// Sets the test faults (`disk_full`: store and files; `files_full`: files only).
    pub fn inject(&self, disk_full: bool, files_full: bool) {
        self.inject_full.store(disk_full, Ordering::Relaxed);
        self.inject_files_full.store(files_full, Ordering::Relaxed);
    }

    /// The error a file write gets under the test fault.
    pub fn no_space() -> std::io::Error {
        std::io::Error::from_raw_os_error(28)
    }

    /// Whether an I/O error means "no space left" (and marks the disk full when it does).
    pub fn check_io(&self, e: &std::io::Error) -> bool {
        let full = e.kind() == std::io::ErrorKind::StorageFull
            || e.kind() == std::io::ErrorKind::QuotaExceeded
            || e.raw_os_error() == Some(28);
        if full {
            self.mark_full();
        }
        full
    }

    /// Writes, syncs and removes a small file in the data directory. Blocking.
    pub fn probe_files(&self) -> std::io::Result<()> {
        use std::io::Write;
        if self.files_fault() {
            return Err(Self::no_space());
        }
        let path = self.dir.join(".space-probe");
        let result = (|| {
            let mut f = std::fs::File::create(&path)?;
            f.write_all(&[0u8; 64 * 1024])?;
            f.sync_all()
        })();
        let _ = std::fs::remove_file(&path);
        result
    }
}

/// The store reports its full-disk failures here and honours the store fault.
impl Space for Disk {
    fn write_failed_full(&self) {
        self.mark_full();
    }

    fn refuse_writes(&self) -> bool {
        self.store_fault()
    }
}

/// A hold's watcher waits here (the full disk's, the unreachable database's): true once
/// `held` is on, false at shutdown (or when the hold's sender is gone).
pub(crate) async fn until_held(
    held: &mut watch::Receiver<bool>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    loop {
        if *shutdown.borrow() {
            return false;
        }
        if *held.borrow_and_update() {
            return true;
        }
        tokio::select! {
            r = held.changed() => if r.is_err() { return false },
            _ = shutdown.changed() => return false,
        }
    }
}

/// Runs until shutdown: whenever the disk is full, logs why tasks do not run and probes
/// every [`PROBE_EVERY`] (a file write and a database write); when both succeed, `resume`
/// runs (recovery and releases that could not be written), then the hold is lifted.
pub async fn watch_space<F, Fut>(
    disk: Arc<Disk>,
    store: SharedStore,
    mut resume: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut full = disk.subscribe();
    while until_held(&mut full, &mut shutdown).await {
        tracing::error!(
            "the data directory {} is full: tasks will not run, and changes are refused \
             (507), until space returns; reads still work",
            disk.dir.display()
        );
        loop {
            tokio::select! {
                _ = tokio::time::sleep(PROBE_EVERY) => {}
                _ = shutdown.changed() => return,
            }
            let d = disk.clone();
            let files = tokio::task::spawn_blocking(move || d.probe_files())
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|r| r);
            if files.is_err() {
                continue;
            }
            if store.probe_write().await.is_err() {
                continue;
            }
            if resume().await {
                tracing::info!("space is back: the queue runs again");
                disk.mark_free();
                break;
            }
        }
    }
}
