//! The queue service's reads: the queue page (running tasks, then the look-ahead window in
//! the order the scheduling policy will run it, then the rest in rank order), the history
//! page, and one task with its place. The window's order comes from
//! [`crate::model::policy::project`], the function the claims use, over the pool as it is
//! now ([`PoolView`]).

use std::sync::Arc;

use scheduler_api::{HistoryFilter, HistorySort, Projection};

use super::Queue;
use crate::backends::Backend;
use crate::backends::view::PoolView;
use crate::error::HostError;
use crate::model::cursor::Cursor;
use crate::model::policy::{self, Rules, Slot};
use crate::model::search::{Scope, fts_match, fts_query};
use crate::model::{Candidate, TaskRow};
use crate::store::StoreError;
use crate::store::transitions::LOOKAHEAD;

/// Where a listing page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Skip this many (old clients).
    Offset(i64),
    /// After a cursor of an earlier page.
    After(Cursor),
}

/// Where a task stands in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Tasks that run before it (running tasks first).
    pub position: i64,
    /// The wire's `priority`: ordered like the order the queue will run in.
    pub priority: i64,
    /// Its place in the policy's order (tasks of the look-ahead window).
    pub projection: Option<Projection>,
}

/// One page of `GET /queue`.
#[derive(Debug, Clone)]
pub struct QueuePage {
    /// Running then pending tasks, each with its place.
    pub rows: Vec<(TaskRow, Placement)>,
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

/// What one read of the queue brings back; the window is ordered afterwards.
struct Raw {
    running: Vec<TaskRow>,
    window: Vec<TaskRow>,
    /// Rows beyond the window for this page, the first at position `beyond_at`.
    beyond: Vec<TaskRow>,
    beyond_at: i64,
    first: i64,
    total: i64,
    paused: bool,
}

fn plain(t: &TaskRow, position: i64) -> Placement {
    Placement {
        position,
        priority: t.rank,
        projection: None,
    }
}

/// The look-ahead window (in rank order) in the order the scheduling policy will run it,
/// over `backends` as they are now (the seats of the view are `backends` in that order):
/// [`policy::project`], the function the claims use. The queue listing and the ETA
/// ([`crate::eta`]) both follow this order.
pub fn projected_order(
    backends: &[Arc<Backend>],
    window: &[TaskRow],
    rules: &Rules,
    now: i64,
) -> (PoolView, Vec<Slot>) {
    let view = PoolView::of(backends);
    let cands: Vec<Candidate> = window.iter().map(TaskRow::candidate).collect();
    let (waiting, seats) = view.policy_input(&cands);
    let free: Vec<i64> = view.seats.iter().map(|s| s.free_in_ms).collect();
    let pace: Vec<i64> = view.seats.iter().map(|s| s.ms_per_task).collect();
    let slots = policy::project(&waiting, &seats, &free, &pace, rules, now);
    (view, slots)
}

impl Queue {
    /// The window (in rank order) in the policy's order: `(index into window, placement)`
    /// with positions counted after `running` tasks; priorities are the window's ranks,
    /// handed out in that order, so `priority` sorts like the order things will run.
    pub(super) fn project(&self, window: &[TaskRow], running: i64) -> Vec<(usize, Placement)> {
        let (view, slots) = projected_order(
            &self.backends.all(),
            window,
            &self.settings.rules(),
            self.clock.now_ms(),
        );
        let mut ranks: Vec<i64> = window.iter().map(|t| t.rank).collect();
        ranks.sort_unstable();
        slots
            .into_iter()
            .zip(ranks)
            .enumerate()
            .map(|(order, (slot, priority))| {
                let t = &window[slot.index];
                (
                    slot.index,
                    Placement {
                        position: running + order as i64,
                        priority,
                        projection: Some(Projection {
                            order: order as i64,
                            backend: slot.seat.map(|s| view.seats[s].url.clone()),
                            switch: slot.switch,
                            overtakes: t.overtakes,
                        }),
                    },
                )
            })
            .collect()
    }

