//! Conversions from stored rows to the wire shapes of `scheduler-api` (the edge where the
//! AgentScheduler quirks live: three date formats, `result` as a JSON string).

use scheduler_api::{ExportItem, StoredRequest, Task, TaskResult, TaskStatus, WireTime, field};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::TaskRow;
use crate::model::images;
use crate::queue::Placement;

/// How dates are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFmt {
    /// Epoch milliseconds (`/queue`, `/history`).
    Millis,
    /// ISO-8601 (`/task/{id}`).
    Iso,
}

fn wire_time(ms: i64, fmt: TimeFmt) -> WireTime {
    match fmt {
        TimeFmt::Millis => WireTime::Epoch(ms),
        TimeFmt::Iso => WireTime::Iso(iso(ms)),
    }
}

/// RFC 3339 UTC text of epoch milliseconds.
pub fn iso(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The listing view of the request: without image data, plus `checkpoint` and `vae`.
pub fn list_params(row: &TaskRow) -> Map<String, Value> {
    let mut p = row.request.clone();
    images::strip(&mut p);
    p.insert(
        field::CHECKPOINT.into(),
        row.checkpoint.clone().map_or(Value::Null, Value::String),
    );
    p.insert(
        field::VAE.into(),
        row.vae.clone().map_or(Value::Null, Value::String),
    );
    p
}

/// `result` as the original writes it: a JSON string, or null while pending/running.
pub fn result_string(row: &TaskRow) -> Option<String> {
    if !row.status().is_finished() {
        return None;
    }
    let r = TaskResult {
        images: row.images.iter().map(|i| i.file_name.clone()).collect(),
        infotexts: row.images.iter().map(|i| i.infotext.clone()).collect(),
        error: row.life.error.clone(),
    };
    serde_json::to_string(&r).ok()
}

/// A stored task on the wire; `placed`: where a pending task stands in the queue (its
/// position, a priority ordered like the order the queue will run in, its projection).
pub fn task(row: &TaskRow, fmt: TimeFmt, placed: Option<&Placement>) -> Task {
    Task {
        id: row.id.clone(),
        api_task_id: None,
        api_task_callback: row.callback_url.clone(),
        name: row.name.clone(),
        task_type: row.task_type,
        status: row.status(),
        params: list_params(row),
        priority: placed.map_or(row.rank, |p| p.priority),
        position: placed.map(|p| p.position),
        result: result_string(row),
        bookmarked: row.bookmarked,
        created_at: wire_time(row.created_at, fmt),
        updated_at: wire_time(row.updated_at, fmt),
        attempts: row.life.attempts,
        backend: row.life.backend.clone(),
        error: row.life.error.clone(),
        image_count: row.images.len() as u32,
        has_page_snapshot: row.has_page_snapshot,
        next_run_at: row
            .life
            .next_run_at
            .filter(|_| row.status() == TaskStatus::Pending)
            .map(|ms| wire_time(ms, fmt)),
        projection: placed.and_then(|p| p.projection.clone()),
        group_id: row.group_id.clone(),
        started_at: row.life.started_at.map(|ms| wire_time(ms, fmt)),
        finished_at: row
            .life
            .finished_at
            .filter(|_| row.status().is_finished())
            .map(|ms| wire_time(ms, fmt)),
    }
}

/// An export item: the full request plus host fields in `params`, dates in epoch seconds.
pub fn export_item(row: TaskRow) -> ExportItem {
    let mut params = row.request;
    params.insert(
        field::CHECKPOINT.into(),
        row.checkpoint.map_or(Value::Null, Value::String),
    );
    params.insert(
        field::VAE.into(),
        row.vae.map_or(Value::Null, Value::String),
    );
    if let Some(s) = row.page_snapshot {
        params.insert(field::PAGE_SNAPSHOT.into(), s);
    }
    ExportItem {
        id: row.id,
        api_task_id: None,
        api_task_callback: row.callback_url,
        name: row.name,
        task_type: row.task_type.as_str().to_owned(),
        status: Some(TaskStatus::Pending.as_str().to_owned()),
        params: Value::Object(params),
        script_params: None,
        priority: Some(row.rank),
        result: None,
        bookmarked: Some(row.bookmarked),
        created_at: Some(Value::from(row.created_at / 1000)),
        updated_at: Some(Value::from(row.updated_at / 1000)),
    }
}

/// Everything stored for a task (`GET /task/{id}/request`), from its full row.
pub fn stored_request(row: TaskRow) -> StoredRequest {
    StoredRequest {
        status: row.status(),
        id: row.id,
        task_type: row.task_type,
        name: row.name,
        checkpoint: row.checkpoint,
        vae: row.vae,
        callback_url: row.callback_url,
        request: row.request,
        page_snapshot: row.page_snapshot,
        info: row.info,
    }
}
