//! When the queue will run (additive, `GET /queue/eta`): each pending task's expected start
//! and the queue's expected end, estimated from the measured speed of each backend (time per
//! megapixel-step of finished tasks, and the time its checkpoint loads took) following the
//! order the scheduler will run the tasks in.

use serde::{Deserialize, Serialize};

/// `GET /queue/eta` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct EtaQuery {
    /// How many pending tasks (in run order) get their own estimate (default 200, at most
    /// 1000); the queue's end always counts every pending task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// The expected start of one pending task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskEta {
    /// The task.
    pub id: String,
    /// Expected start (epoch ms); null when no backend has a measured speed yet.
    pub starts_at: Option<i64>,
    /// Expected end (epoch ms); null likewise.
    pub ends_at: Option<i64>,
    /// The backend expected to run it (credential-free URL).
    pub backend: Option<String>,
    /// Whether a checkpoint load is expected before it.
    pub loads_checkpoint: bool,
}

/// What a backend's estimates are based on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackendSpeed {
    /// Backend URL without credentials.
    pub url: String,
    /// Measured generation time per megapixel-step (ms), over its recent finished tasks;
    /// null before its first one.
    pub ms_per_megapixel_step: Option<f64>,
    /// Measured time of a checkpoint load (ms); null before its first load.
    pub load_ms: Option<f64>,
    /// How many finished tasks the speed is measured on.
    pub samples: u32,
}

/// `GET /queue/eta` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EtaResponse {
    /// The host's clock when estimated (epoch ms).
    pub now: i64,
    /// Expected end of the last pending task (epoch ms); null when nothing is pending or no
    /// backend has a measured speed yet.
    pub queue_ends_at: Option<i64>,
    /// Pending tasks counted.
    pub pending: i64,
    /// The first pending tasks in the order they will run.
    pub tasks: Vec<TaskEta>,
    /// Each backend's measured speed.
    pub backends: Vec<BackendSpeed>,
}
