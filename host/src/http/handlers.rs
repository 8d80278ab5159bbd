//! Route handlers: parse, call one [`Host`] operation, convert to the wire shape.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use scheduler_api::{
    DataResponse, EnqueueResponse, HistoryResponse, ImportRequest, MessageResponse, PositionData,
    QueueResponse, ResultImage, SettingsPatch, TaskStatus, TaskType, UpdateTaskRequest,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{ApiError, parse_json};
use super::wire::{self, TimeFmt};
use crate::app::Host;
use crate::queue::{self, MoveTarget};
use crate::results::{content_type, image};
use crate::store::ops::{self, HistoryFilter, TaskEdit, TaskRow};

type H = State<Arc<Host>>;
type ApiResult<T> = Result<T, ApiError>;

fn ok(message: impl Into<String>) -> Json<MessageResponse> {
    Json(MessageResponse::ok(message))
}

fn valid_id(id: &str) -> ApiResult<String> {
    if queue::valid_task_id(id) {
        Ok(id.to_owned())
    } else {
        Err(ApiError::task_not_found())
    }
}

async fn load(h: &Host, id: &str, full: bool) -> ApiResult<TaskRow> {
    let id = valid_id(id)?;
    h.store
        .call(move |c| ops::get_task(c, &id, full))
        .await
        .map_err(crate::app::HostError::from)?
        .ok_or_else(ApiError::task_not_found)
}

// ---------------------------------------------------------------------------------------
// Enqueue

