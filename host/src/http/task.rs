//! One task: `GET`/`PUT`/`DELETE /task/{id}`, its stored request, its position, run now,
//! requeue, move, bookmark, rename.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use scheduler_api::{
    DataResponse, MessageResponse, MoveTarget, PositionData, RenameQuery, RequeueResponse,
    StoredRequest, Task, UpdateTaskRequest,
};

use super::error::{ApiError, ApiJson, ApiQuery};
use super::wire::{self, TimeFmt};
use super::{ok, task_id};
use crate::backends::Backends;
use crate::model::{CheckpointSpec, TaskEdit};
use crate::queue::Queue;

type Q = State<Arc<Queue>>;
type Answer = Result<Json<MessageResponse>, ApiError>;

/// One task (dates as ISO-8601 strings).
#[utoipa::path(get, path = scheduler_api::routes::TASK, tag = "task", operation_id = "get_task",
    params(("id" = String, Path, description = "Task id.")),
    responses(
        (status = 200, description = "The task.", body = DataResponse<Task>),
        (status = 404, description = "No such task.", body = MessageResponse),
    ))]
pub async fn get(
    State(queue): Q,
    Path(id): Path<String>,
) -> Result<Json<DataResponse<Task>>, ApiError> {
    let (row, pos) = queue.task(&task_id(&id)?, false).await?;
    Ok(Json(DataResponse {
        success: true,
        data: wire::task(&row, TimeFmt::Iso, pos.as_ref()),
    }))
}

/// The full stored request (images and page snapshot included).
#[utoipa::path(get, path = scheduler_api::routes::TASK_REQUEST, tag = "task", operation_id = "get_task_request",
    params(("id" = String, Path, description = "Task id.")),
    responses(
        (status = 200, description = "Everything stored for the task.", body = DataResponse<StoredRequest>),
        (status = 404, description = "No such task.", body = MessageResponse),
    ))]
pub async fn request(
    State(queue): Q,
    Path(id): Path<String>,
) -> Result<Json<DataResponse<StoredRequest>>, ApiError> {
    let (row, _) = queue.task(&task_id(&id)?, true).await?;
    Ok(Json(DataResponse {
        success: true,
        data: wire::stored_request(row),
    }))
}

/// Status and position.
#[utoipa::path(get, path = scheduler_api::routes::TASK_POSITION, tag = "task", operation_id = "get_task_position",
    params(("id" = String, Path, description = "Task id.")),
    responses(
        (status = 200, description = "Status and position.", body = DataResponse<PositionData>),
        (status = 404, description = "No such task.", body = MessageResponse),
    ))]
pub async fn position(
    State(queue): Q,
    Path(id): Path<String>,
) -> Result<Json<DataResponse<PositionData>>, ApiError> {
    let (row, placed) = queue.task(&task_id(&id)?, false).await?;
    Ok(Json(DataResponse {
        success: true,
        data: PositionData {
            status: row.status(),
            position: placed.map(|p| p.position),
        },
    }))
}

/// Edit a pending task: name, checkpoint, shallow merge of params.
#[utoipa::path(put, path = scheduler_api::routes::TASK, tag = "task", operation_id = "update_task",
    params(("id" = String, Path, description = "Task id.")),
    request_body = UpdateTaskRequest,
    responses(
        (status = 200, description = "Updated.", body = MessageResponse),
        (status = 404, description = "No such task.", body = MessageResponse),
        (status = 409, description = "The task is not pending.", body = MessageResponse),
        (status = 422, description = "A field is invalid: the merged request breaks SD.Next's request contract (`path` names the field) or an image is not inline.", body = MessageResponse),
    ))]
pub async fn update(
    State(queue): Q,
    State(backends): State<Arc<Backends>>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateTaskRequest>,
) -> Answer {
    let id = task_id(&id)?;
    let checkpoint = req
        .checkpoint
        .map(|c| match CheckpointSpec::parse(Some(&c)) {
            CheckpointSpec::Loaded => Ok(None),
            CheckpointSpec::Title(t) => Ok(Some(t)),
            _ => Err(ApiError::invalid(
                "checkpoint patterns are only accepted at enqueue",
            )),
        })
        .transpose()?;
    let edit = TaskEdit {
        name: req.name.map(|n| Some(n).filter(|n| !n.trim().is_empty())),
        checkpoint,
        params: req.params,
        // The merged request is checked like an enqueue (SD.Next's contract, the names).
        contract: Some(backends.contract()),
    };
    queue.edit(id, edit).await?;
    Ok(ok("Task updated."))
}

/// Delete a pending or finished task (with its files), or interrupt a running one.
#[utoipa::path(delete, path = scheduler_api::routes::TASK, tag = "task", operation_id = "delete_task",
    params(("id" = String, Path, description = "Task id.")),
    responses(
        (status = 200, description = "`Task deleted` or `Task interrupted`.", body = MessageResponse),
        (status = 404, description = "No such task.", body = MessageResponse),
    ))]
pub async fn delete(State(queue): Q, Path(id): Path<String>) -> Answer {
    Ok(ok(queue.delete(task_id(&id)?).await?))
}

