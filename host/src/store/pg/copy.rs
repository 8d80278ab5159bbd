//! `agent-scheduler migrate-store`: copies a host's SQLite queue (`<data-dir>/queue.sqlite3`
//! and the result files under `<data-dir>/results/`) into a PostgreSQL database, then checks
//! the copy and commits it only when every check agrees.
//!
//! The source is opened read-only and left as it was: the data folder's `host.lock` is held
//! (`try_lock`) for the whole run, so a host running on that folder is refused and none can
//! start meanwhile; a source at an older schema version is first copied to a temporary file
//! (`VACUUM INTO`, in the system's temporary folder: it needs room for the database, not the
//! results) and that copy is migrated, never the source; a newer one is refused.
//!
//! The target's migrations are applied first ([`PgStore::open`]). Everything is then written
//! in ONE PostgreSQL transaction, result bytes included (PostgreSQL has no limit on a
//! transaction's size; the bytes are streamed in chunks of [`CHUNK`], never a whole file in
//! memory), and the checks run inside that transaction: a failed or mismatching run rolls
//! back and leaves the target as it was. The only trace of a failed run is that the identity
//! sequences (`setval`, not transactional) may have moved forward: later ids skip a gap.
//!
//! Table by table (SQLite `host/migrations/*.sql` → PostgreSQL `host/migrations-pg/`):
//! - `tasks` → `tasks`, every column (seq, id, type, status, name, request, page_snapshot,
//!   checkpoint, vae, callback_url, rank, run_next, force_run, bookmarked, attempts, backend,
//!   error, result, times, next_run_at, pinned, overtakes, overtaken_at, group_id, fence,
//!   stop_requested); JSON text becomes `jsonb`, 0/1 becomes boolean. `lease_owner` and
//!   `lease_until` stay NULL: a task the stopped host left `running` has no lease, so the
//!   first PostgreSQL host recovers it as the SQLite host would have at its start. The
//!   identity of `seq` and the `claim_fence` sequence are set past the copied values.
//! - `result_images` → `result_images`; the files each row names (and its thumbnail
//!   `<index>.thumb.jpg` when there is one) → `result_blobs`, named as in the folder. Files no
//!   row names (orphans the host would sweep) are not copied; a row whose file is missing is
//!   reported (the source host would answer 404 for it too).
//! - `events` → `events` with their ids (a client's `Last-Event-ID` stays meaningful); the
//!   identity is set past them.
//! - `settings` → `settings` (the settings JSON, the `paused` flag, the space probe).
//! - `backends` → `backends` with their ids (`driver` NULL: no host drives them yet);
//!   `backend_speed` → `backend_speed`.
//! - `idempotency_keys` → `idempotency_keys`; `callback_outbox` → `callback_outbox` with
//!   their ids.
//! - Not copied: `task_counts` (PostgreSQL's triggers count the inserted rows), `tasks_fts`
//!   and its shadow tables (PostgreSQL's `search` column is generated from the row),
//!   `sqlite_sequence` (replaced by the identities set past the copied ids), the schema
//!   version (`user_version`; the target has its own `schema_migrations`).
//!
//! A target holding any task, event or backend is refused, unless `into_non_empty`: then a
//! task id the target already has (compared case-insensitively, as ids are) refuses the run
//! before anything is written; tasks, events, backends and outbox rows get new ids/seqs (in
//! the source's order); the copied pending tasks go after the target's queue in the source's
//! order (new ranks; their run-next group and pin are dropped, they would jump the target's
//! queue), the target's settings and paused flag stay, and a backend URL, idempotency key,
//! delivery or speed the target already has keeps the target's row. Clients' event ids then
//! restart from the target's.
//!
//! The transaction holds the order lock and the event-log lock of the target (the advisory
//! locks the hosts take): hosts already sharing a non-empty target wait, for the length of
//! the copy, to change the queue's order (enqueue, move) or to append events.
//!
//! The checks: per table, the number of rows and a sha256 over a canonical text of each row
//! (columns in a fixed order, JSON with sorted keys, rows in key order), computed the same way
//! from what was read from the source (as written) and from what the target holds for those
//! rows; per blob, the sha256 of the file (read again) and of its chunks in the target.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use deadpool_postgres::Transaction;
use futures::{StreamExt, TryStreamExt};
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio_postgres::types::ToSql;

use super::blobs::CHUNK;
use super::{Cached, PgStore};
use crate::model::rank::rank_at_end;
use crate::results::files::{ResultFiles, thumb_name};
use crate::store::StoreError;

