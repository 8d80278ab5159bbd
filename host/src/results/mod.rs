//! The results service: finished tasks' images (as PNG data URLs, a zip, or single files),
//! clearing the history with its files, and the retention timer.
//!
//! Owns: where result files live ([`storage::ResultStorage`]: the results folder
//! [`files::ResultFiles`] with the SQLite store, `result_blobs` with PostgreSQL), the PNG
//! re-encoding ([`image`]) and the thumbnails ([`thumbs`], made once per image, one decode at
//! a time).
//! **Invariant:** a row never points at a missing file; files without a row are collected
//! by a background sweep that starts with the host.

pub mod files;
pub mod image;
pub mod storage;
pub mod thumbs;
pub mod zipstream;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use scheduler_api::{ResultImage, TaskChange, TaskStatus};
use tokio::sync::watch;

pub use files::ResultFiles;
pub use storage::ResultStorage;

use crate::clock::Clock;
use crate::error::HostError;
use crate::events::EventHub;
use crate::model::TaskRow;
use crate::model::transition::results_available;
use crate::settings::SettingsService;
use crate::store::{SharedStore, StoreError};

/// One stored image file: its bytes (streamed), length, content type and validator.
pub struct ImageFile {
    /// The bytes as stored, a piece at a time.
    pub body: storage::ByteStream,
    /// Its length.
    pub len: u64,
    /// Its MIME type.
    pub content_type: &'static str,
    /// An HTTP entity tag: changes when the file does (size and modification time; in
    /// PostgreSQL the task's finish time, so every host gives the same tag).
    pub etag: String,
}

impl std::fmt::Debug for ImageFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageFile")
            .field("len", &self.len)
            .field("content_type", &self.content_type)
            .field("etag", &self.etag)
            .finish_non_exhaustive()
    }
}

/// Which rendition of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendition {
    /// The file as stored.
    Full,
    /// Its thumbnail (made if missing).
    Thumb,
}

/// Finished tasks' outputs.
pub struct Results {
    store: SharedStore,
    files: ResultStorage,
    events: EventHub,
    settings: Arc<SettingsService>,
    thumbs: thumbs::Thumbnailer,
    clock: Clock,
}

impl Results {
    /// The service, its files in `files`.
    pub fn new(
        store: SharedStore,
        files: impl Into<ResultStorage>,
        events: EventHub,
        settings: Arc<SettingsService>,
        clock: Clock,
    ) -> Results {
        let files = files.into();
        Results {
            thumbs: thumbs::Thumbnailer::new(files.clone()),
            store,
            files,
            events,
            settings,
            clock,
        }
    }

    /// Removes result files no row points at, in the background (after the host answers):
    /// on disk only files older than `before` (the start of this host), chunk by chunk; in
    /// PostgreSQL blobs no row points at (see [`ResultStorage::sweep`]).
    pub async fn sweep_orphans(&self, before: std::time::SystemTime) {
        let store = self.store.clone();
        let rt = tokio::runtime::Handle::current();
        let removed = self
            .files
            .sweep(
                move |ids| rt.block_on(store.image_files_of(ids.to_vec())).ok(),
                before,
            )
            .await;
        if removed > 0 {
            tracing::info!("removed {removed} orphan result files");
        }
    }

    /// The thumbnailer (its figures).
    pub fn thumbnailer(&self) -> &thumbs::Thumbnailer {
        &self.thumbs
    }

