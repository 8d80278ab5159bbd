//! Benchmark (not a test) of several hosts on one PostgreSQL database (issue 16), through the
//! real binaries:
//!
//! - dispatch: `BENCH_TASKS` tasks (default 2000) of one step on instant fake SD.Nexts
//!   (`--step-ms 0`), each host driving `BENCH_FAKES` of them (default 2): the aggregate rate
//!   (tasks finished per second, from resume to the last finish) with one, two and three hosts
//!   on one database, and one host on its SQLite file for comparison;
//! - fail-over: a host SIGKILLed while it runs a long task; the time until that task runs
//!   again, claimed by the surviving host (goal: at most the lease + 2 s), at the lease of
//!   `BENCH_LEASE` seconds (default 3; the product's default is 15).
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p scheduler-tests --bench hosts`
//! (`BENCH=dispatch,paced,failover` picks sections; `paced`: the same with each generation
//! taking `BENCH_STEP_MS`, default 20, so the backends bound the rate). Needs the PostgreSQL server
//! `AGENT_SCHEDULER_TEST_PG` names (as the tests do).

use std::time::{Duration, Instant};

use scheduler_api::client::Method;
use scheduler_api::{EnqueueRequest, HistoryFilter, ListQuery, TaskStatus, TaskType};
use scheduler_tests::fake_args::FakeArgs;
use scheduler_tests::harness::{FakeProcess, HostProcess, bin_dir, raw, wait_until};
use scheduler_tests::pg::TestDb;
use serde_json::json;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn wanted(section: &str) -> bool {
    std::env::var("BENCH")
        .map(|v| v.split(',').any(|s| s.trim() == section))
        .unwrap_or(true)
}

fn body(i: usize, steps: u32) -> EnqueueRequest {
    serde_json::from_value(json!({
        "prompt": format!("bench {i}"), "steps": steps, "width": 8, "height": 8, "seed": i
    }))
    .expect("an enqueue body")
}

async fn put_settings(host: &HostProcess, v: serde_json::Value) {
    let a = raw(
        &host.client,
        Method::Put,
        "/agent-scheduler/v1/settings",
        Some(&v),
    )
    .await;
    assert_eq!(a.status, 200, "PUT /settings: {}", a.body);
}

/// CPU seconds used so far by the processes named `agent-scheduler` (hosts), `fake-sdnext`
/// (fakes) and `postgres` (the database server), from `/proc` (zero where it is missing).
fn cpu_seconds() -> [f64; 3] {
    let mut out = [0.0; 3];
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    // The kernel's clock tick (USER_HZ) is 100 on every Linux this runs on.
    let hz = 100.0;
    for e in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let slot = match &stat[open + 1..close] {
            "agent-scheduler" => 0,
            "fake-sdnext" => 1,
            c if c.starts_with("postgres") => 2,
            _ => continue,
        };
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ticks: f64 = f
            .get(11..13)
            .map(|t| t.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
            .unwrap_or(0.0);
        out[slot] += ticks / hz;
    }
    out
}

fn chosen_hosts() -> Vec<usize> {
    std::env::var("BENCH_HOSTS")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![0, 1, 2, 3])
}

async fn finished(host: &HostProcess) -> Option<usize> {
    let one = ListQuery {
        limit: Some(1),
        ..Default::default()
    };
    let h = host.client.history(HistoryFilter::All, &one).await.ok()?;
    Some(h.total as usize)
}

/// Tasks per second with `hosts` hosts (0: one host on SQLite), each driving `fakes`
/// instant fakes, over `n` tasks enqueued while paused.
async fn dispatch(hosts: usize, fakes: usize, n: usize, step_ms: u64) -> f64 {
    let db = if hosts > 0 {
        Some(TestDb::create().await.expect("a PostgreSQL server"))
    } else {
        None
    };
    let mut procs = Vec::new();
    let mut all_fakes = Vec::new();
    let mut dirs = Vec::new();
    for h in 0..hosts.max(1) {
        let mut urls = Vec::new();
        for _ in 0..fakes {
            let f = FakeProcess::spawn(
                FakeArgs::new()
                    .step_ms(step_ms)
                    .load_ms(0)
                    .checkpoint("a")
                    .loaded("a"),
            )
            .await;
            urls.push(f.url());
            all_fakes.push(f);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let id = format!("bench-{h}");
        let mut args = vec!["--start-paused".to_owned(), "--host-id".to_owned(), id];
        if let Some(db) = &db {
            args.push("--database".into());
            args.push(db.url.clone());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        procs.push(HostProcess::spawn(dir.path(), &urls, &args).await);
        dirs.push(dir);
    }
    let first = &procs[0];
    first.client.pause().await.expect("pause");
    // Enqueue through every host, 16 at a time.
    let mut i = 0;
    while i < n {
        let mut batch = Vec::new();
        for k in i..(i + 16).min(n) {
            let c = procs[k % procs.len()].client.clone();
            batch.push(tokio::spawn(async move {
                c.enqueue(TaskType::Txt2img, &body(k, 1))
                    .await
                    .expect("enqueue")
            }));
        }
        for b in batch {
            b.await.expect("join");
        }
        i += 16;
    }
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    first.client.resume().await.expect("resume");
    wait_until("every task to finish", Duration::from_secs(900), || async {
        (finished(first).await? >= n).then_some(())
    })
    .await;
    let wall = start.elapsed();
    let cpu1 = cpu_seconds();
    let per_task = |i: usize| (cpu1[i] - cpu0[i]) * 1000.0 / n as f64;
    println!(
        "  {} host(s): CPU per task: hosts {:.2} ms, fakes {:.2} ms, postgres {:.2} ms; \
         machine busy {:.0}% of {} cores",
        hosts.max(1),
        per_task(0),
        per_task(1),
        per_task(2),
        (0..3).map(|i| cpu1[i] - cpu0[i]).sum::<f64>() * 100.0
            / wall.as_secs_f64()
            / std::thread::available_parallelism().map_or(1.0, |p| p.get() as f64),
        std::thread::available_parallelism().map_or(1, |p| p.get()),
    );
    let mut generated = 0;
    for f in &all_fakes {
        generated += f.stats().await.generations.len();
    }
    assert_eq!(generated, n, "each task generated once");
    n as f64 / wall.as_secs_f64()
}

/// Seconds from SIGKILL of the host running a long task to that task running again, claimed
/// by the other host.
async fn failover(lease_s: u64) -> f64 {
    let db = TestDb::create().await.expect("a PostgreSQL server");
    let fa = FakeProcess::spawn(FakeArgs::new().step_ms(50).checkpoint("a").loaded("a")).await;
    let fb = FakeProcess::spawn(FakeArgs::new().step_ms(50).checkpoint("a").loaded("a")).await;
    let (da, db_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let args = |id: &'static str| ["--database", db.url.as_str(), "--host-id", id];
    let mut a = HostProcess::spawn(da.path(), &[fa.url()], &args("bench-a")).await;
    put_settings(&a, json!({"lease_s": lease_s})).await;
    let id = a
        .client
        .enqueue(TaskType::Txt2img, &body(0, 400))
        .await
        .expect("enqueue")
        .task_id;
    wait_until(
        "the task to run on A's backend",
        Duration::from_secs(60),
        || async { (!fa.stats().await.prompts.is_empty()).then_some(()) },
    )
    .await;
    let b = HostProcess::spawn(db_dir.path(), &[fb.url()], &args("bench-b")).await;
    // B is up and drives its backend before the kill.
    wait_until("B to answer", Duration::from_secs(60), || async {
        b.client.health().await.ok()
    })
    .await;
    a.sigkill().await;
    let killed = Instant::now();
    // Claimed again by B (the kill counted an attempt): on B's own backend, or on A's, which
    // B has taken over (still busy with the cut generation, as a real SD.Next would be).
    wait_until(
        "B to run the task again",
        Duration::from_secs(120),
        || async {
            let t = b.client.task(&id).await.ok()?;
            (t.status == TaskStatus::Running && t.attempts >= 1).then_some(())
        },
    )
    .await;
    killed.elapsed().as_secs_f64()
}

fn main() {
    let n = env_usize("BENCH_TASKS", 2000);
    let fakes = env_usize("BENCH_FAKES", 2);
    let lease = env_usize("BENCH_LEASE", 3) as u64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let host = bin_dir().join(format!("agent-scheduler{}", std::env::consts::EXE_SUFFIX));
    if !host.is_file() {
        println!(
            "skipped: {} is missing; build it first: cargo build --release --workspace --bins",
            host.display()
        );
        return;
    }
    rt.block_on(async {
        if wanted("dispatch") {
            println!("dispatch: {n} tasks of one step, {fakes} instant fakes per host");
            let mut one = None;
            for h in chosen_hosts() {
                let rate = dispatch(h, fakes, n, 0).await;
                match (h, one) {
                    (0, _) => println!("dispatch sqlite 1 host: {rate:.0} tasks/s"),
                    (1, _) => {
                        one = Some(rate);
                        println!("dispatch postgres 1 host: {rate:.0} tasks/s");
                    }
                    (h, Some(one)) => println!(
                        "dispatch postgres {h} hosts: {rate:.0} tasks/s ({:.2}x one)",
                        rate / one
                    ),
                    (h, None) => println!("dispatch postgres {h} hosts: {rate:.0} tasks/s"),
                }
            }
        }
        if wanted("paced") {
            // Each generation takes `BENCH_STEP_MS` (default 20): the backends, not the
            // machine, bound the rate, as with real GPUs.
            let step = env_usize("BENCH_STEP_MS", 20) as u64;
            let n = n / 4;
            println!("paced dispatch: {n} tasks of one {step} ms step, {fakes} fakes per host");
            let one = dispatch(1, fakes, n, step).await;
            println!("paced postgres 1 host: {one:.0} tasks/s");
            let two = dispatch(2, fakes, n, step).await;
            println!(
                "paced postgres 2 hosts: {two:.0} tasks/s ({:.2}x one)",
                two / one
            );
            let three = dispatch(3, fakes, n, step).await;
            println!(
                "paced postgres 3 hosts: {three:.0} tasks/s ({:.2}x one)",
                three / one
            );
        }
        if wanted("failover") {
            for _ in 0..3 {
                let s = failover(lease).await;
                println!(
                    "failover: lease {lease} s: the task ran again {s:.2} s after SIGKILL \
                     (goal <= {} s)",
                    lease + 2
                );
            }
        }
    });
}
