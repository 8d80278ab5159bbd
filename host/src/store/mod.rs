//! The SQLite store: the only module that contains SQL.
//!
//! Owns: the database file `<data-dir>/queue.sqlite3` (WAL, pragmas at open), the numbered
//! append-only migrations in `host/migrations/`, the connections, and every query, by concern:
//! - [`rows`]: reading one task (listing and full columns, lifecycle, head/tail ranks);
//! - [`tasks`]: inserting and editing tasks (never their status), exports, positions;
//! - [`listing`]: the queue and history pages (offset or keyset cursor), full-text search
//!   and the counts kept by triggers;
//! - [`transitions`]: writing what [`crate::model::transition::decide`] decided — the one
//!   statement that sets `status` — plus the claim, recovery, release and bulk changes;
//! - [`order`]: moves and "run now";
//! - [`bulk`]: selections (ids, or a listing's filter) and the bulk changes over them,
//!   groups, full rows for exports;
//! - [`export`]: exports and zips in pages (keyset over the queue, a byte budget per page);
//! - [`speed`]: each backend's measured speed (the queue's ETA);
//! - [`status`]: the status predicates every query uses;
//! - [`settings`]: settings and the pause flag; [`backends`]: the backends added through the
//!   API; [`events`]: the event log;
//!   [`outbox`]: callback deliveries.
//!
//! Connections: one writer thread owns the only read-write connection and commits the jobs
//! queued to it in groups ([`Store::call`]: each job runs in its own savepoint inside one
//! transaction, so one fsync acknowledges many writes, and a job that fails rolls back only
//! itself); reads run on a small pool of read-only connections ([`Store::read`]), each in
//! its own read transaction (one consistent snapshot), never waiting for the writer.
//!
//! A write that fails for lack of space is [`StoreError::DiskFull`] and is reported to the
//! [`Space`] the host hands over ([`Store::with_space`]); the store imports nothing above it.
//!
//! Must not: decide anything (status changes, ranks, validation live in `model/`), touch the
//! network or the file system beyond the database, or hold a connection across an `.await`.

pub mod api;
pub mod backends;
pub mod bulk;
pub mod events;
pub mod export;
pub mod listing;
pub mod order;
pub mod outbox;
pub mod pg;
pub mod rows;
pub mod settings;
pub mod speed;
mod sqlite_impl;
pub mod status;
pub mod tasks;
pub mod transitions;

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OpenFlags};

/// Errors of the store layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused or failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The group commit that carried this change failed (the change is not stored).
    #[error("database commit: {0}")]
    Commit(String),
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
    /// A run's end, release or failed try for a claim that is over (the task no longer runs
    /// under that claim's fence): nothing was written.
    #[error("{0}")]
    Stale(String),
    /// The change is invalid (validated inside the transaction).
    #[error("{0}")]
    Invalid(String),
    /// The changed request breaks SD.Next's request contract (checked inside the
    /// transaction).
    #[error(transparent)]
    Violation(crate::model::contract::Violation),
    /// The writer thread or a blocking thread died (a bug).
    #[error("store worker: {0}")]
    Join(String),
    /// The disk holding the database is full: nothing was written.
    #[error("the data directory is full: nothing was written")]
    DiskFull,
    /// PostgreSQL refused or failed (the PostgreSQL store).
    #[error("database: {0}")]
    Postgres(String),
    /// The database cannot be reached (connection refused, lost, or none to be had): the
    /// change may not have been written; the host holds the queue until it answers again.
    #[error("database unreachable: {0}")]
    Unavailable(String),
}

/// The store the services use: either implementation of the contract.
pub type SharedStore = Arc<dyn api::TaskStore>;

/// The store a host opened ([`open`]): the one the services use, and the concrete one
/// behind it (for what only that store has: SQLite's file, PostgreSQL's blobs and
/// notifications).
pub struct Opened {
    /// The store the services use.
    pub shared: SharedStore,
    /// The SQLite store, when it is one.
    pub sqlite: Option<Store>,
    /// The PostgreSQL store, when it is one.
    pub pg: Option<pg::PgStore>,
}

