//! The web app: the task panel (the extension's own Yew code, built by `frontend/build.sh`
//! into `target/webapp/`) for any browser on this machine or the LAN, served at `/` with its
//! files under `/app/`. Same origin as the API, so no CORS; the guard lets these files
//! through without the token (the page carries the login form) but still checks `Host`
//! and `Origin`. The page gets a strict CSP (scripts and connections to this host only).
//!
//! The folder is `--webapp DIR`, or found beside the binary's folder: `<exe>/../webapp`
//! (`target/release/agent-scheduler` → `target/webapp`, what the README's run command
//! builds) or `<exe dir>/webapp` (an installed layout).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use scheduler_api::MessageResponse;

/// The page's Content-Security-Policy: its own scripts and wasm, styles (Yew writes `style`
/// attributes), images from itself and the object/data URLs it makes, API calls to itself.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; connect-src 'self'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

/// Where the web app's files are (if built).
#[derive(Debug, Clone, Default)]
pub struct WebApp {
    dir: Option<PathBuf>,
}

impl WebApp {
    /// `dir` when given, else the folder found beside the running binary.
    pub fn locate(dir: Option<PathBuf>) -> WebApp {
        let found = dir.or_else(|| {
            let exe = std::env::current_exe().ok()?;
            let bin_dir = exe.parent()?;
            [
                bin_dir.parent().map(|p| p.join("webapp")),
                Some(bin_dir.join("webapp")),
            ]
            .into_iter()
            .flatten()
            .find(|d| d.join("app.html").is_file())
        });
        if let Some(d) = &found {
            tracing::info!("web app: {}", d.display());
        }
        WebApp { dir: found }
    }

    /// The folder, when the web app is there.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref().filter(|d| d.join("app.html").is_file())
    }
}

/// Whether a path is one of the web app's (the guard skips the token check for them).
pub fn is_webapp_path(path: &str) -> bool {
    path == scheduler_api::routes::WEBAPP || path.starts_with("/app/")
}

fn content_type(name: &str) -> Option<&'static str> {
    Some(match name.rsplit_once('.')?.1 {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "png" => "image/png",
        "json" => "application/json",
        _ => return None,
    })
}

/// A file name we serve: letters, digits, `-`, `_` and dots, not starting with a dot.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

async fn serve_file(app: &WebApp, sub: &str, name: &str) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "Not found").into_response();
    let (Some(dir), true, Some(ct)) = (app.dir(), safe_name(name), content_type(name)) else {
        return not_found();
    };
    let Ok(bytes) = tokio::fs::read(dir.join(sub).join(name)).await else {
        return not_found();
    };
    (
        [
            (header::CONTENT_TYPE, ct),
            // Rebuilt files keep their names: revalidate every time.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    )
        .into_response()
}

/// The web app's page (the task panel; a token login when the host asks for one).
#[utoipa::path(get, path = scheduler_api::routes::WEBAPP, tag = "web app", operation_id = "get_webapp",
    responses(
        (status = 200, description = "The web app's page.", content_type = "text/html"),
        (status = 404, description = "The web app is not built (run `bash frontend/build.sh`); the error body names the fix.", body = MessageResponse),
    ))]
pub async fn page(State(app): State<Arc<WebApp>>) -> Response {
    let page = match app.dir() {
        Some(dir) => tokio::fs::read(dir.join("app.html")).await.ok(),
        None => None,
    };
    match page {
        Some(bytes) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
                (header::CONTENT_SECURITY_POLICY, CSP),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::REFERRER_POLICY, "no-referrer"),
            ],
            bytes,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!doctype html><title>Agent Scheduler</title><p>The web app is not built. Run \
             <code>bash frontend/build.sh</code> (it makes <code>target/webapp</code>, which the \
             host finds beside its binary), or start the host with <code>--webapp DIR</code>.\
             The API is at <a href=\"/docs\">/docs</a>.</p>",
        )
            .into_response(),
    }
}

/// A file of the web app (its script, style, icons).
#[utoipa::path(get, path = "/app/{file}", tag = "web app", operation_id = "get_webapp_file",
    params(("file" = String, Path, description = "File name (`app.js`, `ui.css`).")),
    responses(
        (status = 200, description = "The file.", content_type = "text/javascript"),
        (status = 404, description = "No such file."),
    ))]
pub async fn file(State(app): State<Arc<WebApp>>, UrlPath(file): UrlPath<String>) -> Response {
    serve_file(&app, "", &file).await
}

/// The panel's wasm module and its loader.
#[utoipa::path(get, path = "/app/pkg/{file}", tag = "web app", operation_id = "get_webapp_module",
    params(("file" = String, Path, description = "File name (`panel.js`, `panel_bg.wasm`).")),
    responses(
        (status = 200, description = "The file.", content_type = "application/wasm"),
        (status = 404, description = "No such file."),
    ))]
pub async fn module(State(app): State<Arc<WebApp>>, UrlPath(file): UrlPath<String>) -> Response {
    serve_file(&app, "pkg", &file).await
}

/// The icons.
#[utoipa::path(get, path = "/app/icons/{file}", tag = "web app", operation_id = "get_webapp_icon",
    params(("file" = String, Path, description = "File name (`icon32.png`).")),
    responses(
        (status = 200, description = "The icon.", content_type = "image/png"),
        (status = 404, description = "No such file."),
    ))]
pub async fn icon(State(app): State<Arc<WebApp>>, UrlPath(file): UrlPath<String>) -> Response {
    serve_file(&app, "icons", &file).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_paths_and_types() {
        assert!(safe_name("panel_bg.wasm") && safe_name("icon32.png"));
        for bad in ["", ".env", "../x", "a/b", "a\\b", "x%2e"] {
            assert!(!safe_name(bad), "{bad}");
        }
        assert_eq!(content_type("panel_bg.wasm"), Some("application/wasm"));
        assert_eq!(
            content_type("app.js"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(content_type("secret.sqlite3"), None);
        assert!(is_webapp_path("/") && is_webapp_path("/app/pkg/panel.js"));
        assert!(!is_webapp_path("/agent-scheduler/v1/queue") && !is_webapp_path("/application"));
    }
}
