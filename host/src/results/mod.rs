//! The results service: finished tasks' images (as PNG data URLs, a zip, or single files),
//! clearing the history with its files, and the retention timer.
//!
//! Owns: the result files ([`files::ResultFiles`]), the PNG re-encoding ([`image`]) and the
//! thumbnails ([`thumbs`], made once per image, one decode at a time).
//! **Invariant:** a row never points at a missing file; files without a row are collected
//! by a background sweep that starts with the host.

pub mod files;
pub mod image;
pub mod thumbs;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use scheduler_api::{ResultImage, TaskChange, TaskStatus};
use tokio::sync::watch;

pub use files::ResultFiles;

use crate::error::HostError;
use crate::events::EventHub;
use crate::model::transition::results_available;
use crate::model::{TaskRow, now_ms};
use crate::settings::SettingsService;
use crate::store::{Store, rows, tasks, transitions};

/// One stored image file: its bytes, content type and validator.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFile {
    /// The bytes as stored.
    pub bytes: Vec<u8>,
    /// Its MIME type.
    pub content_type: &'static str,
    /// An HTTP entity tag: changes when the file does (size and modification time).
    pub etag: String,
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
    store: Store,
    files: ResultFiles,
    events: EventHub,
    settings: Arc<SettingsService>,
    thumbs: thumbs::Thumbnailer,
}

impl Results {
    /// The service.
    pub fn new(
        store: Store,
        files: ResultFiles,
        events: EventHub,
        settings: Arc<SettingsService>,
    ) -> Results {
        Results {
            thumbs: thumbs::Thumbnailer::new(files.clone()),
            store,
            files,
            events,
            settings,
        }
    }

