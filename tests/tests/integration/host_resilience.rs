//! The host survives (the real binaries): SIGKILL mid-task and restart on the same data
//! directory, and a client that reconnects to the event stream across a restart.

use scheduler_api::client::{Client, StreamItem};
use scheduler_api::{Event, HistoryFilter, ListQuery, TaskChange, TaskStatus};
use scheduler_tests::harness::{wait_for, wait_task_status};
use serde_json::json;

use crate::host_support::*;

#[tokio::test]
async fn sigkill_mid_task_loses_nothing_and_reruns_only_the_interrupted_task_first() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let mut s =
        ProcessStack::start(FakeArgs::new().step_ms(25).checkpoint("a").loaded("a"), &[]).await;
    let first = enqueue(s.client(), "before the crash", json!({})).await;
    wait_done(s.client(), &first).await;
    let files_before: Vec<_> = std::fs::read_dir(s.dir.path().join("results").join(&first))
        .expect("result files")
        .map(|e| e.unwrap().file_name())
        // The result images: their thumbnails are made beside them after the run, as
        // `N.thumb.jpg.tmp` renamed to `N.thumb.jpg` (either may be there now).
        .filter(|n| !n.to_string_lossy().contains(".thumb.jpg"))
        .collect();
    assert!(!files_before.is_empty());

    let long = enqueue(s.client(), "cut short", json!({"steps": 120})).await;
    let second = enqueue(s.client(), "second", json!({})).await;
    let third = enqueue(s.client(), "third", json!({})).await;
    wait_task_status(s.client(), &long, TaskStatus::Running, LONG).await;
    wait_for("the fake to start the long job", LONG, || async {
        s.fake.stats().await.prompts.last().map(String::as_str) == Some("cut short")
    })
    .await;

    s.host.sigkill().await;
    s.host.restart().await;
    let c = s.client().clone();

    // Only the interrupted task runs again, and first; nothing is lost or doubled.
    for id in [&long, &second, &third] {
        wait_done(&c, id).await;
    }
    let t = c.task(&long).await.unwrap();
    assert_eq!(t.attempts, 1, "the crash counted an attempt: {t:?}");
    let prompts = s.fake.stats().await.prompts;
    assert_eq!(
        prompts,
        vec![
            "before the crash",
            "cut short",
            "cut short",
            "second",
            "third"
        ]
    );
    // Results from before the crash are intact.
    let r = c.results(&first).await.expect("results");
    assert_eq!(r.len(), files_before.len());
    assert_eq!(history(&c, HistoryFilter::All).await.total, 4);

    // A pause survives a crash too.
    pause(&c).await;
    s.host.sigkill().await;
    s.host.restart().await;
    let c = s.client().clone();
    let all = ListQuery::default();
    assert!(c.queue(&all).await.unwrap().paused, "pause is persisted");
    let waiting = enqueue(&c, "stays pending", json!({})).await;
    let q = c.queue(&all).await.unwrap();
    assert_eq!(q.pending_tasks[0].id, waiting);
    assert_eq!(q.pending_tasks[0].status, TaskStatus::Pending);
}

/// Reads the host's event stream (typed, from `Last-Event-ID` when given) until `stop` says
/// so.
async fn read_events(
    c: &Client,
    last_event_id: Option<u64>,
    mut stop: impl FnMut(&[(Option<u64>, Event)]) -> bool,
) -> Vec<(Option<u64>, Event)> {
    let mut stream = c.events(last_event_id);
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + LONG;
    while !stop(&out) {
        let item = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("events arrive before the deadline")
            .expect("the stream reconnects");
        match item {
            StreamItem::Event { id, event } => out.push((id, event)),
            StreamItem::Lost(e) => panic!("the event stream broke: {e}"),
            StreamItem::Opened | StreamItem::Heartbeat => {}
        }
    }
    out
}

fn created(events: &[(Option<u64>, Event)]) -> Vec<String> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Task(t) if t.change == TaskChange::Created => Some(t.task_id.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_event_stream_replays_what_a_client_missed() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let mut s = ProcessStack::start(FakeArgs::fast_a(), &[]).await;
    let c = s.client().clone();
    pause(&c).await;
    let first = enqueue(&c, "seen", json!({})).await;
    let seen = read_events(&c, Some(0), |ev| created(ev).contains(&first)).await;
    let last_id = seen
        .iter()
        .filter_map(|(i, _)| *i)
        .next_back()
        .expect("stored events carry an id");

    // Missed while disconnected, and across a host restart (ids are kept in SQLite).
    let missed1 = enqueue(&c, "missed one", json!({})).await;
    s.host.sigkill().await;
    s.host.restart().await;
    let c = s.client().clone();
    let missed2 = enqueue(&c, "missed two", json!({})).await;
    let replay = read_events(&c, Some(last_id), |ev| created(ev).contains(&missed2)).await;
    let ids = created(&replay);
    assert!(
        !ids.contains(&first),
        "nothing before Last-Event-ID: {ids:?}"
    );
    assert_eq!(ids, vec![missed1, missed2.clone()]);
    assert!(
        replay
            .iter()
            .filter(|(_, e)| matches!(e, Event::Task(_)))
            .all(|(i, _)| i.is_some_and(|i| i > last_id))
    );

    // Live progress of a running task.
    s.fake
        .configure(&serde_json::from_value(json!({"step_ms": 40})).expect("patch"))
        .await;
    resume(&c).await;
    let live = enqueue(&c, "watched", json!({"steps": 60})).await;
    let evs = read_events(&c, None, |ev| {
        ev.iter().any(|(_, e)| {
            matches!(e, Event::Task(t) if t.task_id == live && t.change == TaskChange::Finished)
        })
    })
    .await;
    assert!(
        evs.iter()
            .any(|(_, e)| matches!(e, Event::Progress(p) if p.task_id == live && p.steps > 0)),
        "progress events while it runs"
    );
}
