//! Thumbnails of result images: a JPEG of at most [`THUMB_SIZE`] px on its longer side per
//! image, made once and kept beside the image as `<index>.thumb.jpg` (named by
//! [`thumb_name`], with the results folder's other names in `files.rs`, so it goes with the
//! task's files and the orphan sweep knows it by its image; in PostgreSQL a blob of that
//! name), for lists that must never download full images.
//!
//! Made after a run's images are stored (from the `task` event, off the dispatch path) or on
//! the first request for one that is missing (results stored before thumbnails existed), both
//! through one gate: **one image is decoded at a time**, whatever the number of requests, so
//! a night of huge upscales cannot hold more than one decoded image in memory.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use scheduler_api::THUMB_SIZE;
use tokio::sync::Semaphore;

use super::files::thumb_name;
use super::image::ImageError;
use super::storage::ResultStorage;
use crate::model::ImageRow;

/// JPEG quality of thumbnails.
const QUALITY: u8 = 80;
/// The largest image we decode (a bigger one is not thumbnailed: the list shows a
/// placeholder).
const MAX_SIDE: u32 = 32_768;
/// Most bytes one decode may allocate.
const MAX_ALLOC: u64 = 1 << 30;

/// The thumbnail of the image read by `reader`, within the decode limits.
fn thumbnail<R: std::io::BufRead + std::io::Seek>(
    reader: image::ImageReader<R>,
) -> Result<image::RgbImage, ImageError> {
    let codec = |e: &dyn std::fmt::Display| ImageError::Codec(e.to_string());
    let mut reader = reader.with_guessed_format().map_err(|e| codec(&e))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| codec(&e))?;
    // Never enlarged: a small image keeps its size (only re-encoded).
    Ok(if img.width() <= THUMB_SIZE && img.height() <= THUMB_SIZE {
        img.into_rgb8()
    } else {
        let s = img.thumbnail(THUMB_SIZE, THUMB_SIZE).into_rgb8();
        drop(img);
        s
    })
}

fn encode(small: &image::RgbImage, out: impl Write) -> Result<(), ImageError> {
    image::codecs::jpeg::JpegEncoder::new_with_quality(out, QUALITY)
        .encode_image(small)
        .map_err(|e| ImageError::Codec(e.to_string()))
}

/// Makes a thumbnail of `src` at `dst` (written to a temporary name, then renamed, so a
/// reader never sees half a file). Blocking: one decode at a time is the caller's job.
pub fn make(src: &Path, dst: &Path) -> Result<(), ImageError> {
    let codec = |e: &dyn std::fmt::Display| ImageError::Codec(e.to_string());
    let small = thumbnail(image::ImageReader::open(src).map_err(|e| codec(&e))?)?;
    let tmp = dst.with_extension("jpg.tmp");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(|e| codec(&e))?);
    encode(&small, &mut out)?;
    out.flush().map_err(|e| codec(&e))?;
    drop(out);
    std::fs::rename(&tmp, dst).map_err(|e| codec(&e))
}

/// The thumbnail (JPEG bytes) of the image `bytes`. Blocking, like [`make`].
pub fn make_from_bytes(bytes: &[u8]) -> Result<Vec<u8>, ImageError> {
    let small = thumbnail(image::ImageReader::new(std::io::Cursor::new(bytes)))?;
    let mut out = Vec::new();
    encode(&small, &mut out)?;
    Ok(out)
}

/// A usable thumbnail file is there (a JPEG, not an empty file left by a crash).
fn present(path: &Path) -> bool {
    let mut magic = [0u8; 3];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && magic == [0xFF, 0xD8, 0xFF]
}

/// The thumbnailer.
#[derive(Debug)]
pub struct Thumbnailer {
    files: ResultStorage,
    gate: Semaphore,
    decoding: AtomicUsize,
    peak: AtomicUsize,
    made: AtomicU64,
}

impl Thumbnailer {
    /// Thumbnails stored beside their images in `files`.
    pub fn new(files: ResultStorage) -> Thumbnailer {
        Thumbnailer {
            files,
            gate: Semaphore::new(1),
            decoding: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            made: AtomicU64::new(0),
        }
    }

    /// The most images ever decoded at once (1 by design; tests read it).
    pub fn peak_decodes(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Thumbnails made since start.
    pub fn made(&self) -> u64 {
        self.made.load(Ordering::SeqCst)
    }

    /// Runs `decode` (a blocking image decode or re-encode) through the gate: one at a time in
    /// the whole host, thumbnails included. `None` if it panicked.
    pub async fn decode<T: Send + 'static>(
        &self,
        decode: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let _permit = self.gate.acquire().await.ok()?;
        self.decoding(decode).await.ok()
    }

