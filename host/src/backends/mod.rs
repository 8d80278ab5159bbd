//! The backends service: the configured SD.Next servers, what the host knows about each
//! ([`BackendStatus`]), the union of their checkpoints and samplers, interrupt requests, and
//! what the door checks requests against ([`lists`]: name lists, request schemas, the pool's
//! contract).
//!
//! Owns: per-backend state that only lives in memory (reachability, loaded checkpoint,
//! cached model list, last error, the task it runs, its figures) and the claim its worker
//! holds, with the signal that stops that claim's run ([`ClaimStop`]: the user's interrupt,
//! the backend withdrawn), keyed by the claim's fence: a stop reaches only the worker that
//! runs that claim; [`view::PoolView`], the snapshot the scheduling policy reads.
//! Must not: decide which task runs where (the policy does, in `model::policy`; the
//! database's `running` rows are the record) or touch the store.

pub mod lists;
pub mod view;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use scheduler_api::{BackendInfo, BackendSource, BackendState, CheckpointInfo};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::error::HostError;
use crate::sdnext::{RemoteError, SdClient, SdModel, resolve_checkpoint, strip_hash};

/// What the host knows about one backend.
#[derive(Debug, Clone, Default)]
pub struct BackendStatus {
    /// Up / loading / down / unknown.
    pub state: Option<BackendState>,
    /// Loaded checkpoint title, as last confirmed (`None` = unknown or none).
    pub loaded: Option<String>,
    /// The VAE we last set.
    pub vae: Option<String>,
    /// Its `/sd-models`, when known.
    pub models: Option<Vec<SdModel>>,
    /// When `models` was fetched.
    pub models_at: Option<Instant>,
    /// Last error text.
    pub last_error: Option<String>,
    /// The task it runs now (set when claimed, cleared when its request returned).
    pub running: Option<RunningOn>,
    /// Its last run ended and it is claiming its next task (the checkpoint that run had):
    /// still busy with work of that checkpoint for the policy, until its claim answers.
    pub between: Option<Option<String>>,
    /// What it did since the host started.
    pub figures: Figures,
    /// Takes no new task (the running one, if any, was given back).
    pub disabled: bool,
    /// Takes no new task; the running one finishes.
    pub draining: bool,
}

/// The task a backend runs now.
#[derive(Debug, Clone)]
pub struct RunningOn {
    /// Its id.
    pub task_id: String,
    /// Its checkpoint (as the task names it).
    pub checkpoint: Option<String>,
    /// When it was claimed.
    pub started: Instant,
}

/// What a backend did since the host started (`GET /backends`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// Runs that returned (any end).
    pub runs: u64,
    /// Runs that ended done.
    pub done: u64,
    /// Runs that ended failed.
    pub failed: u64,
    /// Checkpoint loads it was asked for.
    pub loads: u64,
    /// Time spent from claim to the request's return, ms.
    pub busy_ms: u64,
}

/// A backend's figures as the host that drives it stores them for the other hosts sharing
/// the store (JSON in the store's `backends` row, written every lease round and after each
/// run): what `GET /backends` on a host that does not drive it shows. The task it runs is
/// not in it: every host reads the running tasks from the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedFigures {
    /// The host that wrote them (its driver then): a host shows them only while that host
    /// drives the backend.
    pub driver: String,
    /// Its state.
    pub state: BackendState,
    /// Its loaded checkpoint, as last confirmed.
    pub loaded_checkpoint: Option<String>,
    /// Its last error, for display.
    pub last_error: Option<String>,
    /// [`Figures::done`].
    pub tasks_done: u64,
    /// [`Figures::failed`].
    pub tasks_failed: u64,
    /// [`Figures::loads`].
    pub loads: u64,
    /// [`Figures::busy_ms`].
    pub busy_ms: u64,
    /// Where its request contract comes from (`openapi`, `table`).
    pub contract: Option<String>,
}

