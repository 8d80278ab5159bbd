//! Every query of the host, as plain functions over a connection. Callers run them through
//! [`super::Store::call`]. Multi-row changes happen in one transaction.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use scheduler_api::{Settings, TaskStatus, TaskType};
use serde_json::{Map, Value};

use super::StoreError;
use crate::queue::{self, MoveTarget, Recovery, RunEnd};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One stored result image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRow {
    /// 0-based index.
    pub index: u32,
    /// File name inside `<data-dir>/results/<task-id>/`.
    pub file_name: String,
    /// Its infotext.
    pub infotext: String,
    /// `png`, `jpg`, `webp` or `bin`.
    pub format: String,
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    /// Id.
    pub id: String,
    /// txt2img / img2img.
    pub task_type: TaskType,
    /// Status.
    pub status: TaskStatus,
    /// Name.
    pub name: Option<String>,
    /// The SD.Next request (in listings: without `init_images` and `mask`).
    pub request: Map<String, Value>,
    /// Page snapshot (only loaded by [`get_task`] with `full`).
    pub page_snapshot: Option<Value>,
    /// Whether a page snapshot is stored.
    pub has_page_snapshot: bool,
    /// Checkpoint (null = whatever is loaded).
    pub checkpoint: Option<String>,
    /// VAE.
    pub vae: Option<String>,
    /// Callback URL.
    pub callback_url: Option<String>,
    /// Order key.
    pub rank: i64,
    /// Runs despite a pause.
    pub force_run: bool,
    /// Bookmarked.
    pub bookmarked: bool,
    /// Counted attempts.
    pub attempts: u32,
    /// Backend that runs / ran it.
    pub backend: Option<String>,
    /// Error text.
    pub error: Option<String>,
    /// SD.Next `info` of the last run.
    pub info: Option<Value>,
    /// Created (ms).
    pub created_at: i64,
    /// Updated (ms).
    pub updated_at: i64,
    /// Started (ms).
    pub started_at: Option<i64>,
    /// Finished (ms).
    pub finished_at: Option<i64>,
    /// Stored images.
    pub images: Vec<ImageRow>,
}

/// A task to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    /// Id.
    pub id: String,
    /// txt2img / img2img.
    pub task_type: TaskType,
    /// Name.
    pub name: Option<String>,
    /// Request.
    pub request: Map<String, Value>,
    /// Page snapshot.
    pub page_snapshot: Option<Value>,
    /// Checkpoint.
    pub checkpoint: Option<String>,
    /// VAE.
    pub vae: Option<String>,
    /// Callback URL.
    pub callback_url: Option<String>,
    /// Bookmarked.
    pub bookmarked: bool,
}

const LIST_COLS: &str = "id, type, status, name, json_remove(request, '$.init_images', '$.mask'), \
    NULL, page_snapshot IS NOT NULL, checkpoint, vae, callback_url, rank, force_run, bookmarked, \
    attempts, backend, error, NULL, created_at, updated_at, started_at, finished_at";
const FULL_COLS: &str = "id, type, status, name, request, page_snapshot, page_snapshot IS NOT NULL, \
    checkpoint, vae, callback_url, rank, force_run, bookmarked, attempts, backend, error, result, \
    created_at, updated_at, started_at, finished_at";

fn json_col(s: Option<String>) -> Option<Value> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}

fn map_row(r: &Row<'_>) -> rusqlite::Result<TaskRow> {
    let t: String = r.get(1)?;
    let s: String = r.get(2)?;
    let request: String = r.get(4)?;
    Ok(TaskRow {
        id: r.get(0)?,
        task_type: TaskType::parse(&t).unwrap_or(TaskType::Txt2img),
        status: TaskStatus::parse(&s).unwrap_or(TaskStatus::Failed),
        name: r.get(3)?,
        request: serde_json::from_str::<Map<String, Value>>(&request).unwrap_or_default(),
        page_snapshot: json_col(r.get(5)?),
        has_page_snapshot: r.get(6)?,
        checkpoint: r.get(7)?,
        vae: r.get(8)?,
        callback_url: r.get(9)?,
        rank: r.get(10)?,
        force_run: r.get(11)?,
        bookmarked: r.get(12)?,
        attempts: r.get(13)?,
        backend: r.get(14)?,
        error: r.get(15)?,
        info: json_col(r.get(16)?),
        created_at: r.get(17)?,
        updated_at: r.get(18)?,
        started_at: r.get(19)?,
        finished_at: r.get(20)?,
        images: Vec::new(),
    })
}

