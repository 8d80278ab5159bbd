//! `GET /history`, `POST /history/clear`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use scheduler_api::{HistoryFilter, HistoryResponse, MessageResponse};

use super::error::ApiError;
use super::ok;
use super::queue::ListQuery;
use super::wire::{self, TimeFmt};
use crate::queue::Queue;
use crate::results::Results;

/// `GET /history`.
pub async fn list(
    State(queue): State<Arc<Queue>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let (limit, offset) = q.paging();
    let filter = HistoryFilter::parse(q.status())
        .ok_or_else(|| ApiError::invalid(format!("unknown status filter `{}`", q.status())))?;
    let (rows, total) = queue.history(filter, q.q(), limit, offset).await?;
    Ok(Json(HistoryResponse {
        tasks: rows
            .iter()
            .map(|r| wire::task(r, TimeFmt::Millis, None))
            .collect(),
        total,
    }))
}

/// `POST /history/clear`.
pub async fn clear(State(results): State<Arc<Results>>) -> Result<Json<MessageResponse>, ApiError> {
    results.clear_history(None).await?;
    Ok(ok("History cleared."))
}
