//! Harness for tests that run the REAL binaries as child processes (SIGKILL and restart,
//! signals, the log, the command line, connection limits, the browser end to end), plus
//! helpers shared by every integration test: [`wait_until`], [`raw`] requests beside the
//! typed client, a [`CallbackReceiver`], [`refusing_address`], and the prerequisites
//! ([`available`]: fail under `CI=true`, skip elsewhere).
//!
//! - [`FakeProcess::spawn`] starts `fake-sdnext` (its options a [`FakeArgs`]),
//!   [`HostProcess::spawn`] starts
//!   `agent-scheduler serve`; both pass `--listen 127.0.0.1:0` (unless told otherwise) and read
//!   the first stdout line `listening on http://ADDR`. Children are killed on drop.
//! - `sigkill()` kills a child hard; `restart()` starts it again with the same arguments on the
//!   same port (the binaries bind with `SO_REUSEADDR`; the port is free between the two, so
//!   the few process restarts keep it: the in-process fake's outage never releases it).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use scheduler_api::client::{Client, Method};

use fake_sdnext::{FakeConfigPatch, FakeStats};

use crate::fake_args::FakeArgs;

/// Polls `check` until it returns `Some(value)` or `timeout` passes (then panics with
/// `what`). Polling interval starts at 2 ms and grows to 50 ms; this waits on a condition, it
/// never sleeps as synchronisation.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Whether this run is CI's (`CI=true`), where a missing prerequisite fails a test.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A test's prerequisite (a built extension, Chromium, the recorded fixtures in
/// `../shared`): returns its value when found. When it is missing, the test fails under
/// `CI=true` (CI installs every prerequisite: `bash .ci/setup`) and elsewhere prints
/// `skipped: …` with what is missing and how to get it, and gets `None` so it can return:
/// `let Some(dir) = available(…) else { return };`.
pub fn available<T>(what: &str, found: Option<T>, how: &str) -> Option<T> {
    if found.is_none() {
        if in_ci() {
            panic!("missing prerequisite in CI: {what} (get it with: {how})");
        }
        eprintln!("skipped: missing prerequisite: {what} (get it with: {how})");
    }
    found
}

/// What an opt-in tier (`#[ignore = "why"]`, run on request) needs, such as `SDNEXT_URL`:
/// returns it, or fails the test with what is missing and how to get it (whoever asked for
/// the tier wants it to run). Normal tests use [`available`] instead.
pub fn prerequisite<T>(what: &str, found: Option<T>, how: &str) -> T {
    match found {
        Some(v) => v,
        None => panic!(
            "missing prerequisite{}: {what} (get it with: {how})",
            if in_ci() { " in CI" } else { "" }
        ),
    }
}

/// The prerequisites of a browser end-to-end test, each [`available`]: the frontend build it
/// loads (`build`, named for the message, with its `files` relative to the workspace
/// `root`), playwright-core under `tests/e2e`, Chromium (`$CHROMIUM`, else
/// `/usr/bin/chromium`) and the binaries it starts. False: the test returns (skipped,
/// outside CI).
pub fn browser_available(root: &Path, build: &str, files: &[&str]) -> bool {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let built = files.iter().all(|f| root.join(f).is_file());
    binaries_available()
        && available(build, built.then_some(()), "bash frontend/build.sh").is_some()
        && available(
            "playwright-core",
            root.join("tests/e2e/node_modules/playwright-core")
                .is_dir()
                .then_some(()),
            "bash .ci/setup (npm ci --prefix tests/e2e)",
        )
        .is_some()
        && available(
            &format!("Chromium at {chromium}"),
            Path::new(&chromium).exists().then_some(()),
            "bash .ci/setup (apt-get install chromium)",
        )
        .is_some()
}