fn load_images(conn: &Connection, rows: &mut [TaskRow]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT idx, file_name, infotext, format FROM result_images WHERE task_id = ?1 ORDER BY idx",
    )?;
    for row in rows.iter_mut() {
        row.images = stmt
            .query_map([&row.id], |r| {
                Ok(ImageRow {
                    index: r.get(0)?,
                    file_name: r.get(1)?,
                    infotext: r.get(2)?,
                    format: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

/// One task; `full` loads the request with its images and the page snapshot.
pub fn get_task(conn: &Connection, id: &str, full: bool) -> Result<Option<TaskRow>, StoreError> {
    let cols = if full { FULL_COLS } else { LIST_COLS };
    let row = conn
        .query_row(
            &format!("SELECT {cols} FROM tasks WHERE id = ?1"),
            [id],
            map_row,
        )
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let mut rows = [row];
    load_images(conn, &mut rows)?;
    let [row] = rows;
    Ok(Some(row))
}

fn require(conn: &Connection, id: &str) -> Result<TaskRow, StoreError> {
    get_task(conn, id, false)?.ok_or(StoreError::NotFound)
}

fn first_pending_rank(tx: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(tx.query_row(
        "SELECT MIN(rank) FROM tasks WHERE status = 'pending'",
        [],
        |r| r.get(0),
    )?)
}

fn last_rank(tx: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(tx.query_row("SELECT MAX(rank) FROM tasks", [], |r| r.get(0))?)
}

// ---------------------------------------------------------------------------------------
// Settings

const SETTINGS_KEY: &str = "settings";
const PAUSED_KEY: &str = "paused";

/// The settings (defaults where never written).
pub fn load_settings(conn: &Connection) -> Result<Settings, StoreError> {
    let v: Option<String> = conn
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            [SETTINGS_KEY],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

/// Writes the settings.
pub fn save_settings(conn: &Connection, s: &Settings) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![SETTINGS_KEY, serde_json::to_string(s)?],
    )?;
    Ok(())
}

/// Whether the queue is paused (persisted).
pub fn is_paused(conn: &Connection) -> Result<bool, StoreError> {
    let v: Option<String> = conn
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            [PAUSED_KEY],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.as_deref() == Some("true"))
}

/// Persists the pause flag.
pub fn set_paused(conn: &Connection, paused: bool) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![PAUSED_KEY, if paused { "true" } else { "false" }],
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Enqueue, import, idempotency

/// The stored answer for an idempotency key.
pub fn idempotent_answer(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT response FROM idempotency_keys WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .optional()?)
}

fn insert_in(tx: &Transaction<'_>, tasks: &[NewTask]) -> Result<(), StoreError> {
    let now = now_ms();
    let mut rank = last_rank(tx)?;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO tasks (id, type, status, name, request, page_snapshot, checkpoint, vae, callback_url, \
         rank, bookmarked, created_at, updated_at) VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
    )?;
    for t in tasks {
        let r = queue::rank_at_end(rank);
        rank = Some(r);
        let snapshot = match &t.page_snapshot {
            Some(v) => Some(serde_json::to_string(v)?),
            None => None,
        };
        stmt.execute(params![
            t.id,
            t.task_type.as_str(),
            t.name,
            serde_json::to_string(&t.request)?,
            snapshot,
            t.checkpoint,
            t.vae,
            t.callback_url,
            r,
            t.bookmarked,
            now
        ])?;
    }
    Ok(())
}

/// Appends tasks at the end of the queue, in order, in one transaction. With an
/// idempotency key: if the key is known its stored answer is returned and nothing is
/// inserted; otherwise `answer` is stored with the tasks.
pub fn insert_tasks(
    conn: &mut Connection,
    tasks: &[NewTask],
    idempotency: Option<(&str, &str)>,
) -> Result<Option<String>, StoreError> {
    let tx = conn.transaction()?;
    if let Some((key, answer)) = idempotency {
        if let Some(prev) = idempotent_answer(&tx, key)? {
            return Ok(Some(prev));
        }
        tx.execute(
            "INSERT INTO idempotency_keys (key, response, created_at) VALUES (?1, ?2, ?3)",
            params![key, answer, now_ms()],
        )?;
    }
    insert_in(&tx, tasks)?;
    tx.commit()?;
    Ok(None)
}

/// Forgets idempotency keys older than `before_ms`.
pub fn prune_idempotency(conn: &Connection, before_ms: i64) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM idempotency_keys WHERE created_at < ?1",
        [before_ms],
    )?)
}

