//! Export and import of tasks.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    /// Items that were not imported, with the reason: the first
    /// [`IMPORT_REJECTIONS_SHOWN`] of them.
    #[serde(default)]
    pub rejected: Vec<ImportRejection>,
    /// Additive: how many items were rejected in all (`rejected` lists the first ones).
    #[serde(default)]
    pub rejected_count: usize,
}

/// How many rejected items an import answer lists at most (`rejected_count` counts all).
pub const IMPORT_REJECTIONS_SHOWN: usize = 1000;

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
    /// Additive: the JSON path of the field refused, inside the item's request
    /// (`steps`, `control[0].strength`), when a field was the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
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
