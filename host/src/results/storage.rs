//! Where result files live: [`ResultStorage`], used by every reader and writer of result
//! images and thumbnails (the worker storing a run's images, the image routes, data URLs,
//! thumbnails, zips, deletes, retention, the orphan sweep, callbacks' attachments).
//!
//! - **Disk** (the SQLite store): files under `<data-dir>/results` exactly as
//!   [`ResultFiles`] keeps them (durable writes before the row commits, "no space" reported
//!   to the disk monitor, the start-up sweep by modification time).
//! - **PostgreSQL**: the files are chunks in `result_blobs` ([`crate::store::pg::blobs`]),
//!   streamed in and out a chunk at a time, so any host sharing the database serves any
//!   result and no shared file system is needed. A run's images are staged under its claim
//!   and become the task's in the transaction that writes its rows (see the `blobs` module):
//!   rows and bytes change together, and deleting a task deletes its bytes (a foreign key).
//!
//! An enum, not a trait object: there are exactly two places, chosen with the store, and
//! their differences are part of the callers' logic (only the disk can be full; only
//! PostgreSQL stages a run's files under its claim), which a `match` keeps visible where it
//! matters; the operations are async without boxing, and the enum is cheap to clone.

use std::io::Read;
use std::pin::Pin;
use std::time::SystemTime;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::files::ResultFiles;
use super::image;
use crate::model::ImageRow;
use crate::store::StoreError;
use crate::store::pg::PgStore;
use crate::store::pg::blobs::staged_name;

/// A stream of a file's bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send + 'static>>;

/// A stored file opened for reading.
pub struct StoredFile {
    /// Its length in bytes.
    pub len: u64,
    /// When it was written, where the place keeps it (files on disk; PostgreSQL does not:
    /// the caller uses the task's finish time, the same on every host).
    pub modified: Option<SystemTime>,
    /// Its bytes, a piece at a time.
    pub body: ByteStream,
}

impl std::fmt::Debug for StoredFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredFile")
            .field("len", &self.len)
            .field("modified", &self.modified)
            .finish_non_exhaustive()
    }
}

/// Why a run's images could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Writing the files failed (the disk may be full: the disk monitor knows).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The database refused or could not be reached.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Where result files live: the results folder, or the PostgreSQL database.
#[derive(Debug, Clone)]
pub enum ResultStorage {
    /// Files under the data directory (the SQLite store).
    Disk(ResultFiles),
    /// Chunks in `result_blobs` (the PostgreSQL store).
    Pg(PgStore),
}

impl From<ResultFiles> for ResultStorage {
    fn from(files: ResultFiles) -> ResultStorage {
        ResultStorage::Disk(files)
    }
}

fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
}

impl ResultStorage {
    /// The results folder, when files live on disk.
    pub fn disk(&self) -> Option<&ResultFiles> {
        match self {
            ResultStorage::Disk(files) => Some(files),
            ResultStorage::Pg(_) => None,
        }
    }

    /// Stores a run's images (claim `fence`); returns the rows its finish commits. On disk
    /// the files are written and fsynced under their final names; in PostgreSQL they are
    /// staged under the claim until its finish is written (and replace the task's earlier
    /// files then).
    pub async fn write_images(
        &self,
        task_id: &str,
        fence: i64,
        images: Vec<Vec<u8>>,
        infotexts: Vec<String>,
    ) -> Result<Vec<ImageRow>, WriteError> {
        match self {
            ResultStorage::Disk(files) => {
                let (files, id) = (files.clone(), task_id.to_owned());
                tokio::task::spawn_blocking(move || files.write_images(&id, &images, &infotexts))
                    .await
                    .map_err(std::io::Error::other)?
                    .map_err(WriteError::Io)
            }
            ResultStorage::Pg(pg) => {
                let mut rows = Vec::with_capacity(images.len());
                for (i, bytes) in images.into_iter().enumerate() {
                    let ext = image::image_ext(&bytes);
                    let file_name = format!("{i}.{ext}");
                    pg.put_whole_blob(task_id, &staged_name(fence, &file_name), bytes.into())
                        .await?;
                    rows.push(ImageRow {
                        index: i as u32,
                        file_name,
                        infotext: infotexts.get(i).cloned().unwrap_or_default(),
                        format: ext.to_owned(),
                    });
                }
                Ok(rows)
            }
        }
    }

    /// Drops what a run under claim `fence` stored when its finish was not written or not
    /// kept: on disk the task's folder (as the disk store always has), in PostgreSQL only
    /// that claim's staged files (a newer claim's files are never touched).
    pub async fn discard(&self, task_id: &str, fence: i64) {
        match self {
            ResultStorage::Disk(files) => files.remove_tasks(vec![task_id.to_owned()]).await,
            ResultStorage::Pg(pg) => {
                if let Err(e) = pg.discard_staged(task_id, fence).await {
                    tracing::warn!("dropping the staged files of {task_id}: {e}");
                }
            }
        }
    }

    /// Removes the files of these tasks after their rows went (deleted, requeued, cleared):
    /// on disk their folders; in PostgreSQL the bytes went in the same transaction (a
    /// foreign key, or the settle of the change), so this only collects files no row points
    /// at any more, never those of a run in flight.
    pub async fn remove_tasks(&self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        match self {
            ResultStorage::Disk(files) => files.remove_tasks(ids).await,
            ResultStorage::Pg(pg) => {
                for chunk in ids.chunks(512) {
                    if let Err(e) = pg.sweep_blobs(Some(chunk)).await {
                        tracing::warn!("removing result files: {e}");
                    }
                }
            }
        }
    }