/// Whether a task id exists.
pub fn task_exists(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row("SELECT 1 FROM tasks WHERE id = ?1", [id], |_| Ok(()))
        .optional()?
        .is_some())
}

// ---------------------------------------------------------------------------------------
// Listings

/// Running tasks first, then pending ones by rank; optional full-text filter.
pub fn list_queue(
    conn: &Connection,
    q: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<TaskRow>, i64), StoreError> {
    page(
        conn,
        "status IN ('running', 'pending')",
        "status = 'running' DESC, rank, seq",
        q,
        limit,
        offset,
    )
}

/// One page of the tasks matching `cond` (plus the optional full-text query `q`) in
/// `order`, with the number of all matches.
fn page(
    conn: &Connection,
    cond: &str,
    order: &str,
    q: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<TaskRow>, i64), StoreError> {
    let fts = q.and_then(queue::fts_query);
    let matches = if fts.is_some() {
        "seq IN (SELECT rowid FROM tasks_fts WHERE tasks_fts MATCH ?3)"
    } else {
        "?3 IS NULL"
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {LIST_COLS} FROM tasks WHERE {cond} AND {matches} ORDER BY {order} LIMIT ?1 OFFSET ?2"
    ))?;
    let mut rows: Vec<TaskRow> = stmt
        .query_map(params![limit, offset, fts], map_row)?
        .collect::<Result<_, _>>()?;
    load_images(conn, &mut rows)?;
    let total: i64 = conn.query_row(
        &format!(
            "SELECT COUNT(*) FROM tasks WHERE {cond} AND {}",
            matches.replace("?3", "?1")
        ),
        params![fts],
        |r| r.get(0),
    )?;
    Ok((rows, total))
}

/// Ids of the running tasks.
pub fn running_ids(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT id FROM tasks WHERE status = 'running' ORDER BY started_at")?;
    Ok(stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// Pending and running counts.
pub fn counts(conn: &Connection) -> Result<(i64, i64), StoreError> {
    Ok(conn.query_row(
        "SELECT COALESCE(SUM(status = 'pending'), 0), COALESCE(SUM(status = 'running'), 0) FROM tasks",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// History filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryFilter {
    /// Every finished task.
    All,
    /// Bookmarked finished tasks.
    Bookmarked,
    /// One finished status.
    Status(TaskStatus),
}

/// Finished tasks, newest first, with the total for the same filter.
pub fn list_history(
    conn: &Connection,
    filter: HistoryFilter,
    q: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<TaskRow>, i64), StoreError> {
    let cond = match filter {
        HistoryFilter::All => "status IN ('done', 'failed', 'interrupted')".to_owned(),
        HistoryFilter::Bookmarked => {
            "status IN ('done', 'failed', 'interrupted') AND bookmarked = 1".to_owned()
        }
        HistoryFilter::Status(s) => format!("status = '{}'", s.as_str()),
    };
    page(
        conn,
        &cond,
        "finished_at DESC, started_at DESC, seq DESC",
        q,
        limit,
        offset,
    )
}

/// Number of tasks that run before this one (running tasks, then pending ones with a
/// smaller rank); `None` unless the task is pending.
pub fn position(conn: &Connection, task: &TaskRow) -> Result<Option<i64>, StoreError> {
    if task.status != TaskStatus::Pending {
        return Ok(None);
    }
    Ok(Some(conn.query_row(
        "SELECT COUNT(*) FROM tasks WHERE status = 'running' OR (status = 'pending' AND (rank < ?1 OR (rank = ?1 AND id < ?2)))",
        params![task.rank, task.id],
        |r| r.get(0),
    )?))
}

/// Pending tasks for export, in queue order, full requests included.
pub fn export_pending(
    conn: &Connection,
    limit: i64,
    offset: i64,
) -> Result<Vec<TaskRow>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {FULL_COLS} FROM tasks WHERE status = 'pending' ORDER BY rank, seq LIMIT ?1 OFFSET ?2"
    ))?;
    Ok(stmt
        .query_map(params![limit, offset], map_row)?
        .collect::<Result<_, _>>()?)
}

// ---------------------------------------------------------------------------------------
// Edits

/// Fields of `PUT /task/{id}` after validation.
#[derive(Debug, Clone, Default)]
pub struct TaskEdit {
    /// New name (`Some(None)` clears it).
    pub name: Option<Option<String>>,
    /// New checkpoint (`Some(None)` = whatever is loaded).
    pub checkpoint: Option<Option<String>>,
    /// Shallow patch of the request.
    pub params: Option<Map<String, Value>>,
}

/// Applies an edit to a pending task (409 otherwise).
pub fn edit_task(conn: &mut Connection, id: &str, edit: TaskEdit) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let task = get_task(&tx, id, true)?.ok_or(StoreError::NotFound)?;
    if !queue::can_edit(task.status) {
        return Err(StoreError::Conflict(format!(
            "Task is {}",
            task.status.as_str()
        )));
    }
    let mut request = task.request;
    let mut lifted = queue::Lifted::default();
    if let Some(patch) = edit.params {
        lifted = queue::merge_params(task.task_type, &mut request, patch)
            .map_err(|e| StoreError::Invalid(format!("invalid params: {e}")))?;
    }
    let name = edit.name.unwrap_or(task.name);
    let checkpoint = edit
        .checkpoint
        .or(lifted.checkpoint.map(Some))
        .unwrap_or(task.checkpoint);
    let vae = lifted.vae.or(task.vae);
    tx.execute(
        "UPDATE tasks SET request = ?2, name = ?3, checkpoint = ?4, vae = ?5, updated_at = ?6 WHERE id = ?1",
        params![
            id,
            serde_json::to_string(&request)?,
            name,
            checkpoint,
            vae,
            now_ms()
        ],
    )?;
    tx.commit()?;
    Ok(())
}

