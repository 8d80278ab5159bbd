//! A fake SD.Next server that follows the behaviour recorded from a real one
//! (`../shared/reference/sdnext-api.md` §1 and §4, fixtures in `../shared/fixtures/sdnext/api`).
//!
//! What it models, quirks included:
//! - `/sdapi/v1/txt2img` and `/img2img` block for `steps × step_ms` per batch and are serialised
//!   by one global lock (like SD.Next's `queue_lock`, which is not FIFO; ours happens to be);
//!   live `/progress` while they run.
//! - The image encoding follows only the global option `samples_format`, which starts as `jpg`
//!   and changes only through `POST /sdapi/v1/options`.
//! - 200 with `images: []` and `info: ""` when no model is loaded or the request's top-level
//!   `sd_model_checkpoint` is unknown; an unknown checkpoint posted to `/options` unloads the model.
//! - `override_settings.sd_model_checkpoint` loads the model for one job and loads the old one
//!   back afterwards (two loads: the double load the host must avoid).
//! - `/interrupt` answers 204; the job stops at its next step and returns one latent-sized
//!   placeholder image with two infotexts. An interrupt can be configured to get lost.
//! - Error bodies and status codes as recorded (404 sampler, 422 validation, 400 img2img, 401).
//! - The lists SD.Next's clients read: samplers, VAEs, upscalers, ControlNet models
//!   (`/controlnets?model_type=all`), and `/openapi.json` when configured (else 404).
//!
//! Test hooks live under `/fake/…`: `GET /fake/stats`, `DELETE /fake/stats`, `POST /fake/config`.
//! In process, [`FakeHandle::go_down`] and [`FakeHandle::come_back`] switch an outage on the
//! same port (connecting refused, open connections cut), and [`FakeHandle::release`] lets a
//! held answer or checkpoint load go ([`Fault::Hold`], [`FakeConfigPatch::hold_loads`]): a
//! test orders a race by holding one side until it releases it, never by sleeping.

mod args;
mod imaging;
mod listener;
mod routes;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use args::USAGE;
pub use imaging::{decode_png_text, image_dimensions};

/// Start-up configuration of the fake.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Address to bind (port 0 picks a free port). Ignored by [`FakeSdNext::start_on`].
    pub listen: SocketAddr,
    /// Simulated time per sampling step, in milliseconds.
    pub step_ms: u64,
    /// Simulated time of a checkpoint load, in milliseconds.
    pub load_ms: u64,
    /// Checkpoint titles the server lists (`anime/a` style folders allowed; an optional
    /// ` [hash]` suffix sets the short hash).
    pub checkpoints: Vec<String>,
    /// The checkpoint loaded at start (`None`: no model loaded).
    pub loaded: Option<String>,
    /// HTTP Basic credentials required on `/sdapi/*` when set.
    pub auth: Option<(String, String)>,
    /// The first interrupt of each job is ignored (an interrupt lost to a nested `begin()`).
    pub lose_first_interrupt: bool,
    /// VAE names listed by `/sdapi/v1/sd-vae`.
    pub vaes: Vec<String>,
    /// Bounds on the work of one generation request (for fuzzing: a fuzzer's numbers must not
    /// make the fake allocate gigabytes or sample for hours); beyond them txt2img/img2img
    /// answer 422 in FastAPI's shape, as SD.Next's own validation does.
    pub limits: Option<Limits>,
    /// The API document `GET /openapi.json` serves (SD.Next's, with its request models);
    /// `None`: 404, as an SD.Next started without its docs (`SD_NODOCS`).
    pub openapi: Option<serde_json::Value>,
}

/// Bounds on one generation request; see [`FakeConfig::limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `width` / `height`.
    pub max_side: i64,
    /// Largest `steps`.
    pub max_steps: i64,
    /// Largest `n_iter * batch_size`.
    pub max_images: i64,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            step_ms: 20,
            load_ms: 20,
            checkpoints: vec!["a".into(), "b".into()],
            loaded: Some("a".into()),
            auth: None,
            lose_first_interrupt: false,
            vaes: Vec::new(),
            limits: None,
            openapi: None,
        }
    }
}

