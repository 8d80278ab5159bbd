//! The backends service: the configured SD.Next servers, what the host knows about each
//! ([`BackendStatus`]), the union of their checkpoints and samplers, and interrupt requests.
//!
//! Owns: per-backend state that only lives in memory (reachability, loaded checkpoint,
//! cached model list, last error, the task it runs, its figures) and the set of running
//! tasks the user asked to stop; [`view::PoolView`], the snapshot the scheduling policy
//! reads.
//! Must not: decide which task runs where (the policy does, in `model::policy`; the
//! database's `running` rows are the record) or touch the store.

pub mod view;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use scheduler_api::{BackendInfo, BackendState, CheckpointInfo};

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

/// One configured SD.Next backend.
pub struct Backend {
    /// Client.
    pub client: SdClient,
    /// Credential-free URL (the backend's name in tasks and answers).
    pub url: String,
    status: Mutex<BackendStatus>,
    /// Learnt from the first Control task: this SD.Next answers [`crate::sdnext::CONTROL_XYZ_BUG`] to a
    /// `/control` request without `xyz` (see [`Backend::control_needs_xyz`]).
    control_needs_xyz: std::sync::atomic::AtomicBool,
}

impl Backend {
    /// A backend for a configured URL (`user:pass@` allowed).
    pub fn new(url: &str) -> Result<Backend, RemoteError> {
        let client = SdClient::new(url)?;
        Ok(Backend {
            url: client.display_url(),
            client,
            status: Mutex::new(BackendStatus::default()),
            control_needs_xyz: std::sync::atomic::AtomicBool::new(false),
        })
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

    /// Marks `task` as running here (after its claim).
    pub fn start_run(&self, task: &crate::model::TaskRow) {
        self.status().running = Some(RunningOn {
            task_id: task.id.clone(),
            checkpoint: task.checkpoint.clone(),
            started: Instant::now(),
        });
    }

    /// Its request returned (`done`: whether the run ended done or failed; `None`: it was
    /// interrupted or given back).
    pub fn end_run(&self, done: Option<bool>) {
        let mut s = self.status();
        if let Some(r) = s.running.take() {
            s.figures.busy_ms += r.started.elapsed().as_millis() as u64;
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

    /// Whether it takes new tasks (not disabled, not draining).
    pub fn takes_work(&self) -> bool {
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
        s.models = Some(models.clone());
        s.models_at = Some(Instant::now());
        Ok(models)
    }
}

/// The backends, in configuration order, and the interrupt requests.
pub struct Backends {
    list: Vec<Arc<Backend>>,
    interrupts: Mutex<HashSet<String>>,
}

impl Backends {
    /// The backends of the configuration.
    pub fn new(list: Vec<Arc<Backend>>) -> Backends {
        Backends {
            list,
            interrupts: Mutex::new(HashSet::new()),
        }
    }

    /// Every backend, in configuration order.
    pub fn all(&self) -> Vec<Arc<Backend>> {
        self.list.clone()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The union of checkpoints over backends (fresh where reachable, cached otherwise),
    /// in backend order without duplicates. `Unavailable` when no backend ever answered.
    pub async fn checkpoints(&self) -> Result<Vec<CheckpointInfo>, HostError> {
        let fetched = futures::future::join_all(self.list.iter().map(|b| async move {
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
        for (b, models) in self.list.iter().zip(fetched) {
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
        let lists = futures::future::join_all(self.list.iter().map(|b| b.client.samplers())).await;
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

    /// `GET /backends`, given the running tasks as `(id, backend)` (earliest first).
    pub fn infos(&self, running: &[(String, Option<String>)]) -> Vec<BackendInfo> {
        self.list
            .iter()
            .map(|b| {
                let s = b.status();
                BackendInfo {
                    url: b.url.clone(),
                    state: s.state.unwrap_or(BackendState::Unknown),
                    current_task_id: running
                        .iter()
                        .rev()
                        .find(|(_, on)| on.as_deref() == Some(b.url.as_str()))
                        .map(|(id, _)| id.clone()),
                    loaded_checkpoint: s.loaded.clone(),
                    checkpoints: s
                        .models
                        .as_ref()
                        .map(|m| m.iter().map(|m| m.title.clone()).collect())
                        .unwrap_or_default(),
                    last_error: s.last_error.clone(),
                }
            })
            .collect()
    }

    /// Asks the backend running `id` to stop; its worker re-sends while the job runs.
    pub fn interrupt(&self, id: &str, backend: Option<&str>) {
        self.interrupts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned());
        for b in self.list.iter().filter(|b| Some(b.url.as_str()) == backend) {
            let client = b.client.clone();
            tokio::spawn(async move {
                if let Err(e) = client.interrupt().await {
                    tracing::warn!("interrupt: {e}");
                }
            });
        }
    }

    /// Whether the user asked to interrupt `id`.
    pub fn interrupt_requested(&self, id: &str) -> bool {
        self.interrupts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    /// Forgets an interrupt request (the task ended).
    pub fn clear_interrupt(&self, id: &str) {
        self.interrupts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}