/// Renames a task (any status).
pub fn rename(conn: &Connection, id: &str, name: Option<&str>) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE tasks SET name = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, name, now_ms()],
    )?;
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// Sets or clears the bookmark (any status).
pub fn set_bookmark(conn: &Connection, id: &str, on: bool) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE tasks SET bookmarked = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, on, now_ms()],
    )?;
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// What a delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// The row is gone; these were its status and backend-independent image files.
    Removed(TaskStatus),
    /// The task is running: the caller must interrupt it.
    Running {
        /// Backend that runs it.
        backend: Option<String>,
    },
}

/// Deletes a pending or finished task (with its image rows); reports a running one.
pub fn delete_task(conn: &Connection, id: &str) -> Result<Deleted, StoreError> {
    let task = require(conn, id)?;
    if task.status == TaskStatus::Running {
        return Ok(Deleted::Running {
            backend: task.backend,
        });
    }
    conn.execute("DELETE FROM tasks WHERE id = ?1", [id])?;
    Ok(Deleted::Removed(task.status))
}

/// Deletes non-bookmarked pending tasks; returns their ids.
pub fn clear_queue(conn: &mut Connection) -> Result<Vec<String>, StoreError> {
    let tx = conn.transaction()?;
    let ids: Vec<String> = tx
        .prepare("SELECT id FROM tasks WHERE status = 'pending' AND bookmarked = 0")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    tx.execute(
        "DELETE FROM tasks WHERE status = 'pending' AND bookmarked = 0",
        [],
    )?;
    tx.commit()?;
    Ok(ids)
}

