//! The HTTP API: every AgentScheduler route at its original path (and its deprecated
//! aliases), plus the host's additions.
//!
//! Owns: routing, body limits, the security guard (Host / Origin / bearer token), the single
//! error-to-HTTP mapping (`error.rs`) and the wire conversions (`wire.rs`).
//! Must not: contain SQL or queue policy (handlers call one `Host` operation each), talk to
//! SD.Next directly, or panic on request data.

pub mod error;
pub mod handlers;
pub mod openapi;
pub mod security;
pub mod sse;
pub mod wire;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{Html, IntoResponse};
use axum::routing::{MethodRouter, get, post};
use scheduler_api::routes as r;

use crate::app::{Host, LARGE_BODY, SMALL_BODY};
use handlers as h;
use security::Security;

fn canonical(path: &str) -> Option<MethodRouter<Arc<Host>>> {
    Some(match path {
        r::TASK_RUN => post(h::run_task),
        r::TASK_REQUEUE => post(h::requeue),
        r::TASK => post(h::delete_task),
        r::TASK_MOVE => post(h::move_task),
        r::TASK_BOOKMARK => post(h::bookmark_task),
        r::TASK_UNBOOKMARK => post(h::unbookmark_task),
        r::TASK_RENAME => post(h::rename_task),
        r::TASK_RESULTS => get(h::get_results),
        r::QUEUE_PAUSE => post(h::pause),
        r::QUEUE_RESUME => post(h::resume),
        _ => return None,
    })
}

/// The router with its state, guard and error normalisation.
pub fn router(host: Arc<Host>, security: Security) -> Router {
    let mut app = Router::new()
        .route(r::QUEUE_TXT2IMG, post(h::enqueue_txt2img))
        .route(
            r::QUEUE_IMG2IMG,
            post(h::enqueue_img2img).layer(DefaultBodyLimit::max(LARGE_BODY)),
        )
        .route(
            r::QUEUE_CONTROL,
            post(h::enqueue_control).layer(DefaultBodyLimit::max(LARGE_BODY)),
        )
        .route(r::QUEUE, get(h::get_queue))
        .route(r::QUEUE_PAUSE, post(h::pause))
        .route(r::QUEUE_RESUME, post(h::resume))
        .route(r::QUEUE_CLEAR, post(h::clear_queue))
        .route(r::HISTORY, get(h::get_history))
        .route(r::HISTORY_CLEAR, post(h::clear_history))
        .route(
            r::TASK,
            get(h::get_task).put(h::put_task).delete(h::delete_task),
        )
        .route(r::TASK_REQUEST, get(h::get_task_request))
        .route(r::TASK_POSITION, get(h::get_position))
        .route(r::TASK_RUN, post(h::run_task))
        .route(r::TASK_REQUEUE, post(h::requeue))
        .route(r::TASK_REQUEUE_FAILED, post(h::requeue_failed))
        .route(r::TASK_MOVE, post(h::move_task))
        .route(r::TASK_BOOKMARK, post(h::bookmark_task))
        .route(r::TASK_UNBOOKMARK, post(h::unbookmark_task))
        .route(r::TASK_RENAME, post(h::rename_task))
        .route(r::TASK_RESULTS, get(h::get_results))
        .route(r::TASK_IMAGE, get(h::get_image))
        .route(r::EXPORT, get(h::export))
        .route(
            r::IMPORT,
            post(h::import).layer(DefaultBodyLimit::max(LARGE_BODY)),
        )
        .route(r::SAMPLERS, get(h::samplers))
        .route(r::SD_MODELS, get(h::sd_models))
        .route(r::CHECKPOINTS, get(h::checkpoints))
        .route(r::EVENTS, get(sse::events))
        .route(r::SETTINGS, get(h::get_settings).put(h::put_settings))
        .route(r::BACKENDS, get(h::backends))
        .route(r::HEALTH, get(h::health))
        .route(
            r::OPENAPI,
            get(|| async { axum::Json(openapi::document()) }),
        )
        .route(
            r::DOCS,
            get(|| async { Html(openapi::docs_html()).into_response() }),
        );
    for (alias, target) in r::DEPRECATED_ALIASES {
        if let Some(m) = canonical(target) {
            app = app.route(alias, m);
        }
    }
    app.fallback(|| async { axum::http::StatusCode::NOT_FOUND })
        .layer(DefaultBodyLimit::max(SMALL_BODY))
        .with_state(host)
        .layer(axum::middleware::map_response(error::normalize_errors))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(security),
            security::guard,
        ))
}
