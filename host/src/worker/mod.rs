//! One worker per SD.Next backend: claims the next task, makes sure its checkpoint is
//! loaded, sends it, and hands the answer to a finisher.
//!
//! Owns: the per-backend loop ([`Worker::try_run_next`] is the single step), checkpoint/VAE
//! switching (only when it differs from the loaded one), progress polling, interrupts,
//! outage backoff, the "not ready" wait. What a run's end means (and whether a failed task
//! goes back to the queue) is decided by the transition function, through
//! [`Queue::finish`].
//! Must not: wait on anything but the generation request between two tasks: image files,
//! the database row that marks a task done, events and callbacks are written by a spawned
//! finisher. Never waits for `/status` to read idle; never changes a global SD.Next option
//! other than `sd_model_checkpoint` / `sd_vae`; never sends
//! `override_settings.sd_model_checkpoint`.
//!
//! Layout: this file holds the loop, the step (probe, claim, run, settle) and the
//! backend's up/down state; `run.rs` one run (the claimed task sent, its answer taken),
//! `checkpoint.rs` the checkpoint and VAE switch before it, `progress.rs` the polling beside
//! it, `watchdog.rs` what stops it (and the `stalled` hold), `outcome.rs` what its end
//! becomes and the finisher that records it.

mod checkpoint;
mod outcome;
mod progress;
mod run;
mod watchdog;

use std::sync::Arc;
use std::time::Duration;

use scheduler_api::BackendState;
use tokio::sync::{mpsc, watch};

use crate::backends::{Backend, Backends, ClaimStop};
use crate::events::EventHub;
use crate::queue::Queue;
use crate::results::Results;
use crate::sdnext::RemoteError;

/// Backoff for backend outages: 250 ms doubling to 5 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Duration::from_millis(250),
        }
    }
}

impl Backoff {
    /// The next delay (and doubles it, capped at 5 s).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(5));
        d
    }

    /// Back to the first delay.
    pub fn reset(&mut self) {
        self.next = Duration::from_millis(250);
    }
}

/// What a worker works with.
#[derive(Clone)]
pub struct Deps {
    /// Measured speeds (recorded after each run that ends done).
    pub eta: Arc<crate::eta::Eta>,
    /// The queue (claims, releases, run ends).
    pub queue: Arc<Queue>,
    /// Every backend (for eligibility and interrupt requests).
    pub backends: Arc<Backends>,
    /// Retention when the queue drains.
    pub results: Arc<Results>,
    /// Progress and preview events.
    pub events: EventHub,
    /// Grace, stall and timeout settings.
    pub settings: Arc<crate::settings::SettingsService>,
    /// Becomes true at shutdown.
    pub shutdown: watch::Receiver<bool>,
    /// The host's clock (run ends, retry times).
    pub clock: crate::clock::Clock,
}

/// Result of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A task was run (or ended); call again at once.
    Ran,
    /// Nothing to do: wait for a kick.
    Idle,
    /// The backend is down or not ready: wait this long.
    Backoff(Duration),
}

/// The worker of one backend.
pub struct Worker {
    deps: Deps,
    backend: Arc<Backend>,
    backoff: Backoff,
    down: bool,
    /// Set when a request was abandoned: no task until `/progress` shows the backend idle;
    /// the next check is due at this instant.
    stalled: Option<std::time::Instant>,
    /// When the last generation request returned (the loaded model is re-read after a
    /// pause, since the user may have switched it in the UI meanwhile).
    last_run_end: Option<std::time::Instant>,
    /// Finishers hold a clone; the run loop waits for all of them at shutdown.
    finishers: mpsc::Sender<()>,
    /// What the last run measured (its checkpoint load and generation), for the ETA.
    timing: Option<crate::eta::RunTiming>,
    /// The stop signal of the claim it runs (the user's interrupt, the backend withdrawn).
    stop: watch::Receiver<ClaimStop>,
}

