//! Two hosts on one PostgreSQL database (in this process, each with its own data folder, host
//! id and fake SD.Next): one pool, each backend driven by one host; one event stream (an
//! enqueue on one host shows on the other's SSE, and wakes the other's workers at once; the
//! progress of a run on one host reaches the other's SSE; each shows the other's backends with
//! their driver's figures).

use std::time::{Duration, Instant};

use scheduler_api::client::{Client, EventStream, StreamItem};
use scheduler_api::{BackendState, Event, SettingsPatch, TaskChange, TaskStatus, routes};
use scheduler_tests::harness::wait_until;
use scheduler_tests::inprocess::{InProcessHost, fake_with_args};
use scheduler_tests::pg::TestDb;
use serde_json::json;

use crate::host_support::*;

async fn host(db: &TestDb, id: &str, step_ms: u64) -> InProcessHost {
    InProcessHost::start_args(
        FakeArgs::fast_a().step_ms(step_ms),
        &["--database", &db.url, "--host-id", id],
    )
    .await
}

/// A host's event stream from now on (connected when this returns).
async fn stream(c: &Client) -> EventStream {
    let mut s = c.events(None);
    loop {
        match tokio::time::timeout(LONG, s.next())
            .await
            .expect("SSE opens")
        {
            Some(StreamItem::Opened) => return s,
            Some(_) => {}
            None => panic!("the event stream ended"),
        }
    }
}

/// Reads `s` into `seen` until `want` holds for one event (within 30 s).
async fn wait_event(
    s: &mut EventStream,
    seen: &mut Vec<(Option<u64>, Event)>,
    what: &str,
    want: impl Fn(&Event) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let item = tokio::time::timeout_at(deadline, s.next())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}: {seen:?}"))
            .expect("the stream goes on");
        match item {
            StreamItem::Event { id, event } => {
                let hit = want(&event);
                seen.push((id, event));
                if hit {
                    return;
                }
            }
            StreamItem::Lost(e) => panic!("the event stream broke: {e}"),
            StreamItem::Opened | StreamItem::Heartbeat => {}
        }
    }
}

fn task_event(id: &str, change: TaskChange) -> impl Fn(&Event) -> bool + '_ {
    move |e| matches!(e, Event::Task(t) if t.task_id == id && t.change == change)
}

