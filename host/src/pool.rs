//! The pool of backends and their workers: the `--backend` ones (there at every start) and
//! the ones added through the API (persisted, back after a restart until removed); adding,
//! removing, enabling, disabling and draining a backend while the host runs.
//!
//! Owns: the workers' tasks (one per backend; a removed backend's worker stops) and the
//! persistence of the added backends (`store::backends`).
//!
//! Several hosts on one store (PostgreSQL): the pool is the store's `backends` table, which
//! every host's `--backend` flags join ([`crate::store::api::TaskStore::ensure_backend`]) and
//! `POST /backends` adds to; each host keeps every backend in its list and follows the table
//! ([`Pool::follow`], every lease/3: rows added, removed, enabled or drained elsewhere), but a
//! backend's worker claims only while this host drives it (holds its lease,
//! [`crate::store::api::TaskStore::drive_backends`]): one host at a time; a lease lost stops its
//! claims at once, and a stopped host's backends are taken over once their lease ran out.
//! Must not: choose tasks (the policy, through the queue service's claim) or show
//! credentials: a backend is named by its credential-free URL and its id.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scheduler_api::{BackendInfo, BackendSource};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::backends::{Backend, Backends, SharedFigures};
use crate::error::HostError;
use crate::queue::Queue;
use crate::sdnext::RemoteError;
use crate::store::SharedStore;
use crate::store::api::StoreKind;
use crate::store::backends::AddedBackend;
use crate::worker::{Deps, Worker};

/// How often at most the figures of the backends this host drives are stored after runs
/// end (for the other hosts' `GET /backends`).
const FIGURES_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

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
    /// This host's id (the driver it shows for the backends it drives).
    host_id: String,
    /// The store is shared by several hosts (each backend driven by one of them).
    shared: bool,
    /// Held by a change of this host's pool (an admin action, an add, a remove) and by a
    /// round of following the shared table: a round never reads a row between a change
    /// here and its write.
    changing: tokio::sync::Mutex<()>,
}

/// This host in the pool.
#[derive(Debug, Clone)]
pub struct Member {
    /// Its id (the driver it shows for the backends it drives).
    pub host_id: String,
    /// On a shared store, the rows of its `--backend` ones: `(backend id, row)`.
    pub flag_rows: Vec<(String, i64)>,
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
    /// finishers) until shutdown. On a shared store every row is in the pool (the
    /// `--backend` ones' rows: [`Member::flag_rows`], from
    /// [`crate::store::api::TaskStore::ensure_backend`]); this host drives those whose lease
    /// it gets.
    pub async fn start(
        backends: Arc<Backends>,
        store: SharedStore,
        queue: Arc<Queue>,
        deps: Deps,
        finishers: mpsc::Sender<()>,
        member: Member,
    ) -> Result<Pool, HostError> {
        let Member { host_id, flag_rows } = member;
        let shared = store.kind() == StoreKind::Postgres;
        for b in backends.all() {
            let mut d = b.driving();
            if shared {
                d.row = flag_rows.iter().find(|(id, _)| *id == b.id).map(|r| r.1);
                d.here = false;
            } else {
                d.driver = Some(host_id.clone());
            }
        }
        // A read (the host starts on a full disk).
        let added = store.added_backends().await?;
        let pool = Pool {
            backends,
            store,
            queue,
            deps,
            finishers: Mutex::new(Some(finishers)),
            workers: Mutex::new(Vec::new()),
            host_id,
            shared,
            changing: tokio::sync::Mutex::new(()),
        };
        for a in &added {
            pool.join_row(a);
        }
        // A `--backend` one disabled or drained from any host stays so (drained by now).
        for b in pool.backends.all() {
            let row = b.driving().row;
            if let Some(a) = added.iter().find(|a| Some(a.id) == row) {
                b.status().disabled = !a.enabled || a.draining;
            }
        }
        if shared {
            pool.drive().await;
        }
        for b in pool.backends.all() {
            pool.spawn(b);
        }
        Ok(pool)
    }

