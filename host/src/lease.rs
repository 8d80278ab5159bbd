//! The leases of this host's claims on a shared (PostgreSQL) store: every third of the
//! `lease_s` setting the heartbeat renews them (so no other host takes them over while this
//! one runs them) and the reclaimer recovers the running tasks whose lease expired (their
//! host is gone), announcing them and waking the workers as the start-up recovery does.
//! On SQLite neither runs: one host owns the file and its leases never expire.
//!
//! Owns: applying `lease_s` to the store (at start and on every change), what `/health`
//! shows of the leases ([`Leases`]).
//! Must not: decide anything (the store recovers by the transition function).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::queue::Queue;
use crate::settings::SettingsService;
use crate::store::SharedStore;
use crate::store::pg::PgStore;

/// What `/health` shows of this host: its id and, on a shared store, its leases.
#[derive(Debug)]
pub struct HostStatus {
    /// This host's id.
    pub host_id: String,
    /// Its leases (`None` on SQLite).
    pub leases: Option<Arc<Leases>>,
}

/// What `/health` shows of this host's leases.
#[derive(Debug, Default)]
pub struct Leases {
    seconds: AtomicU64,
    held: AtomicUsize,
    renewed: Mutex<Option<Instant>>,
}

impl Leases {
    /// The lease's length (s), the claims this host holds, and how long ago (ms) they were
    /// last renewed (`None` before the first renewal).
    pub fn snapshot(&self) -> (u64, usize, Option<u64>) {
        let ago = self
            .renewed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|at| u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX));
        (
            self.seconds.load(Ordering::Relaxed),
            self.held.load(Ordering::Relaxed),
            ago,
        )
    }

    fn renewed(&self, held: usize) {
        self.held.store(held, Ordering::Relaxed);
        *self.renewed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }
}

/// The lease of `settings` (3..=600 s).
pub fn lease_of(settings: &SettingsService) -> Duration {
    Duration::from_secs(u64::from(settings.get().lease_s.clamp(3, 600)))
}

/// Applies the `lease_s` setting to `pg` now (start-up, before the first claim).
pub fn apply(pg: &PgStore, settings: &SettingsService, leases: &Leases) {
    let lease = lease_of(settings);
    pg.set_lease(lease);
    leases.seconds.store(lease.as_secs(), Ordering::Relaxed);
}

/// Runs the heartbeat and the reclaimer until shutdown: every third of the lease (and at
/// once when the setting changes) renews this host's claims, then recovers the expired
/// ones of any host. A failure is logged (a database that cannot be reached holds the
/// queue: [`crate::reach`]); the next round tries again.
pub async fn run(
    pg: PgStore,
    store: SharedStore,
    settings: Arc<SettingsService>,
    queue: Arc<Queue>,
    leases: Arc<Leases>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut changes = settings.subscribe();
    loop {
        // Settings another host changed reach this host's services within a round.
        if let Err(e) = settings.refresh().await {
            tracing::debug!("reading the settings: {e}");
        }
        apply(&pg, &settings, &leases);
        match store.renew_leases(queue.held_fences()).await {
            Ok(held) => leases.renewed(held),
            Err(e) => {
                tracing::warn!("renewing this host's leases: {e}");
            }
        }
        let policy = settings.policy();
        let now = queue.clock().now_ms();
        match store.reclaim_expired(policy, now).await {
            Ok(changed) if !changed.is_empty() => queue.reclaimed(&changed).await,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("recovering expired claims: {e}");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(lease_of(&settings) / 3) => {}
            r = changes.changed() => if r.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}
