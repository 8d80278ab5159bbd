//! `GET /export`, `POST /import`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use futures::StreamExt;
use scheduler_api::{ExportItem, ExportQuery, ImportRequest, ImportResponse, MessageResponse};

use super::LARGE_BODY;
use super::error::{ApiError, ApiQuery};
use super::wire;
use crate::error::HostError;
use crate::intake::Intake;
use crate::queue::Queue;
use crate::settings::SettingsService;

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
///
/// The body is read as a stream, one item at a time; each item is checked like an
/// enqueue (SD.Next's request contract, names against the pool's lists). At most
/// `import_max_items` items (a setting); the answer counts every rejected item
/// (`rejected_count`) and lists the first 1000, each with its index, reason and path.
#[utoipa::path(post, path = scheduler_api::routes::IMPORT, tag = "transfer", operation_id = "import_tasks",
    request_body = ImportRequest,
    responses(
        (status = 200, description = "What was imported and what was rejected.", body = ImportResponse),
        (status = 400, description = "The body is not JSON.", body = MessageResponse),
        (status = 413, description = "More items than `import_max_items`, or a body over 64 MiB: nothing was imported.", body = MessageResponse),
        (status = 422, description = "The body has no `content` string, or `content` is not a JSON array.", body = MessageResponse),
    ))]
pub async fn import(
    State(intake): State<Arc<Intake>>,
    State(settings): State<Arc<SettingsService>>,
    body: Body,
) -> Result<Json<ImportResponse>, ApiError> {
    let mut read = 0usize;
    let chunks = body.into_data_stream().map(move |chunk| {
        let chunk =
            chunk.map_err(|e| HostError::BadRequest(format!("cannot read the body: {e}")))?;
        read += chunk.len();
        if read > LARGE_BODY {
            return Err(HostError::TooLarge(format!(
                "the import body is larger than {} MiB; nothing was imported",
                LARGE_BODY >> 20
            )));
        }
        Ok(chunk)
    });
    let max_items = settings.get().import_max_items;
    Ok(Json(intake.import(chunks, max_items).await?))
}
