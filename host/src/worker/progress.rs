//! Progress polling while a task runs.

use std::sync::Arc;
use std::time::Duration;

use scheduler_api::{Event, PreviewEvent, ProgressEvent};
use tokio::sync::watch;

use super::Deps;
use crate::backends::{Backend, ClaimStop};

/// Polls `/sdapi/v1/progress` about once a second while a task runs: publishes progress and
/// previews while the run's claim goes on (never for a claim that was stopped or ended
/// elsewhere), re-sends a lost interrupt once the run is being stopped (`claim`'s stop, or
/// the worker's own: `stopping`), and tells the stall watchdog (`advance`) whenever the
/// progress changes (`progress`, `sampling_step`, `job`, `job_no`).
pub(super) async fn poll_progress(
    deps: Deps,
    backend: Arc<Backend>,
    task_id: String,
    claim: watch::Receiver<ClaimStop>,
    stopping: watch::Receiver<bool>,
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
        if *stopping.borrow() || *claim.borrow() != ClaimStop::Running {
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
