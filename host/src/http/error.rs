//! The one place where errors become HTTP answers: `{"success": false, "message", "code"}`
//! with a truthful status, by one table: malformed JSON 400, a value that fails validation
//! 422, wrong state 409, unknown id 404, too large 413 (and 401/403 from the guard, 503 when
//! no backend answers, 507 when the data directory is full). The typed extractors [`ApiJson`]
//! and [`ApiQuery`] apply it to bodies and query strings; [`normalize_errors`] turns every
//! other error answer (axum rejections, 404/405 fallbacks, body limits) into the same body.

use axum::Json;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use scheduler_api::{ErrorCode, MessageResponse};
use serde::de::DeserializeOwned;

use crate::error::HostError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: ErrorCode,
    /// Message.
    pub message: String,
    /// The JSON path of the field refused at the door, if any.
    pub path: Option<String>,
}

impl ApiError {
    /// An error with status, code and message.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            path: None,
        }
    }

    /// 404 "Task not found".
    pub fn task_not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::TaskNotFound,
            "Task not found",
        )
    }

    /// 422.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Invalid,
            message,
        )
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }
}

impl From<HostError> for ApiError {
    fn from(e: HostError) -> Self {
        match e {
            HostError::NotFound => ApiError::task_not_found(),
            HostError::Missing(m) => ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, m),
            HostError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, m),
            HostError::Invalid(m) => ApiError::invalid(m),
            HostError::Violation(v) => ApiError {
                path: Some(v.path),
                ..ApiError::invalid(v.message)
            },
            HostError::BadRequest(m) => ApiError::bad_request(m),
            HostError::TooLarge(m) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge, m)
            }
            HostError::Unavailable(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, m)
            }
            HostError::DiskFull(m) => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                ErrorCode::InsufficientStorage,
                m,
            ),
            HostError::Store(e) => {
                tracing::error!("store: {e}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    "internal error (see the host log)",
                )
            }
            HostError::Internal(m) => {
                tracing::error!("internal: {m}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    "internal error (see the host log)",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(MessageResponse {
                success: false,
                message: self.message,
                code: Some(self.code),
                path: self.path,
            }),
        )
            .into_response()
    }
}

/// The code that goes with an HTTP status.
pub fn code_for(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        404 | 405 => ErrorCode::NotFound,
        409 => ErrorCode::Conflict,
        413 => ErrorCode::TooLarge,
        422 => ErrorCode::Invalid,
        503 => ErrorCode::Unavailable,
        507 => ErrorCode::InsufficientStorage,
        400..=499 => ErrorCode::BadRequest,
        _ => ErrorCode::Internal,
    }
}

/// Parses a JSON body (any content type): syntax errors are 400, shape errors 422.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::invalid(format!("invalid body: {e}")),
        _ => ApiError::bad_request(format!("malformed JSON body: {e}")),
    })
}

/// Middleware: any error answer that is not JSON gets the standard error body.
pub async fn normalize_errors(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return close_if_too_large(resp);
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let mut message = String::from_utf8_lossy(&text).trim().to_owned();
    if message.is_empty() {
        message = status.canonical_reason().unwrap_or("error").to_owned();
    }
    if status == StatusCode::NOT_FOUND && message == "Not Found" {
        message = "Not found".into();
    }
    let body = serde_json::to_vec(&MessageResponse {
        success: false,
        message,
        code: Some(code_for(status)),
        path: None,
    })
    .unwrap_or_default();
    let mut resp = Response::from_parts(parts, Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().remove(header::CONTENT_LENGTH);
    close_if_too_large(resp)
}

/// A 413 leaves the body unread: the connection cannot be reused.
fn close_if_too_large(mut resp: Response) -> Response {
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        resp.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    resp
}

/// A JSON body parsed with [`parse_json`]: malformed JSON is 400, a value of the wrong shape
/// 422 (any content type is read, as the original accepted).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), code_for(e.status()), e.body_text()))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Query parameters: a value that does not fit its declared type is 422.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(q)
            .map(ApiQuery)
            .map_err(|e| ApiError::invalid(format!("invalid query: {e}")))
    }
}