    /// Reads stored file `name` of `task_id` and runs `decode` on its bytes through the
    /// gate (the read too: one image in memory at a time). `None` when the file is gone or
    /// the decode panicked.
    pub async fn decode_stored<T: Send + 'static>(
        &self,
        task_id: &str,
        name: &str,
        decode: impl FnOnce(Vec<u8>) -> T + Send + 'static,
    ) -> Option<T> {
        let _permit = self.gate.acquire().await.ok()?;
        let bytes = self.files.read(task_id, name).await?;
        self.decoding(move || decode(bytes)).await.ok()
    }

    /// Makes the thumbnail of a stored image if it is missing; whether it is there now
    /// (`false`: the image is gone or cannot be thumbnailed, the caller answers 404).
    pub async fn ensure(&self, task_id: &str, img: &ImageRow) -> bool {
        let thumb = thumb_name(&img.file_name);
        match &self.files {
            ResultStorage::Disk(files) => {
                let (Some(src), Some(dst)) = (
                    files.file_path(task_id, &img.file_name),
                    files.file_path(task_id, &thumb),
                ) else {
                    return false;
                };
                if present(&dst) {
                    return true;
                }
                if !src.is_file() {
                    return false;
                }
                let Ok(_permit) = self.gate.acquire().await else {
                    return false;
                };
                // Made by the request that held the gate before us?
                if present(&dst) {
                    return true;
                }
                let made = self.decoding(move || make(&src, &dst)).await;
                self.made_or_not(task_id, img, made)
            }
            ResultStorage::Pg(_) => {
                // Looked for once inside the gate; once more before waiting for it (another
                // request may be making it meanwhile), when it is busy.
                let _permit = match self.gate.try_acquire() {
                    Ok(p) => p,
                    Err(_) => {
                        if self.files.exists(task_id, &thumb).await {
                            return true;
                        }
                        let Ok(p) = self.gate.acquire().await else {
                            return false;
                        };
                        p
                    }
                };
                if self.files.exists(task_id, &thumb).await {
                    return true;
                }
                // The image is read whole inside the gate: one at a time, like its decode.
                let Some(bytes) = self.files.read(task_id, &img.file_name).await else {
                    return false;
                };
                let made = self.decoding(move || make_from_bytes(&bytes)).await;
                let stored = match made {
                    Ok(Ok(jpeg)) => self
                        .files
                        .put(task_id, &thumb, jpeg)
                        .await
                        .map_err(|e| ImageError::Codec(format!("storing it: {e}"))),
                    Ok(Err(e)) => Err(e),
                    Err(e) => Err(ImageError::Codec(e.to_string())),
                };
                // Another host stored it at the same moment (its write won): it is there.
                if stored.is_err() && self.files.exists(task_id, &thumb).await {
                    return true;
                }
                self.made_or_not(task_id, img, Ok(stored))
            }
        }
    }

    /// Runs a blocking decode on a blocking thread, counted (the gate is the caller's).
    async fn decoding<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        let now = self.decoding.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let out = tokio::task::spawn_blocking(work).await;
        self.decoding.fetch_sub(1, Ordering::SeqCst);
        out
    }

    fn made_or_not(
        &self,
        task_id: &str,
        img: &ImageRow,
        made: Result<Result<(), ImageError>, tokio::task::JoinError>,
    ) -> bool {
        let why = match made {
            Ok(Ok(())) => {
                self.made.fetch_add(1, Ordering::SeqCst);
                return true;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!("thumbnail of {task_id}/{}: {why}", img.file_name);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::ResultFiles;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    #[tokio::test]
    async fn other_decodes_share_the_gate_with_thumbnails() {
        let dir = tempfile::tempdir().unwrap();
        let files = ResultFiles::new(dir.path());
        let rows = files
            .write_images("t1", &[png(900, 600), png(910, 600)], &[])
            .unwrap();
        let t = std::sync::Arc::new(Thumbnailer::new(files.clone().into()));
        let mut joins = Vec::new();
        for i in 0..6 {
            let t = t.clone();
            let r = rows[i % 2].clone();
            joins.push(tokio::spawn(async move {
                if i < 2 {
                    t.ensure("t1", &r).await.then_some(0)
                } else {
                    t.decode(move || image::load_from_memory(&png(800, 800)).map(|i| i.width()))
                        .await
                        .and_then(Result::ok)
                }
            }));
        }
        for j in joins {
            assert!(j.await.unwrap().is_some());
        }
        assert_eq!(t.peak_decodes(), 1, "one decode at a time, whoever asks");
    }

    #[tokio::test]
    async fn one_decode_at_a_time_and_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let files = ResultFiles::new(dir.path());
        let imgs: Vec<Vec<u8>> = (0..6).map(|i| png(900 + i * 10, 600)).collect();
        let rows = files.write_images("t1", &imgs, &[]).unwrap();
        let t = std::sync::Arc::new(Thumbnailer::new(files.clone().into()));
        let mut joins = Vec::new();
        for _ in 0..3 {
            for r in rows.clone() {
                let t = t.clone();
                joins.push(tokio::spawn(async move {
                    let made = t.ensure("t1", &r).await;
                    (r, made)
                }));
            }
        }
        for j in joins {
            let (r, made) = j.await.unwrap();
            assert!(made, "a thumbnail");
            let path = files.file_path("t1", &thumb_name(&r.file_name)).unwrap();
            let img = image::open(&path).unwrap();
            assert_eq!(img.width(), THUMB_SIZE, "the longer side");
            assert!(img.height() < THUMB_SIZE && img.height() >= 160);
        }
        assert_eq!(t.peak_decodes(), 1);
        assert_eq!(t.made(), 6, "once per image, however many asked");
        // A missing image has no thumbnail.
        let ghost = ImageRow {
            index: 9,
            file_name: "9.png".into(),
            infotext: String::new(),
            format: "png".into(),
        };
        assert!(!t.ensure("t1", &ghost).await);
        // A small image keeps its size; one past the decode limit has no thumbnail.
        let rows2 = files
            .write_images("t2", &[png(40, 30), png(MAX_SIDE + 1, 1)], &[])
            .unwrap();
        assert!(t.ensure("t2", &rows2[0]).await);
        let small = files.file_path("t2", "0.thumb.jpg").unwrap();
        let img = image::open(&small).unwrap();
        assert_eq!((img.width(), img.height()), (40, 30));
        assert!(!t.ensure("t2", &rows2[1]).await);
        // An empty file (a crash mid-write) is made again.
        let p = files.file_path("t1", "0.thumb.jpg").unwrap();
        std::fs::write(&p, b"").unwrap();
        assert!(t.ensure("t1", &rows[0]).await);
        assert_eq!(t.made(), 8);
    }
}