impl Worker {
    /// A worker for `backend`.
    pub fn new(deps: Deps, backend: Arc<Backend>, finishers: mpsc::Sender<()>) -> Worker {
        Worker {
            deps,
            backend,
            backoff: Backoff::default(),
            down: true,
            stalled: None,
            last_run_end: None,
            finishers,
            timing: None,
            stop: watch::channel(ClaimStop::Running).1,
        }
    }

    /// What the claim it runs is asked to do now.
    fn claim_stop(&self) -> ClaimStop {
        *self.stop.borrow()
    }

    /// Runs until shutdown.
    pub async fn run(mut self) {
        let mut kick = self.deps.queue.subscribe();
        let mut shutdown = self.deps.shutdown.clone();
        loop {
            if *shutdown.borrow() || self.backend.is_removed() {
                break;
            }
            let step = tokio::select! {
                s = self.try_run_next() => s,
                _ = shutdown.changed() => break,
            };
            match step {
                Step::Ran => {}
                Step::Idle => {
                    let due = match self.deps.queue.next_retry_at().await {
                        Ok(Some(at)) => {
                            Duration::from_millis((at - self.deps.clock.now_ms()).max(0) as u64)
                        }
                        _ => Duration::from_secs(2),
                    };
                    tokio::select! {
                        _ = kick.changed() => {}
                        _ = tokio::time::sleep(due.min(Duration::from_secs(2))) => {}
                        _ = shutdown.changed() => break,
                    }
                }
                Step::Backoff(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = shutdown.changed() => break,
                    }
                }
            }
        }
    }

    fn set_state(&self, state: BackendState, error: Option<String>) {
        let mut s = self.backend.status();
        s.state = Some(state);
        if error.is_some() {
            s.last_error = error;
        }
    }

    fn outage(&mut self, e: &RemoteError) -> Step {
        self.down = true;
        self.set_state(BackendState::Down, Some(e.to_string()));
        Step::Backoff(self.backoff.next_delay())
    }

    /// Probes a backend that was down (or never contacted).
    async fn probe(&mut self) -> Option<Step> {
        if let Err(e) = self.backend.client.version().await {
            return Some(self.outage(&e));
        }
        if let Err(e) = self.backend.refresh_models().await {
            return Some(self.outage(&e));
        }
        match self.backend.client.loaded_checkpoint().await {
            Ok(loaded) => {
                let mut s = self.backend.status();
                s.state = Some(if loaded.is_some() {
                    BackendState::Up
                } else {
                    BackendState::Loading
                });
                s.loaded = loaded.map(|l| l.title);
            }
            Err(e) => return Some(self.outage(&e)),
        }
        self.down = false;
        self.backoff.reset();
        // Up (again): its SD.Next may be another version; the door's lists and schema are
        // fetched beside the work.
        self.backend.forget_schema();
        self.refresh_lists();
        None
    }

    /// Refreshes the backend's name lists in the background.
    fn refresh_lists(&self) {
        let b = self.backend.clone();
        tokio::spawn(async move { b.refresh_lists().await });
    }

    /// One step: claim the next task this backend can run and run it.
    pub async fn try_run_next(&mut self) -> Step {
        if let Some(step) = self.check_stalled().await {
            return step;
        }
        if self.down
            && let Some(step) = self.probe().await
        {
            return step;
        }
        if self
            .backend
            .lists_older_than(crate::backends::lists::LISTS_MAX_AGE)
        {
            self.refresh_lists();
        }
        if !self.backend.takes_work() {
            self.backend.claimed();
            return Step::Idle;
        }
        let claimed = self.deps.queue.claim(&self.backend).await;
        let claim = match claimed {
            Ok(Some(c)) => c,
            Ok(None) => return Step::Idle,
            Err(e) => {
                tracing::error!("claiming a task: {e}");
                return Step::Backoff(Duration::from_secs(1));
            }
        };
        self.stop = claim.stop;
        let outcome = self.execute(&claim.task).await;
        self.settle(claim.task, claim.fence, outcome).await
    }
}
