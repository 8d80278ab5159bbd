//! Browser end-to-end, in headless Chromium and in headless Firefox ESR: the BUILT
//! extension's test build (`target/extension-test` / `target/extension-firefox-test`, made by
//! `frontend/build.sh`: the shipped package plus the test-only hooks the checks read),
//! against the REAL host (`agent-scheduler serve`) driving the fake SD.Next, both started
//! here as processes on port 0, on pages that carry SD.Next's DOM: the project's own
//! `tests/e2e/pages/mini-sdnext.html` (always) and the recorded Modern and Standard pages
//! from `../shared/fixtures/sdnext/ui`. A static server on port 0 serves them over
//! http://127.0.0.1, and the browser also reaches it as `http://sdnext.test:<port>` (a
//! made-up name mapped to 127.0.0.1): a non-loopback SD.Next address, enabled from the
//! extension's popup.
//!
//! The browser part is `tests/e2e/run.mjs` (playwright-core + /usr/bin/chromium, or
//! puppeteer-core + /usr/bin/firefox-esr); this test passes it the URLs, asserts its exit
//! status, then checks the host's state over HTTP. The Firefox host is started with
//! `--allow-origin` for the extension's origin in the test profile; its token host accepts
//! the extension by the token alone. A missing prerequisite (the extension not built,
//! `npm ci --prefix tests/e2e` not run, the browser missing, `../shared` absent) fails it
//! under `CI=true` and skips it with a printed message elsewhere.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use scheduler_tests::fake_args::FakeArgs;
use scheduler_tests::fixtures::workspace_root;
use scheduler_tests::harness::{
    E2eRun, FIREFOX_TEST_ORIGIN, FakeProcess, HostProcess, browser_available, firefox_available,
};
use tokio::sync::Mutex;

fn recorded(name: &str) -> Option<PathBuf> {
    let p = scheduler_tests::fixtures::shared_dir()
        .join("fixtures/sdnext/ui")
        .join(name);
    p.is_file().then_some(p)
}

/// A page of another web app (served under the enabled non-loopback name too).
const PLAIN_PAGE: &str = "<!doctype html><html><head><title>Another app</title></head>\
    <body><h1>Not SD.Next</h1><p>A page the extension must leave alone.</p></body></html>";

