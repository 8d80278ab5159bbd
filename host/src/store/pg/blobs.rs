//! Result files in PostgreSQL: each file (an image, its thumbnail; `name` as the file would
//! be named in the results folder) is a run of `bytea` chunks of at most [`CHUNK`] bytes in
//! `result_blobs`, deleted with its task (a foreign key). Written from a stream in one
//! transaction (a reader sees the old file or the new one, never half of it), read back one
//! chunk per query, so neither side ever holds more than a chunk, whatever the file's size.
//!
//! Why chunked rows and not large objects: rows go with their task (`ON DELETE CASCADE`, no
//! orphaned large objects to collect), need no privileges beyond the tables', are read in
//! ordinary statements from any pooled connection (a large object must be read inside one
//! transaction held open for the whole download), and backups and replicas treat them like
//! any other row.
//!
//! A run's images are first stored under **staged** names (`run<fence>/<name>`,
//! [`staged_name`]): its finish, in the transaction that writes the task's result rows
//! (checked against the claim's fence), drops the task's earlier files (an earlier attempt's
//! images and thumbnails) and renames the staged ones (`settle_in`). So rows and bytes
//! change together, a host that lost its claim can never overwrite or delete the files of the
//! claim that replaced it, and a run that is not written leaves only staged files, which
//! [`PgStore::discard_staged`] or the sweep ([`PgStore::sweep_blobs`]) collect. A final name
//! never contains `/`; a staged one always does.

use std::collections::HashMap;

use bytes::Bytes;
use deadpool_postgres::Transaction;
use futures::{Stream, StreamExt};

use super::{Cached, PgResult, PgStore};
use crate::model::ImageRow;

/// The largest chunk (256 KiB: a PNG of a few MB is a dozen rows).
pub const CHUNK: usize = 256 * 1024;

/// The prefix of the names a run under claim `fence` stages its files under.
pub fn staged_prefix(fence: i64) -> String {
    format!("run{fence}/")
}

/// The name file `name` of a run under claim `fence` is stored under until its finish is
/// written.
pub fn staged_name(fence: i64, name: &str) -> String {
    format!("{}{name}", staged_prefix(fence))
}

/// In the transaction that writes a task's result rows: makes them `images` and its files
/// match them (`settle_results`, migration 0004, one statement). With `promote` (a finish
/// that records images, under that claim), the task's files become the ones that claim
/// staged; every other file no row points at goes (an earlier attempt's images and
/// thumbnails, other claims' staged files), except the files staged by `keep` (the claim the
/// task runs under after this change).
pub(super) async fn settle_in(
    tx: &Transaction<'_>,
    task_id: &str,
    images: &[ImageRow],
    promote: Option<i64>,
    keep: Option<i64>,
) -> PgResult<()> {
    let idx: Vec<i32> = images
        .iter()
        .map(|i| i32::try_from(i.index).unwrap_or(i32::MAX))
        .collect();
    let names: Vec<&str> = images.iter().map(|i| i.file_name.as_str()).collect();
    let infotexts: Vec<&str> = images.iter().map(|i| i.infotext.as_str()).collect();
    let formats: Vec<&str> = images.iter().map(|i| i.format.as_str()).collect();
    tx.x(
        "SELECT settle_results($1, $2, $3, $4, $5, $6, $7)",
        &[
            &task_id,
            &idx,
            &names,
            &infotexts,
            &formats,
            &promote.map(staged_prefix),
            &keep.map(staged_prefix),
        ],
    )
    .await?;
    Ok(())
}

