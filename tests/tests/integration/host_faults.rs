//! Nothing wedges the night's queue (issue 7): misbehaving backends against the host in this
//! process and in-process fakes (the poison-task test against the processes: their log shows
//! that nothing panics). One test per fault: poison tasks, hung generations and stalled
//! backends, answers beyond the cap.

use fake_sdnext::{FakeConfigPatch, Fault, FaultRule};
use scheduler_api::client::Client;
use scheduler_api::{TaskStatus, routes};
use scheduler_tests::harness::{wait_for, wait_task_status};
use serde_json::json;

use crate::host_support::*;

async fn settings(c: &Client, patch: serde_json::Value) {
    let patch: scheduler_api::SettingsPatch = serde_json::from_value(patch).expect("a patch");
    c.update_settings(&patch).await.expect("settings");
}

fn faults(fake: &fake_sdnext::FakeHandle, rules: Vec<FaultRule>) {
    fake.configure(&FakeConfigPatch {
        faults: Some(rules),
        ..FakeConfigPatch::default()
    });
}

/// Poison tasks: a request that fails after it was sent, with the backend up, counts an
/// attempt; the task waits out a growing backoff (carrying `next_run_at`) while the tasks
/// behind it run, and fails with the reason after `max_attempts`. Each fault mode is a
/// poison task of its own; all of them are in the queue at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_tasks_fail_after_max_attempts_and_the_queue_moves_on() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    // A process: its log shows that the host never panics.
    let s = ProcessStack::start(FakeArgs::fast_a(), &["--start-paused"]).await;
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
    s.fake
        .configure(&FakeConfigPatch {
            faults: Some(
                modes
                    .iter()
                    .map(|(p, f)| FaultRule::poison(p, f.clone()))
                    .collect(),
            ),
            ..FakeConfigPatch::default()
        })
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
    c: &Client,
    id: &str,
    pred: impl Fn(&scheduler_api::Task) -> bool,
) -> scheduler_api::Task {
    scheduler_tests::harness::wait_until(&format!("task {id}"), LONG, || async {
        c.task(id).await.ok().filter(|t| pred(t))
    })
    .await
}

/// Poison tasks, the other side: 429 stays back-off-and-retry (no attempt counted), and a
/// request that cannot even connect is an outage (no attempt).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_outages_count_no_attempt() {
    let s = Stack::start(FakeArgs::fast_a(), &[]).await;
    let c = s.client().clone();
    settings(&c, json!({"max_attempts": 1})).await;
    s.fake().configure(&FakeConfigPatch {
        rate_limit_next: Some(fake_sdnext::CountOrBool::Count(3)),
        rate_limit_retry_after: Some(0),
        ..FakeConfigPatch::default()
    });
    let limited = enqueue(&c, "rate limited", json!({})).await;
    let t = wait_done(&c, &limited).await;
    assert_eq!(t.attempts, 0);
    assert_eq!(
        s.fake().stats().count_requests("POST", "/sdapi/v1/txt2img"),
        4,
        "three answered 429, the fourth ran"
    );

    s.fake().go_down();
    let waits = enqueue(&c, "waits out the outage", json!({})).await;
    wait_for(
        "the task to wait, pending, without an attempt",
        LONG,
        || async {
            c.task(&waits)
                .await
                .is_ok_and(|t| t.status == TaskStatus::Pending && t.attempts == 0)
        },
    )
    .await;
    s.fake().come_back();
    let t = wait_done(&c, &waits).await;
    assert_eq!(t.attempts, 0, "an outage counts no attempt");
}

