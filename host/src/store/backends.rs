//! The backends added through the API (`POST /backends`): their URLs (credentials
//! included: they are needed for the requests, and never answered) and whether they take
//! tasks. The `--backend` ones are not stored: the command line gives them at each start.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// One stored backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedBackend {
    /// Its row id (the `N` of `added-N`).
    pub id: i64,
    /// Its URL as given (credentials included).
    pub url: String,
    /// Takes tasks.
    pub enabled: bool,
    /// Finishing its running task, then disabled.
    pub draining: bool,
}

/// Every stored backend, oldest first.
pub fn added_backends(conn: &Connection) -> Result<Vec<AddedBackend>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT id, url, enabled, draining FROM backends ORDER BY id")?;
    Ok(stmt
        .query_map([], |r| {
            Ok(AddedBackend {
                id: r.get(0)?,
                url: r.get(1)?,
                enabled: r.get(2)?,
                draining: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?)
}

/// Stores a new backend; `None` when that URL is stored already.
pub fn add_backend(conn: &Connection, url: &str, now: i64) -> Result<Option<i64>, StoreError> {
    let known = conn
        .query_row("SELECT id FROM backends WHERE url = ?1", [url], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?;
    if known.is_some() {
        return Ok(None);
    }
    conn.execute(
        "INSERT INTO backends (url, enabled, draining, created_at) VALUES (?1, 1, 0, ?2)",
        params![url, now],
    )?;
    Ok(Some(conn.last_insert_rowid()))
}

/// The stored backend with this URL (as given), stored now unless it was.
pub fn ensure_backend(conn: &Connection, url: &str, now: i64) -> Result<i64, StoreError> {
    if let Some(id) = add_backend(conn, url, now)? {
        return Ok(id);
    }
    Ok(
        conn.query_row("SELECT id FROM backends WHERE url = ?1", [url], |r| {
            r.get(0)
        })?,
    )
}

/// Forgets a stored backend.
pub fn remove_backend(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.execute("DELETE FROM backends WHERE id = ?1", [id])?;
    Ok(())
}

/// Records whether a stored backend takes tasks.
pub fn set_backend_admin(
    conn: &Connection,
    id: i64,
    enabled: bool,
    draining: bool,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE backends SET enabled = ?2, draining = ?3 WHERE id = ?1",
        params![id, enabled, draining],
    )?;
    Ok(())
}
