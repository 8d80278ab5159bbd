//! The store contract: every operation the services ask of a store, as one trait with two
//! implementations — the embedded SQLite store ([`super::Store`], by delegation to its
//! functions: `sqlite_impl.rs`) and the PostgreSQL store ([`super::pg::PgStore`]), which
//! several hosts can share. One contract test suite (`tests/tests/integration/store_contract.rs`)
//! runs the same assertions against both.
//!
//! Each method is one transaction (a compound read is one snapshot). The decisions stay in
//! `model/`: a store writes what [`crate::model::transition::decide`] decided and picks the
//! claimed task with the caller's `choose` (the scheduling policy), inside its claim.
//!
//! Claims: [`Claimed::fence`] names the claim; every later write of that run
//! ([`TaskStore::apply_claimed`], [`TaskStore::finish`]) is refused
//! ([`StoreError::Stale`], nothing written) once the task no longer runs under it. A delete
//! of a running task records the stop on that claim (`stop_requested`): the run then ends
//! interrupted however it ends. On PostgreSQL a claim also holds a lease (owner host,
//! expiry in database time) that [`TaskStore::renew_leases`] extends and that another host
//! may take over when it expires ([`TaskStore::reclaim_expired`]). The SQLite store has one
//! host per file: its leases never expire.
//!
//! Sharing (PostgreSQL): each stored backend is driven by one host at a time
//! ([`TaskStore::drive_backends`], a lease like a claim's), and each host hears the others'
//! changes at once ([`TaskStore::subscribe`]: event ids, wake-ups, transient events). On
//! SQLite the one host drives every backend and has nobody to hear from.
//!
//! Time: every write takes `now` (ms) from the caller's clock; no store reads a clock inside
//! its transaction.

use std::collections::HashSet;

use async_trait::async_trait;
use scheduler_api::{BulkAction, HistoryFilter, MoveTarget, Selection, Settings, TaskStatus};

use tokio::sync::mpsc::Receiver;

use super::StoreError;
use super::backends::AddedBackend;
use super::listing::Counts;
use super::outbox::Delivery;
use super::speed::PendingWork;
use super::transitions::{Applied, Choice, RunOutputs};
use crate::model::TaskEdit;
use crate::model::cursor::{Cursor, PendingFrom};
use crate::model::eta::Speed;
use crate::model::search::Scope;
use crate::model::transition::{Event, Policy};
use crate::model::{Candidate, ImageRow, NewTask, TaskRow};

/// The policy's choice among a claim's window (`paused`: the queue is paused; the window
/// then holds only "run now" tasks). A shared store may ask again, on the window without
/// the task it chose, when another host claimed that task first.
pub type ChooseFn = Box<dyn FnMut(&[Candidate], bool) -> Option<Choice> + Send>;

/// A new name from the old one (copies: "name (copy)").
pub type NameFn = fn(Option<&str>) -> Option<String>;

/// A speed update computed from the stored speed, in the same transaction.
pub type SpeedFn = Box<dyn FnOnce(Speed) -> Speed + Send>;

/// Which store this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The embedded SQLite file (one host).
    Sqlite,
    /// A PostgreSQL database (one or more hosts).
    Postgres,
}

/// A claimed task and its fence.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// The task, now `running` on the claimer's backend (full row).
    pub task: TaskRow,
    /// This claim's fence: later writes of the run name it.
    pub fence: i64,
}

/// The head of the queue in one snapshot: what the queue page, a task's place and the ETA
/// start from.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueHead {
    /// Whether the queue is paused.
    pub paused: bool,
    /// The running tasks (listing columns), earliest started first.
    pub running: Vec<TaskRow>,
    /// The first `lookahead` pending tasks in rank order (listing columns).
    pub window: Vec<TaskRow>,
    /// The counts.
    pub counts: Counts,
}

/// What a bulk action did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BulkDone {
    /// The selected ids, in the selection's order.
    pub ids: Vec<String>,
    /// Delete: each task, its status before, and what was decided.
    pub deleted: Vec<(String, TaskStatus, Applied)>,
    /// Requeue: the new tasks' ids (paired with `ids`).
    pub created: Vec<String>,
    /// Bookmark changes: each task's status.
    pub statuses: Vec<(String, TaskStatus)>,
}