/// Run now (idle: starts now; busy: runs next, in the order clicked; paused: only this task runs).
#[utoipa::path(post, path = scheduler_api::routes::TASK_RUN, tag = "task", operation_id = "run_task",
    params(("id" = String, Path, description = "Task id.")),
    responses(
        (status = 200, description = "Scheduled.", body = MessageResponse),
        (status = 404, description = "No such task.", body = MessageResponse),
        (status = 409, description = "The task is not pending.", body = MessageResponse),
    ))]
pub async fn run(State(queue): Q, Path(id): Path<String>) -> Answer {
    Ok(ok(queue.run_now(task_id(&id)?).await?))
}

/// Put a copy of the task at the end of the queue.
#[utoipa::path(post, path = scheduler_api::routes::TASK_REQUEUE, tag = "task", operation_id = "requeue_task",
    params(("id" = String, Path, description = "Task id.")),
    responses(
        (status = 200, description = "The copy's id.", body = RequeueResponse),
        (status = 404, description = "No such task.", body = MessageResponse),
    ))]
pub async fn requeue(
    State(queue): Q,
    Path(id): Path<String>,
) -> Result<Json<RequeueResponse>, ApiError> {
    let new_id = queue.requeue(task_id(&id)?).await?;
    Ok(Json(RequeueResponse {
        success: true,
        message: "Task requeued".into(),
        task_id: new_id,
    }))
}

/// Turn every failed task back into a pending one at the end (`success: false` when none).
#[utoipa::path(post, path = scheduler_api::routes::TASK_REQUEUE_FAILED, tag = "task", operation_id = "requeue_failed_tasks",
    responses((status = 200, description = "How many were requeued.", body = MessageResponse)))]
pub async fn requeue_failed(State(queue): Q) -> Answer {
    let n = queue.requeue_failed().await?;
    if n == 0 {
        return Ok(Json(MessageResponse {
            success: false,
            message: "No failed tasks".into(),
            code: None,
            path: None,
        }));
    }
    Ok(ok(format!("Requeued {n} failed tasks")))
}

/// Move a pending task before `{over_id}`, or to `top` / `bottom`.
#[utoipa::path(post, path = scheduler_api::routes::TASK_MOVE, tag = "task", operation_id = "move_task",
    params(
        ("id" = String, Path, description = "Task id."),
        ("over_id" = String, Path, description = "The task to go before, or `top` / `bottom`."),
    ),
    responses(
        (status = 200, description = "Moved.", body = MessageResponse),
        (status = 404, description = "No such task.", body = MessageResponse),
        (status = 409, description = "A task is not pending.", body = MessageResponse),
    ))]
pub async fn move_task(State(queue): Q, Path((id, over)): Path<(String, String)>) -> Answer {
    let id = task_id(&id)?;
    let target = MoveTarget::parse(&over);
    if let MoveTarget::Before(o) = &target {
        task_id(o)?;
    }
    let msg = match target {
        MoveTarget::Top => "Task moved to top",
        MoveTarget::Bottom => "Task moved to bottom",
        MoveTarget::Before(_) => "Task moved",
    };
    queue.move_task(id, target).await?;
    Ok(ok(msg))
}

/// Bookmark (bookmarked tasks survive clears and retention).
#[utoipa::path(post, path = scheduler_api::routes::TASK_BOOKMARK, tag = "task", operation_id = "bookmark_task",
    params(("id" = String, Path, description = "Task id.")),
    responses(
        (status = 200, description = "Bookmarked.", body = MessageResponse),
        (status = 404, description = "No such task.", body = MessageResponse),
    ))]
pub async fn bookmark(State(queue): Q, Path(id): Path<String>) -> Answer {
    queue.set_bookmark(task_id(&id)?, true).await?;
    Ok(ok("Task bookmarked"))
}

/// Remove the bookmark.
#[utoipa::path(post, path = scheduler_api::routes::TASK_UNBOOKMARK, tag = "task", operation_id = "unbookmark_task",
    params(("id" = String, Path, description = "Task id.")),
    responses(
        (status = 200, description = "Unbookmarked.", body = MessageResponse),
        (status = 404, description = "No such task.", body = MessageResponse),
    ))]
pub async fn unbookmark(State(queue): Q, Path(id): Path<String>) -> Answer {
    queue.set_bookmark(task_id(&id)?, false).await?;
    Ok(ok("Task unbookmarked"))
}

/// Rename a task (any status).
#[utoipa::path(post, path = scheduler_api::routes::TASK_RENAME, tag = "task", operation_id = "rename_task",
    params(("id" = String, Path, description = "Task id."), RenameQuery),
    responses(
        (status = 200, description = "Renamed.", body = MessageResponse),
        (status = 404, description = "No such task.", body = MessageResponse),
        (status = 422, description = "`name` is missing.", body = MessageResponse),
    ))]
pub async fn rename(
    State(queue): Q,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RenameQuery>,
) -> Answer {
    queue.rename(task_id(&id)?, q.name).await?;
    Ok(ok("Task renamed."))
}
