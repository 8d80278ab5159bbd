//! Callbacks against hostile targets and receivers (issue 7, findings 3 and 4), through
//! the real host and fake SD.Next processes.

use std::time::Duration;

use agent_scheduler::model::NewTask;
use agent_scheduler::store::{Store, tasks};
use scheduler_api::client::Client;
use scheduler_api::{ImportResponse, TaskType, routes};
use scheduler_tests::harness::{CallbackReceiver, HostProcess, wait_for};
use serde_json::{Map, json};

use crate::host_support::*;

async fn enqueue_with_callback(c: &Client, url: &str) -> (u16, serde_json::Value) {
    let a = post(
        c,
        routes::QUEUE_TXT2IMG,
        &json!({"prompt": "cb", "steps": 2, "width": 64, "height": 64, "callback_url": url}),
    )
    .await;
    (a.status, a.body)
}

/// Finding 3: enqueue and import refuse callbacks to the host itself and to link-local or
/// metadata addresses (422, nothing queued); beyond loopback, loopback and private targets
/// need `--allow-callback-host`; a URL stored before the rules is refused at delivery and
/// never reaches the host.
#[tokio::test]
async fn callbacks_never_target_the_host_itself_or_link_local_addresses() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let mut s = ProcessStack::start(FakeArgs::fast_a(), &["--start-paused"]).await;
    let c = s.client().clone();
    let port = s.host.server.addr().port();
    let own = format!("http://127.0.0.1:{port}/agent-scheduler/v1/history/clear");
    for url in [
        own.clone(),
        format!("http://localhost:{port}/agent-scheduler/v1/history/clear"),
        format!("http://[::1]:{port}/x"),
        format!("http://0.0.0.0:{port}/x"),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://[fe80::1]/x".to_owned(),
    ] {
        let (status, body) = enqueue_with_callback(&c, &url).await;
        assert_eq!(status, 422, "{url}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or("")
                .contains("callback_url must not target"),
            "{url}: {body}"
        );
    }
    assert_eq!(queue(&c).await.total_pending_tasks, 0, "nothing was queued");
    let item = json!([{"type": "txt2img", "params": {"prompt": "imported", "callback_url": own}}]);
    let imported: ImportResponse = c
        .import(&scheduler_api::ImportRequest {
            content: item.to_string(),
        })
        .await
        .expect("import");
    assert!(imported.imported.is_empty());
    assert_eq!(imported.rejected.len(), 1);
    assert!(
        imported.rejected[0].reason.contains("host itself"),
        "{:?}",
        imported.rejected
    );
    let receiver = CallbackReceiver::start().await;
    let (status, body) = enqueue_with_callback(&c, &receiver.url("/ok")).await;
    assert_eq!(
        status, 200,
        "a loopback receiver on another port is fine: {body}"
    );

    // A URL stored before the rules existed: written straight into the database.
    let before = enqueue(&c, "kept in the history", json!({})).await;
    c.run_task(&before).await.expect("run now");
    wait_done(&c, &before).await;
    s.host.sigkill().await;
    {
        let store = Store::open(&s.dir.path().join("queue.sqlite3")).expect("open store");
        let own = own.clone();
        store
            .call_sync(move |conn| {
                tasks::insert_tasks(
                    conn,
                    &[NewTask {
                        id: "legacy-callback".into(),
                        task_type: TaskType::Txt2img,
                        name: None,
                        request: Map::from_iter([
                            ("prompt".to_owned(), json!("legacy")),
                            ("steps".to_owned(), json!(2)),
                        ]),
                        page_snapshot: None,
                        checkpoint: None,
                        vae: None,
                        callback_url: Some(own.clone()),
                        bookmarked: false,
                        group_id: None,
                    }],
                    None,
                    agent_scheduler::clock::Clock::system().now_ms(),
                )
            })
            .expect("insert");
    }
    s.host.restart().await;
    let c = s.client().clone();
    c.run_task("legacy-callback").await.expect("run now");
    wait_done(&c, "legacy-callback").await;
    wait_for("the stored callback to be refused", LONG, || async {
        s.host
            .server
            .stderr()
            .contains("refused: callback_url must not target")
    })
    .await;
    assert_eq!(
        history(&c, scheduler_api::HistoryFilter::All).await.total,
        2,
        "the history was not cleared by the callback"
    );

    // Beyond loopback: loopback and private targets only when allowed.
    let dir = tempfile::tempdir().expect("tempdir");
    let open = HostProcess::spawn_on(
        dir.path(),
        &[s.fake.url()],
        &["--token", "t0k", "--start-paused"],
        "0.0.0.0:0",
    )
    .await;
    let oc = Client::new(&open.url()).with_token(Some("t0k".into()));
    let (status, body) = enqueue_with_callback(&oc, &receiver.url("/private")).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("--allow-callback-host"),
        "{body}"
    );
    let dir2 = tempfile::tempdir().expect("tempdir");
    let allowed = HostProcess::spawn_on(
        dir2.path(),
        &[s.fake.url()],
        &["--token", "t0k", "--allow-callback-host", "127.0.0.0/8"],
        "0.0.0.0:0",
    )
    .await;
    let ac = Client::new(&allowed.url()).with_token(Some("t0k".into()));
    let (status, body) = enqueue_with_callback(&ac, &receiver.url("/allowed")).await;
    assert_eq!(status, 200, "{body}");
    let posts = receiver.wait_for_posts(1, LONG).await;
    let allowed_post = posts
        .iter()
        .find(|p| p.path == "/allowed")
        .expect("delivered to the allowed receiver");
    assert_eq!(
        allowed_post.header("authorization"),
        None,
        "the host's token is never sent"
    );
}

