//! The error of the host's services; `http/error.rs` maps each variant to one status.

use crate::model::contract::Violation;
use crate::model::{Invalid, Refusal};
use crate::store::StoreError;

/// Errors of service operations.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// No such task (404).
    #[error("Task not found")]
    NotFound,
    /// No such thing other than a task, e.g. a backend (404).
    #[error("{0}")]
    Missing(String),
    /// The task's state forbids this (409).
    #[error("{0}")]
    Conflict(String),
    /// The request is well-formed but invalid (422).
    #[error("{0}")]
    Invalid(String),
    /// The request breaks SD.Next's request contract: the field's path and why (422).
    #[error(transparent)]
    Violation(Violation),
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The request asks for too much at once (413).
    #[error("{0}")]
    TooLarge(String),
    /// No backend can answer now (503).
    #[error("{0}")]
    Unavailable(String),
    /// The data directory is full: nothing was written (507).
    #[error("{0}")]
    DiskFull(String),
    /// The store failed (500).
    #[error(transparent)]
    Store(StoreError),
    /// Anything else internal (500).
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for HostError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => HostError::NotFound,
            StoreError::Refused(r) => HostError::Conflict(r.to_string()),
            StoreError::Conflict(m) => HostError::Conflict(m),
            StoreError::Stale(m) => HostError::Conflict(m),
            StoreError::Invalid(m) => HostError::Invalid(m),
            StoreError::Violation(v) => HostError::Violation(v),
            StoreError::DiskFull => HostError::disk_full(),
            StoreError::Unavailable(m) => HostError::Unavailable(format!(
                "database unreachable ({m}); the host retries by itself"
            )),
            other => HostError::Store(other),
        }
    }
}

impl HostError {
    /// The answer to a write refused because the data directory is full.
    pub fn disk_full() -> HostError {
        HostError::DiskFull(
            "disk full: the host's data directory has no space left, so nothing was written; \
             the queue is on hold and resumes by itself when space returns"
                .into(),
        )
    }
}

impl From<Invalid> for HostError {
    fn from(e: Invalid) -> Self {
        HostError::Invalid(e.0)
    }
}

impl From<Violation> for HostError {
    fn from(v: Violation) -> Self {
        HostError::Violation(v)
    }
}

impl From<Refusal> for HostError {
    fn from(e: Refusal) -> Self {
        HostError::Conflict(e.to_string())
    }
}
