//! The process harness against the real `agent-scheduler` binary: spawn with a fake
//! backend, run a task through, SIGKILL and restart on the same port and data directory.

use std::time::Duration;

use scheduler_api::{EnqueueRequest, TaskStatus, TaskType};
use scheduler_tests::fake_args::FakeArgs;
use scheduler_tests::harness::{FakeProcess, HostProcess, wait_task_status};
use serde_json::json;

#[tokio::test]
async fn host_process_runs_a_task_and_restarts_on_the_same_port() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let fake = FakeProcess::spawn(FakeArgs::new().step_ms(1).checkpoints(&["a", "b"])).await;
    let dir = tempfile::tempdir().unwrap();
    let mut host = HostProcess::spawn(dir.path(), &[fake.url()], &[]).await;
    let req: EnqueueRequest = serde_json::from_value(
        json!({"prompt": "harness", "steps": 2, "width": 64, "height": 64, "checkpoint": "b"}),
    )
    .unwrap();
    let r = host
        .client
        .enqueue(TaskType::Txt2img, &req)
        .await
        .expect("enqueue");
    let t = wait_task_status(
        &host.client,
        &r.task_id,
        TaskStatus::Done,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(t.image_count, 1);
    let st = fake.stats().await;
    assert_eq!(st.prompts, vec!["harness"]);
    assert_eq!(st.loads, vec!["b"], "one switch to b, no double load");

    let addr = host.server.addr();
    host.sigkill().await;
    let gone = host.client.health().await.expect_err("the host is down");
    assert!(gone.is_unreachable(), "{gone:?}");
    host.restart().await;
    assert_eq!(host.server.addr(), addr);
    let again = host.client.task(&r.task_id).await.expect("task kept");
    assert_eq!(again.status, TaskStatus::Done);
}
