//! The pool of backends and their workers: the `--backend` ones (there at every start) and
//! the ones added through the API (persisted, back after a restart until removed); adding,
//! removing, enabling, disabling and draining a backend while the host runs.
//!
//! Owns: the workers' tasks (one per backend; a removed backend's worker stops) and the
//! persistence of the added backends (`store::backends`).
//! Must not: choose tasks (the policy, through the queue service's claim) or show
//! credentials: a backend is named by its credential-free URL and its id.

use std::sync::{Arc, Mutex};

use scheduler_api::{BackendInfo, BackendSource};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::backends::{Backend, Backends};
use crate::error::HostError;
use crate::queue::Queue;
use crate::sdnext::RemoteError;
use crate::store::SharedStore;
use crate::worker::{Deps, Worker};

/// At most this many backends in the pool.
pub const MAX_BACKENDS: usize = 64;

/// What an admin action does to a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admin {
    /// Takes tasks again.
    Enable,
    /// Takes no task from now on; its running task goes back to the head of the queue at
    /// once (no attempt counted) for another backend, or ends interrupted when the user had
    /// asked to stop it.
    Disable,
    /// Takes no new task; its running task finishes; then it is disabled.
    Drain,
}

/// The pool.
pub struct Pool {
    backends: Arc<Backends>,
    store: SharedStore,
    queue: Arc<Queue>,
    deps: Deps,
    finishers: Mutex<Option<mpsc::Sender<()>>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

fn added_id(n: i64) -> String {
    format!("added-{n}")
}

fn stored_id(id: &str) -> Option<i64> {
    id.strip_prefix("added-")?.parse().ok()
}

impl Pool {
    /// The pool over `backends` (the `--backend` ones), plus the added ones the store keeps;
    /// starts one worker per backend. `finishers` is held by every worker (and its
    /// finishers) until shutdown.
    pub async fn start(
        backends: Arc<Backends>,
        store: SharedStore,
        queue: Arc<Queue>,
        deps: Deps,
        finishers: mpsc::Sender<()>,
    ) -> Result<Pool, HostError> {
        // A read (the host starts on a full disk).
        let added = store.added_backends().await?;
        // Shared (PostgreSQL): the `--backend` ones are stored too; here they stay flags.
        let shared = store.kind() == crate::store::api::StoreKind::Postgres;
        for a in added {
            match Backend::with_id(&a.url, added_id(a.id), BackendSource::Added) {
                Ok(b) if shared && backends.all().iter().any(|f| f.url == b.url) => {}
                Ok(b) => {
                    // A backend stored while draining had finished by now: drained.
                    b.status().disabled = !a.enabled || a.draining;
                    backends.push(Arc::new(b));
                }
                Err(e) => tracing::warn!("added backend {} is not usable: {e}", a.id),
            }
        }
        let pool = Pool {
            backends,
            store,
            queue,
            deps,
            finishers: Mutex::new(Some(finishers)),
            workers: Mutex::new(Vec::new()),
        };
        for b in pool.backends.all() {
            pool.spawn(b);
        }
        Ok(pool)
    }

    fn spawn(&self, b: Arc<Backend>) {
        let Some(fin) = self
            .finishers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return;
        };
        let w = tokio::spawn(Worker::new(self.deps.clone(), b, fin).run());
        self.workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(w);
    }

    async fn info(&self, b: &Backend) -> Result<BackendInfo, HostError> {
        let running = self.queue.running().await?;
        Ok(b.info(&running))
    }

