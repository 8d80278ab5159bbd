//! The opt-in live tier of the extension (issue 6): the BUILT extension in headless Chromium
//! on the REAL SD.Next page (`SDNEXT_URL`, e.g. the kit of `../shared/tools/sdnext`), the REAL
//! host (a separate process) driving that SD.Next. The browser part is
//! `tests/e2e/live.mjs`: the Enqueue button at 1280×800 … 2560×1440 on txt2img, img2img and
//! Control in both placements, the right-click menu against SD.Next's synthetic clicks, the
//! fidelity table (each page setting: Enqueue, let the host run it, Generate with the same
//! values, compare the infotexts) and "Send to". It runs in the theme the SD.Next is in;
//! `tests/live.sh` runs it in both. Never in CI. Run with
//! `SDNEXT_URL=http://127.0.0.1:17860 cargo test -p scheduler-tests --test integration -- --ignored live_`
//! (set `server_rate_limit` to 0 on the kit first: the table makes ~100 generations).

use std::time::Duration;

use scheduler_tests::fixtures::workspace_root;
use scheduler_tests::harness::{E2eRun, HostProcess, prerequisite, require_browser};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs SDNEXT_URL (a running SD.Next), the built extension and Chromium"]
async fn live_the_extension_on_the_real_sdnext_page() {
    let sdnext = prerequisite(
        "SDNEXT_URL (a running SD.Next)",
        std::env::var("SDNEXT_URL").ok().filter(|u| !u.is_empty()),
        "bash ../shared/tools/sdnext/start.sh, then SDNEXT_URL=http://127.0.0.1:17860",
    );
    let root = workspace_root();
    require_browser(
        &root,
        "the built extension (target/extension)",
        &["target/extension/manifest.json"],
    );
    let data = tempfile::tempdir().expect("tempdir");
    let host = HostProcess::spawn(data.path(), std::slice::from_ref(&sdnext), &[]).await;
    let mut run = E2eRun::new(
        &root,
        "live.mjs",
        "target/extension",
        &host.url(),
        "live-results.json",
    );
    run.cmd.env("SDNEXT_URL", &sdnext);
    if let Ok(parts) = std::env::var("LIVE_PARTS") {
        run.cmd.env("PARTS", parts);
    }
    let status = run.run("live", Duration::from_secs(3600)).await;
    assert!(
        status.success(),
        "the live run failed ({status}); see the ok/FAIL lines above, {} and the host's stderr:\n{}",
        run.results.display(),
        host.server.stderr()
    );
}
