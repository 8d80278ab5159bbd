use super::*;
use serde_json::json;

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn ranks_leave_gaps_and_find_midpoints() {
    assert_eq!(rank_at_end(None), 0);
    assert_eq!(rank_at_end(Some(5)), 5 + RANK_GAP);
    assert_eq!(rank_at_head(Some(0)), -RANK_GAP);
    assert_eq!(rank_between(Some(0), 10), Some(5));
    assert_eq!(rank_between(Some(4), 5), None);
    assert_eq!(rank_between(None, 10), Some(10 - RANK_GAP));
}

#[test]
fn recovery_requeues_until_max_attempts() {
    assert_eq!(recover_running(0, 3), Recovery::Requeue { attempts: 1 });
    assert_eq!(recover_running(1, 3), Recovery::Requeue { attempts: 2 });
    match recover_running(2, 3) {
        Recovery::Fail { attempts, reason } => {
            assert_eq!(attempts, 3);
            assert_eq!(reason, "interrupted by host restart; 3 attempts");
        }
        other => panic!("{other:?}"),
    }
    assert!(auto_requeue(true, 1, 3));
    assert!(!auto_requeue(true, 3, 3));
    assert!(!auto_requeue(false, 1, 3));
}

#[test]
fn enqueue_lifts_checkpoint_and_vae_out_of_the_request() {
    let spec = prepare_enqueue(
        TaskType::Txt2img,
        obj(json!({"prompt": "p", "override_settings": {"sd_model_checkpoint": "m1", "sd_vae": "v", "x": 1},
                   "send_images": false, "name": "n", "page_snapshot": {"a": 1}})),
    )
    .unwrap();
    assert_eq!(spec.checkpoint, CheckpointSpec::Title("m1".into()));
    assert_eq!(spec.vae.as_deref(), Some("v"));
    assert_eq!(spec.name.as_deref(), Some("n"));
    assert_eq!(spec.request["override_settings"], json!({"x": 1}));
    assert!(spec.request.get("send_images").is_none());
    assert!(spec.request.get("page_snapshot").is_none());
    let spec = prepare_enqueue(
        TaskType::Txt2img,
        obj(json!({"sd_model_checkpoint": "top", "checkpoint": "explicit"})),
    )
    .unwrap();
    assert_eq!(spec.checkpoint, CheckpointSpec::Title("explicit".into()));
    assert!(spec.request.get("sd_model_checkpoint").is_none());
    let spec = prepare_enqueue(
        TaskType::Txt2img,
        obj(json!({"sd_model_checkpoint": "top"})),
    )
    .unwrap();
    assert_eq!(spec.checkpoint, CheckpointSpec::Title("top".into()));
}

#[test]
fn enqueue_refuses_bad_images_and_callbacks() {
    assert!(prepare_enqueue(TaskType::Img2img, obj(json!({"prompt": "p"}))).is_err());
    assert!(prepare_enqueue(TaskType::Img2img, obj(json!({"init_images": []}))).is_err());
    assert!(
        prepare_enqueue(
            TaskType::Img2img,
            obj(json!({"init_images": ["http://x/a.png"]}))
        )
        .is_err()
    );
    assert!(
        prepare_enqueue(
            TaskType::Img2img,
            obj(json!({"init_images": ["/etc/passwd"]}))
        )
        .is_err()
    );
    assert!(
        prepare_enqueue(
            TaskType::Img2img,
            obj(
                json!({"init_images": ["data:image/png;base64,iVBORw0KGgo="], "mask": "C:\\x.png"})
            )
        )
        .is_err()
    );
    assert!(
        prepare_enqueue(
            TaskType::Img2img,
            obj(json!({"init_images": ["data:image/png;base64,iVBORw0KGgo=", "iVBORw0KGgo="]}))
        )
        .is_ok()
    );
    assert!(prepare_enqueue(TaskType::Txt2img, obj(json!({"callback_url": "ftp://x"}))).is_err());
    assert!(prepare_enqueue(TaskType::Txt2img, obj(json!({"callback_url": "http://"}))).is_err());
    assert!(
        prepare_enqueue(
            TaskType::Txt2img,
            obj(json!({"callback_url": "https://h:1/cb?x=1"}))
        )
        .is_ok()
    );
    assert!(prepare_enqueue(TaskType::Txt2img, obj(json!({"checkpoint": 5}))).is_err());
}

