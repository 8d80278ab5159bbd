//! Enqueue bodies and answers, and the checkpoint syntax they accept (`*`, `<folder>/*`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Names of the host-only fields of an enqueue body (and of the `params` the listings and
/// exports show beside the SD.Next request).
pub mod field {
    /// [`super::EnqueueRequest::checkpoint`].
    pub const CHECKPOINT: &str = "checkpoint";
    /// [`super::EnqueueRequest::vae`].
    pub const VAE: &str = "vae";
    /// [`super::EnqueueRequest::name`].
    pub const NAME: &str = "name";
    /// [`super::EnqueueRequest::callback_url`].
    pub const CALLBACK_URL: &str = "callback_url";
    /// [`super::EnqueueRequest::page_snapshot`].
    pub const PAGE_SNAPSHOT: &str = "page_snapshot";
    /// Ours, in `params` beside `script_args`: each script argument's label as the page shows
    /// it, in the same order (the extension writes it; the host keeps it with the task and
    /// never sends it to SD.Next).
    pub const SCRIPT_ARG_LABELS: &str = "script_arg_labels";
}

/// Host-only fields accepted in an enqueue body, beside every SD.Next request field.
pub const HOST_ONLY_FIELDS: &[&str] = &[
    field::CHECKPOINT,
    field::VAE,
    field::NAME,
    field::CALLBACK_URL,
    field::PAGE_SNAPSHOT,
];

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

/// Checkpoint value meaning "one task per checkpoint the backends list".
pub const ALL_CHECKPOINTS: &str = "*";

/// What the `checkpoint` value of an enqueue body asks for: the one definition of its syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointChoice {
    /// Whatever the backend has loaded (null, empty or `System`).
    Loaded,
    /// One title.
    Title(String),
    /// One task per checkpoint of the union of backends (`*`).
    All,
    /// One task per checkpoint in this folder and its subfolders (`<folder>/*` or `<folder>\*`).
    Folder(String),
}

impl CheckpointChoice {
    /// Reads a `checkpoint` value.
    pub fn parse(value: Option<&str>) -> CheckpointChoice {
        let Some(v) = value.map(str::trim) else {
            return CheckpointChoice::Loaded;
        };
        if v.is_empty() || v.eq_ignore_ascii_case("system") {
            return CheckpointChoice::Loaded;
        }
        if v == ALL_CHECKPOINTS {
            return CheckpointChoice::All;
        }
        if let Some(folder) = v.strip_suffix("/*").or_else(|| v.strip_suffix("\\*")) {
            return CheckpointChoice::Folder(folder.to_owned());
        }
        CheckpointChoice::Title(v.to_owned())
    }

    /// The `checkpoint` value that asks for this (`None` for [`CheckpointChoice::Loaded`]).
    pub fn to_value(&self) -> Option<String> {
        match self {
            CheckpointChoice::Loaded => None,
            CheckpointChoice::Title(t) => Some(t.clone()),
            CheckpointChoice::All => Some(ALL_CHECKPOINTS.to_owned()),
            CheckpointChoice::Folder(f) => Some(format!("{}/*", f.trim_end_matches(['/', '\\']))),
        }
    }

    /// Whether it stands for several checkpoints (`*` or a folder).
    pub fn is_pattern(&self) -> bool {
        matches!(self, CheckpointChoice::All | CheckpointChoice::Folder(_))
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
