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

use std::sync::Arc;
use std::time::Duration;

use scheduler_api::{BackendState, Event, PreviewEvent, ProgressEvent, TaskType};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};

use crate::backends::{Backend, Backends};
use crate::events::EventHub;
use crate::model::spec::{expected_images, sd_field};
use crate::model::{RunEnd, TaskRow, now_ms};
use crate::queue::Queue;
use crate::results::Results;
use crate::sdnext::{
    CONTROL_XYZ_BUG, GenerateOutput, RemoteError, SdModel, resolve_checkpoint, strip_hash,
};

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

/// How a run ended, before the finisher records it.
enum Outcome {
    Finished(RunEnd, Option<GenerateOutput>),
    /// Give the task back (outage / not ready) without counting an attempt.
    Release(String),
    /// The request failed after it was sent and the backend answers a probe: an attempt
    /// counts and the task waits out its backoff (or fails after `max_attempts`).
    Errored(String),
}

/// Why the worker stopped a running generation itself.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stop {
    /// The user deleted / interrupted the task.
    User,
    /// The backend was disabled or removed: the task goes back to the queue for another.
    Withdrawn,
    /// Its progress did not change for `stall_timeout_s`.
    Stalled(u32),
    /// It ran longer than `task_timeout_s`.
    TimedOut(u32),
}

