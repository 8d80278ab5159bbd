//! Acting on many tasks in one request (additive): a [`Selection`] names the tasks — a list
//! of ids, or everything a listing filter matches ("select all", so a selection of 100,000
//! tasks is a few bytes) minus some ids — and `POST /tasks/bulk` applies one [`BulkAction`]
//! to all of them at once, `POST /tasks/export` exports them and `POST /tasks/zip` zips
//! their result files.

use serde::{Deserialize, Serialize};

use crate::HistoryFilter;

/// Most ids one selection may list; larger selections use a filter.
pub const MAX_SELECTION_IDS: usize = 10_000;

/// Which listing a filter selection reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ListName {
    /// The pending tasks (the running ones are never part of a filter selection).
    Queue,
    /// The finished tasks.
    History,
}

/// "Every task of this listing with this filter and search".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SelectionFilter {
    /// `queue` (pending tasks) or `history` (finished ones).
    pub list: ListName,
    /// History only: `all` (default), `bookmarked`, `done`, `failed`, `interrupted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<HistoryFilter>,
    /// The listing's search text (as `q=` of `/queue` and `/history`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
}

/// The tasks a bulk request acts on: `ids` (at most [`MAX_SELECTION_IDS`]), or `filter`
/// minus `except`. Exactly one of `ids` and `filter` is given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Selection {
    /// These tasks, in this order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    /// Every task the filter matches, in its listing's order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<SelectionFilter>,
    /// With `filter`: tasks left out of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
}

impl Selection {
    /// These ids.
    pub fn ids(ids: impl IntoIterator<Item = impl Into<String>>) -> Selection {
        Selection {
            ids: ids.into_iter().map(Into::into).collect(),
            ..Selection::default()
        }
    }

    /// Everything a filter matches, minus `except`.
    pub fn filter(filter: SelectionFilter, except: Vec<String>) -> Selection {
        Selection {
            ids: Vec::new(),
            filter: Some(filter),
            except,
        }
    }
}

/// What `POST /tasks/bulk` does to every selected task (each as its one-task endpoint
/// would; a task whose state does not allow it refuses the whole request, 409).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    /// Delete (pending and finished tasks with their files; a running one is interrupted).
    Delete,
    /// Requeue a copy of each at the end of the queue, in the selection's order.
    Requeue,
    /// Bookmark.
    Bookmark,
    /// Remove the bookmark.
    Unbookmark,
    /// Move the (pending) tasks to the top of the queue, keeping their order.
    MoveTop,
    /// Move the (pending) tasks to the bottom of the queue, keeping their order.
    MoveBottom,
}

impl BulkAction {
    /// The wire word.
    pub fn as_str(self) -> &'static str {
        match self {
            BulkAction::Delete => "delete",
            BulkAction::Requeue => "requeue",
            BulkAction::Bookmark => "bookmark",
            BulkAction::Unbookmark => "unbookmark",
            BulkAction::MoveTop => "move_top",
            BulkAction::MoveBottom => "move_bottom",
        }
    }
}

/// `POST /tasks/bulk` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BulkRequest {
    /// What to do.
    pub action: BulkAction,
    /// To which tasks.
    pub selection: Selection,
}

/// `POST /tasks/bulk` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BulkResponse {
    /// Always true (refusals are error answers).
    pub success: bool,
    /// Summary text.
    pub message: String,
    /// How many tasks were acted on.
    pub count: usize,
    /// `requeue`: the new tasks' ids, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub task_ids: Vec<String>,
}
