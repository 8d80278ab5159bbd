//! Whether the database answers: a store call that fails with
//! [`StoreError::Unavailable`] (a shared PostgreSQL database that cannot be reached) marks
//! it down; the queue is then on hold (`hold_reason: "database unreachable"`, apart from
//! the user's pause: workers claim nothing) until [`watch_database`]'s probe write succeeds
//! again, every second at first, backing off to every 5 s. The host never stops for it;
//! what it cannot read meanwhile answers 503.
//!
//! [`Watched`] is the store the services use on PostgreSQL: the shared store, each call
//! reported here. (SQLite has no such failure: its store is used as it is.)
//!
//! Must not: decide anything about tasks, or retry a failed call (its caller decides).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use scheduler_api::{BulkAction, HistoryFilter, MoveTarget, Selection, Settings, TaskStatus};
use tokio::sync::mpsc::Receiver;
use tokio::sync::watch;

use crate::model::TaskEdit;
use crate::model::cursor::{Cursor, PendingFrom};
use crate::model::eta::Speed;
use crate::model::search::Scope;
use crate::model::transition::{Event, Policy};
use crate::model::{ImageRow, NewTask, TaskRow};
use crate::store::api::{
    BackendDriver, BulkDone, ChooseFn, Claimed, NameFn, Notice, QueueHead, Replay, SpeedFn,
    StoreKind, TaskStore,
};
use crate::store::backends::AddedBackend;
use crate::store::listing::Counts;
use crate::store::outbox::Delivery;
use crate::store::speed::PendingWork;
use crate::store::transitions::{Applied, RunOutputs};
use crate::store::{SharedStore, StoreError};

/// The words of the hold while the database cannot be reached.
pub const HOLD_DATABASE_UNREACHABLE: &str = "database unreachable";

/// The first wait between two probes of a database that cannot be reached.
pub const PROBE_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two probes.
pub const PROBE_MAX: Duration = Duration::from_secs(5);

/// Whether the database answers (as the last calls found).
#[derive(Debug)]
pub struct Reach {
    down: watch::Sender<bool>,
}

impl Default for Reach {
    fn default() -> Self {
        Reach {
            down: watch::channel(false).0,
        }
    }
}

impl Reach {
    /// Whether the database could not be reached (and has not answered a probe since).
    pub fn is_down(&self) -> bool {
        *self.down.borrow()
    }

    /// A receiver that changes when the database goes down or comes back.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.down.subscribe()
    }

    /// A call found the database unreachable.
    pub fn mark_down(&self, why: &str) {
        if !self.down.send_replace(true) {
            tracing::error!(
                "the database cannot be reached ({why}): tasks will not start, and what needs \
                 it answers 503, until it answers again"
            );
        }
    }

    /// A probe was written: the database answers again.
    pub fn mark_up(&self) {
        if self.down.send_replace(false) {
            tracing::info!("the database answers again: the queue runs again");
        }
    }

    /// Reports the outcome of a call: an unreachable database marks it down.
    pub fn seen<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::Unavailable(why)) = &r {
            self.mark_down(why);
        }
        r
    }
}

/// The store the services use on a shared database: every call of `inner`, its
/// unreachable database reported to `reach`.
pub struct Watched {
    inner: SharedStore,
    reach: Arc<Reach>,
}

impl Watched {
    /// `inner`, reporting to `reach`.
    pub fn new(inner: SharedStore, reach: Arc<Reach>) -> Watched {
        Watched { inner, reach }
    }

    fn seen<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        self.reach.seen(r)
    }
}

#[async_trait]
impl TaskStore for Watched {
    fn kind(&self) -> StoreKind {
        self.inner.kind()
    }

    async fn insert_tasks(
        &self,
        tasks: Vec<NewTask>,
        idempotency: Option<(String, String)>,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        self.seen(self.inner.insert_tasks(tasks, idempotency, now).await)
    }

    async fn idempotent_answer(&self, key: String) -> Result<Option<String>, StoreError> {
        self.seen(self.inner.idempotent_answer(key).await)
    }

    async fn prune_idempotency(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.seen(self.inner.prune_idempotency(before_ms).await)
    }

    async fn tasks_exist(&self, ids: Vec<String>) -> Result<Vec<bool>, StoreError> {
        self.seen(self.inner.tasks_exist(ids).await)
    }

