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

/// The door against the real SD.Next: each of the examples (SD.Next refuses them
/// with 422/404, or crashes: `batch_size: 0` is its 500) is refused by the host with its
/// path, and nothing is queued; each valid twin runs to done on the real SD.Next. The kit
/// serves its `/openapi.json`, so the contract is the backend's own document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real SD.Next: SDNEXT_URL=… cargo test -- --ignored live_"]
async fn live_the_door_refuses_each_example_and_its_twin_runs_to_done() {
    use scheduler_api::client::ClientError;
    use scheduler_tests::door::{examples, message_matches};
    let h = InProcessHost::start_against(&sdnext_url(), tempfile::tempdir().expect("tmp"), |c| {
        c.start_paused = true
    })
    .await;
    let c = &h.api;
    let backend = wait_until(
        "the host has read the live SD.Next's lists and document",
        Duration::from_secs(120),
        || async {
            c.backends()
                .await
                .ok()
                .and_then(|b| b.into_iter().next())
                .filter(|b| b.contract.is_some() && b.loaded_checkpoint.is_some())
        },
    )
    .await;
    assert_eq!(backend.contract.as_deref(), Some("openapi"), "{backend:?}");
    let loaded = backend.loaded_checkpoint.expect("a model is loaded");
    let all = examples(&loaded);
    for e in &all {
        match c.enqueue(e.kind, &e.bad_body()).await {
            Err(ClientError::Refused { status, body }) => {
                assert_eq!(
                    (status, body.path.as_deref()),
                    (422, Some(e.path)),
                    "{}: {body:?}",
                    e.name
                );
                assert!(message_matches(e, &body.message), "{}: {body:?}", e.name);
            }
            other => panic!("{}: expected the door's 422, got {other:?}", e.name),
        }
    }
    let queued = c.queue(&Default::default()).await.expect("queue");
    assert_eq!(queued.total_pending_tasks, 0, "nothing queued");
    let mut ids = Vec::new();
    for e in &all {
        ids.push(
            c.enqueue(e.kind, &e.good_body())
                .await
                .unwrap_or_else(|err| panic!("{}'s twin: {err}", e.name))
                .task_id,
        );
    }
    c.resume().await.expect("resume");
    for (e, id) in all.iter().zip(&ids) {
        let t = wait_until("the twin ends", Duration::from_secs(300), || async {
            c.task(id).await.ok().filter(|t| t.status.is_finished())
        })
        .await;
        assert_eq!(t.status, TaskStatus::Done, "{}'s twin: {t:?}", e.name);
    }
    h.shut_down().await;
}