/// What a claim's run is asked to do (the signal of [`Backend::begin_claim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimStop {
    /// Go on.
    Running,
    /// Stop: the user asked (a `DELETE`); the run ends interrupted.
    Interrupt,
    /// Stop: the backend was disabled or removed; the claim was ended (its task given back,
    /// or interrupted when the user had asked) and nothing the run produces counts.
    Withdrawn,
}

/// The claim a backend's worker holds.
struct ClaimSlot {
    /// The claim's fence, handed out by the store (`None` while the claim's store write is
    /// under way).
    fence: Option<i64>,
    /// The task it took (`None` while the claim's store write is under way).
    task_id: Option<String>,
    stop: watch::Sender<ClaimStop>,
    /// Stops `(task id, fence)` asked while the claim was being written: the claim stops
    /// when it took one of them.
    early_stops: Vec<(String, i64)>,
}

/// One configured SD.Next backend.
pub struct Backend {
    /// Client.
    pub client: SdClient,
    /// Credential-free URL (the backend's name in tasks and answers).
    pub url: String,
    /// Its id in the pool (`flag-N`, `added-N`).
    pub id: String,
    /// Where it comes from.
    pub source: BackendSource,
    /// Set once it left the pool: its worker stops.
    removed: std::sync::atomic::AtomicBool,
    status: Mutex<BackendStatus>,
    /// Learnt from the first Control task: this SD.Next answers [`crate::sdnext::CONTROL_XYZ_BUG`] to a
    /// `/control` request without `xyz` (see [`Backend::control_needs_xyz`]).
    control_needs_xyz: std::sync::atomic::AtomicBool,
    /// Its name lists and request schema, for the door ([`lists`]).
    door: lists::Door,
    /// The claim its worker holds (never held across an await).
    claim: Mutex<Option<ClaimSlot>>,
    /// Who drives it (one host at a time on a shared store).
    driving: Mutex<Driving>,
}

/// Which host drives a backend.
#[derive(Debug, Clone, Default)]
pub struct Driving {
    /// Its row in the shared store's backends table (a shared store only).
    pub row: Option<i64>,
    /// This host drives it: its worker claims tasks for it. Always, unless the store is
    /// shared; there only while this host holds its lease.
    pub here: bool,
    /// The driving host's id, as last known.
    pub driver: Option<String>,
    /// Until when this host's lease holds at the latest, by this host's clock (counted from
    /// before the renewal was asked): past it the worker claims no more, even before the
    /// next renewal says the lease is gone.
    pub until: Option<std::time::Instant>,
}

impl Backend {
    /// A backend for a configured URL (`user:pass@` allowed), as the first `--backend`.
    pub fn new(url: &str) -> Result<Backend, RemoteError> {
        Backend::with_id(url, "flag-1".into(), BackendSource::Flag)
    }

    /// A backend of the pool with its id and source.
    pub fn with_id(url: &str, id: String, source: BackendSource) -> Result<Backend, RemoteError> {
        let client = SdClient::new(url)?;
        Ok(Backend {
            url: client.display_url(),
            client,
            id,
            source,
            removed: std::sync::atomic::AtomicBool::new(false),
            status: Mutex::new(BackendStatus::default()),
            control_needs_xyz: std::sync::atomic::AtomicBool::new(false),
            door: lists::Door::default(),
            claim: Mutex::new(None),
            driving: Mutex::new(Driving {
                here: true,
                ..Driving::default()
            }),
        })
    }

    /// `GET /backends` for this one, given the running tasks as `(id, backend)`.
    pub fn info(&self, running: &[(String, Option<String>)]) -> BackendInfo {
        // Its own lock, not held with the status lock.
        let contract = self.contract_source().map(str::to_owned);
        let s = self.status();
        BackendInfo {
            url: self.url.clone(),
            state: s.state.unwrap_or(BackendState::Unknown),
            current_task_id: running
                .iter()
                .rev()
                .find(|(_, on)| on.as_deref() == Some(self.url.as_str()))
                .map(|(id, _)| id.clone()),
            loaded_checkpoint: s.loaded.clone(),
            checkpoints: s
                .models
                .as_ref()
                .map(|m| m.iter().map(|m| m.title.clone()).collect())
                .unwrap_or_default(),
            last_error: s.last_error.as_deref().map(crate::sdnext::shown_error),
            id: self.id.clone(),
            source: self.source,
            enabled: !s.disabled,
            draining: s.draining,
            tasks_done: s.figures.done,
            tasks_failed: s.figures.failed,
            loads: s.figures.loads,
            busy_ms: s.figures.busy_ms,
            contract,
            driver: self.driving().driver.clone(),
        }
    }

