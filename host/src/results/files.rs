//! Result image files under `<data-dir>/results/<task-id>/<index>.<ext>`, each image's
//! thumbnail beside it as `<index>.thumb.jpg` ([`thumb_name`]; `thumbs.rs` makes them).
//!
//! Owns: the names of the results folder, writing images durably (write, fsync the file and the folder) before the database
//! row that points at them is committed, deleting a task's folder, and the start-up garbage
//! collection of files no row points at. Paths are built only from validated task ids and
//! our own file names, so nothing outside the results folder is ever read or written.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::image;
use crate::model::ImageRow;
use crate::model::spec::valid_task_id;

/// The thumbnail file name of a stored image file (`3.png` → `3.thumb.jpg`).
pub fn thumb_name(file_name: &str) -> String {
    let stem = file_name.split('.').next().unwrap_or(file_name);
    format!("{stem}.thumb.jpg")
}

/// Whether `name` is the thumbnail of one of `files` (the orphan sweep keeps those).
pub fn is_thumb_of<'a>(name: &str, mut files: impl Iterator<Item = &'a str>) -> bool {
    name.ends_with(".thumb.jpg") && files.any(|f| thumb_name(f) == name)
}

/// The results folder and its operations.
#[derive(Debug, Clone)]
pub struct ResultFiles {
    root: PathBuf,
    disk: Option<std::sync::Arc<crate::disk::Disk>>,
}

impl ResultFiles {
    /// Results under `<data_dir>/results`.
    pub fn new(data_dir: &Path) -> ResultFiles {
        ResultFiles {
            root: data_dir.join("results"),
            disk: None,
        }
    }

    /// Reports "no space" failures to `disk` (and honours its test fault).
    pub fn with_disk(mut self, disk: std::sync::Arc<crate::disk::Disk>) -> ResultFiles {
        self.disk = Some(disk);
        self
    }

    /// The results folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of one task, or `None` for an id that is not safe as a path segment.
    pub fn task_dir(&self, task_id: &str) -> Option<PathBuf> {
        valid_task_id(task_id).then(|| self.root.join(task_id))
    }

    /// The path of one stored file (file names come from our own rows).
    pub fn file_path(&self, task_id: &str, file_name: &str) -> Option<PathBuf> {
        let safe = !file_name.is_empty()
            && file_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.')
            && !file_name.starts_with('.');
        if !safe {
            return None;
        }
        self.task_dir(task_id).map(|d| d.join(file_name))
    }

    /// Writes images and fsyncs them and their folder; returns the rows to commit.
    /// Blocking: call from a blocking thread.
    pub fn write_images(
        &self,
        task_id: &str,
        images: &[Vec<u8>],
        infotexts: &[String],
    ) -> std::io::Result<Vec<ImageRow>> {
        let written = self.write_images_inner(task_id, images, infotexts);
        if let (Err(e), Some(disk)) = (&written, &self.disk) {
            disk.check_io(e);
        }
        written
    }

    fn write_images_inner(
        &self,
        task_id: &str,
        images: &[Vec<u8>],
        infotexts: &[String],
    ) -> std::io::Result<Vec<ImageRow>> {
        if self.disk.as_ref().is_some_and(|d| d.files_fault()) {
            return Err(crate::disk::Disk::no_space());
        }
        let dir = self
            .task_dir(task_id)
            .ok_or_else(|| std::io::Error::other("unsafe task id"))?;
        std::fs::create_dir_all(&dir)?;
        let mut rows = Vec::with_capacity(images.len());
        for (i, bytes) in images.iter().enumerate() {
            let ext = image::image_ext(bytes);
            let file_name = format!("{i}.{ext}");
            let mut f = std::fs::File::create(dir.join(&file_name))?;
            f.write_all(bytes)?;
            f.sync_all()?;
            rows.push(ImageRow {
                index: i as u32,
                file_name,
                infotext: infotexts.get(i).cloned().unwrap_or_default(),
                format: ext.to_owned(),
            });
        }
        sync_dir(&dir)?;
        sync_dir(&self.root)?;
        Ok(rows)
    }

