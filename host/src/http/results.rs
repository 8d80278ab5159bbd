//! `GET /task/{id}/results` (JSON or zip) and `GET /task/{id}/images/{index}`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use scheduler_api::{DataResponse, ErrorCode, MessageResponse, ResultImage, ResultsQuery};

use super::error::{ApiError, ApiQuery};
use super::task_id;
use crate::results::Results;

/// Results as PNG data URLs with their infotext; `?zip=true` streams a zip of the files.
#[utoipa::path(get, path = scheduler_api::routes::TASK_RESULTS, tag = "results", operation_id = "get_task_results",
    params(("id" = String, Path, description = "Task id."), ResultsQuery),
    responses(
        (status = 200, description = "The images (JSON), or the stored files as a zip.",
            content(
                (DataResponse<Vec<ResultImage>> = "application/json"),
                (Vec<u8> = "application/zip"),
            )),
        (status = 404, description = "No such task.", body = MessageResponse),
        (status = 409, description = "The task has not finished.", body = MessageResponse),
    ))]
pub async fn results(
    State(results): State<Arc<Results>>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ResultsQuery>,
) -> Result<Response, ApiError> {
    let id = task_id(&id)?;
    if q.wants_zip() {
        let file = results.zip(&id).await?;
        let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
        return Ok((
            [
                (header::CONTENT_TYPE, "application/zip".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=results-{id}.zip"),
                ),
            ],
            Body::from_stream(stream),
        )
            .into_response());
    }
    Ok(Json(DataResponse {
        success: true,
        data: results.images(&id).await?,
    })
    .into_response())
}

/// One stored image file, as stored (PNG or JPEG as SD.Next sent it).
#[utoipa::path(get, path = scheduler_api::routes::TASK_IMAGE, tag = "results", operation_id = "get_task_image",
    params(
        ("id" = String, Path, description = "Task id."),
        ("index" = u32, Path, description = "0-based image index."),
    ),
    responses(
        (status = 200, description = "The file.",
            content(
                (Vec<u8> = "image/png"),
                (Vec<u8> = "image/jpeg"),
                (Vec<u8> = "image/webp"),
                (Vec<u8> = "application/octet-stream"),
            )),
        (status = 404, description = "No such task or image.", body = MessageResponse),
    ))]
pub async fn image(
    State(results): State<Arc<Results>>,
    Path((id, index)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "Image not found",
        )
    };
    let index: u32 = index.parse().map_err(|_| not_found())?;
    let file = results
        .file(&task_id(&id)?, index)
        .await?
        .ok_or_else(not_found)?;
    Ok(([(header::CONTENT_TYPE, file.content_type)], file.bytes).into_response())
}
