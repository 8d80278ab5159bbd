//! Every finish fenced to its claim (issue 15, finding 6): a run's end, release, progress and
//! interrupt act only on the claim they belong to; a backend withdrawn (disabled, removed)
//! during a checkpoint load or a run ends its claim at once. Each race is ordered by holding
//! one side — the fake SD.Next holds an answer or a load until the test releases it, the
//! host's test-only hook holds run ends before they are written — never by sleeping. The
//! host in this process, in-process fakes.

use agent_scheduler::config::TestFaults;
use fake_sdnext::{CountOrBool, FakeConfigPatch, FakeHandle, Fault, FaultRule};
use scheduler_api::client::{Client, StreamItem};
use scheduler_api::{Event, ImportRequest, SettingsPatch, TaskStatus, routes};
use scheduler_tests::harness::wait_for;
use scheduler_tests::inprocess::{InProcessHost, fake};
use serde_json::json;

use crate::host_support::*;

const FAULTS: &str = "/agent-scheduler/v1/test/faults";

/// Holds each run's end before anything of it is written (the host's test-only hook).
async fn hold_finishes(c: &Client, on: bool) {
    let a = post(c, FAULTS, &json!({"hold_finishes": on})).await;
    assert_eq!(a.status, 200, "{}", a.body);
}

/// The fake holds the answer of the next request with each of these prompts.
fn hold_answers(fake: &FakeHandle, prompts: &[&str]) {
    fake.configure(&FakeConfigPatch {
        faults: Some(
            prompts
                .iter()
                .map(|p| FaultRule {
                    fault: Fault::Hold,
                    prompt: Some((*p).to_owned()),
                    count: Some(1),
                })
                .collect(),
        ),
        ..FakeConfigPatch::default()
    });
}

async fn wait_held(fake: &FakeHandle, want: &[&str]) {
    wait_for(&format!("the fake to hold {want:?}"), LONG, || async {
        fake.held() == want
    })
    .await;
}

async fn status(c: &Client, id: &str) -> TaskStatus {
    c.task(id).await.expect("the task reads").status
}

/// A host with the test-fault hook, driving a fake listing `a` and `b` (`a` loaded).
async fn host_with_hook() -> InProcessHost {
    let f = fake(&["a", "b"]).await;
    InProcessHost::start_with(f, tempfile::tempdir().expect("tempdir"), |c| {
        c.test_faults = Some(TestFaults { disk_full: false })
    })
    .await
}

/// Long enough that a run stopped but not ending is never given up within a test.
async fn long_grace(c: &Client) {
    c.update_settings(&SettingsPatch {
        interrupt_grace_s: Some(300),
        ..SettingsPatch::default()
    })
    .await
    .expect("settings");
}

