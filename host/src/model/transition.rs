//! The transition function: the one place that decides every status change of a task.
//!
//! [`decide`] takes the task's [`Lifecycle`], what happened ([`Event`]), the settings it
//! needs ([`Policy`]) and the time, and returns a [`Transition`]: nothing changes, the row
//! goes, the running task is asked to stop, or a [`Change`] (the next lifecycle, where the
//! task lands in the queue, what happens to its outputs, whether a callback is due). The
//! store writes exactly what was decided (`store::transitions`), in one `UPDATE` statement
//! guarded by the status and the claim fence the decision was made from (a run's end, release
//! or failed try by the fence of the claim it belongs to). Callers never compute a status.
//!
//! A pending task's place in the run-next group and its backoff (`run_next`, `force_run`,
//! `next_run_at`) are lifecycle too: a move and "run now" are changes decided here.
//!
//! ```text
//!        claim (fence F)        finished(done | failed | interrupted)
//!  pending ────────▶ running ───────────────────────────────────────▶ done | failed | interrupted
//!     ▲  ▲              │ released (outage, not ready, shutdown, backend withdrawn): head, no attempt
//!     │  ├──────────────┤ errored (request failed, backend up): head, attempt + 1, not before
//!     │  │              │   next_run_at (backoff doubling per attempt); failed after max_attempts
//!     │  └──────────────┤ recovered at start: head, attempt + 1 (failed after max_attempts)
//!     │                 │ failed with auto-requeue (attempts < max_attempts): tail
//!     └─────────────────┴──── requeue (failed → pending at the tail, attempts reset)
//!
//!  running ── delete ──▶ running, stop requested for F: its end (finished, released,
//!                        errored, recovered) is interrupted
//! ```

use scheduler_api::TaskStatus;

use super::task::Lifecycle;

/// The settings a decision depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A failed task goes back to the queue while it has attempts left.
    pub auto_requeue_failed: bool,
    /// Attempts before a task is failed for good (at least 1).
    pub max_attempts: u32,
    /// The first retry delay after an errored request (ms); doubles per attempt.
    pub retry_backoff_ms: i64,
}

/// The longest retry delay.
pub const MAX_RETRY_DELAY_MS: i64 = 3_600_000;

impl Policy {
    /// The delay before the next try of a task that has now failed `attempts` times:
    /// `retry_backoff_ms × 2^(attempts − 1)`, at most an hour (never less than the base).
    pub fn retry_delay_ms(&self, attempts: u32) -> i64 {
        let base = self.retry_backoff_ms.max(1);
        let doublings = attempts.saturating_sub(1).min(30);
        base.saturating_mul(1i64 << doublings)
            .min(MAX_RETRY_DELAY_MS.max(base))
    }
}

impl From<&scheduler_api::Settings> for Policy {
    fn from(s: &scheduler_api::Settings) -> Policy {
        Policy {
            auto_requeue_failed: s.auto_requeue_failed,
            max_attempts: s.max_attempts,
            retry_backoff_ms: i64::from(s.retry_backoff_s) * 1000,
        }
    }
}

/// How a run ended, as the worker saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// All images came back.
    Done,
    /// Fewer images than asked, an error answer, or an unknown checkpoint.
    Failed(String),
    /// Stopped by the user.
    Interrupted,
}

impl RunEnd {
    /// The final status word.
    pub fn status(&self) -> TaskStatus {
        match self {
            RunEnd::Done => TaskStatus::Done,
            RunEnd::Failed(_) => TaskStatus::Failed,
            RunEnd::Interrupted => TaskStatus::Interrupted,
        }
    }
}

