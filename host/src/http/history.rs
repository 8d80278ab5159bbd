//! `GET /history`, `POST /history/clear`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use scheduler_api::{HistoryQuery, HistoryResponse, ListQuery, MessageResponse};

use super::error::{ApiError, ApiQuery};
use super::ok;
use super::queue::{paging, start};
use super::wire::{self, TimeFmt};
use crate::queue::Queue;
use crate::results::Results;

/// Finished tasks, newest first.
#[utoipa::path(get, path = scheduler_api::routes::HISTORY, tag = "history", operation_id = "get_history",
    params(HistoryQuery, ListQuery),
    responses(
        (status = 200, description = "One page of the history.", body = HistoryResponse),
        (status = 422, description = "Unknown status filter, sort or paging value.", body = MessageResponse),
    ))]
pub async fn list(
    State(queue): State<Arc<Queue>>,
    ApiQuery(filter): ApiQuery<HistoryQuery>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let (limit, _) = paging(&q);
    let start = start(&q)?;
    let page = queue
        .history(
            filter.status.unwrap_or_default(),
            filter.sort.unwrap_or_default(),
            q.q,
            limit,
            start,
        )
        .await?;
    Ok(Json(HistoryResponse {
        tasks: page
            .rows
            .iter()
            .map(|r| wire::task(r, TimeFmt::Millis, None))
            .collect(),
        total: page.total,
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

/// Delete non-bookmarked finished tasks and their files.
#[utoipa::path(post, path = scheduler_api::routes::HISTORY_CLEAR, tag = "history", operation_id = "clear_history",
    responses((status = 200, description = "Cleared.", body = MessageResponse)))]
pub async fn clear(State(results): State<Arc<Results>>) -> Result<Json<MessageResponse>, ApiError> {
    results.clear_history(None).await?;
    Ok(ok("History cleared."))
}