impl Stop {
    /// How the run ends.
    fn end(&self) -> RunEnd {
        match self {
            Stop::User => RunEnd::Interrupted,
            Stop::Withdrawn => RunEnd::Interrupted,
            Stop::Stalled(s) => RunEnd::Failed(format!(
                "backend stalled: no progress for {s} s; the task was interrupted"
            )),
            Stop::TimedOut(s) => RunEnd::Failed(format!(
                "timed out: the task ran longer than {s} s and was interrupted"
            )),
        }
    }
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
        }
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
                        Ok(Some(at)) => Duration::from_millis((at - now_ms()).max(0) as u64),
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
        None
    }

    /// A stalled backend gets no task until `/sdapi/v1/progress` shows it idle; checked at
    /// once and then every `stall_recheck_s`.
    async fn check_stalled(&mut self) -> Option<Step> {
        let due = self.stalled?;
        let recheck =
            Duration::from_secs(u64::from(self.deps.settings.get().stall_recheck_s.max(1)));
        let now = std::time::Instant::now();
        if now < due {
            return Some(Step::Backoff(due - now));
        }
        match self.backend.client.progress(true).await {
            Ok(p) if p.job.is_empty() => {
                tracing::info!("backend {} is idle again", self.backend.url);
                self.stalled = None;
                self.set_state(BackendState::Up, None);
                self.deps.queue.queue_event();
                None
            }
            other => {
                let why = match other {
                    Ok(p) => format!("still busy with job {:?}", p.job),
                    Err(e) => e.to_string(),
                };
                tracing::info!("backend {} stays stalled: {why}", self.backend.url);
                self.stalled = Some(now + recheck);
                Some(Step::Backoff(recheck))
            }
        }
    }

    /// Holds the backend after a request it could not stop was abandoned.
    fn stall(&mut self, task_id: &str) {
        tracing::warn!(
            "backend {}: abandoned the request of task {task_id} (it did not end after an \
             interrupt); no task until it is idle",
            self.backend.url
        );
        self.stalled = Some(std::time::Instant::now());
        self.set_state(
            BackendState::Stalled,
            Some(
                "a request did not end after an interrupt; waiting for the backend to be idle"
                    .into(),
            ),
        );
        self.deps.queue.queue_event();
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
        if !self.backend.takes_work() {
            self.backend.claimed();
            return Step::Idle;
        }
        let claimed = self.deps.queue.claim(&self.backend).await;
        let task = match claimed {
            Ok(Some(t)) => t,
            Ok(None) => return Step::Idle,
            Err(e) => {
                tracing::error!("claiming a task: {e}");
                return Step::Backoff(Duration::from_secs(1));
            }
        };
        let mut outcome = self.execute(&task).await;
        self.backend.end_run(match &outcome {
            Outcome::Finished(RunEnd::Done, _) => Some(true),
            Outcome::Finished(RunEnd::Failed(_), _) | Outcome::Errored(_) => Some(false),
            _ => None,
        });
        let interrupts = &self.deps.backends;
        if matches!(outcome, Outcome::Release(_) | Outcome::Errored(_))
            && interrupts.interrupt_requested(&task.id)
        {
            // The user stopped it: it does not go back to the queue.
            outcome = Outcome::Finished(RunEnd::Interrupted, None);
        }
        match outcome {
            Outcome::Finished(end, output) => {
                interrupts.clear_interrupt(&task.id);
                self.spawn_finisher(task, end, output);
                Step::Ran
            }
            Outcome::Release(reason) => {
                tracing::info!("task {} goes back to the queue: {reason}", task.id);
                if let Err(e) = self.deps.queue.release(&task).await {
                    tracing::error!("releasing {}: {e}", task.id);
                }
                interrupts.clear_interrupt(&task.id);
                Step::Backoff(self.backoff.next_delay())
            }
            Outcome::Errored(reason) => {
                tracing::warn!("task {}: {reason}", task.id);
                if let Err(e) = self.deps.queue.errored(&task, reason).await {
                    tracing::error!("recording the failed try of {}: {e}", task.id);
                }
                interrupts.clear_interrupt(&task.id);
                Step::Ran
            }
        }
    }

    async fn ensure_checkpoint(&mut self, task: &TaskRow) -> Result<(), Outcome> {
        let client = self.backend.client.clone();
        let stale = self
            .last_run_end
            .is_none_or(|t| t.elapsed() > Duration::from_secs(2));
        if stale {
            match client.loaded_checkpoint().await {
                Ok(l) => self.backend.status().loaded = l.map(|l| l.title),
                Err(e) if e.is_outage() => {
                    self.outage(&e);
                    return Err(Outcome::Release(e.to_string()));
                }
                Err(_) => {}
            }
        }
        let Some(wanted) = task.checkpoint.as_deref() else {
            // Whatever is loaded, but something must be loaded.
            let known = self.backend.status().loaded.clone();
            if known.is_none() {
                match client.loaded_checkpoint().await {
                    Ok(Some(l)) => self.backend.status().loaded = Some(l.title),
                    Ok(None) => {
                        self.set_state(BackendState::Loading, None);
                        return Err(Outcome::Release("backend has no model loaded yet".into()));
                    }
                    Err(e) if e.is_outage() => {
                        self.outage(&e);
                        return Err(Outcome::Release(e.to_string()));
                    }
                    Err(e) => return Err(Outcome::Finished(RunEnd::Failed(e.to_string()), None)),
                }
            }
            return self.ensure_vae(task, None).await;
        };
        let cached = self.backend.status().models.clone().unwrap_or_default();
        let model = match resolve_checkpoint(&cached, wanted) {
            Some(m) => m.clone(),
            None => match self.backend.refresh_models().await {
                Ok(models) => match resolve_checkpoint(&models, wanted) {
                    Some(m) => m.clone(),
                    None => {
                        return Err(Outcome::Finished(
                            RunEnd::Failed(format!("checkpoint not found: {wanted}")),
                            None,
                        ));
                    }
                },
                Err(e) if e.is_outage() => {
                    self.outage(&e);
                    return Err(Outcome::Release(e.to_string()));
                }
                Err(e) => return Err(Outcome::Finished(RunEnd::Failed(e.to_string()), None)),
            },
        };
        let loaded = self.backend.status().loaded.clone();
        if loaded.as_deref().is_some_and(|l| same_model(l, &model)) {
            return self.ensure_vae(task, None).await;
        }
        let mut opts = Map::new();
        opts.insert(
            "sd_model_checkpoint".into(),
            Value::String(model.title.clone()),
        );
        self.ensure_vae(task, Some(opts)).await?;
        self.backend.count_load();
        match client.loaded_checkpoint().await {
            Ok(Some(l))
                if same_model(&l.title, &model)
                    || l.filename.as_deref() == Some(&model.filename) =>
            {
                let mut s = self.backend.status();
                s.loaded = Some(l.title);
                s.state = Some(BackendState::Up);
                Ok(())
            }
            Ok(other) => {
                self.backend.status().loaded = other.as_ref().map(|l| l.title.clone());
                let _ = self.backend.refresh_models().await;
                Err(Outcome::Finished(
                    RunEnd::Failed(format!(
                        "checkpoint switch failed: wanted {}, backend has {}",
                        model.title,
                        other.map(|l| l.title).unwrap_or_else(|| "no model".into())
                    )),
                    None,
                ))
            }
            Err(e) if e.is_outage() => {
                self.outage(&e);
                Err(Outcome::Release(e.to_string()))
            }
            Err(e) => Err(Outcome::Finished(RunEnd::Failed(e.to_string()), None)),
        }
    }

    /// Sends `opts` (a checkpoint switch) plus `sd_vae` when the task's VAE differs from
    /// the one we set last.
    async fn ensure_vae(
        &mut self,
        task: &TaskRow,
        opts: Option<Map<String, Value>>,
    ) -> Result<(), Outcome> {
        let switching = opts.is_some();
        let mut opts = opts.unwrap_or_default();
        if let Some(vae) = &task.vae
            && (switching || self.backend.status().vae.as_deref() != Some(vae.as_str()))
        {
            // An unknown VAE name is refused before touching /options.
            const BUILTIN: &[&str] = &["Automatic", "Default", "None", "TAESD", "REPA-E"];
            if !BUILTIN.iter().any(|b| b.eq_ignore_ascii_case(vae)) {
                match self.backend.client.sd_vaes().await {
                    Ok(list) if !list.iter().any(|v| v == vae) => {
                        return Err(Outcome::Finished(
                            RunEnd::Failed(format!("vae not found: {vae}")),
                            None,
                        ));
                    }
                    Err(e) if e.is_outage() => {
                        self.outage(&e);
                        return Err(Outcome::Release(e.to_string()));
                    }
                    _ => {}
                }
            }
            opts.insert("sd_vae".into(), Value::String(vae.clone()));
        }
        if opts.is_empty() {
            return Ok(());
        }
        match self.backend.client.set_options(&opts).await {
            Ok(()) => {
                let mut s = self.backend.status();
                if let Some(v) = &task.vae {
                    s.vae = Some(v.clone());
                }
                if switching {
                    s.loaded = None;
                }
                Ok(())
            }
            Err(e) if e.is_outage() => {
                self.outage(&e);
                Err(Outcome::Release(e.to_string()))
            }
            Err(e) => Err(Outcome::Finished(
                RunEnd::Failed(format!("setting options failed: {e}")),
                None,
            )),
        }
    }

    async fn execute(&mut self, task: &TaskRow) -> Outcome {
        if self.deps.backends.interrupt_requested(&task.id) {
            return Outcome::Finished(RunEnd::Interrupted, None);
        }
        self.timing = None;
        let load_started = std::time::Instant::now();
        let loaded_before = self.backend.status().loaded.clone();
        if let Err(o) = self.ensure_checkpoint(task).await {
            return o;
        }
        let switched = self.backend.status().loaded != loaded_before;
        let load_ms = switched.then(|| load_started.elapsed().as_secs_f64() * 1000.0);
        if self.deps.backends.interrupt_requested(&task.id) {
            return Outcome::Finished(RunEnd::Interrupted, None);
        }
        let mut body = request_body(&task.request);
        let control = task.task_type == TaskType::Control;
        if control && self.backend.control_needs_xyz() {
            with_empty_xyz(&mut body);
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let (advance_tx, advance_rx) = watch::channel(std::time::Instant::now());
        let poller = tokio::spawn(poll_progress(
            self.deps.clone(),
            self.backend.clone(),
            task.id.clone(),
            stop_rx,
            advance_tx,
        ));
        let started = std::time::Instant::now();
        let mut rate_backoff = Backoff::default();
        self.backend
            .client
            .set_answer_cap(u64::from(self.deps.settings.get().max_answer_mib) << 20);
        let mut add_xyz = false;
        let result = loop {
            if std::mem::take(&mut add_xyz) {
                with_empty_xyz(&mut body);
            }
            let client = self.backend.client.clone();
            let generation = client.generate(task.task_type, &body);
            tokio::pin!(generation);
            let answer = tokio::select! {
                r = &mut generation => Ok(r),
                stop = self.watch(task, started, advance_rx.clone()) => Err(stop),
            };
            let answer = match answer {
                Ok(r) => r,
                Err(stop) => {
                    // Ask SD.Next to stop, then give the request a grace period to end.
                    if stop == Stop::Withdrawn {
                        // Not the user's interrupt: the task itself goes on elsewhere.
                        let client = self.backend.client.clone();
                        tokio::spawn(async move { client.interrupt().await });
                    } else if stop != Stop::User {
                        self.deps
                            .backends
                            .interrupt(&task.id, Some(&self.backend.url));
                    }
                    let grace = Duration::from_secs(u64::from(
                        self.deps.settings.get().interrupt_grace_s.max(1),
                    ));
                    let ended = tokio::time::timeout(grace, &mut generation).await;
                    if stop == Stop::Withdrawn {
                        if ended.is_err() {
                            self.stall(&task.id);
                        }
                        break Outcome::Release("the backend was disabled".into());
                    }
                    match ended {
                        // It ended: whatever it returned is not a result.
                        Ok(_) => break Outcome::Finished(stop.end(), None),
                        Err(_) => {
                            // Abandoned: the connection closes when the future drops.
                            self.stall(&task.id);
                            break Outcome::Finished(stop.end(), None);
                        }
                    }
                }
            };
            match answer {
                Err(RemoteError::RateLimited { retry_after_s }) => {
                    if self.deps.backends.interrupt_requested(&task.id) {
                        break Outcome::Finished(RunEnd::Interrupted, None);
                    }
                    let d = retry_after_s
                        .map(Duration::from_secs)
                        .unwrap_or_else(|| rate_backoff.next_delay())
                        .min(Duration::from_secs(60));
                    tokio::time::sleep(d).await;
                }
                Err(e) if e.was_sent() => {
                    // Sent, then failed: is the backend up (this request failed) or down
                    // (an outage: wait, no attempt)? A probe right now tells.
                    match self.backend.client.version().await {
                        Ok(_) => break Outcome::Errored(format!("SD.Next: {e}")),
                        Err(probe) => {
                            self.outage(&probe);
                            break Outcome::Release(e.to_string());
                        }
                    }
                }
                Err(e) if e.is_outage() => {
                    self.outage(&e);
                    break Outcome::Release(e.to_string());
                }
                // SD.Next `058a7f0`: `/control` without `xyz` fails before it generates
                // anything; the same request with `"xyz": {}` runs the plain generation.
                Err(RemoteError::Http {
                    status: 500,
                    message,
                }) if control
                    && message == CONTROL_XYZ_BUG
                    && body.get(sd_field::XYZ).is_none() =>
                {
                    tracing::info!(
                        "{}: /control needs \"xyz\": {{}} (SD.Next bug); retrying, and sending it from now on",
                        self.backend.url
                    );
                    self.backend.remember_control_needs_xyz();
                    add_xyz = true;
                }
                Err(e) => break Outcome::Finished(RunEnd::Failed(format!("SD.Next: {e}")), None),
                Ok(out) => break self.judge(task, out).await,
            }
        };
        let _ = stop_tx.send(true);
        poller.abort();
        self.timing = Some(crate::eta::RunTiming {
            gen_ms: started.elapsed().as_secs_f64() * 1000.0,
            load_ms,
        });
        self.last_run_end = Some(std::time::Instant::now());
        if !matches!(result, Outcome::Release(_)) {
            self.backoff.reset();
        }
        result
    }

    /// Resolves when the running generation must be stopped: the user interrupted it, its
    /// progress stopped changing for `stall_timeout_s`, or it ran past `task_timeout_s`.
    async fn watch(
        &self,
        task: &TaskRow,
        started: std::time::Instant,
        advance: watch::Receiver<std::time::Instant>,
    ) -> Stop {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            if self.deps.backends.interrupt_requested(&task.id) {
                return Stop::User;
            }
            if self.backend.withdrawn() {
                return Stop::Withdrawn;
            }
            let s = self.deps.settings.get();
            if advance.borrow().elapsed() >= Duration::from_secs(u64::from(s.stall_timeout_s)) {
                return Stop::Stalled(s.stall_timeout_s);
            }
            if let Some(limit) = s.task_timeout_s
                && started.elapsed() >= Duration::from_secs(u64::from(limit))
            {
                return Stop::TimedOut(limit);
            }
        }
    }

    /// Decides what an answer means.
    async fn judge(&mut self, task: &TaskRow, out: GenerateOutput) -> Outcome {
        if self.deps.backends.interrupt_requested(&task.id) {
            // The answer holds a placeholder image: never store it.
            return Outcome::Finished(RunEnd::Interrupted, None);
        }
        let expected = expected_images(task.task_type, &task.request);
        let got = out.images.len();
        if got == 0 {
            return match self.backend.client.loaded_checkpoint().await {
                Ok(None) => {
                    {
                        let mut s = self.backend.status();
                        s.loaded = None;
                        s.state = Some(BackendState::Loading);
                    }
                    Outcome::Release("backend has no model loaded (not ready)".into())
                }
                Err(e) if e.is_outage() => {
                    self.outage(&e);
                    Outcome::Release(e.to_string())
                }
                _ => Outcome::Finished(
                    RunEnd::Failed(format!(
                        "SD.Next returned no images (expected {expected}); see its log"
                    )),
                    None,
                ),
            };
        }
        let out = with_processed_maps(out);
        if got < expected {
            let reason = format!("partial result: SD.Next returned {got} of {expected} images");
            return Outcome::Finished(RunEnd::Failed(reason), Some(out));
        }
        self.set_state(BackendState::Up, None);
        Outcome::Finished(RunEnd::Done, Some(out))
    }

    fn spawn_finisher(&mut self, task: TaskRow, end: RunEnd, output: Option<GenerateOutput>) {
        let deps = self.deps.clone();
        let guard = self.finishers.clone();
        let ended_at = now_ms();
        let timing = self.timing.take().filter(|_| end == RunEnd::Done);
        let backend = self.backend.url.clone();
        tokio::spawn(async move {
            match deps.queue.finish(&task, end, output, ended_at).await {
                Ok(_) => {
                    // A run that ended done measures the backend's speed (for the ETA).
                    if let Some(t) = timing
                        && let Err(e) = deps.eta.record(&backend, &task, t).await
                    {
                        tracing::warn!("recording the speed of {backend}: {e}");
                    }
                    if deps.queue.is_drained().await.unwrap_or(false)
                        && let Err(e) = deps.results.apply_retention().await
                    {
                        tracing::warn!("retention: {e}");
                    }
                }
                Err(crate::error::HostError::NotFound) => {}
                Err(e) => tracing::error!("recording the end of {}: {e}", task.id),
            }
            drop(guard);
        });
    }
}

