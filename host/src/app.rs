//! The shared state of a running host ([`Host`]) and the operations the HTTP handlers call:
//! each one combines a store call with its events and wakes the workers. Handlers stay thin;
//! policy stays in `queue/`; SQL stays in `store/`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scheduler_api::{
    BackendInfo, BackendState, CheckpointInfo, EnqueueResponse, Event, QueueEvent, Settings,
    TaskChange, TaskEvent, TaskStatus, TaskType,
};
use serde_json::{Map, Value};
use tokio::sync::{Notify, watch};

use crate::config::Config;
use crate::events::EventHub;
use crate::queue::{self, Invalid, MoveTarget};
use crate::results::ResultFiles;
use crate::sdnext::{SdClient, SdModel, resolve_checkpoint};
use crate::store::ops::{self, Deleted, NewTask, TaskEdit};
use crate::store::{Store, StoreError};

/// Errors of host operations; `http/` maps each to one status.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// No such task (404).
    #[error("Task not found")]
    NotFound,
    /// The task's state forbids this (409).
    #[error("{0}")]
    Conflict(String),
    /// The request is well-formed but invalid (422).
    #[error("{0}")]
    Invalid(String),
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// No backend can answer now (503).
    #[error("{0}")]
    Unavailable(String),
    /// The store failed (500).
    #[error(transparent)]
    Store(StoreError),
    /// Anything else internal (500).
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for HostError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => HostError::NotFound,
            StoreError::Conflict(m) => HostError::Conflict(m),
            StoreError::Invalid(m) => HostError::Invalid(m),
            other => HostError::Store(other),
        }
    }
}

impl From<Invalid> for HostError {
    fn from(e: Invalid) -> Self {
        HostError::Invalid(e.0)
    }
}

/// What the host knows about one backend.
#[derive(Debug, Clone, Default)]
pub struct BackendStatus {
    /// Up / loading / down / unknown.
    pub state: Option<BackendState>,
    /// The task it runs.
    pub current_task: Option<String>,
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
}

/// One configured SD.Next backend.
pub struct Backend {
    /// Client.
    pub client: SdClient,
    /// Credential-free URL.
    pub url: String,
    /// Shared status (never held across an await).
    pub status: Mutex<BackendStatus>,
}

impl Backend {
    /// Locks the status.
    pub fn status(&self) -> std::sync::MutexGuard<'_, BackendStatus> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this backend's cached models resolve `title`.
    pub fn lists(&self, title: &str) -> Option<bool> {
        let s = self.status();
        s.models
            .as_ref()
            .map(|m| resolve_checkpoint(m, title).is_some())
    }

    /// Fetches and caches `/sd-models`.
    pub async fn refresh_models(&self) -> Result<Vec<SdModel>, crate::sdnext::RemoteError> {
        let models = self.client.sd_models().await?;
        let mut s = self.status();
        s.models = Some(models.clone());
        s.models_at = Some(Instant::now());
        Ok(models)
    }
}

/// The running host, shared by handlers, workers and background tasks.
pub struct Host {
    /// Configuration.
    pub config: Config,
    /// Database.
    pub store: Store,
    /// Event fan-out.
    pub events: EventHub,
    /// Result files.
    pub files: ResultFiles,
    /// Backends, in configuration order.
    pub backends: Vec<Arc<Backend>>,
    /// Bumped to wake idle workers.
    pub kick: watch::Sender<u64>,
    /// Persisted pause flag (cache).
    pub paused: AtomicBool,
    /// Settings (cache of the stored ones).
    pub settings: Mutex<Settings>,
    /// Running tasks the user asked to interrupt.
    pub interrupts: Mutex<HashSet<String>>,
    /// Wakes the callback deliverer.
    pub callbacks: Notify,
    /// Becomes true at shutdown.
    pub shutdown: watch::Receiver<bool>,
}

/// Body limit for most routes.
pub const SMALL_BODY: usize = 1 << 20;
/// Body limit for img2img enqueue and import.
pub const LARGE_BODY: usize = 64 << 20;

