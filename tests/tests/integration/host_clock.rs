//! The host's one clock (`Config::clock`): every stored time is read from it, so a test that
//! hands the host a manual clock decides what "now" is. The host in this process, a manual
//! clock, the in-process fake SD.Next.

use agent_scheduler::clock::Clock;
use fake_sdnext::{FakeConfigPatch, Fault, FaultRule};
use scheduler_api::{HistoryFilter, TaskStatus, WireTime};
use scheduler_tests::harness::wait_until;
use scheduler_tests::inprocess::{InProcessHost, fake};
use serde_json::json;

use crate::host_support::*;

/// 2023-11-14T22:13:20Z: far from the system's time, so a time read elsewhere shows.
const T0: i64 = 1_700_000_000_000;

async fn finished_times(c: &scheduler_api::client::Client, id: &str) -> (i64, i64, i64) {
    let h = history(c, HistoryFilter::All).await;
    let t = h
        .tasks
        .into_iter()
        .find(|t| t.id == id)
        .expect("the task is in the history");
    let ms = |w: Option<WireTime>| match w {
        Some(WireTime::Epoch(ms)) => ms,
        other => panic!("a listing time is epoch milliseconds, got {other:?}"),
    };
    (ms(Some(t.created_at)), ms(t.started_at), ms(t.finished_at))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_times_and_retry_backoffs_follow_the_host_s_clock() {
    let clock = Clock::manual(T0);
    let f = fake(&["a"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let set = clock.clone();
    let h = InProcessHost::start_with(f, dir, move |c| c.clock = set).await;
    let c = h.client();

    let plain = enqueue(c, "plain", json!({})).await;
    wait_done(c, &plain).await;
    assert_eq!(finished_times(c, &plain).await, (T0, T0, T0));

    // A request that fails once (a gateway's 502 while the backend answers): it waits out
    // its backoff on the host's clock, not the system's.
    h.fake().configure(&FakeConfigPatch {
        faults: Some(vec![FaultRule {
            fault: Fault::Status { status: 502 },
            prompt: Some("flaky".into()),
            count: Some(1),
        }]),
        ..FakeConfigPatch::default()
    });
    clock.advance(1_000);
    let flaky = enqueue(c, "flaky", json!({})).await;
    let backoff_ms = 10_000; // the default `retry_backoff_s`, first attempt
    let waiting = wait_until("the failed try to be recorded", LONG, || async {
        c.task(&flaky)
            .await
            .ok()
            .filter(|t| t.status == TaskStatus::Pending && t.attempts == 1)
    })
    .await;
    let due = T0 + 1_000 + backoff_ms;
    assert_eq!(
        waiting.next_run_at,
        Some(WireTime::Iso(agent_scheduler::http::wire::iso(due)))
    );
    // A task enqueued behind it runs first: the waiting one, back at the head, is not
    // claimable while the host's clock is before its time (the system's clock is years
    // past it).
    let behind = enqueue(c, "behind", json!({})).await;
    wait_done(c, &behind).await;
    assert_eq!(
        c.task(&flaky).await.expect("task").status,
        TaskStatus::Pending,
        "not claimed before its time"
    );
    clock.set(due);
    wait_done(c, &flaky).await;
    assert_eq!(finished_times(c, &flaky).await, (T0 + 1_000, due, due));
    h.stop().await;
}
