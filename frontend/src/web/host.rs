//! Where the host is: the extension options' URL and token, and the typed client
//! (`scheduler-api`, `fetch` transport) over them. Used only from extension contexts (service
//! worker, panel, popup, options): the host sees `Origin: chrome-extension://<id>` and needs
//! no CORS. The content script asks the service worker instead (`crate::messages`).

use scheduler_api::client::Client;

use crate::state::ExtOptions;

/// The host connection settings (compared by value, so views re-connect when they change).
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    /// Base URL without trailing slash.
    pub base: String,
    /// Bearer token (empty = none).
    pub token: String,
}

impl Host {
    /// From the extension options.
    pub fn from_options(o: &ExtOptions) -> Host {
        Host {
            base: o.base(),
            token: o.token.trim().to_owned(),
        }
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