/// The stored events after an id, and the log's bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// The oldest stored id.
    pub oldest: Option<u64>,
    /// The newest id handed out (0 when none).
    pub newest: u64,
    /// `(id, name, data)`, oldest first (at most 5000).
    pub rows: Vec<(u64, String, String)>,
}

/// What a shared store's subscription ([`TaskStore::subscribe`]) tells a host about the other
/// hosts' changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Events were stored up to this id (by any host): read the log after the last one
    /// broadcast ([`TaskStore::replay`]).
    Events(u64),
    /// A transient event (`progress`, `preview`) another host published
    /// ([`TaskStore::publish_live`]); `origin` is that host's id. A host's own are not told
    /// back to it (it broadcast them already).
    Live {
        /// The event's name.
        name: String,
        /// Its data (JSON).
        data: String,
        /// The host that published it.
        origin: String,
    },
    /// A task may have become claimable (enqueued, requeued, released, recovered, "run
    /// now", the queue resumed): the workers look again without waiting for a poll.
    Wake,
    /// The subscription lost its connection and has it again: notices in between are lost,
    /// so the caller replays the event log from its last id and wakes its workers.
    Reconnected,
}

/// A stored backend and its driver as `GET /backends` shows it: `(id, driving host, ms
/// left on its lease)`; `None, None` when no host holds a live lease on it.
pub type BackendDriver = (i64, Option<String>, Option<i64>);

