//! The opt-in live tier: the host against a REAL SD.Next (`SDNEXT_URL`, e.g. the one of
//! `../shared/tools/sdnext`), never in CI. Run with
//! `SDNEXT_URL=http://127.0.0.1:17860 cargo test -p scheduler-tests --test integration -- --ignored live_`.

use std::time::Duration;

use agent_scheduler::sdnext::SdClient;
use scheduler_api::{EnqueueRequest, TaskStatus, TaskType};
use scheduler_tests::harness::{prerequisite, wait_until};
use scheduler_tests::inprocess::InProcessHost;
use serde_json::json;

fn sdnext_url() -> String {
    prerequisite(
        "SDNEXT_URL (a running SD.Next)",
        std::env::var("SDNEXT_URL").ok().filter(|u| !u.is_empty()),
        "bash ../shared/tools/sdnext/start.sh, then SDNEXT_URL=http://127.0.0.1:17860",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real SD.Next: SDNEXT_URL=… cargo test -- --ignored live_"]
async fn live_the_sdnext_client_reads_models_samplers_and_the_loaded_checkpoint() {
    let c = SdClient::new(&sdnext_url()).expect("client");
    let models = c.sd_models().await.expect("sd-models");
    assert!(!models.is_empty(), "the live SD.Next lists no checkpoint");
    let samplers = c.samplers().await.expect("samplers");
    assert!(
        samplers.iter().any(|s| s == "Euler a"),
        "samplers: {samplers:?}"
    );
    let loaded = c.loaded_checkpoint().await.expect("checkpoint");
    let loaded = loaded.expect("a model is loaded");
    assert!(
        models.iter().any(|m| m.title == loaded.title),
        "{} not in {models:?}",
        loaded.title
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real SD.Next: SDNEXT_URL=… cargo test -- --ignored live_"]
async fn live_a_small_txt2img_task_runs_to_done_with_its_image() {
    let h = InProcessHost::start_against(&sdnext_url(), tempfile::tempdir().expect("tmp"), |_| {})
        .await;
    let req: EnqueueRequest = serde_json::from_value(
        json!({"prompt": "a red square", "steps": 2, "width": 64, "height": 64, "seed": 1}),
    )
    .expect("body");
    let id = h
        .api
        .enqueue(TaskType::Txt2img, &req)
        .await
        .expect("enqueue")
        .task_id;
    let t = wait_until("the live task ends", Duration::from_secs(300), || async {
        h.api
            .task(&id)
            .await
            .ok()
            .filter(|t| t.status.is_finished())
    })
    .await;
    assert_eq!(t.status, TaskStatus::Done, "{t:?}");
    let images = h.api.results(&id).await.expect("results");
    assert_eq!(images.len(), 1);
    assert!(
        images[0].infotext.contains("a red square"),
        "{}",
        images[0].infotext
    );
    h.shut_down().await;
}