/// Deletes non-bookmarked finished tasks (finished before `before_ms` when given); returns
/// their ids so the caller removes their files.
pub fn clear_history(
    conn: &mut Connection,
    before_ms: Option<i64>,
) -> Result<Vec<String>, StoreError> {
    let tx = conn.transaction()?;
    let cond = "status IN ('done', 'failed', 'interrupted') AND bookmarked = 0 \
                AND (?1 IS NULL OR COALESCE(finished_at, updated_at) < ?1)";
    let ids: Vec<String> = tx
        .prepare(&format!("SELECT id FROM tasks WHERE {cond}"))?
        .query_map([before_ms], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    tx.execute(&format!("DELETE FROM tasks WHERE {cond}"), [before_ms])?;
    tx.commit()?;
    Ok(ids)
}

fn renumber_pending(tx: &Connection) -> Result<(), StoreError> {
    let ids: Vec<String> = tx
        .prepare("SELECT id FROM tasks WHERE status = 'pending' ORDER BY rank, seq")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut stmt = tx.prepare("UPDATE tasks SET rank = ?2 WHERE id = ?1")?;
    for (i, id) in ids.iter().enumerate() {
        stmt.execute(params![id, (i as i64) * queue::RANK_GAP])?;
    }
    Ok(())
}

/// The rank just before pending task `over` (excluding `moving`), renumbering if needed.
fn rank_before(tx: &Connection, over: &str, moving: &str) -> Result<i64, StoreError> {
    for _ in 0..2 {
        let over_rank: i64 =
            tx.query_row("SELECT rank FROM tasks WHERE id = ?1", [over], |r| r.get(0))?;
        let before: Option<i64> = tx.query_row(
            "SELECT MAX(rank) FROM tasks WHERE status = 'pending' AND rank < ?1 AND id != ?2",
            params![over_rank, moving],
            |r| r.get(0),
        )?;
        if let Some(r) = queue::rank_between(before, over_rank) {
            return Ok(r);
        }
        renumber_pending(tx)?;
    }
    Err(StoreError::Conflict(
        "could not find a place in the queue".into(),
    ))
}

/// Moves a pending task to the top, the bottom, or just before another pending task.
pub fn move_task(conn: &mut Connection, id: &str, target: &MoveTarget) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let task = require(&tx, id)?;
    if task.status != TaskStatus::Pending {
        return Err(StoreError::Conflict(format!(
            "Task is {}",
            task.status.as_str()
        )));
    }
    let rank = match target {
        MoveTarget::Top => queue::rank_at_head(first_pending_rank(&tx)?),
        MoveTarget::Bottom => queue::rank_at_end(last_rank(&tx)?),
        MoveTarget::Before(over) if over == id => return Ok(()),
        MoveTarget::Before(over) => {
            let o = require(&tx, over)?;
            if o.status != TaskStatus::Pending {
                return Err(StoreError::Conflict(format!(
                    "Task {over} is {}",
                    o.status.as_str()
                )));
            }
            rank_before(&tx, over, id)?
        }
    };
    tx.execute(
        "UPDATE tasks SET rank = ?2, run_next = NULL, updated_at = ?3 WHERE id = ?1",
        params![id, rank, now_ms()],
    )?;
    tx.commit()?;
    Ok(())
}

/// "Run now": the task joins the run-next group (after tasks already in it, before every
/// other pending task). `force` lets it run although the queue is paused.
pub fn run_now(conn: &mut Connection, id: &str, force: bool) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let task = require(&tx, id)?;
    if task.status != TaskStatus::Pending {
        return Err(StoreError::Conflict(format!(
            "Task is {}",
            task.status.as_str()
        )));
    }
    let group_last: Option<(String, i64, i64)> = tx
        .query_row(
            "SELECT id, rank, run_next FROM tasks WHERE status = 'pending' AND run_next IS NOT NULL AND id != ?1 \
             ORDER BY run_next DESC LIMIT 1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let (rank, seq) = match group_last {
        None => (queue::rank_at_head(first_pending_rank(&tx)?), 1),
        Some((last_id, last_rank, last_seq)) => {
            let next: Option<(String, i64)> = tx
                .query_row(
                    "SELECT id, rank FROM tasks WHERE status = 'pending' AND rank > ?1 AND id != ?2 \
                     ORDER BY rank, seq LIMIT 1",
                    params![last_rank, id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let rank = match next {
                None => queue::rank_at_end(Some(last_rank)),
                Some((next_id, _)) => {
                    let _ = last_id;
                    rank_before(&tx, &next_id, id)?
                }
            };
            (rank, last_seq + 1)
        }
    };
    tx.execute(
        "UPDATE tasks SET rank = ?2, run_next = ?3, force_run = ?4, updated_at = ?5 WHERE id = ?1",
        params![id, rank, seq, force || task.force_run, now_ms()],
    )?;
    tx.commit()?;
    Ok(())
}

/// Puts a copy of a task (new id, pending, not bookmarked, `Copy of <name>`) at the end.
pub fn requeue_copy(conn: &mut Connection, id: &str) -> Result<String, StoreError> {
    let tx = conn.transaction()?;
    let task = get_task(&tx, id, true)?.ok_or(StoreError::NotFound)?;
    let new_id = uuid::Uuid::new_v4().to_string();
    insert_in(
        &tx,
        &[NewTask {
            id: new_id.clone(),
            task_type: task.task_type,
            name: queue::copy_name(task.name.as_deref()),
            request: task.request,
            page_snapshot: task.page_snapshot,
            checkpoint: task.checkpoint,
            vae: task.vae,
            callback_url: task.callback_url,
            bookmarked: false,
        }],
    )?;
    tx.commit()?;
    Ok(new_id)
}

/// Turns every failed task back into a pending one at the end (oldest failure first),
/// dropping its partial images; returns their ids (the caller removes the files).
pub fn requeue_failed(conn: &mut Connection) -> Result<Vec<String>, StoreError> {
    let tx = conn.transaction()?;
    let ids: Vec<String> = tx
        .prepare("SELECT id FROM tasks WHERE status = 'failed' ORDER BY finished_at, seq")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut rank = last_rank(&tx)?;
    let now = now_ms();
    for id in &ids {
        let r = queue::rank_at_end(rank);
        rank = Some(r);
        tx.execute("DELETE FROM result_images WHERE task_id = ?1", [id])?;
        tx.execute(
            "UPDATE tasks SET status = 'pending', rank = ?2, attempts = 0, error = NULL, result = NULL, \
             backend = NULL, started_at = NULL, finished_at = NULL, run_next = NULL, force_run = 0, updated_at = ?3 WHERE id = ?1",
            params![id, r, now],
        )?;
    }
    tx.commit()?;
    Ok(ids)
}

// ---------------------------------------------------------------------------------------
// Worker side

/// What the claimer thinks of a pending task's checkpoint on its backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eligibility {
    /// This backend can run it.
    Yes,
    /// Another backend may run it: skip.
    Skip,
}