    /// A stored backend joins this host's pool, unless it is in it (by its row, or its URL:
    /// another host's flag for a server this host has as a flag). Returns it.
    fn join_row(&self, a: &AddedBackend) -> Option<Arc<Backend>> {
        let all = self.backends.all();
        if all.iter().any(|b| b.driving().row == Some(a.id)) {
            return None;
        }
        let b = match Backend::with_id(&a.url, added_id(a.id), BackendSource::Added) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("added backend {} is not usable: {e}", a.id);
                return None;
            }
        };
        if all.iter().any(|o| o.url == b.url) {
            return None;
        }
        // A backend stored while draining had finished by now: drained.
        b.status().disabled = !a.enabled || a.draining;
        {
            let mut d = b.driving();
            if self.shared {
                d.row = Some(a.id);
                d.here = false;
            } else {
                d.driver = Some(self.host_id.clone());
            }
        }
        let b = Arc::new(b);
        self.backends.push(b.clone());
        Some(b)
    }

    /// How long a backend's lease lasts (the `lease_s` setting, as the claims' leases).
    fn lease(&self) -> Duration {
        crate::lease::lease_of(&self.deps.settings)
    }

    /// The row of a backend in the store: an added one's, or on a shared store any one's.
    fn row_of(&self, b: &Backend) -> Option<i64> {
        b.driving().row.or_else(|| stored_id(&b.id))
    }

    /// Takes or renews the leases of this host's backends (a shared store): each backend's
    /// worker claims only while this host drives it; a backend newly driven wakes the
    /// workers. When the store does not answer, nothing changes until the leases would run
    /// out (the workers then stop claiming: [`Backend::driven_here`]).
    async fn drive(&self) {
        let all = self.backends.all();
        let rows: Vec<i64> = all.iter().filter_map(|b| b.driving().row).collect();
        // The lease runs from no earlier than now (database time, when it is renewed).
        let until = std::time::Instant::now() + self.lease();
        let driven: HashSet<i64> = match self.store.drive_backends(rows).await {
            Ok(ids) => ids.into_iter().collect(),
            Err(e) => {
                // Nothing changes: a lease not renewed stops its worker's claims when it
                // would run out (`until`); a database that cannot be reached holds the queue
                // meanwhile anyway.
                tracing::warn!("backend leases: {e}");
                return;
            }
        };
        let drivers = self.store.backend_drivers().await.ok();
        let mut gained = false;
        for b in &all {
            let mut d = b.driving();
            let Some(row) = d.row else { continue };
            let here = driven.contains(&row);
            d.until = here.then_some(until);
            if here != d.here {
                if here {
                    tracing::info!("this host drives backend {} ({}) now", b.url, b.id);
                    gained = true;
                } else {
                    tracing::warn!("backend {} ({}): another host drives it now", b.url, b.id);
                }
                d.here = here;
            }
            if here {
                d.driver = Some(self.host_id.clone());
            } else if let Some(drivers) = &drivers {
                d.driver = drivers
                    .iter()
                    .find(|(id, _, _)| *id == row)
                    .and_then(|(_, driver, _)| driver.clone());
            }
        }
        if gained {
            self.queue.wake();
        }
    }

    /// Follows the shared store's backends until shutdown (every lease/3): rows added by
    /// other hosts join, rows removed leave (their worker stops, their running task here goes
    /// back), enabled/disabled/drained elsewhere applies here, and the leases are renewed.
    pub async fn follow(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        if !self.shared {
            return;
        }
        let mut changes = self.deps.settings.subscribe();
        let mut round = tokio::time::Instant::now() + self.lease() / 3;
        // The figures are stored at most every FIGURES_EVERY after runs end (a busy pool
        // ends runs many times a second: the other hosts see them that fresh, not per run).
        let mut figures_due = tokio::time::Instant::now();
        loop {
            let ran = tokio::select! {
                _ = tokio::time::sleep_until(round) => false,
                // A new lease's length applies at once.
                _ = changes.changed() => false,
                // A run ended here: the other hosts see its figures at once.
                _ = self.backends.run_ended() => true,
                _ = shutdown.wait_for(|v| *v) => break,
            };
            if ran {
                tokio::select! {
                    _ = tokio::time::sleep_until(figures_due) => {}
                    _ = shutdown.wait_for(|v| *v) => break,
                }
                self.store_figures().await;
                figures_due = tokio::time::Instant::now() + FIGURES_EVERY;
                continue;
            }
            round = tokio::time::Instant::now() + self.lease() / 3;
            let _changing = self.changing.lock().await;
            if let Err(e) = self.follow_rows().await {
                tracing::warn!("reading the shared backends: {e}");
            }
            self.drive().await;
            self.store_figures().await;
        }
    }

    /// Shutdown, once this host runs nothing: gives up its backend leases (another host
    /// takes them at once instead of after the lease).
    pub async fn release_leases(&self) {
        if !self.shared {
            return;
        }
        let rows: Vec<i64> = self
            .backends
            .all()
            .iter()
            .filter_map(|b| {
                let d = b.driving();
                d.row.filter(|_| d.here)
            })
            .collect();
        if let Err(e) = self.store.release_backends(rows).await {
            tracing::warn!("giving up the backend leases: {e}");
        }
    }

    /// Applies the shared table's rows to this host's pool.
    async fn follow_rows(&self) -> Result<(), HostError> {
        let rows = self.store.added_backends().await?;
        for a in &rows {
            if let Some(b) = self.join_row(a) {
                tracing::info!("backend {} ({}) joined the pool", b.url, b.id);
                self.spawn(b);
            }
        }
        for b in self.backends.all() {
            let Some(row) = b.driving().row else { continue };
            match rows.iter().find(|a| a.id == row) {
                None => {
                    // Removed on another host.
                    self.backends.remove(&b.id);
                    tracing::info!("backend {} ({}) removed on another host", b.url, b.id);
                    self.queue.withdraw(&b).await?;
                }
                Some(a) => {
                    let (disabled, draining) = {
                        let s = b.status();
                        (s.disabled, s.draining)
                    };
                    let action = if a.enabled && !a.draining && (disabled || draining) {
                        Some(Admin::Enable)
                    } else if !a.enabled && !disabled {
                        Some(Admin::Disable)
                    } else if a.enabled && a.draining && !draining && !disabled {
                        Some(Admin::Drain)
                    } else {
                        None
                    };
                    if let Some(action) = action {
                        tracing::info!("backend {} ({}): {action:?} on another host", b.url, b.id);
                        self.apply_admin(&b, action).await?;
                    }
                }
            }
        }
        Ok(())
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
        let stored = self.stored_figures().await;
        let row = b.driving().row;
        Ok(b.info_shared(&running, row.and_then(|r| stored.get(&r))))
    }

    /// `GET /backends`: every backend of the pool; on a shared store, one another host
    /// drives with the figures that host stored ([`Backend::info_shared`]).
    pub async fn infos(&self) -> Result<Vec<BackendInfo>, HostError> {
        let running = self.queue.running().await?;
        let stored = self.stored_figures().await;
        Ok(self.backends.infos(&running, &stored))
    }

    /// The figures the drivers of the shared store's backends stored, by row (none on a
    /// store only this host uses, or when they cannot be read: this host's own then).
    async fn stored_figures(&self) -> HashMap<i64, SharedFigures> {
        if !self.shared {
            return HashMap::new();
        }
        match self.store.backend_figures().await {
            Ok(rows) => rows
                .into_iter()
                .filter_map(|(row, json)| Some((row, serde_json::from_str(&json).ok()?)))
                .collect(),
            Err(e) => {
                tracing::warn!("reading the backends' figures: {e}");
                HashMap::new()
            }
        }
    }

    /// Stores the figures of the backends this host drives, for the other hosts' `GET
    /// /backends` (a shared store).
    async fn store_figures(&self) {
        let figures: Vec<(i64, String)> = self
            .backends
            .all()
            .iter()
            .filter_map(|b| {
                let row = {
                    let d = b.driving();
                    d.row.filter(|_| d.here)?
                };
                let json = serde_json::to_string(&b.shared_figures(&self.host_id)).ok()?;
                Some((row, json))
            })
            .collect();
        if let Err(e) = self.store.store_backend_figures(figures).await {
            tracing::warn!("storing the backends' figures: {e}");
        }
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
        let _changing = self.changing.lock().await;
        let now = self.deps.clock.now_ms();
        let id = self
            .store
            .add_backend(url.clone(), now)
            .await?
            .ok_or_else(|| HostError::Conflict(format!("{} is in the pool already", probe.url)))?;
        let b =
            Backend::with_id(&url, added_id(id), BackendSource::Added).map_err(|_| refused())?;
        if self.shared {
            let mut d = b.driving();
            d.row = Some(id);
            d.here = false;
        } else {
            b.driving().driver = Some(self.host_id.clone());
        }
        let b = Arc::new(b);
        tracing::info!("backend {} added as {}", b.url, b.id);
        self.backends.push(b.clone());
        if self.shared {
            // The host that adds it drives it, unless another host took it first.
            self.drive().await;
        }
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
        let _changing = self.changing.lock().await;
        let b = self.find(id)?;
        if let Some(n) = self.row_of(&b) {
            self.store.remove_backend(n).await?;
        }
        self.backends.remove(id);
        tracing::info!("backend {} ({}) removed", b.url, b.id);
        self.queue.withdraw(&b).await?;
        self.queue.wake();
        Ok(())
    }

    /// Enables, disables or drains a backend (persisted for an added one, and for every one
    /// on a shared store: every host applies it).
    pub async fn admin(&self, id: &str, action: Admin) -> Result<BackendInfo, HostError> {
        let _changing = self.changing.lock().await;
        let b = self.find(id)?;
        let (disabled, draining) = self.apply_admin(&b, action).await?;
        if let Some(n) = self.row_of(&b) {
            self.store.set_backend_admin(n, !disabled, draining).await?;
        }
        self.info(&b).await
    }

    /// Applies an admin action to this host's view of a backend; returns its `(disabled,
    /// draining)` after it.
    async fn apply_admin(
        &self,
        b: &Arc<Backend>,
        action: Admin,
    ) -> Result<(bool, bool), HostError> {
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
        tracing::info!("backend {} ({}): {action:?}", b.url, b.id);
        if action == Admin::Disable {
            self.queue.withdraw(b).await?;
        }
        self.queue.wake();
        Ok((disabled, draining))
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
