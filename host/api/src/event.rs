//! The live event stream (`GET /events`, Server-Sent Events).

use serde::{Deserialize, Serialize};

use crate::TaskStatus;

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
    /// Additive: why the host will not start tasks now, apart from the user's pause
    /// (`"disk full"`); null when nothing holds the queue.
    #[serde(default)]
    pub hold_reason: Option<String>,
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
