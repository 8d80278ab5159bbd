//! Pins the JSON shapes existing AgentScheduler clients parse, and the extension id.

use super::*;
use serde_json::json;

fn sample_task(time: WireTime) -> Task {
    Task {
        id: "t1".into(),
        api_task_id: None,
        api_task_callback: None,
        name: Some("n".into()),
        task_type: TaskType::Txt2img,
        status: TaskStatus::Pending,
        params: json!({"prompt": "a cat", "checkpoint": null})
            .as_object()
            .unwrap()
            .clone(),
        priority: 5,
        position: Some(0),
        result: None,
        bookmarked: false,
        created_at: time.clone(),
        updated_at: time,
        attempts: 0,
        backend: None,
        error: None,
        image_count: 0,
        has_page_snapshot: false,
        next_run_at: None,
        projection: None,
        group_id: None,
        started_at: None,
        finished_at: None,
    }
}

#[test]
fn task_json_keeps_the_original_field_names_and_types() {
    let v = serde_json::to_value(sample_task(WireTime::Epoch(1_700_000_000_000))).unwrap();
    assert_eq!(v["type"], "txt2img");
    assert_eq!(v["status"], "pending");
    assert!(v["priority"].is_i64());
    assert!(v["created_at"].is_i64());
    assert!(v["result"].is_null());
    for key in [
        "id",
        "api_task_id",
        "api_task_callback",
        "name",
        "params",
        "position",
        "bookmarked",
        "updated_at",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let iso =
        serde_json::to_value(sample_task(WireTime::Iso("2026-01-01T00:00:00Z".into()))).unwrap();
    assert_eq!(iso["created_at"], "2026-01-01T00:00:00Z");
    let back: Task = serde_json::from_value(iso).unwrap();
    assert_eq!(
        back.created_at,
        WireTime::Iso("2026-01-01T00:00:00Z".into())
    );
}

#[test]
fn an_original_task_without_additive_fields_still_parses() {
    let v = json!({"id":"x","api_task_id":null,"api_task_callback":null,"name":null,"type":"img2img",
        "status":"done","params":{},"priority":1,"position":null,"result":"{\"images\":[]}",
        "bookmarked":true,"created_at":1,"updated_at":2});
    let t: Task = serde_json::from_value(v).unwrap();
    assert_eq!(t.task_type, TaskType::Img2img);
    assert_eq!(t.attempts, 0);
}

#[test]
fn enqueue_request_lifts_host_fields_and_passes_the_rest_through() {
    let r: EnqueueRequest = serde_json::from_value(json!({
        "prompt": "p", "steps": 4, "checkpoint": "anime/*", "callback_url": "http://x/cb",
        "override_settings": {"sd_model_checkpoint": "m"}
    }))
    .unwrap();
    assert_eq!(r.checkpoint.as_deref(), Some("anime/*"));
    assert_eq!(r.params["steps"], 4);
    assert!(r.params.get("checkpoint").is_none());
    assert!(r.params.contains_key("override_settings"));
}

#[test]
fn error_body_is_success_false_with_message() {
    let e = MessageResponse {
        success: false,
        message: "Task not found".into(),
        code: Some(ErrorCode::TaskNotFound),
        path: None,
    };
    assert_eq!(
        serde_json::to_value(e).unwrap(),
        json!({"success": false, "message": "Task not found", "code": "task_not_found"})
    );
}

#[test]
fn settings_patch_tells_null_from_absent() {
    let p: SettingsPatch = serde_json::from_value(json!({"history_retention_days": null})).unwrap();
    assert_eq!(p.history_retention_days, Some(None));
    let p: SettingsPatch = serde_json::from_value(json!({})).unwrap();
    assert_eq!(p.history_retention_days, None);
    let p: SettingsPatch = serde_json::from_value(json!({"history_retention_days": 7})).unwrap();
    assert_eq!(p.history_retention_days, Some(Some(7)));
}

#[test]
fn events_round_trip_through_their_sse_form() {
    let e = Event::Progress(ProgressEvent {
        task_id: "t".into(),
        progress: 0.5,
        eta_s: Some(2.0),
        step: 3,
        steps: 6,
    });
    assert_eq!(e.name(), "progress");
    assert_eq!(Event::from_sse(e.name(), &e.data_json()), Some(e));
    assert_eq!(Event::from_sse("nope", "{}"), None);
}

#[test]
fn folder_match_uses_whole_segments() {
    assert!(checkpoint_in_folder("anime/a", "anime"));
    assert!(checkpoint_in_folder("anime\\sub\\b [abc]", "anime"));
    assert!(checkpoint_in_folder("anime/sub/b", "anime/sub"));
    assert!(!checkpoint_in_folder("anime2/x", "anime"));
    assert!(!checkpoint_in_folder("anime", "anime"));
    assert!(!checkpoint_in_folder("x", ""));
}

#[test]
fn path_helpers_encode_ids() {
    assert_eq!(
        routes::task_path(routes::TASK, "a b"),
        "/agent-scheduler/v1/task/a%20b"
    );
    assert_eq!(
        routes::move_path("a", "top"),
        "/agent-scheduler/v1/task/a/move/top"
    );
}

#[test]
fn extension_id_is_derived_from_the_manifest_key() {
    use base64::Engine;
    use sha2::Digest;
    let manifest = include_str!("../../../extension-manifest/manifest.json");
    let v: serde_json::Value = serde_json::from_str(manifest).unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(v["key"].as_str().unwrap())
        .unwrap();
    let digest = sha2::Sha256::digest(&der);
    let id: String = digest[..16]
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .map(|n| (b'a' + n) as char)
        .collect();
    assert_eq!(id, EXTENSION_ID);
    assert_eq!(EXTENSION_ORIGIN, format!("chrome-extension://{id}"));
}

#[test]
fn move_targets_round_trip_through_the_path_segment() {
    for t in [
        MoveTarget::Top,
        MoveTarget::Bottom,
        MoveTarget::Before("abc.1".into()),
    ] {
        assert_eq!(MoveTarget::parse(t.over_id()), t);
    }
}

#[test]
fn control_is_an_additive_task_type_with_its_own_route() {
    assert_eq!(
        serde_json::to_value(TaskType::Control).unwrap(),
        json!("control")
    );
    assert_eq!(
        serde_json::from_value::<TaskType>(json!("control")).unwrap(),
        TaskType::Control
    );
    for t in [TaskType::Txt2img, TaskType::Img2img, TaskType::Control] {
        assert_eq!(TaskType::parse(t.as_str()), Some(t));
        assert_eq!(serde_json::to_value(t).unwrap(), json!(t.as_str()));
    }
    assert_eq!(routes::QUEUE_CONTROL, "/agent-scheduler/v1/queue/control");
    assert_eq!(TaskType::Control.queue_route(), routes::QUEUE_CONTROL);
    assert_eq!(TaskType::Txt2img.queue_route(), routes::QUEUE_TXT2IMG);
    assert_eq!(TaskType::Img2img.queue_route(), routes::QUEUE_IMG2IMG);
    let v = json!({"id":"c","api_task_id":null,"api_task_callback":null,"name":null,"type":"control",
        "status":"pending","params":{},"priority":1,"position":0,"result":null,
        "bookmarked":false,"created_at":1,"updated_at":2});
    let t: Task = serde_json::from_value(v).unwrap();
    assert_eq!(t.task_type, TaskType::Control);
}

#[test]
fn workbench_additions_have_stable_wire_forms() {
    // A task from an older host (no group, no run times) still decodes.
    let mut v = serde_json::to_value(sample_task(WireTime::Epoch(1))).unwrap();
    for k in ["group_id", "started_at", "finished_at"] {
        v.as_object_mut().unwrap().remove(k);
    }
    let t: Task = serde_json::from_value(v).unwrap();
    assert_eq!(
        (t.group_id, t.started_at, t.finished_at),
        (None, None, None)
    );
    // Bulk requests: ids, or a filter minus exceptions.
    let by_ids = BulkRequest {
        action: BulkAction::MoveTop,
        selection: Selection::ids(["a", "b"]),
    };
    assert_eq!(
        serde_json::to_value(&by_ids).unwrap(),
        json!({"action": "move_top", "selection": {"ids": ["a", "b"]}})
    );
    let by_filter: BulkRequest = serde_json::from_value(json!({
        "action": "delete",
        "selection": {"filter": {"list": "history", "status": "failed", "q": "fox"}, "except": ["c"]}
    }))
    .unwrap();
    assert_eq!(by_filter.action, BulkAction::Delete);
    let f = by_filter.selection.filter.unwrap();
    assert_eq!(
        (f.list, f.status, f.q.as_deref()),
        (
            ListName::History,
            Some(HistoryFilter::Status(TaskStatus::Failed)),
            Some("fox")
        )
    );
    assert_eq!(by_filter.selection.except, ["c"]);
    for a in [
        BulkAction::Delete,
        BulkAction::Requeue,
        BulkAction::Bookmark,
        BulkAction::Unbookmark,
        BulkAction::MoveTop,
        BulkAction::MoveBottom,
    ] {
        assert_eq!(serde_json::to_value(a).unwrap(), json!(a.as_str()));
    }
    assert!(serde_json::from_value::<BulkAction>(json!("explode")).is_err());
    // Sort and image size words.
    assert_eq!(
        serde_json::to_value(HistorySort::Checkpoint).unwrap(),
        json!("checkpoint")
    );
    assert_eq!(
        serde_json::from_value::<ImageQuery>(json!({"size": "thumb"}))
            .unwrap()
            .size,
        Some(ImageSize::Thumb)
    );
    assert_eq!(
        routes::thumb_path("a b", 2, Some(7)),
        "/agent-scheduler/v1/task/a%20b/images/2?size=thumb&v=7"
    );
}