/// Atomically claims the first pending task (by rank) this backend can run: writes
/// `running`, the backend and a lease. While paused (the persisted flag, read in the same
/// transaction, so a pause that was answered is always seen), only `force_run` tasks are
/// claimed.
pub fn claim_next(
    conn: &mut Connection,
    backend: &str,
    lease_ms: i64,
    mut eligible: impl FnMut(Option<&str>) -> Eligibility,
) -> Result<Option<TaskRow>, StoreError> {
    let tx = conn.transaction()?;
    let paused = is_paused(&tx)?;
    let candidates: Vec<(String, Option<String>)> = tx
        .prepare_cached(
            "SELECT id, checkpoint FROM tasks WHERE status = 'pending' AND (?1 = 0 OR force_run = 1) \
             ORDER BY rank, seq LIMIT 500",
        )?
        .query_map([paused], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let Some((id, _)) = candidates
        .into_iter()
        .find(|(_, ck)| eligible(ck.as_deref()) == Eligibility::Yes)
    else {
        return Ok(None);
    };
    let now = now_ms();
    tx.execute(
        "UPDATE tasks SET status = 'running', backend = ?2, lease_until = ?3, started_at = ?4, \
         updated_at = ?4, run_next = NULL, force_run = 0, error = NULL WHERE id = ?1",
        params![id, backend, now + lease_ms, now],
    )?;
    let task = get_task(&tx, &id, true)?.ok_or(StoreError::NotFound)?;
    tx.commit()?;
    Ok(Some(task))
}

/// Extends the lease of a running task.
pub fn renew_lease(conn: &Connection, id: &str, until_ms: i64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE tasks SET lease_until = ?2 WHERE id = ?1 AND status = 'running'",
        params![id, until_ms],
    )?;
    Ok(())
}

/// Puts a running task back at the head of the queue without counting an attempt
/// (backend outage, backend not ready, graceful shutdown).
pub fn release_to_head(conn: &mut Connection, id: &str) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let head = queue::rank_at_head(first_pending_rank(&tx)?);
    tx.execute(
        "UPDATE tasks SET status = 'pending', rank = ?2, backend = NULL, lease_until = NULL, \
         started_at = NULL, updated_at = ?3 WHERE id = ?1 AND status = 'running'",
        params![id, head, now_ms()],
    )?;
    tx.commit()?;
    Ok(())
}

/// A finished run to record.
#[derive(Debug, Clone)]
pub struct Finish {
    /// How it ended.
    pub end: RunEnd,
    /// Images already written (and fsynced) to disk.
    pub images: Vec<ImageRow>,
    /// SD.Next `info`.
    pub info: Option<Value>,
    /// Whether a failed task goes back to the queue.
    pub auto_requeue: bool,
    /// Max attempts (for the requeue bound).
    pub max_attempts: u32,
    /// When the run ended (ms): the generation request returned, not when the files were
    /// written, so history order follows the order tasks really ended.
    pub ended_at: i64,
}