/// What happened to a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A worker takes it for this backend, under a new fence.
    Claim {
        /// The backend's URL (credential-free).
        backend: String,
        /// The claim's fence: unique among the claims of the host's life.
        fence: i64,
    },
    /// Its generation request ended (`at`: when it returned, in ms).
    Finished {
        /// How.
        end: RunEnd,
        /// When the request returned (history is ordered by it).
        at: i64,
    },
    /// Given back without counting an attempt: backend outage, backend not ready, shutdown.
    Released,
    /// Its generation request failed after it was sent while the backend was up (a probe
    /// right after it answered): the connection dropped mid-answer or was reset, a gateway
    /// answered 502/503/504, or the answer was garbage. Counts an attempt; retried after a
    /// backoff, failed with `reason` after `max_attempts`.
    Errored {
        /// What went wrong.
        reason: String,
    },
    /// Found `running` when the host started (the host stopped while it ran).
    Recovered,
    /// `requeue-failed`: a failed task goes back to the end of the queue.
    Requeue,
    /// `DELETE /task/{id}`.
    Delete,
    /// `PUT /task/{id}` (request fields).
    Edit,
    /// A move (the task itself, or the task it is moved before): it leaves the run-next
    /// group.
    Move,
    /// "Run now": the task joins the run-next group.
    RunNow {
        /// Its place in the group (after the tasks already in it).
        group_seq: i64,
        /// The queue is paused: it runs despite the pause.
        paused: bool,
    },
}

/// Where a task lands in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Its rank stays.
    Keep,
    /// Before every pending task.
    Head,
    /// After every task.
    Tail,
}

/// What happens to a task's outputs (result images, SD.Next `info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outputs {
    /// Untouched.
    Keep,
    /// Removed (rows and files), `info` cleared.
    Clear,
    /// The run's `info` is recorded; its images too when `images` (otherwise the run's
    /// images are dropped: the task goes back to the queue, or was stopped).
    Record {
        /// Whether the run's images are kept.
        images: bool,
    },
}

/// A status change to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The lifecycle columns after the change.
    pub next: Lifecycle,
    /// Where the task lands.
    pub place: Place,
    /// What happens to its outputs.
    pub outputs: Outputs,
    /// Whether its callback (if it has a URL) is due now.
    pub callback: bool,
}

/// What [`decide`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Allowed; nothing of the lifecycle changes (an edit).
    Keep,
    /// The row goes (a pending or finished task is deleted).
    Remove {
        /// A finished task has result files to remove too.
        files: bool,
    },
    /// The task runs: the claim it runs under is asked to stop, and the request is recorded
    /// on the task (`change`: `stop_requested`, nothing else); the status changes when that
    /// run ends, interrupted.
    Interrupt {
        /// The fence of the claim to stop.
        fence: Option<i64>,
        /// The stop, recorded.
        change: Change,
    },
    /// The status changes.
    Change(Change),
}

/// Why an event is refused in the task's state (409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The task's status forbids it.
    #[error("Task is {}", .0.as_str())]
    Status(TaskStatus),
}

impl Refusal {
    /// The status that forbade it.
    pub fn status(&self) -> TaskStatus {
        match self {
            Refusal::Status(s) => *s,
        }
    }
}

