//! What the client needs from HTTP: send a request and read the whole answer, open a request
//! whose body is read chunk by chunk (the event stream), and wait (reconnect backoff).
//!
//! [`super::Client`] builds every request and decodes every answer itself; a transport only
//! moves bytes. The default one is reqwest on native targets and `fetch` on wasm32; tests can
//! plug their own (for example an in-process router).

use std::future::Future;
use std::pin::Pin;

use serde::de::DeserializeOwned;

use super::ClientError;
use crate::MessageResponse;

/// A boxed future (`Send` on native targets, where runtimes move tasks between threads).
#[cfg(not(target_arch = "wasm32"))]
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A boxed future (`Send` on native targets, where runtimes move tasks between threads).
#[cfg(target_arch = "wasm32")]
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// `Send + Sync` on native targets, nothing on wasm32 (where JS values are neither).
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSendSync: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSendSync for T {}
/// `Send + Sync` on native targets, nothing on wasm32 (where JS values are neither).
#[cfg(target_arch = "wasm32")]
pub trait MaybeSendSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSendSync for T {}

/// `Send` on native targets, nothing on wasm32.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}
/// `Send` on native targets, nothing on wasm32.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// PATCH (no route uses it; for tests of 405 answers)
    Patch,
    /// HEAD
    Head,
    /// OPTIONS
    Options,
}

impl Method {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
        }
    }
}

/// A request as the transport sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Headers in order (the client adds `Authorization` and `Content-Type` here).
    pub headers: Vec<(String, String)>,
    /// Body bytes, if any.
    pub body: Option<Vec<u8>>,
}

/// A whole answer.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers (names in lower case).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded as JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The body as the error shape `{success, message, code}`, when it is one.
    pub fn message(&self) -> Option<MessageResponse> {
        self.json().ok()
    }
}

/// A body read chunk by chunk.
pub trait ByteStream: MaybeSend {
    /// The next chunk; `Ok(None)` at the end.
    fn next_chunk(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, ClientError>>;
}

/// An answer whose body is still coming.
pub struct StreamResponse {
    /// Status code.
    pub status: u16,
    /// Headers (names in lower case).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Box<dyn ByteStream>,
}

impl std::fmt::Debug for StreamResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl StreamResponse {
    /// Reads the rest of the body into a whole answer.
    pub async fn collect(mut self) -> Result<HttpResponse, ClientError> {
        let mut body = Vec::new();
        while let Some(chunk) = self.body.next_chunk().await? {
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status: self.status,
            headers: self.headers,
            body,
        })
    }
}

/// Moves requests and answers. Errors are [`ClientError::Unreachable`] (no connection, or
/// the connection broke); any HTTP status is an answer, not an error.
pub trait Transport: MaybeSendSync {
    /// Sends a request and reads the whole answer.
    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, ClientError>>;

    /// Sends a request and returns as soon as the headers are in.
    fn open(&self, req: HttpRequest) -> BoxFuture<'_, Result<StreamResponse, ClientError>>;

    /// Waits `ms` milliseconds (the event stream's reconnect backoff).
    fn sleep(&self, ms: u32) -> BoxFuture<'static, ()>;
}
