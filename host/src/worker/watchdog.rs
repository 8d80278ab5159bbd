//! The stop watch of a running generation (user interrupt, a withdrawn backend, the stall
//! watchdog, the task timeout) and the `stalled` hold: a request that does not end within
//! `interrupt_grace_s` of its interrupt is abandoned, and the backend gets no task until
//! `/sdapi/v1/progress` reads idle.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use scheduler_api::BackendState;
use tokio::sync::watch;

use super::outcome::Outcome;
use super::run::stopped;
use super::{Step, Worker};
use crate::backends::ClaimStop;
use crate::model::{RunEnd, TaskRow};

/// Why the worker stopped a running generation itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stop {
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

impl Worker {
    /// A stalled backend gets no task until `/sdapi/v1/progress` shows it idle; checked at
    /// once and then every `stall_recheck_s`.
    pub(super) async fn check_stalled(&mut self) -> Option<Step> {
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

    /// Resolves when the running generation must be stopped: the claim's stop (the user
    /// interrupted it, the backend was withdrawn: at once), its progress stopped changing
    /// for `stall_timeout_s`, or it ran past `task_timeout_s`.
    pub(super) async fn watch(
        &self,
        started: std::time::Instant,
        advance: watch::Receiver<std::time::Instant>,
    ) -> Stop {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped(self.stop.clone()) => {}
            }
            match self.claim_stop() {
                ClaimStop::Interrupt => return Stop::User,
                ClaimStop::Withdrawn => return Stop::Withdrawn,
                ClaimStop::Running => {}
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

    /// Stops the running generation for `stop`: asks its SD.Next to stop (this worker runs
    /// the claim: the only one that interrupts its backend; its progress poller re-sends),
    /// then gives the request `interrupt_grace_s` to end; one that does not is abandoned and
    /// the backend held `stalled`.
    pub(super) async fn stop_run<F: Future>(
        &mut self,
        task: &TaskRow,
        stop: Stop,
        generation: Pin<&mut F>,
    ) -> Outcome {
        let client = self.backend.client.clone();
        tokio::spawn(async move {
            if let Err(e) = client.interrupt().await {
                tracing::warn!("interrupt: {e}");
            }
        });
        if stop == Stop::Withdrawn
            && let Some(fence) = task.life.fence
        {
            // The claim ends now, not after the grace (the pool has ended it already when
            // the claim had taken its task; then this writes nothing).
            if let Err(e) = self.deps.queue.release(&task.id, fence).await {
                tracing::error!("releasing {}: {e}", task.id);
            }
        }
        let grace =
            Duration::from_secs(u64::from(self.deps.settings.get().interrupt_grace_s.max(1)));
        let ended = tokio::time::timeout(grace, generation).await;
        if stop == Stop::Withdrawn {
            if ended.is_err() {
                self.stall(&task.id);
            }
            return Outcome::Release("the backend was disabled".into());
        }
        match ended {
            // It ended: whatever it returned is not a result.
            Ok(_) => Outcome::Finished(stop.end(), None),
            Err(_) => {
                // Abandoned: the connection closes when the caller drops the request.
                self.stall(&task.id);
                Outcome::Finished(stop.end(), None)
            }
        }
    }
}
