//! Delivers `callback_url` notifications from the durable outbox (`callback_outbox` table).
//!
//! The AgentScheduler multipart POST: fields `task_id` and `status`, one `files` part per
//! result image. Success is any 2xx; otherwise retried with exponential backoff (5 s
//! doubling, capped at 1 h) for two days, then abandoned with a warning. Every try carries
//! the same delivery id header. Runs in its own task and never blocks the queue; rows are
//! written in the transaction that finishes the task, so deliveries survive restarts.

use std::sync::Arc;
use std::time::Duration;

use scheduler_api::{CALLBACK_TASK_HEADER, DELIVERY_ID_HEADER};

use tokio::sync::{Notify, watch};

use crate::model::now_ms;
use crate::results::ResultFiles;
use crate::store::Store;
use crate::store::outbox::{self, Delivery};

/// Give up after this long.
pub const GIVE_UP_AFTER_MS: i64 = 2 * 86_400_000;

/// Delay before try number `attempts + 1` (after `attempts` failures).
pub fn retry_delay_ms(attempts: u32) -> i64 {
    let base: i64 = 5_000;
    base.saturating_mul(1i64 << attempts.min(20)).min(3_600_000)
}

/// Runs the deliverer until shutdown; `wake` is notified when a delivery is queued.
pub async fn run(
    store: Store,
    files: ResultFiles,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("callback client: {e}");
            return;
        }
    };
    loop {
        let now = now_ms();
        let due = store
            .call(move |c| outbox::due_deliveries(c, now))
            .await
            .unwrap_or_default();
        for d in due {
            let result = deliver(&client, &files, &d).await;
            let id = d.id;
            let r = match result {
                Ok(()) => store.call(move |c| outbox::delivery_done(c, id)).await,
                Err(err) if now_ms() - d.created_at > GIVE_UP_AFTER_MS => {
                    tracing::warn!(
                        "callback {} for task {} abandoned: {err}",
                        d.delivery_id,
                        d.task_id
                    );
                    store.call(move |c| outbox::delivery_done(c, id)).await
                }
                Err(err) => {
                    tracing::info!("callback for task {} failed (will retry): {err}", d.task_id);
                    let next = now_ms() + retry_delay_ms(d.attempts);
                    store
                        .call(move |c| outbox::delivery_retry(c, id, next, &err))
                        .await
                }
            };
            if let Err(e) = r {
                tracing::error!("callback outbox: {e}");
            }
        }
        let next = store
            .call(|c| outbox::next_delivery_at(c))
            .await
            .ok()
            .flatten();
        let wait = next
            .map(|t| (t - now_ms()).clamp(0, 60_000) as u64)
            .unwrap_or(60_000);
        if wait == 0 {
            continue;
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn deliver(
    client: &reqwest::Client,
    files: &ResultFiles,
    d: &Delivery,
) -> Result<(), String> {
    let mut form = reqwest::multipart::Form::new()
        .text("task_id", d.task_id.clone())
        .text("status", d.status.clone());
    for (rel, content_type) in &d.files {
        let Some((task, name)) = rel.split_once('/') else {
            continue;
        };
        let Some(path) = files.file_path(task, name) else {
            continue;
        };
        let Ok(bytes) = tokio::fs::read(&path).await else {
            continue;
        };
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(name.to_owned())
            .mime_str(content_type)
            .map_err(|e| e.to_string())?;
        form = form.part("files", part);
    }
    let resp = client
        .post(&d.url)
        .header(DELIVERY_ID_HEADER, &d.delivery_id)
        .header(CALLBACK_TASK_HEADER, &d.task_id)
        .multipart(form)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", resp.status()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn retry_delays_grow_and_cap() {
        assert_eq!(super::retry_delay_ms(0), 5_000);
        assert_eq!(super::retry_delay_ms(1), 10_000);
        assert_eq!(super::retry_delay_ms(30), 3_600_000);
    }
}
