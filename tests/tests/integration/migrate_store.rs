//! `agent-scheduler migrate-store --from sqlite:PATH --to postgres://…`: a queue the real host
//! built (in this process, driving the fake SD.Next: tasks that ran with images and
//! thumbnails, a failed one, bookmarked, grouped and pending ones, settings, the pause, an
//! added backend, an idempotency key, events) is moved by the REAL binary (the host too is the real binary, a process: once it has exited its
//! file is final) into a throw-away
//! PostgreSQL database; then the PostgreSQL store answers what the SQLite store answers
//! (listings, counts, groups, results, event replay, settings, backends, speeds), every blob
//! equals its file, the source is untouched, a second run is refused, and a source a running
//! host holds is refused.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use agent_scheduler::model::NewTask;
use agent_scheduler::store::Store;
use agent_scheduler::store::api::TaskStore;
use agent_scheduler::store::pg::{self, PgStore};
use fake_sdnext::{CountOrBool, FakeConfigPatch};
use futures::TryStreamExt;
use scheduler_api::{HistoryFilter, SettingsPatch, TaskStatus, TaskType};
use scheduler_tests::harness::{binaries_available, host_binary};
use scheduler_tests::pg::TestDb;
use serde_json::json;

use crate::host_support::*;

/// What a run of the binary printed, and its exit status.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn migrate(args: &[&str]) -> Run {
    let out = tokio::process::Command::new(host_binary())
        .arg("migrate-store")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run agent-scheduler migrate-store");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The bytes (their length and a hash: a failure prints no database) and modification time
/// of a file.
fn fingerprint(p: &Path) -> (usize, u64, std::time::SystemTime) {
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(p).expect("read the source");
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    (
        bytes.len(),
        h.finish(),
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .expect("mtime"),
    )
}