/// Serves `/mini`, `/mini-csp`, `/modern`, `/standard` (the last two only when recorded
/// pages exist), `/plain` (not SD.Next), and `POST /control/restart-host`, which SIGKILLs the host and starts it
/// again on the same port (for the reconnect check).
async fn page_server(host: Arc<Mutex<HostProcess>>) -> String {
    let root = workspace_root();
    let app = Router::new()
        .route(
            "/control/restart-host",
            post(move || {
                let host = host.clone();
                async move {
                    host.lock().await.restart().await;
                    StatusCode::NO_CONTENT
                }
            }),
        )
        .route(
            "/{page}",
            get(move |UrlPath(page): UrlPath<String>| {
                let root = root.clone();
                async move {
                    let file = match page.as_str() {
                        "mini" | "mini-csp" => Some(root.join("tests/e2e/pages/mini-sdnext.html")),
                        "modern" => recorded("modern-dom.html"),
                        "standard" => recorded("standard-dom.html"),
                        _ => None,
                    };
                    // `/mini-csp`: the mini page under a CSP that forbids wasm in the page.
                    let html = [(header::CONTENT_TYPE, "text/html; charset=utf-8")];
                    if page == "plain" {
                        return (html, PLAIN_PAGE).into_response();
                    }
                    match file.map(std::fs::read) {
                        Some(Ok(bytes)) if page == "mini-csp" => (
                            html,
                            [(
                                header::CONTENT_SECURITY_POLICY,
                                "script-src 'self' 'unsafe-inline'",
                            )],
                            bytes,
                        )
                            .into_response(),
                        // Like SD.Next: no CSP.
                        Some(Ok(bytes)) => (html, bytes).into_response(),
                        _ => StatusCode::NOT_FOUND.into_response(),
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind page server");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_end_to_end_in_headless_chromium() {
    end_to_end(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_end_to_end_in_firefox_esr() {
    end_to_end(true).await;
}

fn build_files(dir: &str) -> Vec<String> {
    [
        "manifest.json",
        "pkg/content_bg.wasm",
        "pkg/panel_bg.wasm",
        "pkg/viewer_bg.wasm",
    ]
    .iter()
    .chain(["pkg/popup_bg.wasm", "pkg/sw_bg.wasm"].iter())
    .map(|f| format!("{dir}/{f}"))
    .collect()
}

async fn end_to_end(firefox: bool) {
    let root = workspace_root();
    let ext = if firefox {
        "target/extension-firefox-test"
    } else {
        "target/extension-test"
    };
    let files = build_files(ext);
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let build = format!("the extension's test build ({ext})");
    let ready = if firefox {
        firefox_available(&root, &build, &files)
    } else {
        browser_available(&root, &build, &files)
    };
    let pages_recorded = ["modern-dom.html", "standard-dom.html"]
        .into_iter()
        .all(|page| scheduler_tests::fixtures::sdnext_ui_page(page).is_some());
    if !(ready && pages_recorded) {
        return;
    }
    let checkpoints = ["a", "b"];
    let fake = FakeProcess::spawn(
        FakeArgs::new()
            .step_ms(20)
            .checkpoints(&[checkpoints[0], checkpoints[1]]),
    )
    .await;
    let data = tempfile::tempdir().expect("tempdir");
    // Firefox's extension origin is per install: this host is told the test profile's.
    let allow: &[&str] = if firefox {
        &["--allow-origin", FIREFOX_TEST_ORIGIN]
    } else {
        &[]
    };
    let host = HostProcess::spawn(data.path(), &[fake.url()], allow).await;
    // A second host that requires a token: the options page's token must reach it.
    let data2 = tempfile::tempdir().expect("tempdir");
    let token_host =
        HostProcess::spawn(data2.path(), &[fake.url()], &["--token", "e2e-secret"]).await;
    let host_url = host.url();
    let host = Arc::new(Mutex::new(host));
    let pages = page_server(host.clone()).await;

    let mut run = E2eRun::new(&root, "run.mjs", ext, &host_url, "e2e-results.json");
    if firefox {
        run.in_firefox();
    }
    let cmd = &mut run.cmd;
    cmd.env("PAGES_URL", &pages)
        .env("FAKE_URL", fake.url())
        .env("TOKEN_HOST_URL", token_host.url())
        .env("TOKEN", "e2e-secret")
        .env("EXPECTED_EXTENSION_ORIGIN", scheduler_api::EXTENSION_ORIGIN)
        .env("EXPECTED_FIREFOX_ORIGIN", FIREFOX_TEST_ORIGIN)
        .env("MINI_URL", format!("{pages}/mini"))
        .env("CSP_URL", format!("{pages}/mini-csp"))
        .env("CHECKPOINTS", checkpoints.join(","));
    cmd.env("MODERN_URL", format!("{pages}/modern"));
    cmd.env("STANDARD_URL", format!("{pages}/standard"));
    let what = if firefox {
        "browser e2e (Firefox ESR)"
    } else {
        "browser e2e (Chromium)"
    };
    let status = run.run(what, Duration::from_secs(300)).await;
    assert!(
        status.success(),
        "browser e2e failed ({status}); see the ok/FAIL lines above and {}\nhost stderr:\n{}",
        run.shots.display(),
        host.lock().await.server.stderr()
    );

    // The host's own view of what the browser did.
    let host = host.lock().await;
    let c = &host.client;
    let all = scheduler_api::ListQuery {
        limit: Some(1000),
        ..Default::default()
    };
    let q = c.queue(&all).await.expect("queue");
    assert!(!q.paused, "the popup resumed the queue");
    let hist = c
        .history(scheduler_api::HistoryFilter::All, &all)
        .await
        .expect("history");
    let renamed = hist
        .tasks
        .iter()
        .find(|t| t.name.as_deref() == Some("renamed-two"))
        .expect("the task renamed in the panel");
    assert!(renamed.bookmarked, "the task bookmarked in the panel");
    let edited = hist
        .tasks
        .iter()
        .find(|t| t.name.as_deref() == Some("edited-one"))
        .expect("the task edited in the panel");
    assert_eq!(edited.params["steps"], 7);
    assert_eq!(edited.params["prompt"], "p1 a red fox");
    for ck in checkpoints {
        let n = hist
            .tasks
            .iter()
            .chain(q.pending_tasks.iter())
            .filter(|t| t.params.get("checkpoint").and_then(|v| v.as_str()) == Some(ck))
            .count();
        assert!(
            n >= 2,
            "queue-with-all-checkpoints made tasks for {ck} ({n})"
        );
    }
    for shot in [
        "panel-queue.png",
        "panel-detail.png",
        "popup.png",
        "panel-in-page.png",
        "options.png",
        "panel-running.png",
        "popup-offline.png",
        if firefox {
            "firefox-popup-enable-site.png"
        } else {
            "chromium-popup-enable-site.png"
        },
    ] {
        assert!(run.shots.join(shot).is_file(), "screenshot {shot}");
    }
}
