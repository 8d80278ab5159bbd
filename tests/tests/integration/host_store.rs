//! The host on the store `--database` chooses: a PostgreSQL database (a throw-away one per
//! test, `scheduler_tests::pg::TestDb`) runs tasks as the SQLite file does; the host id is
//! made once per data directory (`--host-id` overrides it).

use scheduler_api::TaskStatus;
use scheduler_tests::inprocess::{InProcessHost, serve_flags};
use scheduler_tests::pg::TestDb;
use serde_json::json;

use crate::host_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_on_postgres_runs_tasks_and_keeps_its_host_id() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let s = InProcessHost::start_args(FakeArgs::fast_a(), &["--database", &db.url]).await;
    let c = s.client();
    let id = enqueue(c, "a red fox", json!({"n_iter": 2})).await;
    let t = wait_done(c, &id).await;
    assert_eq!(t.status, TaskStatus::Done);
    let results = c.results(&id).await.expect("the results");
    assert_eq!(results.len(), 2, "both images");
    let made = std::fs::read_to_string(s.dir.path().join("host-id")).expect("host-id written");
    let made = made.trim().to_owned();
    let (name, hex) = made.rsplit_once('-').expect("NAME-HEX");
    assert!(!name.is_empty(), "{made}");
    assert!(
        hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()),
        "{made}"
    );
    // The SQLite file is not made: the queue is in PostgreSQL.
    assert!(!s.dir.path().join("queue.sqlite3").exists());

    // Restarted on the same data directory and database: the same id, the same history.
    let (dir, fake) = s.stop().await;
    let again =
        InProcessHost::start_with(fake, dir, |cfg| serve_flags(cfg, &["--database", &db.url]))
            .await;
    assert_eq!(
        again.api.task(&id).await.expect("the task").status,
        TaskStatus::Done
    );
    let kept = std::fs::read_to_string(again.dir.path().join("host-id")).unwrap();
    assert_eq!(kept.trim(), made, "made once");
    again.shut_down().await;
}
