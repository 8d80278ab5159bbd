//! What the end of a run becomes: an answer judged (all images, a partial result, none:
//! not ready or failed), the outcome settled (given back, an attempt counted, or finished),
//! and the finisher spawned that records it off the run path (the database row, the
//! measured speed, retention).

use scheduler_api::BackendState;

use super::{Step, Worker};
use crate::backends::ClaimStop;
use crate::model::spec::expected_images;
use crate::model::{RunEnd, TaskRow};
use crate::sdnext::{GenerateOutput, RemoteError};

/// How a run ended, before the finisher records it.
pub(super) enum Outcome {
    /// The run ended (done, failed, interrupted), with what it produced.
    Finished(RunEnd, Option<GenerateOutput>),
    /// Give the task back (outage / not ready) without counting an attempt.
    Release(String),
    /// The request failed after it was sent and the backend answers a probe: an attempt
    /// counts and the task waits out its backoff (or fails after `max_attempts`).
    Errored(String),
}

impl Outcome {
    /// The run failed, with no output to keep.
    pub(super) fn failed(reason: impl Into<String>) -> Outcome {
        Outcome::Finished(RunEnd::Failed(reason.into()), None)
    }
}

impl Worker {
    /// The backend went down (`e` is an outage): the task is given back without an attempt.
    pub(super) fn released(&mut self, e: &RemoteError) -> Outcome {
        self.outage(e);
        Outcome::Release(e.to_string())
    }

    /// Ends a run: its claim is over (no stop reaches it any more), the backend's figures
    /// are recorded, then the task is given back, the failed attempt counted, or the
    /// finisher spawned — each written fenced to the claim, so nothing is written when the
    /// claim was ended elsewhere (the backend withdrawn). A task the user stopped never goes
    /// back: the stop is recorded on it, and the transition function ends it interrupted.
    pub(super) async fn settle(&mut self, task: TaskRow, fence: i64, outcome: Outcome) -> Step {
        self.backend.end_claim(fence);
        self.backend.end_run(match &outcome {
            Outcome::Finished(RunEnd::Done, _) => Some(true),
            Outcome::Finished(RunEnd::Failed(_), _) | Outcome::Errored(_) => Some(false),
            _ => None,
        });
        self.deps.backends.ran();
        match outcome {
            Outcome::Finished(end, output) => {
                self.spawn_finisher(task, end, output);
                Step::Ran
            }
            Outcome::Release(reason) => {
                tracing::info!("task {} goes back to the queue: {reason}", task.id);
                if let Err(e) = self.deps.queue.release(&task.id, fence).await {
                    tracing::error!("releasing {}: {e}", task.id);
                }
                Step::Backoff(self.backoff.next_delay())
            }
            Outcome::Errored(reason) => {
                tracing::warn!("task {}: {reason}", task.id);
                if let Err(e) = self.deps.queue.errored(&task.id, fence, reason).await {
                    tracing::error!("recording the failed try of {}: {e}", task.id);
                }
                Step::Ran
            }
        }
    }

    /// Decides what an answer means.
    pub(super) async fn judge(&mut self, task: &TaskRow, out: GenerateOutput) -> Outcome {
        match self.claim_stop() {
            // The answer holds a placeholder image: never store it.
            ClaimStop::Interrupt => return Outcome::Finished(RunEnd::Interrupted, None),
            // Its claim was ended (the task went back): the answer is not this claim's.
            ClaimStop::Withdrawn => return Outcome::Release("the backend was withdrawn".into()),
            ClaimStop::Running => {}
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
                Err(e) if e.is_outage() => self.released(&e),
                _ => Outcome::failed(format!(
                    "SD.Next returned no images (expected {expected}); see its log"
                )),
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
        let ended_at = self.deps.clock.now_ms();
        let timing = self.timing.take().filter(|_| end == RunEnd::Done);
        let backend = self.backend.url.clone();
        tokio::spawn(async move {
            match deps.queue.finish(&task, end, output, ended_at).await {
                // Its claim was over: nothing was written.
                Ok(None) => {}
                Ok(Some(_)) => {
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
