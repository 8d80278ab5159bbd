//! Many tasks at once: resolving a selection (a list of ids, or a listing's filter minus
//! some ids) to task ids in the listing's order, the bulk changes over them (each one
//! transaction: the first refusal rolls everything back) and the tasks of a group (exports
//! and zips read the resolved ids in pages: `export.rs`).

use std::collections::HashSet;

use rusqlite::{Connection, params};
use scheduler_api::{ListName, MoveTarget, Selection, TaskStatus};

use super::StoreError;
use super::listing::history_cond;
use super::rows::{LIST_COLS, load_images, map_row, require};
use super::status;
use super::transitions::{Applied, apply_in};
use crate::model::TaskRow;
use crate::model::search::{Scope, fts_match};
use crate::model::transition::{Event, Policy};

/// The ids a selection names, in its listing's order (a list of ids keeps its own order).
/// An id that is not a task is [`StoreError::NotFound`]; duplicates count once.
pub fn resolve(conn: &Connection, sel: &Selection) -> Result<Vec<String>, StoreError> {
    let mut seen = HashSet::new();
    let Some(f) = &sel.filter else {
        let mut exists = conn.prepare_cached("SELECT 1 FROM tasks WHERE id = ?1")?;
        let mut out = Vec::with_capacity(sel.ids.len());
        for id in &sel.ids {
            if !exists.exists([id])? {
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
    let q = f.q.as_deref();
    let (sql, m) = match (
        f.list,
        q.and_then(|q| {
            fts_match(
                q,
                match f.list {
                    ListName::Queue => Scope::Queue,
                    ListName::History => Scope::History(filter),
                },
            )
        }),
    ) {
        (ListName::Queue, None) => (
            format!(
                "SELECT id FROM tasks WHERE {} ORDER BY rank, seq",
                status::is(TaskStatus::Pending)
            ),
            None,
        ),
        (ListName::Queue, Some(m)) => (
            format!(
                "SELECT t.id FROM tasks_fts JOIN tasks t ON t.seq = tasks_fts.rowid \
                 WHERE tasks_fts MATCH ?1 AND t.{} ORDER BY t.rank, t.seq",
                status::is(TaskStatus::Pending)
            ),
            Some(m),
        ),
        (ListName::History, None) => (
            format!(
                "SELECT id FROM tasks WHERE {} ORDER BY finished_at DESC, seq DESC",
                history_cond(filter)
            ),
            None,
        ),
        (ListName::History, Some(m)) => (
            "SELECT t.id FROM tasks_fts JOIN tasks t ON t.seq = tasks_fts.rowid \
             WHERE tasks_fts MATCH ?1 ORDER BY t.seq DESC"
                .to_owned(),
            Some(m),
        ),
    };
    let mut stmt = conn.prepare(&sql)?;
    let ids: Vec<String> = match &m {
        Some(m) => stmt
            .query_map([m], |r| r.get(0))?
            .collect::<Result<_, _>>()?,
        None => stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?,
    };
    Ok(ids
        .into_iter()
        .filter(|id| !except.contains(id.as_str()))
        .collect())
}

/// Deletes (or, for a running task, interrupts) each task as its one-task `DELETE` would:
/// every change decided by the transition function, all in one transaction. Returns each
/// task with its status before and what was decided.
pub fn delete(
    conn: &mut Connection,
    ids: &[String],
    policy: &Policy,
    now: i64,
) -> Result<Vec<(String, TaskStatus, Applied)>, StoreError> {
    let tx = conn.savepoint()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let before = require(&tx, id, false)?.status();
        let applied = apply_in(&tx, id, &Event::Delete, policy, now)?;
        out.push((id.clone(), before, applied));
    }
    tx.commit()?;
    Ok(out)
}

/// Copies of the tasks at the end of the queue, in order (`new_ids` pairs with `ids`). The
/// copies of one group's tasks form a new group together (requeueing a comparison sheet
/// makes a new sheet).
pub fn requeue(
    conn: &mut Connection,
    ids: &[String],
    new_ids: &[String],
    name: fn(Option<&str>) -> Option<String>,
    now: i64,
) -> Result<(), StoreError> {
    let tx = conn.savepoint()?;
    let mut groups: Vec<(String, String)> = Vec::new();
    for (id, new_id) in ids.iter().zip(new_ids) {
        let old = require(&tx, id, false)?.group_id;
        let group = old.map(|g| match groups.iter().find(|(o, _)| *o == g) {
            Some((_, n)) => n.clone(),
            None => {
                let n = uuid::Uuid::new_v4().to_string();
                groups.push((g, n.clone()));
                n
            }
        });
        super::tasks::insert_copy_in(&tx, id, new_id, name, group, now)?;
    }
    tx.commit()?;
    Ok(())
}

/// Sets or clears the bookmark of every task, in one transaction.
pub fn bookmark(
    conn: &mut Connection,
    ids: &[String],
    on: bool,
    now: i64,
) -> Result<(), StoreError> {
    let tx = conn.savepoint()?;
    let mut stmt =
        tx.prepare_cached("UPDATE tasks SET bookmarked = ?2, updated_at = ?3 WHERE id = ?1")?;
    for id in ids {
        if stmt.execute(params![id, on, now])? == 0 {
            return Err(StoreError::NotFound);
        }
    }
    drop(stmt);
    tx.commit()?;
    Ok(())
}

/// Moves pending tasks to the top or the bottom of the queue, keeping their order among
/// themselves; a task that is not pending refuses the whole move (409).
pub fn move_to(
    conn: &mut Connection,
    ids: &[String],
    top: bool,
    now: i64,
) -> Result<(), StoreError> {
    let tx = conn.savepoint()?;
    let (target, order): (MoveTarget, Box<dyn Iterator<Item = &String>>) = if top {
        (MoveTarget::Top, Box::new(ids.iter().rev()))
    } else {
        (MoveTarget::Bottom, Box::new(ids.iter()))
    };
    for id in order {
        super::order::move_in(&tx, id, &target, now)?;
    }
    tx.commit()?;
    Ok(())
}

/// The tasks of a group (listing columns, with their images), in the order they were
/// enqueued.
pub fn group_rows(conn: &Connection, group_id: &str) -> Result<Vec<TaskRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM tasks WHERE group_id = ?1 ORDER BY seq",
        *LIST_COLS
    ))?;
    let mut rows: Vec<TaskRow> = stmt
        .query_map([group_id], map_row)?
        .collect::<Result<_, _>>()?;
    load_images(conn, &mut rows)?;
    Ok(rows)
}
