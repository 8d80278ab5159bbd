//! Result images in the panel and the popup. An `<img src>` cannot carry the host's
//! `Authorization` header, so images are fetched with the typed client into object URLs.
//!
//! Thumbnails (the host's ≈256 px JPEGs, never the full files) are cached (least recently
//! used first out, their URLs revoked) and fetched lazily: a [`Thumb`] asks only while it is
//! mounted — the virtual lists mount only the rows in view — and the newest asks go first, a
//! few at a time, so scrolling fast through 10,000 rows fetches what stops on screen. A
//! missing image is a placeholder, never a broken image. The full-size viewer fetches one
//! image at a time ([`full_image`]).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use yew::prelude::*;

use crate::web::host::{Host, blob};

/// Thumbnails kept as object URLs.
const CAPACITY: usize = 400;
/// Thumbnail fetches at once.
const PARALLEL: usize = 4;

/// What a thumbnail request gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// An object URL (or data URL) to show.
    Ready(String),
    /// The host has no such image (deleted, or the task has none): show a placeholder.
    Missing,
}

struct Job {
    key: String,
    host: Host,
    id: String,
    index: usize,
    version: i64,
    alive: Rc<Cell<bool>>,
    done: Callback<Slot>,
}

#[derive(Default)]
struct Cache {
    slots: HashMap<String, Slot>,
    lru: VecDeque<String>,
    queue: Vec<Job>,
    busy: usize,
    /// Thumbnails fetched since start (the bench reads it).
    fetched: u32,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// How many thumbnails were fetched so far (the bench page's lazy-loading figure).
pub fn fetched() -> u32 {
    CACHE.with(|c| c.borrow().fetched)
}

fn remember(key: String, slot: Slot) {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        c.lru.push_back(key.clone());
        c.slots.insert(key, slot);
        while c.lru.len() > CAPACITY {
            if let Some(old) = c.lru.pop_front()
                && let Some(Slot::Ready(url)) = c.slots.remove(&old)
                && url.starts_with("blob:")
            {
                let _ = web_sys::Url::revoke_object_url(&url);
            }
        }
    });
}

/// Starts queued fetches while fewer than [`PARALLEL`] run; newest request first, skipping
/// the ones whose row scrolled away.
fn pump() {
    loop {
        let job = CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if c.busy >= PARALLEL {
                return None;
            }
            while let Some(j) = c.queue.pop() {
                if !j.alive.get() {
                    continue;
                }
                if let Some(s) = c.slots.get(&j.key) {
                    j.done.emit(s.clone());
                    continue;
                }
                c.busy += 1;
                c.fetched += 1;
                return Some(j);
            }
            None
        });
        let Some(job) = job else { return };
        super::notify::spawn(async move {
            let v = Some(job.version).filter(|v| *v != 0);
            let slot = fetch_thumb(&job.host, &job.id, job.index, v).await;
            CACHE.with(|c| c.borrow_mut().busy -= 1);
            if let Some(slot) = slot {
                remember(job.key, slot.clone());
                if job.alive.get() {
                    job.done.emit(slot);
                }
            }
            pump();
        });
    }
}

/// `None` when the host could not be asked (offline): not remembered, asked again later.
async fn fetch_thumb(host: &Host, id: &str, index: usize, version: Option<i64>) -> Option<Slot> {
    #[cfg(feature = "test-hooks")]
    if host.base == BENCH_HOST {
        return Some(bench_thumb(index));
    }
    match host.api().thumbnail(id, index, version).await {
        Ok(f) => Some(
            blob(&f.bytes, &f.content_type)
                .ok()
                .and_then(|b| web_sys::Url::create_object_url_with_blob(&b).ok())
                .map_or(Slot::Missing, Slot::Ready),
        ),
        Err(e) if e.status().is_some() => Some(Slot::Missing),
        Err(_) => None,
    }
}

/// Test hook: the bench page's host, whose thumbnails are made locally.
#[cfg(feature = "test-hooks")]
pub const BENCH_HOST: &str = "bench:";

#[cfg(feature = "test-hooks")]
fn bench_thumb(index: usize) -> Slot {
    let hue = (index * 37) % 360;
    Slot::Ready(format!(
        "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='64' height='64'%3E\
         %3Crect width='64' height='64' fill='hsl({hue},50%25,40%25)'/%3E%3C/svg%3E"
    ))
}

/// Props of [`Thumb`].
#[derive(Properties, PartialEq, Clone)]
pub struct ThumbProps {
    /// The host.
    pub host: Host,
    /// Task id.
    pub id: String,
    /// Image index.
    #[prop_or_default]
    pub index: usize,
    /// Changes when the task's images may have changed (its finish time), so a requeued task
    /// does not show its old thumbnail.
    #[prop_or_default]
    pub version: i64,
    /// Whether the task has images at all (none: the placeholder, nothing fetched).
    #[prop_or(true)]
    pub has_image: bool,
}

/// A result's thumbnail, fetched when mounted.
#[function_component(Thumb)]
pub fn thumb(p: &ThumbProps) -> Html {
    let key = format!("{}|{}|{}|{}", p.host.base, p.id, p.index, p.version);
    let slot = use_state(|| CACHE.with(|c| c.borrow().slots.get(&key).cloned()));
    {
        let (slot, p) = (slot.clone(), p.clone());
        use_effect_with(key.clone(), move |key| {
            let alive = Rc::new(Cell::new(true));
            let cached = CACHE.with(|c| c.borrow().slots.get(key).cloned());
            if let Some(s) = cached {
                if slot.as_ref() != Some(&s) {
                    slot.set(Some(s));
                }
            } else if p.has_image {
                if slot.is_some() {
                    slot.set(None);
                }
                let done = {
                    let slot = slot.clone();
                    Callback::from(move |s: Slot| slot.set(Some(s)))
                };
                CACHE.with(|c| {
                    c.borrow_mut().queue.push(Job {
                        key: key.clone(),
                        host: p.host.clone(),
                        id: p.id.clone(),
                        index: p.index,
                        version: p.version,
                        alive: alive.clone(),
                        done,
                    })
                });
                pump();
            }
            move || alive.set(false)
        });
    }
    match (&*slot, p.has_image) {
        (Some(Slot::Ready(url)), _) => {
            html! { <img class="thumb" src={url.clone()} alt="" decoding="async" draggable="false" /> }
        }
        (Some(Slot::Missing), _) | (None, false) => {
            html! { <span class="thumb noimg" title="No image">{"∅"}</span> }
        }
        (None, true) => html! { <span class="thumb loading"></span> },
    }
}

/// Fetches one full-size image into an object URL (the caller revokes it when it shows
/// another); `Slot::Missing` when the host has none.
pub async fn full_image(host: &Host, id: &str, index: usize) -> Slot {
    match host.api().image(id, index).await {
        Ok(f) => blob(&f.bytes, &f.content_type)
            .ok()
            .and_then(|b| web_sys::Url::create_object_url_with_blob(&b).ok())
            .map_or(Slot::Missing, Slot::Ready),
        Err(_) => Slot::Missing,
    }
}
