//! `GET /export`, `POST /import`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use scheduler_api::{ExportItem, ExportQuery, ImportRequest, ImportResponse, MessageResponse};

use super::error::{ApiError, ApiJson, ApiQuery};
use super::wire;
use crate::intake::Intake;
use crate::queue::Queue;

/// Pending tasks in the original export shape (full request in `params`).
#[utoipa::path(get, path = scheduler_api::routes::EXPORT, tag = "transfer", operation_id = "export_tasks",
    params(ExportQuery),
    responses((status = 200, description = "The export array.", body = Vec<ExportItem>)))]
pub async fn export(
    State(queue): State<Arc<Queue>>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Json<Vec<ExportItem>>, ApiError> {
    let limit = q.limit.unwrap_or(1000).clamp(0, 100_000);
    let offset = q.offset.unwrap_or(0).max(0);
    let rows = queue.export(limit, offset).await?;
    Ok(Json(rows.iter().map(wire::export_item).collect()))
}

/// Import an export (ours, or the original's API tasks); rejected items are reported.
#[utoipa::path(post, path = scheduler_api::routes::IMPORT, tag = "transfer", operation_id = "import_tasks",
    request_body = ImportRequest,
    responses(
        (status = 200, description = "What was imported and what was rejected.", body = ImportResponse),
        (status = 422, description = "`content` is not a JSON array.", body = MessageResponse),
    ))]
pub async fn import(
    State(intake): State<Arc<Intake>>,
    ApiJson(req): ApiJson<ImportRequest>,
) -> Result<Json<ImportResponse>, ApiError> {
    Ok(Json(intake.import(&req.content).await?))
}