    /// One page of running then pending tasks: the running ones, then the look-ahead window
    /// (the first [`LOOKAHEAD`] pending tasks) in the order the policy will run them, then
    /// the rest in rank order. With `q`: the matches in the order of creation.
    pub async fn page(
        &self,
        q: Option<String>,
        limit: i64,
        start: Start,
    ) -> Result<QueuePage, HostError> {
        let hold_reason = self.hold_reason();
        if let Some(q) = q.filter(|q| fts_match(q, Scope::Queue).is_some()) {
            return self.search_page(q, limit, start, hold_reason).await;
        }
        // The head in one snapshot; the rows beyond the window this page reaches, after it.
        let head = self.store.queue_head(LOOKAHEAD).await?;
        let (paused, running, window) = (head.paused, head.running, head.window);
        let running_ids: Vec<String> = running.iter().map(|t| t.id.clone()).collect();
        let (r, w) = (running.len() as i64, window.len() as i64);
        let total = r + head.counts.pending;
        let first = match start {
            Start::Offset(o) => o.max(0),
            Start::After(Cursor::Window(i)) => r + i.min(w),
            Start::After(Cursor::Rank { position, .. }) => position.max(r + w),
            Start::After(_) => 0,
        };
        let end = first.saturating_add(limit.max(0));
        let (beyond, beyond_at) = if end > r + w && total > r + w {
            let at = first.max(r + w);
            let rows = match start {
                Start::After(Cursor::Rank { rank, seq, .. }) => {
                    self.store
                        .pending_rows(Some((rank, seq)), end - at, 0)
                        .await?
                }
                _ => {
                    let tail = window.last().map(|t| (t.rank, t.seq));
                    self.store.pending_rows(tail, end - at, at - r - w).await?
                }
            };
            (rows, at)
        } else {
            (Vec::new(), r + w)
        };
        let raw = Raw {
            running,
            window,
            beyond,
            beyond_at,
            first,
            total,
            paused,
        };
        let r = raw.running.len() as i64;
        let w = raw.window.len() as i64;
        let tail_key = raw.window.last().map(|t| (t.rank, t.seq));
        let mut placed = self.project(&raw.window, r);
        placed.sort_by_key(|(_, p)| p.position);
        let mut window: Vec<Option<TaskRow>> = raw.window.into_iter().map(Some).collect();
        let mut all: Vec<(TaskRow, Placement)> = Vec::new();
        for (i, t) in raw.running.into_iter().enumerate() {
            let p = plain(&t, i as i64);
            all.push((t, p));
        }
        for (i, p) in placed {
            if let Some(t) = window[i].take() {
                all.push((t, p));
            }
        }
        let rows: Vec<(TaskRow, Placement)> = all
            .into_iter()
            .filter(|(_, p)| p.position >= raw.first)
            .chain(
                raw.beyond
                    .into_iter()
                    .enumerate()
                    .map(|(j, t)| {
                        let p = plain(&t, raw.beyond_at + j as i64);
                        (t, p)
                    })
                    .filter(|(_, p)| p.position >= raw.first),
            )
            .take(limit.max(0) as usize)
            .collect();
        let next = match rows.last() {
            Some((t, p)) if rows.len() as i64 == limit && p.position + 1 < raw.total => {
                let after = p.position + 1;
                Some(if after < r + w {
                    Cursor::Window((after - r).max(0))
                } else if after == r + w {
                    let (rank, seq) = tail_key.unwrap_or((t.rank, t.seq));
                    Cursor::Rank {
                        rank,
                        seq,
                        position: after,
                    }
                } else {
                    Cursor::Rank {
                        rank: t.rank,
                        seq: t.seq,
                        position: after,
                    }
                })
            }
            _ => None,
        };
        Ok(QueuePage {
            rows,
            total: raw.total,
            running: running_ids,
            paused: raw.paused,
            hold_reason,
            next,
            window: w,
        })
    }