/// [`browser_available`] for an opt-in tier: each missing prerequisite fails the test.
pub fn require_browser(root: &Path, build: &str, files: &[&str]) {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let built = files.iter().all(|f| root.join(f).is_file());
    prerequisite(build, built.then_some(()), "bash frontend/build.sh");
    prerequisite(
        "playwright-core",
        root.join("tests/e2e/node_modules/playwright-core")
            .is_dir()
            .then_some(()),
        "bash .ci/setup (npm ci --prefix tests/e2e)",
    );
    prerequisite(
        &format!("Chromium at {chromium}"),
        Path::new(&chromium).exists().then_some(()),
        "bash .ci/setup (apt-get install chromium)",
    );
}

/// The prerequisites of a browser end-to-end test in Firefox ESR, each a [`prerequisite`]:
/// the Firefox build it loads (`build`, with its `files`), puppeteer-core under `tests/e2e`,
/// and Firefox ESR (`$FIREFOX`, else `/usr/bin/firefox-esr`).
pub fn require_firefox(root: &Path, build: &str, files: &[&str]) {
    let firefox = std::env::var("FIREFOX").unwrap_or_else(|_| "/usr/bin/firefox-esr".into());
    let built = files.iter().all(|f| root.join(f).is_file());
    prerequisite(build, built.then_some(()), "bash frontend/build.sh");
    prerequisite(
        "puppeteer-core",
        root.join("tests/e2e/node_modules/puppeteer-core")
            .is_dir()
            .then_some(()),
        "bash .ci/setup (npm ci --prefix tests/e2e)",
    );
    prerequisite(
        &format!("Firefox ESR at {firefox}"),
        Path::new(&firefox).exists().then_some(()),
        "bash .ci/setup (apt-get install firefox-esr)",
    );
}

/// [`browser_available`] for Firefox ESR: the Firefox build it loads, puppeteer-core under
/// `tests/e2e`, Firefox ESR (`$FIREFOX`, else `/usr/bin/firefox-esr`) and the binaries it
/// starts, each [`available`]. False: the test returns (skipped, outside CI).
pub fn firefox_available(root: &Path, build: &str, files: &[&str]) -> bool {
    let firefox = std::env::var("FIREFOX").unwrap_or_else(|_| "/usr/bin/firefox-esr".into());
    let built = files.iter().all(|f| root.join(f).is_file());
    binaries_available()
        && available(build, built.then_some(()), "bash frontend/build.sh").is_some()
        && available(
            "puppeteer-core",
            root.join("tests/e2e/node_modules/puppeteer-core")
                .is_dir()
                .then_some(()),
            "bash .ci/setup (npm ci --prefix tests/e2e)",
        )
        .is_some()
        && available(
            &format!("Firefox ESR at {firefox}"),
            Path::new(&firefox).exists().then_some(()),
            "bash .ci/setup (apt-get install firefox-esr)",
        )
        .is_some()
}

/// The extension's internal UUID in the Firefox test profiles (`tests/e2e/firefox.mjs` sets
/// it with the pref `extensions.webextensions.uuids`), so a host can be started with
/// `--allow-origin` [`FIREFOX_TEST_ORIGIN`] before the browser exists.
pub const FIREFOX_TEST_UUID: &str = "5d9c2b7e-0a41-4c63-9f1e-3b8a6d2c4e10";
/// The Firefox test profiles' extension origin.
pub const FIREFOX_TEST_ORIGIN: &str = "moz-extension://5d9c2b7e-0a41-4c63-9f1e-3b8a6d2c4e10";

/// One `tests/e2e` node script run: the screenshot folder (`target/screenshots`), the script's
/// results file there (removed first), and the command with the variables every script reads
/// (`EXT_DIR`, `HOST_URL`, `SHOT_DIR`, `RESULTS`); the caller adds its own.
pub struct E2eRun {
    /// The node command, ready for more `.env(..)`.
    pub cmd: Command,
    /// Where the script writes its screenshots.
    pub shots: PathBuf,
    /// The JSON the script writes at the end (`figures` and checks).
    pub results: PathBuf,
}

