//! Who may drive the queue: Origin and Host checks and the bearer token (the host in this
//! process), and the binary's refusal to listen beyond loopback without a token (a process).

use scheduler_api::{EXTENSION_ORIGIN, routes};
use scheduler_tests::harness::{ChildServer, FakeProcess, host_binary};
use serde_json::json;

use crate::host_support::*;

async fn status_with(
    s: &Stack,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, String)],
) -> u16 {
    // A browser's request (Origin, Host): outside what the typed client sends.
    let c = reqwest::Client::new();
    let mut r = c.request(method.clone(), format!("{}{path}", s.url));
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    if method == reqwest::Method::POST {
        r = r.json(&json!({"prompt": "from a page"}));
    }
    r.send().await.expect("request").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_is_refused_and_the_extension_and_programs_pass() {
    let s = Stack::start(
        FakeArgs::fast_a(),
        &["--allow-origin", "http://trusted.example:9000"],
    )
    .await;
    pause(s.client()).await;
    let evil = [("origin", "https://evil.example".to_owned())];
    assert_eq!(
        status_with(&s, reqwest::Method::GET, routes::QUEUE, &evil).await,
        403
    );
    assert_eq!(
        status_with(&s, reqwest::Method::POST, routes::QUEUE_TXT2IMG, &evil).await,
        403
    );
    assert_eq!(queue_ids(s.client()).await.len(), 0, "nothing was queued");
    let ext = [("origin", EXTENSION_ORIGIN.to_owned())];
    assert_eq!(
        status_with(&s, reqwest::Method::POST, routes::QUEUE_TXT2IMG, &ext).await,
        200
    );
    assert_eq!(
        status_with(&s, reqwest::Method::GET, routes::QUEUE, &[]).await,
        200
    );
    let backend = [("origin", s.fake().url())];
    assert_eq!(
        status_with(&s, reqwest::Method::GET, routes::QUEUE, &backend).await,
        200
    );
    let added = [("origin", "http://trusted.example:9000".to_owned())];
    assert_eq!(
        status_with(&s, reqwest::Method::GET, routes::QUEUE, &added).await,
        200
    );
    let other_ext = [(
        "origin",
        "chrome-extension://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned(),
    )];
    assert_eq!(
        status_with(&s, reqwest::Method::GET, routes::QUEUE, &other_ext).await,
        403
    );
    // DNS rebinding: a loopback host only answers to loopback names.
    let port = s.port();
    let rebind = [("host", format!("evil.example:{port}"))];
    assert_eq!(
        status_with(&s, reqwest::Method::GET, routes::QUEUE, &rebind).await,
        403
    );
    let local = [("host", format!("localhost:{port}"))];
    assert_eq!(
        status_with(&s, reqwest::Method::GET, routes::QUEUE, &local).await,
        200
    );
    assert_eq!(queue_ids(s.client()).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_required_when_configured() {
    let s = Stack::start(FakeArgs::fast_a(), &["--token", "s3cret"]).await;
    let none = status_with(&s, reqwest::Method::GET, routes::QUEUE, &[]).await;
    assert_eq!(none, 401);
    let e = s
        .client()
        .queue(&scheduler_api::ListQuery::default())
        .await
        .expect_err("no token");
    assert_eq!(
        (e.status(), e.body().map(|b| (b.message.as_str(), b.code))),
        (
            Some(401),
            Some((
                "missing or wrong bearer token",
                Some(scheduler_api::ErrorCode::Unauthorized)
            ))
        )
    );
    let wrong = [("authorization", "Bearer nope".to_owned())];
    assert_eq!(
        status_with(&s, reqwest::Method::GET, routes::QUEUE, &wrong).await,
        401
    );
    let right = [("authorization", "Bearer s3cret".to_owned())];
    assert_eq!(
        status_with(&s, reqwest::Method::GET, routes::QUEUE, &right).await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listening_beyond_loopback_without_a_token_is_refused_at_start() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let fake = FakeProcess::spawn(FakeArgs::new().checkpoint("a")).await;
    let dir = tempfile::tempdir().unwrap();
    let args = vec![
        "serve".to_owned(),
        "--data-dir".to_owned(),
        dir.path().display().to_string(),
        "--backend".to_owned(),
        fake.url(),
    ];
    let started = ChildServer::start("agent-scheduler", &host_binary(), args, "0.0.0.0:0").await;
    let err = started.err().expect("the host refuses to start");
    assert!(err.to_string().to_lowercase().contains("token"), "{err}");
    // With a token it starts.
    let mut args = vec![
        "serve".to_owned(),
        "--data-dir".to_owned(),
        dir.path().display().to_string(),
        "--backend".to_owned(),
        fake.url(),
    ];
    args.extend(["--token".to_owned(), "t".to_owned()]);
    let ok = ChildServer::start("agent-scheduler", &host_binary(), args, "0.0.0.0:0").await;
    assert!(ok.is_ok(), "{:?}", ok.err());
}

/// Firefox gives each install its own extension origin (`moz-extension://<uuid>`): it is
/// refused by default (the refusal names the flag that allows it), allowed by
/// `--allow-origin`, or, on a host with a token, by carrying the token; a web page with the
/// token stays refused.
#[tokio::test]
async fn a_firefox_extension_is_allowed_by_flag_or_by_the_token() {
    let firefox = "moz-extension://0f1e2d3c-4b5a-4978-8877-665544332211";
    let other = "moz-extension://99999999-4b5a-4978-8877-665544332211";
    let s = Stack::start(FakeArgs::fast_a(), &["--allow-origin", firefox]).await;
    pause(s.client()).await;
    let at = |o: &str| vec![("origin", o.to_owned())];
    assert_eq!(
        status_with(
            &s,
            reqwest::Method::POST,
            routes::QUEUE_TXT2IMG,
            &at(firefox)
        )
        .await,
        200
    );
    let r = reqwest::Client::new()
        .post(format!("{}{}", s.url, routes::QUEUE_TXT2IMG))
        .header("origin", other)
        .json(&json!({"prompt": "from another install"}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 403);
    let body: serde_json::Value = r.json().await.expect("json");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&format!("--allow-origin {other}")),
        "the refusal says what to pass: {msg}"
    );
    assert_eq!(queue_ids(s.client()).await.len(), 1, "only the allowed one");

    let t = Stack::start(FakeArgs::fast_a(), &["--token", "s3cret"]).await;
    let with = |o: &str, tok: &str| {
        vec![
            ("origin", o.to_owned()),
            ("authorization", format!("Bearer {tok}")),
        ]
    };
    assert_eq!(
        status_with(
            &t,
            reqwest::Method::GET,
            routes::QUEUE,
            &with(other, "s3cret")
        )
        .await,
        200
    );
    assert_eq!(
        status_with(
            &t,
            reqwest::Method::GET,
            routes::QUEUE,
            &with(other, "nope")
        )
        .await,
        403
    );
    assert_eq!(
        status_with(&t, reqwest::Method::GET, routes::QUEUE, &at(other)).await,
        403
    );
    assert_eq!(
        status_with(
            &t,
            reqwest::Method::GET,
            routes::QUEUE,
            &with("https://evil.example", "s3cret")
        )
        .await,
        403
    );
}
