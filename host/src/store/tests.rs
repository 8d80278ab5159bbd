use super::ops::*;
use super::*;
use crate::queue::{MoveTarget, RunEnd};
use scheduler_api::{TaskStatus, TaskType};
use serde_json::json;

fn new_task(id: &str, prompt: &str) -> NewTask {
    NewTask {
        id: id.into(),
        task_type: TaskType::Txt2img,
        name: None,
        request: json!({"prompt": prompt}).as_object().cloned().unwrap(),
        page_snapshot: None,
        checkpoint: None,
        vae: None,
        callback_url: None,
        bookmarked: false,
    }
}

fn order(conn: &Connection) -> Vec<String> {
    list_queue(conn, None, 100, 0)
        .unwrap()
        .0
        .into_iter()
        .map(|t| t.id)
        .collect()
}

fn setup(ids: &[&str]) -> Connection {
    let mut c = Connection::open_in_memory().unwrap();
    migrate(&mut c).unwrap();
    let tasks: Vec<NewTask> = ids
        .iter()
        .map(|i| new_task(i, &format!("prompt {i}")))
        .collect();
    insert_tasks(&mut c, &tasks, None).unwrap();
    c
}

fn claim(c: &mut Connection, paused: bool) -> Option<TaskRow> {
    set_paused(c, paused).unwrap();
    claim_next(c, "b1", 60_000, |_| Eligibility::Yes).unwrap()
}

#[test]
fn migrations_apply_to_memory_and_are_idempotent() {
    let mut c = Connection::open_in_memory().unwrap();
    migrate(&mut c).unwrap();
    migrate(&mut c).unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, MIGRATIONS.len() as i64);
    c.pragma_update(None, "user_version", 99).unwrap();
    assert!(matches!(migrate(&mut c), Err(StoreError::Migration(_))));
}

