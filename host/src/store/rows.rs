//! Reading one task row: the columns of a listing row and of a full row, the lifecycle
//! columns a transition reads, and the ranks at the head and the tail of the queue.

use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension, Row};
use scheduler_api::{TaskStatus, TaskType};
use serde_json::{Map, Value};

use super::StoreError;
use super::status;
use crate::model::images;
use crate::model::{ImageRow, Lifecycle, TaskRow};

const COLS: &str = "id, type, status, name, {request}, {snapshot}, page_snapshot IS NOT NULL, \
    checkpoint, vae, callback_url, rank, force_run, bookmarked, attempts, backend, error, {result}, \
    created_at, updated_at, started_at, finished_at, run_next, next_run_at, seq, pinned, overtakes, \
    overtaken_at, group_id, fence, stop_requested";

/// Columns of a listing row: the request without its image fields (every field the image
/// walker knows, see [`images::sql_paths`]), no snapshot, no `info`.
pub(super) static LIST_COLS: LazyLock<String> = LazyLock::new(|| {
    let paths: Vec<String> = images::sql_paths()
        .iter()
        .map(|p| format!("'{p}'"))
        .collect();
    COLS.replace(
        "{request}",
        &format!("json_remove(request, {})", paths.join(", ")),
    )
    .replace("{snapshot}", "NULL")
    .replace("{result}", "NULL")
});

/// Columns of a full row.
pub(super) static FULL_COLS: LazyLock<String> = LazyLock::new(|| {
    COLS.replace("{request}", "request")
        .replace("{snapshot}", "page_snapshot")
        .replace("{result}", "result")
});

fn json_col(s: Option<String>) -> Option<Value> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}

pub(super) fn map_row(r: &Row<'_>) -> rusqlite::Result<TaskRow> {
    let t: String = r.get(1)?;
    let s: String = r.get(2)?;
    let request: String = r.get(4)?;
    Ok(TaskRow {
        id: r.get(0)?,
        seq: r.get(23)?,
        task_type: TaskType::parse(&t).unwrap_or(TaskType::Txt2img),
        life: Lifecycle {
            status: TaskStatus::parse(&s).unwrap_or(TaskStatus::Failed),
            attempts: r.get(13)?,
            backend: r.get(14)?,
            error: r.get(15)?,
            started_at: r.get(19)?,
            finished_at: r.get(20)?,
            run_next: r.get(21)?,
            force_run: r.get(11)?,
            next_run_at: r.get(22)?,
            fence: r.get(28)?,
            stop_requested: r.get(29)?,
        },
        name: r.get(3)?,
        request: serde_json::from_str::<Map<String, Value>>(&request).unwrap_or_default(),
        page_snapshot: json_col(r.get(5)?),
        has_page_snapshot: r.get(6)?,
        checkpoint: r.get(7)?,
        vae: r.get(8)?,
        callback_url: r.get(9)?,
        rank: r.get(10)?,
        pinned: r.get(24)?,
        overtakes: r.get(25)?,
        overtaken_at: r.get(26)?,
        bookmarked: r.get(12)?,
        info: json_col(r.get(16)?),
        created_at: r.get(17)?,
        updated_at: r.get(18)?,
        group_id: r.get(27)?,
        images: Vec::new(),
    })
}

pub(super) fn load_images(conn: &Connection, rows: &mut [TaskRow]) -> Result<(), StoreError> {
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

/// One task; `full` loads the request with its images, the page snapshot and `info`.
pub fn get_task(conn: &Connection, id: &str, full: bool) -> Result<Option<TaskRow>, StoreError> {
    let cols: &str = if full { &FULL_COLS } else { &LIST_COLS };
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

/// One task, or [`StoreError::NotFound`].
pub fn require(conn: &Connection, id: &str, full: bool) -> Result<TaskRow, StoreError> {
    get_task(conn, id, full)?.ok_or(StoreError::NotFound)
}

/// The smallest rank among pending tasks.
pub(super) fn first_pending_rank(tx: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(tx.query_row(
        &format!(
            "SELECT MIN(rank) FROM tasks WHERE {}",
            status::is(TaskStatus::Pending)
        ),
        [],
        |r| r.get(0),
    )?)
}

/// The largest rank among pending tasks (an index seek).
pub(super) fn last_rank(tx: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(tx.query_row(
        &format!(
            "SELECT MAX(rank) FROM tasks WHERE {}",
            status::is(TaskStatus::Pending)
        ),
        [],
        |r| r.get(0),
    )?)
}

/// The lifecycle of a task, its name and its callback URL.
pub(super) fn lifecycle(
    conn: &Connection,
    id: &str,
) -> Result<(Lifecycle, Option<String>, Option<String>), StoreError> {
    conn.query_row(
        "SELECT status, attempts, backend, error, started_at, finished_at, run_next, force_run, name, callback_url, \
         next_run_at, fence, stop_requested \
         FROM tasks WHERE id = ?1",
        [id],
        |r| {
            let s: String = r.get(0)?;
            Ok((
                Lifecycle {
                    status: TaskStatus::parse(&s).unwrap_or(TaskStatus::Failed),
                    attempts: r.get(1)?,
                    backend: r.get(2)?,
                    error: r.get(3)?,
                    started_at: r.get(4)?,
                    finished_at: r.get(5)?,
                    run_next: r.get(6)?,
                    force_run: r.get(7)?,
                    next_run_at: r.get(10)?,
                    fence: r.get(11)?,
                    stop_requested: r.get(12)?,
                },
                r.get(8)?,
                r.get(9)?,
            ))
        },
    )
    .optional()?
    .ok_or(StoreError::NotFound)
}
