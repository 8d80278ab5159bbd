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
    /// Additive: its id in the pool (`flag-N` for the N-th `--backend`, `added-N` for one
    /// added through the API); the `{id}` of `/backends/{id}`.
    #[serde(default)]
    pub id: String,
    /// Additive: where it comes from.
    #[serde(default)]
    pub source: BackendSource,
    /// Additive: whether it takes new tasks (false once disabled or drained).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Additive: finishing its running task, then disabled.
    #[serde(default)]
    pub draining: bool,
    /// Additive: runs that ended done since the host started.
    #[serde(default)]
    pub tasks_done: u64,
    /// Additive: runs that ended failed (or errored) since the host started.
    #[serde(default)]
    pub tasks_failed: u64,
    /// Additive: checkpoint loads it was asked for since the host started.
    #[serde(default)]
    pub loads: u64,
    /// Additive: milliseconds spent running tasks (from claim to the answer) since the host
    /// started.
    #[serde(default)]
    pub busy_ms: u64,
    /// Additive: where the request contract the host checks requests against comes from
    /// for this backend, once it has read the backend's lists: `openapi` (the backend's own
    /// `/openapi.json`) or `table` (the table built into the host); null until then (names
    /// are not checked against its lists yet).
    #[serde(default)]
    pub contract: Option<String>,
    /// Additive: the id of the host that drives it (sends it tasks): this host, or with
    /// several hosts on one PostgreSQL store the one holding its lease; null while no host
    /// does (its host stopped and the lease has not run out yet). Its state, loaded
    /// checkpoint, last error and figures are its driver's: for a backend another host
    /// drives, as that host last stored them (every lease/3 and after each run); counted
    /// since the driver started.
    #[serde(default)]
    pub driver: Option<String>,
}

fn yes() -> bool {
    true
}

/// Where a backend of the pool comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BackendSource {
    /// `--backend` on the command line: there at every start (a removal lasts until the next).
    #[default]
    Flag,
    /// Added through the API: persisted, back after a restart until removed.
    Added,
}

/// `POST /backends`: add an SD.Next backend to the pool (persisted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddBackend {
    /// Its base URL, `http(s)://[user:pass@]host:port[/path]`; credentials are kept for the
    /// requests to it and never shown.
    pub url: String,
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
