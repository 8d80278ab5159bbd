use rusqlite::Connection;
use scheduler_api::{HistoryFilter, MoveTarget, TaskStatus, TaskType};
use serde_json::json;

use super::events::*;
use super::listing::*;
use super::order::*;
use super::outbox::*;
use super::rows::*;
use super::settings::*;
use super::tasks::*;
use super::transitions::*;
use super::*;
use crate::model::transition::{Event, Policy, Transition, decide};
use crate::model::{ImageRow, NewTask, RunEnd, TaskEdit, TaskRow};

/// The time of every change in these tests (ms): the store reads no clock.
const NOW: i64 = 1_800_000_000_000;

const POLICY: Policy = Policy {
    auto_requeue_failed: false,
    max_attempts: 3,
    retry_backoff_ms: 1000,
};

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
        group_id: None,
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
    insert_tasks(&mut c, &tasks, None, NOW).unwrap();
    c
}

/// A new claim fence (unique in the test binary, as in the host's life).
fn fence() -> i64 {
    static LAST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    LAST.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
}

fn claim(c: &mut Connection, paused: bool) -> Option<TaskRow> {
    set_paused(c, paused).unwrap();
    claim_next(c, "b1", NOW, fence(), first).unwrap()
}

/// The first task of the window (FIFO), as a claimer would choose it.
fn first(window: &[crate::model::Candidate], _paused: bool) -> Option<Choice> {
    (!window.is_empty()).then(|| Choice {
        index: 0,
        overtaken: Vec::new(),
    })
}

fn task(c: &Connection, id: &str) -> TaskRow {
    get_task(c, id, true).unwrap().expect("task exists")
}

/// Ends the run of the task's current claim as the queue service does (fenced to it).
fn end_run(
    c: &mut Connection,
    id: &str,
    end: RunEnd,
    policy: Policy,
    images: Vec<ImageRow>,
) -> Applied {
    let fence = task(c, id).life.fence.expect("claimed");
    end_claim(c, id, fence, end, policy, images).unwrap()
}

/// Ends the run of the claim `fence` of task `id`.
fn end_claim(
    c: &mut Connection,
    id: &str,
    fence: i64,
    end: RunEnd,
    policy: Policy,
    images: Vec<ImageRow>,
) -> Result<Applied, StoreError> {
    finish(
        c,
        id,
        fence,
        &Event::Finished { end, at: NOW },
        &policy,
        &RunOutputs {
            images,
            info: Some(json!({"seed": 1})),
        },
        NOW,
    )
}

fn statuses(applied: &[(String, Applied)]) -> Vec<(String, Option<TaskStatus>)> {
    applied
        .iter()
        .map(|(id, a)| (id.clone(), a.status()))
        .collect()
}

/// Every Rust file under `dir` (recursively), by its path relative to `root`, with its text.
fn rust_files(root: &std::path::Path, dir: &std::path::Path) -> Vec<(String, String)> {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(root, &path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let name = path.strip_prefix(root).expect("under the root");
            files.push((name.to_string_lossy().into_owned(), text));
        }
    }
    files.sort();
    files
}

