//! SD.Next backends and the checkpoints they list.

use serde::{Deserialize, Serialize};

/// State of one SD.Next backend (`GET /backends`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BackendState {
    /// Not contacted yet.
    Unknown,
    /// Reachable and a model is loaded.
    Up,
    /// Reachable but no model is loaded yet (starting, or loading).
    Loading,
    /// Not reachable; its tasks wait.
    Down,
    /// The host abandoned a request it could not stop: the backend gets no task until its
    /// `/sdapi/v1/progress` shows it idle (re-checked every `stall_recheck_s`).
    Stalled,
}

/// One backend in `GET /backends`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackendInfo {
    /// Backend URL with any credentials removed.
    pub url: String,
    /// Current state.
    pub state: BackendState,
    /// The task it runs now.
    pub current_task_id: Option<String>,
    /// The checkpoint title loaded, as last confirmed.
    pub loaded_checkpoint: Option<String>,
    /// Titles of the checkpoints it lists.
    pub checkpoints: Vec<String>,
    /// The last error seen, for display.
    pub last_error: Option<String>,
}

/// One checkpoint the backends list (`GET /checkpoints`, additive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckpointInfo {
    /// SD.Next title (what tasks store).
    pub title: String,
    /// SD.Next model name.
    pub model_name: String,
    /// Backends (credential-free URLs) that list it.
    pub backends: Vec<String>,
}
