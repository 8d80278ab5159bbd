//! Many tasks at once: `POST /tasks/bulk` (one action on a selection), `POST /tasks/export`,
//! `POST /tasks/zip` (a selection's export or result files), `GET /group/{id}`, and
//! `GET /queue/eta`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use scheduler_api::{
    BulkAction, BulkRequest, BulkResponse, EtaQuery, EtaResponse, ExportItem, GroupResponse,
    MessageResponse, Selection,
};

use super::error::{ApiError, ApiJson, ApiQuery};
use super::wire::{self, TimeFmt};
use crate::eta::Eta;
use crate::queue::Queue;
use crate::results::Results;

/// One action on every selected task — by ids, or by a listing's filter minus some ids
/// ("select all": the request stays small whatever the count) — in one transaction: a task
/// whose state does not allow the action refuses the whole request and nothing changes.
#[utoipa::path(post, path = scheduler_api::routes::TASKS_BULK, tag = "tasks", operation_id = "bulk_tasks",
    request_body = BulkRequest,
    responses(
        (status = 200, description = "Done: how many, and the new tasks of a requeue.", body = BulkResponse),
        (status = 400, description = "Malformed JSON.", body = MessageResponse),
        (status = 404, description = "A listed id is not a task; nothing changed.", body = MessageResponse),
        (status = 409, description = "A selected task's state does not allow the action (a move of a task that is not pending); nothing changed.", body = MessageResponse),
        (status = 413, description = "More than 10,000 ids (select by filter instead).", body = MessageResponse),
        (status = 422, description = "Not exactly one of `ids` and `filter`, or an unknown action.", body = MessageResponse),
    ))]
pub async fn bulk(
    State(queue): State<Arc<Queue>>,
    ApiJson(req): ApiJson<BulkRequest>,
) -> Result<Json<BulkResponse>, ApiError> {
    let (count, task_ids) = queue.bulk(req.action, req.selection).await?;
    let verb = match req.action {
        BulkAction::Delete => "Deleted",
        BulkAction::Requeue => "Requeued",
        BulkAction::Bookmark => "Bookmarked",
        BulkAction::Unbookmark => "Unbookmarked",
        BulkAction::MoveTop => "Moved to the top:",
        BulkAction::MoveBottom => "Moved to the bottom:",
    };
    Ok(Json(BulkResponse {
        success: true,
        message: format!("{verb} {count} task{}", if count == 1 { "" } else { "s" }),
        count,
        task_ids,
    }))
}

/// The selected tasks as export items (the shape of `GET /export`: `POST /import` takes them
/// back as new pending tasks), streamed whatever the selection's size.
#[utoipa::path(post, path = scheduler_api::routes::TASKS_EXPORT, tag = "tasks", operation_id = "export_selection",
    request_body = Selection,
    responses(
        (status = 200, description = "The export array.", body = Vec<ExportItem>),
        (status = 400, description = "Malformed JSON.", body = MessageResponse),
        (status = 404, description = "A listed id is not a task.", body = MessageResponse),
        (status = 413, description = "More than 10,000 ids.", body = MessageResponse),
        (status = 422, description = "Not exactly one of `ids` and `filter`.", body = MessageResponse),
    ))]
pub async fn export(
    State(queue): State<Arc<Queue>>,
    ApiJson(sel): ApiJson<Selection>,
) -> Result<Response, ApiError> {
    let ids = queue.resolve(sel).await?;
    super::transfer::stream_export(super::transfer::ExportRows::Ids {
        queue,
        ids: Arc::new(ids),
        next: 0,
    })
    .await
}

/// The result files of the selected tasks as one zip (a folder per task).
#[utoipa::path(post, path = scheduler_api::routes::TASKS_ZIP, tag = "tasks", operation_id = "zip_selection",
    request_body = Selection,
    responses(
        (status = 200, description = "The zip.", content_type = "application/zip", body = Vec<u8>),
        (status = 400, description = "Malformed JSON.", body = MessageResponse),
        (status = 404, description = "A listed id is not a task.", body = MessageResponse),
        (status = 409, description = "None of the selected tasks has result files.", body = MessageResponse),
        (status = 413, description = "More than 10,000 ids.", body = MessageResponse),
        (status = 422, description = "Not exactly one of `ids` and `filter`.", body = MessageResponse),
    ))]
pub async fn zip(
    State(queue): State<Arc<Queue>>,
    State(results): State<Arc<Results>>,
    ApiJson(sel): ApiJson<Selection>,
) -> Result<Response, ApiError> {
    let ids = queue.resolve(sel).await?;
    let stream = results.zip_many(ids).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=agent-scheduler-results.zip",
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The tasks of one "Queue with all checkpoints" (or folder) enqueue, in the order they were
/// enqueued (dates in epoch milliseconds).
#[utoipa::path(get, path = scheduler_api::routes::GROUP, tag = "tasks", operation_id = "get_group",
    params(("id" = String, Path, description = "Group id (a task's `group_id`).")),
    responses(
        (status = 200, description = "The group's tasks.", body = GroupResponse),
        (status = 404, description = "No task has this group id.", body = MessageResponse),
    ))]
pub async fn group(
    State(queue): State<Arc<Queue>>,
    Path(id): Path<String>,
) -> Result<Json<GroupResponse>, ApiError> {
    let group_id = super::task_id(&id)?;
    let rows = queue.group(group_id.clone()).await?;
    Ok(Json(GroupResponse {
        group_id,
        tasks: rows
            .iter()
            .map(|r| wire::task(r, TimeFmt::Millis, None))
            .collect(),
    }))
}

/// When the pending tasks are expected to start and the queue to end, from each backend's
/// measured speed (time per megapixel-step, checkpoint loads), in the order the scheduler
/// will run them; null estimates before any backend has finished a task.
#[utoipa::path(get, path = scheduler_api::routes::QUEUE_ETA, tag = "queue", operation_id = "get_queue_eta",
    params(EtaQuery),
    responses(
        (status = 200, description = "The estimates.", body = EtaResponse),
        (status = 422, description = "A `limit` that is not a number.", body = MessageResponse),
    ))]
pub async fn eta(
    State(eta): State<Arc<Eta>>,
    ApiQuery(q): ApiQuery<EtaQuery>,
) -> Result<Json<EtaResponse>, ApiError> {
    Ok(Json(eta.estimate(q.limit.unwrap_or(200)).await?))
}