/// Waits until `c` lists its `flag-1` up and driven by `driver`, and `others` more backends.
async fn wait_pool(c: &Client, driver: &str, total: usize) {
    wait_until(&format!("{driver}'s backend up"), LONG, || async {
        let all = c.backends().await.ok()?;
        let mine = all.iter().find(|b| b.id == "flag-1")?;
        (all.len() == total
            && mine.state == BackendState::Up
            && mine.driver.as_deref() == Some(driver))
        .then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hosts_share_one_pool_and_one_event_stream() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let a = host(&db, "host-a", 100).await;
    let ca = a.client().clone();
    // A short lease (renewed every second): host b reads it at its start.
    let patch = SettingsPatch {
        lease_s: Some(3),
        ..Default::default()
    };
    ca.update_settings(&patch).await.unwrap();
    let b = host(&db, "host-b", 1).await;
    let cb = b.client().clone();
    // One pool: each host lists both backends and drives its own.
    wait_pool(&ca, "host-a", 2).await;
    wait_pool(&cb, "host-b", 2).await;
    // One set of settings: a change through b is what a answers at once, and a change of
    // another field through a keeps b's (each change patches the stored settings).
    let on_b = SettingsPatch {
        max_attempts: Some(7),
        ..Default::default()
    };
    cb.update_settings(&on_b).await.unwrap();
    assert_eq!(ca.settings().await.unwrap().max_attempts, 7);
    let on_a = SettingsPatch {
        retry_backoff_s: Some(9),
        ..Default::default()
    };
    let both = ca.update_settings(&on_a).await.unwrap();
    assert_eq!(
        (both.max_attempts, both.retry_backoff_s, both.lease_s),
        (7, 9, 3)
    );
    assert_eq!(cb.settings().await.unwrap(), both);
    let on_b = cb.backends().await.unwrap();
    let a_url = a.fake().url();
    let a_there = on_b
        .iter()
        .find(|x| x.url == a_url)
        .expect("host a's backend is in host b's list");
    assert_eq!(a_there.driver.as_deref(), Some("host-a"));

    let mut events_b = stream(&cb).await;
    let mut seen = Vec::new();

    // A run on host a (host b's backend disabled): its progress reaches host b's stream,
    // between its start and its end.
    cb.backend_action(routes::BACKEND_DISABLE, "flag-1")
        .await
        .unwrap();
    let first = enqueue(&ca, "on a", json!({"steps": 25})).await;
    wait_event(
        &mut events_b,
        &mut seen,
        "the run on a starts",
        task_event(&first, TaskChange::Started),
    )
    .await;
    wait_event(
        &mut events_b,
        &mut seen,
        "a's progress",
        |e| matches!(e, Event::Progress(p) if p.task_id == first),
    )
    .await;
    wait_event(
        &mut events_b,
        &mut seen,
        "the run on a ends",
        task_event(&first, TaskChange::Finished),
    )
    .await;
    let t = wait_done(&ca, &first).await;
    assert_eq!(t.backend.as_deref(), Some(a_url.as_str()));
    // Host b shows host a's backend with host a's figures (stored after the run), not the
    // zeros of its own view.
    let on_a = ca.backends().await.unwrap();
    let mine = on_a.iter().find(|x| x.id == "flag-1").expect("a's backend");
    assert!(
        mine.tasks_done >= 1 && mine.loaded_checkpoint.is_some(),
        "{mine:?}"
    );
    wait_until("host a's figures on host b", LONG, || async {
        let all = cb.backends().await.ok()?;
        let x = all.into_iter().find(|x| x.url == a_url)?;
        (x.driver.as_deref() == Some("host-a")
            && x.tasks_done == mine.tasks_done
            && x.loaded_checkpoint == mine.loaded_checkpoint)
            .then_some(())
    })
    .await;

    // An enqueue on host a (its backend disabled now) shows on host b's stream, and host b's
    // idle worker claims it at once (its poll is 2 s).
    ca.backend_action(routes::BACKEND_DISABLE, "flag-1")
        .await
        .unwrap();
    cb.backend_action(routes::BACKEND_ENABLE, "flag-1")
        .await
        .unwrap();
    let second = enqueue(&ca, "on b", json!({})).await;
    wait_event(
        &mut events_b,
        &mut seen,
        "the enqueue on a",
        task_event(&second, TaskChange::Created),
    )
    .await;
    // Host b heard the wake-up before the event (the enqueue's commit sent it).
    let told = Instant::now();
    wait_event(
        &mut events_b,
        &mut seen,
        "b's claim",
        task_event(&second, TaskChange::Started),
    )
    .await;
    let waited = told.elapsed();
    assert!(
        waited < Duration::from_millis(1500),
        "host b claimed {waited:?} after it saw the enqueue on host a: woken, not polled"
    );
    let t = wait_done(&cb, &second).await;
    assert_eq!(t.backend.as_deref(), Some(b.fake().url().as_str()));
    assert_eq!(ca.task(&second).await.unwrap().status, TaskStatus::Done);

    // Every stored event once, in id order.
    let ids: Vec<u64> = seen.iter().filter_map(|(id, _)| *id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids increase, none twice: {ids:?}"
    );

    // A backend added on host a joins host b's pool within a renewal, driven by host a.
    let c = fake_with_args(FakeArgs::fast_a()).await;
    ca.add_backend(&c.url()).await.unwrap();
    wait_until("host a's new backend on host b", LONG, || async {
        let all = cb.backends().await.ok()?;
        let added = all.iter().find(|x| x.url == c.url())?;
        (added.driver.as_deref() == Some("host-a")).then_some(())
    })
    .await;
    // Host a stops: host b drives every backend at once (host a gave its leases up).
    a.shut_down().await;
    wait_until("host b to drive every backend", LONG, || async {
        let all = cb.backends().await.ok()?;
        (all.len() == 3 && all.iter().all(|x| x.driver.as_deref() == Some("host-b"))).then_some(())
    })
    .await;
    b.shut_down().await;
    c.stop().await;
}
