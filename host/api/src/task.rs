//! A task as the AgentScheduler API shows it: its status, type, timestamps and result.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The state of a task. The same words are used on the wire, in the database and in code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Waiting in the queue.
    Pending,
    /// Claimed by a worker and sent to a backend.
    Running,
    /// Finished with its images.
    Done,
    /// Finished without (all of) its images, or refused by the backend.
    Failed,
    /// Stopped by the user while running.
    Interrupted,
}

impl TaskStatus {
    /// The wire/database word.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::Done => "done",
            TaskStatus::Failed => "failed",
            TaskStatus::Interrupted => "interrupted",
        }
    }

    /// Parses the wire/database word.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => TaskStatus::Pending,
            "running" => TaskStatus::Running,
            "done" => TaskStatus::Done,
            "failed" => TaskStatus::Failed,
            "interrupted" => TaskStatus::Interrupted,
            _ => return None,
        })
    }

    /// Whether the task has ended (it belongs to the history).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskStatus::Done | TaskStatus::Failed | TaskStatus::Interrupted
        )
    }
}

/// Which SD.Next generation endpoint a task is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TaskType {
    /// `/sdapi/v1/txt2img`
    Txt2img,
    /// `/sdapi/v1/img2img`
    Img2img,
    /// `/sdapi/v1/control` (the Control tab: control units, IP-Adapter, face module, …)
    Control,
}

impl TaskType {
    /// The wire/database word.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::Txt2img => "txt2img",
            TaskType::Img2img => "img2img",
            TaskType::Control => "control",
        }
    }

    /// The host route that enqueues a task of this type.
    pub fn queue_route(self) -> &'static str {
        match self {
            TaskType::Txt2img => crate::routes::QUEUE_TXT2IMG,
            TaskType::Img2img => crate::routes::QUEUE_IMG2IMG,
            TaskType::Control => crate::routes::QUEUE_CONTROL,
        }
    }

    /// Parses the wire/database word.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "txt2img" => Some(TaskType::Txt2img),
            "img2img" => Some(TaskType::Img2img),
            "control" => Some(TaskType::Control),
            _ => None,
        }
    }
}

/// A timestamp as the AgentScheduler API writes it: epoch milliseconds in `/queue` and
/// `/history`, an ISO-8601 string in `/task/{id}`, epoch seconds in `/export`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum WireTime {
    /// Epoch milliseconds (or seconds in exports).
    Epoch(i64),
    /// ISO-8601 / RFC 3339, UTC.
    Iso(String),
}

/// A task as the AgentScheduler API shows it (`TaskModel`), plus additive fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Task {
    /// Task id (uuid4, or `<uuid>.N` for the N-th task of a multi-checkpoint expansion).
    pub id: String,
    /// Always null (kept for compatibility).
    pub api_task_id: Option<String>,
    /// The callback URL given at enqueue, if any.
    pub api_task_callback: Option<String>,
    /// User label; the UI shows `name ?? id`.
    pub name: Option<String>,
    /// `txt2img`, `img2img` or (additive) `control`.
    #[serde(rename = "type")]
    pub task_type: TaskType,
    /// Lower-case status word.
    pub status: TaskStatus,
    /// The stored request without image data, plus `checkpoint` and `vae`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub params: Map<String, Value>,
    /// An integer ordered like the queue (smaller runs earlier).
    pub priority: i64,
    /// 0-based place among pending tasks (running tasks come first), null for history.
    pub position: Option<i64>,
    /// JSON string `{images, infotexts, error?}` or null.
    pub result: Option<String>,
    /// Bookmarked tasks survive clears and retention.
    pub bookmarked: bool,
    /// Creation time (see [`WireTime`] for the format per endpoint).
    pub created_at: WireTime,
    /// Last change.
    pub updated_at: WireTime,
    /// Additive: how many runs of the task failed or were cut short by a host crash
    /// (bounded by `Settings::max_attempts`).
    #[serde(default)]
    pub attempts: u32,
    /// Additive: the backend that runs / ran the task.
    #[serde(default)]
    pub backend: Option<String>,
    /// Additive: the error text of a failed task, in plain form.
    #[serde(default)]
    pub error: Option<String>,
    /// Additive: number of result images stored.
    #[serde(default)]
    pub image_count: u32,
    /// Additive: whether the task carries a captured page snapshot.
    #[serde(default)]
    pub has_page_snapshot: bool,
    /// Additive: a pending task waiting out its retry backoff is not run before this time
    /// (same format as `created_at`); null when it may run now.
    #[serde(default)]
    pub next_run_at: Option<WireTime>,
    /// Additive: where the scheduling policy will run this pending task, for the tasks of
    /// the look-ahead window (`/queue`, `/task/{id}`); null otherwise.
    #[serde(default)]
    pub projection: Option<Projection>,
    /// Additive: the tasks of one "Queue with all checkpoints" (or `<folder>/*`) enqueue
    /// share this id (`GET /group/{id}` lists them); null for a task enqueued alone.
    #[serde(default)]
    pub group_id: Option<String>,
    /// Additive: when its last run started (same format as `created_at`).
    #[serde(default)]
    pub started_at: Option<WireTime>,
    /// Additive: when it finished (same format as `created_at`); null until then.
    #[serde(default)]
    pub finished_at: Option<WireTime>,
}

/// Where the scheduling policy will run a pending task of the look-ahead window (the first
/// `lookahead` pending tasks): the same function that chooses the next task computes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Projection {
    /// 0-based place in the order the window will run (running tasks not counted).
    pub order: i64,
    /// The backend expected to run it (credential-free URL); null when none can now.
    pub backend: Option<String>,
    /// That backend loads another checkpoint (or sets another VAE) for it first: a switch
    /// point.
    pub switch: bool,
    /// How many later tasks ran before it (the starvation bound counts these).
    pub overtakes: u32,
}

/// The parsed form of [`Task::result`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskResult {
    /// Result image file names (relative to the task's result folder).
    pub images: Vec<String>,
    /// One infotext per image.
    pub infotexts: Vec<String>,
    /// Why the task failed or is partial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /task/{id}/position` data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PositionData {
    /// The task's status.
    pub status: TaskStatus,
    /// Number of tasks that run before it; null when it is not pending.
    pub position: Option<i64>,
}

/// One image of `GET /task/{id}/results`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultImage {
    /// `data:image/png;base64,…` with the infotext in the PNG `parameters` chunk.
    pub image: String,
    /// The image's infotext.
    pub infotext: String,
}

/// `GET /task/{id}/request` data: everything stored for a task, image data and page snapshot
/// included (additive endpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredRequest {
    /// Task id.
    pub id: String,
    /// Generation type.
    #[serde(rename = "type")]
    pub task_type: TaskType,
    /// Status now.
    pub status: TaskStatus,
    /// Name.
    pub name: Option<String>,
    /// Checkpoint title (null = whatever is loaded).
    pub checkpoint: Option<String>,
    /// VAE name.
    pub vae: Option<String>,
    /// Callback URL.
    pub callback_url: Option<String>,
    /// The SD.Next request as it is sent (images included).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub request: Map<String, Value>,
    /// The captured page values keyed by element id.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub page_snapshot: Option<Value>,
    /// SD.Next's `info` of the last run.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub info: Option<Value>,
}