#[test]
fn file_database_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("q.sqlite3")).unwrap();
    let mode: String = s
        .call_sync(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn moves_top_bottom_and_before() {
    let mut c = setup(&["a", "b", "c", "d"]);
    move_task(&mut c, "c", &MoveTarget::Top).unwrap();
    assert_eq!(order(&c), ["c", "a", "b", "d"]);
    move_task(&mut c, "a", &MoveTarget::Top).unwrap();
    assert_eq!(order(&c), ["a", "c", "b", "d"]);
    move_task(&mut c, "a", &MoveTarget::Bottom).unwrap();
    assert_eq!(order(&c), ["c", "b", "d", "a"]);
    move_task(&mut c, "a", &MoveTarget::Before("b".into())).unwrap();
    assert_eq!(order(&c), ["c", "a", "b", "d"]);
    move_task(&mut c, "c", &MoveTarget::Before("d".into())).unwrap();
    assert_eq!(order(&c), ["a", "b", "c", "d"]);
    assert!(matches!(
        move_task(&mut c, "x", &MoveTarget::Top),
        Err(StoreError::NotFound)
    ));
    // Many moves into the same gap force a renumbering, order stays right.
    for _ in 0..40 {
        move_task(&mut c, "d", &MoveTarget::Before("b".into())).unwrap();
        move_task(&mut c, "c", &MoveTarget::Before("d".into())).unwrap();
        move_task(&mut c, "d", &MoveTarget::Before("c".into())).unwrap();
    }
    assert_eq!(order(&c), ["a", "d", "c", "b"]);
    // Priorities sort like the queue.
    let (rows, _) = list_queue(&c, None, 100, 0).unwrap();
    assert!(rows.windows(2).all(|w| w[0].rank < w[1].rank));
}

#[test]
fn claim_is_atomic_in_order_and_respects_pause() {
    let mut c = setup(&["a", "b"]);
    assert!(claim(&mut c, true).is_none());
    let t = claim(&mut c, false).unwrap();
    assert_eq!(t.id, "a");
    assert_eq!(t.status, TaskStatus::Running);
    assert_eq!(t.backend.as_deref(), Some("b1"));
    assert_eq!(order(&c), ["a", "b"]);
    let t2 = claim(&mut c, false).unwrap();
    assert_eq!(t2.id, "b");
    assert!(claim(&mut c, false).is_none());
    assert_eq!(running_ids(&c).unwrap().len(), 2);
    // eligibility skips
    insert_tasks(&mut c, &[new_task("c", "x")], None).unwrap();
    assert!(
        claim_next(&mut c, "b2", 1, |_| Eligibility::Skip)
            .unwrap()
            .is_none()
    );
}

#[test]
fn run_now_group_is_fifo_and_force_runs_while_paused() {
    let mut c = setup(&["a", "b", "c", "d"]);
    run_now(&mut c, "c", false).unwrap();
    run_now(&mut c, "d", false).unwrap();
    assert_eq!(order(&c), ["c", "d", "a", "b"]);
    run_now(&mut c, "b", true).unwrap();
    assert_eq!(order(&c), ["c", "d", "b", "a"]);
    let t = claim(&mut c, true).unwrap();
    assert_eq!(t.id, "b");
    assert!(claim(&mut c, true).is_none());
    assert!(matches!(
        run_now(&mut c, "b", false),
        Err(StoreError::Conflict(_))
    ));
}

#[test]
fn recovery_puts_running_back_at_head_then_fails() {
    let mut c = setup(&["a", "b"]);
    for round in 1..=3u32 {
        let t = claim(&mut c, false).unwrap();
        assert_eq!(t.id, "a");
        let out = recover_running(&mut c, 3).unwrap();
        if round < 3 {
            assert_eq!(out, vec![("a".to_string(), TaskStatus::Pending)]);
            assert_eq!(order(&c), ["a", "b"]);
            assert_eq!(get_task(&c, "a", false).unwrap().unwrap().attempts, round);
        } else {
            assert_eq!(out, vec![("a".to_string(), TaskStatus::Failed)]);
            let a = get_task(&c, "a", false).unwrap().unwrap();
            assert_eq!(
                a.error.as_deref(),
                Some("interrupted by host restart; 3 attempts")
            );
        }
    }
}

#[test]
fn outage_release_counts_no_attempt() {
    let mut c = setup(&["a", "b"]);
    claim(&mut c, false).unwrap();
    claim(&mut c, false).unwrap();
    release_to_head(&mut c, "b").unwrap();
    let b = get_task(&c, "b", false).unwrap().unwrap();
    assert_eq!((b.status, b.attempts), (TaskStatus::Pending, 0));
    assert_eq!(order(&c), ["a", "b"]);
}

#[test]
fn finish_records_images_callbacks_and_auto_requeue() {
    let mut c = setup(&["a", "b"]);
    c.execute(
        "UPDATE tasks SET callback_url = 'http://x/cb' WHERE id = 'a'",
        [],
    )
    .unwrap();
    claim(&mut c, false).unwrap();
    let img = ImageRow {
        index: 0,
        file_name: "0.png".into(),
        infotext: "p".into(),
        format: "png".into(),
    };
    let f = finish_task(
        &mut c,
        "a",
        Finish {
            end: RunEnd::Done,
            images: vec![img.clone()],
            info: Some(json!({"seed": 1})),
            auto_requeue: false,
            max_attempts: 3,
            ended_at: now_ms(),
        },
    )
    .unwrap();
    assert_eq!(f.status, TaskStatus::Done);
    assert!(f.callback_queued);
    let a = get_task(&c, "a", false).unwrap().unwrap();
    assert_eq!(a.images, vec![img]);
    let due = due_deliveries(&c, now_ms() + 1).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        due[0].files,
        vec![("a/0.png".to_string(), "image/png".to_string())]
    );
    delivery_retry(&c, due[0].id, now_ms() + 10_000, "boom").unwrap();
    assert!(due_deliveries(&c, now_ms()).unwrap().is_empty());
    // failed + auto requeue until max attempts
    for i in 1..=3u32 {
        let t = claim(&mut c, false).unwrap();
        assert_eq!(t.id, "b");
        let f = finish_task(
            &mut c,
            "b",
            Finish {
                end: RunEnd::Failed("no images".into()),
                images: vec![],
                info: None,
                auto_requeue: true,
                max_attempts: 3,
                ended_at: now_ms(),
            },
        )
        .unwrap();
        let want = if i < 3 {
            TaskStatus::Pending
        } else {
            TaskStatus::Failed
        };
        assert_eq!(f.status, want);
    }
    let (h, total) =
        list_history(&c, HistoryFilter::Status(TaskStatus::Failed), None, 10, 0).unwrap();
    assert_eq!((h.len(), total), (1, 1));
    assert_eq!(requeue_failed(&mut c).unwrap(), vec!["b".to_string()]);
    assert_eq!(order(&c), ["b"]);
}

