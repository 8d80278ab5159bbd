//! One run, from the claimed task to its outcome: the checkpoint made ready, the request
//! sent (rate limits waited out, SD.Next's Control `xyz` bug worked around), progress
//! polled beside it, the watchdog raced against it, and the answer judged.

use std::time::Duration;

use scheduler_api::TaskType;
use serde_json::{Map, Value};
use tokio::sync::watch;

use super::outcome::Outcome;
use super::progress::poll_progress;
use super::{Backoff, Worker};
use crate::backends::ClaimStop;
use crate::model::spec::sd_field;
use crate::model::{RunEnd, TaskRow};
use crate::sdnext::{CONTROL_XYZ_BUG, RemoteError};

impl Worker {
    /// The outcome of a run stopped before its generation was sent (the claim's stop, or a
    /// backend disabled or removed while its claim was being written).
    fn stopped_early(&self) -> Option<Outcome> {
        match self.claim_stop() {
            ClaimStop::Interrupt => Some(Outcome::Finished(RunEnd::Interrupted, None)),
            ClaimStop::Withdrawn => Some(Outcome::Release("the backend was withdrawn".into())),
            ClaimStop::Running if self.backend.withdrawn() => {
                Some(Outcome::Release("the backend was withdrawn".into()))
            }
            ClaimStop::Running => None,
        }
    }

    /// Runs a claimed task on this backend and says how it ended.
    pub(super) async fn execute(&mut self, task: &TaskRow) -> Outcome {
        if let Some(o) = self.stopped_early() {
            return o;
        }
        self.timing = None;
        let load_started = std::time::Instant::now();
        let loaded_before = self.backend.status().loaded.clone();
        // A checkpoint load can take minutes: the claim's stop ends the run at once (SD.Next
        // finishes the load on its own; what is loaded is read again before the next task).
        let stop = self.stop.clone();
        let loaded = tokio::select! {
            r = self.ensure_checkpoint(task) => Some(r),
            _ = stopped(stop) => None,
        };
        let Some(loaded) = loaded else {
            // Abandoned mid-load: what is loaded is unknown until it is read again.
            self.backend.status().loaded = None;
            self.last_run_end = None;
            return self
                .stopped_early()
                .unwrap_or_else(|| Outcome::Release("the run was stopped".into()));
        };
        if let Err(o) = loaded {
            return o;
        }
        let switched = self.backend.status().loaded != loaded_before;
        let load_ms = switched.then(|| load_started.elapsed().as_secs_f64() * 1000.0);
        if let Some(o) = self.stopped_early() {
            return o;
        }
        let mut body = request_body(&task.request);
        let control = task.task_type == TaskType::Control;
        if control && self.backend.control_needs_xyz() {
            with_empty_xyz(&mut body);
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let (advance_tx, advance_rx) = watch::channel(std::time::Instant::now());
        let (stopping_tx, stopping_rx) = watch::channel(false);
        let poller = tokio::spawn(poll_progress(
            self.deps.clone(),
            self.backend.clone(),
            task.id.clone(),
            self.stop.clone(),
            stopping_rx,
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
                stop = self.watch(started, advance_rx.clone()) => Err(stop),
            };
            let answer = match answer {
                Ok(r) => r,
                Err(stop) => {
                    // The poller re-sends the interrupt while the job runs.
                    stopping_tx.send_replace(true);
                    break self.stop_run(task, stop, generation.as_mut()).await;
                }
            };
            match answer {
                Err(RemoteError::RateLimited { retry_after_s }) => {
                    if let Some(o) = self.stopped_early() {
                        break o;
                    }
                    let d = retry_after_s
                        .map(Duration::from_secs)
                        .unwrap_or_else(|| rate_backoff.next_delay())
                        .min(Duration::from_secs(60));
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = stopped(self.stop.clone()) => {}
                    }
                    if let Some(o) = self.stopped_early() {
                        break o;
                    }
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
                Err(e) if e.is_outage() => break self.released(&e),
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
                Err(e) => break Outcome::failed(format!("SD.Next: {e}")),
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
}

/// Resolves when the claim is asked to stop (never, once its signal is gone).
pub(super) async fn stopped(mut stop: watch::Receiver<ClaimStop>) {
    if stop.wait_for(|s| *s != ClaimStop::Running).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The body sent to SD.Next: the stored request, images sent back inline, nothing saved on
/// the server, and never a per-request checkpoint override.
fn request_body(request: &Map<String, Value>) -> Value {
    let mut body = request.clone();
    body.remove(scheduler_api::field::SCRIPT_ARG_LABELS);
    body.insert(sd_field::SEND_IMAGES.into(), Value::Bool(true));
    body.insert(sd_field::SAVE_IMAGES.into(), Value::Bool(false));
    body.remove(sd_field::SD_MODEL_CHECKPOINT);
    if let Some(Value::Object(o)) = body.get_mut(sd_field::OVERRIDE_SETTINGS) {
        o.remove(sd_field::SD_MODEL_CHECKPOINT);
    }
    Value::Object(body)
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
