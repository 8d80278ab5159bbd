//! [`TaskStore`] for the SQLite store: each method runs the SQLite store's own functions on
//! its writer (writes, group-committed) or on a read connection (reads, one snapshot), as
//! the services call them today. Nothing here decides or writes SQL of its own.
//!
//! One host owns a SQLite file (`host.lock`): leases never expire and nothing is reclaimed.
//! A claim's fence comes from a counter of the process, above every fence a running task
//! carries (read in the claim's transaction, from the status index): unique among the claims
//! of the host's life, as the queue service's own fences.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use scheduler_api::{BulkAction, HistoryFilter, MoveTarget, Selection, Settings, TaskStatus};

use tokio::sync::mpsc::Receiver;

use super::api::{
    BackendDriver, BulkDone, ChooseFn, Claimed, NameFn, Notice, QueueHead, Replay, SpeedFn,
    StoreKind, TaskStore,
};
use super::backends::AddedBackend;
use super::listing::Counts;
use super::outbox::Delivery;
use super::speed::PendingWork;
use super::transitions::{Applied, RunOutputs};
use super::{
    Store, StoreError, backends, bulk, events, export, listing, order, outbox, rows, settings,
    speed, tasks, transitions,
};
use crate::model::TaskEdit;
use crate::model::cursor::{Cursor, PendingFrom};
use crate::model::eta::Speed;
use crate::model::search::{Scope, fts_match};
use crate::model::transition::{Event, Policy};
use crate::model::{ImageRow, NewTask, TaskRow};

/// The fences handed out by this process's claims.
static FENCES: AtomicI64 = AtomicI64::new(0);

/// A fence above `base` and above every fence handed out before.
fn next_fence(base: i64) -> i64 {
    let before = FENCES
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| {
            Some(f.max(base) + 1)
        })
        .unwrap_or_else(|f| f);
    before.max(base) + 1
}

#[async_trait]
impl TaskStore for Store {
    fn kind(&self) -> StoreKind {
        StoreKind::Sqlite
    }

    async fn insert_tasks(
        &self,
        new: Vec<NewTask>,
        idempotency: Option<(String, String)>,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        self.call(move |c| {
            tasks::insert_tasks(
                c,
                &new,
                idempotency.as_ref().map(|(k, a)| (k.as_str(), a.as_str())),
                now,
            )
        })
        .await
    }

    async fn idempotent_answer(&self, key: String) -> Result<Option<String>, StoreError> {
        self.read(move |c| tasks::idempotent_answer(c, &key)).await
    }

    async fn prune_idempotency(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.call(move |c| tasks::prune_idempotency(c, before_ms))
            .await
    }

    async fn tasks_exist(&self, ids: Vec<String>) -> Result<Vec<bool>, StoreError> {
        self.read(move |c| ids.iter().map(|id| tasks::task_exists(c, id)).collect())
            .await
    }

    async fn get_task(&self, id: String, full: bool) -> Result<Option<TaskRow>, StoreError> {
        self.read(move |c| rows::get_task(c, &id, full)).await
    }

    async fn insert_copy(
        &self,
        id: String,
        new_id: String,
        name: NameFn,
        now: i64,
    ) -> Result<(), StoreError> {
        self.call(move |c| tasks::insert_copy(c, &id, &new_id, name, now))
            .await
    }

    async fn edit_task(&self, id: String, edit: TaskEdit, now: i64) -> Result<(), StoreError> {
        self.call(move |c| tasks::edit_task(c, &id, edit, now))
            .await
    }

    async fn rename(
        &self,
        id: String,
        name: Option<String>,
        now: i64,
    ) -> Result<TaskRow, StoreError> {
        self.call(move |c| {
            tasks::rename(c, &id, name.as_deref(), now)?;
            rows::require(c, &id, false)
        })
        .await
    }

    async fn set_bookmark(&self, id: String, on: bool, now: i64) -> Result<TaskRow, StoreError> {
        self.call(move |c| {
            tasks::set_bookmark(c, &id, on, now)?;
            rows::require(c, &id, false)
        })
        .await
    }

