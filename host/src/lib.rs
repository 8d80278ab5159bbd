//! The agent-scheduler host: a durable task queue that feeds SD.Next servers.
//!
//! # Layout
//! - [`run`] starts everything from a config, a bound listener and a shutdown future;
//!   `main.rs` only parses flags and calls it. It reads the host id, opens the store the
//!   configuration names ([`store::open`]: SQLite or PostgreSQL; the services see only the
//!   contract, [`store::SharedStore`]) and builds the services below, each with its
//!   dependencies passed in explicitly (no shared god object); the one [`clock::Clock`]
//!   (from the configuration: the system's, or a test's manual clock) goes to each that
//!   stores a time:
//!   - [`disk::Disk`] (the data directory's space; the store and the result files report
//!     to it),
//!   - [`settings::SettingsService`] (store),
//!   - [`events::EventHub`] (store, clock),
//!   - [`backends::Backends`] (the SD.Next clients),
//!   - [`queue::Queue`] (store, events, settings, backends, result files, the callback
//!     deliverer's wake-up, disk, the database's reach, clock),
//!   - [`intake::Intake`] (queue, backends, the callback rules),
//!   - [`results::Results`] (store, result files, events, settings, clock; thumbnails),
//!   - [`eta::Eta`] (store, backends, settings, events, clock: measured speeds, the queue's ETA),
//!   - then the [`pool::Pool`] (one [`worker::Worker`] per backend, added ones included),
//!     the [`callbacks`] deliverer (clock), on a shared store the [`lease`] heartbeat and
//!     reclaimer and the [`reach`] watcher, and [`http`].
//! - [`model`] is the pure task model: the one transition function, ranks, enqueue parsing.
//! - [`store`] holds all SQL (one SQLite file, WAL, append-only migrations; or a PostgreSQL
//!   database several hosts share).
//! - [`sdnext`] is the typed SD.Next client.
//! - `cli/` is the command line beside `serve` (`enqueue`, `ls`, `watch`, …): an HTTP client of
//!   a running host through `scheduler-api`'s typed client, nothing more.
//!
//! Invariants: no SQL outside `store/`; no reqwest outside `sdnext/`, `callbacks` and
//! `scheduler-api`'s `client` feature; every status change is decided by
//! `model::transition::decide` and written by `store::transitions`; a task is `done` only
//! after its files are on disk; nothing from a request is ever executed.

pub mod backends;
pub mod callbacks;
pub mod cli;
pub mod clock;
pub mod config;
pub mod disk;
pub mod error;
pub mod eta;
pub mod events;
pub mod http;
pub mod intake;
pub mod lease;
pub mod model;
pub mod pool;
pub mod queue;
pub mod reach;
pub mod results;
pub mod sdnext;
pub mod settings;
pub mod store;
pub mod worker;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};

use scheduler_api::BackendSource;

use crate::backends::{Backend, Backends};
use crate::config::Config;
use crate::store::{SharedStore, StoreError};

/// Why the host could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is refused.
    #[error("configuration: {0}")]
    Config(String),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// File system or socket error.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A service failed at start or at shutdown (recovery, release).
    #[error(transparent)]
    Service(#[from] error::HostError),
}

