//! One task: `GET`/`PUT`/`DELETE /task/{id}`, its stored request, its position, run now,
//! requeue, move, bookmark, rename.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use scheduler_api::{
    DataResponse, MessageResponse, MoveTarget, PositionData, Task, UpdateTaskRequest, field,
};
use serde::Deserialize;
use serde_json::Value;

use super::error::{ApiError, parse_json};
use super::wire::{self, TimeFmt};
use super::{ok, task_id};
use crate::model::CheckpointSpec;
use crate::queue::Queue;
use crate::store::tasks::TaskEdit;

type Q = State<Arc<Queue>>;
type Answer = Result<Json<MessageResponse>, ApiError>;

/// `GET /task/{id}`.
pub async fn get(
    State(queue): Q,
    Path(id): Path<String>,
) -> Result<Json<DataResponse<Task>>, ApiError> {
    let (row, pos) = queue.task(&task_id(&id)?, false).await?;
    Ok(Json(DataResponse {
        success: true,
        data: wire::task(&row, TimeFmt::Iso, pos),
    }))
}

/// `GET /task/{id}/request`: the full stored request, images and page snapshot included.
pub async fn request(State(queue): Q, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let (row, _) = queue.task(&task_id(&id)?, true).await?;
    Ok(Json(serde_json::json!({
        "success": true,
        "data": {
            "id": row.id,
            "type": row.task_type,
            "status": row.status(),
            field::NAME: row.name,
            field::CHECKPOINT: row.checkpoint,
            field::VAE: row.vae,
            field::CALLBACK_URL: row.callback_url,
            "request": row.request,
            field::PAGE_SNAPSHOT: row.page_snapshot,
            "info": row.info,
        }
    })))
}

/// `GET /task/{id}/position`.
pub async fn position(
    State(queue): Q,
    Path(id): Path<String>,
) -> Result<Json<DataResponse<PositionData>>, ApiError> {
    let (row, position) = queue.task(&task_id(&id)?, false).await?;
    Ok(Json(DataResponse {
        success: true,
        data: PositionData {
            status: row.status(),
            position,
        },
    }))
}

/// `PUT /task/{id}`.
pub async fn update(State(queue): Q, Path(id): Path<String>, body: Bytes) -> Answer {
    let id = task_id(&id)?;
    let req: UpdateTaskRequest = parse_json(&body)?;
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
    };
    queue.edit(id, edit).await?;
    Ok(ok("Task updated."))
}

/// `DELETE /task/{id}` (and the old `POST /delete/{id}`).
pub async fn delete(State(queue): Q, Path(id): Path<String>) -> Answer {
    Ok(ok(queue.delete(task_id(&id)?).await?))
}

/// `POST /task/{id}/run`.
pub async fn run(State(queue): Q, Path(id): Path<String>) -> Answer {
    Ok(ok(queue.run_now(task_id(&id)?).await?))
}

/// `POST /task/{id}/requeue`.
pub async fn requeue(State(queue): Q, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let new_id = queue.requeue(task_id(&id)?).await?;
    Ok(Json(
        serde_json::json!({"success": true, "message": "Task requeued", "task_id": new_id}),
    ))
}

/// `POST /task/requeue-failed`.
pub async fn requeue_failed(State(queue): Q) -> Answer {
    let n = queue.requeue_failed().await?;
    if n == 0 {
        return Ok(Json(MessageResponse {
            success: false,
            message: "No failed tasks".into(),
            code: None,
        }));
    }
    Ok(ok(format!("Requeued {n} failed tasks")))
}

/// `POST /task/{id}/move/{over_id}`.
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

/// `POST /task/{id}/bookmark`.
pub async fn bookmark(State(queue): Q, Path(id): Path<String>) -> Answer {
    queue.set_bookmark(task_id(&id)?, true).await?;
    Ok(ok("Task bookmarked"))
}

/// `POST /task/{id}/unbookmark`.
pub async fn unbookmark(State(queue): Q, Path(id): Path<String>) -> Answer {
    queue.set_bookmark(task_id(&id)?, false).await?;
    Ok(ok("Task unbookmarked"))
}

/// `?name=` of rename.
#[derive(Debug, Deserialize)]
pub struct RenameQuery {
    name: Option<String>,
}

/// `POST /task/{id}/rename?name=`.
pub async fn rename(
    State(queue): Q,
    Path(id): Path<String>,
    Query(q): Query<RenameQuery>,
) -> Answer {
    let id = task_id(&id)?;
    let name = q
        .name
        .ok_or_else(|| ApiError::invalid("query parameter `name` is required"))?;
    queue.rename(id, name).await?;
    Ok(ok("Task renamed."))
}
