//! Several hosts, one queue (the real binaries): two `agent-scheduler serve` processes on one
//! PostgreSQL database and three fake SD.Next servers. Tasks are enqueued through both hosts;
//! one host is SIGKILLed while it runs tasks; the other takes over its claims (after their
//! lease) and its backends, and every task ends done — each generated once, except the ones
//! the kill cut, which run again. Both hosts answer with one queue and one pool, and each
//! host's event stream carries the other's changes.

use scheduler_api::client::{Client, EventStream, StreamItem};
use scheduler_api::{Event, HistoryFilter, TaskChange, TaskStatus};
use scheduler_tests::harness::{FakeProcess, HostProcess, wait_for, wait_task_status};
use scheduler_tests::pg::TestDb;
use serde_json::json;
use std::collections::{HashMap, HashSet};

use crate::host_support::*;

/// The lease the test sets (the smallest the setting takes): a dead host's claims and
/// backends are free again after it.
const LEASE_S: u64 = 3;

async fn spawn_host(
    db: &TestDb,
    dir: &std::path::Path,
    id: &str,
    backends: &[String],
) -> HostProcess {
    HostProcess::spawn(dir, backends, &["--database", &db.url, "--host-id", id]).await
}

/// The backends `GET /backends` lists: url → the host that drives it.
async fn drivers(c: &Client) -> HashMap<String, Option<String>> {
    let r = get(c, "/agent-scheduler/v1/backends").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let list = r.body["backends"]
        .as_array()
        .or_else(|| r.body.as_array())
        .unwrap_or_else(|| panic!("a list of backends: {}", r.body))
        .clone();
    list.iter()
        .map(|b| {
            (
                b["url"]
                    .as_str()
                    .expect("url")
                    .trim_end_matches('/')
                    .to_owned(),
                b["driver"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

type Changes = Vec<(TaskChange, String)>;

/// Reads task events from `stream` into `seen` until `done(seen)` (panics after [`LONG`]).
async fn read_until(
    stream: &mut EventStream,
    seen: &mut Changes,
    mut done: impl FnMut(&Changes) -> bool,
) {
    let deadline = tokio::time::Instant::now() + LONG;
    while !done(seen) {
        let item = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("events before the deadline; got {seen:?}"))
            .expect("the stream goes on");
        match item {
            StreamItem::Event {
                event: Event::Task(t),
                ..
            } => seen.push((t.change, t.task_id)),
            StreamItem::Lost(e) => panic!("the event stream broke: {e}"),
            _ => {}
        }
    }
}

fn ids_of(seen: &Changes, change: TaskChange) -> HashSet<String> {
    seen.iter()
        .filter(|(c, _)| *c == change)
        .map(|(_, id)| id.clone())
        .collect()
}

#[tokio::test]
async fn two_hosts_one_database_survive_a_sigkill() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let Some(db) = TestDb::create().await else {
        return;
    };
    // Each generation takes ~8 × 30 ms: long enough to be cut by the kill.
    let fakes = [
        FakeProcess::spawn(FakeArgs::new().step_ms(30).checkpoint("a").loaded("a")).await,
        FakeProcess::spawn(FakeArgs::new().step_ms(30).checkpoint("a").loaded("a")).await,
        FakeProcess::spawn(FakeArgs::new().step_ms(30).checkpoint("a").loaded("a")).await,
    ];
    let urls: Vec<String> = fakes.iter().map(FakeProcess::url).collect();
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();

    // Host A brings two backends, host B the third: one pool of three.
    let mut a = spawn_host(&db, dir_a.path(), "host-a", &urls[..2]).await;
    let r = put(
        &a.client,
        "/agent-scheduler/v1/settings",
        &json!({"lease_s": LEASE_S}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    pause(&a.client).await;
    let b = spawn_host(&db, dir_b.path(), "host-b", &urls[2..]).await;
    let (ca, cb) = (a.client.clone(), b.client.clone());

    // One pool from both hosts: three backends, A drives two, B one.
    let want: HashMap<String, Option<String>> = urls
        .iter()
        .enumerate()
        .map(|(i, u)| {
            (
                u.clone(),
                Some(if i < 2 { "host-a" } else { "host-b" }.to_owned()),
            )
        })
        .collect();
    for c in [&ca, &cb] {
        wait_for(
            "both hosts to show the pool of three and its drivers",
            LONG,
            || async { drivers(c).await == want },
        )
        .await;
    }

    // Events across hosts: B's stream carries what A does, and A's what B does.
    // (Live streams, opened before anything happens: nothing is replayed to them.)
    let (mut stream_a, mut stream_b) = (ca.events(None), cb.events(None));
    let (mut seen_a, mut seen_b) = (Changes::new(), Changes::new());
    for s in [&mut stream_a, &mut stream_b] {
        loop {
            match tokio::time::timeout(LONG, s.next()).await {
                Ok(Some(StreamItem::Opened)) => break,
                Ok(Some(StreamItem::Lost(e))) => panic!("the event stream broke: {e}"),
                Ok(Some(_)) => {}
                other => panic!("the event stream opens: {:?}", other.is_ok()),
            }
        }
    }

    // Twelve tasks through each host, into one queue.
    let mut ids = Vec::new();
    for i in 0..24 {
        let c = if i % 2 == 0 { &ca } else { &cb };
        ids.push(enqueue(c, &format!("task {i}"), json!({"steps": 8, "seed": i})).await);
    }
    for c in [&ca, &cb] {
        let q = queue(c).await;
        let listed: Vec<String> = q.pending_tasks.iter().map(|t| t.id.clone()).collect();
        assert_eq!(listed, ids, "one queue, in enqueue order, from either host");
    }
    let all: HashSet<String> = ids.iter().cloned().collect();
    for (s, seen) in [(&mut stream_a, &mut seen_a), (&mut stream_b, &mut seen_b)] {
        read_until(s, seen, |seen| ids_of(seen, TaskChange::Created) == all).await;
    }

    // Run; kill A while its backends run tasks.
    resume(&cb).await;
    wait_for("A's two backends to run a task each", LONG, || async {
        let s0 = fakes[0].stats().await;
        let s1 = fakes[1].stats().await;
        !s0.prompts.is_empty()
            && !s1.prompts.is_empty()
            && s0.prompts.len() > s0.generations.len()
            && s1.prompts.len() > s1.generations.len()
    })
    .await;
    a.sigkill().await;
    let killed_at = std::time::Instant::now();

    // B takes over A's claims (they run again) and A's backends.
    for id in &ids {
        let t = wait_task_status(&cb, id, TaskStatus::Done, LONG).await;
        assert_eq!(t.status, TaskStatus::Done);
    }
    let taken_over: HashMap<String, Option<String>> = urls
        .iter()
        .map(|u| (u.clone(), Some("host-b".to_owned())))
        .collect();
    wait_for("B to drive the whole pool", LONG, || async {
        drivers(&cb).await == taken_over
    })
    .await;
    eprintln!(
        "fail-over and the rest of the queue: {:?}",
        killed_at.elapsed()
    );

    // Each task generated once, except those the kill cut (at most one per backend of A),
    // which were generated again.
    let mut started: HashMap<String, usize> = HashMap::new();
    for f in &fakes {
        for p in f.stats().await.prompts {
            *started.entry(p).or_default() += 1;
        }
    }
    let twice: Vec<_> = started.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.len() <= 2,
        "only the runs the kill cut start twice: {twice:?}"
    );
    assert!(started.values().all(|n| *n <= 2), "{started:?}");
    for i in 0..24 {
        assert!(started.contains_key(&format!("task {i}")), "task {i} ran");
    }
    assert_eq!(started.len(), 24, "nothing else ran: {started:?}");

    // One history from B, every task once, done.
    let h = history(&cb, HistoryFilter::All).await;
    assert_eq!(h.total, 24);
    // B's stream saw the tasks A finished before it died as well as its own.
    // (A's last finishes may die with A before their events are stored: at most one per
    // backend of A.)
    read_until(&mut stream_b, &mut seen_b, |seen| {
        ids_of(seen, TaskChange::Finished).len() >= ids.len() - 2
    })
    .await;
}
