//! `GET /history`, `POST /history/clear`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use scheduler_api::{HistoryResponse, MessageResponse, TaskStatus};

use super::error::ApiError;
use super::ok;
use super::queue::ListQuery;
use super::wire::{self, TimeFmt};
use crate::queue::Queue;
use crate::results::Results;
use crate::store::tasks::HistoryFilter;

/// `GET /history`.
pub async fn list(
    State(queue): State<Arc<Queue>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let (limit, offset) = q.paging();
    let filter = match q.status() {
        "" | "all" => HistoryFilter::All,
        "bookmarked" => HistoryFilter::Bookmarked,
        s => match TaskStatus::parse(s) {
            Some(st) if st.is_finished() => HistoryFilter::Status(st),
            _ => return Err(ApiError::invalid(format!("unknown status filter `{s}`"))),
        },
    };
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
