//! Callbacks ignore proxy variables (issue 15, finding 8), through the real host and fake
//! SD.Next processes: with `HTTP_PROXY`/`ALL_PROXY` pointing at a recording listener, the
//! callback still reaches its receiver directly (a proxy would resolve the name itself, past
//! the address check) and the proxy sees no connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use scheduler_api::TaskStatus;
use scheduler_tests::harness::{CallbackReceiver, FakeProcess, HostProcess, wait_task_status};
use serde_json::json;

use crate::host_support::*;

#[tokio::test]
async fn a_proxy_in_the_hosts_environment_does_not_route_callbacks() {
    // A "proxy" that only counts the connections it gets (and closes them).
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let proxy_url = format!("http://{}", proxy.local_addr().expect("addr"));
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let proxy_task = tokio::spawn(async move {
        while let Ok((s, _)) = proxy.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });

    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeProcess::spawn(FakeArgs::fast_a()).await;
    // SD.Next is reached as `localhost`, which NO_PROXY exempts; the callback goes to
    // 127.0.0.1, which a proxy-honouring client would send to the proxy.
    let backend = format!("http://localhost:{}", fake.server.addr().port());
    let host = HostProcess::spawn_with_env(
        dir.path(),
        &[backend],
        &[],
        &[
            ("HTTP_PROXY", &proxy_url),
            ("http_proxy", &proxy_url),
            ("HTTPS_PROXY", &proxy_url),
            ("ALL_PROXY", &proxy_url),
            ("NO_PROXY", "localhost"),
            ("no_proxy", "localhost"),
        ],
    )
    .await;
    let receiver = CallbackReceiver::start().await;
    let c = &host.client;
    let id = enqueue(
        c,
        "proxied?",
        json!({"callback_url": receiver.url("/hook")}),
    )
    .await;
    wait_task_status(c, &id, TaskStatus::Done, LONG).await;
    let posts = receiver.wait_for_posts(1, LONG).await;
    assert_eq!(posts[0].path, "/hook");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "the callback client never connected to the proxy"
    );
    proxy_task.abort();
}