impl E2eRun {
    /// `script` under `tests/e2e`, loading the extension build `ext` (relative to `root`),
    /// talking to the host at `host_url`, writing `results` into the screenshot folder.
    pub fn new(root: &Path, script: &str, ext: &str, host_url: &str, results: &str) -> E2eRun {
        let shots = root.join("target/screenshots");
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        let results = shots.join(results);
        let _ = std::fs::remove_file(&results);
        let mut cmd = Command::new("node");
        cmd.arg(script)
            .current_dir(root.join("tests/e2e"))
            .env("EXT_DIR", root.join(ext))
            .env("HOST_URL", host_url)
            .env("SHOT_DIR", &shots)
            .env("RESULTS", &results)
            .kill_on_drop(true);
        E2eRun {
            cmd,
            shots,
            results,
        }
    }

    /// The same run in Firefox ESR (`BROWSER=firefox`, the extension's uuid): its
    /// screenshots and results in `target/screenshots/firefox`, so both browsers' runs can
    /// go at once.
    pub fn in_firefox(&mut self) -> &mut Self {
        let shots = self.shots.join("firefox");
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        let results = shots.join(self.results.file_name().expect("results file"));
        let _ = std::fs::remove_file(&results);
        self.cmd
            .env("BROWSER", "firefox")
            .env("FIREFOX_UUID", FIREFOX_TEST_UUID)
            .env("SHOT_DIR", &shots)
            .env("RESULTS", &results);
        self.shots = shots;
        self.results = results;
        self
    }

    /// Runs the script within `limit` and prints its figures (`what`: the run's name);
    /// the caller asserts on the exit status.
    pub async fn run(&mut self, what: &str, limit: Duration) -> std::process::ExitStatus {
        let status = tokio::time::timeout(limit, self.cmd.status())
            .await
            .unwrap_or_else(|_| panic!("the {what} run finished within {} s", limit.as_secs()))
            .expect("run node");
        if let Ok(text) = std::fs::read_to_string(&self.results) {
            let v: Value = serde_json::from_str(&text).unwrap_or_default();
            eprintln!("{what} figures: {}", v["figures"]);
        }
        status
    }
}

/// Like [`wait_until`] for a boolean condition.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_until(what, timeout, || {
        let f = check();
        async move { f.await.then_some(()) }
    })
    .await
}

/// An address where connecting is refused, held: a socket bound to `127.0.0.1:0` that never
/// listens, so no other socket can take the port while the returned socket lives (binding a
/// port, closing it and hoping nobody takes it would race with the other tests).
pub fn refusing_address() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind 127.0.0.1:0");
    let addr = socket.local_addr().expect("its address");
    (socket, addr)
}

/// The directory holding this build's binaries (`target/<profile>/`), derived from the
/// running test executable (`target/<profile>/deps/<test>`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Whether the binaries the process tests start are built (`cargo build --workspace
/// --bins`), an [`available`] prerequisite: false, the test returns (outside CI).
pub fn binaries_available() -> bool {
    let dir = bin_dir();
    ["agent-scheduler", "fake-sdnext"].iter().all(|name| {
        let p = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        available(
            &format!("the {name} binary at {}", p.display()),
            p.is_file().then_some(()),
            "cargo build --workspace --bins",
        )
        .is_some()
    })
}

/// Path of the `agent-scheduler` binary; panics with a hint when it is not built.
pub fn host_binary() -> PathBuf {
    let p = bin_dir().join(format!("agent-scheduler{}", std::env::consts::EXE_SUFFIX));
    if !p.is_file() {
        panic!(
            "{} is missing: build it first: cargo build --workspace --bins",
            p.display()
        );
    }
    p
}

/// Path of the `fake-sdnext` binary (crate `fake-sdnext`, found beside the test
/// executable); panics with a hint when it is not built.
pub fn fake_binary() -> PathBuf {
    let p = bin_dir().join(format!("fake-sdnext{}", std::env::consts::EXE_SUFFIX));
    if !p.is_file() {
        panic!(
            "{} is missing: build it first: cargo build --workspace --bins",
            p.display()
        );
    }
    p
}

