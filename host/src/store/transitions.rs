//! Status changes: every one is decided by [`crate::model::transition::decide`] and written
//! here by [`write`], the one `UPDATE` that sets `status` and the other lifecycle columns,
//! guarded in its `WHERE` by the status and the claim fence the change belongs to: a run's
//! end ([`finish`]), release or failed try ([`apply_claimed`]) by the fence of the worker's
//! claim, so an end that comes after its claim was ended elsewhere writes nothing
//! ([`StoreError::Stale`]); every other change by the fence it was decided from. Also the
//! claim (which stamps the fence), the start-up recovery, the shutdown release and the bulk
//! requeue/clear operations, each a loop of decide + write in one transaction.

use rusqlite::{Connection, params};
use scheduler_api::TaskStatus;
use serde_json::Value;

use super::StoreError;
use super::rows::{first_pending_rank, last_rank, lifecycle, require};
use super::status;
use crate::model::rank::{rank_at_end, rank_at_head};
use crate::model::transition::{Change, Event, Outputs, Place, Policy, Transition, decide};
use crate::model::{Candidate, ImageRow, Lifecycle, TaskRow};

/// Edits, moves and "run now" do not depend on the settings.
const NO_POLICY: Policy = Policy {
    auto_requeue_failed: false,
    max_attempts: 1,
    retry_backoff_ms: 1000,
};

/// What a run produced, recorded with its end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOutputs {
    /// Images already written (and fsynced) to disk.
    pub images: Vec<ImageRow>,
    /// SD.Next `info`.
    pub info: Option<Value>,
}

/// What an applied event did.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The decision that was written.
    pub transition: Transition,
    /// The task's name (for events).
    pub name: Option<String>,
    /// Whether a callback delivery was queued.
    pub callback_queued: bool,
}

impl Applied {
    /// The status after the change, for a status change.
    pub fn status(&self) -> Option<TaskStatus> {
        match &self.transition {
            Transition::Change(c) => Some(c.next.status),
            _ => None,
        }
    }
}

/// What an edit or a reordering (a move, "run now") decides for the task at `now`: its
/// lifecycle, and the change to write (`None` for an edit); a conflict for anything that
/// would change its status.
fn reordering(
    conn: &Connection,
    id: &str,
    event: &Event,
    now: i64,
) -> Result<(Lifecycle, Option<Change>), StoreError> {
    let (life, _, _) = lifecycle(conn, id)?;
    match decide(&life, event, &NO_POLICY, now)? {
        Transition::Keep => Ok((life, None)),
        Transition::Change(c) if c.next.status == life.status && !c.callback => Ok((life, Some(c))),
        other => Err(StoreError::Conflict(format!(
            "{event:?} is not an edit or a move ({other:?})"
        ))),
    }
}

/// Checks that `event` is allowed for the task at `now` (an edit, a move, "run now": the
/// status does not change), writing nothing; returns its lifecycle.
pub(super) fn allow(
    conn: &Connection,
    id: &str,
    event: &Event,
    now: i64,
) -> Result<Lifecycle, StoreError> {
    Ok(reordering(conn, id, event, now)?.0)
}

/// Applies a reordering (a move, "run now") to the task's lifecycle at `now`, through the
/// transition function and [`write`] (the status stays); returns the lifecycle it was
/// decided from. The rank is the order code's.
pub(super) fn reorder(
    tx: &Connection,
    id: &str,
    event: &Event,
    now: i64,
) -> Result<Lifecycle, StoreError> {
    let (life, change) = reordering(tx, id, event, now)?;
    if let Some(c) = change {
        write(tx, id, Guard::read(&life), &c, None, None, now)?;
    }
    Ok(life)
}

/// What a change's `UPDATE` is guarded by: the status it was decided from and the claim fence
/// it belongs to (both stores guard their one status-writing statement with it).
pub(crate) struct Guard {
    pub(crate) status: TaskStatus,
    pub(crate) fence: Option<i64>,
    /// The fence is a worker's claim (not read in this transaction): a miss is stale.
    pub(crate) claimed: bool,
}

