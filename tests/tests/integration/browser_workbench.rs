//! Browser end-to-end for the panel as a workbench (issue 10): `tests/e2e/workbench.mjs` in
//! real headless Chromium and in headless Firefox ESR with the extension's test build, against the REAL host (`serve`,
//! which serves the web app at `/` from `target/webapp`, found beside its binary) driving the
//! fake SD.Next, and a second host with `--token`. The script checks thumbnails, columns,
//! sorting, the gallery, the viewer's keys, the group sheet, a multi-select move in one
//! request, the ETA, the web app at 1600 px and 360 px, the token login, the hold banners, the
//! popup, the backends section (a second fake added, drained, enabled, disabled and removed
//! from the panel, then added again with Enter in the URL field) and the 10,000-row bench; this test asserts its exit status and the
//! host's state.
//! A missing prerequisite (the extension or the web app not built, the browser missing)
//! fails it under `CI=true` and skips it with a printed message elsewhere.

use std::time::Duration;

use scheduler_tests::fake_args::FakeArgs;
use scheduler_tests::fixtures::workspace_root;
use scheduler_tests::harness::{
    E2eRun, FIREFOX_TEST_ORIGIN, FakeProcess, HostProcess, browser_available, firefox_available,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workbench_end_to_end_in_headless_chromium() {
    workbench(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workbench_end_to_end_in_firefox_esr() {
    workbench(true).await;
}

async fn workbench(firefox: bool) {
    let root = workspace_root();
    let ext = if firefox {
        "target/extension-firefox-test"
    } else {
        "target/extension-test"
    };
    let files: Vec<String> = [
        "pkg/panel_bg.wasm",
        "pkg/viewer_bg.wasm",
        "pkg/popup_bg.wasm",
    ]
    .iter()
    .map(|f| format!("{ext}/{f}"))
    .chain(
        ["pkg/panel_bg.wasm", "pkg/viewer_bg.wasm", "app.html"]
            .iter()
            .map(|f| format!("target/webapp/{f}")),
    )
    .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let build = format!("the extension's test build and the web app ({ext}, target/webapp)");
    let ready = if firefox {
        firefox_available(&root, &build, &files)
    } else {
        browser_available(&root, &build, &files)
    };
    if !ready {
        return;
    }
    let fake = FakeProcess::spawn(FakeArgs::new().step_ms(20).checkpoints(&["a", "b"])).await;
    // Added to the pool from the panel's backends section.
    let fake2 = FakeProcess::spawn(FakeArgs::new().step_ms(20)).await;
    let data = tempfile::tempdir().expect("tempdir");
    // Firefox's extension origin is per install: this host is told the test profile's.
    let allow: &[&str] = if firefox {
        &["--allow-origin", FIREFOX_TEST_ORIGIN]
    } else {
        &[]
    };
    let host = HostProcess::spawn(data.path(), &[fake.url()], allow).await;
    let data2 = tempfile::tempdir().expect("tempdir");
    let token_host =
        HostProcess::spawn(data2.path(), &[fake.url()], &["--token", "wb-secret"]).await;

    let mut run = E2eRun::new(
        &root,
        "workbench.mjs",
        ext,
        &host.url(),
        "workbench-results.json",
    );
    if firefox {
        run.in_firefox();
    }
    run.cmd
        .env("FAKE_URL", fake.url())
        .env("FAKE2_URL", fake2.url())
        .env("DATA_DIR", data.path())
        .env("TOKEN_HOST_URL", token_host.url())
        .env("TOKEN", "wb-secret");
    let what = if firefox {
        "workbench (Firefox ESR)"
    } else {
        "workbench (Chromium)"
    };
    let status = run.run(what, Duration::from_secs(400)).await;
    assert!(
        status.success(),
        "workbench e2e failed ({status}); see the ok/FAIL lines above and {}\nhost stderr:\n{}",
        run.shots.display(),
        host.server.stderr()
    );
    // The host's own view: the queue was resumed from the 360 px page and drained.
    let q = host
        .client
        .queue(&scheduler_api::ListQuery::default())
        .await
        .expect("queue");
    assert!(!q.paused, "resumed from the phone-sized page");
    // The backend added from the panel was removed from it: the `--backend` one is alone.
    let pool = host.client.backends().await.expect("backends");
    let ids: Vec<&str> = pool.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(ids, ["flag-1"], "the pool after the panel's add and remove");
    for shot in [
        "webapp-1600-history.png",
        "webapp-1600-queue.png",
        "webapp-360-queue.png",
        "webapp-360-history.png",
        "webapp-gallery.png",
        "webapp-viewer.png",
        "webapp-group-sheet.png",
        "webapp-login.png",
        "webapp-hold-disk-full.png",
        "webapp-hold-backend-stalled.png",
        "popup-running.png",
        "popup-hold-disk-full.png",
        "popup-hold-backend-stalled.png",
        "webapp-deleted-image-placeholder.png",
        "backends-1600.png",
        "backends-360.png",
    ] {
        assert!(run.shots.join(shot).is_file(), "screenshot {shot}");
    }
}