/// What [`finish_task`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// Final status (pending when auto-requeued).
    pub status: TaskStatus,
    /// Name, for events.
    pub name: Option<String>,
    /// Whether a callback delivery was queued.
    pub callback_queued: bool,
    /// Whether the written files must be removed (the task went back to the queue).
    pub drop_files: bool,
}

/// Records the end of a run in one transaction: status, images, error, attempt count, the
/// callback outbox row, and an automatic requeue when allowed.
pub fn finish_task(conn: &mut Connection, id: &str, f: Finish) -> Result<Finished, StoreError> {
    let tx = conn.transaction()?;
    let task = get_task(&tx, id, false)?.ok_or(StoreError::NotFound)?;
    let now = now_ms();
    let error = match &f.end {
        RunEnd::Failed(e) => Some(e.clone()),
        _ => None,
    };
    let attempts = if matches!(f.end, RunEnd::Failed(_)) {
        task.attempts.saturating_add(1)
    } else {
        task.attempts
    };
    let requeue = matches!(f.end, RunEnd::Failed(_))
        && queue::auto_requeue(f.auto_requeue, attempts, f.max_attempts);
    tx.execute("DELETE FROM result_images WHERE task_id = ?1", [id])?;
    // A task that goes back to the queue keeps no partial images (the caller removes them).
    if !requeue {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO result_images (task_id, idx, file_name, infotext, format) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for img in &f.images {
            stmt.execute(params![
                id,
                img.index,
                img.file_name,
                img.infotext,
                img.format
            ])?;
        }
    }
    let status = if requeue {
        TaskStatus::Pending
    } else {
        f.end.status()
    };
    let rank = if requeue {
        queue::rank_at_end(last_rank(&tx)?)
    } else {
        task.rank
    };
    tx.execute(
        "UPDATE tasks SET status = ?2, error = ?3, attempts = ?4, result = ?5, finished_at = ?6, \
         updated_at = ?8, lease_until = NULL, rank = ?7 WHERE id = ?1",
        params![
            id,
            status.as_str(),
            error,
            attempts,
            f.info.as_ref().map(|v| v.to_string()),
            if requeue { None } else { Some(f.ended_at) },
            rank,
            now
        ],
    )?;
    let mut callback_queued = false;
    if let (Some(url), false) = (&task.callback_url, requeue) {
        let files: Vec<(String, String)> = f
            .images
            .iter()
            .map(|i| {
                (
                    format!("{id}/{}", i.file_name),
                    crate::results::content_type(&i.format).to_owned(),
                )
            })
            .collect();
        tx.execute(
            "INSERT INTO callback_outbox (delivery_id, task_id, url, status, files, next_attempt_at, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![
                uuid::Uuid::new_v4().to_string(),
                id,
                url,
                status.as_str(),
                serde_json::to_string(&files)?,
                now
            ],
        )?;
        callback_queued = true;
    }
    tx.commit()?;
    Ok(Finished {
        status,
        name: task.name,
        callback_queued,
        drop_files: requeue,
    })
}