/// A hung generation: DELETE ends a task within 15 s even when the backend never answers; the
/// abandoned request holds the backend only until its progress shows it idle, and the next
/// task then runs on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_generation_is_interrupted_and_the_next_task_runs() {
    let s = Stack::start(FakeArgs::fast_a(), &[]).await;
    let c = s.client().clone();
    settings(&c, json!({"interrupt_grace_s": 2})).await;
    faults(
        s.fake(),
        vec![FaultRule::poison("hangs", Fault::HangHonoursInterrupt)],
    );
    let hung = enqueue(&c, "hangs", json!({"steps": 50})).await;
    let next = enqueue(&c, "next", json!({})).await;
    wait_task_status(&c, &hung, TaskStatus::Running, LONG).await;
    wait_for("the fake to run the hung job", LONG, || async {
        s.fake()
            .stats()
            .faulted_prompts
            .contains(&"hangs".to_owned())
    })
    .await;
    let a = delete(&c, &task_route(routes::TASK, &hung)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["message"], "Task interrupted");
    wait_task_status(
        &c,
        &hung,
        TaskStatus::Interrupted,
        std::time::Duration::from_secs(15),
    )
    .await;
    let t = wait_done(&c, &next).await;
    assert_eq!(t.backend.as_deref(), Some(s.fake().url().as_str()));
}

/// A hung generation: a backend whose job ignores interrupts is `stalled` after the request is
/// abandoned and gets no task while its progress shows the job; the other backend carries
/// on; once the job ends, the stalled backend takes tasks again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_ignores_interrupts_stalls_and_the_other_carries_on() {
    use scheduler_api::{BackendInfo, BackendState};
    use scheduler_tests::inprocess::{InProcessHost, fake_with_args};
    let f1 = fake_with_args(FakeArgs::fast_a()).await;
    let f2 = fake_with_args(FakeArgs::fast_a()).await;
    let stuck_rule = FaultRule {
        fault: Fault::HangIgnoresInterrupt,
        prompt: Some("stuck".into()),
        count: Some(1),
    };
    for f in [&f1, &f2] {
        faults(f, vec![stuck_rule.clone()]);
    }
    let u2 = f2.url();
    let host = InProcessHost::start_with(f1, tempfile::tempdir().expect("tempdir"), |c| {
        c.backends.push(u2)
    })
    .await;
    let f1 = host.fake();
    let c = host.client().clone();
    settings(&c, json!({"interrupt_grace_s": 1, "stall_recheck_s": 1})).await;
    let stuck = enqueue(&c, "stuck", json!({})).await;
    let running = wait_task_status(&c, &stuck, TaskStatus::Running, LONG).await;
    let x = running.backend.clone().expect("a backend runs it");
    let (hung_fake, other) = if x == f1.url() { (f1, &f2) } else { (&f2, f1) };
    wait_for("the fake to run the stuck job", LONG, || async {
        hung_fake
            .stats()
            .faulted_prompts
            .contains(&"stuck".to_owned())
    })
    .await;
    let a = delete(&c, &task_route(routes::TASK, &stuck)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    wait_task_status(
        &c,
        &stuck,
        TaskStatus::Interrupted,
        std::time::Duration::from_secs(15),
    )
    .await;
    let backends: Vec<BackendInfo> = c.backends().await.expect("backends");
    let state = |url: &str| {
        backends
            .iter()
            .find(|b| b.url == url)
            .map(|b| b.state)
            .expect("listed")
    };
    assert_eq!(state(&x), BackendState::Stalled);
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(enqueue(&c, &format!("carry on {i}"), json!({})).await);
    }
    for id in &ids {
        let t = wait_done(&c, id).await;
        assert_eq!(
            t.backend.as_deref(),
            Some(other.url().as_str()),
            "a stalled backend gets no task"
        );
    }
    // The job ends: the stalled backend is idle again and takes work.
    hung_fake.configure(&FakeConfigPatch {
        release_hangs: Some(true),
        ..FakeConfigPatch::default()
    });
    wait_for("the stalled backend to be up again", LONG, || async {
        let b: Vec<BackendInfo> = c.backends().await.expect("backends");
        b.iter().any(|b| b.url == x && b.state == BackendState::Up)
    })
    .await;
}

