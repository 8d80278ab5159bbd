//! The deprecated aliases of the original extension's routes: each is the canonical handler
//! under the old path (and method), documented as deprecated.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use scheduler_api::routes as r;
use scheduler_api::{MessageResponse, RenameQuery, RequeueResponse, ResultsQuery};

use super::error::{ApiError, ApiQuery};
use super::{queue, results, task};
use crate::queue::Queue;

type Q = State<Arc<Queue>>;
type Answer = Result<Json<MessageResponse>, ApiError>;

/// Deprecated alias of `POST /task/{id}/run`.
#[utoipa::path(post, path = r::ALIAS_RUN, tag = "deprecated", operation_id = "run_task_alias",
    params(("id" = String, Path, description = "Task id.")),
    responses((status = 200, body = MessageResponse, description = "Scheduled."),
        (status = 404, body = MessageResponse, description = "No such task."),
        (status = 409, body = MessageResponse, description = "The task is not pending.")))]
#[deprecated = "an old path of the original extension"]
pub async fn run(q: Q, id: Path<String>) -> Answer {
    task::run(q, id).await
}

/// Deprecated alias of `POST /task/{id}/requeue`.
#[utoipa::path(post, path = r::ALIAS_REQUEUE, tag = "deprecated", operation_id = "requeue_task_alias",
    params(("id" = String, Path, description = "Task id.")),
    responses((status = 200, body = RequeueResponse, description = "The copy's id."),
        (status = 404, body = MessageResponse, description = "No such task.")))]
#[deprecated = "an old path of the original extension"]
pub async fn requeue(q: Q, id: Path<String>) -> Result<Json<RequeueResponse>, ApiError> {
    task::requeue(q, id).await
}

/// Deprecated alias of `DELETE /task/{id}`.
#[utoipa::path(post, path = r::ALIAS_DELETE, tag = "deprecated", operation_id = "delete_task_alias",
    params(("id" = String, Path, description = "Task id.")),
    responses((status = 200, body = MessageResponse, description = "`Task deleted` or `Task interrupted`."),
        (status = 404, body = MessageResponse, description = "No such task.")))]
#[deprecated = "an old path of the original extension"]
pub async fn delete(q: Q, id: Path<String>) -> Answer {
    task::delete(q, id).await
}

/// Deprecated alias of `POST /task/{id}/move/{over_id}`.
#[utoipa::path(post, path = r::ALIAS_MOVE, tag = "deprecated", operation_id = "move_task_alias",
    params(("id" = String, Path, description = "Task id."),
        ("over_id" = String, Path, description = "The task to go before, or `top` / `bottom`.")),
    responses((status = 200, body = MessageResponse, description = "Moved."),
        (status = 404, body = MessageResponse, description = "No such task."),
        (status = 409, body = MessageResponse, description = "A task is not pending.")))]
#[deprecated = "an old path of the original extension"]
pub async fn move_task(q: Q, ids: Path<(String, String)>) -> Answer {
    task::move_task(q, ids).await
}

/// Deprecated alias of `POST /task/{id}/bookmark`.
#[utoipa::path(post, path = r::ALIAS_BOOKMARK, tag = "deprecated", operation_id = "bookmark_task_alias",
    params(("id" = String, Path, description = "Task id.")),
    responses((status = 200, body = MessageResponse, description = "Bookmarked."),
        (status = 404, body = MessageResponse, description = "No such task.")))]
#[deprecated = "an old path of the original extension"]
pub async fn bookmark(q: Q, id: Path<String>) -> Answer {
    task::bookmark(q, id).await
}

/// Deprecated alias of `POST /task/{id}/unbookmark`.
#[utoipa::path(post, path = r::ALIAS_UNBOOKMARK, tag = "deprecated", operation_id = "unbookmark_task_alias",
    params(("id" = String, Path, description = "Task id.")),
    responses((status = 200, body = MessageResponse, description = "Unbookmarked."),
        (status = 404, body = MessageResponse, description = "No such task.")))]
#[deprecated = "an old path of the original extension"]
pub async fn unbookmark(q: Q, id: Path<String>) -> Answer {
    task::unbookmark(q, id).await
}

/// Deprecated alias of `POST /task/{id}/rename`.
#[utoipa::path(post, path = r::ALIAS_RENAME, tag = "deprecated", operation_id = "rename_task_alias",
    params(("id" = String, Path, description = "Task id."), RenameQuery),
    responses((status = 200, body = MessageResponse, description = "Renamed."),
        (status = 404, body = MessageResponse, description = "No such task."),
        (status = 422, body = MessageResponse, description = "`name` is missing.")))]
#[deprecated = "an old path of the original extension"]
pub async fn rename(q: Q, id: Path<String>, name: ApiQuery<RenameQuery>) -> Answer {
    task::rename(q, id, name).await
}

/// Deprecated alias of `GET /task/{id}/results`.
#[utoipa::path(get, path = r::ALIAS_RESULTS, tag = "deprecated", operation_id = "get_task_results_alias",
    params(("id" = String, Path, description = "Task id."), ResultsQuery),
    responses((status = 200, description = "The images (JSON), or the stored files as a zip.",
            content((scheduler_api::DataResponse<Vec<scheduler_api::ResultImage>> = "application/json"),
                (Vec<u8> = "application/zip"))),
        (status = 404, body = MessageResponse, description = "No such task."),
        (status = 409, body = MessageResponse, description = "The task has not finished.")))]
#[deprecated = "an old path of the original extension"]
pub async fn results(
    s: State<Arc<crate::results::Results>>,
    id: Path<String>,
    q: ApiQuery<ResultsQuery>,
) -> Result<Response, ApiError> {
    results::results(s, id, q).await
}

/// Deprecated alias of `POST /queue/pause`.
#[utoipa::path(post, path = r::ALIAS_PAUSE, tag = "deprecated", operation_id = "pause_queue_alias",
    responses((status = 200, body = MessageResponse, description = "Paused.")))]
#[deprecated = "an old path of the original extension"]
pub async fn pause(q: Q) -> Answer {
    queue::pause(q).await
}

/// Deprecated alias of `POST /queue/resume`.
#[utoipa::path(post, path = r::ALIAS_RESUME, tag = "deprecated", operation_id = "resume_queue_alias",
    responses((status = 200, body = MessageResponse, description = "Resumed.")))]
#[deprecated = "an old path of the original extension"]
pub async fn resume(q: Q) -> Answer {
    queue::resume(q).await
}