impl Guard {
    /// The state the change was decided from, read in this transaction.
    pub(crate) fn read(from: &Lifecycle) -> Guard {
        Guard {
            status: from.status,
            fence: from.fence,
            claimed: false,
        }
    }

    /// A running task under the worker's claim `fence`.
    pub(crate) fn claim(fence: i64) -> Guard {
        Guard {
            status: TaskStatus::Running,
            fence: Some(fence),
            claimed: true,
        }
    }

    /// The error when the guarded `UPDATE` wrote nothing: the claim is over (stale), or the
    /// task left the state the change was decided from (conflict).
    pub(crate) fn missed(&self, id: &str) -> StoreError {
        if self.claimed {
            StoreError::Stale(format!(
                "task {id} no longer runs under claim {}: its end is not written",
                self.fence.unwrap_or_default()
            ))
        } else {
            StoreError::Conflict(format!("task {id} is no longer {}", self.status.as_str()))
        }
    }
}

/// Writes a decided change at `now`: the one statement that sets `status` and the lifecycle
/// columns, guarded in its `WHERE` by `guard`; then the outputs and the callback row the
/// decision asks for.
fn write(
    tx: &Connection,
    id: &str,
    guard: Guard,
    change: &Change,
    run: Option<&RunOutputs>,
    callback_url: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let rank: Option<i64> = match change.place {
        Place::Keep => None,
        Place::Head => Some(rank_at_head(first_pending_rank(tx)?)),
        Place::Tail => Some(rank_at_end(last_rank(tx)?)),
    };
    let (set_result, result) = match change.outputs {
        Outputs::Keep => (false, None),
        Outputs::Clear => (true, None),
        Outputs::Record { .. } => (
            true,
            run.and_then(|r| r.info.as_ref()).map(Value::to_string),
        ),
    };
    let n = change.next.clone();
    // Back at the head (outage, restart, retry): it goes before the policy's choices. At
    // the tail (requeue): a new life, its overtakes forgotten.
    let place = match change.place {
        Place::Keep => 0,
        Place::Head => 1,
        Place::Tail => 2,
    };
    let written = tx.execute(
        "UPDATE tasks SET status = ?2, attempts = ?3, backend = ?4, error = ?5, started_at = ?6, \
         finished_at = ?7, run_next = ?8, force_run = ?9, rank = COALESCE(?10, rank), \
         result = CASE WHEN ?11 THEN ?12 ELSE result END, updated_at = ?13, next_run_at = ?15, \
         pinned = CASE ?16 WHEN 1 THEN 1 WHEN 2 THEN 0 ELSE pinned END, \
         overtakes = CASE ?16 WHEN 2 THEN 0 ELSE overtakes END, \
         overtaken_at = CASE ?16 WHEN 2 THEN NULL ELSE overtaken_at END, \
         fence = ?17, stop_requested = ?18 \
         WHERE id = ?1 AND status = ?14 AND fence IS ?19",
        params![
            id,
            n.status.as_str(),
            n.attempts,
            n.backend,
            n.error,
            n.started_at,
            n.finished_at,
            n.run_next,
            n.force_run,
            rank,
            set_result,
            result,
            now,
            guard.status.as_str(),
            n.next_run_at,
            place,
            n.fence,
            n.stop_requested,
            guard.fence
        ],
    )?;
    if written == 0 {
        return Err(guard.missed(id));
    }
    let images: &[ImageRow] = match (change.outputs, run) {
        (Outputs::Record { images: true }, Some(r)) => &r.images,
        _ => &[],
    };
    if change.outputs != Outputs::Keep {
        tx.execute("DELETE FROM result_images WHERE task_id = ?1", [id])?;
        let mut stmt = tx.prepare_cached(
            "INSERT INTO result_images (task_id, idx, file_name, infotext, format) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for img in images {
            stmt.execute(params![
                id,
                img.index,
                img.file_name,
                img.infotext,
                img.format
            ])?;
        }
    }
    if let (true, Some(url)) = (change.callback, callback_url) {
        super::outbox::queue_delivery(tx, id, url, n.status, images, now)?;
        return Ok(true);
    }
    Ok(false)
}

