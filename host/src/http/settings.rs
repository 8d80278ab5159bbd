//! `GET`/`PUT /settings` and `GET /health`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use scheduler_api::{
    HealthResponse, LeaseHealth, MessageResponse, Settings, SettingsPatch, StoreHealth,
    StoreKindName,
};

use super::error::{ApiError, ApiJson};
use crate::error::HostError;
use crate::lease::HostStatus;
use crate::queue::Queue;
use crate::settings::SettingsService;
use crate::store::api::StoreKind;

/// Host settings.
#[utoipa::path(get, path = scheduler_api::routes::SETTINGS, tag = "settings", operation_id = "get_settings",
    responses((status = 200, description = "The settings.", body = Settings)))]
pub async fn get(State(settings): State<Arc<SettingsService>>) -> Json<Settings> {
    // As stored (another host sharing the store may have changed them); this host's copy
    // when the store cannot answer.
    Json(settings.refresh().await.unwrap_or_else(|_| settings.get()))
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
pub async fn health(
    State(queue): State<Arc<Queue>>,
    State(host): State<Arc<HostStatus>>,
) -> Result<Json<HealthResponse>, ApiError> {
    // The database not answering is what this shows, not a failure of the check.
    let (paused, reachable) = match queue.is_paused().await {
        Ok(p) => (p, true),
        Err(HostError::Unavailable(_)) => (queue.last_paused(), false),
        Err(e) => return Err(e.into()),
    };
    let kind = match queue.store_kind() {
        StoreKind::Sqlite => StoreKindName::Sqlite,
        StoreKind::Postgres => StoreKindName::Postgres,
    };
    Ok(Json(HealthResponse {
        success: true,
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        paused,
        store: StoreHealth { kind, reachable },
        host_id: Some(host.host_id.clone()),
        lease: host.leases.as_ref().map(|l| {
            let (seconds, held, renewed_ms_ago) = l.snapshot();
            LeaseHealth {
                seconds,
                held: held as u64,
                renewed_ms_ago,
            }
        }),
        hold: queue.hold_reason(),
    }))
}