impl FakeConfig {
    /// A config with the given checkpoints, the first one loaded, 1 ms per step.
    pub fn with_checkpoints(checkpoints: &[&str]) -> Self {
        FakeConfig {
            step_ms: 1,
            load_ms: 1,
            checkpoints: checkpoints.iter().map(|s| s.to_string()).collect(),
            loaded: checkpoints.first().map(|s| s.to_string()),
            ..FakeConfig::default()
        }
    }
}

/// Run-time changes accepted by `POST /fake/config` (every field optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FakeConfigPatch {
    /// New time per sampling step, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_ms: Option<u64>,
    /// New checkpoint load time, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_ms: Option<u64>,
    /// Toggle losing the first interrupt of each job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lose_first_interrupt: Option<bool>,
    /// The next N generation requests answer 200 with no images (`true` = 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_next_with_empty: Option<CountOrBool>,
    /// The next N generation requests answer 429 (`true` = 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_next: Option<CountOrBool>,
    /// `Retry-After` seconds sent with those 429 answers (none when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_retry_after: Option<u64>,
    /// Replace the checkpoint list (takes effect at once, like a refresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<Vec<String>>,
    /// Replace the fault rules (an empty list clears them). A generation request runs into
    /// the first rule that matches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Vec<FaultRule>>,
    /// Ends every hung job (`hang_*` faults): progress shows idle again and the hung
    /// requests answer 500 (nobody is listening any more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_hangs: Option<bool>,
    /// `/sdapi/v1/control` answers 500 to requests without `xyz` (SD.Next `058a7f0`'s bug;
    /// on by default, like the recorded server); `false` is a fixed SD.Next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_xyz_bug: Option<bool>,
    /// Replace the VAE list (`/sdapi/v1/sd-vae`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vaes: Option<Vec<String>>,
    /// Replace the document `GET /openapi.json` serves (a newer SD.Next's request models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openapi: Option<serde_json::Value>,
    /// The next N checkpoint loads (`POST /sdapi/v1/options` with a `sd_model_checkpoint`
    /// to load; `true` = 1) wait, holding SD.Next's global lock, until released as
    /// `load <title>` ([`FakeStats::held`]); then they load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_loads: Option<CountOrBool>,
    /// Lets the held answers and loads with this name go (a prompt, or `load <title>`;
    /// `*`: every one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_held: Option<String>,
}

/// How a generation request misbehaves (`POST /fake/config {"faults": [...]}`): the faults
/// the host must survive (issue 7). Modes are written `{"mode": "drop_mid_body"}`,
/// `{"mode": "status", "status": 502}`, …
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Fault {
    /// 200 with a `Content-Length`, half of the body, then the connection closes.
    DropMidBody,
    /// The connection closes before any answer (as when the process behind a proxy dies).
    Reset,
    /// A gateway's answer: 502, 503 or 504 with an HTML body.
    Status {
        /// The status code.
        status: u16,
    },
    /// 200 with a body that is not JSON.
    GarbageJson,
    /// The job starts and runs its steps, then the request never answers; `/interrupt`
    /// ends the job (`/progress` idle) but the request still never answers.
    HangHonoursInterrupt,
    /// The job starts and the request never answers; `/progress` shows the job stuck for
    /// ever and `/interrupt` is ignored (until `release_hangs`).
    HangIgnoresInterrupt,
    /// The job starts but its progress never advances (step 1 of N for ever); an interrupt
    /// ends it and the request answers as an interrupted job does.
    FrozenProgress,
    /// 200 with one image of `mib` MiB of base64 (streamed, so the fake stays small).
    HugeAnswer {
        /// Size of the image field, MiB.
        mib: u64,
    },
    /// The job runs its steps, then holds at its last step (`/progress` shows it running)
    /// until the test releases its prompt ([`FakeHandle::release`], `release_held`); then
    /// it answers as any job does (interrupted, with the placeholder image, when an
    /// interrupt came meanwhile). The request's connection may close meanwhile: the job
    /// goes on, as SD.Next's does.
    Hold,
}

