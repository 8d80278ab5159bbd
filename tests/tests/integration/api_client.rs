//! The typed client of `scheduler-api` (feature `client`) against the host in this process
//! and the fake SD.Next: every route through its method, the typed error, the raw escape
//! hatch, bearer tokens and the event stream with `Last-Event-ID` resume, and its reconnect
//! after the real host binary is killed and restarted.

use scheduler_api::client::{Client, ClientError, Method, StreamItem};
use scheduler_api::{
    EnqueueRequest, ErrorCode, Event, HistoryFilter, ImportRequest, ListQuery, MoveTarget,
    SettingsPatch, TaskChange, TaskStatus, TaskType, UpdateTaskRequest, WireTime, routes,
};
use scheduler_tests::harness::{HostProcess, wait_until};
use serde_json::json;

use crate::host_support::*;

fn request(prompt: &str) -> EnqueueRequest {
    let mut r = EnqueueRequest::default();
    for (k, v) in [
        ("prompt", json!(prompt)),
        ("steps", json!(3)),
        ("width", json!(64)),
        ("height", json!(64)),
        ("seed", json!(1)),
    ] {
        r.params.insert(k.into(), v);
    }
    r
}

async fn wait_status(c: &Client, id: &str, status: TaskStatus) -> scheduler_api::Task {
    wait_until(&format!("task {id} {}", status.as_str()), LONG, || async {
        c.task(id).await.ok().filter(|t| t.status == status)
    })
    .await
}

fn refused(e: ClientError) -> (u16, Option<ErrorCode>) {
    match &e {
        ClientError::Refused { status, body } => {
            assert!(!body.success, "error bodies say success: false: {body:?}");
            (*status, body.code)
        }
        other => panic!("expected a refused request, got {other:?}"),
    }
}

/// The next stream item within the test deadline.
async fn next_item(s: &mut scheduler_api::client::EventStream) -> StreamItem {
    tokio::time::timeout(LONG, s.next())
        .await
        .expect("an event stream item before the deadline")
        .expect("the stream keeps going")
}

