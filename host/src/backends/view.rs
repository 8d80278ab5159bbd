//! What the scheduling policy needs to know of the pool, as a snapshot: each backend's loaded
//! checkpoint and VAE, what it is doing, which checkpoints it lists, and its pace. Built
//! without awaiting (locks held only to copy), used inside a claim (on the store's writer
//! thread) and by the listing's projection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use scheduler_api::BackendState;

use super::Backend;
use crate::model::Candidate;
use crate::model::policy::{Activity, Seat, Waiting};
use crate::sdnext::{SdModel, resolve_checkpoint, strip_hash};

/// One backend in a [`PoolView`].
#[derive(Debug, Clone)]
pub struct SeatView {
    /// Its credential-free URL.
    pub url: String,
    /// Loaded checkpoint key (title without hash).
    pub loaded: Option<String>,
    /// The VAE last set.
    pub vae: Option<String>,
    /// What it does now.
    pub activity: Activity,
    /// Its model list, when known.
    pub models: Option<Vec<SdModel>>,
    /// Milliseconds until it is expected to be free (0 when idle).
    pub free_in_ms: i64,
    /// Its measured pace (ms per task; 1000 until it ran one).
    pub ms_per_task: i64,
}

/// The pool as the policy sees it.
#[derive(Debug, Clone, Default)]
pub struct PoolView {
    /// The backends, in configuration order.
    pub seats: Vec<SeatView>,
}

/// How a pending task's checkpoint reads against the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Its key (comparable with [`SeatView::loaded`]).
    pub key: Option<String>,
    /// Per seat: whether it can run it.
    pub runs: Vec<bool>,
}

impl PoolView {
    /// A snapshot of `backends`.
    pub fn of(backends: &[Arc<Backend>]) -> PoolView {
        let mut running: Vec<Option<Option<String>>> = Vec::with_capacity(backends.len());
        let mut view = PoolView {
            seats: backends
                .iter()
                .map(|b| {
                    let pace = b.ms_per_task();
                    let takes = b.takes_work();
                    let s = b.status();
                    // Busy: running a task, or between two runs (claiming its next).
                    running.push(
                        s.running
                            .as_ref()
                            .map(|r| r.checkpoint.clone())
                            .or_else(|| s.between.clone()),
                    );
                    SeatView {
                        url: b.url.clone(),
                        loaded: s.loaded.as_deref().map(|l| strip_hash(l).to_owned()),
                        vae: s.vae.clone(),
                        activity: if takes_state(s.state) && takes {
                            Activity::Idle
                        } else {
                            Activity::Away
                        },
                        models: s.models.clone(),
                        free_in_ms: free_in_ms(s.running.as_ref().map(|r| r.started), pace),
                        ms_per_task: pace,
                    }
                })
                .collect(),
        };
        // What each busy seat runs, as a key (the checkpoint resolved against the pool).
        for (i, r) in running.into_iter().enumerate() {
            if let Some(ck) = r
                && view.seats[i].activity == Activity::Idle
            {
                let key = view.place(ck.as_deref()).key;
                view.seats[i].activity = Activity::Busy(key);
            }
        }
        view
    }

    /// The index of the backend with this URL.
    pub fn index_of(&self, url: &str) -> Option<usize> {
        self.seats.iter().position(|s| s.url == url)
    }

    /// Where a checkpoint can run: on a backend that lists it (or whose list is not known
    /// yet); when no backend lists it, anywhere (the run then fails fast with "checkpoint
    /// not found" instead of waiting forever).
    pub fn place(&self, checkpoint: Option<&str>) -> Placed {
        let Some(ck) = checkpoint else {
            return Placed {
                key: None,
                runs: vec![true; self.seats.len()],
            };
        };
        let resolved: Vec<Option<Option<&SdModel>>> = self
            .seats
            .iter()
            .map(|s| s.models.as_ref().map(|m| resolve_checkpoint(m, ck)))
            .collect();
        let key = resolved
            .iter()
            .flatten()
            .flatten()
            .next()
            .map(|m| strip_hash(&m.title).to_owned())
            .unwrap_or_else(|| strip_hash(ck).to_owned());
        let lists: Vec<bool> = resolved.iter().map(|r| !matches!(r, Some(None))).collect();
        let anywhere = !lists.iter().any(|&l| l);
        Placed {
            key: Some(key),
            runs: lists.iter().map(|&l| l || anywhere).collect(),
        }
    }

    /// The window as the policy's [`Waiting`] tasks and the seats with their `runs`.
    pub fn policy_input(&self, tasks: &[Candidate]) -> (Vec<Waiting>, Vec<Seat>) {
        let mut memo: HashMap<Option<String>, Placed> = HashMap::new();
        let mut waiting = Vec::with_capacity(tasks.len());
        let mut runs: Vec<Vec<bool>> = vec![Vec::with_capacity(tasks.len()); self.seats.len()];
        for t in tasks {
            let placed = memo
                .entry(t.checkpoint.clone())
                .or_insert_with(|| self.place(t.checkpoint.as_deref()));
            for (s, r) in runs.iter_mut().zip(&placed.runs) {
                s.push(*r);
            }
            waiting.push(Waiting {
                checkpoint: placed.key.clone(),
                vae: t.vae.clone(),
                urgent: t.run_next.is_some() || t.pinned,
                forced: t.force_run,
                overtakes: t.overtakes,
                overtaken_at: t.overtaken_at,
                not_before: t.next_run_at,
            });
        }
        let seats = self
            .seats
            .iter()
            .zip(runs)
            .map(|(s, runs)| Seat {
                loaded: s.loaded.clone(),
                vae: s.vae.clone(),
                activity: s.activity.clone(),
                runs,
            })
            .collect();
        (waiting, seats)
    }
}

/// Whether a backend in this state may take work (up, or reachable while loading a model).
fn takes_state(state: Option<BackendState>) -> bool {
    matches!(state, Some(BackendState::Up) | Some(BackendState::Loading))
}

/// Milliseconds left of a run started at `started` at `pace` ms per task.
pub fn free_in_ms(started: Option<Instant>, pace: i64) -> i64 {
    started.map_or(0, |t| (pace - t.elapsed().as_millis() as i64).max(0))
}