/// A run ends (its answer is back, its end held before it is written) and the backend runs
/// the next task; then the first one is deleted, its row still saying `running`. Returns
/// (the deleted one, the next one).
async fn delete_just_after_its_run(h: &InProcessHost) -> (String, String) {
    let c = h.client();
    hold_answers(h.fake(), &["first", "next"]);
    hold_finishes(c, true).await;
    let first = enqueue(c, "first", json!({})).await;
    let next = enqueue(c, "next", json!({})).await;
    wait_held(h.fake(), &["first"]).await;
    h.fake().release("first");
    // The backend runs the next task: the first one's run is over, its end not written.
    wait_held(h.fake(), &["next"]).await;
    assert_eq!(status(c, &first).await, TaskStatus::Running);
    assert_eq!(
        c.delete_task(&first).await.expect("delete").message,
        "Task interrupted"
    );
    hold_finishes(c, false).await;
    (first, next)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_just_after_a_run_ended_stops_that_claim_not_the_next_task() {
    let h = host_with_hook().await;
    let c = h.client();
    let (first, next) = delete_just_after_its_run(&h).await;
    // The deleted one's end is written as the user asked: interrupted, its images dropped.
    let t = wait_finished(c, &first).await;
    assert_eq!(
        (t.status, t.image_count),
        (TaskStatus::Interrupted, 0),
        "{t:?}"
    );
    // The backend's next task was never interrupted.
    h.fake().release("next");
    let t = wait_done(c, &next).await;
    assert_eq!(t.image_count, 1);
    let st = h.fake().stats();
    assert_eq!(st.interrupts, 0, "no interrupt reached the backend");
    let ran: Vec<(&str, bool)> = st
        .generations
        .iter()
        .map(|g| (g.prompt.as_str(), g.interrupted))
        .collect();
    assert_eq!(ran, [("first", false), ("next", false)]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_of_the_same_id_does_not_inherit_a_stale_interrupt() {
    let h = host_with_hook().await;
    let c = h.client();
    let (first, next) = delete_just_after_its_run(&h).await;
    h.fake().release("next");
    wait_done(c, &next).await;
    assert_eq!(
        wait_finished(c, &first).await.status,
        TaskStatus::Interrupted
    );
    assert_eq!(
        c.delete_task(&first).await.expect("delete").message,
        "Task deleted"
    );
    // The same id again, imported.
    let item = json!([{"id": first, "type": "txt2img",
        "params": {"prompt": "first again", "steps": 3, "width": 64, "height": 64}}]);
    let imported = c
        .import(&ImportRequest {
            content: item.to_string(),
        })
        .await
        .expect("import");
    assert_eq!(imported.imported, [first.as_str()]);
    let t = wait_finished(c, &first).await;
    assert_eq!(
        (t.status, t.image_count),
        (TaskStatus::Done, 1),
        "it runs to its end: {t:?}"
    );
    let again = h.fake().stats().generations;
    assert_eq!(
        again.last().map(|g| (g.prompt.as_str(), g.interrupted)),
        Some(("first again", false))
    );
    h.stop().await;
}

/// A task whose checkpoint (`b`) is being loaded, the load held by the fake.
async fn loading(h: &InProcessHost) -> String {
    let c = h.client();
    h.fake().configure(&FakeConfigPatch {
        hold_loads: Some(CountOrBool::Count(1)),
        ..FakeConfigPatch::default()
    });
    let t = enqueue(c, "on b", json!({"checkpoint": "b"})).await;
    wait_held(h.fake(), &["load b"]).await;
    assert_eq!(status(c, &t).await, TaskStatus::Running);
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_removed_during_a_checkpoint_load_gives_its_task_back_at_once() {
    let h = host_with_hook().await;
    let c = h.client();
    let t = loading(&h).await;
    c.remove_backend("flag-1").await.expect("remove");
    assert_eq!(status(c, &t).await, TaskStatus::Pending, "back at once");
    let q = c.task(&t).await.expect("task");
    assert_eq!((q.attempts, q.backend), (0, None), "no attempt counted");
    // The load goes on at SD.Next; the backend, back in the pool, runs the task.
    h.fake().release_all();
    c.add_backend(&h.fake().url()).await.expect("add it again");
    let done = wait_done(c, &t).await;
    assert_eq!(done.attempts, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_during_a_checkpoint_load_interrupts_the_task_at_once() {
    let h = host_with_hook().await;
    let c = h.client();
    let t = loading(&h).await;
    assert_eq!(
        c.delete_task(&t).await.expect("delete").message,
        "Task interrupted"
    );
    assert_eq!(
        wait_finished(c, &t).await.status,
        TaskStatus::Interrupted,
        "ended while SD.Next still loads"
    );
    assert_eq!(h.fake().held(), ["load b"]);
    // The backend goes on once its load is over.
    h.fake().release_all();
    let after = enqueue(c, "after", json!({})).await;
    wait_done(c, &after).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_removed_during_a_run_the_user_stopped_ends_it_interrupted_at_once() {
    let h = host_with_hook().await;
    let c = h.client();
    long_grace(c).await;
    hold_answers(h.fake(), &["stopped"]);
    let t = enqueue(c, "stopped", json!({})).await;
    wait_held(h.fake(), &["stopped"]).await;
    assert_eq!(
        c.delete_task(&t).await.expect("delete").message,
        "Task interrupted"
    );
    // The worker running the claim asks its SD.Next to stop; the held job does not end.
    wait_for("the backend to be asked to stop", LONG, || async {
        h.fake().stats().interrupts >= 1
    })
    .await;
    assert_eq!(status(c, &t).await, TaskStatus::Running);
    c.remove_backend("flag-1").await.expect("remove");
    let ended = c.task(&t).await.expect("task");
    assert_eq!(
        (ended.status, ended.image_count),
        (TaskStatus::Interrupted, 0),
        "ended at once, as the user asked"
    );
    h.fake().release_all();
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_disabled_during_a_run_gives_its_task_back_at_once_and_its_stale_run_counts_for_nothing()
 {
    let h = host_with_hook().await;
    let c = h.client();
    let (x, y) = (h.fake(), fake(&["a"]).await);
    long_grace(c).await;
    hold_answers(x, &["moving"]);
    hold_answers(&y, &["moving"]);
    let t = enqueue(c, "moving", json!({})).await;
    wait_held(x, &["moving"]).await;
    pause(c).await;
    c.add_backend(&y.url()).await.expect("add");

    c.backend_action(routes::BACKEND_DISABLE, "flag-1")
        .await
        .expect("disable");
    let back = c.task(&t).await.expect("task");
    assert_eq!(
        (back.status, back.attempts, back.backend),
        (TaskStatus::Pending, 0, None),
        "back at once, no attempt counted"
    );
    // Its old run goes on at the disabled backend, but reports nothing for the task: after
    // two more polls of that backend's progress, a marker, and no progress event before it.
    let mut stream = c.events(None);
    assert!(matches!(stream.next().await, Some(StreamItem::Opened)));
    let polls = || x.stats().count_requests("GET", "/sdapi/v1/progress");
    let seen = polls();
    wait_for("two more progress polls", LONG, || async {
        polls() >= seen + 2
    })
    .await;
    c.rename(&t, "marker").await.expect("rename");
    let stale = tokio::time::timeout(LONG, async {
        let mut progress = 0;
        while let Some(item) = stream.next().await {
            match item {
                StreamItem::Event {
                    event: Event::Progress(p),
                    ..
                } if p.task_id == t => progress += 1,
                StreamItem::Event {
                    event: Event::Task(e),
                    ..
                } if e.task_id == t && e.name.as_deref() == Some("marker") => return progress,
                _ => {}
            }
        }
        panic!("the event stream ended")
    })
    .await
    .expect("the marker event comes");
    assert_eq!(stale, 0, "no progress from a claim that is over");

    // Another backend takes it under a new claim; then the old run's answer comes back.
    resume(c).await;
    wait_held(&y, &["moving"]).await;
    let running = c.task(&t).await.expect("task");
    assert_eq!(
        (running.status, running.backend.as_deref()),
        (TaskStatus::Running, Some(y.url().as_str()))
    );
    x.release("moving");
    wait_for("the old run's answer", LONG, || async {
        x.stats().generations.len() == 1
    })
    .await;
    y.release("moving");
    let done = wait_done(c, &t).await;
    assert_eq!(
        (done.backend.as_deref(), done.attempts, done.image_count),
        (Some(y.url().as_str()), 0, 1)
    );
    let on_y: Vec<bool> = y
        .stats()
        .generations
        .iter()
        .map(|g| g.interrupted)
        .collect();
    assert_eq!(on_y, [false], "the new claim's run was never interrupted");
    h.stop().await;
}
