//! The door (issue 15, findings 1 and 3): every way in checks a request against SD.Next's
//! own request contract before anything is written, through the real binaries. Each of the
//! issue's examples is refused with 422, its JSON path in the error body's `path` and a
//! reason a person reads, by enqueue, by `PUT /task/{id}`, by import and by the CLI (exit
//! 3); nothing is written for it (no task, no event, no idempotency key); its valid twin
//! is taken and runs. What SD.Next accepts passes (its coercions, unknown fields); names
//! are checked only once the backend's lists are known; a backend's own `/openapi.json` is
//! the contract when it serves one. Import reads its body as a stream: at most
//! `import_max_items` items (413 naming the cap), every rejection counted, the first 1000
//! listed.

use scheduler_api::client::{Client, ClientError, StreamItem};
use scheduler_api::{
    EnqueueRequest, ErrorCode, Event, ImportRequest, SettingsPatch, TaskChange, TaskStatus,
    TaskType, UpdateTaskRequest,
};
use scheduler_tests::door::{Example, base, examples, message_matches};
use scheduler_tests::harness::{FakeProcess, HostProcess, host_binary, wait_until};
use serde_json::{Value, json};

use crate::host_support::*;

/// The fake's one checkpoint.
const CHECKPOINT: &str = "a";

/// Asserts a refusal is the example's: 422, code `invalid`, its path and reason.
fn assert_refused<T: std::fmt::Debug>(e: &Example, r: Result<T, ClientError>) {
    match r {
        Err(ClientError::Refused { status, body }) => {
            assert_eq!(status, 422, "{}: {body:?}", e.name);
            assert_eq!(body.code, Some(ErrorCode::Invalid), "{}", e.name);
            assert_eq!(body.path.as_deref(), Some(e.path), "{}: {body:?}", e.name);
            assert!(
                message_matches(e, &body.message),
                "{}: the reason is {:?}",
                e.name,
                body.message
            );
        }
        other => panic!("{}: expected the door's 422, got {other:?}", e.name),
    }
}

/// Waits until the host has read the backend's lists (names are checked from then on).
async fn lists_read(c: &Client, source: &str) {
    wait_until("the host has read the backend's lists", LONG, || async {
        c.backends()
            .await
            .ok()
            .filter(|b| b.iter().all(|b| b.contract.as_deref() == Some(source)))
    })
    .await;
}

/// The fake (checkpoint `a`) and a paused host, the backend's lists read.
async fn paused_stack() -> Stack {
    let s = Stack::start(FakeArgs::fast_a(), &["--start-paused"]).await;
    lists_read(s.client(), "table").await;
    s
}

/// The task ids of the `created` events in the host's event log, from its start.
async fn created_in_log(c: &Client, last: &str) -> Vec<String> {
    let mut events = c.events(Some(0)).reconnect(false);
    let mut ids = Vec::new();
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let item = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("the log reaches the last task before the deadline")
            .expect("the stream keeps going");
        if let StreamItem::Event {
            event: Event::Task(t),
            ..
        } = item
            && t.change == TaskChange::Created
        {
            ids.push(t.task_id.clone());
            if t.task_id == last {
                return ids;
            }
        }
    }
}

