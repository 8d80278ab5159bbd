//! [`TaskStore`] for [`PgStore`]: the SQLite store's operations with the same meaning, in
//! PostgreSQL, plus the claim's fence and lease. See the module documentation of
//! [`super`] for the concurrency rules.

use std::collections::HashSet;
use std::sync::LazyLock;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use scheduler_api::{
    BulkAction, HistoryFilter, ListName, MoveTarget, Selection, Settings, TaskStatus, TaskType,
};
use serde_json::Value;
use tokio::sync::mpsc::Receiver;
use tokio_postgres::IsolationLevel;
use tokio_postgres::types::ToSql;

use super::rows::{
    self, FULL_COLS, LIST_COLS, LOCKED_COLS, LOCKED_LEN, SIZE_COL, first_pending_rank, last_rank,
    load_images, lock_lifecycle, locked_of, map_row, require, rows_of,
};
use super::{Cached, EVENTS_CHANNEL, LIVE_CHANNEL, PgResult, PgStore, listen, locks, tsquery};
use crate::model::TaskEdit;
use crate::model::cursor::Cursor;
use crate::model::cursor::PendingFrom;
use crate::model::eta::{Speed, WORK_FIELDS, work_fields};
use crate::model::rank::{rank_at_end, rank_at_head, rank_between, spread};
use crate::model::search::Scope;
use crate::model::spec::{Lifted, merge_params};
use crate::model::transition::{Change, Event, Outputs, Place, Policy, Transition, decide};
use crate::model::{Candidate, ImageRow, Lifecycle, NewTask, TaskRow};
use crate::store::StoreError;
use crate::store::api::{
    BackendDriver, BulkDone, ChooseFn, Claimed, NameFn, Notice, QueueHead, Replay, SpeedFn,
    StoreKind, TaskStore,
};
use crate::store::backends::AddedBackend;
use crate::store::events::EVENTS_KEPT;
use crate::store::listing::Counts;
use crate::store::outbox::Delivery;
use crate::store::speed::PendingWork;
use crate::store::transitions::Guard;
use crate::store::transitions::{Applied, LOOKAHEAD, RunOutputs};

type Params<'a> = [&'a (dyn ToSql + Sync)];

/// Edits, moves and "run now" do not depend on the settings.
const NO_POLICY: Policy = Policy {
    auto_requeue_failed: false,
    max_attempts: 1,
    retry_backoff_ms: 1000,
};

const FINISHED: &str = "status IN ('done', 'failed', 'interrupted')";
const SETTINGS_KEY: &str = "settings";
const PAUSED_KEY: &str = "paused";

/// Whether a failed transaction may simply run again (a deadlock broken by PostgreSQL, a
/// serialization failure).
fn retryable(e: &StoreError) -> bool {
    matches!(e, StoreError::Postgres(m) if m.starts_with("40P01") || m.starts_with("40001"))
}

/// Runs `$body` in a read-write transaction `$tx` on a pooled connection, committed at the
/// end; a deadlock or serialization failure runs it again (up to 3 times), so `$body` only
/// borrows what it uses.
macro_rules! in_tx {
    ($self:ident, $tx:ident => $body:expr) => {{
        let mut tries = 0;
        loop {
            let r: PgResult<_> = async {
                let mut obj = $self.conn().await?;
                let $tx = obj.transaction().await?;
                let out = $body;
                $tx.commit().await?;
                Ok(out)
            }
            .await;
            match r {
                Err(e) if tries < 3 && retryable(&e) => tries += 1,
                other => break other,
            }
        }
    }};
}

/// Runs `$body` in one read-only snapshot `$tx` (REPEATABLE READ).
macro_rules! in_snapshot {
    ($self:ident, $tx:ident => $body:expr) => {{
        let r: PgResult<_> = async {
            let mut obj = $self.conn().await?;
            let $tx = obj
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let out = $body;
            $tx.commit().await?;
            Ok(out)
        }
        .await;
        r
    }};
}

/// Takes the lock on the queue's order for the rest of the transaction.
async fn order_lock(c: &impl GenericClient) -> PgResult<()> {
    c.x("SELECT pg_advisory_xact_lock($1)", &[&locks::ORDER])
        .await?;
    Ok(())
}

/// Folds the count deltas when enough have gathered (never waits).
async fn fold_counts(c: &impl GenericClient) -> PgResult<()> {
    c.x("SELECT fold_task_counts()", &[]).await?;
    Ok(())
}

