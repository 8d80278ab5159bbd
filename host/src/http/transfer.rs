//! `GET /export`, `POST /import`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use scheduler_api::{ExportItem, ImportRequest, ImportResponse};
use serde::Deserialize;

use super::error::{ApiError, parse_json};
use super::wire;
use crate::intake::Intake;
use crate::queue::Queue;

/// `?limit=&offset=` of export.
#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /export`.
pub async fn export(
    State(queue): State<Arc<Queue>>,
    Query(q): Query<ExportQuery>,
) -> Result<Json<Vec<ExportItem>>, ApiError> {
    let limit = q.limit.unwrap_or(1000).clamp(0, 100_000);
    let offset = q.offset.unwrap_or(0).max(0);
    let rows = queue.export(limit, offset).await?;
    Ok(Json(rows.iter().map(wire::export_item).collect()))
}

/// `POST /import`.
pub async fn import(
    State(intake): State<Arc<Intake>>,
    body: Bytes,
) -> Result<Json<ImportResponse>, ApiError> {
    let req: ImportRequest = parse_json(&body)?;
    Ok(Json(intake.import(&req.content).await?))
}
