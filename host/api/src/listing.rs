//! The queue and history listings.

use serde::{Deserialize, Serialize};

use crate::{Task, TaskStatus};

/// `GET /queue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueResponse {
    /// The running task (the first one when several backends run).
    pub current_task_id: Option<String>,
    /// Additive: every running task.
    #[serde(default)]
    pub current_task_ids: Vec<String>,
    /// Running tasks first (status `running`), then pending ones in the order they will run
    /// (see `lookahead`).
    pub pending_tasks: Vec<Task>,
    /// Pending plus running tasks (or matches of `q`).
    pub total_pending_tasks: i64,
    /// Whether the queue is paused.
    pub paused: bool,
    /// Additive: why the host will not start tasks now, apart from the user's pause
    /// (`"disk full"`); null when nothing holds the queue.
    #[serde(default)]
    pub hold_reason: Option<String>,
    /// Additive: pass as `cursor=` to read the next page (keyset paging: the same cost at any
    /// depth); null on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
    /// Additive: how many pending tasks (from the head) are listed in the order the
    /// scheduling policy will run them (each with its `projection`); the rest follow in
    /// queue order. 0 in search results.
    #[serde(default)]
    pub lookahead: i64,
}

/// `GET /history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryResponse {
    /// Finished tasks, newest first.
    pub tasks: Vec<Task>,
    /// How many finished tasks match the filter (all pages).
    pub total: i64,
    /// Additive: pass as `cursor=` to read the next page (keyset paging); null on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// Paging and search of `GET /queue` (and the paging part of `GET /history`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ListQuery {
    /// Page size (default 20, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Tasks to skip (old clients; `cursor` pages at the same cost at any depth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// Additive: the `next_cursor` of the previous page (wins over `offset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Search text (name, prompt, id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
}

/// Which finished tasks `GET /history?status=` lists (on the wire: the `status=` word).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HistoryFilter {
    /// Every finished task (`all`, or no parameter).
    #[default]
    All,
    /// Bookmarked ones (`bookmarked`).
    Bookmarked,
    /// One finished status (`done`, `failed`, `interrupted`).
    Status(TaskStatus),
}

impl HistoryFilter {
    /// Every filter, in the order a UI offers them.
    pub const ALL: [HistoryFilter; 5] = [
        HistoryFilter::All,
        HistoryFilter::Bookmarked,
        HistoryFilter::Status(TaskStatus::Done),
        HistoryFilter::Status(TaskStatus::Failed),
        HistoryFilter::Status(TaskStatus::Interrupted),
    ];

    /// Whether a task belongs to this filter.
    pub fn accepts(self, t: &Task) -> bool {
        match self {
            HistoryFilter::All => t.status.is_finished(),
            HistoryFilter::Bookmarked => t.bookmarked && t.status.is_finished(),
            HistoryFilter::Status(s) => t.status == s,
        }
    }

    /// The `status=` word.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryFilter::All => "all",
            HistoryFilter::Bookmarked => "bookmarked",
            HistoryFilter::Status(s) => s.as_str(),
        }
    }

    /// Parses the `status=` word (empty = all); `None` for an unknown word or an unfinished
    /// status.
    pub fn parse(s: &str) -> Option<HistoryFilter> {
        match s {
            "" | "all" => Some(HistoryFilter::All),
            "bookmarked" => Some(HistoryFilter::Bookmarked),
            other => TaskStatus::parse(other)
                .filter(|st| st.is_finished())
                .map(HistoryFilter::Status),
        }
    }
}

impl Serialize for HistoryFilter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for HistoryFilter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let word = String::deserialize(d)?;
        HistoryFilter::parse(&word).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown status filter `{word}` (all, bookmarked, done, failed, interrupted)"
            ))
        })
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for HistoryFilter {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(HistoryFilter::ALL.iter().map(|f| f.as_str())))
            .description(Some(
                "Which finished tasks: all, bookmarked, or one finished status.",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for HistoryFilter {}

/// The filter of `GET /history` (beside [`ListQuery`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct HistoryQuery {
    /// `all` (default), `bookmarked`, `done`, `failed` or `interrupted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<HistoryFilter>,
    /// Additive: `time` (default: newest finished first) or `checkpoint` (by checkpoint
    /// title, then newest first). Ignored with `q`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<HistorySort>,
}

/// The order of `GET /history?sort=`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum HistorySort {
    /// Newest finished first.
    #[default]
    Time,
    /// By checkpoint title (tasks without one last), then newest finished first.
    Checkpoint,
}

impl HistorySort {
    /// The `sort=` word.
    pub fn as_str(self) -> &'static str {
        match self {
            HistorySort::Time => "time",
            HistorySort::Checkpoint => "checkpoint",
        }
    }
}

/// `GET /group/{id}` (additive): the tasks one "Queue with all checkpoints" (or folder)
/// enqueue made, in the order they were enqueued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupResponse {
    /// The group id (every task of the group carries it as `group_id`).
    pub group_id: String,
    /// Its tasks, any status, dates in epoch milliseconds.
    pub tasks: Vec<Task>,
}

/// `GET /task/{id}/images/{index}?size=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ImageQuery {
    /// `full` (default: the file as stored) or, additive, `thumb`: a JPEG of at most
    /// [`THUMB_SIZE`] px on its longer side, made once by the host and kept beside the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<ImageSize>,
    /// Ignored by the host: clients add the task's finish time so their caches never mix the
    /// images of two runs of a requeued task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<String>,
}

/// The longer side of a thumbnail (px).
pub const THUMB_SIZE: u32 = 256;

/// Which rendition of a result image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ImageSize {
    /// The file as stored.
    #[default]
    Full,
    /// The thumbnail (JPEG).
    Thumb,
}

/// Paging of `GET /export`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ExportQuery {
    /// Page size (default 1000, at most 100000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Tasks to skip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
}

/// `POST /task/{id}/rename?name=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct RenameQuery {
    /// The new name (empty clears it).
    pub name: String,
}

/// `GET /task/{id}/results?zip=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ResultsQuery {
    /// `true` (or `1`, `yes`): the stored files as one zip instead of JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip: Option<String>,
}

impl ResultsQuery {
    /// Whether a zip is asked for.
    pub fn wants_zip(&self) -> bool {
        matches!(self.zip.as_deref(), Some("true" | "1" | "True" | "yes"))
    }
}