/// Opens the store `database` names: the SQLite file in `data_dir` (the default) or
/// elsewhere (reporting to `space` what fails for lack of space), or the PostgreSQL
/// database, as host `host_id` with claims leased for `lease`; migrates it. A URL that
/// cannot be read is [`StoreError::Invalid`] naming `--database` (never the password).
pub async fn open(
    database: &crate::config::Database,
    data_dir: &Path,
    host_id: &str,
    lease: std::time::Duration,
    space: Option<Arc<dyn Space>>,
) -> Result<Opened, StoreError> {
    use crate::config::Database;
    let sqlite = |path: &Path| -> Result<Opened, StoreError> {
        let mut store = Store::open(path)?;
        if let Some(space) = space.clone() {
            store = store.with_space(space);
        }
        Ok(Opened {
            shared: Arc::new(store.clone()),
            sqlite: Some(store),
            pg: None,
        })
    };
    match database {
        Database::DataDir => sqlite(&data_dir.join("queue.sqlite3")),
        Database::Sqlite(path) => sqlite(path),
        Database::Postgres(url) => {
            if let Err(e) = url.parse::<tokio_postgres::Config>() {
                return Err(StoreError::Invalid(format!(
                    "--database {}: {e}",
                    crate::sdnext::redacted(url)
                )));
            }
            let store = pg::PgStore::open(url, host_id, lease).await?;
            Ok(Opened {
                shared: Arc::new(store.clone()),
                sqlite: None,
                pg: Some(store),
            })
        }
    }
}

/// The data directory's space as the store needs it. The host's disk watch (`disk.rs`, a
/// layer above) is one; the store knows only this: it reports a write that failed for lack
/// of space, and asks whether to refuse writes (the test-only "no space" fault).
pub trait Space: Send + Sync {
    /// A write failed for lack of space.
    fn write_failed_full(&self);
    /// Whether writes are refused (the test-only fault): the writer's connection is then
    /// `query_only`, and what it refuses is reported as a full disk.
    fn refuse_writes(&self) -> bool;
}

/// A full-disk failure becomes [`StoreError::DiskFull`] (and is reported to `space`).
fn classify(e: StoreError, space: Option<&dyn Space>) -> StoreError {
    let full = match &e {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
            f.code == rusqlite::ErrorCode::DiskFull
                || (f.code == rusqlite::ErrorCode::ReadOnly
                    && space.is_some_and(|s| s.refuse_writes()))
        }
        StoreError::DiskFull => true,
        _ => false,
    };
    if !full {
        return e;
    }
    if let Some(s) = space {
        s.write_failed_full();
    }
    StoreError::DiskFull
}

/// Applies the test-only "no space" fault to the writer's connection (SQLite's
/// `query_only`); `applied` is whether the connection has it now.
fn apply_fault(conn: &Connection, space: Option<&dyn Space>, applied: &mut bool) {
    let Some(s) = space else { return };
    let want = s.refuse_writes();
    if *applied != want && conn.pragma_update(None, "query_only", want).is_ok() {
        *applied = want;
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
    (
        "0004_flat_cost",
        include_str!("../../migrations/0004_flat_cost.sql"),
    ),
    (
        "0005_control_task_type",
        include_str!("../../migrations/0005_control_task_type.sql"),
    ),
    (
        "0006_policy_and_pool",
        include_str!("../../migrations/0006_policy_and_pool.sql"),
    ),
    (
        "0007_workbench",
        include_str!("../../migrations/0007_workbench.sql"),
    ),
    (
        "0009_task_id_nocase",
        include_str!("../../migrations/0009_task_id_nocase.sql"),
    ),
    (
        "0010_claim_fence",
        include_str!("../../migrations/0010_claim_fence.sql"),
    ),
];

/// Applies every migration newer than `PRAGMA user_version`, each in its own transaction.
/// Idempotent; refuses a database written by a newer program. Foreign keys are off while
/// migrations run (a migration may rebuild a table, SQLite's documented way to change a
/// constraint; with them on, dropping the old table would cascade to its children) and are
/// checked before each commit.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let res = migrate_all(conn);
    conn.pragma_update(None, "foreign_keys", fk)?;
    res
}

