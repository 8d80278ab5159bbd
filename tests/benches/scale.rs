//! Benchmark (not a test) of issue 8: checkpoint loads, a pool of backends, and flat cost at
//! 100k pending + 100k finished tasks. Every figure is printed as one line `figure: value`.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p scheduler-tests --bench scale`
//!
//! Environment:
//! - `BENCH=loads,pool,hetero,claim,big,dispatch,enqueue,rss` picks sections (default: all);
//! - `BENCH_SCALE=N` sets the size of the large queue (default 100000 pending + N finished);
//! - `BENCH_DIR=DIR` keeps the seeded databases there between runs (default: a temp dir).
//!
//! The large databases are written straight through the host's store
//! (`scheduler_tests::bulk`), then each scenario runs the real host binary on a copy.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use scheduler_api::routes;
use scheduler_tests::bulk::{COMMON_WORD, Seeded, seed_database};
use scheduler_tests::fake_args::FakeArgs;
use scheduler_tests::harness::{FakeProcess, HostProcess, bin_dir, fill, wait_until};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// Small helpers

/// Latencies in ms, sorted: the percentiles every timed figure prints.
struct Dist {
    v: Vec<f64>,
}

impl Dist {
    fn new(mut v: Vec<f64>) -> Dist {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        Dist { v }
    }
    fn q(&self, q: f64) -> f64 {
        if self.v.is_empty() {
            return f64::NAN;
        }
        self.v[((self.v.len() as f64 - 1.0) * q).round() as usize]
    }
    fn line(&self) -> String {
        format!(
            "p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms (n={})",
            self.q(0.5),
            self.q(0.95),
            self.q(0.99),
            self.v.last().copied().unwrap_or(f64::NAN),
            self.v.len()
        )
    }
}

/// Times `f(0)`, `f(1)`, … (each returns its own latency in ms) up to `n` times or until
/// `budget` has passed (after at least 5), and prints the figure `name` with p50, p95, p99
/// and max.
async fn measure<F, Fut>(name: &str, n: usize, budget: Duration, mut f: F)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = f64>,
{
    let start = Instant::now();
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        v.push(f(i).await);
        if start.elapsed() > budget && v.len() >= 5 {
            break;
        }
    }
    figure(name, Dist::new(v).line());
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn figure(name: &str, value: impl std::fmt::Display) {
    println!("{name:<58} {value}");
}

/// Raw keep-alive HTTP client timing whole answers (status checked).
#[derive(Clone)]
struct Http {
    base: String,
    c: reqwest::Client,
}

impl Http {
    fn new(base: &str) -> Http {
        Http {
            base: base.to_owned(),
            c: reqwest::Client::builder()
                .pool_max_idle_per_host(16)
                .build()
                .expect("client"),
        }
    }

    async fn timed(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (f64, u16, Vec<u8>) {
        let mut rq = self.c.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            rq = rq.json(b);
        }
        let t = Instant::now();
        let r = rq.send().await.expect("request");
        let status = r.status().as_u16();
        let bytes = r.bytes().await.expect("body").to_vec();
        (ms(t.elapsed()), status, bytes)
    }

