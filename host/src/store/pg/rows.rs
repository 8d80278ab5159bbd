//! Reading task rows on PostgreSQL: the columns of a listing row (the request without its
//! image fields, stripped inside the database by an expression generated from
//! [`images::IMAGE_FIELDS`]) and of a full row, their mapping to [`TaskRow`], the images of
//! rows, lifecycles and the ranks at the head and the tail.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use deadpool_postgres::GenericClient;
use scheduler_api::{TaskStatus, TaskType};
use serde_json::{Map, Value};
use tokio_postgres::Row;

use super::Cached;

use super::PgResult;
use crate::model::images;
use crate::model::{ImageRow, Lifecycle, TaskRow};
use crate::store::StoreError;

const COLS: &str = "id, type, status, name, {request}, {snapshot}, page_snapshot IS NOT NULL, \
    checkpoint, vae, callback_url, rank, force_run, bookmarked, attempts, backend, error, {result}, \
    created_at, updated_at, started_at, finished_at, run_next, next_run_at, seq, pinned, overtakes, \
    overtaken_at, group_id, fence, {size}, stop_requested";

/// One step of an image field's path.
enum Node {
    /// The key goes as a whole.
    Remove,
    /// An object whose keys are stripped.
    Object(BTreeMap<String, Node>),
    /// A list whose object elements are stripped.
    Each(BTreeMap<String, Node>),
}