/// Why a migration stopped. Nothing was written to the target in any case.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// Bad arguments (`--from`, `--to`).
    #[error("{0}")]
    Usage(String),
    /// The run was refused: the source is in use or newer than this program, the target is
    /// not empty, a task id exists in the target.
    #[error("{0}")]
    Refused(String),
    /// The source could not be read, or the target failed.
    #[error("{0}")]
    Failed(String),
    /// The copy did not check out (rolled back).
    #[error("the copy does not match the source (nothing was committed):\n{0}")]
    Mismatch(Report),
}

impl From<StoreError> for MigrateError {
    fn from(e: StoreError) -> MigrateError {
        MigrateError::Failed(format!("target: {e}"))
    }
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> MigrateError {
        MigrateError::from(StoreError::from(e))
    }
}

fn src_err(e: impl std::fmt::Display) -> MigrateError {
    MigrateError::Failed(format!("source: {e}"))
}

/// What to copy where.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// The SQLite file (`<data-dir>/queue.sqlite3`; the results are `results/` beside it).
    pub from: PathBuf,
    /// The PostgreSQL URL.
    pub to: String,
    /// Append to a target that already holds tasks, events or backends.
    pub into_non_empty: bool,
}

/// One table's check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCheck {
    /// The table.
    pub table: &'static str,
    /// Rows read from the source (and written).
    pub source_rows: u64,
    /// The matching rows found in the target.
    pub target_rows: u64,
    /// sha256 (hex) of the source rows' canonical text.
    pub source_sha256: String,
    /// sha256 (hex) of the target rows' canonical text.
    pub target_sha256: String,
}

impl TableCheck {
    /// Whether both sides agree.
    pub fn ok(&self) -> bool {
        self.source_rows == self.target_rows && self.source_sha256 == self.target_sha256
    }
}

/// What was copied and how it checked out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Per table.
    pub tables: Vec<TableCheck>,
    /// Result files copied.
    pub blobs: u64,
    /// Their bytes.
    pub blob_bytes: u64,
    /// Blobs whose bytes differ from their file (`task/name`).
    pub blob_mismatches: Vec<String>,
    /// Result files a row names that were not in the results folder (`task/name`).
    pub missing_files: Vec<String>,
    /// Rows the target already had (non-empty target: kept the target's), per table.
    pub kept_target: Vec<(&'static str, u64)>,
    /// Whether the source was migrated (a temporary copy) from an older schema.
    pub upgraded_copy: bool,
}

impl Report {
    /// Whether every check agrees.
    pub fn ok(&self) -> bool {
        self.tables.iter().all(TableCheck::ok) && self.blob_mismatches.is_empty()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.upgraded_copy {
            writeln!(f, "source schema upgraded in a temporary copy")?;
        }
        for t in &self.tables {
            writeln!(
                f,
                "{:<18} {:>8} rows  sha256 {}  {}",
                t.table,
                t.source_rows,
                &t.source_sha256[..16],
                if t.ok() {
                    "ok".to_owned()
                } else {
                    format!(
                        "MISMATCH (target {} rows, sha256 {})",
                        t.target_rows,
                        &t.target_sha256[..16]
                    )
                }
            )?;
        }
        writeln!(
            f,
            "{:<18} {:>8} files {} bytes  {}",
            "result_blobs",
            self.blobs,
            self.blob_bytes,
            if self.blob_mismatches.is_empty() {
                "ok (sha256 of each equals its file)".to_owned()
            } else {
                format!("MISMATCH: {}", self.blob_mismatches.join(", "))
            }
        )?;
        for (table, n) in &self.kept_target {
            if *n > 0 {
                writeln!(f, "{table}: {n} rows already in the target were kept")?;
            }
        }
        for m in &self.missing_files {
            writeln!(
                f,
                "warning: {m} is named by a row but not in the results folder"
            )?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Columns and values

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    I64,
    I32,
    Bool,
    F64,
    Text,
    Json,
}

/// One column's value, typed as the PostgreSQL column is.
#[derive(Debug, Clone)]
enum Val {
    I64(Option<i64>),
    I32(Option<i32>),
    Bool(Option<bool>),
    F64(Option<f64>),
    Text(Option<String>),
    Json(Option<Value>),
}

impl Val {
    fn sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Val::I64(v) => v,
            Val::I32(v) => v,
            Val::Bool(v) => v,
            Val::F64(v) => v,
            Val::Text(v) => v,
            Val::Json(v) => v,
        }
    }

