//! The queue service: every change to tasks that is not an enqueue — edits, deletes,
//! moves, "run now", requeues, pause — and the worker side of the state machine (claim,
//! release, finish), each as one store call followed by its events and a wake-up of the
//! workers.
//!
//! Owns: the wake-up channel of the workers, the `queue` event, the decision of which run
//! outputs to keep (asked of [`crate::model::transition::decide`] once per run end).
//! Must not: decide a status itself (the transition function does), hold SQL (`store/`),
//! or talk to SD.Next (`worker/`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use scheduler_api::{
    Event as WireEvent, HistoryFilter, MoveTarget, QueueEvent, TaskChange, TaskStatus,
};
use tokio::sync::{Notify, watch};

use crate::backends::Backends;
use crate::disk::{Disk, HOLD_DISK_FULL};

/// The words of the hold while every backend is stalled.
pub const HOLD_BACKEND_STALLED: &str = "backend stalled";
use crate::error::HostError;
use crate::events::EventHub;
use crate::model::cursor::Cursor;
use crate::model::search::{Scope, fts_match, fts_query};
use crate::model::transition::{Change, Event, Outputs, RunEnd, Transition, decide};
use crate::model::{NewTask, TaskRow, now_ms};
use crate::results::ResultFiles;
use crate::sdnext::GenerateOutput;
use crate::settings::SettingsService;
use crate::store::tasks::{self, TaskEdit};
use crate::store::transitions::{self, Applied, Eligibility, LOOKAHEAD, RunOutputs};
use crate::store::{Store, StoreError, listing, order, rows, settings as stored};

/// Where a listing page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Skip this many (old clients).
    Offset(i64),
    /// After a cursor of an earlier page.
    After(Cursor),
}

/// One page of `GET /queue`.
#[derive(Debug, Clone)]
pub struct QueuePage {
    /// Running then pending tasks, each with its place in the queue.
    pub rows: Vec<(TaskRow, Option<i64>)>,
    /// How many match (all pages).
    pub total: i64,
    /// Ids of the running tasks, earliest started first.
    pub running: Vec<String>,
    /// Whether the queue is paused.
    pub paused: bool,
    /// Why tasks do not start now, apart from the pause.
    pub hold_reason: Option<String>,
    /// Where the next page starts, when there is one.
    pub next: Option<Cursor>,
    /// How many pending tasks (from the head) are in the look-ahead window.
    pub window: i64,
}

/// One page of `GET /history`.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    /// Finished tasks, newest first.
    pub rows: Vec<TaskRow>,
    /// How many match (all pages).
    pub total: i64,
    /// Where the next page starts, when there is one.
    pub next: Option<Cursor>,
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
}

impl Queue {
    /// The service. `callbacks` wakes the callback deliverer.
    pub fn new(
        store: Store,
        events: EventHub,
        settings: Arc<SettingsService>,
        backends: Arc<Backends>,
        files: ResultFiles,
        callbacks: Arc<Notify>,
        disk: Arc<Disk>,
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
        }
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

