//! Request guards: DNS-rebinding `Host` check on loopback binds, `Origin` allow-list, bearer
//! token (compared in constant time).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use scheduler_api::ErrorCode;

use super::error::ApiError;

/// What the guard allows.
#[derive(Debug, Clone)]
pub struct Security {
    /// Allowed `Origin` values (lower case, no trailing slash).
    pub origins: Vec<String>,
    /// The pool, whose backends' origins are allowed too (backends added at run time
    /// included).
    pub pool: Option<Arc<crate::backends::Backends>>,
    /// `Host` values accepted on a loopback bind; `None` = any (non-loopback bind).
    pub hosts: Option<Vec<String>>,
    /// Required bearer token.
    pub token: Option<String>,
}

impl Security {
    /// Also allows the origins of the pool's backends, as they are at each request.
    pub fn with_pool(mut self, pool: Arc<crate::backends::Backends>) -> Security {
        self.pool = Some(pool);
        self
    }

    /// Builds the guard for a bound address.
    pub fn new(
        addr: SocketAddr,
        backend_origins: &[String],
        extra_origins: &[String],
        token: Option<String>,
    ) -> Security {
        let norm = |s: &str| s.trim().trim_end_matches('/').to_ascii_lowercase();
        let mut origins = vec![norm(scheduler_api::EXTENSION_ORIGIN)];
        origins.extend(backend_origins.iter().map(|o| norm(o)));
        origins.extend(extra_origins.iter().map(|o| norm(o)));
        let hosts = addr.ip().is_loopback().then(|| {
            let p = addr.port();
            let mut v = vec![
                format!("127.0.0.1:{p}"),
                format!("localhost:{p}"),
                format!("[::1]:{p}"),
            ];
            if p == 80 {
                v.extend(["127.0.0.1".into(), "localhost".into(), "[::1]".into()]);
            }
            v
        });
        Security {
            origins,
            pool: None,
            hosts,
            token,
        }
    }
}

/// Constant-time byte comparison.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The middleware.
pub async fn guard(State(sec): State<Arc<Security>>, req: Request, next: Next) -> Response {
    if let Some(hosts) = &sec.hosts {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(|h| h.to_ascii_lowercase())
            .or_else(|| {
                req.uri()
                    .authority()
                    .map(|a| a.as_str().to_ascii_lowercase())
            });
        if !host.is_some_and(|h| hosts.contains(&h)) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "Host not allowed",
            )
            .into_response();
        }
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let o = origin
            .to_str()
            .map(|s| s.trim().trim_end_matches('/').to_ascii_lowercase())
            .unwrap_or_default();
        let from_pool = || {
            sec.pool.as_ref().is_some_and(|p| {
                p.origins()
                    .iter()
                    .any(|b| b.trim_end_matches('/').eq_ignore_ascii_case(&o))
            })
        };
        // The host's own origin: the web app it serves (on a loopback bind the `Host` was
        // checked above, so a rebound name cannot pose as it).
        let own = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|h| o == format!("http://{}", h.to_ascii_lowercase()));
        if !own && !sec.origins.contains(&o) && !from_pool() {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "Origin not allowed",
            )
            .into_response();
        }
    }
    // The web app's page and files carry no data; the page asks for the token itself.
    let open =
        req.method() == axum::http::Method::GET && super::webapp::is_webapp_path(req.uri().path());
    if let Some(token) = sec.token.as_ref().filter(|_| !open) {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !given.is_some_and(|g| ct_eq(g.as_bytes(), token.as_bytes())) {
            let mut r = ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "missing or wrong bearer token",
            )
            .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    }
    next.run(req).await
}
