//! The host through HTTP (in this process, driving the in-process fake SD.Next): results as
//! JSON and zip, callbacks, checkpoint expansion, export/import, run now, interrupts and
//! failures with their reasons.

use agent_scheduler::results::image::read_png_parameters;
use base64::Engine;
use scheduler_api::{
    DELIVERY_ID_HEADER, EnqueueResponse, ImportResponse, ResultImage, TaskStatus, routes,
};
use scheduler_tests::harness::{CallbackReceiver, wait_for};
use serde_json::{Value, json};

use crate::host_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_come_as_png_json_with_infotext_and_as_a_zip() {
    let s = Stack::start(FakeArgs::fast_a(), &[]).await;
    let c = s.client();
    let id = enqueue(c, "a red fox", json!({"n_iter": 2, "batch_size": 1})).await;
    let t = wait_done(c, &id).await;
    let result: Value = serde_json::from_str(t.result.as_deref().expect("result string")).unwrap();
    assert_eq!(result["images"].as_array().map(Vec::len), Some(2));

    let a = get(c, &task_route(routes::TASK_RESULTS, &id)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["success"], true);
    let data: Vec<ResultImage> = serde_json::from_value(a.body["data"].clone()).unwrap();
    assert_eq!(data.len(), 2);
    for img in &data {
        let b64 = img
            .image
            .strip_prefix("data:image/png;base64,")
            .expect("PNG data URL (fake SD.Next sends JPEG: the host re-encodes)");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert!(img.infotext.starts_with("a red fox"), "{}", img.infotext);
        assert_eq!(
            read_png_parameters(&bytes).as_deref(),
            Some(img.infotext.as_str())
        );
    }

    let r = c
        .raw(
            scheduler_api::client::Method::Get,
            &format!("{}?zip=true", task_route(routes::TASK_RESULTS, &id)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/zip"));
    assert_eq!(
        r.header("content-disposition"),
        Some(format!("attachment; filename=results-{id}.zip").as_str())
    );
    assert_eq!(
        c.results_zip(&id).await.unwrap(),
        r.body,
        "the client's zip is the same"
    );
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(r.body)).unwrap();
    assert_eq!(zip.len(), 2);
    let mut first = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_index(0).unwrap(), &mut first).unwrap();
    // The zip holds the files as stored: the fake's default format is JPEG.
    assert_eq!(&first[..3], &[0xff, 0xd8, 0xff], "a JPEG file");

    // Pending tasks have no results yet; unknown tasks are 404.
    pause(c).await;
    let p = enqueue(c, "later", json!({})).await;
    let a = get(c, &task_route(routes::TASK_RESULTS, &p)).await;
    assert_eq!(
        (
            a.status,
            a.body["success"].clone(),
            a.body["message"].clone()
        ),
        (409, json!(false), json!("Task is pending"))
    );
    let a = get(c, &task_route(routes::TASK_RESULTS, "nope")).await;
    assert_eq!(a.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_arrive_with_their_files_for_done_and_failed_tasks() {
    let s = Stack::start(FakeArgs::fast_a(), &[]).await;
    let c = s.client();
    let rx = CallbackReceiver::start().await;
    let ok = enqueue(
        c,
        "cb ok",
        json!({"n_iter": 2, "callback_url": rx.url("/done")}),
    )
    .await;
    let bad = enqueue(
        c,
        "cb bad",
        json!({"alwayson_scripts": {"nope": {"args": []}}, "callback_url": rx.url("/failed")}),
    )
    .await;
    wait_done(c, &ok).await;
    let failed = wait_finished(c, &bad).await;
    assert_eq!(failed.status, TaskStatus::Failed);
    let posts = rx.wait_for_posts(2, LONG).await;
    let done = posts.iter().find(|p| p.path == "/done").expect("done post");
    let field = |p: &scheduler_tests::harness::CallbackPost, n: &str| {
        p.parts
            .iter()
            .find(|x| x.name == n)
            .map(|x| String::from_utf8_lossy(&x.data).into_owned())
    };
    assert_eq!(field(done, "task_id").as_deref(), Some(ok.as_str()));
    assert_eq!(field(done, "status").as_deref(), Some("done"));
    let files: Vec<_> = done
        .parts
        .iter()
        .filter(|p| p.name == "files")
        .map(|f| {
            (
                f.file_name.as_deref(),
                f.content_type.as_deref(),
                &f.data[..3],
            )
        })
        .collect();
    // The files as stored: the fake sends JPEG.
    let jpeg: &[u8] = &[0xff, 0xd8, 0xff];
    assert_eq!(
        files,
        vec![
            (Some("0.jpg"), Some("image/jpeg"), jpeg),
            (Some("1.jpg"), Some("image/jpeg"), jpeg)
        ]
    );
    assert!(done.header(DELIVERY_ID_HEADER).is_some());
    let failed_post = posts
        .iter()
        .find(|p| p.path == "/failed")
        .expect("failed post");
    assert_eq!(field(failed_post, "status").as_deref(), Some("failed"));
    assert_eq!(field(failed_post, "task_id").as_deref(), Some(bad.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_retried_until_the_receiver_accepts() {
    let s = Stack::start(FakeArgs::fast_a(), &[]).await;
    let c = s.client();
    let rx = CallbackReceiver::start().await;
    rx.set_status(503);
    let id = enqueue(c, "retry me", json!({"callback_url": rx.url("/cb")})).await;
    wait_done(c, &id).await;
    rx.wait_for_posts(1, LONG).await;
    rx.set_status(200);
    let posts = rx.wait_for_posts(2, LONG).await;
    let ids: Vec<_> = posts
        .iter()
        .map(|p| p.header(DELIVERY_ID_HEADER).map(str::to_owned))
        .collect();
    assert!(ids[0].is_some());
    assert_eq!(ids[0], ids[1], "a retry carries the same delivery id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_checkpoints_and_folders_expand_into_one_task_each() {
    let s = Stack::start(
        FakeArgs::new()
            .step_ms(1)
            .checkpoints(&["anime/a", "anime/sub/b", "anime2/c", "real/d"])
            .loaded("real/d"),
        &[],
    )
    .await;
    let c = s.client();
    pause(c).await;
    let all = c
        .enqueue(
            scheduler_api::TaskType::Txt2img,
            &body(json!({"prompt": "x", "checkpoint": "*"})),
        )
        .await
        .unwrap();
    assert_eq!(all.task_ids.len(), 4);
    assert_eq!(all.task_id, all.task_ids[0]);
    assert_eq!(all.task_ids[1], format!("{}.1", all.task_ids[0]));
    let mut cks = Vec::new();
    for id in &all.task_ids {
        let t = c.task(id).await.expect("task");
        cks.push(
            t.params["checkpoint"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    cks.sort();
    assert_eq!(cks, vec!["anime/a", "anime/sub/b", "anime2/c", "real/d"]);

    let folder: EnqueueResponse = c
        .enqueue(
            scheduler_api::TaskType::Txt2img,
            &body(json!({"prompt": "y", "checkpoint": "anime/*"})),
        )
        .await
        .unwrap();
    assert_eq!(folder.task_ids.len(), 2, "anime2 is not in anime");
    let backslash = c
        .enqueue(
            scheduler_api::TaskType::Txt2img,
            &body(json!({"prompt": "z", "checkpoint": "anime\\sub\\*"})),
        )
        .await
        .unwrap();
    assert_eq!(backslash.task_ids.len(), 1);
    let none = post(
        c,
        routes::QUEUE_TXT2IMG,
        &json!({"prompt": "n", "checkpoint": "nothing/*"}),
    )
    .await;
    assert_eq!(none.status, 422, "{}", none.body);
    assert_eq!(none.body["success"], false);
    assert_eq!(queue_ids(c).await.len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_round_trips_and_original_exports_import_too() {
    let s = Stack::start(FakeArgs::fast_a(), &[]).await;
    let c = s.client();
    pause(c).await;
    let t1 = enqueue(
        c,
        "exported one",
        json!({"name": "first", "checkpoint": "a", "cfg_scale": 4.5}),
    )
    .await;
    let img = post(c,
            routes::QUEUE_IMG2IMG,
            &json!({"prompt": "exported two", "init_images": [png_data_url()], "denoising_strength": 0.4}),
        )
        .await;
    assert_eq!(img.status, 200, "{}", img.body);
    let t2 = img.body["task_id"].as_str().unwrap().to_owned();

    let export = get(c, routes::EXPORT).await;
    assert_eq!(export.status, 200);
    let items = export.body.as_array().expect("export is an array").clone();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i["created_at"].is_number()));

    let cleared = post(c, routes::QUEUE_CLEAR, &json!({})).await;
    assert_eq!(cleared.status, 200);
    assert!(queue_ids(c).await.is_empty());

    let content = serde_json::to_string(&items).unwrap();
    let imp = post(c, routes::IMPORT, &json!({"content": content})).await;
    assert_eq!(imp.status, 200, "{}", imp.body);
    let imp: ImportResponse = imp.json();
    assert!(imp.success);
    assert_eq!(imp.imported.len(), 2);
    assert!(imp.rejected.is_empty());
    let ids = queue_ids(c).await;
    assert_eq!(ids, vec![t1.clone(), t2.clone()]);
    let back = c.task(&t1).await.unwrap();
    assert_eq!(back.name.as_deref(), Some("first"));
    assert_eq!(back.params["cfg_scale"], 4.5);
    assert_eq!(back.params["checkpoint"], "a");
    let req = get(c, &task_route(routes::TASK_REQUEST, &t2)).await;
    assert_eq!(req.status, 200);
    assert!(
        req.body.to_string().contains("data:image/png;base64,"),
        "the init image survives the round trip"
    );

    // The original's export: an API task imports, a UI task (pickled args) is refused.
    let original = json!([
        {"id": "orig-api", "api_task_id": null, "api_task_callback": null, "name": null,
         "type": "txt2img", "status": "pending",
         "params": {"args": {"prompt": "from the original", "steps": 5}, "checkpoint": null,
                    "is_ui": false, "is_img2img": false},
         "script_params": "eJxrYJouzQAABgQBsA==", "priority": 1700000000000i64, "result": null,
         "bookmarked": false, "created_at": 1700000000, "updated_at": 1700000000},
        {"id": "orig-ui", "type": "txt2img", "status": "pending",
         "params": {"args": {"prompt": "ui"}, "checkpoint": null, "is_ui": true, "is_img2img": false},
         "script_params": "eJxrYJouzQAABgQBsA==", "priority": 1, "result": null,
         "bookmarked": false, "created_at": 1, "updated_at": 1},
        {"bogus": true}
    ]);
    let imp: ImportResponse = post(c, routes::IMPORT, &json!({"content": original.to_string()}))
        .await
        .json();
    assert_eq!(imp.imported, vec!["orig-api".to_owned()]);
    assert_eq!(imp.rejected.len(), 2, "{imp:?}");
    let t = c.task("orig-api").await.expect("imported");
    assert_eq!(t.params["prompt"], "from the original");
    assert_eq!(t.status, TaskStatus::Pending);

    let bad = post(c, routes::IMPORT, &json!({"content": "not json"})).await;
    assert_eq!(
        (bad.status, bad.body["message"].clone()),
        (
            422,
            json!("Import failed: content is not JSON: expected ident at line 1 column 2")
        )
    );
    assert_eq!(queue_ids(c).await.len(), 3, "a bad import changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_now_while_paused_runs_that_task_only() {
    let s = Stack::start(FakeArgs::fast_a(), &[]).await;
    let c = s.client();
    pause(c).await;
    let a = enqueue(c, "first", json!({})).await;
    let b = enqueue(c, "second", json!({})).await;
    let r = post(c, &task_route(routes::TASK_RUN, &b), &json!({})).await;
    assert_eq!(
        (r.status, r.body["message"].clone()),
        (200, json!("Task is executing"))
    );
    wait_done(c, &b).await;
    let q = queue(c).await;
    assert!(q.paused, "the queue stays paused");
    assert_eq!(q.pending_tasks.len(), 1);
    assert_eq!(q.pending_tasks[0].id, a);
    assert_eq!(s.fake().stats().prompts, vec!["second"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_lets_the_running_task_finish_and_interrupt_stops_it() {
    let s = Stack::start(FakeArgs::new().step_ms(40).checkpoint("a").loaded("a"), &[]).await;
    let c = s.client();
    let long = enqueue(c, "long one", json!({"steps": 200})).await;
    let next = enqueue(c, "next", json!({})).await;
    scheduler_tests::harness::wait_task_status(c, &long, TaskStatus::Running, LONG).await;
    pause(c).await;
    // DELETE on the running task interrupts it.
    let d = delete(c, &task_route(routes::TASK, &long)).await;
    assert_eq!(d.status, 200, "{}", d.body);
    let t = wait_finished(c, &long).await;
    assert_eq!(t.status, TaskStatus::Interrupted);
    // The interrupt placeholder is never stored: no image, an empty result.
    let result: Value = serde_json::from_str(t.result.as_deref().expect("a result")).unwrap();
    assert_eq!(
        (t.image_count, result),
        (0, json!({"images": [], "infotexts": []}))
    );
    // Paused: the next task stays pending.
    let q = queue(c).await;
    assert!(q.paused);
    assert_eq!(q.pending_tasks.first().map(|t| t.id.clone()), Some(next));
    assert_eq!(s.fake().stats().prompts, vec!["long one"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_interrupt_is_sent_again() {
    let s = Stack::start(
        FakeArgs::new()
            .step_ms(30)
            .checkpoint("a")
            .loaded("a")
            .lose_first_interrupt(),
        &[],
    )
    .await;
    let c = s.client();
    let id = enqueue(c, "stubborn", json!({"steps": 400})).await;
    scheduler_tests::harness::wait_task_status(c, &id, TaskStatus::Running, LONG).await;
    wait_for("the fake to start sampling", LONG, || async {
        s.fake().stats().prompts.len() == 1
    })
    .await;
    let d = delete(c, &task_route(routes::TASK, &id)).await;
    assert_eq!(d.status, 200);
    let t = wait_finished(c, &id).await;
    assert_eq!(t.status, TaskStatus::Interrupted);
    let st = s.fake().stats();
    // The first interrupt of the job is lost; the host sends it again (on each progress poll
    // while the job runs: at least once more).
    assert_eq!(st.interrupts_lost, 1);
    assert!(st.interrupts >= 2, "re-sent: {}", st.interrupts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_reported_with_reasons() {
    let s = Stack::start(
        FakeArgs::new()
            .step_ms(1)
            .checkpoints(&["a", "gone"])
            .loaded("a"),
        &[],
    )
    .await;
    let c = s.client();
    // A checkpoint listed at enqueue (the door takes it) and gone by the claim.
    pause(c).await;
    let unknown_ck = enqueue(c, "x", json!({"checkpoint": "gone"})).await;
    s.fake()
        .configure(&serde_json::from_value(json!({"checkpoints": ["a"]})).expect("patch"));
    c.checkpoints()
        .await
        .expect("the host reads the list again");
    resume(c).await;
    let t = wait_finished(c, &unknown_ck).await;
    assert_eq!(
        (t.status, t.error.as_deref()),
        (TaskStatus::Failed, Some("checkpoint not found: gone"))
    );
    let st = s.fake().stats();
    assert!(
        st.options_posts.is_empty(),
        "an unknown checkpoint never reaches /options: {st:?}"
    );
    assert_eq!(st.loaded.as_deref(), Some("a"));

    // Passes the door, refused by SD.Next.
    let script = enqueue(c, "y", json!({"alwayson_scripts": {"nope": {"args": []}}})).await;
    let t = wait_finished(c, &script).await;
    // SD.Next's reason is kept.
    assert_eq!(
        (t.status, t.error.as_deref()),
        (
            TaskStatus::Failed,
            Some("SD.Next: HTTP 422: Always on script not found: nope")
        )
    );
    let h = get(c, &format!("{}{}", routes::HISTORY, "?status=failed"))
        .await
        .json::<scheduler_api::HistoryResponse>();
    assert_eq!(h.total, 2);
    // Requeue-failed puts them back in place as pending.
    pause(c).await;
    let r = post(c, routes::TASK_REQUEUE_FAILED, &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(queue_ids(c).await.len(), 2);
    assert_eq!(
        get(c, &format!("{}{}", routes::HISTORY, "?status=failed"))
            .await
            .json::<scheduler_api::HistoryResponse>()
            .total,
        0
    );
}
