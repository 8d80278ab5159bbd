//! The checkpoint-aware order through the host in this process: one load per checkpoint, the
//! listing shows the order that runs (with switch points), strict FIFO as a setting, "move
//! to top" first, the starvation bound, and cursor paging over the projected window.

use scheduler_api::{ListQuery, MoveTarget, QueueResponse, SettingsPatch, Task, TaskType};
use scheduler_tests::harness::wait_until;
use serde_json::json;

use crate::host_support::*;

/// a, b, c listed, a loaded, 1 ms per step, loads take 5 ms.
fn abc() -> FakeArgs {
    FakeArgs::new()
        .step_ms(1)
        .load_ms(5)
        .checkpoints(&["a", "b", "c"])
        .loaded("a")
}

/// A paused host over [`abc`], once it knows that `a` is loaded (the order the listing
/// projects depends on it; before the first probe answers, nothing is known loaded).
async fn abc_paused() -> Stack {
    let s = Stack::start(abc(), &["--start-paused"]).await;
    wait_until("the host to know that `a` is loaded", LONG, || async {
        let b = s.client().backends().await.ok()?;
        (b[0].loaded_checkpoint.as_deref() == Some("a")).then_some(())
    })
    .await;
    s
}

/// 5 prompts × "Queue with all checkpoints" (the order a user produces: prompt by prompt).
async fn five_prompts_all_checkpoints(s: &Stack) -> Vec<String> {
    let mut ids = Vec::new();
    for p in 0..5 {
        let r = s
            .client()
            .enqueue(
                TaskType::Txt2img,
                &body(json!({"prompt": format!("p{p}"), "steps": 1, "checkpoint": "*"})),
            )
            .await
            .expect("enqueue");
        ids.extend(r.task_ids);
    }
    ids
}

fn checkpoint(t: &Task) -> String {
    t.params["checkpoint"].as_str().unwrap_or("").to_owned()
}

