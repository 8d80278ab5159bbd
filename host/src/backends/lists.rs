//! What the door checks requests against, per backend and for the pool: each backend's
//! name lists (samplers, VAEs, upscalers, ControlNet models; its checkpoints are
//! [`super::BackendStatus::models`]) and its own request schema from `/openapi.json`,
//! cached here and refreshed off the request path ([`Backend::refresh_lists`]: when the
//! backend comes up, after runs at most once a minute, and when a request names something
//! no list has); and [`Backends::contract`], the pool's [`Contract`] snapshot, rebuilt only
//! when a list, a schema or the set of enabled backends changed.
//!
//! Locks: a backend's lists and its status are never held together.
//!
//! A list is checked only once every enabled backend has given it (a backend that has not
//! answered may list the name); the schemas are the enabled backends' own, or the committed
//! table while none has served one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::contract::{self, Contract, Names, Schema};
use crate::sdnext::{RemoteError, SdModel, resolve_checkpoint};

use super::{Backend, Backends};

/// How old a backend's lists may get before a run's end refreshes them.
pub const LISTS_MAX_AGE: Duration = Duration::from_secs(60);
/// How old they must be before a request naming something unknown refreshes them.
pub const LISTS_MISS_AGE: Duration = Duration::from_secs(10);

/// One backend's lists (`None`: not given yet).
#[derive(Debug, Default)]
pub struct Lists {
    /// `/samplers` names.
    pub samplers: Option<Vec<String>>,
    /// `/sd-vae` names.
    pub vaes: Option<Vec<String>>,
    /// `/upscalers` names.
    pub upscalers: Option<Vec<String>>,
    /// `/controlnets?model_type=all`.
    pub controlnets: Option<Vec<String>>,
    /// Its own request schema, read from its `/openapi.json`.
    pub schema: Option<Arc<Schema>>,
    /// Whether the schema was asked and answered (served or not): asked once per time the
    /// backend comes up.
    pub schema_asked: bool,
    /// When the lists were last refreshed.
    pub refreshed: Option<Instant>,
}

/// The per-backend part of the door's state.
#[derive(Debug)]
pub struct Door {
    /// Unique per backend ever made (the contract cache's key; an address could be reused).
    id: u64,
    lists: Mutex<Lists>,
    /// Bumped whenever a list, the schema or the checkpoints change.
    generation: AtomicU64,
    refreshing: AtomicBool,
}

impl Default for Door {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Door {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            lists: Mutex::default(),
            generation: AtomicU64::new(0),
            refreshing: AtomicBool::new(false),
        }
    }
}

impl Door {
    fn lists(&self) -> std::sync::MutexGuard<'_, Lists> {
        self.lists.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a change (the pool's contract is rebuilt on next use).
    pub fn bump(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }
}

fn keep(slot: &mut Option<Vec<String>>, fetched: Result<Vec<String>, RemoteError>, what: &str) {
    match fetched {
        Ok(v) => *slot = Some(v),
        // An SD.Next without the route (older, or an extension missing): no list to check.
        Err(RemoteError::Http { status: 404, .. }) => {}
        Err(e) => tracing::debug!("{what}: {e}"),
    }
}

impl Backend {
    /// Fetches the name lists (and, once per time the backend comes up, its
    /// `/openapi.json`) and caches them. Never on a request path; concurrent calls collapse
    /// into one.
    pub async fn refresh_lists(&self) {
        if self.door.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let c = &self.client;
        let ask_schema = !self.door.lists().schema_asked;
        let (samplers, vaes, upscalers, controlnets) =
            futures::join!(c.samplers(), c.sd_vaes(), c.upscalers(), c.controlnets());
        let schema = if ask_schema {
            Some(c.openapi().await)
        } else {
            None
        };
        {
            let mut l = self.door.lists();
            keep(&mut l.samplers, samplers, "samplers");
            keep(&mut l.vaes, vaes, "sd-vae");
            keep(&mut l.upscalers, upscalers, "upscalers");
            keep(&mut l.controlnets, controlnets, "controlnets");
            match schema {
                Some(Ok(doc)) => {
                    l.schema_asked = true;
                    match contract::live_schema(&doc) {
                        Ok(s) => l.schema = Some(Arc::new(s)),
                        Err(e) => {
                            tracing::warn!(
                                "{}: /openapi.json has no request models: {e}",
                                self.url
                            );
                            l.schema = None;
                        }
                    }
                }
                // Served no document (SD_NODOCS, not SD.Next): the committed table applies.
                Some(Err(e)) if !e.is_outage() => {
                    l.schema_asked = true;
                    l.schema = None;
                }
                _ => {}
            }
            l.refreshed = Some(Instant::now());
        }
        self.door.bump();
        self.door.refreshing.store(false, Ordering::Release);
    }

