//! The generic answers: `{"success", "message"}` — also the error body, then with `code` and,
//! for a request refused at the door, `path` — and `{"success", "data"}`; plus the small
//! fixed answers of requeue and health.

use serde::{Deserialize, Serialize};

/// `{"success": true, "data": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DataResponse<T> {
    /// Always true for this shape.
    pub success: bool,
    /// The payload.
    pub data: T,
}

/// `{"success": bool, "message": "…"}`: the generic answer and the error body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageResponse {
    /// Whether the action happened.
    pub success: bool,
    /// Human-readable text.
    pub message: String,
    /// Additive, on errors: a stable machine-readable code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    /// Additive, on a request refused at the door (422): the JSON path of the field the
    /// message is about (`steps`, `control[0].strength`, `checkpoint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl MessageResponse {
    /// A success message.
    pub fn ok(message: impl Into<String>) -> Self {
        Self {
            success: true,
            message: message.into(),
            code: None,
            path: None,
        }
    }
}

/// Stable error codes carried in [`MessageResponse::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 404: no such task.
    TaskNotFound,
    /// 404: no such route or resource.
    NotFound,
    /// 409: the task is not in a state that allows this.
    Conflict,
    /// 400: malformed request.
    BadRequest,
    /// 422: well-formed but invalid request.
    Invalid,
    /// 413: body too large.
    TooLarge,
    /// 401: token missing or wrong.
    Unauthorized,
    /// 403: origin or host not allowed.
    Forbidden,
    /// 503: no backend can serve this now.
    Unavailable,
    /// 500: a bug or an I/O failure in the host.
    Internal,
    /// 507: the host's data directory is full; nothing was written.
    InsufficientStorage,
}

/// `POST /task/{id}/requeue`: `{"success", "message", "task_id"}` (the copy's id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequeueResponse {
    /// True when the copy was queued.
    pub success: bool,
    /// Human-readable text.
    pub message: String,
    /// The id of the new task.
    pub task_id: String,
}

/// `GET /health`: the host is up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthResponse {
    /// Always true.
    pub success: bool,
    /// `ok`.
    pub status: String,
    /// The host's version.
    pub version: String,
    /// Whether the queue is paused (the last known value while the database cannot be
    /// reached).
    pub paused: bool,
    /// The store and whether it answers.
    #[serde(default)]
    pub store: StoreHealth,
    /// This host's id (the owner of its claims in a shared database).
    #[serde(default)]
    pub host_id: Option<String>,
    /// This host's claims' leases on a shared (PostgreSQL) store; null on SQLite.
    #[serde(default)]
    pub lease: Option<LeaseHealth>,
    /// Why tasks do not start now apart from the user's pause (`disk full`, `backend
    /// stalled`, `database unreachable`); null when nothing holds the queue.
    #[serde(default)]
    pub hold: Option<String>,
}

/// Which store a host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum StoreKindName {
    /// The embedded SQLite file (one host).
    #[default]
    Sqlite,
    /// A PostgreSQL database (one or more hosts).
    Postgres,
}

/// `/health`'s store: which one, and whether it answered the health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoreHealth {
    /// `sqlite` or `postgres`.
    pub kind: StoreKindName,
    /// Whether the database answered.
    pub reachable: bool,
}

impl Default for StoreHealth {
    fn default() -> Self {
        StoreHealth {
            kind: StoreKindName::Sqlite,
            reachable: true,
        }
    }
}

/// `/health`'s leases: this host's claims on a shared store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeaseHealth {
    /// The lease's length (the `lease_s` setting).
    pub seconds: u64,
    /// How many claims this host holds (at the last renewal).
    pub held: u64,
    /// Milliseconds since the last renewal; null before the first.
    pub renewed_ms_ago: Option<u64>,
}
