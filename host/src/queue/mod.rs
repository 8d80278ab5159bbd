//! The queue service: every change to tasks that is not an enqueue — edits, deletes,
//! moves, "run now", requeues, pause — and the worker side of the state machine (claim,
//! release, finish), each as one store call followed by its events and a wake-up of the
//! workers.
//!
//! Owns: the wake-up channel of the workers, the `queue` event, the decision of which run
//! outputs to keep (asked of [`crate::model::transition::decide`] once per run end).
//! Must not: decide a status itself (the transition function does), hold SQL (`store/`),
//! or talk to SD.Next (`worker/`).

mod reads;

pub use reads::{HistoryPage, Placement, QueuePage, Start, projected_order};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use scheduler_api::{
    BulkAction, Event as WireEvent, MAX_SELECTION_IDS, MoveTarget, QueueEvent, Selection,
    TaskChange, TaskStatus,
};
use tokio::sync::{Notify, watch};

use crate::backends::Backends;
use crate::backends::view::PoolView;
use crate::clock::Clock;
use crate::disk::{Disk, HOLD_DISK_FULL};

/// The words of the hold while every backend is stalled.
pub const HOLD_BACKEND_STALLED: &str = "backend stalled";
use crate::error::HostError;
use crate::events::EventHub;
use crate::model::policy;
use crate::model::transition::{Change, Event, Outputs, RunEnd, Transition, decide};
use crate::model::{NewTask, TaskRow};
use crate::results::ResultFiles;
use crate::sdnext::GenerateOutput;
use crate::settings::SettingsService;
use crate::store::tasks::{self, TaskEdit};
use crate::store::transitions::{self, Applied, RunOutputs};
use crate::store::{Store, StoreError, bulk, listing, order, rows, settings as stored};

/// A selection is ids or a filter (not both, not neither), `except` only with a filter, and
/// at most [`MAX_SELECTION_IDS`] ids.
fn check_selection(sel: &Selection) -> Result<(), HostError> {
    match (sel.ids.is_empty(), &sel.filter) {
        (true, None) => Err(HostError::Invalid(
            "an empty selection: give `ids` or a `filter`".into(),
        )),
        (false, Some(_)) => Err(HostError::Invalid(
            "give `ids` or a `filter`, not both".into(),
        )),
        (false, None) if !sel.except.is_empty() => {
            Err(HostError::Invalid("`except` goes with a `filter`".into()))
        }
        (false, None) if sel.ids.len() > MAX_SELECTION_IDS => Err(HostError::TooLarge(format!(
            "{} ids: at most {MAX_SELECTION_IDS}; select by filter instead",
            sel.ids.len()
        ))),
        _ => Ok(()),
    }
}

/// The queue.
pub struct Queue {
    store: Store,
    events: EventHub,
    settings: Arc<SettingsService>,
    backends: Arc<Backends>,
    files: ResultFiles,
    callbacks: Arc<Notify>,
    wake: watch::Sender<u64>,
    disk: Arc<Disk>,
    /// Running tasks whose release could not be written (full disk): released when space
    /// returns (or recovered at the next start).
    unreleased: Mutex<Vec<TaskRow>>,
    /// The start-up recovery could not be written (full disk): it runs when space returns.
    recovery_pending: AtomicBool,
    /// The time of every change.
    clock: Clock,
}

