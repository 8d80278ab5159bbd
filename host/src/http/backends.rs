//! `GET /samplers`, `/sd-models`, `/checkpoints`, `/backends`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use scheduler_api::{BackendInfo, CheckpointInfo};

use super::error::ApiError;
use crate::backends::Backends;
use crate::queue::Queue;

/// `GET /samplers`.
pub async fn samplers(
    State(backends): State<Arc<Backends>>,
) -> Result<Json<Vec<String>>, ApiError> {
    Ok(Json(backends.samplers().await?))
}

/// `GET /sd-models`.
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

/// `GET /checkpoints`.
pub async fn checkpoints(
    State(backends): State<Arc<Backends>>,
) -> Result<Json<Vec<CheckpointInfo>>, ApiError> {
    Ok(Json(backends.checkpoints().await?))
}

/// `GET /backends`.
pub async fn list(
    State(backends): State<Arc<Backends>>,
    State(queue): State<Arc<Queue>>,
) -> Result<Json<Vec<BackendInfo>>, ApiError> {
    let running = queue.running().await?;
    Ok(Json(backends.infos(&running)))
}