    async fn get(&self, path: &str) -> (f64, Value) {
        let (t, status, b) = self.timed(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {}", String::from_utf8_lossy(&b));
        (t, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: &Value) -> (f64, Value) {
        let (t, status, b) = self.timed(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(status, 200, "POST {path}: {}", String::from_utf8_lossy(&b));
        (t, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    /// [`measure`] of one enqueue (txt2img, 1 step, checkpoint `a`) at a time, the `i`-th
    /// with the prompt `"{prompt} {i}"`.
    async fn measure_enqueue(&self, name: &str, n: usize, budget: Duration, prompt: &str) {
        measure(name, n, budget, |i| async move {
            self.post(
                routes::QUEUE_TXT2IMG,
                &txt2img(&format!("{prompt} {i}"), 1, Some("a")),
            )
            .await
            .0
        })
        .await;
    }

    async fn delete(&self, path: &str) -> f64 {
        let (t, status, b) = self.timed(reqwest::Method::DELETE, path, None).await;
        assert_eq!(
            status,
            200,
            "DELETE {path}: {}",
            String::from_utf8_lossy(&b)
        );
        t
    }
}

/// Deterministic pseudo-random numbers (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A fresh copy of a seeded database at `root/<name>` for one run (the seed stays as it is).
fn run_copy(root: &Path, db: &BigDb, name: &str) -> PathBuf {
    let work = root.join(name);
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("mkdir");
    for f in ["queue.sqlite3", "queue.sqlite3-wal", "queue.sqlite3-shm"] {
        let src = db.dir.join(f);
        if src.exists() {
            std::fs::copy(&src, work.join(f)).expect("copy database");
        }
    }
    work
}

fn txt2img(prompt: &str, steps: u32, checkpoint: Option<&str>) -> Value {
    let mut b = json!({"prompt": prompt, "steps": steps, "width": 8, "height": 8, "seed": 1});
    if let Some(c) = checkpoint {
        b["checkpoint"] = json!(c);
    }
    b
}

async fn resume(h: &Http) {
    h.post(routes::QUEUE_RESUME, &json!({})).await;
}

async fn pause(h: &Http) {
    h.post(routes::QUEUE_PAUSE, &json!({})).await;
}

async fn wait_history(h: &Http, n: i64, timeout: Duration) {
    wait_until(&format!("{n} finished tasks"), timeout, || async {
        let (_, v) = h.get(&format!("{}?limit=1", routes::HISTORY)).await;
        (v["total"].as_i64().unwrap_or(0) >= n).then_some(())
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Sections

/// 5 prompts × "Queue with all checkpoints" over 3 checkpoints, one backend.
async fn loads() {
    println!("== loads: 5 prompts x 3 checkpoints (checkpoint \"*\"), one backend");
    let fake = FakeProcess::spawn(
        FakeArgs::new()
            .step_ms(1)
            .load_ms(20)
            .checkpoints(&["a", "b", "c"])
            .loaded("a"),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let host = HostProcess::spawn(dir.path(), &[fake.url()], &["--start-paused"]).await;
    let h = Http::new(&host.url());
    for p in 0..5 {
        h.post(
            routes::QUEUE_TXT2IMG,
            &txt2img(&format!("prompt {p}"), 1, Some("*")),
        )
        .await;
    }
    resume(&h).await;
    wait_history(&h, 15, Duration::from_secs(120)).await;
    let stats = fake.stats().await;
    figure(
        "loads, 5 prompts x 3 checkpoints, one backend",
        format!("{} (order {:?})", stats.checkpoint_loads, stats.loads),
    );
}

async fn run_pool(fakes: &[FakeProcess], tasks: usize, steps: u32) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let urls: Vec<String> = fakes.iter().map(FakeProcess::url).collect();
    let host = HostProcess::spawn(dir.path(), &urls, &["--start-paused"]).await;
    let h = Http::new(&host.url());
    // Every backend must be known up before the clock starts.
    wait_until("backends up", Duration::from_secs(30), || async {
        let (_, v) = h.get(routes::BACKENDS).await;
        let up = v
            .as_array()
            .map(|a| a.iter().filter(|b| b["state"] == "up").count())
            .unwrap_or(0);
        (up == fakes.len()).then_some(())
    })
    .await;
    for i in 0..tasks {
        h.post(
            routes::QUEUE_TXT2IMG,
            &txt2img(&format!("pool {i}"), steps, Some("a")),
        )
        .await;
    }
    let t = Instant::now();
    resume(&h).await;
    wait_history(&h, tasks as i64, Duration::from_secs(600)).await;
    t.elapsed()
}

/// Throughput with 1, 2, 4, 8 equal fake backends.
async fn pool() {
    println!("== pool: equal backends, tasks of 10 steps x 10 ms");
    let mut one = 0.0;
    for n in [1usize, 2, 4, 8] {
        let mut fakes = Vec::new();
        for _ in 0..n {
            fakes.push(
                FakeProcess::spawn(FakeArgs::new().step_ms(10).checkpoint("a").loaded("a")).await,
            );
        }
        let tasks = 24 * n;
        let wall = run_pool(&fakes, tasks, 10).await;
        let rate = tasks as f64 / wall.as_secs_f64();
        if n == 1 {
            one = rate;
        }
        figure(
            &format!("throughput, {n} backend(s)"),
            format!("{rate:.2} tasks/s ({:.2}x one)", rate / one),
        );
    }
}

/// 100 equal tasks on one fast backend alone, then on 1 fast + 3 four times slower.
async fn hetero() {
    println!("== hetero: 100 tasks of 10 steps; fast = 10 ms/step, slow = 40 ms/step");
    let fast = FakeProcess::spawn(FakeArgs::new().step_ms(10).checkpoint("a").loaded("a")).await;
    let alone = run_pool(std::slice::from_ref(&fast), 100, 10).await;
    figure(
        "100 tasks, fast backend alone",
        format!("{:.2} s", alone.as_secs_f64()),
    );
    let mut fakes = vec![fast];
    for _ in 0..3 {
        fakes.push(
            FakeProcess::spawn(FakeArgs::new().step_ms(40).checkpoint("a").loaded("a")).await,
        );
    }
    let mixed = run_pool(&fakes, 100, 10).await;
    figure(
        "100 tasks, 1 fast + 3 slow (4x)",
        format!(
            "{:.2} s ({:.2}x the fast one alone)",
            mixed.as_secs_f64(),
            mixed.as_secs_f64() / alone.as_secs_f64()
        ),
    );
}

struct BigDb {
    dir: PathBuf,
    seeded: Seeded,
}

fn seeded_db(root: &Path, name: &str, finished: usize, pending: usize) -> BigDb {
    let dir = root.join(name);
    let ids = dir.join("ids.json");
    if dir.join("queue.sqlite3").exists() && ids.exists() {
        let v: Value =
            serde_json::from_slice(&std::fs::read(&ids).expect("ids")).expect("ids json");
        let list = |k: &str| -> Vec<String> {
            v[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        return BigDb {
            seeded: Seeded {
                finished: list("finished"),
                pending: list("pending"),
            },
            dir,
        };
    }
    let _ = std::fs::remove_dir_all(&dir);
    let t = Instant::now();
    let seeded = seed_database(&dir, finished, pending).expect("seed database");
    println!(
        "   (seeded {name}: {finished} finished + {pending} pending in {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    std::fs::write(
        &ids,
        serde_json::to_vec(&json!({"finished": seeded.finished, "pending": seeded.pending}))
            .expect("json"),
    )
    .expect("write ids");
    BigDb { dir, seeded }
}

/// A fake that answers at once: a, b, c listed, a loaded.
fn fake_instant() -> FakeArgs {
    FakeArgs::new()
        .step_ms(0)
        .load_ms(0)
        .checkpoints(&["a", "b", "c"])
        .loaded("a")
}

/// Latencies of the API at N pending + N finished.
async fn big(root: &Path, scale: usize) {
    println!("== big: API latencies at {scale} pending + {scale} finished (keep-alive client)");
    let db = seeded_db(root, "big", scale, scale);
    let work = run_copy(root, &db, "big-run");
    let fake = FakeProcess::spawn(fake_instant()).await;
    let host = HostProcess::spawn(&work, &[fake.url()], &["--start-paused"]).await;
    let h = Http::new(&host.url());
    let budget = Duration::from_secs(20);
    // Warm-up.
    for _ in 0..3 {
        h.get(&format!("{}?limit=50", routes::QUEUE)).await;
        h.get(&format!("{}?limit=50", routes::HISTORY)).await;
    }
    let (_, q) = h.get(&format!("{}?limit=1", routes::QUEUE)).await;
    let total = q["total_pending_tasks"].as_i64().unwrap_or(0);
    let (queue, history) = (routes::QUEUE, routes::HISTORY);
    let last_pending = (total - 50).max(0);
    let pages = [
        (
            "queue page (limit 50)".to_owned(),
            100,
            format!("{queue}?limit=50"),
        ),
        (
            "queue last page (offset)".into(),
            30,
            format!("{queue}?limit=50&offset={last_pending}"),
        ),
        (
            "history page (limit 50)".into(),
            100,
            format!("{history}?limit=50"),
        ),
        (
            "history last page (offset)".into(),
            30,
            format!("{history}?limit=50&offset={}", scale - 50),
        ),
        (
            format!("history search `{COMMON_WORD}`"),
            50,
            format!("{history}?limit=50&q={COMMON_WORD}"),
        ),
        (
            "history search `castle riv` (prefix)".into(),
            50,
            format!("{history}?limit=50&q=castle%20riv"),
        ),
        (
            format!("queue search `{COMMON_WORD}`"),
            50,
            format!("{queue}?limit=50&q={COMMON_WORD}"),
        ),
    ];
    for (name, n, path) in pages {
        measure(&name, n, budget, |_| async { h.get(&path).await.0 }).await;
    }

    let pending = &db.seeded.pending;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut picks: Vec<usize> = (0..400).map(|_| rng.below(pending.len())).collect();
    picks.dedup();
    measure("move before another task (random)", 100, budget, |i| {
        let (a, b) = (
            &pending[picks[i % picks.len()]],
            &pending[picks[(i + 1) % picks.len()]],
        );
        let h = h.clone();
        let path = routes::move_path(a, b);
        async move { h.post(&path, &json!({})).await.0 }
    })
    .await;
    let anchor = pending[pending.len() / 2].clone();
    measure("move into the same place (100 moves)", 100, budget, |i| {
        let a = pending[(i * 37 + 11) % pending.len()].clone();
        let path = routes::move_path(&a, &anchor);
        let h = h.clone();
        async move { h.post(&path, &json!({})).await.0 }
    })
    .await;
    measure("move to top", 50, budget, |i| {
        let path = routes::move_path(&pending[(i * 53 + 7) % pending.len()], "top");
        let h = h.clone();
        async move { h.post(&path, &json!({})).await.0 }
    })
    .await;
    measure("position of a task at the end", 50, budget, |i| {
        let path = fill(
            routes::TASK_POSITION,
            &[("id", &pending[pending.len() - 1 - i])],
        );
        let h = h.clone();
        async move { h.get(&path).await.0 }
    })
    .await;
    measure("pause / resume", 20, budget, |i| {
        let h = h.clone();
        async move {
            let r = if i % 2 == 0 {
                routes::QUEUE_PAUSE
            } else {
                routes::QUEUE_RESUME
            };
            // Resume is answered, then paused again by the next (odd/even) call.
            h.post(r, &json!({})).await.0
        }
    })
    .await;
    pause(&h).await;
    measure("delete a pending task", 100, budget, |i| {
        let path = fill(
            routes::TASK,
            &[(
                "id",
                &pending[pending.len() - 2 - (i * 97) % (pending.len() / 2)],
            )],
        );
        let h = h.clone();
        async move { h.delete(&path).await }
    })
    .await;
    h.measure_enqueue("enqueue one task", 100, budget, "late")
        .await;
    drop(host);
    let _ = std::fs::remove_dir_all(&work);
}

/// The store's claim at N pending (in-process, on a copy of the database): the look-ahead
/// window, the policy's pick for a backend with checkpoint `a` loaded, the overtakes, the
/// claim itself (each under its own fence); then the end of such a run, written fenced to
/// its claim (a durable commit, as the finisher's).
async fn claim(root: &Path, scale: usize) {
    use agent_scheduler::backends::view::{PoolView, SeatView};
    use agent_scheduler::clock::Clock;
    use agent_scheduler::model::policy::{Activity, Rules, pick};
    use agent_scheduler::model::{Event, Policy, RunEnd};
    use agent_scheduler::store::Store;
    use agent_scheduler::store::transitions::{Choice, RunOutputs, claim_next, finish};
    println!("== claim: the store's claim at {scale} pending + {scale} finished");
    let db = seeded_db(root, "big", scale, scale);
    let work = run_copy(root, &db, "claim-run");
    let store = Store::open(&work.join("queue.sqlite3")).expect("open");
    let shared = &store;
    let claimed = std::sync::Mutex::new(Vec::new());
    let claimed = &claimed;
    measure(
        "claim of the next task",
        500,
        Duration::from_secs(30),
        |i| async move {
            let t = Instant::now();
            // As the host's worker claims: a light commit (see `Store::call_light`).
            let got = shared
                .call_light(move |c| {
                    let view = PoolView {
                        seats: vec![SeatView {
                            url: "http://bench".into(),
                            loaded: Some("a".into()),
                            vae: None,
                            activity: Activity::Idle,
                            models: None,
                            free_in_ms: 0,
                            ms_per_task: 1000,
                        }],
                    };
                    let now = Clock::system().now_ms();
                    claim_next(c, "http://bench", now, i as i64 + 1, |w, paused| {
                        let (waiting, seats) = view.policy_input(w);
                        pick(&waiting, &seats, 0, &Rules::default(), paused, now).map(|c| Choice {
                            index: c.index,
                            overtaken: c.overtaken,
                        })
                    })
                })
                .await
                .expect("claim");
            let took = ms(t.elapsed());
            let got = got.expect("a task is claimed");
            let fence = got.life.fence.expect("claimed under a fence");
            claimed.lock().unwrap().push((got.id, fence));
            took
        },
    )
    .await;
    let policy = Policy::from(&scheduler_api::Settings::default());
    let runs = claimed.lock().unwrap().len();
    measure(
        "finish of a claimed task (fenced to its claim)",
        runs,
        Duration::from_secs(30),
        |i| async move {
            let (id, fence) = claimed.lock().unwrap()[i].clone();
            let t = Instant::now();
            let applied = shared
                .call(move |c| {
                    let now = Clock::system().now_ms();
                    let end = Event::Finished {
                        end: RunEnd::Done,
                        at: now,
                    };
                    finish(c, &id, fence, &end, &policy, &RunOutputs::default(), now)
                })
                .await
                .expect("finish");
            assert_eq!(applied.status(), Some(scheduler_api::TaskStatus::Done));
            ms(t.elapsed())
        },
    )
    .await;
    drop(store);
    let _ = std::fs::remove_dir_all(&work);
}

/// Tasks per second and the backend's idle gap with the fake answering at once.
async fn dispatch(root: &Path, scale: usize) {
    println!("== dispatch: fake answering at once");
    let cases = [
        ("dispatch-3k", 0usize, 3_000usize),
        ("dispatch-30k", 0, 30_000),
        ("dispatch-pending", 0, scale),
        ("big", scale, scale),
    ];
    for (name, finished, pending) in cases {
        let db = seeded_db(root, name, finished, pending);
        let work = run_copy(root, &db, &format!("{name}-run"));
        let fake = FakeProcess::spawn(fake_instant()).await;
        let host = HostProcess::spawn(&work, &[fake.url()], &["--start-paused"]).await;
        let h = Http::new(&host.url());
        let window = Duration::from_secs(10);
        let target = 2_000usize.min(pending);
        let t = Instant::now();
        resume(&h).await;
        let done = wait_until("dispatch window", Duration::from_secs(120), || async {
            let n = fake.stats().await.generations.len();
            (n >= target || t.elapsed() >= window).then_some(n)
        })
        .await;
        let wall = t.elapsed();
        pause(&h).await;
        let stats = fake.stats().await;
        let mut gaps: Vec<f64> = stats
            .idle_gaps_us()
            .into_iter()
            .map(|g| g as f64 / 1000.0)
            .collect();
        gaps.truncate(done.saturating_sub(1));
        let g = Dist::new(gaps);
        figure(
            &format!("dispatch at {finished} finished + {pending} pending"),
            format!(
                "{:.0} tasks/s ({done} in {:.1} s); idle gap p50 {:.2} ms, p95 {:.2} ms",
                done as f64 / wall.as_secs_f64(),
                wall.as_secs_f64(),
                g.q(0.5),
                g.q(0.95)
            ),
        );
        drop(host);
        let _ = std::fs::remove_dir_all(&work);
    }
}

/// Durable enqueue with 8 concurrent keep-alive clients.
async fn enqueue() {
    println!("== enqueue: 8 concurrent keep-alive clients, 5 s");
    let fake = FakeProcess::spawn(fake_instant()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let host = HostProcess::spawn(dir.path(), &[fake.url()], &["--start-paused"]).await;
    let base = host.url();
    let until = Instant::now() + Duration::from_secs(5);
    let mut joins = Vec::new();
    for k in 0..8 {
        let h = Http::new(&base);
        joins.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0;
            while Instant::now() < until {
                let (t, _) = h
                    .post(
                        routes::QUEUE_TXT2IMG,
                        &txt2img(&format!("c{k} {i}"), 1, Some("a")),
                    )
                    .await;
                lat.push(t);
                i += 1;
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for j in joins {
        all.extend(j.await.expect("client"));
    }
    let n = all.len();
    figure(
        "enqueue, 8 clients",
        format!(
            "{:.0} tasks/s; latency {}",
            n as f64 / 5.0,
            Dist::new(all).line()
        ),
    );
    let h = Http::new(&base);
    h.measure_enqueue(
        &format!("enqueue one client at {n} pending"),
        100,
        Duration::from_secs(10),
        "single",
    )
    .await;
}

/// Memory and start-up on the large database, and after importing 10k tasks.
async fn rss(root: &Path, scale: usize) {
    println!("== rss: host memory and start-up at {scale} + {scale}");
    let db = seeded_db(root, "big", scale, scale);
    let work = run_copy(root, &db, "rss-run");
    let fake = FakeProcess::spawn(fake_instant()).await;
    let t = Instant::now();
    let host = HostProcess::spawn(&work, &[fake.url()], &["--start-paused"]).await;
    let h = Http::new(&host.url());
    h.get(routes::HEALTH).await;
    figure(
        "start-up until answering",
        format!("{:.0} ms", ms(t.elapsed())),
    );
    let pid = host.server.pid().expect("pid");
    // Idle: let start-up work (the orphan sweep) settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    h.get(&format!("{}?limit=50", routes::QUEUE)).await;
    h.get(&format!("{}?limit=50", routes::HISTORY)).await;
    figure(
        "host RSS idle",
        format!("{:.1} MB", rss_kib(pid) as f64 / 1024.0),
    );
    let items: Vec<Value> = (0..10_000)
        .map(|i| {
            json!({
                "id": uuid::Uuid::new_v4().to_string(),
                "type": "txt2img",
                "status": "pending",
                "params": {"prompt": format!("imported {i} a castle by the river at night, masterpiece"),
                           "negative_prompt": "blurry", "steps": 20, "width": 512, "height": 512,
                           "seed": i, "checkpoint": "a"},
                "priority": i,
                "created_at": 1_700_000_000 + i,
            })
        })
        .collect();
    let content = serde_json::to_string(&items).expect("json");
    let t = Instant::now();
    let (_, status, body) = h
        .timed(
            reqwest::Method::POST,
            routes::IMPORT,
            Some(&json!({"content": content})),
        )
        .await;
    assert_eq!(status, 200, "import: {}", String::from_utf8_lossy(&body));
    figure("import 10k tasks", format!("{:.0} ms", ms(t.elapsed())));
    tokio::time::sleep(Duration::from_secs(2)).await;
    figure(
        "host RSS after importing 10k",
        format!("{:.1} MB", rss_kib(pid) as f64 / 1024.0),
    );
    drop(host);
    let _ = std::fs::remove_dir_all(&work);
}

fn main() {
    let only = std::env::var("BENCH").unwrap_or_default();
    let on = |s: &str| only.is_empty() || only.split(',').any(|x| x.trim() == s);
    let scale: usize = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let host = bin_dir().join(format!("agent-scheduler{}", std::env::consts::EXE_SUFFIX));
    if !host.is_file() {
        println!(
            "{} is missing; build it first: cargo build --release --workspace --bins",
            host.display()
        );
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if on("loads") {
            loads().await;
        }
        if on("pool") {
            pool().await;
        }
        if on("hetero") {
            hetero().await;
        }
        if on("claim") {
            claim(&root, scale).await;
        }
        if on("big") {
            big(&root, scale).await;
        }
        if on("dispatch") {
            dispatch(&root, scale).await;
        }
        if on("enqueue") {
            enqueue().await;
        }
        if on("rss") {
            rss(&root, scale).await;
        }
    });
}
