use super::*;
use scheduler_api::{ResetEvent, TaskType, WireTime};
use serde_json::Map;

fn task(id: &str, status: TaskStatus) -> Task {
    Task {
        id: id.into(),
        api_task_id: None,
        api_task_callback: None,
        name: None,
        task_type: TaskType::Txt2img,
        status,
        params: Map::new(),
        priority: 0,
        position: None,
        result: None,
        bookmarked: false,
        created_at: WireTime::Epoch(0),
        updated_at: WireTime::Epoch(0),
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

fn model() -> QueueModel {
    let mut m = QueueModel::default();
    m.set_queue(QueueResponse {
        current_task_id: Some("r".into()),
        current_task_ids: vec!["r".into()],
        pending_tasks: vec![
            task("r", TaskStatus::Running),
            task("a", TaskStatus::Pending),
            task("b", TaskStatus::Pending),
            task("c", TaskStatus::Pending),
        ],
        total_pending_tasks: 4,
        hold_reason: None,
        paused: false,
        next_cursor: None,
        lookahead: 0,
    });
    m
}

fn ids(m: &QueueModel) -> Vec<&str> {
    m.pending.iter().map(|t| t.id.as_str()).collect()
}

fn tev(id: &str, status: TaskStatus, change: TaskChange) -> Event {
    Event::Task(TaskEvent {
        task_id: id.into(),
        status,
        change,
        name: None,
    })
}

#[test]
fn set_queue_splits_running_and_pending() {
    let m = model();
    assert_eq!(m.running.len(), 1);
    assert_eq!(ids(&m), ["a", "b", "c"]);
}

#[test]
fn drop_targets() {
    let l = ["a", "b", "c"];
    assert_eq!(drop_target(&l, "a", 0), None);
    assert_eq!(drop_target(&l, "a", 1), None);
    assert_eq!(
        drop_target(&l, "a", 2),
        Some(MoveTarget::Before("c".into()))
    );
    assert_eq!(drop_target(&l, "a", 3), Some(MoveTarget::Bottom));
    assert_eq!(drop_target(&l, "c", 0), Some(MoveTarget::Top));
    assert_eq!(
        drop_target(&l, "c", 1),
        Some(MoveTarget::Before("b".into()))
    );
    assert_eq!(drop_target(&l, "x", 1), None);
    assert_eq!(MoveTarget::Top.over_id(), "top");
}

#[test]
fn local_moves_match_the_host_semantics() {
    let mut m = model();
    m.apply_move("c", &MoveTarget::Top);
    assert_eq!(ids(&m), ["c", "a", "b"]);
    m.apply_move("c", &MoveTarget::Bottom);
    assert_eq!(ids(&m), ["a", "b", "c"]);
    m.apply_move("a", &MoveTarget::Before("c".into()));
    assert_eq!(ids(&m), ["b", "a", "c"]);
}

#[test]
fn events_update_the_model() {
    let mut m = model();
    assert_eq!(
        m.apply(&Event::Progress(ProgressEvent {
            task_id: "r".into(),
            progress: 0.5,
            eta_s: Some(3.0),
            step: 5,
            steps: 10
        })),
        Reload::NONE
    );
    assert_eq!(m.progress.as_ref().unwrap().step, 5);
    assert_eq!(
        m.apply(&tev("r", TaskStatus::Done, TaskChange::Finished)),
        Reload::ALL
    );
    assert!(m.running.is_empty() && m.progress.is_none());
    assert_eq!(
        m.apply(&tev("a", TaskStatus::Running, TaskChange::Started)),
        Reload::NONE
    );
    assert_eq!(m.running[0].id, "a");
    assert_eq!(ids(&m), ["b", "c"]);
    let r = m.apply(&tev("b", TaskStatus::Pending, TaskChange::Deleted));
    assert_eq!(ids(&m), ["c"]);
    assert_eq!(r, Reload::NONE);
    assert!(
        m.apply(&tev("z", TaskStatus::Pending, TaskChange::Created))
            .queue
    );
    assert!(
        m.apply(&tev("z", TaskStatus::Done, TaskChange::Updated))
            .history
    );
    m.apply(&Event::Queue(QueueEvent {
        paused: true,
        pending: 1,
        running: 1,
        hold_reason: None,
    }));
    assert!(m.paused);
    assert_eq!(m.total, 2);
    assert_eq!(
        m.apply(&Event::Reset(ResetEvent { oldest: 3 })),
        Reload::ALL
    );
}

#[test]
fn history_filters() {
    let mut t = task("x", TaskStatus::Failed);
    assert!(HistoryFilter::All.accepts(&t));
    assert!(HistoryFilter::Status(TaskStatus::Failed).accepts(&t));
    assert!(!HistoryFilter::Status(TaskStatus::Done).accepts(&t));
    assert!(!HistoryFilter::Bookmarked.accepts(&t));
    t.bookmarked = true;
    assert!(HistoryFilter::Bookmarked.accepts(&t));
    assert!(!HistoryFilter::All.accepts(&task("p", TaskStatus::Pending)));
    for f in HistoryFilter::ALL {
        assert_eq!(HistoryFilter::parse(f.as_str()), Some(f));
        assert_ne!(filter_label(f), "Other");
    }
}

#[test]
fn labels_eta_and_notifications() {
    let mut t = task("id1", TaskStatus::Done);
    assert_eq!(task_label(&t), "id1");
    t.params
        .insert("prompt".into(), "  a red fox\nin snow, detailed  ".into());
    assert_eq!(task_label(&t), "a red fox", "the prompt's first line");
    t.name = Some("night".into());
    assert_eq!(task_label(&t), "night");
    t.name = Some(String::new());
    assert_eq!(task_label(&t), "a red fox");
    t.params.insert("prompt".into(), "   ".into());
    assert_eq!(task_label(&t), "id1");
    assert_eq!(fmt_eta(Some(65.2)), "1m 05s");
    assert_eq!(fmt_eta(Some(4.0)), "4s");
    assert_eq!(fmt_eta(None), "–");

    let o = ExtOptions::default();
    assert!(
        notification_for(
            &tev("a", TaskStatus::Failed, TaskChange::Finished),
            &o,
            None
        )
        .is_some()
    );
    assert!(
        notification_for(&tev("a", TaskStatus::Done, TaskChange::Finished), &o, None).is_none()
    );
    let busy = QueueEvent {
        paused: false,
        pending: 1,
        running: 1,
        hold_reason: None,
    };
    let idle = QueueEvent {
        paused: false,
        pending: 0,
        running: 0,
        hold_reason: None,
    };
    assert!(notification_for(&Event::Queue(idle.clone()), &o, Some(&busy)).is_some());
    assert!(notification_for(&Event::Queue(idle.clone()), &o, Some(&idle)).is_none());
    assert!(notification_for(&Event::Queue(idle.clone()), &o, None).is_none());
    // A hold is notified once when it starts.
    let held = QueueEvent {
        hold_reason: Some("disk full".into()),
        ..idle.clone()
    };
    let (title, _) = notification_for(&Event::Queue(held.clone()), &o, Some(&idle)).unwrap();
    assert_eq!(title, "Queue on hold: disk full");
    assert!(notification_for(&Event::Queue(held.clone()), &o, Some(&held)).is_none());
}

#[test]
fn percent_is_whole_and_one_decimal() {
    assert_eq!(percent(0.0), ("0".into(), "0.0".into()));
    assert_eq!(percent(0.4256), ("43".into(), "42.6".into()));
    assert_eq!(percent(0.994), ("99".into(), "99.4".into()));
    assert_eq!(percent(0.996), ("100".into(), "99.6".into()));
    assert_eq!(percent(1.7), ("100".into(), "100.0".into()));
    assert_eq!(percent(f64::NAN), ("0".into(), "0.0".into()));
}

#[test]
fn further_pages_append_without_duplicates() {
    let mut m = model();
    m.append_pending(QueueResponse {
        current_task_id: None,
        current_task_ids: vec![],
        pending_tasks: vec![
            task("c", TaskStatus::Pending),
            task("d", TaskStatus::Pending),
            task("r", TaskStatus::Running),
        ],
        total_pending_tasks: 9,
        paused: false,
        hold_reason: None,
        next_cursor: Some("r5_9_12".into()),
        lookahead: 0,
    });
    let ids: Vec<&str> = m.pending.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);
    assert_eq!(m.total, 9);
    assert_eq!(m.next_cursor.as_deref(), Some("r5_9_12"));
}

#[test]
fn viewer_arrows_walk_images_then_tasks() {
    let counts = [2, 0, 3];
    assert_eq!(viewer_step(&counts, (0, 0), true), (0, 1));
    assert_eq!(viewer_step(&counts, (0, 1), true), (1, 0));
    assert_eq!(viewer_step(&counts, (1, 0), true), (2, 0));
    assert_eq!(
        viewer_step(&counts, (2, 2), true),
        (2, 2),
        "stays at the end"
    );
    assert_eq!(viewer_step(&counts, (2, 0), false), (1, 0));
    assert_eq!(
        viewer_step(&counts, (1, 0), false),
        (0, 1),
        "last image before"
    );
    assert_eq!(
        viewer_step(&counts, (0, 0), false),
        (0, 0),
        "stays at the start"
    );
}