    /// One page of running then pending tasks: the running ones, then the look-ahead window
    /// (the first [`LOOKAHEAD`] pending tasks), then the rest in rank order. With `q`: the
    /// matches in the order of creation.
    pub async fn page(
        &self,
        q: Option<String>,
        limit: i64,
        start: Start,
    ) -> Result<QueuePage, HostError> {
        Ok(self
            .store
            .read(move |c| {
                let paused = stored::is_paused(c)?;
                let running_ids: Vec<String> =
                    listing::running(c)?.into_iter().map(|(id, _)| id).collect();
                if let Some(m) = q.as_deref().and_then(|q| fts_match(q, Scope::Queue)) {
                    let (after, offset) = match start {
                        Start::After(Cursor::Seq(s)) => (Some(s), 0),
                        Start::After(_) => (None, 0),
                        Start::Offset(o) => (None, o),
                    };
                    let (rows, total) = listing::search(c, &m, Scope::Queue, after, limit, offset)?;
                    let next = (rows.len() as i64 == limit && limit > 0)
                        .then(|| rows.last().map(|r| Cursor::Seq(r.seq)))
                        .flatten();
                    let rows = rows
                        .into_iter()
                        .map(|r| {
                            let pos = tasks::position(c, &r)?;
                            Ok((r, pos))
                        })
                        .collect::<Result<_, StoreError>>()?;
                    return Ok(QueuePage {
                        rows,
                        total,
                        running: running_ids,
                        paused,
                        next,
                        window: 0,
                        hold_reason: None,
                    });
                }
                let running = listing::running_rows(c)?;
                let window = listing::pending_rows(c, None, LOOKAHEAD, 0)?;
                let pending = listing::counts(c)?.pending;
                let r = running.len() as i64;
                let w = window.len() as i64;
                let total = r + pending;
                // The last window task in rank order: where the rest of the queue continues.
                let tail_key = window.last().map(|t| (t.rank, t.seq));
                let first = match start {
                    Start::Offset(o) => o.max(0),
                    Start::After(Cursor::Window(i)) => r + i.min(w),
                    Start::After(Cursor::Rank { position, .. }) => position.max(r + w),
                    Start::After(_) => 0,
                };
                let mut rows: Vec<(TaskRow, Option<i64>)> = Vec::new();
                let mut at = first;
                for (i, t) in running.into_iter().chain(window).enumerate() {
                    let i = i as i64;
                    if i >= first && (rows.len() as i64) < limit {
                        rows.push((t, Some(i)));
                        at = i + 1;
                    }
                }
                let more = limit - rows.len() as i64;
                if more > 0 && at >= r + w && total > r + w {
                    let (after, skip) = match start {
                        Start::After(Cursor::Rank { rank, seq, .. }) => (Some((rank, seq)), 0),
                        _ => (tail_key, (at - r - w).max(0)),
                    };
                    let rest = listing::pending_rows(c, after, more, skip)?;
                    let base = at.max(r + w);
                    for (j, t) in rest.into_iter().enumerate() {
                        rows.push((t, Some(base + j as i64)));
                    }
                }
                let next = match rows.last() {
                    Some((t, Some(pos))) if rows.len() as i64 == limit && pos + 1 < total => {
                        Some(if *pos + 1 < r + w {
                            Cursor::Window((pos + 1 - r).max(0))
                        } else if *pos + 1 == r + w {
                            let (rank, seq) = tail_key.unwrap_or((t.rank, t.seq));
                            Cursor::Rank {
                                rank,
                                seq,
                                position: pos + 1,
                            }
                        } else {
                            Cursor::Rank {
                                rank: t.rank,
                                seq: t.seq,
                                position: pos + 1,
                            }
                        })
                    }
                    _ => None,
                };
                Ok(QueuePage {
                    rows,
                    total,
                    running: running_ids,
                    paused,
                    next,
                    window: w,
                    hold_reason: None,
                })
            })
            .await
            .map(|p| QueuePage {
                hold_reason: self.hold_reason(),
                ..p
            })?)
    }

    /// One page of finished tasks, newest first, and the total for the filter.
    pub async fn history(
        &self,
        filter: HistoryFilter,
        q: Option<String>,
        limit: i64,
        start: Start,
    ) -> Result<HistoryPage, HostError> {
        Ok(self
            .store
            .read(move |c| {
                let (cursor, offset) = match start {
                    Start::After(cur) => (Some(cur), 0),
                    Start::Offset(o) => (None, o),
                };
                let (rows, total) =
                    listing::history_page(c, filter, q.as_deref(), cursor.as_ref(), limit, offset)?;
                let searching = q.as_deref().and_then(fts_query).is_some();
                let next = match rows.last() {
                    Some(t) if rows.len() as i64 == limit && limit > 0 => Some(if searching {
                        Cursor::Seq(t.seq)
                    } else {
                        Cursor::Finished {
                            finished_at: t.life.finished_at.unwrap_or(0),
                            seq: t.seq,
                        }
                    }),
                    _ => None,
                };
                Ok(HistoryPage { rows, total, next })
            })
            .await?)
    }

    /// One task (`full`: with its images, page snapshot and `info`) and its position.
    pub async fn task(&self, id: &str, full: bool) -> Result<(TaskRow, Option<i64>), HostError> {
        let id = id.to_owned();
        Ok(self
            .store
            .read(move |c| {
                let row = rows::require(c, &id, full)?;
                let pos = tasks::position(c, &row)?;
                Ok((row, pos))
            })
            .await?)
    }

