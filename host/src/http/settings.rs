//! `GET`/`PUT /settings` and `GET /health`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use scheduler_api::{Settings, SettingsPatch};
use serde_json::Value;

use super::error::{ApiError, parse_json};
use crate::queue::Queue;
use crate::settings::SettingsService;

/// `GET /settings`.
pub async fn get(State(settings): State<Arc<SettingsService>>) -> Json<Settings> {
    Json(settings.get())
}

/// `PUT /settings`.
pub async fn update(
    State(settings): State<Arc<SettingsService>>,
    body: Bytes,
) -> Result<Json<Settings>, ApiError> {
    let patch: SettingsPatch = parse_json(&body)?;
    Ok(Json(settings.update(patch).await?))
}

/// `GET /health`.
pub async fn health(State(queue): State<Arc<Queue>>) -> Result<Json<Value>, ApiError> {
    Ok(Json(serde_json::json!({
        "success": true,
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "paused": queue.is_paused().await?,
    })))
}
