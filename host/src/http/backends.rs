//! `GET /samplers`, `/sd-models`, `/checkpoints`; the pool: `GET`/`POST /backends`,
//! `DELETE /backends/{id}`, `POST /backends/{id}/enable|disable|drain`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::State;
use scheduler_api::{AddBackend, BackendInfo, CheckpointInfo, MessageResponse};

use super::error::{ApiError, parse_json};
use super::ok;
use crate::backends::Backends;
use crate::pool::{Admin, Pool};

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
pub async fn list(State(pool): State<Arc<Pool>>) -> Result<Json<Vec<BackendInfo>>, ApiError> {
    Ok(Json(pool.infos().await?))
}

/// Add an SD.Next backend to the pool (persisted; back after a restart until removed). Its
/// credentials are used for its requests and never shown; its origin is allowed.
#[utoipa::path(post, path = scheduler_api::routes::BACKENDS, tag = "backends", operation_id = "add_backend",
    request_body = AddBackend,
    responses(
        (status = 200, description = "The backend as listed.", body = BackendInfo),
        (status = 400, description = "Malformed body.", body = MessageResponse),
        (status = 409, description = "In the pool already, or the pool is full.", body = MessageResponse),
        (status = 422, description = "Not an http(s) base URL.", body = MessageResponse),
    ))]
pub async fn add(
    State(pool): State<Arc<Pool>>,
    body: Bytes,
) -> Result<Json<BackendInfo>, ApiError> {
    let req: AddBackend = parse_json(&body)?;
    Ok(Json(pool.add(&req.url).await?))
}

/// Remove a backend: it takes no more task, its running task goes back to the head of the
/// queue; an added one is forgotten, a `--backend` one returns at the next start.
#[utoipa::path(delete, path = scheduler_api::routes::BACKEND, tag = "backends", operation_id = "remove_backend",
    params(("id" = String, Path, description = "Backend id (`flag-N`, `added-N`).")),
    responses(
        (status = 200, description = "Removed.", body = MessageResponse),
        (status = 404, description = "No such backend.", body = MessageResponse),
    ))]
pub async fn remove(
    State(pool): State<Arc<Pool>>,
    Path(id): Path<String>,
) -> Result<Json<MessageResponse>, ApiError> {
    pool.remove(&id).await?;
    Ok(ok("Backend removed"))
}

/// Let a backend take tasks again.
#[utoipa::path(post, path = scheduler_api::routes::BACKEND_ENABLE, tag = "backends", operation_id = "enable_backend",
    params(("id" = String, Path, description = "Backend id.")),
    responses(
        (status = 200, description = "The backend as listed.", body = BackendInfo),
        (status = 404, description = "No such backend.", body = MessageResponse),
    ))]
pub async fn enable(
    State(pool): State<Arc<Pool>>,
    Path(id): Path<String>,
) -> Result<Json<BackendInfo>, ApiError> {
    Ok(Json(pool.admin(&id, Admin::Enable).await?))
}

/// Stop giving a backend tasks now: its running task is stopped and goes back to the head
/// of the queue (no attempt counted) for another backend.
#[utoipa::path(post, path = scheduler_api::routes::BACKEND_DISABLE, tag = "backends", operation_id = "disable_backend",
    params(("id" = String, Path, description = "Backend id.")),
    responses(
        (status = 200, description = "The backend as listed.", body = BackendInfo),
        (status = 404, description = "No such backend.", body = MessageResponse),
    ))]
pub async fn disable(
    State(pool): State<Arc<Pool>>,
    Path(id): Path<String>,
) -> Result<Json<BackendInfo>, ApiError> {
    Ok(Json(pool.admin(&id, Admin::Disable).await?))
}

/// Let a backend finish its running task, then disable it.
#[utoipa::path(post, path = scheduler_api::routes::BACKEND_DRAIN, tag = "backends", operation_id = "drain_backend",
    params(("id" = String, Path, description = "Backend id.")),
    responses(
        (status = 200, description = "The backend as listed.", body = BackendInfo),
        (status = 404, description = "No such backend.", body = MessageResponse),
    ))]
pub async fn drain(
    State(pool): State<Arc<Pool>>,
    Path(id): Path<String>,
) -> Result<Json<BackendInfo>, ApiError> {
    Ok(Json(pool.admin(&id, Admin::Drain).await?))
}
