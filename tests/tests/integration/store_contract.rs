//! The store contract suite: one body per behaviour, run against both stores through
//! `TaskStore` — the SQLite file (`store_contract::sqlite::*`) and a throw-away PostgreSQL
//! database (`store_contract::postgres::*`, a prerequisite: it fails under `CI=true` and skips
//! elsewhere when no server is reachable). The same assertions, not two copies. Below them,
//! what only a shared database has: claims from two hosts at once, leases that expire and
//! fences that refuse a stale host, migrations racing, result bytes streamed, `NOTIFY`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use agent_scheduler::clock::Clock;
use agent_scheduler::model::cursor::Cursor;
use agent_scheduler::model::cursor::PendingFrom;
use agent_scheduler::model::eta::Speed;
use agent_scheduler::model::search::Scope;
use agent_scheduler::model::transition::{Event, Policy, Transition};
use agent_scheduler::model::{Candidate, ImageRow, NewTask, RunEnd, TaskEdit, TaskRow};
use agent_scheduler::store::Store;
use agent_scheduler::store::StoreError;
use agent_scheduler::store::api::{ChooseFn, Claimed, Notice, StoreKind, TaskStore};
use agent_scheduler::store::pg::{self, PgStore};
use agent_scheduler::store::transitions::{Applied, Choice, RunOutputs};
use scheduler_api::{
    BulkAction, HistoryFilter, ListName, MoveTarget, Selection, SelectionFilter, TaskStatus,
    TaskType,
};
use scheduler_tests::harness::wait_until;
use scheduler_tests::pg::TestDb;
use serde_json::json;

type S = Arc<dyn TaskStore>;

const POLICY: Policy = Policy {
    auto_requeue_failed: false,
    max_attempts: 3,
    retry_backoff_ms: 1000,
};

/// A store and what keeps it alive (its folder or database).
struct Fixture {
    store: S,
    _dir: Option<tempfile::TempDir>,
    _db: Option<TestDb>,
}

async fn sqlite() -> Option<Fixture> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("queue.sqlite3")).expect("open the SQLite store");
    Some(Fixture {
        store: Arc::new(store),
        _dir: Some(dir),
        _db: None,
    })
}

async fn postgres() -> Option<Fixture> {
    let db = TestDb::create().await?;
    let store = PgStore::open(&db.url, "host-a", pg::DEFAULT_LEASE)
        .await
        .expect("open the PostgreSQL store");
    Some(Fixture {
        store: Arc::new(store),
        _dir: None,
        _db: Some(db),
    })
}

/// Each body once per store: `sqlite::name` and `postgres::name`.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(f) = super::sqlite().await else { return };
                    super::$name(f.store.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(f) = super::postgres().await else { return };
                    super::$name(f.store.clone()).await;
                }
            )*
        }
    };
}

contract!(
    enqueue_lists_counts_and_ids_without_case,
    idempotency_returns_the_first_answer,
    moves_top_bottom_before_and_renumber_locally,
    moves_refuse_tasks_that_are_not_pending,
    claim_is_in_order_and_respects_pause,
    run_now_group_is_fifo_and_force_runs_while_paused,
    claims_count_overtakes_and_moves_pin,
    errored_runs_wait_out_their_backoff,
    recovery_puts_running_back_at_head_then_fails,
    outage_release_counts_no_attempt,
    finish_records_images_callbacks_and_auto_requeue,
    history_filters_totals_search_and_clears,
    retention_cutoff_spares_recent_and_bookmarked_tasks,
    queue_search_edit_copy_and_clear,
    search_matches_words_prefixes_and_phrases,
    keyset_pages_equal_offset_pages,
    history_by_checkpoint_orders_bytewise_nulls_first,
    selections_resolve_in_listing_order,
    bulk_actions_change_every_selected_task,
    exports_page_within_a_budget,
    events_settings_backends_and_speeds_persist,
    callbacks_outbox_retries_and_completes,
    listing_rows_leave_images_out,
    offset_pages_put_running_tasks_first,
    counts_match_the_rows_after_many_changes,
    batches_apply_in_order_and_roll_back_whole,
    one_hosts_leases_renew_and_nothing_is_reclaimed,
    flag_backends_join_one_pool_that_this_host_drives,
    a_backends_driver_stores_its_figures,
);

// ---------------------------------------------------------------------------------------
// Helpers

/// The time a write happens at: the services pass their clock's reading to every store call.
fn now() -> i64 {
    Clock::system().now_ms()
}

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

async fn add(s: &S, ids: &[&str]) {
    let tasks: Vec<NewTask> = ids
        .iter()
        .map(|i| new_task(i, &format!("prompt {i}")))
        .collect();
    assert_eq!(s.insert_tasks(tasks, None, now()).await.unwrap(), None);
}

async fn order(s: &S) -> Vec<String> {
    s.list_queue(None, 1000, 0)
        .await
        .unwrap()
        .0
        .into_iter()
        .map(|t| t.id)
        .collect()
}

fn first() -> ChooseFn {
    Box::new(|window: &[Candidate], _paused| {
        (!window.is_empty()).then(|| Choice {
            index: 0,
            overtaken: Vec::new(),
        })
    })
}

async fn claim(s: &S) -> Option<Claimed> {
    s.claim_next("b1".into(), now(), first()).await.unwrap()
}

async fn task(s: &S, id: &str) -> TaskRow {
    s.get_task(id.into(), true)
        .await
        .unwrap()
        .expect("task exists")
}

/// Ends a claimed run as the queue service does: the store decides the end on the task as it
/// is now and writes it guarded by the claim's fence.
async fn end_run(
    s: &S,
    c: &Claimed,
    end: RunEnd,
    policy: Policy,
    images: Vec<ImageRow>,
) -> Applied {
    s.finish(
        c.task.id.clone(),
        c.fence,
        Event::Finished { end, at: now() },
        policy,
        RunOutputs {
            images,
            info: Some(json!({"seed": 1})),
        },
        now(),
    )
    .await
    .unwrap()
}

/// Claims and finishes every pending task, in order, `done`.
async fn run_all(s: &S) {
    while let Some(c) = claim(s).await {
        end_run(s, &c, RunEnd::Done, POLICY, vec![]).await;
    }
}

fn statuses(applied: &[(String, Applied)]) -> Vec<(String, Option<TaskStatus>)> {
    applied
        .iter()
        .map(|(id, a)| (id.clone(), a.status()))
        .collect()
}

fn ids(rows: &[TaskRow]) -> Vec<&str> {
    rows.iter().map(|t| t.id.as_str()).collect()
}

fn img(index: u32, name: &str) -> ImageRow {
    ImageRow {
        index,
        file_name: name.into(),
        infotext: format!("info {index}"),
        format: name.rsplit('.').next().unwrap_or("png").into(),
    }
}

// ---------------------------------------------------------------------------------------
// The contract

async fn enqueue_lists_counts_and_ids_without_case(s: S) {
    add(&s, &["a", "b", "c"]).await;
    assert_eq!(order(&s).await, ["a", "b", "c"]);
    let c = s.counts().await.unwrap();
    assert_eq!((c.pending, c.running, c.done), (3, 0, 0));
    let a = task(&s, "a").await;
    assert_eq!(a.request["prompt"], json!("prompt a"));
    assert_eq!(a.status(), TaskStatus::Pending);
    assert_eq!(
        s.tasks_exist(vec!["A".into(), "b".into(), "zz".into()])
            .await
            .unwrap(),
        vec![true, true, false]
    );
    // Case is ASCII case (as SQLite's lower()): "É" and "é" are two ids.
    add(&s, &["É"]).await;
    assert_eq!(
        s.tasks_exist(vec!["é".into(), "É".into()]).await.unwrap(),
        vec![false, true]
    );
    assert_eq!(s.get_task("zz".into(), false).await.unwrap(), None);
    // A clash of ids fails the whole insert.
    assert!(
        s.insert_tasks(vec![new_task("d", "x"), new_task("a", "y")], None, now())
            .await
            .is_err()
    );
    assert_eq!(order(&s).await, ["a", "b", "c", "É"]);
    let head = s.queue_head(2).await.unwrap();
    assert_eq!(ids(&head.window), ["a", "b"]);
    assert_eq!((head.paused, head.counts.pending), (false, 4));
    let b = task(&s, "b").await;
    assert_eq!(s.pending_before(b.rank, b.seq).await.unwrap(), 1);
}

async fn idempotency_returns_the_first_answer(s: S) {
    let key = || Some(("k".to_string(), "A".to_string()));
    assert_eq!(
        s.insert_tasks(vec![new_task("a", "x")], key(), now())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.insert_tasks(
            vec![new_task("b", "x")],
            Some(("k".into(), "B".into())),
            now()
        )
        .await
        .unwrap(),
        Some("A".into())
    );
    assert_eq!(order(&s).await, ["a"]);
    assert_eq!(
        s.idempotent_answer("k".into()).await.unwrap(),
        Some("A".into())
    );
    assert_eq!(s.prune_idempotency(now() + 1).await.unwrap(), 1);
    assert_eq!(s.idempotent_answer("k".into()).await.unwrap(), None);
}

