//! Shared set-up for the host integration tests: the host in this process driving an
//! in-process fake SD.Next ([`Stack`], the default), or both as real processes
//! ([`ProcessStack`], for what only a process shows: SIGKILL and restart, signals, its log),
//! on a fresh data directory; plus small helpers over the host's API.

use std::time::Duration;

use scheduler_api::client::{Client, Method};
use scheduler_api::{EnqueueRequest, ListQuery, Task, TaskStatus, TaskType};
pub use scheduler_tests::harness::Answer;
use scheduler_tests::harness::{FakeProcess, HostProcess, fill, raw, wait_until};
use scheduler_tests::inprocess::InProcessHost;
use serde_json::{Value, json};

pub use scheduler_tests::fake_args::FakeArgs;

/// [`FakeArgs::fast_a`] in the binary's words, for set-ups written before [`FakeArgs`]
/// (kept for tests of other branches; those here are converted).
#[allow(dead_code)]
pub const FAST_A: &[&str] = &["--step-ms", "1", "--checkpoint", "a", "--loaded", "a"];

/// Generous deadline for conditions in these tests (2-core CI machine).
pub const LONG: Duration = Duration::from_secs(60);

/// The host in this process ([`InProcessHost`]: `agent_scheduler::run` on port 0, a
/// temporary data directory) driving an in-process fake SD.Next; its fields and methods
/// through `Deref` (`dir`, `fake()`, `client()`, `stop()`…).
pub struct Stack(InProcessHost);

impl Stack {
    /// The fake set up with `fake-sdnext`'s options, the host with `agent-scheduler serve`'s
    /// flags (`host_args`): the same set-up as [`ProcessStack`].
    pub async fn start(fake_args: impl Into<FakeArgs>, host_args: &[&str]) -> Stack {
        Stack(InProcessHost::start_args(fake_args, host_args).await)
    }
}

impl std::ops::Deref for Stack {
    type Target = InProcessHost;
    fn deref(&self) -> &InProcessHost {
        &self.0
    }
}

/// A fake SD.Next process plus the host process driving it, on a temporary data directory:
/// for the tests whose subject is a process (SIGKILL and restart, SIGTERM, its log).
pub struct ProcessStack {
    /// The data directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// The fake SD.Next.
    pub fake: FakeProcess,
    /// The real host.
    pub host: HostProcess,
}

impl ProcessStack {
    /// Starts `fake-sdnext FAKE_ARGS` and `agent-scheduler serve --backend <fake> HOST_ARGS`.
    pub async fn start(fake_args: impl Into<FakeArgs>, host_args: &[&str]) -> ProcessStack {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = FakeProcess::spawn(fake_args).await;
        let host = HostProcess::spawn(dir.path(), &[fake.url()], host_args).await;
        ProcessStack { dir, fake, host }
    }

    /// The host's typed client.
    pub fn client(&self) -> &Client {
        &self.host.client
    }
}

/// An enqueue body from JSON (host-only fields allowed).
pub fn body(v: Value) -> EnqueueRequest {
    serde_json::from_value(v).expect("an enqueue body")
}

/// `POST /queue/pause`, asserting success.
pub async fn pause(c: &Client) {
    assert_eq!(c.pause().await.expect("pause").message, "Queue paused.");
}

/// `POST /queue/resume`, asserting success.
pub async fn resume(c: &Client) {
    assert_eq!(c.resume().await.expect("resume").message, "Queue resumed.");
}

/// Enqueues a small txt2img task and returns its id.
pub async fn enqueue(c: &Client, prompt: &str, extra: Value) -> String {
    let mut v = json!({"prompt": prompt, "steps": 3, "width": 64, "height": 64, "seed": 1});
    if let (Some(b), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            b.insert(k.clone(), x.clone());
        }
    }
    c.enqueue(TaskType::Txt2img, &body(v))
        .await
        .expect("enqueue")
        .task_id
}

/// Waits until `id` has ended (done, failed or interrupted) and returns it.
pub async fn wait_finished(c: &Client, id: &str) -> Task {
    wait_until(&format!("task {id} to finish"), LONG, || async {
        c.task(id).await.ok().filter(|t| t.status.is_finished())
    })
    .await
}

/// Waits until `id` is done and returns it (panics early with the task when it failed).
pub async fn wait_done(c: &Client, id: &str) -> Task {
    let t = wait_finished(c, id).await;
    assert_eq!(t.status, TaskStatus::Done, "task {id} ended as {t:?}");
    t
}

/// Ids of the queue listing in order (running first).
pub async fn queue_ids(c: &Client) -> Vec<String> {
    let q = c
        .queue(&ListQuery {
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .expect("queue");
    q.pending_tasks.into_iter().map(|t| t.id).collect()
}

/// The whole history with this filter.
pub async fn history(
    c: &Client,
    filter: scheduler_api::HistoryFilter,
) -> scheduler_api::HistoryResponse {
    c.history(
        filter,
        &ListQuery {
            limit: Some(1000),
            ..Default::default()
        },
    )
    .await
    .expect("history")
}

/// A route with `{id}` filled.
pub fn task_route(route: &str, id: &str) -> String {
    fill(route, &[("id", id)])
}

/// A tiny valid PNG as a data URL (for img2img init images).
pub fn png_data_url() -> String {
    use base64::Engine;
    let img = image::RgbImage::from_pixel(8, 8, image::Rgb([200, 10, 10]));
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .expect("encode png");
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// `GET` any path as a raw request (the wire-shape tests of the AgentScheduler API).
pub async fn get(c: &Client, path: &str) -> Answer {
    raw(c, Method::Get, path, None).await
}

/// `POST` JSON to any path as a raw request.
pub async fn post(c: &Client, path: &str, body: &Value) -> Answer {
    raw(c, Method::Post, path, Some(body)).await
}

/// `PUT` JSON to any path as a raw request.
pub async fn put(c: &Client, path: &str, body: &Value) -> Answer {
    raw(c, Method::Put, path, Some(body)).await
}

/// `DELETE` any path as a raw request.
pub async fn delete(c: &Client, path: &str) -> Answer {
    raw(c, Method::Delete, path, None).await
}

/// The first page (1000 tasks) of the queue.
pub async fn queue(c: &Client) -> scheduler_api::QueueResponse {
    c.queue(&ListQuery {
        limit: Some(1000),
        ..Default::default()
    })
    .await
    .expect("queue")
}
