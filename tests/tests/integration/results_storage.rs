//! Result files in PostgreSQL through `ResultStorage` (a throw-away database; a prerequisite:
//! fails under `CI=true`, skips elsewhere): a run's images are staged under its claim and
//! become the task's when its finish is written, streamed back a chunk at a time; a run that
//! was not written, or a host that lost its claim, leaves nothing the task points at; requeue
//! and delete take the bytes with the rows; thumbnails are made once as blobs; the sweep
//! keeps what rows point at. Then through hosts: one on PostgreSQL serves a task's image,
//! thumbnail, zip and callback files from the database, and a second host on the same
//! database serves the same bytes.

use agent_scheduler::clock::Clock;
use agent_scheduler::model::transition::{Event, Policy};
use agent_scheduler::model::{Candidate, ImageRow, NewTask, RunEnd};
use agent_scheduler::results::storage::ResultStorage;
use agent_scheduler::results::thumbs::Thumbnailer;
use agent_scheduler::store::api::{ChooseFn, TaskStore};
use agent_scheduler::store::pg::{self, PgStore};
use agent_scheduler::store::transitions::{Choice, RunOutputs};
use futures::StreamExt;
use scheduler_api::{TaskStatus, TaskType};
use scheduler_tests::pg::TestDb;
use serde_json::json;

const POLICY: Policy = Policy {
    auto_requeue_failed: false,
    max_attempts: 3,
    retry_backoff_ms: 1000,
};

fn now() -> i64 {
    Clock::system().now_ms()
}

fn first() -> ChooseFn {
    Box::new(|window: &[Candidate], _paused| {
        (!window.is_empty()).then(|| Choice {
            index: 0,
            overtaken: Vec::new(),
        })
    })
}

/// A PNG of `w`×`h` whose pixels depend on `seed` (large ones span several chunks).
fn png(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x.wrapping_mul(31) ^ y.wrapping_mul(17)) as u8,
            seed,
            (x ^ y) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

async fn claim(s: &PgStore) -> i64 {
    s.claim_next("b1".into(), now(), first())
        .await
        .unwrap()
        .expect("a claim")
        .fence
}

async fn finish(s: &PgStore, fence: i64, end: RunEnd, images: Vec<ImageRow>) {
    s.finish(
        "t".into(),
        fence,
        Event::Finished { end, at: now() },
        POLICY,
        RunOutputs { images, info: None },
        now(),
    )
    .await
    .unwrap();
}

async fn names(s: &PgStore) -> Vec<String> {
    s.blob_names("t").await.unwrap()
}

async fn streamed(storage: &ResultStorage, name: &str) -> (u64, Vec<Vec<u8>>) {
    let f = storage.open("t", name).await.expect("a stored file");
    let pieces: Vec<Vec<u8>> = f.body.map(|p| p.unwrap().to_vec()).collect().await;
    (f.len, pieces)
}

#[tokio::test]
async fn postgres_results_are_staged_per_claim_and_go_with_their_rows() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let s = PgStore::open(&db.url, "host-a", pg::DEFAULT_LEASE)
        .await
        .unwrap();
    let storage = ResultStorage::Pg(s.clone());
    let task = NewTask {
        id: "t".into(),
        task_type: TaskType::Txt2img,
        name: None,
        request: json!({"prompt": "p"}).as_object().cloned().unwrap(),
        page_snapshot: None,
        checkpoint: None,
        vae: None,
        callback_url: None,
        bookmarked: false,
        group_id: None,
    };
    s.insert_tasks(vec![task], None, now()).await.unwrap();
    let big = png(700, 500, 1);
    assert!(big.len() > pg::blobs::CHUNK, "spans chunks");
    let small = png(40, 30, 2);

    // A run whose host died before its finish: its staged files are not the task's, and the
    // sweep takes them once the task no longer runs under that claim.
    let f1 = claim(&s).await;
    let rows = storage
        .write_images("t", f1, vec![big.clone(), small.clone()], vec!["a".into()])
        .await
        .unwrap();
    assert_eq!(rows[0].file_name, "0.png");
    assert_eq!(rows[0].infotext, "a");
    assert!(!storage.exists("t", "0.png").await);
    assert_eq!(
        storage.sweep(|_| None, std::time::SystemTime::now()).await,
        0
    );
    s.recover_running(POLICY, now()).await.unwrap();
    assert_eq!(
        storage.sweep(|_| None, std::time::SystemTime::now()).await,
        2
    );
    assert!(names(&s).await.is_empty());

    // The next claim's run is written; the old host, still alive, stages a file under its
    // lost claim: the finish drops it, and its discard cannot touch the new files.
    let f2 = claim(&s).await;
    let rows = storage
        .write_images("t", f2, vec![big.clone(), small.clone()], vec![])
        .await
        .unwrap();
    storage
        .write_images("t", f1, vec![vec![9; 10]], vec![])
        .await
        .unwrap();
    finish(&s, f2, RunEnd::Failed("x".into()), rows.clone()).await;
    storage.discard("t", f1).await;
    assert_eq!(names(&s).await, ["0.png", "1.png"]);
    let (len, pieces) = streamed(&storage, "0.png").await;
    assert_eq!(len, big.len() as u64);
    assert!(pieces.len() > 1 && pieces.iter().all(|p| p.len() <= pg::blobs::CHUNK));
    assert_eq!(pieces.concat(), big);
    assert_eq!(storage.read("t", "1.png").await.unwrap(), small);
    assert!(storage.open("t", "2.png").await.is_none());

    // A thumbnail is made once, as a blob beside its image.
    let thumbs = Thumbnailer::new(storage.clone());
    assert!(thumbs.ensure("t", &rows[0]).await);
    assert!(thumbs.ensure("t", &rows[0]).await);
    assert_eq!(thumbs.made(), 1);
    let jpeg = storage.read("t", "0.thumb.jpg").await.unwrap();
    let thumb = image::load_from_memory(&jpeg).unwrap();
    assert_eq!(thumb.width(), scheduler_api::THUMB_SIZE);

    // Requeued in place: the rows and the bytes go in one transaction. Its re-run replaces
    // them (no stale thumbnail of the earlier image).
    s.requeue_failed(now()).await.unwrap();
    assert!(names(&s).await.is_empty());
    let f3 = claim(&s).await;
    let other = png(30, 20, 3);
    let rows = storage
        .write_images("t", f3, vec![other.clone()], vec![])
        .await
        .unwrap();
    finish(&s, f3, RunEnd::Done, rows).await;
    let row = s.get_task("t".into(), false).await.unwrap().unwrap();
    assert_eq!(row.status(), TaskStatus::Done);
    assert_eq!(names(&s).await, ["0.png"]);
    assert_eq!(storage.read("t", "0.png").await.unwrap(), other);

    // Files no row points at (a thumbnail made while its image went) are collected; the
    // task's stay. Names that are not ours are refused.
    storage.put("t", "0.thumb.jpg", vec![1]).await.unwrap();
    storage.put("t", "5.thumb.jpg", vec![1]).await.unwrap();
    assert!(storage.put("t", "../x", vec![1]).await.is_err());
    storage.remove_tasks(vec!["t".into()]).await;
    assert_eq!(names(&s).await, ["0.png", "0.thumb.jpg"]);

    // Deleted: its bytes go with it.
    s.delete("t".into(), POLICY, now()).await.unwrap();
    assert!(names(&s).await.is_empty());
}