async fn enqueue(
    h: Arc<Host>,
    kind: TaskType,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Json<EnqueueResponse>> {
    let body: Map<String, Value> = parse_json(body)?;
    let key = headers
        .get(scheduler_api::IDEMPOTENCY_KEY_HEADER)
        .map(|v| v.to_str().map(str::to_owned))
        .transpose()
        .map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII"))?
        .filter(|k| !k.is_empty());
    if key.as_ref().is_some_and(|k| k.len() > 200) {
        return Err(ApiError::bad_request("Idempotency-Key is too long"));
    }
    Ok(Json(h.enqueue(kind, body, key).await?))
}

/// `POST /queue/txt2img`.
pub async fn enqueue_txt2img(
    State(h): H,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<EnqueueResponse>> {
    enqueue(h, TaskType::Txt2img, &headers, &body).await
}

/// `POST /queue/img2img`.
pub async fn enqueue_img2img(
    State(h): H,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<EnqueueResponse>> {
    enqueue(h, TaskType::Img2img, &headers, &body).await
}

/// `POST /queue/control`.
pub async fn enqueue_control(
    State(h): H,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<EnqueueResponse>> {
    enqueue(h, TaskType::Control, &headers, &body).await
}

// ---------------------------------------------------------------------------------------
// Listings

/// Paging and search query.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
    offset: Option<i64>,
    q: Option<String>,
    status: Option<String>,
}

fn paging(q: &ListQuery) -> (i64, i64) {
    (
        q.limit.unwrap_or(20).clamp(0, 1000),
        q.offset.unwrap_or(0).max(0),
    )
}

/// `GET /queue`.
pub async fn get_queue(State(h): H, Query(q): Query<ListQuery>) -> ApiResult<Json<QueueResponse>> {
    let (limit, offset) = paging(&q);
    let search = q.q.clone();
    let (rows, total, running) = h
        .store
        .call(move |c| {
            let (rows, total) = ops::list_queue(c, search.as_deref(), limit, offset)?;
            Ok((rows, total, ops::running_ids(c)?))
        })
        .await
        .map_err(crate::app::HostError::from)?;
    let tasks = rows
        .iter()
        .enumerate()
        .map(|(i, r)| wire::task(r, TimeFmt::Millis, Some(offset + i as i64)))
        .collect();
    Ok(Json(QueueResponse {
        current_task_id: running.first().cloned(),
        current_task_ids: running,
        pending_tasks: tasks,
        total_pending_tasks: total,
        paused: h.is_paused(),
    }))
}

/// `GET /history`.
pub async fn get_history(
    State(h): H,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<HistoryResponse>> {
    let (limit, offset) = paging(&q);
    let filter = match q.status.as_deref().unwrap_or("") {
        "" | "all" => HistoryFilter::All,
        "bookmarked" => HistoryFilter::Bookmarked,
        s => match TaskStatus::parse(s) {
            Some(st) if st.is_finished() => HistoryFilter::Status(st),
            _ => return Err(ApiError::invalid(format!("unknown status filter `{s}`"))),
        },
    };
    let search = q.q.clone();
    let (rows, total) = h
        .store
        .call(move |c| ops::list_history(c, filter, search.as_deref(), limit, offset))
        .await
        .map_err(crate::app::HostError::from)?;
    Ok(Json(HistoryResponse {
        tasks: rows
            .iter()
            .map(|r| wire::task(r, TimeFmt::Millis, None))
            .collect(),
        total,
    }))
}

// ---------------------------------------------------------------------------------------
// One task

/// `GET /task/{id}`.
pub async fn get_task(State(h): H, Path(id): Path<String>) -> ApiResult<Response> {
    let row = load(&h, &id, false).await?;
    let r2 = row.clone();
    let pos = h
        .store
        .call(move |c| ops::position(c, &r2))
        .await
        .map_err(crate::app::HostError::from)?;
    Ok(Json(DataResponse {
        success: true,
        data: wire::task(&row, TimeFmt::Iso, pos),
    })
    .into_response())
}

/// `GET /task/{id}/request`: the full stored request, images and page snapshot included.
pub async fn get_task_request(State(h): H, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let row = load(&h, &id, true).await?;
    Ok(Json(serde_json::json!({
        "success": true,
        "data": {
            "id": row.id,
            "type": row.task_type,
            "status": row.status,
            "name": row.name,
            "checkpoint": row.checkpoint,
            "vae": row.vae,
            "callback_url": row.callback_url,
            "request": row.request,
            "page_snapshot": row.page_snapshot,
            "info": row.info,
        }
    })))
}

/// `GET /task/{id}/position`.
pub async fn get_position(
    State(h): H,
    Path(id): Path<String>,
) -> ApiResult<Json<DataResponse<PositionData>>> {
    let row = load(&h, &id, false).await?;
    let status = row.status;
    let pos = h
        .store
        .call(move |c| ops::position(c, &row))
        .await
        .map_err(crate::app::HostError::from)?;
    Ok(Json(DataResponse {
        success: true,
        data: PositionData {
            status,
            position: pos,
        },
    }))
}

/// `PUT /task/{id}`.
pub async fn put_task(
    State(h): H,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<MessageResponse>> {
    let id = valid_id(&id)?;
    let req: UpdateTaskRequest = parse_json(&body)?;
    let checkpoint = req
        .checkpoint
        .map(|c| match queue::checkpoint_spec(Some(&c)) {
            queue::CheckpointSpec::Loaded => Ok(None),
            queue::CheckpointSpec::Title(t) => Ok(Some(t)),
            _ => Err(ApiError::invalid(
                "checkpoint patterns are only accepted at enqueue",
            )),
        });
    let checkpoint = checkpoint.transpose()?;
    let edit = TaskEdit {
        name: req.name.map(|n| Some(n).filter(|n| !n.trim().is_empty())),
        checkpoint,
        params: req.params,
    };
    h.edit(id, edit).await?;
    Ok(ok("Task updated."))
}

/// `DELETE /task/{id}` (and the old `POST /delete/{id}`).
pub async fn delete_task(State(h): H, Path(id): Path<String>) -> ApiResult<Json<MessageResponse>> {
    let id = valid_id(&id)?;
    Ok(ok(h.delete(id).await?))
}

/// `POST /task/{id}/run`.
pub async fn run_task(State(h): H, Path(id): Path<String>) -> ApiResult<Json<MessageResponse>> {
    let id = valid_id(&id)?;
    let row = load(&h, &id, false).await?;
    if row.status == TaskStatus::Running {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            scheduler_api::ErrorCode::Conflict,
            "Task is running",
        ));
    }
    Ok(ok(h.run_now(id).await?))
}

/// `POST /task/{id}/requeue`.
pub async fn requeue(State(h): H, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id = valid_id(&id)?;
    let new_id = h.requeue(id).await?;
    Ok(Json(
        serde_json::json!({"success": true, "message": "Task requeued", "task_id": new_id}),
    ))
}

/// `POST /task/requeue-failed`.
pub async fn requeue_failed(State(h): H) -> ApiResult<Json<MessageResponse>> {
    let n = h.requeue_failed().await?;
    if n == 0 {
        return Ok(Json(MessageResponse {
            success: false,
            message: "No failed tasks".into(),
            code: None,
        }));
    }
    Ok(ok(format!("Requeued {n} failed tasks")))
}

/// `POST /task/{id}/move/{over_id}`.
pub async fn move_task(
    State(h): H,
    Path((id, over)): Path<(String, String)>,
) -> ApiResult<Json<MessageResponse>> {
    let id = valid_id(&id)?;
    let target = MoveTarget::parse(&over);
    if let MoveTarget::Before(o) = &target {
        valid_id(o)?;
    }
    let msg = match target {
        MoveTarget::Top => "Task moved to top",
        MoveTarget::Bottom => "Task moved to bottom",
        MoveTarget::Before(_) => "Task moved",
    };
    h.move_task(id, target).await?;
    Ok(ok(msg))
}

async fn bookmark(h: Arc<Host>, id: &str, on: bool) -> ApiResult<Json<MessageResponse>> {
    let id = valid_id(id)?;
    h.set_bookmark(id, on).await?;
    Ok(ok(if on {
        "Task bookmarked"
    } else {
        "Task unbookmarked"
    }))
}

/// `POST /task/{id}/bookmark`.
pub async fn bookmark_task(
    State(h): H,
    Path(id): Path<String>,
) -> ApiResult<Json<MessageResponse>> {
    bookmark(h, &id, true).await
}

/// `POST /task/{id}/unbookmark`.
pub async fn unbookmark_task(
    State(h): H,
    Path(id): Path<String>,
) -> ApiResult<Json<MessageResponse>> {
    bookmark(h, &id, false).await
}

/// `?name=` of rename.
#[derive(Debug, Deserialize)]
pub struct RenameQuery {
    name: Option<String>,
}

/// `POST /task/{id}/rename?name=`.
pub async fn rename_task(
    State(h): H,
    Path(id): Path<String>,
    Query(q): Query<RenameQuery>,
) -> ApiResult<Json<MessageResponse>> {
    let id = valid_id(&id)?;
    let name = q
        .name
        .ok_or_else(|| ApiError::invalid("query parameter `name` is required"))?;
    h.rename(id, name).await?;
    Ok(ok("Task renamed."))
}

// ---------------------------------------------------------------------------------------
// Results

/// `?zip=` of results.
#[derive(Debug, Deserialize)]
pub struct ResultsQuery {
    zip: Option<String>,
}

/// `GET /task/{id}/results` (JSON, or a zip with `?zip=true`).
pub async fn get_results(
    State(h): H,
    Path(id): Path<String>,
    Query(q): Query<ResultsQuery>,
) -> ApiResult<Response> {
    let row = load(&h, &id, false).await?;
    if !row.status.is_finished() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            scheduler_api::ErrorCode::Conflict,
            format!("Task is {}", row.status.as_str()),
        ));
    }
    let zip = matches!(q.zip.as_deref(), Some("true" | "1" | "True" | "yes"));
    let files = h.files.clone();
    let entries: Vec<(std::path::PathBuf, String, String)> = row
        .images
        .iter()
        .filter_map(|i| {
            files
                .file_path(&row.id, &i.file_name)
                .map(|p| (p, i.file_name.clone(), i.infotext.clone()))
        })
        .collect();
    if zip {
        let tmp_dir = h.config.data_dir.clone();
        let file = tokio::task::spawn_blocking(move || build_zip(&tmp_dir, &entries))
            .await
            .map_err(|e| ApiError::from(crate::app::HostError::Internal(e.to_string())))?
            .map_err(|e| ApiError::from(crate::app::HostError::Internal(format!("zip: {e}"))))?;
        let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
        return Ok((
            [
                (header::CONTENT_TYPE, "application/zip".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=results-{}.zip", row.id),
                ),
            ],
            Body::from_stream(stream),
        )
            .into_response());
    }
    let data = tokio::task::spawn_blocking(move || {
        entries
            .into_iter()
            .filter_map(|(path, _, infotext)| {
                let bytes = std::fs::read(&path).ok()?;
                let png = image::to_png_with_parameters(&bytes, &infotext).ok()?;
                Some(ResultImage {
                    image: format!(
                        "data:image/png;base64,{}",
                        base64::engine::general_purpose::STANDARD.encode(png)
                    ),
                    infotext,
                })
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ApiError::from(crate::app::HostError::Internal(e.to_string())))?;
    Ok(Json(DataResponse {
        success: true,
        data,
    })
    .into_response())
}

/// Writes a zip of the stored files into an anonymous temporary file (streamed afterwards).
fn build_zip(
    dir: &std::path::Path,
    entries: &[(std::path::PathBuf, String, String)],
) -> Result<std::fs::File, String> {
    use std::io::{Seek, Write};
    let file = tempfile::tempfile_in(dir).map_err(|e| e.to_string())?;
    let mut zw = zip::ZipWriter::new(file);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (path, name, _) in entries {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        zw.start_file(name.as_str(), opts)
            .map_err(|e| e.to_string())?;
        zw.write_all(&bytes).map_err(|e| e.to_string())?;
    }
    let mut file = zw.finish().map_err(|e| e.to_string())?;
    file.rewind().map_err(|e| e.to_string())?;
    Ok(file)
}

/// `GET /task/{id}/images/{index}`: the stored bytes with their content type.
pub async fn get_image(State(h): H, Path((id, index)): Path<(String, u32)>) -> ApiResult<Response> {
    let row = load(&h, &id, false).await?;
    let img = row
        .images
        .iter()
        .find(|i| i.index == index)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                scheduler_api::ErrorCode::NotFound,
                "Image not found",
            )
        })?;
    let path = h.files.file_path(&row.id, &img.file_name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            scheduler_api::ErrorCode::NotFound,
            "Image not found",
        )
    })?;
    let bytes = tokio::fs::read(&path).await.map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            scheduler_api::ErrorCode::NotFound,
            "Image file is missing",
        )
    })?;
    Ok(([(header::CONTENT_TYPE, content_type(&img.format))], bytes).into_response())
}

