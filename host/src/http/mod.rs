//! The HTTP API: every AgentScheduler route at its original path (and its deprecated
//! aliases), plus the host's additions.
//!
//! Owns: routing, body limits and the OpenAPI document, both from the handlers' annotations
//! ([`api`]); one handler module per resource (`enqueue`, `queue`, `history`, `task`,
//! `tasks` (many tasks at once, groups, the ETA), `results`, `transfer`, `backends`,
//! `settings`, `sse`, `openapi` (the document and `/docs`), `webapp` (the panel at `/`),
//! `aliases`, and the test-only `test_faults`), the security guard (`security.rs`: Host /
//! Origin / bearer token), the single error-to-HTTP mapping and the typed body and query
//! extractors (`error.rs`: malformed JSON 400, a value that fails validation 422, wrong state
//! 409, unknown id 404, too large 413, disk full 507), the wire conversions (`wire.rs`) and
//! the server loop (`serve.rs`: connection cap, header-read timeout).
//! Must not: contain SQL or queue policy (a handler parses, calls one service operation and
//! converts the answer), talk to SD.Next directly, or panic on request data.

pub mod aliases;
pub mod backends;
pub mod enqueue;
pub mod error;
pub mod history;
pub mod openapi;
pub mod queue;
pub mod results;
pub mod security;
pub mod serve;
pub mod settings;
pub mod sse;
pub mod task;
pub mod tasks;
#[cfg(feature = "fault-injection")]
pub mod test_faults;
pub mod transfer;
pub mod webapp;
pub mod wire;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use tokio::sync::watch;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

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
    /// The pool: adding, removing, enabling, disabling, draining backends.
    pub pool: Arc<crate::pool::Pool>,
    /// Settings.
    pub settings: Arc<crate::settings::SettingsService>,
    /// The event stream.
    pub events: EventHub,
    /// The web app's files.
    pub webapp: Arc<webapp::WebApp>,
    /// Queue estimates.
    pub eta: Arc<crate::eta::Eta>,
    /// Becomes true at shutdown (ends event streams).
    pub shutdown: watch::Receiver<bool>,
    /// This host's id and leases (`/health`).
    pub host: Arc<crate::lease::HostStatus>,
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
    Arc<crate::pool::Pool> => pool,
    Arc<crate::settings::SettingsService> => settings,
    EventHub => events,
    Arc<webapp::WebApp> => webapp,
    Arc<crate::eta::Eta> => eta,
    watch::Receiver<bool> => shutdown,
    Arc<crate::lease::HostStatus> => host,
);

/// Every route with its documentation: the handlers' `#[utoipa::path]` annotations give the
/// path, method, parameters, body and answers, and the same annotations register the route,
/// so the document cannot drift from what is served.
#[allow(deprecated)] // the aliases are deprecated routes, still served
pub fn api() -> OpenApiRouter<AppState> {
    let large = || DefaultBodyLimit::max(LARGE_BODY);
    let with_limit = |(schemas, paths, method): UtoipaMethodRouter<AppState>| {
        (schemas, paths, method.layer(large()))
    };
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(enqueue::txt2img))
        .routes(with_limit(routes!(enqueue::img2img)))
        .routes(with_limit(routes!(enqueue::control)))
        .routes(routes!(queue::list))
        .routes(routes!(queue::pause))
        .routes(routes!(queue::resume))
        .routes(routes!(queue::clear))
        .routes(routes!(history::list))
        .routes(routes!(history::clear))
        .routes(routes!(task::get, task::update, task::delete))
        .routes(routes!(task::request))
        .routes(routes!(task::position))
        .routes(routes!(task::run))
        .routes(routes!(task::requeue))
        .routes(routes!(task::requeue_failed))
        .routes(routes!(task::move_task))
        .routes(routes!(task::bookmark))
        .routes(routes!(task::unbookmark))
        .routes(routes!(task::rename))
        .routes(routes!(results::results))
        .routes(routes!(results::image))
        .routes(routes!(tasks::bulk))
        .routes(routes!(tasks::export))
        .routes(routes!(tasks::zip))
        .routes(routes!(tasks::group))
        .routes(routes!(tasks::eta))
        .routes(routes!(transfer::export))
        .routes(with_limit(routes!(transfer::import)))
        .routes(routes!(backends::samplers))
        .routes(routes!(backends::sd_models))
        .routes(routes!(backends::checkpoints))
        .routes(routes!(backends::list, backends::add))
        .routes(routes!(backends::remove))
        .routes(routes!(backends::enable))
        .routes(routes!(backends::disable))
        .routes(routes!(backends::drain))
        .routes(routes!(sse::events))
        .routes(routes!(settings::get, settings::update))
        .routes(routes!(settings::health))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(openapi::docs))
        .routes(routes!(webapp::page))
        .routes(routes!(webapp::file))
        .routes(routes!(webapp::module))
        .routes(routes!(webapp::icon))
        .routes(routes!(aliases::run))
        .routes(routes!(aliases::requeue))
        .routes(routes!(aliases::delete))
        .routes(routes!(aliases::move_task))
        .routes(routes!(aliases::bookmark))
        .routes(routes!(aliases::unbookmark))
        .routes(routes!(aliases::rename))
        .routes(routes!(aliases::results))
        .routes(routes!(aliases::pause))
        .routes(routes!(aliases::resume))
}

/// The router with its state, guard and error normalisation.
pub fn router(state: AppState, security: Security) -> Router {
    router_with(state, security, Router::new())
}

/// [`router`] plus `extra` routes (the test-only fault route), behind the same guard (Host,
/// Origin, token) and error normalisation as every other route.
pub fn router_with(state: AppState, security: Security, extra: Router) -> Router {
    let (app, _) = api().split_for_parts();
    app.fallback(|| async { axum::http::StatusCode::NOT_FOUND })
        .layer(DefaultBodyLimit::max(SMALL_BODY))
        .with_state(state)
        .merge(extra)
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
