//! The opt-in live tier of the extension (issue 6, issue 17): the BUILT extension in headless
//! Chromium and in headless Firefox ESR on the REAL SD.Next page (`SDNEXT_URL`, e.g. the kit
//! of `../shared/tools/sdnext`), the REAL host (a separate process) driving that SD.Next. The
//! browser part is `tests/e2e/live.mjs`: what a person sees (the Control tab with Enqueue,
//! the panel, the popup), the Enqueue button at 1280×800 … 2560×1440 on txt2img, img2img
//! and Control in both placements, the right-click menu against SD.Next's synthetic clicks,
//! the fidelity table (each page setting: Enqueue, let the host run it, Generate with the
//! same values, compare the infotexts) and "Send to". It runs in the theme the SD.Next is in;
//! `tests/live.sh` runs it in both. And once per browser with SD.Next reached by a made-up
//! non-loopback name (`sdnext.test`, mapped to 127.0.0.1 by the browser), enabled from the
//! extension's popup (the test build: Chromium cannot accept a permission prompt in a test;
//! see `frontend/build.sh`). Never in CI. Run with
//! `SDNEXT_URL=http://127.0.0.1:17860 cargo test -p scheduler-tests --test integration -- --ignored live_`
//! (set `server_rate_limit` to 0 on the kit first: the table makes ~100 generations).

use std::time::Duration;

use scheduler_tests::fixtures::workspace_root;
use scheduler_tests::harness::{
    E2eRun, FIREFOX_TEST_ORIGIN, HostProcess, prerequisite, require_browser, require_firefox,
};

/// Which run: the browser, and whether SD.Next is reached by the non-loopback name.
#[derive(Clone, Copy)]
struct Live {
    firefox: bool,
    site: bool,
}

async fn live(which: Live) {
    let sdnext = prerequisite(
        "SDNEXT_URL (a running SD.Next)",
        std::env::var("SDNEXT_URL").ok().filter(|u| !u.is_empty()),
        "bash ../shared/tools/sdnext/start.sh, then SDNEXT_URL=http://127.0.0.1:17860",
    );
    let root = workspace_root();
    // The shipped build on loopback; the test build for the non-loopback name (its manifest
    // lets the test enable the site without a prompt).
    let ext = match (which.firefox, which.site) {
        (false, false) => "target/extension",
        (true, false) => "target/extension-firefox",
        (false, true) => "target/extension-test",
        (true, true) => "target/extension-firefox-test",
    };
    let manifest = format!("{ext}/manifest.json");
    let build = format!("the built extension ({ext})");
    if which.firefox {
        require_firefox(&root, &build, &[&manifest]);
    } else {
        require_browser(&root, &build, &[&manifest]);
    }
    let data = tempfile::tempdir().expect("tempdir");
    let allow: &[&str] = if which.firefox {
        &["--allow-origin", FIREFOX_TEST_ORIGIN]
    } else {
        &[]
    };
    let host = HostProcess::spawn(data.path(), std::slice::from_ref(&sdnext), allow).await;
    let results = if which.site {
        "live-site-results.json"
    } else {
        "live-results.json"
    };
    let mut run = E2eRun::new(&root, "live.mjs", ext, &host.url(), results);
    if which.firefox {
        run.in_firefox();
    }
    run.cmd.env("SDNEXT_URL", &sdnext);
    if which.site {
        // Enabled from the popup, then the button and an enqueue from that address.
        run.cmd
            .env("SITE_NAME", "sdnext.test")
            .env("PARTS", "look,menu");
    } else if let Ok(parts) = std::env::var("LIVE_PARTS") {
        run.cmd.env("PARTS", parts);
    }
    let what = format!(
        "live ({}{})",
        if which.firefox {
            "Firefox ESR"
        } else {
            "Chromium"
        },
        if which.site { ", sdnext.test" } else { "" }
    );
    let status = run.run(&what, Duration::from_secs(3600)).await;
    assert!(
        status.success(),
        "the {what} run failed ({status}); see the ok/FAIL lines above, {} and the host's stderr:\n{}",
        run.results.display(),
        host.server.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs SDNEXT_URL (a running SD.Next), the built extension and Chromium"]
async fn live_the_extension_on_the_real_sdnext_page() {
    live(Live {
        firefox: false,
        site: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs SDNEXT_URL (a running SD.Next), the built extension and Firefox ESR"]
async fn live_the_extension_on_the_real_sdnext_page_in_firefox() {
    live(Live {
        firefox: true,
        site: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs SDNEXT_URL (a running SD.Next), the built test extension and Chromium"]
async fn live_sdnext_at_a_non_loopback_name_enabled_from_the_popup() {
    live(Live {
        firefox: false,
        site: true,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs SDNEXT_URL (a running SD.Next), the built test extension and Firefox ESR"]
async fn live_sdnext_at_a_non_loopback_name_enabled_from_the_popup_in_firefox() {
    live(Live {
        firefox: true,
        site: true,
    })
    .await;
}