    /// Removes result files no row points at, in the background (after the host answers):
    /// only files older than `before` (the start of this host), chunk by chunk.
    pub async fn sweep_orphans(&self, before: std::time::SystemTime) {
        let files = self.files.clone();
        let store = self.store.clone();
        let removed = tokio::task::spawn_blocking(move || {
            files.collect_garbage(
                |ids| store.read_sync(|c| tasks::image_files_of(c, ids)).ok(),
                before,
            )
        })
        .await
        .unwrap_or(0);
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
    /// is made on its first request.
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
            let i = id.clone();
            let Ok(row) = self.store.read(move |c| rows::require(c, &i, false)).await else {
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

    async fn finished(
        &self,
        id: &str,
    ) -> Result<(TaskRow, Vec<(std::path::PathBuf, ImageRowRef)>), HostError> {
        let i = id.to_owned();
        let row = self
            .store
            .read(move |c| rows::require(c, &i, false))
            .await?;
        results_available(row.status())?;
        let entries = row
            .images
            .iter()
            .filter_map(|img| {
                self.files.file_path(&row.id, &img.file_name).map(|p| {
                    (
                        p,
                        ImageRowRef {
                            file_name: img.file_name.clone(),
                            infotext: img.infotext.clone(),
                        },
                    )
                })
            })
            .collect();
        Ok((row, entries))
    }

    /// The images of a finished task as PNG data URLs with the infotext in their
    /// `parameters` chunk (409 unless finished).
    pub async fn images(&self, id: &str) -> Result<Vec<ResultImage>, HostError> {
        let (_, entries) = self.finished(id).await?;
        tokio::task::spawn_blocking(move || {
            entries
                .into_iter()
                .filter_map(|(path, img)| {
                    let bytes = std::fs::read(&path).ok()?;
                    let png = image::to_png_with_parameters(&bytes, &img.infotext).ok()?;
                    Some(ResultImage {
                        image: format!(
                            "data:image/png;base64,{}",
                            base64::engine::general_purpose::STANDARD.encode(png)
                        ),
                        infotext: img.infotext,
                    })
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| HostError::Internal(e.to_string()))
    }

    /// A zip of the stored files of a finished task, in an anonymous temporary file
    /// (409 unless finished).
    pub async fn zip(&self, id: &str) -> Result<std::fs::File, HostError> {
        let (_, entries) = self.finished(id).await?;
        let dir = self.files.root().to_path_buf();
        tokio::task::spawn_blocking(move || build_zip(&dir, &entries))
            .await
            .map_err(|e| HostError::Internal(e.to_string()))?
            .map_err(|e| HostError::Internal(format!("zip: {e}")))
    }

    /// A zip of the stored files of these tasks (finished ones with images), each in a
    /// folder named by its task id, in an anonymous temporary file; `None` when none of them
    /// has a file (409).
    pub async fn zip_many(&self, tasks: Vec<TaskRow>) -> Result<std::fs::File, HostError> {
        let mut entries = Vec::new();
        for row in tasks
            .iter()
            .filter(|t| results_available(t.status()).is_ok())
        {
            for img in &row.images {
                if let Some(p) = self.files.file_path(&row.id, &img.file_name) {
                    entries.push((
                        p,
                        ImageRowRef {
                            file_name: format!("{}/{}", row.id, img.file_name),
                            infotext: String::new(),
                        },
                    ));
                }
            }
        }
        if entries.is_empty() {
            return Err(HostError::Conflict(
                "None of the selected tasks has result files".into(),
            ));
        }
        let dir = self.files.root().to_path_buf();
        tokio::task::spawn_blocking(move || build_zip(&dir, &entries))
            .await
            .map_err(|e| HostError::Internal(e.to_string()))?
            .map_err(|e| HostError::Internal(format!("zip: {e}")))
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
        let i = id.to_owned();
        let row = self
            .store
            .read(move |c| rows::require(c, &i, false))
            .await?;
        let Some(img) = row.images.iter().find(|i| i.index == index) else {
            return Ok(None);
        };
        let (path, content_type) = match rendition {
            Rendition::Full => (
                self.files.file_path(&row.id, &img.file_name),
                img.content_type(),
            ),
            Rendition::Thumb => (self.thumbs.ensure(&row.id, img).await, "image/jpeg"),
        };
        let Some(path) = path else {
            return Ok(None);
        };
        let Ok(meta) = tokio::fs::metadata(&path).await else {
            return Ok(None);
        };
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis());
        Ok(tokio::fs::read(&path).await.ok().map(|bytes| ImageFile {
            etag: format!("\"{}-{}-{:x}-{:x}\"", row.id, index, meta.len(), mtime),
            bytes,
            content_type,
        }))
    }

    /// Deletes non-bookmarked finished tasks (older than `before_ms` when given) and their
    /// files; returns how many.
    pub async fn clear_history(&self, before_ms: Option<i64>) -> Result<usize, HostError> {
        let removed = self
            .store
            .call(move |c| transitions::clear_history(c, before_ms))
            .await?;
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
        let week_ago = now_ms() - 7 * 86_400_000;
        self.store
            .call(move |c| tasks::prune_idempotency(c, week_ago))
            .await?;
        let Some(days) = self.settings.get().history_retention_days else {
            return Ok(0);
        };
        let cutoff = now_ms() - i64::from(days) * 86_400_000;
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

/// What a zip or a data URL needs of an image row.
struct ImageRowRef {
    file_name: String,
    infotext: String,
}

fn build_zip(
    dir: &std::path::Path,
    entries: &[(std::path::PathBuf, ImageRowRef)],
) -> Result<std::fs::File, String> {
    use std::io::{Seek, Write};
    let file = tempfile::tempfile_in(dir).map_err(|e| e.to_string())?;
    let mut zw = zip::ZipWriter::new(file);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (path, img) in entries {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        zw.start_file(img.file_name.as_str(), opts)
            .map_err(|e| e.to_string())?;
        zw.write_all(&bytes).map_err(|e| e.to_string())?;
    }
    let mut file = zw.finish().map_err(|e| e.to_string())?;
    file.rewind().map_err(|e| e.to_string())?;
    Ok(file)
}