/// Decides what `event` does to a task whose lifecycle is `from`. Pure.
pub fn decide(
    from: &Lifecycle,
    event: &Event,
    policy: &Policy,
    now: i64,
) -> Result<Transition, Refusal> {
    use TaskStatus::*;
    let refuse = || Err(Refusal::Status(from.status));
    let change = |next: Lifecycle, place: Place, outputs: Outputs, callback: bool| {
        Ok(Transition::Change(Change {
            next,
            place,
            outputs,
            callback,
        }))
    };
    // Back in the queue: no backend, no run times, out of the run-next group.
    let pending = |attempts: u32, error: Option<String>| Lifecycle {
        status: Pending,
        attempts,
        backend: None,
        error,
        started_at: None,
        finished_at: None,
        run_next: None,
        force_run: false,
        next_run_at: None,
        fence: from.fence,
        stop_requested: false,
    };
    // The user stopped this run: however it ends (at `at`), it ends interrupted, and what it
    // produced is not a result.
    let stopped = |at: i64| {
        change(
            Lifecycle {
                status: Interrupted,
                finished_at: Some(at),
                next_run_at: None,
                ..from.clone()
            },
            Place::Keep,
            Outputs::Record { images: false },
            true,
        )
    };
    match (from.status, event) {
        (Pending, Event::Edit) => Ok(Transition::Keep),
        // Reordering a pending task: its lifecycle says where the policy puts it (the rank
        // itself is the order code's).
        (Pending, Event::Move) => change(
            Lifecycle {
                run_next: None,
                ..from.clone()
            },
            Place::Keep,
            Outputs::Keep,
            false,
        ),
        (Pending, Event::RunNow { group_seq, paused }) => change(
            Lifecycle {
                run_next: Some(*group_seq),
                force_run: *paused || from.force_run,
                next_run_at: None,
                ..from.clone()
            },
            Place::Keep,
            Outputs::Keep,
            false,
        ),
        (Running, Event::Delete) => Ok(Transition::Interrupt {
            fence: from.fence,
            change: Change {
                next: Lifecycle {
                    stop_requested: true,
                    ..from.clone()
                },
                place: Place::Keep,
                outputs: Outputs::Keep,
                callback: false,
            },
        }),
        (status, Event::Delete) => Ok(Transition::Remove {
            files: status.is_finished(),
        }),
        (Pending, Event::Claim { backend, fence }) => change(
            Lifecycle {
                status: Running,
                backend: Some(backend.clone()),
                error: None,
                started_at: Some(now),
                finished_at: None,
                run_next: None,
                force_run: false,
                next_run_at: None,
                fence: Some(*fence),
                stop_requested: false,
                ..from.clone()
            },
            Place::Keep,
            Outputs::Keep,
            false,
        ),
        (Running, Event::Finished { at, .. }) if from.stop_requested => stopped(*at),
        (Running, Event::Errored { .. } | Event::Released | Event::Recovered)
            if from.stop_requested =>
        {
            stopped(now)
        }
        (Running, Event::Finished { end, at }) => {
            let failed = matches!(end, RunEnd::Failed(_));
            let attempts = from.attempts.saturating_add(u32::from(failed));
            let error = match end {
                RunEnd::Failed(reason) => Some(reason.clone()),
                _ => None,
            };
            if failed && policy.auto_requeue_failed && attempts < policy.max_attempts {
                // Auto-requeue: decided here once; the run's partial images are not kept.
                return change(
                    pending(attempts, error),
                    Place::Tail,
                    Outputs::Record { images: false },
                    false,
                );
            }
            change(
                Lifecycle {
                    status: end.status(),
                    attempts,
                    error,
                    finished_at: Some(*at),
                    ..from.clone()
                },
                Place::Keep,
                // An interrupted run's answer (SD.Next's placeholder) is not a result.
                Outputs::Record {
                    images: *end != RunEnd::Interrupted,
                },
                true,
            )
        }
        (Running, Event::Errored { reason }) => {
            let attempts = from.attempts.saturating_add(1);
            if attempts >= policy.max_attempts.max(1) {
                return change(
                    Lifecycle {
                        status: Failed,
                        attempts,
                        error: Some(format!("{reason} ({attempts} attempts)")),
                        finished_at: Some(now),
                        next_run_at: None,
                        ..from.clone()
                    },
                    Place::Keep,
                    Outputs::Record { images: false },
                    true,
                );
            }
            change(
                Lifecycle {
                    next_run_at: Some(now.saturating_add(policy.retry_delay_ms(attempts))),
                    ..pending(attempts, Some(reason.clone()))
                },
                Place::Head,
                Outputs::Keep,
                false,
            )
        }
        (Running, Event::Released) => change(
            pending(from.attempts, from.error.clone()),
            Place::Head,
            Outputs::Keep,
            false,
        ),
        (Running, Event::Recovered) => {
            let attempts = from.attempts.saturating_add(1);
            if attempts >= policy.max_attempts.max(1) {
                return change(
                    Lifecycle {
                        status: Failed,
                        attempts,
                        error: Some(format!("interrupted by host restart; {attempts} attempts")),
                        finished_at: Some(now),
                        ..from.clone()
                    },
                    Place::Keep,
                    Outputs::Keep,
                    false,
                );
            }
            change(
                pending(attempts, from.error.clone()),
                Place::Head,
                Outputs::Keep,
                false,
            )
        }
        (Failed, Event::Requeue) => change(pending(0, None), Place::Tail, Outputs::Clear, false),
        _ => refuse(),
    }
}

/// Whether a task's results can be read (409 unless it has finished).
pub fn results_available(status: TaskStatus) -> Result<(), Refusal> {
    if status.is_finished() {
        Ok(())
    } else {
        Err(Refusal::Status(status))
    }
}
