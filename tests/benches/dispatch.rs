//! Benchmark (not a test): enqueue throughput of the host, and the backend's idle gap (time
//! from the fake SD.Next sending response n to receiving request n+1) over N short tasks,
//! next to the host's SD.Next client calling the fake directly back to back.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p scheduler-tests --bench dispatch`
//! (`BENCH_TASKS=N` changes the task count, default 200). Goal: median host gap under 5 ms.

use std::time::{Duration, Instant};

use agent_scheduler::sdnext::SdClient;
use fake_sdnext::FakeStats;
use scheduler_api::{EnqueueRequest, HistoryFilter, TaskType};
use scheduler_tests::fake_args::FakeArgs;
use scheduler_tests::harness::{FakeProcess, HostProcess, bin_dir, wait_until};
use serde_json::json;

/// One checkpoint `a`, 1 ms per step and per load.
fn fake_args() -> FakeArgs {
    FakeArgs::new().step_ms(1).load_ms(1).checkpoint("a")
}

fn task_body(i: usize) -> EnqueueRequest {
    serde_json::from_value(
        json!({"prompt": format!("bench {i}"), "steps": 1, "width": 8, "height": 8, "seed": i}),
    )
    .expect("an enqueue body")
}

struct Gaps {
    median_us: u64,
    p95_us: u64,
    max_us: u64,
    count: usize,
}

fn gaps(stats: &FakeStats) -> Gaps {
    let mut g = stats.idle_gaps_us();
    g.sort_unstable();
    let at = |q: f64| {
        g.get(((g.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    Gaps {
        median_us: at(0.5),
        p95_us: at(0.95),
        max_us: g.last().copied().unwrap_or(0),
        count: g.len(),
    }
}

fn report(label: &str, g: &Gaps, wall: Duration, n: usize) {
    println!(
        "{label:<28} gaps={:<4} median={:>7.3} ms  p95={:>7.3} ms  max={:>7.3} ms  \
         wall={:>6.2} s ({:.1} tasks/s)",
        g.count,
        g.median_us as f64 / 1000.0,
        g.p95_us as f64 / 1000.0,
        g.max_us as f64 / 1000.0,
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64()
    );
}

async fn direct(n: usize) {
    let fake = FakeProcess::spawn(fake_args()).await;
    let client = SdClient::new(&fake.url()).expect("client");
    let start = Instant::now();
    for i in 0..n {
        let out = client
            .generate(
                TaskType::Txt2img,
                &serde_json::to_value(task_body(i)).expect("json"),
            )
            .await
            .expect("generate");
        assert_eq!(out.images.len(), 1);
    }
    let wall = start.elapsed();
    report(
        "direct client (baseline)",
        &gaps(&fake.stats().await),
        wall,
        n,
    );
}

async fn through_host(n: usize) {
    let fake = FakeProcess::spawn(fake_args()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let host = HostProcess::spawn(dir.path(), &[fake.url()], &["--start-paused"]).await;
    let c = &host.client;

    let start = Instant::now();
    for i in 0..n {
        c.enqueue(TaskType::Txt2img, &task_body(i))
            .await
            .expect("enqueue");
    }
    let enq = start.elapsed();
    println!(
        "{:<28} {n} tasks in {:.3} s = {:.0} enqueues/s (sequential, one client)",
        "host enqueue",
        enq.as_secs_f64(),
        n as f64 / enq.as_secs_f64()
    );

    let start = Instant::now();
    c.resume().await.expect("resume");
    let one = scheduler_api::ListQuery {
        limit: Some(1),
        ..Default::default()
    };
    wait_until("every task to finish", Duration::from_secs(600), || async {
        let h = c.history(HistoryFilter::All, &one).await.ok()?;
        (h.total as usize >= n).then_some(())
    })
    .await;
    let wall = start.elapsed();
    let stats = fake.stats().await;
    assert_eq!(
        stats.generations.len(),
        n,
        "every task reached the fake once"
    );
    report("host worker -> fake", &gaps(&stats), wall, n);
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let n: usize = std::env::var("BENCH_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        println!("dispatch benchmark: {n} txt2img tasks of 1 step (fake --step-ms 1)");
        direct(n).await;
        let host = bin_dir().join(format!("agent-scheduler{}", std::env::consts::EXE_SUFFIX));
        if !host.is_file() {
            println!(
                "host part skipped: {} is missing; build it first: \
                 cargo build --release --workspace --bins",
                host.display()
            );
            return;
        }
        through_host(n).await;
    });
}