/// Skips items until `pred` matches one.
async fn next_matching(
    s: &mut scheduler_api::client::EventStream,
    what: &str,
    pred: impl Fn(&StreamItem) -> bool,
) -> StreamItem {
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let item = tokio::time::timeout(left, s.next())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .expect("the stream keeps going");
        if pred(&item) {
            return item;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_queue_and_task_route_answers_typed() {
    let s = Stack::start(
        FakeArgs::new()
            .step_ms(1)
            .checkpoints(&["a", "b"])
            .loaded("a"),
        &[],
    )
    .await;
    let c = s.client().clone();

    assert_eq!(c.pause().await.unwrap().message, "Queue paused.");
    let h = c.health().await.unwrap();
    assert_eq!((h.status.as_str(), h.paused), ("ok", true));

    let first = c.enqueue(TaskType::Txt2img, &request("one")).await.unwrap();
    assert_eq!(first.task_ids, vec![first.task_id.clone()]);
    let again = c
        .enqueue_idempotent(TaskType::Txt2img, &request("two"), "key-1")
        .await
        .unwrap();
    let same = c
        .enqueue_idempotent(TaskType::Txt2img, &request("two"), "key-1")
        .await
        .unwrap();
    assert_eq!(same, again);
    let mut all = request("every checkpoint");
    all.checkpoint = Some(scheduler_api::ALL_CHECKPOINTS.into());
    let fan = c.enqueue(TaskType::Txt2img, &all).await.unwrap();
    assert_eq!(fan.task_ids.len(), 2);

    let q = c
        .queue(&ListQuery {
            limit: Some(2),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!((q.total_pending_tasks, q.pending_tasks.len()), (4, 2));
    assert!(q.paused);
    let found = c
        .queue(&ListQuery {
            q: Some("every checkpoint".into()),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.total_pending_tasks, 2);

    let t = c.task(&first.task_id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Pending);
    assert!(matches!(t.created_at, WireTime::Iso(_)), "{t:?}");
    assert_eq!(t.params["prompt"], "one");
    let stored = c.task_request(&first.task_id).await.unwrap();
    assert_eq!(stored.request["prompt"], "one");
    assert_eq!(stored.task_type, TaskType::Txt2img);
    assert_eq!(c.position(&again.task_id).await.unwrap().position, Some(1));

    c.update_task(
        &first.task_id,
        &UpdateTaskRequest {
            name: Some("edited".into()),
            checkpoint: Some("b".into()),
            params: Some(json!({"steps": 7}).as_object().unwrap().clone()),
        },
    )
    .await
    .unwrap();
    let t = c.task(&first.task_id).await.unwrap();
    assert_eq!(
        (
            t.name.as_deref(),
            &t.params["checkpoint"],
            &t.params["steps"]
        ),
        (Some("edited"), &json!("b"), &json!(7))
    );
    c.rename(&first.task_id, "a name & more").await.unwrap();
    assert_eq!(
        c.task(&first.task_id).await.unwrap().name.as_deref(),
        Some("a name & more")
    );
    c.bookmark(&first.task_id, true).await.unwrap();
    assert!(c.task(&first.task_id).await.unwrap().bookmarked);
    c.bookmark(&first.task_id, false).await.unwrap();
    assert!(!c.task(&first.task_id).await.unwrap().bookmarked);

    // Moves are checked in rank order: strict FIFO (no checkpoint grouping).
    let fifo = scheduler_api::SettingsPatch {
        group_by_checkpoint: Some(false),
        ..Default::default()
    };
    assert!(!c.update_settings(&fifo).await.unwrap().group_by_checkpoint);
    c.move_task(&fan.task_ids[1], &MoveTarget::Top)
        .await
        .unwrap();
    c.move_task(&first.task_id, &MoveTarget::Bottom)
        .await
        .unwrap();
    c.move_task(&fan.task_ids[0], &MoveTarget::Before(again.task_id.clone()))
        .await
        .unwrap();
    let order: Vec<String> = c
        .queue(&ListQuery::default())
        .await
        .unwrap()
        .pending_tasks
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(
        order,
        vec![
            fan.task_ids[1].clone(),
            fan.task_ids[0].clone(),
            again.task_id.clone(),
            first.task_id.clone()
        ]
    );

    // Export, then import the export: every task comes back as a new one.
    let exported = c.export(None, None).await.unwrap();
    assert_eq!(exported.len(), 4);
    let one = c.export(Some(1), Some(1)).await.unwrap();
    assert_eq!(one.len(), 1);
    let content = serde_json::to_string(&exported).unwrap();
    let imported = c.import(&ImportRequest { content }).await.unwrap();
    assert_eq!((imported.imported.len(), imported.rejected.len()), (4, 0));
    let bad = c
        .import(&ImportRequest {
            content: "{}".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused(bad), (422, Some(ErrorCode::Invalid)));

    // Wrong state, unknown id, invalid value: the typed error carries status and code.
    assert_eq!(
        refused(c.results(&first.task_id).await.unwrap_err()),
        (409, Some(ErrorCode::Conflict))
    );
    assert_eq!(
        refused(c.task("no-such-task").await.unwrap_err()),
        (404, Some(ErrorCode::TaskNotFound))
    );
    let e = c
        .update_settings(&SettingsPatch {
            max_attempts: Some(0),
            ..SettingsPatch::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused(e), (422, Some(ErrorCode::Invalid)));

    // The raw escape hatch: a malformed body.
    let raw = c
        .raw(Method::Post, routes::QUEUE_TXT2IMG)
        .body("{\"prompt\": ", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status, 400);
    assert_eq!(raw.message().unwrap().code, Some(ErrorCode::BadRequest));

    // Delete, clear.
    c.delete_task(&again.task_id).await.unwrap();
    assert_eq!(
        refused(c.task(&again.task_id).await.unwrap_err()),
        (404, Some(ErrorCode::TaskNotFound))
    );
    c.bookmark(&first.task_id, true).await.unwrap();
    c.clear_queue().await.unwrap();
    let left = c.queue(&ListQuery::default()).await.unwrap();
    let left: Vec<String> = left.pending_tasks.into_iter().map(|t| t.id).collect();
    assert_eq!(left, vec![first.task_id.clone()], "bookmarked tasks stay");

    // Run now while paused.
    c.run_task(&first.task_id).await.unwrap();
    let done = wait_status(&c, &first.task_id, TaskStatus::Done).await;
    assert_eq!(done.image_count, 1);
    assert_eq!(c.resume().await.unwrap().message, "Queue resumed.");
    assert!(!c.health().await.unwrap().paused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_images_history_and_requeue_through_the_client() {
    let s = Stack::start(FakeArgs::fast_a(), &[]).await;
    let c = s.client().clone();
    let id = c
        .enqueue(TaskType::Txt2img, &request("a red fox"))
        .await
        .unwrap()
        .task_id;
    let t = wait_status(&c, &id, TaskStatus::Done).await;
    assert_eq!(t.image_count, 1);

    let results = c.results(&id).await.unwrap();
    assert_eq!(results.len(), 1);
    assert!(
        results[0].image.starts_with("data:image/png;base64,"),
        "{}",
        &results[0].image[..40]
    );
    assert!(results[0].infotext.starts_with("a red fox"), "{results:?}");
    let img = c.image(&id, 0).await.unwrap();
    assert_eq!(img.content_type, "image/jpeg");
    assert_eq!(img.extension(), "jpg");
    assert_eq!(&img.bytes[..2], &[0xFF, 0xD8]);
    assert_eq!(
        refused(c.image(&id, 5).await.unwrap_err()),
        (404, Some(ErrorCode::NotFound))
    );
    let zip = c.results_zip(&id).await.unwrap();
    assert_eq!(&zip[..4], b"PK\x03\x04");

    let h = c
        .history(
            HistoryFilter::Status(TaskStatus::Done),
            &ListQuery::default(),
        )
        .await
        .unwrap();
    assert_eq!((h.total, h.tasks[0].id.as_str()), (1, id.as_str()), "{h:?}");
    let none = c
        .history(HistoryFilter::Bookmarked, &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(none.total, 0);

    let copy = c.requeue(&id).await.unwrap();
    assert!(copy.success);
    assert_ne!(copy.task_id, id);
    wait_status(&c, &copy.task_id, TaskStatus::Done).await;
    let nothing = c.requeue_failed().await.unwrap();
    assert_eq!(
        (nothing.success, nothing.message.as_str()),
        (false, "No failed tasks")
    );

    c.clear_history().await.unwrap();
    let h = c
        .history(HistoryFilter::All, &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(h.total, 0);

    let settings = c.settings().await.unwrap();
    let changed = c
        .update_settings(&SettingsPatch {
            max_attempts: Some(settings.max_attempts + 1),
            history_retention_days: Some(None),
            ..SettingsPatch::default()
        })
        .await
        .unwrap();
    assert_eq!(changed.max_attempts, settings.max_attempts + 1);
    assert_eq!(changed.history_retention_days, None);
    assert_eq!(c.settings().await.unwrap(), changed);

    let backends = c.backends().await.unwrap();
    assert_eq!(backends.len(), 1);
    assert_eq!(backends[0].url, s.fake().url());
    assert_eq!(c.sd_models().await.unwrap(), vec!["a".to_owned()]);
    let cps = c.checkpoints().await.unwrap();
    assert_eq!(cps.len(), 1);
    assert_eq!(cps[0].backends, vec![s.fake().url()]);
    assert!(!c.samplers().await.unwrap().is_empty());
    let doc = c.openapi().await.unwrap();
    assert!(doc["paths"][routes::QUEUE].is_object(), "{}", doc["paths"]);
    assert!(c.docs().await.unwrap().contains("<html"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_sent_and_a_missing_one_is_refused_with_401() {
    let s = Stack::start(FakeArgs::fast_a(), &["--token", "s3cret"]).await;
    let anonymous = s.client().clone();
    assert_eq!(
        refused(anonymous.queue(&ListQuery::default()).await.unwrap_err()),
        (401, Some(ErrorCode::Unauthorized))
    );
    let c = s.client().clone().with_token(Some("s3cret".into()));
    assert_eq!(
        c.queue(&ListQuery::default())
            .await
            .unwrap()
            .total_pending_tasks,
        0
    );
    let mut events = c.events(None).reconnect(false);
    assert_eq!(next_item(&mut events).await, StreamItem::Opened);
    let mut refused_stream = anonymous.events(None).reconnect(false);
    match next_item(&mut refused_stream).await {
        StreamItem::Lost(e) => assert_eq!(refused(e), (401, Some(ErrorCode::Unauthorized))),
        other => panic!("expected a refused stream, got {other:?}"),
    }
    assert!(refused_stream.next().await.is_none());
    let raw = c
        .raw(Method::Get, routes::QUEUE)
        .without_token()
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status, 401);
    assert_eq!(raw.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_host_is_its_own_error() {
    let (_held, addr) = scheduler_tests::harness::refusing_address();
    let c = Client::new(&addr.to_string());
    assert_eq!(c.base(), format!("http://{addr}"));
    let e = c.health().await.unwrap_err();
    assert!(e.is_unreachable(), "{e:?}");
    assert_eq!(e.status(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_is_typed_resumes_after_an_id_and_reconnects_after_a_restart() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fake = scheduler_tests::harness::FakeProcess::spawn(FakeArgs::fast_a()).await;
    let mut host = HostProcess::spawn(dir.path(), &[fake.url()], &["--start-paused"]).await;
    let c = host.client.clone();

    let mut stream = c.events(None).backoff(20, 200);
    assert_eq!(next_item(&mut stream).await, StreamItem::Opened);
    let first = c
        .enqueue(TaskType::Txt2img, &request("first"))
        .await
        .unwrap();
    let seen = next_matching(&mut stream, "the first task's created event", |i| {
        matches!(i, StreamItem::Event { event: Event::Task(t), .. }
            if t.task_id == first.task_id && t.change == TaskChange::Created)
    })
    .await;
    let StreamItem::Event {
        id: Some(seen_id), ..
    } = seen
    else {
        panic!("task events carry an id: {seen:?}");
    };
    assert_eq!(stream.last_event_id().map(|l| l >= seen_id), Some(true));

    // Resume after that id: what happened since is replayed before anything live.
    let second = c
        .enqueue(TaskType::Txt2img, &request("second"))
        .await
        .unwrap();
    let mut resumed = c.events(Some(seen_id)).reconnect(false);
    assert_eq!(next_item(&mut resumed).await, StreamItem::Opened);
    // Replayed: the first task's queue counter, then the second task (ids after `seen_id`).
    loop {
        match next_item(&mut resumed).await {
            StreamItem::Event {
                id: Some(id),
                event,
            } => {
                assert!(id > seen_id, "replay starts after {seen_id}: {id}");
                if let Event::Task(t) = event {
                    assert_eq!(
                        (t.task_id, t.change),
                        (second.task_id.clone(), TaskChange::Created)
                    );
                    break;
                }
            }
            other => panic!("expected replayed events, got {other:?}"),
        }
    }

    // The host dies and comes back: the stream says so, reconnects, and goes on.
    host.sigkill().await;
    next_matching(&mut stream, "the stream to notice the kill", |i| {
        matches!(i, StreamItem::Lost(_))
    })
    .await;
    host.restart().await;
    next_matching(&mut stream, "the stream to reconnect", |i| {
        matches!(i, StreamItem::Opened)
    })
    .await;
    let third = c
        .enqueue(TaskType::Txt2img, &request("third"))
        .await
        .unwrap();
    next_matching(&mut stream, "an event after the restart", |i| {
        matches!(i, StreamItem::Event { event: Event::Task(t), .. }
            if t.task_id == third.task_id && t.change == TaskChange::Created)
    })
    .await;
}