/// When a [`Fault`] applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// The fault.
    pub fault: Fault,
    /// Only requests with this prompt (every request when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// How many requests it applies to (for ever when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

impl FaultRule {
    /// `fault` for every request with `prompt` (a poison task).
    pub fn poison(prompt: &str, fault: Fault) -> FaultRule {
        FaultRule {
            fault,
            prompt: Some(prompt.to_owned()),
            count: None,
        }
    }
}

/// A count given either as a number or as a boolean (`true` = 1, `false` = 0).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum CountOrBool {
    /// `true` / `false`.
    Bool(bool),
    /// A count.
    Count(u32),
}

impl CountOrBool {
    /// The count.
    pub fn count(self) -> u32 {
        match self {
            CountOrBool::Bool(b) => u32::from(b),
            CountOrBool::Count(n) => n,
        }
    }
}

/// One request seen by the fake.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Microseconds since the fake started (monotonic).
    pub t_us: u64,
}

/// One generation request (txt2img/img2img) and its timing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GenerationRecord {
    /// `txt2img` or `img2img`.
    pub kind: String,
    /// The request's prompt.
    pub prompt: String,
    /// The checkpoint title the job ran on (`None` when no model was loaded).
    pub checkpoint: Option<String>,
    /// When the request arrived, µs since start.
    pub received_us: u64,
    /// When it got the global lock and sampling began, µs since start.
    pub started_us: u64,
    /// When the response was handed to the HTTP layer, µs since start.
    pub responded_us: u64,
    /// Images returned.
    pub images: usize,
    /// Whether the job was interrupted.
    pub interrupted: bool,
    /// Whether the job failed with an empty answer (no model, unknown checkpoint, injected).
    pub empty: bool,
}

/// Everything `GET /fake/stats` reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FakeStats {
    /// Every request in arrival order (hooks under `/fake/` excluded).
    pub requests: Vec<RequestRecord>,
    /// Number of checkpoint loads (start-up load not counted).
    pub checkpoint_loads: u32,
    /// Titles loaded, in order (each entry is one load).
    pub loads: Vec<String>,
    /// Number of unloads caused by an unknown checkpoint name.
    pub unloads: u32,
    /// Prompts in the order their generation STARTED (got the lock).
    pub prompts: Vec<String>,
    /// Generations in the order they finished.
    pub generations: Vec<GenerationRecord>,
    /// `POST /sdapi/v1/options` bodies in order.
    pub options_posts: Vec<serde_json::Map<String, serde_json::Value>>,
    /// Interrupt requests received.
    pub interrupts: u32,
    /// Interrupts ignored because of `lose_first_interrupt`.
    pub interrupts_lost: u32,
    /// Prompts of the generation requests that ran into a fault rule, in order.
    #[serde(default)]
    pub faulted_prompts: Vec<String>,
    /// Highest number of generation jobs sampling at the same time (must stay 1).
    pub max_concurrent_jobs: u32,
    /// What is held now ([`Fault::Hold`]: the prompt; a held checkpoint load:
    /// `load <title>`), in the order each began to wait.
    #[serde(default)]
    pub held: Vec<String>,
    /// Checkpoint currently loaded.
    pub loaded: Option<String>,
    /// Current global `samples_format` (`None` = not set = jpg).
    pub samples_format: Option<String>,
    /// `POST /sdapi/v1/control` requests in arrival order.
    #[serde(default)]
    pub control_requests: Vec<ControlRecord>,
}

/// One `/sdapi/v1/control` request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ControlRecord {
    /// Whether it carried an `xyz` object.
    pub had_xyz: bool,
    /// Units in its `control` list.
    pub units: usize,
    /// Whether it got the 500 of the `xyz` bug.
    pub refused: bool,
}

