//! The fake's listening socket, which can go down and come back on the same port (an outage
//! a test can switch) without ever giving the port up: while down, connecting is refused
//! (the socket stops listening but stays bound) and every open connection is cut.
//!
//! The port is bound explicitly, never as port 0: Linux releases an automatically chosen
//! port when a listening socket stops listening, and keeps an explicitly bound one. For port
//! 0 a first socket finds a free port and a second one binds it explicitly (both with
//! `SO_REUSEADDR`) before the first closes, so no other socket can take it in between.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

/// Backlog of the listening socket.
const BACKLOG: i32 = 1024;

/// Whether the listener is up, and how many times it went down (a connection accepted in
/// one epoch is cut when the next begins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Line {
    pub up: bool,
    pub epoch: u64,
}

/// Binds `addr` (port 0: a free port, then bound explicitly) and listens.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = |a: SocketAddr| -> io::Result<TcpSocket> {
        let s = if a.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        s.set_reuseaddr(true)?;
        Ok(s)
    };
    if addr.port() == 0 {
        let finder = socket(addr)?;
        finder.bind(addr)?;
        let found = finder.local_addr()?;
        let s = socket(found)?;
        s.bind(found)?;
        drop(finder);
        return s.listen(BACKLOG as u32);
    }
    let s = socket(addr)?;
    s.bind(addr)?;
    s.listen(BACKLOG as u32)
}

/// The fake's listener for `axum::serve`: accepts only while the line is up and hands out
/// connections that break when it goes down. Each time the line comes up it registers a new
/// duplicate of the socket with the runtime: a registration that saw the socket stop
/// listening stays "read closed" for good.
pub(crate) struct Switchable {
    /// The socket (its port held through outages).
    pub socket: Arc<std::net::TcpListener>,
    /// The line's state.
    pub line: watch::Receiver<Line>,
    /// The registered duplicate accepting in the current epoch.
    pub current: Option<(u64, TcpListener)>,
}

impl axum::serve::Listener for Switchable {
    type Io = Cut;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let now = *self.line.borrow_and_update();
            if !now.up {
                self.current = None;
                // Down: wait for the line to come back (or the fake to stop).
                if self.line.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                continue;
            }
            if self.current.as_ref().map(|(e, _)| *e) != Some(now.epoch) {
                let registered = self.socket.try_clone().and_then(TcpListener::from_std);
                match registered {
                    Ok(l) => self.current = Some((now.epoch, l)),
                    Err(_) => {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                }
            }
            let Some((_, inner)) = &self.current else {
                continue;
            };
            tokio::select! {
                r = inner.accept() => match r {
                    Ok((stream, addr)) => {
                        let _ = stream.set_nodelay(true);
                        return (Cut::new(stream, self.line.clone(), now.epoch), addr);
                    }
                    // Going down wakes a pending accept with an error; anything else (too
                    // many open files) is waited out briefly, as axum does.
                    Err(_) if !self.line.borrow().up => {}
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                },
                _ = self.line.changed() => {}
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.socket.local_addr()
    }
}

/// Stops listening on `socket` (connecting is refused; the port stays bound).
pub(crate) fn stop_listening(socket: &std::net::TcpListener) -> io::Result<()> {
    socket2::SockRef::from(socket).shutdown(std::net::Shutdown::Read)
}

/// Listens again on a socket [`stop_listening`] stopped.
pub(crate) fn listen_again(socket: &std::net::TcpListener) -> io::Result<()> {
    socket2::SockRef::from(socket).listen(BACKLOG)
}

/// A connection that fails every read and write once the line it was accepted on went down
/// (the server died under it).
pub(crate) struct Cut {
    stream: TcpStream,
    gone: Pin<Box<dyn Future<Output = ()> + Send>>,
    dead: bool,
}

impl Cut {
    fn new(stream: TcpStream, mut line: watch::Receiver<Line>, epoch: u64) -> Cut {
        let gone = Box::pin(async move {
            // A closed channel (the fake stopped) ends the connection too.
            let _ = line.wait_for(|l| l.epoch != epoch).await;
        });
        Cut {
            stream,
            gone,
            dead: false,
        }
    }

    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.dead && self.gone.as_mut().poll(cx).is_ready() {
            self.dead = true;
        }
        if self.dead {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "fake SD.Next: the server went down",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for Cut {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Cut {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
