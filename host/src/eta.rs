//! The ETA service: records each backend's measured speed after every finished run, and
//! answers `GET /queue/eta` — each pending task's expected start and the queue's end —
//! from those speeds, following the order the scheduler will run the tasks in
//! ([`crate::queue::projected_order`], the projection `/queue` shows, for the look-ahead
//! window; queue order beyond it). The arithmetic is
//! [`crate::model::eta`]; this module only gathers its inputs.
//!
//! Cost: the look-ahead window is read whole, the rest of the queue as a lean scan of the
//! fields the work needs; an answer is reused for [`REUSE_MS`] while no event was emitted
//! since (a panel asks after every queue change, and then gets a fresh one), so a 100,000-task queue costs one scan every few seconds at most.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use scheduler_api::{BackendSpeed, EtaResponse, TaskEta};

use crate::backends::Backends;
use crate::error::HostError;
use crate::events::EventHub;
use crate::model::TaskRow;
use crate::model::eta::{Clock, Job, Speed, checkpoint_key, plan, work};
use crate::model::policy::Activity;
use crate::queue::projected_order;
use crate::settings::SettingsService;
use crate::store::SharedStore;
use crate::store::transitions::LOOKAHEAD;

/// How long an answer is reused (ms).
pub const REUSE_MS: i64 = 2_000;

/// The most tasks an answer lists one by one.
pub const MAX_LISTED: i64 = 1_000;

/// The ETA service.
pub struct Eta {
    store: SharedStore,
    backends: Arc<Backends>,
    settings: Arc<SettingsService>,
    events: EventHub,
    clock: crate::clock::Clock,
    /// The last answer: when, at which [`EventHub::version`], what.
    last: Mutex<Option<(i64, u64, EtaResponse)>>,
}

/// What one finished run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunTiming {
    /// Generation time (ms), from sending the request to its answer.
    pub gen_ms: f64,
    /// The checkpoint load before it (ms), when there was one.
    pub load_ms: Option<f64>,
}

impl Eta {
    /// The service.
    pub fn new(
        store: SharedStore,
        backends: Arc<Backends>,
        settings: Arc<SettingsService>,
        events: EventHub,
        clock: crate::clock::Clock,
    ) -> Eta {
        Eta {
            store,
            backends,
            settings,
            events,
            clock,
            last: Mutex::new(None),
        }
    }

    /// Records a finished run of `task` on `backend` (off the worker's path).
    pub async fn record(
        &self,
        backend: &str,
        task: &TaskRow,
        timing: RunTiming,
    ) -> Result<(), HostError> {
        let w = work(task.task_type, &task.request);
        let backend = backend.to_owned();
        let now = self.clock.now_ms();
        self.store
            .record_speed(
                backend,
                Box::new(move |s: Speed| {
                    let s = s.with_run(timing.gen_ms, w);
                    match timing.load_ms {
                        Some(l) => s.with_load(l),
                        None => s,
                    }
                }),
                now,
            )
            .await?;
        self.invalidate();
        Ok(())
    }