/// Whether a loaded title is the model wanted (titles gain a ` [hash]` after first load).
fn same_model(loaded: &str, model: &SdModel) -> bool {
    loaded == model.title || strip_hash(loaded) == strip_hash(&model.title)
}

/// The body sent to SD.Next: the stored request, images sent back inline, nothing saved on
/// the server, and never a per-request checkpoint override.
pub fn request_body(request: &Map<String, Value>) -> Value {
    let mut body = request.clone();
    body.remove(sd_field::SCRIPT_ARG_LABELS);
    body.insert(sd_field::SEND_IMAGES.into(), Value::Bool(true));
    body.insert(sd_field::SAVE_IMAGES.into(), Value::Bool(false));
    body.remove(sd_field::SD_MODEL_CHECKPOINT);
    if let Some(Value::Object(o)) = body.get_mut(sd_field::OVERRIDE_SETTINGS) {
        o.remove(sd_field::SD_MODEL_CHECKPOINT);
    }
    Value::Object(body)
}

/// Control: the preprocessor maps are kept as results, after the generated images, each
/// with an infotext that says what it is.
fn with_processed_maps(mut out: GenerateOutput) -> GenerateOutput {
    let maps = std::mem::take(&mut out.processed);
    let n = maps.len();
    for (i, m) in maps.into_iter().enumerate() {
        out.images.push(m);
        out.infotexts.push(format!(
            "Control preprocessor map {} of {n} (not a generated image)",
            i + 1
        ));
    }
    out
}

