//! `GET /queue`, pause, resume, clear.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use scheduler_api::{ListQuery, MessageResponse, QueueResponse};

use super::error::{ApiError, ApiQuery};
use super::ok;
use super::wire::{self, TimeFmt};
use crate::model::cursor::Cursor;
use crate::queue::{Queue, Start};

/// `(limit, offset)` of a listing: 20 by default, at most 1000.
pub fn paging(q: &ListQuery) -> (i64, i64) {
    (
        q.limit.unwrap_or(20).clamp(0, 1000),
        q.offset.unwrap_or(0).max(0),
    )
}

/// Where a page starts: `cursor` (an earlier page's `next_cursor`) or `offset`.
pub fn start(q: &ListQuery) -> Result<Start, ApiError> {
    match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Cursor::parse(c)
            .map(Start::After)
            .ok_or_else(|| ApiError::invalid(format!("unknown cursor `{c}`"))),
        None => Ok(Start::Offset(paging(q).1)),
    }
}

/// Running tasks first (status `running`), then pending ones in order.
#[utoipa::path(get, path = scheduler_api::routes::QUEUE, tag = "queue", operation_id = "get_queue",
    params(ListQuery),
    responses((status = 200, description = "One page of the queue.", body = QueueResponse)))]
pub async fn list(
    State(queue): State<Arc<Queue>>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<QueueResponse>, ApiError> {
    let (limit, _) = paging(&q);
    let start = start(&q)?;
    let page = queue.page(q.q, limit, start).await?;
    Ok(Json(QueueResponse {
        current_task_id: page.running.first().cloned(),
        current_task_ids: page.running,
        pending_tasks: page
            .rows
            .iter()
            .map(|(r, placed)| wire::task(r, TimeFmt::Millis, Some(placed)))
            .collect(),
        total_pending_tasks: page.total,
        paused: page.paused,
        hold_reason: page.hold_reason,
        next_cursor: page.next.map(|c| c.encode()),
        lookahead: page.window,
    }))
}

/// Pause the queue (persisted; the running task finishes).
#[utoipa::path(post, path = scheduler_api::routes::QUEUE_PAUSE, tag = "queue", operation_id = "pause_queue",
    responses((status = 200, description = "Paused.", body = MessageResponse)))]
pub async fn pause(State(queue): State<Arc<Queue>>) -> Result<Json<MessageResponse>, ApiError> {
    queue.set_paused(true).await?;
    Ok(ok("Queue paused."))
}

/// Resume the queue.
#[utoipa::path(post, path = scheduler_api::routes::QUEUE_RESUME, tag = "queue", operation_id = "resume_queue",
    responses((status = 200, description = "Resumed.", body = MessageResponse)))]
pub async fn resume(State(queue): State<Arc<Queue>>) -> Result<Json<MessageResponse>, ApiError> {
    queue.set_paused(false).await?;
    Ok(ok("Queue resumed."))
}

/// Delete non-bookmarked pending tasks (the running task stays).
#[utoipa::path(post, path = scheduler_api::routes::QUEUE_CLEAR, tag = "queue", operation_id = "clear_queue",
    responses((status = 200, description = "Cleared.", body = MessageResponse)))]
pub async fn clear(State(queue): State<Arc<Queue>>) -> Result<Json<MessageResponse>, ApiError> {
    queue.clear().await?;
    Ok(ok("Queue cleared."))
}