/// Start-up crash recovery: every `running` task goes back to the head (attempts + 1), or
/// fails after `max_attempts`. Returns `(id, new status)` pairs.
pub fn recover_running(
    conn: &mut Connection,
    max_attempts: u32,
) -> Result<Vec<(String, TaskStatus)>, StoreError> {
    let tx = conn.transaction()?;
    let rows: Vec<(String, u32)> = tx
        .prepare(
            "SELECT id, attempts FROM tasks WHERE status = 'running' ORDER BY started_at DESC",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let now = now_ms();
    let mut out = Vec::new();
    for (id, attempts) in rows {
        match queue::recover_running(attempts, max_attempts) {
            Recovery::Requeue { attempts } => {
                let head = queue::rank_at_head(first_pending_rank(&tx)?);
                tx.execute(
                    "UPDATE tasks SET status = 'pending', rank = ?2, attempts = ?3, backend = NULL, \
                     lease_until = NULL, started_at = NULL, updated_at = ?4 WHERE id = ?1",
                    params![id, head, attempts, now],
                )?;
                out.push((id, TaskStatus::Pending));
            }
            Recovery::Fail { attempts, reason } => {
                tx.execute(
                    "UPDATE tasks SET status = 'failed', attempts = ?2, error = ?3, lease_until = NULL, \
                     finished_at = ?4, updated_at = ?4 WHERE id = ?1",
                    params![id, attempts, reason, now],
                )?;
                out.push((id, TaskStatus::Failed));
            }
        }
    }
    tx.commit()?;
    Ok(out)
}

/// Every `(task id, file name)` of stored images (for garbage collection of files).
pub fn all_image_files(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare("SELECT task_id, file_name FROM result_images")?;
    Ok(stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?)
}

// ---------------------------------------------------------------------------------------
// Events

/// Keeps this many stored events.
pub const EVENTS_KEPT: i64 = 2000;

/// Stores events (name, data) and returns their ids; prunes old ones.
pub fn insert_events(
    conn: &mut Connection,
    events: &[(String, String)],
) -> Result<Vec<u64>, StoreError> {
    let tx = conn.transaction()?;
    let now = now_ms();
    let mut ids = Vec::with_capacity(events.len());
    {
        let mut stmt =
            tx.prepare_cached("INSERT INTO events (name, data, created_at) VALUES (?1, ?2, ?3)")?;
        for (name, data) in events {
            stmt.execute(params![name, data, now])?;
            ids.push(tx.last_insert_rowid() as u64);
        }
    }
    // Prune each time the counter crosses a multiple of 100.
    if let (Some(first), Some(last)) = (ids.first(), ids.last())
        && (first.saturating_sub(1) / 100 != last / 100)
    {
        tx.execute(
            "DELETE FROM events WHERE id <= ?1",
            [*last as i64 - EVENTS_KEPT],
        )?;
    }
    tx.commit()?;
    Ok(ids)
}

/// The oldest and newest stored event ids.
pub fn event_bounds(conn: &Connection) -> Result<(Option<u64>, Option<u64>), StoreError> {
    let (a, b): (Option<i64>, Option<i64>) =
        conn.query_row("SELECT MIN(id), MAX(id) FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    Ok((a.map(|v| v as u64), b.map(|v| v as u64)))
}

/// The last id the AUTOINCREMENT counter handed out (0 when none).
pub fn last_event_id(conn: &Connection) -> Result<u64, StoreError> {
    let v: Option<i64> = conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.unwrap_or(0).max(0) as u64)
}

/// Stored events after `after`, oldest first.
pub fn events_after(
    conn: &Connection,
    after: u64,
) -> Result<Vec<(u64, String, String)>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT id, name, data FROM events WHERE id > ?1 ORDER BY id LIMIT 5000")?;
    Ok(stmt
        .query_map([after as i64], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?)
}

// ---------------------------------------------------------------------------------------
// Callback outbox

/// A delivery waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Row id.
    pub id: i64,
    /// Stable delivery id (header).
    pub delivery_id: String,
    /// Task.
    pub task_id: String,
    /// Target.
    pub url: String,
    /// Final status.
    pub status: String,
    /// `(path relative to results dir, content type)`.
    pub files: Vec<(String, String)>,
    /// Tries so far.
    pub attempts: u32,
    /// First queued (ms).
    pub created_at: i64,
}

/// Deliveries due at `now`.
pub fn due_deliveries(conn: &Connection, now: i64) -> Result<Vec<Delivery>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, delivery_id, task_id, url, status, files, attempts, created_at FROM callback_outbox \
         WHERE next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT 32",
    )?;
    let rows = stmt
        .query_map([now], |r| {
            let files: String = r.get(5)?;
            Ok(Delivery {
                id: r.get(0)?,
                delivery_id: r.get(1)?,
                task_id: r.get(2)?,
                url: r.get(3)?,
                status: r.get(4)?,
                files: serde_json::from_str(&files).unwrap_or_default(),
                attempts: r.get(6)?,
                created_at: r.get(7)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// When the next delivery is due.
pub fn next_delivery_at(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn.query_row(
        "SELECT MIN(next_attempt_at) FROM callback_outbox",
        [],
        |r| r.get(0),
    )?)
}

/// Removes a delivered (or abandoned) delivery.
pub fn delivery_done(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.execute("DELETE FROM callback_outbox WHERE id = ?1", [id])?;
    Ok(())
}

/// Schedules another try.
pub fn delivery_retry(
    conn: &Connection,
    id: i64,
    next_at: i64,
    error: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE callback_outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
        params![id, next_at, error],
    )?;
    Ok(())
}
