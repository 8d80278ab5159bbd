//! The callback outbox: one row per delivery due, written in the transaction that finishes
//! the task, deleted once delivered or abandoned.

use rusqlite::{Connection, params};
use scheduler_api::TaskStatus;

use super::StoreError;
use crate::model::ImageRow;

/// Queues the delivery of a finished task's callback, due at `now` (inside the finishing
/// transaction).
pub(super) fn queue_delivery(
    tx: &Connection,
    task_id: &str,
    url: &str,
    status: TaskStatus,
    images: &[ImageRow],
    now: i64,
) -> Result<(), StoreError> {
    let files: Vec<(String, String)> = images
        .iter()
        .map(|i| {
            (
                format!("{task_id}/{}", i.file_name),
                i.content_type().to_owned(),
            )
        })
        .collect();
    tx.execute(
        "INSERT INTO callback_outbox (delivery_id, task_id, url, status, files, next_attempt_at, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![
            uuid::Uuid::new_v4().to_string(),
            task_id,
            url,
            status.as_str(),
            serde_json::to_string(&files)?,
            now
        ],
    )?;
    Ok(())
}

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
    /// When it is due (ms).
    pub next_attempt_at: i64,
}

/// The oldest `limit` deliveries waiting, oldest first (due or not).
pub fn all_deliveries(conn: &Connection, limit: i64) -> Result<Vec<Delivery>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, delivery_id, task_id, url, status, files, attempts, created_at, next_attempt_at \
         FROM callback_outbox ORDER BY id LIMIT ?1",
    )?;
    let rows = stmt
        .query_map([limit], |r| {
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
                next_attempt_at: r.get(8)?,
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
