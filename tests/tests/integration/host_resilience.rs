//! The host survives: SIGKILL mid-task and restart on the same data directory, a backend
//! that goes away and comes back, and a client that reconnects to the event stream.

use futures::StreamExt;
use scheduler_api::{BackendInfo, BackendState, Event, TaskChange, TaskStatus, routes};
use scheduler_tests::harness::{HostClient, wait_for};
use serde_json::json;

use crate::host_support::*;

#[tokio::test]
async fn sigkill_mid_task_loses_nothing_and_reruns_only_the_interrupted_task_first() {
    let mut s = Stack::start(
        &["--step-ms", "25", "--checkpoint", "a", "--loaded", "a"],
        &[],
    )
    .await;
    let first = enqueue(s.client(), "before the crash", json!({})).await;
    wait_done(s.client(), &first).await;
    let files_before: Vec<_> = std::fs::read_dir(s.dir.path().join("results").join(&first))
        .expect("result files")
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(!files_before.is_empty());

    let long = enqueue(s.client(), "cut short", json!({"steps": 120})).await;
    let second = enqueue(s.client(), "second", json!({})).await;
    let third = enqueue(s.client(), "third", json!({})).await;
    s.client()
        .wait_task_status(&long, TaskStatus::Running, LONG)
        .await;
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
    let r = c.get(&task_route(routes::TASK_RESULTS, &first)).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["data"].as_array().map(Vec::len),
        Some(files_before.len())
    );
    assert_eq!(c.history("").await.total, 4);

    // A pause survives a crash too.
    pause(&c).await;
    s.host.sigkill().await;
    s.host.restart().await;
    let c = s.client().clone();
    assert!(c.queue().await.paused, "pause is persisted");
    let waiting = enqueue(&c, "stays pending", json!({})).await;
    let q = c.queue().await;
    assert_eq!(q.pending_tasks[0].id, waiting);
    assert_eq!(q.pending_tasks[0].status, TaskStatus::Pending);
}

#[tokio::test]
async fn a_backend_outage_makes_tasks_wait_and_none_fail() {
    let mut s = Stack::start(
        &["--step-ms", "15", "--checkpoint", "a", "--loaded", "a"],
        &[],
    )
    .await;
    let c = s.client().clone();
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(enqueue(&c, &format!("o{i}"), json!({"steps": 10})).await);
    }
    wait_done(&c, &ids[1]).await;
    s.fake.sigkill().await;
    wait_for("the host to see the backend down", LONG, || async {
        let b: Vec<BackendInfo> = c.get(routes::BACKENDS).await.json();
        b[0].state == BackendState::Down
    })
    .await;
    // While it is down, nothing fails.
    assert_eq!(c.history("?status=failed").await.total, 0);
    s.fake.restart().await;
    for id in &ids {
        wait_done(&c, id).await;
    }
    assert_eq!(c.history("?status=failed").await.total, 0);
    let b: Vec<BackendInfo> = c.get(routes::BACKENDS).await.json();
    assert_eq!(b[0].state, BackendState::Up);
}

/// Reads SSE events (`id`, `event`, `data`) from the host until `stop` says so.
async fn read_events(
    c: &HostClient,
    last_event_id: Option<u64>,
    mut stop: impl FnMut(&[(Option<u64>, Event)]) -> bool,
) -> Vec<(Option<u64>, Event)> {
    let mut req = c.http.get(c.url(routes::EVENTS));
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id.to_string());
    }
    let resp = req.send().await.expect("GET events");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + LONG;
    let (mut id, mut name, mut data) = (None::<u64>, String::new(), String::new());
    while !stop(&out) {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("events arrive before the deadline")
            .expect("stream open")
            .expect("chunk");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(nl) = buf.find('\n') {
            let line = buf[..nl].trim_end_matches('\r').to_owned();
            buf.drain(..=nl);
            if line.is_empty() {
                if let Some(e) = Event::from_sse(&name, &data) {
                    out.push((id, e));
                }
                (id, name, data) = (None, String::new(), String::new());
            } else if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("event:") {
                name = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
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
    let mut s = Stack::start(FAST_A, &[]).await;
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
