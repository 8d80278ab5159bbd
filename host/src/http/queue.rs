//! `GET /queue`, pause, resume, clear.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use scheduler_api::{MessageResponse, QueueResponse};
use serde::Deserialize;

use super::error::ApiError;
use super::ok;
use super::wire::{self, TimeFmt};
use crate::queue::Queue;

/// Paging and search of a listing.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
    offset: Option<i64>,
    q: Option<String>,
    status: Option<String>,
}

impl ListQuery {
    /// `(limit, offset)`: 20 by default, at most 1000.
    pub fn paging(&self) -> (i64, i64) {
        (
            self.limit.unwrap_or(20).clamp(0, 1000),
            self.offset.unwrap_or(0).max(0),
        )
    }

    /// The search text.
    pub fn q(&self) -> Option<String> {
        self.q.clone()
    }

    /// The `status=` filter word of the history.
    pub fn status(&self) -> &str {
        self.status.as_deref().unwrap_or("")
    }
}

/// `GET /queue`.
pub async fn list(
    State(queue): State<Arc<Queue>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<QueueResponse>, ApiError> {
    let (limit, offset) = q.paging();
    let page = queue.page(q.q(), limit, offset).await?;
    Ok(Json(QueueResponse {
        current_task_id: page.running.first().cloned(),
        current_task_ids: page.running,
        pending_tasks: page
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| wire::task(r, TimeFmt::Millis, Some(offset + i as i64)))
            .collect(),
        total_pending_tasks: page.total,
        paused: page.paused,
    }))
}

/// `POST /queue/pause`.
pub async fn pause(State(queue): State<Arc<Queue>>) -> Result<Json<MessageResponse>, ApiError> {
    queue.set_paused(true).await?;
    Ok(ok("Queue paused."))
}

/// `POST /queue/resume`.
pub async fn resume(State(queue): State<Arc<Queue>>) -> Result<Json<MessageResponse>, ApiError> {
    queue.set_paused(false).await?;
    Ok(ok("Queue resumed."))
}

/// `POST /queue/clear`.
pub async fn clear(State(queue): State<Arc<Queue>>) -> Result<Json<MessageResponse>, ApiError> {
    queue.clear().await?;
    Ok(ok("Queue cleared."))
}
