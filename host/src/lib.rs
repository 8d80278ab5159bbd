//! The agent-scheduler host: a durable task queue that feeds SD.Next servers.
//!
//! # Layout
//! - [`run`] starts everything from a config, a bound listener and a shutdown future;
//!   `main.rs` only parses flags and calls it.
//! - `store/` holds all SQL (one SQLite file, WAL, append-only migrations).
//! - `queue/` is the pure state machine (ranks, transitions, recovery, validation).
//! - `app` is the shared [`app::Host`] state and the operations handlers call.
//! - `http/` is the axum API (AgentScheduler-compatible routes + additions, security guard).
//! - `worker/` runs one loop per SD.Next backend; `sdnext/` is the typed SD.Next client.
//! - `results/` writes image files durably; `callbacks` delivers the outbox; `events` feeds SSE.
//! - `cli/` is the command line beside `serve` (`enqueue`, `ls`, `watch`, …): an HTTP client of
//!   a running host through `scheduler-api`'s typed client, nothing more.
//!
//! Invariants: no SQL outside `store/`; no reqwest outside `sdnext/`, `callbacks` and
//! `scheduler-api`'s `client` feature; a task
//! is `done` only after its files are on disk; nothing from a request is ever executed.

pub mod app;
pub mod callbacks;
pub mod cli;
pub mod config;
pub mod events;
pub mod http;
pub mod queue;
pub mod results;
pub mod sdnext;
pub mod store;
pub mod worker;

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};

use crate::app::{Backend, BackendStatus, Host};
use crate::config::Config;
use crate::store::{Store, StoreError, ops};

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
}

/// Runs the host until `shutdown` completes: opens the store, recovers tasks left running,
/// removes orphan files, starts one worker per backend, the callback deliverer and the
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
    let store = Store::open(&config.data_dir.join("queue.sqlite3"))?;
    let files = results::ResultFiles::new(&config.data_dir);
    std::fs::create_dir_all(config.data_dir.join("results"))?;

    let settings = store.call_sync(|c| ops::load_settings(c))?;
    let mut paused = store.call_sync(|c| ops::is_paused(c))?;
    if config.start_paused || settings.start_paused {
        paused = true;
        store.call_sync(|c| ops::set_paused(c, true))?;
    }
    let max_attempts = settings.max_attempts;
    let recovered = store.call_sync(move |c| ops::recover_running(c, max_attempts))?;
    for (id, status) in &recovered {
        tracing::warn!(
            "task {id} was running when the host stopped: now {}",
            status.as_str()
        );
    }
    let referenced = store.call_sync(|c| ops::all_image_files(c))?;
    let removed = files.collect_garbage(&referenced);
    if removed > 0 {
        tracing::info!("removed {removed} orphan result files");
    }

    let mut backends = Vec::new();
    let mut backend_origins = Vec::new();
    for url in &config.backends {
        let client = sdnext::SdClient::new(url)
            .map_err(|e| RunError::Config(format!("backend {url}: {e}")))?;
        backend_origins.push(client.origin());
        backends.push(Arc::new(Backend {
            url: client.display_url(),
            client,
            status: Mutex::new(BackendStatus::default()),
        }));
    }

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (kick, _) = watch::channel(0u64);
    let host = Arc::new(Host {
        events: events::EventHub::start(store.clone()),
        store,
        files,
        backends,
        kick,
        paused: AtomicBool::new(paused),
        settings: Mutex::new(settings),
        interrupts: Mutex::new(HashSet::new()),
        callbacks: Notify::new(),
        shutdown: shutdown_rx,
        config: config.clone(),
    });
    for (id, status) in recovered {
        host.task_event(&id, status, scheduler_api::TaskChange::Updated, None);
    }

    let (fin_tx, mut fin_rx) = mpsc::channel::<()>(1);
    let workers: Vec<_> = host
        .backends
        .iter()
        .map(|b| tokio::spawn(worker::Worker::new(host.clone(), b.clone(), fin_tx.clone()).run()))
        .collect();
    drop(fin_tx);
    let deliverer = tokio::spawn(callbacks::run(host.clone()));
    let retention = {
        let host = host.clone();
        tokio::spawn(async move {
            let mut shutdown = host.shutdown.clone();
            loop {
                if let Err(e) = host.apply_retention().await {
                    tracing::warn!("retention: {e}");
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                    _ = shutdown.changed() => return,
                }
            }
        })
    };

    let security = http::security::Security::new(
        addr,
        &backend_origins,
        &config.allow_origins,
        config.token.as_ref().map(|t| t.0.clone()),
    );
    let app = http::router(host.clone(), security);
    let signal_tx = shutdown_tx.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = signal_tx.send(true);
        })
        .await;
    let _ = shutdown_tx.send(true);
    for w in workers {
        let _ = w.await;
    }
    // Finishers still writing results hold a sender; wait for them.
    let _ = fin_rx.recv().await;
    let _ = deliverer.await;
    let _ = retention.await;
    let released = host
        .store
        .call(|c| {
            let ids = ops::running_ids(c)?;
            for id in ids.iter().rev() {
                ops::release_to_head(c, id)?;
            }
            Ok(ids)
        })
        .await?;
    if !released.is_empty() {
        tracing::info!(
            "{} running task(s) put back at the head of the queue",
            released.len()
        );
    }
    drop(lock);
    served?;
    Ok(())
}
