//! Listings, positions, exports and counts; inserting tasks; changing their fields (request,
//! name, bookmark). Status is never written here: see [`super::transitions`].

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use scheduler_api::{HistoryFilter, TaskStatus};
use serde_json::{Map, Value};

use super::StoreError;
use super::rows::{FULL_COLS, LIST_COLS, last_rank, load_images, map_row, require};
use super::status;
use crate::model::rank::rank_at_end;
use crate::model::search::fts_query;
use crate::model::spec::{Lifted, merge_params};
use crate::model::transition::Event;
use crate::model::{Lifecycle, NewTask, TaskRow, now_ms};

/// Whether a task id exists.
pub fn task_exists(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row("SELECT 1 FROM tasks WHERE id = ?1", [id], |_| Ok(()))
        .optional()?
        .is_some())
}

// ---------------------------------------------------------------------------------------
// Inserts and idempotency

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

/// Inserts pending tasks at the end of the queue, in order (inside a transaction).
pub(super) fn insert_in(tx: &Transaction<'_>, tasks: &[NewTask]) -> Result<(), StoreError> {
    let now = now_ms();
    let mut rank = last_rank(tx)?;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO tasks (id, type, status, name, request, page_snapshot, checkpoint, vae, callback_url, \
         rank, bookmarked, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
    )?;
    for t in tasks {
        let r = rank_at_end(rank);
        rank = Some(r);
        let snapshot = match &t.page_snapshot {
            Some(v) => Some(serde_json::to_string(v)?),
            None => None,
        };
        stmt.execute(params![
            t.id,
            t.task_type.as_str(),
            Lifecycle::pending().status.as_str(),
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

/// Inserts a copy of a task (new id, pending, not bookmarked, `name`) at the end.
pub fn insert_copy(
    conn: &mut Connection,
    id: &str,
    new_id: &str,
    name: impl FnOnce(Option<&str>) -> Option<String>,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let task = require(&tx, id, true)?;
    insert_in(
        &tx,
        &[NewTask {
            id: new_id.to_owned(),
            task_type: task.task_type,
            name: name(task.name.as_deref()),
            request: task.request,
            page_snapshot: task.page_snapshot,
            checkpoint: task.checkpoint,
            vae: task.vae,
            callback_url: task.callback_url,
            bookmarked: false,
        }],
    )?;
    tx.commit()?;
    Ok(())
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
        &status::ACTIVE,
        &format!("{} DESC, rank, seq", status::is(TaskStatus::Running)),
        q,
        limit,
        offset,
    )
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
        HistoryFilter::All => status::FINISHED.clone(),
        HistoryFilter::Bookmarked => format!("{} AND bookmarked = 1", *status::FINISHED),
        HistoryFilter::Status(s) => status::is(s),
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
    let fts = q.and_then(fts_query);
    let matches = if fts.is_some() {
        "seq IN (SELECT rowid FROM tasks_fts WHERE tasks_fts MATCH ?3)"
    } else {
        "?3 IS NULL"
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {} FROM tasks WHERE {cond} AND {matches} ORDER BY {order} LIMIT ?1 OFFSET ?2",
        *LIST_COLS
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

/// The running tasks as `(id, backend)`, earliest started first: the one record of what
/// runs where.
pub fn running(conn: &Connection) -> Result<Vec<(String, Option<String>)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, backend FROM tasks WHERE {} ORDER BY started_at, seq",
        status::is(TaskStatus::Running)
    ))?;
    Ok(stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?)
}

/// Pending and running counts.
pub fn counts(conn: &Connection) -> Result<(i64, i64), StoreError> {
    Ok(conn.query_row(
        &format!(
            "SELECT COALESCE(SUM({}), 0), COALESCE(SUM({}), 0) FROM tasks",
            status::is(TaskStatus::Pending),
            status::is(TaskStatus::Running)
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// Number of tasks that run before this one (running tasks, then pending ones with a
/// smaller rank); `None` unless the task is pending.
pub fn position(conn: &Connection, task: &TaskRow) -> Result<Option<i64>, StoreError> {
    if task.status() != TaskStatus::Pending {
        return Ok(None);
    }
    Ok(Some(conn.query_row(
        &format!(
            "SELECT COUNT(*) FROM tasks WHERE {} OR ({} AND (rank < ?1 OR (rank = ?1 AND id < ?2)))",
            status::is(TaskStatus::Running),
            status::is(TaskStatus::Pending)
        ),
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
        "SELECT {} FROM tasks WHERE {} ORDER BY rank, seq LIMIT ?1 OFFSET ?2",
        *FULL_COLS,
        status::is(TaskStatus::Pending)
    ))?;
    Ok(stmt
        .query_map(params![limit, offset], map_row)?
        .collect::<Result<_, _>>()?)
}

/// Every `(task id, file name)` of stored images (for garbage collection of files).
pub fn all_image_files(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare("SELECT task_id, file_name FROM result_images")?;
    Ok(stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?)
}

// ---------------------------------------------------------------------------------------
// Fields

/// Fields of `PUT /task/{id}` after parsing.
#[derive(Debug, Clone, Default)]
pub struct TaskEdit {
    /// New name (`Some(None)` clears it).
    pub name: Option<Option<String>>,
    /// New checkpoint (`Some(None)` = whatever is loaded).
    pub checkpoint: Option<Option<String>>,
    /// Shallow patch of the request.
    pub params: Option<Map<String, Value>>,
}

/// Applies an edit to a pending task (the transition function refuses other states).
pub fn edit_task(conn: &mut Connection, id: &str, edit: TaskEdit) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    super::transitions::allow(&tx, id, &Event::Edit)?;
    let task = require(&tx, id, true)?;
    let mut request = task.request;
    let mut lifted = Lifted::default();
    if let Some(patch) = edit.params {
        lifted = merge_params(task.task_type, &mut request, patch)
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
