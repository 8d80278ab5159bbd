//! In-process tests: the real `run()` on a `127.0.0.1:0` listener, a TempDir data folder and
//! the project's fake SD.Next. No sleeps as synchronisation: conditions are awaited under a
//! deadline.

use std::future::Future;
use std::time::Duration;

use fake_sdnext::{FakeConfig, FakeConfigPatch, FakeHandle, FakeSdNext};
use scheduler_api::{EXTENSION_ORIGIN, routes};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use agent_scheduler::config::{Config, Secret};

const PNG_1PX: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

struct TestHost {
    url: String,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    join: tokio::task::JoinHandle<Result<(), agent_scheduler::RunError>>,
    dir: tempfile::TempDir,
    fake: Option<FakeHandle>,
}

async fn fake(checkpoints: &[&str]) -> FakeHandle {
    FakeSdNext::start(FakeConfig::with_checkpoints(checkpoints))
        .await
        .expect("fake starts")
}

async fn spawn_with(
    fake: FakeHandle,
    dir: tempfile::TempDir,
    edit: impl FnOnce(&mut Config),
) -> TestHost {
    let mut config = Config::for_test(&fake.url(), dir.path().to_path_buf());
    edit(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = oneshot::channel::<()>();
    let join = tokio::spawn(agent_scheduler::run(config, listener, async move {
        let _ = rx.await;
    }));
    TestHost {
        url,
        http: reqwest::Client::new(),
        stop: Some(tx),
        join,
        dir,
        fake: Some(fake),
    }
}

async fn spawn(checkpoints: &[&str]) -> TestHost {
    let f = fake(checkpoints).await;
    spawn_with(f, tempfile::tempdir().expect("tempdir"), |_| {}).await
}

impl TestHost {
    fn u(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.u(path)).send().await.expect("send");
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.u(path))
            .json(&body)
            .send()
            .await
            .expect("send");
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn post_empty(&self, path: &str) -> (u16, Value) {
        let r = self.http.post(self.u(path)).send().await.expect("send");
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn enqueue(&self, body: Value) -> String {
        let (s, v) = self.post(routes::QUEUE_TXT2IMG, body).await;
        assert_eq!(s, 200, "{v}");
        v["task_id"].as_str().expect("task_id").to_owned()
    }

    async fn task(&self, id: &str) -> Value {
        let (s, v) = self.get(&routes::task_path(routes::TASK, id)).await;
        assert_eq!(s, 200, "{v}");
        v["data"].clone()
    }

    async fn wait_status(&self, id: &str, status: &str) -> Value {
        wait_for(&format!("task {id} {status}"), || async {
            let t = self.task(id).await;
            (t["status"] == status).then_some(t)
        })
        .await
    }

    async fn queue_ids(&self) -> Vec<String> {
        let (_, v) = self.get(&format!("{}?limit=100", routes::QUEUE)).await;
        v["pending_tasks"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn fake(&self) -> &FakeHandle {
        self.fake.as_ref().expect("fake running")
    }

    async fn stop(mut self) -> (tempfile::TempDir, Option<FakeHandle>) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let r = tokio::time::timeout(Duration::from_secs(20), &mut self.join)
            .await
            .expect("host stops in time")
            .expect("join");
        r.expect("run ok");
        (self.dir, self.fake.take())
    }
}

async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_runs_and_its_results_come_back_as_png_json_zip_and_files() {
    let h = spawn(&["a", "b"]).await;
    let id = h
        .enqueue(json!({"prompt": "a cat", "steps": 2, "width": 64, "height": 64, "batch_size": 2, "name": "cat"}))
        .await;
    let t = h.wait_status(&id, "done").await;
    assert!(t["created_at"].is_string(), "ISO date in /task/{{id}}: {t}");
    assert!(t["priority"].is_i64());
    let result: Value =
        serde_json::from_str(t["result"].as_str().expect("result string")).expect("json");
    assert_eq!(result["images"].as_array().map(Vec::len), Some(2));
    // JSON results: PNG data URLs with the infotext in `parameters`.
    let (s, v) = h.get(&routes::task_path(routes::TASK_RESULTS, &id)).await;
    assert_eq!(s, 200, "{v}");
    let data = v["data"].as_array().expect("data");
    assert_eq!(data.len(), 2);
    let img = data[0]["image"].as_str().expect("image");
    assert!(img.starts_with("data:image/png;base64,"));
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(&img["data:image/png;base64,".len()..])
        .expect("b64");
    let params =
        agent_scheduler::results::image::read_png_parameters(&png).expect("parameters chunk");
    assert_eq!(params, data[0]["infotext"].as_str().expect("infotext"));
    // Stored file as stored (the fake sends JPEG by default).
    let r = h
        .http
        .get(h.u(&routes::image_path(&id, 0)))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    // Zip.
    let r = h
        .http
        .get(h.u(&format!(
            "{}?zip=true",
            routes::task_path(routes::TASK_RESULTS, &id)
        )))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-disposition"],
        format!("attachment; filename=results-{id}.zip").as_str()
    );
    let bytes = r.bytes().await.expect("zip");
    let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("zip opens");
    assert_eq!(zip.len(), 2);
    // History and request.
    let (_, hist) = h.get(&format!("{}?status=done", routes::HISTORY)).await;
    assert_eq!(hist["total"], 1);
    assert!(hist["tasks"][0]["created_at"].is_i64());
    let (s, req) = h.get(&routes::task_path(routes::TASK_REQUEST, &id)).await;
    assert_eq!(s, 200);
    assert_eq!(req["data"]["request"]["prompt"], "a cat");
    // Sent with send_images / save_images and files on disk.
    assert!(
        h.dir
            .path()
            .join("results")
            .join(&id)
            .join("0.jpg")
            .exists()
    );
    // Delete a finished task: row and files go.
    let r = h
        .http
        .delete(h.u(&routes::task_path(routes::TASK, &id)))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert!(!h.dir.path().join("results").join(&id).exists());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_tasks_are_refused_until_the_host_supports_them() {
    let h = spawn(&["a"]).await;
    let (s, v) = h
        .post(routes::QUEUE_CONTROL, json!({"prompt": "p", "control": []}))
        .await;
    assert_eq!(
        (s, v["code"].clone(), v["message"].clone()),
        (
            422,
            json!("invalid"),
            json!("control tasks are not supported yet")
        )
    );
    let (_, q) = h.get(routes::QUEUE).await;
    assert_eq!(q["total_pending_tasks"], 0, "{q}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_the_standard_body_and_truthful_status() {
    let h = spawn(&["a"]).await;
    let (s, v) = h.get(&routes::task_path(routes::TASK, "nope")).await;
    assert_eq!(
        (s, v["success"].clone(), v["code"].clone()),
        (404, json!(false), json!("task_not_found"))
    );
    let (s, _) = h.get(&routes::task_path(routes::TASK, "../etc")).await;
    assert_eq!(s, 404);
    // Malformed JSON → 400; wrong shape → 422; img2img without init image → 422.
    let r = h
        .http
        .post(h.u(routes::QUEUE_TXT2IMG))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["success"], false);
    let (s, v) = h.post(routes::QUEUE_TXT2IMG, json!([1, 2])).await;
    assert_eq!((s, v["code"].clone()), (422, json!("invalid")));
    let (s, _) = h.post(routes::QUEUE_IMG2IMG, json!({"prompt": "x"})).await;
    assert_eq!(s, 422);
    let (s, _) = h
        .post(
            routes::QUEUE_IMG2IMG,
            json!({"init_images": ["https://x/y.png"]}),
        )
        .await;
    assert_eq!(s, 422);
    let (s, _) = h
        .post(
            routes::QUEUE_IMG2IMG,
            json!({"init_images": ["/tmp/x.png"]}),
        )
        .await;
    assert_eq!(s, 422);
    let (s, _) = h
        .post(
            routes::QUEUE_TXT2IMG,
            json!({"callback_url": "file:///etc/passwd"}),
        )
        .await;
    assert_eq!(s, 422);
    let (s, _) = h
        .post(routes::QUEUE_TXT2IMG, json!({"checkpoint": "nofolder/*"}))
        .await;
    assert_eq!(s, 422);
    // Too large.
    let big = "x".repeat(2 << 20);
    let (s, v) = h
        .post(routes::QUEUE_TXT2IMG, json!({ "prompt": big }))
        .await;
    assert_eq!((s, v["code"].clone()), (413, json!("too_large")));
    // img2img accepts a large body.
    let (s, v) = h
        .post(routes::QUEUE_IMG2IMG, json!({ "init_images": [format!("data:image/png;base64,{PNG_1PX}")], "prompt": "x".repeat(2 << 20)}))
        .await;
    assert_eq!(s, 200, "{v}");
    // Unknown route: JSON 404; wrong method: JSON error.
    let (s, v) = h.get("/agent-scheduler/v1/nope").await;
    assert_eq!((s, v["success"].clone()), (404, json!(false)));
    // Rename without name → 422; PUT on a finished task → 409.
    let (s, _) = h
        .post_empty(&routes::task_path(routes::TASK_RENAME, "x"))
        .await;
    assert_eq!(s, 422);
    let (s, _) = h.get(&format!("{}?status=weird", routes::HISTORY)).await;
    assert_eq!(s, 422);
    let id = h.enqueue(json!({"prompt": "p", "steps": 1})).await;
    h.wait_status(&id, "done").await;
    let r = h
        .http
        .put(h.u(&routes::task_path(routes::TASK, &id)))
        .json(&json!({"name": "n"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 409);
    let (s, _) = h.post_empty(&routes::move_path(&id, "top")).await;
    assert_eq!(s, 409);
    let (s, _) = h
        .get(&routes::task_path(routes::TASK_RESULTS, "missing"))
        .await;
    assert_eq!(s, 404);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_host_and_token_are_enforced() {
    let f = fake(&["a"]).await;
    let h = spawn_with(f, tempfile::tempdir().expect("tmp"), |c| {
        c.token = Some(Secret("s3cret".into()));
        c.allow_origins = vec!["http://friend.example:9000".into()];
    })
    .await;
    let q = h.u(routes::QUEUE);
    let r = h.http.get(&q).send().await.expect("send");
    assert_eq!(r.status(), 401);
    let r = h
        .http
        .get(&q)
        .bearer_auth("wrong")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    let r = h
        .http
        .get(&q)
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let r = h
        .http
        .get(&q)
        .bearer_auth("s3cret")
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403);
    for ok in [
        EXTENSION_ORIGIN.to_owned(),
        h.fake().url(),
        "http://friend.example:9000".to_owned(),
    ] {
        let r = h
            .http
            .get(&q)
            .bearer_auth("s3cret")
            .header("origin", ok.as_str())
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200, "origin {ok}");
    }
    let r = h
        .http
        .get(&q)
        .bearer_auth("s3cret")
        .header("host", "attacker.example:80")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_queue_orders_moves_runs_now_and_round_trips_exports() {
    let f = fake(&["a"]).await;
    let h = spawn_with(f, tempfile::tempdir().expect("tmp"), |c| {
        c.start_paused = true
    })
    .await;
    let (_, q) = h.get(routes::QUEUE).await;
    assert_eq!(q["paused"], true);
    let mut ids = Vec::new();
    for p in ["one", "two", "three", "four"] {
        ids.push(h.enqueue(json!({"prompt": p, "steps": 1})).await);
    }
    assert_eq!(h.queue_ids().await, ids);
    h.post_empty(&routes::move_path(&ids[3], "top")).await;
    h.post_empty(&routes::move_path(&ids[0], "bottom")).await;
    h.post_empty(&routes::move_path(&ids[2], &ids[1])).await;
    let want = vec![
        ids[3].clone(),
        ids[2].clone(),
        ids[1].clone(),
        ids[0].clone(),
    ];
    assert_eq!(h.queue_ids().await, want);
    let (_, q) = h.get(routes::QUEUE).await;
    let prios: Vec<i64> = q["pending_tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["priority"].as_i64())
        .collect();
    assert!(
        prios.windows(2).all(|w| w[0] < w[1]),
        "priority sorts like the queue"
    );
    assert_eq!(q["total_pending_tasks"], 4);
    // Position.
    let (_, p) = h
        .get(&routes::task_path(routes::TASK_POSITION, &ids[1]))
        .await;
    assert_eq!(p["data"]["position"], 2);
    // Deprecated alias works.
    let (s, _) = h
        .post_empty(&format!("/agent-scheduler/v1/bookmark/{}", ids[1]))
        .await;
    assert_eq!(s, 200);
    // Search.
    let (_, found) = h.get(&format!("{}?q=thr", routes::QUEUE)).await;
    assert_eq!(found["total_pending_tasks"], 1);
    // PUT merges params.
    let r = h
        .http
        .put(h.u(&routes::task_path(routes::TASK, &ids[2])))
        .json(&json!({"params": {"prompt": "THREE", "steps": 2}, "checkpoint": "a", "name": "n3"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let t = h.task(&ids[2]).await;
    assert_eq!(
        (
            t["params"]["prompt"].clone(),
            t["params"]["checkpoint"].clone()
        ),
        (json!("THREE"), json!("a"))
    );
    // Export → import.
    let (_, exported) = h.get(routes::EXPORT).await;
    let arr = exported.as_array().expect("array");
    assert_eq!(arr.len(), 4);
    assert!(arr[0]["script_params"].is_null());
    assert!(
        arr[0]["created_at"]
            .as_i64()
            .is_some_and(|s| s < 100_000_000_000)
    );
    let original = json!([
        {"id": "x1", "type": "txt2img", "params": {"args": {"prompt": "orig"}, "checkpoint": "a", "is_ui": false, "is_img2img": false}, "script_params": "eJw="},
        {"id": "task(ui)", "type": "txt2img", "params": {"args": {"prompt": "ui"}, "is_ui": true, "is_img2img": false}}
    ]);
    let mut content = arr.clone();
    content.extend(original.as_array().expect("arr").iter().cloned());
    let (s, v) = h
        .post(
            routes::IMPORT,
            json!({"content": Value::Array(content).to_string()}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["imported"].as_array().map(Vec::len), Some(5));
    assert_eq!(v["rejected"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["rejected"][0]["index"], 5);
    assert_eq!(h.queue_ids().await.len(), 9);
    let (s, _) = h.post(routes::IMPORT, json!({"content": "not json"})).await;
    assert_eq!(s, 422);
    // Idempotency key.
    let send = || {
        h.http
            .post(h.u(routes::QUEUE_TXT2IMG))
            .header(scheduler_api::IDEMPOTENCY_KEY_HEADER, "k-1")
            .json(&json!({"prompt": "once"}))
            .send()
    };
    let a: Value = send().await.expect("send").json().await.expect("json");
    let b: Value = send().await.expect("send").json().await.expect("json");
    assert_eq!(a, b);
    assert_eq!(h.queue_ids().await.len(), 10);
    // Run now while paused: only that task runs; the queue stays paused.
    let (s, _) = h
        .post_empty(&routes::task_path(routes::TASK_RUN, &ids[0]))
        .await;
    assert_eq!(s, 200);
    h.wait_status(&ids[0], "done").await;
    assert_eq!(h.task(&ids[3]).await["status"], "pending");
    let (_, q) = h.get(routes::QUEUE).await;
    assert_eq!(q["paused"], true);
    // Requeue a copy goes to the end.
    let (_, v) = h
        .post_empty(&routes::task_path(routes::TASK_REQUEUE, &ids[0]))
        .await;
    let copy = v["task_id"].as_str().expect("copy id").to_owned();
    assert_eq!(h.queue_ids().await.last(), Some(&copy));
    // Clear keeps bookmarked pending tasks (ids[1] and its imported, still bookmarked copy).
    h.post_empty(routes::QUEUE_CLEAR).await;
    let kept = h.queue_ids().await;
    assert_eq!((kept.len(), &kept[0]), (2, &ids[1]));
    // Settings.
    let r = h
        .http
        .put(h.u(routes::SETTINGS))
        .json(&json!({"max_attempts": 5, "history_retention_days": null}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let (_, s) = h.get(routes::SETTINGS).await;
    assert_eq!(
        (
            s["max_attempts"].clone(),
            s["history_retention_days"].clone()
        ),
        (json!(5), Value::Null)
    );
    let r = h
        .http
        .put(h.u(routes::SETTINGS))
        .json(&json!({"max_attempts": 0}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 422);
    // Pause survives a restart.
    let (dir, fake) = h.stop().await;
    let h = spawn_with(fake.expect("fake"), dir, |_| {}).await;
    let (_, q) = h.get(routes::QUEUE).await;
    assert_eq!(q["paused"], true);
    assert_eq!(h.queue_ids().await, kept);
    h.post_empty(routes::QUEUE_RESUME).await;
    h.wait_status(&ids[1], "done").await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_expand_switch_only_at_transitions_and_unknown_ones_fail_without_options() {
    let h = spawn(&["a", "b", "anime/c", "anime2/d"]).await;
    let (_, models) = h.get(routes::SD_MODELS).await;
    assert_eq!(models.as_array().map(Vec::len), Some(4));
    let (s, _) = h.get(routes::SAMPLERS).await;
    assert_eq!(s, 200);
    h.post_empty(routes::QUEUE_PAUSE).await;
    let (s, v) = h
        .post(
            routes::QUEUE_TXT2IMG,
            json!({"prompt": "all", "checkpoint": "*", "steps": 1}),
        )
        .await;
    assert_eq!(s, 200);
    let all: Vec<String> = serde_json::from_value(v["task_ids"].clone()).expect("ids");
    assert_eq!(all.len(), 4);
    assert_eq!(all[1], format!("{}.1", all[0]));
    let (_, v) = h
        .post(
            routes::QUEUE_TXT2IMG,
            json!({"prompt": "folder", "checkpoint": "anime/*"}),
        )
        .await;
    assert_eq!(v["task_ids"].as_array().map(Vec::len), Some(1));
    h.post_empty(routes::QUEUE_CLEAR).await;
    h.fake().reset_stats();
    let mut ids = Vec::new();
    for (i, ck) in ["a", "a", "b", "b", "a"].iter().enumerate() {
        ids.push(
            h.enqueue(json!({"prompt": format!("p{i}"), "steps": 1, "checkpoint": ck}))
                .await,
        );
    }
    let bad = h
        .enqueue(json!({"prompt": "bad", "override_settings": {"sd_model_checkpoint": "zzz"}}))
        .await;
    h.post_empty(routes::QUEUE_RESUME).await;
    for id in &ids {
        h.wait_status(id, "done").await;
    }
    let t = h.wait_status(&bad, "failed").await;
    assert_eq!(t["error"], "checkpoint not found: zzz");
    let stats = h.fake().stats();
    assert_eq!(stats.prompts, vec!["p0", "p1", "p2", "p3", "p4"]);
    assert_eq!(stats.checkpoint_loads, 2, "loads: {:?}", stats.loads);
    assert_eq!(stats.unloads, 0);
    assert!(stats.options_posts.iter().all(|o| {
        o.keys()
            .all(|k| k == "sd_model_checkpoint" || k == "sd_vae")
    }));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_running_task_interrupts_it_and_sse_replays() {
    let f = fake(&["a"]).await;
    f.configure(&FakeConfigPatch {
        step_ms: Some(200),
        lose_first_interrupt: Some(true),
        ..Default::default()
    });
    let h = spawn_with(f, tempfile::tempdir().expect("tmp"), |_| {}).await;
    let id = h.enqueue(json!({"prompt": "long", "steps": 100})).await;
    h.wait_status(&id, "running").await;
    let (_, q) = h.get(routes::QUEUE).await;
    assert_eq!(q["current_task_id"], id.as_str());
    assert_eq!(q["pending_tasks"][0]["status"], "running");
    let r = h
        .http
        .delete(h.u(&routes::task_path(routes::TASK, &id)))
        .send()
        .await
        .expect("send");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["message"], "Task interrupted");
    let t = h.wait_status(&id, "interrupted").await;
    assert_eq!(t["image_count"], 0, "the placeholder is never stored");
    // SSE: replay everything after event 1.
    let r = h
        .http
        .get(h.u(routes::EVENTS))
        .header("last-event-id", "1")
        .send()
        .await
        .expect("send");
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut body = String::new();
    let mut stream = r.bytes_stream();
    use futures::StreamExt;
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = stream.next().await {
            body.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
            if body.contains("\"interrupted\"") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(got, "replayed events: {body}");
    assert!(body.contains("id: 2"), "{body}");
    assert!(!body.contains("id: 1\n"), "{body}");
    // Too old an id (beyond the counter) → reset.
    let r = h
        .http
        .get(h.u(routes::EVENTS))
        .header("last-event-id", "999999")
        .send()
        .await
        .expect("send");
    let mut stream = r.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("event")
        .expect("chunk")
        .expect("bytes");
    assert!(String::from_utf8_lossy(&first).contains("event: reset"));
    drop(stream);
    let (_, b) = h.get(routes::BACKENDS).await;
    assert_eq!(b[0]["state"], "up");
    let r = h.http.get(h.u(routes::DOCS)).send().await.expect("send");
    assert!(
        r.text()
            .await
            .expect("text")
            .contains(routes::QUEUE_TXT2IMG)
    );
    let (_, doc) = h.get(routes::OPENAPI).await;
    assert!(doc["paths"][routes::TASK]["delete"].is_object());
    assert!(doc["components"]["schemas"]["Task"].is_object());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_tasks_requeue_and_empty_answers_fail_with_a_reason() {
    let h = spawn(&["a"]).await;
    h.fake().configure(&FakeConfigPatch {
        fail_next_with_empty: Some(fake_sdnext::CountOrBool::Count(1)),
        ..Default::default()
    });
    let id = h.enqueue(json!({"prompt": "empty"})).await;
    let t = h.wait_status(&id, "failed").await;
    assert!(
        t["error"].as_str().is_some_and(|e| e.contains("no images")),
        "{t}"
    );
    let (_, v) = h.post_empty(routes::TASK_REQUEUE_FAILED).await;
    assert_eq!(v["success"], true);
    h.wait_status(&id, "done").await;
    let (_, v) = h.post_empty(routes::TASK_REQUEUE_FAILED).await;
    assert_eq!(v["success"], false);
    // A 429 is retried, not failed.
    h.fake().configure(&FakeConfigPatch {
        rate_limit_next: Some(fake_sdnext::CountOrBool::Count(1)),
        ..Default::default()
    });
    let id = h.enqueue(json!({"prompt": "limited"})).await;
    h.wait_status(&id, "done").await;
    // History clear removes finished non-bookmarked tasks.
    h.post_empty(routes::HISTORY_CLEAR).await;
    let (_, hist) = h.get(routes::HISTORY).await;
    assert_eq!(hist["total"], 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_outage_makes_tasks_wait_not_fail() {
    let f = fake(&["a"]).await;
    let addr = f.addr();
    let mut h = spawn_with(f, tempfile::tempdir().expect("tmp"), |_| {}).await;
    let first = h.enqueue(json!({"prompt": "before"})).await;
    h.wait_status(&first, "done").await;
    h.fake.take().expect("fake").stop().await;
    let id = h.enqueue(json!({"prompt": "during"})).await;
    wait_for("backend seen down", || async {
        let (_, b) = h.get(routes::BACKENDS).await;
        (b[0]["state"] == "down").then_some(())
    })
    .await;
    assert_ne!(h.task(&id).await["status"], "failed");
    let back = wait_for("fake back on the same port", || async {
        FakeSdNext::start(FakeConfig {
            listen: addr,
            ..FakeConfig::with_checkpoints(&["a"])
        })
        .await
        .ok()
    })
    .await;
    h.fake = Some(back);
    let t = h.wait_status(&id, "done").await;
    assert_eq!(t["attempts"], 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_arrive_with_their_files_for_done_and_failed_tasks() {
    let rx = scheduler_tests::harness::CallbackReceiver::start().await;
    let h = spawn(&["a"]).await;
    let done = h
        .enqueue(json!({"prompt": "cb", "batch_size": 2, "callback_url": rx.url("/hook")}))
        .await;
    let failed = h
        .enqueue(json!({"prompt": "cb2", "checkpoint": "nope", "callback_url": rx.url("/hook")}))
        .await;
    let posts = rx.wait_for_posts(2, Duration::from_secs(20)).await;
    let field = |p: &scheduler_tests::harness::CallbackPost, name: &str| {
        p.parts
            .iter()
            .find(|x| x.name == name)
            .map(|x| String::from_utf8_lossy(&x.data).into_owned())
    };
    let d = posts
        .iter()
        .find(|p| field(p, "task_id").as_deref() == Some(done.as_str()))
        .expect("done callback");
    assert_eq!(field(d, "status").as_deref(), Some("done"));
    let files: Vec<_> = d.parts.iter().filter(|p| p.name == "files").collect();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(files[0].file_name.as_deref(), Some("0.jpg"));
    assert!(d.header(scheduler_api::DELIVERY_ID_HEADER).is_some());
    let f = posts
        .iter()
        .find(|p| field(p, "task_id").as_deref() == Some(failed.as_str()))
        .expect("failed callback");
    assert_eq!(field(f, "status").as_deref(), Some("failed"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_task_runs_on_a_backend_that_lists_its_checkpoint() {
    let fa = fake(&["a"]).await;
    let fb = fake(&["b"]).await;
    let b_url = fb.url();
    let h = spawn_with(fa, tempfile::tempdir().expect("tmp"), |c| {
        c.backends.push(b_url)
    })
    .await;
    let (_, models) = h.get(routes::SD_MODELS).await;
    assert_eq!(models, json!(["a", "b"]));
    let (_, cks) = h.get(routes::CHECKPOINTS).await;
    assert_eq!(cks.as_array().map(Vec::len), Some(2));
    let (_, v) = h
        .post(
            routes::QUEUE_TXT2IMG,
            json!({"prompt": "every", "checkpoint": "*"}),
        )
        .await;
    let ids: Vec<String> = serde_json::from_value(v["task_ids"].clone()).expect("ids");
    assert_eq!(ids.len(), 2);
    for id in &ids {
        h.wait_status(id, "done").await;
    }
    let ta = h.task(&ids[0]).await;
    let tb = h.task(&ids[1]).await;
    assert_eq!(ta["backend"], h.fake().url().as_str());
    assert_ne!(tb["backend"], ta["backend"]);
    assert_eq!(h.fake().stats().checkpoint_loads, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_task_is_sent_as_soon_as_the_previous_returns() {
    let f = fake(&["a"]).await;
    let h = spawn_with(f, tempfile::tempdir().expect("tmp"), |c| {
        c.start_paused = true
    })
    .await;
    let mut last = String::new();
    for i in 0..40 {
        last = h
            .enqueue(json!({"prompt": format!("g{i}"), "steps": 1}))
            .await;
    }
    h.fake().reset_stats();
    h.post_empty(routes::QUEUE_RESUME).await;
    h.wait_status(&last, "done").await;
    let mut gaps = h.fake().stats().idle_gaps_us();
    gaps.sort_unstable();
    let median = gaps[gaps.len() / 2];
    eprintln!("idle gaps µs: median {median}, max {:?}", gaps.last());
    assert!(median < 50_000, "median idle gap {median} µs");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_left_running_by_a_crash_runs_again_first() {
    let dir = tempfile::tempdir().expect("tmp");
    {
        let store =
            agent_scheduler::store::Store::open(&dir.path().join("queue.sqlite3")).expect("open");
        store
            .call_sync(|c| {
                let t = |id: &str| agent_scheduler::model::NewTask {
                    id: id.into(),
                    task_type: scheduler_api::TaskType::Txt2img,
                    name: None,
                    request: json!({"prompt": id, "steps": 1})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                    page_snapshot: None,
                    checkpoint: None,
                    vae: None,
                    callback_url: None,
                    bookmarked: false,
                };
                agent_scheduler::store::tasks::insert_tasks(c, &[t("first"), t("second")], None)?;
                agent_scheduler::store::transitions::claim_next(c, "old", |_| {
                    agent_scheduler::store::transitions::Eligibility::Yes
                })?;
                Ok(())
            })
            .expect("seed");
        // An orphan file from a run that never committed.
        std::fs::create_dir_all(dir.path().join("results/first")).expect("mkdir");
        std::fs::write(dir.path().join("results/first/0.png"), b"x").expect("write");
    }
    let f = fake(&["a"]).await;
    let h = spawn_with(f, dir, |_| {}).await;
    let t = h.wait_status("first", "done").await;
    assert_eq!(t["attempts"], 1);
    h.wait_status("second", "done").await;
    assert_eq!(h.fake().stats().prompts, vec!["first", "second"]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_events_flow_while_a_task_runs() {
    let f = fake(&["a"]).await;
    f.configure(&FakeConfigPatch {
        step_ms: Some(100),
        ..Default::default()
    });
    let h = spawn_with(f, tempfile::tempdir().expect("tmp"), |_| {}).await;
    let r = h.http.get(h.u(routes::EVENTS)).send().await.expect("send");
    let id = h.enqueue(json!({"prompt": "slow", "steps": 30})).await;
    let mut stream = r.bytes_stream();
    let mut body = String::new();
    use futures::StreamExt;
    let seen = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(Ok(chunk)) = stream.next().await {
            body.push_str(&String::from_utf8_lossy(&chunk));
            if body.contains("event: progress") && body.contains(&id) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(seen, "{body}");
    assert!(body.contains("event: task"));
    drop(stream);
    h.http
        .delete(h.u(&routes::task_path(routes::TASK, &id)))
        .send()
        .await
        .expect("send");
    h.wait_status(&id, "interrupted").await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_vae_is_set_only_when_it_changes_and_unknown_ones_fail() {
    let f = FakeSdNext::start(FakeConfig {
        vaes: vec!["v1".into()],
        ..FakeConfig::with_checkpoints(&["a"])
    })
    .await
    .expect("fake");
    let h = spawn_with(f, tempfile::tempdir().expect("tmp"), |c| {
        c.start_paused = true
    })
    .await;
    let one = h.enqueue(json!({"prompt": "v", "vae": "v1"})).await;
    let two = h
        .enqueue(json!({"prompt": "v", "override_settings": {"sd_vae": "v1"}}))
        .await;
    let bad = h.enqueue(json!({"prompt": "v", "vae": "nope"})).await;
    h.post_empty(routes::QUEUE_RESUME).await;
    h.wait_status(&one, "done").await;
    h.wait_status(&two, "done").await;
    let t = h.wait_status(&bad, "failed").await;
    assert_eq!(t["error"], "vae not found: nope");
    let posts = h.fake().stats().options_posts;
    let vae_posts = posts.iter().filter(|o| o.contains_key("sd_vae")).count();
    assert_eq!(vae_posts, 1, "{posts:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_now_while_paused_leaves_the_others_waiting() {
    let h = spawn(&["a"]).await;
    h.post_empty(routes::QUEUE_PAUSE).await;
    let a = h.enqueue(json!({"prompt": "first"})).await;
    let b = h.enqueue(json!({"prompt": "second"})).await;
    let (s, v) = h
        .post(&routes::task_path(routes::TASK_RUN, &b), json!({}))
        .await;
    assert_eq!(s, 200, "{v}");
    h.wait_status(&b, "done").await;
    assert_eq!(h.queue_ids().await, vec![a]);
    assert_eq!(h.fake().stats().prompts, vec!["second"]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_host_on_the_same_data_dir_is_refused() {
    let h = spawn(&["a"]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let config = Config::for_test(&h.fake().url(), h.dir.path().to_path_buf());
    let r = agent_scheduler::run(config, listener, async {}).await;
    assert!(
        matches!(&r, Err(agent_scheduler::RunError::Config(m)) if m.contains("already using")),
        "{r:?}"
    );
    h.stop().await;
}