pub(super) fn apply_in(
    tx: &Connection,
    id: &str,
    event: &Event,
    policy: &Policy,
    now: i64,
) -> Result<Applied, StoreError> {
    let (life, name, callback_url) = lifecycle(tx, id)?;
    let transition = decide(&life, event, policy, now)?;
    let mut callback_queued = false;
    match &transition {
        Transition::Keep => {}
        Transition::Remove { .. } => {
            tx.execute("DELETE FROM tasks WHERE id = ?1", [id])?;
        }
        // The stop is recorded on the task, for the claim it was decided for.
        Transition::Interrupt { change, .. } | Transition::Change(change) => {
            let cb = callback_url.as_deref();
            callback_queued = write(tx, id, Guard::read(&life), change, None, cb, now)?;
        }
    }
    Ok(Applied {
        transition,
        name,
        callback_queued,
    })
}

/// Applies `event` to a task at `now` in one transaction: reads its lifecycle, decides,
/// writes.
pub fn apply(
    conn: &mut Connection,
    id: &str,
    event: &Event,
    policy: &Policy,
    now: i64,
) -> Result<Applied, StoreError> {
    let tx = conn.savepoint()?;
    let applied = apply_in(&tx, id, event, policy, now)?;
    tx.commit()?;
    Ok(applied)
}

/// Applies a list of `(task id, event)` in order, in one transaction (bulk changes: seeding
/// benchmark databases, scripted test set-ups). Every change is decided by the transition
/// function like any other; the first refusal rolls everything back.
pub fn apply_batch(
    conn: &mut Connection,
    items: &[(String, Event)],
    policy: &Policy,
    now: i64,
) -> Result<usize, StoreError> {
    let tx = conn.savepoint()?;
    for (id, event) in items {
        apply_in(&tx, id, event, policy, now)?;
    }
    tx.commit()?;
    Ok(items.len())
}

/// Decides `event` (a worker's: a release or a failed try; or the pool's release of a
/// withdrawn backend's claim) for the task running under the claim `fence`, at `now`, and
/// writes it guarded by that fence, in one transaction. [`StoreError::Stale`] (nothing
/// written) when the task no longer runs under that claim.
pub fn apply_claimed(
    conn: &mut Connection,
    id: &str,
    fence: i64,
    event: &Event,
    policy: &Policy,
    now: i64,
) -> Result<Applied, StoreError> {
    let tx = conn.savepoint()?;
    let applied = claimed_in(&tx, id, fence, event, policy, None, now)?;
    tx.commit()?;
    Ok(applied)
}

/// Writes the end of the run of the claim `fence` (`event`: [`Event::Finished`]) at `now`
/// in one transaction: decided on the task as it is now (a stop the user asked meanwhile
/// makes it interrupted) and written guarded by the claim's fence — status, outputs (the
/// finisher wrote the files of `run` before) and callback row. [`StoreError::Stale`]
/// (nothing written) when the task no longer runs under that claim; the caller removes the
/// files the written change does not keep.
pub fn finish(
    conn: &mut Connection,
    id: &str,
    fence: i64,
    event: &Event,
    policy: &Policy,
    run: &RunOutputs,
    now: i64,
) -> Result<Applied, StoreError> {
    let tx = conn.savepoint()?;
    let applied = claimed_in(&tx, id, fence, event, policy, Some(run), now)?;
    tx.commit()?;
    Ok(applied)
}

fn claimed_in(
    tx: &Connection,
    id: &str,
    fence: i64,
    event: &Event,
    policy: &Policy,
    run: Option<&RunOutputs>,
    now: i64,
) -> Result<Applied, StoreError> {
    let stale = || {
        StoreError::Stale(format!(
            "task {id} no longer runs under claim {fence}: its end is not written"
        ))
    };
    let (life, name, callback_url) = match lifecycle(tx, id) {
        Err(StoreError::NotFound) => return Err(stale()),
        other => other?,
    };
    // A task that no longer runs refuses a run's end: its claim is over.
    let Ok(Transition::Change(change)) = decide(&life, event, policy, now) else {
        return Err(stale());
    };
    let cb = callback_url.as_deref();
    let callback_queued = write(tx, id, Guard::claim(fence), &change, run, cb, now)?;
    Ok(Applied {
        transition: Transition::Change(change),
        name,
        callback_queued,
    })
}

