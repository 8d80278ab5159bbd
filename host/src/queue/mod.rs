//! The queue service: every change to tasks — the inserts of enqueue and import (which
//! `intake` checks and builds), edits, deletes, moves, "run now", requeues, pause — and the
//! worker side of the state machine (claim, release, errored, finish), each one store call
//! (a finish writes its images first) followed by its events and, when something may now
//! run, a wake-up of the workers. Also the reads the other services and the handlers make
//! (`reads.rs`: the pages, a task's place; exports in pages; idempotency keys).
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
use crate::reach::{HOLD_DATABASE_UNREACHABLE, Reach};

/// The words of the hold while every backend is stalled.
pub const HOLD_BACKEND_STALLED: &str = "backend stalled";
use crate::error::HostError;
use crate::events::EventHub;
use crate::model::policy;
use crate::model::transition::{Change, Event, Outputs, RunEnd, Transition, decide};
use crate::model::{NewTask, TaskEdit, TaskRow};
use crate::results::ResultStorage;
use crate::results::storage::WriteError;
use crate::sdnext::GenerateOutput;
use crate::settings::SettingsService;
use crate::store::transitions::{self, Applied, RunOutputs};
use crate::store::{SharedStore, StoreError};

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

/// Why tasks do not start now (see [`Queue::hold_reason`]).
fn hold_of(reach: &Reach, disk: &Disk, backends: &Backends) -> Option<String> {
    if reach.is_down() {
        return Some(HOLD_DATABASE_UNREACHABLE.to_owned());
    }
    if disk.is_full() {
        return Some(HOLD_DISK_FULL.to_owned());
    }
    let all = backends.all();
    let stalled = all
        .iter()
        .all(|b| b.status().state == Some(scheduler_api::BackendState::Stalled));
    (!all.is_empty() && stalled).then(|| HOLD_BACKEND_STALLED.to_owned())
}

/// Work asked for by every change but done once at a time: a change while it runs asks for
/// one more run after it (so the last run always follows the last change), never one per
/// change.
#[derive(Default)]
struct Coalesced {
    /// A change asked for a run that has not started.
    asked: AtomicBool,
    /// A run is going on.
    running: AtomicBool,
}

impl Coalesced {
    /// Asks for a run; true when the caller must start one (none is going on).
    fn ask(&self) -> bool {
        self.asked.store(true, Ordering::SeqCst);
        !self.running.swap(true, Ordering::SeqCst)
    }

    /// A run starts: what was asked until now is covered by it.
    fn start(&self) {
        self.asked.store(false, Ordering::SeqCst);
    }

    /// A run ended: true when the runner must run again (asked meanwhile, and nobody else
    /// took over).
    fn again(&self) -> bool {
        self.running.store(false, Ordering::SeqCst);
        self.asked.load(Ordering::SeqCst) && !self.running.swap(true, Ordering::SeqCst)
    }
}

/// A claimed task, with the fence of its claim and the signal that stops its run.
pub struct Claim {
    /// The task, `running` under `fence`.
    pub task: TaskRow,
    /// The claim's fence.
    pub fence: i64,
    /// What the run is asked to do (the user's interrupt, the backend withdrawn).
    pub stop: watch::Receiver<crate::backends::ClaimStop>,
}

/// The queue.
pub struct Queue {
    store: SharedStore,
    events: EventHub,
    settings: Arc<SettingsService>,
    backends: Arc<Backends>,
    files: ResultStorage,
    callbacks: Arc<Notify>,
    wake: watch::Sender<u64>,
    disk: Arc<Disk>,
    /// Whether the database answers.
    reach: Arc<Reach>,
    /// The counts when last read (what the queue event shows while the database cannot be
    /// reached).
    last_counts: Arc<Mutex<(i64, i64)>>,
    /// Backends whose claim got no answer (the database unreachable): the claim may have
    /// been written, with no worker to run it; settled when the database answers again.
    uncertain: Mutex<Vec<String>>,
    /// Claims (task id, fence) whose release could not be written (full disk): released
    /// when space returns (or recovered at the next start).
    unreleased: Mutex<Vec<(String, i64)>>,
    /// Test builds: run ends wait while this is true (`/test/faults` `hold_finishes`).
    #[cfg(feature = "fault-injection")]
    finishes_held: watch::Sender<bool>,
    /// The start-up recovery could not be written (full disk): it runs when space returns.
    recovery_pending: AtomicBool,
    /// Whether the queue was paused when last read or changed (what `/health` shows while
    /// the database cannot be reached).
    last_paused: Arc<AtomicBool>,
    /// The `queue` event's reads: one at a time, the changes made meanwhile read once after
    /// it.
    queue_reads: Arc<Coalesced>,
    /// The time of every change.
    clock: Clock,
}

