//! The HTTP server loop: accepts connections up to a cap, gives each one a header-read
//! timeout, and makes the answers hyper writes on its own (before any handler runs) use the
//! same `{"success": false, "message", "code"}` body as every other error.
//!
//! - `--max-connections N` (default 1,024): at the cap the loop stops accepting (new
//!   connections wait in the kernel's backlog) until one closes.
//! - `--header-read-timeout SECONDS` (default 30): a connection that has not sent a whole
//!   request head in that time is closed (slow-header clients).
//! - hyper answers a malformed request (400), a URI too long (414) or headers too large
//!   (431) itself, with an empty body; [`JsonErrors`] rewrites exactly those answers.
//!
//! Graceful shutdown: stop accepting, let requests in flight end (bounded by
//! [`DRAIN_TIMEOUT`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use scheduler_api::{ErrorCode, MessageResponse};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The default connection cap.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// The default header-read timeout.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for requests in flight.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Limits of the server loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Time to receive a whole request head.
    pub header_read_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let service = TowerToHyperService::new(app);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(JsonErrors::new(stream));
        let conn = builder
            .serve_connection_with_upgrades(io, service.clone())
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("requests still open after {DRAIN_TIMEOUT:?}: closing them");
    }
    Ok(())
}

/// The body hyper's own error answers get.
fn json_error(status: u16) -> Option<Vec<u8>> {
    let (reason, message, code) = match status {
        400 => (
            "Bad Request",
            "malformed HTTP request",
            ErrorCode::BadRequest,
        ),
        414 => (
            "URI Too Long",
            "the request URI is too long",
            ErrorCode::BadRequest,
        ),
        431 => (
            "Request Header Fields Too Large",
            "the request headers are too large",
            ErrorCode::BadRequest,
        ),
        _ => return None,
    };
    let body = serde_json::to_vec(&MessageResponse {
        success: false,
        message: message.to_owned(),
        code: Some(code),
        path: None,
    })
    .ok()?;
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

/// Whether `buf` is an answer hyper wrote on its own for a request it could not parse:
/// `HTTP/1.1 400|414|431 …` with an empty body (the handlers' error answers always have a
/// JSON body). Returns its status.
fn automatic_error(buf: &[u8]) -> Option<u16> {
    if buf.len() > 1024 || !buf.starts_with(b"HTTP/1.1 ") || !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let status: u16 = std::str::from_utf8(buf.get(9..12)?).ok()?.parse().ok()?;
    if !matches!(status, 400 | 414 | 431) {
        return None;
    }
    let head = String::from_utf8_lossy(buf).to_ascii_lowercase();
    head.contains("\r\ncontent-length: 0\r\n").then_some(status)
}

/// A connection whose automatic error answers are rewritten as JSON (see the module doc).
pub struct JsonErrors<S> {
    inner: S,
    /// A replacement being written: the bytes and how many went out.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> JsonErrors<S> {
    /// Wraps a connection.
    pub fn new(inner: S) -> JsonErrors<S> {
        JsonErrors {
            inner,
            pending: None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.pending.is_none()
            && let Some(reply) = automatic_error(buf).and_then(json_error)
        {
            self.pending = Some((reply, 0));
        }
        let this = &mut *self;
        let Some((reply, sent)) = this.pending.as_mut() else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        while *sent < reply.len() {
            match Pin::new(&mut this.inner).poll_write(cx, &reply[*sent..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => *sent += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        this.pending = None;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_empty_error_answers_are_rewritten() {
        let auto = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(automatic_error(auto), Some(400));
        let big = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(automatic_error(big), Some(431));
        let app = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 57\r\n\r\n";
        assert_eq!(automatic_error(app), None);
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(automatic_error(ok), None);
        let reply = String::from_utf8(json_error(414).unwrap()).unwrap();
        assert!(reply.starts_with("HTTP/1.1 414 URI Too Long\r\n"));
        assert!(reply.ends_with(
            r#"{"success":false,"message":"the request URI is too long","code":"bad_request"}"#
        ));
    }
}
