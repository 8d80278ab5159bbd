//! The figures of issue 7 (nothing wedges the night's queue), measured against the real
//! `agent-scheduler` and `fake-sdnext` binaries of the same profile (release for `cargo
//! bench`):
//!
//! 1. sends before a poison task (gateway 502 on every try) failed, and whether the task
//!    behind it ran meanwhile;
//! 2. seconds from DELETE to the next task starting on a hung backend (the request never
//!    answers; SD.Next honours the interrupt), with the default `interrupt_grace_s`;
//! 3. the latency of a good callback behind two deliveries to a hanging receiver, and the
//!    seconds to shut down (SIGTERM) with a delivery in flight;
//! 4. the host's peak RSS (VmHWM) with a 256 MiB generation answer.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p scheduler-tests --bench faults`

use std::time::{Duration, Instant};

use fake_sdnext::{FakeConfigPatch, Fault, FaultRule};
use scheduler_api::client::Client;
use scheduler_api::{EnqueueRequest, SettingsPatch, TaskStatus, TaskType};
use scheduler_tests::fake_args::FakeArgs;
use scheduler_tests::harness::{
    CallbackReceiver, FakeProcess, HostProcess, wait_for, wait_task_status, wait_until,
};
use serde_json::json;

const LONG: Duration = Duration::from_secs(120);

struct Stack {
    _dir: tempfile::TempDir,
    fake: FakeProcess,
    host: HostProcess,
}

async fn stack() -> Stack {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeProcess::spawn(FakeArgs::fast_a()).await;
    let host = HostProcess::spawn(dir.path(), &[fake.url()], &[]).await;
    Stack {
        _dir: dir,
        fake,
        host,
    }
}

async fn faults(fake: &FakeProcess, rules: Vec<FaultRule>) {
    fake.configure(&FakeConfigPatch {
        faults: Some(rules),
        ..FakeConfigPatch::default()
    })
    .await;
}

async fn enqueue(c: &Client, prompt: &str, extra: serde_json::Value) -> String {
    let mut body = json!({"prompt": prompt, "steps": 3, "width": 64, "height": 64});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        body[k] = v;
    }
    let req: EnqueueRequest = serde_json::from_value(body).expect("an enqueue body");
    c.enqueue(TaskType::Txt2img, &req)
        .await
        .expect("enqueue")
        .task_id
}

async fn finished(c: &Client, id: &str) -> scheduler_api::Task {
    wait_until(&format!("{id} to finish"), LONG, || async {
        c.task(id).await.ok().filter(|t| t.status.is_finished())
    })
    .await
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

async fn poison() {
    let s = stack().await;
    let c = &s.host.client;
    c.update_settings(&SettingsPatch {
        retry_backoff_s: Some(1),
        ..SettingsPatch::default()
    })
    .await
    .expect("settings");
    faults(
        &s.fake,
        vec![FaultRule::poison("poison", Fault::Status { status: 502 })],
    )
    .await;
    let t0 = Instant::now();
    let poison = enqueue(c, "poison", json!({})).await;
    let behind = enqueue(c, "behind", json!({})).await;
    let p = finished(c, &poison).await;
    let took = t0.elapsed();
    let b = finished(c, &behind).await;
    let sends = s
        .fake
        .stats()
        .await
        .faulted_prompts
        .iter()
        .filter(|p| *p == "poison")
        .count();
    println!(
        "1. poison task (502 every try, max_attempts 3, retry_backoff_s 1): {sends} sends, \
         then {} after {:.1} s; the task behind it: {} ({})",
        p.status.as_str(),
        took.as_secs_f64(),
        b.status.as_str(),
        p.error.unwrap_or_default()
    );
}

async fn hung() {
    let s = stack().await;
    let c = &s.host.client;
    faults(
        &s.fake,
        vec![FaultRule::poison("hung", Fault::HangHonoursInterrupt)],
    )
    .await;
    let hung = enqueue(c, "hung", json!({"steps": 50})).await;
    let next = enqueue(c, "next", json!({})).await;
    wait_task_status(c, &hung, TaskStatus::Running, LONG).await;
    wait_for("the hung job", LONG, || async {
        s.fake
            .stats()
            .await
            .faulted_prompts
            .contains(&"hung".to_owned())
    })
    .await;
    let t0 = Instant::now();
    c.delete_task(&hung).await.expect("delete");
    wait_task_status(c, &hung, TaskStatus::Interrupted, LONG).await;
    let interrupted = t0.elapsed();
    wait_for("the next task to start on the backend", LONG, || async {
        s.fake.stats().await.prompts.contains(&"next".to_owned())
    })
    .await;
    let started = t0.elapsed();
    finished(c, &next).await;
    println!(
        "2. hung backend (request never answers, interrupt honoured, interrupt_grace_s 5): \
         DELETE -> interrupted {:.1} s, -> next task started {:.1} s",
        interrupted.as_secs_f64(),
        started.as_secs_f64()
    );
}

async fn callbacks() {
    let mut s = stack().await;
    let c = s.host.client.clone();
    let hanging = CallbackReceiver::start().await;
    hanging.set_hang(true);
    let good = CallbackReceiver::start().await;
    for url in [hanging.url("/1"), hanging.url("/2")] {
        enqueue(&c, "to a hanging receiver", json!({"callback_url": url})).await;
    }
    let id = enqueue(
        &c,
        "to a good receiver",
        json!({"callback_url": good.url("/good")}),
    )
    .await;
    let t = finished(&c, &id).await;
    let done_at = Instant::now();
    good.wait_for_posts(1, LONG).await;
    let latency = done_at.elapsed();
    let shutdown = s
        .host
        .server
        .terminate(Duration::from_secs(60))
        .await
        .map(|d| format!("{:.2} s", d.as_secs_f64()))
        .unwrap_or_else(|| "more than 60 s".into());
    println!(
        "3. callbacks: a good callback behind two to a hanging receiver arrived {:.2} s after \
         its task was seen {} (polling granularity included); SIGTERM with a delivery in \
         flight: exit in {shutdown}",
        latency.as_secs_f64(),
        t.status.as_str()
    );
}

async fn huge() {
    let s = stack().await;
    let c = &s.host.client;
    let pid = s.host.server.pid().expect("pid");
    faults(
        &s.fake,
        vec![FaultRule::poison("huge", Fault::HugeAnswer { mib: 256 })],
    )
    .await;
    let small = enqueue(c, "warm up", json!({})).await;
    finished(c, &small).await;
    let before = vm_hwm_kib(pid);
    let id = enqueue(c, "huge", json!({})).await;
    let t = finished(c, &id).await;
    let after = vm_hwm_kib(pid);
    println!(
        "4. 256 MiB generation answer: task {}; host peak RSS (VmHWM) {:.0} MB before, {:.0} MB after",
        t.status.as_str(),
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        poison().await;
        hung().await;
        callbacks().await;
        huge().await;
    });
}