async fn moves_top_bottom_before_and_renumber_locally(s: S) {
    add(&s, &["a", "b", "c", "d"]).await;
    let mv = |id: &str, t: MoveTarget| s.move_task(id.into(), t, now());
    mv("c", MoveTarget::Top).await.unwrap();
    assert_eq!(order(&s).await, ["c", "a", "b", "d"]);
    mv("a", MoveTarget::Top).await.unwrap();
    assert_eq!(order(&s).await, ["a", "c", "b", "d"]);
    mv("a", MoveTarget::Bottom).await.unwrap();
    assert_eq!(order(&s).await, ["c", "b", "d", "a"]);
    mv("a", MoveTarget::Before("b".into())).await.unwrap();
    assert_eq!(order(&s).await, ["c", "a", "b", "d"]);
    mv("c", MoveTarget::Before("d".into())).await.unwrap();
    assert_eq!(order(&s).await, ["a", "b", "c", "d"]);
    assert!(matches!(
        mv("x", MoveTarget::Top).await,
        Err(StoreError::NotFound)
    ));
    // Many moves into the same gap force a local renumbering; the order stays right.
    for _ in 0..40 {
        mv("d", MoveTarget::Before("b".into())).await.unwrap();
        mv("c", MoveTarget::Before("d".into())).await.unwrap();
        mv("d", MoveTarget::Before("c".into())).await.unwrap();
    }
    assert_eq!(order(&s).await, ["a", "d", "c", "b"]);
    let (rows, _) = s.list_queue(None, 100, 0).await.unwrap();
    assert!(rows.windows(2).all(|w| w[0].rank < w[1].rank));
}

async fn moves_refuse_tasks_that_are_not_pending(s: S) {
    add(&s, &["a", "b"]).await;
    claim(&s).await.unwrap();
    assert_eq!(
        s.move_task("a".into(), MoveTarget::Top, now())
            .await
            .unwrap_err()
            .to_string(),
        "Task is running"
    );
    assert_eq!(
        s.move_task("b".into(), MoveTarget::Before("a".into()), now())
            .await
            .unwrap_err()
            .to_string(),
        "Task a is running"
    );
    assert_eq!(order(&s).await, ["a", "b"]);
}

async fn claim_is_in_order_and_respects_pause(s: S) {
    add(&s, &["a", "b"]).await;
    s.set_paused(true).await.unwrap();
    assert!(s.is_paused().await.unwrap());
    // The queue event's one read: the pause and the counts.
    let (paused, c) = s.queue_state().await.unwrap();
    assert_eq!((paused, c.pending, c.running), (true, 2, 0));
    assert_eq!(claim(&s).await, None);
    s.set_paused(false).await.unwrap();
    let t = claim(&s).await.unwrap().task;
    assert_eq!(t.id, "a");
    assert_eq!(t.status(), TaskStatus::Running);
    assert_eq!(t.life.backend.as_deref(), Some("b1"));
    assert_eq!(order(&s).await, ["a", "b"]);
    assert_eq!(claim(&s).await.unwrap().task.id, "b");
    assert_eq!(claim(&s).await, None);
    assert_eq!(
        s.running().await.unwrap(),
        vec![
            ("a".to_string(), Some("b1".to_string())),
            ("b".to_string(), Some("b1".to_string()))
        ]
    );
    let c = s.counts().await.unwrap();
    assert_eq!((c.pending, c.running), (0, 2));
    let (paused, q) = s.queue_state().await.unwrap();
    assert_eq!((paused, q), (false, c));
    // A claimer that chooses nothing claims nothing.
    add(&s, &["c"]).await;
    assert_eq!(
        s.claim_next("b2".into(), now(), Box::new(|_, _| None))
            .await
            .unwrap(),
        None
    );
    assert_eq!(task(&s, "c").await.status(), TaskStatus::Pending);
    // A choice outside the window is refused and claims nothing.
    let outside: ChooseFn = Box::new(|_, _| {
        Some(Choice {
            index: 5,
            overtaken: Vec::new(),
        })
    });
    assert!(matches!(
        s.claim_next("b2".into(), now(), outside).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(task(&s, "c").await.status(), TaskStatus::Pending);
}

async fn run_now_group_is_fifo_and_force_runs_while_paused(s: S) {
    add(&s, &["a", "b", "c", "d"]).await;
    assert_eq!(s.run_now("c".into(), now()).await.unwrap(), 0);
    s.run_now("d".into(), now()).await.unwrap();
    assert_eq!(order(&s).await, ["c", "d", "a", "b"]);
    s.set_paused(true).await.unwrap();
    s.run_now("b".into(), now()).await.unwrap();
    assert_eq!(order(&s).await, ["c", "d", "b", "a"]);
    let paused_claim: ChooseFn = Box::new(|w: &[Candidate], paused| {
        assert!(paused, "the claim sees the pause");
        (!w.is_empty()).then(|| Choice {
            index: 0,
            overtaken: Vec::new(),
        })
    });
    let t = s
        .claim_next("b1".into(), now(), paused_claim)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.task.id, "b");
    assert_eq!(claim(&s).await, None);
    assert_eq!(
        s.run_now("b".into(), now()).await.unwrap_err().to_string(),
        "Task is running"
    );
    s.set_paused(false).await.unwrap();
    assert_eq!(s.run_now("a".into(), now()).await.unwrap(), 1);
}

async fn claims_count_overtakes_and_moves_pin(s: S) {
    add(&s, &["a", "b", "c"]).await;
    // The policy picks the third task: the two before it are overtaken once.
    let third: ChooseFn = Box::new(|w: &[Candidate], _| {
        assert_eq!(w.len(), 3);
        Some(Choice {
            index: 2,
            overtaken: vec![0, 1],
        })
    });
    let before = now();
    let t = s
        .claim_next("b1".into(), before, third)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.task.id, "c");
    for id in ["a", "b"] {
        let r = task(&s, id).await;
        assert_eq!((r.overtakes, r.overtaken_at), (1, Some(before)), "{id}");
    }
    s.move_task("b".into(), MoveTarget::Top, now())
        .await
        .unwrap();
    assert!(task(&s, "b").await.pinned);
    s.move_task("b".into(), MoveTarget::Bottom, now())
        .await
        .unwrap();
    assert!(!task(&s, "b").await.pinned);
    // A run given back goes to the head, pinned; its overtakes stay.
    s.apply_claimed("c".into(), t.fence, Event::Released, POLICY, now())
        .await
        .unwrap();
    let c = task(&s, "c").await;
    assert!(c.pinned);
    assert_eq!(order(&s).await, ["c", "a", "b"]);
    // A requeue at the tail forgets the overtakes.
    let a = claim(&s).await.unwrap();
    assert_eq!(a.task.id, "c");
    end_run(&s, &a, RunEnd::Failed("x".into()), POLICY, vec![]).await;
    s.requeue_failed(now()).await.unwrap();
    let c = task(&s, "c").await;
    assert_eq!((c.pinned, c.overtakes, c.overtaken_at), (false, 0, None));
    assert_eq!(order(&s).await, ["a", "b", "c"]);
}

async fn errored_runs_wait_out_their_backoff(s: S) {
    add(&s, &["a", "b"]).await;
    let a = claim(&s).await.unwrap();
    let applied = s
        .apply_claimed(
            "a".into(),
            a.fence,
            Event::Errored {
                reason: "reset".into(),
            },
            POLICY,
            now(),
        )
        .await
        .unwrap();
    assert_eq!(applied.status(), Some(TaskStatus::Pending));
    let t = task(&s, "a").await;
    assert_eq!(t.life.attempts, 1);
    let at = t.life.next_run_at.expect("a retry time");
    assert!(at > now() - 1000);
    assert_eq!(s.next_retry_at().await.unwrap(), Some(at));
    assert_eq!(order(&s).await, ["a", "b"]);
    // Until then the claim passes it by; after it, it runs first.
    assert_eq!(claim(&s).await.unwrap().task.id, "b");
    let later = s
        .claim_next("b2".into(), at, first())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(later.task.id, "a");
    assert_eq!(s.next_retry_at().await.unwrap(), None);
}

async fn recovery_puts_running_back_at_head_then_fails(s: S) {
    add(&s, &["a", "b"]).await;
    for round in 1..=3u32 {
        let t = claim(&s).await.unwrap();
        assert_eq!(t.task.id, "a");
        let out = statuses(&s.recover_running(POLICY, now()).await.unwrap());
        if round < 3 {
            assert_eq!(out, vec![("a".to_string(), Some(TaskStatus::Pending))]);
            assert_eq!(order(&s).await, ["a", "b"]);
            assert_eq!(task(&s, "a").await.life.attempts, round);
        } else {
            assert_eq!(out, vec![("a".to_string(), Some(TaskStatus::Failed))]);
            assert_eq!(
                task(&s, "a").await.life.error.as_deref(),
                Some("interrupted by host restart; 3 attempts")
            );
        }
    }
}

async fn outage_release_counts_no_attempt(s: S) {
    add(&s, &["a", "b"]).await;
    claim(&s).await.unwrap();
    let b = claim(&s).await.unwrap();
    s.apply_claimed("b".into(), b.fence, Event::Released, POLICY, now())
        .await
        .unwrap();
    let t = task(&s, "b").await;
    assert_eq!((t.status(), t.life.attempts), (TaskStatus::Pending, 0));
    assert_eq!(t.life.backend, None);
    assert_eq!(order(&s).await, ["a", "b"]);
    let released = statuses(&s.release_running(now()).await.unwrap());
    assert_eq!(released, vec![("a".to_string(), Some(TaskStatus::Pending))]);
    assert_eq!(s.counts().await.unwrap().running, 0);
}

