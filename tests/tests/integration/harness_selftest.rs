//! The harness helpers themselves: the callback receiver, `wait_until`, route filling.

use std::time::Duration;

use scheduler_api::routes;
use scheduler_tests::harness::{CallbackReceiver, fill, wait_until};

#[tokio::test]
async fn callback_receiver_records_multipart_posts() {
    let rx = CallbackReceiver::start().await;
    let form = reqwest::multipart::Form::new()
        .text("task", r#"{"id":"t1"}"#)
        .part(
            "files",
            reqwest::multipart::Part::bytes(vec![1u8, 2, 3])
                .file_name("0.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let c = reqwest::Client::new();
    let r = c
        .post(rx.url("/hook?x=1"))
        .header("X-Agent-Scheduler-Task", "t1")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let posts = rx.wait_for_posts(1, Duration::from_secs(5)).await;
    let p = &posts[0];
    assert_eq!(p.path, "/hook?x=1");
    assert_eq!(p.header("x-agent-scheduler-task"), Some("t1"));
    assert_eq!(p.parts.len(), 2);
    assert_eq!(p.parts[0].name, "task");
    assert_eq!(p.parts[0].data, br#"{"id":"t1"}"#);
    assert_eq!(p.parts[1].file_name.as_deref(), Some("0.png"));
    assert_eq!(p.parts[1].content_type.as_deref(), Some("image/png"));
    assert_eq!(p.parts[1].data, vec![1, 2, 3]);

    rx.set_status(503);
    let r = c.post(rx.url("/hook")).send().await.unwrap();
    assert_eq!(
        r.status().as_u16(),
        503,
        "configurable answer for retry tests"
    );
    assert_eq!(rx.posts().len(), 2);
}

#[tokio::test]
async fn wait_until_returns_the_first_value_the_condition_gives() {
    // The condition holds at its third check: that check's value comes back and there is no
    // fourth check.
    let checks = std::cell::Cell::new(0u32);
    let v = wait_until("the third check", Duration::from_secs(5), || {
        checks.set(checks.get() + 1);
        let n = checks.get();
        async move { (n == 3).then_some(n * 14) }
    })
    .await;
    assert_eq!((v, checks.get()), (42, 3));
    let timed_out = tokio::spawn(async {
        wait_until("never", Duration::from_millis(30), || async { None::<()> }).await
    })
    .await;
    // A missed deadline fails the test, naming what it waited for.
    let payload = timed_out.unwrap_err().into_panic();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("timed out after 30ms waiting for: never")
    );
}

#[test]
fn route_templates_are_filled() {
    assert_eq!(
        fill(routes::TASK_MOVE, &[("id", "a"), ("over_id", "top")]),
        "/agent-scheduler/v1/task/a/move/top"
    );
}

#[tokio::test]
async fn bearer_client_sends_the_token() {
    let rx = CallbackReceiver::start().await;
    let base = rx.url("");
    let c = scheduler_api::client::Client::new(&base).with_token(Some("t0k".into()));
    scheduler_tests::harness::raw(&c, scheduler_api::client::Method::Post, "/x", None).await;
    let posts = rx.wait_for_posts(1, Duration::from_secs(5)).await;
    assert_eq!(posts[0].header("authorization"), Some("Bearer t0k"));
}