/// Adds `"xyz": {}` to a Control body (unless the task carries its own `xyz`). On SD.Next
/// `058a7f0` that makes its API select the script "xyz grid" (not found: the plain
/// generation runs), so a task's own `script_name` or `face` module cannot run there.
fn with_empty_xyz(body: &mut Value) {
    if let Value::Object(o) = body {
        if o.get("script_name")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
            || o.get("face").is_some_and(|f| !f.is_null())
        {
            tracing::warn!(
                "this SD.Next's /control needs \"xyz\", which replaces the task's script or face module: they do not run"
            );
        }
        o.entry(sd_field::XYZ)
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// Polls `/sdapi/v1/progress` about once a second while a task runs: publishes progress and
/// previews, re-sends a lost interrupt, and tells the stall watchdog (`advance`) whenever
/// the progress changes (`progress`, `sampling_step`, `job`, `job_no`).
async fn poll_progress(
    deps: Deps,
    backend: Arc<Backend>,
    task_id: String,
    mut stop: watch::Receiver<bool>,
    advance: watch::Sender<std::time::Instant>,
) {
    let mut last: Option<(u64, i64, String, i64)> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let Ok(p) = backend.client.progress(false).await else {
            continue;
        };
        let seen = (
            p.progress.to_bits(),
            p.sampling_step,
            p.job.clone(),
            p.job_no,
        );
        if last.as_ref() != Some(&seen) {
            last = Some(seen);
            advance.send_replace(std::time::Instant::now());
        }
        if deps.backends.interrupt_requested(&task_id) {
            if !p.job.is_empty() || p.job_count > 0 {
                let _ = backend.client.interrupt().await;
            }
            continue;
        }
        if p.job.is_empty() && p.job_count == 0 {
            continue;
        }
        deps.events.emit(Event::Progress(ProgressEvent {
            task_id: task_id.clone(),
            progress: p.progress,
            eta_s: p.eta_relative,
            step: p.sampling_step,
            steps: p.sampling_steps,
        }));
        if let Some(img) = p.current_image.filter(|i| !i.is_empty()) {
            let image = if img.starts_with("data:") {
                img
            } else {
                format!("data:image/png;base64,{img}")
            };
            deps.events.emit(Event::Preview(PreviewEvent {
                task_id: task_id.clone(),
                image,
            }));
        }
    }
}