/// A hung generation: the stall watchdog interrupts and fails a task whose progress stops changing;
/// the overall per-task timeout does the same for a task that runs too long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stall_watchdog_and_the_task_timeout_fail_a_task_and_the_queue_moves_on() {
    let s = Stack::start(FakeArgs::fast_a(), &[]).await;
    let c = s.client().clone();
    settings(&c, json!({"stall_timeout_s": 2, "interrupt_grace_s": 2})).await;
    faults(
        s.fake(),
        vec![FaultRule::poison("frozen", Fault::FrozenProgress)],
    );
    let frozen = enqueue(&c, "frozen", json!({"steps": 20})).await;
    let after = enqueue(&c, "after the frozen one", json!({})).await;
    let t = wait_finished(&c, &frozen).await;
    assert_eq!(t.status, TaskStatus::Failed, "{t:?}");
    assert!(
        t.error.as_deref().unwrap_or("").contains("backend stalled"),
        "{t:?}"
    );
    wait_done(&c, &after).await;

    settings(&c, json!({"stall_timeout_s": 600, "task_timeout_s": 2})).await;
    let long = enqueue(&c, "too long", json!({"steps": 100000})).await;
    let after = enqueue(&c, "after the long one", json!({})).await;
    let t = wait_finished(&c, &long).await;
    assert_eq!(t.status, TaskStatus::Failed, "{t:?}");
    assert!(
        t.error.as_deref().unwrap_or("").contains("timed out"),
        "{t:?}"
    );
    wait_done(&c, &after).await;
    settings(&c, json!({"task_timeout_s": null})).await;
    assert_eq!(c.settings().await.expect("settings").task_timeout_s, None);
}

/// An answer beyond the cap: a generation answer beyond `max_answer_mib` fails the task with the reason
/// without being read; an answer under the cap is read (the peak memory of a 256 MiB answer
/// is measured by the `faults` bench).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_beyond_the_cap_fails_the_task_and_the_queue_moves_on() {
    let s = Stack::start(FakeArgs::fast_a(), &[]).await;
    let c = s.client().clone();
    settings(&c, json!({"max_answer_mib": 2})).await;
    faults(
        s.fake(),
        vec![
            FaultRule::poison("huge", Fault::HugeAnswer { mib: 3 }),
            FaultRule::poison("large", Fault::HugeAnswer { mib: 1 }),
        ],
    );
    let huge = enqueue(&c, "huge", json!({})).await;
    let large = enqueue(&c, "large", json!({})).await;
    let t = wait_finished(&c, &huge).await;
    assert_eq!(t.status, TaskStatus::Failed, "{t:?}");
    assert_eq!(
        t.error.as_deref(),
        Some(
            "SD.Next: SD.Next's answer is larger than the cap of 2 MiB (max_answer_mib); it was dropped"
        )
    );
    assert_eq!(t.attempts, 1);
    let t = wait_done(&c, &large).await;
    assert_eq!(t.image_count, 1, "an answer under the cap is read");
}

/// A hung generation: with its only backend stalled (a job that ignores interrupts), the queue shows
/// `hold_reason: "backend stalled"` until the job ends; then the next task runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_only_backend_holds_the_queue_until_it_is_idle() {
    let s = Stack::start(FakeArgs::fast_a(), &[]).await;
    let c = s.client().clone();
    settings(&c, json!({"interrupt_grace_s": 1, "stall_recheck_s": 1})).await;
    faults(
        s.fake(),
        vec![FaultRule::poison("stuck", Fault::HangIgnoresInterrupt)],
    );
    let stuck = enqueue(&c, "stuck", json!({})).await;
    let next = enqueue(&c, "next", json!({})).await;
    wait_task_status(&c, &stuck, TaskStatus::Running, LONG).await;
    wait_for("the fake to run the stuck job", LONG, || async {
        s.fake()
            .stats()
            .faulted_prompts
            .contains(&"stuck".to_owned())
    })
    .await;
    c.delete_task(&stuck).await.expect("delete");
    wait_task_status(
        &c,
        &stuck,
        TaskStatus::Interrupted,
        std::time::Duration::from_secs(15),
    )
    .await;
    wait_for("the hold to show the stalled backend", LONG, || async {
        queue(&c).await.hold_reason.as_deref() == Some("backend stalled")
    })
    .await;
    assert_eq!(
        c.task(&next).await.expect("task").status,
        TaskStatus::Pending,
        "a stalled backend gets no task"
    );
    s.fake().configure(&FakeConfigPatch {
        release_hangs: Some(true),
        ..FakeConfigPatch::default()
    });
    wait_done(&c, &next).await;
    assert_eq!(queue(&c).await.hold_reason, None);
}
