//! Nothing wedges the night's queue (issue 7): misbehaving backends against the real host
//! and fake SD.Next processes. One test per finding.

use fake_sdnext::{FakeConfigPatch, Fault, FaultRule};
use scheduler_api::{TaskStatus, routes};
use scheduler_tests::harness::{HostClient, wait_for};
use serde_json::json;

use crate::host_support::*;

async fn settings(c: &HostClient, patch: serde_json::Value) {
    let a = c.put(routes::SETTINGS, &patch).await;
    assert_eq!(a.status, 200, "settings: {}", a.body);
}

async fn faults(s: &Stack, rules: Vec<FaultRule>) {
    s.fake
        .configure(&FakeConfigPatch {
            faults: Some(rules),
            ..FakeConfigPatch::default()
        })
        .await;
}

/// Finding 1: a request that fails after it was sent, with the backend up, counts an
/// attempt; the task waits out a growing backoff (carrying `next_run_at`) while the tasks
/// behind it run, and fails with the reason after `max_attempts`. Each fault mode is a
/// poison task of its own; all of them are in the queue at once.
#[tokio::test]
async fn poison_tasks_fail_after_max_attempts_and_the_queue_moves_on() {
    let s = Stack::start(FAST_A, &["--start-paused"]).await;
    let c = s.client().clone();
    settings(&c, json!({"max_attempts": 3, "retry_backoff_s": 2})).await;
    let modes = [
        ("drop mid body", Fault::DropMidBody),
        ("reset", Fault::Reset),
        ("bad gateway", Fault::Status { status: 502 }),
        ("unavailable", Fault::Status { status: 503 }),
        ("gateway timeout", Fault::Status { status: 504 }),
        ("garbage json", Fault::GarbageJson),
    ];
    faults(
        &s,
        modes
            .iter()
            .map(|(p, f)| FaultRule::poison(p, f.clone()))
            .collect(),
    )
    .await;
    let mut poison = Vec::new();
    for (prompt, _) in &modes {
        poison.push(enqueue(&c, prompt, json!({})).await);
    }
    let good = enqueue(&c, "good behind them", json!({})).await;
    resume(&c).await;

    // After its first failed try the first poison task waits at the head with its next try
    // time, and the good task behind it runs meanwhile.
    let waiting = wait_until_task(&c, &poison[0], |t| {
        t.status == TaskStatus::Pending && t.attempts == 1
    })
    .await;
    assert!(
        waiting.next_run_at.is_some(),
        "a task waiting out its backoff carries next_run_at: {waiting:?}"
    );
    let done = wait_done(&c, &good).await;
    assert_eq!(done.attempts, 0);

    for (id, (prompt, _)) in poison.iter().zip(&modes) {
        let t = wait_finished(&c, id).await;
        assert_eq!(t.status, TaskStatus::Failed, "{prompt}: {t:?}");
        assert_eq!(t.attempts, 3, "{prompt}: {t:?}");
        let error = t.error.clone().unwrap_or_default();
        assert!(
            error.contains("3 attempts"),
            "{prompt}: the reason says why: {error}"
        );
        assert_eq!(t.next_run_at, None);
    }
    let st = s.fake.stats().await;
    for (prompt, _) in &modes {
        let sends = st.faulted_prompts.iter().filter(|p| p == prompt).count();
        assert_eq!(sends, 3, "{prompt}: sends before it failed");
    }
    assert!(
        !s.host.server.stderr().contains("panicked"),
        "the host never panics"
    );
}

async fn wait_until_task(
    c: &HostClient,
    id: &str,
    pred: impl Fn(&scheduler_api::Task) -> bool,
) -> scheduler_api::Task {
    scheduler_tests::harness::wait_until(&format!("task {id}"), LONG, || async {
        c.task(id).await.filter(|t| pred(t))
    })
    .await
}

/// Finding 1, the other side: 429 stays back-off-and-retry (no attempt counted), and a
/// request that cannot even connect is an outage (no attempt).
#[tokio::test]
async fn rate_limits_and_outages_count_no_attempt() {
    let mut s = Stack::start(FAST_A, &[]).await;
    let c = s.client().clone();
    settings(&c, json!({"max_attempts": 1})).await;
    s.fake
        .configure(&FakeConfigPatch {
            rate_limit_next: Some(fake_sdnext::CountOrBool::Count(3)),
            rate_limit_retry_after: Some(0),
            ..FakeConfigPatch::default()
        })
        .await;
    let limited = enqueue(&c, "rate limited", json!({})).await;
    let t = wait_done(&c, &limited).await;
    assert_eq!(t.attempts, 0);

    s.fake.sigkill().await;
    let waits = enqueue(&c, "waits out the outage", json!({})).await;
    wait_for(
        "the task to wait, pending, without an attempt",
        LONG,
        || async {
            c.task(&waits)
                .await
                .is_some_and(|t| t.status == TaskStatus::Pending && t.attempts == 0)
        },
    )
    .await;
    s.fake.restart().await;
    let t = wait_done(&c, &waits).await;
    assert_eq!(t.attempts, 0, "an outage counts no attempt");
}