    fn i64(&self) -> Option<i64> {
        match self {
            Val::I64(v) => *v,
            _ => None,
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Val::Text(v) => v.as_deref(),
            _ => None,
        }
    }

    /// The value as a key of the written-rows set.
    fn key(&self) -> String {
        let mut s = String::new();
        self.canon(&mut s);
        s
    }

    /// Appends the canonical text of the value.
    fn canon(&self, out: &mut String) {
        match self {
            Val::I64(None)
            | Val::I32(None)
            | Val::Bool(None)
            | Val::F64(None)
            | Val::Text(None)
            | Val::Json(None) => out.push_str("\\N"),
            Val::I64(Some(v)) => out.push_str(&v.to_string()),
            Val::I32(Some(v)) => out.push_str(&v.to_string()),
            Val::Bool(Some(v)) => out.push_str(if *v { "t" } else { "f" }),
            Val::F64(Some(v)) => out.push_str(&format!("{v:?}")),
            Val::Text(Some(v)) => out.push_str(&Value::String(v.clone()).to_string()),
            Val::Json(Some(v)) => canon_json(v, out),
        }
    }
}

/// JSON with object keys sorted (byte order), numbers and strings as serde_json writes them.
fn canon_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canon_json(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canon_json(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn from_sqlite(row: &rusqlite::Row<'_>, i: usize, kind: Kind, col: &str) -> Result<Val, String> {
    let bad = |e: &dyn std::fmt::Display| format!("column {col}: {e}");
    Ok(match kind {
        Kind::I64 => Val::I64(row.get(i).map_err(|e| bad(&e))?),
        Kind::I32 => {
            let v: Option<i64> = row.get(i).map_err(|e| bad(&e))?;
            Val::I32(v.map(i32::try_from).transpose().map_err(|e| bad(&e))?)
        }
        Kind::Bool => {
            let v: Option<i64> = row.get(i).map_err(|e| bad(&e))?;
            Val::Bool(v.map(|v| v != 0))
        }
        Kind::F64 => Val::F64(row.get(i).map_err(|e| bad(&e))?),
        Kind::Text => Val::Text(row.get(i).map_err(|e| bad(&e))?),
        Kind::Json => {
            let v: Option<String> = row.get(i).map_err(|e| bad(&e))?;
            Val::Json(
                v.map(|s| serde_json::from_str::<Value>(&s))
                    .transpose()
                    .map_err(|e| bad(&format!("not JSON: {e}")))?,
            )
        }
    })
}

fn from_pg(row: &tokio_postgres::Row, i: usize, kind: Kind) -> Result<Val, tokio_postgres::Error> {
    Ok(match kind {
        Kind::I64 => Val::I64(row.try_get(i)?),
        Kind::I32 => Val::I32(row.try_get(i)?),
        Kind::Bool => Val::Bool(row.try_get(i)?),
        Kind::F64 => Val::F64(row.try_get(i)?),
        Kind::Text => Val::Text(row.try_get(i)?),
        Kind::Json => Val::Json(row.try_get(i)?),
    })
}

/// Rows read from the source before they are written.
const PAGE: usize = 256;

/// A table copied row by row.
struct Table {
    name: &'static str,
    cols: &'static [(&'static str, Kind)],
    /// The canonical order (both sides; PostgreSQL text compared byte for byte).
    order_sqlite: &'static str,
    order_pg: &'static str,
    /// The column identifying a row (what `RETURNING` answers).
    key: &'static str,
    /// The identity column PostgreSQL assigns when appending to a non-empty target.
    auto_id: Option<&'static str>,
}

use Kind::*;

const TASKS: Table = Table {
    name: "tasks",
    cols: &[
        ("seq", I64),
        ("id", Text),
        ("type", Text),
        ("status", Text),
        ("name", Text),
        ("request", Json),
        ("page_snapshot", Json),
        ("checkpoint", Text),
        ("vae", Text),
        ("callback_url", Text),
        ("rank", I64),
        ("run_next", I64),
        ("force_run", Bool),
        ("bookmarked", Bool),
        ("attempts", I32),
        ("backend", Text),
        ("error", Text),
        ("result", Json),
        ("created_at", I64),
        ("updated_at", I64),
        ("started_at", I64),
        ("finished_at", I64),
        ("next_run_at", I64),
        ("pinned", Bool),
        ("overtakes", I32),
        ("overtaken_at", I64),
        ("group_id", Text),
        ("fence", I64),
        ("stop_requested", Bool),
    ],
    order_sqlite: "seq",
    order_pg: "seq",
    key: "id",
    auto_id: Some("seq"),
};

