//! The queue and history listings, the full-text search and the counts: every query here is
//! served by an index in the listing's order (or by the full-text index, limited there before
//! it joins the tasks table), so a page costs the same at 100 tasks and at 100,000.
//!
//! - Counts come from `task_counts`, kept by triggers (migration 0003), never from a scan.
//! - The queue: running tasks, then pending ones by `(rank, seq)` (index `tasks_by_status_rank`).
//! - The history: finished tasks by `(finished_at, seq)` descending (partial indexes
//!   `tasks_history`, `tasks_history_bookmarked`, and `tasks_by_status_finished` per status).
//! - Search: the FTS index holds the listing a task belongs to in its `tags` column, so the
//!   match, its page and its count are computed inside the index; results come in the order of
//!   creation (oldest first in the queue, newest first in the history).
//!
//! Offset paging stays for old clients; [`Cursor`]s page by key (the cost of a page does not
//! grow with its depth).

use rusqlite::{Connection, params};
use scheduler_api::{HistoryFilter, TaskStatus};

use super::StoreError;
use super::rows::{LIST_COLS, load_images, map_row};
use super::status;
use crate::model::TaskRow;
use crate::model::cursor::Cursor;
use crate::model::search::{Scope, fts_match};

/// Tasks per status (and bookmarked finished ones), from the counts the triggers keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Pending.
    pub pending: i64,
    /// Running.
    pub running: i64,
    /// Done.
    pub done: i64,
    /// Failed.
    pub failed: i64,
    /// Interrupted.
    pub interrupted: i64,
    /// Finished and bookmarked.
    pub bookmarked: i64,
}

impl Counts {
    /// Finished tasks matching a history filter.
    pub fn history(&self, filter: HistoryFilter) -> i64 {
        match filter {
            HistoryFilter::All => self.done + self.failed + self.interrupted,
            HistoryFilter::Bookmarked => self.bookmarked,
            HistoryFilter::Status(TaskStatus::Done) => self.done,
            HistoryFilter::Status(TaskStatus::Failed) => self.failed,
            HistoryFilter::Status(TaskStatus::Interrupted) => self.interrupted,
            HistoryFilter::Status(_) => 0,
        }
    }
}

/// The counts, O(1).
pub fn counts(conn: &Connection) -> Result<Counts, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT status, bookmarked, n FROM task_counts")?;
    let mut c = Counts::default();
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, bool>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (s, bookmarked, n) = row?;
        match TaskStatus::parse(&s) {
            Some(TaskStatus::Pending) => c.pending += n,
            Some(TaskStatus::Running) => c.running += n,
            Some(TaskStatus::Done) => c.done += n,
            Some(TaskStatus::Failed) => c.failed += n,
            Some(TaskStatus::Interrupted) => c.interrupted += n,
            None => {}
        }
        if bookmarked && TaskStatus::parse(&s).is_some_and(TaskStatus::is_finished) {
            c.bookmarked += n;
        }
    }
    Ok(c)
}

fn rows_of(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<TaskRow>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows: Vec<TaskRow> = stmt.query_map(args, map_row)?.collect::<Result<_, _>>()?;
    load_images(conn, &mut rows)?;
    Ok(rows)
}

/// The running tasks (listing columns), earliest started first.
pub fn running_rows(conn: &Connection) -> Result<Vec<TaskRow>, StoreError> {
    rows_of(
        conn,
        &format!(
            "SELECT {} FROM tasks WHERE {} ORDER BY started_at, seq",
            *LIST_COLS,
            status::is(TaskStatus::Running)
        ),
        [],
    )
}

/// The running tasks as `(id, backend)`, earliest started first: the one record of what
/// runs where.
pub fn running(conn: &Connection) -> Result<Vec<(String, Option<String>)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, backend FROM tasks WHERE {} ORDER BY started_at, seq",
        status::is(TaskStatus::Running)
    ))?;
    Ok(stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?)
}

/// Pending tasks (listing columns) in rank order: after `(rank, seq)` when given, skipping
/// `offset` of them.
pub fn pending_rows(
    conn: &Connection,
    after: Option<(i64, i64)>,
    limit: i64,
    offset: i64,
) -> Result<Vec<TaskRow>, StoreError> {
    let (rank, seq) = after.unwrap_or((i64::MIN, i64::MIN));
    rows_of(conn, &pending_sql(), params![rank, seq, limit, offset])
}

pub(super) fn pending_sql() -> String {
    format!(
        "SELECT {} FROM tasks WHERE {} AND (rank, seq) > (?1, ?2) ORDER BY rank, seq \
         LIMIT ?3 OFFSET ?4",
        *LIST_COLS,
        status::is(TaskStatus::Pending)
    )
}

pub(super) fn history_sql(filter: HistoryFilter) -> String {
    // The planner would rather sort the rows of an `IN` over three statuses: name the index.
    let index = match filter {
        HistoryFilter::All => "INDEXED BY tasks_history",
        HistoryFilter::Bookmarked => "INDEXED BY tasks_history_bookmarked",
        HistoryFilter::Status(_) => "INDEXED BY tasks_by_status_finished",
    };
    format!(
        "SELECT {} FROM tasks {index} WHERE {} AND (finished_at, seq) < (?1, ?2) \
         ORDER BY finished_at DESC, seq DESC LIMIT ?3 OFFSET ?4",
        *LIST_COLS,
        history_cond(filter)
    )
}

