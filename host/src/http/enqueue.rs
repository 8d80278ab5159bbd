//! `POST /queue/txt2img`, `/queue/img2img`, `/queue/control`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use scheduler_api::{
    EnqueueRequest, EnqueueResponse, IDEMPOTENCY_KEY_HEADER, MessageResponse, TaskType,
};

use super::error::{ApiError, ApiJson};
use crate::intake::Intake;

async fn enqueue(
    intake: Arc<Intake>,
    kind: TaskType,
    headers: &HeaderMap,
    body: EnqueueRequest,
) -> Result<Json<EnqueueResponse>, ApiError> {
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

/// Enqueue a txt2img task.
///
/// Every SD.Next field passes through, checked first against SD.Next's own request contract
/// (the backend's `/openapi.json`, else the committed table; names against the pool's lists);
/// `checkpoint` `*` or `<folder>/*` makes one task per checkpoint. The `Idempotency-Key`
/// header returns the first answer again.
#[utoipa::path(post, path = scheduler_api::routes::QUEUE_TXT2IMG, tag = "enqueue",
    operation_id = "enqueue_txt2img",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the enqueue idempotent (at most 200 visible ASCII characters).")),
    request_body = EnqueueRequest,
    responses(
        (status = 200, description = "The new task ids.", body = EnqueueResponse),
        (status = 422, description = "The request breaks SD.Next's request contract (a wrong type, a value SD.Next cannot run, an unknown checkpoint, sampler, VAE or upscaler): `path` names the field. Nothing is written.", body = MessageResponse),
        (status = 503, description = "A checkpoint pattern needs a reachable backend.", body = MessageResponse),
    ))]
pub async fn txt2img(
    State(intake): State<Arc<Intake>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EnqueueRequest>,
) -> Result<Json<EnqueueResponse>, ApiError> {
    enqueue(intake, TaskType::Txt2img, &headers, body).await
}

/// Enqueue an img2img task.
///
/// `init_images` (and `mask`) as base64 or data URLs; URLs and file paths are refused.
#[utoipa::path(post, path = scheduler_api::routes::QUEUE_IMG2IMG, tag = "enqueue",
    operation_id = "enqueue_img2img",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the enqueue idempotent (at most 200 visible ASCII characters).")),
    request_body = EnqueueRequest,
    responses(
        (status = 200, description = "The new task ids.", body = EnqueueResponse),
        (status = 422, description = "The request breaks SD.Next's request contract (a wrong type, a value SD.Next cannot run, an unknown checkpoint, sampler, VAE or upscaler): `path` names the field. Nothing is written.", body = MessageResponse),
        (status = 503, description = "A checkpoint pattern needs a reachable backend.", body = MessageResponse),
    ))]
pub async fn img2img(
    State(intake): State<Arc<Intake>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EnqueueRequest>,
) -> Result<Json<EnqueueResponse>, ApiError> {
    enqueue(intake, TaskType::Img2img, &headers, body).await
}

/// Enqueue a Control task (sent to `/sdapi/v1/control`): `control` units, each with its
/// `image`; `ip_adapter`, `init_control`, `mask` … as base64 or data URLs. 64 MiB limit.
#[utoipa::path(post, path = scheduler_api::routes::QUEUE_CONTROL, tag = "enqueue",
    operation_id = "enqueue_control",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the enqueue idempotent (at most 200 visible ASCII characters).")),
    request_body = EnqueueRequest,
    responses(
        (status = 200, description = "The new task ids.", body = EnqueueResponse),
        (status = 422, description = "The request breaks SD.Next's request contract (`path` names the field, e.g. `control[0].strength`), or an image field is not inline (`control[0].image`; a unit without an image). Nothing is written.", body = MessageResponse),
        (status = 503, description = "A checkpoint pattern needs a reachable backend.", body = MessageResponse),
    ))]
pub async fn control(
    State(intake): State<Arc<Intake>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EnqueueRequest>,
) -> Result<Json<EnqueueResponse>, ApiError> {
    enqueue(intake, TaskType::Control, &headers, body).await
}