/// Copies the files of a folder (not recursive).
fn copy_files(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        if e.file_type().expect("file type").is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_queue_moves_to_postgres_with_its_results_and_is_checked() {
    if !binaries_available() {
        return;
    }
    let Some(db) = TestDb::create().await else {
        return;
    };
    // The real host as a process: when it has exited, the file is as it left it.
    let mut s = ProcessStack::start(
        FakeArgs::new()
            .step_ms(1)
            .checkpoints(&["a", "b"])
            .loaded("a"),
        &[],
    )
    .await;
    let c = s.client().clone();
    let sqlite_path = s.dir.path().join("queue.sqlite3");
    let from = format!("sqlite:{}", sqlite_path.display());

    // A host holds the source: refused before anything is read or written.
    let r = migrate(&["--from", &from, "--to", &db.url]).await;
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.contains("a running agent-scheduler is using"),
        "{r:?}"
    );

    // History: done with two images (and their thumbnails), bookmarked; failed.
    let done = enqueue(&c, "a red fox", json!({"batch_size": 2})).await;
    wait_done(&c, &done).await;
    c.bookmark(&done, true).await.expect("bookmark");
    s.fake
        .configure(&FakeConfigPatch {
            fail_next_with_empty: Some(CountOrBool::Count(1)),
            ..FakeConfigPatch::default()
        })
        .await;
    let failed = enqueue(&c, "doomed", json!({})).await;
    assert_eq!(wait_finished(&c, &failed).await.status, TaskStatus::Failed);
    // The queue, paused: a group over both checkpoints, a task moved to the top, one
    // enqueued with an idempotency key.
    pause(&c).await;
    let group = c
        .enqueue(
            TaskType::Txt2img,
            &body(json!({"prompt": "compare", "steps": 2, "checkpoint": "*"})),
        )
        .await
        .expect("enqueue a group");
    assert_eq!(group.task_ids.len(), 2);
    let keyed = c
        .enqueue_idempotent(
            TaskType::Txt2img,
            &body(json!({"prompt": "once", "steps": 2})),
            "k-1",
        )
        .await
        .expect("keyed enqueue")
        .task_id;
    c.move_task(&keyed, &scheduler_api::MoveTarget::Top)
        .await
        .expect("move to the top");
    c.update_settings(&SettingsPatch {
        max_attempts: Some(4),
        ..SettingsPatch::default()
    })
    .await
    .expect("settings");
    c.add_backend("http://127.0.0.1:9")
        .await
        .expect("add a backend");
    assert!(
        s.host.server.terminate(LONG).await.is_some(),
        "the host stops on SIGTERM"
    );
    let dir = &s.dir;

    let before = fingerprint(&sqlite_path);
    let r = migrate(&["--from", &from, "--to", &db.url]).await;
    assert_eq!(r.code, 0, "{r:?}");
    for table in ["tasks", "result_images", "events", "settings", "backends"] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.starts_with(table) && l.ends_with("ok")),
            "{table} checked: {r:?}"
        );
    }
    assert_eq!(
        fingerprint(&sqlite_path),
        before,
        "the source is left as it was"
    );

    // The SQLite store (a copy of the folder: opening it migrates and writes) and the
    // PostgreSQL store answer the same.
    let copy = tempfile::tempdir().expect("tempdir");
    copy_files(dir.path(), copy.path());
    let a: Arc<dyn TaskStore> =
        Arc::new(Store::open(&copy.path().join("queue.sqlite3")).expect("open the copy"));
    let pg = PgStore::open(&db.url, "host-b", pg::DEFAULT_LEASE)
        .await
        .expect("open the target");
    let b: Arc<dyn TaskStore> = Arc::new(pg.clone());
    let counts = a.counts().await.unwrap();
    assert_eq!(
        (
            counts.pending,
            counts.done,
            counts.failed,
            counts.bookmarked
        ),
        (3, 1, 1, 1)
    );
    assert_eq!(b.counts().await.unwrap(), counts);
    let queue = a.list_queue(None, 100, 0).await.unwrap();
    assert_eq!(queue.0.first().map(|t| t.id.clone()), Some(keyed.clone()));
    assert_eq!(b.list_queue(None, 100, 0).await.unwrap(), queue);
    for filter in [HistoryFilter::All, HistoryFilter::Bookmarked] {
        assert_eq!(
            b.history_page(filter, None, None, 100, 0).await.unwrap(),
            a.history_page(filter, None, None, 100, 0).await.unwrap()
        );
    }
    let group_id = a
        .get_task(group.task_ids[0].clone(), true)
        .await
        .unwrap()
        .unwrap()
        .group_id;
    let group_id = group_id.expect("a group id");
    assert_eq!(
        b.group_rows(group_id.clone()).await.unwrap(),
        a.group_rows(group_id).await.unwrap()
    );
    for id in [&done, &failed, &keyed] {
        assert_eq!(
            b.get_task(id.clone(), true).await.unwrap(),
            a.get_task(id.clone(), true).await.unwrap()
        );
    }
    let ids = vec![done.clone(), failed.clone()];
    assert_eq!(
        b.result_files(ids.clone()).await.unwrap(),
        a.result_files(ids).await.unwrap()
    );
    let replay = a.replay(0).await.unwrap();
    assert!(replay.rows.len() > 5, "events to replay: {replay:?}");
    assert_eq!(b.replay(0).await.unwrap(), replay);
    assert_eq!(
        b.replay(replay.newest - 3).await.unwrap().rows,
        replay.rows[replay.rows.len() - 3..]
    );
    assert_eq!(
        b.load_settings().await.unwrap(),
        a.load_settings().await.unwrap()
    );
    assert_eq!(b.load_settings().await.unwrap().max_attempts, 4);
    assert!(b.is_paused().await.unwrap());
    assert_eq!(
        b.added_backends().await.unwrap(),
        a.added_backends().await.unwrap()
    );
    assert_eq!(b.added_backends().await.unwrap().len(), 1);
    assert_eq!(b.speeds().await.unwrap(), a.speeds().await.unwrap());
    assert_eq!(
        b.idempotent_answer("k-1".into()).await.unwrap(),
        a.idempotent_answer("k-1".into()).await.unwrap()
    );
    // New ids continue after the copied ones: the next event's id is past the replayed ones.
    let next = b
        .insert_events(vec![("ping".into(), "{}".into())], 0)
        .await
        .unwrap();
    assert_eq!(next, vec![replay.newest + 1]);

    // Every result file (two images, their thumbnails) is a blob with the same bytes.
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir.path().join("results").join(&done)).expect("results folder") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        let bytes: Vec<u8> = pg
            .blob_chunks(&done, &name, None)
            .try_fold(Vec::new(), |mut v, chunk| async move {
                v.extend_from_slice(&chunk);
                Ok(v)
            })
            .await
            .expect("blob");
        assert_eq!(bytes, std::fs::read(e.path()).expect("file"), "{name}");
        names.push(name);
    }
    names.sort();
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(pg.blob_names(&done).await.unwrap(), names);

    // A second run finds the target not empty: refused, nothing written.
    let r = migrate(&["--from", &from, "--to", &db.url]).await;
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.contains("already holds tasks, events or backends"),
        "{r:?}"
    );
    // With --into-non-empty: the ids exist, refused before anything is written.
    let r = migrate(&["--from", &from, "--to", &db.url, "--into-non-empty"]).await;
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("already has task id(s)"), "{r:?}");
    assert_eq!(b.counts().await.unwrap(), counts);
    assert_eq!(
        fingerprint(&sqlite_path),
        before,
        "the source is left as it was"
    );
}