    /// The backend came (back) up: its SD.Next may be another version now.
    pub fn forget_schema(&self) {
        self.door.lists().schema_asked = false;
    }

    /// Where its request contract comes from (`openapi`: its own document; `table`: the
    /// committed one), once its lists were read.
    pub fn contract_source(&self) -> Option<&'static str> {
        let l = self.door.lists();
        let read = l.samplers.is_some()
            || l.vaes.is_some()
            || l.upscalers.is_some()
            || l.controlnets.is_some()
            || l.schema_asked;
        if !read {
            return None;
        }
        Some(if l.schema.is_some() {
            "openapi"
        } else {
            "table"
        })
    }

    /// Whether its lists are older than `age` (or were never fetched).
    pub fn lists_older_than(&self, age: Duration) -> bool {
        self.door
            .lists()
            .refreshed
            .is_none_or(|t| t.elapsed() > age)
    }
}

/// What a contract was built from: each backend's id, lists generation and whether it
/// was enabled.
type ContractKey = Vec<(u64, u64, bool)>;

/// The pool's contract, cached with the key it was built for.
#[derive(Default)]
pub(super) struct ContractCache {
    built: Mutex<Option<(ContractKey, Arc<Contract>)>>,
}

/// The union of a list over backends, when every one of them has given it.
fn union_all<'a>(lists: impl Iterator<Item = Option<&'a Vec<String>>>) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for l in lists {
        for name in l? {
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
    }
    Some(out)
}

impl Backends {
    /// The contract the door checks against now (no I/O: cached lists and schemas).
    pub fn contract(&self) -> Arc<Contract> {
        let list = self.all();
        let key: ContractKey = list
            .iter()
            .map(|b| {
                (
                    b.door.id,
                    b.door.generation.load(Ordering::Relaxed),
                    !b.status().disabled,
                )
            })
            .collect();
        let mut cache = self
            .contract
            .built
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some((k, c)) = cache.as_ref()
            && *k == key
        {
            return c.clone();
        }
        let enabled: Vec<&Arc<Backend>> = list.iter().filter(|b| !b.status().disabled).collect();
        let c = Arc::new(build(&enabled));
        *cache = Some((key, c.clone()));
        c
    }

    /// A request named something no list has: refresh the lists older than
    /// [`LISTS_MISS_AGE`] in the background (the next request sees them).
    pub fn refresh_on_miss(&self) {
        for b in self.all() {
            let disabled = b.status().disabled;
            if !disabled && b.lists_older_than(LISTS_MISS_AGE) {
                tokio::spawn(async move { b.refresh_lists().await });
            }
        }
    }
}

fn build(enabled: &[&Arc<Backend>]) -> Contract {
    if enabled.is_empty() {
        return Contract::default();
    }
    // The status locks first, released before the lists are locked (never both held).
    let models: Vec<Option<Vec<SdModel>>> =
        enabled.iter().map(|b| b.status().models.clone()).collect();
    let lists: Vec<std::sync::MutexGuard<'_, Lists>> =
        enabled.iter().map(|b| b.door.lists()).collect();
    let mut schemas: Vec<Arc<Schema>> = Vec::new();
    for s in lists.iter().filter_map(|l| l.schema.as_ref()) {
        if !schemas.iter().any(|k| Arc::ptr_eq(k, s) || **k == **s) {
            schemas.push(s.clone());
        }
    }
    if schemas.is_empty() {
        schemas.push(contract::committed());
    }
    let (checkpoint_known, checkpoints) = if models.iter().all(Option::is_some) {
        let all: Vec<SdModel> = models.into_iter().flatten().flatten().collect();
        let mut titles: Vec<String> = Vec::new();
        for m in &all {
            if !titles.contains(&m.title) {
                titles.push(m.title.clone());
            }
        }
        let known: contract::names::CheckpointResolver =
            Arc::new(move |t: &str| resolve_checkpoint(&all, t).is_some());
        (Some(known), titles)
    } else {
        (None, Vec::new())
    };
    let names = Names {
        checkpoint_known,
        checkpoints,
        samplers: union_all(lists.iter().map(|l| l.samplers.as_ref())),
        vaes: union_all(lists.iter().map(|l| l.vaes.as_ref())),
        upscalers: union_all(lists.iter().map(|l| l.upscalers.as_ref())),
        controlnets: union_all(lists.iter().map(|l| l.controlnets.as_ref())),
    };
    Contract { schemas, names }
}