impl Queue {
    /// The service. `callbacks` wakes the callback deliverer; `clock` times every change.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: SharedStore,
        events: EventHub,
        settings: Arc<SettingsService>,
        backends: Arc<Backends>,
        files: impl Into<ResultStorage>,
        callbacks: Arc<Notify>,
        disk: Arc<Disk>,
        reach: Arc<Reach>,
        clock: Clock,
    ) -> Queue {
        Queue {
            store,
            events,
            settings,
            backends,
            files: files.into(),
            callbacks,
            wake: watch::channel(0).0,
            disk,
            reach,
            last_counts: Arc::new(Mutex::new((0, 0))),
            uncertain: Mutex::new(Vec::new()),
            unreleased: Mutex::new(Vec::new()),
            #[cfg(feature = "fault-injection")]
            finishes_held: watch::channel(false).0,
            recovery_pending: AtomicBool::new(false),
            last_paused: Arc::new(AtomicBool::new(false)),
            queue_reads: Arc::default(),
            clock,
        }
    }

    /// The clock every change is timed by.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Why tasks do not start now, apart from the user's pause: `"disk full"`,
    /// `"database unreachable"`, or `"backend stalled"` when every backend is stalled (an
    /// abandoned request).
    pub fn hold_reason(&self) -> Option<String> {
        hold_of(&self.reach, &self.disk, &self.backends)
    }

    /// Wakes the idle workers (something may be runnable now).
    pub fn wake(&self) {
        self.wake.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A receiver that changes on every wake-up.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    /// Emits a `queue` event with fresh counters (off the caller's path). Coalesced: the
    /// changes made while one is read are read once after it, so a busy queue reads its
    /// counters once per read's time, not once per change, and the last event always
    /// follows the last change.
    pub fn queue_event(&self) {
        if !self.queue_reads.ask() {
            return;
        }
        let store = self.store.clone();
        let events = self.events.clone();
        let (last_counts, last_paused) = (self.last_counts.clone(), self.last_paused.clone());
        let (reach, disk, backends) =
            (self.reach.clone(), self.disk.clone(), self.backends.clone());
        let reads = self.queue_reads.clone();
        tokio::spawn(async move {
            loop {
                reads.start();
                let hold_reason = hold_of(&reach, &disk, &backends);
                let read = match store.queue_state().await {
                    Ok((paused, counts)) => {
                        let c = (counts.pending, counts.running);
                        *last_counts.lock().unwrap_or_else(|p| p.into_inner()) = c;
                        last_paused.store(paused, Ordering::Relaxed);
                        Some((paused, c.0, c.1))
                    }
                    // Unreachable: the hold is announced with the counts last read.
                    Err(StoreError::Unavailable(_)) => {
                        let (pending, running) =
                            *last_counts.lock().unwrap_or_else(|p| p.into_inner());
                        Some((last_paused.load(Ordering::Relaxed), pending, running))
                    }
                    Err(_) => None,
                };
                if let Some((paused, pending, running)) = read {
                    events.emit(WireEvent::Queue(QueueEvent {
                        paused,
                        pending,
                        running,
                        hold_reason,
                    }));
                }
                if !reads.again() {
                    return;
                }
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
        let paused = self.store.is_paused().await?;
        self.last_paused.store(paused, Ordering::Relaxed);
        Ok(paused)
    }

    /// Whether the queue was paused when last read or changed.
    pub fn last_paused(&self) -> bool {
        self.last_paused.load(Ordering::Relaxed)
    }

    /// Which store the queue is in.
    pub fn store_kind(&self) -> crate::store::api::StoreKind {
        self.store.kind()
    }

    /// One page of pending tasks for export, in queue order, full requests included: at
    /// most `limit` rows and about `budget` bytes of requests (exports stream page by page).
    pub async fn export_page(
        &self,
        from: crate::model::cursor::PendingFrom,
        limit: usize,
        budget: usize,
    ) -> Result<Vec<TaskRow>, HostError> {
        Ok(self.store.pending_page(from, limit, budget).await?)
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
            .full_rows_page(ids.get(start..).unwrap_or(&[]).to_vec(), budget)
            .await?)
    }

    /// The running tasks as `(id, backend)`, earliest started first.
    pub async fn running(&self) -> Result<Vec<(String, Option<String>)>, HostError> {
        Ok(self.store.running().await?)
    }

    /// Whether an id is taken.
    pub async fn exists(&self, ids: Vec<String>) -> Result<Vec<bool>, HostError> {
        Ok(self.store.tasks_exist(ids).await?)
    }

    /// The answer stored with an idempotency key, if the key was used.
    pub async fn idempotent_answer(&self, key: String) -> Result<Option<String>, HostError> {
        Ok(self.store.idempotent_answer(key).await?)
    }

    // -----------------------------------------------------------------------------------
    // Changes

    /// Appends new pending tasks (with an idempotency key and the answer to store with it);
    /// returns the stored answer when the key was taken meanwhile.
    pub async fn insert(
        &self,
        new: Vec<NewTask>,
        idempotency: Option<(String, String)>,
    ) -> Result<Option<String>, HostError> {
        let names: Vec<(String, Option<String>)> =
            new.iter().map(|t| (t.id.clone(), t.name.clone())).collect();
        let now = self.clock.now_ms();
        let prev = self.store.insert_tasks(new, idempotency, now).await?;
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
        let name = edit.name.as_ref().and_then(|n| n.as_deref());
        crate::model::contract::check_text("name", name).map_err(HostError::Violation)?;
        let now = self.clock.now_ms();
        self.store.edit_task(id.clone(), edit, now).await?;
        self.events
            .task(&id, TaskStatus::Pending, TaskChange::Updated, None);
        self.wake();
        self.events.flush().await;
        Ok(())
    }

    /// Sets or clears a task's bookmark.
    pub async fn set_bookmark(&self, id: String, on: bool) -> Result<(), HostError> {
        let now = self.clock.now_ms();
        let row = self.store.set_bookmark(id.clone(), on, now).await?;
        self.relabelled(&id, row).await;
        Ok(())
    }

    /// Renames a task (any status).
    pub async fn rename(&self, id: String, name: String) -> Result<(), HostError> {
        crate::model::contract::check_text("name", Some(&name)).map_err(HostError::Violation)?;
        let now = self.clock.now_ms();
        let row = self.store.rename(id.clone(), Some(name), now).await?;
        self.relabelled(&id, row).await;
        Ok(())
    }

    /// Announces a label change (name, bookmark); the order is untouched.
    async fn relabelled(&self, id: &str, row: TaskRow) {
        self.events
            .task(id, row.status(), TaskChange::Updated, row.name);
        self.events.flush().await;
    }

    /// Deletes a pending or finished task (with its files), or interrupts a running one.
    /// Returns the message.
    pub async fn delete(&self, id: String) -> Result<&'static str, HostError> {
        let policy = self.settings.policy();
        let now = self.clock.now_ms();
        let (applied, status) = self.store.delete(id.clone(), policy, now).await?;
        match applied.transition {
            Transition::Interrupt { fence, .. } => {
                // Only the worker running that claim stops; a run that already ended is
                // not reached, and its end is written interrupted (the stop is recorded).
                self.backends.interrupt(&id, fence);
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
        let rows = self.store.group_rows(group_id).await?;
        if rows.is_empty() {
            return Err(HostError::NotFound);
        }
        Ok(rows)
    }

    /// The ids a selection names, in its listing's order (404 for an unknown id, 422 for
    /// a selection that is not exactly ids or a filter, 413 for too many ids).
    pub async fn resolve(&self, sel: Selection) -> Result<Vec<String>, HostError> {
        check_selection(&sel)?;
        Ok(self.store.resolve(sel).await?)
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
        let now = self.clock.now_ms();
        let done = self.store.bulk(action, sel, policy, now).await?;
        let (ids, deleted, statuses, fresh) = (done.ids, done.deleted, done.statuses, done.created);
        match action {
            BulkAction::Delete => {
                let mut gone = Vec::new();
                for (id, before, applied) in &deleted {
                    match &applied.transition {
                        Transition::Interrupt { fence, .. } => {
                            self.backends.interrupt(id, *fence);
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
        let now = self.clock.now_ms();
        self.store.move_task(id.clone(), target, now).await?;
        self.events
            .task(&id, TaskStatus::Pending, TaskChange::Moved, None);
        self.wake();
        self.events.flush().await;
        Ok(())
    }

    /// "Run now". Returns the message.
    pub async fn run_now(&self, id: String) -> Result<&'static str, HostError> {
        let now = self.clock.now_ms();
        let busy = self.store.run_now(id.clone(), now).await?;
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
            .insert_copy(id, n, crate::model::spec::copy_name, now)
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
        let changed = self.store.requeue_failed(now).await?;
        self.files
            .remove_tasks(changed.iter().map(|(id, _)| id.clone()).collect())
            .await;
        self.announce(&changed, TaskChange::Updated).await;
        Ok(changed.len())
    }

    /// Pauses or resumes (persisted).
    pub async fn set_paused(&self, paused: bool) -> Result<(), HostError> {
        self.store.set_paused(paused).await?;
        self.last_paused.store(paused, Ordering::Relaxed);
        self.queue_event();
        if !paused {
            self.wake();
        }
        Ok(())
    }

    /// Deletes non-bookmarked pending tasks; returns how many.
    pub async fn clear(&self) -> Result<usize, HostError> {
        let now = self.clock.now_ms();
        let removed = self.store.clear_queue(now).await?;
        for (id, _) in &removed {
            self.events
                .task(id, TaskStatus::Pending, TaskChange::Deleted, None);
        }
        self.queue_event();
        self.events.flush().await;
        Ok(removed.len())
    }

    // -----------------------------------------------------------------------------------
    // The worker side: each claim has a fence, and everything written for a run (its end,
    // its release, a failed try) is fenced to its claim.

    /// Claims the task the scheduling policy picks for `backend` among the look-ahead
    /// window (`running` in the database before it is sent) under a new fence, counts the
    /// overtakes, and announces it. The claim is registered with the backend before it is
    /// written (so a stop for the claimed task finds it): its stop signal comes with it.
    pub async fn claim(
        &self,
        backend: &Arc<crate::backends::Backend>,
    ) -> Result<Option<Claim>, HostError> {
        if self.disk.is_full() || self.reach.is_down() {
            // On hold: a run's files could not be written now, or the database cannot be
            // reached.
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
        let stop = backend.begin_claim();
        // On SQLite a light commit: a claim lost in a power cut leaves the task pending,
        // which is where a task running at a power cut goes at the next start anyway.
        let claimed = self
            .store
            .claim_next(
                url,
                now,
                Box::new(move |window, paused| {
                    let (waiting, mut seats) = view.policy_input(window);
                    // It is claiming: whatever it was doing is over.
                    seats[me].activity = policy::Activity::Idle;
                    policy::pick(&waiting, &seats, me, &rules, paused, now).map(|c| {
                        transitions::Choice {
                            index: c.index,
                            overtaken: c.overtaken,
                        }
                    })
                }),
            )
            .await;
        backend.claimed();
        let (claimed, fence) = match claimed {
            Ok(Some(c)) => (c.task, c.fence),
            Ok(None) => {
                backend.claim_missed();
                return Ok(None);
            }
            Err(e) => {
                backend.claim_missed();
                if matches!(e, StoreError::Unavailable(_)) {
                    self.uncertain
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(backend.url.clone());
                }
                return Err(e.into());
            }
        };
        backend.claim_took(fence, &claimed.id);
        backend.start_run(&claimed);
        self.events.task(
            &claimed.id,
            TaskStatus::Running,
            TaskChange::Started,
            claimed.name.clone(),
        );
        self.queue_event();
        Ok(Some(Claim {
            task: claimed,
            fence,
            stop,
        }))
    }

    /// Announces a change a run's end, release or failed try made (its status as the
    /// transition function decided it); wakes the deliverer when a callback is due.
    fn announce_run(&self, id: &str, applied: &Applied) {
        if let Some(status) = applied.status() {
            let change = if status.is_finished() {
                TaskChange::Finished
            } else {
                TaskChange::Updated
            };
            self.events.task(id, status, change, applied.name.clone());
        }
        if applied.callback_queued {
            self.callbacks.notify_one();
        }
    }

    /// Gives the task of the claim `fence` back to the head of the queue without counting
    /// an attempt (or ends it interrupted when the user asked to stop it). `None` when the
    /// claim was over already (ended elsewhere: nothing written). On a full disk the release
    /// is remembered and written when space returns.
    pub async fn release(&self, id: &str, fence: i64) -> Result<Option<Applied>, HostError> {
        let policy = self.settings.policy();
        let now = self.clock.now_ms();
        let r = self
            .store
            .apply_claimed(id.to_owned(), fence, Event::Released, policy, now)
            .await;
        let applied = match r {
            Err(e @ (StoreError::DiskFull | StoreError::Unavailable(_))) => {
                tracing::warn!("task {id} goes back to the queue when it can be written ({e})");
                self.unreleased
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((id.to_owned(), fence));
                self.queue_event();
                return Ok(None);
            }
            Err(StoreError::Stale(why)) => {
                tracing::debug!("{why}");
                return Ok(None);
            }
            other => other?,
        };
        self.announce_run(id, &applied);
        self.events.flush().await;
        self.queue_event();
        self.wake();
        Ok(Some(applied))
    }

    /// A backend was disabled or removed: the claim it runs (if it took a task) ends at once
    /// — its task goes back to the head for another backend, or ends interrupted when the
    /// user had asked to stop it — and its worker is told to let the run go.
    pub async fn withdraw(&self, backend: &crate::backends::Backend) -> Result<(), HostError> {
        if let Some((fence, id)) = backend.withdraw_claim() {
            tracing::info!(
                "task {id}: its backend {} was withdrawn; the claim ends now",
                backend.url
            );
            self.release(&id, fence).await?;
        }
        Ok(())
    }

    /// The generation request of the claim `fence` failed after it was sent while the
    /// backend was up: counts an attempt; the task waits out its backoff at the head, or
    /// fails after `max_attempts`. `None` when the claim was over already.
    pub async fn errored(
        &self,
        id: &str,
        fence: i64,
        reason: String,
    ) -> Result<Option<Applied>, HostError> {
        let policy = self.settings.policy();
        let now = self.clock.now_ms();
        let event = Event::Errored { reason };
        let applied = match self
            .store
            .apply_claimed(id.to_owned(), fence, event, policy, now)
            .await
        {
            Err(StoreError::DiskFull) => {
                self.release(id, fence).await?;
                return Err(HostError::disk_full());
            }
            // Given back (now, or when the database answers again): no attempt counted.
            Err(e @ StoreError::Unavailable(_)) => {
                self.release(id, fence).await?;
                return Err(e.into());
            }
            Err(StoreError::Stale(why)) => {
                tracing::debug!("{why}");
                return Ok(None);
            }
            other => other?,
        };
        self.announce_run(id, &applied);
        self.events.flush().await;
        self.queue_event();
        self.wake();
        Ok(Some(applied))
    }

    /// When the earliest task waiting out a retry backoff may run (ms), if any.
    pub async fn next_retry_at(&self) -> Result<Option<i64>, HostError> {
        Ok(self.store.next_retry_at().await?)
    }

    /// Records the end of the run of `task`'s claim: asks the transition function once what
    /// the end means, writes the images it keeps (fsynced) before the row that points at
    /// them, then commits status, outputs and the callback row together, fenced to the
    /// claim (decided again on the task as it is then: a stop the user asked meanwhile
    /// makes it interrupted, and the files it does not keep go); then events and wake-ups.
    /// `None` when the claim was over already (ended elsewhere: nothing written, no files
    /// left).
    pub async fn finish(
        &self,
        task: &TaskRow,
        end: RunEnd,
        output: Option<GenerateOutput>,
        ended_at: i64,
    ) -> Result<Option<Applied>, HostError> {
        #[cfg(feature = "fault-injection")]
        self.finishes_held().await;
        let Some(fence) = task.life.fence else {
            return Err(HostError::Internal(format!(
                "task {} ended without a claim",
                task.id
            )));
        };
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
        let mut end = end;
        let change = decide_end(end.clone())?;
        let mut run = RunOutputs {
            images: Vec::new(),
            info: output.as_ref().map(|o| o.info.clone()),
        };
        if let (Outputs::Record { images: true }, Some(out)) = (change.outputs, output) {
            let written = self
                .files
                .write_images(&task.id, fence, out.images, out.infotexts)
                .await;
            match written {
                Ok(rows) => run.images = rows,
                // No space for its files: the run is given back (no attempt counted) and
                // the queue holds until space returns.
                Err(WriteError::Io(_)) if self.disk.is_full() => {
                    self.files.discard(&task.id, fence).await;
                    self.release(&task.id, fence).await?;
                    return Err(HostError::disk_full());
                }
                // The database cannot be reached: nothing of the run can be written; the
                // task goes back (now, or when the database answers again) and runs again.
                Err(WriteError::Store(e @ StoreError::Unavailable(_))) => {
                    self.files.discard(&task.id, fence).await;
                    self.release(&task.id, fence).await?;
                    return Err(e.into());
                }
                // The run's outcome is now this failure: decided anew, files or not (what
                // the database took of them goes).
                Err(e) => {
                    if matches!(e, WriteError::Store(_)) {
                        self.files.discard(&task.id, fence).await;
                    }
                    end = RunEnd::Failed(format!("cannot store images: {e}"));
                }
            }
        }
        let id = task.id.clone();
        let event = Event::Finished { end, at: ended_at };
        let r = run.clone();
        let now = self.clock.now_ms();
        let written = self.store.finish(id, fence, event, policy, r, now).await;
        let kept = matches!(
            &written,
            Ok(Applied { transition: Transition::Change(c), .. })
                if c.outputs == (Outputs::Record { images: true })
        );
        if !run.images.is_empty() && !kept {
            // Not kept (stopped meanwhile), or not written (the claim was over, the task
            // deleted, the disk full): its files must not stay behind.
            self.files.discard(&task.id, fence).await;
        }
        let applied = match written {
            Ok(a) => a,
            Err(StoreError::Stale(why)) => {
                tracing::info!("{why}");
                return Ok(None);
            }
            Err(StoreError::DiskFull) => {
                self.release(&task.id, fence).await?;
                return Err(HostError::disk_full());
            }
            // Its end could not be written: the task goes back (now, or when the database
            // answers again) and runs again.
            Err(e @ StoreError::Unavailable(_)) => {
                self.release(&task.id, fence).await?;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        self.announce_run(&task.id, &applied);
        self.events.flush().await;
        self.queue_event();
        // Another backend may have waited for this one (a task kept for its checkpoint).
        self.wake();
        Ok(Some(applied))
    }

    /// Test builds: holds every run's end (before anything of it is written) while `on`
    /// (`POST /test/faults {"hold_finishes": true}`), so a test can act in the moment
    /// between a run's answer and its record.
    #[cfg(feature = "fault-injection")]
    pub fn hold_finishes(&self, on: bool) {
        self.finishes_held.send_replace(on);
    }

    #[cfg(feature = "fault-injection")]
    async fn finishes_held(&self) {
        let mut held = self.finishes_held.subscribe();
        let _ = held.wait_for(|on| !on).await;
    }

    /// Whether no task is pending.
    pub async fn is_drained(&self) -> Result<bool, HostError> {
        Ok(self.store.counts().await?.pending == 0)
    }

    /// Start-up: tasks left `running` by a stopped host are recovered by policy (on a full
    /// disk they stay running until space returns). The store hands out the fences of this
    /// host's claims, above theirs.
    pub async fn recover(&self) -> Result<(), HostError> {
        let policy = self.settings.policy();
        let now = self.clock.now_ms();
        let changed = match self.store.recover_running(policy, now).await {
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

    /// Running tasks whose lease expired (their host is gone) were recovered: announces
    /// them and wakes the workers.
    pub async fn reclaimed(&self, changed: &[(String, Applied)]) {
        for (id, a) in changed {
            if let Some(s) = a.status() {
                tracing::warn!(
                    "task {id} was running on a host whose lease expired: now {}",
                    s.as_str()
                );
            }
        }
        self.announce(changed, TaskChange::Updated).await;
    }

    /// Space is back, or the database answers again: runs what could not be written (the
    /// start-up recovery on a full disk, releases of runs whose files or ends could not be
    /// written). False when it still cannot.
    pub async fn resume_after_disk_full(&self) -> bool {
        if self.recovery_pending.load(Ordering::Relaxed) {
            let policy = self.settings.policy();
            let now = self.clock.now_ms();
            match self.store.recover_running(policy, now).await {
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
        let waiting: Vec<(String, i64)> =
            std::mem::take(&mut *self.unreleased.lock().unwrap_or_else(|p| p.into_inner()));
        for (i, (id, fence)) in waiting.iter().enumerate() {
            let (task, fence) = (id.clone(), *fence);
            let policy = self.settings.policy();
            let now = self.clock.now_ms();
            match self
                .store
                .apply_claimed(task, fence, Event::Released, policy, now)
                .await
            {
                Ok(applied) => self.announce_run(id, &applied),
                Err(StoreError::DiskFull | StoreError::Unavailable(_)) => {
                    self.unreleased
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend(waiting[i..].iter().cloned());
                    return false;
                }
                // Its claim is over (deleted, or ended elsewhere meanwhile): nothing to do.
                Err(e) => tracing::warn!("releasing {id}: {e}"),
            }
        }
        self.settle_uncertain_claims().await
    }

    /// The fences of the claims this host's workers hold (the leases its heartbeat renews).
    pub fn held_fences(&self) -> Vec<i64> {
        self.backends
            .all()
            .iter()
            .filter_map(|b| b.claim_fence())
            .collect()
    }

    /// A claim whose answer was lost may have been written: a task running on one of those
    /// backends that no worker here holds goes back to the queue (fenced to its claim).
    /// False when the database still cannot be reached.
    async fn settle_uncertain_claims(&self) -> bool {
        let urls: Vec<String> =
            std::mem::take(&mut *self.uncertain.lock().unwrap_or_else(|p| p.into_inner()));
        if urls.is_empty() {
            return true;
        }
        let keep = |urls: Vec<String>| {
            self.uncertain
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(urls);
            false
        };
        let running = match self.store.running().await {
            Ok(r) => r,
            Err(StoreError::Unavailable(_) | StoreError::DiskFull) => return keep(urls),
            Err(e) => {
                tracing::warn!("reading the running tasks: {e}");
                return true;
            }
        };
        let all = self.backends.all();
        for (id, backend) in running {
            // Only a backend this host still drives: one another host took over meanwhile
            // runs that host's claims (its lease ran out here, so no claim of ours is on it
            // any more: the reclaimer gave those back).
            let ours = backend.is_some_and(|b| {
                urls.contains(&b) && all.iter().any(|x| x.url == b && x.driven_here())
            });
            if !ours || all.iter().any(|b| b.holds(&id)) {
                continue;
            }
            let fence = match self.store.get_task(id.clone(), false).await {
                Ok(Some(t)) => t.life.fence,
                Ok(None) => continue,
                Err(StoreError::Unavailable(_) | StoreError::DiskFull) => return keep(urls),
                Err(e) => {
                    tracing::warn!("reading {id}: {e}");
                    continue;
                }
            };
            let Some(fence) = fence else { continue };
            tracing::warn!(
                "task {id} was claimed while the database was unreachable: it goes back to the queue"
            );
            let policy = self.settings.policy();
            let now = self.clock.now_ms();
            match self
                .store
                .apply_claimed(id.clone(), fence, Event::Released, policy, now)
                .await
            {
                Ok(applied) => self.announce_run(&id, &applied),
                Err(StoreError::Unavailable(_) | StoreError::DiskFull) => return keep(urls),
                // Ended meanwhile: nothing to do.
                Err(e) => tracing::debug!("releasing {id}: {e}"),
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
        let changed = self.store.release_running(now).await?;
        Ok(changed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::Coalesced;

    #[test]
    fn coalesced_runs_one_at_a_time_and_once_more_after_the_changes_made_meanwhile() {
        let c = Coalesced::default();
        // The first change starts a run; the ones while it runs start none.
        assert!(c.ask());
        c.start();
        assert!(!c.ask());
        assert!(!c.ask());
        // They are read once more, after it, then nothing is left.
        assert!(c.again());
        c.start();
        assert!(!c.again());
        // Idle again: the next change starts a run.
        assert!(c.ask());
        c.start();
        assert!(!c.again());
    }
}
