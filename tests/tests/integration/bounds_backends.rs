//! Backends may not point anywhere (issue 15, finding 5), through the real host process:
//! link-local and metadata targets are refused (422 that says why, or the host refuses to
//! start with such a `--backend`) while loopback and private ones stay allowed; the SD.Next
//! client follows no redirect; a backend's error text is shown short and plain; stored
//! credentials show in no answer, event, export, error or log line.

use std::time::Duration;

use base64::Engine;
use scheduler_api::client::Method;
use scheduler_api::{BackendInfo, TaskStatus, routes};
use scheduler_tests::harness::{
    ChildServer, FakeProcess, HostProcess, host_binary, raw, wait_task_status, wait_until,
};
use serde_json::json;

use crate::host_support::*;

/// A server answering every request with `status`, `headers` and `body`.
async fn answering(status: u16, headers: Vec<(&'static str, String)>, body: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().fallback(move || {
        let headers = headers.clone();
        let body = body.clone();
        async move {
            let mut r = axum::response::Response::new(axum::body::Body::from(body));
            *r.status_mut() = axum::http::StatusCode::from_u16(status).expect("status");
            for (k, v) in headers {
                r.headers_mut()
                    .insert(k, axum::http::HeaderValue::from_str(&v).expect("header"));
            }
            r
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

async fn backend_with_error(c: &scheduler_api::client::Client, id: &str) -> BackendInfo {
    wait_until(&format!("{id} to have an error"), LONG, || async {
        c.backends()
            .await
            .ok()?
            .into_iter()
            .find(|b| b.id == id && b.last_error.is_some())
    })
    .await
}

#[tokio::test]
async fn link_local_and_metadata_backends_are_refused_loopback_and_private_allowed() {
    let s = ProcessStack::start(FakeArgs::fast_a(), &[]).await;
    let c = s.client();
    for url in [
        "http://169.254.169.254",
        "http://169.254.10.1:7860",
        "http://[fe80::1]:7860",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]",
        "http://metadata.google.internal",
        "http://user:pw@169.254.169.254:80/sd",
    ] {
        let a = post(c, routes::BACKENDS, &json!({ "url": url })).await;
        assert_eq!(a.status, 422, "{url}: {}", a.body);
        let msg = a.body["message"].as_str().unwrap_or("");
        assert!(
            msg.contains("must not be a link-local or metadata address")
                || msg.contains("must not be a cloud metadata service"),
            "{url}: {msg}"
        );
        assert!(!msg.contains("pw@"), "no credentials in the refusal: {msg}");
    }
    assert_eq!(c.backends().await.expect("backends").len(), 1, "none added");
    for url in [
        "http://10.0.0.5:7860",
        "http://localhost:1",
        "http://[::1]:2",
    ] {
        let b = c
            .add_backend(url)
            .await
            .expect("a private or loopback backend");
        assert!(b.id.starts_with("added-"), "{url}");
    }

    // The same rule for --backend: the host does not start.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = ChildServer::start(
        "agent-scheduler",
        &host_binary(),
        vec![
            "serve".into(),
            "--data-dir".into(),
            dir.path().display().to_string(),
            "--backend".into(),
            "http://admin:secretpw@169.254.169.254".into(),
        ],
        "127.0.0.1:0",
    )
    .await
    .expect("the process starts");
    let deadline = std::time::Instant::now() + LONG;
    while child.is_running() {
        assert!(
            std::time::Instant::now() < deadline,
            "the host refuses to run"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = wait_until("its reason", LONG, || async {
        let t = child.stderr();
        t.contains("must not be").then_some(t)
    })
    .await;
    assert!(
        text.contains("must not be a link-local or metadata address (169.254.169.254)"),
        "{text}"
    );
    assert!(!text.contains("secretpw"), "{text}");
}

#[tokio::test]
async fn redirects_are_not_followed_and_backend_errors_show_short_and_plain() {
    let fake = FakeProcess::spawn(FakeArgs::fast_a()).await;
    // A backend that sends every request to the fake: following it would make it "up".
    let redirecting = answering(
        302,
        vec![("location", format!("{}/sdapi/v1/version", fake.url()))],
        String::new(),
    )
    .await;
    // A backend answering a long HTML page with control characters.
    let page = format!(
        "<html><script>alert(1)</script>\u{1b}[31m\r\n{}</html>",
        "x".repeat(5000)
    );
    let html = answering(200, vec![("content-type", "text/html".into())], page).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let host = HostProcess::spawn(dir.path(), &[redirecting.clone(), html], &[]).await;
    let c = &host.client;
    let r = backend_with_error(c, "flag-1").await;
    let e = r.last_error.clone().unwrap_or_default();
    assert!(
        e.contains("302"),
        "the redirect is an error naming its status: {e}"
    );
    assert_ne!(r.state, scheduler_api::BackendState::Up, "never followed");
    assert!(
        fake.stats().await.requests.is_empty(),
        "the fake behind the redirect got nothing"
    );
    let h = backend_with_error(c, "flag-2").await;
    let e = h.last_error.unwrap_or_default();
    assert!(
        e.chars().count() <= 200,
        "short: {} chars",
        e.chars().count()
    );
    assert!(!e.contains('<') && !e.contains('>'), "no markup: {e}");
    assert!(
        !e.chars().any(char::is_control),
        "no control characters: {e:?}"
    );
}

#[tokio::test]
async fn backend_credentials_show_in_no_answer_event_export_error_or_log() {
    let fake = FakeProcess::spawn(FakeArgs::fast_a()).await;
    let other = FakeProcess::spawn(FakeArgs::fast_a()).await;
    let with_creds = |user: &str, pw: &str, f: &FakeProcess| {
        format!("http://{user}:{pw}@127.0.0.1:{}", f.server.addr().port())
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let host = HostProcess::spawn_with_env(
        dir.path(),
        &[with_creds("admin", "secretpw", &fake)],
        &[],
        &[("RUST_LOG", "debug")],
    )
    .await;
    let c = &host.client;
    let added = c
        .add_backend(&with_creds("bob", "hunter2pw", &other))
        .await
        .expect("add");
    let id = enqueue(c, "with credentials", json!({})).await;
    wait_task_status(c, &id, TaskStatus::Done, LONG).await;
    pause(c).await;
    let pending = enqueue(c, "pending", json!({})).await;

    let mut seen = Vec::new();
    for path in [
        routes::BACKENDS.to_owned(),
        routes::QUEUE.to_owned(),
        routes::HISTORY.to_owned(),
        routes::task_path(routes::TASK, &id),
        routes::task_path(routes::TASK, &pending),
        format!("{}?limit=100", routes::EXPORT),
        routes::SETTINGS.to_owned(),
        routes::HEALTH.to_owned(),
        routes::CHECKPOINTS.to_owned(),
        routes::QUEUE_ETA.to_owned(),
        routes::task_path(routes::BACKEND, "no-such"),
    ] {
        let a = raw(c, Method::Get, &path, None).await;
        seen.push(format!("{path}: {}", a.body));
    }
    let dup = post(
        c,
        routes::BACKENDS,
        &json!({"url": with_creds("bob", "hunter2pw", &other)}),
    )
    .await;
    assert_eq!(dup.status, 409);
    seen.push(format!("duplicate: {}", dup.body));
    let bad = post(c, routes::BACKENDS, &json!({"url": "http://x:leakpw@"})).await;
    assert_eq!(bad.status, 422);
    seen.push(format!("bad: {}", bad.body));
    let sel = post(c, routes::TASKS_EXPORT, &json!({"ids": [id, pending]})).await;
    seen.push(format!("selection: {}", sel.body));
    // The event log from the start (replayed), read for a moment.
    let events = reqwest::Client::new()
        .get(format!("{}{}", host.url(), routes::EVENTS))
        .header("Last-Event-ID", "0")
        .send()
        .await
        .expect("events");
    let mut events = events;
    let mut text = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(Some(chunk)) = events.chunk().await {
            text.extend_from_slice(&chunk);
        }
    })
    .await;
    seen.push(format!("events: {}", String::from_utf8_lossy(&text)));
    seen.push(format!("log: {}", host.server.stderr()));
    assert!(
        added
            .url
            .ends_with(&format!(":{}", other.server.addr().port()))
    );

    let all = seen.join("\n");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for secret in [
        "secretpw".to_owned(),
        "hunter2pw".to_owned(),
        "leakpw".to_owned(),
        b64("admin:secretpw"),
        b64("bob:hunter2pw"),
    ] {
        let at = all.find(&secret);
        assert!(
            at.is_none(),
            "{secret} shows: …{}…",
            at.map(|i| &all[i.saturating_sub(200)..(i + 50).min(all.len())])
                .unwrap_or("")
        );
    }
    assert!(all.contains("\"success\":true"), "the answers were read");
}
