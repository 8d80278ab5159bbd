//! `GET /task/{id}/results` (JSON or zip) and `GET /task/{id}/images/{index}`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use scheduler_api::{DataResponse, ErrorCode};
use serde::Deserialize;

use super::error::ApiError;
use super::task_id;
use crate::results::Results;

/// `?zip=` of results.
#[derive(Debug, Deserialize)]
pub struct ResultsQuery {
    zip: Option<String>,
}

/// `GET /task/{id}/results` (JSON, or a zip with `?zip=true`).
pub async fn results(
    State(results): State<Arc<Results>>,
    Path(id): Path<String>,
    Query(q): Query<ResultsQuery>,
) -> Result<Response, ApiError> {
    let id = task_id(&id)?;
    if matches!(q.zip.as_deref(), Some("true" | "1" | "True" | "yes")) {
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

/// `GET /task/{id}/images/{index}`: the stored bytes with their content type.
pub async fn image(
    State(results): State<Arc<Results>>,
    Path((id, index)): Path<(String, u32)>,
) -> Result<Response, ApiError> {
    let file = results.file(&task_id(&id)?, index).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "Image not found",
        )
    })?;
    Ok(([(header::CONTENT_TYPE, file.content_type)], file.bytes).into_response())
}