async fn finish_records_images_callbacks_and_auto_requeue(s: S) {
    let mut a = new_task("a", "x");
    a.callback_url = Some("http://x/cb".into());
    s.insert_tasks(vec![a, new_task("b", "y")], None, now())
        .await
        .unwrap();
    let c = claim(&s).await.unwrap();
    let image = img(0, "0.png");
    let f = end_run(&s, &c, RunEnd::Done, POLICY, vec![image.clone()]).await;
    assert_eq!(f.status(), Some(TaskStatus::Done));
    assert!(f.callback_queued);
    let a = task(&s, "a").await;
    assert_eq!(a.images, vec![image]);
    assert_eq!(a.info, Some(json!({"seed": 1})));
    assert!(a.life.finished_at.is_some());
    let due = s.all_deliveries(10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].task_id.as_str(), due[0].status.as_str()),
        ("a", "done")
    );
    assert_eq!(
        due[0].files,
        vec![("a/0.png".to_string(), "image/png".to_string())]
    );
    // A second end of the same run is refused.
    let again = s
        .finish(
            "a".into(),
            c.fence,
            Event::Finished {
                end: RunEnd::Done,
                at: now(),
            },
            POLICY,
            RunOutputs::default(),
            now(),
        )
        .await;
    assert!(matches!(again, Err(StoreError::Stale(_))), "{again:?}");
    // Failed with auto-requeue until the attempts run out.
    let requeue = Policy {
        auto_requeue_failed: true,
        max_attempts: 3,
        retry_backoff_ms: 1000,
    };
    for i in 1..=3u32 {
        let t = claim(&s).await.unwrap();
        assert_eq!(t.task.id, "b");
        let f = end_run(
            &s,
            &t,
            RunEnd::Failed("no images".into()),
            requeue,
            vec![img(0, "0.jpg")],
        )
        .await;
        let want = if i < 3 {
            TaskStatus::Pending
        } else {
            TaskStatus::Failed
        };
        assert_eq!(f.status(), Some(want));
        let b = task(&s, "b").await;
        assert_eq!(b.life.attempts, i);
        assert_eq!(b.images.len(), usize::from(i == 3));
    }
    let (h, total) = s
        .history_page(HistoryFilter::Status(TaskStatus::Failed), None, None, 10, 0)
        .await
        .unwrap();
    assert_eq!((ids(&h), total), (vec!["b"], 1));
    let requeued = statuses(&s.requeue_failed(now()).await.unwrap());
    assert_eq!(requeued, vec![("b".to_string(), Some(TaskStatus::Pending))]);
    let b = task(&s, "b").await;
    assert_eq!((b.life.attempts, b.images.len(), b.info), (0, 0, None));
    assert_eq!(order(&s).await, ["b"]);
    let c = s.counts().await.unwrap();
    assert_eq!((c.pending, c.running, c.done, c.failed), (1, 0, 1, 0));
}

async fn history_filters_totals_search_and_clears(s: S) {
    add(&s, &["a", "b", "c"]).await;
    run_all(&s).await;
    s.set_bookmark("b".into(), true, now()).await.unwrap();
    let (rows, total) = s
        .history_page(HistoryFilter::All, None, None, 2, 0)
        .await
        .unwrap();
    assert_eq!((rows.len(), total), (2, 3));
    assert_eq!(ids(&rows), ["c", "b"]);
    let (rows, total) = s
        .history_page(HistoryFilter::Bookmarked, None, None, 20, 0)
        .await
        .unwrap();
    assert_eq!((ids(&rows), total), (vec!["b"], 1));
    let (rows, total) = s
        .history_page(HistoryFilter::All, Some("prompt c".into()), None, 20, 0)
        .await
        .unwrap();
    assert_eq!((ids(&rows), total), (vec!["c"], 1));
    let (_, total) = s
        .history_page(HistoryFilter::All, Some("\"unbalanced".into()), None, 20, 0)
        .await
        .unwrap();
    assert_eq!(total, 0);
    let c = s.counts().await.unwrap();
    assert_eq!((c.done, c.bookmarked), (3, 1));
    let removed = s.clear_history(None, now()).await.unwrap();
    assert_eq!(removed.len(), 2);
    assert_eq!(task(&s, "b").await.id, "b");
    let c = s.counts().await.unwrap();
    assert_eq!((c.done, c.bookmarked), (1, 1));
}

async fn retention_cutoff_spares_recent_and_bookmarked_tasks(s: S) {
    add(&s, &["old", "old-kept", "new"]).await;
    run_all(&s).await;
    s.set_bookmark("old-kept".into(), true, now())
        .await
        .unwrap();
    // Nothing finished before the cutoff: nothing goes.
    assert!(
        s.clear_history(Some(now() - 86_400_000), now())
            .await
            .unwrap()
            .is_empty()
    );
    let cleared: Vec<String> = s
        .clear_history(Some(now() + 1), now())
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(cleared, vec!["old".to_string(), "new".to_string()]);
    let (_, total) = s
        .history_page(HistoryFilter::All, None, None, 10, 0)
        .await
        .unwrap();
    assert_eq!(total, 1);
}

async fn queue_search_edit_copy_and_clear(s: S) {
    add(&s, &["a", "b"]).await;
    let row = s
        .rename("a".into(), Some("sunset".into()), now())
        .await
        .unwrap();
    assert_eq!(row.name.as_deref(), Some("sunset"));
    let (rows, total) = s.list_queue(Some("suns".into()), 10, 0).await.unwrap();
    assert_eq!((ids(&rows), total), (vec!["a"], 1));
    s.edit_task(
        "b".into(),
        TaskEdit {
            params: Some(json!({"prompt": "ocean"}).as_object().cloned().unwrap()),
            checkpoint: Some(Some("m".into())),
            ..Default::default()
        },
        now(),
    )
    .await
    .unwrap();
    let (rows, _) = s.list_queue(Some("ocean".into()), 10, 0).await.unwrap();
    assert_eq!(rows[0].checkpoint.as_deref(), Some("m"));
    assert_eq!(task(&s, "b").await.request["prompt"], json!("ocean"));
    claim(&s).await.unwrap();
    assert_eq!(
        s.edit_task("a".into(), TaskEdit::default(), now())
            .await
            .unwrap_err()
            .to_string(),
        "Task is running"
    );
    s.insert_copy(
        "a".into(),
        "copy".into(),
        agent_scheduler::model::spec::copy_name,
        now(),
    )
    .await
    .unwrap();
    assert_eq!(
        task(&s, "copy").await.name.as_deref(),
        Some("Copy of sunset")
    );
    assert_eq!(order(&s).await, ["a", "b", "copy"]);
    let row = s.set_bookmark("b".into(), true, now()).await.unwrap();
    assert!(row.bookmarked);
    let cleared: Vec<String> = s
        .clear_queue(now())
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(cleared, vec!["copy".to_string()]);
    assert_eq!(order(&s).await, ["a", "b"]);
    // Deleting the running task asks its claim to stop: recorded on the task, which runs on
    // until that run ends (interrupted).
    let fence = task(&s, "a").await.life.fence;
    assert!(fence.is_some());
    let stop = s
        .apply("a".into(), Event::Delete, POLICY, now())
        .await
        .unwrap()
        .transition;
    assert!(
        matches!(&stop, Transition::Interrupt { fence: f, change } if *f == fence && change.next.stop_requested),
        "{stop:?}"
    );
    let a = task(&s, "a").await;
    assert_eq!(
        (a.status(), a.life.fence, a.life.stop_requested),
        (TaskStatus::Running, fence, true)
    );
    let (applied, before) = s.delete("b".into(), POLICY, now()).await.unwrap();
    assert_eq!(
        (applied.transition, before),
        (Transition::Remove { files: false }, TaskStatus::Pending)
    );
    assert_eq!(s.get_task("b".into(), false).await.unwrap(), None);
    assert!(matches!(
        s.rename("b".into(), None, now()).await,
        Err(StoreError::NotFound)
    ));
}

