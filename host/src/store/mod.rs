//! The SQLite store: the only module that contains SQL.
//!
//! Owns: the database file `<data-dir>/queue.sqlite3` (WAL, pragmas at open), the numbered
//! append-only migrations in `host/migrations/`, and every query, by concern:
//! - [`rows`]: reading one task (listing and full columns, lifecycle, head/tail ranks);
//! - [`tasks`]: listings, counts, inserting and editing tasks (never their status);
//! - [`transitions`]: writing what [`crate::model::transition::decide`] decided — the one
//!   statement that sets `status` — plus the claim, recovery, release and bulk changes;
//! - [`order`]: moves and "run now";
//! - [`status`]: the status predicates every query uses;
//! - [`settings`]: settings and the pause flag; [`events`]: the event log;
//!   [`outbox`]: callback deliveries.
//!
//! Must not: decide anything (status changes, ranks, validation live in `model/`), touch the
//! network or the file system beyond the database, or hold its lock across an `.await`:
//! every call runs on a blocking thread through [`Store::call`], one writer at a time.

pub mod events;
pub mod order;
pub mod outbox;
pub mod rows;
pub mod settings;
pub mod status;
pub mod tasks;
pub mod transitions;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

/// Errors of the store layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused or failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored JSON column could not be read or written.
    #[error("stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The database is newer than this program, or a migration failed.
    #[error("migration: {0}")]
    Migration(String),
    /// No such task.
    #[error("task not found")]
    NotFound,
    /// The transition function refused the event in the task's state.
    #[error(transparent)]
    Refused(#[from] crate::model::Refusal),
    /// The task is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// The change is invalid (validated inside the transaction).
    #[error("{0}")]
    Invalid(String),
    /// The blocking thread died (a bug).
    #[error("store worker: {0}")]
    Join(String),
    /// The disk holding the database is full: nothing was written.
    #[error("the data directory is full: nothing was written")]
    DiskFull,
}

/// A full-disk failure becomes [`StoreError::DiskFull`] (and marks the disk full).
fn classify(e: StoreError, disk: Option<&crate::disk::Disk>) -> StoreError {
    let full = match &e {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
            f.code == rusqlite::ErrorCode::DiskFull
                || (f.code == rusqlite::ErrorCode::ReadOnly
                    && disk.is_some_and(|d| d.store_fault()))
        }
        StoreError::DiskFull => true,
        _ => false,
    };
    if !full {
        return e;
    }
    if let Some(d) = disk {
        d.mark_full();
    }
    StoreError::DiskFull
}

/// Applies the test-only "no space" fault to the connection (SQLite's `query_only`).
fn apply_fault(conn: &Connection, disk: Option<&crate::disk::Disk>) {
    use std::sync::atomic::Ordering;
    let Some(d) = disk else { return };
    let want = d.store_fault();
    if d.store_applied.load(Ordering::Relaxed) != want
        && conn.pragma_update(None, "query_only", want).is_ok()
    {
        d.store_applied.store(want, Ordering::Relaxed);
    }
}

/// The migrations, in order; the index + 1 is the `user_version` after applying it.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../../migrations/0001_init.sql")),
    (
        "0002_drop_task_lease",
        include_str!("../../migrations/0002_drop_task_lease.sql"),
    ),
    (
        "0003_task_next_run_at",
        include_str!("../../migrations/0003_task_next_run_at.sql"),
    ),
];

/// Applies every migration newer than `PRAGMA user_version`, each in its own transaction.
/// Idempotent; refuses a database written by a newer program.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let latest = MIGRATIONS.len() as i64;
    if current > latest {
        return Err(StoreError::Migration(format!(
            "database schema version {current} is newer than this program ({latest})"
        )));
    }
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Migration(format!("{name}: {e}")))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

fn set_pragmas(conn: &Connection, file: bool) -> Result<(), StoreError> {
    if file {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "busy_timeout", 5000)?;
    Ok(())
}

/// The database handle: one connection, used by one blocking call at a time.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    disk: Option<Arc<crate::disk::Disk>>,
}

impl Store {
    /// Opens (creating if needed) the database file and migrates it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut conn = Connection::open(path)?;
        set_pragmas(&conn, true)?;
        migrate(&mut conn)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            disk: None,
        })
    }

    /// Reports full-disk failures to `disk` (and honours its test fault).
    pub fn with_disk(mut self, disk: Arc<crate::disk::Disk>) -> Store {
        self.disk = Some(disk);
        self
    }

    /// An in-memory database (tests).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        set_pragmas(&conn, false)?;
        migrate(&mut conn)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            disk: None,
        })
    }

    /// Runs `f` with the connection on a blocking thread.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        let disk = self.disk.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            apply_fault(&guard, disk.as_deref());
            f(&mut guard).map_err(|e| classify(e, disk.as_deref()))
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// Runs `f` with the connection on the current thread (start-up and tests).
    pub fn call_sync<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        apply_fault(&guard, self.disk.as_deref());
        f(&mut guard).map_err(|e| classify(e, self.disk.as_deref()))
    }
}

#[cfg(test)]
mod tests;