/// Finding 1 through `POST /queue/…`: each example is refused with its path and reason, and
/// leaves nothing behind (no task, no event, no idempotency key: the same key then takes
/// the valid twin); each twin is taken and runs to done.
#[tokio::test]
async fn enqueue_refuses_each_example_with_its_path_writes_nothing_and_runs_each_twin() {
    let s = paused_stack().await;
    let c = s.client();
    let all = examples(CHECKPOINT);
    for (i, e) in all.iter().enumerate() {
        let key = format!("door-{i}");
        assert_refused(e, c.enqueue_idempotent(e.kind, &e.bad_body(), &key).await);
    }
    assert_eq!(queue_ids(c).await, Vec::<String>::new(), "nothing queued");
    assert_eq!(history(c, scheduler_api::HistoryFilter::All).await.total, 0);
    let mut ids = Vec::new();
    for (i, e) in all.iter().enumerate() {
        let key = format!("door-{i}");
        let r = c
            .enqueue_idempotent(e.kind, &e.good_body(), &key)
            .await
            .unwrap_or_else(|err| panic!("{}'s twin: {err}", e.name));
        assert_eq!(r.task_ids.len(), 1, "{}", e.name);
        ids.push(r.task_id);
    }
    assert_eq!(queue_ids(c).await, ids, "every twin is queued, once");
    // The event log's first task is the first twin: the refusals wrote no event.
    assert_eq!(created_in_log(c, ids.last().unwrap()).await, ids);
    resume(c).await;
    for (e, id) in all.iter().zip(&ids) {
        let t = wait_finished(c, id).await;
        assert_eq!(t.status, TaskStatus::Done, "{}'s twin: {t:?}", e.name);
    }
}

/// Finding 1 through `PUT /task/{id}`: the merged request is checked; a refused edit
/// changes nothing; the twin's edit is taken.
#[tokio::test]
async fn put_checks_the_merged_request_and_a_refused_edit_changes_nothing() {
    let s = paused_stack().await;
    let c = s.client();
    for e in examples(CHECKPOINT) {
        let id = c
            .enqueue(e.kind, &body(Value::Object(base(e.kind))))
            .await
            .expect("enqueue the base")
            .task_id;
        let before = c.task_request(&id).await.expect("request");
        let edit = |change: &Value, full: &EnqueueRequest| {
            let mut params = serde_json::Map::new();
            let mut checkpoint = None;
            for k in change.as_object().expect("an object").keys() {
                if k == "checkpoint" {
                    checkpoint = full.checkpoint.clone();
                } else {
                    params.insert(k.clone(), full.params[k].clone());
                }
            }
            UpdateTaskRequest {
                checkpoint,
                params: Some(params).filter(|p| !p.is_empty()),
                ..UpdateTaskRequest::default()
            }
        };
        assert_refused(&e, c.update_task(&id, &edit(&e.bad, &e.bad_body())).await);
        let after = c.task_request(&id).await.expect("request");
        assert_eq!(
            (&after.request, &after.checkpoint),
            (&before.request, &before.checkpoint),
            "{}: the refused edit changed nothing",
            e.name
        );
        c.update_task(&id, &edit(&e.good, &e.good_body()))
            .await
            .unwrap_or_else(|err| panic!("{}'s twin edit: {err}", e.name));
    }
}

fn export_item(kind: TaskType, req: &EnqueueRequest) -> Value {
    json!({"type": kind.as_str(), "params": serde_json::to_value(req).expect("json")})
}

/// Finding 1 through `POST /import`: each example's item is rejected with its index, path
/// and reason; the twins beside them are imported.
#[tokio::test]
async fn import_rejects_each_example_with_its_index_path_and_reason_and_takes_the_twins() {
    let s = paused_stack().await;
    let c = s.client();
    let all = examples(CHECKPOINT);
    let mut items = Vec::new();
    for e in &all {
        items.push(export_item(e.kind, &e.bad_body()));
        items.push(export_item(e.kind, &e.good_body()));
    }
    let r = c
        .import(&ImportRequest {
            content: serde_json::to_string(&items).expect("json"),
        })
        .await
        .expect("import");
    assert_eq!(r.rejected_count, all.len());
    assert_eq!(r.rejected.len(), all.len());
    for (e, x) in all.iter().zip(&r.rejected) {
        assert_eq!(
            (x.index % 2, x.path.as_deref()),
            (0, Some(e.path)),
            "{}: {x:?}",
            e.name
        );
        assert!(message_matches(e, &x.reason), "{}: {x:?}", e.name);
    }
    assert_eq!(r.imported.len(), all.len());
    assert_eq!(
        r.message,
        format!("Imported {} tasks; {} rejected", all.len(), all.len())
    );
    assert_eq!(queue_ids(c).await, r.imported);
}