/// A child process that announced `listening on http://ADDR` on its first stdout line.
pub struct ChildServer {
    name: String,
    program: PathBuf,
    /// Arguments without the `--listen` pair (added per start).
    args: Vec<String>,
    /// Environment variables set for the child.
    envs: Vec<(String, String)>,
    child: Option<Child>,
    addr: SocketAddr,
    stderr_log: Arc<Mutex<Vec<String>>>,
}

impl ChildServer {
    /// Starts `program args… --listen listen` and waits (up to 30 s) for the announcement.
    pub async fn start(
        name: &str,
        program: &Path,
        args: Vec<String>,
        listen: &str,
    ) -> std::io::Result<ChildServer> {
        Self::start_with_env(name, program, args, Vec::new(), listen).await
    }

    /// Like [`Self::start`] with environment variables for the child.
    pub async fn start_with_env(
        name: &str,
        program: &Path,
        args: Vec<String>,
        envs: Vec<(String, String)>,
        listen: &str,
    ) -> std::io::Result<ChildServer> {
        let stderr_log = Arc::new(Mutex::new(Vec::new()));
        let (child, addr) = Self::launch(name, program, &args, &envs, listen, &stderr_log).await?;
        Ok(ChildServer {
            name: name.to_string(),
            program: program.to_path_buf(),
            args,
            envs,
            child: Some(child),
            addr,
            stderr_log,
        })
    }

