//! The wire contract of the agent-scheduler host.
//!
//! Every request, response, event and error body that crosses HTTP between the host, the
//! browser extension and the tests is declared here, once. The crate depends only on serde
//! (plus `utoipa` behind the `openapi` feature, which the frontend does not enable) and
//! compiles for native targets and `wasm32-unknown-unknown` alike.
//!
//! Compatibility rule: the AgentScheduler shapes are kept field for field (including their
//! quirks: `/task/{id}` dates are ISO strings, `/queue` and `/history` dates are epoch
//! milliseconds, `result` is a JSON *string*). Cleaner forms are added as new fields or new
//! endpoints, never by changing the type of an old field.

pub mod routes;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The id of the browser extension, fixed by the public `key` in
/// `extension-manifest/manifest.json` (first 32 hex digits of sha256(DER key), 0-f → a-p).
pub const EXTENSION_ID: &str = "ndpebdnbbmnlbadnjhpngekbkgfahgag";

/// The `Origin` the extension's pages and service worker send.
pub const EXTENSION_ORIGIN: &str = "chrome-extension://ndpebdnbbmnlbadnjhpngekbkgfahgag";

/// The address the host listens on by default, and the extension's default host URL.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7861";

/// The extension's default host URL.
pub const DEFAULT_HOST_URL: &str = "http://127.0.0.1:7861";

/// The SD.Next backend used when none is configured.
pub const DEFAULT_BACKEND: &str = "http://127.0.0.1:7860";

/// Header that makes an enqueue idempotent: the same key returns the first answer again.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// Header carried by every callback delivery so receivers can drop duplicates.
pub const DELIVERY_ID_HEADER: &str = "X-Agent-Scheduler-Delivery";

/// Header giving the id of the task a callback is about.
pub const CALLBACK_TASK_HEADER: &str = "X-Agent-Scheduler-Task";

/// Checkpoint value meaning "one task per checkpoint the backends list".
pub const ALL_CHECKPOINTS: &str = "*";

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
}

impl TaskType {
    /// The wire/database word.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::Txt2img => "txt2img",
            TaskType::Img2img => "img2img",
        }
    }

    /// Parses the wire/database word.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "txt2img" => Some(TaskType::Txt2img),
            "img2img" => Some(TaskType::Img2img),
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
    /// `txt2img` or `img2img`.
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

/// Host-only fields accepted in an enqueue body, beside every SD.Next request field.
pub const HOST_ONLY_FIELDS: &[&str] =
    &["checkpoint", "vae", "name", "callback_url", "page_snapshot"];

/// Body of `POST /queue/txt2img` and `/queue/img2img`: every SD.Next request field passes
/// through in `params`; the host-only fields are lifted out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnqueueRequest {
    /// A checkpoint title, null for "whatever is loaded", `*` for all, `<folder>/*` for a folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// A VAE name (`sd_vae` option value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vae: Option<String>,
    /// Task name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// URL that gets a multipart POST when the task ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// The raw page values keyed by element id (stored, never sent to SD.Next).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub page_snapshot: Option<Value>,
    /// Every SD.Next request field (`prompt`, `steps`, `init_images`, …).
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub params: Map<String, Value>,
}

/// Answer to an enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnqueueResponse {
    /// The first new task id (the original's only field).
    pub task_id: String,
    /// Every new task id (several for `checkpoint: "*"` or a folder).
    pub task_ids: Vec<String>,
}

/// `GET /queue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueResponse {
    /// The running task (the first one when several backends run).
    pub current_task_id: Option<String>,
    /// Additive: every running task.
    #[serde(default)]
    pub current_task_ids: Vec<String>,
    /// Running tasks first (status `running`), then pending ones in order.
    pub pending_tasks: Vec<Task>,
    /// Pending plus running tasks (or matches of `q`).
    pub total_pending_tasks: i64,
    /// Whether the queue is paused.
    pub paused: bool,
}

/// `GET /history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryResponse {
    /// Finished tasks, newest first.
    pub tasks: Vec<Task>,
    /// How many finished tasks match the filter (all pages).
    pub total: i64,
}

/// `{"success": true, "data": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DataResponse<T> {
    /// Always true for this shape.
    pub success: bool,
    /// The payload.
    pub data: T,
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
}

