//! Control tasks (`POST /queue/control` → SD.Next's `/sdapi/v1/control`) through the host in
//! this process and the fake SD.Next, which answers `/control` like SD.Next `058a7f0`: a 500
//! to any request without `xyz` (a mode), HTML `info`, infotexts in the JPEG's EXIF, the
//! preprocessor maps twice in `processed`.

use fake_sdnext::FakeConfigPatch;
use scheduler_api::{
    EnqueueRequest, ErrorCode, HistoryFilter, ImportRequest, ListQuery, TaskStatus, TaskType,
    UpdateTaskRequest,
};
use scheduler_tests::inprocess::{InProcessHost, refused};
use serde_json::{Value, json};

const PNG_1PX: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

fn control_json(prompt: &str) -> Value {
    json!({"prompt": prompt, "steps": 2, "seed": 7, "width_before": 64, "height_before": 64,
           "cfg_scale": -1, "batch_count": 1, "batch_size": 1, "unit_type": "controlnet",
           "control": [{"unit_type": "controlnet", "process": "Canny", "model": "tiny-controlnet",
                        "strength": 1.0, "start": 0.0, "end": 1.0,
                        "image": format!("data:image/png;base64,{PNG_1PX}")}],
           "script_arg_labels": []})
}

fn body(v: Value) -> EnqueueRequest {
    serde_json::from_value(v).expect("an enqueue body")
}

async fn enqueue_control(h: &InProcessHost, v: Value) -> Vec<String> {
    h.api
        .enqueue(TaskType::Control, &body(v))
        .await
        .expect("enqueue control")
        .task_ids
}

/// The first Control request goes without `xyz`; on SD.Next's exact 500 the host retries with
/// `"xyz": {}` and keeps sending it to that backend. Infotexts come from the images' EXIF
/// (`info` is HTML); the preprocessor map (sent twice) is kept once, after the image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_tasks_run_with_the_xyz_workaround_learnt_once_per_backend() {
    let h = InProcessHost::start(&["a"]).await;
    let first = enqueue_control(&h, control_json("first")).await.remove(0);
    let t = h.wait_status(&first, TaskStatus::Done).await;
    assert_eq!(t.task_type, TaskType::Control);
    let second = enqueue_control(&h, control_json("second")).await.remove(0);
    h.wait_status(&second, TaskStatus::Done).await;
    let calls: Vec<(bool, bool)> = h
        .fake()
        .stats()
        .control_requests
        .iter()
        .map(|c| (c.had_xyz, c.refused))
        .collect();
    assert_eq!(calls, [(false, true), (true, false), (true, false)]);
    let images = h.api.results(&first).await.expect("results");
    assert_eq!(images.len(), 2);
    let info = &images[0].infotext;
    assert!(info.starts_with("first\nNegative prompt: "), "{info}");
    assert!(info.contains("Operations: txt2img; control"), "{info}");
    assert!(info.contains("Control model: tiny-controlnet"), "{info}");
    assert_eq!(
        images[1].infotext,
        "Control preprocessor map 1 of 1 (not a generated image)"
    );
    // The stored request keeps the unit image; listings do not carry it.
    let stored = h.api.task_request(&first).await.expect("request");
    assert_eq!(
        stored.request["control"][0]["image"],
        json!(format!("data:image/png;base64,{PNG_1PX}"))
    );
    let hist = h
        .api
        .history(HistoryFilter::All, &ListQuery::default())
        .await
        .expect("history");
    let row = hist
        .tasks
        .iter()
        .find(|t| t.id == first)
        .expect("in the history");
    assert_eq!(
        row.params["control"],
        json!([{"unit_type": "controlnet", "process": "Canny", "model": "tiny-controlnet",
                "strength": 1.0, "start": 0.0, "end": 1.0}])
    );
    h.stop().await;
}