// ---------------------------------------------------------------------------------------
// Queue control

/// `POST /queue/pause`.
pub async fn pause(State(h): H) -> ApiResult<Json<MessageResponse>> {
    h.set_paused(true).await?;
    Ok(ok("Queue paused."))
}

/// `POST /queue/resume`.
pub async fn resume(State(h): H) -> ApiResult<Json<MessageResponse>> {
    h.set_paused(false).await?;
    Ok(ok("Queue resumed."))
}

/// `POST /queue/clear`.
pub async fn clear_queue(State(h): H) -> ApiResult<Json<MessageResponse>> {
    h.clear_queue().await?;
    Ok(ok("Queue cleared."))
}

/// `POST /history/clear`.
pub async fn clear_history(State(h): H) -> ApiResult<Json<MessageResponse>> {
    h.clear_history(None).await?;
    Ok(ok("History cleared."))
}

// ---------------------------------------------------------------------------------------
// Export / import

/// `?limit=&offset=` of export.
#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /export`.
pub async fn export(
    State(h): H,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Json<Vec<scheduler_api::ExportItem>>> {
    let limit = q.limit.unwrap_or(1000).clamp(0, 100_000);
    let offset = q.offset.unwrap_or(0).max(0);
    let rows = h
        .store
        .call(move |c| ops::export_pending(c, limit, offset))
        .await
        .map_err(crate::app::HostError::from)?;
    Ok(Json(rows.iter().map(wire::export_item).collect()))
}

/// `POST /import`.
pub async fn import(State(h): H, body: Bytes) -> ApiResult<Json<scheduler_api::ImportResponse>> {
    let req: ImportRequest = parse_json(&body)?;
    Ok(Json(h.import(&req.content).await?))
}

// ---------------------------------------------------------------------------------------
// Backends, settings, health

/// `GET /samplers`.
pub async fn samplers(State(h): H) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(h.samplers().await?))
}

/// `GET /sd-models`.
pub async fn sd_models(State(h): H) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(
        h.checkpoints()
            .await?
            .into_iter()
            .map(|c| c.title)
            .collect(),
    ))
}

/// `GET /checkpoints`.
pub async fn checkpoints(State(h): H) -> ApiResult<Json<Vec<scheduler_api::CheckpointInfo>>> {
    Ok(Json(h.checkpoints().await?))
}

/// `GET /backends`.
pub async fn backends(State(h): H) -> Json<Vec<scheduler_api::BackendInfo>> {
    Json(h.backend_infos())
}

/// `GET /settings`.
pub async fn get_settings(State(h): H) -> Json<scheduler_api::Settings> {
    Json(h.settings())
}

/// `PUT /settings`.
pub async fn put_settings(State(h): H, body: Bytes) -> ApiResult<Json<scheduler_api::Settings>> {
    let patch: SettingsPatch = parse_json(&body)?;
    Ok(Json(h.update_settings(patch).await?))
}

/// `GET /health`.
pub async fn health(State(h): H) -> Json<Value> {
    Json(serde_json::json!({
        "success": true,
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "paused": h.is_paused(),
    }))
}
