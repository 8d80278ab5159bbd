//! Where the host is, and the typed client (`scheduler-api`, `fetch` transport) over it.
//!
//! In the extension (service worker, panel, popup, options) the options give the URL and
//! token: the host sees `Origin: chrome-extension://<id>` and needs no CORS; the content
//! script asks the service worker instead (`crate::messages`). In the web app the host
//! serves at `/`, the host is the page's own origin and the token is the one typed into the
//! login form, kept in `sessionStorage` (never a cookie: another site cannot send it).

use scheduler_api::client::Client;

use crate::state::ExtOptions;

/// Where the panel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// An extension page (`chrome.*` available; the SD.Next page can be filled).
    Extension,
    /// The web app served by the host (no `chrome.*`).
    Web,
}

/// The `sessionStorage` key of the web app's token.
const TOKEN_KEY: &str = "agent-scheduler-token";

/// The host connection settings (compared by value, so views re-connect when they change).
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    /// Base URL without trailing slash.
    pub base: String,
    /// Bearer token (empty = none).
    pub token: String,
    /// Where the panel runs.
    pub platform: Platform,
}

impl Host {
    /// From the extension options.
    pub fn from_options(o: &ExtOptions) -> Host {
        Host {
            base: o.base(),
            token: o.token.trim().to_owned(),
            platform: Platform::Extension,
        }
    }

    /// The web app's host: the page's origin, with the session's token.
    pub fn web() -> Host {
        let w = web_sys::window();
        Host {
            base: w
                .as_ref()
                .and_then(|w| w.location().origin().ok())
                .unwrap_or_default(),
            token: w
                .and_then(|w| w.session_storage().ok().flatten())
                .and_then(|s| s.get_item(TOKEN_KEY).ok().flatten())
                .unwrap_or_default(),
            platform: Platform::Web,
        }
    }

    /// The web app's host with a new token, remembered for this browser tab's session.
    pub fn web_with_token(token: &str) -> Host {
        if let Some(s) = web_sys::window().and_then(|w| w.session_storage().ok().flatten()) {
            let _ = if token.is_empty() {
                s.remove_item(TOKEN_KEY)
            } else {
                s.set_item(TOKEN_KEY, token)
            };
        }
        Host::web()
    }

    /// Whether this is the web app.
    pub fn is_web(&self) -> bool {
        self.platform == Platform::Web
    }

    /// From the stored options.
    pub async fn load() -> Host {
        Host::from_options(&super::chrome::load_options().await)
    }

    /// The typed client of this host.
    pub fn api(&self) -> Client {
        Client::new(&self.base).with_token(Some(self.token.clone()))
    }
}

/// The error text shown to people: the host's message for refusals.
pub fn error_text(e: &scheduler_api::client::ClientError) -> String {
    use scheduler_api::client::ClientError;
    match e {
        ClientError::Refused { status, body } => format!("{status} {}", body.message),
        ClientError::Unreachable { url, .. } => {
            let base = url.split("/agent-scheduler/").next().unwrap_or(url);
            format!("host not reachable at {base}")
        }
        other => other.to_string(),
    }
}

/// A JS `Blob` of bytes (downloads).
pub fn blob(bytes: &[u8], content_type: &str) -> Result<web_sys::Blob, String> {
    let arr = js_sys::Array::new();
    arr.push(&js_sys::Uint8Array::from(bytes).into());
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(content_type);
    web_sys::Blob::new_with_u8_array_sequence_and_options(&arr, &opts).map_err(|e| format!("{e:?}"))
}