#[test]
fn history_filters_totals_search_and_clears() {
    let mut c = setup(&["a", "b", "c"]);
    for _ in 0..3 {
        let t = claim(&mut c, false).unwrap();
        finish_task(
            &mut c,
            &t.id,
            Finish {
                end: RunEnd::Done,
                images: vec![],
                info: None,
                auto_requeue: false,
                max_attempts: 3,
                ended_at: now_ms(),
            },
        )
        .unwrap();
    }
    set_bookmark(&c, "b", true).unwrap();
    let (rows, total) = list_history(&c, HistoryFilter::All, None, 2, 0).unwrap();
    assert_eq!((rows.len(), total), (2, 3));
    let (rows, total) = list_history(&c, HistoryFilter::Bookmarked, None, 20, 0).unwrap();
    assert_eq!((rows.len(), total), (1, 1));
    let (rows, total) = list_history(&c, HistoryFilter::All, Some("prompt c"), 20, 0).unwrap();
    assert_eq!((rows[0].id.as_str(), total), ("c", 1));
    let (_, total) = list_history(&c, HistoryFilter::All, Some("\"unbalanced"), 20, 0).unwrap();
    assert_eq!(total, 0);
    let removed = clear_history(&mut c, None).unwrap();
    assert_eq!(removed.len(), 2);
    assert!(get_task(&c, "b", false).unwrap().is_some());
}

#[test]
fn queue_search_edit_requeue_and_clear() {
    let mut c = setup(&["a", "b"]);
    rename(&c, "a", Some("sunset")).unwrap();
    let (rows, total) = list_queue(&c, Some("suns"), 10, 0).unwrap();
    assert_eq!((rows.len(), total), (1, 1));
    edit_task(
        &mut c,
        "b",
        TaskEdit {
            params: Some(json!({"prompt": "ocean"}).as_object().cloned().unwrap()),
            checkpoint: Some(Some("m".into())),
            ..Default::default()
        },
    )
    .unwrap();
    let (rows, _) = list_queue(&c, Some("ocean"), 10, 0).unwrap();
    assert_eq!(rows[0].checkpoint.as_deref(), Some("m"));
    claim(&mut c, false).unwrap();
    assert!(matches!(
        edit_task(&mut c, "a", TaskEdit::default()),
        Err(StoreError::Conflict(_))
    ));
    let copy = requeue_copy(&mut c, "a").unwrap();
    let t = get_task(&c, &copy, false).unwrap().unwrap();
    assert_eq!(t.name.as_deref(), Some("Copy of sunset"));
    assert_eq!(order(&c), ["a", "b", copy.as_str()]);
    set_bookmark(&c, "b", true).unwrap();
    assert_eq!(clear_queue(&mut c).unwrap(), vec![copy.clone()]);
    assert_eq!(order(&c), ["a", "b"]);
    assert_eq!(
        delete_task(&c, "a").unwrap(),
        Deleted::Running {
            backend: Some("b1".into())
        }
    );
    assert_eq!(
        delete_task(&c, "b").unwrap(),
        Deleted::Removed(TaskStatus::Pending)
    );
}

#[test]
fn idempotency_returns_the_first_answer() {
    let mut c = setup(&[]);
    assert_eq!(
        insert_tasks(&mut c, &[new_task("a", "x")], Some(("k", "A"))).unwrap(),
        None
    );
    assert_eq!(
        insert_tasks(&mut c, &[new_task("b", "x")], Some(("k", "B"))).unwrap(),
        Some("A".into())
    );
    assert_eq!(order(&c), ["a"]);
}

#[test]
fn events_keep_ids_and_settings_persist() {
    let mut c = setup(&[]);
    let ids = insert_events(
        &mut c,
        &[("task".into(), "{}".into()), ("queue".into(), "{}".into())],
    )
    .unwrap();
    assert_eq!(ids, vec![1, 2]);
    assert_eq!(events_after(&c, 1).unwrap().len(), 1);
    assert_eq!(last_event_id(&c).unwrap(), 2);
    assert!(!is_paused(&c).unwrap());
    set_paused(&c, true).unwrap();
    assert!(is_paused(&c).unwrap());
    let mut s = load_settings(&c).unwrap();
    assert_eq!(s.max_attempts, 3);
    s.history_retention_days = None;
    save_settings(&c, &s).unwrap();
    assert_eq!(load_settings(&c).unwrap().history_retention_days, None);
}

#[test]
fn retention_cutoff_spares_recent_and_bookmarked_tasks() {
    let mut c = setup(&["old", "old-kept", "new"]);
    for _ in 0..3 {
        let t = claim(&mut c, false).unwrap();
        finish_task(
            &mut c,
            &t.id,
            Finish {
                end: RunEnd::Done,
                images: vec![],
                info: None,
                auto_requeue: false,
                max_attempts: 3,
                ended_at: now_ms(),
            },
        )
        .unwrap();
    }
    c.execute(
        "UPDATE tasks SET finished_at = 1000 WHERE id IN ('old', 'old-kept')",
        [],
    )
    .unwrap();
    set_bookmark(&c, "old-kept", true).unwrap();
    assert_eq!(
        clear_history(&mut c, Some(now_ms() - 86_400_000)).unwrap(),
        vec!["old".to_string()]
    );
    let (_, total) = list_history(&c, HistoryFilter::All, None, 10, 0).unwrap();
    assert_eq!(total, 2);
}