    /// Pending tasks for export, in queue order, full requests included.
    pub async fn export(&self, limit: i64, offset: i64) -> Result<Vec<TaskRow>, HostError> {
        Ok(self
            .store
            .read(move |c| tasks::export_pending(c, limit, offset))
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
        let prev = self
            .store
            .call(move |c| {
                tasks::insert_tasks(
                    c,
                    &new,
                    idempotency.as_ref().map(|(k, a)| (k.as_str(), a.as_str())),
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
        self.store
            .call(move |c| tasks::edit_task(c, &i, edit))
            .await?;
        self.events
            .task(&id, TaskStatus::Pending, TaskChange::Updated, None);
        self.wake();
        self.events.flush().await;
        Ok(())
    }

    /// Sets or clears a task's bookmark.
    pub async fn set_bookmark(&self, id: String, on: bool) -> Result<(), HostError> {
        self.relabel(id, move |c, i| tasks::set_bookmark(c, i, on))
            .await
    }

    /// Renames a task (any status).
    pub async fn rename(&self, id: String, name: String) -> Result<(), HostError> {
        self.relabel(id, move |c, i| tasks::rename(c, i, Some(&name)))
            .await
    }

    /// Applies a label change (name, bookmark) and announces it; the order is untouched.
    async fn relabel(
        &self,
        id: String,
        change: impl FnOnce(&rusqlite::Connection, &str) -> Result<(), crate::store::StoreError>
        + Send
        + 'static,
    ) -> Result<(), HostError> {
        let i = id.clone();
        let row = self
            .store
            .call(move |c| {
                change(c, &i)?;
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
        let (applied, status) = self
            .store
            .call(move |c| {
                let status = rows::require(c, &i, false)?.status();
                Ok((transitions::apply(c, &i, &Event::Delete, &policy)?, status))
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

    /// Moves a pending task.
    pub async fn move_task(&self, id: String, target: MoveTarget) -> Result<(), HostError> {
        let i = id.clone();
        self.store
            .call(move |c| order::move_task(c, &i, &target))
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
        let busy = self.store.call(move |c| order::run_now(c, &i)).await?;
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
        self.store
            .call(move |c| tasks::insert_copy(c, &id, &n, crate::model::spec::copy_name))
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
        let changed = self.store.call(transitions::requeue_failed).await?;
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
        let removed = self.store.call(transitions::clear_queue).await?;
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

    /// Claims the next task `backend` can run (`running` in the database before it is
    /// sent) and announces it.
    pub async fn claim(
        &self,
        backend: String,
        eligible: impl FnMut(Option<&str>) -> Eligibility + Send + 'static,
    ) -> Result<Option<TaskRow>, HostError> {
        if self.disk.is_full() {
            // On hold: a run's files could not be written now.
            return Ok(None);
        }
        let claimed = self
            .store
            .call(move |c| transitions::claim_next(c, &backend, eligible))
            .await?;
        if let Some(t) = &claimed {
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
        let r = self
            .store
            .call(move |c| transitions::apply(c, &id, &Event::Released, &policy))
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
        let applied = match self
            .store
            .call(move |c| transitions::apply(c, &id, &Event::Errored { reason }, &policy))
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
        Ok(self.store.call(|c| transitions::next_retry_at(c)).await?)
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
                now_ms(),
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
        let applied = match self
            .store
            .call(move |conn| transitions::finish(conn, &id, &c, &r))
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
        if status == TaskStatus::Pending {
            self.wake();
        }
        Ok(applied)
    }

    /// Whether no task is pending.
    pub async fn is_drained(&self) -> Result<bool, HostError> {
        Ok(self.store.read(listing::counts).await?.pending == 0)
    }

    /// Start-up: tasks left `running` by a stopped host are recovered by policy.
    pub async fn recover(&self) -> Result<(), HostError> {
        let policy = self.settings.policy();
        let changed = match self
            .store
            .call(move |c| transitions::recover_running(c, &policy))
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
            match self
                .store
                .call(move |c| transitions::recover_running(c, &policy))
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
            match self
                .store
                .call(move |c| transitions::apply(c, &id, &Event::Released, &policy))
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
        let changed = self.store.call(transitions::release_running).await?;
        Ok(changed.len())
    }
}
