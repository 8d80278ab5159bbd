//! Delivers `callback_url` notifications from the durable outbox (`callback_outbox` table).
//!
//! The AgentScheduler multipart POST: fields `task_id` and `status`, one `files` part per
//! result image. Success is any 2xx; otherwise retried with exponential backoff (5 s
//! doubling, capped at 1 h) for two days, then abandoned with a warning. Every try carries
//! the same delivery id header. Rows are written in the transaction that finishes the task,
//! so deliveries survive restarts.
//!
//! Deliveries run concurrently (at most [`MAX_CONCURRENT`]), one at a time and in order per
//! receiver (scheme + host + port), each bounded by [`DELIVERY_TIMEOUT`]; a hanging receiver
//! delays only its own deliveries, and shutdown aborts what is in flight (it stays in the
//! outbox and resumes at the next start).
//!
//! Safety: each delivery resolves the URL's name once, checks every address against
//! [`CallbackRules`] (the host itself, link-local/metadata, and loopback/private networks
//! beyond loopback are refused; URLs stored before these rules included), connects to the
//! address it checked, follows no redirect and never sends the host's token. A refused
//! delivery is dropped with a warning.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use scheduler_api::{CALLBACK_TASK_HEADER, DELIVERY_ID_HEADER};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::model::callback::{CallbackRules, target};
use crate::results::ResultStorage;
use crate::store::SharedStore;
use crate::store::outbox::Delivery;

/// Give up after this long.
pub const GIVE_UP_AFTER_MS: i64 = 2 * 86_400_000;
/// Deliveries in flight at once (each to a different receiver).
pub const MAX_CONCURRENT: usize = 16;
/// One delivery's whole time (connect, send, status line).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Delay before try number `attempts + 1` (after `attempts` failures).
pub fn retry_delay_ms(attempts: u32) -> i64 {
    let base: i64 = 5_000;
    base.saturating_mul(1i64 << attempts.min(20)).min(3_600_000)
}

/// Whether an IP is one of this machine's own (an address it can bind).
pub fn is_local_ip(ip: IpAddr) -> bool {
    ip.is_loopback() || std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// Checks a callback URL at enqueue / import: IP literals and `localhost` at once, names
/// by resolving them (a name that does not resolve now is checked again at delivery).
pub async fn check_url(rules: &CallbackRules, url: &str) -> Result<(), String> {
    let t = target(url).map_err(|e| e.0)?;
    rules.check_literal(&t, &is_local_ip)?;
    if t.ip.is_some() || t.host == "localhost" {
        return Ok(());
    }
    let resolved = tokio::time::timeout(
        RESOLVE_TIMEOUT,
        tokio::net::lookup_host((t.host.as_str(), t.port)),
    )
    .await;
    if let Ok(Ok(addrs)) = resolved {
        for a in addrs {
            rules.check(&t.host, a, &is_local_ip)?;
        }
    }
    Ok(())
}

/// Why a delivery did not succeed.
#[derive(Debug)]
enum Failure {
    /// The rules refuse the target: never retried.
    Refused(String),
    /// Anything else: retried with backoff.
    Failed(String),
}

/// Runs the deliverer until shutdown; `wake` is notified when a delivery is queued; due
/// times are read on `clock`.
pub async fn run(
    store: SharedStore,
    files: ResultStorage,
    rules: Arc<CallbackRules>,
    wake: Arc<Notify>,
    clock: Clock,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut inflight: JoinSet<String> = JoinSet::new();
    let mut busy: HashSet<String> = HashSet::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let now = clock.now_ms();
        let rows = store.all_deliveries(10_000).await.unwrap_or_default();
        let heads = heads_by_receiver(rows);
        let mut next_due: Option<i64> = None;
        for (receiver, d) in heads {
            if busy.contains(&receiver) {
                continue;
            }
            if d.next_attempt_at > now {
                next_due = Some(next_due.map_or(d.next_attempt_at, |n| n.min(d.next_attempt_at)));
                continue;
            }
            if inflight.len() >= MAX_CONCURRENT {
                break;
            }
            busy.insert(receiver.clone());
            let (store, files, rules, clock) =
                (store.clone(), files.clone(), rules.clone(), clock.clone());
            inflight.spawn(async move {
                deliver_and_record(&store, &files, &rules, &clock, d).await;
                receiver
            });
        }
        let wait = next_due
            .map(|t| (t - clock.now_ms()).clamp(0, 60_000) as u64)
            .unwrap_or(60_000);
        tokio::select! {
            Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                if let Ok(receiver) = done {
                    busy.remove(&receiver);
                } else {
                    // A delivery task panicked (a bug): forget every busy mark so
                    // nothing stays blocked; its row is tried again.
                    busy.clear();
                }
            }
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            _ = shutdown.changed() => break,
        }
    }
    // Unfinished deliveries stay in the outbox and resume at the next start.
    inflight.abort_all();
    while inflight.join_next().await.is_some() {}
}