#[test]
fn checkpoint_specs_and_expansion() {
    assert_eq!(checkpoint_spec(None), CheckpointSpec::Loaded);
    assert_eq!(checkpoint_spec(Some("System")), CheckpointSpec::Loaded);
    assert_eq!(checkpoint_spec(Some("*")), CheckpointSpec::All);
    assert_eq!(
        checkpoint_spec(Some("anime/*")),
        CheckpointSpec::Folder("anime".into())
    );
    let titles: Vec<String> = ["anime/a [1]", "anime2/b", "anime\\sub\\c", "real"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let got = expand_checkpoints(&CheckpointSpec::Folder("anime".into()), &titles).unwrap();
    assert_eq!(
        got,
        vec![
            Some("anime/a [1]".to_string()),
            Some("anime\\sub\\c".to_string())
        ]
    );
    assert_eq!(
        expand_checkpoints(&CheckpointSpec::All, &titles)
            .unwrap()
            .len(),
        4
    );
    assert!(expand_checkpoints(&CheckpointSpec::Folder("nope".into()), &titles).is_err());
    assert!(expand_checkpoints(&CheckpointSpec::All, &[]).is_err());
    let ids = expansion_ids(3);
    assert_eq!(ids[1], format!("{}.1", ids[0]));
    assert!(ids.iter().all(|i| valid_task_id(i)));
}

#[test]
fn ids_are_validated() {
    assert!(valid_task_id("0b5e-aa.2"));
    assert!(!valid_task_id("../x"));
    assert!(!valid_task_id("a/b"));
    assert!(!valid_task_id(""));
    assert!(!valid_task_id(".hidden"));
    assert!(!valid_task_id("task(abc)"));
}

#[test]
fn merge_is_shallow_and_null_removes() {
    let mut req = obj(json!({"prompt": "a", "steps": 3, "override_settings": {"x": 1}}));
    merge_params(
        TaskType::Txt2img,
        &mut req,
        obj(json!({"prompt": "b", "steps": null, "override_settings": {"y": 2}})),
    )
    .unwrap();
    assert_eq!(
        req,
        obj(json!({"prompt": "b", "override_settings": {"y": 2}}))
    );
    let lifted = merge_params(
        TaskType::Txt2img,
        &mut req,
        obj(json!({"override_settings": {"sd_model_checkpoint": "m", "sd_vae": "v", "z": 1}})),
    )
    .unwrap();
    assert_eq!(lifted.checkpoint.as_deref(), Some("m"));
    assert_eq!(lifted.vae.as_deref(), Some("v"));
    assert_eq!(req["override_settings"], json!({"z": 1}));
    let mut img = obj(json!({"init_images": ["iVBO"]}));
    assert!(
        merge_params(
            TaskType::Img2img,
            &mut img,
            obj(json!({"init_images": null}))
        )
        .is_err()
    );
    assert_eq!(img, obj(json!({"init_images": ["iVBO"]})));
}

#[test]
fn fts_queries_are_quoted() {
    assert_eq!(fts_query("  "), None);
    assert_eq!(fts_query("a \"b"), Some("\"a\" \"\"\"b\"*".into()));
    assert_eq!(
        expected_images(&obj(json!({"n_iter": 2, "batch_size": 3}))),
        6
    );
    assert_eq!(expected_images(&obj(json!({}))), 1);
}

#[test]
fn import_reads_ours_and_original_api_tasks_and_refuses_ui_tasks() {
    let ours = json!({"id": "abc", "type": "txt2img", "name": "n", "params": {"prompt": "p", "checkpoint": "m", "vae": null},
                      "script_params": null, "bookmarked": true});
    let it = import_item(&ours).unwrap();
    assert_eq!(it.id.as_deref(), Some("abc"));
    assert_eq!(it.body["checkpoint"], "m");
    assert_eq!(it.body["name"], "n");
    assert!(it.bookmarked);
    let orig = json!({"id": "task(x)", "type": "txt2img", "params": {"args": {"prompt": "q", "override_settings": {"sd_model_checkpoint": "m2"}},
                      "checkpoint": null, "is_ui": false, "is_img2img": true}, "script_params": "eJzL"});
    let it = import_item(&orig).unwrap();
    assert_eq!(it.id, None);
    assert_eq!(it.task_type, TaskType::Img2img);
    assert_eq!(it.body["prompt"], "q");
    let ui = json!({"id": "task(y)", "type": "txt2img", "params": {"args": {}, "is_ui": true}});
    assert!(import_item(&ui).unwrap_err().0.contains("UI task"));
    assert!(import_item(&json!(5)).is_err());
    assert!(import_item(&json!({"type": "x", "params": {}})).is_err());
}