async fn search_matches_words_prefixes_and_phrases(s: S) {
    let mut tasks = vec![
        new_task("t1", "A red fox at dusk"),
        new_task("t2", "red-fox, watercolor"),
        new_task("t3", "blue whale"),
    ];
    tasks[2].name = Some("Ocean Study".into());
    tasks[2].checkpoint = Some("sdxl/base.safetensors".into());
    s.insert_tasks(tasks, None, now()).await.unwrap();
    let found = |q: &'static str| {
        let s = s.clone();
        async move {
            let (rows, total) = s.search(q.into(), Scope::Queue, None, 10, 0).await.unwrap();
            assert_eq!(rows.len() as i64, total, "{q}");
            rows.into_iter().map(|t| t.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(found("fox").await, ["t1", "t2"]);
    assert_eq!(found("FO").await, ["t1", "t2"]);
    assert_eq!(found("red fox dusk").await, ["t1"]);
    assert_eq!(found("red-fox").await, ["t1", "t2"]);
    assert_eq!(found("fox red").await, ["t1", "t2"]);
    assert_eq!(found("ocean").await, ["t3"]);
    assert_eq!(found("base").await, ["t3"]);
    assert_eq!(found("whale ocean stu").await, ["t3"]);
    assert!(found("wolf").await.is_empty());
    assert!(found("\"").await.is_empty());
    // Oldest first, paged by seq.
    let (rows, _) = s
        .search("red".into(), Scope::Queue, None, 1, 0)
        .await
        .unwrap();
    let (more, _) = s
        .search("red".into(), Scope::Queue, Some(rows[0].seq), 10, 0)
        .await
        .unwrap();
    assert_eq!((ids(&rows), ids(&more)), (vec!["t1"], vec!["t2"]));
    // The history does not see queued tasks.
    let (rows, total) = s
        .search(
            "fox".into(),
            Scope::History(HistoryFilter::All),
            None,
            10,
            0,
        )
        .await
        .unwrap();
    assert_eq!((rows.len(), total), (0, 0));
}

async fn keyset_pages_equal_offset_pages(s: S) {
    let names: Vec<String> = (0..23).map(|i| format!("t{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    add(&s, &refs).await;
    // Queue: pending rows by keyset equal offset pages.
    let all = s.pending_rows(None, 100, 0).await.unwrap();
    assert_eq!(all.len(), 23);
    let mut keyset = Vec::new();
    let mut after = None;
    loop {
        let page = s.pending_rows(after, 5, 0).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|t| (t.rank, t.seq));
        keyset.extend(page);
    }
    assert_eq!(ids(&keyset), ids(&all));
    assert_eq!(
        ids(&s.pending_rows(None, 5, 10).await.unwrap()),
        ids(&all[10..15])
    );
    // History: Cursor::Finished pages equal offset pages, newest first.
    run_all(&s).await;
    let (all, total) = s
        .history_page(HistoryFilter::All, None, None, 100, 0)
        .await
        .unwrap();
    assert_eq!((all.len(), total), (23, 23));
    assert!(
        all.windows(2)
            .all(|w| (w[0].life.finished_at, w[0].seq) > (w[1].life.finished_at, w[1].seq))
    );
    let mut keyset = Vec::new();
    let mut cursor = None;
    loop {
        let (page, _) = s
            .history_page(HistoryFilter::All, None, cursor.clone(), 4, 0)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some(Cursor::Finished {
            finished_at: last.life.finished_at.unwrap(),
            seq: last.seq,
        });
        keyset.extend(page);
    }
    assert_eq!(ids(&keyset), ids(&all));
    let (page, _) = s
        .history_page(HistoryFilter::All, None, None, 4, 8)
        .await
        .unwrap();
    assert_eq!(ids(&page), ids(&all[8..12]));
}

async fn history_by_checkpoint_orders_bytewise_nulls_first(s: S) {
    let mut tasks = Vec::new();
    for (id, ck) in [
        ("n1", None),
        ("b1", Some("b")),
        ("a1", Some("a")),
        ("B1", Some("B")),
        ("a2", Some("a")),
        ("n2", None),
    ] {
        let mut t = new_task(id, id);
        t.checkpoint = ck.map(str::to_owned);
        tasks.push(t);
    }
    s.insert_tasks(tasks, None, now()).await.unwrap();
    run_all(&s).await;
    // Whatever is loaded first, then titles byte by byte ("B" < "a"), newest first in each.
    let want = ["n2", "n1", "B1", "a2", "a1", "b1"];
    let (rows, total) = s
        .history_by_checkpoint(HistoryFilter::All, None, 100, 0)
        .await
        .unwrap();
    assert_eq!((ids(&rows), total), (want.to_vec(), 6));
    let mut keyset = Vec::new();
    let mut after = None;
    loop {
        let (page, _) = s
            .history_by_checkpoint(HistoryFilter::All, after.clone(), 2, 0)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some((
            last.checkpoint.clone(),
            last.life.finished_at.unwrap(),
            last.seq,
        ));
        keyset.extend(page);
    }
    assert_eq!(ids(&keyset), want);
}

async fn selections_resolve_in_listing_order(s: S) {
    add(&s, &["a", "b", "c", "d"]).await;
    s.move_task("c".into(), MoveTarget::Top, now())
        .await
        .unwrap();
    let by_ids = Selection {
        ids: vec!["d".into(), "a".into(), "d".into()],
        ..Default::default()
    };
    assert_eq!(s.resolve(by_ids).await.unwrap(), ["d", "a"]);
    let unknown = Selection {
        ids: vec!["a".into(), "x".into()],
        ..Default::default()
    };
    assert!(matches!(
        s.resolve(unknown).await,
        Err(StoreError::NotFound)
    ));
    let queue = Selection {
        filter: Some(SelectionFilter {
            list: ListName::Queue,
            status: None,
            q: None,
        }),
        except: vec!["b".into()],
        ..Default::default()
    };
    assert_eq!(s.resolve(queue).await.unwrap(), ["c", "a", "d"]);
    let searched = Selection {
        filter: Some(SelectionFilter {
            list: ListName::Queue,
            status: None,
            q: Some("prompt".into()),
        }),
        except: vec!["a".into()],
        ..Default::default()
    };
    assert_eq!(s.resolve(searched).await.unwrap(), ["c", "b", "d"]);
    // History: newest first; with a search, newest created first.
    while let Some(c) = claim(&s).await {
        if c.task.id == "b" {
            end_run(&s, &c, RunEnd::Failed("x".into()), POLICY, vec![]).await;
        } else {
            end_run(&s, &c, RunEnd::Done, POLICY, vec![]).await;
        }
    }
    let history = |status: Option<HistoryFilter>, q: Option<&str>| Selection {
        filter: Some(SelectionFilter {
            list: ListName::History,
            status,
            q: q.map(str::to_owned),
        }),
        ..Default::default()
    };
    assert_eq!(
        s.resolve(history(None, None)).await.unwrap(),
        ["d", "b", "a", "c"]
    );
    assert_eq!(
        s.resolve(history(
            Some(HistoryFilter::Status(TaskStatus::Failed)),
            None
        ))
        .await
        .unwrap(),
        ["b"]
    );
    assert_eq!(
        s.resolve(history(None, Some("prompt"))).await.unwrap(),
        ["d", "c", "b", "a"]
    );
}

async fn bulk_actions_change_every_selected_task(s: S) {
    let mut tasks: Vec<NewTask> = ["a", "b", "c", "d"]
        .iter()
        .map(|i| new_task(i, i))
        .collect();
    for t in &mut tasks[..2] {
        t.group_id = Some("g1".into());
    }
    s.insert_tasks(tasks, None, now()).await.unwrap();
    assert_eq!(ids(&s.group_rows("g1".into()).await.unwrap()), ["a", "b"]);
    let sel = |ids: &[&str]| Selection {
        ids: ids.iter().map(|i| i.to_string()).collect(),
        ..Default::default()
    };
    let done = s
        .bulk(BulkAction::MoveTop, sel(&["c", "d"]), POLICY, now())
        .await
        .unwrap();
    assert_eq!(done.ids, ["c", "d"]);
    assert_eq!(order(&s).await, ["c", "d", "a", "b"]);
    s.bulk(BulkAction::MoveBottom, sel(&["c"]), POLICY, now())
        .await
        .unwrap();
    assert_eq!(order(&s).await, ["d", "a", "b", "c"]);
    let done = s
        .bulk(BulkAction::Bookmark, sel(&["a", "c"]), POLICY, now())
        .await
        .unwrap();
    assert_eq!(
        done.statuses,
        vec![
            ("a".to_string(), TaskStatus::Pending),
            ("c".to_string(), TaskStatus::Pending)
        ]
    );
    assert!(task(&s, "a").await.bookmarked && task(&s, "c").await.bookmarked);
    // Requeue copies: a group's copies form a new group together.
    let done = s
        .bulk(BulkAction::Requeue, sel(&["a", "b", "d"]), POLICY, now())
        .await
        .unwrap();
    assert_eq!(done.created.len(), 3);
    let copies: Vec<TaskRow> = {
        let mut v = Vec::new();
        for id in &done.created {
            v.push(task(&s, id).await);
        }
        v
    };
    let g = copies[0].group_id.clone().expect("a new group");
    assert_ne!(g, "g1");
    assert_eq!(copies[1].group_id.as_deref(), Some(g.as_str()));
    assert_eq!(copies[2].group_id, None);
    assert_eq!(copies[0].name.as_deref(), None);
    assert!(!copies[0].bookmarked);
    assert_eq!(order(&s).await.len(), 7);
    // A running task refuses a move: the whole request changes nothing.
    let running = claim(&s).await.unwrap().task.id;
    assert_eq!(running, "d");
    let before = order(&s).await;
    assert!(
        s.bulk(BulkAction::MoveTop, sel(&["c", "d"]), POLICY, now())
            .await
            .is_err()
    );
    assert_eq!(order(&s).await, before);
    // Delete: pending tasks go, the running one is interrupted.
    let done = s
        .bulk(BulkAction::Delete, sel(&["a", "d"]), POLICY, now())
        .await
        .unwrap();
    assert_eq!(done.deleted.len(), 2);
    assert_eq!(done.deleted[0].1, TaskStatus::Pending);
    assert_eq!(
        done.deleted[0].2.transition,
        Transition::Remove { files: false }
    );
    assert!(
        matches!(
            &done.deleted[1].2.transition,
            Transition::Interrupt { fence: Some(_), change } if change.next.stop_requested
        ),
        "{:?}",
        done.deleted[1].2.transition
    );
    assert!(task(&s, "d").await.life.stop_requested);
    assert_eq!(s.get_task("a".into(), false).await.unwrap(), None);
    let c = s.counts().await.unwrap();
    assert_eq!((c.pending, c.running), (5, 1));
}

async fn exports_page_within_a_budget(s: S) {
    let big = "x".repeat(40_000);
    let mut tasks: Vec<NewTask> = (0..6).map(|i| new_task(&format!("t{i}"), "p")).collect();
    for t in &mut tasks {
        t.request.insert("init_images".into(), json!([big]));
        t.page_snapshot = Some(json!({"txt2img_prompt": "p"}));
    }
    s.insert_tasks(tasks, None, now()).await.unwrap();
    // About 100 kB a page: three rows of 40 kB each cross it.
    let page = s
        .pending_page(PendingFrom::Offset(0), 100, 100_000)
        .await
        .unwrap();
    assert_eq!(ids(&page), ["t0", "t1", "t2"]);
    assert_eq!(
        page[0].request["init_images"][0].as_str(),
        Some(big.as_str())
    );
    assert_eq!(page[0].page_snapshot, Some(json!({"txt2img_prompt": "p"})));
    let last = page.last().unwrap();
    let next = s
        .pending_page(PendingFrom::After(last.rank, last.seq), 2, usize::MAX)
        .await
        .unwrap();
    assert_eq!(ids(&next), ["t3", "t4"]);
    // At least one row, whatever the budget.
    assert_eq!(
        s.pending_page(PendingFrom::Offset(5), 100, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    let wanted: Vec<String> = ["t5", "gone", "t1", "t2"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (rows, consumed) = s.full_rows_page(wanted.clone(), 50_000).await.unwrap();
    assert_eq!((ids(&rows), consumed), (vec!["t5", "t1"], 3));
    // Result files: a finished task's images, a missing task left out.
    let c = claim(&s).await.unwrap();
    end_run(
        &s,
        &c,
        RunEnd::Done,
        POLICY,
        vec![img(0, "0.png"), img(1, "1.jpg")],
    )
    .await;
    let files = s
        .result_files(vec!["t0".into(), "gone".into(), "t1".into()])
        .await
        .unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(
        (files[0].0.as_str(), files[0].1, files[0].2.len()),
        ("t0", TaskStatus::Done, 2)
    );
    assert_eq!((files[1].1, files[1].2.len()), (TaskStatus::Pending, 0));
    let names = s
        .image_files_of(vec!["t0".into(), "gone".into(), "t1".into()])
        .await
        .unwrap();
    assert_eq!(
        names,
        vec![
            Some(HashSet::from(["0.png".to_string(), "1.jpg".to_string()])),
            None,
            Some(HashSet::new())
        ]
    );
}

async fn events_settings_backends_and_speeds_persist(s: S) {
    let ids = s
        .insert_events(
            vec![
                ("task".into(), "{}".into()),
                ("queue".into(), "{\"n\":1}".into()),
            ],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids[1] > ids[0]);
    let r = s.replay(ids[0]).await.unwrap();
    assert_eq!(
        r.rows,
        vec![(ids[1], "queue".to_string(), "{\"n\":1}".to_string())]
    );
    assert_eq!((r.oldest, r.newest), (Some(ids[0]), ids[1]));
    // The same rows without the bounds (what a host following the log reads).
    assert_eq!(s.events_after(ids[0]).await.unwrap(), r.rows);
    assert_eq!(s.events_after(ids[1]).await.unwrap(), vec![]);
    let more = s
        .insert_events(vec![("task".into(), "{}".into())], now())
        .await
        .unwrap();
    assert!(more[0] > ids[1]);
    // Settings and the pause flag.
    assert!(!s.is_paused().await.unwrap());
    s.set_paused(true).await.unwrap();
    assert!(s.is_paused().await.unwrap());
    let mut st = s.load_settings().await.unwrap();
    assert_eq!(st.max_attempts, 3);
    st.max_attempts = 7;
    st.history_retention_days = None;
    s.save_settings(st).await.unwrap();
    let st = s.load_settings().await.unwrap();
    assert_eq!((st.max_attempts, st.history_retention_days), (7, None));
    s.probe_write().await.unwrap();
    // Backends.
    let one = s
        .add_backend("http://u:p@127.0.0.1:7860".into(), now())
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(
        s.add_backend("http://u:p@127.0.0.1:7860".into(), now())
            .await
            .unwrap(),
        None
    );
    let two = s
        .add_backend("http://127.0.0.1:7870".into(), now())
        .await
        .unwrap()
        .unwrap();
    assert!(two > one);
    s.set_backend_admin(one, false, true).await.unwrap();
    let all = s.added_backends().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        (
            all[0].id,
            all[0].url.as_str(),
            all[0].enabled,
            all[0].draining
        ),
        (one, "http://u:p@127.0.0.1:7860", false, true)
    );
    s.remove_backend(one).await.unwrap();
    assert_eq!(s.added_backends().await.unwrap()[0].id, two);
    // Speeds: updated from the stored one in one step.
    let s1 = s
        .record_speed(
            "http://b".into(),
            Box::new(|old: Speed| {
                assert_eq!(old, Speed::default());
                Speed {
                    ms_per_mpx_step: Some(12.5),
                    samples: 1,
                    load_ms: None,
                    loads: 0,
                }
            }),
            now(),
        )
        .await
        .unwrap();
    let s2 = s
        .record_speed(
            "http://b".into(),
            Box::new(move |old: Speed| {
                assert_eq!(old, s1);
                Speed {
                    load_ms: Some(900.0),
                    loads: 1,
                    ..old
                }
            }),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        s.speeds().await.unwrap(),
        vec![("http://b".to_string(), s2)]
    );
    // The ETA's lean scan reads the numbers a task's work depends on.
    let mut t = new_task("w1", "x");
    t.request.insert("steps".into(), json!(20));
    t.request.insert("width".into(), json!("wide"));
    t.request.insert("enable_hr".into(), json!(true));
    t.checkpoint = Some("m".into());
    s.insert_tasks(vec![new_task("w0", "x"), t], None, now())
        .await
        .unwrap();
    let w0 = task(&s, "w0").await;
    let work = s.pending_work_after((w0.rank, w0.seq)).await.unwrap();
    assert_eq!(work.len(), 1);
    assert_eq!(work[0].0, TaskType::Txt2img);
    assert_eq!(work[0].1.get("steps"), Some(&json!(20.0)));
    assert_eq!(work[0].1.get("width"), None);
    assert_eq!(work[0].1.get("enable_hr"), Some(&json!(true)));
    assert_eq!(work[0].2.as_deref(), Some("m"));
}

async fn callbacks_outbox_retries_and_completes(s: S) {
    let mut t = new_task("a", "x");
    t.callback_url = Some("http://x/cb".into());
    s.insert_tasks(vec![t], None, now()).await.unwrap();
    assert_eq!(s.next_delivery_at().await.unwrap(), None);
    let c = claim(&s).await.unwrap();
    end_run(&s, &c, RunEnd::Failed("x".into()), POLICY, vec![]).await;
    let due = s.all_deliveries(10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].status.as_str(), due[0].files.len()), ("failed", 0));
    let later = now() + 10_000;
    s.delivery_retry(due[0].id, later, "boom".into())
        .await
        .unwrap();
    let after = s.all_deliveries(10).await.unwrap();
    assert_eq!((after[0].attempts, after[0].next_attempt_at), (1, later));
    assert_eq!(s.next_delivery_at().await.unwrap(), Some(later));
    s.delivery_done(due[0].id).await.unwrap();
    assert!(s.all_deliveries(10).await.unwrap().is_empty());
}

async fn listing_rows_leave_images_out(s: S) {
    let mut t = new_task("a", "x");
    t.task_type = TaskType::Control;
    let req = json!({
        "prompt": "x",
        "init_images": ["AAAA"],
        "mask": "BBBB",
        "control": [{"image": "CCCC", "model": "m", "strength": 0.5}, "not an object"],
        "ip_adapter": [{"adapter": "a", "images": ["DDDD"], "masks": ["EEEE"]}],
        "face": {"source_images": ["FFFF"], "mode": "x"},
        "steps": 20
    });
    t.request = req.as_object().cloned().unwrap();
    s.insert_tasks(vec![t], None, now()).await.unwrap();
    let (rows, _) = s.list_queue(None, 10, 0).await.unwrap();
    let listed = serde_json::Value::Object(rows[0].request.clone());
    assert_eq!(
        listed,
        json!({
            "prompt": "x",
            "control": [{"model": "m", "strength": 0.5}, "not an object"],
            "ip_adapter": [{"adapter": "a"}],
            "face": {"mode": "x"},
            "steps": 20
        })
    );
    assert_eq!(task(&s, "a").await.request, *req.as_object().unwrap());
}

async fn offset_pages_put_running_tasks_first(s: S) {
    add(&s, &["a", "b", "c", "d", "e"]).await;
    claim(&s).await.unwrap();
    claim(&s).await.unwrap();
    let page = |limit: i64, offset: i64| {
        let s = s.clone();
        async move {
            let (rows, total) = s.list_queue(None, limit, offset).await.unwrap();
            assert_eq!(total, 5);
            rows.into_iter().map(|t| t.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(page(3, 0).await, ["a", "b", "c"]);
    assert_eq!(page(2, 1).await, ["b", "c"]);
    assert_eq!(page(10, 3).await, ["d", "e"]);
    assert!(page(10, 5).await.is_empty());
    let head = s.queue_head(LOOKAHEAD_SMALL).await.unwrap();
    assert_eq!(
        (ids(&head.running), ids(&head.window)),
        (vec!["a", "b"], vec!["c", "d"])
    );
    assert_eq!((head.counts.running, head.counts.pending), (2, 3));
    // Listing rows carry no snapshot and no `info`; full rows do.
    let c = claim(&s).await.unwrap();
    end_run(&s, &c, RunEnd::Done, POLICY, vec![]).await;
    let listed = s.get_task("c".into(), false).await.unwrap().unwrap();
    assert_eq!((listed.info, listed.page_snapshot), (None, None));
    assert_eq!(task(&s, "c").await.info, Some(json!({"seed": 1})));
}

const LOOKAHEAD_SMALL: i64 = 2;

async fn counts_match_the_rows_after_many_changes(s: S) {
    let names: Vec<String> = (0..120).map(|i| format!("t{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    add(&s, &refs).await;
    for i in 0..50 {
        let c = claim(&s).await.unwrap();
        match i % 5 {
            0 => {}
            1 => {
                end_run(&s, &c, RunEnd::Failed("x".into()), POLICY, vec![]).await;
            }
            2 => {
                end_run(&s, &c, RunEnd::Interrupted, POLICY, vec![]).await;
            }
            _ => {
                end_run(&s, &c, RunEnd::Done, POLICY, vec![]).await;
            }
        }
    }
    for id in ["t001", "t003", "t060", "t061", "t100"] {
        s.set_bookmark(id.into(), true, now()).await.unwrap();
    }
    for id in ["t002", "t070", "t071"] {
        s.delete(id.into(), POLICY, now()).await.unwrap();
    }
    s.requeue_failed(now()).await.unwrap();
    let c = s.counts().await.unwrap();
    let queue = s.list_queue(None, 1000, 0).await.unwrap().0;
    let running = queue
        .iter()
        .filter(|t| t.status() == TaskStatus::Running)
        .count() as i64;
    assert_eq!(
        (c.running, c.pending),
        (running, queue.len() as i64 - running)
    );
    for (filter, n) in [
        (HistoryFilter::Status(TaskStatus::Done), c.done),
        (HistoryFilter::Status(TaskStatus::Failed), c.failed),
        (
            HistoryFilter::Status(TaskStatus::Interrupted),
            c.interrupted,
        ),
        (HistoryFilter::Bookmarked, c.bookmarked),
        (HistoryFilter::All, c.done + c.failed + c.interrupted),
    ] {
        let (rows, total) = s.history_page(filter, None, None, 1000, 0).await.unwrap();
        assert_eq!((rows.len() as i64, total), (n, n), "{filter:?}");
    }
    assert_eq!(
        (c.running, c.done, c.failed, c.interrupted, c.bookmarked),
        (10, 20, 0, 9, 1)
    );
    assert_eq!(c.pending, 120 - 50 - 2 + 10);
}

async fn batches_apply_in_order_and_roll_back_whole(s: S) {
    add(&s, &["a", "b"]).await;
    let claim_a = Event::Claim {
        backend: "b1".into(),
        fence: 1,
    };
    let done = Event::Finished {
        end: RunEnd::Done,
        at: now(),
    };
    assert_eq!(
        s.apply_batch(
            vec![("a".into(), claim_a.clone()), ("a".into(), done.clone())],
            POLICY,
            now()
        )
        .await
        .unwrap(),
        2
    );
    assert_eq!(task(&s, "a").await.status(), TaskStatus::Done);
    // The second event is refused (a pending task cannot finish): the claim of b is undone.
    let refused = s
        .apply_batch(
            vec![("b".into(), claim_a.clone()), ("a".into(), claim_a)],
            POLICY,
            now(),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Refused(_))),
        "{refused:?}"
    );
    assert_eq!(task(&s, "b").await.status(), TaskStatus::Pending);
    assert_eq!(s.counts().await.unwrap().running, 0);
}

async fn one_hosts_leases_renew_and_nothing_is_reclaimed(s: S) {
    add(&s, &["a", "b"]).await;
    assert_eq!(s.renew_leases(vec![]).await.unwrap(), 0);
    let c = claim(&s).await.unwrap();
    assert_eq!(s.renew_leases(vec![c.fence]).await.unwrap(), 1);
    assert!(s.reclaim_expired(POLICY, now()).await.unwrap().is_empty());
    assert_eq!(s.counts().await.unwrap().running, 1);
}

async fn flag_backends_join_one_pool_that_this_host_drives(s: S) {
    let added = s
        .add_backend("http://127.0.0.1:7860".into(), now())
        .await
        .unwrap()
        .unwrap();
    // A flag's URL already stored is that backend; a new one is stored.
    assert_eq!(
        s.ensure_backend("http://127.0.0.1:7860".into(), now())
            .await
            .unwrap(),
        added
    );
    let flag = s
        .ensure_backend("http://u:p@127.0.0.1:7870".into(), now())
        .await
        .unwrap();
    assert!(flag > added);
    assert_eq!(
        s.ensure_backend("http://u:p@127.0.0.1:7870".into(), now())
            .await
            .unwrap(),
        flag
    );
    assert_eq!(
        s.add_backend("http://u:p@127.0.0.1:7870".into(), now())
            .await
            .unwrap(),
        None,
        "an ensured backend is stored"
    );
    let urls: Vec<String> = s
        .added_backends()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.url)
        .collect();
    assert_eq!(urls, ["http://127.0.0.1:7860", "http://u:p@127.0.0.1:7870"]);
    // One host drives every backend it asks for, and keeps them while it renews.
    assert_eq!(
        s.drive_backends(vec![flag, added]).await.unwrap(),
        [added, flag]
    );
    assert_eq!(
        s.drive_backends(vec![added, flag]).await.unwrap(),
        [added, flag]
    );
    let drivers = s.backend_drivers().await.unwrap();
    assert_eq!(drivers.len(), 2);
    for (i, (id, driver, left)) in drivers.into_iter().enumerate() {
        assert_eq!(id, [added, flag][i]);
        match s.kind() {
            // One host per file: no lease, it drives them all.
            StoreKind::Sqlite => assert_eq!((driver, left), (None, None)),
            StoreKind::Postgres => {
                assert_eq!(driver.as_deref(), Some("host-a"));
                let left = left.expect("a lease");
                let lease = pg::DEFAULT_LEASE.as_millis() as i64;
                assert!(left > 0 && left <= lease, "{left} ms left of {lease}");
            }
        }
    }
    s.release_backends(vec![added, flag]).await.unwrap();
    assert_eq!(
        s.backend_drivers().await.unwrap(),
        [(added, None, None), (flag, None, None)]
    );
    // Publishing a live event never fails; only a shared store has others to tell.
    s.publish_live("progress".into(), "{}".into())
        .await
        .unwrap();
    assert_eq!(
        s.subscribe().await.unwrap().is_some(),
        s.kind() == StoreKind::Postgres
    );
}

/// The stored figures `(id, JSON)`, as JSON values.
async fn figures(s: &S) -> Vec<(i64, serde_json::Value)> {
    s.backend_figures()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, j)| {
            (
                id,
                serde_json::from_str(&j).expect("stored figures are JSON"),
            )
        })
        .collect()
}

async fn a_backends_driver_stores_its_figures(s: S) {
    let x = s.ensure_backend("http://x".into(), now()).await.unwrap();
    let y = s.ensure_backend("http://y".into(), now()).await.unwrap();
    // Not driven by this host: nothing is stored.
    s.store_backend_figures(vec![(x, r#"{"done":1}"#.into())])
        .await
        .unwrap();
    assert_eq!(figures(&s).await, []);
    // Driven: stored (only the driven one's), and the next write replaces them.
    assert_eq!(s.drive_backends(vec![x]).await.unwrap(), [x]);
    for done in [2, 3] {
        s.store_backend_figures(vec![
            (x, format!(r#"{{"done":{done}}}"#)),
            (y, r#"{"done":9}"#.into()),
        ])
        .await
        .unwrap();
    }
    let want = match s.kind() {
        // One host per file: it shows its own figures, none are stored.
        StoreKind::Sqlite => vec![],
        StoreKind::Postgres => vec![(x, json!({"done": 3}))],
    };
    assert_eq!(figures(&s).await, want);
}

// ---------------------------------------------------------------------------------------
// What only a shared database has (PostgreSQL)

#[tokio::test]
async fn postgres_only_the_driver_of_a_backend_stores_its_figures() {
    let Some((_db, a, b)) = two_hosts().await else {
        return;
    };
    let sa: S = Arc::new(a);
    let sb: S = Arc::new(b);
    let x = sa.ensure_backend("http://x".into(), now()).await.unwrap();
    assert_eq!(sa.drive_backends(vec![x]).await.unwrap(), [x]);
    sa.store_backend_figures(vec![(x, r#"{"by":"a"}"#.into())])
        .await
        .unwrap();
    // Host b does not drive it: its write changes nothing, and it reads host a's.
    sb.store_backend_figures(vec![(x, r#"{"by":"b"}"#.into())])
        .await
        .unwrap();
    assert_eq!(figures(&sb).await, [(x, json!({"by": "a"}))]);
    // Host a gives it up: host b drives it and stores its own.
    sa.release_backends(vec![x]).await.unwrap();
    assert_eq!(sb.drive_backends(vec![x]).await.unwrap(), [x]);
    sb.store_backend_figures(vec![(x, r#"{"by":"b"}"#.into())])
        .await
        .unwrap();
    sa.store_backend_figures(vec![(x, r#"{"by":"a"}"#.into())])
        .await
        .unwrap();
    assert_eq!(figures(&sa).await, [(x, json!({"by": "b"}))]);
}

async fn two_hosts() -> Option<(TestDb, PgStore, PgStore)> {
    let db = TestDb::create().await?;
    let a = PgStore::open(&db.url, "host-a", pg::DEFAULT_LEASE)
        .await
        .unwrap();
    let b = a.as_owner("host-b");
    Some((db, a, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_hosts_claiming_at_once_never_get_the_same_task() {
    let Some((_db, a, b)) = two_hosts().await else {
        return;
    };
    let n = 40;
    let tasks: Vec<NewTask> = (0..n).map(|i| new_task(&format!("t{i:02}"), "x")).collect();
    a.insert_tasks(tasks, None, now()).await.unwrap();
    let mut claimers = Vec::new();
    for (k, store) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        claimers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(c) = store
                .claim_next(format!("backend-{k}"), now(), first())
                .await
                .unwrap()
            {
                got.push((c.task.id, c.fence, store.owner().to_owned()));
            }
            got
        }));
    }
    let mut all = Vec::new();
    for c in claimers {
        all.extend(c.await.unwrap());
    }
    let ids: HashSet<&str> = all.iter().map(|(id, _, _)| id.as_str()).collect();
    let fences: HashSet<i64> = all.iter().map(|(_, f, _)| *f).collect();
    assert_eq!((all.len(), ids.len(), fences.len()), (n, n, n));
    let c = a.counts().await.unwrap();
    assert_eq!((c.pending, c.running), (0, n as i64));
}

/// A claim's choice that waits (up to 10 s) until `n` claims are inside their transactions,
/// their windows locked, then takes the window's first task.
fn meet(n: usize, at: Arc<(std::sync::Mutex<usize>, std::sync::Condvar)>) -> ChooseFn {
    Box::new(move |w: &[Candidate], _| {
        // The runtime hands this worker's other tasks (a connection's among them) elsewhere
        // while it waits.
        tokio::task::block_in_place(|| {
            let (count, cv) = &*at;
            let mut c = count.lock().unwrap();
            *c += 1;
            cv.notify_all();
            let (c, timeout) = cv
                .wait_timeout_while(c, Duration::from_secs(10), |c| *c < n)
                .unwrap();
            assert!(!timeout.timed_out(), "only {} of {n} claims met", *c);
        });
        (!w.is_empty()).then(|| Choice {
            index: 0,
            overtaken: Vec::new(),
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_claims_inside_their_transactions_at_once_take_different_tasks() {
    let Some((_db, a, b)) = two_hosts().await else {
        return;
    };
    add(&(Arc::new(a.clone()) as S), &["t1", "t2", "t3"]).await;
    let at = Arc::new((std::sync::Mutex::new(0usize), std::sync::Condvar::new()));
    // Each on its own task (a choice blocks its thread while it waits for the other).
    let (sa, sb) = (a.clone(), b.clone());
    let (ma, mb) = (meet(2, at.clone()), meet(2, at.clone()));
    let ja = tokio::spawn(async move { sa.claim_next("ba".into(), now(), ma).await });
    let jb = tokio::spawn(async move { sb.claim_next("bb".into(), now(), mb).await });
    let (ca, cb) = (ja.await.unwrap(), jb.await.unwrap());
    let (ca, cb) = (ca.unwrap().unwrap(), cb.unwrap().unwrap());
    // Both chose while the other's claim was open: the one that lost the first task to the
    // other's lock chose again and took the next.
    let mut got = vec![ca.task.id.clone(), cb.task.id.clone()];
    got.sort();
    assert_eq!(got, ["t1", "t2"]);
    assert_ne!(ca.fence, cb.fence);
    let s: S = Arc::new(a.clone());
    assert_eq!(
        s.running().await.unwrap().len(),
        2,
        "both claims are running"
    );
    assert_eq!(order(&s).await.len(), 3);
}

#[tokio::test]
async fn postgres_an_expired_lease_is_reclaimed_and_the_stale_host_is_fenced_out() {
    let Some((_db, a, b)) = two_hosts().await else {
        return;
    };
    let a = a.with_lease(Duration::from_millis(1500));
    a.insert_tasks(vec![new_task("t", "x"), new_task("u", "y")], None, now())
        .await
        .unwrap();
    let sa: S = Arc::new(a.clone());
    let sb: S = Arc::new(b.clone());
    let old = claim(&sa).await.unwrap();
    // Renewed, the lease holds: nothing to reclaim.
    assert_eq!(sa.renew_leases(vec![old.fence]).await.unwrap(), 1);
    // Only the claims a worker holds are renewed: an orphan (its answer lost) runs out.
    assert_eq!(sa.renew_leases(vec![old.fence + 1]).await.unwrap(), 0);
    assert!(sb.reclaim_expired(POLICY, now()).await.unwrap().is_empty());
    // Host a stops renewing; once its lease is over, host b takes the task back.
    let reclaimed = wait_until("the lease to expire", Duration::from_secs(10), || {
        let sb = sb.clone();
        async move {
            let r = sb.reclaim_expired(POLICY, now()).await.unwrap();
            (!r.is_empty()).then_some(r)
        }
    })
    .await;
    assert_eq!(
        statuses(&reclaimed),
        vec![("t".to_string(), Some(TaskStatus::Pending))]
    );
    let t = task(&sb, "t").await;
    assert_eq!((t.life.attempts, t.pinned), (1, true));
    assert_eq!(order(&sb).await, ["t", "u"]);
    // Stale host a can neither finish nor give back the run it lost, before or after b
    // claims the task again.
    let stale_release = sa
        .apply_claimed("t".into(), old.fence, Event::Released, POLICY, now())
        .await;
    assert!(
        matches!(stale_release, Err(StoreError::Stale(_))),
        "{stale_release:?}"
    );
    let new = claim(&sb).await.unwrap();
    assert_eq!(new.task.id, "t");
    assert_ne!(new.fence, old.fence);
    let stale = sa
        .finish(
            "t".into(),
            old.fence,
            Event::Finished {
                end: RunEnd::Done,
                at: now(),
            },
            POLICY,
            RunOutputs {
                images: vec![img(0, "0.png")],
                info: None,
            },
            now(),
        )
        .await;
    assert!(matches!(stale, Err(StoreError::Stale(_))), "{stale:?}");
    let errored = sa
        .apply_claimed(
            "t".into(),
            old.fence,
            Event::Errored { reason: "x".into() },
            POLICY,
            now(),
        )
        .await;
    assert!(matches!(errored, Err(StoreError::Stale(_))), "{errored:?}");
    let t = task(&sb, "t").await;
    assert_eq!((t.status(), t.images.len()), (TaskStatus::Running, 0));
    assert_eq!(t.life.backend.as_deref(), Some("b1"));
    // The live claim finishes.
    end_run(&sb, &new, RunEnd::Done, POLICY, vec![img(0, "0.png")]).await;
    assert_eq!(task(&sb, "t").await.status(), TaskStatus::Done);
    // A host starting again recovers only its own runs and expired ones, never a live
    // claim of another host.
    let live = claim(&sb).await.unwrap();
    assert_eq!(live.task.id, "u");
    assert!(sa.recover_running(POLICY, now()).await.unwrap().is_empty());
    assert!(sa.release_running(now()).await.unwrap().is_empty());
    assert_eq!(sb.release_running(now()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn postgres_hosts_starting_together_migrate_once() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (a, b) = tokio::join!(
        PgStore::open(&db.url, "a", pg::DEFAULT_LEASE),
        PgStore::open(&db.url, "b", pg::DEFAULT_LEASE)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.version().await.unwrap(), pg::MIGRATIONS.len() as i64);
    a.migrate().await.unwrap();
    assert_eq!(b.version().await.unwrap(), pg::MIGRATIONS.len() as i64);
}

#[tokio::test]
async fn postgres_result_bytes_are_streamed_in_chunks_and_go_with_their_task() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let s = PgStore::open(&db.url, "a", pg::DEFAULT_LEASE)
        .await
        .unwrap();
    s.insert_tasks(vec![new_task("t", "x")], None, now())
        .await
        .unwrap();
    let size = 3 * pg::blobs::CHUNK + 1234;
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    // Pieces of an awkward size, as a request body arrives.
    let pieces: Vec<std::io::Result<bytes::Bytes>> = data
        .chunks(100_003)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let n = s
        .put_blob("t", "0.png", futures::stream::iter(pieces))
        .await
        .unwrap();
    assert_eq!(n, size as u64);
    assert_eq!(s.blob_len("t", "0.png").await.unwrap(), Some(size as u64));
    use futures::StreamExt;
    // Read to the end, or to the length known (the same chunks, no query past the last).
    for len in [None, Some(size as u64)] {
        let chunks: Vec<bytes::Bytes> = s
            .blob_chunks("t", "0.png", len)
            .map(|c| c.unwrap())
            .collect()
            .await;
        assert_eq!(chunks.len(), 4);
        assert!(chunks.iter().all(|c| c.len() <= pg::blobs::CHUNK));
        assert_eq!(chunks.concat(), data);
    }
    // Or whole, in one query.
    assert_eq!(
        s.blob_whole("t", "0.png").await.unwrap(),
        Some(data.clone())
    );
    assert_eq!(s.blob_whole("t", "9.png").await.unwrap(), None);
    // Replaced whole by a file of one chunk (its one statement drops the longer file's other
    // chunks); an empty file is a file.
    assert_eq!(
        s.put_whole_blob("t", "0.png", bytes::Bytes::from_static(b"x"))
            .await
            .unwrap(),
        1
    );
    let chunks: Vec<bytes::Bytes> = s
        .blob_chunks("t", "0.png", None)
        .map(|c| c.unwrap())
        .collect()
        .await;
    assert_eq!(chunks, [bytes::Bytes::from_static(b"x")]);
    s.put_blob("t", "0.thumb.jpg", futures::stream::empty())
        .await
        .unwrap();
    assert_eq!(s.blob_len("t", "0.png").await.unwrap(), Some(1));
    assert_eq!(s.blob_len("t", "0.thumb.jpg").await.unwrap(), Some(0));
    assert_eq!(s.blob_names("t").await.unwrap(), ["0.png", "0.thumb.jpg"]);
    assert_eq!(s.blob_len("t", "9.png").await.unwrap(), None);
    // A file for no task is refused; the task's files go with it.
    assert!(
        s.put_blob("nope", "0.png", futures::stream::empty())
            .await
            .is_err()
    );
    assert!(
        s.put_whole_blob("nope", "0.png", bytes::Bytes::from_static(b"x"))
            .await
            .is_err()
    );
    s.delete("t".into(), POLICY, now()).await.unwrap();
    assert_eq!(s.blob_len("t", "0.png").await.unwrap(), None);
}

#[tokio::test]
async fn postgres_events_wake_other_hosts_with_notify() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let s = PgStore::open(&db.url, "a", pg::DEFAULT_LEASE)
        .await
        .unwrap();
    let config: tokio_postgres::Config = db.url.parse().unwrap();
    let (client, mut conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        use futures::StreamExt;
        while let Some(Ok(m)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = tx.send((n.channel().to_owned(), n.payload().to_owned()));
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {}", pg::EVENTS_CHANNEL))
        .await
        .unwrap();
    let ids = s
        .insert_events(
            vec![("task".into(), "{}".into()), ("queue".into(), "{}".into())],
            now(),
        )
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a notification")
        .unwrap();
    assert_eq!(got, (pg::EVENTS_CHANNEL.to_string(), ids[1].to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_each_backend_is_driven_by_one_host_and_taken_over_after_its_lease() {
    let Some((_db, a, b)) = two_hosts().await else {
        return;
    };
    let a = a.with_lease(Duration::from_millis(1500));
    let sa: S = Arc::new(a.clone());
    let sb: S = Arc::new(b.clone());
    // Each host's flags join one pool.
    let x = sa.ensure_backend("http://x".into(), now()).await.unwrap();
    let y = sa.ensure_backend("http://y".into(), now()).await.unwrap();
    assert_eq!(
        sb.ensure_backend("http://y".into(), now()).await.unwrap(),
        y
    );
    let z = sb.ensure_backend("http://z".into(), now()).await.unwrap();
    assert_eq!(sa.added_backends().await.unwrap().len(), 3);
    // The first to ask drives a backend; the other gets the rest; an unknown id is nobody's.
    assert_eq!(sa.drive_backends(vec![x, y]).await.unwrap(), [x, y]);
    assert_eq!(sb.drive_backends(vec![x, y, z, 999]).await.unwrap(), [z]);
    assert_eq!(sa.drive_backends(vec![x, y, z]).await.unwrap(), [x, y]);
    let drivers: Vec<(i64, Option<String>)> = sb
        .backend_drivers()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, d, _)| (id, d))
        .collect();
    assert_eq!(
        drivers,
        [
            (x, Some("host-a".to_string())),
            (y, Some("host-a".to_string())),
            (z, Some("host-b".to_string()))
        ]
    );
    // Hosts asking at once for free backends never drive the same one.
    let free: Vec<i64> = futures::future::try_join_all(
        (0..8).map(|i| sa.ensure_backend(format!("http://free-{i}"), now())),
    )
    .await
    .unwrap();
    let askers = (0..6).map(|k| {
        let s = if k % 2 == 0 { sa.clone() } else { sb.clone() };
        let ids = free.clone();
        tokio::spawn(async move { (k % 2, s.drive_backends(ids).await.unwrap()) })
    });
    let mut by_host: [HashSet<i64>; 2] = Default::default();
    for r in futures::future::join_all(askers).await {
        let (host, ids) = r.unwrap();
        by_host[host].extend(ids);
    }
    assert!(
        by_host[0].is_disjoint(&by_host[1]),
        "one driver per backend: {by_host:?}"
    );
    assert_eq!(
        by_host[0].len() + by_host[1].len(),
        free.len(),
        "every free backend is driven"
    );
    // Host a stops renewing: once its lease is over, host b takes its backends over, and a
    // learns at its next renewal that it drives them no more.
    let took = wait_until(
        "host a's backend leases to expire",
        Duration::from_secs(10),
        || {
            let sb = sb.clone();
            async move {
                let got = sb.drive_backends(vec![x, y, z]).await.unwrap();
                (got.len() == 3).then_some(got)
            }
        },
    )
    .await;
    assert_eq!(took, [x, y, z]);
    assert!(sa.drive_backends(vec![x, y]).await.unwrap().is_empty());
    // A released backend is free at once; releasing another host's changes nothing.
    sa.release_backends(vec![y]).await.unwrap();
    assert!(sa.drive_backends(vec![y]).await.unwrap().is_empty());
    sb.release_backends(vec![y]).await.unwrap();
    assert_eq!(sa.drive_backends(vec![y]).await.unwrap(), [y]);
    // A removed backend is driven by nobody.
    sb.remove_backend(z).await.unwrap();
    assert!(sb.drive_backends(vec![z]).await.unwrap().is_empty());
}

/// The next notice of a subscription (within 10 s).
async fn next_notice(rx: &mut tokio::sync::mpsc::Receiver<Notice>) -> Notice {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a notice within 10 s")
        .expect("the subscription is open")
}

/// Stores an event as a marker: the next notice must be its `Events` (nothing told before).
async fn marker(s: &S) -> Notice {
    let ids = s
        .insert_events(vec![("queue".into(), "{}".into())], now())
        .await
        .unwrap();
    Notice::Events(ids[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_other_hosts_hear_wakes_events_and_live_events() {
    let Some((_db, a, b)) = two_hosts().await else {
        return;
    };
    let sa: S = Arc::new(a.clone());
    let sb: S = Arc::new(b.clone());
    let mut hears_b = sb
        .subscribe()
        .await
        .unwrap()
        .expect("a shared store listens");
    let mut hears_a = sa
        .subscribe()
        .await
        .unwrap()
        .expect("a shared store listens");
    // An enqueue on host a wakes host b; its events name the newest id.
    add(&sa, &["t1", "t2"]).await;
    assert_eq!(next_notice(&mut hears_b).await, Notice::Wake);
    let m = marker(&sa).await;
    assert_eq!(next_notice(&mut hears_b).await, m);
    // A claim, a pause and a move make nothing claimable: no wake before the marker.
    let c = claim(&sa).await.unwrap();
    sa.set_paused(true).await.unwrap();
    sa.move_task("t2".into(), MoveTarget::Top, now())
        .await
        .unwrap();
    let m = marker(&sa).await;
    assert_eq!(next_notice(&mut hears_b).await, m);
    // Every change that may make a task claimable wakes: "run now" while paused, resuming,
    // a released run, a requeue.
    sa.run_now("t2".into(), now()).await.unwrap();
    assert_eq!(next_notice(&mut hears_b).await, Notice::Wake);
    sa.set_paused(false).await.unwrap();
    assert_eq!(next_notice(&mut hears_b).await, Notice::Wake);
    sa.apply_claimed(c.task.id.clone(), c.fence, Event::Released, POLICY, now())
        .await
        .unwrap();
    assert_eq!(next_notice(&mut hears_b).await, Notice::Wake);
    let c = claim(&sa).await.unwrap();
    end_run(&sa, &c, RunEnd::Failed("x".into()), POLICY, Vec::new()).await;
    let m = marker(&sa).await;
    assert_eq!(next_notice(&mut hears_b).await, m, "a failure wakes nobody");
    sa.requeue_failed(now()).await.unwrap();
    assert_eq!(next_notice(&mut hears_b).await, Notice::Wake);
    // Live events: small ones ride in the notification, a 100 KB preview comes whole; the
    // publisher is not told its own.
    let preview = format!("{{\"image\":\"{}\"}}", "A".repeat(100 * 1024));
    sa.publish_live("progress".into(), "{\"p\":0.5}".into())
        .await
        .unwrap();
    sa.publish_live("preview".into(), preview.clone())
        .await
        .unwrap();
    assert_eq!(
        next_notice(&mut hears_b).await,
        Notice::Live {
            name: "progress".into(),
            data: "{\"p\":0.5}".into(),
            origin: "host-a".into()
        }
    );
    assert_eq!(
        next_notice(&mut hears_b).await,
        Notice::Live {
            name: "preview".into(),
            data: preview,
            origin: "host-a".into()
        }
    );
    sb.publish_live("progress".into(), "{\"from\":\"b\"}".into())
        .await
        .unwrap();
    // Host a heard everything above except its own live events.
    let mut heard = Vec::new();
    loop {
        match next_notice(&mut hears_a).await {
            Notice::Live { origin, data, .. } => {
                assert_eq!(
                    (origin.as_str(), data.as_str()),
                    ("host-b", "{\"from\":\"b\"}")
                );
                break;
            }
            other => heard.push(other),
        }
    }
    assert!(
        heard.contains(&Notice::Wake) && heard.contains(&m),
        "{heard:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_subscription_reconnects_by_itself_and_says_so() {
    let Some((db, a, b)) = two_hosts().await else {
        return;
    };
    let sa: S = Arc::new(a.clone());
    let mut hears_b = b
        .subscribe()
        .await
        .unwrap()
        .expect("a shared store listens");
    // Kill host b's listening connection (as a restart of the server or a cut would).
    let config: tokio_postgres::Config = db.url.parse().unwrap();
    let (admin, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let killed = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = $1",
            &[&pg::listen::listener_name("host-b")],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(killed, 1, "host b listens on a connection of its own");
    assert_eq!(next_notice(&mut hears_b).await, Notice::Reconnected);
    // It listens again: the next change is told.
    let m = marker(&sa).await;
    assert_eq!(next_notice(&mut hears_b).await, m);
}