fn new_task(id: &str) -> NewTask {
    NewTask {
        id: id.into(),
        task_type: TaskType::Txt2img,
        name: None,
        request: json!({"prompt": format!("prompt {id}")})
            .as_object()
            .cloned()
            .expect("an object"),
        page_snapshot: None,
        checkpoint: None,
        vae: None,
        callback_url: None,
        bookmarked: false,
        group_id: None,
    }
}

#[tokio::test]
async fn into_non_empty_appends_the_pending_tasks_after_the_target_queue() {
    if !binaries_available() {
        return;
    }
    let Some(db) = TestDb::create().await else {
        return;
    };
    // The source: three pending tasks, the last moved to the top, a backend, an event.
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite_path = dir.path().join("queue.sqlite3");
    {
        let src = Store::open(&sqlite_path).expect("open the source");
        let tasks = ["s-1", "s-2", "s-3"].map(new_task).to_vec();
        assert_eq!(src.insert_tasks(tasks, None, 1).await.unwrap(), None);
        src.move_task("s-3".into(), scheduler_api::MoveTarget::Top, 2)
            .await
            .unwrap();
        src.add_backend("http://127.0.0.1:9".into(), 3)
            .await
            .unwrap();
        src.insert_events(vec![("queue".into(), "{}".into())], 4)
            .await
            .unwrap();
    }
    // The target: two pending tasks, the same backend, its own settings.
    let pg = PgStore::open(&db.url, "host-a", pg::DEFAULT_LEASE)
        .await
        .expect("open the target");
    let tasks = ["t-1", "t-2"].map(new_task).to_vec();
    assert_eq!(pg.insert_tasks(tasks, None, 5).await.unwrap(), None);
    pg.add_backend("http://127.0.0.1:9".into(), 6)
        .await
        .unwrap();
    let mut settings = pg.load_settings().await.unwrap();
    settings.max_attempts = 7;
    pg.save_settings(settings.clone()).await.unwrap();

    let from = format!("sqlite:{}", sqlite_path.display());
    let r = migrate(&["--from", &from, "--to", &db.url]).await;
    assert_eq!(r.code, 3, "refused without --into-non-empty: {r:?}");
    assert_eq!(pg.counts().await.unwrap().pending, 2, "nothing written");

    let r = migrate(&["--from", &from, "--to", &db.url, "--into-non-empty"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("backends: 1 rows already in the target were kept"),
        "{r:?}"
    );
    let (queue, total) = pg.list_queue(None, 100, 0).await.unwrap();
    assert_eq!(total, 5);
    assert_eq!(
        queue.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["t-1", "t-2", "s-3", "s-1", "s-2"],
        "the target's queue, then the source's in its order"
    );
    assert_eq!(
        pg.load_settings().await.unwrap(),
        settings,
        "the target's settings stay"
    );
    assert_eq!(pg.added_backends().await.unwrap().len(), 1);
    assert_eq!(
        pg.replay(0).await.unwrap().rows.len(),
        1,
        "the source's event, appended"
    );
}

#[tokio::test]
async fn a_row_the_target_refuses_rolls_the_whole_copy_back() {
    if !binaries_available() {
        return;
    }
    let Some(db) = TestDb::create().await else {
        return;
    };
    // SQLite keeps a prompt with a NUL character; PostgreSQL's jsonb refuses it. The row
    // comes after others were written in the same transaction.
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite_path = dir.path().join("queue.sqlite3");
    {
        let src = Store::open(&sqlite_path).expect("open the source");
        let mut nul = new_task("r-3");
        nul.request
            .insert("prompt".into(), json!("before\u{0}after"));
        let tasks = vec![new_task("r-1"), new_task("r-2"), nul];
        assert_eq!(src.insert_tasks(tasks, None, 1).await.unwrap(), None);
        src.insert_events(vec![("queue".into(), "{}".into())], 2)
            .await
            .unwrap();
    }
    let from = format!("sqlite:{}", sqlite_path.display());
    let r = migrate(&["--from", &from, "--to", &db.url]).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("target: database: 22P05"), "{r:?}");
    let pg = PgStore::open(&db.url, "host-a", pg::DEFAULT_LEASE)
        .await
        .expect("open the target");
    let counts = pg.counts().await.unwrap();
    assert_eq!(
        counts.pending + counts.done + counts.failed,
        0,
        "no task written"
    );
    assert_eq!(pg.replay(0).await.unwrap().rows, [], "no event written");
}