/// Finding 4: deliveries run concurrently, in order per receiver: a good callback behind
/// two hanging ones (one receiver), a huge one and a failing one arrives without waiting for
/// them; shutdown takes under 5 s with deliveries in flight, which resume after a restart.
#[tokio::test]
async fn callbacks_run_concurrently_in_order_per_receiver_and_shutdown_is_prompt() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let mut s = ProcessStack::start(FakeArgs::fast_a(), &[]).await;
    let c = s.client().clone();
    let hanging = CallbackReceiver::start().await;
    hanging.set_hang(true);
    let huge = CallbackReceiver::start().await;
    huge.set_body_mib(256);
    let failing = CallbackReceiver::start().await;
    failing.set_status(500);
    let good = CallbackReceiver::start().await;
    for url in [
        hanging.url("/1"),
        hanging.url("/2"),
        huge.url("/huge"),
        failing.url("/500"),
        good.url("/good"),
    ] {
        let (status, body) = enqueue_with_callback(&c, &url).await;
        assert_eq!(status, 200, "{body}");
    }
    // Serial delivery would hold the good callback for 2 × 30 s behind the hanging ones.
    let posts = good.wait_for_posts(1, Duration::from_secs(20)).await;
    assert_eq!(posts[0].path, "/good");
    huge.wait_for_posts(1, LONG).await;
    failing.wait_for_posts(1, LONG).await;
    // The first delivery to the hanging receiver arrives (on a busy machine it may come
    // after the others); the second, queued before the good one that already arrived, waits
    // for it.
    wait_for("the first hanging delivery to arrive", LONG, || async {
        hanging.arrivals() >= 1
    })
    .await;
    assert_eq!(
        hanging.arrivals(),
        1,
        "one delivery at a time per receiver: the second waits for the first"
    );

    let took = s
        .host
        .server
        .terminate(Duration::from_secs(5))
        .await
        .expect("the host stops within 5 s with a delivery in flight");
    assert!(took < Duration::from_secs(5));
    hanging.set_hang(false);
    s.host.restart().await;
    let posts = hanging.wait_for_posts(2, LONG).await;
    let paths: Vec<&str> = posts.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, vec!["/1", "/2"], "in order, after the restart");
    assert_eq!(
        huge.posts().len(),
        1,
        "a huge answer is a success, not a retry"
    );
}
