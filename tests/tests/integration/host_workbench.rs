//! The workbench's host side, through HTTP against the host in this process: thumbnails,
//! groups of multi-checkpoint enqueues, bulk actions on a selection (ids or a filter),
//! exports and zips of a selection, the queue's ETA, the history by checkpoint, and the web
//! app served at `/`.

use std::io::Read;

use scheduler_api::client::{Client, Method};
use scheduler_api::{
    BulkAction, BulkRequest, BulkResponse, EtaResponse, ExportItem, GroupResponse, HistoryFilter,
    HistoryQuery, HistoryResponse, HistorySort, ListName, ListQuery, Selection, SelectionFilter,
    TaskStatus, TaskType, routes,
};
use scheduler_tests::harness::{fill, wait_until};
use serde_json::{Value, json};

use crate::host_support::*;

fn thumb(id: &str, index: usize) -> String {
    routes::thumb_path(id, index, None)
}

fn bulk_body(action: BulkAction, selection: Selection) -> Value {
    serde_json::to_value(BulkRequest { action, selection }).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnails_are_jpegs_made_once_beside_the_image_cached_and_gone_with_the_task() {
    let s = Stack::start(FakeArgs::fast_a(), &[]).await;
    let c = s.client();
    let id = enqueue(c, "a fox", json!({"n_iter": 2})).await;
    wait_done(c, &id).await;
    // Made after the run (off the worker's path), beside the images.
    let dir = s.dir.path().join("results").join(&id);
    wait_until("both thumbnails on disk", LONG, || async {
        (dir.join("0.thumb.jpg").is_file() && dir.join("1.thumb.jpg").is_file()).then_some(())
    })
    .await;
    let made_at = std::fs::metadata(dir.join("0.thumb.jpg"))
        .unwrap()
        .modified()
        .unwrap();

    let r = c.raw(Method::Get, &thumb(&id, 0)).send().await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(r.header("cache-control"), Some("private, max-age=86400"));
    let etag = r.header("etag").expect("an ETag").to_owned();
    assert_eq!(&r.body[..3], &[0xFF, 0xD8, 0xFF], "a JPEG");
    let img = image::load_from_memory(&r.body).unwrap();
    let full = c.image(&id, 0).await.unwrap();
    let orig = image::load_from_memory(&full.bytes).unwrap();
    // The fake's images are smaller than 256 px: kept at their size, never enlarged.
    assert_eq!((img.width(), img.height()), (orig.width(), orig.height()));
    assert!(img.width() <= scheduler_api::THUMB_SIZE && img.height() <= scheduler_api::THUMB_SIZE);
    // Asked again: the same file (made once), and a revalidation is a 304.
    let again = c.raw(Method::Get, &thumb(&id, 0)).send().await.unwrap();
    assert_eq!(again.body, r.body);
    assert_eq!(
        std::fs::metadata(dir.join("0.thumb.jpg"))
            .unwrap()
            .modified()
            .unwrap(),
        made_at
    );
    let r304 = c
        .raw(Method::Get, &thumb(&id, 0))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r304.status, 304);
    assert!(r304.body.is_empty());
    // The full image has its validator too.
    let f = c
        .raw(Method::Get, &routes::image_path(&id, 0))
        .send()
        .await
        .unwrap();
    assert_eq!(f.header("cache-control"), Some("private, max-age=86400"));
    assert!(f.header("etag").is_some_and(|e| e != etag));

    // Missing: an index the task does not have, an unknown task, a bad size.
    let missing = get(c, &thumb(&id, 7)).await;
    assert_eq!(
        (missing.status, missing.body["code"].as_str()),
        (404, Some("not_found"))
    );
    assert_eq!(get(c, &thumb("no-such-task", 0)).await.status, 404);
    assert_eq!(
        get(c, &format!("{}?size=huge", routes::image_path(&id, 0)))
            .await
            .status,
        422
    );
    // An image whose files were removed behind the host's back: 404, never a broken body.
    std::fs::remove_file(dir.join("1.thumb.jpg")).unwrap();
    for f in std::fs::read_dir(&dir).unwrap().flatten() {
        if f.file_name().to_string_lossy().starts_with("1.") {
            std::fs::remove_file(f.path()).unwrap();
        }
    }
    assert_eq!(get(c, &thumb(&id, 1)).await.status, 404);

    // Deleted with the task.
    assert_eq!(c.delete_task(&id).await.unwrap().message, "Task deleted");
    assert!(
        !dir.exists(),
        "the task's folder, thumbnails included, is gone"
    );
    assert_eq!(get(c, &thumb(&id, 0)).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_checkpoint_enqueue_is_a_group_with_its_own_listing() {
    let s = Stack::start(
        FakeArgs::new()
            .step_ms(1)
            .checkpoints(&["a", "b", "c"])
            .loaded("a"),
        &["--start-paused"],
    )
    .await;
    let c = s.client();
    let all = c
        .enqueue(
            TaskType::Txt2img,
            &body(json!({"prompt": "compare", "steps": 2, "checkpoint": "*"})),
        )
        .await
        .unwrap();
    assert_eq!(all.task_ids.len(), 3);
    let alone = enqueue(c, "alone", json!({"checkpoint": "a"})).await;
    let mut group = None;
    for id in &all.task_ids {
        let t = c.task(id).await.unwrap();
        let g = t
            .group_id
            .clone()
            .expect("a group id on every task of the enqueue");
        assert_eq!(*group.get_or_insert(g.clone()), g, "one group");
    }
    let group = group.unwrap();
    assert_eq!(c.task(&alone).await.unwrap().group_id, None);
    // The group in enqueue order, each with its checkpoint.
    let g: GroupResponse = c.group(&group).await.unwrap();
    assert_eq!(g.group_id, group);
    assert_eq!(
        g.tasks.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        all.task_ids
    );
    let cks: Vec<_> = g
        .tasks
        .iter()
        .map(|t| t.params["checkpoint"].clone())
        .collect();
    assert_eq!(cks, [json!("a"), json!("b"), json!("c")]);
    let unknown = get(
        c,
        &fill(
            routes::GROUP,
            &[("id", "00000000-0000-0000-0000-000000000000")],
        ),
    )
    .await;
    assert_eq!(unknown.status, 404);
    // Requeueing the whole group makes a new group of the copies.
    let r = c
        .bulk(&BulkRequest {
            action: BulkAction::Requeue,
            selection: Selection::ids(all.task_ids.clone()),
        })
        .await
        .unwrap();
    assert_eq!(r.count, 3);
    assert_eq!(r.task_ids.len(), 3);
    let copies: Vec<_> = {
        let mut v = Vec::new();
        for id in &r.task_ids {
            v.push(
                c.task(id)
                    .await
                    .unwrap()
                    .group_id
                    .expect("the copies are a group"),
            );
        }
        v
    };
    assert!(copies.iter().all(|g| *g == copies[0]) && copies[0] != group);
    assert_eq!(c.group(&copies[0]).await.unwrap().tasks.len(), 3);
    // An import makes tasks of no group.
    let items: Vec<ExportItem> = c
        .export_selection(&Selection::ids([all.task_ids[0].clone()]))
        .await
        .unwrap();
    let imported = c
        .import(&scheduler_api::ImportRequest {
            content: serde_json::to_string(&items).unwrap(),
        })
        .await
        .unwrap();
    assert_eq!(c.task(&imported.imported[0]).await.unwrap().group_id, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_actions_act_on_ids_or_a_filter_in_one_request_and_refusals_change_nothing() {
    let s = Stack::start(FakeArgs::fast_a(), &["--start-paused"]).await;
    let c = s.client();
    let mut p = Vec::new();
    for i in 0..6 {
        p.push(enqueue(c, &format!("p{i} bulk"), json!({})).await);
    }
    let by = |ids: &[&String]| Selection::ids(ids.iter().map(|s| (*s).clone()));
    // Move two to the top, keeping their order among themselves; two to the bottom.
    let top = post(
        c,
        routes::TASKS_BULK,
        &bulk_body(BulkAction::MoveTop, by(&[&p[4], &p[2]])),
    )
    .await;
    assert_eq!(top.status, 200, "{}", top.body);
    let r: BulkResponse = top.json();
    assert_eq!(
        (r.count, r.message.as_str()),
        (2, "Moved to the top: 2 tasks")
    );
    assert_eq!(
        queue_ids(c).await,
        [&p[4], &p[2], &p[0], &p[1], &p[3], &p[5]].map(|s| s.clone())
    );
    c.bulk(&BulkRequest {
        action: BulkAction::MoveBottom,
        selection: by(&[&p[0], &p[1]]),
    })
    .await
    .unwrap();
    let order = queue_ids(c).await;
    assert_eq!(
        order,
        [&p[4], &p[2], &p[3], &p[5], &p[0], &p[1]].map(|s| s.clone())
    );

    // Refusals change nothing: an unknown id (404), a malformed selection (422), too many
    // ids (413), an unknown action (422), malformed JSON (400).
    let unknown = post(
        c,
        routes::TASKS_BULK,
        &bulk_body(
            BulkAction::Delete,
            Selection::ids([p[0].clone(), "no-such-task".into()]),
        ),
    )
    .await;
    assert_eq!(
        (unknown.status, unknown.body["code"].as_str()),
        (404, Some("task_not_found"))
    );
    let both = post(
        c,
        routes::TASKS_BULK,
        &json!({"action": "delete", "selection": {"ids": [p[0]], "filter": {"list": "queue"}}}),
    )
    .await;
    assert_eq!(both.status, 422, "{}", both.body);
    let neither = post(
        c,
        routes::TASKS_BULK,
        &json!({"action": "delete", "selection": {}}),
    )
    .await;
    assert_eq!(neither.status, 422);
    let except_alone = post(
        c,
        routes::TASKS_BULK,
        &json!({"action": "delete", "selection": {"ids": [p[0]], "except": [p[1]]}}),
    )
    .await;
    assert_eq!(except_alone.status, 422);
    let many: Vec<String> = (0..10_001).map(|i| format!("t{i}")).collect();
    let too_many = post(
        c,
        routes::TASKS_BULK,
        &bulk_body(BulkAction::Delete, Selection::ids(many)),
    )
    .await;
    assert_eq!(
        (too_many.status, too_many.body["code"].as_str()),
        (413, Some("too_large"))
    );
    let odd = post(
        c,
        routes::TASKS_BULK,
        &json!({"action": "explode", "selection": {"ids": [p[0]]}}),
    )
    .await;
    assert_eq!(odd.status, 422);
    let bad = c
        .raw(Method::Post, routes::TASKS_BULK)
        .body("{\"action\": ", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status, 400, "malformed JSON");
    assert_eq!(queue_ids(c).await, order, "nothing changed");

    // A finished task cannot be moved: the whole request is refused (409).
    resume(c).await;
    for id in &p {
        wait_done(c, id).await;
    }
    pause(c).await;
    let fresh = enqueue(c, "fresh", json!({})).await;
    let mixed = post(
        c,
        routes::TASKS_BULK,
        &bulk_body(
            BulkAction::MoveTop,
            Selection::ids([fresh.clone(), p[0].clone()]),
        ),
    )
    .await;
    assert_eq!(mixed.status, 409, "{}", mixed.body);

    // "Select all" in the history with a search, minus one: bookmark them in one request.
    let all_but_one = Selection::filter(
        SelectionFilter {
            list: ListName::History,
            status: Some(HistoryFilter::Status(TaskStatus::Done)),
            q: Some("bulk".into()),
        },
        vec![p[3].clone()],
    );
    let bm = c
        .bulk(&BulkRequest {
            action: BulkAction::Bookmark,
            selection: all_but_one.clone(),
        })
        .await
        .unwrap();
    assert_eq!(bm.count, 5);
    let h = history(c, HistoryFilter::Bookmarked).await;
    let mut marked: Vec<String> = h.tasks.iter().map(|t| t.id.clone()).collect();
    marked.sort();
    let mut want: Vec<String> = p.iter().filter(|id| **id != p[3]).cloned().collect();
    want.sort();
    assert_eq!(marked, want);
    // Delete everything the queue's filter holds (one pending task) without listing it.
    let del = c
        .bulk(&BulkRequest {
            action: BulkAction::Delete,
            selection: Selection::filter(
                SelectionFilter {
                    list: ListName::Queue,
                    status: None,
                    q: None,
                },
                vec![],
            ),
        })
        .await
        .unwrap();
    assert_eq!(del.count, 1);
    assert!(queue_ids(c).await.is_empty());
    // The filter selection of the history deletes the finished tasks with their files.
    let gone = c
        .bulk(&BulkRequest {
            action: BulkAction::Delete,
            selection: all_but_one,
        })
        .await
        .unwrap();
    assert_eq!(gone.count, 5);
    assert_eq!(history(c, HistoryFilter::All).await.total, 1);
    assert!(!s.dir.path().join("results").join(&p[0]).exists());
    assert!(s.dir.path().join("results").join(&p[3]).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selection_exports_and_zips_its_results_in_one_request() {
    let s = Stack::start(FakeArgs::fast_a(), &[]).await;
    let c = s.client();
    let a = enqueue(c, "zip one", json!({"n_iter": 2})).await;
    let b = enqueue(c, "zip two", json!({})).await;
    wait_done(c, &a).await;
    wait_done(c, &b).await;
    let sel = Selection::ids([a.clone(), b.clone()]);
    let bytes = c.zip_selection(&sel).await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut names: Vec<String> = (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().to_owned())
        .collect();
    names.sort();
    let mut want = vec![
        format!("{a}/0.jpg"),
        format!("{a}/1.jpg"),
        format!("{b}/0.jpg"),
    ];
    want.sort();
    assert_eq!(names, want);
    let mut first = Vec::new();
    zip.by_name(&format!("{b}/0.jpg"))
        .unwrap()
        .read_to_end(&mut first)
        .unwrap();
    assert_eq!(
        first,
        c.image(&b, 0).await.unwrap().bytes,
        "the stored file"
    );
    // An export of the same selection imports back as new pending tasks.
    let items = c.export_selection(&sel).await.unwrap();
    assert_eq!(
        items.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
        [a.clone(), b.clone()]
    );
    assert_eq!(items[0].params["prompt"], "zip one");
    // Only pending tasks: nothing to zip (409).
    pause(c).await;
    let p = enqueue(c, "pending", json!({})).await;
    let r = post(
        c,
        routes::TASKS_ZIP,
        &serde_json::to_value(Selection::ids([p])).unwrap(),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eta_is_absent_before_any_run_then_follows_measured_speed_and_loads() {
    let s = Stack::start(
        FakeArgs::new()
            .step_ms(30)
            .checkpoints(&["a", "b"])
            .loaded("a"),
        &["--start-paused"],
    )
    .await;
    let c = s.client();
    let first = enqueue(c, "e0", json!({"steps": 4, "checkpoint": "a"})).await;
    let e: EtaResponse = c.eta(None).await.unwrap();
    assert_eq!(
        (e.pending, e.queue_ends_at),
        (1, None),
        "no history yet: no estimate"
    );
    assert_eq!(e.tasks.len(), 1);
    assert_eq!(
        (e.tasks[0].id.as_str(), e.tasks[0].starts_at),
        (first.as_str(), None)
    );
    assert_eq!(e.backends[0].ms_per_megapixel_step, None);
    assert_eq!(e.backends[0].samples, 0);
    // Two runs measure the backend (one after a load of "b").
    let second = enqueue(c, "e1", json!({"steps": 4, "checkpoint": "b"})).await;
    resume(c).await;
    wait_done(c, &first).await;
    wait_done(c, &second).await;
    pause(c).await;
    let later: Vec<String> = {
        let mut v = Vec::new();
        for (i, ck) in ["b", "a", "a"].iter().enumerate() {
            v.push(
                enqueue(
                    c,
                    &format!("e{}", i + 2),
                    json!({"steps": 4, "checkpoint": ck}),
                )
                .await,
            );
        }
        v
    };
    let e = wait_until("the speed recorded", LONG, || async {
        c.eta(None)
            .await
            .ok()
            .filter(|e| e.backends[0].samples == 2)
    })
    .await;
    let speed = e.backends[0]
        .ms_per_megapixel_step
        .expect("a measured speed");
    assert!(speed > 0.0);
    assert_eq!(e.pending, 3);
    let starts: Vec<i64> = e
        .tasks
        .iter()
        .map(|t| t.starts_at.expect("an estimate"))
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]),
        "in run order: {starts:?}"
    );
    assert!(starts[0] >= e.now);
    let ends = e.queue_ends_at.expect("the queue's end");
    assert!(ends > starts[2]);
    assert_eq!(
        e.tasks.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        later
    );
    // "b" is loaded: the first task needs no load, the switch to "a" does.
    let loads: Vec<bool> = e.tasks.iter().map(|t| t.loads_checkpoint).collect();
    assert_eq!(loads, [false, true, false]);
    assert_eq!(e.tasks[0].backend.as_ref(), Some(&e.backends[0].url));
    // `limit` bounds the listed tasks, not the queue's end (both counted from their `now`).
    let one = c.eta(Some(1)).await.unwrap();
    assert_eq!(
        (one.tasks.len(), one.queue_ends_at.map(|t| t - one.now)),
        (1, Some(ends - e.now))
    );
    assert_eq!(
        get(c, &format!("{}?limit=x", routes::QUEUE_ETA))
            .await
            .status,
        422
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_sorts_by_checkpoint_in_keyset_pages() {
    let s = Stack::start(
        FakeArgs::new()
            .step_ms(1)
            .checkpoints(&["a", "b", "c"])
            .loaded("a"),
        &[],
    )
    .await;
    let c = s.client();
    let mut ids = Vec::new();
    for (i, ck) in ["b", "a", "c", "b", "a"].iter().enumerate() {
        let id = enqueue(c, &format!("s{i}"), json!({"checkpoint": ck})).await;
        wait_done(c, &id).await;
        ids.push(id);
    }
    let hq = HistoryQuery {
        status: None,
        sort: Some(HistorySort::Checkpoint),
    };
    let all: HistoryResponse = c
        .history_with(
            &hq,
            &ListQuery {
                limit: Some(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let got: Vec<&str> = all.tasks.iter().map(|t| t.id.as_str()).collect();
    // By checkpoint, newest first within one.
    assert_eq!(got, [&ids[4], &ids[1], &ids[3], &ids[0], &ids[2]]);
    // Pages of two by cursor give the same list.
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = c
            .history_with(
                &hq,
                &ListQuery {
                    limit: Some(2),
                    cursor: cursor.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        paged.extend(page.tasks.into_iter().map(|t| t.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(paged, got);
    let bad = get(c, &format!("{}?sort=size", routes::HISTORY)).await;
    assert_eq!(bad.status, 422);
}

/// A folder shaped like `target/webapp` (what `frontend/build.sh` assembles).
fn fake_webapp() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("app.html"),
        "<!doctype html><title>Agent Scheduler</title>",
    )
    .unwrap();
    std::fs::write(d.path().join("app.js"), "// loader").unwrap();
    std::fs::create_dir(d.path().join("pkg")).unwrap();
    std::fs::write(d.path().join("pkg/panel_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_is_served_at_the_root_and_opens_without_the_token() {
    let app = fake_webapp();
    let webapp = app.path().display().to_string();
    let host = Stack::start(
        FakeArgs::fast_a(),
        &["--token", "s3cret", "--webapp", &webapp],
    )
    .await;
    let anon = Client::new(&host.url);
    // The page and its files need no token (the page asks for it).
    let page = anon.raw(Method::Get, "/").send().await.unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let wasm = anon
        .raw(Method::Get, "/app/pkg/panel_bg.wasm")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (wasm.status, wasm.header("content-type")),
        (200, Some("application/wasm"))
    );
    assert_eq!(wasm.body, b"\0asm\x01\0\0\0");
    for bad in [
        "/app/pkg/..%2Fapp.html",
        "/app/.env",
        "/app/pkg/missing.js",
        "/app/secret.sqlite3",
    ] {
        assert_eq!(
            anon.raw(Method::Get, bad).send().await.unwrap().status,
            404,
            "{bad}"
        );
    }
    // The API still wants it.
    assert_eq!(
        anon.raw(Method::Get, routes::QUEUE)
            .send()
            .await
            .unwrap()
            .status,
        401
    );
    let authed = Client::new(&host.url).with_token(Some("s3cret".into()));
    // The page's own origin may call the API (its POSTs carry `Origin`); another may not.
    let own = host.url.clone();
    let ok = authed
        .raw(Method::Post, routes::QUEUE_PAUSE)
        .header("Origin", &own)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    let foreign = authed
        .raw(Method::Post, routes::QUEUE_PAUSE)
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_built_web_app_the_root_says_how_to_build_it() {
    let empty = tempfile::tempdir().unwrap();
    let webapp = empty.path().display().to_string();
    let host = Stack::start(FakeArgs::fast_a(), &["--webapp", &webapp]).await;
    let r = host.client().raw(Method::Get, "/").send().await.unwrap();
    assert_eq!(r.status, 404);
    assert!(String::from_utf8_lossy(&r.body).contains("bash frontend/build.sh"));
}