async fn wait_all_done(s: &Stack, n: usize) {
    wait_until("every task to finish", LONG, || async {
        let h = history(s.client(), scheduler_api::HistoryFilter::All).await;
        (h.total as usize >= n).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_load_per_checkpoint_and_the_listing_shows_what_runs() {
    let s = abc_paused().await;
    let c = s.client();
    let ids = five_prompts_all_checkpoints(&s).await;
    assert_eq!(ids.len(), 15);

    // The listing: the window in the order the policy will run it, switch points marked,
    // positions and priorities in that order.
    let q: QueueResponse = queue(c).await;
    assert_eq!((q.lookahead, q.total_pending_tasks), (15, 15));
    let cks: Vec<String> = q.pending_tasks.iter().map(checkpoint).collect();
    assert_eq!(
        cks,
        [
            "a", "a", "a", "a", "a", "b", "b", "b", "b", "b", "c", "c", "c", "c", "c"
        ]
    );
    let switches: Vec<usize> = q
        .pending_tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| t.projection.as_ref().is_some_and(|p| p.switch))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(switches, [5, 10]);
    for (i, t) in q.pending_tasks.iter().enumerate() {
        assert_eq!(t.position, Some(i as i64));
        let p = t.projection.as_ref().expect("a projection in the window");
        assert_eq!(p.order, i as i64);
        assert_eq!(p.backend.as_deref(), Some(s.fake().url().as_str()));
    }
    assert!(
        q.pending_tasks
            .windows(2)
            .all(|w| w[0].priority < w[1].priority),
        "priority sorts like the projected order"
    );
    let projected: Vec<String> = q.pending_tasks.iter().map(|t| t.id.clone()).collect();
    // The first b task (third enqueued) is sixth to run.
    assert_eq!(
        c.position(&ids[1]).await.expect("position").position,
        Some(5)
    );
    let one = c.task(&ids[1]).await.expect("task");
    assert_eq!(one.projection.as_ref().map(|p| p.order), Some(5));

    resume(c).await;
    wait_all_done(&s, 15).await;
    let stats = s.fake().stats();
    assert_eq!(stats.loads, ["b", "c"], "one load per checkpoint");
    // What ran is what the listing showed.
    let mut ran = Vec::new();
    for p in &stats.prompts {
        ran.push(p.clone());
    }
    let shown: Vec<String> = {
        let mut v = Vec::new();
        for id in &projected {
            let t = c.task(id).await.expect("task");
            v.push(t.params["prompt"].as_str().unwrap_or("").to_owned());
        }
        v
    };
    assert_eq!(ran, shown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouping_off_is_strict_fifo() {
    let s = abc_paused().await;
    let c = s.client();
    let settings = c
        .update_settings(&SettingsPatch {
            group_by_checkpoint: Some(false),
            ..Default::default()
        })
        .await
        .expect("settings");
    assert!(!settings.group_by_checkpoint);
    let ids = five_prompts_all_checkpoints(&s).await;
    assert_eq!(queue_ids(c).await, ids, "the listing is FIFO");
    let q = queue(c).await;
    let switches = q
        .pending_tasks
        .iter()
        .filter(|t| t.projection.as_ref().is_some_and(|p| p.switch))
        .count();
    assert_eq!(switches, 14);
    resume(c).await;
    wait_all_done(&s, 15).await;
    assert_eq!(s.fake().stats().checkpoint_loads, 14);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_to_top_runs_first_and_a_drag_changes_where_it_runs() {
    let s = abc_paused().await;
    let c = s.client();
    let b1 = enqueue(c, "b1", json!({"checkpoint": "b", "steps": 1})).await;
    let a1 = enqueue(c, "a1", json!({"checkpoint": "a", "steps": 1})).await;
    let a2 = enqueue(c, "a2", json!({"checkpoint": "a", "steps": 1})).await;
    let c1 = enqueue(c, "c1", json!({"checkpoint": "c", "steps": 1})).await;
    // Grouped: the loaded `a` first, then b, then c.
    assert_eq!(
        queue_ids(c).await,
        [a1.clone(), a2.clone(), b1.clone(), c1.clone()]
    );
    // "Move to top" goes first whatever its checkpoint; with `c` then loaded and no other
    // `c` task, the head (b1) comes next, then the two `a` tasks.
    c.move_task(&c1, &MoveTarget::Top).await.expect("move");
    assert_eq!(
        queue_ids(c).await,
        [c1.clone(), b1.clone(), a1.clone(), a2.clone()]
    );
    let q = queue(c).await;
    let switch: Vec<bool> = q
        .pending_tasks
        .iter()
        .map(|t| t.projection.as_ref().unwrap().switch)
        .collect();
    assert_eq!(switch, [true, true, true, false]);
    // A drag (before a2) changes its rank and unpins it: the policy runs the loaded `a`
    // tasks first again, and the listing says so.
    c.move_task(&c1, &MoveTarget::Before(a2.clone()))
        .await
        .expect("move");
    assert_eq!(
        queue_ids(c).await,
        [a1.clone(), a2.clone(), b1.clone(), c1.clone()]
    );
    resume(c).await;
    wait_all_done(&s, 4).await;
    assert_eq!(s.fake().stats().prompts, ["a1", "a2", "b1", "c1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overtaken_task_goes_first_after_the_bound() {
    let s = abc_paused().await;
    let c = s.client();
    c.update_settings(&SettingsPatch {
        max_overtakes: Some(2),
        ..Default::default()
    })
    .await
    .expect("settings");
    enqueue(c, "b", json!({"checkpoint": "b", "steps": 1})).await;
    for i in 0..4 {
        enqueue(c, &format!("a{i}"), json!({"checkpoint": "a", "steps": 1})).await;
    }
    let q = queue(c).await;
    let shown: Vec<String> = q.pending_tasks.iter().map(checkpoint).collect();
    assert_eq!(
        shown,
        ["a", "a", "b", "a", "a"],
        "b is overtaken twice, then first"
    );
    resume(c).await;
    wait_all_done(&s, 5).await;
    assert_eq!(s.fake().stats().prompts, ["a0", "a1", "b", "a2", "a3"]);
    // The bound is a setting with a range.
    let err = c
        .update_settings(&SettingsPatch {
            max_overtakes: Some(10_001),
            ..Default::default()
        })
        .await
        .expect_err("out of range");
    assert_eq!(
        (err.status(), err.body().map(|b| b.message.as_str())),
        (Some(422), Some("max_overtakes must be 0..=10000"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_pages_cross_the_window_without_gaps() {
    let s = abc_paused().await;
    let c = s.client();
    let mut bodies = Vec::new();
    for i in 0..130 {
        let ck = ["b", "a", "c"][i % 3];
        bodies.push(json!({"prompt": format!("t{i}"), "steps": 1, "checkpoint": ck}));
    }
    for b in bodies {
        c.enqueue(TaskType::Txt2img, &body(b))
            .await
            .expect("enqueue");
    }
    let all = queue(c).await;
    assert_eq!((all.lookahead, all.total_pending_tasks), (100, 130));
    let mut paged: Vec<String> = Vec::new();
    let mut cursor = None;
    loop {
        let p = c
            .queue(&ListQuery {
                limit: Some(17),
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .expect("page");
        paged.extend(p.pending_tasks.iter().map(|t| t.id.clone()));
        match p.next_cursor {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let want: Vec<String> = all.pending_tasks.iter().map(|t| t.id.clone()).collect();
    assert_eq!(paged, want);
    // Offset pages (old clients) agree.
    let tail = c
        .queue(&ListQuery {
            limit: Some(40),
            offset: Some(90),
            ..Default::default()
        })
        .await
        .expect("offset page");
    let ids: Vec<String> = tail.pending_tasks.iter().map(|t| t.id.clone()).collect();
    assert_eq!(ids, want[90..].to_vec());
    assert!(
        tail.pending_tasks[..10]
            .iter()
            .all(|t| t.projection.is_some())
    );
    assert!(
        tail.pending_tasks[10..]
            .iter()
            .all(|t| t.projection.is_none())
    );
    // A cursor the host never wrote is refused.
    let err = c
        .queue(&ListQuery {
            cursor: Some("zz".into()),
            ..Default::default()
        })
        .await
        .expect_err("bad cursor");
    assert_eq!(
        (err.status(), err.body().map(|b| b.message.as_str())),
        (Some(422), Some("unknown cursor `zz`"))
    );
}