impl FakeStats {
    /// Idle gaps in µs: for consecutive generations n, n+1 (in response order), the time from
    /// the response of n to the arrival of request n+1 (negative values, i.e. a request that
    /// was already waiting, are reported as 0).
    pub fn idle_gaps_us(&self) -> Vec<u64> {
        let mut gens: Vec<&GenerationRecord> = self.generations.iter().collect();
        gens.sort_by_key(|g| g.responded_us);
        gens.windows(2)
            .map(|w| w[1].received_us.saturating_sub(w[0].responded_us))
            .collect()
    }

    /// Requests whose path starts with `prefix`.
    pub fn count_requests(&self, method: &str, prefix: &str) -> usize {
        self.requests
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(prefix))
            .count()
    }
}

/// The fake server. Use [`FakeSdNext::start`].
pub struct FakeSdNext;

impl FakeSdNext {
    /// Binds `config.listen` (with `SO_REUSEADDR`; port 0 picks a free port, then holds it
    /// through outages) and serves in a background task.
    pub async fn start(config: FakeConfig) -> std::io::Result<FakeHandle> {
        let listener = listener::bind(config.listen)?;
        Self::start_on(listener, config).await
    }

    /// Serves on an already bound listener in a background task. (An outage,
    /// [`FakeHandle::go_down`], keeps the port only when it was bound explicitly, as
    /// [`FakeSdNext::start`] does.)
    pub async fn start_on(
        listener: tokio::net::TcpListener,
        config: FakeConfig,
    ) -> std::io::Result<FakeHandle> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(state::Shared::new(&config));
        let app = routes::router(shared.clone());
        let socket = Arc::new(listener.into_std()?);
        let (line, line_rx) = tokio::sync::watch::channel(listener::Line { up: true, epoch: 0 });
        let switchable = listener::Switchable {
            socket: socket.clone(),
            line: line_rx,
            current: None,
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(switchable, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(FakeHandle {
            addr,
            shared,
            socket,
            line,
            shutdown: Some(tx),
            task,
        })
    }
}

/// A running in-process fake. Dropping it stops the server.
pub struct FakeHandle {
    addr: SocketAddr,
    shared: Arc<state::Shared>,
    socket: Arc<std::net::TcpListener>,
    line: tokio::sync::watch::Sender<listener::Line>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> FakeStats {
        self.shared.stats()
    }

    /// Clears the statistics.
    pub fn reset_stats(&self) {
        self.shared.reset_stats();
    }

    /// Applies a run-time configuration change.
    pub fn configure(&self, patch: &FakeConfigPatch) {
        self.shared.apply_patch(patch);
    }

    /// An outage: the fake stops listening (connecting is refused) but keeps its port, every
    /// open connection is cut and the running job is interrupted; its state (checkpoints,
    /// statistics, faults) is kept for [`Self::come_back`].
    pub fn go_down(&self) {
        self.shared.interrupt_all();
        self.line.send_modify(|l| {
            l.up = false;
            l.epoch += 1;
        });
        listener::stop_listening(&self.socket).expect("the fake stops listening");
    }

    /// Ends an outage: listening again on the same port.
    pub fn come_back(&self) {
        listener::listen_again(&self.socket).expect("the fake listens again");
        self.line.send_modify(|l| l.up = true);
    }

    /// Whether the fake is listening (not in an outage).
    pub fn is_up(&self) -> bool {
        self.line.borrow().up
    }

    /// What is held now (see [`FakeStats::held`]).
    pub fn held(&self) -> Vec<String> {
        self.shared.stats().held
    }

    /// Lets the held answers and loads named `name` go (a prompt, or `load <title>`).
    pub fn release(&self, name: &str) {
        self.shared.release(name);
    }

    /// Lets everything held go.
    pub fn release_all(&self) {
        self.shared.release("*");
    }

    /// Stops the server and waits until the listener is closed. Open connections are closed
    /// when their in-flight requests end (a running job is interrupted first).
    pub async fn stop(mut self) {
        self.shared.interrupt_all();
        self.shared.release("*");
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for FakeHandle {
    fn drop(&mut self) {
        self.shared.release("*");
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.abort();
    }
}
