//! The two stores side by side, in one run, through the store contract (`TaskStore`): at
//! `BENCH_SCALE` pending + `BENCH_SCALE` finished tasks (default 100,000 each), seeded
//! through the contract (every status change by the transition function), on one host:
//!
//! - enqueue: one task appended (durable), p50/p95/p99;
//! - queue page: the head of the queue in one snapshot (running tasks, the look-ahead window
//!   of 100, the counts) as the first page of `/queue` reads it; a page of 50 deep in the
//!   queue by keyset; a page of 50 of the history by keyset;
//! - claim: the next task for a backend with checkpoint `a` loaded, the policy's pick over
//!   the window (as the host's worker claims), p50/p95 and claims per second.
//!
//! The SQLite store is a file in a temporary folder; the PostgreSQL store a throw-away
//! database on the server `AGENT_SCHEDULER_TEST_PG` names (skipped with a message when none
//! is reachable). `cargo bench -p scheduler-tests --bench stores`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_scheduler::backends::view::{PoolView, SeatView};
use agent_scheduler::clock::Clock;
use agent_scheduler::model::NewTask;
use agent_scheduler::model::policy::{Activity, Rules, pick};
use agent_scheduler::model::transition::{Event, Policy, RunEnd};
use agent_scheduler::store::Store;
use agent_scheduler::store::api::{ChooseFn, TaskStore};
use agent_scheduler::store::pg::{self, PgStore};
use agent_scheduler::store::transitions::{Choice, LOOKAHEAD};
use scheduler_api::HistoryFilter;
use scheduler_tests::bulk::seed_task;
use scheduler_tests::pg::TestDb;

type S = Arc<dyn TaskStore>;

struct Dist(Vec<f64>);

impl Dist {
    fn q(&self, q: f64) -> f64 {
        self.0[((self.0.len() as f64 - 1.0) * q).round() as usize]
    }
}

/// Times `f` up to `n` times or until `budget` has passed (after at least 5); returns the
/// sorted latencies (ms).
async fn measure<F, Fut>(n: usize, budget: Duration, mut f: F) -> Dist
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i).await;
        v.push(t.elapsed().as_secs_f64() * 1000.0);
        if start.elapsed() > budget && v.len() >= 5 {
            break;
        }
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    Dist(v)
}

fn line(name: &str, store: &str, d: &Dist) {
    println!(
        "{name:<34} {store:<10} p50 {:>8.2} ms  p95 {:>8.2} ms  p99 {:>8.2} ms  (n={})",
        d.q(0.5),
        d.q(0.95),
        d.q(0.99),
        d.0.len()
    );
}

const CHUNK: usize = 5_000;

/// `finished` done tasks, then `pending` pending ones, through the contract.
async fn seed(s: &S, finished: usize, pending: usize) {
    let policy = Policy::from(&scheduler_api::Settings::default());
    let start = Clock::system().now_ms() - finished as i64 * 1000;
    let mut i = 0;
    while i < finished {
        let n = CHUNK.min(finished - i);
        let batch: Vec<NewTask> = (i..i + n).map(seed_task).collect();
        let mut events = Vec::with_capacity(2 * n);
        for (k, t) in batch.iter().enumerate() {
            events.push((
                t.id.clone(),
                Event::Claim {
                    backend: "http://seed".into(),
                    fence: (i + k) as i64 + 1,
                },
            ));
            events.push((
                t.id.clone(),
                Event::Finished {
                    end: RunEnd::Done,
                    at: start + (i + k) as i64 * 1000,
                },
            ));
        }
        s.insert_tasks(batch, None, Clock::system().now_ms())
            .await
            .expect("seed");
        s.apply_batch(events, policy, Clock::system().now_ms())
            .await
            .expect("seed runs");
        i += n;
    }
    let mut j = 0;
    while j < pending {
        let n = CHUNK.min(pending - j);
        let batch: Vec<NewTask> = (i..i + n).map(seed_task).collect();
        s.insert_tasks(batch, None, Clock::system().now_ms())
            .await
            .expect("seed");
        i += n;
        j += n;
    }
}

