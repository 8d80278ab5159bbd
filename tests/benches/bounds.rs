//! The figures of issue 15's bounded peers, measured against the real `agent-scheduler` and
//! `fake-sdnext` binaries of the same profile (release for `cargo bench`):
//!
//! - `silent`: a working client's `GET /health` latency (p50/p99 over 200 requests, each on
//!   a new connection) with no other connection open, then with 1,200 silent connections
//!   open (every third sent only the HTTP/2 preface).
//!
//! - `export`: the host's peak RSS (VmHWM, the host restarted after the enqueues so only the
//!   export counts) while `GET /export` streams 560 MB: 56 pending img2img tasks with a 10 MB
//!   init image each.
//! - `zip`: the host's peak RSS while `POST /tasks/zip` streams the results of 60 tasks of
//!   6 MiB each (360 MiB), and the results folder's size before and after (no temporary
//!   zip).
//!
//! `BENCH=silent,export,zip` picks sections (default: all).
//! Run: `cargo build --release --workspace --bins && cargo bench -p scheduler-tests --bench bounds`

use std::time::{Duration, Instant};

use base64::Engine;
use fake_sdnext::{FakeConfigPatch, Fault, FaultRule};
use scheduler_api::client::Client;
use scheduler_api::{
    EnqueueRequest, ListName, Selection, SelectionFilter, TaskStatus, TaskType, routes,
};
use scheduler_tests::fake_args::FakeArgs;
use scheduler_tests::harness::{FakeProcess, HostProcess, wait_task_status};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The `q`-quantile of sorted durations, in ms.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// `n` `GET /health` requests, each from a new client (a new connection); sorted latencies.
async fn health_latencies(url: &str, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let c = Client::new(url);
        let t0 = Instant::now();
        let h = tokio::time::timeout(Duration::from_secs(60), c.health())
            .await
            .expect("GET /health answered within 60 s")
            .expect("GET /health");
        assert!(h.success);
        out.push(t0.elapsed());
    }
    out.sort();
    out
}

async fn silent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeProcess::spawn(FakeArgs::fast_a()).await;
    let host =
        HostProcess::spawn(dir.path(), &[fake.url()], &["--header-read-timeout", "600"]).await;
    let url = host.url();
    let _ = health_latencies(&url, 20).await;
    let quiet = health_latencies(&url, 200).await;
    let mut open = Vec::new();
    for i in 0..1200 {
        let mut s = TcpStream::connect(host.server.addr())
            .await
            .expect("connect");
        if i % 3 == 0 {
            s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                .await
                .expect("preface");
        }
        open.push(s);
    }
    let loud = health_latencies(&url, 200).await;
    println!(
        "silent: GET /health on a new connection, p50/p99: {:.2}/{:.2} ms with none open; \
         {:.2}/{:.2} ms with 1,200 silent connections open (cap 1,024)",
        quantile_ms(&quiet, 0.5),
        quantile_ms(&quiet, 0.99),
        quantile_ms(&loud, 0.5),
        quantile_ms(&loud, 0.99),
    );
    drop(open);
}