/// A fixed SD.Next never sees `xyz`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_tasks_on_a_fixed_sdnext_never_send_xyz() {
    let h = InProcessHost::start(&["a"]).await;
    h.fake().configure(&FakeConfigPatch {
        control_xyz_bug: Some(false),
        ..FakeConfigPatch::default()
    });
    let id = enqueue_control(&h, control_json("fixed")).await.remove(0);
    h.wait_status(&id, TaskStatus::Done).await;
    let calls: Vec<bool> = h
        .fake()
        .stats()
        .control_requests
        .iter()
        .map(|c| c.had_xyz)
        .collect();
    assert_eq!(calls, [false]);
    h.stop().await;
}

/// A Control unit without an image is refused before anything is stored (SD.Next's API takes
/// a unit's input only in its `image`/`override`). Non-images in every image field, nested
/// ones included, are checked by `host_images`, generated from the walker's table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_units_without_an_image_are_refused() {
    let h = InProcessHost::start(&["a"]).await;
    h.api.pause().await.expect("pause");
    let mut no_image = control_json("x");
    no_image["control"][0]
        .as_object_mut()
        .expect("unit")
        .remove("image");
    let e = refused(
        h.api.enqueue(TaskType::Control, &body(no_image)).await,
        422,
        "control[0] has no image: give it `image` (SD.Next's API takes no shared input)",
    );
    assert_eq!(e.code, Some(ErrorCode::Invalid));
    let q = h.api.queue(&ListQuery::default()).await.expect("queue");
    assert_eq!(q.total_pending_tasks, 0);
    h.stop().await;
}

/// Control tasks take part in everything the other types do: "Queue with all checkpoints"
/// (one task per checkpoint), editing (a PUT replaces the whole `control` list, images
/// checked like at enqueue), requeue, export and import.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_tasks_expand_edit_requeue_export_and_import() {
    let h = InProcessHost::start(&["a", "b"]).await;
    h.api.pause().await.expect("pause");
    let mut v = control_json("every checkpoint");
    v["checkpoint"] = json!("*");
    let ids = enqueue_control(&h, v).await;
    assert_eq!(ids.len(), 2);
    let mut cks = Vec::new();
    for id in &ids {
        let t = h.api.task(id).await.expect("task");
        assert_eq!(t.task_type, TaskType::Control);
        cks.push(t.params["checkpoint"].clone());
    }
    assert_eq!(cks, [json!("a"), json!("b")]);
    let unit = json!({"unit_type": "controlnet", "model": "Depth", "process": "",
                      "image": format!("data:image/png;base64,{PNG_1PX}")});
    let edit = |units: Value| UpdateTaskRequest {
        params: Some(
            json!({ "control": units })
                .as_object()
                .cloned()
                .expect("object"),
        ),
        ..UpdateTaskRequest::default()
    };
    h.api
        .update_task(&ids[0], &edit(json!([unit.clone(), unit.clone()])))
        .await
        .expect("edit");
    let stored = h.api.task_request(&ids[0]).await.expect("request");
    let units = stored.request["control"].as_array().expect("units");
    assert_eq!(
        (units.len(), units[1]["model"].clone()),
        (2, json!("Depth"))
    );
    refused(
        h.api
            .update_task(
                &ids[0],
                &edit(json!([{"model": "m", "image": "/etc/passwd"}])),
            )
            .await,
        422,
        "invalid params: control[0].image must be base64 or a data URL (URLs and file paths are not accepted)",
    );
    let copy = h.api.requeue(&ids[1]).await.expect("requeue").task_id;
    assert_eq!(
        h.api.task(&copy).await.expect("copy").task_type,
        TaskType::Control
    );
    let exported: Vec<_> = h
        .api
        .export(None, None)
        .await
        .expect("export")
        .into_iter()
        .filter(|t| t.task_type == "control")
        .collect();
    assert_eq!(exported.len(), 3);
    assert!(exported[0].params["control"][0]["image"].is_string());
    let content = serde_json::to_string(&exported).expect("json");
    let r = h
        .api
        .import(&ImportRequest { content })
        .await
        .expect("import");
    assert_eq!(r.imported.len(), 3);
    assert_eq!(
        h.api
            .task(&r.imported[0])
            .await
            .expect("imported")
            .task_type,
        TaskType::Control
    );
    h.stop().await;
}
