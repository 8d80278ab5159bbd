//! The queue and history listings.

use serde::{Deserialize, Serialize};

use crate::Task;

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