const RESULT_IMAGES: Table = Table {
    name: "result_images",
    cols: &[
        ("task_id", Text),
        ("idx", I32),
        ("file_name", Text),
        ("infotext", Text),
        ("format", Text),
    ],
    order_sqlite: "task_id, idx",
    order_pg: "task_id COLLATE \"C\", idx",
    key: "task_id",
    auto_id: None,
};

const SETTINGS: Table = Table {
    name: "settings",
    cols: &[("key", Text), ("value", Text)],
    order_sqlite: "key",
    order_pg: "key COLLATE \"C\"",
    key: "key",
    auto_id: None,
};

const EVENTS: Table = Table {
    name: "events",
    cols: &[
        ("id", I64),
        ("name", Text),
        ("data", Text),
        ("created_at", I64),
    ],
    order_sqlite: "id",
    order_pg: "id",
    key: "id",
    auto_id: Some("id"),
};

const IDEMPOTENCY: Table = Table {
    name: "idempotency_keys",
    cols: &[("key", Text), ("response", Text), ("created_at", I64)],
    order_sqlite: "key",
    order_pg: "key COLLATE \"C\"",
    key: "key",
    auto_id: None,
};

const OUTBOX: Table = Table {
    name: "callback_outbox",
    cols: &[
        ("id", I64),
        ("delivery_id", Text),
        ("task_id", Text),
        ("url", Text),
        ("status", Text),
        ("files", Text),
        ("attempts", I32),
        ("next_attempt_at", I64),
        ("created_at", I64),
        ("last_error", Text),
    ],
    order_sqlite: "id",
    order_pg: "id",
    key: "id",
    auto_id: Some("id"),
};

const BACKENDS: Table = Table {
    name: "backends",
    cols: &[
        ("id", I64),
        ("url", Text),
        ("enabled", Bool),
        ("draining", Bool),
        ("created_at", I64),
    ],
    order_sqlite: "id",
    order_pg: "id",
    key: "id",
    auto_id: Some("id"),
};

const SPEEDS: Table = Table {
    name: "backend_speed",
    cols: &[
        ("backend", Text),
        ("ms_per_mpx_step", F64),
        ("samples", I64),
        ("load_ms", F64),
        ("loads", I64),
        ("updated_at", I64),
    ],
    order_sqlite: "backend",
    order_pg: "backend COLLATE \"C\"",
    key: "backend",
    auto_id: None,
};

/// Tables with an identity column: the identity is set past the copied ids.
const IDENTITIES: &[(&str, &str)] = &[
    ("tasks", "seq"),
    ("events", "id"),
    ("callback_outbox", "id"),
    ("backends", "id"),
];

impl Table {
    /// The columns written (and checked): all, or without the identity when appending.
    fn written(&self, append: bool) -> Vec<(usize, &'static str, Kind)> {
        self.cols
            .iter()
            .enumerate()
            .filter(|(_, (c, _))| !(append && Some(*c) == self.auto_id))
            .map(|(i, (c, k))| (i, *c, *k))
            .collect()
    }

    fn col(&self, name: &str) -> usize {
        self.cols
            .iter()
            .position(|(c, _)| *c == name)
            .unwrap_or_else(|| unreachable!("{name} is a column of {}", self.name))
    }

    fn select(&self, order: &str) -> String {
        let cols: Vec<&str> = self.cols.iter().map(|(c, _)| *c).collect();
        format!(
            "SELECT {} FROM {} ORDER BY {order}",
            cols.join(", "),
            self.name
        )
    }
}

/// A running sha256 over canonical rows.
#[derive(Default)]
struct Sum {
    rows: u64,
    hash: Sha256,
}

