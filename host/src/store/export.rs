//! Exports and zips read in pages, so an answer of any size is streamed with bounded memory:
//! the pending tasks in queue order by keyset `(rank, seq)`, full rows of selected ids within
//! a byte budget (init images and page snapshots count), and the result files of selected
//! ids (no request read at all). The statements over full rows are prepared per page, not
//! cached: a cached statement keeps its last row's buffers (an init image) alive.

use rusqlite::{Connection, OptionalExtension, params};
use scheduler_api::TaskStatus;

use super::StoreError;
use super::rows::{FULL_COLS, load_images, map_row};
use super::status;
use crate::model::cursor::PendingFrom;
use crate::model::{ImageRow, TaskRow};

/// The stored size of a row's large columns (the request with its images, the snapshot),
/// read in place.
fn size(r: &rusqlite::Row<'_>) -> usize {
    let len = |i: usize| match r.get_ref(i) {
        Ok(rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t)) => t.len(),
        _ => 0,
    };
    len(4) + len(5)
}

/// Reads rows until `limit` rows or `budget` bytes (at least one row).
fn take_budgeted(
    rows: &mut rusqlite::Rows<'_>,
    limit: usize,
    budget: usize,
) -> Result<Vec<TaskRow>, StoreError> {
    let mut out = Vec::new();
    let mut used = 0usize;
    while out.len() < limit {
        let Some(r) = rows.next()? else { break };
        used = used.saturating_add(size(r));
        out.push(map_row(r)?);
        if used >= budget {
            break;
        }
    }
    Ok(out)
}

/// Pending tasks in queue order, full requests included: at most `limit` rows and about
/// `budget` bytes of requests and snapshots (at least one row), from `from`. Served by the
/// `(status, rank)` index.
pub fn pending_page(
    conn: &Connection,
    from: PendingFrom,
    limit: usize,
    budget: usize,
) -> Result<Vec<TaskRow>, StoreError> {
    let cap = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt;
    let mut rows = match from {
        PendingFrom::Offset(offset) => {
            stmt = conn.prepare(&pending_page_sql(false))?;
            stmt.query(params![cap, offset])?
        }
        PendingFrom::After(rank, seq) => {
            stmt = conn.prepare(&pending_page_sql(true))?;
            stmt.query(params![cap, rank, seq])?
        }
    };
    take_budgeted(&mut rows, limit, budget)
}

/// The query of [`pending_page`]: the first page (`LIMIT ?1 OFFSET ?2`) or a later one
/// (after `(rank, seq) = (?2, ?3)`).
pub(super) fn pending_page_sql(after: bool) -> String {
    let pending = status::is(TaskStatus::Pending);
    if after {
        format!(
            "SELECT {} FROM tasks WHERE {pending} AND (rank, seq) > (?2, ?3) \
             ORDER BY rank, seq LIMIT ?1",
            *FULL_COLS
        )
    } else {
        format!(
            "SELECT {} FROM tasks WHERE {pending} ORDER BY rank, seq LIMIT ?1 OFFSET ?2",
            *FULL_COLS
        )
    }
}

/// Full rows (requests with their images, snapshots) of the first of `ids`, in that order,
/// within about `budget` bytes (at least one id is consumed); a task deleted since the
/// selection was resolved is skipped. Returns the rows and how many ids were consumed.
pub fn full_rows_page(
    conn: &Connection,
    ids: &[String],
    budget: usize,
) -> Result<(Vec<TaskRow>, usize), StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {} FROM tasks WHERE id = ?1", *FULL_COLS))?;
    let mut out = Vec::new();
    let mut used = 0usize;
    let mut consumed = 0;
    for id in ids {
        consumed += 1;
        let mut rows = stmt.query([id])?;
        if let Some(r) = rows.next()? {
            used = used.saturating_add(size(r));
            out.push(map_row(r)?);
        }
        if used >= budget {
            break;
        }
    }
    drop(stmt);
    load_images(conn, &mut out)?;
    Ok((out, consumed))
}

/// For each of `ids` still a task: its status and its result images (no request read).
pub fn result_files(
    conn: &Connection,
    ids: &[String],
) -> Result<Vec<(String, TaskStatus, Vec<ImageRow>)>, StoreError> {
    let mut task = conn.prepare_cached("SELECT status FROM tasks WHERE id = ?1")?;
    let mut images = conn.prepare_cached(
        "SELECT idx, file_name, infotext, format FROM result_images WHERE task_id = ?1 ORDER BY idx",
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(s) = task.query_row([id], |r| r.get::<_, String>(0)).optional()? else {
            continue;
        };
        let list = images
            .query_map([id], |r| {
                Ok(ImageRow {
                    index: r.get(0)?,
                    file_name: r.get(1)?,
                    infotext: r.get(2)?,
                    format: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        out.push((
            id.clone(),
            TaskStatus::parse(&s).unwrap_or(TaskStatus::Failed),
            list,
        ));
    }
    Ok(out)
}
