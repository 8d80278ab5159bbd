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

use crate::app::Host;
use crate::store::ops::{self, Delivery};

/// Give up after this long.
pub const GIVE_UP_AFTER_MS: i64 = 2 * 86_400_000;

/// Delay before try number `attempts + 1` (after `attempts` failures).
pub fn retry_delay_ms(attempts: u32) -> i64 {
    let base: i64 = 5_000;
    base.saturating_mul(1i64 << attempts.min(20)).min(3_600_000)
}

/// Runs the deliverer until shutdown.
pub async fn run(host: Arc<Host>) {
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
    let mut shutdown = host.shutdown.clone();
    loop {
        let now = ops::now_ms();
        let due = host
            .store
            .call(move |c| ops::due_deliveries(c, now))
            .await
            .unwrap_or_default();
        for d in due {
            let result = deliver(&client, &host, &d).await;
            let id = d.id;
            let r = match result {
                Ok(()) => host.store.call(move |c| ops::delivery_done(c, id)).await,
                Err(err) if ops::now_ms() - d.created_at > GIVE_UP_AFTER_MS => {
                    tracing::warn!(
                        "callback {} for task {} abandoned: {err}",
                        d.delivery_id,
                        d.task_id
                    );
                    host.store.call(move |c| ops::delivery_done(c, id)).await
                }
                Err(err) => {
                    tracing::info!("callback for task {} failed (will retry): {err}", d.task_id);
                    let next = ops::now_ms() + retry_delay_ms(d.attempts);
                    host.store
                        .call(move |c| ops::delivery_retry(c, id, next, &err))
                        .await
                }
            };
            if let Err(e) = r {
                tracing::error!("callback outbox: {e}");
            }
        }
        let next = host
            .store
            .call(|c| ops::next_delivery_at(c))
            .await
            .ok()
            .flatten();
        let wait = next
            .map(|t| (t - ops::now_ms()).clamp(0, 60_000) as u64)
            .unwrap_or(60_000);
        if wait == 0 {
            continue;
        }
        tokio::select! {
            _ = host.callbacks.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn deliver(client: &reqwest::Client, host: &Host, d: &Delivery) -> Result<(), String> {
    let mut form = reqwest::multipart::Form::new()
        .text("task_id", d.task_id.clone())
        .text("status", d.status.clone());
    for (rel, content_type) in &d.files {
        let Some((task, name)) = rel.split_once('/') else {
            continue;
        };
        let Some(path) = host.files.file_path(task, name) else {
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
