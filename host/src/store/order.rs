//! The order of pending tasks: moves, "run now", ranks at the head and the tail. Legality
//! (pending only) and what they do to the lifecycle (the run-next group, "run now" while
//! paused, the backoff) come from the transition function and are written by
//! `transitions`; here only the order columns (`rank`, `pinned`) are.

use rusqlite::{Connection, OptionalExtension, params};
use scheduler_api::{MoveTarget, TaskStatus};

use super::StoreError;
use super::rows::{first_pending_rank, last_rank};
use super::status;
use super::transitions::{allow, reorder};
use crate::model::rank::{rank_at_end, rank_at_head, rank_between, spread};
use crate::model::transition::Event;

/// The rank just before pending task `over` (`moving` excluded): the middle of the gap
/// before it, or, when that gap is used up, a slot made by spreading out the few tasks just
/// before `over` (16, then 256, … rows: a local renumbering, never the whole queue).
fn rank_before(tx: &Connection, over: &str, moving: &str) -> Result<i64, StoreError> {
    let (over_rank, over_seq): (i64, i64) =
        tx.query_row("SELECT rank, seq FROM tasks WHERE id = ?1", [over], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let before_sql = format!(
        "SELECT seq, rank FROM tasks WHERE {} AND (rank, seq) < (?1, ?2) AND id != ?3 \
         ORDER BY rank DESC, seq DESC LIMIT ?4",
        status::is(TaskStatus::Pending)
    );
    let neighbours = |n: i64| -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(tx
            .prepare_cached(&before_sql)?
            .query_map(params![over_rank, over_seq, moving, n], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?)
    };
    let before = neighbours(1)?.first().map(|&(_, r)| r);
    if let Some(r) = rank_between(before, over_rank) {
        return Ok(r);
    }
    let mut n = 16;
    loop {
        let mut rows = neighbours(n + 1)?;
        let lower = if rows.len() as i64 > n {
            rows.pop().map(|(_, r)| r)
        } else {
            None
        };
        rows.reverse();
        if let Some(ranks) = spread(lower, over_rank, rows.len()) {
            let mut stmt = tx.prepare_cached("UPDATE tasks SET rank = ?2 WHERE seq = ?1")?;
            for ((seq, _), r) in rows.iter().zip(&ranks) {
                stmt.execute(params![seq, r])?;
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

/// Moves a pending task to the top, the bottom, or just before another pending task.
pub fn move_task(
    conn: &mut Connection,
    id: &str,
    target: &MoveTarget,
    now: i64,
) -> Result<(), StoreError> {
    let tx = conn.savepoint()?;
    move_in(&tx, id, target, now)?;
    tx.commit()?;
    Ok(())
}

/// The move of [`move_task`], inside the caller's transaction (bulk moves).
pub(super) fn move_in(
    tx: &Connection,
    id: &str,
    target: &MoveTarget,
    now: i64,
) -> Result<(), StoreError> {
    allow(tx, id, &Event::Move, now)?;
    // "Move to top" goes before the policy's choices, and so does a task dragged in among
    // tasks that go first (before a pinned or run-now task); any other move leaves the
    // order to the policy.
    let (rank, pinned) = match target {
        MoveTarget::Top => (rank_at_head(first_pending_rank(tx)?), true),
        MoveTarget::Bottom => (rank_at_end(last_rank(tx)?), false),
        MoveTarget::Before(over) if over == id => return Ok(()),
        MoveTarget::Before(over) => {
            allow(tx, over, &Event::Move, now).map_err(|e| match e {
                StoreError::Refused(r) => {
                    StoreError::Conflict(format!("Task {over} is {}", r.status().as_str()))
                }
                other => other,
            })?;
            let first: bool = tx.query_row(
                "SELECT pinned OR run_next IS NOT NULL FROM tasks WHERE id = ?1",
                [over],
                |r| r.get(0),
            )?;
            (rank_before(tx, over, id)?, first)
        }
    };
    reorder(tx, id, &Event::Move, now)?;
    tx.execute(
        "UPDATE tasks SET rank = ?2, pinned = ?3 WHERE id = ?1",
        params![id, rank, pinned],
    )?;
    Ok(())
}

/// "Run now": the task joins the run-next group (after tasks already in it, before every
/// other pending task); while the queue is paused (read in the same transaction) it runs
/// despite the pause. Returns how many backends run a task now.
pub fn run_now(conn: &mut Connection, id: &str, now: i64) -> Result<usize, StoreError> {
    let tx = conn.savepoint()?;
    let paused = super::settings::is_paused(&tx)?;
    allow(
        &tx,
        id,
        &Event::RunNow {
            group_seq: 1,
            paused,
        },
        now,
    )?;
    let group_last: Option<(i64, i64)> = tx
        .query_row(
            &format!(
                "SELECT rank, run_next FROM tasks WHERE {} AND run_next IS NOT NULL AND id != ?1 \
                 ORDER BY run_next DESC LIMIT 1",
                status::is(TaskStatus::Pending)
            ),
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (rank, seq) = match group_last {
        None => (rank_at_head(first_pending_rank(&tx)?), 1),
        Some((last_rank, last_seq)) => {
            let next: Option<String> = tx
                .query_row(
                    &format!(
                        "SELECT id FROM tasks WHERE {} AND rank > ?1 AND id != ?2 ORDER BY rank, seq LIMIT 1",
                        status::is(TaskStatus::Pending)
                    ),
                    params![last_rank, id],
                    |r| r.get(0),
                )
                .optional()?;
            let rank = match next {
                None => rank_at_end(Some(last_rank)),
                Some(next_id) => rank_before(&tx, &next_id, id)?,
            };
            (rank, last_seq + 1)
        }
    };
    reorder(
        &tx,
        id,
        &Event::RunNow {
            group_seq: seq,
            paused,
        },
        now,
    )?;
    tx.execute(
        "UPDATE tasks SET rank = ?2 WHERE id = ?1",
        params![id, rank],
    )?;
    let busy: i64 = tx.query_row(
        &format!(
            "SELECT COUNT(DISTINCT backend) FROM tasks WHERE {}",
            status::is(TaskStatus::Running)
        ),
        [],
        |r| r.get(0),
    )?;
    tx.commit()?;
    Ok(busy.max(0) as usize)
}