/// The policy's pick for one idle backend with checkpoint `a` loaded.
fn policy_pick() -> ChooseFn {
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
    Box::new(move |w, paused| {
        let (waiting, seats) = view.policy_input(w);
        pick(&waiting, &seats, 0, &Rules::default(), paused, now).map(|c| Choice {
            index: c.index,
            overtaken: c.overtaken,
        })
    })
}

async fn bench(name: &str, s: S, scale: usize) {
    let t = Instant::now();
    seed(&s, scale, scale).await;
    println!(
        "-- {name}: seeded {scale} finished + {scale} pending in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let budget = Duration::from_secs(20);
    let d = measure(500, budget, |i| {
        let s = s.clone();
        async move {
            let mut t = seed_task(10_000_000 + i);
            t.id = format!("bench-enqueue-{i}");
            s.insert_tasks(vec![t], None, Clock::system().now_ms())
                .await
                .expect("enqueue");
        }
    })
    .await;
    line("enqueue (one task, durable)", name, &d);
    let d = measure(300, budget, |_| {
        let s = s.clone();
        async move {
            let head = s.queue_head(LOOKAHEAD).await.expect("head");
            assert_eq!(head.window.len() as i64, LOOKAHEAD);
        }
    })
    .await;
    line("queue page (head: window of 100)", name, &d);
    let mid = s
        .pending_rows(None, 1, (scale / 2) as i64)
        .await
        .expect("mid")
        .pop()
        .expect("a task mid-queue");
    let d = measure(300, budget, |_| {
        let s = s.clone();
        async move {
            let rows = s
                .pending_rows(Some((mid.rank, mid.seq)), 50, 0)
                .await
                .expect("page");
            assert_eq!(rows.len(), 50);
        }
    })
    .await;
    line("queue page deep (50, keyset)", name, &d);
    let (page, _) = s
        .history_page(HistoryFilter::All, None, None, 1, (scale / 2) as i64)
        .await
        .expect("history");
    let cursor = page
        .first()
        .map(|t| agent_scheduler::model::cursor::Cursor::Finished {
            finished_at: t.life.finished_at.unwrap_or(0),
            seq: t.seq,
        });
    let d = measure(300, budget, |_| {
        let s = s.clone();
        let cursor = cursor.clone();
        async move {
            let (rows, _) = s
                .history_page(HistoryFilter::All, None, cursor, 50, 0)
                .await
                .expect("page");
            assert_eq!(rows.len(), 50);
        }
    })
    .await;
    line("history page deep (50, keyset)", name, &d);
    let start = Instant::now();
    let d = measure(2000, budget, |_| {
        let s = s.clone();
        async move {
            let c = s
                .claim_next(
                    "http://bench".into(),
                    Clock::system().now_ms(),
                    policy_pick(),
                )
                .await
                .expect("claim");
            assert!(c.is_some());
        }
    })
    .await;
    line("claim (policy pick, window 100)", name, &d);
    println!(
        "{:<34} {name:<10} {:.0} claims/s",
        "claim rate (one claimer)",
        d.0.len() as f64 / start.elapsed().as_secs_f64()
    );
}

fn main() {
    let scale: usize = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        println!(
            "== stores: SQLite beside PostgreSQL at {scale} pending + {scale} finished ({} cores)",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite: S = Arc::new(Store::open(&dir.path().join("queue.sqlite3")).expect("open"));
        bench("sqlite", sqlite, scale).await;
        match TestDb::create().await {
            Some(db) => {
                let store = PgStore::open(&db.url, "bench", pg::DEFAULT_LEASE)
                    .await
                    .expect("open PostgreSQL");
                bench("postgres", Arc::new(store), scale).await;
            }
            None => println!("-- postgres: skipped (no server)"),
        }
    });
}