/// The image, thumbnail and zip of a task as one host serves them, with the image's ETag.
async fn served(
    c: &scheduler_api::client::Client,
    id: &str,
) -> (Vec<u8>, String, Vec<u8>, Vec<u8>) {
    use scheduler_api::client::Method;
    let image = c
        .raw(Method::Get, &scheduler_api::routes::image_path(id, 0))
        .send()
        .await
        .expect("the image");
    assert_eq!(image.status, 200);
    let etag = image.header("etag").expect("an ETag").to_owned();
    let thumb = c.thumbnail(id, 0, None).await.expect("the thumbnail");
    assert_eq!(thumb.content_type, "image/jpeg");
    let zip = c.results_zip(id).await.expect("the zip");
    (image.body, etag, thumb.bytes, zip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_stored_in_postgres_is_served_alike_by_every_host() {
    use crate::host_support::{FakeArgs, enqueue, wait_done};
    use scheduler_tests::inprocess::InProcessHost;
    let Some(db) = TestDb::create().await else {
        return;
    };
    let a = InProcessHost::start_args(FakeArgs::fast_a(), &["--database", &db.url]).await;
    let rx = scheduler_tests::harness::CallbackReceiver::start().await;
    let id = enqueue(
        a.client(),
        "a red fox",
        json!({"n_iter": 2, "callback_url": rx.url("/cb")}),
    )
    .await;
    wait_done(a.client(), &id).await;
    let from_a = served(a.client(), &id).await;
    let zip = zip::ZipArchive::new(std::io::Cursor::new(from_a.3.clone())).expect("a zip");
    assert_eq!(zip.len(), 2);
    // The callback carries the files, streamed from the database.
    let posts = rx.wait_for_posts(1, crate::host_support::LONG).await;
    let files: Vec<_> = posts[0]
        .parts
        .iter()
        .filter(|p| p.name == "files")
        .collect();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].data, from_a.0, "the first image as stored");
    // Nothing went to the data directory: the bytes are in the database.
    let folder = a.dir.path().join("results");
    assert!(
        std::fs::read_dir(&folder).map_or(true, |mut d| d.next().is_none()),
        "no result file under {}",
        folder.display()
    );

    // A second host on the same database, with a data directory of its own.
    let b = InProcessHost::start_args(FakeArgs::fast_a(), &["--database", &db.url]).await;
    let from_b = served(b.client(), &id).await;
    assert_eq!(from_a.0, from_b.0, "the image");
    assert_eq!(from_a.1, from_b.1, "its ETag");
    assert_eq!(from_a.2, from_b.2, "the thumbnail, made once");
    assert_eq!(from_a.3, from_b.3, "the zip");

    // Deleted through one host: gone on the other.
    b.client().delete_task(&id).await.expect("deleted");
    let gone = a
        .client()
        .raw(
            scheduler_api::client::Method::Get,
            &scheduler_api::routes::image_path(&id, 0),
        )
        .send()
        .await
        .expect("an answer");
    assert_eq!(gone.status, 404);
    b.shut_down().await;
    a.shut_down().await;
}