/// The peak resident set (VmHWM) of `pid`, MB.
fn vm_hwm_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// The bytes of every file under `dir`.
fn du(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Bytes used on the file system of `dir` (`df`).
fn df_used(dir: &std::path::Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["-B1", "--output=used"])
        .arg(dir)
        .output()
        .expect("run df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// Reads a streamed answer to its end; returns its size.
async fn drain(mut resp: reqwest::Response) -> u64 {
    assert!(resp.status().is_success(), "{}", resp.status());
    let mut n = 0;
    while let Some(c) = resp.chunk().await.expect("the answer") {
        n += c.len() as u64;
    }
    n
}

async fn export() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeProcess::spawn(FakeArgs::fast_a()).await;
    let mut host = HostProcess::spawn(dir.path(), &[fake.url()], &["--start-paused"]).await;
    // A 7.5 MB PNG of noise: 10 MB of base64.
    let side = 1580u32;
    let mut x = 0x2545_f491u32;
    let img = image::RgbImage::from_fn(side, side, |_, _| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        image::Rgb([x as u8, (x >> 8) as u8, (x >> 16) as u8])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("png");
    let data = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png.into_inner())
    );
    for i in 0..56 {
        let req: EnqueueRequest = serde_json::from_value(
            json!({"prompt": format!("export {i}"), "steps": 3, "init_images": [data]}),
        )
        .expect("body");
        host.client
            .enqueue(TaskType::Img2img, &req)
            .await
            .expect("enqueue");
    }
    // Only the export counts: a fresh process on the same data.
    host.restart().await;
    let pid = host.server.pid().expect("pid");
    let idle = vm_hwm_mb(pid);
    let t0 = Instant::now();
    let resp = reqwest::get(format!("{}{}?limit=100000", host.url(), routes::EXPORT))
        .await
        .expect("GET /export");
    let bytes = drain(resp).await;
    println!(
        "export: GET /export of {:.0} MB (56 tasks, a 10 MB init image each) in {:.1} s; host \
         peak RSS (VmHWM) {:.0} MB after start, {:.0} MB after the export (goal < 300 MB)",
        bytes as f64 / 1e6,
        t0.elapsed().as_secs_f64(),
        idle,
        vm_hwm_mb(pid)
    );
}

async fn zip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeProcess::spawn(FakeArgs::fast_a()).await;
    let mut host = HostProcess::spawn(dir.path(), &[fake.url()], &[]).await;
    fake.configure(&FakeConfigPatch {
        faults: Some(vec![FaultRule::poison("big", Fault::HugeAnswer { mib: 8 })]),
        ..FakeConfigPatch::default()
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..60 {
        let req: EnqueueRequest =
            serde_json::from_value(json!({"prompt": "big", "steps": 3, "seed": i})).expect("body");
        ids.push(
            host.client
                .enqueue(TaskType::Txt2img, &req)
                .await
                .expect("enqueue")
                .task_id,
        );
    }
    for id in &ids {
        wait_task_status(&host.client, id, TaskStatus::Done, Duration::from_secs(600)).await;
    }
    host.restart().await;
    let pid = host.server.pid().expect("pid");
    let results = dir.path().join("results");
    let before = du(&results);
    let df_before = df_used(&results);
    let idle = vm_hwm_mb(pid);
    let sel = Selection {
        filter: Some(SelectionFilter {
            list: ListName::History,
            status: None,
            q: None,
        }),
        ..Selection::default()
    };
    let t0 = Instant::now();
    let resp = reqwest::Client::new()
        .post(format!("{}{}", host.url(), routes::TASKS_ZIP))
        .json(&sel)
        .send()
        .await
        .expect("POST /tasks/zip");
    let mut during = 0u64;
    let mut resp = resp;
    let mut bytes = 0u64;
    while let Some(c) = resp.chunk().await.expect("the zip") {
        bytes += c.len() as u64;
        if during == 0 && bytes > 100 << 20 {
            during = df_used(&results);
        }
    }
    println!(
        "zip: POST /tasks/zip of {:.0} MB (60 results of 6 MiB) in {:.1} s; host peak RSS \
         (VmHWM) {:.0} MB after start, {:.0} MB after the zip; results folder {:.1} MB before, \
         {:.1} MB after; its file system's use (df) {:+.1} MB mid-zip (other processes share \
         it)",
        bytes as f64 / 1e6,
        t0.elapsed().as_secs_f64(),
        idle,
        vm_hwm_mb(pid),
        before as f64 / 1e6,
        du(&results) as f64 / 1e6,
        (during as f64 - df_before as f64) / 1e6
    );
}

fn main() {
    let only = std::env::var("BENCH").unwrap_or_default();
    let wants = |s: &str| only.is_empty() || only.split(',').any(|w| w.trim() == s);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        if wants("silent") {
            silent().await;
        }
        if wants("export") {
            export().await;
        }
        if wants("zip") {
            zip().await;
        }
    });
}
