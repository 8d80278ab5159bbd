//! `GET /task/{id}/results` (JSON or zip) and `GET /task/{id}/images/{index}`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use scheduler_api::{
    DataResponse, ErrorCode, ImageQuery, ImageSize, MessageResponse, ResultImage, ResultsQuery,
};

use super::error::{ApiError, ApiQuery};
use super::task_id;
use crate::results::{Rendition, Results};

/// How long a browser may reuse an image or thumbnail without asking again (s); after that
/// it revalidates with `If-None-Match` (304).
const IMAGE_MAX_AGE: u32 = 86_400;

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
        let stream = results.zip(&id).await?;
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

/// One stored image file, as stored (PNG or JPEG as SD.Next sent it), or with `size=thumb`
/// its thumbnail: a JPEG of at most 256 px on its longer side, made once by the host and
/// kept beside the image. Both carry `Cache-Control` and an `ETag` (`If-None-Match` → 304).
#[utoipa::path(get, path = scheduler_api::routes::TASK_IMAGE, tag = "results", operation_id = "get_task_image",
    params(
        ("id" = String, Path, description = "Task id."),
        ("index" = u32, Path, description = "0-based image index."),
        ImageQuery,
    ),
    responses(
        (status = 200, description = "The file, or its thumbnail (image/jpeg).",
            content(
                (Vec<u8> = "image/png"),
                (Vec<u8> = "image/jpeg"),
                (Vec<u8> = "image/webp"),
                (Vec<u8> = "application/octet-stream"),
            )),
        (status = 304, description = "Not modified (`If-None-Match` matched the `ETag`)."),
        (status = 404, description = "No such task or image (deleted, or none stored).", body = MessageResponse),
        (status = 422, description = "Unknown `size`.", body = MessageResponse),
    ))]
pub async fn image(
    State(results): State<Arc<Results>>,
    Path((id, index)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ImageQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "Image not found",
        )
    };
    let index: u32 = index.parse().map_err(|_| not_found())?;
    let rendition = match q.size.unwrap_or_default() {
        ImageSize::Full => Rendition::Full,
        ImageSize::Thumb => Rendition::Thumb,
    };
    let file = results
        .file(&task_id(&id)?, index, rendition)
        .await?
        .ok_or_else(not_found)?;
    let cache = format!("private, max-age={IMAGE_MAX_AGE}");
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == file.etag || t.trim() == "*")
        });
    if unchanged {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, file.etag), (header::CACHE_CONTROL, cache)],
        )
            .into_response());
    }
    Ok((
        [
            (header::CONTENT_TYPE, file.content_type.to_owned()),
            (header::CONTENT_LENGTH, file.len.to_string()),
            (header::ETAG, file.etag),
            (header::CACHE_CONTROL, cache),
        ],
        axum::body::Body::from_stream(file.body),
    )
        .into_response())
}
