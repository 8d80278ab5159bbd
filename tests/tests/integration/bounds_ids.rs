//! Task ids are one id whatever their case (issue 15, finding 8), through the real host
//! process: an imported id is kept lower case, and one that differs from a task's id only in
//! case is a clash like an equal one (the item gets a new id), so two tasks never share a
//! results folder on a case-insensitive file system.

use scheduler_api::{ImportRequest, TaskStatus};
use scheduler_tests::harness::wait_task_status;
use serde_json::json;

use crate::host_support::*;

#[tokio::test]
async fn ids_that_differ_only_in_case_are_one_id() {
    let s = ProcessStack::start(FakeArgs::fast_a(), &[]).await;
    let c = s.client();
    let item = |id: &str| {
        json!([{"id": id, "type": "txt2img", "params": {"prompt": id, "steps": 2, "width": 64, "height": 64}}])
            .to_string()
    };
    let first = c
        .import(&ImportRequest {
            content: item("Mixed-CASE-1"),
        })
        .await
        .expect("import");
    assert_eq!(first.imported, ["mixed-case-1"], "kept lower case");
    let second = c
        .import(&ImportRequest {
            content: item("MIXED-case-1"),
        })
        .await
        .expect("import");
    assert_eq!(second.imported.len(), 1);
    assert_ne!(
        second.imported[0].to_ascii_lowercase(),
        "mixed-case-1",
        "a clash in another case gets a new id"
    );
    for id in [&first.imported[0], &second.imported[0]] {
        wait_task_status(c, id, TaskStatus::Done, LONG).await;
    }
    let mut folders: Vec<String> = std::fs::read_dir(s.dir.path().join("results"))
        .expect("results")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_ascii_lowercase())
        .collect();
    folders.sort();
    let before = folders.len();
    folders.dedup();
    assert_eq!(folders.len(), before, "no two folders differ only in case");
    assert!(folders.contains(&"mixed-case-1".to_owned()));
}