    /// Its figures as this host, its driver, stores them for the other hosts.
    pub fn shared_figures(&self, host_id: &str) -> SharedFigures {
        let info = self.info(&[]);
        SharedFigures {
            driver: host_id.to_owned(),
            state: info.state,
            loaded_checkpoint: info.loaded_checkpoint,
            last_error: info.last_error,
            tasks_done: info.tasks_done,
            tasks_failed: info.tasks_failed,
            loads: info.loads,
            busy_ms: info.busy_ms,
            contract: info.contract,
        }
    }

    /// `GET /backends` for this one, given the running tasks and the figures its driver
    /// stored: those of another host that drives it now replace this host's own (which
    /// are only what this host saw of it); a backend this host drives shows its live ones.
    pub fn info_shared(
        &self,
        running: &[(String, Option<String>)],
        stored: Option<&SharedFigures>,
    ) -> BackendInfo {
        let mut info = self.info(running);
        let theirs = {
            let d = self.driving();
            stored.filter(|f| !d.here && d.driver.as_deref() == Some(f.driver.as_str()))
        };
        if let Some(f) = theirs {
            info.state = f.state;
            info.loaded_checkpoint = f.loaded_checkpoint.clone();
            info.last_error = f.last_error.clone();
            info.tasks_done = f.tasks_done;
            info.tasks_failed = f.tasks_failed;
            info.loads = f.loads;
            info.busy_ms = f.busy_ms;
            info.contract = f.contract.clone();
        }
        info
    }

    /// Who drives it (never held across an await).
    pub fn driving(&self) -> std::sync::MutexGuard<'_, Driving> {
        self.driving.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this host drives it (its worker claims tasks for it).
    pub fn driven_here(&self) -> bool {
        let d = self.driving();
        d.here && d.until.is_none_or(|u| Instant::now() < u)
    }

