//! The host in this process (`agent_scheduler::run` on `127.0.0.1:0`, a temporary data
//! folder, the in-process fake SD.Next), driven through the typed client. Each assertion
//! names the one answer it expects; raw requests are used only for malformed input and for
//! what the typed client cannot send (a foreign Origin or Host).

use std::time::Duration;

use agent_scheduler::config::Config;
use fake_sdnext::{CountOrBool, FakeConfig, FakeConfigPatch, FakeSdNext};
use scheduler_api::client::{Client, Method, StreamItem};
use scheduler_api::{
    BackendState, EnqueueRequest, ErrorCode, Event, HistoryFilter, ImportRequest, ListQuery,
    MoveTarget, SettingsPatch, TaskStatus, TaskType, UpdateTaskRequest, routes,
};
use scheduler_tests::fake_args::FakeArgs;
use scheduler_tests::harness::wait_until;
use scheduler_tests::inprocess::{DEADLINE, InProcessHost, fake, fake_with_args, refused};
use serde_json::{Value, json};

fn body(v: Value) -> EnqueueRequest {
    serde_json::from_value(v).expect("an enqueue body")
}

async fn enqueue(h: &InProcessHost, v: Value) -> String {
    h.api
        .enqueue(TaskType::Txt2img, &body(v))
        .await
        .expect("enqueue")
        .task_id
}

/// A raw request's status and `{success, message, code}` body.
async fn raw(c: &Client, method: Method, path: &str, bytes: Option<&[u8]>) -> (u16, Value) {
    let mut r = c.raw(method, path);
    if let Some(b) = bytes {
        r = r.body(b.to_vec(), "application/json");
    }
    let resp = r.send().await.expect("the host answers");
    (resp.status, resp.json().unwrap_or(Value::Null))
}

