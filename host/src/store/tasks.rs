//! Inserting tasks; changing their fields (request, name, bookmark); positions.
//! Status is never written here: see [`super::transitions`]. Listings: [`super::listing`].

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};
use scheduler_api::TaskStatus;

use super::StoreError;
use super::rows::{last_rank, require};
use crate::model::rank::rank_at_end;
use crate::model::spec::{Lifted, merge_params};
use crate::model::transition::Event;
use crate::model::{Lifecycle, NewTask, TaskEdit, TaskRow};

/// Whether a task id exists.
pub fn task_exists(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM tasks WHERE lower(id) = lower(?1)",
            [id],
            |_| Ok(()),
        )
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

/// Inserts pending tasks at the end of the queue, in order, created at `now` (inside a
/// transaction).
pub(super) fn insert_in(tx: &Connection, tasks: &[NewTask], now: i64) -> Result<(), StoreError> {
    let mut rank = last_rank(tx)?;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO tasks (id, type, status, name, request, page_snapshot, checkpoint, vae, callback_url, \
         rank, bookmarked, created_at, updated_at, group_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13)",
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
            now,
            t.group_id
        ])?;
    }
    Ok(())
}

/// Appends tasks at the end of the queue, in order, in one transaction. With an
/// idempotency key, `answer` is stored with the tasks if the key is free; if it was taken
/// (by a request that got there first: the caller looked it up before), the stored answer
/// is returned and nothing is inserted.
pub fn insert_tasks(
    conn: &mut Connection,
    tasks: &[NewTask],
    idempotency: Option<(&str, &str)>,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let tx = conn.savepoint()?;
    if let Some((key, answer)) = idempotency {
        let taken = tx.execute(
            "INSERT INTO idempotency_keys (key, response, created_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (key) DO NOTHING",
            params![key, answer, now],
        )? == 0;
        if taken {
            return idempotent_answer(&tx, key);
        }
    }
    insert_in(&tx, tasks, now)?;
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

/// Inserts a copy of a task (new id, pending, not bookmarked, `name`, in no group) at the
/// end.
pub fn insert_copy(
    conn: &mut Connection,
    id: &str,
    new_id: &str,
    name: impl FnOnce(Option<&str>) -> Option<String>,
    now: i64,
) -> Result<(), StoreError> {
    let tx = conn.savepoint()?;
    insert_copy_in(&tx, id, new_id, name, None, now)?;
    tx.commit()?;
    Ok(())
}

/// The copy of [`insert_copy`], inside a transaction, in `group_id`.
pub(super) fn insert_copy_in(
    tx: &Connection,
    id: &str,
    new_id: &str,
    name: impl FnOnce(Option<&str>) -> Option<String>,
    group_id: Option<String>,
    now: i64,
) -> Result<(), StoreError> {
    let task = require(tx, id, true)?;
    insert_in(tx, &[NewTask::copy_of(task, new_id, name, group_id)], now)
}

// ---------------------------------------------------------------------------------------
// Reads

/// Number of tasks that run before this one in rank order (running tasks, then pending ones
/// with a smaller `(rank, seq)`); `None` unless the task is pending. The queue service
/// answers from the look-ahead window first; this is the count beyond it (an index range).
pub fn position(conn: &Connection, task: &TaskRow) -> Result<Option<i64>, StoreError> {
    if task.status() != TaskStatus::Pending {
        return Ok(None);
    }
    let c = super::listing::counts(conn)?;
    Ok(Some(
        c.running + super::listing::pending_before(conn, task.rank, task.seq)?,
    ))
}

/// For each task id: the image file names its row points at, or `None` when there is no
/// such task (the orphan sweep of the results folder asks in chunks).
pub fn image_files_of(
    conn: &Connection,
    ids: &[String],
) -> Result<Vec<Option<HashSet<String>>>, StoreError> {
    let mut exists = conn.prepare_cached("SELECT 1 FROM tasks WHERE id = ?1")?;
    let mut files =
        conn.prepare_cached("SELECT file_name FROM result_images WHERE task_id = ?1")?;
    ids.iter()
        .map(|id| {
            if exists.query_row([id], |_| Ok(())).optional()?.is_none() {
                return Ok(None);
            }
            let names = files
                .query_map([id], |r| r.get(0))?
                .collect::<Result<HashSet<String>, _>>()?;
            Ok(Some(names))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Fields

/// Applies an edit to a pending task (the transition function refuses other states).
pub fn edit_task(
    conn: &mut Connection,
    id: &str,
    edit: TaskEdit,
    now: i64,
) -> Result<(), StoreError> {
    let tx = conn.savepoint()?;
    super::transitions::allow(&tx, id, &Event::Edit, now)?;
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
    if let Some(contract) = &edit.contract {
        contract
            .check(
                task.task_type,
                &request,
                checkpoint.as_deref(),
                vae.as_deref(),
            )
            .map_err(StoreError::Violation)?;
    }
    tx.execute(
        "UPDATE tasks SET request = ?2, name = ?3, checkpoint = ?4, vae = ?5, updated_at = ?6 WHERE id = ?1",
        params![
            id,
            serde_json::to_string(&request)?,
            name,
            checkpoint,
            vae,
            now
        ],
    )?;
    tx.commit()?;
    Ok(())
}

/// Renames a task (any status).
pub fn rename(conn: &Connection, id: &str, name: Option<&str>, now: i64) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE tasks SET name = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, name, now],
    )?;
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// Sets or clears the bookmark (any status).
pub fn set_bookmark(conn: &Connection, id: &str, on: bool, now: i64) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE tasks SET bookmarked = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, on, now],
    )?;
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}
