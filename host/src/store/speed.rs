//! Each backend's measured speed (the queue's ETA is computed from it): generation time per
//! megapixel-step and checkpoint load time, as moving averages the model computes
//! ([`crate::model::eta::Speed`]), one row per backend.

use rusqlite::{Connection, OptionalExtension, params};
use scheduler_api::{TaskStatus, TaskType};
use serde_json::{Map, Value};

use super::StoreError;
use crate::model::eta::{Speed, WORK_FIELDS, work_fields};

/// A pending task as the ETA's lean scan reads it: its type, the request fields its work
/// depends on, its checkpoint.
pub type PendingWork = (TaskType, Map<String, Value>, Option<String>);

/// The pending tasks after `(rank, seq)`, in queue order, reading only what their work
/// depends on (one index scan, no full request parsed).
pub fn pending_work_after(
    conn: &Connection,
    after: (i64, i64),
) -> Result<Vec<PendingWork>, StoreError> {
    let fields: Vec<String> = WORK_FIELDS
        .iter()
        .map(|f| format!("json_extract(request, '$.{f}')"))
        .collect();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT type, {}, json_extract(request, '$.enable_hr'), checkpoint FROM tasks \
         WHERE {} AND (rank, seq) > (?1, ?2) ORDER BY rank, seq",
        fields.join(", "),
        super::status::is(TaskStatus::Pending)
    ))?;
    let rows = stmt.query_map(params![after.0, after.1], |r| {
        let ty: String = r.get(0)?;
        let mut v = [None; 8];
        for (i, slot) in v.iter_mut().enumerate() {
            *slot = r.get::<_, Option<f64>>(i + 1).ok().flatten();
        }
        let hr: Option<i64> = r.get::<_, Option<i64>>(9).ok().flatten();
        Ok((
            TaskType::parse(&ty).unwrap_or(TaskType::Txt2img),
            work_fields(v, hr == Some(1)),
            r.get(10)?,
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every backend's stored speed.
pub fn all(conn: &Connection) -> Result<Vec<(String, Speed)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT backend, ms_per_mpx_step, samples, load_ms, loads FROM backend_speed ORDER BY backend",
    )?;
    Ok(stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                Speed {
                    ms_per_mpx_step: r.get(1)?,
                    samples: r.get(2)?,
                    load_ms: r.get(3)?,
                    loads: r.get(4)?,
                },
            ))
        })?
        .collect::<Result<_, _>>()?)
}

/// One backend's stored speed (`Speed::default()` before its first run).
pub fn get(conn: &Connection, backend: &str) -> Result<Speed, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT ms_per_mpx_step, samples, load_ms, loads FROM backend_speed WHERE backend = ?1",
        )?
        .query_row([backend], |r| {
            Ok(Speed {
                ms_per_mpx_step: r.get(0)?,
                samples: r.get(1)?,
                load_ms: r.get(2)?,
                loads: r.get(3)?,
            })
        })
        .optional()?
        .unwrap_or_default())
}

/// Stores a backend's speed, measured at `now` (ms).
pub fn put(conn: &Connection, backend: &str, s: &Speed, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO backend_speed (backend, ms_per_mpx_step, samples, load_ms, loads, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (backend) DO UPDATE SET \
         ms_per_mpx_step = ?2, samples = ?3, load_ms = ?4, loads = ?5, updated_at = ?6",
    )?
    .execute(params![
        backend,
        s.ms_per_mpx_step,
        s.samples,
        s.load_ms,
        s.loads,
        now
    ])?;
    Ok(())
}
