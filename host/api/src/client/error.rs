//! The client's one error type.

use crate::{ErrorCode, MessageResponse};

/// Why a call did not give the answer asked for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// No connection to the host (refused, DNS, TLS, timeout), or it broke mid-answer.
    #[error("host not reachable at {url}: {message}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// What the transport said.
        message: String,
    },
    /// The host answered with a non-2xx status. `body` is the host's
    /// `{success: false, message, code}`; for an answer that is not that shape, `message` is
    /// the start of the body text and `code` is `None`.
    #[error("{status}: {}", body.message)]
    Refused {
        /// HTTP status.
        status: u16,
        /// The error body.
        body: MessageResponse,
    },
    /// A 2xx answer that does not decode into the expected type.
    #[error("unexpected answer from {url} ({status}): {message}")]
    Decode {
        /// The URL called.
        url: String,
        /// HTTP status.
        status: u16,
        /// The decoding error.
        message: String,
    },
    /// The event stream ended (the host shut down or closed it).
    #[error("the event stream ended")]
    StreamEnded,
    /// The request could not be built (for example a token that is not a valid header value).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl ClientError {
    /// The HTTP status of a refused request.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Refused { status, .. } | ClientError::Decode { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// The host's error code of a refused request.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Refused { body, .. } => body.code,
            _ => None,
        }
    }

    /// The host's error body of a refused request.
    pub fn body(&self) -> Option<&MessageResponse> {
        match self {
            ClientError::Refused { body, .. } => Some(body),
            _ => None,
        }
    }

    /// Whether the host could not be reached (or the connection broke).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ClientError::Unreachable { .. } | ClientError::StreamEnded
        )
    }

    /// A refused request from a non-2xx answer's body.
    pub fn refused(status: u16, body: &[u8]) -> ClientError {
        let body = serde_json::from_slice::<MessageResponse>(body).unwrap_or_else(|_| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            MessageResponse {
                success: false,
                message: if text.is_empty() {
                    format!("HTTP {status}")
                } else {
                    text.chars().take(300).collect()
                },
                code: None,
                path: None,
            }
        });
        ClientError::Refused { status, body }
    }
}