pub(super) fn search_sql(newest_first: bool) -> String {
    let (dir, cmp) = if newest_first {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    format!(
        "WITH hits AS MATERIALIZED (SELECT rowid AS seq FROM tasks_fts \
           WHERE tasks_fts MATCH ?1 AND rowid {cmp} ?2 ORDER BY rowid {dir} LIMIT ?3 OFFSET ?4) \
         SELECT {} FROM hits JOIN tasks USING (seq) ORDER BY seq {dir}",
        *LIST_COLS
    )
}

pub(super) fn pending_before_sql() -> String {
    format!(
        "SELECT COUNT(*) FROM tasks WHERE {} AND (rank, seq) < (?1, ?2)",
        status::is(TaskStatus::Pending)
    )
}

/// Running tasks first, then pending ones by rank (offset paging), with the total; with
/// `q`, the matches in the queue in the order of creation. The queue service shows the
/// look-ahead window in the policy's order instead; this is the plain rank order.
pub fn list_queue(
    conn: &Connection,
    q: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<TaskRow>, i64), StoreError> {
    if let Some(m) = q.and_then(|q| fts_match(q, Scope::Queue)) {
        return search(conn, &m, Scope::Queue, None, limit, offset);
    }
    let running = running_rows(conn)?;
    let total = running.len() as i64 + counts(conn)?.pending;
    let r = running.len() as i64;
    let mut rows: Vec<TaskRow> = running
        .into_iter()
        .skip(offset.max(0) as usize)
        .take(limit.max(0) as usize)
        .collect();
    let more = limit - rows.len() as i64;
    if more > 0 {
        rows.extend(pending_rows(conn, None, more, (offset - r).max(0))?);
    }
    Ok((rows, total))
}

pub(super) fn history_cond(filter: HistoryFilter) -> String {
    match filter {
        HistoryFilter::All => status::FINISHED.clone(),
        HistoryFilter::Bookmarked => format!("bookmarked = 1 AND {}", *status::FINISHED),
        HistoryFilter::Status(s) => status::is(s),
    }
}

/// One page of finished tasks, newest first (`finished_at`, then `seq`), with the total
/// for the filter. With `q`: the matches, newest created first.
pub fn list_history(
    conn: &Connection,
    filter: HistoryFilter,
    q: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<TaskRow>, i64), StoreError> {
    history_page(conn, filter, q, None, limit, offset)
}

/// [`list_history`] from a cursor (`Cursor::Finished` without `q`, `Cursor::Seq` with it)
/// or an offset.
pub fn history_page(
    conn: &Connection,
    filter: HistoryFilter,
    q: Option<&str>,
    cursor: Option<&Cursor>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<TaskRow>, i64), StoreError> {
    if let Some(m) = q.and_then(|q| fts_match(q, Scope::History(filter))) {
        let after = match cursor {
            Some(Cursor::Seq(s)) => Some(*s),
            _ => None,
        };
        return search(conn, &m, Scope::History(filter), after, limit, offset);
    }
    let (f, s) = match cursor {
        Some(Cursor::Finished { finished_at, seq }) => (*finished_at, *seq),
        _ => (i64::MAX, i64::MAX),
    };
    let rows = rows_of(conn, &history_sql(filter), params![f, s, limit, offset])?;
    Ok((rows, counts(conn)?.history(filter)))
}

/// One page of finished tasks by checkpoint title (tasks that take whatever is loaded
/// first), newest first within a checkpoint, after `after` (`checkpoint, finished_at, seq`
/// of the last task shown) or skipping `offset`, with the total for the filter.
pub fn history_by_checkpoint(
    conn: &Connection,
    filter: HistoryFilter,
    after: Option<(Option<&str>, i64, i64)>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<TaskRow>, i64), StoreError> {
    let keyset = if after.is_some() {
        " AND ((?1 IS NULL AND checkpoint IS NOT NULL) OR checkpoint > ?1 \
         OR (checkpoint IS ?1 AND (finished_at, seq) < (?2, ?3)))"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {} FROM tasks INDEXED BY tasks_history_by_checkpoint WHERE {} AND {}{keyset} \
         ORDER BY checkpoint, finished_at DESC, seq DESC LIMIT ?4 OFFSET ?5",
        *LIST_COLS,
        *status::FINISHED,
        history_cond(filter)
    );
    let (ck, f, s) = after.unwrap_or((None, 0, 0));
    let rows = rows_of(conn, &sql, params![ck, f, s, limit, offset])?;
    Ok((rows, counts(conn)?.history(filter)))
}

/// Full-text matches of `m` (built by [`fts_match`] for `scope`): the page is taken inside
/// the index (after `after_seq` when given), then joined; the total is counted there too.
pub fn search(
    conn: &Connection,
    m: &str,
    scope: Scope,
    after_seq: Option<i64>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<TaskRow>, i64), StoreError> {
    let newest_first = matches!(scope, Scope::History(_));
    let from = if newest_first {
        after_seq.unwrap_or(i64::MAX)
    } else {
        after_seq.unwrap_or(i64::MIN)
    };
    let rows = rows_of(
        conn,
        &search_sql(newest_first),
        params![m, from, limit, offset],
    )?;
    let total: i64 = conn
        .prepare_cached("SELECT count(*) FROM tasks_fts WHERE tasks_fts MATCH ?1")?
        .query_row([m], |r| r.get(0))?;
    Ok((rows, total))
}

/// How many pending tasks come before `(rank, seq)` in rank order (an index range count).
pub fn pending_before(conn: &Connection, rank: i64, seq: i64) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(&pending_before_sql())?
        .query_row(params![rank, seq], |r| r.get(0))?)
}
