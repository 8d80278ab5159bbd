use scheduler_api::{EnqueueRequest, TaskStatus, TaskType};
use serde_json::{Map, Value, json};

use super::import::import_item;
use super::invalid::Invalid;
use super::rank::*;
use super::search::fts_query;
use super::spec::*;
use super::task::Lifecycle;
use super::transition::*;

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn req(v: Value) -> EnqueueRequest {
    serde_json::from_value(v).expect("an enqueue body")
}

fn parse(t: TaskType, v: Value) -> Result<TaskSpec, Invalid> {
    TaskSpec::parse(t, req(v))
}

fn refused(t: TaskType, v: Value) -> String {
    parse(t, v).expect_err("refused").0
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

// ---------------------------------------------------------------------------------------
// The transition function

const POLICY: Policy = Policy {
    auto_requeue_failed: false,
    max_attempts: 3,
    retry_backoff_ms: 1000,
};
const REQUEUE: Policy = Policy {
    auto_requeue_failed: true,
    max_attempts: 3,
    retry_backoff_ms: 1000,
};

fn life(status: TaskStatus, attempts: u32) -> Lifecycle {
    Lifecycle {
        status,
        attempts,
        backend: (status != TaskStatus::Pending).then(|| "http://b".to_owned()),
        error: None,
        started_at: (status != TaskStatus::Pending).then_some(10),
        finished_at: status.is_finished().then_some(20),
        run_next: None,
        force_run: false,
        next_run_at: None,
        fence: (status != TaskStatus::Pending).then_some(4),
        stop_requested: false,
    }
}

/// A running task whose user asked to stop it (a `DELETE` while it ran).
fn stop_requested(attempts: u32) -> Lifecycle {
    Lifecycle {
        stop_requested: true,
        ..life(TaskStatus::Running, attempts)
    }
}

fn change(t: Result<Transition, Refusal>) -> Change {
    match t {
        Ok(Transition::Change(c)) => c,
        other => panic!("expected a change, got {other:?}"),
    }
}

fn finished(end: RunEnd) -> Event {
    Event::Finished { end, at: 50 }
}

#[test]
fn a_claim_runs_a_pending_task_on_its_backend_and_leaves_the_run_next_group() {
    let from = Lifecycle {
        run_next: Some(1),
        force_run: true,
        next_run_at: Some(3),
        error: Some("old".into()),
        fence: Some(2),
        stop_requested: true,
        ..Lifecycle::pending()
    };
    let c = change(decide(
        &from,
        &Event::Claim {
            backend: "http://b".into(),
            fence: 9,
        },
        &POLICY,
        7,
    ));
    assert_eq!(
        c,
        Change {
            next: Lifecycle {
                status: TaskStatus::Running,
                attempts: 0,
                backend: Some("http://b".into()),
                error: None,
                started_at: Some(7),
                finished_at: None,
                run_next: None,
                force_run: false,
                next_run_at: None,
                fence: Some(9),
                stop_requested: false,
            },
            place: Place::Keep,
            outputs: Outputs::Keep,
            callback: false,
        }
    );
}

#[test]
fn an_errored_request_counts_an_attempt_backs_off_and_fails_after_max_attempts() {
    let errored = |attempts| {
        decide(
            &life(TaskStatus::Running, attempts),
            &Event::Errored {
                reason: "SD.Next: HTTP 502".into(),
            },
            &POLICY,
            1_000,
        )
    };
    let first = change(errored(0));
    assert_eq!(first.next.status, TaskStatus::Pending);
    assert_eq!(first.next.attempts, 1);
    assert_eq!(first.next.next_run_at, Some(2_000), "base delay");
    assert_eq!(first.next.backend, None);
    assert_eq!(first.place, Place::Head);
    assert!(!first.callback);
    let second = change(errored(1));
    assert_eq!(second.next.next_run_at, Some(3_000), "the delay doubles");
    let last = change(errored(2));
    assert_eq!(last.next.status, TaskStatus::Failed);
    assert_eq!(last.next.attempts, 3);
    assert_eq!(
        last.next.error.as_deref(),
        Some("SD.Next: HTTP 502 (3 attempts)")
    );
    assert_eq!(last.next.next_run_at, None);
    assert!(last.callback);
    // Only a running task can have errored.
    assert_eq!(
        decide(
            &life(TaskStatus::Pending, 0),
            &Event::Errored { reason: "x".into() },
            &POLICY,
            1
        ),
        Err(Refusal::Status(TaskStatus::Pending))
    );
    // Capped at an hour, never below the base.
    let p = Policy {
        retry_backoff_ms: 10_000,
        ..POLICY
    };
    assert_eq!(p.retry_delay_ms(1), 10_000);
    assert_eq!(p.retry_delay_ms(4), 80_000);
    assert_eq!(p.retry_delay_ms(40), 3_600_000);
}

#[test]
fn a_finished_run_records_its_outputs_and_calls_back() {
    let from = life(TaskStatus::Running, 0);
    let done = change(decide(&from, &finished(RunEnd::Done), &REQUEUE, 99));
    assert_eq!(done.next.status, TaskStatus::Done);
    assert_eq!(done.next.finished_at, Some(50));
    assert_eq!(done.next.attempts, 0);
    assert_eq!(done.outputs, Outputs::Record { images: true });
    assert!(done.callback);
    let stopped = change(decide(&from, &finished(RunEnd::Interrupted), &REQUEUE, 99));
    assert_eq!(stopped.next.status, TaskStatus::Interrupted);
    assert_eq!(stopped.next.attempts, 0);
    assert_eq!(
        stopped.outputs,
        Outputs::Record { images: false },
        "an interrupted job's placeholder is not a result"
    );
    let failed = change(decide(
        &from,
        &finished(RunEnd::Failed("x".into())),
        &POLICY,
        99,
    ));
    assert_eq!(failed.next.status, TaskStatus::Failed);
    assert_eq!(failed.next.attempts, 1);
    assert_eq!(failed.next.error.as_deref(), Some("x"));
    assert_eq!(failed.outputs, Outputs::Record { images: true });
    assert_eq!(failed.place, Place::Keep);
}

#[test]
fn auto_requeue_is_decided_once_here_until_max_attempts() {
    let again = change(decide(
        &life(TaskStatus::Running, 1),
        &finished(RunEnd::Failed("x".into())),
        &REQUEUE,
        99,
    ));
    assert_eq!(again.next.status, TaskStatus::Pending);
    assert_eq!(again.next.attempts, 2);
    assert_eq!(again.next.error.as_deref(), Some("x"));
    assert_eq!(again.next.backend, None);
    assert_eq!(again.place, Place::Tail);
    assert_eq!(again.outputs, Outputs::Record { images: false });
    assert!(!again.callback);
    let last = change(decide(
        &life(TaskStatus::Running, 2),
        &finished(RunEnd::Failed("x".into())),
        &REQUEUE,
        99,
    ));
    assert_eq!(last.next.status, TaskStatus::Failed);
    assert_eq!(last.next.attempts, 3);
    assert!(last.callback);
}

#[test]
fn a_release_goes_to_the_head_without_an_attempt() {
    let c = change(decide(
        &life(TaskStatus::Running, 1),
        &Event::Released,
        &POLICY,
        99,
    ));
    assert_eq!(
        c.next,
        Lifecycle {
            attempts: 1,
            fence: Some(4),
            ..Lifecycle::pending()
        },
        "the fence of its last claim stays"
    );
    assert_eq!(c.place, Place::Head);
}

#[test]
fn recovery_at_start_requeues_at_the_head_until_max_attempts() {
    let c = change(decide(
        &life(TaskStatus::Running, 0),
        &Event::Recovered,
        &POLICY,
        99,
    ));
    assert_eq!(
        (c.next.status, c.next.attempts, c.place),
        (TaskStatus::Pending, 1, Place::Head)
    );
    let c = change(decide(
        &life(TaskStatus::Running, 2),
        &Event::Recovered,
        &POLICY,
        99,
    ));
    assert_eq!(c.next.status, TaskStatus::Failed);
    assert_eq!(c.next.attempts, 3);
    assert_eq!(
        c.next.error.as_deref(),
        Some("interrupted by host restart; 3 attempts")
    );
    assert_eq!(c.next.finished_at, Some(99));
    assert!(!c.callback);
}

#[test]
fn requeue_turns_a_failed_task_into_a_fresh_pending_one_at_the_tail() {
    let mut from = life(TaskStatus::Failed, 3);
    from.error = Some("boom".into());
    let c = change(decide(&from, &Event::Requeue, &POLICY, 99));
    assert_eq!(
        c.next,
        Lifecycle {
            fence: Some(4),
            ..Lifecycle::pending()
        }
    );
    assert_eq!(c.place, Place::Tail);
    assert_eq!(c.outputs, Outputs::Clear);
    assert_eq!(
        decide(&life(TaskStatus::Done, 0), &Event::Requeue, &POLICY, 99),
        Err(Refusal::Status(TaskStatus::Done))
    );
}

#[test]
fn delete_removes_or_interrupts() {
    assert_eq!(
        decide(&Lifecycle::pending(), &Event::Delete, &POLICY, 0),
        Ok(Transition::Remove { files: false })
    );
    assert_eq!(
        decide(&life(TaskStatus::Done, 0), &Event::Delete, &POLICY, 0),
        Ok(Transition::Remove { files: true })
    );
    assert_eq!(
        decide(&life(TaskStatus::Running, 0), &Event::Delete, &POLICY, 0),
        Ok(Transition::Interrupt {
            fence: Some(4),
            change: Change {
                next: stop_requested(0),
                place: Place::Keep,
                outputs: Outputs::Keep,
                callback: false,
            }
        })
    );
}

#[test]
fn a_move_leaves_the_run_next_group_and_run_now_joins_it() {
    let waiting = Lifecycle {
        run_next: Some(2),
        force_run: true,
        next_run_at: Some(5_000),
        attempts: 1,
        ..Lifecycle::pending()
    };
    let moved = change(decide(&waiting, &Event::Move, &POLICY, 9));
    assert_eq!(
        moved,
        Change {
            next: Lifecycle {
                run_next: None,
                ..waiting.clone()
            },
            place: Place::Keep,
            outputs: Outputs::Keep,
            callback: false,
        },
        "a move keeps its backoff and its run-despite-pause"
    );
    let now = |paused| {
        change(decide(
            &Lifecycle::pending(),
            &Event::RunNow {
                group_seq: 3,
                paused,
            },
            &POLICY,
            9,
        ))
        .next
    };
    assert_eq!(
        now(false),
        Lifecycle {
            run_next: Some(3),
            ..Lifecycle::pending()
        }
    );
    assert!(
        now(true).force_run,
        "run now while paused runs despite the pause"
    );
    let again = change(decide(
        &waiting,
        &Event::RunNow {
            group_seq: 4,
            paused: false,
        },
        &POLICY,
        9,
    ));
    assert_eq!(
        (
            again.next.run_next,
            again.next.force_run,
            again.next.next_run_at
        ),
        (Some(4), true, None),
        "it runs now: its backoff is over, a forced run stays forced"
    );
}

#[test]
fn a_run_the_user_stopped_ends_interrupted_however_it_ends() {
    let from = stop_requested(1);
    let ends = [
        (finished(RunEnd::Done), 50),
        (finished(RunEnd::Failed("x".into())), 50),
        (finished(RunEnd::Interrupted), 50),
        (Event::Errored { reason: "x".into() }, 99),
        (Event::Released, 99),
        (Event::Recovered, 99),
    ];
    for (event, at) in ends {
        for policy in [POLICY, REQUEUE] {
            let c = change(decide(&from, &event, &policy, 99));
            assert_eq!(
                c,
                Change {
                    next: Lifecycle {
                        status: TaskStatus::Interrupted,
                        finished_at: Some(at),
                        ..from.clone()
                    },
                    place: Place::Keep,
                    outputs: Outputs::Record { images: false },
                    callback: true,
                },
                "{event:?}"
            );
        }
    }
}

#[test]
fn edits_moves_and_run_now_need_a_pending_task() {
    let run_now = Event::RunNow {
        group_seq: 1,
        paused: false,
    };
    assert_eq!(
        decide(&Lifecycle::pending(), &Event::Edit, &POLICY, 0),
        Ok(Transition::Keep)
    );
    for e in [Event::Edit, Event::Move, run_now] {
        for s in [TaskStatus::Running, TaskStatus::Done, TaskStatus::Failed] {
            let r = decide(&life(s, 0), &e, &POLICY, 0);
            assert_eq!(r, Err(Refusal::Status(s)), "{e:?} on {s:?}");
        }
    }
    assert_eq!(
        Refusal::Status(TaskStatus::Running).to_string(),
        "Task is running"
    );
}

#[test]
fn only_running_tasks_finish_or_are_released_and_only_pending_ones_are_claimed() {
    let claim = Event::Claim {
        backend: "b".into(),
        fence: 1,
    };
    for (s, e) in [
        (TaskStatus::Running, &claim),
        (TaskStatus::Done, &claim),
        (TaskStatus::Pending, &finished(RunEnd::Done)),
        (TaskStatus::Done, &finished(RunEnd::Done)),
        (TaskStatus::Pending, &Event::Released),
        (TaskStatus::Pending, &Event::Recovered),
    ] {
        assert_eq!(
            decide(&life(s, 0), e, &POLICY, 0),
            Err(Refusal::Status(s)),
            "{e:?} on {s:?}"
        );
    }
    assert_eq!(results_available(TaskStatus::Done), Ok(()));
    assert_eq!(
        results_available(TaskStatus::Pending),
        Err(Refusal::Status(TaskStatus::Pending))
    );
}

// ---------------------------------------------------------------------------------------
// Enqueue bodies

#[test]
fn enqueue_lifts_checkpoint_and_vae_out_of_the_request() {
    let spec = parse(
        TaskType::Txt2img,
        json!({"prompt": "p", "override_settings": {"sd_model_checkpoint": "m1", "sd_vae": "v", "x": 1},
               "send_images": false, "name": "n", "page_snapshot": {"a": 1}}),
    )
    .unwrap();
    assert_eq!(spec.checkpoint, CheckpointSpec::Title("m1".into()));
    assert_eq!(spec.vae.as_deref(), Some("v"));
    assert_eq!(spec.name.as_deref(), Some("n"));
    assert_eq!(spec.page_snapshot, Some(json!({"a": 1})));
    assert_eq!(
        spec.request,
        obj(json!({"prompt": "p", "override_settings": {"x": 1}}))
    );
    let spec = parse(
        TaskType::Txt2img,
        json!({"sd_model_checkpoint": "top", "checkpoint": "explicit"}),
    )
    .unwrap();
    assert_eq!(spec.checkpoint, CheckpointSpec::Title("explicit".into()));
    assert_eq!(spec.request, Map::new());
    let spec = parse(TaskType::Txt2img, json!({"sd_model_checkpoint": "top"})).unwrap();
    assert_eq!(spec.checkpoint, CheckpointSpec::Title("top".into()));
    let spec = parse(
        TaskType::Txt2img,
        json!({"checkpoint": "System", "name": " "}),
    )
    .unwrap();
    assert_eq!(spec.checkpoint, CheckpointSpec::Loaded);
    assert_eq!(spec.name, None);
}

#[test]
fn enqueue_refuses_bad_images_and_callbacks() {
    let img2img = |v: Value| refused(TaskType::Img2img, v);
    assert_eq!(img2img(json!({"prompt": "p"})), "img2img needs init_images");
    assert_eq!(
        img2img(json!({"init_images": []})),
        "img2img needs init_images"
    );
    let not_inline =
        "init_images[0] must be base64 or a data URL (URLs and file paths are not accepted)";
    assert_eq!(
        img2img(json!({"init_images": ["http://x/a.png"]})),
        not_inline
    );
    assert_eq!(img2img(json!({"init_images": ["/etc/passwd"]})), not_inline);
    assert_eq!(
        img2img(
            json!({"init_images": ["data:image/png;base64,iVBORw0KGgo="], "mask": "C:\\x.png"})
        ),
        "mask must be base64 or a data URL (URLs and file paths are not accepted)"
    );
    assert_eq!(
        img2img(json!({"init_images": "iVBORw0KGgo="})),
        "init_images must be a list"
    );
    let ok = parse(
        TaskType::Img2img,
        json!({"init_images": ["data:image/png;base64,iVBORw0KGgo=", "iVBORw0KGgo="]}),
    )
    .unwrap();
    assert_eq!(ok.task_type, TaskType::Img2img);
    let not_http = "callback_url must be an http or https URL";
    assert_eq!(
        refused(TaskType::Txt2img, json!({"callback_url": "ftp://x"})),
        not_http
    );
    assert_eq!(
        refused(TaskType::Txt2img, json!({"callback_url": "http://"})),
        not_http
    );
    let ok = parse(
        TaskType::Txt2img,
        json!({"callback_url": "https://h:1/cb?x=1"}),
    )
    .unwrap();
    assert_eq!(ok.callback_url.as_deref(), Some("https://h:1/cb?x=1"));
    assert_eq!(
        refused(TaskType::Txt2img, json!({"sd_model_checkpoint": 5})),
        "`sd_model_checkpoint` must be a string or null"
    );
    assert_eq!(
        refused(TaskType::Txt2img, json!({"override_settings": 5})),
        "`override_settings` must be an object"
    );
    // Control: the walker names nested fields; every unit needs its image.
    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAE=";
    let control = |v: Value| refused(TaskType::Control, v);
    assert_eq!(
        control(
            json!({"control": [{"model": "m", "image": PNG}, {"model": "m", "image": "https://x/y.png"}]})
        ),
        "control[1].image must be base64 or a data URL (URLs and file paths are not accepted)"
    );
    assert_eq!(
        control(json!({"control": [{"model": "m", "process": "Canny"}]})),
        "control[0] has no image: give it `image` (SD.Next's API takes no shared input)"
    );
    assert_eq!(
        control(json!({"ip_adapter": [{"adapter": "a", "images": ["/tmp/face.png"]}]})),
        "ip_adapter[0].images[0] must be base64 or a data URL (URLs and file paths are not accepted)"
    );
    assert_eq!(
        refused(TaskType::Txt2img, json!({"init_control": ["http://x"]})),
        "init_control[0] must be base64 or a data URL (URLs and file paths are not accepted)"
    );
    let ok = parse(
        TaskType::Control,
        json!({"prompt": "p", "control": [{"model": "m", "override": PNG}], "init_control": [PNG]}),
    )
    .unwrap();
    assert_eq!(ok.task_type, TaskType::Control);
    assert!(parse(TaskType::Control, json!({"prompt": "text only"})).is_ok());
}

#[test]
fn checkpoint_specs_and_expansion() {
    assert_eq!(CheckpointSpec::parse(None), CheckpointSpec::Loaded);
    assert_eq!(
        CheckpointSpec::parse(Some("System")),
        CheckpointSpec::Loaded
    );
    assert_eq!(CheckpointSpec::parse(Some("*")), CheckpointSpec::All);
    assert_eq!(
        CheckpointSpec::parse(Some("anime/*")),
        CheckpointSpec::Folder("anime".into())
    );
    assert_eq!(
        CheckpointSpec::parse(Some("anime\\*")),
        CheckpointSpec::Folder("anime".into())
    );
    assert_eq!(
        CheckpointSpec::Folder("anime/".into())
            .to_value()
            .as_deref(),
        Some("anime/*")
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
    assert_eq!(
        expand_checkpoints(&CheckpointSpec::Folder("nope".into()), &titles),
        Err(Invalid("no checkpoints in folder `nope`".into()))
    );
    assert_eq!(
        expand_checkpoints(&CheckpointSpec::All, &[]),
        Err(Invalid("no checkpoints are listed by the backends".into()))
    );
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
        obj(json!({"prompt": "b", "steps": null, "override_settings": {"y": 2}, "name": "ignored", "send_images": false})),
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
    assert_eq!(
        merge_params(
            TaskType::Img2img,
            &mut img,
            obj(json!({"init_images": null}))
        ),
        Err(Invalid("img2img needs init_images".into()))
    );
    assert_eq!(img, obj(json!({"init_images": ["iVBO"]})));
}

#[test]
fn fts_queries_are_quoted() {
    assert_eq!(fts_query("  "), None);
    assert_eq!(fts_query("a \"b"), Some("\"a\" \"\"\"b\"*".into()));
    // NUL and control characters are dropped; whitespace controls still split words.
    assert_eq!(fts_query("\0"), None);
    assert_eq!(fts_query("a\0b\u{7}"), Some("\"ab\"*".into()));
    assert_eq!(fts_query("a\tb\""), Some("\"a\" \"b\"\"\"*".into()));
    assert_eq!(
        expected_images(
            TaskType::Txt2img,
            &obj(json!({"n_iter": 2, "batch_size": 3}))
        ),
        6
    );
    assert_eq!(expected_images(TaskType::Img2img, &obj(json!({}))), 1);
    // Control counts `batch_count` (SD.Next's name on /control), not `n_iter`.
    assert_eq!(
        expected_images(
            TaskType::Control,
            &obj(json!({"batch_count": 3, "batch_size": 2, "n_iter": 5}))
        ),
        6
    );
}

#[test]
fn import_reads_ours_and_original_api_tasks_and_refuses_ui_tasks() {
    let ours = json!({"id": "abc", "type": "txt2img", "name": "n", "params": {"prompt": "p", "checkpoint": "m", "vae": null},
                      "script_params": null, "bookmarked": true});
    let it = import_item(&ours).unwrap();
    assert_eq!(it.id.as_deref(), Some("abc"));
    assert_eq!(it.body.checkpoint.as_deref(), Some("m"));
    assert_eq!(it.body.name.as_deref(), Some("n"));
    assert!(it.bookmarked);
    let orig = json!({"id": "task(x)", "type": "txt2img", "params": {"args": {"prompt": "q", "override_settings": {"sd_model_checkpoint": "m2"}},
                      "checkpoint": null, "is_ui": false, "is_img2img": true}, "script_params": "eJzL"});
    let it = import_item(&orig).unwrap();
    assert_eq!(it.id, None);
    assert_eq!(it.task_type, TaskType::Img2img);
    assert_eq!(it.body.params["prompt"], "q");
    let ui = json!({"id": "task(y)", "type": "txt2img", "params": {"args": {}, "is_ui": true}});
    assert_eq!(
        import_item(&ui).unwrap_err().0,
        "UI task of the original extension (positional, pickled arguments) cannot be imported; \
         re-create it from the page"
    );
    assert_eq!(
        import_item(&json!(5)),
        Err(Invalid("item is not an object".into()))
    );
    assert_eq!(
        import_item(&json!({"type": "x", "params": {}})),
        Err(Invalid("unknown task type".into()))
    );
    assert_eq!(
        import_item(&json!({"type": "txt2img", "params": {"checkpoint": "*"}})),
        Err(Invalid("checkpoint patterns cannot be imported".into()))
    );
}
