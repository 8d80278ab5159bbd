//! The host client, used only from extension contexts (service worker, panel, popup,
//! options): the host sees `Origin: chrome-extension://<id>` and needs no CORS. The content
//! script goes through the service worker ([`relay`]).

use scheduler_api::{Event, MessageResponse};
use serde::de::DeserializeOwned;
use serde_json::Value;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit};

use super::util;
use crate::sse::SseParser;
use crate::state::ExtOptions;

/// Where the host is and how to authenticate.
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

    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Request, String> {
        let init = RequestInit::new();
        init.set_method(method);
        let headers = Headers::new().map_err(|e| format!("{e:?}"))?;
        if !self.token.is_empty() {
            let _ = headers.set("Authorization", &format!("Bearer {}", self.token));
        }
        if let Some(b) = body {
            let _ = headers.set("Content-Type", "application/json");
            init.set_body(&JsValue::from_str(&b.to_string()));
        }
        init.set_headers(&headers);
        Request::new_with_str_and_init(&format!("{}{}", self.base, path), &init)
            .map_err(|e| format!("{e:?}"))
    }

    /// Any call: the JSON answer (or the text as a JSON string); errors carry the host's
    /// message.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let req = self.request(method, path, body)?;
        let resp = util::fetch(&req)
            .await
            .map_err(|_| format!("host not reachable at {}", self.base))?;
        let text = JsFuture::from(resp.text().map_err(|e| format!("{e:?}"))?)
            .await
            .ok()
            .and_then(|t| t.as_string())
            .unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        if resp.ok() {
            Ok(json)
        } else {
            let msg = serde_json::from_value::<MessageResponse>(json.clone())
                .map(|m| m.message)
                .unwrap_or_else(|_| text.chars().take(200).collect());
            Err(format!("{} {}", resp.status(), msg))
        }
    }

    /// GET and decode.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let v = self.call("GET", path, None).await?;
        serde_json::from_value(v).map_err(|e| format!("bad answer from {path}: {e}"))
    }

    /// POST without a body; returns the message text.
    pub async fn post(&self, path: &str) -> Result<String, String> {
        let v = self.call("POST", path, None).await?;
        Ok(v.get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("ok")
            .to_owned())
    }

    /// GET as a blob (zip download).
    pub async fn blob(&self, path: &str) -> Result<web_sys::Blob, String> {
        let req = self.request("GET", path, None)?;
        let resp = util::fetch(&req)
            .await
            .map_err(|_| "host not reachable".to_owned())?;
        if !resp.ok() {
            return Err(format!("{}", resp.status()));
        }
        let b = JsFuture::from(resp.blob().map_err(|e| format!("{e:?}"))?)
            .await
            .map_err(|e| format!("{e:?}"))?;
        b.dyn_into().map_err(|_| "not a blob".into())
    }

    /// Reads the event stream until it ends, fails, or `keep_going` turns false (checked at
    /// every chunk; the host sends a heartbeat every 15 s); every event goes to `on_event`
    /// with its id. `last_id` is sent as `Last-Event-ID`; the last id seen is returned.
    pub async fn stream_events(
        &self,
        last_id: Option<String>,
        on_open: &dyn Fn(),
        on_event: &dyn Fn(Option<String>, Event),
        keep_going: &dyn Fn() -> bool,
    ) -> Result<Option<String>, String> {
        let req = self.request("GET", scheduler_api::routes::EVENTS, None)?;
        let _ = req.headers().set("Accept", "text/event-stream");
        if let Some(id) = &last_id {
            let _ = req.headers().set("Last-Event-ID", id);
        }
        let resp = util::fetch(&req)
            .await
            .map_err(|_| "host not reachable".to_owned())?;
        if !resp.ok() {
            return Err(format!("events: {}", resp.status()));
        }
        on_open();
        let body = resp.body().ok_or("no body")?;
        let reader: web_sys::ReadableStreamDefaultReader = body
            .get_reader()
            .dyn_into()
            .map_err(|_| "no reader".to_owned())?;
        let decoder = web_sys::TextDecoder::new().map_err(|e| format!("{e:?}"))?;
        let mut parser = SseParser::new();
        let mut last = last_id;
        loop {
            let chunk = JsFuture::from(reader.read())
                .await
                .map_err(|e| format!("{e:?}"))?;
            let done = js_sys::Reflect::get(&chunk, &"done".into())
                .ok()
                .and_then(|d| d.as_bool())
                .unwrap_or(true);
            if done || !keep_going() {
                let _ = reader.cancel();
                return Ok(last);
            }
            let value = js_sys::Reflect::get(&chunk, &"value".into()).unwrap_or(JsValue::NULL);
            let arr: js_sys::Uint8Array = value.unchecked_into();
            let opts = web_sys::TextDecodeOptions::new();
            opts.set_stream(true);
            let text = decoder
                .decode_with_js_u8_array_and_options(&arr, &opts)
                .unwrap_or_default();
            for m in parser.feed(&text) {
                if m.id.is_some() {
                    last = m.id.clone();
                }
                if let Some(ev) = Event::from_sse(&m.event, &m.data) {
                    on_event(m.id, ev);
                }
            }
        }
    }
}

/// Calls the host from the content script through the service worker.
pub async fn relay(method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let ans = super::chrome::send_message(&serde_json::json!({
        "type": "host", "method": method, "path": path, "body": body,
    }))
    .await?;
    if ans.get("ok").and_then(|o| o.as_bool()) == Some(true) {
        Ok(ans.get("data").cloned().unwrap_or(Value::Null))
    } else {
        Err(ans
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("no answer from the extension")
            .to_owned())
    }
}
