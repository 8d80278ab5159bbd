//! The HTTP API: every AgentScheduler route at its original path (and its deprecated
//! aliases), plus the host's additions.
//!
//! Owns: routing and body limits ([`router`]), one handler module per resource (`enqueue`,
//! `queue`, `history`, `task`, `results`, `transfer`, `backends`, `settings`), the security
//! guard (Host / Origin / bearer token), the single error-to-HTTP mapping (`error.rs`) and the
//! wire conversions (`wire.rs`).
//! Must not: contain SQL or queue policy (a handler parses, calls one service operation and
//! converts the answer), talk to SD.Next directly, or panic on request data.

pub mod backends;
pub mod enqueue;
pub mod error;
pub mod history;
pub mod openapi;
pub mod queue;
pub mod results;
pub mod security;
pub mod settings;
pub mod sse;
pub mod task;
pub mod transfer;
pub mod wire;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::response::{Html, IntoResponse};
use axum::routing::{MethodRouter, get, post};
use scheduler_api::routes as r;
use tokio::sync::watch;

use crate::events::EventHub;
use security::Security;

/// Body limit for most routes.
pub const SMALL_BODY: usize = 1 << 20;
/// Body limit for img2img and control enqueue, and import.
pub const LARGE_BODY: usize = 64 << 20;

/// The services the handlers use; each handler extracts only the ones it needs.
#[derive(Clone)]
pub struct AppState {
    /// Queue changes and reads.
    pub queue: Arc<crate::queue::Queue>,
    /// Enqueue and import.
    pub intake: Arc<crate::intake::Intake>,
    /// Results and history clearing.
    pub results: Arc<crate::results::Results>,
    /// Backends.
    pub backends: Arc<crate::backends::Backends>,
    /// Settings.
    pub settings: Arc<crate::settings::SettingsService>,
    /// The event stream.
    pub events: EventHub,
    /// Becomes true at shutdown (ends event streams).
    pub shutdown: watch::Receiver<bool>,
}

macro_rules! from_state {
    ($($t:ty => $f:ident),* $(,)?) => {$(
        impl FromRef<AppState> for $t {
            fn from_ref(s: &AppState) -> $t {
                s.$f.clone()
            }
        }
    )*};
}

from_state!(
    Arc<crate::queue::Queue> => queue,
    Arc<crate::intake::Intake> => intake,
    Arc<crate::results::Results> => results,
    Arc<crate::backends::Backends> => backends,
    Arc<crate::settings::SettingsService> => settings,
    EventHub => events,
    watch::Receiver<bool> => shutdown,
);

fn canonical(path: &str) -> Option<MethodRouter<AppState>> {
    Some(match path {
        r::TASK_RUN => post(task::run),
        r::TASK_REQUEUE => post(task::requeue),
        r::TASK => post(task::delete),
        r::TASK_MOVE => post(task::move_task),
        r::TASK_BOOKMARK => post(task::bookmark),
        r::TASK_UNBOOKMARK => post(task::unbookmark),
        r::TASK_RENAME => post(task::rename),
        r::TASK_RESULTS => get(results::results),
        r::QUEUE_PAUSE => post(queue::pause),
        r::QUEUE_RESUME => post(queue::resume),
        _ => return None,
    })
}

/// The router with its state, guard and error normalisation.
pub fn router(state: AppState, security: Security) -> Router {
    let large = || DefaultBodyLimit::max(LARGE_BODY);
    let mut app = Router::new()
        .route(r::QUEUE_TXT2IMG, post(enqueue::txt2img))
        .route(r::QUEUE_IMG2IMG, post(enqueue::img2img).layer(large()))
        .route(r::QUEUE_CONTROL, post(enqueue::control).layer(large()))
        .route(r::QUEUE, get(queue::list))
        .route(r::QUEUE_PAUSE, post(queue::pause))
        .route(r::QUEUE_RESUME, post(queue::resume))
        .route(r::QUEUE_CLEAR, post(queue::clear))
        .route(r::HISTORY, get(history::list))
        .route(r::HISTORY_CLEAR, post(history::clear))
        .route(
            r::TASK,
            get(task::get).put(task::update).delete(task::delete),
        )
        .route(r::TASK_REQUEST, get(task::request))
        .route(r::TASK_POSITION, get(task::position))
        .route(r::TASK_RUN, post(task::run))
        .route(r::TASK_REQUEUE, post(task::requeue))
        .route(r::TASK_REQUEUE_FAILED, post(task::requeue_failed))
        .route(r::TASK_MOVE, post(task::move_task))
        .route(r::TASK_BOOKMARK, post(task::bookmark))
        .route(r::TASK_UNBOOKMARK, post(task::unbookmark))
        .route(r::TASK_RENAME, post(task::rename))
        .route(r::TASK_RESULTS, get(results::results))
        .route(r::TASK_IMAGE, get(results::image))
        .route(r::EXPORT, get(transfer::export))
        .route(r::IMPORT, post(transfer::import).layer(large()))
        .route(r::SAMPLERS, get(backends::samplers))
        .route(r::SD_MODELS, get(backends::sd_models))
        .route(r::CHECKPOINTS, get(backends::checkpoints))
        .route(r::BACKENDS, get(backends::list))
        .route(r::EVENTS, get(sse::events))
        .route(r::SETTINGS, get(settings::get).put(settings::update))
        .route(r::HEALTH, get(settings::health))
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
        .with_state(state)
        .layer(axum::middleware::map_response(error::normalize_errors))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(security),
            security::guard,
        ))
}

/// A task id from a path: an id that cannot exist is simply not found.
pub fn task_id(id: &str) -> Result<String, error::ApiError> {
    if crate::model::spec::valid_task_id(id) {
        Ok(id.to_owned())
    } else {
        Err(error::ApiError::task_not_found())
    }
}

/// `{"success": true, "message": …}`.
pub fn ok(message: impl Into<String>) -> axum::Json<scheduler_api::MessageResponse> {
    axum::Json(scheduler_api::MessageResponse::ok(message))
}