    async fn image_files_of(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<Option<HashSet<String>>>, StoreError> {
        self.read(move |c| tasks::image_files_of(c, &ids)).await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        self.read(listing::counts).await
    }

    async fn queue_state(&self) -> Result<(bool, Counts), StoreError> {
        self.read(|c| Ok((settings::is_paused(c)?, listing::counts(c)?)))
            .await
    }

    async fn queue_head(&self, lookahead: i64) -> Result<QueueHead, StoreError> {
        self.read(move |c| {
            Ok(QueueHead {
                paused: settings::is_paused(c)?,
                running: listing::running_rows(c)?,
                window: listing::pending_rows(c, None, lookahead, 0)?,
                counts: listing::counts(c)?,
            })
        })
        .await
    }

    async fn pending_rows(
        &self,
        after: Option<(i64, i64)>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<TaskRow>, StoreError> {
        self.read(move |c| listing::pending_rows(c, after, limit, offset))
            .await
    }

    async fn running(&self) -> Result<Vec<(String, Option<String>)>, StoreError> {
        self.read(listing::running).await
    }

    async fn list_queue(
        &self,
        q: Option<String>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TaskRow>, i64), StoreError> {
        self.read(move |c| listing::list_queue(c, q.as_deref(), limit, offset))
            .await
    }

    async fn search(
        &self,
        q: String,
        scope: Scope,
        after_seq: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TaskRow>, i64), StoreError> {
        let Some(m) = fts_match(&q, scope) else {
            return Ok((Vec::new(), 0));
        };
        self.read(move |c| listing::search(c, &m, scope, after_seq, limit, offset))
            .await
    }

    async fn history_page(
        &self,
        filter: HistoryFilter,
        q: Option<String>,
        cursor: Option<Cursor>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TaskRow>, i64), StoreError> {
        self.read(move |c| {
            listing::history_page(c, filter, q.as_deref(), cursor.as_ref(), limit, offset)
        })
        .await
    }

    async fn history_by_checkpoint(
        &self,
        filter: HistoryFilter,
        after: Option<(Option<String>, i64, i64)>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TaskRow>, i64), StoreError> {
        self.read(move |c| {
            let after = after.as_ref().map(|(ck, f, s)| (ck.as_deref(), *f, *s));
            listing::history_by_checkpoint(c, filter, after, limit, offset)
        })
        .await
    }

    async fn pending_before(&self, rank: i64, seq: i64) -> Result<i64, StoreError> {
        self.read(move |c| listing::pending_before(c, rank, seq))
            .await
    }

    async fn group_rows(&self, group_id: String) -> Result<Vec<TaskRow>, StoreError> {
        self.read(move |c| bulk::group_rows(c, &group_id)).await
    }

    async fn resolve(&self, sel: Selection) -> Result<Vec<String>, StoreError> {
        self.read(move |c| bulk::resolve(c, &sel)).await
    }

    async fn apply(
        &self,
        id: String,
        event: Event,
        policy: Policy,
        now: i64,
    ) -> Result<Applied, StoreError> {
        self.call(move |c| transitions::apply(c, &id, &event, &policy, now))
            .await
    }

    async fn apply_batch(
        &self,
        items: Vec<(String, Event)>,
        policy: Policy,
        now: i64,
    ) -> Result<usize, StoreError> {
        self.call(move |c| transitions::apply_batch(c, &items, &policy, now))
            .await
    }

    async fn delete(
        &self,
        id: String,
        policy: Policy,
        now: i64,
    ) -> Result<(Applied, TaskStatus), StoreError> {
        self.call(move |c| {
            let status = rows::require(c, &id, false)?.status();
            Ok((
                transitions::apply(c, &id, &Event::Delete, &policy, now)?,
                status,
            ))
        })
        .await
    }

    async fn claim_next(
        &self,
        backend: String,
        now: i64,
        choose: ChooseFn,
    ) -> Result<Option<Claimed>, StoreError> {
        self.call_light(move |c| {
            let base = transitions::max_running_fence(c)?;
            let fence = next_fence(base);
            let task = transitions::claim_next(c, &backend, now, fence, choose)?;
            Ok(task.map(|task| Claimed { task, fence }))
        })
        .await
    }

    async fn apply_claimed(
        &self,
        id: String,
        fence: i64,
        event: Event,
        policy: Policy,
        now: i64,
    ) -> Result<Applied, StoreError> {
        self.call(move |c| transitions::apply_claimed(c, &id, fence, &event, &policy, now))
            .await
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
        self.call(move |c| transitions::finish(c, &id, fence, &event, &policy, &run, now))
            .await
    }

    async fn renew_leases(&self, fences: Vec<i64>) -> Result<usize, StoreError> {
        // One host per file: its leases never expire; what it holds is what runs.
        let _ = fences;
        Ok(self.running().await?.len())
    }

    async fn reclaim_expired(
        &self,
        _policy: Policy,
        _now: i64,
    ) -> Result<Vec<(String, Applied)>, StoreError> {
        Ok(Vec::new())
    }

    async fn next_retry_at(&self) -> Result<Option<i64>, StoreError> {
        self.read(transitions::next_retry_at).await
    }

    async fn recover_running(
        &self,
        policy: Policy,
        now: i64,
    ) -> Result<Vec<(String, Applied)>, StoreError> {
        self.call(move |c| transitions::recover_running(c, &policy, now))
            .await
    }

    async fn release_running(&self, now: i64) -> Result<Vec<(String, Applied)>, StoreError> {
        self.call(move |c| transitions::release_running(c, now))
            .await
    }

    async fn requeue_failed(&self, now: i64) -> Result<Vec<(String, Applied)>, StoreError> {
        self.call(move |c| transitions::requeue_failed(c, now))
            .await
    }

    async fn clear_queue(&self, now: i64) -> Result<Vec<(String, Applied)>, StoreError> {
        self.call(move |c| transitions::clear_queue(c, now)).await
    }

    async fn clear_history(
        &self,
        before_ms: Option<i64>,
        now: i64,
    ) -> Result<Vec<(String, Applied)>, StoreError> {
        self.call(move |c| transitions::clear_history(c, before_ms, now))
            .await
    }

    async fn bulk(
        &self,
        action: BulkAction,
        sel: Selection,
        policy: Policy,
        now: i64,
    ) -> Result<BulkDone, StoreError> {
        self.call(move |c| {
            let ids = bulk::resolve(c, &sel)?;
            let mut done = BulkDone::default();
            match action {
                BulkAction::Delete => done.deleted = bulk::delete(c, &ids, &policy, now)?,
                BulkAction::Requeue => {
                    let fresh: Vec<String> = ids
                        .iter()
                        .map(|_| uuid::Uuid::new_v4().to_string())
                        .collect();
                    bulk::requeue(c, &ids, &fresh, crate::model::spec::copy_name, now)?;
                    done.created = fresh;
                }
                BulkAction::Bookmark | BulkAction::Unbookmark => {
                    bulk::bookmark(c, &ids, action == BulkAction::Bookmark, now)?;
                    done.statuses = ids
                        .iter()
                        .map(|id| Ok((id.clone(), rows::require(c, id, false)?.status())))
                        .collect::<Result<_, StoreError>>()?;
                }
                BulkAction::MoveTop => bulk::move_to(c, &ids, true, now)?,
                BulkAction::MoveBottom => bulk::move_to(c, &ids, false, now)?,
            }
            done.ids = ids;
            Ok(done)
        })
        .await
    }

    async fn move_task(&self, id: String, target: MoveTarget, now: i64) -> Result<(), StoreError> {
        self.call(move |c| order::move_task(c, &id, &target, now))
            .await
    }

    async fn run_now(&self, id: String, now: i64) -> Result<usize, StoreError> {
        self.call(move |c| order::run_now(c, &id, now)).await
    }

    async fn pending_page(
        &self,
        from: PendingFrom,
        limit: usize,
        budget: usize,
    ) -> Result<Vec<TaskRow>, StoreError> {
        self.read(move |c| export::pending_page(c, from, limit, budget))
            .await
    }

    async fn full_rows_page(
        &self,
        ids: Vec<String>,
        budget: usize,
    ) -> Result<(Vec<TaskRow>, usize), StoreError> {
        self.read(move |c| export::full_rows_page(c, &ids, budget))
            .await
    }

    async fn result_files(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<(String, TaskStatus, Vec<ImageRow>)>, StoreError> {
        self.read(move |c| export::result_files(c, &ids)).await
    }

    async fn speeds(&self) -> Result<Vec<(String, Speed)>, StoreError> {
        self.read(speed::all).await
    }

    async fn record_speed(
        &self,
        backend: String,
        update: SpeedFn,
        now: i64,
    ) -> Result<Speed, StoreError> {
        self.call(move |c| {
            let s = update(speed::get(c, &backend)?);
            speed::put(c, &backend, &s, now)?;
            Ok(s)
        })
        .await
    }

    async fn pending_work_after(&self, after: (i64, i64)) -> Result<Vec<PendingWork>, StoreError> {
        self.read(move |c| speed::pending_work_after(c, after))
            .await
    }

    async fn load_settings(&self) -> Result<Settings, StoreError> {
        self.read(settings::load_settings).await
    }

    async fn save_settings(&self, s: Settings) -> Result<(), StoreError> {
        self.call(move |c| settings::save_settings(c, &s)).await
    }

    async fn is_paused(&self) -> Result<bool, StoreError> {
        self.read(settings::is_paused).await
    }

    async fn set_paused(&self, paused: bool) -> Result<(), StoreError> {
        self.call(move |c| settings::set_paused(c, paused)).await
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        self.call(|c| settings::probe_write(c)).await
    }

    async fn added_backends(&self) -> Result<Vec<AddedBackend>, StoreError> {
        self.read(backends::added_backends).await
    }

    async fn add_backend(&self, url: String, now: i64) -> Result<Option<i64>, StoreError> {
        self.call(move |c| backends::add_backend(c, &url, now))
            .await
    }

    async fn remove_backend(&self, id: i64) -> Result<(), StoreError> {
        self.call(move |c| backends::remove_backend(c, id)).await
    }

    async fn set_backend_admin(
        &self,
        id: i64,
        enabled: bool,
        draining: bool,
    ) -> Result<(), StoreError> {
        self.call(move |c| backends::set_backend_admin(c, id, enabled, draining))
            .await
    }

    async fn ensure_backend(&self, url: String, now: i64) -> Result<i64, StoreError> {
        self.call(move |c| backends::ensure_backend(c, &url, now))
            .await
    }

    async fn drive_backends(&self, mut ids: Vec<i64>) -> Result<Vec<i64>, StoreError> {
        // One host per file: it drives every backend, with no lease to keep.
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    async fn release_backends(&self, _ids: Vec<i64>) -> Result<(), StoreError> {
        Ok(())
    }

    async fn backend_drivers(&self) -> Result<Vec<BackendDriver>, StoreError> {
        Ok(self
            .read(backends::added_backends)
            .await?
            .into_iter()
            .map(|b| (b.id, None, None))
            .collect())
    }

    async fn store_backend_figures(&self, _figures: Vec<(i64, String)>) -> Result<(), StoreError> {
        // One host per file: it shows its own figures.
        Ok(())
    }

    async fn backend_figures(&self) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(Vec::new())
    }

    async fn insert_events(
        &self,
        rows: Vec<(String, String)>,
        now: i64,
    ) -> Result<Vec<u64>, StoreError> {
        self.call_light(move |c| events::insert_events(c, &rows, now))
            .await
    }

    async fn replay(&self, after: u64) -> Result<Replay, StoreError> {
        self.read(move |c| {
            Ok(Replay {
                oldest: events::event_bounds(c)?.0,
                newest: events::last_event_id(c)?,
                rows: events::events_after(c, after)?,
            })
        })
        .await
    }

    async fn events_after(&self, after: u64) -> Result<Vec<(u64, String, String)>, StoreError> {
        self.read(move |c| events::events_after(c, after)).await
    }

    async fn all_deliveries(&self, limit: i64) -> Result<Vec<Delivery>, StoreError> {
        self.read(move |c| outbox::all_deliveries(c, limit)).await
    }

    async fn next_delivery_at(&self) -> Result<Option<i64>, StoreError> {
        self.read(outbox::next_delivery_at).await
    }

    async fn delivery_done(&self, id: i64) -> Result<(), StoreError> {
        self.call(move |c| outbox::delivery_done(c, id)).await
    }

    async fn delivery_retry(&self, id: i64, next_at: i64, error: String) -> Result<(), StoreError> {
        self.call(move |c| outbox::delivery_retry(c, id, next_at, &error))
            .await
    }

    async fn subscribe(&self) -> Result<Option<Receiver<Notice>>, StoreError> {
        // One host per file: nobody else to hear from.
        Ok(None)
    }

    async fn publish_live(&self, _name: String, _data: String) -> Result<(), StoreError> {
        Ok(())
    }
}
