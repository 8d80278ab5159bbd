//! Request guards: DNS-rebinding `Host` check on loopback binds, `Origin` allow-list, bearer
//! token (compared in constant time).
//!
//! Origins allowed: the Chromium extension's (`chrome-extension://<id>`, the id fixed by the
//! manifest key), the backends', `--allow-origin` ones and the host's own (the web app). A
//! Firefox extension's origin is `moz-extension://<uuid>` with a uuid of its own per install,
//! so it cannot be listed in advance: it is allowed by `--allow-origin`, or, when the host
//! has a token, by carrying that token (any browser extension holding the token passes: the
//! token is the credential, the Origin check only keeps web pages out).

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

/// Whether `origin` (lower case, no trailing slash) is a browser extension's page or worker.
pub fn is_extension_origin(origin: &str) -> bool {
    ["moz-extension://", "chrome-extension://"]
        .iter()
        .any(|s| origin.strip_prefix(s).is_some_and(|rest| !rest.is_empty()))
}

/// Whether the request's `Authorization: Bearer` is the token.
fn bearer_ok(req: &Request, token: &str) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .is_some_and(|g| ct_eq(g.as_bytes(), token.as_bytes()))
}

/// The refusal of an origin; for an extension, the message says how to allow it.
fn origin_refused(origin: &str) -> Response {
    let message = if is_extension_origin(origin) {
        format!(
            "Origin {origin} not allowed: start the host with --allow-origin {origin} \
             (or give the host a --token and the extension the same token)"
        )
    } else {
        "Origin not allowed".to_owned()
    };
    ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message).into_response()
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
        let own = || {
            req.headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|h| o == format!("http://{}", h.to_ascii_lowercase()))
        };
        // An extension holding the token (Firefox's per-install origin).
        let extension_with_token =
            || is_extension_origin(&o) && sec.token.as_deref().is_some_and(|t| bearer_ok(&req, t));
        if !sec.origins.contains(&o) && !own() && !from_pool() && !extension_with_token() {
            return origin_refused(&o);
        }
    }
    // The web app's page and files carry no data; the page asks for the token itself.
    let open =
        req.method() == axum::http::Method::GET && super::webapp::is_webapp_path(req.uri().path());
    if let Some(token) = sec.token.as_ref().filter(|_| !open)
        && !bearer_ok(&req, token)
    {
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
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_origins_are_told_apart_from_pages() {
        assert!(is_extension_origin(
            "moz-extension://1b2c3d4e-0000-4000-8000-123456789abc"
        ));
        assert!(is_extension_origin(scheduler_api::EXTENSION_ORIGIN));
        assert!(!is_extension_origin("moz-extension://"));
        assert!(!is_extension_origin("http://moz-extension.example"));
        assert!(!is_extension_origin("https://evil.example"));
    }
}