impl Queue {
    /// The service. `callbacks` wakes the callback deliverer; `clock` times every change.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        events: EventHub,
        settings: Arc<SettingsService>,
        backends: Arc<Backends>,
        files: ResultFiles,
        callbacks: Arc<Notify>,
        disk: Arc<Disk>,
        clock: Clock,
    ) -> Queue {
        Queue {
            store,
            events,
            settings,
            backends,
            files,
            callbacks,
            wake: watch::channel(0).0,
            disk,
            unreleased: Mutex::new(Vec::new()),
            recovery_pending: AtomicBool::new(false),
            clock,
        }
    }

    /// The clock every change is timed by.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Why tasks do not start now, apart from the user's pause: `"disk full"`, or
    /// `"backend stalled"` when every backend is stalled (an abandoned request).
    pub fn hold_reason(&self) -> Option<String> {
        if self.disk.is_full() {
            return Some(HOLD_DISK_FULL.to_owned());
        }
        let all = self.backends.all();
        let stalled = all
            .iter()
            .all(|b| b.status().state == Some(scheduler_api::BackendState::Stalled));
        (!all.is_empty() && stalled).then(|| HOLD_BACKEND_STALLED.to_owned())
    }

    /// Wakes the idle workers (something may be runnable now).
    pub fn wake(&self) {
        self.wake.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A receiver that changes on every wake-up.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    /// Emits a `queue` event with fresh counters (off the caller's path).
    pub fn queue_event(&self) {
        let store = self.store.clone();
        let events = self.events.clone();
        let hold_reason = self.hold_reason();
        tokio::spawn(async move {
            let r = store
                .read(|c| Ok((listing::counts(c)?, stored::is_paused(c)?)))
                .await;
            if let Ok((counts, paused)) = r {
                events.emit(WireEvent::Queue(QueueEvent {
                    paused,
                    pending: counts.pending,
                    running: counts.running,
                    hold_reason,
                }));
            }
        });
    }

    /// Announces tasks that changed status and makes the answer wait until the events are
    /// stored.
    async fn announce(&self, changed: &[(String, Applied)], change: TaskChange) {
        for (id, a) in changed {
            if let Some(status) = a.status() {
                self.events.task(id, status, change, a.name.clone());
            }
        }
        self.queue_event();
        self.wake();
        self.events.flush().await;
    }

    // -----------------------------------------------------------------------------------
    // Reads

    /// Whether the queue is paused.
    pub async fn is_paused(&self) -> Result<bool, HostError> {
        Ok(self.store.read(stored::is_paused).await?)
    }

    /// One page of pending tasks for export, in queue order, full requests included: at
    /// most `limit` rows and about `budget` bytes of requests (exports stream page by page).
    pub async fn export_page(
        &self,
        from: crate::store::export::PendingFrom,
        limit: usize,
        budget: usize,
    ) -> Result<Vec<TaskRow>, HostError> {
        Ok(self
            .store
            .read(move |c| crate::store::export::pending_page(c, from, limit, budget))
            .await?)
    }

    /// Full rows of `ids[start..]` within about `budget` bytes (at least one id), a task
    /// deleted since skipped; returns them and how many ids were consumed.
    pub async fn rows_page(
        &self,
        ids: std::sync::Arc<Vec<String>>,
        start: usize,
        budget: usize,
    ) -> Result<(Vec<TaskRow>, usize), HostError> {
        Ok(self
            .store
            .read(move |c| {
                crate::store::export::full_rows_page(c, ids.get(start..).unwrap_or(&[]), budget)
            })
            .await?)
    }

    /// The running tasks as `(id, backend)`, earliest started first.
    pub async fn running(&self) -> Result<Vec<(String, Option<String>)>, HostError> {
        Ok(self.store.read(listing::running).await?)
    }

    /// Whether an id is taken.
    pub async fn exists(&self, ids: Vec<String>) -> Result<Vec<bool>, HostError> {
        Ok(self
            .store
            .read(move |c| ids.iter().map(|id| tasks::task_exists(c, id)).collect())
            .await?)
    }

    // -----------------------------------------------------------------------------------
    // Changes

    /// Appends new pending tasks (with an idempotency key and the answer to store with it);
    /// returns the stored answer when the key was already used.
    pub async fn insert(
        &self,
        new: Vec<NewTask>,
        idempotency: Option<(String, String)>,
    ) -> Result<Option<String>, HostError> {
        let names: Vec<(String, Option<String>)> =
            new.iter().map(|t| (t.id.clone(), t.name.clone())).collect();
        let now = self.clock.now_ms();
        let prev = self
            .store
            .call(move |c| {
                tasks::insert_tasks(
                    c,
                    &new,
                    idempotency.as_ref().map(|(k, a)| (k.as_str(), a.as_str())),
                    now,
                )
            })
            .await?;
        if prev.is_some() {
            return Ok(prev);
        }
        for (id, name) in names {
            self.events
                .task(&id, TaskStatus::Pending, TaskChange::Created, name);
        }
        self.queue_event();
        self.wake();
        self.events.flush().await;
        Ok(None)
    }

    /// Edits a pending task.
    pub async fn edit(&self, id: String, edit: TaskEdit) -> Result<(), HostError> {
        let i = id.clone();
        let now = self.clock.now_ms();
        self.store
            .call(move |c| tasks::edit_task(c, &i, edit, now))
            .await?;
        self.events
            .task(&id, TaskStatus::Pending, TaskChange::Updated, None);
        self.wake();
        self.events.flush().await;
        Ok(())
    }

    /// Sets or clears a task's bookmark.
    pub async fn set_bookmark(&self, id: String, on: bool) -> Result<(), HostError> {
        self.relabel(id, move |c, i, now| tasks::set_bookmark(c, i, on, now))
            .await
    }

    /// Renames a task (any status).
    pub async fn rename(&self, id: String, name: String) -> Result<(), HostError> {
        self.relabel(id, move |c, i, now| tasks::rename(c, i, Some(&name), now))
            .await
    }

    /// Applies a label change (name, bookmark) and announces it; the order is untouched.
    async fn relabel(
        &self,
        id: String,
        change: impl FnOnce(&rusqlite::Connection, &str, i64) -> Result<(), crate::store::StoreError>
        + Send
        + 'static,
    ) -> Result<(), HostError> {
        let i = id.clone();
        let now = self.clock.now_ms();
        let row = self
            .store
            .call(move |c| {
                change(c, &i, now)?;
                rows::require(c, &i, false)
            })
            .await?;
        self.events
            .task(&id, row.status(), TaskChange::Updated, row.name);
        self.events.flush().await;
        Ok(())
    }

    /// Deletes a pending or finished task (with its files), or interrupts a running one.
    /// Returns the message.
    pub async fn delete(&self, id: String) -> Result<&'static str, HostError> {
        let i = id.clone();
        let policy = self.settings.policy();
        let now = self.clock.now_ms();
        let (applied, status) = self
            .store
            .call(move |c| {
                let status = rows::require(c, &i, false)?.status();
                Ok((
                    transitions::apply(c, &i, &Event::Delete, &policy, now)?,
                    status,
                ))
            })
            .await?;
        match applied.transition {
            Transition::Interrupt { backend } => {
                self.backends.interrupt(&id, backend.as_deref());
                Ok("Task interrupted")
            }
            Transition::Remove { files } => {
                if files {
                    self.files.remove_tasks(vec![id.clone()]).await;
                }
                self.events.task(&id, status, TaskChange::Deleted, None);
                self.queue_event();
                self.events.flush().await;
                Ok("Task deleted")
            }
            other => Err(HostError::Internal(format!("delete decided {other:?}"))),
        }
    }

    /// The tasks of a group, in the order they were enqueued (404 for an unknown group).
    pub async fn group(&self, group_id: String) -> Result<Vec<TaskRow>, HostError> {
        let rows = self
            .store
            .read(move |c| bulk::group_rows(c, &group_id))
            .await?;
        if rows.is_empty() {
            return Err(HostError::NotFound);
        }
        Ok(rows)
    }

    /// The ids a selection names, in its listing's order (404 for an unknown id, 422 for
    /// a selection that is not exactly ids or a filter, 413 for too many ids).
    pub async fn resolve(&self, sel: Selection) -> Result<Vec<String>, HostError> {
        check_selection(&sel)?;
        Ok(self.store.read(move |c| bulk::resolve(c, &sel)).await?)
    }

    /// One action on every selected task, in one transaction (a task whose state does not
    /// allow it refuses the whole request, 409, and nothing changes). Returns how many and,
    /// for requeue, the new tasks' ids.
    pub async fn bulk(
        &self,
        action: BulkAction,
        sel: Selection,
    ) -> Result<(usize, Vec<String>), HostError> {
        check_selection(&sel)?;
        let policy = self.settings.policy();
        let new_ids = std::sync::Arc::new(Mutex::new(Vec::<String>::new()));
        let made = new_ids.clone();
        let now = self.clock.now_ms();
        let outcome = self
            .store
            .call(move |c| {
                let ids = bulk::resolve(c, &sel)?;
                let mut deleted = Vec::new();
                match action {
                    BulkAction::Delete => deleted = bulk::delete(c, &ids, &policy, now)?,
                    BulkAction::Requeue => {
                        let fresh: Vec<String> = ids
                            .iter()
                            .map(|_| uuid::Uuid::new_v4().to_string())
                            .collect();
                        bulk::requeue(c, &ids, &fresh, crate::model::spec::copy_name, now)?;
                        *made.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
                    }
                    BulkAction::Bookmark => bulk::bookmark(c, &ids, true, now)?,
                    BulkAction::Unbookmark => bulk::bookmark(c, &ids, false, now)?,
                    BulkAction::MoveTop => bulk::move_to(c, &ids, true, now)?,
                    BulkAction::MoveBottom => bulk::move_to(c, &ids, false, now)?,
                }
                // Statuses for the events of the label changes.
                let statuses = match action {
                    BulkAction::Bookmark | BulkAction::Unbookmark => ids
                        .iter()
                        .map(|id| Ok((id.clone(), rows::require(c, id, false)?.status())))
                        .collect::<Result<Vec<_>, StoreError>>()?,
                    _ => Vec::new(),
                };
                Ok((ids, deleted, statuses))
            })
            .await?;
        let (ids, deleted, statuses) = outcome;
        let fresh = std::mem::take(&mut *new_ids.lock().unwrap_or_else(|p| p.into_inner()));
        match action {
            BulkAction::Delete => {
                let mut gone = Vec::new();
                for (id, before, applied) in &deleted {
                    match &applied.transition {
                        Transition::Interrupt { backend } => {
                            self.backends.interrupt(id, backend.as_deref())
                        }
                        Transition::Remove { files } => {
                            if *files {
                                gone.push(id.clone());
                            }
                            self.events.task(id, *before, TaskChange::Deleted, None);
                        }
                        _ => {}
                    }
                }
                self.files.remove_tasks(gone).await;
            }
            BulkAction::Requeue => {
                for id in &fresh {
                    self.events
                        .task(id, TaskStatus::Pending, TaskChange::Created, None);
                }
            }
            BulkAction::Bookmark | BulkAction::Unbookmark => {
                for (id, status) in &statuses {
                    self.events.task(id, *status, TaskChange::Updated, None);
                }
            }
            BulkAction::MoveTop | BulkAction::MoveBottom => {
                for id in &ids {
                    self.events
                        .task(id, TaskStatus::Pending, TaskChange::Moved, None);
                }
            }
        }
        self.queue_event();
        self.wake();
        self.events.flush().await;
        Ok((ids.len(), fresh))
    }

    /// Moves a pending task.
    pub async fn move_task(&self, id: String, target: MoveTarget) -> Result<(), HostError> {
        let i = id.clone();
        let now = self.clock.now_ms();
        self.store
            .call(move |c| order::move_task(c, &i, &target, now))
            .await?;
        self.events
            .task(&id, TaskStatus::Pending, TaskChange::Moved, None);
        self.wake();
        self.events.flush().await;
        Ok(())
    }

    /// "Run now". Returns the message.
    pub async fn run_now(&self, id: String) -> Result<&'static str, HostError> {
        let i = id.clone();
        let now = self.clock.now_ms();
        let busy = self.store.call(move |c| order::run_now(c, &i, now)).await?;
        self.events
            .task(&id, TaskStatus::Pending, TaskChange::Moved, None);
        self.wake();
        self.events.flush().await;
        Ok(if busy > 0 && busy >= self.backends.len() {
            "Task is scheduled to run next"
        } else {
            "Task is executing"
        })
    }

    /// Requeues a copy at the end; returns its id.
    pub async fn requeue(&self, id: String) -> Result<String, HostError> {
        let new_id = uuid::Uuid::new_v4().to_string();
        let n = new_id.clone();
        let now = self.clock.now_ms();
        self.store
            .call(move |c| tasks::insert_copy(c, &id, &n, crate::model::spec::copy_name, now))
            .await?;
        self.events
            .task(&new_id, TaskStatus::Pending, TaskChange::Created, None);
        self.queue_event();
        self.wake();
        self.events.flush().await;
        Ok(new_id)
    }

    /// Requeues every failed task in place (their files go); returns how many.
    pub async fn requeue_failed(&self) -> Result<usize, HostError> {
        let now = self.clock.now_ms();
        let changed = self
            .store
            .call(move |c| transitions::requeue_failed(c, now))
            .await?;
        self.files
            .remove_tasks(changed.iter().map(|(id, _)| id.clone()).collect())
            .await;
        self.announce(&changed, TaskChange::Updated).await;
        Ok(changed.len())
    }

    /// Pauses or resumes (persisted).
    pub async fn set_paused(&self, paused: bool) -> Result<(), HostError> {
        self.store
            .call(move |c| stored::set_paused(c, paused))
            .await?;
        self.queue_event();
        if !paused {
            self.wake();
        }
        Ok(())
    }

    /// Deletes non-bookmarked pending tasks; returns how many.
    pub async fn clear(&self) -> Result<usize, HostError> {
        let now = self.clock.now_ms();
        let removed = self
            .store
            .call(move |c| transitions::clear_queue(c, now))
            .await?;
        for (id, _) in &removed {
            self.events
                .task(id, TaskStatus::Pending, TaskChange::Deleted, None);
        }
        self.queue_event();
        self.events.flush().await;
        Ok(removed.len())
    }

    // -----------------------------------------------------------------------------------
    // The worker side

    /// Claims the task the scheduling policy picks for `backend` among the look-ahead
    /// window (`running` in the database before it is sent), counts the overtakes, and
    /// announces it.
    pub async fn claim(
        &self,
        backend: &Arc<crate::backends::Backend>,
    ) -> Result<Option<TaskRow>, HostError> {
        if self.disk.is_full() {
            // On hold: a run's files could not be written now.
            backend.claimed();
            return Ok(None);
        }
        let view = PoolView::of(&self.backends.all());
        let Some(me) = view.index_of(&backend.url) else {
            backend.claimed();
            return Ok(None);
        };
        let rules = self.settings.rules();
        let now = self.clock.now_ms();
        let url = backend.url.clone();
        // A light commit: a claim lost in a power cut leaves the task pending, which is
        // where a task running at a power cut goes at the next start anyway.
        let claimed = self
            .store
            .call_light(move |c| {
                transitions::claim_next(c, &url, now, |window, paused| {
                    let (waiting, mut seats) = view.policy_input(window);
                    // It is claiming: whatever it was doing is over.
                    seats[me].activity = policy::Activity::Idle;
                    policy::pick(&waiting, &seats, me, &rules, paused, now).map(|c| {
                        transitions::Choice {
                            index: c.index,
                            overtaken: c.overtaken,
                        }
                    })
                })
            })
            .await;
        backend.claimed();
        let claimed = claimed?;
        if let Some(t) = &claimed {
            backend.start_run(t);
            self.events.task(
                &t.id,
                TaskStatus::Running,
                TaskChange::Started,
                t.name.clone(),
            );
            self.queue_event();
        }
        Ok(claimed)
    }

    /// Gives a running task back to the head of the queue without counting an attempt. On a
    /// full disk the release is remembered and written when space returns.
    pub async fn release(&self, task: &TaskRow) -> Result<(), HostError> {
        let id = task.id.clone();
        let policy = self.settings.policy();
        let now = self.clock.now_ms();
        let r = self
            .store
            .call(move |c| transitions::apply(c, &id, &Event::Released, &policy, now))
            .await;
        if let Err(crate::store::StoreError::DiskFull) = r {
            tracing::warn!(
                "task {} goes back to the queue when space returns (disk full)",
                task.id
            );
            self.unreleased
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(task.clone());
            self.queue_event();
            return Ok(());
        }
        r?;
        self.events.task(
            &task.id,
            TaskStatus::Pending,
            TaskChange::Updated,
            task.name.clone(),
        );
        self.queue_event();
        Ok(())
    }

    /// A generation request failed after it was sent while the backend was up: counts an
    /// attempt; the task waits out its backoff at the head, or fails after `max_attempts`.
    pub async fn errored(&self, task: &TaskRow, reason: String) -> Result<Applied, HostError> {
        let id = task.id.clone();
        let policy = self.settings.policy();
        let now = self.clock.now_ms();
        let applied = match self
            .store
            .call(move |c| transitions::apply(c, &id, &Event::Errored { reason }, &policy, now))
            .await
        {
            Err(crate::store::StoreError::DiskFull) => {
                self.release(task).await?;
                return Err(HostError::disk_full());
            }
            other => other?,
        };
        if let Some(status) = applied.status() {
            let change = if status == TaskStatus::Pending {
                TaskChange::Updated
            } else {
                TaskChange::Finished
            };
            self.events
                .task(&task.id, status, change, applied.name.clone());
        }
        self.events.flush().await;
        self.queue_event();
        if applied.callback_queued {
            self.callbacks.notify_one();
        }
        self.wake();
        Ok(applied)
    }

    /// When the earliest task waiting out a retry backoff may run (ms), if any.
    pub async fn next_retry_at(&self) -> Result<Option<i64>, HostError> {
        Ok(self.store.read(transitions::next_retry_at).await?)
    }

    /// Records the end of a run: asks the transition function once what the end means,
    /// writes the images it keeps (fsynced) before the row that points at them, then
    /// commits status, outputs and the callback row together; then events and wake-ups.
    pub async fn finish(
        &self,
        task: &TaskRow,
        end: RunEnd,
        output: Option<GenerateOutput>,
        ended_at: i64,
    ) -> Result<Applied, HostError> {
        let policy = self.settings.policy();
        let decide_end = |end: RunEnd| -> Result<Change, HostError> {
            match decide(
                &task.life,
                &Event::Finished { end, at: ended_at },
                &policy,
                self.clock.now_ms(),
            )? {
                Transition::Change(c) => Ok(c),
                other => Err(HostError::Internal(format!("a run end decided {other:?}"))),
            }
        };
        let mut change = decide_end(end)?;
        let mut run = RunOutputs {
            images: Vec::new(),
            info: output.as_ref().map(|o| o.info.clone()),
        };
        if let (Outputs::Record { images: true }, Some(out)) = (change.outputs, output) {
            let files = self.files.clone();
            let id = task.id.clone();
            let written = tokio::task::spawn_blocking(move || {
                files.write_images(&id, &out.images, &out.infotexts)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
            match written {
                Ok(rows) => run.images = rows,
                // No space for its files: the run is given back (no attempt counted) and
                // the queue holds until space returns.
                Err(_) if self.disk.is_full() => {
                    self.files.remove_tasks(vec![task.id.clone()]).await;
                    self.release(task).await?;
                    return Err(HostError::disk_full());
                }
                // The run's outcome is now this failure: decided anew, files or not.
                Err(e) => change = decide_end(RunEnd::Failed(format!("cannot store images: {e}")))?,
            }
        }
        let id = task.id.clone();
        let c = change.clone();
        let r = run.clone();
        let now = self.clock.now_ms();
        let applied = match self
            .store
            .call(move |conn| transitions::finish(conn, &id, &c, &r, now))
            .await
        {
            Ok(a) => a,
            Err(e) => {
                // Deleted meanwhile (or not writable): its files must not stay behind.
                if !run.images.is_empty() {
                    self.files.remove_tasks(vec![task.id.clone()]).await;
                }
                if let crate::store::StoreError::DiskFull = e {
                    self.release(task).await?;
                }
                return Err(e.into());
            }
        };
        let status = change.next.status;
        let change_kind = if status == TaskStatus::Pending {
            TaskChange::Updated
        } else {
            TaskChange::Finished
        };
        self.events
            .task(&task.id, status, change_kind, applied.name.clone());
        self.events.flush().await;
        self.queue_event();
        if applied.callback_queued {
            self.callbacks.notify_one();
        }
        // Another backend may have waited for this one (a task kept for its checkpoint).
        self.wake();
        Ok(applied)
    }

    /// Whether no task is pending.
    pub async fn is_drained(&self) -> Result<bool, HostError> {
        Ok(self.store.read(listing::counts).await?.pending == 0)
    }

    /// Start-up: tasks left `running` by a stopped host are recovered by policy.
    pub async fn recover(&self) -> Result<(), HostError> {
        let policy = self.settings.policy();
        let now = self.clock.now_ms();
        let changed = match self
            .store
            .call(move |c| transitions::recover_running(c, &policy, now))
            .await
        {
            Err(crate::store::StoreError::DiskFull) => {
                tracing::error!(
                    "tasks left running cannot be recovered now (disk full): they are when \
                     space returns"
                );
                self.recovery_pending.store(true, Ordering::Relaxed);
                return Ok(());
            }
            other => other?,
        };
        for (id, a) in &changed {
            if let Some(s) = a.status() {
                tracing::warn!(
                    "task {id} was running when the host stopped: now {}",
                    s.as_str()
                );
            }
        }
        self.announce(&changed, TaskChange::Updated).await;
        Ok(())
    }

    /// Space is back: runs what a full disk kept from being written (the start-up recovery,
    /// releases of runs whose files could not be written). False when it still cannot.
    pub async fn resume_after_disk_full(&self) -> bool {
        if self.recovery_pending.load(Ordering::Relaxed) {
            let policy = self.settings.policy();
            let now = self.clock.now_ms();
            match self
                .store
                .call(move |c| transitions::recover_running(c, &policy, now))
                .await
            {
                Ok(changed) => {
                    self.recovery_pending.store(false, Ordering::Relaxed);
                    self.announce(&changed, TaskChange::Updated).await;
                }
                Err(e) => {
                    tracing::warn!("recovery still cannot be written: {e}");
                    return false;
                }
            }
        }
        let waiting: Vec<TaskRow> =
            std::mem::take(&mut *self.unreleased.lock().unwrap_or_else(|p| p.into_inner()));
        for (i, task) in waiting.iter().enumerate() {
            let id = task.id.clone();
            let policy = self.settings.policy();
            let now = self.clock.now_ms();
            match self
                .store
                .call(move |c| transitions::apply(c, &id, &Event::Released, &policy, now))
                .await
            {
                Ok(_) => self.events.task(
                    &task.id,
                    TaskStatus::Pending,
                    TaskChange::Updated,
                    task.name.clone(),
                ),
                Err(crate::store::StoreError::DiskFull) => {
                    self.unreleased
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend(waiting[i..].iter().cloned());
                    return false;
                }
                // Gone or no longer running (deleted meanwhile): nothing to release.
                Err(e) => tracing::warn!("releasing {}: {e}", task.id),
            }
        }
        true
    }

    /// Lifts the hold: announces the queue and wakes the workers.
    pub fn resumed(&self) {
        self.queue_event();
        self.wake();
    }

    /// Shutdown: tasks still running go back to the head of the queue.
    pub async fn release_all(&self) -> Result<usize, HostError> {
        let now = self.clock.now_ms();
        let changed = self
            .store
            .call(move |c| transitions::release_running(c, now))
            .await?;
        Ok(changed.len())
    }
}
