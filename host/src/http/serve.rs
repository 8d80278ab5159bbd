//! The HTTP server loop: accepts connections up to a cap, gives each one a header-read
//! timeout, and makes the answers hyper writes on its own (before any handler runs) use the
//! same `{"success": false, "message", "code"}` body as every other error.
//!
//! - `--max-connections N` (default 1,024): at the cap the oldest idle connection is closed to
//!   make room for the next one — first one that has not sent a whole request head yet, else
//!   one between requests; a connection with a request in flight (an event stream included)
//!   is never closed. When every connection has a request in flight, the loop stops accepting
//!   (new connections wait in the kernel's backlog) until one ends or goes idle. So silent
//!   connections never lock a working client out.
//! - `--header-read-timeout SECONDS` (default 30): a connection that has not sent a whole
//!   request head in that time is closed (slow-header clients). For the first request the
//!   time runs from the accept (a connection that sends nothing, or only the HTTP/2 preface,
//!   is closed too); for later ones on an HTTP/1 connection, hyper's timer from the end of
//!   the previous answer.
//! - hyper answers a malformed request (400), a URI too long (414) or headers too large
//!   (431) itself, with an empty body; [`JsonErrors`] rewrites exactly those answers.
//!
//! Graceful shutdown: stop accepting, let requests in flight end (bounded by
//! [`DRAIN_TIMEOUT`]).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use scheduler_api::{ErrorCode, MessageResponse};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::config::ServeLimits;

/// How long shutdown waits for requests in flight.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cap = limits.max_connections.max(1);
    let tracker = Arc::new(Tracker::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let service = TowerToHyperService::new(app);
    tokio::pin!(shutdown);
    'accept: loop {
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
        // Room for the new one: at the cap, the oldest idle connection makes way; when every
        // connection has a request in flight, wait for one to end or go idle.
        loop {
            let changed = tracker.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if tracker.len() < cap {
                break;
            }
            tracker.evict_oldest_idle();
            tokio::select! {
                _ = changed => {}
                _ = &mut shutdown => break 'accept,
            }
        }
        let _ = stream.set_nodelay(true);
        let state = tracker.open();
        let io = TokioIo::new(JsonErrors::new(stream));
        let svc = Tracked {
            inner: service.clone(),
            state: state.clone(),
        };
        let conn = builder.serve_connection_with_upgrades(io, svc).into_owned();
        let conn = graceful.watch(conn);
        let tracker = tracker.clone();
        let silent_for = limits.header_read_timeout;
        tokio::spawn(async move {
            // The header-read timeout from the accept on: a connection that sends nothing, or
            // only the HTTP/2 preface, never reaches hyper's HTTP/1 timer (which starts when
            // hyper reads a head, after the protocol is known).
            let silent = {
                let state = state.clone();
                async move {
                    tokio::time::sleep(silent_for).await;
                    if state.requests.load(Ordering::Acquire) > 0 {
                        std::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                _ = conn => {}
                _ = state.evict.notified() => {}
                _ = silent => {}
            }
            tracker.close(state.id);
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

/// The open connections, oldest first, and what each is doing.
#[derive(Default)]
struct Tracker {
    conns: Mutex<BTreeMap<u64, Arc<ConnState>>>,
    next: AtomicU64,
    /// A connection closed or went idle: the accept loop may have room.
    changed: Arc<Notify>,
}

/// One connection's state.
struct ConnState {
    id: u64,
    /// Requests whose head arrived (0: the connection has not sent a whole head yet).
    requests: AtomicU64,
    /// Requests whose answer is not finished yet (an event stream is in flight while open).
    in_flight: AtomicUsize,
    /// Asked to close at the cap.
    evicted: AtomicBool,
    evict: Notify,
    /// The tracker's `changed`.
    changed: Arc<Notify>,
}

impl Tracker {
    fn open(&self) -> Arc<ConnState> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState {
            id,
            requests: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
            changed: self.changed.clone(),
        });
        self.lock().insert(id, state.clone());
        state
    }

    fn close(&self, id: u64) {
        self.lock().remove(&id);
        self.changed.notify_one();
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<ConnState>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes the oldest connection that has not sent a whole request head, else the oldest
    /// one between requests; one with a request in flight is never closed. Returns whether
    /// one was asked to close (it leaves the table when its task ends).
    fn evict_oldest_idle(&self) -> bool {
        let conns = self.lock();
        if conns.values().any(|c| c.evicted.load(Ordering::Acquire)) {
            // One is already closing: its room is on the way.
            return false;
        }
        let idle = |c: &&Arc<ConnState>| {
            !c.evicted.load(Ordering::Acquire) && c.in_flight.load(Ordering::Acquire) == 0
        };
        let victim = conns
            .values()
            .filter(idle)
            .find(|c| c.requests.load(Ordering::Acquire) == 0)
            .or_else(|| conns.values().find(idle));
        match victim {
            Some(c) => {
                c.evicted.store(true, Ordering::Release);
                c.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Counts a request in flight from its head to the end of its answer's body.
struct InFlight {
    state: Arc<ConnState>,
}

impl InFlight {
    fn start(state: Arc<ConnState>) -> InFlight {
        state.requests.fetch_add(1, Ordering::AcqRel);
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight { state }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.state.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.state.changed.notify_one();
        }
    }
}

/// The app as a hyper service that marks each connection's requests in flight.
#[derive(Clone)]
struct Tracked {
    inner: TowerToHyperService<Router>,
    state: Arc<ConnState>,
}

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let guard = InFlight::start(self.state.clone());
        let answer = self.inner.call(req);
        Box::pin(async move {
            let resp = answer.await?;
            Ok(resp.map(|body| {
                Body::new(Guarded {
                    inner: body,
                    _guard: guard,
                })
            }))
        })
    }
}

/// An answer's body that keeps its request in flight until it is finished or dropped.
struct Guarded {
    inner: Body,
    _guard: InFlight,
}

impl HttpBody for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
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
    fn at_the_cap_the_oldest_silent_connection_goes_first_and_busy_ones_never() {
        let t = Tracker::default();
        let busy = t.open();
        let _busy_request = InFlight::start(busy.clone());
        let between = t.open();
        drop(InFlight::start(between.clone()));
        let silent = t.open();
        let later = t.open();
        assert!(t.evict_oldest_idle());
        assert!(
            silent.evicted.load(Ordering::Acquire),
            "the oldest silent one"
        );
        // While it closes, no other is asked.
        assert!(!t.evict_oldest_idle());
        t.close(silent.id);
        assert!(t.evict_oldest_idle());
        assert!(later.evicted.load(Ordering::Acquire));
        t.close(later.id);
        // Then the one between requests; the busy one never.
        assert!(t.evict_oldest_idle());
        assert!(between.evicted.load(Ordering::Acquire));
        t.close(between.id);
        assert!(!t.evict_oldest_idle());
        assert!(!busy.evicted.load(Ordering::Acquire));
        assert_eq!(t.len(), 1);
    }

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
