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

use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::{Cached, PgResult, PgStore};

/// The largest chunk (256 KiB: a PNG of a few MB is a dozen rows).
pub const CHUNK: usize = 256 * 1024;

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
    /// held between them); empty when there is no such file.
    pub fn blob_chunks(
        &self,
        task_id: &str,
        name: &str,
    ) -> impl Stream<Item = PgResult<Bytes>> + Send + 'static {
        let state = (self.clone(), task_id.to_owned(), name.to_owned(), 0i32);
        futures::stream::unfold(Some(state), |state| async move {
            let (store, task_id, name, chunk) = state?;
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
                Ok(Some(data)) => Some((
                    Ok(Bytes::from(data)),
                    Some((store, task_id, name, chunk + 1)),
                )),
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
}
