//! The figures of issue 15's bounded peers, measured against the real `agent-scheduler` and
//! `fake-sdnext` binaries of the same profile (release for `cargo bench`):
//!
//! - `silent`: a working client's `GET /health` latency (p50/p99 over 200 requests, each on
//!   a new connection) with no other connection open, then with 1,200 silent connections
//!   open (every third sent only the HTTP/2 preface).
//!
//! `BENCH=silent,…` picks sections (default: all).
//! Run: `cargo build --release --workspace --bins && cargo bench -p scheduler-tests --bench bounds`

use std::time::{Duration, Instant};

use scheduler_api::client::Client;
use scheduler_tests::harness::{FakeProcess, HostProcess};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const FAST_A: &[&str] = &["--step-ms", "1", "--checkpoint", "a", "--loaded", "a"];

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
    let fake = FakeProcess::spawn(FAST_A).await;
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

fn main() {
    let only = std::env::var("BENCH").unwrap_or_default();
    let wants = |s: &str| only.is_empty() || only.split(',').any(|w| w.trim() == s);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        if wants("silent") {
            silent().await;
        }
    });
}