/// Reads an event stream until `done` says so (at most `secs` seconds).
async fn read_events(
    stream: &mut scheduler_api::client::EventStream,
    secs: u64,
    mut done: impl FnMut(&[(Option<u64>, Event)]) -> bool,
) -> Vec<(Option<u64>, Event)> {
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(secs), async {
        while let Some(item) = stream.next().await {
            if let StreamItem::Event { id, event } = item {
                seen.push((id, event));
                if done(&seen) {
                    return;
                }
            }
        }
    })
    .await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_runs_and_its_results_come_back_as_png_json_zip_and_files() {
    let h = InProcessHost::start(&["a", "b"]).await;
    let id = enqueue(
        &h,
        json!({"prompt": "a cat", "steps": 2, "width": 64, "height": 64, "batch_size": 2, "name": "cat"}),
    )
    .await;
    let t = h.wait_status(&id, TaskStatus::Done).await;
    assert!(
        matches!(t.created_at, scheduler_api::WireTime::Iso(_)),
        "ISO date in /task/{{id}}: {t:?}"
    );
    let result: scheduler_api::TaskResult =
        serde_json::from_str(t.result.as_deref().expect("result string")).expect("result JSON");
    assert_eq!(result.images.len(), 2);
    // JSON results: PNG data URLs with the infotext in `parameters`.
    let data = h.api.results(&id).await.expect("results");
    assert_eq!(data.len(), 2);
    let png = data[0]
        .image
        .strip_prefix("data:image/png;base64,")
        .expect("a PNG data URL");
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(png)
        .expect("base64");
    let params =
        agent_scheduler::results::image::read_png_parameters(&png).expect("parameters chunk");
    assert_eq!(params, data[0].infotext);
    // The stored file as stored (the fake sends JPEG by default).
    let file = h.api.image(&id, 0).await.expect("image");
    assert_eq!(file.content_type, "image/jpeg");
    // Zip.
    let resp = h
        .api
        .raw(
            Method::Get,
            &format!("{}?zip=true", routes::task_path(routes::TASK_RESULTS, &id)),
        )
        .send()
        .await
        .expect("zip");
    assert_eq!(
        resp.header("content-disposition"),
        Some(format!("attachment; filename=results-{id}.zip").as_str())
    );
    let zip = zip::ZipArchive::new(std::io::Cursor::new(resp.body)).expect("zip opens");
    assert_eq!(zip.len(), 2);
    // History and request.
    let hist = h
        .api
        .history(
            HistoryFilter::Status(TaskStatus::Done),
            &ListQuery::default(),
        )
        .await
        .expect("history");
    assert_eq!(hist.total, 1);
    assert!(matches!(
        hist.tasks[0].created_at,
        scheduler_api::WireTime::Epoch(_)
    ));
    let req = h.api.task_request(&id).await.expect("request");
    assert_eq!(req.request["prompt"], "a cat");
    assert!(
        h.dir
            .path()
            .join("results")
            .join(&id)
            .join("0.jpg")
            .exists()
    );
    // Delete a finished task: row and files go.
    let m = h.api.delete_task(&id).await.expect("delete");
    assert_eq!(m.message, "Task deleted");
    assert!(!h.dir.path().join("results").join(&id).exists());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_the_standard_body_and_truthful_status() {
    let h = InProcessHost::start(&["a"]).await;
    let c = &h.api;
    let e = refused(c.task("nope").await, 404, "Task not found");
    assert_eq!(e.code, Some(ErrorCode::TaskNotFound));
    refused(c.task("../etc").await, 404, "Task not found");
    // Malformed, wrong-shaped, invalid and too large bodies: host_api.rs
    // (bad_bodies_get_clear_errors_and_change_nothing).
    // Rename without a name: 422; unknown history filter: 422.
    let (s, v) = raw(
        c,
        Method::Post,
        &routes::task_path(routes::TASK_RENAME, "x"),
        None,
    )
    .await;
    assert_eq!(
        (s, v["message"].clone()),
        (422, json!("invalid query: missing field `name`"))
    );
    let (s, v) = raw(
        c,
        Method::Get,
        &format!("{}?status=weird", routes::HISTORY),
        None,
    )
    .await;
    assert_eq!(
        (s, v["message"].clone()),
        (
            422,
            json!(
                "invalid query: unknown status filter `weird` (all, bookmarked, done, failed, interrupted)"
            )
        )
    );
    // Wrong state: 409.
    let id = enqueue(&h, json!({"prompt": "p", "steps": 1})).await;
    h.wait_status(&id, TaskStatus::Done).await;
    let edit = UpdateTaskRequest {
        name: Some("n".into()),
        ..Default::default()
    };
    let e = refused(c.update_task(&id, &edit).await, 409, "Task is done");
    assert_eq!(e.code, Some(ErrorCode::Conflict));
    refused(
        c.move_task(&id, &MoveTarget::Top).await,
        409,
        "Task is done",
    );
    refused(c.run_task(&id).await, 409, "Task is done");
    refused(c.results("missing").await, 404, "Task not found");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_queue_orders_moves_runs_now_and_round_trips_exports() {
    let f = fake(&["a"]).await;
    let h = InProcessHost::start_with(f, tempfile::tempdir().expect("tmp"), |c| {
        c.start_paused = true
    })
    .await;
    let c = &h.api;
    assert!(c.queue(&ListQuery::default()).await.expect("queue").paused);
    let mut ids = Vec::new();
    for p in ["one", "two", "three", "four"] {
        ids.push(enqueue(&h, json!({"prompt": p, "steps": 1})).await);
    }
    assert_eq!(h.queue_ids().await, ids);
    let moved = |id: &str, t: MoveTarget| {
        let (c, id) = (c.clone(), id.to_owned());
        async move { c.move_task(&id, &t).await.expect("move").message }
    };
    assert_eq!(moved(&ids[3], MoveTarget::Top).await, "Task moved to top");
    assert_eq!(
        moved(&ids[0], MoveTarget::Bottom).await,
        "Task moved to bottom"
    );
    assert_eq!(
        moved(&ids[2], MoveTarget::Before(ids[1].clone())).await,
        "Task moved"
    );
    let want = vec![
        ids[3].clone(),
        ids[2].clone(),
        ids[1].clone(),
        ids[0].clone(),
    ];
    assert_eq!(h.queue_ids().await, want);
    let q = c.queue(&ListQuery::default()).await.expect("queue");
    let prios: Vec<i64> = q.pending_tasks.iter().map(|t| t.priority).collect();
    assert!(
        prios.windows(2).all(|w| w[0] < w[1]),
        "priority sorts like the queue: {prios:?}"
    );
    assert_eq!(q.total_pending_tasks, 4);
    assert_eq!(
        c.position(&ids[1]).await.expect("position").position,
        Some(2)
    );
    // A deprecated alias works.
    let (s, v) = raw(
        c,
        Method::Post,
        &format!("/agent-scheduler/v1/bookmark/{}", ids[1]),
        None,
    )
    .await;
    assert_eq!((s, v["message"].clone()), (200, json!("Task bookmarked")));
    // Search.
    let found = c
        .queue(&ListQuery {
            q: Some("thr".into()),
            ..Default::default()
        })
        .await
        .expect("search");
    assert_eq!(found.total_pending_tasks, 1);
    // PUT merges params.
    let edit = UpdateTaskRequest {
        params: json!({"prompt": "THREE", "steps": 2}).as_object().cloned(),
        checkpoint: Some("a".into()),
        name: Some("n3".into()),
    };
    assert_eq!(
        c.update_task(&ids[2], &edit).await.expect("put").message,
        "Task updated."
    );
    let t = c.task(&ids[2]).await.expect("task");
    assert_eq!(
        (t.params["prompt"].clone(), t.params["checkpoint"].clone()),
        (json!("THREE"), json!("a"))
    );
    // Export, then import it with two tasks of the original extension.
    let exported = c.export(None, None).await.expect("export");
    assert_eq!(exported.len(), 4);
    assert_eq!(exported[0].script_params, None);
    assert!(
        exported[0]
            .created_at
            .as_ref()
            .and_then(Value::as_i64)
            .is_some_and(|s| s < 100_000_000_000),
        "epoch seconds"
    );
    let mut content = serde_json::to_value(&exported).expect("json");
    content.as_array_mut().expect("array").extend([
        json!({"id": "x1", "type": "txt2img", "params": {"args": {"prompt": "orig"}, "checkpoint": "a", "is_ui": false, "is_img2img": false}, "script_params": "eJw="}),
        json!({"id": "task(ui)", "type": "txt2img", "params": {"args": {"prompt": "ui"}, "is_ui": true, "is_img2img": false}}),
    ]);
    let v = c
        .import(&ImportRequest {
            content: content.to_string(),
        })
        .await
        .expect("import");
    assert_eq!((v.imported.len(), v.rejected.len()), (5, 1));
    assert_eq!(v.rejected[0].index, 5);
    assert_eq!(h.queue_ids().await.len(), 9);
    refused(
        c.import(&ImportRequest {
            content: "not json".into(),
        })
        .await,
        422,
        "Import failed: content is not JSON: expected ident at line 1 column 2",
    );
    // Idempotency key: the same answer, one task.
    let once = body(json!({"prompt": "once"}));
    let a = c
        .enqueue_idempotent(TaskType::Txt2img, &once, "k-1")
        .await
        .expect("first");
    let b = c
        .enqueue_idempotent(TaskType::Txt2img, &once, "k-1")
        .await
        .expect("second");
    assert_eq!(a, b);
    assert_eq!(h.queue_ids().await.len(), 10);
    // Run now while paused: only that task runs; the queue stays paused.
    assert_eq!(
        c.run_task(&ids[0]).await.expect("run").message,
        "Task is executing"
    );
    h.wait_status(&ids[0], TaskStatus::Done).await;
    assert_eq!(
        c.task(&ids[3]).await.expect("task").status,
        TaskStatus::Pending
    );
    assert!(c.queue(&ListQuery::default()).await.expect("queue").paused);
    // A requeued copy goes to the end.
    let copy = c.requeue(&ids[0]).await.expect("requeue").task_id;
    assert_eq!(h.queue_ids().await.last(), Some(&copy));
    // Clear keeps bookmarked pending tasks (ids[1] and its imported, still bookmarked copy).
    c.clear_queue().await.expect("clear");
    let kept = h.queue_ids().await;
    assert_eq!((kept.len(), &kept[0]), (2, &ids[1]));
    // Settings.
    let patch = SettingsPatch {
        max_attempts: Some(5),
        history_retention_days: Some(None),
        ..Default::default()
    };
    let s = c.update_settings(&patch).await.expect("settings");
    assert_eq!((s.max_attempts, s.history_retention_days), (5, None));
    assert_eq!(c.settings().await.expect("settings"), s);
    refused(
        c.update_settings(&SettingsPatch {
            max_attempts: Some(0),
            ..Default::default()
        })
        .await,
        422,
        "max_attempts must be 1..=100",
    );
    // Pause survives a restart.
    let (dir, fake) = h.stop().await;
    let h = InProcessHost::start_with(fake, dir, |_| {}).await;
    assert!(
        h.api
            .queue(&ListQuery::default())
            .await
            .expect("queue")
            .paused
    );
    assert_eq!(h.queue_ids().await, kept);
    h.api.resume().await.expect("resume");
    h.wait_status(&ids[1], TaskStatus::Done).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_expand_switch_only_at_transitions_and_unknown_ones_fail_without_options() {
    let h = InProcessHost::start(&["a", "b", "anime/c", "anime2/d"]).await;
    let c = &h.api;
    assert_eq!(c.sd_models().await.expect("models").len(), 4);
    assert!(!c.samplers().await.expect("samplers").is_empty());
    c.pause().await.expect("pause");
    let all = c
        .enqueue(
            TaskType::Txt2img,
            &body(json!({"prompt": "all", "checkpoint": "*", "steps": 1})),
        )
        .await
        .expect("all checkpoints")
        .task_ids;
    assert_eq!(all.len(), 4);
    assert_eq!(all[1], format!("{}.1", all[0]));
    let folder = c
        .enqueue(
            TaskType::Txt2img,
            &body(json!({"prompt": "folder", "checkpoint": "anime/*"})),
        )
        .await
        .expect("folder")
        .task_ids;
    assert_eq!(folder.len(), 1);
    c.clear_queue().await.expect("clear");
    h.fake().reset_stats();
    let mut ids = Vec::new();
    for (i, ck) in ["a", "a", "b", "b", "a"].iter().enumerate() {
        ids.push(
            enqueue(
                &h,
                json!({"prompt": format!("p{i}"), "steps": 1, "checkpoint": ck}),
            )
            .await,
        );
    }
    // `zzz` is listed while the task is queued (the door takes it), then gone by its claim.
    let listed = |extra: &[&str]| FakeConfigPatch {
        checkpoints: Some(
            ["a", "b", "anime/c", "anime2/d"]
                .iter()
                .chain(extra)
                .map(|s| s.to_string())
                .collect(),
        ),
        ..FakeConfigPatch::default()
    };
    h.fake().configure(&listed(&["zzz"]));
    c.checkpoints().await.expect("the host reads the list");
    let bad = enqueue(
        &h,
        json!({"prompt": "bad", "override_settings": {"sd_model_checkpoint": "zzz"}}),
    )
    .await;
    h.fake().configure(&listed(&[]));
    c.checkpoints().await.expect("the host reads the list");
    c.resume().await.expect("resume");
    for id in &ids {
        h.wait_status(id, TaskStatus::Done).await;
    }
    let t = h.wait_status(&bad, TaskStatus::Failed).await;
    assert_eq!(t.error.as_deref(), Some("checkpoint not found: zzz"));
    let stats = h.fake().stats();
    // Grouped by checkpoint: the loaded `a` tasks first, then `b`; one switch.
    assert_eq!(stats.prompts, vec!["p0", "p1", "p4", "p2", "p3"]);
    assert_eq!(stats.loads, vec!["b"], "one switch");
    assert_eq!(stats.unloads, 0);
    assert_eq!(stats.max_concurrent_jobs, 1);
    let keys: Vec<Vec<String>> = stats
        .options_posts
        .iter()
        .map(|o| o.keys().cloned().collect())
        .collect();
    assert_eq!(
        keys,
        vec![vec!["sd_model_checkpoint".to_string()]; 1],
        "only checkpoint switches touch /options"
    );
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
    let h = InProcessHost::start_with(f, tempfile::tempdir().expect("tmp"), |_| {}).await;
    let c = &h.api;
    let id = enqueue(&h, json!({"prompt": "long", "steps": 100})).await;
    h.wait_status(&id, TaskStatus::Running).await;
    let q = c.queue(&ListQuery::default()).await.expect("queue");
    assert_eq!(q.current_task_id.as_deref(), Some(id.as_str()));
    assert_eq!(q.pending_tasks[0].status, TaskStatus::Running);
    assert_eq!(
        c.delete_task(&id).await.expect("delete").message,
        "Task interrupted"
    );
    let t = h.wait_status(&id, TaskStatus::Interrupted).await;
    assert_eq!(t.image_count, 0, "the placeholder is never stored");
    // Replay of everything after event 1.
    let mut events = c.events(Some(1));
    let seen = read_events(&mut events, 10, |seen| {
        seen.iter().any(|(_, e)| {
            matches!(e, Event::Task(t) if t.task_id == id && t.status == TaskStatus::Interrupted)
        })
    })
    .await;
    assert_eq!(seen.first().map(|(i, _)| *i), Some(Some(2)), "{seen:?}");
    assert!(
        seen.iter()
            .any(|(_, e)| matches!(e, Event::Task(t) if t.status == TaskStatus::Interrupted)),
        "{seen:?}"
    );
    drop(events);
    // An id beyond the counter: a reset comes first.
    let mut events = c.events(Some(999_999));
    let seen = read_events(&mut events, 10, |seen| !seen.is_empty()).await;
    assert!(
        matches!(seen.first(), Some((None, Event::Reset(_)))),
        "{seen:?}"
    );
    drop(events);
    let b = c.backends().await.expect("backends");
    assert_eq!(b[0].state, BackendState::Up);
    assert!(
        c.docs()
            .await
            .expect("docs")
            .contains(routes::QUEUE_TXT2IMG)
    );
    let doc = c.openapi().await.expect("openapi");
    assert!(doc["paths"][routes::TASK]["delete"].is_object());
    assert!(doc["components"]["schemas"]["Task"].is_object());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_tasks_requeue_and_empty_answers_fail_with_a_reason() {
    let h = InProcessHost::start(&["a"]).await;
    let c = &h.api;
    h.fake().configure(&FakeConfigPatch {
        fail_next_with_empty: Some(CountOrBool::Count(1)),
        ..Default::default()
    });
    let id = enqueue(&h, json!({"prompt": "empty"})).await;
    let t = h.wait_status(&id, TaskStatus::Failed).await;
    assert_eq!(
        t.error.as_deref(),
        Some("SD.Next returned no images (expected 1); see its log")
    );
    let m = c.requeue_failed().await.expect("requeue failed");
    assert_eq!(
        (m.success, m.message.as_str()),
        (true, "Requeued 1 failed tasks")
    );
    h.wait_status(&id, TaskStatus::Done).await;
    let m = c.requeue_failed().await.expect("requeue failed");
    assert_eq!((m.success, m.message.as_str()), (false, "No failed tasks"));
    // A 429 is retried, not failed.
    h.fake().configure(&FakeConfigPatch {
        rate_limit_next: Some(CountOrBool::Count(1)),
        ..Default::default()
    });
    let id = enqueue(&h, json!({"prompt": "limited"})).await;
    let t = h.wait_status(&id, TaskStatus::Done).await;
    assert_eq!(t.attempts, 0);
    // Clearing the history removes finished non-bookmarked tasks.
    c.clear_history().await.expect("clear history");
    let hist = c
        .history(HistoryFilter::All, &ListQuery::default())
        .await
        .expect("history");
    assert_eq!(hist.total, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_outage_makes_tasks_wait_and_none_fail() {
    let f = fake_with_args(FakeArgs::new().step_ms(15).checkpoint("a").loaded("a")).await;
    let h = InProcessHost::start_with(f, tempfile::tempdir().expect("tmp"), |_| {}).await;
    let c = h.api.clone();
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(enqueue(&h, json!({"prompt": format!("o{i}"), "steps": 10})).await);
    }
    h.wait_status(&ids[1], TaskStatus::Done).await;
    // The fake goes down on its port (refusing connections, its open ones cut).
    h.fake().go_down();
    wait_until("the backend is seen down", DEADLINE, || async {
        let b = c.backends().await.ok()?;
        (b[0].state == BackendState::Down).then_some(())
    })
    .await;
    // The task it was running is given back (a committed write), not failed.
    let waiting = wait_until("a task back in the queue", DEADLINE, || async {
        let q = c.queue(&ListQuery::default()).await.ok()?;
        (q.current_task_ids.is_empty() && q.total_pending_tasks > 0).then_some(q)
    })
    .await;
    let failed = HistoryFilter::Status(TaskStatus::Failed);
    let history = |f| {
        let c = c.clone();
        async move {
            c.history(f, &ListQuery::default())
                .await
                .expect("history")
                .total
        }
    };
    assert_eq!(history(failed).await, 0, "nothing fails while it is down");
    assert_eq!(waiting.pending_tasks[0].status, TaskStatus::Pending);
    h.fake().come_back();
    for id in &ids {
        let t = h.wait_status(id, TaskStatus::Done).await;
        assert_eq!(t.attempts, 0, "an outage counts no attempt: {t:?}");
    }
    assert_eq!(history(failed).await, 0);
    assert_eq!(
        c.backends().await.expect("backends")[0].state,
        BackendState::Up
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_task_runs_on_a_backend_that_lists_its_checkpoint() {
    let fa = fake(&["a"]).await;
    let fb = fake(&["b"]).await;
    let (a_url, b_url) = (fa.url(), fb.url());
    let bu = b_url.clone();
    let h = InProcessHost::start_with(fa, tempfile::tempdir().expect("tmp"), |c| {
        c.backends.push(bu)
    })
    .await;
    let c = &h.api;
    assert_eq!(c.sd_models().await.expect("models"), vec!["a", "b"]);
    assert_eq!(c.checkpoints().await.expect("checkpoints").len(), 2);
    let ids = c
        .enqueue(
            TaskType::Txt2img,
            &body(json!({"prompt": "every", "checkpoint": "*"})),
        )
        .await
        .expect("enqueue")
        .task_ids;
    assert_eq!(ids.len(), 2);
    for id in &ids {
        h.wait_status(id, TaskStatus::Done).await;
    }
    let on = |t: scheduler_api::Task| t.backend.expect("backend");
    assert_eq!(on(c.task(&ids[0]).await.expect("task")), a_url);
    assert_eq!(on(c.task(&ids[1]).await.expect("task")), b_url);
    assert_eq!(h.fake().stats().checkpoint_loads, 0);
    assert_eq!(fb.stats().checkpoint_loads, 0);
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
                    task_type: TaskType::Txt2img,
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
                    group_id: None,
                };
                let now = agent_scheduler::clock::Clock::system().now_ms();
                agent_scheduler::store::tasks::insert_tasks(
                    c,
                    &[t("first"), t("second")],
                    None,
                    now,
                )?;
                agent_scheduler::store::transitions::claim_next(c, "old", 0, 1, |w, _| {
                    (!w.is_empty()).then(|| agent_scheduler::store::transitions::Choice {
                        index: 0,
                        overtaken: Vec::new(),
                    })
                })?;
                Ok(())
            })
            .expect("seed");
        // An orphan file from a run that never committed.
        std::fs::create_dir_all(dir.path().join("results/first")).expect("mkdir");
        std::fs::write(dir.path().join("results/first/0.png"), b"x").expect("write");
    }
    let f = fake(&["a"]).await;
    let h = InProcessHost::start_with(f, dir, |_| {}).await;
    let t = h.wait_status("first", TaskStatus::Done).await;
    assert_eq!(t.attempts, 1);
    h.wait_status("second", TaskStatus::Done).await;
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
    let h = InProcessHost::start_with(f, tempfile::tempdir().expect("tmp"), |_| {}).await;
    let mut events = h.api.events(None);
    assert_eq!(events.next().await, Some(StreamItem::Opened));
    let id = enqueue(&h, json!({"prompt": "slow", "steps": 30})).await;
    let seen = read_events(&mut events, 15, |seen| {
        seen.iter()
            .any(|(_, e)| matches!(e, Event::Progress(p) if p.task_id == id))
    })
    .await;
    assert!(
        seen.iter()
            .any(|(_, e)| matches!(e, Event::Progress(p) if p.task_id == id)),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(_, e)| matches!(e, Event::Task(t) if t.task_id == id && t.status == TaskStatus::Running)),
        "{seen:?}"
    );
    drop(events);
    assert_eq!(
        h.api.delete_task(&id).await.expect("delete").message,
        "Task interrupted"
    );
    h.wait_status(&id, TaskStatus::Interrupted).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_vae_is_set_only_when_it_changes_and_unknown_ones_fail() {
    let f = FakeSdNext::start(FakeConfig {
        vaes: vec!["v1".into(), "gone".into()],
        ..FakeConfig::with_checkpoints(&["a"])
    })
    .await
    .expect("fake");
    let h = InProcessHost::start_with(f, tempfile::tempdir().expect("tmp"), |c| {
        c.start_paused = true
    })
    .await;
    let one = enqueue(&h, json!({"prompt": "v", "vae": "v1"})).await;
    let two = enqueue(
        &h,
        json!({"prompt": "v", "override_settings": {"sd_vae": "v1"}}),
    )
    .await;
    // Listed at enqueue (the door takes it), gone by the claim (the worker asks again).
    let bad = enqueue(&h, json!({"prompt": "v", "vae": "gone"})).await;
    h.fake().configure(&FakeConfigPatch {
        vaes: Some(vec!["v1".into()]),
        ..FakeConfigPatch::default()
    });
    h.api.resume().await.expect("resume");
    h.wait_status(&one, TaskStatus::Done).await;
    h.wait_status(&two, TaskStatus::Done).await;
    let t = h.wait_status(&bad, TaskStatus::Failed).await;
    assert_eq!(t.error.as_deref(), Some("vae not found: gone"));
    let posts = h.fake().stats().options_posts;
    let vae_posts = posts.iter().filter(|o| o.contains_key("sd_vae")).count();
    assert_eq!(vae_posts, 1, "{posts:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_host_on_the_same_data_dir_is_refused() {
    let h = InProcessHost::start(&["a"]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let config = Config::for_test(&h.fake().url(), h.dir.path().to_path_buf());
    let r = agent_scheduler::run(config, listener, async {}).await;
    match r {
        Err(agent_scheduler::RunError::Config(m)) => assert_eq!(
            m,
            format!(
                "another agent-scheduler is already using {}",
                h.dir.path().display()
            )
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    h.stop().await;
}