fn insert(tree: &mut BTreeMap<String, Node>, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let (key, each) = match first.strip_suffix("[]") {
        Some(k) => (k, true),
        None => (*first, false),
    };
    if rest.is_empty() {
        // A final list of images goes as a whole, like a single image.
        tree.insert(key.to_owned(), Node::Remove);
        return;
    }
    let node = tree.entry(key.to_owned()).or_insert_with(|| {
        if each {
            Node::Each(BTreeMap::new())
        } else {
            Node::Object(BTreeMap::new())
        }
    });
    match node {
        Node::Remove => {}
        Node::Object(t) | Node::Each(t) => insert(t, rest),
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The expression that strips `tree`'s fields from the JSON object `e` (no other value is
/// changed; a field of the wrong shape is left alone).
fn strip_expr(e: &str, tree: &BTreeMap<String, Node>, depth: usize) -> String {
    let removes: Vec<String> = tree
        .iter()
        .filter(|(_, n)| matches!(n, Node::Remove))
        .map(|(k, _)| quote(k))
        .collect();
    let mut out = if removes.is_empty() {
        e.to_owned()
    } else {
        format!("({e} - ARRAY[{}]::text[])", removes.join(", "))
    };
    for (k, node) in tree {
        let field = format!("({e} -> {})", quote(k));
        let replaced = match node {
            Node::Remove => continue,
            Node::Object(t) => format!(
                "CASE WHEN jsonb_typeof({field}) = 'object' THEN jsonb_build_object({}, {}) \
                 ELSE '{{}}'::jsonb END",
                quote(k),
                strip_expr(&field, t, depth + 1)
            ),
            Node::Each(t) => {
                let (x, i) = (format!("x{depth}"), format!("i{depth}"));
                format!(
                    "CASE WHEN jsonb_typeof({field}) = 'array' THEN jsonb_build_object({}, \
                     (SELECT coalesce(jsonb_agg(CASE WHEN jsonb_typeof({x}) = 'object' THEN {} \
                     ELSE {x} END ORDER BY {i}), '[]'::jsonb) \
                     FROM jsonb_array_elements({field}) WITH ORDINALITY AS a{depth}({x}, {i}))) \
                     ELSE '{{}}'::jsonb END",
                    quote(k),
                    strip_expr(&x, t, depth + 1)
                )
            }
        };
        out = format!("({out} || {replaced})");
    }
    out
}

/// The request without its image fields, as an SQL expression over the `request` column
/// (a request with none of their top-level keys is taken as it is, without a copy).
pub(super) fn stripped_request() -> String {
    let mut tree = BTreeMap::new();
    for path in images::IMAGE_FIELDS {
        let parts: Vec<&str> = path.split('.').collect();
        insert(&mut tree, &parts);
    }
    let keys: Vec<String> = tree.keys().map(|k| quote(k)).collect();
    format!(
        "CASE WHEN request ?| ARRAY[{}]::text[] THEN {} ELSE request END",
        keys.join(", "),
        strip_expr("request", &tree, 0)
    )
}

/// Columns of a listing row: the request without its image fields, no snapshot, no `info`.
pub(super) static LIST_COLS: LazyLock<String> = LazyLock::new(|| {
    COLS.replace("{request}", &stripped_request())
        .replace("{snapshot}", "NULL::jsonb")
        .replace("{result}", "NULL::jsonb")
        .replace("{size}", "0::bigint")
});

/// Columns of a full row.
pub(super) static FULL_COLS: LazyLock<String> = LazyLock::new(|| {
    COLS.replace("{request}", "request")
        .replace("{snapshot}", "page_snapshot")
        .replace("{result}", "result")
        .replace(
            "{size}",
            "octet_length(request::text)::bigint + coalesce(octet_length(page_snapshot::text), 0)",
        )
});

/// The index of the claim's fence among the columns.
pub(super) const FENCE_COL: usize = 28;
/// The index of the size of the large columns as text (the request with its images and the
/// snapshot; 0 in listing rows): what a row costs in memory once read.
pub(super) const SIZE_COL: usize = 29;
/// The index of `stop_requested` among the columns.
pub(super) const STOP_COL: usize = 30;

fn u32_of(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

/// A row of [`LIST_COLS`] or [`FULL_COLS`] (images not loaded).
pub(super) fn map_row(r: &Row) -> PgResult<TaskRow> {
    let t: String = r.try_get(1)?;
    let s: String = r.try_get(2)?;
    let request: Value = r.try_get(4)?;
    Ok(TaskRow {
        id: r.try_get(0)?,
        seq: r.try_get(23)?,
        task_type: TaskType::parse(&t).unwrap_or(TaskType::Txt2img),
        life: Lifecycle {
            status: TaskStatus::parse(&s).unwrap_or(TaskStatus::Failed),
            attempts: u32_of(r.try_get(13)?),
            backend: r.try_get(14)?,
            error: r.try_get(15)?,
            started_at: r.try_get(19)?,
            finished_at: r.try_get(20)?,
            run_next: r.try_get(21)?,
            force_run: r.try_get(11)?,
            next_run_at: r.try_get(22)?,
            fence: r.try_get(FENCE_COL)?,
            stop_requested: r.try_get(STOP_COL)?,
        },
        name: r.try_get(3)?,
        request: match request {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        page_snapshot: r.try_get(5)?,
        has_page_snapshot: r.try_get(6)?,
        checkpoint: r.try_get(7)?,
        vae: r.try_get(8)?,
        callback_url: r.try_get(9)?,
        rank: r.try_get(10)?,
        pinned: r.try_get(24)?,
        overtakes: u32_of(r.try_get(25)?),
        overtaken_at: r.try_get(26)?,
        bookmarked: r.try_get(12)?,
        info: r.try_get(16)?,
        created_at: r.try_get(17)?,
        updated_at: r.try_get(18)?,
        group_id: r.try_get(27)?,
        images: Vec::new(),
    })
}

/// Loads the result images of `rows` (one query for all of them).
pub(super) async fn load_images(c: &impl GenericClient, rows: &mut [TaskRow]) -> PgResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let found = c
        .q(
            "SELECT task_id, idx, file_name, infotext, format FROM result_images \
             WHERE task_id = ANY($1) ORDER BY task_id, idx",
            &[&ids],
        )
        .await?;
    let mut by_id: std::collections::HashMap<String, Vec<ImageRow>> = Default::default();
    for r in found {
        by_id.entry(r.try_get(0)?).or_default().push(ImageRow {
            index: u32_of(r.try_get(1)?),
            file_name: r.try_get(2)?,
            infotext: r.try_get(3)?,
            format: r.try_get(4)?,
        });
    }
    for row in rows.iter_mut() {
        row.images = by_id.remove(&row.id).unwrap_or_default();
    }
    Ok(())
}

/// Rows of a query over [`LIST_COLS`] or [`FULL_COLS`], with their images.
pub(super) async fn rows_of(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> PgResult<Vec<TaskRow>> {
    let found = c.q(sql, params).await?;
    let mut rows = found.iter().map(map_row).collect::<PgResult<Vec<_>>>()?;
    load_images(c, &mut rows).await?;
    Ok(rows)
}

/// One task (`full`: request with images, snapshot, `info`).
pub(super) async fn get_task(
    c: &impl GenericClient,
    id: &str,
    full: bool,
) -> PgResult<Option<TaskRow>> {
    let cols: &str = if full { &FULL_COLS } else { &LIST_COLS };
    let mut rows = rows_of(
        c,
        &format!("SELECT {cols} FROM tasks WHERE id = $1"),
        &[&id],
    )
    .await?;
    Ok(rows.pop())
}

/// One task, or [`StoreError::NotFound`].
pub(super) async fn require(c: &impl GenericClient, id: &str, full: bool) -> PgResult<TaskRow> {
    get_task(c, id, full).await?.ok_or(StoreError::NotFound)
}

/// The smallest rank among pending tasks.
pub(super) async fn first_pending_rank(c: &impl GenericClient) -> PgResult<Option<i64>> {
    Ok(
        c.q1("SELECT min(rank) FROM tasks WHERE status = 'pending'", &[])
            .await?
            .try_get(0)?,
    )
}

/// The largest rank among pending tasks.
pub(super) async fn last_rank(c: &impl GenericClient) -> PgResult<Option<i64>> {
    Ok(
        c.q1("SELECT max(rank) FROM tasks WHERE status = 'pending'", &[])
            .await?
            .try_get(0)?,
    )
}

/// A task's lifecycle (with its claim fence), name and callback URL, its row locked for the
/// transaction.
pub(super) struct Locked {
    /// The lifecycle columns.
    pub life: Lifecycle,
    /// Its name.
    pub name: Option<String>,
    /// Its callback URL.
    pub callback_url: Option<String>,
}

/// Reads and locks a task's lifecycle (the decision is made on what no one else can change
/// before the write).
pub(super) async fn lock_lifecycle(c: &impl GenericClient, id: &str) -> PgResult<Locked> {
    let r = c
        .q_opt(
            &format!("SELECT {LOCKED_COLS} FROM tasks WHERE id = $1 FOR UPDATE"),
            &[&id],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    locked_of(&r)
}

/// The columns of a [`Locked`] (first in a row [`locked_of`] reads).
pub(super) const LOCKED_COLS: &str = "status, attempts, backend, error, started_at, finished_at, \
     run_next, force_run, name, callback_url, next_run_at, fence, stop_requested";

/// How many columns [`LOCKED_COLS`] names (the index of the first column after them).
pub(super) const LOCKED_LEN: usize = 13;

/// A [`Locked`] from a row starting with [`LOCKED_COLS`].
pub(super) fn locked_of(r: &Row) -> PgResult<Locked> {
    let s: String = r.try_get(0)?;
    Ok(Locked {
        life: Lifecycle {
            status: TaskStatus::parse(&s).unwrap_or(TaskStatus::Failed),
            attempts: u32_of(r.try_get(1)?),
            backend: r.try_get(2)?,
            error: r.try_get(3)?,
            started_at: r.try_get(4)?,
            finished_at: r.try_get(5)?,
            run_next: r.try_get(6)?,
            force_run: r.try_get(7)?,
            next_run_at: r.try_get(10)?,
            fence: r.try_get(11)?,
            stop_requested: r.try_get(12)?,
        },
        name: r.try_get(8)?,
        callback_url: r.try_get(9)?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn locked_len_counts_the_locked_columns() {
        assert_eq!(super::LOCKED_COLS.split(',').count(), super::LOCKED_LEN);
    }
}
