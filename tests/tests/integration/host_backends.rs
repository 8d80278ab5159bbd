//! Several backends, a backend that is not ready, and bounded auto-requeue (the host in this
//! process, driving in-process fakes; rate limits: host_faults.rs).

use scheduler_api::{ListQuery, SettingsPatch, TaskStatus, TaskType};
use scheduler_tests::harness::{wait_for, wait_until};
use scheduler_tests::inprocess::{InProcessHost, fake_with_args};
use serde_json::json;

use crate::host_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_run_on_a_backend_that_lists_their_checkpoint() {
    let f1 = fake_with_args(FakeArgs::new().step_ms(20).checkpoint("a").loaded("a")).await;
    let f2 = fake_with_args(FakeArgs::new().step_ms(20).checkpoint("b").loaded("b")).await;
    let (u1, u2) = (f1.url(), f2.url());
    let host = InProcessHost::start_with(f1, tempfile::tempdir().unwrap(), |c| {
        c.backends.push(u2.clone())
    })
    .await;
    let c = host.client();
    let f1 = host.fake();
    let models = c.sd_models().await.expect("sd-models");
    assert_eq!(models, vec!["a", "b"], "the union of both backends");
    pause(c).await;
    let all = c
        .enqueue(
            TaskType::Txt2img,
            &body(json!({"prompt": "every", "steps": 3, "checkpoint": "*"})),
        )
        .await
        .expect("enqueue");
    assert_eq!(all.task_ids.len(), 2);
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            enqueue(
                c,
                &format!("on b {i}"),
                json!({"checkpoint": "b", "steps": 30}),
            )
            .await,
        );
        ids.push(
            enqueue(
                c,
                &format!("on a {i}"),
                json!({"checkpoint": "a", "steps": 30}),
            )
            .await,
        );
    }
    resume(c).await;
    // Both backends work at the same time.
    wait_for("two running tasks", LONG, || async {
        let q = c.queue(&ListQuery::default()).await.expect("queue");
        q.current_task_ids.len() == 2
    })
    .await;
    for id in ids.iter().chain(all.task_ids.iter()) {
        let t = wait_done(c, id).await;
        let ck = t.params["checkpoint"].as_str().unwrap().to_owned();
        let expect = if ck == "a" { &u1 } else { &u2 };
        assert_eq!(t.backend.as_deref(), Some(expect.as_str()), "{t:?}");
    }
    let (s1, s2) = (f1.stats(), f2.stats());
    assert_eq!((s1.loads, s2.loads), (vec![], vec![]), "no switches needed");
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        sorted(s1.prompts),
        ["every", "on a 0", "on a 1", "on a 2"],
        "each backend ran exactly its checkpoint's tasks"
    );
    assert_eq!(sorted(s2.prompts), ["every", "on b 0", "on b 1", "on b 2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_without_a_model_makes_tasks_wait_not_fail() {
    let s = Stack::start(FakeArgs::new().step_ms(1).checkpoint("a").no_model(), &[]).await;
    let c = s.client();
    let id = enqueue(c, "patient", json!({})).await;
    // The fake answers 200 with no images while no model is loaded; the host must not fail
    // the task for that. Load a model behind the host's back, as a user would.
    wait_for("the host to have asked the backend", LONG, || async {
        s.fake()
            .stats()
            .count_requests("GET", "/sdapi/v1/checkpoint")
            > 0
    })
    .await;
    // A claim may be in flight (the task is given back once the backend says "no model").
    let t = wait_until("the task back in the queue", LONG, || async {
        c.task(&id)
            .await
            .ok()
            .filter(|t| t.status != TaskStatus::Running)
    })
    .await;
    assert_eq!(t.status, TaskStatus::Pending);
    let r = reqwest::Client::new()
        .post(format!("{}/sdapi/v1/options", s.fake().url()))
        .json(&json!({"sd_model_checkpoint": "a"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let t = wait_done(c, &id).await;
    assert_eq!(t.attempts, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_requeue_of_failed_tasks_stops_at_max_attempts() {
    let s = Stack::start(FakeArgs::fast_a(), &[]).await;
    let c = s.client();
    let settings = c
        .update_settings(&SettingsPatch {
            auto_requeue_failed: Some(true),
            max_attempts: Some(2),
            ..Default::default()
        })
        .await
        .expect("settings");
    assert_eq!(
        (settings.auto_requeue_failed, settings.max_attempts),
        (true, 2)
    );
    let id = enqueue(
        c,
        "always fails",
        json!({"alwayson_scripts": {"nope": {"args": []}}}),
    )
    .await;
    wait_for("two failed attempts", LONG, || async {
        c.task(&id)
            .await
            .is_ok_and(|t| t.status == TaskStatus::Failed && t.attempts == 2)
    })
    .await;
    let ok = enqueue(c, "afterwards", json!({})).await;
    wait_done(c, &ok).await;
    let st = s.fake().stats();
    let tries = st
        .requests
        .iter()
        .filter(|r| r.path == "/sdapi/v1/txt2img")
        .count();
    assert_eq!(
        tries, 3,
        "two tries of the failing task, one of the next: {:?}",
        st.prompts
    );
    assert_eq!(c.task(&id).await.unwrap().status, TaskStatus::Failed);
}