    /// Whether file `name` of task `task_id` is stored.
    pub async fn exists(&self, task_id: &str, name: &str) -> bool {
        match self {
            ResultStorage::Disk(files) => match files.file_path(task_id, name) {
                Some(p) => tokio::fs::metadata(&p).await.is_ok_and(|m| m.is_file()),
                None => false,
            },
            ResultStorage::Pg(pg) => {
                safe_name(name) && matches!(pg.blob_len(task_id, name).await, Ok(Some(_)))
            }
        }
    }

    /// Opens file `name` of task `task_id` for reading, streamed; `None` when there is no
    /// such file (or it cannot be read).
    pub async fn open(&self, task_id: &str, name: &str) -> Option<StoredFile> {
        match self {
            ResultStorage::Disk(files) => {
                let path = files.file_path(task_id, name)?;
                let file = tokio::fs::File::open(&path).await.ok()?;
                let meta = file.metadata().await.ok()?;
                if !meta.is_file() {
                    return None;
                }
                Some(StoredFile {
                    len: meta.len(),
                    modified: meta.modified().ok(),
                    body: Box::pin(tokio_util::io::ReaderStream::with_capacity(file, 64 << 10)),
                })
            }
            ResultStorage::Pg(pg) => {
                if !safe_name(name) {
                    return None;
                }
                let len = pg.blob_len(task_id, name).await.ok()??;
                Some(StoredFile {
                    len,
                    modified: None,
                    body: Box::pin(
                        pg.blob_chunks(task_id, name, Some(len))
                            .map(|c| c.map_err(std::io::Error::other)),
                    ),
                })
            }
        }
    }

    /// The whole of file `name` (for a decode or a data URL, which need it whole anyway);
    /// `None` when there is no such file.
    pub async fn read(&self, task_id: &str, name: &str) -> Option<Vec<u8>> {
        match self {
            // Every chunk in one query.
            ResultStorage::Pg(pg) if safe_name(name) => pg.blob_whole(task_id, name).await.ok()?,
            ResultStorage::Pg(_) => None,
            ResultStorage::Disk(_) => {
                let file = self.open(task_id, name).await?;
                let mut out = Vec::with_capacity(usize::try_from(file.len).unwrap_or(0));
                let mut body = file.body;
                while let Some(piece) = body.next().await {
                    out.extend_from_slice(&piece.ok()?);
                }
                Some(out)
            }
        }
    }

    /// Stores a whole small file `name` of task `task_id` (a thumbnail), replacing one of
    /// that name: on disk through a temporary name and a rename, in PostgreSQL in one
    /// transaction (a reader never sees half of it).
    pub async fn put(&self, task_id: &str, name: &str, bytes: Vec<u8>) -> Result<(), WriteError> {
        match self {
            ResultStorage::Disk(files) => {
                let path = files
                    .file_path(task_id, name)
                    .ok_or_else(|| std::io::Error::other("unsafe file name"))?;
                tokio::task::spawn_blocking(move || {
                    let tmp = path.with_extension("tmp");
                    std::fs::write(&tmp, &bytes)?;
                    std::fs::rename(&tmp, &path)
                })
                .await
                .map_err(std::io::Error::other)??;
                Ok(())
            }
            ResultStorage::Pg(pg) => {
                if !safe_name(name) {
                    return Err(std::io::Error::other("unsafe file name").into());
                }
                pg.put_whole_blob(task_id, name, bytes.into()).await?;
                Ok(())
            }
        }
    }

    /// Removes the files no row points at, in the background after the host answers: on
    /// disk those older than `before` (the start of this host) that `lookup` does not know,
    /// in PostgreSQL those [`PgStore::sweep_blobs`] finds. Returns how many went.
    pub async fn sweep(
        &self,
        lookup: impl FnMut(&[String]) -> Option<Vec<Option<std::collections::HashSet<String>>>>
        + Send
        + 'static,
        before: SystemTime,
    ) -> usize {
        match self {
            ResultStorage::Disk(files) => {
                let files = files.clone();
                tokio::task::spawn_blocking(move || files.collect_garbage(lookup, before))
                    .await
                    .unwrap_or(0)
            }
            ResultStorage::Pg(pg) => match pg.sweep_blobs(None).await {
                Ok(n) => usize::try_from(n).unwrap_or(usize::MAX),
                Err(e) => {
                    tracing::warn!("sweeping result files: {e}");
                    0
                }
            },
        }
    }
}

/// A blocking reader over a [`ByteStream`] (for the zip writer, which runs on a blocking
/// thread): each piece is awaited on `rt`.
pub struct BlockingReader {
    rt: tokio::runtime::Handle,
    body: ByteStream,
    piece: Bytes,
}

impl BlockingReader {
    /// Reads `body` on the blocking thread it is used from, waiting on `rt`.
    pub fn new(rt: tokio::runtime::Handle, body: ByteStream) -> BlockingReader {
        BlockingReader {
            rt,
            body,
            piece: Bytes::new(),
        }
    }
}

impl Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.piece.is_empty() {
            match self.rt.block_on(self.body.next()) {
                Some(piece) => self.piece = piece?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.piece.len());
        buf[..n].copy_from_slice(&self.piece.split_to(n));
        Ok(n)
    }
}
