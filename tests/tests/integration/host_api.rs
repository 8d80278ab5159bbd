//! Every AgentScheduler endpoint of the host with its error cases, through HTTP against the
//! real binary (the queue is paused so nothing runs unless a test says so).

use scheduler_api::{
    BackendInfo, HistoryResponse, MessageResponse, QueueResponse, Settings, TaskStatus, TaskType,
    routes,
};
use serde_json::{Value, json};

use crate::host_support::*;

async fn paused_stack() -> Stack {
    let s = Stack::start(
        FakeArgs::new()
            .step_ms(1)
            .checkpoints(&["a", "b"])
            .vae("v1")
            .loaded("a"),
        &[],
    )
    .await;
    pause(s.client()).await;
    s
}

fn is_error_body(v: &Value) -> bool {
    v["success"] == false && v["message"].as_str().is_some_and(|m| !m.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_listing_pages_and_positions_and_keeps_original_types() {
    let s = paused_stack().await;
    let c = s.client();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(enqueue(c, &format!("task {i}"), json!({})).await);
    }
    let q = get(c, &format!("{}?limit=2&offset=1", routes::QUEUE)).await;
    assert_eq!(q.status, 200);
    assert!(
        q.body["pending_tasks"][0]["created_at"].is_i64(),
        "epoch ms"
    );
    assert!(q.body["pending_tasks"][0]["priority"].is_i64());
    let q: QueueResponse = q.json();
    assert_eq!(q.total_pending_tasks, 5);
    assert!(q.paused);
    assert_eq!(q.current_task_id, None);
    let page: Vec<_> = q.pending_tasks.iter().map(|t| t.id.clone()).collect();
    assert_eq!(page, ids[1..3].to_vec());
    assert_eq!(q.pending_tasks[0].position, Some(1));
    let all = queue(c).await;
    let pr: Vec<i64> = all.pending_tasks.iter().map(|t| t.priority).collect();
    assert!(
        pr.windows(2).all(|w| w[0] < w[1]),
        "priority sorts like the queue: {pr:?}"
    );

    let one = get(c, &task_route(routes::TASK, &ids[0])).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["success"], true);
    assert!(
        one.body["data"]["created_at"].is_string(),
        "ISO string in /task/{{id}}"
    );
    assert_eq!(one.body["data"]["params"]["prompt"], "task 0");

    let pos = get(c, &task_route(routes::TASK_POSITION, &ids[3])).await;
    assert_eq!(pos.status, 200);
    assert_eq!(pos.body["data"]["position"], 3);
    assert_eq!(pos.body["data"]["status"], "pending");

    let missing = get(c, &task_route(routes::TASK, "no-such-task")).await;
    assert_eq!(missing.status, 404);
    assert!(is_error_body(&missing.body), "{}", missing.body);
    let missing = get(c, &task_route(routes::TASK_POSITION, "no-such-task")).await;
    assert_eq!(missing.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_put_tasks_top_bottom_and_before_another() {
    let s = paused_stack().await;
    let c = s.client();
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(enqueue(c, &format!("m{i}"), json!({})).await);
    }
    let mv = |id: &str, over: &str| routes::move_path(id, over);
    assert_eq!(post(c, &mv(&ids[3], "top"), &json!({})).await.status, 200);
    assert_eq!(
        queue_ids(c).await,
        vec![
            ids[3].clone(),
            ids[0].clone(),
            ids[1].clone(),
            ids[2].clone()
        ]
    );
    assert_eq!(
        post(c, &mv(&ids[3], "bottom"), &json!({})).await.status,
        200
    );
    assert_eq!(queue_ids(c).await, ids);
    // Before another task (the original's drop-over semantics).
    assert_eq!(post(c, &mv(&ids[0], &ids[2]), &json!({})).await.status, 200);
    assert_eq!(
        queue_ids(c).await,
        vec![
            ids[1].clone(),
            ids[0].clone(),
            ids[2].clone(),
            ids[3].clone()
        ]
    );
    // The latest move to top wins.
    post(c, &mv(&ids[2], "top"), &json!({})).await;
    post(c, &mv(&ids[3], "top"), &json!({})).await;
    assert_eq!(
        queue_ids(c).await[..2].to_vec(),
        vec![ids[3].clone(), ids[2].clone()]
    );
    // The deprecated alias works too.
    let alias = format!("/agent-scheduler/v1/move/{}/bottom", ids[3]);
    assert_eq!(post(c, &alias, &json!({})).await.status, 200);
    assert_eq!(queue_ids(c).await.last(), Some(&ids[3]));
    let bad = post(c, &mv("no-such-task", "top"), &json!({})).await;
    assert_eq!(bad.status, 404);
    let bad = post(c, &mv(&ids[0], "no-such-task"), &json!({})).await;
    assert_eq!(bad.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_is_a_shallow_merge_on_pending_tasks_only() {
    let s = paused_stack().await;
    let c = s.client();
    let id = enqueue(c, "before", json!({"steps": 3, "cfg_scale": 5})).await;
    let edited = put(
        c,
        &task_route(routes::TASK, &id),
        &json!({"name": "renamed", "checkpoint": "b", "params": {"prompt": "after", "steps": 9}}),
    )
    .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    let t = c.task(&id).await.unwrap();
    assert_eq!(t.name.as_deref(), Some("renamed"));
    assert_eq!(t.params["prompt"], "after");
    assert_eq!(t.params["steps"], 9);
    assert_eq!(t.params["cfg_scale"], 5, "untouched fields stay");
    assert_eq!(t.params["checkpoint"], "b");
    let bad = put(
        c,
        &task_route(routes::TASK, &id),
        &json!({"params": "nope"}),
    )
    .await;
    assert_eq!(
        (
            bad.status,
            bad.body["code"].clone(),
            bad.body["message"].clone()
        ),
        (
            422,
            json!("invalid"),
            json!(
                "invalid body: invalid type: string \"nope\", expected a map at line 1 column 16"
            )
        )
    );
    assert_eq!(
        c.task(&id).await.unwrap().params["prompt"],
        "after",
        "bad input changes nothing"
    );

    // A finished task cannot be edited.
    let r = post(c, &task_route(routes::TASK_RUN, &id), &json!({})).await;
    assert_eq!(r.status, 200);
    wait_finished(c, &id).await;
    let late = put(c, &task_route(routes::TASK, &id), &json!({"name": "x"})).await;
    assert_eq!(late.status, 409, "{}", late.body);
    assert!(is_error_body(&late.body));
    let missing = put(
        c,
        &task_route(routes::TASK, "no-such-task"),
        &json!({"name": "x"}),
    )
    .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_filters_bookmarks_renames_requeues_and_clears() {
    let s = paused_stack().await;
    let c = s.client();
    let ok1 = enqueue(c, "alpha cat", json!({})).await;
    let ok2 = enqueue(c, "beta dog", json!({})).await;
    // Passes the door, fails at SD.Next (422 "Always on script not found").
    let bad = enqueue(
        c,
        "gamma",
        json!({"alwayson_scripts": {"nope": {"args": []}}}),
    )
    .await;
    resume(c).await;
    wait_done(c, &ok1).await;
    wait_done(c, &ok2).await;
    wait_finished(c, &bad).await;
    pause(c).await;

    let all: HistoryResponse = get(c, &format!("{}{}", routes::HISTORY, ""))
        .await
        .json::<HistoryResponse>();
    assert_eq!(all.total, 3);
    assert_eq!(all.tasks[0].id, bad, "newest first");
    assert!(get(c, routes::HISTORY).await.body["tasks"][0]["created_at"].is_i64());
    assert_eq!(
        get(c, &format!("{}{}", routes::HISTORY, "?status=done"))
            .await
            .json::<HistoryResponse>()
            .total,
        2
    );
    assert_eq!(
        get(c, &format!("{}{}", routes::HISTORY, "?status=failed"))
            .await
            .json::<HistoryResponse>()
            .total,
        1
    );
    assert_eq!(
        get(c, &format!("{}{}", routes::HISTORY, "?status=interrupted"))
            .await
            .json::<HistoryResponse>()
            .total,
        0
    );
    assert_eq!(
        get(c, &format!("{}{}", routes::HISTORY, "?status=all&limit=1"))
            .await
            .json::<HistoryResponse>()
            .tasks
            .len(),
        1
    );
    assert_eq!(
        get(c, &format!("{}{}", routes::HISTORY, "?status=all&limit=1"))
            .await
            .json::<HistoryResponse>()
            .total,
        3
    );

    let b = post(c, &task_route(routes::TASK_BOOKMARK, &ok1), &json!({})).await;
    assert_eq!(b.status, 200);
    let bm = get(c, &format!("{}{}", routes::HISTORY, "?status=bookmarked"))
        .await
        .json::<HistoryResponse>();
    assert_eq!(bm.total, 1, "total honours the bookmark filter");
    assert_eq!(bm.tasks[0].id, ok1);
    assert!(bm.tasks[0].bookmarked);

    let rn = post(
        c,
        &format!("{}?name=My%20Fox", task_route(routes::TASK_RENAME, &ok2)),
        &json!({}),
    )
    .await;
    assert_eq!(rn.status, 200, "{}", rn.body);
    assert_eq!(c.task(&ok2).await.unwrap().name.as_deref(), Some("My Fox"));
    let no_name = post(c, &task_route(routes::TASK_RENAME, &ok2), &json!({})).await;
    assert_eq!(
        (no_name.status, no_name.body["message"].clone()),
        (422, json!("invalid query: missing field `name`"))
    );

    // Full-text search, answered by the host.
    let found = get(c, &format!("{}{}", routes::HISTORY, "?q=beta"))
        .await
        .json::<HistoryResponse>();
    assert_eq!(found.total, 1);
    assert_eq!(found.tasks[0].id, ok2);
    assert_eq!(
        get(c, &format!("{}{}", routes::HISTORY, "?q=fox"))
            .await
            .json::<HistoryResponse>()
            .total,
        1,
        "names are searched too"
    );

    // Requeue makes a copy at the end of the queue.
    let other = enqueue(c, "queued later", json!({})).await;
    let rq = post(c, &task_route(routes::TASK_REQUEUE, &ok2), &json!({})).await;
    assert_eq!(rq.status, 200, "{}", rq.body);
    let ids = queue_ids(c).await;
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], other, "the copy goes to the end");
    let copy = c.task(&ids[1]).await.unwrap();
    assert_eq!(copy.name.as_deref(), Some("Copy of My Fox"));
    assert_eq!(copy.params["prompt"], "beta dog");
    assert_eq!(copy.status, TaskStatus::Pending);
    assert!(!copy.bookmarked);

    let ub = post(c, &task_route(routes::TASK_UNBOOKMARK, &ok1), &json!({})).await;
    assert_eq!(ub.status, 200);
    assert_eq!(
        get(c, &format!("{}{}", routes::HISTORY, "?status=bookmarked"))
            .await
            .json::<HistoryResponse>()
            .total,
        0
    );
    post(c, &task_route(routes::TASK_BOOKMARK, &ok1), &json!({})).await;

    // Deleting a finished task removes it and its files.
    let files = s.dir.path().join("results").join(&ok2);
    assert!(files.is_dir(), "results stored under the data directory");
    let d = delete(c, &task_route(routes::TASK, &ok2)).await;
    assert_eq!(d.status, 200);
    assert_eq!(c.task(&ok2).await.unwrap_err().status(), Some(404));
    assert!(!files.exists());
    assert_eq!(delete(c, &task_route(routes::TASK, &ok2)).await.status, 404);

    // Clearing history keeps bookmarked tasks.
    let cl = post(c, routes::HISTORY_CLEAR, &json!({})).await;
    assert_eq!(cl.status, 200);
    let left = get(c, &format!("{}{}", routes::HISTORY, ""))
        .await
        .json::<HistoryResponse>();
    assert_eq!(left.total, 1);
    assert_eq!(left.tasks[0].id, ok1);
    assert!(s.dir.path().join("results").join(&ok1).is_dir());

    // Clearing the queue keeps bookmarked pending tasks.
    let keep = enqueue(c, "keep me", json!({})).await;
    post(c, &task_route(routes::TASK_BOOKMARK, &keep), &json!({})).await;
    let cl = post(c, routes::QUEUE_CLEAR, &json!({})).await;
    assert_eq!(cl.status, 200);
    assert_eq!(queue_ids(c).await, vec![keep]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_clear_errors_and_change_nothing() {
    let s = paused_stack().await;
    let c = s.client();
    let raw = |path: &str, body: &'static str| {
        c.raw(scheduler_api::client::Method::Post, path)
            .body(body, "application/json")
            .send()
    };
    let r = raw(routes::QUEUE_TXT2IMG, "{not json").await.unwrap();
    assert_eq!(r.status, 400);
    let body: MessageResponse = r.json().expect("error body");
    assert_eq!(
        (body.success, body.code, body.message.as_str()),
        (
            false,
            Some(scheduler_api::ErrorCode::BadRequest),
            "malformed JSON body: key must be a string at line 1 column 2"
        )
    );
    let r = raw(routes::QUEUE_TXT2IMG, "[1,2]").await.unwrap();
    assert_eq!(r.status, 422);
    let body: MessageResponse = r.json().expect("error body");
    assert_eq!(
        (body.code, body.message.as_str()),
        (
            Some(scheduler_api::ErrorCode::Invalid),
            "invalid body: invalid type: sequence, expected struct EnqueueRequest at line 1 column 0"
        )
    );

    let refusal = |a: Answer| (a.status, a.body["code"].clone(), a.body["message"].clone());
    let invalid = |m: &str| (422, json!("invalid"), json!(m));
    let a = post(c, routes::QUEUE_IMG2IMG, &json!({"prompt": "no init"})).await;
    assert_eq!(refusal(a), invalid("img2img needs init_images"));
    let not_inline =
        "init_images[0] must be base64 or a data URL (URLs and file paths are not accepted)";
    let a = post(
        c,
        routes::QUEUE_IMG2IMG,
        &json!({"init_images": ["http://example.invalid/x.png"]}),
    )
    .await;
    assert_eq!(refusal(a), invalid(not_inline), "URLs are refused");
    let a = post(
        c,
        routes::QUEUE_IMG2IMG,
        &json!({"init_images": ["/etc/passwd"]}),
    )
    .await;
    assert_eq!(refusal(a), invalid(not_inline), "file paths are refused");
    let a = post(
        c,
        routes::QUEUE_TXT2IMG,
        &json!({"prompt": "x", "callback_url": "file:///tmp/x"}),
    )
    .await;
    assert_eq!(
        refusal(a),
        invalid("callback_url must be an http or https URL")
    );
    let a = post(
        c,
        routes::QUEUE_TXT2IMG,
        &json!({"prompt": "x", "checkpoint": "nofolder/*"}),
    )
    .await;
    assert_eq!(refusal(a), invalid("no checkpoints in folder `nofolder`"));

    // 1 MiB is the limit for txt2img.
    let big = json!({"prompt": "x".repeat(2 * 1024 * 1024)});
    // On its own connection: a 413 answers before the body is read, and closes it.
    let a = post(
        &scheduler_api::client::Client::new(c.base()),
        routes::QUEUE_TXT2IMG,
        &big,
    )
    .await;
    assert_eq!(
        (a.status, a.body["code"].clone(), a.body["message"].clone()),
        (
            413,
            json!("too_large"),
            json!("Failed to buffer the request body: length limit exceeded")
        )
    );
    // …but an img2img body may carry a few MiB of image.
    let data = png_data_url();
    let a = post(
        c,
        routes::QUEUE_IMG2IMG,
        &json!({"init_images": [data], "prompt": "p".repeat(3 * 1024 * 1024)}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);

    assert_eq!(
        queue(c).await.total_pending_tasks,
        1,
        "only the valid task was queued"
    );
    let nf = get(c, "/agent-scheduler/v1/nope").await;
    assert_eq!(
        (
            nf.status,
            nf.body["code"].clone(),
            nf.body["message"].clone()
        ),
        (404, json!("not_found"), json!("Not found"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_are_lifted_into_the_task_and_idempotency_keys_dedupe() {
    let s = paused_stack().await;
    let c = s.client();
    let id = enqueue(
        c,
        "lifted",
        json!({"override_settings": {"sd_model_checkpoint": "b", "sd_vae": "v1", "clip_skip": 2}}),
    )
    .await;
    let t = c.task(&id).await.unwrap();
    assert_eq!(t.params["checkpoint"], "b");
    assert_eq!(t.params["vae"], "v1");
    let req = get(c, &task_route(routes::TASK_REQUEST, &id)).await;
    assert_eq!(req.status, 200);
    let ov = &req.body["data"]["request"]["override_settings"];
    assert!(ov.get("sd_model_checkpoint").is_none(), "{}", req.body);
    assert_eq!(ov["clip_skip"], 2, "other overrides pass through");

    let once = body(json!({"prompt": "once"}));
    let send = |key: &'static str| c.enqueue_idempotent(TaskType::Txt2img, &once, key);
    let first = send("k-1").await.unwrap();
    let again = send("k-1").await.unwrap();
    assert_eq!(first, again);
    let other = send("k-2").await.unwrap();
    assert_ne!(first.task_id, other.task_id);
    assert_eq!(queue(c).await.total_pending_tasks, 3);

    // Search on the queue.
    let q: QueueResponse = get(c, &format!("{}?q=lifted", routes::QUEUE)).await.json();
    assert_eq!(q.pending_tasks.len(), 1);
    assert_eq!(q.pending_tasks[0].id, id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_settings_backends_and_docs() {
    let s = paused_stack().await;
    let c = s.client();
    let models = get(c, routes::SD_MODELS).await;
    assert_eq!(models.status, 200);
    assert_eq!(models.body, json!(["a", "b"]));
    let samplers = get(c, routes::SAMPLERS).await;
    let names = samplers.body.as_array().expect("names");
    assert!(names.iter().any(|n| n == "Euler a"));

    let st: Settings = get(c, routes::SETTINGS).await.json();
    assert_eq!(st, Settings::default());
    let edited = put(
        c,
        routes::SETTINGS,
        &json!({"history_retention_days": null, "max_attempts": 5}),
    )
    .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    let st: Settings = get(c, routes::SETTINGS).await.json();
    assert_eq!(st.history_retention_days, None);
    assert_eq!(st.max_attempts, 5);
    let bad = put(c, routes::SETTINGS, &json!({"max_attempts": 0})).await;
    assert_eq!(bad.status, 422);
    assert_eq!(
        get(c, routes::SETTINGS)
            .await
            .json::<Settings>()
            .max_attempts,
        5
    );

    let b: Vec<BackendInfo> = get(c, routes::BACKENDS).await.json();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].url, s.fake().url());

    let api = get(c, routes::OPENAPI).await;
    assert_eq!(api.status, 200);
    assert!(api.body["paths"].get(routes::QUEUE_TXT2IMG).is_some());
    let html = c.docs().await.unwrap();
    assert!(
        html.starts_with("<!doctype html>"),
        "{}",
        &html[..80.min(html.len())]
    );
    assert!(!html.contains("https://"), "the docs page works offline");
}