fn migrate_all(conn: &mut Connection) -> Result<(), StoreError> {
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
        let broken: i64 =
            tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })?;
        if broken > 0 {
            return Err(StoreError::Migration(format!(
                "{name}: leaves {broken} broken foreign key(s)"
            )));
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// Keeps the `-wal` and `-shm` files when the last connection closes (a clean stop), as a
/// crash does: a host restarted on a full disk then opens the database without creating
/// them (creating the `-shm` needs space, and failed with "disk I/O error").
fn persist_wal(conn: &Connection) -> Result<(), StoreError> {
    let mut on: std::ffi::c_int = 1;
    conn.file_control(
        rusqlite::DEFAULT_NAME,
        rusqlite::FileControl::PersistWal(&mut on),
    )?;
    Ok(())
}

fn set_pragmas(conn: &Connection, file: bool) -> Result<(), StoreError> {
    if file {
        persist_wal(conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "busy_timeout", 5000)?;
    Ok(())
}

/// How many jobs one group commit carries at most.
const MAX_GROUP: usize = 256;
/// Read-only connections for listings and lookups.
const READERS: usize = 3;

/// Why a group commit failed.
#[derive(Debug, Clone)]
enum CommitFailed {
    /// No space left for the database.
    DiskFull,
    /// Anything else.
    Other(String),
}

/// Called with the outcome of the group commit that carried a job (`None`: committed).
type Finish = Box<dyn FnOnce(Option<CommitFailed>) + Send>;
/// Where the store reports full-disk failures, once the host has set it.
type SpaceSlot = Arc<std::sync::OnceLock<Arc<dyn Space>>>;
/// A write job's work: runs on the writer's connection inside its own savepoint; says
/// whether it succeeded (otherwise its savepoint is rolled back) and how to deliver its
/// answer.
type Work = Box<dyn FnOnce(&mut Connection) -> (bool, Finish) + Send>;

/// A write job and how its commit must reach the disk.
struct Job {
    /// Answered only once the commit is on the disk (fsync: survives a power cut). A light
    /// job's commit is in the WAL file when answered (survives the process's crash or
    /// SIGKILL) and reaches the disk with the next durable commit or checkpoint; the WAL
    /// keeps commits in order, so a power cut can only lose the last light commits, never
    /// one before a durable commit.
    durable: bool,
    work: Work,
}

/// The database handle: a writer thread with the only read-write connection (group
/// commit) and a pool of read-only connections. Cheap to clone; the connections close when
/// the last clone is dropped.
#[derive(Clone)]
pub struct Store {
    writer: mpsc::Sender<Job>,
    readers: Option<Arc<Readers>>,
    space: SpaceSlot,
}

struct Readers {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl Readers {
    fn open(path: &Path) -> Result<Readers, StoreError> {
        let mut conns = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let c = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            persist_wal(&c)?;
            c.pragma_update(None, "busy_timeout", 5000)?;
            c.pragma_update(None, "query_only", true)?;
            conns.push(Mutex::new(c));
        }
        Ok(Readers {
            conns,
            next: AtomicUsize::new(0),
        })
    }

    /// A free connection, or (all busy) the next one in turn.
    fn acquire(&self) -> std::sync::MutexGuard<'_, Connection> {
        for c in &self.conns {
            if let Ok(g) = c.try_lock() {
                return g;
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        self.conns[i].lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The writer thread: takes the jobs queued so far (up to [`MAX_GROUP`]), runs each in its
/// own savepoint inside one transaction, commits once, then delivers every answer. A job
/// that fails (or panics) rolls back its own savepoint only; a failed commit fails them all.
/// When no write transaction can begin (a read-only or full disk), each job runs as its own
/// transaction, so each gets its own answer (reads still work).
fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Job>, space: SpaceSlot) {
    let failure = |e: rusqlite::Error, space: &SpaceSlot| -> CommitFailed {
        match classify(StoreError::Sqlite(e), space.get().map(|s| &**s)) {
            StoreError::DiskFull => CommitFailed::DiskFull,
            other => CommitFailed::Other(other.to_string()),
        }
    };
    // The connection's `synchronous` setting (FULL at open).
    let mut synced = true;
    // Whether the connection refuses writes (the test fault).
    let mut refusing = false;
    while let Ok(first) = rx.recv() {
        apply_fault(&conn, space.get().map(|s| &**s), &mut refusing);
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        // One durable job makes the whole group's commit durable.
        let durable = group.iter().any(|j| j.durable);
        if durable != synced {
            let level = if durable { "FULL" } else { "NORMAL" };
            match conn.pragma_update(None, "synchronous", level) {
                Ok(()) => synced = durable,
                Err(e) => tracing::error!("store: cannot set synchronous={level}: {e}"),
            }
        }
        let grouped = conn.execute_batch("BEGIN IMMEDIATE").is_ok();
        let mut finishes: Vec<(Finish, Option<CommitFailed>)> = Vec::with_capacity(group.len());
        for job in group {
            if let Err(e) = conn.execute_batch("SAVEPOINT job") {
                // The job is dropped: its caller's answer channel closes.
                tracing::error!("store: cannot open a savepoint: {e}");
                continue;
            }
            let work = job.work;
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| work(&mut conn)));
            let (ok, finish) = match outcome {
                Ok((ok, finish)) => (ok, Some(finish)),
                Err(_) => {
                    tracing::error!("store: a write job panicked; it was rolled back");
                    (false, None)
                }
            };
            let end = if ok {
                "RELEASE job"
            } else {
                "ROLLBACK TO job; RELEASE job"
            };
            // Outside a group, RELEASE commits this job alone.
            let own = conn.execute_batch(end).err().map(|e| failure(e, &space));
            if own.is_some() && !grouped && !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            if let Some(f) = finish {
                finishes.push((f, own.filter(|_| !grouped)));
            }
        }
        let failed = if grouped {
            let failed = conn
                .execute_batch("COMMIT")
                .err()
                .map(|e| failure(e, &space));
            if failed.is_some() && !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            failed
        } else {
            None
        };
        for (f, own) in finishes {
            f(own.or_else(|| failed.clone()));
        }
    }
}

impl Store {
    /// Opens (creating if needed) the database file, migrates it, starts the writer thread
    /// and opens the read-only connections.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut conn = Connection::open(path)?;
        set_pragmas(&conn, true)?;
        migrate(&mut conn)?;
        let readers = Readers::open(path)?;
        let space = SpaceSlot::default();
        Ok(Store {
            writer: Self::spawn_writer(conn, space.clone())?,
            readers: Some(Arc::new(readers)),
            space,
        })
    }

    /// Reports full-disk failures to `space` (and honours its test fault).
    pub fn with_space(self, space: Arc<dyn Space>) -> Store {
        let _ = self.space.set(space);
        self
    }

    /// An in-memory database (tests); the writer serves the reads too.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        set_pragmas(&conn, false)?;
        migrate(&mut conn)?;
        let space = SpaceSlot::default();
        Ok(Store {
            writer: Self::spawn_writer(conn, space.clone())?,
            readers: None,
            space,
        })
    }

    fn spawn_writer(conn: Connection, space: SpaceSlot) -> Result<mpsc::Sender<Job>, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(conn, rx, space))
            .map_err(|e| StoreError::Join(e.to_string()))?;
        Ok(tx)
    }

    fn job<T, F>(
        &self,
        durable: bool,
        f: F,
        deliver: impl FnOnce(Result<T, StoreError>) + Send + 'static,
    ) -> Job
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let space = self.space.clone();
        let work: Work = Box::new(move |conn| {
            let r = f(conn).map_err(|e| classify(e, space.get().map(|s| &**s)));
            let ok = r.is_ok();
            let finish: Finish = Box::new(move |failed| {
                deliver(match failed {
                    Some(CommitFailed::DiskFull) if ok => Err(StoreError::DiskFull),
                    Some(CommitFailed::Other(e)) if ok => Err(StoreError::Commit(e)),
                    _ => r,
                })
            });
            (ok, finish)
        });
        Job { durable, work }
    }

    /// Runs a write `f` on the writer's connection (inside its own savepoint of a group
    /// commit) and answers once the group is durably committed (on the disk).
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(true, f).await
    }

    /// Like [`Store::call`] for a write whose loss in a power cut (not in a crash of the
    /// process: it is in the WAL file when answered) is harmless: a claim (a task running at
    /// a power cut goes back to the queue at the next start anyway) and the event log. It
    /// does not wait for the disk.
    pub async fn call_light<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(false, f).await
    }

    async fn submit<T, F>(&self, durable: bool, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = self.job(durable, f, move |r| {
            let _ = tx.send(r);
        });
        self.writer
            .send(job)
            .map_err(|_| StoreError::Join("the store writer stopped".into()))?;
        rx.await.map_err(|_| {
            StoreError::Join("a store job was dropped (panic or no transaction)".into())
        })?
    }

    /// Like [`Store::call`], blocking the current thread (start-up, tests, tools; never from
    /// inside an async task).
    pub fn call_sync<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let job = self.job(true, f, move |r| {
            let _ = tx.send(r);
        });
        self.writer
            .send(job)
            .map_err(|_| StoreError::Join("the store writer stopped".into()))?;
        rx.recv().map_err(|_| {
            StoreError::Join("a store job was dropped (panic or no transaction)".into())
        })?
    }

    /// Like [`Store::read`] on the current thread (background jobs already on a blocking
    /// thread; never from inside an async task).
    pub fn read_sync<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let Some(readers) = self.readers.as_ref() else {
            return Err(StoreError::Join(
                "no read connections (in-memory store)".into(),
            ));
        };
        let conn = readers.acquire();
        let tx = conn.unchecked_transaction()?;
        let r = f(&tx);
        let _ = tx.rollback();
        r
    }

    /// Runs a read `f` on a read-only connection, in one read transaction (a consistent
    /// snapshot of the last commit), on a blocking thread. It never waits for the writer.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let Some(readers) = self.readers.clone() else {
            return self.call(move |c| f(c)).await;
        };
        tokio::task::spawn_blocking(move || {
            let conn = readers.acquire();
            let tx = conn.unchecked_transaction()?;
            let r = f(&tx);
            // A read transaction: ending it can only release the snapshot.
            let _ = tx.rollback();
            r
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }
}

#[cfg(test)]
mod tests;
