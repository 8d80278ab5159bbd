//! Silent connections (issue 15, finding 2), against the real host process over raw TCP:
//! connections that send nothing, or only the HTTP/2 preface, are closed by the header-read
//! timeout counted from the accept, and 1,200 of them (above the default cap of 1,024) do not
//! lock a working client out, nor close a client's open event stream.

use std::time::Duration;

use scheduler_api::client::Client;
use scheduler_api::routes;
use scheduler_tests::harness::{FakeProcess, HostProcess, prerequisite};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::host_support::*;

/// The HTTP/2 connection preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// This process's soft limit of open files.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Opens `n` connections to `addr`; every third sends the HTTP/2 preface, the others nothing.
async fn silent(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = tokio::time::timeout(LONG, TcpStream::connect(addr))
            .await
            .expect("connect within the deadline")
            .expect("connect");
        if i % 3 == 0 {
            s.write_all(H2_PREFACE).await.expect("write the preface");
        }
        out.push(s);
    }
    out
}

/// Reads from `s` until `needle` shows up (or the deadline passes); returns what was read.
async fn read_until(s: &mut TcpStream, needle: &str) -> String {
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(LONG, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&seen).contains(needle) {
                return;
            }
        }
    })
    .await;
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn twelve_hundred_silent_connections_do_not_lock_out_a_working_client() {
    let limit = open_files_limit();
    prerequisite(
        "an open-files limit of at least 1,400 for the test process",
        limit.filter(|l| *l >= 1400),
        "ulimit -n 4096",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeProcess::spawn(FakeArgs::fast_a()).await;
    // A header-read timeout far beyond the test: only the cap's eviction can make room.
    let host =
        HostProcess::spawn(dir.path(), &[fake.url()], &["--header-read-timeout", "600"]).await;
    let addr = host.server.addr();

    // A working client's event stream, open before the flood.
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(format!("GET {} HTTP/1.1\r\nHost: {addr}\r\n\r\n", routes::EVENTS).as_bytes())
        .await
        .expect("ask for events");
    let head = read_until(&mut stream, "\r\n\r\n").await;
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "event stream opened: {head:?}"
    );

    let _silent = silent(addr, 1200).await;

    // A new client is answered at once, not after a timeout.
    let fresh = Client::new(&host.url());
    let health = tokio::time::timeout(Duration::from_secs(20), fresh.health())
        .await
        .expect("GET /health answered with 1,200 silent connections open")
        .expect("GET /health");
    assert!(health.success);
    // And the event stream opened before is still served (a request in flight is never
    // closed to make room).
    pause(&host.client).await;
    let events = read_until(&mut stream, "\"paused\":true").await;
    assert!(
        events.contains("\"paused\":true"),
        "the open event stream got the pause: {events:?}"
    );
}

#[tokio::test]
async fn silent_and_preface_only_connections_are_closed_by_the_header_read_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeProcess::spawn(FakeArgs::fast_a()).await;
    let host = HostProcess::spawn(dir.path(), &[fake.url()], &["--header-read-timeout", "2"]).await;
    let addr = host.server.addr();
    let mut conns = silent(addr, 30).await;
    for (i, s) in conns.iter_mut().enumerate() {
        let mut buf = [0u8; 256];
        // HTTP/2 may say goodbye (GOAWAY) before closing: read until the end.
        let closed = tokio::time::timeout(LONG, async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "silent connection {i} was closed");
    }
    // The host still answers.
    assert!(host.client.health().await.expect("health").success);
}