/// Finding 1 through the CLI: `enqueue TYPE --json FILE` prints the host's reason and
/// exits 3 for each example, and queues its twin (exit 0).
#[tokio::test]
async fn cli_enqueue_prints_the_reason_and_exits_3_for_each_example() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let s = paused_stack().await;
    let dir = tempfile::tempdir().expect("tmp");
    let url = s.url.clone();
    let run = |kind: TaskType, req: EnqueueRequest, n: String| {
        let (url, file) = (url.clone(), dir.path().join(n));
        async move {
            std::fs::write(&file, serde_json::to_vec(&req).expect("json")).expect("write");
            let out = tokio::process::Command::new(host_binary())
                .args(["enqueue", kind.as_str(), "--json"])
                .arg(&file)
                .args(["--url", &url])
                .env_remove("AGENT_SCHEDULER_URL")
                .env_remove("AGENT_SCHEDULER_TOKEN")
                .kill_on_drop(true)
                .output()
                .await
                .expect("run agent-scheduler");
            (
                out.status.code().expect("an exit status"),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let all = examples(CHECKPOINT);
    for (i, e) in all.iter().enumerate() {
        let (code, stderr) = run(e.kind, e.bad_body(), format!("bad-{i}.json")).await;
        assert_eq!(code, 3, "{}: {stderr}", e.name);
        let shown = stderr
            .trim()
            .strip_prefix("agent-scheduler: the host refused the request (422 invalid): ")
            .unwrap_or_else(|| panic!("{}: {stderr}", e.name));
        assert!(message_matches(e, shown), "{}: {stderr}", e.name);
        let (code, stderr) = run(e.kind, e.good_body(), format!("good-{i}.json")).await;
        assert_eq!(code, 0, "{}'s twin: {stderr}", e.name);
    }
    assert_eq!(queue_ids(s.client()).await.len(), all.len());
}

/// SD.Next's own coercions pass (it runs them), and so do fields it does not know.
#[tokio::test]
async fn what_sd_next_accepts_passes_and_unknown_fields_pass_through() {
    let s = paused_stack().await;
    let c = s.client();
    let accepted = [
        json!({"steps": "20", "seed": 5.0, "cfg_scale": "7.5", "tiling": "yes",
               "n_iter": true, "width": " 64 ", "styles": null, "hr_upscaler": "Latent Bilinear",
               "sampler_name": "euler a"}),
        json!({"width": 0, "height": 0, "steps": 0}),
        json!({"a_field_sd_next_does_not_have": {"x": [1, "two"]}, "override_settings": {"k": 1}}),
    ];
    for extra in accepted {
        let mut b = base(TaskType::Txt2img);
        for (k, v) in extra.as_object().unwrap() {
            b.insert(k.clone(), v.clone());
        }
        let id = c
            .enqueue(TaskType::Txt2img, &body(Value::Object(b.clone())))
            .await
            .unwrap_or_else(|e| panic!("{extra}: {e}"))
            .task_id;
        let stored = c.task_request(&id).await.expect("request").request;
        for (k, v) in extra.as_object().unwrap() {
            if k != "override_settings" {
                assert_eq!(&stored[k], v, "{k} is stored as sent");
            }
        }
    }
    // And what it cannot run is refused: a negative size, a ControlNet model no list has.
    for (kind, extra, path) in [
        (TaskType::Txt2img, json!({"width": -64}), "width"),
        (TaskType::Txt2img, json!({"n_iter": "0"}), "n_iter"),
        (
            TaskType::Txt2img,
            json!({"sampler_name": ""}),
            "sampler_name",
        ),
        (TaskType::Control, json!({"batch_count": 0}), "batch_count"),
        (
            TaskType::Control,
            json!({"width_before": 0}),
            "width_before",
        ),
        (
            TaskType::Control,
            json!({"inputs": [scheduler_tests::door::png()]}),
            "inputs[0]",
        ),
        (
            TaskType::Control,
            json!({"control": [{"model": "NoSuchNet", "image": scheduler_tests::door::png()}]}),
            "control[0].model",
        ),
        (TaskType::Txt2img, json!({"vae": "NoSuchVae"}), "vae"),
        (
            TaskType::Txt2img,
            json!({"hr_upscaler": "NoSuchUpscaler"}),
            "hr_upscaler",
        ),
    ] {
        let mut b = base(kind);
        for (k, v) in extra.as_object().unwrap() {
            b.insert(k.clone(), v.clone());
        }
        let e = c
            .enqueue(kind, &body(Value::Object(b)))
            .await
            .expect_err(&format!("{extra} is refused"));
        assert_eq!(
            (e.status(), e.body().and_then(|b| b.path.as_deref())),
            (Some(422), Some(path)),
            "{extra}: {e}"
        );
    }
    assert_eq!(queue_ids(c).await.len(), 3, "only the accepted ones");
}

/// While no backend has answered, names cannot be checked: they are taken (the claim
/// checks the checkpoint, as before); types are still checked.
#[tokio::test]
async fn names_are_taken_while_no_backend_has_answered_and_types_still_checked() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let dir = tempfile::tempdir().expect("tmp");
    let host = HostProcess::spawn(dir.path(), &[closed], &["--start-paused"]).await;
    let c = &host.client;
    let id = c
        .enqueue(
            TaskType::Txt2img,
            &body(json!({"prompt": "x", "sampler_name": "NoSuchSampler",
                         "checkpoint": "no-such-model", "vae": "NoSuchVae"})),
        )
        .await
        .expect("names are taken")
        .task_id;
    assert_eq!(
        c.task(&id).await.expect("task").params["checkpoint"],
        json!("no-such-model")
    );
    let e = c
        .enqueue(TaskType::Txt2img, &body(json!({"steps": "many"})))
        .await
        .expect_err("a wrong type is refused");
    assert_eq!(
        e.body().and_then(|b| b.path.clone()).as_deref(),
        Some("steps")
    );
    assert_eq!(
        c.backends().await.expect("backends")[0].contract,
        None,
        "no list read"
    );
}

/// A backend's own `/openapi.json` is the contract (a newer SD.Next's fields are known
/// without a release of the host): a field only that document has is checked; against a
/// backend without a document (the committed table) the same field passes through.
#[tokio::test]
async fn a_backends_own_openapi_document_is_the_contract() {
    // A "newer SD.Next": one more txt2img field, `door_probe`, an integer of 1..=8.
    let doc = json!({
        "openapi": "3.1.0",
        "paths": {"/sdapi/v1/txt2img": {"post": {"requestBody": {"content": {"application/json":
            {"schema": {"$ref": "#/components/schemas/Txt2Img"}}}}}}},
        "components": {"schemas": {"Txt2Img": {"properties": {
            "steps": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "door_probe": {"type": "integer", "minimum": 1, "maximum": 8},
        }}}},
    });
    let dir = tempfile::tempdir().expect("tmp");
    let doc_file = dir.path().join("openapi.json");
    std::fs::write(&doc_file, doc.to_string()).expect("write");
    let fake = FakeProcess::spawn(
        FakeArgs::new()
            .step_ms(1)
            .checkpoint(CHECKPOINT)
            .openapi(&doc_file),
    )
    .await;
    let host =
        HostProcess::spawn(&dir.path().join("host"), &[fake.url()], &["--start-paused"]).await;
    let c = &host.client;
    lists_read(c, "openapi").await;
    let probe = |v: Value| {
        let mut b = base(TaskType::Txt2img);
        b.insert("door_probe".into(), v);
        body(Value::Object(b))
    };
    let e = c
        .enqueue(TaskType::Txt2img, &probe(json!("x")))
        .await
        .expect_err("the live document's field is checked");
    assert_eq!(
        e.body().map(|b| (b.path.as_deref(), b.message.as_str())),
        Some((
            Some("door_probe"),
            "door_probe must be an integer, got \"x\""
        ))
    );
    let e = c
        .enqueue(TaskType::Txt2img, &probe(json!(9)))
        .await
        .expect_err("its bound too");
    assert_eq!(
        e.body().map(|b| b.message.as_str()),
        Some("door_probe must be at most 8, got 9")
    );
    c.enqueue(TaskType::Txt2img, &probe(json!("3")))
        .await
        .expect("a value it takes");
    // The document lacks img2img and Control models: the committed table's apply there.
    let mut b = base(TaskType::Img2img);
    b.insert("denoising_strength".into(), json!("half"));
    let e = c
        .enqueue(TaskType::Img2img, &body(Value::Object(b)))
        .await
        .expect_err("the table's img2img model");
    assert_eq!(
        e.body().and_then(|b| b.path.as_deref()),
        Some("denoising_strength")
    );
    // The same field against the committed table: unknown there, so it passes through.
    let s = paused_stack().await;
    let id = s
        .client()
        .enqueue(TaskType::Txt2img, &probe(json!("x")))
        .await
        .expect("an unknown field passes")
        .task_id;
    assert_eq!(
        s.client().task_request(&id).await.expect("req").request["door_probe"],
        json!("x")
    );
}

/// Finding 3: an import beyond `import_max_items` is 413 naming the cap and imports
/// nothing; within it, every rejected item is counted and the first 1000 listed (index,
/// reason, path); a body that is not JSON is 400, content that is not an array 422.
#[tokio::test]
async fn import_is_capped_and_reports_rejections_as_a_count_and_the_first_thousand() {
    let s = paused_stack().await;
    let c = s.client();
    c.update_settings(&SettingsPatch {
        import_max_items: Some(1500),
        ..SettingsPatch::default()
    })
    .await
    .expect("settings");
    assert_eq!(c.settings().await.expect("settings").import_max_items, 1500);
    let item =
        |steps: Value| json!({"type": "txt2img", "params": {"prompt": "imp", "steps": steps}});
    let over: Vec<Value> = (0..1501).map(|_| item(json!(2))).collect();
    let e = c
        .import(&ImportRequest {
            content: serde_json::to_string(&over).expect("json"),
        })
        .await
        .expect_err("over the cap");
    assert_eq!(
        (e.status(), e.body().map(|b| b.message.as_str())),
        (
            Some(413),
            Some(
                "the import holds more than 1500 items (setting import_max_items); nothing was imported"
            )
        )
    );
    assert_eq!(queue_ids(c).await.len(), 0, "nothing imported");
    // 1200 bad items and 300 good ones.
    let mut items: Vec<Value> = (0..1200).map(|_| item(json!("many"))).collect();
    items.extend((0..300).map(|_| item(json!(2))));
    let r = c
        .import(&ImportRequest {
            content: serde_json::to_string(&items).expect("json"),
        })
        .await
        .expect("import");
    assert_eq!(r.rejected_count, 1200);
    assert_eq!(r.rejected.len(), 1000);
    assert_eq!(
        r.rejected.iter().map(|x| x.index).collect::<Vec<_>>(),
        (0..1000).collect::<Vec<_>>()
    );
    assert!(r.rejected.iter().all(|x| x.path.as_deref() == Some("steps")
        && x.reason == "steps must be an integer, got \"many\""));
    assert_eq!(r.imported.len(), 300);
    assert_eq!(r.message, "Imported 300 tasks; 1200 rejected");
    let raw = |b: &'static [u8]| async move {
        c.raw(
            scheduler_api::client::Method::Post,
            scheduler_api::routes::IMPORT,
        )
        .body(b.to_vec(), "application/json")
        .send()
        .await
        .expect("answers")
    };
    let r = raw(br#"{"content": "[1]""#).await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let r = raw(br#"{"content": "{\"a\": 1}"}"#).await;
    assert_eq!(r.status, 422);
    let m: Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(m["message"], "Import failed: content is not a JSON array");
    assert_eq!(queue_ids(c).await.len(), 300);
}