impl MessageResponse {
    /// A success message.
    pub fn ok(message: impl Into<String>) -> Self {
        Self {
            success: true,
            message: message.into(),
            code: None,
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
}

/// `PUT /task/{id}`: shallow merge into a pending task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateTaskRequest {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New checkpoint (title; `System`/empty = whatever is loaded).
    #[serde(default)]
    pub checkpoint: Option<String>,
    /// Fields merged into the stored request (top-level keys replaced; null removes a key).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub params: Option<Map<String, Value>>,
}

/// `POST /import` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportRequest {
    /// The JSON text of an export array.
    pub content: String,
}

/// `POST /import` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportResponse {
    /// True when at least the file parsed; items may still be rejected.
    pub success: bool,
    /// Summary text.
    pub message: String,
    /// Ids of the tasks imported.
    #[serde(default)]
    pub imported: Vec<String>,
    /// Items that were not imported, with the reason.
    #[serde(default)]
    pub rejected: Vec<ImportRejection>,
}

/// One rejected import item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportRejection {
    /// Index in the array.
    pub index: usize,
    /// The item's id, when it had one.
    pub id: Option<String>,
    /// Why it was rejected.
    pub reason: String,
}

/// One item of `GET /export` (the original's array shape; dates in epoch seconds).
/// `params` holds the full stored request (images included), so an export re-imports whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportItem {
    /// Task id.
    pub id: String,
    /// Always null.
    #[serde(default)]
    pub api_task_id: Option<String>,
    /// Callback URL.
    #[serde(default)]
    pub api_task_callback: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// `txt2img` / `img2img`.
    #[serde(rename = "type")]
    pub task_type: String,
    /// Status at export.
    #[serde(default)]
    pub status: Option<String>,
    /// The full request; original exports carry `{args, checkpoint, is_ui, …}` here instead.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub params: Value,
    /// The original's pickled script args: never read by this host; null on export.
    #[serde(default)]
    pub script_params: Option<Value>,
    /// Order key.
    #[serde(default)]
    pub priority: Option<i64>,
    /// Result (null on export).
    #[serde(default)]
    pub result: Option<String>,
    /// Bookmark.
    #[serde(default)]
    pub bookmarked: Option<bool>,
    /// Epoch seconds.
    #[serde(default)]
    pub created_at: Option<Value>,
    /// Epoch seconds.
    #[serde(default)]
    pub updated_at: Option<Value>,
}

/// Host settings (`GET /settings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Settings {
    /// Start the host with the queue paused.
    pub start_paused: bool,
    /// Delete finished, non-bookmarked tasks older than this; null keeps them forever.
    pub history_retention_days: Option<u32>,
    /// Put failed tasks back in the queue (bounded by `max_attempts`).
    pub auto_requeue_failed: bool,
    /// How many times a task may be started before it stays failed.
    pub max_attempts: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            start_paused: false,
            history_retention_days: Some(30),
            auto_requeue_failed: false,
            max_attempts: 3,
        }
    }
}

/// `PUT /settings`: only the fields present change. `history_retention_days: null` means forever.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettingsPatch {
    /// See [`Settings::start_paused`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_paused: Option<bool>,
    /// See [`Settings::history_retention_days`]; `Some(None)` = keep forever.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>))]
    pub history_retention_days: Option<Option<u32>>,
    /// See [`Settings::auto_requeue_failed`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_requeue_failed: Option<bool>,
    /// See [`Settings::max_attempts`] (1..=100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Option<u32>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
        Option::<u32>::deserialize(d).map(Some)
    }
}

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

/// Live progress of a running task (SSE event `progress`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProgressEvent {
    /// The running task.
    pub task_id: String,
    /// 0..1.
    pub progress: f64,
    /// Seconds left, as SD.Next estimates.
    pub eta_s: Option<f64>,
    /// Current sampling step.
    pub step: i64,
    /// Total sampling steps.
    pub steps: i64,
}

/// Latest preview image of a running task (SSE event `preview`; never replayed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewEvent {
    /// The running task.
    pub task_id: String,
    /// `data:image/…;base64,…`
    pub image: String,
}

