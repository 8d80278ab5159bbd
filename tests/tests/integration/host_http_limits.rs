//! Slow clients and errors before the handlers (issue 7, finding 8), against the real host
//! process over raw TCP: a header-read timeout and a connection cap (both flags), and the
//! standard `{"success": false, "message", "code"}` body on 400, 413, 414 and 431.

use scheduler_tests::harness::{HostProcess, wait_for};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::host_support::*;

/// Sends raw bytes and reads the whole answer (the host closes after an error).
async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    // The host may answer (and close) before it has read everything.
    let _ = s.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(LONG, s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Connections on `port` (its accepted sockets, not the listener) that process `pid` holds.
fn accepted_on(pid: u32, port: u16) -> usize {
    let mut inodes = std::collections::HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            // State 0A is LISTEN: not a connection.
            if local_port == Some(port)
                && f.get(3) != Some(&"0A")
                && let Some(inode) = f.get(9)
            {
                inodes.insert(format!("socket:[{inode}]"));
            }
        }
    }
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .map(|l| inodes.contains(&*l.to_string_lossy()))
                        .unwrap_or(false)
                })
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn slow_headers_time_out_connections_are_capped_and_early_errors_are_json() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = scheduler_tests::harness::FakeProcess::spawn(FakeArgs::fast_a()).await;
    let host = HostProcess::spawn(
        dir.path(),
        &[fake.url()],
        &["--header-read-timeout", "2", "--max-connections", "8"],
    )
    .await;
    let addr = host.server.addr();
    let pid = host.server.pid().expect("pid");
    let port = addr.port();

    // 40 clients that send half a request head and then nothing.
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /agent-scheduler/v1/queue HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .expect("write");
        slow.push(s);
    }
    wait_for("the host to take 8 of them", LONG, || async {
        accepted_on(pid, port) >= 8
    })
    .await;
    assert_eq!(accepted_on(pid, port), 8, "the cap holds");
    // Each slow connection is closed after the header-read timeout (the ones waiting in the
    // backlog get their turn, and their timeout, after).
    for s in &mut slow {
        let mut buf = [0u8; 256];
        let closed = tokio::time::timeout(LONG, s.read(&mut buf)).await;
        assert!(
            matches!(closed, Ok(Ok(_)) | Ok(Err(_))),
            "a slow connection was closed"
        );
    }
    // And the host still answers.
    assert_eq!(queue(&host.client).await.total_pending_tasks, 0);

    // Errors produced before any handler have the standard body.
    let (status, body) = exchange(addr, b"NOT A REQUEST\r\n\r\n").await;
    assert_eq!(status, 400);
    assert_eq!(body["success"], Value::Bool(false));
    assert_eq!(body["code"], "bad_request");
    let long_uri = format!(
        "GET /agent-scheduler/v1/queue?q={} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "a".repeat(70_000)
    );
    let (status, body) = exchange(addr, long_uri.as_bytes()).await;
    assert_eq!(status, 414, "{body}");
    assert_eq!(body["message"], "the request URI is too long");
    let mut many = String::from("GET /agent-scheduler/v1/queue HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for i in 0..200 {
        many.push_str(&format!("x-h{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let (status, body) = exchange(addr, many.as_bytes()).await;
    assert_eq!(status, 431, "{body}");
    assert_eq!(body["message"], "the request headers are too large");
    let mut big = format!(
        "POST /agent-scheduler/v1/queue/txt2img HTTP/1.1\r\nHost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        4 << 20
    )
    .into_bytes();
    big.extend(std::iter::repeat_n(b' ', 4 << 20));
    let (status, body) = exchange(addr, &big).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["success"], Value::Bool(false));
    assert_eq!(body["code"], "too_large");
}