    /// Adds a backend (persisted) and starts its worker. 422 for a URL that is not an
    /// `http(s)` base URL, 409 when it is in the pool already or the pool is full.
    pub async fn add(&self, url: &str) -> Result<BackendInfo, HostError> {
        let url = url.trim().to_owned();
        // The error never repeats the URL: it may hold credentials.
        let refused = || {
            HostError::Invalid(
                "url must be an SD.Next base URL: http(s)://[user:pass@]host[:port][/path]".into(),
            )
        };
        let probe = Backend::new(&url).map_err(|e| match e {
            RemoteError::Refused(why) => HostError::Invalid(why),
            _ => refused(),
        })?;
        // A name is looked up once here: one that leads to a link-local or metadata address is
        // refused like the address (a name that does not resolve now is taken: it is down).
        if let Some(why) = refused_by_lookup(&probe.client.origin()).await {
            return Err(HostError::Invalid(why));
        }
        if self.backends.all().iter().any(|b| b.url == probe.url) {
            return Err(HostError::Conflict(format!(
                "{} is in the pool already",
                probe.url
            )));
        }
        if self.backends.len() >= MAX_BACKENDS {
            return Err(HostError::Conflict(format!(
                "the pool has {MAX_BACKENDS} backends already"
            )));
        }
        let now = self.deps.clock.now_ms();
        let id = self
            .store
            .add_backend(url.clone(), now)
            .await?
            .ok_or_else(|| HostError::Conflict(format!("{} is in the pool already", probe.url)))?;
        let b = Arc::new(
            Backend::with_id(&url, added_id(id), BackendSource::Added).map_err(|_| refused())?,
        );
        tracing::info!("backend {} added as {}", b.url, b.id);
        self.backends.push(b.clone());
        self.spawn(b.clone());
        self.queue.wake();
        self.info(&b).await
    }

    fn find(&self, id: &str) -> Result<Arc<Backend>, HostError> {
        self.backends
            .by_id(id)
            .ok_or_else(|| HostError::Missing(format!("no backend {id}")))
    }

    /// Removes a backend: its worker stops, its running task goes back to the head of the
    /// queue at once (or ends interrupted when the user had asked to stop it), during a
    /// checkpoint load as during a run; an added one is forgotten, a `--backend` one returns
    /// at the next start.
    pub async fn remove(&self, id: &str) -> Result<(), HostError> {
        let b = self.find(id)?;
        if let Some(n) = stored_id(&b.id) {
            self.store.remove_backend(n).await?;
        }
        self.backends.remove(id);
        tracing::info!("backend {} ({}) removed", b.url, b.id);
        self.queue.withdraw(&b).await?;
        self.queue.wake();
        Ok(())
    }

    /// Enables, disables or drains a backend (persisted for an added one).
    pub async fn admin(&self, id: &str, action: Admin) -> Result<BackendInfo, HostError> {
        let b = self.find(id)?;
        let (disabled, draining) = {
            let mut s = b.status();
            match action {
                Admin::Enable => {
                    s.disabled = false;
                    s.draining = false;
                }
                Admin::Disable => {
                    s.disabled = true;
                    s.draining = false;
                }
                // Drained at once when it runs nothing.
                Admin::Drain if s.running.is_none() => {
                    s.disabled = true;
                    s.draining = false;
                }
                Admin::Drain => s.draining = true,
            }
            (s.disabled, s.draining)
        };
        if let Some(n) = stored_id(&b.id) {
            self.store.set_backend_admin(n, !disabled, draining).await?;
        }
        tracing::info!("backend {} ({}): {action:?}", b.url, b.id);
        if action == Admin::Disable {
            self.queue.withdraw(&b).await?;
        }
        self.queue.wake();
        self.info(&b).await
    }

    /// Shutdown: waits for every worker (they stop on the shutdown signal) and lets go of
    /// the finishers' channel.
    pub async fn join(&self) {
        let workers: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
        for w in workers {
            let _ = w.await;
        }
        self.finishers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

/// Why the addresses a backend's `scheme://host:port` resolves to are refused (link-local
/// or metadata), if they are; nothing when the name does not resolve within 5 s.
async fn refused_by_lookup(origin: &str) -> Option<String> {
    let u = url::Url::parse(origin).ok()?;
    let host = match u.host()? {
        url::Host::Domain(d) => d.to_owned(),
        _ => return None,
    };
    let port = u.port_or_known_default()?;
    let addrs = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    .ok()?
    .ok()?;
    addrs
        .into_iter()
        .find_map(|a| crate::model::callback::backend_address_refused(a.ip()))
}