/// Every store operation the services use. See the module documentation.
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Which store this is.
    fn kind(&self) -> StoreKind;

    // --- tasks -------------------------------------------------------------------------

    /// Appends pending tasks at the end of the queue, in order, in one transaction. With an
    /// idempotency key `(key, answer)`: a known key returns its stored answer and inserts
    /// nothing; otherwise `answer` is stored with the tasks.
    async fn insert_tasks(
        &self,
        tasks: Vec<NewTask>,
        idempotency: Option<(String, String)>,
        now: i64,
    ) -> Result<Option<String>, StoreError>;
    /// The stored answer of an idempotency key.
    async fn idempotent_answer(&self, key: String) -> Result<Option<String>, StoreError>;
    /// Forgets idempotency keys older than `before_ms`; returns how many.
    async fn prune_idempotency(&self, before_ms: i64) -> Result<usize, StoreError>;
    /// For each id: whether a task has it (ids compared without case).
    async fn tasks_exist(&self, ids: Vec<String>) -> Result<Vec<bool>, StoreError>;
    /// One task (`full`: its request with images, snapshot and `info`).
    async fn get_task(&self, id: String, full: bool) -> Result<Option<TaskRow>, StoreError>;
    /// A copy of a task at the end (new id, pending, not bookmarked, in no group).
    async fn insert_copy(
        &self,
        id: String,
        new_id: String,
        name: NameFn,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Edits a pending task (request, name, checkpoint), checked against `edit.contract`.
    async fn edit_task(&self, id: String, edit: TaskEdit, now: i64) -> Result<(), StoreError>;
    /// Renames a task (any status); returns it (listing columns).
    async fn rename(
        &self,
        id: String,
        name: Option<String>,
        now: i64,
    ) -> Result<TaskRow, StoreError>;
    /// Sets or clears a bookmark (any status); returns the task (listing columns).
    async fn set_bookmark(&self, id: String, on: bool, now: i64) -> Result<TaskRow, StoreError>;
    /// For each id: its rows' result file names, `None` when there is no such task.
    async fn image_files_of(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<Option<HashSet<String>>>, StoreError>;

    // --- listings ----------------------------------------------------------------------

    /// The counts per status.
    async fn counts(&self) -> Result<Counts, StoreError>;
    /// The head of the queue in one snapshot.
    async fn queue_head(&self, lookahead: i64) -> Result<QueueHead, StoreError>;
    /// Whether the queue is paused, and the counts (what the `queue` event shows), in one
    /// read.
    async fn queue_state(&self) -> Result<(bool, Counts), StoreError>;
    /// Pending tasks in rank order after `(rank, seq)`, skipping `offset`.
    async fn pending_rows(
        &self,
        after: Option<(i64, i64)>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<TaskRow>, StoreError>;
    /// The running tasks as `(id, backend)`, earliest started first.
    async fn running(&self) -> Result<Vec<(String, Option<String>)>, StoreError>;
    /// Running, then pending tasks by rank (offset paging) with the total; with `q`, the
    /// matches in the queue in the order of creation.
    async fn list_queue(
        &self,
        q: Option<String>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TaskRow>, i64), StoreError>;
    /// Full-text matches of the user's text `q` in `scope` (every word, the last as a
    /// prefix): oldest first in the queue, newest first in the history; after `after_seq`.
    async fn search(
        &self,
        q: String,
        scope: Scope,
        after_seq: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TaskRow>, i64), StoreError>;
    /// Finished tasks newest first (`Cursor::Finished`), or the search matches
    /// (`Cursor::Seq`), with the total for the filter.
    async fn history_page(
        &self,
        filter: HistoryFilter,
        q: Option<String>,
        cursor: Option<Cursor>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TaskRow>, i64), StoreError>;
    /// Finished tasks by checkpoint, newest first within one, after
    /// `(checkpoint, finished_at, seq)`.
    async fn history_by_checkpoint(
        &self,
        filter: HistoryFilter,
        after: Option<(Option<String>, i64, i64)>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TaskRow>, i64), StoreError>;
    /// How many pending tasks come before `(rank, seq)`.
    async fn pending_before(&self, rank: i64, seq: i64) -> Result<i64, StoreError>;
    /// The tasks of a group, in the order they were enqueued.
    async fn group_rows(&self, group_id: String) -> Result<Vec<TaskRow>, StoreError>;
    /// The ids a selection names, in its listing's order.
    async fn resolve(&self, sel: Selection) -> Result<Vec<String>, StoreError>;

    // --- transitions -------------------------------------------------------------------

    /// Applies a user's event (delete, requeue, …) to a task: decide, then write.
    async fn apply(
        &self,
        id: String,
        event: Event,
        policy: Policy,
        now: i64,
    ) -> Result<Applied, StoreError>;
    /// Applies events in order in one transaction (the first refusal rolls all back).
    async fn apply_batch(
        &self,
        items: Vec<(String, Event)>,
        policy: Policy,
        now: i64,
    ) -> Result<usize, StoreError>;
    /// `DELETE /task/{id}`: the task's status before, and what was decided.
    async fn delete(
        &self,
        id: String,
        policy: Policy,
        now: i64,
    ) -> Result<(Applied, TaskStatus), StoreError>;
    /// Claims the task `choose` picks among the look-ahead window for `backend`, counting
    /// the overtakes; the claim gets a new fence (and, on PostgreSQL, this host's lease).
    async fn claim_next(
        &self,
        backend: String,
        now: i64,
        choose: ChooseFn,
    ) -> Result<Option<Claimed>, StoreError>;
    /// Decides a run's event (released, errored) for the task `id` running under the claim
    /// `fence` and writes it guarded by that fence; [`StoreError::Stale`] (nothing written)
    /// when the task no longer runs under that claim.
    async fn apply_claimed(
        &self,
        id: String,
        fence: i64,
        event: Event,
        policy: Policy,
        now: i64,
    ) -> Result<Applied, StoreError>;
    /// Writes the end of the run `fence` (`event`: [`Event::Finished`]), decided on the task
    /// as it is now (a stop asked meanwhile makes it interrupted) and guarded by the claim's
    /// fence: status, outputs, callback row. [`StoreError::Stale`] (nothing written) when the
    /// task no longer runs under that claim.
    async fn finish(
        &self,
        id: String,
        fence: i64,
        event: Event,
        policy: Policy,
        run: RunOutputs,
        now: i64,
    ) -> Result<Applied, StoreError>;
    /// Extends the leases of this host's claims under `fences` (the claims its workers
    /// hold: a claim no worker holds — its answer lost with the database — is left to
    /// expire and be reclaimed); returns how many it renewed.
    async fn renew_leases(&self, fences: Vec<i64>) -> Result<usize, StoreError>;
    /// Running tasks whose lease expired (their host is gone) are [`Event::Recovered`].
    async fn reclaim_expired(
        &self,
        policy: Policy,
        now: i64,
    ) -> Result<Vec<(String, Applied)>, StoreError>;
    /// When the earliest task waiting out a retry backoff may run.
    async fn next_retry_at(&self) -> Result<Option<i64>, StoreError>;
    /// Start-up: this host's tasks left `running` (and, shared, any whose lease expired)
    /// are [`Event::Recovered`].
    async fn recover_running(
        &self,
        policy: Policy,
        now: i64,
    ) -> Result<Vec<(String, Applied)>, StoreError>;
    /// Shutdown: this host's running tasks go back to the head.
    async fn release_running(&self, now: i64) -> Result<Vec<(String, Applied)>, StoreError>;
    /// Every failed task requeued, oldest failure first.
    async fn requeue_failed(&self, now: i64) -> Result<Vec<(String, Applied)>, StoreError>;
    /// Deletes every non-bookmarked pending task.
    async fn clear_queue(&self, now: i64) -> Result<Vec<(String, Applied)>, StoreError>;
    /// Deletes every non-bookmarked finished task (finished before `before_ms`).
    async fn clear_history(
        &self,
        before_ms: Option<i64>,
        now: i64,
    ) -> Result<Vec<(String, Applied)>, StoreError>;
    /// One action on every selected task, in one transaction (copies get new random ids).
    async fn bulk(
        &self,
        action: BulkAction,
        sel: Selection,
        policy: Policy,
        now: i64,
    ) -> Result<BulkDone, StoreError>;
    /// Moves a pending task to the top, the bottom, or before another pending task.
    async fn move_task(&self, id: String, target: MoveTarget, now: i64) -> Result<(), StoreError>;
    /// "Run now"; returns how many backends run a task now.
    async fn run_now(&self, id: String, now: i64) -> Result<usize, StoreError>;

    // --- exports -----------------------------------------------------------------------

    /// Pending tasks in queue order, full rows, within `limit` rows and about `budget`
    /// bytes.
    async fn pending_page(
        &self,
        from: PendingFrom,
        limit: usize,
        budget: usize,
    ) -> Result<Vec<TaskRow>, StoreError>;
    /// Full rows of the first `ids` within about `budget` bytes; returns them and how many
    /// ids were consumed.
    async fn full_rows_page(
        &self,
        ids: Vec<String>,
        budget: usize,
    ) -> Result<(Vec<TaskRow>, usize), StoreError>;
    /// For each id still a task: its status and result images.
    async fn result_files(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<(String, TaskStatus, Vec<ImageRow>)>, StoreError>;

    // --- speeds ------------------------------------------------------------------------

    /// Every backend's stored speed.
    async fn speeds(&self) -> Result<Vec<(String, Speed)>, StoreError>;
    /// Updates a backend's speed from its stored one, in one transaction.
    async fn record_speed(
        &self,
        backend: String,
        update: SpeedFn,
        now: i64,
    ) -> Result<Speed, StoreError>;
    /// The pending tasks after `(rank, seq)`, reading only what their work depends on.
    async fn pending_work_after(&self, after: (i64, i64)) -> Result<Vec<PendingWork>, StoreError>;

    // --- settings ----------------------------------------------------------------------

    /// The settings (defaults where never written).
    async fn load_settings(&self) -> Result<Settings, StoreError>;
    /// Writes the settings.
    async fn save_settings(&self, settings: Settings) -> Result<(), StoreError>;
    /// Whether the queue is paused.
    async fn is_paused(&self) -> Result<bool, StoreError>;
    /// Pauses or resumes the queue.
    async fn set_paused(&self, paused: bool) -> Result<(), StoreError>;
    /// A small write that tells whether the database takes writes.
    async fn probe_write(&self) -> Result<(), StoreError>;

    // --- backends ----------------------------------------------------------------------

    /// Every stored backend, oldest first.
    async fn added_backends(&self) -> Result<Vec<AddedBackend>, StoreError>;
    /// Stores a backend; `None` when that URL is stored already.
    async fn add_backend(&self, url: String, now: i64) -> Result<Option<i64>, StoreError>;
    /// Forgets a stored backend.
    async fn remove_backend(&self, id: i64) -> Result<(), StoreError>;
    /// Records whether a stored backend takes tasks.
    async fn set_backend_admin(
        &self,
        id: i64,
        enabled: bool,
        draining: bool,
    ) -> Result<(), StoreError>;

    /// The stored backend with this URL (compared as given), stored now unless it was: how
    /// each host's `--backend` flags join the one pool of a shared store.
    async fn ensure_backend(&self, url: String, now: i64) -> Result<i64, StoreError>;
    /// Takes the listed stored backends that no host drives (free, or their lease expired,
    /// in database time) and renews this host's lease on those it drives, in one statement;
    /// returns the ids this host drives now, in order. Unlisted backends keep their lease
    /// until it expires. SQLite (one host): every listed id.
    async fn drive_backends(&self, ids: Vec<i64>) -> Result<Vec<i64>, StoreError>;
    /// Shutdown: gives up this host's leases on the listed backends (another host takes them
    /// at once). SQLite: nothing to do.
    async fn release_backends(&self, ids: Vec<i64>) -> Result<(), StoreError>;
    /// Every stored backend's driver, oldest backend first. SQLite: no leases (`None,
    /// None`): the one host drives them all.
    async fn backend_drivers(&self) -> Result<Vec<BackendDriver>, StoreError>;
    /// Stores the figures (JSON, as `GET /backends` shows them) of the listed backends
    /// `(id, figures)` that this host drives now (a live lease); the others' are left as
    /// they are. SQLite (one host): nothing to do.
    async fn store_backend_figures(&self, figures: Vec<(i64, String)>) -> Result<(), StoreError>;
    /// Every stored backend's figures as its driver last stored them `(id, figures)`, oldest
    /// backend first (those never stored left out). SQLite: none.
    async fn backend_figures(&self) -> Result<Vec<(i64, String)>, StoreError>;

    // --- events and callbacks ----------------------------------------------------------

    /// Stores events `(name, data)`; returns their ids (increasing, in commit order).
    async fn insert_events(
        &self,
        events: Vec<(String, String)>,
        now: i64,
    ) -> Result<Vec<u64>, StoreError>;
    /// The stored events after `after` and the log's bounds.
    async fn replay(&self, after: u64) -> Result<Replay, StoreError>;
    /// The stored events after `after` (`(id, name, data)`, oldest first, at most 5000),
    /// without the bounds (what a host following the log reads on each notice).
    async fn events_after(&self, after: u64) -> Result<Vec<(u64, String, String)>, StoreError>;
    /// The oldest `limit` callback deliveries waiting.
    async fn all_deliveries(&self, limit: i64) -> Result<Vec<Delivery>, StoreError>;
    /// When the next delivery is due.
    async fn next_delivery_at(&self) -> Result<Option<i64>, StoreError>;
    /// Removes a delivered (or abandoned) delivery.
    async fn delivery_done(&self, id: i64) -> Result<(), StoreError>;
    /// Schedules another try of a delivery.
    async fn delivery_retry(&self, id: i64, next_at: i64, error: String) -> Result<(), StoreError>;

    // --- hosts sharing the store ---------------------------------------------------------

    /// The other hosts' changes as they happen ([`Notice`]), on a connection of its own that
    /// reconnects by itself ([`Notice::Reconnected`]); `None` on a store only one host uses
    /// (SQLite). The subscription listens before this returns: every change committed after
    /// it is told. It ends when the receiver is dropped.
    async fn subscribe(&self) -> Result<Option<Receiver<Notice>>, StoreError>;
    /// Tells the other hosts a transient event (`progress`, `preview`: not stored in the
    /// log), of any size. Nothing on SQLite.
    async fn publish_live(&self, name: String, data: String) -> Result<(), StoreError>;
}
