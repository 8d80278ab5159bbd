//! `GET /samplers`, `/sd-models`, `/checkpoints`, `/backends`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use scheduler_api::{BackendInfo, CheckpointInfo, MessageResponse};

use super::error::ApiError;
use crate::backends::Backends;
use crate::queue::Queue;

/// Sampler names (union over backends).
#[utoipa::path(get, path = scheduler_api::routes::SAMPLERS, tag = "backends", operation_id = "get_samplers",
    responses(
        (status = 200, description = "Sampler names.", body = Vec<String>),
        (status = 503, description = "No backend is reachable.", body = MessageResponse),
    ))]
pub async fn samplers(
    State(backends): State<Arc<Backends>>,
) -> Result<Json<Vec<String>>, ApiError> {
    Ok(Json(backends.samplers().await?))
}

/// Checkpoint titles (union over backends).
#[utoipa::path(get, path = scheduler_api::routes::SD_MODELS, tag = "backends", operation_id = "get_sd_models",
    responses(
        (status = 200, description = "Checkpoint titles.", body = Vec<String>),
        (status = 503, description = "No backend is reachable.", body = MessageResponse),
    ))]
pub async fn sd_models(
    State(backends): State<Arc<Backends>>,
) -> Result<Json<Vec<String>>, ApiError> {
    Ok(Json(
        backends
            .checkpoints()
            .await?
            .into_iter()
            .map(|c| c.title)
            .collect(),
    ))
}

/// Checkpoints with the backends that list them.
#[utoipa::path(get, path = scheduler_api::routes::CHECKPOINTS, tag = "backends", operation_id = "get_checkpoints",
    responses(
        (status = 200, description = "Checkpoints.", body = Vec<CheckpointInfo>),
        (status = 503, description = "No backend is reachable.", body = MessageResponse),
    ))]
pub async fn checkpoints(
    State(backends): State<Arc<Backends>>,
) -> Result<Json<Vec<CheckpointInfo>>, ApiError> {
    Ok(Json(backends.checkpoints().await?))
}

/// Backends and their state.
#[utoipa::path(get, path = scheduler_api::routes::BACKENDS, tag = "backends", operation_id = "get_backends",
    responses((status = 200, description = "Backends.", body = Vec<BackendInfo>)))]
pub async fn list(
    State(backends): State<Arc<Backends>>,
    State(queue): State<Arc<Queue>>,
) -> Result<Json<Vec<BackendInfo>>, ApiError> {
    let running = queue.running().await?;
    Ok(Json(backends.infos(&running)))
}