    /// Whether it left the pool (its worker stops).
    pub fn is_removed(&self) -> bool {
        self.removed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether it must give its running task back now (disabled or removed).
    pub fn withdrawn(&self) -> bool {
        self.is_removed() || self.status().disabled
    }

    /// Whether Control requests to this backend must carry `"xyz": {}` (SD.Next `058a7f0`'s
    /// bug, [`crate::sdnext::CONTROL_XYZ_BUG`]). Requests go without it until the backend answers that
    /// exact error once: a fixed SD.Next may read `xyz` as a real grid.
    pub fn control_needs_xyz(&self) -> bool {
        self.control_needs_xyz
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Remembers that this backend needs `"xyz": {}` on Control requests.
    pub fn remember_control_needs_xyz(&self) {
        self.control_needs_xyz
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Locks the status (never held across an await).
    pub fn status(&self) -> std::sync::MutexGuard<'_, BackendStatus> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Its claim answered (a task or nothing): it is no longer between two runs.
    pub fn claimed(&self) {
        self.status().between = None;
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<ClaimSlot>> {
        self.claim.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Its worker starts a claim (before the claim is written, so a stop for the task it
    /// takes finds it); returns the claim's stop signal. A withdrawn backend's claim starts
    /// withdrawn.
    pub fn begin_claim(&self) -> watch::Receiver<ClaimStop> {
        let first = if self.withdrawn() {
            ClaimStop::Withdrawn
        } else {
            ClaimStop::Running
        };
        let (stop, rx) = watch::channel(first);
        *self.slot() = Some(ClaimSlot {
            fence: None,
            task_id: None,
            stop,
            early_stops: Vec::new(),
        });
        rx
    }

    /// The claim being written took `task_id` under `fence` (a stop asked for it meanwhile
    /// reaches it now).
    pub fn claim_took(&self, fence: i64, task_id: &str) {
        if let Some(s) = self.slot().as_mut().filter(|s| s.fence.is_none()) {
            s.fence = Some(fence);
            s.task_id = Some(task_id.to_owned());
            if std::mem::take(&mut s.early_stops)
                .iter()
                .any(|(id, f)| *f == fence && id == task_id)
            {
                s.stop.send_if_modified(|now| {
                    let running = *now == ClaimStop::Running;
                    if running {
                        *now = ClaimStop::Interrupt;
                    }
                    running
                });
            }
        }
    }

    /// Whether its worker's claim holds task `id`.
    pub fn holds(&self, id: &str) -> bool {
        self.slot()
            .as_ref()
            .is_some_and(|s| s.task_id.as_deref() == Some(id))
    }

    /// The claim being written took nothing (or failed): it is over.
    pub fn claim_missed(&self) {
        let mut slot = self.slot();
        if slot.as_ref().is_some_and(|s| s.fence.is_none()) {
            *slot = None;
        }
    }

    /// The claim under `fence` is over (its run ended): no stop reaches it any more.
    pub fn end_claim(&self, fence: i64) {
        let mut slot = self.slot();
        if slot.as_ref().is_some_and(|s| s.fence == Some(fence)) {
            *slot = None;
        }
    }

    /// The fence of the claim it runs, once written.
    pub fn claim_fence(&self) -> Option<i64> {
        self.slot().as_ref().and_then(|s| s.fence)
    }

    /// Signals its claim that the backend was withdrawn (disabled or removed); returns the
    /// claim as `(fence, task id)` once it is written (`None` while it is being written:
    /// it starts withdrawn).
    pub fn withdraw_claim(&self) -> Option<(i64, String)> {
        let slot = self.slot();
        let s = slot.as_ref()?;
        s.stop.send_replace(ClaimStop::Withdrawn);
        Some((s.fence?, s.task_id.clone()?))
    }

    /// Asks the run of the claim under `fence` to stop, if this backend holds it for task
    /// `id`; whether it does. A claim being written remembers the stop, for when it knows
    /// what it took.
    fn stop_claim(&self, id: &str, fence: i64) -> bool {
        let mut slot = self.slot();
        let Some(s) = slot.as_mut() else {
            return false;
        };
        if s.fence.is_none() {
            // Being written: the claim stops if it takes that task under that fence.
            s.early_stops.push((id.to_owned(), fence));
            return false;
        }
        if s.fence != Some(fence) || s.task_id.as_deref().is_some_and(|t| t != id) {
            return false;
        }
        s.stop.send_if_modified(|now| {
            let running = *now == ClaimStop::Running;
            if running {
                *now = ClaimStop::Interrupt;
            }
            running
        });
        true
    }

    /// Marks `task` as running here (after its claim).
    pub fn start_run(&self, task: &crate::model::TaskRow) {
        self.status().running = Some(RunningOn {
            task_id: task.id.clone(),
            checkpoint: task.checkpoint.clone(),
            started: Instant::now(),
        });
    }

    /// Its request returned (`done`: whether the run ended done or failed; `None`: it was
    /// interrupted or given back). A draining backend is now drained: disabled.
    pub fn end_run(&self, done: Option<bool>) {
        let mut s = self.status();
        if std::mem::take(&mut s.draining) {
            s.disabled = true;
        }
        if let Some(r) = s.running.take() {
            s.figures.busy_ms += r.started.elapsed().as_millis() as u64;
            // Ran to its end: its worker claims again at once, as the same checkpoint's
            // backend (a task given back leaves it idle).
            s.between = done.map(|_| r.checkpoint);
        }
        s.figures.runs += 1;
        match done {
            Some(true) => s.figures.done += 1,
            Some(false) => s.figures.failed += 1,
            None => {}
        }
    }

    /// It was asked to load a checkpoint.
    pub fn count_load(&self) {
        self.status().figures.loads += 1;
    }

    /// Whether it takes new tasks (driven by this host, not disabled, not draining).
    pub fn takes_work(&self) -> bool {
        if !self.driven_here() {
            return false;
        }
        let s = self.status();
        !s.disabled && !s.draining
    }

    /// Its measured pace: ms per run (1000 until it ran one).
    pub fn ms_per_task(&self) -> i64 {
        let f = self.status().figures;
        f.busy_ms
            .checked_div(f.runs)
            .map_or(1000, |ms| ms.max(1) as i64)
    }

    /// Whether this backend's cached models resolve `title` (`None`: not known yet).
    pub fn lists(&self, title: &str) -> Option<bool> {
        let s = self.status();
        s.models
            .as_ref()
            .map(|m| resolve_checkpoint(m, title).is_some())
    }

    /// Fetches and caches `/sd-models`.
    pub async fn refresh_models(&self) -> Result<Vec<SdModel>, RemoteError> {
        let models = self.client.sd_models().await?;
        let mut s = self.status();
        if s.models.as_ref() != Some(&models) {
            self.door.bump();
        }
        s.models = Some(models.clone());
        s.models_at = Some(Instant::now());
        Ok(models)
    }
}

/// The backends, in configuration order.
pub struct Backends {
    list: std::sync::RwLock<Vec<Arc<Backend>>>,
    contract: lists::ContractCache,
    /// A run ended on one of them (its figures changed): the pool stores them at once on a
    /// shared store.
    ran: Notify,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self.all().iter().map(|b| b.url.clone()).collect();
        f.debug_struct("Backends").field("urls", &urls).finish()
    }
}

impl Backends {
    /// The backends of the configuration.
    pub fn new(list: Vec<Arc<Backend>>) -> Backends {
        Backends {
            list: std::sync::RwLock::new(list),
            contract: lists::ContractCache::default(),
            ran: Notify::new(),
        }
    }

    /// Every backend of the pool, in order (the `--backend` ones, then the added ones).
    pub fn all(&self) -> Vec<Arc<Backend>> {
        self.list.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.list.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The backend with this id.
    pub fn by_id(&self, id: &str) -> Option<Arc<Backend>> {
        self.all().into_iter().find(|b| b.id == id)
    }

    /// Adds a backend to the pool.
    pub fn push(&self, b: Arc<Backend>) {
        self.list.write().unwrap_or_else(|p| p.into_inner()).push(b);
    }

    /// Takes a backend out of the pool (its worker stops); returns it.
    pub fn remove(&self, id: &str) -> Option<Arc<Backend>> {
        let mut list = self.list.write().unwrap_or_else(|p| p.into_inner());
        let i = list.iter().position(|b| b.id == id)?;
        let b = list.remove(i);
        b.removed.store(true, std::sync::atomic::Ordering::Relaxed);
        Some(b)
    }

    /// The browser origins of the backends now in the pool (allowed like `--allow-origin`).
    pub fn origins(&self) -> Vec<String> {
        self.all().iter().map(|b| b.client.origin()).collect()
    }

    /// The union of checkpoints over backends (fresh where reachable, cached otherwise),
    /// in backend order without duplicates. `Unavailable` when no backend ever answered.
    pub async fn checkpoints(&self) -> Result<Vec<CheckpointInfo>, HostError> {
        let list = self.all();
        let fetched = futures::future::join_all(list.iter().map(|b| async move {
            match b.refresh_models().await {
                Ok(m) => Some(m),
                Err(_) => b.status().models.clone(),
            }
        }))
        .await;
        if fetched.iter().all(Option::is_none) {
            return Err(HostError::Unavailable(
                "no SD.Next backend is reachable".into(),
            ));
        }
        let mut out: Vec<CheckpointInfo> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (b, models) in list.iter().zip(fetched) {
            for m in models.unwrap_or_default() {
                let key = strip_hash(&m.title).to_owned();
                match index.get(&key) {
                    Some(&i) => {
                        if !out[i].backends.contains(&b.url) {
                            out[i].backends.push(b.url.clone());
                        }
                    }
                    None => {
                        index.insert(key, out.len());
                        out.push(CheckpointInfo {
                            title: m.title.clone(),
                            model_name: m.model_name.clone(),
                            backends: vec![b.url.clone()],
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// The union of sampler names over reachable backends.
    pub async fn samplers(&self) -> Result<Vec<String>, HostError> {
        let list = self.all();
        let lists = futures::future::join_all(list.iter().map(|b| b.client.samplers())).await;
        if lists.iter().all(Result::is_err) {
            return Err(HostError::Unavailable(
                "no SD.Next backend is reachable".into(),
            ));
        }
        let mut out: Vec<String> = Vec::new();
        for name in lists.into_iter().flatten().flatten() {
            if !out.contains(&name) {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// `GET /backends`, given the running tasks as `(id, backend)` (earliest first) and the
    /// figures the backends' drivers stored, by row ([`Backend::info_shared`]).
    pub fn infos(
        &self,
        running: &[(String, Option<String>)],
        stored: &HashMap<i64, SharedFigures>,
    ) -> Vec<BackendInfo> {
        self.all()
            .iter()
            .map(|b| {
                let row = b.driving().row;
                b.info_shared(running, row.and_then(|r| stored.get(&r)))
            })
            .collect()
    }

    /// A run ended on one of them (its figures changed).
    pub fn ran(&self) {
        self.ran.notify_one();
    }

    /// Waits until a run ends on one of them (one told before the wait counts).
    pub async fn run_ended(&self) {
        self.ran.notified().await
    }

    /// Asks the run of task `id` under the claim `fence` to stop: the worker that runs that
    /// claim, and only it, interrupts its SD.Next (and re-sends while the job runs). A run
    /// that has ended is not reached (whatever its backend runs now is another claim); the
    /// stop recorded on the task makes its end interrupted. Whether a run was reached.
    pub fn interrupt(&self, id: &str, fence: Option<i64>) -> bool {
        let Some(fence) = fence else { return false };
        self.all().iter().any(|b| b.stop_claim(id, fence))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_backend_takes_work_only_while_this_host_drives_it() {
        let b = Backend::new("http://127.0.0.1:7860").unwrap();
        // One host (SQLite): it always drives its backends.
        assert!(b.takes_work());
        // Shared: not before its lease is taken, nor once it would have run out.
        b.driving().here = false;
        assert!(!b.takes_work());
        {
            let mut d = b.driving();
            d.here = true;
            d.until = Some(Instant::now() + Duration::from_secs(15));
        }
        assert!(b.takes_work());
        b.driving().until = Some(Instant::now() - Duration::from_millis(1));
        assert!(
            !b.takes_work(),
            "a lease not renewed in time stops the claims"
        );
        b.driving().until = Some(Instant::now() + Duration::from_secs(15));
        b.status().disabled = true;
        assert!(!b.takes_work());
    }

    #[test]
    fn a_backend_another_host_drives_shows_that_hosts_stored_figures() {
        let b = Backend::new("http://127.0.0.1:7860").unwrap();
        b.status().figures.done = 1;
        let mut theirs = b.shared_figures("host-a");
        theirs.tasks_done = 5;
        theirs.loaded_checkpoint = Some("m.safetensors".into());
        let shown = |b: &Backend| {
            let i = b.info_shared(&[], Some(&theirs));
            (i.tasks_done, i.loaded_checkpoint)
        };
        // Driven here: its live figures.
        b.driving().driver = Some("host-b".into());
        assert_eq!(shown(&b), (1, None));
        // Driven by the host that stored them: theirs.
        {
            let mut d = b.driving();
            d.here = false;
            d.driver = Some("host-a".into());
        }
        assert_eq!(shown(&b), (5, Some("m.safetensors".into())));
        // Driven by a third host that has not stored its own yet: not host a's old ones.
        b.driving().driver = Some("host-c".into());
        assert_eq!(shown(&b), (1, None));
    }
}