/// How many pending tasks (from the head, in rank order) a claim looks at: the look-ahead
/// window. A claim costs the same at any queue length; the listing shows the same window in
/// the policy's order.
pub const LOOKAHEAD: i64 = 100;

/// What a claimer chose among the window: the task to run and the ones it overtakes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Index of the task to run.
    pub index: usize,
    /// Indices of the tasks ahead of it that it overtakes (each counted once more).
    pub overtaken: Vec<usize>,
}

/// The look-ahead window of a claim: two queries, each served by an index; the paused one
/// reads only forced tasks ("run now" while paused). Tasks waiting out a retry backoff are
/// not in it.
pub(super) fn window_sql(paused: bool) -> String {
    let (index, forced) = if paused {
        ("INDEXED BY tasks_forced", " AND force_run = 1")
    } else {
        ("", "")
    };
    format!(
        "SELECT seq, id, checkpoint, vae, run_next, force_run, pinned, overtakes, overtaken_at, \
         next_run_at FROM tasks {index} WHERE {}{forced} \
         AND (next_run_at IS NULL OR next_run_at <= ?2) ORDER BY rank, seq LIMIT ?1",
        status::is(TaskStatus::Pending),
    )
}

/// Atomically claims the task `choose` picks among the look-ahead window (the first
/// [`LOOKAHEAD`] pending tasks in rank order that are not waiting out a retry backoff),
/// counts the overtakes it makes, and marks it running on `backend`. `choose` also learns
/// whether the queue is paused (the persisted flag, read in the same transaction, so a pause
/// that was answered is always seen; the window then holds only "run now" tasks). The claim
/// stamps the task with `fence` (unique among the host's claims).
pub fn claim_next(
    conn: &mut Connection,
    backend: &str,
    now: i64,
    fence: i64,
    choose: impl FnOnce(&[Candidate], bool) -> Option<Choice>,
) -> Result<Option<TaskRow>, StoreError> {
    let tx = conn.savepoint()?;
    let paused = super::settings::is_paused(&tx)?;
    let window: Vec<Candidate> = tx
        .prepare_cached(&window_sql(paused))?
        .query_map(params![LOOKAHEAD, now], |r| {
            Ok(Candidate {
                seq: r.get(0)?,
                id: r.get(1)?,
                checkpoint: r.get(2)?,
                vae: r.get(3)?,
                run_next: r.get(4)?,
                force_run: r.get(5)?,
                pinned: r.get(6)?,
                overtakes: r.get(7)?,
                overtaken_at: r.get(8)?,
                next_run_at: r.get(9)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let Some(choice) = choose(&window, paused) else {
        return Ok(None);
    };
    let Some(chosen) = window.get(choice.index) else {
        return Err(StoreError::Invalid(
            "the claim chose outside its window".into(),
        ));
    };
    {
        let mut stmt = tx.prepare_cached(
            "UPDATE tasks SET overtakes = overtakes + 1, overtaken_at = COALESCE(overtaken_at, ?2) \
             WHERE seq = ?1",
        )?;
        for i in choice.overtaken.iter().filter(|&&i| i < choice.index) {
            if let Some(t) = window.get(*i) {
                stmt.execute(params![t.seq, now])?;
            }
        }
    }
    let event = Event::Claim {
        backend: backend.to_owned(),
        fence,
    };
    apply_in(&tx, &chosen.id, &event, &NO_POLICY, now)?;
    let task = require(&tx, &chosen.id, true)?;
    tx.commit()?;
    Ok(Some(task))
}

/// The highest fence a running task carries (a claim of an earlier life of the host, not
/// recovered yet): new fences start above it. Served by the status index.
pub fn max_running_fence(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row(&max_running_fence_sql(), [], |r| r.get(0))?)
}

pub(super) fn max_running_fence_sql() -> String {
    format!(
        "SELECT COALESCE(MAX(fence), 0) FROM tasks WHERE {}",
        status::is(TaskStatus::Running)
    )
}

/// When the earliest pending task waiting out a retry backoff may run (ms): an index seek.
pub fn next_retry_at(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn.query_row(&next_retry_sql(), [], |r| r.get(0))?)
}

pub(super) fn next_retry_sql() -> String {
    format!(
        "SELECT MIN(next_run_at) FROM tasks INDEXED BY tasks_retry WHERE {} AND next_run_at IS NOT NULL",
        status::is(TaskStatus::Pending)
    )
}

fn ids_where(
    tx: &Connection,
    cond: &str,
    order: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<String>, StoreError> {
    Ok(tx
        .prepare(&format!(
            "SELECT id FROM tasks WHERE {cond} ORDER BY {order}"
        ))?
        .query_map(args, |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// Applies `event` to each of `ids` in order, in one transaction; returns `(id, applied)`.
fn apply_each(
    conn: &mut Connection,
    select: impl FnOnce(&Connection) -> Result<Vec<String>, StoreError>,
    event: &Event,
    policy: &Policy,
    now: i64,
) -> Result<Vec<(String, Applied)>, StoreError> {
    let tx = conn.savepoint()?;
    let ids = select(&tx)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let applied = apply_in(&tx, &id, event, policy, now)?;
        out.push((id, applied));
    }
    tx.commit()?;
    Ok(out)
}

/// Start-up recovery: every task left `running` is [`Event::Recovered`] (the latest
/// started first, so the earliest ends up first at the head).
pub fn recover_running(
    conn: &mut Connection,
    policy: &Policy,
    now: i64,
) -> Result<Vec<(String, Applied)>, StoreError> {
    apply_each(
        conn,
        |c| {
            ids_where(
                c,
                &status::is(TaskStatus::Running),
                "started_at DESC, seq DESC",
                [],
            )
        },
        &Event::Recovered,
        policy,
        now,
    )
}

/// Shutdown: every task still `running` is [`Event::Released`] to the head, in order.
pub fn release_running(
    conn: &mut Connection,
    now: i64,
) -> Result<Vec<(String, Applied)>, StoreError> {
    apply_each(
        conn,
        |c| {
            ids_where(
                c,
                &status::is(TaskStatus::Running),
                "started_at DESC, seq DESC",
                [],
            )
        },
        &Event::Released,
        &NO_POLICY,
        now,
    )
}

/// `requeue-failed`: every failed task is [`Event::Requeue`]d, oldest failure first.
pub fn requeue_failed(
    conn: &mut Connection,
    now: i64,
) -> Result<Vec<(String, Applied)>, StoreError> {
    apply_each(
        conn,
        |c| ids_where(c, &status::is(TaskStatus::Failed), "finished_at, seq", []),
        &Event::Requeue,
        &NO_POLICY,
        now,
    )
}

/// Deletes every non-bookmarked pending task.
pub fn clear_queue(conn: &mut Connection, now: i64) -> Result<Vec<(String, Applied)>, StoreError> {
    apply_each(
        conn,
        |c| {
            ids_where(
                c,
                &format!("{} AND bookmarked = 0", status::is(TaskStatus::Pending)),
                "rank, seq",
                [],
            )
        },
        &Event::Delete,
        &NO_POLICY,
        now,
    )
}

/// Deletes every non-bookmarked finished task (finished before `before_ms` when given).
pub fn clear_history(
    conn: &mut Connection,
    before_ms: Option<i64>,
    now: i64,
) -> Result<Vec<(String, Applied)>, StoreError> {
    apply_each(
        conn,
        |c| {
            ids_where(
                c,
                &format!(
                    "{} AND bookmarked = 0 AND (?1 IS NULL OR COALESCE(finished_at, updated_at) < ?1)",
                    *status::FINISHED
                ),
                "seq",
                [before_ms],
            )
        },
        &Event::Delete,
        &NO_POLICY,
        now,
    )
}
