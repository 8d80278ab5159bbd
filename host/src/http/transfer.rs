//! `GET /export`, `POST /import`; the export array streamed page by page (also for
//! `POST /tasks/export`).

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use scheduler_api::{ExportItem, ExportQuery, ImportRequest, ImportResponse, MessageResponse};

use super::LARGE_BODY;
use super::error::{ApiError, ApiQuery};
use super::wire;
use crate::error::HostError;
use crate::intake::Intake;
use crate::model::TaskRow;
use crate::model::cursor::PendingFrom;
use crate::queue::Queue;
use crate::settings::SettingsService;

/// Rows read per page of an export.
const PAGE_ROWS: usize = 64;
/// Bytes of requests (init images, snapshots) read per page of an export.
const PAGE_BYTES: usize = 8 << 20;

/// Where an export's rows come from, one page at a time.
pub(super) enum ExportRows {
    /// Pending tasks in queue order: the next page starts at `from`, `left` rows to go.
    Pending {
        /// The queue.
        queue: Arc<Queue>,
        /// The next page's start.
        from: PendingFrom,
        /// Rows still wanted.
        left: usize,
    },
    /// A resolved selection: its ids, the next one to read at `next`.
    Ids {
        /// The queue.
        queue: Arc<Queue>,
        /// The ids in the selection's order.
        ids: Arc<Vec<String>>,
        /// The next id to read.
        next: usize,
    },
}

impl ExportRows {
    /// The next page; `None` at the end.
    async fn page(&mut self) -> Result<Option<Vec<TaskRow>>, HostError> {
        match self {
            ExportRows::Pending { queue, from, left } => {
                if *left == 0 {
                    return Ok(None);
                }
                let rows = queue
                    .export_page(*from, PAGE_ROWS.min(*left), PAGE_BYTES)
                    .await?;
                let Some(last) = rows.last() else {
                    return Ok(None);
                };
                *from = PendingFrom::After(last.rank, last.seq);
                *left -= rows.len();
                Ok(Some(rows))
            }
            ExportRows::Ids { queue, ids, next } => {
                if *next >= ids.len() {
                    return Ok(None);
                }
                let (rows, used) = queue.rows_page(ids.clone(), *next, PAGE_BYTES).await?;
                *next += used.max(1);
                Ok(Some(rows))
            }
        }
    }
}

/// The export array as a streamed answer: `[`, each page's items as it is read, `]`. The
/// first page is read before answering (a failure is an error answer); a failure after
/// that ends the body with an error (a broken transfer, never an array that looks whole).
/// Memory holds one page and the few items in the channel, whatever the export's size.
pub(super) async fn stream_export(mut rows: ExportRows) -> Result<Response, ApiError> {
    let first = rows.page().await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::spawn(async move {
        let mut page = first;
        let mut started = false;
        if tx.send(Ok(Bytes::from_static(b"["))).await.is_err() {
            return;
        }
        while let Some(list) = page {
            for row in list {
                let mut item = if started { b",".to_vec() } else { Vec::new() };
                started = true;
                if let Err(e) = serde_json::to_writer(&mut item, &wire::export_item(row)) {
                    let _ = tx.send(Err(std::io::Error::other(e))).await;
                    return;
                }
                if tx.send(Ok(Bytes::from(item))).await.is_err() {
                    return;
                }
            }
            page = match rows.page().await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("export: {e}");
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
        }
        let _ = tx.send(Ok(Bytes::from_static(b"]"))).await;
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
        .into_response())
}

/// Pending tasks in the original export shape (full request in `params`), streamed.
#[utoipa::path(get, path = scheduler_api::routes::EXPORT, tag = "transfer", operation_id = "export_tasks",
    params(ExportQuery),
    responses((status = 200, description = "The export array.", body = Vec<ExportItem>)))]
pub async fn export(
    State(queue): State<Arc<Queue>>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(1000).clamp(0, 100_000);
    let offset = q.offset.unwrap_or(0).max(0);
    stream_export(ExportRows::Pending {
        queue,
        from: PendingFrom::Offset(offset),
        left: usize::try_from(limit).unwrap_or(0),
    })
    .await
}

/// Import an export (ours, or the original's API tasks); rejected items are reported.
///
/// The body is read as a stream, one item at a time; each item is checked like an
/// enqueue (SD.Next's request contract, names against the pool's lists). At most
/// `import_max_items` items (a setting); the answer counts every rejected item
/// (`rejected_count`) and lists the first 1000, each with its index, reason and path.
#[utoipa::path(post, path = scheduler_api::routes::IMPORT, tag = "transfer", operation_id = "import_tasks",
    request_body = ImportRequest,
    responses(
        (status = 200, description = "What was imported and what was rejected.", body = ImportResponse),
        (status = 400, description = "The body is not JSON.", body = MessageResponse),
        (status = 413, description = "More items than `import_max_items`, or a body over 64 MiB: nothing was imported.", body = MessageResponse),
        (status = 422, description = "The body has no `content` string, or `content` is not a JSON array.", body = MessageResponse),
    ))]
pub async fn import(
    State(intake): State<Arc<Intake>>,
    State(settings): State<Arc<SettingsService>>,
    body: Body,
) -> Result<Json<ImportResponse>, ApiError> {
    let mut read = 0usize;
    let chunks = body.into_data_stream().map(move |chunk| {
        let chunk =
            chunk.map_err(|e| HostError::BadRequest(format!("cannot read the body: {e}")))?;
        read += chunk.len();
        if read > LARGE_BODY {
            return Err(HostError::TooLarge(format!(
                "the import body is larger than {} MiB; nothing was imported",
                LARGE_BODY >> 20
            )));
        }
        Ok(chunk)
    });
    let max_items = settings.get().import_max_items;
    Ok(Json(intake.import(chunks, max_items).await?))
}