    /// Removes the folders of these tasks, off the async threads.
    pub async fn remove_tasks(&self, ids: Vec<String>) {
        let files = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for id in &ids {
                files.remove_task(id);
            }
        })
        .await;
    }

    /// Removes a task's folder (missing is fine). Blocking.
    pub fn remove_task(&self, task_id: &str) {
        if let Some(dir) = self.task_dir(task_id) {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("removing {}: {e}", dir.display()),
            }
        }
    }

    /// Deletes every file no database row points at (a crash between writing files and
    /// committing the row leaves such files), and folders of tasks that no longer exist.
    /// `lookup` answers, for a chunk of task ids, the file names their rows point at (`None`:
    /// no such task), or nothing when it cannot tell (the chunk is left alone). Only entries last modified before `before` are touched, so files
    /// written meanwhile by this host (whose rows are being committed) are never removed:
    /// the sweep can run in the background while the host works. Blocking.
    pub fn collect_garbage(
        &self,
        mut lookup: impl FnMut(&[String]) -> Option<Vec<Option<HashSet<String>>>>,
        before: SystemTime,
    ) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return 0;
        };
        let old = |p: &Path| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < before)
        };
        let mut removed = 0;
        let mut entries = entries.flatten().peekable();
        while entries.peek().is_some() {
            let chunk: Vec<(String, PathBuf)> = entries
                .by_ref()
                .take(512)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                .collect();
            let ids: Vec<String> = chunk.iter().map(|(n, _)| n.clone()).collect();
            let Some(known) = lookup(&ids) else {
                continue;
            };
            for ((_, path), files) in chunk.iter().zip(known) {
                let Ok(inner) = std::fs::read_dir(path) else {
                    continue;
                };
                for f in inner.flatten() {
                    let name = f.file_name().to_string_lossy().into_owned();
                    // A thumbnail stays with its image.
                    let kept = files.as_ref().is_some_and(|k| {
                        k.contains(&name) || is_thumb_of(&name, k.iter().map(String::as_str))
                    });
                    if !kept && old(&f.path()) && std::fs::remove_file(f.path()).is_ok() {
                        removed += 1;
                    }
                }
                // A folder of a task that is gone: removed once empty (never one in use).
                if files.is_none() && old(path) {
                    let _ = std::fs::remove_dir(path);
                }
            }
        }
        removed
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_the_sweep_rule() {
        assert_eq!(thumb_name("0.png"), "0.thumb.jpg");
        assert_eq!(thumb_name("12.jpg"), "12.thumb.jpg");
        assert!(is_thumb_of("1.thumb.jpg", ["0.png", "1.jpg"].into_iter()));
        assert!(!is_thumb_of("2.thumb.jpg", ["0.png", "1.jpg"].into_iter()));
        assert!(!is_thumb_of("0.png", ["0.png"].into_iter()));
    }

    #[test]
    fn files_are_written_and_orphans_collected() {
        let dir = tempfile::tempdir().unwrap();
        let rf = ResultFiles::new(dir.path());
        let png = image::to_png_with_parameters(
            &[
                0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D',
                b'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0, 0x90, 0x77, 0x53, 0xDE, 0, 0, 0, 0x0C,
                b'I', b'D', b'A', b'T', 0x08, 0xD7, 0x63, 0xF8, 0xCF, 0xC0, 0x00, 0x00, 0x03, 0x01,
                0x01, 0x00, 0x18, 0xDD, 0x8D, 0xB0, 0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42,
                0x60, 0x82,
            ],
            "x",
        )
        .unwrap_or_else(|_| vec![0x89, b'P', b'N', b'G']);
        let rows = rf
            .write_images("t1", &[png.clone(), png], &["a".into()])
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].file_name, "0.png");
        assert_eq!(rows[1].infotext, "");
        rf.write_images("orphan", &[vec![1, 2, 3]], &[]).unwrap();
        // Thumbnails live beside their images.
        let t1 = dir.path().join("results/t1");
        std::fs::write(t1.join("0.thumb.jpg"), b"thumb").unwrap();
        std::fs::write(t1.join("1.thumb.jpg"), b"thumb").unwrap();
        let lookup = |ids: &[String]| -> Option<Vec<Option<HashSet<String>>>> {
            Some(
                ids.iter()
                    .map(|id| (id == "t1").then(|| HashSet::from(["0.png".to_string()])))
                    .collect(),
            )
        };
        // Files newer than the sweep's start (written meanwhile) are never touched.
        let long_ago = SystemTime::UNIX_EPOCH;
        assert_eq!(rf.collect_garbage(lookup, long_ago), 0);
        assert!(rf.file_path("t1", "1.png").unwrap().exists());
        // Only t1/0.png is referenced: t1/1.png, its thumbnail and the orphan folder go;
        // 0.png's thumbnail stays.
        let later = SystemTime::now() + std::time::Duration::from_secs(1);
        let removed = rf.collect_garbage(lookup, later);
        assert_eq!(removed, 3);
        assert!(t1.join("0.thumb.jpg").exists());
        assert!(!t1.join("1.thumb.jpg").exists());
        assert!(rf.file_path("t1", "0.png").unwrap().exists());
        assert!(!rf.file_path("t1", "1.png").unwrap().exists());
        assert!(!dir.path().join("results/orphan").exists());
        assert!(rf.task_dir("../x").is_none());
        assert!(rf.file_path("t1", "../../etc").is_none());
        rf.remove_task("t1");
        assert!(!dir.path().join("results/t1").exists());
    }
}
