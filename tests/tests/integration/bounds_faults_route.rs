//! The test-only fault route (issue 15, finding 8): the binary `cargo build --workspace`
//! makes (the shipped one: a dev-dependency's features do not reach it) has no
//! `POST /agent-scheduler/v1/test/faults`, whatever its environment says; in the test
//! builds that have it, it sits behind the same token and origin guard as every route.

use agent_scheduler::config::{Secret, TestFaults};
use scheduler_api::client::{Client, Method};
use scheduler_tests::harness::{FakeProcess, HostProcess};
use scheduler_tests::inprocess::InProcessHost;
use serde_json::json;

use crate::host_support::*;

const FAULTS: &str = "/agent-scheduler/v1/test/faults";

#[tokio::test]
async fn the_workspace_build_of_the_host_has_no_test_fault_route() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeProcess::spawn(FakeArgs::fast_a()).await;
    let host = HostProcess::spawn_with_env(
        dir.path(),
        &[fake.url()],
        &[],
        &[("AGENT_SCHEDULER_TEST_FAULTS", "disk_full")],
    )
    .await;
    let a = post(&host.client, FAULTS, &json!({"disk_full": true})).await;
    assert_eq!(
        a.status, 404,
        "no fault route in the shipped binary: {}",
        a.body
    );
    assert_eq!(
        queue(&host.client).await.hold_reason,
        None,
        "the test-fault variable means nothing to it"
    );
}

#[tokio::test]
async fn the_test_fault_route_sits_behind_the_token_and_origin_guard() {
    let fake = FakeProcess::spawn(FakeArgs::fast_a()).await;
    let host =
        InProcessHost::start_against(&fake.url(), tempfile::tempdir().expect("tempdir"), |c| {
            c.token = Some(Secret("s3cret".into()));
            c.test_faults = Some(TestFaults { disk_full: false });
        })
        .await;
    let body = json!({"disk_full": true});
    let anonymous = Client::new(&host.url);
    let a = scheduler_tests::harness::raw(&anonymous, Method::Post, FAULTS, Some(&body)).await;
    assert_eq!(a.status, 401, "no token: {}", a.body);
    let with_token = anonymous.clone().with_token(Some("s3cret".into()));
    let r = with_token
        .raw(Method::Post, FAULTS)
        .header("Origin", "https://evil.example")
        .json(&body)
        .expect("json")
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status, 403, "a foreign origin");
    let a = post(
        &with_token,
        scheduler_api::routes::QUEUE_TXT2IMG,
        &json!({"prompt": "room", "steps": 2}),
    )
    .await;
    assert_eq!(a.status, 200, "no fault was set: {}", a.body);
    let a = scheduler_tests::harness::raw(&with_token, Method::Post, FAULTS, Some(&body)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    // The fault is on: a write is refused.
    let a = post(
        &with_token,
        scheduler_api::routes::QUEUE_TXT2IMG,
        &json!({"prompt": "no room", "steps": 2}),
    )
    .await;
    assert_eq!(a.status, 507, "{}", a.body);
}