impl PgStore {
    /// Stores the bytes of `data` as file `name` of task `task_id` (replacing a file of that
    /// name), a chunk at a time, in one transaction; returns its length. The task must exist.
    pub async fn put_blob<S>(&self, task_id: &str, name: &str, mut data: S) -> PgResult<u64>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Unpin + Send,
    {
        let mut obj = self.conn().await?;
        let tx = obj.transaction().await?;
        tx.x(
            "DELETE FROM result_blobs WHERE task_id = $1 AND name = $2",
            &[&task_id, &name],
        )
        .await?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO result_blobs (task_id, name, chunk, data) VALUES ($1, $2, $3, $4)",
            )
            .await?;
        let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
        let mut chunk: i32 = 0;
        let mut total: u64 = 0;
        loop {
            let piece = data.next().await.transpose().map_err(|e| {
                crate::store::StoreError::Invalid(format!("reading the file to store: {e}"))
            })?;
            let end = piece.is_none();
            let mut piece = piece.unwrap_or_default();
            while !piece.is_empty() {
                let take = (CHUNK - buf.len()).min(piece.len());
                buf.extend_from_slice(&piece.split_to(take));
                if buf.len() == CHUNK {
                    tx.execute(&insert, &[&task_id, &name, &chunk, &buf.as_slice()])
                        .await?;
                    total += buf.len() as u64;
                    chunk += 1;
                    buf.clear();
                }
            }
            if end {
                break;
            }
        }
        if !buf.is_empty() || chunk == 0 {
            tx.execute(&insert, &[&task_id, &name, &chunk, &buf.as_slice()])
                .await?;
            total += buf.len() as u64;
        }
        tx.commit().await?;
        Ok(total)
    }

    /// Stores `data` as file `name` of task `task_id` (replacing a file of that name), as
    /// [`PgStore::put_blob`] does; a file of one chunk (a thumbnail, a generated image) in one
    /// statement. Returns its length.
    pub async fn put_whole_blob(&self, task_id: &str, name: &str, data: Bytes) -> PgResult<u64> {
        if data.len() > CHUNK {
            return self
                .put_blob(task_id, name, futures::stream::iter([Ok(data)]))
                .await;
        }
        let c = self.conn().await?;
        // One statement is one transaction: the chunk written, the chunks after it of a
        // longer file of that name gone, or neither.
        c.x(
            "WITH put AS (INSERT INTO result_blobs (task_id, name, chunk, data) \
                 VALUES ($1, $2, 0, $3) \
                 ON CONFLICT (task_id, name, chunk) DO UPDATE SET data = excluded.data) \
             DELETE FROM result_blobs WHERE task_id = $1 AND name = $2 AND chunk > 0",
            &[&task_id, &name, &data.as_ref()],
        )
        .await?;
        Ok(data.len() as u64)
    }

    /// The whole of a stored file in one query (for a caller that needs it whole anyway: a
    /// decode, a data URL), `None` when there is none.
    pub async fn blob_whole(&self, task_id: &str, name: &str) -> PgResult<Option<Vec<u8>>> {
        let c = self.conn().await?;
        let rows = c
            .q(
                "SELECT data FROM result_blobs WHERE task_id = $1 AND name = $2 ORDER BY chunk",
                &[&task_id, &name],
            )
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::new();
        for r in rows {
            out.extend_from_slice(r.try_get::<_, &[u8]>(0)?);
        }
        Ok(Some(out))
    }

    /// The length of a stored file, `None` when there is none.
    pub async fn blob_len(&self, task_id: &str, name: &str) -> PgResult<Option<u64>> {
        let c = self.conn().await?;
        let r = c
            .q1(
                "SELECT count(*), sum(octet_length(data))::bigint FROM result_blobs \
                 WHERE task_id = $1 AND name = $2",
                &[&task_id, &name],
            )
            .await?;
        let n: i64 = r.try_get(0)?;
        let len: Option<i64> = r.try_get(1)?;
        Ok((n > 0).then(|| len.unwrap_or(0).max(0) as u64))
    }

    /// The bytes of a stored file, a chunk at a time (one query per chunk, no connection
    /// held between them); empty when there is no such file. With `len` (from
    /// [`PgStore::blob_len`]) it ends once that many bytes came, without asking for a chunk
    /// after the last.
    pub fn blob_chunks(
        &self,
        task_id: &str,
        name: &str,
        len: Option<u64>,
    ) -> impl Stream<Item = PgResult<Bytes>> + Send + 'static {
        let state = (self.clone(), task_id.to_owned(), name.to_owned(), 0i32, len);
        futures::stream::unfold(Some(state), |state| async move {
            let (store, task_id, name, chunk, left) = state?;
            let next = async {
                let c = store.conn().await?;
                let row = c
                    .q_opt(
                        "SELECT data FROM result_blobs WHERE task_id = $1 AND name = $2 AND chunk = $3",
                        &[&task_id, &name, &chunk],
                    )
                    .await?;
                PgResult::Ok(row.map(|r| r.try_get::<_, Vec<u8>>(0)).transpose()?)
            }
            .await;
            match next {
                Ok(Some(data)) => {
                    let left = left.map(|l| l.saturating_sub(data.len() as u64));
                    let next = (left != Some(0)).then_some((store, task_id, name, chunk + 1, left));
                    Some((Ok(Bytes::from(data)), next))
                }
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    /// The names of a task's stored files.
    pub async fn blob_names(&self, task_id: &str) -> PgResult<Vec<String>> {
        let c = self.conn().await?;
        Ok(c.q(
            "SELECT DISTINCT name FROM result_blobs WHERE task_id = $1 ORDER BY name",
            &[&task_id],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?)
    }

    /// Deletes a task's stored files (all, or the one named); returns how many chunks went.
    pub async fn delete_blobs(&self, task_id: &str, name: Option<&str>) -> PgResult<u64> {
        let c = self.conn().await?;
        c.x(
            "DELETE FROM result_blobs WHERE task_id = $1 AND ($2::text IS NULL OR name = $2)",
            &[&task_id, &name],
        )
        .await
    }

    /// Deletes the files a run under claim `fence` staged (its finish was not written or not
    /// kept); the task's own files and other claims' stay. Returns how many chunks went.
    pub async fn discard_staged(&self, task_id: &str, fence: i64) -> PgResult<u64> {
        let c = self.conn().await?;
        c.x(
            "DELETE FROM result_blobs WHERE task_id = $1 AND starts_with(name, $2)",
            &[&task_id, &staged_prefix(fence)],
        )
        .await
    }

    /// Deletes the files no row points at, of these tasks (`None`: of every task): staged
    /// files of a claim the task no longer runs under, and files that are neither a result
    /// image of the task nor its thumbnail. Files of deleted tasks went with them (a foreign
    /// key), so this finds only what a crash between staging and finish, or a thumbnail made
    /// while its image went, left. Never touches what a finish in flight writes (staged by
    /// the claim the task runs under). Two anti-joins over the chunk rows' small heap tuples
    /// (the bytes live out of line); returns how many files went.
    pub async fn sweep_blobs(&self, task_ids: Option<&[String]>) -> PgResult<u64> {
        let c = self.conn().await?;
        let ids: Option<Vec<String>> = task_ids.map(<[String]>::to_vec);
        let staged = c
            .q1(
                "WITH gone AS (DELETE FROM result_blobs b \
                 WHERE ($1::text[] IS NULL OR b.task_id = ANY($1)) AND strpos(b.name, '/') > 0 \
                 AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = b.task_id \
                     AND t.status = 'running' AND starts_with(b.name, 'run' || t.fence || '/')) \
                 RETURNING b.chunk) SELECT count(*) FROM gone WHERE chunk = 0",
                &[&ids],
            )
            .await?
            .try_get::<_, i64>(0)?;
        let unreferenced = c
            .q1(
                "WITH gone AS (DELETE FROM result_blobs b \
                 WHERE ($1::text[] IS NULL OR b.task_id = ANY($1)) AND strpos(b.name, '/') = 0 \
                 AND NOT EXISTS (SELECT 1 FROM result_images i WHERE i.task_id = b.task_id \
                     AND (i.file_name = b.name \
                          OR split_part(i.file_name, '.', 1) || '.thumb.jpg' = b.name)) \
                 RETURNING b.chunk) SELECT count(*) FROM gone WHERE chunk = 0",
                &[&ids],
            )
            .await?
            .try_get::<_, i64>(0)?;
        Ok((staged + unreferenced).max(0) as u64)
    }

    /// When each of these tasks finished (ms; tasks that never did are left out): the
    /// modification time of their files, which PostgreSQL does not keep.
    pub async fn finished_at_of(&self, ids: &[String]) -> PgResult<HashMap<String, i64>> {
        let c = self.conn().await?;
        let rows = c
            .q(
                "SELECT id, finished_at FROM tasks WHERE id = ANY($1) AND finished_at IS NOT NULL",
                &[&ids],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }
}
