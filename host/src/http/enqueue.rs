//! `POST /queue/txt2img`, `/queue/img2img`, `/queue/control`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use scheduler_api::{EnqueueRequest, EnqueueResponse, IDEMPOTENCY_KEY_HEADER, TaskType};

use super::error::{ApiError, parse_json};
use crate::intake::Intake;

async fn enqueue(
    intake: Arc<Intake>,
    kind: TaskType,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Json<EnqueueResponse>, ApiError> {
    let body: EnqueueRequest = parse_json(body)?;
    let key = headers
        .get(IDEMPOTENCY_KEY_HEADER)
        .map(|v| v.to_str().map(str::to_owned))
        .transpose()
        .map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII"))?
        .filter(|k| !k.is_empty());
    if key.as_ref().is_some_and(|k| k.len() > 200) {
        return Err(ApiError::bad_request("Idempotency-Key is too long"));
    }
    Ok(Json(intake.enqueue(kind, body, key).await?))
}

/// `POST /queue/txt2img`.
pub async fn txt2img(
    State(intake): State<Arc<Intake>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<EnqueueResponse>, ApiError> {
    enqueue(intake, TaskType::Txt2img, &headers, &body).await
}

/// `POST /queue/img2img`.
pub async fn img2img(
    State(intake): State<Arc<Intake>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<EnqueueResponse>, ApiError> {
    enqueue(intake, TaskType::Img2img, &headers, &body).await
}

/// `POST /queue/control`.
pub async fn control(
    State(intake): State<Arc<Intake>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<EnqueueResponse>, ApiError> {
    enqueue(intake, TaskType::Control, &headers, &body).await
}