    /// Makes the thumbnails of every task that finishes done, as it finishes (off the
    /// worker's path), until shutdown. A thumbnail missed here (events dropped under load)
    /// is made on its first request. On a shared store each host makes the thumbnails of
    /// the runs it finished (another host's finishes arrive too, and are left to it).
    pub async fn run_thumbnails(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        use scheduler_api::{Event, TaskEvent};
        use tokio::sync::broadcast::error::RecvError;
        let mut rx = self.events.subscribe();
        loop {
            let published = tokio::select! {
                r = rx.recv() => r,
                _ = shutdown.changed() => return,
            };
            let id = match published {
                Ok(p) if !p.local => continue,
                Ok(p) => match &p.event {
                    Event::Task(TaskEvent {
                        task_id,
                        status: TaskStatus::Done,
                        change: TaskChange::Finished,
                        ..
                    }) => task_id.clone(),
                    _ => continue,
                },
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            let Ok(Some(row)) = self.store.get_task(id.clone(), false).await else {
                continue;
            };
            for img in &row.images {
                if *shutdown.borrow() {
                    return;
                }
                let _ = self.thumbs.ensure(&id, img).await;
            }
        }
    }

    async fn finished(&self, id: &str) -> Result<TaskRow, HostError> {
        let row = self
            .store
            .get_task(id.to_owned(), false)
            .await?
            .ok_or(StoreError::NotFound)?;
        results_available(row.status())?;
        Ok(row)
    }

    /// The images of a finished task as PNG data URLs with the infotext in their
    /// `parameters` chunk (409 unless finished). Each image is read and re-encoded through
    /// the thumbnails' gate: one decode at a time in the whole host.
    pub async fn images(&self, id: &str) -> Result<Vec<ResultImage>, HostError> {
        let row = self.finished(id).await?;
        let mut out = Vec::with_capacity(row.images.len());
        for img in row.images {
            let text = img.infotext.clone();
            let png = self
                .thumbs
                .decode_stored(&row.id, &img.file_name, move |bytes| {
                    image::to_png_with_parameters(&bytes, &text).ok()
                })
                .await
                .flatten();
            if let Some(png) = png {
                let infotext = img.infotext;
                out.push(ResultImage {
                    image: format!(
                        "data:image/png;base64,{}",
                        base64::engine::general_purpose::STANDARD.encode(png)
                    ),
                    infotext,
                });
            }
        }
        Ok(out)
    }

    /// A zip of the stored files of a finished task (409 unless finished), streamed as it
    /// is written: nothing goes to disk, memory stays bounded whatever the files' sizes.
    pub async fn zip(&self, id: &str) -> Result<ZipBody, HostError> {
        let row = self.finished(id).await?;
        Ok(self.zip_stream(vec![row.id], false))
    }

    /// A zip of the stored files of these tasks (finished ones with images, in this order),
    /// each in a folder named by its task id, streamed as it is written (nothing goes to
    /// disk, memory stays bounded whatever the selection's size); 409 when none of them has
    /// a file.
    pub async fn zip_many(&self, ids: Vec<String>) -> Result<ZipBody, HostError> {
        // Is there anything to zip? Looked up chunk by chunk, up to the first file found.
        let mut found = false;
        for chunk in ids.chunks(ZIP_CHUNK) {
            let chunk = chunk.to_vec();
            let lists = self.store.result_files(chunk).await?;
            'tasks: for (id, status, images) in &lists {
                if results_available(*status).is_err() {
                    continue;
                }
                for img in images {
                    if self.files.exists(id, &img.file_name).await {
                        found = true;
                        break 'tasks;
                    }
                }
            }
            if found {
                break;
            }
        }
        if !found {
            return Err(HostError::Conflict(
                "None of the selected tasks has result files".into(),
            ));
        }
        Ok(self.zip_stream(ids, true))
    }