#[test]
fn status_is_written_by_one_statement_in_transitions_only() {
    // Every file of the store, read from its directory (a new one is checked too), but this
    // one: its tests set statuses up by hand.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
    let sources: Vec<(String, String)> = rust_files(&dir, &dir)
        .into_iter()
        .filter(|(file, _)| file != "tests.rs")
        .collect();
    // The directory read is the store: every module `mod.rs` declares is among the files
    // (`m.rs`, or `m/mod.rs` for a folder).
    let declared: Vec<String> = include_str!("mod.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|m| format!("{}.rs", m.trim_end_matches(';')))
        .collect();
    assert!(!declared.is_empty(), "no `pub mod` read from mod.rs");
    for m in declared.iter().chain([&"mod.rs".to_owned()]) {
        assert!(
            sources.iter().any(|(file, _)| {
                file == m || *file == format!("{}/mod.rs", m.trim_end_matches(".rs"))
            }),
            "{m} is not among the files read from {}",
            dir.display()
        );
    }
    // Every `UPDATE tasks SET …` whose SET clause assigns `status`.
    let mut writes = Vec::new();
    for (file, src) in &sources {
        let flat: String = src
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace("\\ ", "");
        for (at, _) in flat.match_indices("UPDATE tasks SET") {
            let rest = &flat[at..];
            let set = &rest[..rest.find("WHERE").unwrap_or(rest.len())];
            if set.contains(" status =") || set.starts_with("UPDATE tasks SET status =") {
                writes.push(file.as_str());
            }
        }
    }
    // One statement per store: SQLite's (`transitions::write`) and PostgreSQL's
    // (`pg::store::write`).
    assert_eq!(writes, vec!["pg/store.rs", "transitions.rs"]);
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
fn migration_0005_keeps_tasks_results_search_and_triggers_and_admits_control() {
    let mut c = Connection::open_in_memory().unwrap();
    c.pragma_update(None, "foreign_keys", "ON").unwrap();
    // A database at version 4 with a finished task, its image row and its search entry.
    let before = MIGRATIONS
        .iter()
        .position(|(n, _)| *n == "0005_control_task_type")
        .expect("0005 is listed");
    for (_, sql) in &MIGRATIONS[..before] {
        c.execute_batch(sql).unwrap();
    }
    c.pragma_update(None, "user_version", before as i64)
        .unwrap();
    let schema = |c: &Connection| -> Vec<(String, String)> {
        let mut st = c
            .prepare(
                "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'tasks' AND type IN ('index', 'trigger') \
                 AND sql IS NOT NULL ORDER BY name",
            )
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let objects = schema(&c);
    c.execute(
        "INSERT INTO tasks (id, type, status, request, rank, created_at, updated_at) \
         VALUES ('t1', 'img2img', 'done', '{\"prompt\":\"lighthouse at dusk\"}', 1, 1, 1)",
        [],
    )
    .unwrap();
    c.execute(
        "INSERT INTO result_images (task_id, idx, file_name, infotext, format) VALUES ('t1', 0, '0.png', 'i', 'png')",
        [],
    )
    .unwrap();
    let control = "INSERT INTO tasks (id, type, status, request, rank, created_at, updated_at) \
                   VALUES ('c1', 'control', 'pending', '{}', 2, 1, 1)";
    assert!(
        c.execute(control, []).is_err(),
        "v4 refuses the control type"
    );
    migrate(&mut c).unwrap();
    // Later migrations may add objects of their own; the ones before 0005 are back as they were.
    let after: Vec<(String, String)> = schema(&c)
        .into_iter()
        .filter(|(n, _)| objects.iter().any(|(o, _)| o == n))
        .collect();
    assert_eq!(
        after, objects,
        "every index and trigger on tasks is back as it was"
    );
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, MIGRATIONS.len() as i64);
    let fk: i64 = c
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1, "foreign keys are back on");
    assert_eq!(task(&c, "t1").images.len(), 1, "the image row survived");
    let (rows, total) = list_history(&c, HistoryFilter::All, Some("lighthouse"), 20, 0).unwrap();
    assert_eq!((rows[0].id.as_str(), total), ("t1", 1));
    c.execute(control, []).unwrap();
    assert_eq!(task(&c, "c1").task_type, TaskType::Control);
    let bad = "INSERT INTO tasks (id, type, status, request, rank, created_at, updated_at) \
               VALUES ('x', 'video', 'pending', '{}', 3, 1, 1)";
    assert!(c.execute(bad, []).is_err(), "other types are still refused");
    // Deleting a task still removes its image rows (the foreign key points at the new table).
    c.execute("DELETE FROM tasks WHERE id = 't1'", []).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM result_images", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
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

/// A light write commits without waiting for the disk (synchronous NORMAL) and is visible
/// to readers at once; a durable write commits with synchronous FULL again.
#[tokio::test]
async fn light_writes_skip_the_fsync_and_durable_ones_keep_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("q.sqlite3")).unwrap();
    let sync = |c: &mut Connection| -> Result<i64, StoreError> {
        Ok(c.query_row("PRAGMA synchronous", [], |r| r.get(0))?)
    };
    // 1 = NORMAL, 2 = FULL.
    assert_eq!(s.call_light(sync).await.unwrap(), 1);
    s.call_light(|c| {
        c.execute(
            "INSERT INTO settings (key, value) VALUES ('light', '1')",
            [],
        )?;
        Ok(())
    })
    .await
    .unwrap();
    let value: String = s
        .read(|c| {
            Ok(
                c.query_row("SELECT value FROM settings WHERE key = 'light'", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
        .unwrap();
    assert_eq!(value, "1", "a light commit is visible to readers");
    assert_eq!(s.call(sync).await.unwrap(), 2);
    assert_eq!(s.call_sync(sync).unwrap(), 2);
}

#[test]
fn moves_top_bottom_and_before() {
    let mut c = setup(&["a", "b", "c", "d"]);
    move_task(&mut c, "c", &MoveTarget::Top, NOW).unwrap();
    assert_eq!(order(&c), ["c", "a", "b", "d"]);
    move_task(&mut c, "a", &MoveTarget::Top, NOW).unwrap();
    assert_eq!(order(&c), ["a", "c", "b", "d"]);
    move_task(&mut c, "a", &MoveTarget::Bottom, NOW).unwrap();
    assert_eq!(order(&c), ["c", "b", "d", "a"]);
    move_task(&mut c, "a", &MoveTarget::Before("b".into()), NOW).unwrap();
    assert_eq!(order(&c), ["c", "a", "b", "d"]);
    move_task(&mut c, "c", &MoveTarget::Before("d".into()), NOW).unwrap();
    assert_eq!(order(&c), ["a", "b", "c", "d"]);
    assert!(matches!(
        move_task(&mut c, "x", &MoveTarget::Top, NOW),
        Err(StoreError::NotFound)
    ));
    // Many moves into the same gap force a renumbering, order stays right.
    for _ in 0..40 {
        move_task(&mut c, "d", &MoveTarget::Before("b".into()), NOW).unwrap();
        move_task(&mut c, "c", &MoveTarget::Before("d".into()), NOW).unwrap();
        move_task(&mut c, "d", &MoveTarget::Before("c".into()), NOW).unwrap();
    }
    assert_eq!(order(&c), ["a", "d", "c", "b"]);
    // Priorities sort like the queue.
    let (rows, _) = list_queue(&c, None, 100, 0).unwrap();
    assert!(rows.windows(2).all(|w| w[0].rank < w[1].rank));
}

#[test]
fn the_lease_column_is_gone() {
    let c = setup(&["a"]);
    let err = c
        .query_row("SELECT lease_until FROM tasks", [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no such column: lease_until in SELECT lease_until FROM tasks at offset 7"
    );
}

#[test]
fn claim_is_atomic_in_order_and_respects_pause() {
    let mut c = setup(&["a", "b"]);
    assert_eq!(claim(&mut c, true), None);
    let t = claim(&mut c, false).unwrap();
    assert_eq!(t.id, "a");
    assert_eq!(t.status(), TaskStatus::Running);
    assert_eq!(t.life.backend.as_deref(), Some("b1"));
    assert_eq!(order(&c), ["a", "b"]);
    let t2 = claim(&mut c, false).unwrap();
    assert_eq!(t2.id, "b");
    assert_eq!(claim(&mut c, false), None);
    assert_eq!(
        running(&c).unwrap(),
        vec![
            ("a".to_string(), Some("b1".to_string())),
            ("b".to_string(), Some("b1".to_string()))
        ]
    );
    // A claimer that chooses nothing claims nothing.
    insert_tasks(&mut c, &[new_task("c", "x")], None, NOW).unwrap();
    assert_eq!(
        claim_next(&mut c, "b2", NOW, fence(), |_, _| None).unwrap(),
        None
    );
}

#[test]
fn run_now_group_is_fifo_and_force_runs_while_paused() {
    let mut c = setup(&["a", "b", "c", "d"]);
    assert_eq!(run_now(&mut c, "c", NOW).unwrap(), 0);
    run_now(&mut c, "d", NOW).unwrap();
    assert_eq!(order(&c), ["c", "d", "a", "b"]);
    set_paused(&c, true).unwrap();
    run_now(&mut c, "b", NOW).unwrap();
    assert_eq!(order(&c), ["c", "d", "b", "a"]);
    let t = claim(&mut c, true).unwrap();
    assert_eq!(t.id, "b");
    assert_eq!(claim(&mut c, true), None);
    let err = run_now(&mut c, "b", NOW).unwrap_err();
    assert_eq!(err.to_string(), "Task is running");
    set_paused(&c, false).unwrap();
    assert_eq!(run_now(&mut c, "a", NOW).unwrap(), 1);
}

#[test]
fn moves_refuse_tasks_that_are_not_pending() {
    let mut c = setup(&["a", "b"]);
    claim(&mut c, false).unwrap();
    assert_eq!(
        move_task(&mut c, "a", &MoveTarget::Top, NOW)
            .unwrap_err()
            .to_string(),
        "Task is running"
    );
    assert_eq!(
        move_task(&mut c, "b", &MoveTarget::Before("a".into()), NOW)
            .unwrap_err()
            .to_string(),
        "Task a is running"
    );
    assert!(matches!(
        move_task(&mut c, "x", &MoveTarget::Top, NOW),
        Err(StoreError::NotFound)
    ));
}

#[test]
fn recovery_puts_running_back_at_head_then_fails() {
    let mut c = setup(&["a", "b"]);
    for round in 1..=3u32 {
        let t = claim(&mut c, false).unwrap();
        assert_eq!(t.id, "a");
        let out = statuses(&recover_running(&mut c, &POLICY, NOW).unwrap());
        if round < 3 {
            assert_eq!(out, vec![("a".to_string(), Some(TaskStatus::Pending))]);
            assert_eq!(order(&c), ["a", "b"]);
            assert_eq!(task(&c, "a").life.attempts, round);
        } else {
            assert_eq!(out, vec![("a".to_string(), Some(TaskStatus::Failed))]);
            assert_eq!(
                task(&c, "a").life.error.as_deref(),
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
    apply(&mut c, "b", &Event::Released, &POLICY, NOW).unwrap();
    let b = task(&c, "b");
    assert_eq!((b.status(), b.life.attempts), (TaskStatus::Pending, 0));
    assert_eq!(b.life.backend, None);
    assert_eq!(order(&c), ["a", "b"]);
    let released = statuses(&release_running(&mut c, NOW).unwrap());
    assert_eq!(released, vec![("a".to_string(), Some(TaskStatus::Pending))]);
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
    let f = end_run(&mut c, "a", RunEnd::Done, POLICY, vec![img.clone()]);
    assert_eq!(f.status(), Some(TaskStatus::Done));
    assert!(f.callback_queued);
    let a = task(&c, "a");
    assert_eq!(a.images, vec![img]);
    assert_eq!(a.info, Some(json!({"seed": 1})));
    let due = all_deliveries(&c, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].status, "done");
    assert_eq!(
        due[0].files,
        vec![("a/0.png".to_string(), "image/png".to_string())]
    );
    let later = NOW + 10_000;
    delivery_retry(&c, due[0].id, later, "boom").unwrap();
    let after = all_deliveries(&c, 10).unwrap();
    assert_eq!((after[0].attempts, after[0].next_attempt_at), (1, later));
    // A second end of the same run is refused: the row is no longer running.
    let again = decide(
        &task(&c, "a").life,
        &Event::Finished {
            end: RunEnd::Done,
            at: 0,
        },
        &POLICY,
        0,
    );
    assert_eq!(again.unwrap_err().to_string(), "Task is done");
    // failed + auto requeue until max attempts
    let requeue = Policy {
        auto_requeue_failed: true,
        max_attempts: 3,
        retry_backoff_ms: 1000,
    };
    for i in 1..=3u32 {
        let t = claim(&mut c, false).unwrap();
        assert_eq!(t.id, "b");
        let partial = vec![ImageRow {
            index: 0,
            file_name: "0.jpg".into(),
            infotext: String::new(),
            format: "jpg".into(),
        }];
        let f = end_run(
            &mut c,
            "b",
            RunEnd::Failed("no images".into()),
            requeue,
            partial,
        );
        let want = if i < 3 {
            TaskStatus::Pending
        } else {
            TaskStatus::Failed
        };
        assert_eq!(f.status(), Some(want));
        let b = task(&c, "b");
        assert_eq!(b.life.attempts, i);
        // Partial images of a requeued run are never recorded; the last failure keeps them.
        assert_eq!(b.images.len(), usize::from(i == 3));
    }
    let (h, total) =
        list_history(&c, HistoryFilter::Status(TaskStatus::Failed), None, 10, 0).unwrap();
    assert_eq!((h.len(), total), (1, 1));
    let requeued = statuses(&requeue_failed(&mut c, NOW).unwrap());
    assert_eq!(requeued, vec![("b".to_string(), Some(TaskStatus::Pending))]);
    let b = task(&c, "b");
    assert_eq!((b.life.attempts, b.images.len(), b.info), (0, 0, None));
    assert_eq!(order(&c), ["b"]);
}

#[test]
fn history_filters_totals_search_and_clears() {
    let mut c = setup(&["a", "b", "c"]);
    for _ in 0..3 {
        let t = claim(&mut c, false).unwrap();
        end_run(&mut c, &t.id, RunEnd::Done, POLICY, vec![]);
    }
    set_bookmark(&c, "b", true, NOW).unwrap();
    let (rows, total) = list_history(&c, HistoryFilter::All, None, 2, 0).unwrap();
    assert_eq!((rows.len(), total), (2, 3));
    let (rows, total) = list_history(&c, HistoryFilter::Bookmarked, None, 20, 0).unwrap();
    assert_eq!((rows.len(), total), (1, 1));
    let (rows, total) = list_history(&c, HistoryFilter::All, Some("prompt c"), 20, 0).unwrap();
    assert_eq!((rows[0].id.as_str(), total), ("c", 1));
    let (_, total) = list_history(&c, HistoryFilter::All, Some("\"unbalanced"), 20, 0).unwrap();
    assert_eq!(total, 0);
    let removed = clear_history(&mut c, None, NOW).unwrap();
    assert_eq!(removed.len(), 2);
    assert_eq!(task(&c, "b").id, "b");
}

#[test]
fn queue_search_edit_requeue_and_clear() {
    let mut c = setup(&["a", "b"]);
    rename(&c, "a", Some("sunset"), NOW).unwrap();
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
        NOW,
    )
    .unwrap();
    let (rows, _) = list_queue(&c, Some("ocean"), 10, 0).unwrap();
    assert_eq!(rows[0].checkpoint.as_deref(), Some("m"));
    claim(&mut c, false).unwrap();
    assert_eq!(
        edit_task(&mut c, "a", TaskEdit::default(), NOW)
            .unwrap_err()
            .to_string(),
        "Task is running"
    );
    insert_copy(&mut c, "a", "copy", crate::model::spec::copy_name, NOW).unwrap();
    assert_eq!(task(&c, "copy").name.as_deref(), Some("Copy of sunset"));
    assert_eq!(order(&c), ["a", "b", "copy"]);
    set_bookmark(&c, "b", true, NOW).unwrap();
    let cleared: Vec<String> = clear_queue(&mut c, NOW)
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(cleared, vec!["copy".to_string()]);
    assert_eq!(order(&c), ["a", "b"]);
    let running = task(&c, "a").life;
    assert_eq!(
        apply(&mut c, "a", &Event::Delete, &POLICY, NOW)
            .unwrap()
            .transition,
        Transition::Interrupt {
            fence: running.fence,
            change: crate::model::transition::Change {
                next: crate::model::Lifecycle {
                    stop_requested: true,
                    ..running
                },
                place: crate::model::transition::Place::Keep,
                outputs: crate::model::transition::Outputs::Keep,
                callback: false,
            }
        }
    );
    assert!(task(&c, "a").life.stop_requested, "the stop is recorded");
    assert_eq!(
        apply(&mut c, "b", &Event::Delete, &POLICY, NOW)
            .unwrap()
            .transition,
        Transition::Remove { files: false }
    );
    assert_eq!(get_task(&c, "b", false).unwrap(), None);
}

#[test]
fn idempotency_returns_the_first_answer() {
    let mut c = setup(&[]);
    assert_eq!(
        insert_tasks(&mut c, &[new_task("a", "x")], Some(("k", "A")), NOW).unwrap(),
        None
    );
    assert_eq!(
        insert_tasks(&mut c, &[new_task("b", "x")], Some(("k", "B")), NOW).unwrap(),
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
        NOW,
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
        end_run(&mut c, &t.id, RunEnd::Done, POLICY, vec![]);
    }
    c.execute(
        "UPDATE tasks SET finished_at = 1000 WHERE id IN ('old', 'old-kept')",
        [],
    )
    .unwrap();
    set_bookmark(&c, "old-kept", true, NOW).unwrap();
    let cleared: Vec<String> = clear_history(&mut c, Some(NOW - 86_400_000), NOW)
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(cleared, vec!["old".to_string()]);
    let (_, total) = list_history(&c, HistoryFilter::All, None, 10, 0).unwrap();
    assert_eq!(total, 2);
}

/// Every query a listing, a count, a claim or a move runs is served by an index: no full
/// scan of `tasks`, no sort of its rows (flat cost at 100k tasks).
#[test]
fn listing_claim_and_order_queries_use_indexes() {
    let c = setup(&["a", "b", "c"]);
    let mut queries: Vec<(String, String)> = vec![
        ("pending rows".into(), listing::pending_sql()),
        ("pending before".into(), listing::pending_before_sql()),
        ("claim window".into(), transitions::window_sql(false)),
        (
            "claim window (paused)".into(),
            transitions::window_sql(true),
        ),
        ("search, queue".into(), listing::search_sql(false)),
        ("search, history".into(), listing::search_sql(true)),
        (
            "head rank".into(),
            "SELECT MIN(rank) FROM tasks WHERE status = 'pending'".into(),
        ),
        (
            "tail rank".into(),
            "SELECT MAX(rank) FROM tasks WHERE status = 'pending'".into(),
        ),
        (
            "export, first page".into(),
            super::export::pending_page_sql(false),
        ),
        (
            "export, next page".into(),
            super::export::pending_page_sql(true),
        ),
        (
            "id taken, any case".into(),
            "SELECT 1 FROM tasks WHERE lower(id) = lower(?1)".into(),
        ),
        (
            "fences of tasks left running".into(),
            transitions::max_running_fence_sql(),
        ),
    ];
    for f in HistoryFilter::ALL {
        queries.push((format!("history {}", f.as_str()), listing::history_sql(f)));
    }
    for (what, sql) in queries {
        let plan: Vec<String> = c
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(
                rusqlite::params_from_iter(std::iter::repeat_n(
                    rusqlite::types::Value::Null,
                    sql.matches('?').count(),
                )),
                |r| r.get::<_, String>(3),
            )
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // "SCAN tasks" alone is a full scan; "SCAN tasks USING INDEX …" walks an index in
        // the listing's order and stops at the LIMIT.
        let bad = plan
            .iter()
            .any(|l| l == "SCAN tasks" || l.contains("TEMP B-TREE FOR ORDER BY"));
        eprintln!("{what}: {}", plan.join(" | "));
        assert!(!bad, "{what}: {}", plan.join(" | "));
    }
}

/// The counts kept by triggers equal a full count after inserts, claims, ends, bookmarks,
/// requeues and deletes.
#[test]
fn trigger_counts_match_the_rows() {
    let mut c = setup(&["a", "b", "c", "d", "e"]);
    let truth = |c: &Connection| -> Counts {
        let n = |cond: &str| -> i64 {
            c.query_row(
                &format!("SELECT COUNT(*) FROM tasks WHERE {cond}"),
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        Counts {
            pending: n("status = 'pending'"),
            running: n("status = 'running'"),
            done: n("status = 'done'"),
            failed: n("status = 'failed'"),
            interrupted: n("status = 'interrupted'"),
            bookmarked: n(&format!("bookmarked = 1 AND {}", *status::FINISHED)),
        }
    };
    assert_eq!(counts(&c).unwrap(), truth(&c));
    let a = claim(&mut c, false).unwrap();
    assert_eq!(counts(&c).unwrap(), truth(&c));
    end_run(&mut c, &a.id, RunEnd::Done, POLICY, vec![]);
    let b = claim(&mut c, false).unwrap();
    end_run(&mut c, &b.id, RunEnd::Failed("x".into()), POLICY, vec![]);
    set_bookmark(&c, "a", true, NOW).unwrap();
    set_bookmark(&c, "c", true, NOW).unwrap();
    assert_eq!(counts(&c).unwrap(), truth(&c));
    assert_eq!(counts(&c).unwrap().bookmarked, 1);
    requeue_failed(&mut c, NOW).unwrap();
    apply(&mut c, "d", &Event::Delete, &POLICY, NOW).unwrap();
    apply(&mut c, "a", &Event::Delete, &POLICY, NOW).unwrap();
    let want = truth(&c);
    assert_eq!(counts(&c).unwrap(), want);
    assert_eq!((want.pending, want.done, want.failed), (3, 0, 0));
}

/// Pages read by cursor are the pages read by offset, in the queue and the history, and a
/// search pages by cursor in the order of creation.
#[test]
fn cursor_pages_equal_offset_pages() {
    let ids: Vec<String> = (0..23).map(|i| format!("t{i:02}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut c = setup(&refs);
    // 10 finished, 13 pending; one move so rank order differs from insertion order.
    for _ in 0..10 {
        let t = claim(&mut c, false).unwrap();
        end_run(&mut c, &t.id, RunEnd::Done, POLICY, vec![]);
    }
    move_task(&mut c, "t22", &MoveTarget::Top, NOW).unwrap();
    let (all, _) = list_queue(&c, None, 100, 0).unwrap();
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let rows = pending_rows(&c, after, 4, 0).unwrap();
        if rows.is_empty() {
            break;
        }
        after = rows.last().map(|t| (t.rank, t.seq));
        paged.extend(rows.into_iter().map(|t| t.id));
    }
    let all: Vec<String> = all.into_iter().map(|t| t.id).collect();
    assert_eq!(paged, all);
    assert_eq!(all[0], "t22");

    let (hist, total) = list_history(&c, HistoryFilter::All, None, 100, 0).unwrap();
    assert_eq!(total, 10);
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let (rows, _) = history_page(&c, HistoryFilter::All, None, cursor.as_ref(), 3, 0).unwrap();
        if rows.is_empty() {
            break;
        }
        let last = rows.last().unwrap();
        cursor = Some(crate::model::cursor::Cursor::Finished {
            finished_at: last.life.finished_at.unwrap(),
            seq: last.seq,
        });
        paged.extend(rows.into_iter().map(|t| t.id));
    }
    assert_eq!(paged, hist.into_iter().map(|t| t.id).collect::<Vec<_>>());

    let (found, total) = list_history(&c, HistoryFilter::All, Some("prompt"), 4, 0).unwrap();
    assert_eq!(total, 10);
    let next = crate::model::cursor::Cursor::Seq(found.last().unwrap().seq);
    let (more, _) =
        history_page(&c, HistoryFilter::All, Some("prompt"), Some(&next), 100, 0).unwrap();
    let mut seen: Vec<String> = found.iter().chain(&more).map(|t| t.id.clone()).collect();
    assert_eq!(seen.len(), 10, "newest first, no duplicates");
    assert_eq!(seen[0], "t09");
    seen.dedup();
    assert_eq!(seen.len(), 10);
    let (q, qtotal) = list_queue(&c, Some("prompt"), 100, 0).unwrap();
    assert_eq!(qtotal, 13);
    assert_eq!(q[0].id, "t10", "queue search in the order of creation");
}

/// A thousand moves into the same place touch a few rows each (a local spread), never the
/// whole queue, and the order stays right.
#[test]
fn moves_into_one_place_renumber_locally() {
    let ids: Vec<String> = (0..300).map(|i| format!("t{i:03}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut c = setup(&refs);
    let rank_of = |c: &Connection, id: &str| task(c, id).rank;
    let far = rank_of(&c, "t299");
    let mut expect: Vec<String> = ids.clone();
    for i in 0..1000usize {
        // Move a task from the end of the first half just before t150, again and again.
        let moving = &ids[(i * 7) % 140];
        move_task(&mut c, moving, &MoveTarget::Before("t150".into()), NOW).unwrap();
        expect.retain(|x| x != moving);
        let at = expect.iter().position(|x| x == "t150").unwrap();
        expect.insert(at, moving.clone());
    }
    let now: Vec<String> = list_queue(&c, None, 1000, 0)
        .unwrap()
        .0
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(now, expect);
    assert_eq!(
        rank_of(&c, "t299"),
        far,
        "tasks far from the place never move"
    );
    let (rows, _) = list_queue(&c, None, 1000, 0).unwrap();
    assert!(rows.windows(2).all(|w| w[0].rank < w[1].rank));
}

/// A claim counts the overtakes its choice makes; "move to top" pins (and so does a drag in
/// among pinned tasks); back at the head (an outage) pins; a requeue at the tail starts over.
#[test]
fn claims_count_overtakes_and_moves_pin() {
    let mut c = setup(&["a", "b", "c", "d"]);
    let pick = |index: usize, overtaken: Vec<usize>| {
        move |_: &[crate::model::Candidate], _: bool| Some(Choice { index, overtaken })
    };
    let t = claim_next(&mut c, "b1", 5, fence(), pick(2, vec![0, 1]))
        .unwrap()
        .unwrap();
    assert_eq!(t.id, "c");
    let t = claim_next(&mut c, "b1", 9, fence(), pick(1, vec![0]))
        .unwrap()
        .unwrap();
    assert_eq!(t.id, "b");
    let a = task(&c, "a");
    assert_eq!((a.overtakes, a.overtaken_at), (2, Some(5)));
    assert_eq!(task(&c, "d").overtakes, 0);
    // A choice outside the window is refused (nothing claimed).
    assert!(matches!(
        claim_next(&mut c, "b1", 9, fence(), pick(7, vec![])),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(task(&c, "d").status(), TaskStatus::Pending);

    move_task(&mut c, "d", &MoveTarget::Top, NOW).unwrap();
    assert!(task(&c, "d").pinned);
    move_task(&mut c, "a", &MoveTarget::Before("d".into()), NOW).unwrap();
    assert!(task(&c, "a").pinned, "dragged in before a pinned task");
    move_task(&mut c, "a", &MoveTarget::Bottom, NOW).unwrap();
    assert!(!task(&c, "a").pinned);
    // The running `b` goes back to the head after an outage: pinned, overtakes kept.
    apply(&mut c, "b", &Event::Released, &POLICY, NOW).unwrap();
    assert!(task(&c, "b").pinned);
    // `c` fails and is requeued at the tail: a new life.
    end_run(&mut c, "c", RunEnd::Failed("x".into()), POLICY, vec![]);
    requeue_failed(&mut c, NOW).unwrap();
    let t = task(&c, "c");
    assert_eq!((t.pinned, t.overtakes, t.overtaken_at), (false, 0, None));
    let a = task(&c, "a");
    assert_eq!(
        (a.overtakes, a.overtaken_at),
        (2, Some(5)),
        "moves keep the count"
    );
}

fn image(name: &str) -> ImageRow {
    ImageRow {
        index: 0,
        file_name: name.into(),
        infotext: "p".into(),
        format: "png".into(),
    }
}

#[test]
fn a_run_s_end_release_or_failed_try_is_written_only_under_its_claim() {
    let mut c = setup(&["a"]);
    let first = claim(&mut c, false).unwrap().life.fence.unwrap();
    apply_claimed(&mut c, "a", first, &Event::Released, &POLICY, NOW).unwrap();
    let again = claim(&mut c, false).unwrap();
    let second = again.life.fence.unwrap();
    assert_ne!(first, second);
    let before = task(&c, "a");
    // The first claim's worker comes back late: its end, its release, its failed try.
    let stale = |r: Result<Applied, StoreError>| match r {
        Err(StoreError::Stale(why)) => why,
        other => panic!("expected a stale claim, got {other:?}"),
    };
    let why = stale(end_claim(
        &mut c,
        "a",
        first,
        RunEnd::Done,
        POLICY,
        vec![image("0.png")],
    ));
    assert_eq!(
        why,
        format!("task a no longer runs under claim {first}: its end is not written")
    );
    stale(apply_claimed(
        &mut c,
        "a",
        first,
        &Event::Released,
        &POLICY,
        NOW,
    ));
    stale(apply_claimed(
        &mut c,
        "a",
        first,
        &Event::Errored { reason: "x".into() },
        &POLICY,
        NOW,
    ));
    assert_eq!(task(&c, "a"), before, "nothing written");
    assert!(all_deliveries(&c, 10).unwrap().is_empty());
    // Its own claim ends it.
    let done = end_claim(
        &mut c,
        "a",
        second,
        RunEnd::Done,
        POLICY,
        vec![image("1.png")],
    )
    .unwrap();
    assert_eq!(done.status(), Some(TaskStatus::Done));
    assert_eq!(task(&c, "a").images, vec![image("1.png")]);
    // Once, and a finished task is no claim's any more.
    stale(end_claim(&mut c, "a", second, RunEnd::Done, POLICY, vec![]));
    // A deleted task neither.
    apply(&mut c, "a", &Event::Delete, &POLICY, NOW).unwrap();
    stale(end_claim(&mut c, "a", second, RunEnd::Done, POLICY, vec![]));
}

#[test]
fn a_stop_the_user_asked_belongs_to_its_claim_and_ends_it_interrupted() {
    let mut c = setup(&["a", "b"]);
    let t = claim(&mut c, false).unwrap();
    assert_eq!(t.id, "a");
    let stopped = apply(&mut c, "a", &Event::Delete, &POLICY, NOW).unwrap();
    assert_eq!(
        stopped.status(),
        None,
        "the status changes when the run ends"
    );
    assert_eq!(
        (task(&c, "a").status(), task(&c, "a").life.stop_requested),
        (TaskStatus::Running, true)
    );
    // The run's answer came back complete: still not a result.
    let end = end_run(&mut c, "a", RunEnd::Done, POLICY, vec![image("0.png")]);
    assert_eq!(end.status(), Some(TaskStatus::Interrupted));
    let a = task(&c, "a");
    assert_eq!((a.status(), a.images.len()), (TaskStatus::Interrupted, 0));
    // A release (an outage, the backend withdrawn) of a stopped run ends it interrupted too.
    let b = claim(&mut c, false).unwrap();
    assert_eq!(b.id, "b");
    apply(&mut c, "b", &Event::Delete, &POLICY, NOW).unwrap();
    let released = apply_claimed(
        &mut c,
        "b",
        b.life.fence.unwrap(),
        &Event::Released,
        &POLICY,
        NOW,
    )
    .unwrap();
    assert_eq!(released.status(), Some(TaskStatus::Interrupted));
    // The same id again (deleted, then imported with its id): its new claim is not stopped.
    apply(&mut c, "a", &Event::Delete, &POLICY, NOW).unwrap();
    insert_tasks(&mut c, &[new_task("a", "again")], None, NOW).unwrap();
    let rerun = claim(&mut c, false).unwrap();
    assert_eq!((rerun.id.as_str(), rerun.life.stop_requested), ("a", false));
    let end = end_run(&mut c, "a", RunEnd::Done, POLICY, vec![image("0.png")]);
    assert_eq!(end.status(), Some(TaskStatus::Done));
    assert_eq!(task(&c, "a").images, vec![image("0.png")]);
}

#[test]
fn new_fences_start_above_those_of_tasks_left_running() {
    let mut c = setup(&["a", "b"]);
    assert_eq!(max_running_fence(&c).unwrap(), 0);
    claim_next(&mut c, "b1", NOW, 41, first).unwrap().unwrap();
    claim_next(&mut c, "b1", NOW, 7, first).unwrap().unwrap();
    assert_eq!(max_running_fence(&c).unwrap(), 41);
    end_run(&mut c, "a", RunEnd::Done, POLICY, vec![]);
    assert_eq!(
        max_running_fence(&c).unwrap(),
        7,
        "only running tasks count"
    );
}

/// The lifecycle columns (what the transition function decides) are written by one
/// statement, `transitions.rs`'s `write`, in every file of the store (read from its
/// folder, so a new file is checked too); inserts write a new task's `pending` only.
#[test]
fn lifecycle_columns_are_written_by_the_transition_write_only() {
    const LIFECYCLE: &[&str] = &[
        "status",
        "attempts",
        "backend",
        "error",
        "started_at",
        "finished_at",
        "run_next",
        "force_run",
        "next_run_at",
        "fence",
        "stop_requested",
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
    let mut writes = Vec::new();
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("the store folder") {
        let path = entry.expect("an entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "tests.rs" || path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        files += 1;
        let src = std::fs::read_to_string(&path).expect("a source file");
        let flat: String = src
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace("\\ ", "");
        for (at, _) in flat.match_indices("UPDATE tasks SET ") {
            let rest = &flat[at + "UPDATE tasks SET ".len()..];
            let set = &rest[..rest.find(" WHERE").unwrap_or(rest.len())];
            let assigned: Vec<&str> = set
                .split(',')
                .filter_map(|a| a.split_once('=').map(|(col, _)| col.trim()))
                .filter(|col| LIFECYCLE.contains(col))
                .collect();
            if !assigned.is_empty() {
                writes.push((name.clone(), assigned.len()));
            }
        }
    }
    assert!(files >= 13, "read the store's files: {files}");
    assert_eq!(
        writes,
        [("transitions.rs".to_owned(), LIFECYCLE.len())],
        "one statement writes the lifecycle, all of it"
    );
}