impl Sum {
    fn add(&mut self, row: &[Val], cols: &[(usize, &'static str, Kind)]) {
        let mut line = String::new();
        for (n, (i, _, _)) in cols.iter().enumerate() {
            if n > 0 {
                line.push('\t');
            }
            row[*i].canon(&mut line);
        }
        line.push('\n');
        self.hash.update(line.as_bytes());
        self.rows += 1;
    }

    fn hex(self) -> (u64, String) {
        (self.rows, hex(&self.hash.finalize()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------
// The source

/// The source, opened read-only (or a migrated temporary copy of it), with the data
/// folder's lock held.
struct Source {
    conn: Connection,
    results: ResultFiles,
    _lock: Option<std::fs::File>,
    _tmp: Option<tempfile::TempDir>,
    upgraded: bool,
}

fn open_source(path: &Path) -> Result<Source, MigrateError> {
    if !path.is_file() {
        return Err(MigrateError::Usage(format!(
            "--from: {} is not a file (the SQLite queue, <data-dir>/queue.sqlite3)",
            path.display()
        )));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    // A host holds the lock while it runs (and makes the file before opening the database):
    // no lock file, no host has run here.
    let lock = match std::fs::File::open(dir.join("host.lock")) {
        Ok(f) => {
            if f.try_lock().is_err() {
                return Err(MigrateError::Refused(format!(
                    "a running agent-scheduler is using {} (it holds {}): stop it first",
                    dir.display(),
                    dir.join("host.lock").display()
                )));
            }
            Some(f)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(src_err(format!("{}: {e}", dir.join("host.lock").display()))),
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(src_err)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(src_err)?;
    let has_tasks: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'tasks'",
            [],
            |r| r.get(0),
        )
        .map_err(src_err)?;
    if !has_tasks {
        return Err(MigrateError::Usage(format!(
            "--from: {} holds no agent-scheduler queue",
            path.display()
        )));
    }
    let latest = crate::store::MIGRATIONS.len() as i64;
    if version > latest {
        return Err(MigrateError::Refused(format!(
            "{} is at schema version {version}, newer than this program ({latest})",
            path.display()
        )));
    }
    let results = ResultFiles::new(dir);
    if version == latest {
        conn.pragma_update(None, "query_only", true)
            .map_err(src_err)?;
        return Ok(Source {
            conn,
            results,
            _lock: lock,
            _tmp: None,
            upgraded: false,
        });
    }
    // An older schema: migrate a copy, never the source (`VACUUM INTO` reads the source
    // through this read-only connection).
    let tmp = tempfile::tempdir().map_err(src_err)?;
    let copy = tmp.path().join("queue.sqlite3");
    conn.execute("VACUUM INTO ?1", [copy.to_string_lossy()])
        .map_err(src_err)?;
    drop(conn);
    let mut rw = Connection::open(&copy).map_err(src_err)?;
    crate::store::migrate(&mut rw).map_err(src_err)?;
    Ok(Source {
        conn: rw,
        results,
        _lock: lock,
        _tmp: Some(tmp),
        upgraded: true,
    })
}

// ---------------------------------------------------------------------------------------
// The run

/// Copies the queue at `opts.from` into `opts.to`, checks it and commits it when it checks
/// out; returns the report. See the module documentation.
pub async fn migrate_store(opts: &MigrateOptions) -> Result<Report, MigrateError> {
    if !(opts.to.starts_with("postgres://") || opts.to.starts_with("postgresql://")) {
        return Err(MigrateError::Usage(
            "--to: a PostgreSQL URL (postgres://user:password@host:port/database)".into(),
        ));
    }
    let source = open_source(&opts.from)?;
    let store = PgStore::open(&opts.to, "migrate-store", super::DEFAULT_LEASE).await?;
    let mut obj = store.conn().await?;
    let tx = obj.transaction().await?;
    // No host changes the order or appends events while the copy is written.
    tx.x("SELECT pg_advisory_xact_lock($1)", &[&super::locks::ORDER])
        .await?;
    tx.x("SELECT pg_advisory_xact_lock($1)", &[&super::locks::EVENTS])
        .await?;
    let busy: i64 = tx
        .q1(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM tasks LIMIT 1) t) \
                  + (SELECT count(*) FROM (SELECT 1 FROM events LIMIT 1) e) \
                  + (SELECT count(*) FROM (SELECT 1 FROM backends LIMIT 1) b)",
            &[],
        )
        .await?
        .try_get(0)?;
    let append = busy > 0;
    if append && !opts.into_non_empty {
        return Err(MigrateError::Refused(
            "the target database already holds tasks, events or backends: \
             nothing was written (--into-non-empty appends to it)"
                .into(),
        ));
    }
    if append {
        refuse_existing_ids(&source.conn, &tx).await?;
    }
    let mut report = Report {
        upgraded_copy: source.upgraded,
        ..Report::default()
    };
    let mut copied_tasks: HashSet<String> = HashSet::new();
    for table in [
        &TASKS,
        &RESULT_IMAGES,
        &SETTINGS,
        &EVENTS,
        &IDEMPOTENCY,
        &OUTBOX,
        &BACKENDS,
        &SPEEDS,
    ] {
        let check = copy_table(
            &source.conn,
            &tx,
            table,
            append,
            &mut copied_tasks,
            &mut report,
        )
        .await?;
        report.tables.push(check);
    }
    copy_blobs(&source, &tx, &copied_tasks, &mut report).await?;
    if !append {
        for (table, col) in IDENTITIES {
            tx.x(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', '{col}'), \
                     greatest((SELECT max({col}) FROM {table}), 1), \
                     (SELECT max({col}) FROM {table}) IS NOT NULL)"
                ),
                &[],
            )
            .await?;
        }
    }
    tx.x(
        "SELECT setval('claim_fence', greatest((SELECT max(fence) FROM tasks), \
         (SELECT last_value FROM claim_fence), 1))",
        &[],
    )
    .await?;
    if !report.ok() {
        tx.rollback().await?;
        return Err(MigrateError::Mismatch(report));
    }
    tx.x("SELECT fold_task_counts()", &[]).await?;
    tx.commit().await?;
    Ok(report)
}

/// Refuses the run when a task id of the source is in the target (case-insensitively).
async fn refuse_existing_ids(conn: &Connection, tx: &Transaction<'_>) -> Result<(), MigrateError> {
    let mut ids: Vec<String> = Vec::new();
    let mut st = conn
        .prepare("SELECT lower(id) FROM tasks ORDER BY seq")
        .map_err(src_err)?;
    let mut rows = st.query([]).map_err(src_err)?;
    while let Some(r) = rows.next().map_err(src_err)? {
        ids.push(r.get(0).map_err(src_err)?);
    }
    for page in ids.chunks(10_000) {
        let found = tx
            .q(
                "SELECT id FROM tasks WHERE lower(id) = ANY($1) ORDER BY id LIMIT 5",
                &[&page],
            )
            .await?;
        if !found.is_empty() {
            let names: Vec<String> = found
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            return Err(MigrateError::Refused(format!(
                "the target already has task id(s) {}: nothing was written",
                names.join(", ")
            )));
        }
    }
    Ok(())
}

/// Copies one table and checks it.
async fn copy_table(
    conn: &Connection,
    tx: &Transaction<'_>,
    table: &Table,
    append: bool,
    copied_tasks: &mut HashSet<String>,
    report: &mut Report,
) -> Result<TableCheck, MigrateError> {
    let written = table.written(append);
    let names: Vec<&str> = written.iter().map(|(_, c, _)| *c).collect();
    let params: Vec<String> = (1..=written.len()).map(|i| format!("${i}")).collect();
    let conflict = match (table.name, append) {
        // The source's settings replace the target's (a fresh host may have written some).
        ("settings", false) => "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        _ => "ON CONFLICT DO NOTHING",
    };
    let insert = tx
        .prepare(&format!(
            "INSERT INTO {} ({}) VALUES ({}) {conflict} RETURNING {}",
            table.name,
            names.join(", "),
            params.join(", "),
            table.auto_id.unwrap_or(table.key)
        ))
        .await?;

    // Appending: the source's pending tasks in queue order go after the target's queue.
    let mut new_rank: HashMap<i64, i64> = HashMap::new();
    if append && table.name == "tasks" {
        let last: Option<i64> = tx
            .q1("SELECT max(rank) FROM tasks WHERE status = 'pending'", &[])
            .await?
            .try_get(0)?;
        let mut st = conn
            .prepare("SELECT seq FROM tasks WHERE status = 'pending' ORDER BY rank, seq")
            .map_err(src_err)?;
        let mut rows = st.query([]).map_err(src_err)?;
        let mut rank = last;
        while let Some(r) = rows.next().map_err(src_err)? {
            let r2 = rank_at_end(rank);
            rank = Some(r2);
            new_rank.insert(r.get(0).map_err(src_err)?, r2);
        }
    }

    // Read and write the source's rows, summing what is written. The source is read a page
    // at a time (rusqlite is synchronous), the page written before the next is read.
    let mut expected = Sum::default();
    let mut keys: HashSet<String> = HashSet::new();
    let mut kept = 0u64;
    let mut st = conn
        .prepare(&table.select(table.order_sqlite))
        .map_err(src_err)?;
    let mut it = st.query([]).map_err(src_err)?;
    let mut done = false;
    while !done {
        let mut page: Vec<Vec<Val>> = Vec::with_capacity(PAGE);
        while page.len() < PAGE {
            let Some(r) = it.next().map_err(src_err)? else {
                done = true;
                break;
            };
            let vals = table
                .cols
                .iter()
                .enumerate()
                .map(|(i, (c, k))| from_sqlite(r, i, *k, c))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| src_err(format!("{}: {e}", table.name)))?;
            page.push(vals);
        }
        let mut rows: Vec<Vec<Val>> = Vec::with_capacity(page.len());
        for mut row in page {
            if table.name == "result_images"
                && !copied_tasks.contains(row[0].text().unwrap_or_default())
            {
                continue;
            }
            if let Some(r) = (table.name == "tasks")
                .then(|| row[table.col("seq")].i64().and_then(|s| new_rank.get(&s)))
                .flatten()
            {
                row[table.col("rank")] = Val::I64(Some(*r));
                row[table.col("run_next")] = Val::I64(None);
                row[table.col("pinned")] = Val::Bool(Some(false));
            }
            rows.push(row);
        }
        // The page's inserts are sent together (tokio-postgres pipelines the queries issued
        // at once on one connection): one round trip's wait per page, answers in order.
        let insert = &insert;
        let written = &written;
        let answers = futures::future::try_join_all(rows.iter().map(|row| async move {
            let vals: Vec<&(dyn ToSql + Sync)> =
                written.iter().map(|(i, _, _)| row[*i].sql()).collect();
            tx.query_opt(insert, &vals).await
        }))
        .await?;
        for (row, answer) in rows.iter().zip(answers) {
            let Some(r) = answer else {
                kept += 1;
                continue;
            };
            let key = match table.auto_id {
                Some(_) if append => Val::I64(r.try_get(0)?).key(),
                _ => row[table.col(table.key)].key(),
            };
            if table.name == "tasks" {
                copied_tasks.insert(row[table.col("id")].text().unwrap_or_default().to_owned());
            }
            keys.insert(key);
            expected.add(row, written);
        }
    }
    if kept > 0 {
        report.kept_target.push((table.name, kept));
    }

    // What the target holds for the rows written.
    let mut actual = Sum::default();
    let key_at = table.col(table.auto_id.filter(|_| append).unwrap_or(table.key));
    let stream = tx
        .query_raw(&table.select(table.order_pg), std::iter::empty::<i32>())
        .await?;
    futures::pin_mut!(stream);
    while let Some(r) = stream.try_next().await? {
        let vals = table
            .cols
            .iter()
            .enumerate()
            .map(|(i, (_, k))| from_pg(&r, i, *k))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.contains(&vals[key_at].key()) {
            actual.add(&vals, &written);
        }
    }
    let (source_rows, source_sha256) = expected.hex();
    let (target_rows, target_sha256) = actual.hex();
    Ok(TableCheck {
        table: table.name,
        source_rows,
        target_rows,
        source_sha256,
        target_sha256,
    })
}

/// Streams one file into `result_blobs` (chunks of [`CHUNK`]); its length and sha256.
async fn put_file(
    tx: &Transaction<'_>,
    insert: &tokio_postgres::Statement,
    task_id: &str,
    name: &str,
    path: &Path,
) -> Result<(u64, String), MigrateError> {
    let mut f =
        std::fs::File::open(path).map_err(|e| src_err(format!("{}: {e}", path.display())))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut chunk: i32 = 0;
    let mut total = 0u64;
    loop {
        let n =
            read_full(&mut f, &mut buf).map_err(|e| src_err(format!("{}: {e}", path.display())))?;
        if n == 0 && chunk > 0 {
            break;
        }
        let data = &buf[..n];
        hash.update(data);
        tx.execute(insert, &[&task_id, &name, &chunk, &data])
            .await?;
        total += n as u64;
        chunk += 1;
        if n < CHUNK {
            break;
        }
    }
    Ok((total, hex(&hash.finalize())))
}

/// Reads until `buf` is full or the file ends; how many bytes.
fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The sha256 of a file, read again from disk a chunk at a time.
fn file_sha256(path: &Path) -> Result<String, MigrateError> {
    let mut f =
        std::fs::File::open(path).map_err(|e| src_err(format!("{}: {e}", path.display())))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n =
            read_full(&mut f, &mut buf).map_err(|e| src_err(format!("{}: {e}", path.display())))?;
        hash.update(&buf[..n]);
        if n < CHUNK {
            break;
        }
    }
    Ok(hex(&hash.finalize()))
}

/// The sha256 of a blob as the target holds it, its chunks streamed in order.
async fn blob_sha256(
    tx: &Transaction<'_>,
    task_id: &str,
    name: &str,
) -> Result<String, MigrateError> {
    let stream = tx
        .query_raw(
            "SELECT data FROM result_blobs WHERE task_id = $1 AND name = $2 ORDER BY chunk",
            [&task_id as &(dyn ToSql + Sync), &name],
        )
        .await?;
    futures::pin_mut!(stream);
    let mut hash = Sha256::new();
    while let Some(r) = stream.next().await.transpose()? {
        let data: &[u8] = r.try_get(0)?;
        hash.update(data);
    }
    Ok(hex(&hash.finalize()))
}

/// Copies the files the copied tasks' result rows name (and their thumbnails), then checks
/// each blob against its file.
async fn copy_blobs(
    source: &Source,
    tx: &Transaction<'_>,
    copied_tasks: &HashSet<String>,
    report: &mut Report,
) -> Result<(), MigrateError> {
    let insert = tx
        .prepare("INSERT INTO result_blobs (task_id, name, chunk, data) VALUES ($1, $2, $3, $4)")
        .await?;
    let mut files: Vec<(String, String)> = Vec::new();
    {
        let mut st = source
            .conn
            .prepare("SELECT task_id, file_name FROM result_images ORDER BY task_id, idx")
            .map_err(src_err)?;
        let mut rows = st.query([]).map_err(src_err)?;
        while let Some(r) = rows.next().map_err(src_err)? {
            let task: String = r.get(0).map_err(src_err)?;
            let file: String = r.get(1).map_err(src_err)?;
            if copied_tasks.contains(&task) {
                files.push((task, file));
            }
        }
    }
    let mut written: Vec<(String, String, PathBuf, String)> = Vec::new();
    for (task, file) in files {
        for (name, required) in [(file.clone(), true), (thumb_name(&file), false)] {
            let Some(path) = source.results.file_path(&task, &name) else {
                report.missing_files.push(format!("{task}/{name}"));
                continue;
            };
            if !path.is_file() {
                if required {
                    report.missing_files.push(format!("{task}/{name}"));
                }
                continue;
            }
            let (len, sha) = put_file(tx, &insert, &task, &name, &path).await?;
            report.blobs += 1;
            report.blob_bytes += len;
            written.push((task.clone(), name, path, sha));
        }
    }
    for (task, name, path, sha) in written {
        let on_disk = file_sha256(&path)?;
        let stored = blob_sha256(tx, &task, &name).await?;
        if on_disk != sha || stored != sha {
            report.blob_mismatches.push(format!("{task}/{name}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let a: Value =
            serde_json::from_str(r#"{"b": [1, {"z": 1, "a": "é\n"}], "a": null}"#).expect("json");
        let mut s = String::new();
        canon_json(&a, &mut s);
        assert_eq!(s, r#"{"a":null,"b":[1,{"a":"é\n","z":1}]}"#);
    }

    #[test]
    fn an_older_source_is_migrated_in_a_temporary_copy_and_left_as_it_was() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("queue.sqlite3");
        {
            // A queue at schema version 7 (before 0009/0010), one task in it.
            let c = Connection::open(&path).expect("open");
            for (i, (_, sql)) in crate::store::MIGRATIONS.iter().take(7).enumerate() {
                c.execute_batch(sql).expect("migration");
                c.pragma_update(None, "user_version", i as i64 + 1)
                    .expect("version");
            }
            c.execute(
                "INSERT INTO tasks (id, type, status, request, rank, created_at, updated_at) \
                 VALUES ('old-1', 'txt2img', 'pending', '{\"prompt\":\"x\"}', 0, 1, 1)",
                [],
            )
            .expect("insert");
        }
        let before = std::fs::read(&path).expect("read");
        let mtime = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime");
        let src = open_source(&path).expect("open the source");
        assert!(src.upgraded);
        let (id, fence): (String, Option<i64>) = src
            .conn
            .query_row("SELECT id, fence FROM tasks", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("the task, with the columns of the latest schema");
        assert_eq!((id.as_str(), fence), ("old-1", None));
        drop(src);
        assert_eq!(std::fs::read(&path).expect("read"), before, "source bytes");
        assert_eq!(
            std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .expect("mtime"),
            mtime
        );
        let v: i64 = Connection::open(&path)
            .expect("open")
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(v, 7, "the source keeps its schema");
    }

    #[test]
    fn a_newer_source_and_a_missing_one_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("queue.sqlite3");
        assert!(matches!(open_source(&path), Err(MigrateError::Usage(_))));
        {
            let mut c = Connection::open(&path).expect("open");
            crate::store::migrate(&mut c).expect("migrate");
            c.pragma_update(None, "user_version", 99).expect("version");
        }
        match open_source(&path) {
            Err(MigrateError::Refused(m)) => assert!(m.contains("newer than this program"), "{m}"),
            other => panic!("refused expected, got {:?}", other.map(|_| ())),
        }
    }
}