fn i32_of(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn status_of(s: &str) -> TaskStatus {
    TaskStatus::parse(s).unwrap_or(TaskStatus::Failed)
}

fn history_cond(filter: HistoryFilter) -> String {
    match filter {
        HistoryFilter::All => FINISHED.to_owned(),
        HistoryFilter::Bookmarked => format!("bookmarked AND {FINISHED}"),
        HistoryFilter::Status(s) => format!("status = '{}'", s.as_str()),
    }
}

fn scope_cond(scope: Scope) -> String {
    match scope {
        Scope::Queue => "status IN ('pending', 'running')".to_owned(),
        Scope::History(f) => history_cond(f),
    }
}

/// The stored events after `after`, oldest first (at most 5000).
async fn events_after(c: &impl GenericClient, after: i64) -> PgResult<Vec<(u64, String, String)>> {
    c.q(
        "SELECT id, name, data FROM events WHERE id > $1 ORDER BY id LIMIT 5000",
        &[&after],
    )
    .await?
    .iter()
    .map(|r| {
        Ok((
            r.try_get::<_, i64>(0)?.max(0) as u64,
            r.try_get(1)?,
            r.try_get(2)?,
        ))
    })
    .collect()
}

// ---------------------------------------------------------------------------------------
// Settings

async fn get_setting(c: &impl GenericClient, key: &str) -> PgResult<Option<String>> {
    Ok(
        c.q_opt("SELECT value FROM settings WHERE key = $1", &[&key])
            .await?
            .map(|r| r.try_get(0))
            .transpose()?,
    )
}

async fn put_setting(c: &impl GenericClient, key: &str, value: &str) -> PgResult<()> {
    c.x(
        "INSERT INTO settings (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&key, &value],
    )
    .await?;
    Ok(())
}

async fn is_paused(c: &impl GenericClient) -> PgResult<bool> {
    Ok(get_setting(c, PAUSED_KEY).await?.as_deref() == Some("true"))
}

/// The counts: each (status, bookmarked) pair's folded count and the deltas not folded yet.
const COUNTS: &str = "SELECT status, bookmarked, sum(n)::bigint FROM (\
       SELECT status, bookmarked, n FROM task_counts \
       UNION ALL SELECT status, bookmarked, d FROM task_count_log) AS c \
     GROUP BY status, bookmarked";

async fn counts(c: &impl GenericClient) -> PgResult<Counts> {
    counts_of(&c.q(COUNTS, &[]).await?)
}

/// Whether the queue is paused and the counts, in one statement (the pause as one more row,
/// `paused`, whose `bookmarked` column holds the flag).
async fn queue_state(c: &impl GenericClient) -> PgResult<(bool, Counts)> {
    let rows = c
        .q(
            &format!(
                "{COUNTS} UNION ALL SELECT 'paused', value = 'true', 0::bigint \
                 FROM settings WHERE key = $1"
            ),
            &[&PAUSED_KEY],
        )
        .await?;
    let mut paused = false;
    for r in &rows {
        if r.try_get::<_, &str>(0)? == "paused" {
            paused = r.try_get(1)?;
        }
    }
    Ok((paused, counts_of(&rows)?))
}

/// The counts from rows of (status, bookmarked, n); rows of no task status are skipped.
fn counts_of(rows: &[tokio_postgres::Row]) -> PgResult<Counts> {
    let mut out = Counts::default();
    for r in rows {
        let s: String = r.try_get(0)?;
        let bookmarked: bool = r.try_get(1)?;
        let n: i64 = r.try_get(2)?;
        match TaskStatus::parse(&s) {
            Some(TaskStatus::Pending) => out.pending += n,
            Some(TaskStatus::Running) => out.running += n,
            Some(TaskStatus::Done) => out.done += n,
            Some(TaskStatus::Failed) => out.failed += n,
            Some(TaskStatus::Interrupted) => out.interrupted += n,
            None => {}
        }
        if bookmarked && TaskStatus::parse(&s).is_some_and(TaskStatus::is_finished) {
            out.bookmarked += n;
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Inserts

async fn insert_in(tx: &Transaction<'_>, tasks: &[NewTask], now: i64) -> PgResult<()> {
    order_lock(tx).await?;
    let mut rank = last_rank(tx).await?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO tasks (id, type, status, name, request, page_snapshot, checkpoint, vae, \
             callback_url, rank, bookmarked, created_at, updated_at, group_id) \
             VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)",
        )
        .await?;
    let mut ranks = Vec::with_capacity(tasks.len());
    let mut requests = Vec::with_capacity(tasks.len());
    for t in tasks {
        let r = rank_at_end(rank);
        rank = Some(r);
        ranks.push(r);
        requests.push(Value::Object(t.request.clone()));
    }
    // The inserts are sent together (tokio-postgres pipelines queries issued at once on one
    // connection): one round trip's wait for many rows, in order.
    let types: Vec<&str> = tasks.iter().map(|t| t.task_type.as_str()).collect();
    let inserts =
        tasks
            .iter()
            .zip(&ranks)
            .zip(&requests)
            .zip(&types)
            .map(|(((t, r), request), ty)| {
                let params: [&(dyn ToSql + Sync); 12] = [
                    &t.id,
                    ty,
                    &t.name,
                    request,
                    &t.page_snapshot,
                    &t.checkpoint,
                    &t.vae,
                    &t.callback_url,
                    r,
                    &t.bookmarked,
                    &now,
                    &t.group_id,
                ];
                let stmt = &stmt;
                async move { tx.execute(stmt, &params).await }
            });
    futures::future::try_join_all(inserts).await?;
    Ok(())
}

async fn insert_copy_in(
    tx: &Transaction<'_>,
    id: &str,
    new_id: &str,
    name: NameFn,
    group_id: Option<String>,
    now: i64,
) -> PgResult<()> {
    let task = require(tx, id, true).await?;
    insert_in(tx, &[NewTask::copy_of(task, new_id, name, group_id)], now).await
}

// ---------------------------------------------------------------------------------------
// Transitions

/// What an edit or a reordering (a move, "run now") decides for the task (its lifecycle
/// locked) at `now`: its lifecycle, and the change to write (`None` for an edit); a conflict
/// for anything that would change its status.
async fn reordering(
    tx: &Transaction<'_>,
    id: &str,
    event: &Event,
    now: i64,
) -> PgResult<(Lifecycle, Option<Change>)> {
    let l = lock_lifecycle(tx, id).await?;
    match decide(&l.life, event, &NO_POLICY, now)? {
        Transition::Keep => Ok((l.life, None)),
        Transition::Change(c) if c.next.status == l.life.status && !c.callback => {
            Ok((l.life, Some(c)))
        }
        other => Err(StoreError::Conflict(format!(
            "{event:?} is not an edit or a move ({other:?})"
        ))),
    }
}

/// Checks that `event` is allowed for the task at `now` (an edit, a move, "run now": the
/// status does not change), writing nothing; returns its lifecycle.
async fn allow(tx: &Transaction<'_>, id: &str, event: &Event, now: i64) -> PgResult<Lifecycle> {
    Ok(reordering(tx, id, event, now).await?.0)
}

/// Decides a move or "run now" and writes its lifecycle columns (the rank is the caller's).
async fn reorder(tx: &Transaction<'_>, id: &str, event: &Event, now: i64) -> PgResult<Lifecycle> {
    let (life, change) = reordering(tx, id, event, now).await?;
    if let Some(c) = change {
        write(tx, id, Guard::read(&life), &c, None, None, now).await?;
    }
    Ok(life)
}

/// Writes a decided change at `now`: the one statement that sets `status` and the lifecycle
/// columns, guarded in its `WHERE` by `guard`; then the outputs and the callback row the
/// decision asks for.
async fn write(
    tx: &Transaction<'_>,
    id: &str,
    guard: Guard,
    change: &Change,
    run: Option<&RunOutputs>,
    callback_url: Option<&str>,
    now: i64,
) -> PgResult<bool> {
    Ok(
        write_with(tx, id, guard, change, run, callback_url, None, now)
            .await?
            .0,
    )
}

/// The `UPDATE` of [`write_with`]: every lifecycle column from the decision, guarded by the
/// state it was decided from; `{lease}` keeps or sets the claim's lease, `{returning}` may
/// return the row.
const WRITE: &str = "UPDATE tasks SET status = $2, attempts = $3, backend = $4, error = $5, \
     started_at = $6, finished_at = $7, run_next = $8, force_run = $9, rank = COALESCE($10, rank), \
     result = CASE WHEN $11 THEN $12 ELSE result END, updated_at = $13, next_run_at = $15, \
     pinned = CASE $16::integer WHEN 1 THEN true WHEN 2 THEN false ELSE pinned END, \
     overtakes = CASE $16::integer WHEN 2 THEN 0 ELSE overtakes END, \
     overtaken_at = CASE $16::integer WHEN 2 THEN NULL ELSE overtaken_at END, \
     {lease}, fence = $19, stop_requested = $20 \
     WHERE id = $1 AND status = $14 AND fence IS NOT DISTINCT FROM $18::bigint{returning}";

/// [`WRITE`] for every change but a claim: a running task keeps its lease, any other loses it.
static WRITE_KEEPING_LEASE: LazyLock<String> = LazyLock::new(|| {
    WRITE
        .replace(
            "{lease}",
            "lease_owner = CASE WHEN $17 THEN lease_owner END, \
             lease_until = CASE WHEN $17 THEN lease_until END",
        )
        .replace("{returning}", "")
});

/// [`WRITE`] for a claim: the claimer's lease ($21, for $22 ms from now in database time),
/// and the claimed row.
static WRITE_CLAIM: LazyLock<String> = LazyLock::new(|| {
    WRITE
        .replace(
            "{lease}",
            "lease_owner = CASE WHEN $17 THEN $21 END, \
             lease_until = CASE WHEN $17 THEN now() + make_interval(secs => $22::bigint / 1000.0) END",
        )
        .replace("{returning}", &format!(" RETURNING {}", *FULL_COLS))
});

/// [`write`], and with `lease` (a claim: owner, lease in ms) the lease set in the same
/// statement and the written row returned (full columns, images not loaded).
#[allow(clippy::too_many_arguments)]
async fn write_with(
    tx: &Transaction<'_>,
    id: &str,
    guard: Guard,
    change: &Change,
    run: Option<&RunOutputs>,
    callback_url: Option<&str>,
    lease: Option<(&str, i64)>,
    now: i64,
) -> PgResult<(bool, Option<TaskRow>)> {
    let rank: Option<i64> = match change.place {
        Place::Keep => None,
        Place::Head => {
            order_lock(tx).await?;
            Some(rank_at_head(first_pending_rank(tx).await?))
        }
        Place::Tail => {
            order_lock(tx).await?;
            Some(rank_at_end(last_rank(tx).await?))
        }
    };
    let (set_result, result): (bool, Option<Value>) = match change.outputs {
        Outputs::Keep => (false, None),
        Outputs::Clear => (true, None),
        Outputs::Record { .. } => (true, run.and_then(|r| r.info.clone())),
    };
    let n = &change.next;
    let place: i32 = match change.place {
        Place::Keep => 0,
        Place::Head => 1,
        Place::Tail => 2,
    };
    let running = n.status == TaskStatus::Running;
    let (owner, lease_ms) = lease.unzip();
    let (status, attempts, guard_status) =
        (n.status.as_str(), i32_of(n.attempts), guard.status.as_str());
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &id,
        &status,
        &attempts,
        &n.backend,
        &n.error,
        &n.started_at,
        &n.finished_at,
        &n.run_next,
        &n.force_run,
        &rank,
        &set_result,
        &result,
        &now,
        &guard_status,
        &n.next_run_at,
        &place,
        &running,
        &guard.fence,
        &n.fence,
        &n.stop_requested,
    ];
    let mut claimed = None;
    if lease.is_some() {
        params.extend([&owner as &(dyn ToSql + Sync), &lease_ms]);
        let row = tx
            .q_opt(&WRITE_CLAIM, &params)
            .await?
            .ok_or_else(|| guard.missed(id))?;
        claimed = Some(map_row(&row)?);
    } else if tx.x(&WRITE_KEEPING_LEASE, &params).await? == 0 {
        return Err(guard.missed(id));
    }
    let images: &[ImageRow] = match (change.outputs, run) {
        (Outputs::Record { images: true }, Some(r)) => &r.images,
        _ => &[],
    };
    if change.outputs != Outputs::Keep {
        // The bytes go with the rows: a finish that records images makes its claim's
        // staged files the task's; every file no row points at goes.
        let promote = match change.outputs {
            Outputs::Record { images: true } if guard.claimed && run.is_some() => guard.fence,
            _ => None,
        };
        let keep = if running { n.fence } else { None };
        super::blobs::settle_in(tx, id, images, promote, keep).await?;
    }
    if let (true, Some(url)) = (change.callback, callback_url) {
        queue_delivery(tx, id, url, n.status, images, now).await?;
        return Ok((true, claimed));
    }
    Ok((false, claimed))
}

async fn queue_delivery(
    tx: &Transaction<'_>,
    task_id: &str,
    url: &str,
    status: TaskStatus,
    images: &[ImageRow],
    now: i64,
) -> PgResult<()> {
    let files: Vec<(String, String)> = images
        .iter()
        .map(|i| {
            (
                format!("{task_id}/{}", i.file_name),
                i.content_type().to_owned(),
            )
        })
        .collect();
    tx.x(
        "INSERT INTO callback_outbox (delivery_id, task_id, url, status, files, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
        &[
            &uuid::Uuid::new_v4().to_string(),
            &task_id,
            &url,
            &status.as_str(),
            &serde_json::to_string(&files)?,
            &now,
        ],
    )
    .await?;
    Ok(())
}

/// Decides `event` for the task (its lifecycle locked) at `now` and writes it, guarded by
/// the state it was decided from.
async fn apply_in(
    tx: &Transaction<'_>,
    id: &str,
    event: &Event,
    policy: &Policy,
    now: i64,
) -> PgResult<Applied> {
    let l = lock_lifecycle(tx, id).await?;
    let transition = decide(&l.life, event, policy, now)?;
    let mut callback_queued = false;
    match &transition {
        Transition::Keep => {}
        Transition::Remove { .. } => {
            tx.x("DELETE FROM tasks WHERE id = $1", &[&id]).await?;
        }
        Transition::Interrupt { change, .. } | Transition::Change(change) => {
            callback_queued = write(
                tx,
                id,
                Guard::read(&l.life),
                change,
                None,
                l.callback_url.as_deref(),
                now,
            )
            .await?;
        }
    }
    Ok(Applied {
        transition,
        name: l.name,
        callback_queued,
    })
}

/// Decides a run's `event` (its end, release or failed try) for the task running under the
/// claim `fence` at `now`, and writes it guarded by that fence. [`StoreError::Stale`]
/// (nothing written) when the task no longer runs under that claim.
async fn claimed_in(
    tx: &Transaction<'_>,
    id: &str,
    fence: i64,
    event: &Event,
    policy: &Policy,
    run: Option<&RunOutputs>,
    now: i64,
) -> PgResult<Applied> {
    let stale = || {
        StoreError::Stale(format!(
            "task {id} no longer runs under claim {fence}: its end is not written"
        ))
    };
    let l = match lock_lifecycle(tx, id).await {
        Err(StoreError::NotFound) => return Err(stale()),
        other => other?,
    };
    // A task that no longer runs refuses a run's end: its claim is over.
    let Ok(Transition::Change(change)) = decide(&l.life, event, policy, now) else {
        return Err(stale());
    };
    let callback_queued = write(
        tx,
        id,
        Guard::claim(fence),
        &change,
        run,
        l.callback_url.as_deref(),
        now,
    )
    .await?;
    Ok(Applied {
        transition: Transition::Change(change),
        name: l.name,
        callback_queued,
    })
}

async fn ids_where(
    tx: &Transaction<'_>,
    cond: &str,
    order: &str,
    params: &Params<'_>,
) -> PgResult<Vec<String>> {
    Ok(tx
        .q(
            &format!("SELECT id FROM tasks WHERE {cond} ORDER BY {order}"),
            params,
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?)
}

async fn apply_each(
    tx: &Transaction<'_>,
    ids: Vec<String>,
    event: &Event,
    policy: &Policy,
    now: i64,
) -> PgResult<Vec<(String, Applied)>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let applied = apply_in(tx, &id, event, policy, now).await?;
        out.push((id, applied));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Order

/// The rank just before pending task `over` (`moving` excluded): the middle of the gap
/// before it, or a slot made by spreading out the few tasks just before it.
async fn rank_before(tx: &Transaction<'_>, over: &str, moving: &str) -> PgResult<i64> {
    let r = tx
        .q1("SELECT rank, seq FROM tasks WHERE id = $1", &[&over])
        .await?;
    let (over_rank, over_seq): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
    let before_sql = "SELECT seq, rank FROM tasks WHERE status = 'pending' AND (rank, seq) < ($1, $2) \
                      AND id <> $3 ORDER BY rank DESC, seq DESC LIMIT $4";
    let neighbours = async |n: i64| -> PgResult<Vec<(i64, i64)>> {
        tx.q(before_sql, &[&over_rank, &over_seq, &moving, &n])
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<PgResult<_>>()
    };
    let before = neighbours(1).await?.first().map(|&(_, r)| r);
    if let Some(r) = rank_between(before, over_rank) {
        return Ok(r);
    }
    let mut n = 16;
    loop {
        let mut rows = neighbours(n + 1).await?;
        let lower = if rows.len() as i64 > n {
            rows.pop().map(|(_, r)| r)
        } else {
            None
        };
        rows.reverse();
        if let Some(ranks) = spread(lower, over_rank, rows.len()) {
            for ((seq, _), r) in rows.iter().zip(&ranks) {
                tx.x("UPDATE tasks SET rank = $2 WHERE seq = $1", &[seq, r])
                    .await?;
            }
            return Ok(ranks[rows.len()]);
        }
        if lower.is_none() || n > 1 << 20 {
            return Err(StoreError::Conflict(
                "could not find a place in the queue".into(),
            ));
        }
        n *= 16;
    }
}

async fn move_in(tx: &Transaction<'_>, id: &str, target: &MoveTarget, now: i64) -> PgResult<()> {
    allow(tx, id, &Event::Move, now).await?;
    let (rank, pinned) = match target {
        MoveTarget::Top => (rank_at_head(first_pending_rank(tx).await?), true),
        MoveTarget::Bottom => (rank_at_end(last_rank(tx).await?), false),
        MoveTarget::Before(over) if over == id => return Ok(()),
        MoveTarget::Before(over) => {
            allow(tx, over, &Event::Move, now)
                .await
                .map_err(|e| match e {
                    StoreError::Refused(r) => {
                        StoreError::Conflict(format!("Task {over} is {}", r.status().as_str()))
                    }
                    other => other,
                })?;
            let first: bool = tx
                .q1(
                    "SELECT pinned OR run_next IS NOT NULL FROM tasks WHERE id = $1",
                    &[over],
                )
                .await?
                .try_get(0)?;
            (rank_before(tx, over, id).await?, first)
        }
    };
    reorder(tx, id, &Event::Move, now).await?;
    tx.x(
        "UPDATE tasks SET rank = $2, pinned = $3 WHERE id = $1",
        &[&id, &rank, &pinned],
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Listings

fn pending_sql() -> String {
    format!(
        "SELECT {} FROM tasks WHERE status = 'pending' AND (rank, seq) > ($1, $2) \
         ORDER BY rank, seq LIMIT $3 OFFSET $4",
        *LIST_COLS
    )
}

async fn pending_rows(
    c: &impl GenericClient,
    after: Option<(i64, i64)>,
    limit: i64,
    offset: i64,
) -> PgResult<Vec<TaskRow>> {
    let (rank, seq) = after.unwrap_or((i64::MIN, i64::MIN));
    rows_of(
        c,
        &pending_sql(),
        &[&rank, &seq, &limit.max(0), &offset.max(0)],
    )
    .await
}

async fn running_rows(c: &impl GenericClient) -> PgResult<Vec<TaskRow>> {
    rows_of(
        c,
        &format!(
            "SELECT {} FROM tasks WHERE status = 'running' ORDER BY started_at, seq",
            *LIST_COLS
        ),
        &[],
    )
    .await
}

/// The tasks whose words match the query `$1` (a `tsquery` as text: [`tsquery`]).
const MATCHES: &str = "id IN (SELECT task_id FROM task_search WHERE search @@ $1::text::tsquery)";

async fn search_in(
    c: &impl GenericClient,
    q: &str,
    scope: Scope,
    after_seq: Option<i64>,
    limit: i64,
    offset: i64,
) -> PgResult<(Vec<TaskRow>, i64)> {
    let Some(m) = tsquery(q) else {
        return Ok((Vec::new(), 0));
    };
    let newest_first = matches!(scope, Scope::History(_));
    let (dir, cmp, from) = if newest_first {
        ("DESC", "<", after_seq.unwrap_or(i64::MAX))
    } else {
        ("ASC", ">", after_seq.unwrap_or(i64::MIN))
    };
    let cond = scope_cond(scope);
    let rows = rows_of(
        c,
        &format!(
            "SELECT {} FROM tasks WHERE {MATCHES} AND {cond} AND seq {cmp} $2 \
             ORDER BY seq {dir} LIMIT $3 OFFSET $4",
            *LIST_COLS
        ),
        &[&m, &from, &limit.max(0), &offset.max(0)],
    )
    .await?;
    let total: i64 = c
        .q1(
            &format!("SELECT count(*) FROM tasks WHERE {MATCHES} AND {cond}"),
            &[&m],
        )
        .await?
        .try_get(0)?;
    Ok((rows, total))
}

async fn resolve_in(c: &impl GenericClient, sel: &Selection) -> PgResult<Vec<String>> {
    let mut seen = HashSet::new();
    let Some(f) = &sel.filter else {
        let mut out = Vec::with_capacity(sel.ids.len());
        let found: HashSet<String> = c
            .q("SELECT id FROM tasks WHERE id = ANY($1)", &[&sel.ids])
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        for id in &sel.ids {
            if !found.contains(id) {
                return Err(StoreError::NotFound);
            }
            if seen.insert(id.as_str()) {
                out.push(id.clone());
            }
        }
        return Ok(out);
    };
    let except: HashSet<&str> = sel.except.iter().map(String::as_str).collect();
    let filter = f.status.unwrap_or_default();
    let m = f.q.as_deref().and_then(tsquery);
    let (cond, order) = match f.list {
        ListName::Queue => ("status = 'pending'".to_owned(), "rank, seq"),
        ListName::History if m.is_some() => (history_cond(filter), "seq DESC"),
        ListName::History => (history_cond(filter), "finished_at DESC, seq DESC"),
    };
    let rows = match &m {
        Some(m) => {
            c.q(
                &format!("SELECT id FROM tasks WHERE {MATCHES} AND {cond} ORDER BY {order}"),
                &[m],
            )
            .await?
        }
        None => {
            c.q(
                &format!("SELECT id FROM tasks WHERE {cond} ORDER BY {order}"),
                &[],
            )
            .await?
        }
    };
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    Ok(ids
        .into_iter()
        .filter(|id| !except.contains(id.as_str()))
        .collect())
}

// ---------------------------------------------------------------------------------------
// Exports

/// Rows until `limit` rows or `budget` bytes of requests and snapshots (at least one).
fn take_budgeted(
    rows: &[tokio_postgres::Row],
    limit: usize,
    budget: usize,
) -> PgResult<Vec<TaskRow>> {
    let mut out = Vec::new();
    let mut used = 0usize;
    for r in rows {
        if out.len() >= limit {
            break;
        }
        let size: i64 = r.try_get(SIZE_COL)?;
        used = used.saturating_add(usize::try_from(size).unwrap_or(0));
        out.push(map_row(r)?);
        if used >= budget {
            break;
        }
    }
    Ok(out)
}

fn candidate(r: &tokio_postgres::Row) -> PgResult<Candidate> {
    Ok(Candidate {
        seq: r.try_get(0)?,
        id: r.try_get(1)?,
        checkpoint: r.try_get(2)?,
        vae: r.try_get(3)?,
        run_next: r.try_get(4)?,
        force_run: r.try_get(5)?,
        pinned: r.try_get(6)?,
        overtakes: u32::try_from(r.try_get::<_, i32>(7)?).unwrap_or(0),
        overtaken_at: r.try_get(8)?,
        next_run_at: r.try_get(9)?,
    })
}

#[async_trait]
impl TaskStore for PgStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Postgres
    }

    async fn insert_tasks(
        &self,
        tasks: Vec<NewTask>,
        idempotency: Option<(String, String)>,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        in_tx!(self, tx => {
            if let Some((key, answer)) = &idempotency {
                let inserted = tx
                    .x(
                        "INSERT INTO idempotency_keys (key, response, created_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (key) DO NOTHING",
                        &[key, answer, &now],
                    )
                    .await?;
                if inserted == 0 {
                    let prev: String = tx
                        .q1("SELECT response FROM idempotency_keys WHERE key = $1", &[key])
                        .await?
                        .try_get(0)?;
                    return Ok(Some(prev));
                }
            }
            insert_in(&tx, &tasks, now).await?;
            fold_counts(&tx).await?;
            None
        })
    }

    async fn idempotent_answer(&self, key: String) -> Result<Option<String>, StoreError> {
        let c = self.conn().await?;
        Ok(c.q_opt(
            "SELECT response FROM idempotency_keys WHERE key = $1",
            &[&key],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()?)
    }

    async fn prune_idempotency(&self, before_ms: i64) -> Result<usize, StoreError> {
        let c = self.conn().await?;
        Ok(c.x(
            "DELETE FROM idempotency_keys WHERE created_at < $1",
            &[&before_ms],
        )
        .await? as usize)
    }

    async fn tasks_exist(&self, ids: Vec<String>) -> Result<Vec<bool>, StoreError> {
        // lower() on both sides under the ids' byte collation (ASCII case, as SQLite's).
        let c = self.conn().await?;
        c.q(
            "SELECT EXISTS (SELECT 1 FROM tasks WHERE lower(id) = lower(x COLLATE \"C\")) \
             FROM unnest($1::text[]) WITH ORDINALITY AS u(x, i) ORDER BY i",
            &[&ids],
        )
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }

    async fn get_task(&self, id: String, full: bool) -> Result<Option<TaskRow>, StoreError> {
        let c = self.conn().await?;
        rows::get_task(&c, &id, full).await
    }

    async fn insert_copy(
        &self,
        id: String,
        new_id: String,
        name: NameFn,
        now: i64,
    ) -> Result<(), StoreError> {
        in_tx!(self, tx => {
            insert_copy_in(&tx, &id, &new_id, name, None, now).await?;
            fold_counts(&tx).await?;
        })
    }

    async fn edit_task(&self, id: String, edit: TaskEdit, now: i64) -> Result<(), StoreError> {
        in_tx!(self, tx => {
            allow(&tx, &id, &Event::Edit, now).await?;
            let task = require(&tx, &id, true).await?;
            let mut request = task.request;
            let mut lifted = Lifted::default();
            if let Some(patch) = edit.params.clone() {
                lifted = merge_params(task.task_type, &mut request, patch)
                    .map_err(|e| StoreError::Invalid(format!("invalid params: {e}")))?;
            }
            let name = edit.name.clone().unwrap_or(task.name);
            let checkpoint = edit
                .checkpoint
                .clone()
                .or(lifted.checkpoint.map(Some))
                .unwrap_or(task.checkpoint);
            let vae = lifted.vae.or(task.vae);
            if let Some(contract) = &edit.contract {
                contract
                    .check(task.task_type, &request, checkpoint.as_deref(), vae.as_deref())
                    .map_err(StoreError::Violation)?;
            }
            tx.x(
                "UPDATE tasks SET request = $2, name = $3, checkpoint = $4, vae = $5, updated_at = $6 \
                 WHERE id = $1",
                &[&id, &Value::Object(request), &name, &checkpoint, &vae, &now],
            )
            .await?;
        })
    }

    async fn rename(
        &self,
        id: String,
        name: Option<String>,
        now: i64,
    ) -> Result<TaskRow, StoreError> {
        in_tx!(self, tx => {
            let n = tx
                .x(
                    "UPDATE tasks SET name = $2, updated_at = $3 WHERE id = $1",
                    &[&id, &name, &now],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            require(&tx, &id, false).await?
        })
    }

    async fn set_bookmark(&self, id: String, on: bool, now: i64) -> Result<TaskRow, StoreError> {
        in_tx!(self, tx => {
            let n = tx
                .x(
                    "UPDATE tasks SET bookmarked = $2, updated_at = $3 WHERE id = $1",
                    &[&id, &on, &now],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            require(&tx, &id, false).await?
        })
    }

    async fn image_files_of(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<Option<HashSet<String>>>, StoreError> {
        in_snapshot!(self, tx => {
            let tasks: HashSet<String> = tx
                .q("SELECT id FROM tasks WHERE id = ANY($1)", &[&ids])
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            let mut files: std::collections::HashMap<String, HashSet<String>> = Default::default();
            for r in tx
                .q(
                    "SELECT task_id, file_name FROM result_images WHERE task_id = ANY($1)",
                    &[&ids],
                )
                .await?
            {
                files.entry(r.try_get(0)?).or_default().insert(r.try_get(1)?);
            }
            ids.iter()
                .map(|id| {
                    tasks
                        .contains(id)
                        .then(|| files.get(id).cloned().unwrap_or_default())
                })
                .collect()
        })
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        let c = self.conn().await?;
        counts(&c).await
    }

    async fn queue_state(&self) -> Result<(bool, Counts), StoreError> {
        let c = self.conn().await?;
        queue_state(&c).await
    }

    async fn queue_head(&self, lookahead: i64) -> Result<QueueHead, StoreError> {
        in_snapshot!(self, tx => QueueHead {
            paused: is_paused(&tx).await?,
            running: running_rows(&tx).await?,
            window: pending_rows(&tx, None, lookahead, 0).await?,
            counts: counts(&tx).await?,
        })
    }

    async fn pending_rows(
        &self,
        after: Option<(i64, i64)>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<TaskRow>, StoreError> {
        let c = self.conn().await?;
        pending_rows(&c, after, limit, offset).await
    }

    async fn running(&self) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let c = self.conn().await?;
        Ok(c.q(
            "SELECT id, backend FROM tasks WHERE status = 'running' ORDER BY started_at, seq",
            &[],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<PgResult<_>>()?)
    }

    async fn list_queue(
        &self,
        q: Option<String>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TaskRow>, i64), StoreError> {
        in_snapshot!(self, tx => {
            if let Some(q) = q.as_deref().filter(|q| tsquery(q).is_some()) {
                search_in(&tx, q, Scope::Queue, None, limit, offset).await?
            } else {
                let running = running_rows(&tx).await?;
                let total = running.len() as i64 + counts(&tx).await?.pending;
                let r = running.len() as i64;
                let mut rows: Vec<TaskRow> = running
                    .into_iter()
                    .skip(offset.max(0) as usize)
                    .take(limit.max(0) as usize)
                    .collect();
                let more = limit - rows.len() as i64;
                if more > 0 {
                    rows.extend(pending_rows(&tx, None, more, (offset - r).max(0)).await?);
                }
                (rows, total)
            }
        })
    }

    async fn search(
        &self,
        q: String,
        scope: Scope,
        after_seq: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TaskRow>, i64), StoreError> {
        in_snapshot!(self, tx => search_in(&tx, &q, scope, after_seq, limit, offset).await?)
    }

    async fn history_page(
        &self,
        filter: HistoryFilter,
        q: Option<String>,
        cursor: Option<Cursor>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TaskRow>, i64), StoreError> {
        in_snapshot!(self, tx => {
            if let Some(q) = q.as_deref().filter(|q| tsquery(q).is_some()) {
                let after = match cursor {
                    Some(Cursor::Seq(s)) => Some(s),
                    _ => None,
                };
                search_in(&tx, q, Scope::History(filter), after, limit, offset).await?
            } else {
                let (f, s) = match cursor {
                    Some(Cursor::Finished { finished_at, seq }) => (finished_at, seq),
                    _ => (i64::MAX, i64::MAX),
                };
                let rows = rows_of(
                    &tx,
                    &format!(
                        "SELECT {} FROM tasks WHERE {} AND (finished_at, seq) < ($1, $2) \
                         ORDER BY finished_at DESC, seq DESC LIMIT $3 OFFSET $4",
                        *LIST_COLS,
                        history_cond(filter)
                    ),
                    &[&f, &s, &limit.max(0), &offset.max(0)],
                )
                .await?;
                (rows, counts(&tx).await?.history(filter))
            }
        })
    }

    async fn history_by_checkpoint(
        &self,
        filter: HistoryFilter,
        after: Option<(Option<String>, i64, i64)>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TaskRow>, i64), StoreError> {
        let cond = format!("{FINISHED} AND {}", history_cond(filter));
        let order = "ORDER BY checkpoint NULLS FIRST, finished_at DESC, seq DESC";
        in_snapshot!(self, tx => {
            let rows = match &after {
                Some((ck, f, s)) => {
                    rows_of(
                        &tx,
                        &format!(
                            "SELECT {} FROM tasks WHERE {cond} AND (($1::text IS NULL AND checkpoint IS NOT NULL) \
                             OR checkpoint > $1 OR (checkpoint IS NOT DISTINCT FROM $1 \
                             AND (finished_at, seq) < ($2, $3))) {order} LIMIT $4 OFFSET $5",
                            *LIST_COLS
                        ),
                        &[ck, f, s, &limit.max(0), &offset.max(0)],
                    )
                    .await?
                }
                None => {
                    rows_of(
                        &tx,
                        &format!("SELECT {} FROM tasks WHERE {cond} {order} LIMIT $1 OFFSET $2", *LIST_COLS),
                        &[&limit.max(0), &offset.max(0)],
                    )
                    .await?
                }
            };
            (rows, counts(&tx).await?.history(filter))
        })
    }

    async fn pending_before(&self, rank: i64, seq: i64) -> Result<i64, StoreError> {
        let c = self.conn().await?;
        Ok(c.q1(
            "SELECT count(*) FROM tasks WHERE status = 'pending' AND (rank, seq) < ($1, $2)",
            &[&rank, &seq],
        )
        .await?
        .try_get(0)?)
    }

    async fn group_rows(&self, group_id: String) -> Result<Vec<TaskRow>, StoreError> {
        let c = self.conn().await?;
        rows_of(
            &c,
            &format!(
                "SELECT {} FROM tasks WHERE group_id = $1 ORDER BY seq",
                *LIST_COLS
            ),
            &[&group_id],
        )
        .await
    }

    async fn resolve(&self, sel: Selection) -> Result<Vec<String>, StoreError> {
        in_snapshot!(self, tx => resolve_in(&tx, &sel).await?)
    }

    async fn apply(
        &self,
        id: String,
        event: Event,
        policy: Policy,
        now: i64,
    ) -> Result<Applied, StoreError> {
        in_tx!(self, tx => {
            let a = apply_in(&tx, &id, &event, &policy, now).await?;
            fold_counts(&tx).await?;
            a
        })
    }

    async fn apply_batch(
        &self,
        items: Vec<(String, Event)>,
        policy: Policy,
        now: i64,
    ) -> Result<usize, StoreError> {
        in_tx!(self, tx => {
            for (id, event) in &items {
                apply_in(&tx, id, event, &policy, now).await?;
            }
            fold_counts(&tx).await?;
            items.len()
        })
    }

    async fn delete(
        &self,
        id: String,
        policy: Policy,
        now: i64,
    ) -> Result<(Applied, TaskStatus), StoreError> {
        in_tx!(self, tx => {
            let status = require(&tx, &id, false).await?.status();
            (apply_in(&tx, &id, &Event::Delete, &policy, now).await?, status)
        })
    }

    async fn claim_next(
        &self,
        backend: String,
        now: i64,
        choose: ChooseFn,
    ) -> Result<Option<Claimed>, StoreError> {
        let mut obj = self.conn().await?;
        let tx = obj.transaction().await?;
        // A light commit, as SQLite's claim (`Store::call_light`): answered before the WAL
        // reaches the disk; a claim lost to a power cut of the database is a task that runs
        // again, as after a host's crash. Set in the statement that reads the pause.
        let paused = tx
            .q1(
                "SELECT set_config('synchronous_commit', 'off', true), \
                 (SELECT value FROM settings WHERE key = $1)",
                &[&PAUSED_KEY],
            )
            .await?
            .try_get::<_, Option<&str>>(1)?
            == Some("true");
        let forced = if paused { " AND force_run" } else { "" };
        // The window is read without locks (another host's claim in flight would otherwise
        // hide the whole window); only the chosen task is locked, skipping one another host
        // holds, and the policy chooses again without it.
        let mut window: Vec<Candidate> = tx
            .q(
                &format!(
                    "SELECT seq, id, checkpoint, vae, run_next, force_run, pinned, overtakes, \
                     overtaken_at, next_run_at FROM tasks WHERE status = 'pending'{forced} \
                     AND (next_run_at IS NULL OR next_run_at <= $2) ORDER BY rank, seq LIMIT $1"
                ),
                &[&LOOKAHEAD, &now],
            )
            .await?
            .iter()
            .map(candidate)
            .collect::<PgResult<_>>()?;
        let mut choose = choose;
        let (chosen, locked, fence, overtaken) = loop {
            let Some(choice) = choose(&window, paused) else {
                return Ok(None);
            };
            let Some(chosen) = window.get(choice.index) else {
                return Err(StoreError::Invalid(
                    "the claim chose outside its window".into(),
                ));
            };
            // Locked with its lifecycle read, and the claim's fence: a number no other claim
            // of any task had (a sequence shared by every host).
            let locked = tx
                .q_opt(
                    &format!(
                        "SELECT {LOCKED_COLS}, nextval('claim_fence') FROM tasks \
                         WHERE seq = $1 AND status = 'pending' FOR UPDATE SKIP LOCKED"
                    ),
                    &[&chosen.seq],
                )
                .await?;
            if let Some(row) = locked {
                let overtaken: Vec<i64> = choice
                    .overtaken
                    .iter()
                    .filter(|&&i| i < choice.index)
                    .filter_map(|&i| window.get(i).map(|t| t.seq))
                    .collect();
                let fence: i64 = row.try_get(LOCKED_LEN)?;
                break (chosen.clone(), locked_of(&row)?, fence, overtaken);
            }
            window.remove(choice.index);
        };
        // Overtakes of tasks another host is claiming right now are not counted (they run).
        if !overtaken.is_empty() {
            tx.x(
                "UPDATE tasks SET overtakes = overtakes + 1, overtaken_at = COALESCE(overtaken_at, $2) \
                 WHERE seq IN (SELECT seq FROM tasks WHERE seq = ANY($1) AND status = 'pending' \
                 FOR UPDATE SKIP LOCKED)",
                &[&overtaken, &now],
            )
            .await?;
        }
        let event = Event::Claim { backend, fence };
        let Transition::Change(change) = decide(&locked.life, &event, &NO_POLICY, now)? else {
            return Err(StoreError::Invalid(format!(
                "a claim of task {} decided no change",
                chosen.id
            )));
        };
        // The row written with the claimer's lease, and read back, in one statement.
        let (_, row) = write_with(
            &tx,
            &chosen.id,
            Guard::read(&locked.life),
            &change,
            None,
            None,
            Some((&self.owner, self.lease_ms())),
            now,
        )
        .await?;
        let row = row.ok_or_else(|| StoreError::Invalid("a claim wrote no row".into()))?;
        let mut rows = [row];
        load_images(&tx, &mut rows).await?;
        let [task] = rows;
        // The count log is folded by the other writes (a claim stays short).
        tx.commit().await?;
        Ok(Some(Claimed { task, fence }))
    }

    async fn apply_claimed(
        &self,
        id: String,
        fence: i64,
        event: Event,
        policy: Policy,
        now: i64,
    ) -> Result<Applied, StoreError> {
        in_tx!(self, tx => {
            let a = claimed_in(&tx, &id, fence, &event, &policy, None, now).await?;
            fold_counts(&tx).await?;
            a
        })
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
        in_tx!(self, tx => {
            let a = claimed_in(&tx, &id, fence, &event, &policy, Some(&run), now).await?;
            fold_counts(&tx).await?;
            a
        })
    }

    async fn renew_leases(&self, fences: Vec<i64>) -> Result<usize, StoreError> {
        let c = self.conn().await?;
        Ok(c.x(
            "UPDATE tasks SET lease_until = now() + make_interval(secs => $2::bigint / 1000.0) \
             WHERE status = 'running' AND lease_owner = $1 AND fence = ANY($3)",
            &[&self.owner, &self.lease_ms(), &fences],
        )
        .await? as usize)
    }

    async fn reclaim_expired(
        &self,
        policy: Policy,
        now: i64,
    ) -> Result<Vec<(String, Applied)>, StoreError> {
        in_tx!(self, tx => {
            let ids: Vec<String> = tx
                .q(
                    "SELECT id FROM tasks WHERE status = 'running' \
                     AND (lease_until IS NULL OR lease_until < now()) \
                     ORDER BY started_at DESC, seq DESC FOR UPDATE SKIP LOCKED",
                    &[],
                )
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            if !ids.is_empty() {
                order_lock(&tx).await?;
            }
            let out = apply_each(&tx, ids, &Event::Recovered, &policy, now).await?;
            fold_counts(&tx).await?;
            out
        })
    }

    async fn next_retry_at(&self) -> Result<Option<i64>, StoreError> {
        let c = self.conn().await?;
        Ok(c.q1(
            "SELECT min(next_run_at) FROM tasks WHERE status = 'pending' AND next_run_at IS NOT NULL",
            &[],
        )
        .await?
        .try_get(0)?)
    }

    async fn recover_running(
        &self,
        policy: Policy,
        now: i64,
    ) -> Result<Vec<(String, Applied)>, StoreError> {
        in_tx!(self, tx => {
            order_lock(&tx).await?;
            let ids = ids_where(
                &tx,
                "status = 'running' AND (lease_owner = $1 OR lease_until IS NULL OR lease_until < now())",
                "started_at DESC, seq DESC",
                &[&self.owner],
            )
            .await?;
            let out = apply_each(&tx, ids, &Event::Recovered, &policy, now).await?;
            fold_counts(&tx).await?;
            out
        })
    }

    async fn release_running(&self, now: i64) -> Result<Vec<(String, Applied)>, StoreError> {
        in_tx!(self, tx => {
            order_lock(&tx).await?;
            let ids = ids_where(
                &tx,
                "status = 'running' AND lease_owner = $1",
                "started_at DESC, seq DESC",
                &[&self.owner],
            )
            .await?;
            let out = apply_each(&tx, ids, &Event::Released, &NO_POLICY, now).await?;
            fold_counts(&tx).await?;
            out
        })
    }

    async fn requeue_failed(&self, now: i64) -> Result<Vec<(String, Applied)>, StoreError> {
        in_tx!(self, tx => {
            order_lock(&tx).await?;
            let ids = ids_where(&tx, "status = 'failed'", "finished_at, seq", &[]).await?;
            let out = apply_each(&tx, ids, &Event::Requeue, &NO_POLICY, now).await?;
            fold_counts(&tx).await?;
            out
        })
    }

    async fn clear_queue(&self, now: i64) -> Result<Vec<(String, Applied)>, StoreError> {
        in_tx!(self, tx => {
            let ids = ids_where(
                &tx,
                "status = 'pending' AND NOT bookmarked",
                "rank, seq",
                &[],
            )
            .await?;
            let out = apply_each(&tx, ids, &Event::Delete, &NO_POLICY, now).await?;
            fold_counts(&tx).await?;
            out
        })
    }

    async fn clear_history(
        &self,
        before_ms: Option<i64>,
        now: i64,
    ) -> Result<Vec<(String, Applied)>, StoreError> {
        in_tx!(self, tx => {
            let ids = ids_where(
                &tx,
                &format!(
                    "{FINISHED} AND NOT bookmarked AND ($1::bigint IS NULL OR COALESCE(finished_at, updated_at) < $1)"
                ),
                "seq",
                &[&before_ms],
            )
            .await?;
            let out = apply_each(&tx, ids, &Event::Delete, &NO_POLICY, now).await?;
            fold_counts(&tx).await?;
            out
        })
    }

    async fn bulk(
        &self,
        action: BulkAction,
        sel: Selection,
        policy: Policy,
        now: i64,
    ) -> Result<BulkDone, StoreError> {
        in_tx!(self, tx => {
            if matches!(action, BulkAction::Requeue | BulkAction::MoveTop | BulkAction::MoveBottom) {
                order_lock(&tx).await?;
            }
            let ids = resolve_in(&tx, &sel).await?;
            let mut done = BulkDone::default();
            match action {
                BulkAction::Delete => {
                    for id in &ids {
                        let before = require(&tx, id, false).await?.status();
                        let applied = apply_in(&tx, id, &Event::Delete, &policy, now).await?;
                        done.deleted.push((id.clone(), before, applied));
                    }
                }
                BulkAction::Requeue => {
                    let mut groups: Vec<(String, String)> = Vec::new();
                    for id in &ids {
                        let new_id = uuid::Uuid::new_v4().to_string();
                        let old = require(&tx, id, false).await?.group_id;
                        let group = old.map(|g| match groups.iter().find(|(o, _)| *o == g) {
                            Some((_, n)) => n.clone(),
                            None => {
                                let n = uuid::Uuid::new_v4().to_string();
                                groups.push((g, n.clone()));
                                n
                            }
                        });
                        insert_copy_in(&tx, id, &new_id, crate::model::spec::copy_name, group, now)
                            .await?;
                        done.created.push(new_id);
                    }
                }
                BulkAction::Bookmark | BulkAction::Unbookmark => {
                    let on = action == BulkAction::Bookmark;
                    for id in &ids {
                        let r = tx
                            .q_opt(
                                "UPDATE tasks SET bookmarked = $2, updated_at = $3 WHERE id = $1 \
                                 RETURNING status",
                                &[id, &on, &now],
                            )
                            .await?
                            .ok_or(StoreError::NotFound)?;
                        done.statuses.push((id.clone(), status_of(&r.try_get::<_, String>(0)?)));
                    }
                }
                BulkAction::MoveTop => {
                    for id in ids.iter().rev() {
                        move_in(&tx, id, &MoveTarget::Top, now).await?;
                    }
                }
                BulkAction::MoveBottom => {
                    for id in &ids {
                        move_in(&tx, id, &MoveTarget::Bottom, now).await?;
                    }
                }
            }
            fold_counts(&tx).await?;
            done.ids = ids;
            done
        })
    }

    async fn move_task(&self, id: String, target: MoveTarget, now: i64) -> Result<(), StoreError> {
        in_tx!(self, tx => {
            order_lock(&tx).await?;
            move_in(&tx, &id, &target, now).await?;
        })
    }

    async fn run_now(&self, id: String, now: i64) -> Result<usize, StoreError> {
        in_tx!(self, tx => {
            order_lock(&tx).await?;
            let paused = is_paused(&tx).await?;
            allow(&tx, &id, &Event::RunNow { group_seq: 1, paused }, now).await?;
            let group_last = tx
                .q_opt(
                    "SELECT rank, run_next FROM tasks WHERE status = 'pending' AND run_next IS NOT NULL \
                     AND id <> $1 ORDER BY run_next DESC LIMIT 1",
                    &[&id],
                )
                .await?;
            let (rank, seq) = match group_last {
                None => (rank_at_head(first_pending_rank(&tx).await?), 1i64),
                Some(r) => {
                    let (last_rank, last_seq): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
                    let next: Option<String> = tx
                        .q_opt(
                            "SELECT id FROM tasks WHERE status = 'pending' AND rank > $1 AND id <> $2 \
                             ORDER BY rank, seq LIMIT 1",
                            &[&last_rank, &id],
                        )
                        .await?
                        .map(|r| r.try_get(0))
                        .transpose()?;
                    let rank = match next {
                        None => rank_at_end(Some(last_rank)),
                        Some(next_id) => rank_before(&tx, &next_id, &id).await?,
                    };
                    (rank, last_seq + 1)
                }
            };
            reorder(&tx, &id, &Event::RunNow { group_seq: seq, paused }, now).await?;
            tx.x("UPDATE tasks SET rank = $2 WHERE id = $1", &[&id, &rank])
                .await?;
            let busy: i64 = tx
                .q1(
                    "SELECT count(DISTINCT backend) FROM tasks WHERE status = 'running'",
                    &[],
                )
                .await?
                .try_get(0)?;
            busy.max(0) as usize
        })
    }

    async fn pending_page(
        &self,
        from: PendingFrom,
        limit: usize,
        budget: usize,
    ) -> Result<Vec<TaskRow>, StoreError> {
        let c = self.conn().await?;
        let cap = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match from {
            PendingFrom::Offset(offset) => {
                c.q(
                    &format!(
                        "SELECT {} FROM tasks WHERE status = 'pending' ORDER BY rank, seq \
                         LIMIT $1 OFFSET $2",
                        *FULL_COLS
                    ),
                    &[&cap, &offset.max(0)],
                )
                .await?
            }
            PendingFrom::After(rank, seq) => {
                c.q(
                    &format!(
                        "SELECT {} FROM tasks WHERE status = 'pending' AND (rank, seq) > ($2, $3) \
                         ORDER BY rank, seq LIMIT $1",
                        *FULL_COLS
                    ),
                    &[&cap, &rank, &seq],
                )
                .await?
            }
        };
        take_budgeted(&rows, limit, budget)
    }

    async fn full_rows_page(
        &self,
        ids: Vec<String>,
        budget: usize,
    ) -> Result<(Vec<TaskRow>, usize), StoreError> {
        in_snapshot!(self, tx => {
            let stmt = tx
                .prepare_cached(&format!("SELECT {} FROM tasks WHERE id = $1", *FULL_COLS))
                .await?;
            let mut out = Vec::new();
            let mut used = 0usize;
            let mut consumed = 0;
            for id in &ids {
                consumed += 1;
                if let Some(r) = tx.query_opt(&stmt, &[id]).await? {
                    let size: i64 = r.try_get(SIZE_COL)?;
                    used = used.saturating_add(usize::try_from(size).unwrap_or(0));
                    out.push(map_row(&r)?);
                }
                if used >= budget {
                    break;
                }
            }
            load_images(&tx, &mut out).await?;
            (out, consumed)
        })
    }

    async fn result_files(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<(String, TaskStatus, Vec<ImageRow>)>, StoreError> {
        in_snapshot!(self, tx => {
            let statuses: std::collections::HashMap<String, String> = tx
                .q("SELECT id, status FROM tasks WHERE id = ANY($1)", &[&ids])
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<PgResult<_>>()?;
            let mut images: std::collections::HashMap<String, Vec<ImageRow>> = Default::default();
            for r in tx
                .q(
                    "SELECT task_id, idx, file_name, infotext, format FROM result_images \
                     WHERE task_id = ANY($1) ORDER BY task_id, idx",
                    &[&ids],
                )
                .await?
            {
                images.entry(r.try_get(0)?).or_default().push(ImageRow {
                    index: u32::try_from(r.try_get::<_, i32>(1)?).unwrap_or(0),
                    file_name: r.try_get(2)?,
                    infotext: r.try_get(3)?,
                    format: r.try_get(4)?,
                });
            }
            ids.iter()
                .filter_map(|id| {
                    let s = statuses.get(id)?;
                    Some((id.clone(), status_of(s), images.remove(id).unwrap_or_default()))
                })
                .collect::<Vec<_>>()
        })
    }

    async fn speeds(&self) -> Result<Vec<(String, Speed)>, StoreError> {
        let c = self.conn().await?;
        Ok(c.q(
            "SELECT backend, ms_per_mpx_step, samples, load_ms, loads FROM backend_speed \
             ORDER BY backend COLLATE \"C\"",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                Speed {
                    ms_per_mpx_step: r.try_get(1)?,
                    samples: u32::try_from(r.try_get::<_, i64>(2)?).unwrap_or(u32::MAX),
                    load_ms: r.try_get(3)?,
                    loads: u32::try_from(r.try_get::<_, i64>(4)?).unwrap_or(u32::MAX),
                },
            ))
        })
        .collect::<PgResult<_>>()?)
    }

    async fn record_speed(
        &self,
        backend: String,
        update: SpeedFn,
        now: i64,
    ) -> Result<Speed, StoreError> {
        // Not retried: `update` runs once.
        let mut obj = self.conn().await?;
        let tx = obj.transaction().await?;
        const READ: &str = "SELECT ms_per_mpx_step, samples, load_ms, loads FROM backend_speed \
             WHERE backend = $1 FOR UPDATE";
        // The row locked (made first for a backend's first run).
        let r = match tx.q_opt(READ, &[&backend]).await? {
            Some(r) => r,
            None => {
                tx.x(
                    "INSERT INTO backend_speed (backend, updated_at) VALUES ($1, $2) \
                     ON CONFLICT (backend) DO NOTHING",
                    &[&backend, &now],
                )
                .await?;
                tx.q1(READ, &[&backend]).await?
            }
        };
        let stored = Speed {
            ms_per_mpx_step: r.try_get(0)?,
            samples: u32::try_from(r.try_get::<_, i64>(1)?).unwrap_or(u32::MAX),
            load_ms: r.try_get(2)?,
            loads: u32::try_from(r.try_get::<_, i64>(3)?).unwrap_or(u32::MAX),
        };
        let s = update(stored);
        tx.x(
            "UPDATE backend_speed SET ms_per_mpx_step = $2, samples = $3, load_ms = $4, loads = $5, \
             updated_at = $6 WHERE backend = $1",
            &[
                &backend,
                &s.ms_per_mpx_step,
                &i64::from(s.samples),
                &s.load_ms,
                &i64::from(s.loads),
                &now,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(s)
    }

    async fn pending_work_after(&self, after: (i64, i64)) -> Result<Vec<PendingWork>, StoreError> {
        let fields: Vec<String> = WORK_FIELDS
            .iter()
            .map(|f| {
                format!(
                    "CASE WHEN jsonb_typeof(request -> '{f}') = 'number' \
                     THEN (request ->> '{f}')::float8 END"
                )
            })
            .collect();
        let c = self.conn().await?;
        let rows = c
            .q(
                &format!(
                    "SELECT type, {}, (request -> 'enable_hr') IN ('true'::jsonb, '1'::jsonb), \
                     checkpoint FROM tasks WHERE status = 'pending' AND (rank, seq) > ($1, $2) \
                     ORDER BY rank, seq",
                    fields.join(", ")
                ),
                &[&after.0, &after.1],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let ty: String = r.try_get(0)?;
                let mut v = [None; 8];
                for (i, slot) in v.iter_mut().enumerate() {
                    *slot = r.try_get::<_, Option<f64>>(i + 1)?;
                }
                let hr: Option<bool> = r.try_get(9)?;
                Ok((
                    TaskType::parse(&ty).unwrap_or(TaskType::Txt2img),
                    work_fields(v, hr == Some(true)),
                    r.try_get(10)?,
                ))
            })
            .collect()
    }

    async fn load_settings(&self) -> Result<Settings, StoreError> {
        let c = self.conn().await?;
        Ok(get_setting(&c, SETTINGS_KEY)
            .await?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default())
    }

    async fn save_settings(&self, s: Settings) -> Result<(), StoreError> {
        let c = self.conn().await?;
        put_setting(&c, SETTINGS_KEY, &serde_json::to_string(&s)?).await
    }

    async fn is_paused(&self) -> Result<bool, StoreError> {
        let c = self.conn().await?;
        is_paused(&c).await
    }

    async fn set_paused(&self, paused: bool) -> Result<(), StoreError> {
        let c = self.conn().await?;
        put_setting(&c, PAUSED_KEY, if paused { "true" } else { "false" }).await
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        let c = self.conn().await?;
        put_setting(&c, "space_probe", &uuid::Uuid::new_v4().to_string()).await
    }

    async fn added_backends(&self) -> Result<Vec<AddedBackend>, StoreError> {
        let c = self.conn().await?;
        Ok(c.q(
            "SELECT id, url, enabled, draining FROM backends ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(AddedBackend {
                id: r.try_get(0)?,
                url: r.try_get(1)?,
                enabled: r.try_get(2)?,
                draining: r.try_get(3)?,
            })
        })
        .collect::<PgResult<_>>()?)
    }

    async fn add_backend(&self, url: String, now: i64) -> Result<Option<i64>, StoreError> {
        let c = self.conn().await?;
        Ok(c.q_opt(
            "INSERT INTO backends (url, created_at) VALUES ($1, $2) \
             ON CONFLICT (url) DO NOTHING RETURNING id",
            &[&url, &now],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()?)
    }

    async fn remove_backend(&self, id: i64) -> Result<(), StoreError> {
        let c = self.conn().await?;
        c.x("DELETE FROM backends WHERE id = $1", &[&id]).await?;
        Ok(())
    }

    async fn set_backend_admin(
        &self,
        id: i64,
        enabled: bool,
        draining: bool,
    ) -> Result<(), StoreError> {
        let c = self.conn().await?;
        c.x(
            "UPDATE backends SET enabled = $2, draining = $3 WHERE id = $1",
            &[&id, &enabled, &draining],
        )
        .await?;
        Ok(())
    }

    async fn ensure_backend(&self, url: String, now: i64) -> Result<i64, StoreError> {
        let c = self.conn().await?;
        // Another host may store the same URL at the same time (then its row is read), or
        // remove it between the two statements (then it is stored again).
        for _ in 0..3 {
            let added = c
                .q_opt(
                    "INSERT INTO backends (url, created_at) VALUES ($1, $2) \
                     ON CONFLICT (url) DO NOTHING RETURNING id",
                    &[&url, &now],
                )
                .await?;
            let known = match added {
                Some(r) => Some(r),
                None => {
                    c.q_opt("SELECT id FROM backends WHERE url = $1", &[&url])
                        .await?
                }
            };
            if let Some(r) = known {
                return Ok(r.try_get(0)?);
            }
        }
        Err(StoreError::Conflict(
            "the backend was removed while it was being added".into(),
        ))
    }

    async fn drive_backends(&self, ids: Vec<i64>) -> Result<Vec<i64>, StoreError> {
        let lease_ms = self.lease_ms();
        let c = self.conn().await?;
        // One statement: a free row is taken by exactly one host (the second waits for the
        // first's row lock, then finds the row held and leaves it).
        c.q(
            "WITH driven AS (\
               UPDATE backends SET driver = $1, \
                 driver_until = now() + make_interval(secs => $3::bigint / 1000.0) \
               WHERE id = ANY($2) AND (driver IS NULL OR driver = $1 \
                 OR driver_until IS NULL OR driver_until < now()) \
               RETURNING id) \
             SELECT id FROM driven ORDER BY id",
            &[&self.owner, &ids, &lease_ms],
        )
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }

    async fn release_backends(&self, ids: Vec<i64>) -> Result<(), StoreError> {
        let c = self.conn().await?;
        c.x(
            "UPDATE backends SET driver = NULL, driver_until = NULL \
             WHERE id = ANY($2) AND driver = $1",
            &[&self.owner, &ids],
        )
        .await?;
        Ok(())
    }

    async fn backend_drivers(&self) -> Result<Vec<BackendDriver>, StoreError> {
        let c = self.conn().await?;
        c.q(
            "SELECT id, driver, \
               ceil(extract(epoch FROM driver_until - now()) * 1000)::bigint \
             FROM backends ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            let id: i64 = r.try_get(0)?;
            let driver: Option<String> = r.try_get(1)?;
            let left: Option<i64> = r.try_get(2)?;
            Ok(match (driver, left) {
                (Some(d), Some(ms)) if ms > 0 => (id, Some(d), Some(ms)),
                _ => (id, None, None),
            })
        })
        .collect()
    }

    async fn store_backend_figures(&self, figures: Vec<(i64, String)>) -> Result<(), StoreError> {
        if figures.is_empty() {
            return Ok(());
        }
        let (ids, texts): (Vec<i64>, Vec<String>) = figures.into_iter().unzip();
        let c = self.conn().await?;
        // Fenced by the lease: a host that lost it (or never had it) writes nothing.
        c.x(
            "UPDATE backends AS b SET figures = f.figures::jsonb, figures_at = now() \
             FROM unnest($2::bigint[], $3::text[]) AS f(id, figures) \
             WHERE b.id = f.id AND b.driver = $1 AND b.driver_until > now()",
            &[&self.owner, &ids, &texts],
        )
        .await?;
        Ok(())
    }

    async fn backend_figures(&self) -> Result<Vec<(i64, String)>, StoreError> {
        let c = self.conn().await?;
        c.q(
            "SELECT id, figures::text FROM backends WHERE figures IS NOT NULL ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
    }

    async fn insert_events(
        &self,
        events: Vec<(String, String)>,
        now: i64,
    ) -> Result<Vec<u64>, StoreError> {
        // One statement (`append_events`, migration 0004): one appender at a time, so ids
        // become visible in the order they were handed out; a light commit, as SQLite's
        // event log.
        let (names, datas): (Vec<String>, Vec<String>) = events.into_iter().unzip();
        let c = self.conn().await?;
        let ids: Vec<i64> = c
            .q1(
                "SELECT append_events($1, $2, $3, $4, $5, $6)",
                &[
                    &locks::EVENTS,
                    &EVENTS_KEPT,
                    &EVENTS_CHANNEL,
                    &names,
                    &datas,
                    &now,
                ],
            )
            .await?
            .try_get(0)?;
        Ok(ids.into_iter().map(|id| id.max(0) as u64).collect())
    }

    async fn replay(&self, after: u64) -> Result<Replay, StoreError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        in_snapshot!(self, tx => {
            let b = tx.q1("SELECT min(id), max(id) FROM events", &[]).await?;
            let (oldest, newest): (Option<i64>, Option<i64>) = (b.try_get(0)?, b.try_get(1)?);
            let rows = events_after(&tx, after).await?;
            Replay {
                oldest: oldest.map(|v| v.max(0) as u64),
                newest: newest.unwrap_or(0).max(0) as u64,
                rows,
            }
        })
    }

    async fn events_after(&self, after: u64) -> Result<Vec<(u64, String, String)>, StoreError> {
        let c = self.conn().await?;
        events_after(&c, i64::try_from(after).unwrap_or(i64::MAX)).await
    }

    async fn all_deliveries(&self, limit: i64) -> Result<Vec<Delivery>, StoreError> {
        let c = self.conn().await?;
        c.q(
            "SELECT id, delivery_id, task_id, url, status, files, attempts, created_at, next_attempt_at \
             FROM callback_outbox ORDER BY id LIMIT $1",
            &[&limit],
        )
        .await?
        .iter()
        .map(|r| {
            let files: String = r.try_get(5)?;
            Ok(Delivery {
                id: r.try_get(0)?,
                delivery_id: r.try_get(1)?,
                task_id: r.try_get(2)?,
                url: r.try_get(3)?,
                status: r.try_get(4)?,
                files: serde_json::from_str(&files).unwrap_or_default(),
                attempts: u32::try_from(r.try_get::<_, i32>(6)?).unwrap_or(0),
                created_at: r.try_get(7)?,
                next_attempt_at: r.try_get(8)?,
            })
        })
        .collect()
    }

    async fn next_delivery_at(&self) -> Result<Option<i64>, StoreError> {
        let c = self.conn().await?;
        Ok(
            c.q1("SELECT min(next_attempt_at) FROM callback_outbox", &[])
                .await?
                .try_get(0)?,
        )
    }

    async fn delivery_done(&self, id: i64) -> Result<(), StoreError> {
        let c = self.conn().await?;
        c.x("DELETE FROM callback_outbox WHERE id = $1", &[&id])
            .await?;
        Ok(())
    }

    async fn delivery_retry(&self, id: i64, next_at: i64, error: String) -> Result<(), StoreError> {
        let c = self.conn().await?;
        c.x(
            "UPDATE callback_outbox SET attempts = attempts + 1, next_attempt_at = $2, \
             last_error = $3 WHERE id = $1",
            &[&id, &next_at, &error],
        )
        .await?;
        Ok(())
    }

    async fn subscribe(&self) -> Result<Option<Receiver<Notice>>, StoreError> {
        Ok(Some(listen::subscribe(self.clone()).await?))
    }

    async fn publish_live(&self, name: String, data: String) -> Result<(), StoreError> {
        if let Some(payload) = listen::inline_payload(&self.owner, &name, &data) {
            let c = self.conn().await?;
            c.x("SELECT pg_notify($1, $2)", &[&LIVE_CHANNEL, &payload])
                .await?;
            return Ok(());
        }
        in_tx!(self, tx => {
            tx.batch_execute("SET LOCAL synchronous_commit = off").await?;
            let id: i64 = tx
                .q1(
                    "INSERT INTO live_events (origin, name, data) VALUES ($1, $2, $3) RETURNING id",
                    &[&self.owner, &name, &data],
                )
                .await?
                .try_get(0)?;
            let payload = listen::row_payload(&self.owner, &name, id);
            tx.x("SELECT pg_notify($1, $2)", &[&LIVE_CHANNEL, &payload])
                .await?;
            tx.x(
                "DELETE FROM live_events WHERE created_at < now() - interval '60 seconds'",
                &[],
            )
            .await?;
        })
    }
}

impl PgStore {
    /// The data of a large live event, while it is kept.
    pub(super) async fn live_row(&self, id: i64) -> PgResult<Option<String>> {
        let c = self.conn().await?;
        Ok(
            c.q_opt("SELECT data FROM live_events WHERE id = $1", &[&id])
                .await?
                .map(|r| r.try_get(0))
                .transpose()?,
        )
    }
}