    async fn search_page(
        &self,
        q: String,
        limit: i64,
        start: Start,
        hold_reason: Option<String>,
    ) -> Result<QueuePage, HostError> {
        let (after, offset) = match start {
            Start::After(Cursor::Seq(s)) => (Some(s), 0),
            Start::After(_) => (None, 0),
            Start::Offset(o) => (None, o),
        };
        let (found, total) = self
            .store
            .search(q, Scope::Queue, after, limit, offset)
            .await?;
        let head = self.store.queue_head(0).await?;
        let mut rows = Vec::with_capacity(found.len());
        for r in found {
            let pos = self.position(&r, head.counts.running).await?;
            rows.push((r, pos));
        }
        let running: Vec<String> = head.running.into_iter().map(|t| t.id).collect();
        let paused = head.paused;
        let next = (rows.len() as i64 == limit && limit > 0)
            .then(|| rows.last().map(|(r, _)| Cursor::Seq(r.seq)))
            .flatten();
        Ok(QueuePage {
            rows: rows
                .into_iter()
                .map(|(t, pos)| {
                    let p = plain(&t, pos.unwrap_or(0));
                    (t, p)
                })
                .collect(),
            total,
            running,
            paused,
            hold_reason,
            next,
            window: 0,
        })
    }

    /// One page of finished tasks, newest first, and the total for the filter.
    pub async fn history(
        &self,
        filter: HistoryFilter,
        sort: HistorySort,
        q: Option<String>,
        limit: i64,
        start: Start,
    ) -> Result<HistoryPage, HostError> {
        let (cursor, offset) = match start {
            Start::After(cur) => (Some(cur), 0),
            Start::Offset(o) => (None, o),
        };
        let searching = q.as_deref().and_then(fts_query).is_some();
        if sort == HistorySort::Checkpoint && !searching {
            let after = match cursor {
                Some(Cursor::Checkpoint {
                    checkpoint,
                    finished_at,
                    seq,
                }) => Some((checkpoint, finished_at, seq)),
                _ => None,
            };
            let (rows, total) = self
                .store
                .history_by_checkpoint(filter, after, limit, offset)
                .await?;
            let next = match rows.last() {
                Some(t) if rows.len() as i64 == limit && limit > 0 => Some(Cursor::Checkpoint {
                    checkpoint: t.checkpoint.clone(),
                    finished_at: t.life.finished_at.unwrap_or(0),
                    seq: t.seq,
                }),
                _ => None,
            };
            return Ok(HistoryPage { rows, total, next });
        }
        let (rows, total) = self
            .store
            .history_page(filter, q, cursor, limit, offset)
            .await?;
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
    }

    /// A pending task's position: the running tasks, then the pending ones before it.
    async fn position(&self, task: &TaskRow, running: i64) -> Result<Option<i64>, StoreError> {
        if task.status() != scheduler_api::TaskStatus::Pending {
            return Ok(None);
        }
        Ok(Some(
            running + self.store.pending_before(task.rank, task.seq).await?,
        ))
    }

    /// One task (`full`: with its images, page snapshot and `info`) and, while it is
    /// pending, its place: from the look-ahead window in the policy's order, or by rank
    /// beyond it.
    pub async fn task(
        &self,
        id: &str,
        full: bool,
    ) -> Result<(TaskRow, Option<Placement>), HostError> {
        let row = self
            .store
            .get_task(id.to_owned(), full)
            .await?
            .ok_or(StoreError::NotFound)?;
        if row.status() != scheduler_api::TaskStatus::Pending {
            return Ok((row, None));
        }
        let head = self.store.queue_head(LOOKAHEAD).await?;
        let (window, running) = (head.window, head.counts.running);
        let beyond = if window.iter().any(|t| t.id == row.id) {
            None
        } else {
            self.position(&row, running).await?
        };
        if let Some(position) = beyond {
            let p = plain(&row, position);
            return Ok((row, Some(p)));
        }
        let placed = self
            .project(&window, running)
            .into_iter()
            .find(|(i, _)| window[*i].id == row.id)
            .map(|(_, p)| p);
        Ok((row, placed))
    }
}
