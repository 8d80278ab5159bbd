//! The settings row and the pause flag (the one record of whether the queue is paused).

use rusqlite::{Connection, OptionalExtension, params};
use scheduler_api::Settings;

use super::StoreError;

const SETTINGS_KEY: &str = "settings";
const PAUSED_KEY: &str = "paused";

fn get(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?)
}

fn put(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// The settings (defaults where never written).
pub fn load_settings(conn: &Connection) -> Result<Settings, StoreError> {
    Ok(get(conn, SETTINGS_KEY)?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

/// Writes the settings.
pub fn save_settings(conn: &Connection, s: &Settings) -> Result<(), StoreError> {
    put(conn, SETTINGS_KEY, &serde_json::to_string(s)?)
}

/// Whether the queue is paused.
pub fn is_paused(conn: &Connection) -> Result<bool, StoreError> {
    Ok(get(conn, PAUSED_KEY)?.as_deref() == Some("true"))
}

/// Pauses or resumes the queue.
pub fn set_paused(conn: &Connection, paused: bool) -> Result<(), StoreError> {
    put(conn, PAUSED_KEY, if paused { "true" } else { "false" })
}

/// A small write that tells whether the database can be written (the full-disk probe): a
/// counter, so each probe changes the page it writes.
pub fn probe_write(conn: &Connection) -> Result<(), StoreError> {
    let n: i64 = get(conn, "space_probe")?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    put(conn, "space_probe", &n.wrapping_add(1).to_string())
}
