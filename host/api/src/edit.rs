//! Changing a pending task: its fields (`PUT /task/{id}`) and its place (`move`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