    /// Writes the zip of `ids`' result files on a blocking thread into a small channel: the
    /// rows are read [`ZIP_CHUNK`] tasks at a time, each file copied in 64 KiB pieces (a
    /// blob a chunk at a time), and the writer waits while the client has not taken the
    /// previous pieces. An entry's time is its file's (in PostgreSQL its task's finish).
    fn zip_stream(&self, ids: Vec<String>, folders: bool) -> ZipBody {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
        let store = self.store.clone();
        let files = self.files.clone();
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let mut zip = zipstream::ZipStream::new(ChannelWriter::new(tx.clone()));
            let written = (|| -> std::io::Result<()> {
                for chunk in ids.chunks(ZIP_CHUNK) {
                    let chunk = chunk.to_vec();
                    let finished = match &files {
                        ResultStorage::Pg(pg) => rt
                            .block_on(pg.finished_at_of(&chunk))
                            .map_err(std::io::Error::other)?,
                        ResultStorage::Disk(_) => Default::default(),
                    };
                    let lists = rt
                        .block_on(store.result_files(chunk))
                        .map_err(std::io::Error::other)?;
                    for (id, status, images) in lists {
                        if results_available(status).is_err() {
                            continue;
                        }
                        for img in images {
                            let name = if folders {
                                format!("{id}/{}", img.file_name)
                            } else {
                                img.file_name.clone()
                            };
                            let (data, modified): (Box<dyn std::io::Read>, _) = match &files {
                                ResultStorage::Disk(disk) => {
                                    let Some(path) = disk.file_path(&id, &img.file_name) else {
                                        continue;
                                    };
                                    // Gone since (history cleared): left out.
                                    let Ok(file) = std::fs::File::open(&path) else {
                                        continue;
                                    };
                                    let modified = file.metadata().and_then(|m| m.modified());
                                    (Box::new(file), modified.ok())
                                }
                                ResultStorage::Pg(_) => {
                                    let Some(f) = rt.block_on(files.open(&id, &img.file_name))
                                    else {
                                        continue;
                                    };
                                    let at = finished.get(&id).copied().and_then(ms_time);
                                    (
                                        Box::new(storage::BlockingReader::new(rt.clone(), f.body)),
                                        at,
                                    )
                                }
                            };
                            zip.add(&name, data, modified.unwrap_or(std::time::UNIX_EPOCH))?;
                        }
                    }
                }
                zip.finish()?.flush_last()
            })();
            if let Err(e) = written {
                // The client went away, or a read failed: the body ends with an error (the
                // client sees a broken transfer, never a zip that looks whole).
                let _ = tx.blocking_send(Err(e));
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }

    /// One stored image file as stored, or its thumbnail (made now when missing); `None`
    /// when the task has no such image, its file is gone or it cannot be thumbnailed (404);
    /// an unknown task is an error (404).
    pub async fn file(
        &self,
        id: &str,
        index: u32,
        rendition: Rendition,
    ) -> Result<Option<ImageFile>, HostError> {
        let row = self
            .store
            .get_task(id.to_owned(), false)
            .await?
            .ok_or(StoreError::NotFound)?;
        let Some(img) = row.images.iter().find(|i| i.index == index) else {
            return Ok(None);
        };
        let (name, content_type) = match rendition {
            Rendition::Full => (img.file_name.clone(), img.content_type()),
            Rendition::Thumb => {
                if !self.thumbs.ensure(&row.id, img).await {
                    return Ok(None);
                }
                (files::thumb_name(&img.file_name), "image/jpeg")
            }
        };
        let Some(file) = self.files.open(&row.id, &name).await else {
            return Ok(None);
        };
        let stamp = match file.modified {
            Some(t) => t
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis()),
            None => u128::try_from(row.life.finished_at.unwrap_or(0)).unwrap_or(0),
        };
        Ok(Some(ImageFile {
            etag: format!("\"{}-{}-{:x}-{:x}\"", row.id, index, file.len, stamp),
            len: file.len,
            body: file.body,
            content_type,
        }))
    }

    /// Deletes non-bookmarked finished tasks (older than `before_ms` when given) and their
    /// files; returns how many.
    pub async fn clear_history(&self, before_ms: Option<i64>) -> Result<usize, HostError> {
        let now = self.clock.now_ms();
        let removed = self.store.clear_history(before_ms, now).await?;
        let ids: Vec<String> = removed.iter().map(|(id, _)| id.clone()).collect();
        self.files.remove_tasks(ids).await;
        for (id, _) in &removed {
            self.events
                .task(id, TaskStatus::Done, TaskChange::Deleted, None);
        }
        self.events.flush().await;
        Ok(removed.len())
    }

    /// Applies the retention setting (and forgets idempotency keys older than a week).
    pub async fn apply_retention(&self) -> Result<usize, HostError> {
        let week_ago = self.clock.now_ms() - 7 * 86_400_000;
        self.store.prune_idempotency(week_ago).await?;
        let Some(days) = self.settings.get().history_retention_days else {
            return Ok(0);
        };
        let cutoff = self.clock.now_ms() - i64::from(days) * 86_400_000;
        self.clear_history(Some(cutoff)).await
    }

    /// Applies retention every hour and whenever the settings change, until shutdown.
    pub async fn run_retention(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut settings = self.settings.subscribe();
        loop {
            if let Err(e) = self.apply_retention().await {
                tracing::warn!("retention: {e}");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                r = settings.changed() => if r.is_err() { return },
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// The time `ms` after the epoch names.
fn ms_time(ms: i64) -> Option<std::time::SystemTime> {
    let ms = u64::try_from(ms).ok()?;
    std::time::UNIX_EPOCH.checked_add(Duration::from_millis(ms))
}

/// Tasks whose image rows are read at a time while a zip is written.
const ZIP_CHUNK: usize = 256;

/// A zip being streamed: 64 KiB pieces, or the error that ended it.
pub type ZipBody = tokio_stream::wrappers::ReceiverStream<std::io::Result<bytes::Bytes>>;

/// A blocking writer that sends 64 KiB pieces into a bounded channel (waiting while it is
/// full); fails once the receiver is gone.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
    buf: Vec<u8>,
}

/// The size of one piece sent.
const PIECE: usize = 64 << 10;

impl ChannelWriter {
    fn new(tx: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>) -> ChannelWriter {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(PIECE),
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE));
        self.tx
            .blocking_send(Ok(bytes::Bytes::from(piece)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))
    }

    /// Sends what is left.
    fn flush_last(mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(PIECE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PIECE {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
