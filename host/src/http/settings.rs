//! `GET`/`PUT /settings` and `GET /health`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use scheduler_api::{HealthResponse, MessageResponse, Settings, SettingsPatch};

use super::error::{ApiError, ApiJson};
use crate::queue::Queue;
use crate::settings::SettingsService;

/// Host settings.
#[utoipa::path(get, path = scheduler_api::routes::SETTINGS, tag = "settings", operation_id = "get_settings",
    responses((status = 200, description = "The settings.", body = Settings)))]
pub async fn get(State(settings): State<Arc<SettingsService>>) -> Json<Settings> {
    Json(settings.get())
}

/// Change settings (only the fields given).
#[utoipa::path(put, path = scheduler_api::routes::SETTINGS, tag = "settings", operation_id = "update_settings",
    request_body = SettingsPatch,
    responses(
        (status = 200, description = "The settings after the change.", body = Settings),
        (status = 422, description = "A value is out of range.", body = MessageResponse),
    ))]
pub async fn update(
    State(settings): State<Arc<SettingsService>>,
    ApiJson(patch): ApiJson<SettingsPatch>,
) -> Result<Json<Settings>, ApiError> {
    Ok(Json(settings.update(patch).await?))
}

/// Liveness.
#[utoipa::path(get, path = scheduler_api::routes::HEALTH, tag = "settings", operation_id = "get_health",
    responses((status = 200, description = "The host is up.", body = HealthResponse)))]
pub async fn health(State(queue): State<Arc<Queue>>) -> Result<Json<HealthResponse>, ApiError> {
    Ok(Json(HealthResponse {
        success: true,
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        paused: queue.is_paused().await?,
    }))
}
