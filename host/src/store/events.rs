//! The stored event log behind `GET /events` replay: ids from an AUTOINCREMENT counter, so
//! they survive restarts.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// Keeps this many stored events.
pub const EVENTS_KEPT: i64 = 2000;

/// Stores events (name, data) at `now` (ms) and returns their ids; prunes old ones.
pub fn insert_events(
    conn: &mut Connection,
    events: &[(String, String)],
    now: i64,
) -> Result<Vec<u64>, StoreError> {
    let tx = conn.savepoint()?;
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