impl Host {
    /// Wakes the workers.
    pub fn kick(&self) {
        self.kick.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Current settings.
    pub fn settings(&self) -> Settings {
        self.settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the queue is paused.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Emits a `task` event.
    pub fn task_event(
        &self,
        id: &str,
        status: TaskStatus,
        change: TaskChange,
        name: Option<String>,
    ) {
        self.events.emit(Event::Task(TaskEvent {
            task_id: id.to_owned(),
            status,
            change,
            name,
        }));
    }

    /// Emits a `queue` event with fresh counters (off the caller's path).
    pub fn queue_event(self: &Arc<Self>) {
        let h = self.clone();
        tokio::spawn(async move {
            if let Ok((pending, running)) = h.store.call(|c| ops::counts(c)).await {
                h.events.emit(Event::Queue(QueueEvent {
                    paused: h.is_paused(),
                    pending,
                    running,
                }));
            }
        });
    }

    /// Ids of tasks running now, per the backends (first backend first).
    pub fn running_ids(&self) -> Vec<String> {
        self.backends
            .iter()
            .filter_map(|b| b.status().current_task.clone())
            .collect()
    }

    // -----------------------------------------------------------------------------------
    // Backends

    /// The union of checkpoints over backends (fresh where reachable, cached otherwise),
    /// in backend order without duplicates. `Unavailable` when no backend ever answered.
    pub async fn checkpoints(&self) -> Result<Vec<CheckpointInfo>, HostError> {
        let fetched = futures::future::join_all(self.backends.iter().map(|b| async move {
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
        for (b, models) in self.backends.iter().zip(fetched) {
            for m in models.unwrap_or_default() {
                let key = crate::sdnext::strip_hash(&m.title).to_owned();
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
        let lists =
            futures::future::join_all(self.backends.iter().map(|b| b.client.samplers())).await;
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

    /// `GET /backends`.
    pub fn backend_infos(&self) -> Vec<BackendInfo> {
        self.backends
            .iter()
            .map(|b| {
                let s = b.status();
                BackendInfo {
                    url: b.url.clone(),
                    state: s.state.unwrap_or(BackendState::Unknown),
                    current_task_id: s.current_task.clone(),
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

    // -----------------------------------------------------------------------------------
    // Queue operations

    /// Enqueues a validated body (expanding `*` / `<folder>/*`), idempotently per key.
    pub async fn enqueue(
        self: &Arc<Self>,
        task_type: TaskType,
        body: Map<String, Value>,
        idempotency_key: Option<String>,
    ) -> Result<EnqueueResponse, HostError> {
        if let Some(key) = &idempotency_key {
            let k = key.clone();
            if let Some(prev) = self
                .store
                .call(move |c| ops::idempotent_answer(c, &k))
                .await?
            {
                return serde_json::from_str(&prev).map_err(|e| HostError::Internal(e.to_string()));
            }
        }
        let spec = queue::prepare_enqueue(task_type, body)?;
        let titles: Vec<String> = match &spec.checkpoint {
            queue::CheckpointSpec::All | queue::CheckpointSpec::Folder(_) => self
                .checkpoints()
                .await?
                .into_iter()
                .map(|c| c.title)
                .collect(),
            _ => Vec::new(),
        };
        let checkpoints = queue::expand_checkpoints(&spec.checkpoint, &titles)?;
        let ids = queue::expansion_ids(checkpoints.len());
        let tasks: Vec<NewTask> = ids
            .iter()
            .zip(checkpoints)
            .map(|(id, ck)| NewTask {
                id: id.clone(),
                task_type,
                name: spec.name.clone(),
                request: spec.request.clone(),
                page_snapshot: spec.page_snapshot.clone(),
                checkpoint: ck,
                vae: spec.vae.clone(),
                callback_url: spec.callback_url.clone(),
                bookmarked: false,
            })
            .collect();
        let answer = EnqueueResponse {
            task_id: ids[0].clone(),
            task_ids: ids.clone(),
        };
        let answer_json =
            serde_json::to_string(&answer).map_err(|e| HostError::Internal(e.to_string()))?;
        let names: Vec<(String, Option<String>)> = tasks
            .iter()
            .map(|t| (t.id.clone(), t.name.clone()))
            .collect();
        let prev = self
            .store
            .call(move |c| {
                ops::insert_tasks(
                    c,
                    &tasks,
                    idempotency_key
                        .as_deref()
                        .map(|k| (k, answer_json.as_str())),
                )
            })
            .await?;
        if let Some(prev) = prev {
            return serde_json::from_str(&prev).map_err(|e| HostError::Internal(e.to_string()));
        }
        for (id, name) in names {
            self.task_event(&id, TaskStatus::Pending, TaskChange::Created, name);
        }
        self.queue_event();
        self.kick();
        self.events.flush().await;
        Ok(answer)
    }

    /// Imports an export array; every rejected item is reported, valid ones are appended.
    pub async fn import(
        self: &Arc<Self>,
        content: &str,
    ) -> Result<scheduler_api::ImportResponse, HostError> {
        let items: Vec<Value> = match serde_json::from_str::<Value>(content) {
            Ok(Value::Array(a)) => a,
            Ok(_) => {
                return Err(HostError::Invalid(
                    "Import failed: content is not a JSON array".into(),
                ));
            }
            Err(e) => {
                return Err(HostError::Invalid(format!(
                    "Import failed: content is not JSON: {e}"
                )));
            }
        };
        let mut rejected = Vec::new();
        let mut tasks: Vec<NewTask> = Vec::new();
        let mut seen = HashSet::new();
        for (index, item) in items.iter().enumerate() {
            let item_id = item.get("id").and_then(Value::as_str).map(str::to_owned);
            let parsed = queue::import_item(item).and_then(|it| {
                let spec = queue::prepare_enqueue(it.task_type, it.body)?;
                Ok((it.id, it.bookmarked, spec))
            });
            match parsed {
                Ok((id, bookmarked, spec)) => {
                    let checkpoint = match spec.checkpoint {
                        queue::CheckpointSpec::Title(t) => Some(t),
                        _ => None,
                    };
                    tasks.push(NewTask {
                        id: id.unwrap_or_default(),
                        task_type: spec.task_type,
                        name: spec.name,
                        request: spec.request,
                        page_snapshot: spec.page_snapshot,
                        checkpoint,
                        vae: spec.vae,
                        callback_url: spec.callback_url,
                        bookmarked,
                    });
                }
                Err(e) => rejected.push(scheduler_api::ImportRejection {
                    index,
                    id: item_id,
                    reason: e.0,
                }),
            }
        }
        // Keep ids that are free; give the others new ones.
        let wanted: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
        let taken: Vec<bool> = self
            .store
            .call(move |c| {
                wanted
                    .iter()
                    .map(|id| {
                        if id.is_empty() {
                            Ok(true)
                        } else {
                            ops::task_exists(c, id)
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        for (t, taken) in tasks.iter_mut().zip(taken) {
            if taken || !seen.insert(t.id.clone()) {
                t.id = uuid::Uuid::new_v4().to_string();
            }
        }
        let imported: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
        if !tasks.is_empty() {
            self.store
                .call(move |c| ops::insert_tasks(c, &tasks, None))
                .await?;
            for id in &imported {
                self.task_event(id, TaskStatus::Pending, TaskChange::Created, None);
            }
            self.queue_event();
            self.kick();
            self.events.flush().await;
        }
        Ok(scheduler_api::ImportResponse {
            success: true,
            message: format!(
                "Imported {} tasks; {} rejected",
                imported.len(),
                rejected.len()
            ),
            imported,
            rejected,
        })
    }

    /// Edits a pending task.
    pub async fn edit(self: &Arc<Self>, id: String, edit: TaskEdit) -> Result<(), HostError> {
        let i = id.clone();
        self.store
            .call(move |c| ops::edit_task(c, &i, edit))
            .await?;
        self.task_event(&id, TaskStatus::Pending, TaskChange::Updated, None);
        self.kick();
        self.events.flush().await;
        Ok(())
    }

    /// Sets or clears a task's bookmark.
    pub async fn set_bookmark(self: &Arc<Self>, id: String, on: bool) -> Result<(), HostError> {
        self.relabel(id, move |c, i| ops::set_bookmark(c, i, on))
            .await
    }

    /// Renames a task (any status).
    pub async fn rename(self: &Arc<Self>, id: String, name: String) -> Result<(), HostError> {
        self.relabel(id, move |c, i| ops::rename(c, i, Some(&name)))
            .await
    }

    /// Applies a label change (name, bookmark) and announces it; the order is untouched.
    async fn relabel(
        self: &Arc<Self>,
        id: String,
        change: impl FnOnce(&rusqlite::Connection, &str) -> Result<(), crate::store::StoreError>
        + Send
        + 'static,
    ) -> Result<(), HostError> {
        let i = id.clone();
        let row = self
            .store
            .call(move |c| {
                change(c, &i)?;
                ops::get_task(c, &i, false)
            })
            .await?;
        if let Some(row) = row {
            self.task_event(&id, row.status, TaskChange::Updated, row.name);
        }
        self.events.flush().await;
        Ok(())
    }

    /// Deletes a task, or interrupts it when it runs. Returns the message.
    pub async fn delete(self: &Arc<Self>, id: String) -> Result<&'static str, HostError> {
        let i = id.clone();
        match self.store.call(move |c| ops::delete_task(c, &i)).await? {
            Deleted::Removed(status) => {
                if status.is_finished() {
                    let files = self.files.clone();
                    let i = id.clone();
                    let _ = tokio::task::spawn_blocking(move || files.remove_task(&i)).await;
                }
                self.task_event(&id, status, TaskChange::Deleted, None);
                self.queue_event();
                self.events.flush().await;
                Ok("Task deleted")
            }
            Deleted::Running { backend } => {
                self.interrupt(&id, backend.as_deref());
                Ok("Task interrupted")
            }
        }
    }

    /// Asks the backend running `id` to stop; the worker re-sends while the job runs.
    pub fn interrupt(&self, id: &str, backend: Option<&str>) {
        self.interrupts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned());
        for b in &self.backends {
            let runs_it = b.status().current_task.as_deref() == Some(id);
            if runs_it || backend == Some(b.url.as_str()) {
                let client = b.client.clone();
                tokio::spawn(async move {
                    if let Err(e) = client.interrupt().await {
                        tracing::warn!("interrupt: {e}");
                    }
                });
            }
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

    /// Moves a pending task.
    pub async fn move_task(
        self: &Arc<Self>,
        id: String,
        target: MoveTarget,
    ) -> Result<(), HostError> {
        let i = id.clone();
        self.store
            .call(move |c| ops::move_task(c, &i, &target))
            .await?;
        self.task_event(&id, TaskStatus::Pending, TaskChange::Moved, None);
        self.kick();
        self.events.flush().await;
        Ok(())
    }

    /// "Run now". Returns the message.
    pub async fn run_now(self: &Arc<Self>, id: String) -> Result<&'static str, HostError> {
        let paused = self.is_paused();
        let busy = !self.running_ids().is_empty();
        let i = id.clone();
        self.store
            .call(move |c| ops::run_now(c, &i, paused))
            .await?;
        self.task_event(&id, TaskStatus::Pending, TaskChange::Moved, None);
        self.kick();
        self.events.flush().await;
        Ok(if busy && self.backends.len() == self.running_ids().len() {
            "Task is scheduled to run next"
        } else {
            "Task is executing"
        })
    }

    /// Requeues a copy at the end.
    pub async fn requeue(self: &Arc<Self>, id: String) -> Result<String, HostError> {
        let new_id = self.store.call(move |c| ops::requeue_copy(c, &id)).await?;
        self.task_event(&new_id, TaskStatus::Pending, TaskChange::Created, None);
        self.queue_event();
        self.kick();
        self.events.flush().await;
        Ok(new_id)
    }

    /// Requeues every failed task in place.
    pub async fn requeue_failed(self: &Arc<Self>) -> Result<usize, HostError> {
        let ids = self.store.call(ops::requeue_failed).await?;
        self.remove_files(&ids).await;
        for id in &ids {
            self.task_event(id, TaskStatus::Pending, TaskChange::Updated, None);
        }
        self.queue_event();
        self.kick();
        self.events.flush().await;
        Ok(ids.len())
    }

    /// Removes the result files of these tasks (off the async threads).
    async fn remove_files(&self, ids: &[String]) {
        let files = self.files.clone();
        let ids = ids.to_vec();
        let _ = tokio::task::spawn_blocking(move || {
            for id in &ids {
                files.remove_task(id);
            }
        })
        .await;
    }

    /// Pauses or resumes (persisted).
    pub async fn set_paused(self: &Arc<Self>, paused: bool) -> Result<(), HostError> {
        self.store.call(move |c| ops::set_paused(c, paused)).await?;
        self.paused.store(paused, Ordering::SeqCst);
        self.queue_event();
        if !paused {
            self.kick();
        }
        Ok(())
    }

    /// Deletes non-bookmarked pending tasks.
    pub async fn clear_queue(self: &Arc<Self>) -> Result<usize, HostError> {
        let ids = self.store.call(ops::clear_queue).await?;
        for id in &ids {
            self.task_event(id, TaskStatus::Pending, TaskChange::Deleted, None);
        }
        self.queue_event();
        self.events.flush().await;
        Ok(ids.len())
    }

    /// Deletes non-bookmarked finished tasks (older than `before_ms` when given) and their files.
    pub async fn clear_history(
        self: &Arc<Self>,
        before_ms: Option<i64>,
    ) -> Result<usize, HostError> {
        let ids = self
            .store
            .call(move |c| ops::clear_history(c, before_ms))
            .await?;
        self.remove_files(&ids).await;
        for id in &ids {
            self.task_event(id, TaskStatus::Done, TaskChange::Deleted, None);
        }
        self.events.flush().await;
        Ok(ids.len())
    }

    /// Applies the retention setting (and forgets idempotency keys older than a week).
    pub async fn apply_retention(self: &Arc<Self>) -> Result<usize, HostError> {
        let week_ago = ops::now_ms() - 7 * 86_400_000;
        self.store
            .call(move |c| ops::prune_idempotency(c, week_ago))
            .await?;
        let Some(days) = self.settings().history_retention_days else {
            return Ok(0);
        };
        let cutoff = ops::now_ms() - i64::from(days) * 86_400_000;
        self.clear_history(Some(cutoff)).await
    }

    /// Changes settings (validated) and persists them.
    pub async fn update_settings(
        self: &Arc<Self>,
        patch: scheduler_api::SettingsPatch,
    ) -> Result<Settings, HostError> {
        let mut s = self.settings();
        if let Some(v) = patch.start_paused {
            s.start_paused = v;
        }
        if let Some(v) = patch.history_retention_days {
            if let Some(d) = v
                && !(1..=36_500).contains(&d)
            {
                return Err(HostError::Invalid(
                    "history_retention_days must be 1..=36500 or null".into(),
                ));
            }
            s.history_retention_days = v;
        }
        if let Some(v) = patch.auto_requeue_failed {
            s.auto_requeue_failed = v;
        }
        if let Some(v) = patch.max_attempts {
            if !(1..=100).contains(&v) {
                return Err(HostError::Invalid("max_attempts must be 1..=100".into()));
            }
            s.max_attempts = v;
        }
        let s2 = s.clone();
        self.store.call(move |c| ops::save_settings(c, &s2)).await?;
        *self.settings.lock().unwrap_or_else(|p| p.into_inner()) = s.clone();
        let me = self.clone();
        tokio::spawn(async move {
            let _ = me.apply_retention().await;
        });
        Ok(s)
    }
}

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