    async fn launch(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
        listen: &str,
        stderr_log: &Arc<Mutex<Vec<String>>>,
    ) -> std::io::Result<(Child, SocketAddr)> {
        let mut cmd = Command::new(program);
        // The host reads AGENT_SCHEDULER_* settings from the environment: tests pass
        // everything explicitly.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("AGENT_SCHEDULER_") {
                cmd.env_remove(&k);
            }
        }
        cmd.envs(envs.iter().map(|(k, v)| (k, v)));
        cmd.args(args)
            .arg("--listen")
            .arg(listen)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        // Keep draining stderr so the child never blocks on a full pipe.
        let log = stderr_log.clone();
        let stderr_task = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                let mut g = log.lock().unwrap_or_else(|e| e.into_inner());
                g.push(l);
                if g.len() > 2000 {
                    g.remove(0);
                }
            }
        });
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        // Drain the rest of stdout in the background.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let line = match first {
            Ok(Ok(Some(l))) => l,
            other => {
                // Let the child finish writing its reason before reading it.
                if !matches!(other, Ok(Ok(None))) {
                    let _ = child.start_kill();
                }
                let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
                let _ = tokio::time::timeout(Duration::from_secs(10), stderr_task).await;
                let err = stderr_log.lock().map(|g| g.join("\n")).unwrap_or_default();
                return Err(std::io::Error::other(format!(
                    "{name} did not announce its address ({other:?}); stderr:\n{err}"
                )));
            }
        };
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|a| a.trim_end_matches('/').parse::<SocketAddr>().ok())
            .ok_or_else(|| {
                std::io::Error::other(format!("{name}: unexpected first line {line:?}"))
            })?;
        Ok((child, addr))
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` (an unspecified listen address is reached through loopback).
    pub fn url(&self) -> String {
        let mut a = self.addr;
        if a.ip().is_unspecified() {
            a.set_ip(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        }
        format!("http://{a}")
    }

    /// The child's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// What the child wrote to stderr so far (last 2000 lines).
    pub fn stderr(&self) -> String {
        self.stderr_log
            .lock()
            .map(|g| g.join("\n"))
            .unwrap_or_default()
    }

    /// Kills the child with SIGKILL and waits for it to exit.
    pub async fn sigkill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// Sends SIGTERM (a graceful stop) and waits up to `within` for the child to exit;
    /// returns how long it took, or `None` when it was still running at the deadline.
    pub async fn terminate(&mut self, within: Duration) -> Option<Duration> {
        let pid = self.pid()?;
        let t0 = Instant::now();
        let sent = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid}");
        let child = self.child.as_mut()?;
        match tokio::time::timeout(within, child.wait()).await {
            Ok(_) => {
                self.child = None;
                Some(t0.elapsed())
            }
            Err(_) => None,
        }
    }

    /// Starts the same program with the same arguments on the same port (after
    /// [`Self::sigkill`]; kills a running child first).
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.sigkill().await;
        let listen = self.addr.to_string();
        // The port was just released; retry briefly if the OS has not freed it yet.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Self::launch(
                &self.name,
                &self.program,
                &self.args,
                &self.envs,
                &listen,
                &self.stderr_log,
            )
            .await
            {
                Ok((child, addr)) => {
                    self.child = Some(child);
                    self.addr = addr;
                    return Ok(());
                }
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether the child is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
    }
}

/// The `fake-sdnext` binary as a child process.
pub struct FakeProcess {
    /// The child server (address, sigkill, restart).
    pub server: ChildServer,
    http: reqwest::Client,
}

impl FakeProcess {
    /// Starts `fake-sdnext ARGS --listen 127.0.0.1:0`, e.g.
    /// `FakeArgs::new().step_ms(20).checkpoints(&["a", "b"])` (or the binary's words).
    pub async fn spawn(args: impl Into<FakeArgs>) -> FakeProcess {
        Self::spawn_on(args, "127.0.0.1:0").await
    }

    /// Starts it on a given address (e.g. the port of an earlier instance).
    pub async fn spawn_on(args: impl Into<FakeArgs>, listen: &str) -> FakeProcess {
        let args = args.into().words().to_vec();
        let server = ChildServer::start("fake-sdnext", &fake_binary(), args, listen)
            .await
            .expect("start fake-sdnext");
        FakeProcess {
            server,
            http: reqwest::Client::new(),
        }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// `GET /fake/stats`.
    pub async fn stats(&self) -> FakeStats {
        self.http
            .get(format!("{}/fake/stats", self.url()))
            .send()
            .await
            .expect("GET /fake/stats")
            .json()
            .await
            .expect("stats JSON")
    }

    /// `POST /fake/config`.
    pub async fn configure(&self, patch: &FakeConfigPatch) {
        let r = self
            .http
            .post(format!("{}/fake/config", self.url()))
            .json(patch)
            .send()
            .await
            .expect("POST /fake/config");
        assert!(r.status().is_success(), "POST /fake/config: {}", r.status());
    }

    /// SIGKILL.
    pub async fn sigkill(&mut self) {
        self.server.sigkill().await;
    }

    /// Same arguments, same port (state starts fresh, like a restarted SD.Next).
    pub async fn restart(&mut self) {
        self.server.restart().await.expect("restart fake-sdnext");
    }
}

/// The `agent-scheduler` binary as a child process (`agent-scheduler serve`).
pub struct HostProcess {
    /// The child server (address, sigkill, restart).
    pub server: ChildServer,
    /// The typed client of `scheduler-api` for this host (no token).
    pub client: Client,
    data_dir: PathBuf,
}

impl HostProcess {
    /// Starts `agent-scheduler serve --data-dir DIR --backend URL… EXTRA --listen 127.0.0.1:0`.
    pub async fn spawn(data_dir: &Path, backends: &[String], extra_args: &[&str]) -> HostProcess {
        Self::spawn_on(data_dir, backends, extra_args, "127.0.0.1:0").await
    }

    /// Like [`Self::spawn`] on another listen address (e.g. `0.0.0.0:0`, which needs
    /// `--token`); the client talks to it through 127.0.0.1.
    pub async fn spawn_on(
        data_dir: &Path,
        backends: &[String],
        extra_args: &[&str],
        listen: &str,
    ) -> HostProcess {
        Self::spawn_full(data_dir, backends, extra_args, listen, &[]).await
    }

    /// Like [`Self::spawn`] with environment variables (e.g. `HTTP_PROXY`).
    pub async fn spawn_with_env(
        data_dir: &Path,
        backends: &[String],
        extra_args: &[&str],
        envs: &[(&str, &str)],
    ) -> HostProcess {
        Self::spawn_full(data_dir, backends, extra_args, "127.0.0.1:0", envs).await
    }

    async fn spawn_full(
        data_dir: &Path,
        backends: &[String],
        extra_args: &[&str],
        listen: &str,
        envs: &[(&str, &str)],
    ) -> HostProcess {
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--data-dir".into(),
            data_dir.display().to_string(),
        ];
        for b in backends {
            args.push("--backend".into());
            args.push(b.clone());
        }
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let envs = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let server =
            ChildServer::start_with_env("agent-scheduler", &host_binary(), args, envs, listen)
                .await
                .expect("start agent-scheduler");
        let client = Client::new(&server.url());
        HostProcess {
            server,
            client,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// SIGKILL.
    pub async fn sigkill(&mut self) {
        self.server.sigkill().await;
    }

    /// Same arguments, same port, same data directory.
    pub async fn restart(&mut self) {
        self.server
            .restart()
            .await
            .expect("restart agent-scheduler");
        self.client = Client::new(&self.server.url());
    }
}

/// A status code plus a JSON body: the answer of a [`raw`] request.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body as JSON (`Value::Null` when empty or not JSON).
    pub body: Value,
}

impl Answer {
    /// Deserialises the body, panicking with the body on failure.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.body.clone())
            .unwrap_or_else(|e| panic!("cannot decode {}: {e}", self.body))
    }
}

/// A request the typed client does not make (malformed input, a deprecated alias, a raw
/// route): any method and path under the host, with an optional JSON body; the status and
/// body come back whatever they are.
pub async fn raw(c: &Client, method: Method, path: &str, body: Option<&Value>) -> Answer {
    let mut r = c.raw(method, path);
    if let Some(b) = body {
        r = r.json(b).expect("a JSON body");
    }
    let resp = r.send().await.expect("the host answers");
    Answer {
        status: resp.status,
        body: resp.json().unwrap_or(Value::Null),
    }
}

/// Waits until task `id` reaches `status` (panics after `timeout`).
pub async fn wait_task_status(
    c: &Client,
    id: &str,
    status: scheduler_api::TaskStatus,
    timeout: Duration,
) -> scheduler_api::Task {
    wait_until(
        &format!("task {id} to be {}", status.as_str()),
        timeout,
        || async { c.task(id).await.ok().filter(|t| t.status == status) },
    )
    .await
}

/// Fills `{name}` placeholders of a route template, e.g.
/// `fill(routes::TASK, &[("id", "abc")])`.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (k, v) in values {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// One multipart POST received by a [`CallbackReceiver`].
#[derive(Debug, Clone)]
pub struct CallbackPost {
    /// Request path and query.
    pub path: String,
    /// Request headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Multipart parts in order.
    pub parts: Vec<CallbackPart>,
}

/// One part of a multipart callback.
#[derive(Debug, Clone)]
pub struct CallbackPart {
    /// The part's field name.
    pub name: String,
    /// Its file name, if any.
    pub file_name: Option<String>,
    /// Its content type, if any.
    pub content_type: Option<String>,
    /// Its bytes.
    pub data: Vec<u8>,
}

impl CallbackPost {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A tiny HTTP server recording multipart POSTs (any path; a request that is not multipart is
/// recorded without parts, one whose multipart body was cut off is not recorded). It answers
/// with the status set by [`CallbackReceiver::set_status`] (200 by default), so delivery
/// retries can be tested.
pub struct CallbackReceiver {
    addr: SocketAddr,
    posts: Arc<Mutex<Vec<CallbackPost>>>,
    status: Arc<Mutex<u16>>,
    behaviour: Arc<Behaviour>,
    task: tokio::task::JoinHandle<()>,
}

/// How a [`CallbackReceiver`] misbehaves.
struct Behaviour {
    /// While true, requests are held without an answer.
    hang: tokio::sync::watch::Sender<bool>,
    /// The size of the answer body, MiB (streamed).
    body_mib: Mutex<u64>,
    /// Requests that arrived (answered or not).
    arrivals: Mutex<u32>,
}

impl CallbackReceiver {
    /// Binds 127.0.0.1:0 and serves in the background.
    pub async fn start() -> CallbackReceiver {
        use axum::extract::{Multipart, Request, State};
        use axum::http::StatusCode;

        type Shared = (
            Arc<Mutex<Vec<CallbackPost>>>,
            Arc<Mutex<u16>>,
            Arc<Behaviour>,
        );
        async fn handle(
            State((posts, status, behaviour)): State<Shared>,
            req: Request,
        ) -> axum::response::Response {
            *behaviour.arrivals.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            let mut hang = behaviour.hang.subscribe();
            while *hang.borrow_and_update() {
                if hang.changed().await.is_err() {
                    break;
                }
            }
            let path = req
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default();
            let headers = req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        v.to_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            let mut parts = Vec::new();
            use axum::extract::FromRequest;
            if let Ok(mut mp) = Multipart::from_request(req, &()).await {
                loop {
                    let field = match mp.next_field().await {
                        Ok(Some(f)) => f,
                        Ok(None) => break,
                        // A multipart body cut off (its sender died or gave up): not a
                        // delivery, so not recorded (it counts as an arrival).
                        Err(_) => return axum::response::Response::new(axum::body::Body::empty()),
                    };
                    let name = field.name().unwrap_or("").to_string();
                    let file_name = field.file_name().map(str::to_string);
                    let content_type = field.content_type().map(str::to_string);
                    let Ok(data) = field.bytes().await else {
                        return axum::response::Response::new(axum::body::Body::empty());
                    };
                    parts.push(CallbackPart {
                        name,
                        file_name,
                        content_type,
                        data: data.to_vec(),
                    });
                }
            }
            posts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(CallbackPost {
                    path,
                    headers,
                    parts,
                });
            let code = *status.lock().unwrap_or_else(|e| e.into_inner());
            let mib = *behaviour.body_mib.lock().unwrap_or_else(|e| e.into_inner());
            let chunk = axum::body::Bytes::from(vec![b'x'; 1 << 20]);
            let body = axum::body::Body::from_stream(futures::stream::iter(
                std::iter::repeat_n(chunk, mib as usize).map(Ok::<_, std::io::Error>),
            ));
            let mut r = axum::response::Response::new(body);
            *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
            r
        }

        let posts = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(Mutex::new(200u16));
        let behaviour = Arc::new(Behaviour {
            hang: tokio::sync::watch::channel(false).0,
            body_mib: Mutex::new(0),
            arrivals: Mutex::new(0),
        });
        let app = axum::Router::new().fallback(handle).with_state((
            posts.clone(),
            status.clone(),
            behaviour.clone(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind callback receiver");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        CallbackReceiver {
            addr,
            posts,
            status,
            behaviour,
            task,
        }
    }

    /// Holds every request without an answer while `on` (a hanging receiver).
    pub fn set_hang(&self, on: bool) {
        self.behaviour.hang.send_replace(on);
    }

    /// Answers with a body of `mib` MiB (a huge receiver).
    pub fn set_body_mib(&self, mib: u64) {
        *self
            .behaviour
            .body_mib
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = mib;
    }

    /// Requests that arrived so far (answered or still held).
    pub fn arrivals(&self) -> u32 {
        *self
            .behaviour
            .arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The status code answered from now on.
    pub fn set_status(&self, code: u16) {
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = code;
    }

    /// Everything received so far.
    pub fn posts(&self) -> Vec<CallbackPost> {
        self.posts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until at least `n` posts arrived and returns them.
    pub async fn wait_for_posts(&self, n: usize, timeout: Duration) -> Vec<CallbackPost> {
        wait_until(&format!("{n} callback POSTs"), timeout, || async {
            let p = self.posts();
            (p.len() >= n).then_some(p)
        })
        .await
    }
}

impl Drop for CallbackReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
