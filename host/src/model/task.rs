//! The task as the host stores it. The store reads and writes these; `http/wire.rs` turns
//! them into the wire shapes of `scheduler-api`. Also what changes one: [`NewTask`] (an
//! insert) and [`TaskEdit`] (an edit of a pending task).

use scheduler_api::{TaskStatus, TaskType};
use serde_json::{Map, Value};

/// One stored result image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRow {
    /// 0-based index.
    pub index: u32,
    /// File name inside `<data-dir>/results/<task-id>/`.
    pub file_name: String,
    /// Its infotext.
    pub infotext: String,
    /// `png`, `jpg`, `webp` or `bin`.
    pub format: String,
}

impl ImageRow {
    /// The MIME type of the stored file.
    pub fn content_type(&self) -> &'static str {
        content_type(&self.format)
    }
}

/// The MIME type of a stored format.
pub fn content_type(format: &str) -> &'static str {
    match format {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        _ => "application/octet-stream",
    }
}

/// The columns a status change reads and writes. [`crate::model::transition::decide`]
/// computes the next one from the current one; the store writes it in one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    /// Status.
    pub status: TaskStatus,
    /// Counted attempts.
    pub attempts: u32,
    /// Backend that runs / ran it.
    pub backend: Option<String>,
    /// Error text.
    pub error: Option<String>,
    /// Started (ms).
    pub started_at: Option<i64>,
    /// Finished (ms).
    pub finished_at: Option<i64>,
    /// Position in the run-next group while the task sits in it.
    pub run_next: Option<i64>,
    /// Runs despite a pause ("run now" while paused).
    pub force_run: bool,
    /// A pending task waiting out its retry backoff is not claimed before this (ms).
    pub next_run_at: Option<i64>,
    /// The fence of its latest claim (set by the claim, kept after it): a run's end,
    /// release or failed try is written only while the task still runs under the fence of
    /// the claim it belongs to.
    pub fence: Option<i64>,
    /// The user asked to stop the run of that claim (a `DELETE` while it runs): however it
    /// ends, it ends interrupted.
    pub stop_requested: bool,
}

impl Lifecycle {
    /// A new pending task.
    pub fn pending() -> Lifecycle {
        Lifecycle {
            status: TaskStatus::Pending,
            attempts: 0,
            backend: None,
            error: None,
            started_at: None,
            finished_at: None,
            run_next: None,
            force_run: false,
            next_run_at: None,
            fence: None,
            stop_requested: false,
        }
    }
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    /// Id.
    pub id: String,
    /// Insertion sequence (the row id): ties of the order keys, and keyset cursors.
    pub seq: i64,
    /// txt2img / img2img / control.
    pub task_type: TaskType,
    /// Status, attempts, backend, error, times, run-now flags.
    pub life: Lifecycle,
    /// Name.
    pub name: Option<String>,
    /// The SD.Next request (in listings: without the image fields, see
    /// [`crate::model::images`]).
    pub request: Map<String, Value>,
    /// Page snapshot (only loaded with the full row).
    pub page_snapshot: Option<Value>,
    /// Whether a page snapshot is stored.
    pub has_page_snapshot: bool,
    /// Checkpoint (null = whatever is loaded).
    pub checkpoint: Option<String>,
    /// VAE.
    pub vae: Option<String>,
    /// Callback URL.
    pub callback_url: Option<String>,
    /// Order key.
    pub rank: i64,
    /// Goes before the policy's choices (moved to the top, or back at the head).
    pub pinned: bool,
    /// How many later tasks ran before it.
    pub overtakes: u32,
    /// When it was first overtaken (ms).
    pub overtaken_at: Option<i64>,
    /// Bookmarked.
    pub bookmarked: bool,
    /// SD.Next `info` of the last run (only loaded with the full row).
    pub info: Option<Value>,
    /// Created (ms).
    pub created_at: i64,
    /// Updated (ms).
    pub updated_at: i64,
    /// The group of a multi-checkpoint enqueue it belongs to.
    pub group_id: Option<String>,
    /// Stored images.
    pub images: Vec<ImageRow>,
}

impl TaskRow {
    /// Its status.
    pub fn status(&self) -> TaskStatus {
        self.life.status
    }

    /// What the scheduling policy reads of it.
    pub fn candidate(&self) -> Candidate {
        Candidate {
            seq: self.seq,
            id: self.id.clone(),
            checkpoint: self.checkpoint.clone(),
            vae: self.vae.clone(),
            run_next: self.life.run_next,
            force_run: self.life.force_run,
            pinned: self.pinned,
            overtakes: self.overtakes,
            overtaken_at: self.overtaken_at,
            next_run_at: self.life.next_run_at,
        }
    }
}

/// A pending task as the scheduling policy reads it (the claim's look-ahead window, the
/// listing's projection): its checkpoint, VAE and order columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its row id.
    pub seq: i64,
    /// Its id.
    pub id: String,
    /// Checkpoint (null = whatever is loaded).
    pub checkpoint: Option<String>,
    /// VAE.
    pub vae: Option<String>,
    /// Its place in the run-now group.
    pub run_next: Option<i64>,
    /// Runs despite a pause.
    pub force_run: bool,
    /// Moved to the top, or back at the head.
    pub pinned: bool,
    /// How many later tasks ran before it.
    pub overtakes: u32,
    /// When it was first overtaken (ms).
    pub overtaken_at: Option<i64>,
    /// Waiting out a retry backoff until then (ms).
    pub next_run_at: Option<i64>,
}

/// A task to insert (always pending, at the end of the queue).
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    /// Id.
    pub id: String,
    /// txt2img / img2img / control.
    pub task_type: TaskType,
    /// Name.
    pub name: Option<String>,
    /// Request.
    pub request: Map<String, Value>,
    /// Page snapshot.
    pub page_snapshot: Option<Value>,
    /// Checkpoint.
    pub checkpoint: Option<String>,
    /// VAE.
    pub vae: Option<String>,
    /// Callback URL.
    pub callback_url: Option<String>,
    /// Bookmarked.
    pub bookmarked: bool,
    /// The group of a multi-checkpoint enqueue (`None`: enqueued alone).
    pub group_id: Option<String>,
}

impl NewTask {
    /// A copy of `task` (requeue, "queue again"): the same request and settings under
    /// `id`, named by `name` from the original's name, not bookmarked, in `group_id`.
    pub fn copy_of(
        task: TaskRow,
        id: &str,
        name: impl FnOnce(Option<&str>) -> Option<String>,
        group_id: Option<String>,
    ) -> NewTask {
        NewTask {
            id: id.to_owned(),
            task_type: task.task_type,
            name: name(task.name.as_deref()),
            request: task.request,
            page_snapshot: task.page_snapshot,
            checkpoint: task.checkpoint,
            vae: task.vae,
            callback_url: task.callback_url,
            bookmarked: false,
            group_id,
        }
    }
}

/// An edit of a pending task (`PUT /task/{id}` after parsing), applied by the store.
#[derive(Debug, Clone, Default)]
pub struct TaskEdit {
    /// New name (`Some(None)` clears it).
    pub name: Option<Option<String>>,
    /// New checkpoint (`Some(None)` = whatever is loaded).
    pub checkpoint: Option<Option<String>>,
    /// Shallow patch of the request.
    pub params: Option<Map<String, Value>>,
    /// The request contract the edited task must still meet (checked on the merged
    /// request, its checkpoint and VAE, inside the transaction; `None`: not checked).
    pub contract: Option<std::sync::Arc<super::contract::Contract>>,
}
