//! The pool of backends: backends added at run time take work, are persisted and come back
//! after a SIGKILL and restart (the real binaries), never show their credentials, and their
//! origin is allowed; disable, drain and remove; a backend that goes down leaves its work to
//! the others; per-backend figures (the host in this process, driving in-process fakes).

use scheduler_api::client::{Client, Method};
use scheduler_api::{BackendInfo, BackendSource, HistoryFilter, SettingsPatch, TaskStatus, routes};
use scheduler_tests::harness::{FakeProcess, HostProcess, wait_task_status, wait_until};
use scheduler_tests::inprocess::{InProcessHost, fake_with_args};
use serde_json::json;

use crate::host_support::*;

/// `a` and `b` listed, `ck` loaded, 2 ms per step.
fn fast(ck: &str) -> FakeArgs {
    FakeArgs::new()
        .step_ms(2)
        .checkpoints(&["a", "b"])
        .loaded(ck)
}

async fn backends(c: &Client) -> Vec<BackendInfo> {
    c.backends().await.expect("backends")
}

async fn origin_status(c: &Client, origin: &str) -> u16 {
    c.raw(Method::Get, routes::QUEUE)
        .header("Origin", origin)
        .send()
        .await
        .expect("the host answers")
        .status
}

async fn wait_all_done(c: &Client, n: i64) {
    wait_until("every task to finish", LONG, || async {
        let h = history(c, HistoryFilter::All).await;
        (h.total >= n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_added_backend_takes_work_persists_and_never_shows_its_credentials() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let f1 = FakeProcess::spawn(fast("a")).await;
    let f2 = FakeProcess::spawn(fast("a").auth("user", "s3cret")).await;
    let mut host = HostProcess::spawn(dir.path(), &[f1.url()], &["--start-paused"]).await;
    let c = host.client.clone();
    let secret_url = f2.url().replace("http://", "http://user:s3cret@");
    let origin2 = f2.url();
    assert_eq!(
        origin_status(&c, &origin2).await,
        403,
        "not in the pool yet"
    );

    let added = c.add_backend(&secret_url).await.expect("add");
    assert_eq!(
        (
            added.id.as_str(),
            added.source,
            added.url.as_str(),
            added.enabled
        ),
        ("added-1", BackendSource::Added, f2.url().as_str(), true)
    );
    let listed = get(&c, routes::BACKENDS).await;
    assert_eq!(listed.status, 200);
    assert!(
        !listed.body.to_string().contains("s3cret"),
        "credentials never appear: {}",
        listed.body
    );
    assert_eq!(
        origin_status(&c, &origin2).await,
        200,
        "its origin is allowed"
    );
    // The same backend twice, or a URL that is not one, is refused (without echoing it).
    let again = c.add_backend(&secret_url).await.expect_err("twice");
    assert_eq!(again.status(), Some(409));
    assert!(!again.to_string().contains("s3cret"), "{again}");
    let bad = c.add_backend("ftp://user:s3cret@x").await.expect_err("ftp");
    assert_eq!(
        (bad.status(), bad.body().map(|b| b.message.as_str())),
        (
            Some(422),
            Some("url must be an SD.Next base URL: http(s)://[user:pass@]host[:port][/path]")
        )
    );

    // Both backends work (the added one with its credentials).
    for i in 0..12 {
        enqueue(
            &c,
            &format!("t{i}"),
            json!({"checkpoint": "a", "steps": 20}),
        )
        .await;
    }
    resume(&c).await;
    wait_all_done(&c, 12).await;
    let (s1, s2) = (f1.stats().await, f2.stats().await);
    assert_eq!(s1.generations.len() + s2.generations.len(), 12);
    assert!(!s2.generations.is_empty(), "the added backend took work");
    let b = backends(&c).await;
    assert_eq!(b.len(), 2);
    assert_eq!(
        b[1].tasks_done as usize,
        s2.generations.len(),
        "per-backend figures"
    );

    // Persisted: back after a restart (SIGKILL).
    host.sigkill().await;
    host.restart().await;
    let c = host.client.clone();
    let ids: Vec<(String, String)> = backends(&c)
        .await
        .into_iter()
        .map(|b| (b.id, b.url))
        .collect();
    assert_eq!(
        ids,
        [
            ("flag-1".to_string(), f1.url()),
            ("added-1".to_string(), f2.url())
        ]
    );

    // Disabled: it takes nothing; enabled: it takes work again; removed: gone for good.
    let off = c
        .backend_action(routes::BACKEND_DISABLE, "added-1")
        .await
        .expect("disable");
    assert!(!off.enabled);
    let before = f2.stats().await.generations.len();
    resume(&c).await;
    for i in 0..6 {
        enqueue(
            &c,
            &format!("u{i}"),
            json!({"checkpoint": "a", "steps": 20}),
        )
        .await;
    }
    wait_all_done(&c, 18).await;
    assert_eq!(
        f2.stats().await.generations.len(),
        before,
        "disabled: no task"
    );
    let on = c
        .backend_action(routes::BACKEND_ENABLE, "added-1")
        .await
        .expect("enable");
    assert!(on.enabled);
    let m = c.remove_backend("added-1").await.expect("remove");
    assert_eq!(m.message, "Backend removed");
    let gone = c.remove_backend("added-1").await.expect_err("twice");
    assert_eq!(
        (gone.status(), gone.body().map(|b| b.message.as_str())),
        (Some(404), Some("no backend added-1"))
    );
    assert_eq!(
        origin_status(&c, &origin2).await,
        403,
        "its origin left with it"
    );
    host.sigkill().await;
    host.restart().await;
    let ids: Vec<String> = backends(&host.client)
        .await
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(ids, ["flag-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_busy_backend_hands_its_task_to_another_and_drain_finishes_first() {
    let slow = fake_with_args(FakeArgs::new().step_ms(40).checkpoint("a").loaded("a")).await;
    let other = fake_with_args(FakeArgs::new().step_ms(2).checkpoint("a").loaded("a")).await;
    let host = InProcessHost::start_with(slow, tempfile::tempdir().expect("tempdir"), |_| {}).await;
    let (c, slow) = (host.client().clone(), host.fake());
    // The slow backend alone takes the long task.
    let long = enqueue(&c, "long", json!({"steps": 500})).await;
    wait_task_status(&c, &long, TaskStatus::Running, LONG).await;
    c.add_backend(&other.url()).await.expect("add");
    // Disable the busy one: its task goes back to the head and runs on the other.
    c.backend_action(routes::BACKEND_DISABLE, "flag-1")
        .await
        .expect("disable");
    let t = wait_done(&c, &long).await;
    assert_eq!(t.backend.as_deref(), Some(other.url().as_str()));
    assert_eq!(t.attempts, 0, "giving a task back is no attempt");
    assert!(slow.stats().interrupts >= 1, "SD.Next was asked to stop");

    // Drain: the running task finishes where it runs, then the backend takes nothing.
    c.backend_action(routes::BACKEND_ENABLE, "flag-1")
        .await
        .expect("enable");
    c.backend_action(routes::BACKEND_DISABLE, "added-1")
        .await
        .expect("disable the fast one");
    let second = enqueue(&c, "second", json!({"steps": 60})).await;
    wait_task_status(&c, &second, TaskStatus::Running, LONG).await;
    let d = c
        .backend_action(routes::BACKEND_DRAIN, "flag-1")
        .await
        .expect("drain");
    assert!(d.draining && d.enabled, "{d:?}");
    let t = wait_done(&c, &second).await;
    assert_eq!(t.backend.as_deref(), Some(slow.url().as_str()));
    let b = backends(&c).await;
    assert_eq!((b[0].enabled, b[0].draining), (false, false), "drained");
    // With every backend out, a new task waits.
    let third = enqueue(&c, "third", json!({})).await;
    assert_eq!(
        c.task(&third).await.expect("task").status,
        TaskStatus::Pending
    );
    c.backend_action(routes::BACKEND_ENABLE, "added-1")
        .await
        .expect("enable");
    let t = wait_done(&c, &third).await;
    assert_eq!(t.backend.as_deref(), Some(other.url().as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_goes_down_leaves_its_work_to_the_others() {
    let fa = fake_with_args(fast("a")).await;
    let fb = fake_with_args(fast("b")).await;
    let fb_url = fb.url();
    let host = InProcessHost::start_with(fa, tempfile::tempdir().expect("tempdir"), |c| {
        c.start_paused = true;
        c.backends.push(fb_url);
    })
    .await;
    let (c, fa) = (host.client().clone(), host.fake());
    wait_until("both backends up", LONG, || async {
        let b = backends(&c).await;
        b.iter()
            .all(|b| b.state == scheduler_api::BackendState::Up)
            .then_some(())
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(enqueue(&c, &format!("a{i}"), json!({"checkpoint": "a"})).await);
    }
    // The backend with `a` loaded goes away before anything runs.
    fa.go_down();
    resume(&c).await;
    for id in &ids {
        let t = wait_done(&c, id).await;
        assert_eq!(t.backend.as_deref(), Some(fb.url().as_str()));
        assert_eq!(t.attempts, 0);
    }
    assert_eq!(fb.stats().loads, ["a"], "one load on the backend left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_and_runs_are_counted_per_backend() {
    let s = Stack::start(
        FakeArgs::new()
            .step_ms(1)
            .checkpoints(&["a", "b"])
            .loaded("a"),
        &["--start-paused"],
    )
    .await;
    let c = s.client();
    c.update_settings(&SettingsPatch {
        group_by_checkpoint: Some(false),
        ..Default::default()
    })
    .await
    .expect("strict FIFO");
    for (i, ck) in ["a", "b", "a", "b"].iter().enumerate() {
        enqueue(c, &format!("p{i}"), json!({"checkpoint": ck})).await;
    }
    resume(c).await;
    wait_all_done(c, 4).await;
    let stats = s.fake().stats();
    assert_eq!(stats.loads, ["b", "a", "b"]);
    let b = &backends(c).await[0];
    assert_eq!((b.loads, b.tasks_done, b.tasks_failed), (3, 4, 0));
    assert!(b.busy_ms > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_waits_for_a_backend_busy_with_its_checkpoint_only_while_it_is() {
    // A has `a` loaded; B has `b` loaded; both list both.
    let a = fake_with_args(
        FakeArgs::new()
            .step_ms(5)
            .checkpoints(&["a", "b"])
            .loaded("a"),
    )
    .await;
    let b = fake_with_args(fast("b")).await;
    let host = InProcessHost::start_with(a, tempfile::tempdir().expect("tempdir"), |_| {}).await;
    let (c, a) = (host.client().clone(), host.fake());
    // A runs a long `a` task; B joins.
    let long = enqueue(&c, "long", json!({"checkpoint": "a", "steps": 300})).await;
    wait_task_status(&c, &long, TaskStatus::Running, LONG).await;
    c.add_backend(&b.url()).await.expect("add");
    // One more `a` task: A is busy with `a`, so it waits for A (no load on B).
    let next = enqueue(&c, "next", json!({"checkpoint": "a", "steps": 1})).await;
    let t = wait_done(&c, &next).await;
    assert_eq!(t.backend.as_deref(), Some(a.url().as_str()), "waited for A");
    assert!(b.stats().loads.is_empty(), "B loaded nothing");

    // Two `a` tasks while A is busy with `a`: the first waits for A, the second goes to the
    // idle B, which loads `a` for it.
    c.backend_action(routes::BACKEND_DISABLE, "added-1")
        .await
        .expect("disable B");
    let long2 = enqueue(&c, "long2", json!({"checkpoint": "a", "steps": 300})).await;
    wait_task_status(&c, &long2, TaskStatus::Running, LONG).await;
    let kept = enqueue(&c, "kept", json!({"checkpoint": "a", "steps": 1})).await;
    let taken = enqueue(&c, "taken", json!({"checkpoint": "a", "steps": 1})).await;
    c.backend_action(routes::BACKEND_ENABLE, "added-1")
        .await
        .expect("enable B");
    let t = wait_done(&c, &taken).await;
    assert_eq!(
        t.backend.as_deref(),
        Some(b.url().as_str()),
        "an idle B takes it"
    );
    assert_eq!(b.stats().loads, ["a"]);
    wait_done(&c, &kept).await;
    wait_done(&c, &long2).await;
}