    /// Each pending task's expected start (the first `limit` in run order) and the queue's
    /// expected end.
    pub async fn estimate(&self, limit: i64) -> Result<EtaResponse, HostError> {
        let limit = limit.clamp(0, MAX_LISTED);
        let now = self.clock.now_ms();
        // Read before the queue is: a change after this makes the answer stale.
        let version = self.events.version();
        if let Some((at, v, r)) = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
            && now - at < REUSE_MS
            && v == version
        {
            let mut r = r;
            r.tasks.truncate(limit as usize);
            return Ok(r);
        }
        let head = self.store.queue_head(LOOKAHEAD).await?;
        let (window, running) = (head.window, head.running);
        let after = window.last().map(|t| (t.rank, t.seq));
        let tail = match after {
            Some(a) if window.len() as i64 == LOOKAHEAD => self.store.pending_work_after(a).await?,
            _ => Vec::new(),
        };
        let speeds = self.store.speeds().await?;
        let speeds: HashMap<String, Speed> = speeds.into_iter().collect();
        let backends = self.backends.all();
        // The window in the order the scheduler will run it: the projection the queue
        // listing shows (the policy's function, the settings' rules, the pool as it is;
        // its seats are `backends` in order).
        let (view, order) = projected_order(&backends, &window, &self.settings.rules(), now);
        let mut clocks: Vec<Clock> = backends
            .iter()
            .zip(&view.seats)
            .map(|(b, seat)| Clock {
                free_in_ms: 0.0,
                loaded: seat.loaded.as_deref().map(|l| checkpoint_key(l).to_owned()),
                speed: speeds.get(&b.url).copied().unwrap_or_default(),
                active: seat.activity != Activity::Away,
            })
            .collect();
        let typical = crate::model::eta::fallback(&clocks);
        // What each backend still has to do of its running task.
        for t in &running {
            let Some(s) = backends
                .iter()
                .position(|b| t.life.backend.as_deref() == Some(b.url.as_str()))
            else {
                continue;
            };
            let rate = clocks[s]
                .speed
                .ms_per_mpx_step
                .or(typical.and_then(|t| t.ms_per_mpx_step))
                .unwrap_or(0.0);
            let elapsed = t.life.started_at.map_or(0, |st| now - st) as f64;
            clocks[s].free_in_ms = (rate * work(t.task_type, &t.request) - elapsed).max(0.0);
            let ck = t
                .checkpoint
                .as_deref()
                .map(|c| checkpoint_key(c).to_owned());
            if ck.is_some() {
                clocks[s].loaded = ck;
            }
        }
        let mut ids: Vec<&str> = Vec::with_capacity(order.len());
        let mut jobs: Vec<Job> = Vec::with_capacity(order.len() + tail.len());
        for slot in &order {
            let t = &window[slot.index];
            ids.push(&t.id);
            jobs.push(Job {
                work: work(t.task_type, &t.request),
                checkpoint: t
                    .checkpoint
                    .as_deref()
                    .map(|c| checkpoint_key(c).to_owned()),
                seat: slot.seat,
            });
        }
        jobs.extend(tail.iter().map(|(ty, req, ck)| Job {
            work: work(*ty, req),
            checkpoint: ck.as_deref().map(|c| checkpoint_key(c).to_owned()),
            seat: None,
        }));
        let planned = plan(&jobs, &mut clocks);
        let pending = (window.len() + tail.len()) as i64;
        // The queue ends when the last backend is done: its last planned task, or (nothing
        // pending) its running task. No estimate without a measured run.
        let queue_ends_at = if (pending == 0 && running.is_empty())
            || typical.is_none()
            || planned.iter().any(Option::is_none)
        {
            None
        } else {
            clocks
                .iter()
                .filter(|c| c.active)
                .map(|c| c.free_in_ms)
                .chain(planned.iter().flatten().map(|p| p.end_ms))
                .fold(None, |m: Option<f64>, e| Some(m.map_or(e, |m| m.max(e))))
                .map(|e| now + e as i64)
        };
        let tasks = ids
            .iter()
            .zip(&planned)
            .take(MAX_LISTED as usize)
            .map(|(id, p)| TaskEta {
                id: (*id).to_owned(),
                starts_at: p.map(|p| now + p.start_ms as i64),
                ends_at: p.map(|p| now + p.end_ms as i64),
                backend: p.map(|p| backends[p.seat].url.clone()),
                loads_checkpoint: p.is_some_and(|p| p.loads),
            })
            .collect();
        let answer = EtaResponse {
            now,
            queue_ends_at,
            pending,
            tasks,
            backends: backends
                .iter()
                .map(|b| {
                    let s = speeds.get(&b.url).copied().unwrap_or_default();
                    BackendSpeed {
                        url: b.url.clone(),
                        ms_per_megapixel_step: s.ms_per_mpx_step,
                        load_ms: s.load_ms,
                        samples: s.samples,
                    }
                })
                .collect(),
        };
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((now, version, answer.clone()));
        let mut r = answer;
        r.tasks.truncate(limit as usize);
        Ok(r)
    }

    /// Forgets the reused answer (a run ended, a backend's speed changed).
    pub fn invalidate(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}