async fn deliver_and_record(
    store: &SharedStore,
    files: &ResultStorage,
    rules: &CallbackRules,
    clock: &Clock,
    d: Delivery,
) {
    let result = tokio::time::timeout(DELIVERY_TIMEOUT, deliver(files, rules, &d))
        .await
        .unwrap_or_else(|_| {
            Err(Failure::Failed(format!(
                "no answer within {} s",
                DELIVERY_TIMEOUT.as_secs()
            )))
        });
    let id = d.id;
    let r = match result {
        Ok(()) => store.delivery_done(id).await,
        Err(Failure::Refused(why)) => {
            tracing::warn!(
                "callback {} for task {} refused: {why}",
                d.delivery_id,
                d.task_id
            );
            store.delivery_done(id).await
        }
        Err(Failure::Failed(err)) if clock.now_ms() - d.created_at > GIVE_UP_AFTER_MS => {
            tracing::warn!(
                "callback {} for task {} abandoned: {err}",
                d.delivery_id,
                d.task_id
            );
            store.delivery_done(id).await
        }
        Err(Failure::Failed(err)) => {
            tracing::info!("callback for task {} failed (will retry): {err}", d.task_id);
            let next = clock.now_ms() + retry_delay_ms(d.attempts);
            store.delivery_retry(id, next, err).await
        }
    };
    if let Err(e) = r {
        tracing::error!("callback outbox: {e}");
    }
}

/// Resolves the target once, checks every address, and returns the one to connect to.
async fn resolve_checked(
    rules: &CallbackRules,
    url: &str,
) -> Result<(String, SocketAddr), Failure> {
    let t = target(url).map_err(|e| Failure::Refused(e.0))?;
    let addrs: Vec<SocketAddr> = match t.ip {
        Some(ip) => vec![SocketAddr::new(ip, t.port)],
        None => tokio::time::timeout(
            RESOLVE_TIMEOUT,
            tokio::net::lookup_host((t.host.as_str(), t.port)),
        )
        .await
        .map_err(|_| Failure::Failed(format!("resolving {}: timed out", t.host)))?
        .map_err(|e| Failure::Failed(format!("resolving {}: {e}", t.host)))?
        .collect(),
    };
    let Some(first) = addrs.first().copied() else {
        return Err(Failure::Failed(format!("{} resolves to nothing", t.host)));
    };
    for a in &addrs {
        rules
            .check(&t.host, *a, &is_local_ip)
            .map_err(Failure::Refused)?;
    }
    Ok((t.host, first))
}

async fn deliver(
    files: &ResultStorage,
    rules: &CallbackRules,
    d: &Delivery,
) -> Result<(), Failure> {
    let (host, addr) = resolve_checked(rules, &d.url).await?;
    // A client of its own: the name is pinned to the address just checked, no redirects,
    // no proxy (a proxy would resolve the name itself, past the check), no credentials of
    // the host.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_secs(10))
        .resolve(&host, addr)
        .build()
        .map_err(|e| Failure::Failed(format!("callback client: {e}")))?;
    let mut form = reqwest::multipart::Form::new()
        .text("task_id", d.task_id.clone())
        .text("status", d.status.clone());
    for (rel, content_type) in &d.files {
        let Some((task, name)) = rel.split_once('/') else {
            continue;
        };
        // Streamed from where it is stored (never whole in memory); gone since: left out.
        let Some(file) = files.open(task, name).await else {
            continue;
        };
        let body = reqwest::Body::wrap_stream(file.body);
        let part = reqwest::multipart::Part::stream_with_length(body, file.len)
            .file_name(name.to_owned())
            .mime_str(content_type)
            .map_err(|e| Failure::Failed(e.to_string()))?;
        form = form.part("files", part);
    }
    // Only the status line is read: a huge answer body is never downloaded.
    let resp = client
        .post(&d.url)
        .header(DELIVERY_ID_HEADER, &d.delivery_id)
        .header(CALLBACK_TASK_HEADER, &d.task_id)
        .multipart(form)
        .send()
        .await
        .map_err(|e| Failure::Failed(e.to_string()))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(Failure::Failed(format!("HTTP {}", resp.status())))
    }
}

/// Groups outbox rows by receiver, keeping the oldest row of each (deliveries to one
/// receiver go in order). Rows whose URL cannot be read form a receiver of their own.
pub fn heads_by_receiver(rows: Vec<Delivery>) -> Vec<(String, Delivery)> {
    let mut seen: HashMap<String, ()> = HashMap::new();
    let mut out = Vec::new();
    for d in rows {
        let key = target(&d.url)
            .map(|t| t.receiver)
            .unwrap_or_else(|_| format!("invalid:{}", d.id));
        if seen.insert(key.clone(), ()).is_none() {
            out.push((key, d));
        }
    }
    out
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
