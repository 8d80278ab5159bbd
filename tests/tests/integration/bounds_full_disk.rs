//! The host starts on a really full disk (issue 15, finding 7) after a clean stop and after
//! a crash: the data directory on a small tmpfs, filled up by another file while the host is
//! down. It starts, serves reads, holds the queue with the reason ("disk full"), claims
//! nothing while the hold is on, and runs the held task once space returns. Needs root and mount(8) (a prerequisite: this machine
//! and CI run as root).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use scheduler_api::{BackendState, HistoryFilter, TaskStatus};
use scheduler_tests::harness::{FakeProcess, HostProcess, prerequisite, wait_for};
use serde_json::json;

use crate::host_support::*;

/// A tmpfs mounted on a temporary folder, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .ok()?
            .success();
        ok.then_some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the file system of `dir` with a file; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).expect("filler");
    let chunk = vec![0u8; 16 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    filler
}

/// Waits until task `id` waits for its backend, known to be down: its claim (made before
/// the worker learnt the backend was gone) was given back. Not `running` when the host
/// stops: a task a crash leaves running is recovered only when space returns.
async fn waits_for_its_backend(c: &scheduler_api::client::Client, id: &str) {
    wait_for("the task to wait for its backend", LONG, || async {
        let down = c
            .backends()
            .await
            .is_ok_and(|b| b.first().is_some_and(|b| b.state == BackendState::Down));
        let pending = c
            .task(id)
            .await
            .is_ok_and(|t| t.status == TaskStatus::Pending);
        down && pending
    })
    .await;
}

async fn held_then_resumed(host: &HostProcess, id: &str, filler: &Path) {
    let c = &host.client;
    let Ok(q) = c.queue(&scheduler_api::ListQuery::default()).await else {
        panic!("the host answers; its log:\n{}", host.server.stderr());
    };
    assert_eq!(
        q.hold_reason.as_deref(),
        Some("disk full"),
        "the hold says why"
    );
    assert_eq!(q.total_pending_tasks, 1, "reads are served");
    let _ = history(c, HistoryFilter::All).await;
    // Its worker found the backend up, and went on to claim (and got nothing: the hold).
    wait_for("the backend to be up", LONG, || async {
        c.backends()
            .await
            .is_ok_and(|b| b.first().is_some_and(|b| b.state == BackendState::Up))
    })
    .await;
    assert_eq!(
        c.task(id).await.expect("the task reads").status,
        TaskStatus::Pending,
        "nothing runs on hold; the host's log:\n{}",
        host.server.stderr()
    );
    std::fs::remove_file(filler).expect("free space");
    wait_for("the hold to lift", LONG, || async {
        queue(c).await.hold_reason.is_none()
    })
    .await;
    wait_done(c, id).await;
}

#[tokio::test]
async fn the_host_starts_on_a_full_tmpfs_after_a_clean_stop_and_after_a_crash() {
    let fs = prerequisite(
        "mount -t tmpfs (root and mount(8))",
        Tmpfs::mount("4m"),
        "run the tests as root",
    );
    let mut fake = FakeProcess::spawn(FakeArgs::fast_a()).await;
    let mut host = HostProcess::spawn(fs.path(), &[fake.url()], &[]).await;
    let c = host.client.clone();
    // A task that waits: its backend is down.
    fake.sigkill().await;
    let waiting = enqueue(&c, "held", json!({})).await;
    waits_for_its_backend(&c, &waiting).await;

    // A clean stop, then the disk fills up.
    assert!(
        host.server
            .terminate(Duration::from_secs(30))
            .await
            .is_some(),
        "the host stops on SIGTERM"
    );
    let filler = fill(fs.path());
    fake.restart().await;
    let host = HostProcess::spawn(fs.path(), &[fake.url()], &[]).await;
    held_then_resumed(&host, &waiting, &filler).await;

    // A crash, then the disk fills up.
    fake.sigkill().await;
    let waiting = enqueue(&host.client, "held again", json!({})).await;
    waits_for_its_backend(&host.client, &waiting).await;
    let mut host = host;
    host.sigkill().await;
    let filler = fill(fs.path());
    fake.restart().await;
    let host = HostProcess::spawn(fs.path(), &[fake.url()], &[]).await;
    held_then_resumed(&host, &waiting, &filler).await;
}