/// What happened to a task (SSE event `task`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TaskChange {
    /// Enqueued, imported or requeued.
    Created,
    /// Edited, renamed, bookmarked.
    Updated,
    /// Moved in the queue.
    Moved,
    /// Claimed by a worker.
    Started,
    /// Ended (see status).
    Finished,
    /// Deleted.
    Deleted,
}

/// A task changed (SSE event `task`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskEvent {
    /// The task.
    pub task_id: String,
    /// Its status after the change (for `deleted`, the status it had).
    pub status: TaskStatus,
    /// What happened.
    pub change: TaskChange,
    /// Its name, for notifications.
    #[serde(default)]
    pub name: Option<String>,
}

/// Queue counters (SSE event `queue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueEvent {
    /// Whether the queue is paused.
    pub paused: bool,
    /// Pending tasks.
    pub pending: i64,
    /// Running tasks.
    pub running: i64,
}

/// Sent instead of a replay when `Last-Event-ID` is older than what the host keeps
/// (SSE event `reset`): the client must reload its lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResetEvent {
    /// The oldest event id still kept.
    pub oldest: u64,
}

/// Every event of `GET /events`; the SSE `event:` name is the variant name in lower case and
/// `data:` is the inner JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "lowercase")]
pub enum Event {
    /// A task changed.
    Task(TaskEvent),
    /// Progress of the running task.
    Progress(ProgressEvent),
    /// Latest preview of the running task.
    Preview(PreviewEvent),
    /// Queue counters changed.
    Queue(QueueEvent),
    /// The client missed too much: reload.
    Reset(ResetEvent),
}

impl Event {
    /// The SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Task(_) => "task",
            Event::Progress(_) => "progress",
            Event::Preview(_) => "preview",
            Event::Queue(_) => "queue",
            Event::Reset(_) => "reset",
        }
    }

    /// The SSE `data:` JSON.
    pub fn data_json(&self) -> String {
        let v = match self {
            Event::Task(e) => serde_json::to_string(e),
            Event::Progress(e) => serde_json::to_string(e),
            Event::Preview(e) => serde_json::to_string(e),
            Event::Queue(e) => serde_json::to_string(e),
            Event::Reset(e) => serde_json::to_string(e),
        };
        v.unwrap_or_else(|_| "{}".to_owned())
    }

    /// Rebuilds an event from its SSE name and data; `None` for unknown names or bad data.
    pub fn from_sse(name: &str, data: &str) -> Option<Event> {
        Some(match name {
            "task" => Event::Task(serde_json::from_str(data).ok()?),
            "progress" => Event::Progress(serde_json::from_str(data).ok()?),
            "preview" => Event::Preview(serde_json::from_str(data).ok()?),
            "queue" => Event::Queue(serde_json::from_str(data).ok()?),
            "reset" => Event::Reset(serde_json::from_str(data).ok()?),
            _ => return None,
        })
    }
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

/// Where `POST /task/{id}/move/{over_id}` puts a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveTarget {
    /// First in the queue (the latest move to top wins).
    Top,
    /// Last in the queue.
    Bottom,
    /// Just before another pending task.
    Before(String),
}

impl MoveTarget {
    /// Parses the `{over_id}` path segment.
    pub fn parse(over_id: &str) -> MoveTarget {
        match over_id {
            "top" => MoveTarget::Top,
            "bottom" => MoveTarget::Bottom,
            other => MoveTarget::Before(other.to_owned()),
        }
    }

    /// The `{over_id}` path segment.
    pub fn over_id(&self) -> &str {
        match self {
            MoveTarget::Top => "top",
            MoveTarget::Bottom => "bottom",
            MoveTarget::Before(id) => id,
        }
    }
}

/// Splits a checkpoint title into folder segments (`/` and `\` both separate).
pub fn checkpoint_segments(title: &str) -> Vec<&str> {
    title.split(['/', '\\']).filter(|s| !s.is_empty()).collect()
}

/// Whether `title` lies in `folder` or one of its subfolders, by whole path segments
/// (`anime` takes `anime/a` and `anime\b\c`, never `anime2/x`).
pub fn checkpoint_in_folder(title: &str, folder: &str) -> bool {
    let f = checkpoint_segments(folder);
    let t = checkpoint_segments(title);
    !f.is_empty() && t.len() > f.len() && t[..f.len()] == f[..]
}

#[cfg(test)]
mod tests;