/// This host's id: `given` (`--host-id`), else the one in `<data_dir>/host-id`, made once
/// (the host name, `-`, 6 random hex digits).
fn host_id(data_dir: &std::path::Path, given: Option<&str>) -> Result<String, RunError> {
    let valid = |id: &str| {
        !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if let Some(id) = given {
        let id = id.trim();
        if !valid(id) {
            return Err(RunError::Config(format!(
                "--host-id {id:?}: give 1 to 64 letters, digits, '-', '_' or '.'"
            )));
        }
        return Ok(id.to_owned());
    }
    let path = data_dir.join("host-id");
    match std::fs::read_to_string(&path) {
        Ok(s) if valid(s.trim()) => return Ok(s.trim().to_owned()),
        Ok(_) => {
            return Err(RunError::Config(format!(
                "{} does not hold a host id (remove it to make a new one, or give --host-id)",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let name: String = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(50)
        .collect();
    let name = if name.is_empty() {
        "host".to_owned()
    } else {
        name
    };
    let hex = uuid::Uuid::new_v4().simple().to_string();
    let id = format!("{name}-{}", &hex[..6]);
    // Written whole under a temporary name, then renamed: never a half-written id.
    let tmp = data_dir.join("host-id.tmp");
    std::fs::write(&tmp, format!("{id}\n"))?;
    std::fs::rename(&tmp, &path)?;
    Ok(id)
}

/// Runs the host until `shutdown` completes: opens the store, recovers tasks left running,
/// starts the background sweep of orphan files, one worker per backend, the callback deliverer and the
/// retention timer, then serves HTTP on `listener`. On shutdown: stops accepting, stops the
/// workers, waits for finishers, and puts tasks still running back at the head.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let addr = listener.local_addr()?;
    config.check_listen(addr).map_err(RunError::Config)?;
    std::fs::create_dir_all(&config.data_dir)?;
    // One host per data directory: a second one would "recover" the first one's running tasks.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(config.data_dir.join("host.lock"))?;
    if lock.try_lock().is_err() {
        return Err(RunError::Config(format!(
            "another agent-scheduler is already using {}",
            config.data_dir.display()
        )));
    }
    let disk = disk::Disk::new(&config.data_dir);
    // A test may ask to start on a "full disk" (the store and the results writer fail).
    if config.test_faults.as_ref().is_some_and(|f| f.disk_full) {
        disk.inject(true, false);
    }
    let host_id = host_id(&config.data_dir, config.host_id.as_deref())?;
    tracing::info!("store: {}", config.database.describe(&config.data_dir));
    tracing::info!("host id: {host_id}");
    let opened = store::open(
        &config.database,
        &config.data_dir,
        &host_id,
        store::pg::DEFAULT_LEASE,
        Some(disk.clone()),
    )
    .await?;
    // On a shared database every call reports whether it could reach it (the hold).
    let reach = Arc::new(reach::Reach::default());
    let store: SharedStore = match &opened.pg {
        Some(_) => Arc::new(reach::Watched::new(opened.shared.clone(), reach.clone())),
        None => opened.shared.clone(),
    };
    let folder = results::ResultFiles::new(&config.data_dir).with_disk(disk.clone());
    std::fs::create_dir_all(folder.root())?;
    // Result files: in the database with PostgreSQL (any host serves any result), else in
    // the results folder.
    let files = match &opened.pg {
        Some(pg) => results::ResultStorage::Pg(pg.clone()),
        None => results::ResultStorage::Disk(folder),
    };

    // Is there space? A failed write marks the disk full: the host still starts, serves reads
    // and holds the queue until space returns.
    if let Err(e) = disk.probe_files() {
        disk.check_io(&e);
    }
    let _ = store.probe_write().await;
    let settings = Arc::new(settings::SettingsService::load(store.clone()).await?);
    let leases = Arc::new(lease::Leases::default());
    if let Some(pg) = &opened.pg {
        lease::apply(pg, &settings, &leases);
    }
    if config.start_paused || settings.get().start_paused {
        match store.set_paused(true).await {
            // On a full disk the host still starts (on hold, which runs nothing either).
            Err(StoreError::DiskFull) => {
                tracing::error!("--start-paused cannot be written: the disk is full")
            }
            other => other?,
        }
    }
    let started = std::time::SystemTime::now();
    let clock = config.clock.clone();

    let mut list = Vec::new();
    for (i, url) in config.backends.iter().enumerate() {
        let b = Backend::with_id(url, format!("flag-{}", i + 1), BackendSource::Flag)
            .map_err(|e| RunError::Config(format!("backend {}: {e}", sdnext::redacted(url))))?;
        list.push(Arc::new(b));
    }
    let backends = Arc::new(Backends::new(list));

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let events = events::EventHub::start(store.clone(), clock.clone());
    let callbacks_wake = Arc::new(Notify::new());
    let queue = Arc::new(queue::Queue::new(
        store.clone(),
        events.clone(),
        settings.clone(),
        backends.clone(),
        files.clone(),
        callbacks_wake.clone(),
        disk.clone(),
        reach.clone(),
        clock.clone(),
    ));
    // Several hosts on one store: the others' events, live events and wake-ups reach this one.
    if let Some(notices) = store.subscribe().await? {
        let q = queue.clone();
        events
            .follow(notices, move || q.wake(), shutdown_rx.clone())
            .await?;
    }
    queue.recover().await?;
    let callback_rules = Arc::new(model::callback::CallbackRules {
        listen: addr,
        allowed: config.allow_callback_hosts.clone(),
    });
    let intake = Arc::new(intake::Intake::new(
        queue.clone(),
        backends.clone(),
        callback_rules.clone(),
    ));
    let results = Arc::new(results::Results::new(
        store.clone(),
        files.clone(),
        events.clone(),
        settings.clone(),
        clock.clone(),
    ));

    let (fin_tx, mut fin_rx) = mpsc::channel::<()>(1);
    let eta = Arc::new(eta::Eta::new(
        store.clone(),
        backends.clone(),
        settings.clone(),
        events.clone(),
        clock.clone(),
    ));
    let deps = worker::Deps {
        eta: eta.clone(),
        queue: queue.clone(),
        backends: backends.clone(),
        results: results.clone(),
        events: events.clone(),
        settings: settings.clone(),
        shutdown: shutdown_rx.clone(),
        clock: clock.clone(),
    };
    // Several hosts on one store: every host's `--backend` ones join the one pool.
    let mut flag_rows = Vec::new();
    if store.kind() == store::api::StoreKind::Postgres {
        for (b, url) in backends.all().iter().zip(&config.backends) {
            flag_rows.push((
                b.id.clone(),
                store.ensure_backend(url.clone(), clock.now_ms()).await?,
            ));
        }
    }
    // One worker per backend: the `--backend` ones and the ones added through the API.
    let pool = Arc::new(
        pool::Pool::start(
            backends.clone(),
            store.clone(),
            queue.clone(),
            deps,
            fin_tx,
            pool::Member {
                host_id: host_id.clone(),
                flag_rows,
            },
        )
        .await?,
    );
    let pool_follower = tokio::spawn(pool.clone().follow(shutdown_rx.clone()));
    let deliverer = tokio::spawn(callbacks::run(
        store.clone(),
        files.clone(),
        callback_rules.clone(),
        callbacks_wake,
        clock.clone(),
        shutdown_rx.clone(),
    ));
    let retention = tokio::spawn(results.clone().run_retention(shutdown_rx.clone()));
    // Shared: the heartbeat of this host's claims and the reclaimer of expired ones.
    let heartbeat = opened.pg.clone().map(|pg| {
        tokio::spawn(lease::run(
            pg,
            store.clone(),
            settings.clone(),
            queue.clone(),
            leases.clone(),
            shutdown_rx.clone(),
        ))
    });
    let space = {
        let q = queue.clone();
        tokio::spawn(disk::watch_space(
            disk.clone(),
            store.clone(),
            move || {
                let q = q.clone();
                async move { q.resume_after_disk_full().await }
            },
            shutdown_rx.clone(),
        ))
    };
    // Shared: a database that cannot be reached holds the queue until a probe is written.
    let reconnect = opened.pg.is_some().then(|| {
        let q = queue.clone();
        tokio::spawn(reach::watch_database(
            reach.clone(),
            opened.shared.clone(),
            move || {
                let q = q.clone();
                async move { q.resume_after_disk_full().await }
            },
            shutdown_rx.clone(),
        ))
    });
    // The hold is announced (and lifted) through the queue event.
    {
        let q = queue.clone();
        let mut full = disk.subscribe();
        let mut down = reach.subscribe();
        let mut stop = shutdown_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = full.changed() => {
                        if r.is_err() {
                            return;
                        }
                        q.resumed();
                    }
                    r = down.changed() => {
                        if r.is_err() {
                            return;
                        }
                        q.resumed();
                    }
                    _ = stop.changed() => return,
                }
            }
        });
    }
    // Files without a row (a crash between writing them and committing) are collected in
    // the background: the host answers at once, whatever the size of the results folder.
    let sweeper = results.clone();
    tokio::spawn(async move { sweeper.sweep_orphans(started).await });
    let thumbnails = tokio::spawn(results.clone().run_thumbnails(shutdown_rx.clone()));

    let security = http::security::Security::new(
        addr,
        &[],
        &config.allow_origins,
        config.token.as_ref().map(|t| t.0.clone()),
    )
    .with_pool(backends.clone());
    // The test-only fault route, behind the same guard as every route; only in builds with
    // the `fault-injection` feature (the tests crate's dev-dependency), only when asked.
    #[cfg(feature = "fault-injection")]
    let test_routes = match &config.test_faults {
        Some(_) => http::test_faults::router(disk.clone(), queue.clone()),
        None => axum::Router::new(),
    };
    #[cfg(not(feature = "fault-injection"))]
    let test_routes = axum::Router::new();
    let app = http::router_with(
        http::AppState {
            queue: queue.clone(),
            intake,
            results,
            backends,
            pool: pool.clone(),
            settings,
            events,
            webapp: Arc::new(http::webapp::WebApp::locate(config.webapp.clone())),
            eta,
            shutdown: shutdown_rx,
            host: Arc::new(lease::HostStatus {
                host_id: host_id.clone(),
                leases: opened.pg.is_some().then(|| leases.clone()),
            }),
        },
        security,
        test_routes,
    );
    let signal_tx = shutdown_tx.clone();
    let served = http::serve::serve(listener, app, config.limits, async move {
        shutdown.await;
        let _ = signal_tx.send(true);
    })
    .await;
    let _ = shutdown_tx.send(true);
    pool.join().await;
    // Finishers still writing results hold a sender; wait for them.
    let _ = fin_rx.recv().await;
    let _ = deliverer.await;
    let _ = retention.await;
    if let Some(h) = heartbeat {
        let _ = h.await;
    }
    let _ = space.await;
    if let Some(r) = reconnect {
        let _ = r.await;
    }
    let _ = thumbnails.await;
    let released = queue.release_all().await?;
    if released > 0 {
        tracing::info!("{released} running task(s) put back at the head of the queue");
    }
    let _ = pool_follower.await;
    pool.release_leases().await;
    drop(lock);
    served?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_id_is_checked_given_and_made_once_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "  ", "a b", "ünï", &"x".repeat(65), "a/b"] {
            let e = host_id(dir.path(), Some(bad)).unwrap_err().to_string();
            assert!(e.contains("--host-id"), "{bad:?}: {e}");
        }
        assert!(
            !dir.path().join("host-id").exists(),
            "a refusal writes nothing"
        );
        assert_eq!(host_id(dir.path(), Some(" studio-1 ")).unwrap(), "studio-1");
        let made = host_id(dir.path(), None).unwrap();
        assert_eq!(host_id(dir.path(), None).unwrap(), made, "made once");
        std::fs::write(dir.path().join("host-id"), "not an id!\n").unwrap();
        let e = host_id(dir.path(), None).unwrap_err().to_string();
        assert!(e.contains("does not hold a host id"), "{e}");
    }
}
