//! A full disk (issue 7, finding 6), injected by the host's test-only hook: the store and
//! the results writer fail with "no space" (`POST /agent-scheduler/v1/test/faults`, served
//! only by builds with the `fault-injection` feature — the tests crate's dev-dependency, so
//! the hosts run in this process, with `Config::test_faults`). Plus a real tmpfs data
//! directory where mounting works.

use agent_scheduler::config::TestFaults;
use scheduler_api::client::Client;
use scheduler_api::{HistoryFilter, TaskStatus, routes};
use scheduler_tests::harness::{FakeProcess, HostProcess, wait_for, wait_task_status, wait_until};
use scheduler_tests::inprocess::{InProcessHost, fake_with_args};
use serde_json::json;

use crate::host_support::*;

const FAULTS: &str = "/agent-scheduler/v1/test/faults";

async fn inject(c: &Client, disk_full: bool, files_full: bool) {
    let a = post(
        c,
        FAULTS,
        &json!({"disk_full": disk_full, "files_full": files_full}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

async fn hold(c: &Client) -> (Option<String>, bool) {
    let q = queue(c).await;
    (q.hold_reason, q.paused)
}

async fn wait_hold(c: &Client, want: Option<&str>) {
    wait_for(&format!("hold_reason {want:?}"), LONG, || async {
        hold(c).await.0.as_deref() == want
    })
    .await;
}

/// Writes answer 507 with a clear message and change nothing; the queue is on hold (not
/// paused) and resumes by itself when space returns. A run whose files cannot be written
/// goes back to pending without counting an attempt, and runs again later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_holds_the_queue_answers_507_and_loses_nothing() {
    let fake = fake_with_args(FakeArgs::new().step_ms(5).checkpoint("a").loaded("a")).await;
    // As `AGENT_SCHEDULER_TEST_FAULTS=1` does for the binary.
    let host = InProcessHost::start_with(fake, tempfile::tempdir().expect("tempdir"), |c| {
        c.test_faults = Some(TestFaults { disk_full: false })
    })
    .await;
    let (c, fake) = (host.client().clone(), host.fake());
    let first = enqueue(&c, "before", json!({})).await;
    wait_done(&c, &first).await;

    inject(&c, true, false).await;
    let a = post(
        &c,
        routes::QUEUE_TXT2IMG,
        &json!({"prompt": "refused", "steps": 2}),
    )
    .await;
    assert_eq!(a.status, 507, "{}", a.body);
    assert_eq!(a.body["success"], json!(false));
    assert_eq!(a.body["code"], json!("insufficient_storage"));
    assert!(
        a.body["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("disk full:"),
        "{}",
        a.body
    );
    wait_hold(&c, Some("disk full")).await;
    let (_, paused) = hold(&c).await;
    assert!(!paused, "the hold never touches the user's pause");
    assert_eq!(
        queue(&c).await.total_pending_tasks,
        0,
        "nothing was written"
    );
    assert_eq!(
        history(&c, HistoryFilter::All).await.total,
        1,
        "reads still work"
    );
    inject(&c, false, false).await;
    wait_hold(&c, None).await;

    // Only the results writer fails: the run is given back without an attempt.
    let slow = enqueue(&c, "its files do not fit", json!({"steps": 200})).await;
    wait_task_status(&c, &slow, TaskStatus::Running, LONG).await;
    inject(&c, false, true).await;
    let back = wait_until("the run to go back to pending", LONG, || async {
        c.task(&slow)
            .await
            .ok()
            .filter(|t| t.status == TaskStatus::Pending)
    })
    .await;
    assert_eq!(back.attempts, 0, "no attempt counted");
    assert_eq!(hold(&c).await.0.as_deref(), Some("disk full"));
    inject(&c, false, false).await;
    let t = wait_done(&c, &slow).await;
    assert_eq!(t.attempts, 0);
    assert_eq!(t.image_count, 1);

    // Both fail: the release is remembered and written when space returns.
    let slow = enqueue(&c, "nothing fits", json!({"steps": 200})).await;
    wait_task_status(&c, &slow, TaskStatus::Running, LONG).await;
    inject(&c, true, false).await;
    wait_for("the fake to answer the run", LONG, || async {
        fake.stats()
            .generations
            .iter()
            .any(|g| g.prompt == "nothing fits")
    })
    .await;
    wait_hold(&c, Some("disk full")).await;
    inject(&c, false, false).await;
    let t = wait_done(&c, &slow).await;
    assert_eq!(t.attempts, 0);
    let prompts = fake.stats().prompts;
    assert_eq!(
        prompts.iter().filter(|p| *p == "nothing fits").count(),
        2,
        "it ran again after space returned: {prompts:?}"
    );
}

/// The host starts on a full disk (a task left running by a killed host included), serves
/// reads, says why it will not run tasks, and recovers once space returns.
#[tokio::test]
async fn the_host_starts_on_a_full_disk_and_runs_when_space_returns() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeProcess::spawn(FakeArgs::new().step_ms(20).checkpoint("a").loaded("a")).await;
    let mut first = HostProcess::spawn(dir.path(), &[fake.url()], &[]).await;
    let c = first.client.clone();
    let long = enqueue(&c, "cut short", json!({"steps": 200})).await;
    let other = enqueue(&c, "waiting", json!({})).await;
    wait_task_status(&c, &long, TaskStatus::Running, LONG).await;
    first.sigkill().await;

    // The fault route is in test builds only: the restarted host runs in this process (as
    // `AGENT_SCHEDULER_TEST_FAULTS=disk_full` did for a binary with the feature).
    let host = InProcessHost::start_against(&fake.url(), dir, |c| {
        c.test_faults = Some(TestFaults { disk_full: true })
    })
    .await;
    let c = host.client().clone();
    let q = queue(&c).await;
    assert_eq!(q.hold_reason.as_deref(), Some("disk full"));
    assert_eq!(q.total_pending_tasks, 2, "reads work");
    let t = c.task(&other).await.expect("task");
    assert_eq!(t.status, TaskStatus::Pending, "nothing runs on hold");
    inject(&c, false, false).await;
    let t = wait_done(&c, &long).await;
    assert_eq!(t.attempts, 1, "recovered as after any crash");
    wait_done(&c, &other).await;
}

/// A real full disk: the data directory on a 4 MiB tmpfs filled by another file. Needs root
/// and mount(8), so it is opt-in.
#[tokio::test]
#[ignore = "mounts a tmpfs (root and mount(8) needed): cargo test -- --ignored tmpfs"]
async fn tmpfs_data_directory_filled_up_holds_and_resumes() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let mnt = tempfile::tempdir().expect("tempdir");
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(mnt.path())
        .status()
        .expect("run mount")
        .success();
    assert!(ok, "mount -t tmpfs failed");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.path().to_path_buf());
    let fake = FakeProcess::spawn(FakeArgs::fast_a()).await;
    let host = HostProcess::spawn(mnt.path(), &[fake.url()], &[]).await;
    let c = host.client.clone();
    wait_done(&c, &enqueue(&c, "fits", json!({})).await).await;
    // Fill the disk.
    let filler = mnt.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    let mut refused = None;
    for i in 0..200 {
        let a = post(
            &c,
            routes::QUEUE_TXT2IMG,
            &json!({"prompt": format!("fill {i} {}", "x".repeat(4096)), "steps": 2}),
        )
        .await;
        if a.status != 200 {
            refused = Some(a);
            break;
        }
    }
    let a = refused.expect("an enqueue is refused once the disk is full");
    assert_eq!(a.status, 507, "{}", a.body);
    wait_hold(&c, Some("disk full")).await;
    std::fs::remove_file(&filler).expect("free space");
    wait_hold(&c, None).await;
    let id = enqueue(&c, "after space returned", json!({})).await;
    wait_done(&c, &id).await;
}