    async fn get_task(&self, id: String, full: bool) -> Result<Option<TaskRow>, StoreError> {
        self.seen(self.inner.get_task(id, full).await)
    }

    async fn insert_copy(
        &self,
        id: String,
        new_id: String,
        name: NameFn,
        now: i64,
    ) -> Result<(), StoreError> {
        self.seen(self.inner.insert_copy(id, new_id, name, now).await)
    }

    async fn edit_task(&self, id: String, edit: TaskEdit, now: i64) -> Result<(), StoreError> {
        self.seen(self.inner.edit_task(id, edit, now).await)
    }

    async fn rename(
        &self,
        id: String,
        name: Option<String>,
        now: i64,
    ) -> Result<TaskRow, StoreError> {
        self.seen(self.inner.rename(id, name, now).await)
    }

    async fn set_bookmark(&self, id: String, on: bool, now: i64) -> Result<TaskRow, StoreError> {
        self.seen(self.inner.set_bookmark(id, on, now).await)
    }

    async fn image_files_of(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<Option<HashSet<String>>>, StoreError> {
        self.seen(self.inner.image_files_of(ids).await)
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        self.seen(self.inner.counts().await)
    }

    async fn queue_state(&self) -> Result<(bool, Counts), StoreError> {
        self.seen(self.inner.queue_state().await)
    }

    async fn queue_head(&self, lookahead: i64) -> Result<QueueHead, StoreError> {
        self.seen(self.inner.queue_head(lookahead).await)
    }

    async fn pending_rows(
        &self,
        after: Option<(i64, i64)>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<TaskRow>, StoreError> {
        self.seen(self.inner.pending_rows(after, limit, offset).await)
    }

    async fn running(&self) -> Result<Vec<(String, Option<String>)>, StoreError> {
        self.seen(self.inner.running().await)
    }

    async fn list_queue(
        &self,
        q: Option<String>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TaskRow>, i64), StoreError> {
        self.seen(self.inner.list_queue(q, limit, offset).await)
    }

    async fn search(
        &self,
        q: String,
        scope: Scope,
        after_seq: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TaskRow>, i64), StoreError> {
        self.seen(self.inner.search(q, scope, after_seq, limit, offset).await)
    }

    async fn history_page(
        &self,
        filter: HistoryFilter,
        q: Option<String>,
        cursor: Option<Cursor>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TaskRow>, i64), StoreError> {
        self.seen(
            self.inner
                .history_page(filter, q, cursor, limit, offset)
                .await,
        )
    }

    async fn history_by_checkpoint(
        &self,
        filter: HistoryFilter,
        after: Option<(Option<String>, i64, i64)>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TaskRow>, i64), StoreError> {
        self.seen(
            self.inner
                .history_by_checkpoint(filter, after, limit, offset)
                .await,
        )
    }

    async fn pending_before(&self, rank: i64, seq: i64) -> Result<i64, StoreError> {
        self.seen(self.inner.pending_before(rank, seq).await)
    }

    async fn group_rows(&self, group_id: String) -> Result<Vec<TaskRow>, StoreError> {
        self.seen(self.inner.group_rows(group_id).await)
    }

    async fn resolve(&self, sel: Selection) -> Result<Vec<String>, StoreError> {
        self.seen(self.inner.resolve(sel).await)
    }

    async fn apply(
        &self,
        id: String,
        event: Event,
        policy: Policy,
        now: i64,
    ) -> Result<Applied, StoreError> {
        self.seen(self.inner.apply(id, event, policy, now).await)
    }

    async fn apply_batch(
        &self,
        items: Vec<(String, Event)>,
        policy: Policy,
        now: i64,
    ) -> Result<usize, StoreError> {
        self.seen(self.inner.apply_batch(items, policy, now).await)
    }

    async fn delete(
        &self,
        id: String,
        policy: Policy,
        now: i64,
    ) -> Result<(Applied, TaskStatus), StoreError> {
        self.seen(self.inner.delete(id, policy, now).await)
    }

    async fn claim_next(
        &self,
        backend: String,
        now: i64,
        choose: ChooseFn,
    ) -> Result<Option<Claimed>, StoreError> {
        self.seen(self.inner.claim_next(backend, now, choose).await)
    }

    async fn apply_claimed(
        &self,
        id: String,
        fence: i64,
        event: Event,
        policy: Policy,
        now: i64,
    ) -> Result<Applied, StoreError> {
        self.seen(
            self.inner
                .apply_claimed(id, fence, event, policy, now)
                .await,
        )
    }

    async fn finish(
        &self,
        id: String,
        fence: i64,
        event: Event,
        policy: Policy,
        run: RunOutputs,
        now: i64,
    ) -> Result<Applied, StoreError> {
        self.seen(self.inner.finish(id, fence, event, policy, run, now).await)
    }

    async fn renew_leases(&self, fences: Vec<i64>) -> Result<usize, StoreError> {
        self.seen(self.inner.renew_leases(fences).await)
    }

    async fn reclaim_expired(
        &self,
        policy: Policy,
        now: i64,
    ) -> Result<Vec<(String, Applied)>, StoreError> {
        self.seen(self.inner.reclaim_expired(policy, now).await)
    }

    async fn next_retry_at(&self) -> Result<Option<i64>, StoreError> {
        self.seen(self.inner.next_retry_at().await)
    }

    async fn recover_running(
        &self,
        policy: Policy,
        now: i64,
    ) -> Result<Vec<(String, Applied)>, StoreError> {
        self.seen(self.inner.recover_running(policy, now).await)
    }

    async fn release_running(&self, now: i64) -> Result<Vec<(String, Applied)>, StoreError> {
        self.seen(self.inner.release_running(now).await)
    }

    async fn requeue_failed(&self, now: i64) -> Result<Vec<(String, Applied)>, StoreError> {
        self.seen(self.inner.requeue_failed(now).await)
    }

    async fn clear_queue(&self, now: i64) -> Result<Vec<(String, Applied)>, StoreError> {
        self.seen(self.inner.clear_queue(now).await)
    }

    async fn clear_history(
        &self,
        before_ms: Option<i64>,
        now: i64,
    ) -> Result<Vec<(String, Applied)>, StoreError> {
        self.seen(self.inner.clear_history(before_ms, now).await)
    }

    async fn bulk(
        &self,
        action: BulkAction,
        sel: Selection,
        policy: Policy,
        now: i64,
    ) -> Result<BulkDone, StoreError> {
        self.seen(self.inner.bulk(action, sel, policy, now).await)
    }

    async fn move_task(&self, id: String, target: MoveTarget, now: i64) -> Result<(), StoreError> {
        self.seen(self.inner.move_task(id, target, now).await)
    }

    async fn run_now(&self, id: String, now: i64) -> Result<usize, StoreError> {
        self.seen(self.inner.run_now(id, now).await)
    }

    async fn pending_page(
        &self,
        from: PendingFrom,
        limit: usize,
        budget: usize,
    ) -> Result<Vec<TaskRow>, StoreError> {
        self.seen(self.inner.pending_page(from, limit, budget).await)
    }

    async fn full_rows_page(
        &self,
        ids: Vec<String>,
        budget: usize,
    ) -> Result<(Vec<TaskRow>, usize), StoreError> {
        self.seen(self.inner.full_rows_page(ids, budget).await)
    }

    async fn result_files(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<(String, TaskStatus, Vec<ImageRow>)>, StoreError> {
        self.seen(self.inner.result_files(ids).await)
    }

    async fn speeds(&self) -> Result<Vec<(String, Speed)>, StoreError> {
        self.seen(self.inner.speeds().await)
    }

    async fn record_speed(
        &self,
        backend: String,
        update: SpeedFn,
        now: i64,
    ) -> Result<Speed, StoreError> {
        self.seen(self.inner.record_speed(backend, update, now).await)
    }

    async fn pending_work_after(&self, after: (i64, i64)) -> Result<Vec<PendingWork>, StoreError> {
        self.seen(self.inner.pending_work_after(after).await)
    }

    async fn load_settings(&self) -> Result<Settings, StoreError> {
        self.seen(self.inner.load_settings().await)
    }

    async fn save_settings(&self, settings: Settings) -> Result<(), StoreError> {
        self.seen(self.inner.save_settings(settings).await)
    }

    async fn is_paused(&self) -> Result<bool, StoreError> {
        self.seen(self.inner.is_paused().await)
    }

    async fn set_paused(&self, paused: bool) -> Result<(), StoreError> {
        self.seen(self.inner.set_paused(paused).await)
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        self.seen(self.inner.probe_write().await)
    }

    async fn added_backends(&self) -> Result<Vec<AddedBackend>, StoreError> {
        self.seen(self.inner.added_backends().await)
    }

    async fn add_backend(&self, url: String, now: i64) -> Result<Option<i64>, StoreError> {
        self.seen(self.inner.add_backend(url, now).await)
    }

    async fn remove_backend(&self, id: i64) -> Result<(), StoreError> {
        self.seen(self.inner.remove_backend(id).await)
    }

    async fn set_backend_admin(
        &self,
        id: i64,
        enabled: bool,
        draining: bool,
    ) -> Result<(), StoreError> {
        self.seen(self.inner.set_backend_admin(id, enabled, draining).await)
    }

    async fn insert_events(
        &self,
        events: Vec<(String, String)>,
        now: i64,
    ) -> Result<Vec<u64>, StoreError> {
        self.seen(self.inner.insert_events(events, now).await)
    }

    async fn replay(&self, after: u64) -> Result<Replay, StoreError> {
        self.seen(self.inner.replay(after).await)
    }

    async fn events_after(&self, after: u64) -> Result<Vec<(u64, String, String)>, StoreError> {
        self.seen(self.inner.events_after(after).await)
    }

    async fn all_deliveries(&self, limit: i64) -> Result<Vec<Delivery>, StoreError> {
        self.seen(self.inner.all_deliveries(limit).await)
    }

    async fn next_delivery_at(&self) -> Result<Option<i64>, StoreError> {
        self.seen(self.inner.next_delivery_at().await)
    }

    async fn delivery_done(&self, id: i64) -> Result<(), StoreError> {
        self.seen(self.inner.delivery_done(id).await)
    }

    async fn delivery_retry(&self, id: i64, next_at: i64, error: String) -> Result<(), StoreError> {
        self.seen(self.inner.delivery_retry(id, next_at, error).await)
    }

    async fn ensure_backend(&self, url: String, now: i64) -> Result<i64, StoreError> {
        self.seen(self.inner.ensure_backend(url, now).await)
    }

    async fn drive_backends(&self, ids: Vec<i64>) -> Result<Vec<i64>, StoreError> {
        self.seen(self.inner.drive_backends(ids).await)
    }

    async fn release_backends(&self, ids: Vec<i64>) -> Result<(), StoreError> {
        self.seen(self.inner.release_backends(ids).await)
    }

    async fn backend_drivers(&self) -> Result<Vec<BackendDriver>, StoreError> {
        self.seen(self.inner.backend_drivers().await)
    }

    async fn store_backend_figures(&self, figures: Vec<(i64, String)>) -> Result<(), StoreError> {
        self.seen(self.inner.store_backend_figures(figures).await)
    }

    async fn backend_figures(&self) -> Result<Vec<(i64, String)>, StoreError> {
        self.seen(self.inner.backend_figures().await)
    }

    async fn subscribe(&self) -> Result<Option<Receiver<Notice>>, StoreError> {
        self.seen(self.inner.subscribe().await)
    }

    async fn publish_live(&self, name: String, data: String) -> Result<(), StoreError> {
        self.seen(self.inner.publish_live(name, data).await)
    }
}

/// Runs until shutdown: whenever the database is down, probes it (a small write) after
/// [`PROBE_FIRST`], then ever less often up to every [`PROBE_MAX`]; when a probe is
/// written, `resume` runs (releases a lost connection kept from being written) and the
/// hold is lifted.
pub async fn watch_database<F, Fut>(
    reach: Arc<Reach>,
    store: SharedStore,
    mut resume: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut down = reach.subscribe();
    while crate::disk::until_held(&mut down, &mut shutdown).await {
        let mut wait = PROBE_FIRST;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            wait = (wait * 2).min(PROBE_MAX);
            // The probe goes to the store itself: its failure is not a new outage.
            match store.probe_write().await {
                Ok(()) => {}
                Err(e) => {
                    tracing::debug!("the database still cannot be reached: {e}");
                    continue;
                }
            }
            if resume().await {
                reach.mark_up();
                break;
            }
        }
    }
}
