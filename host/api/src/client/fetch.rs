//! The wasm32 transport: the global `fetch` (windows and workers alike). From an extension
//! page or service worker the host sees the extension's origin (`chrome-extension://<id>`,
//! Firefox's `moz-extension://<uuid>`) and needs no CORS.

use js_sys::{Promise, Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, ReadableStreamDefaultReader, Request, RequestCache, RequestInit, Response};

use super::ClientError;
use super::transport::{
    BoxFuture, ByteStream, HttpRequest, HttpResponse, StreamResponse, Transport,
};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(req: &Request) -> Promise;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(cb: &js_sys::Function, ms: i32) -> JsValue;
}

/// `fetch` of the current global scope.
#[derive(Debug, Clone, Default)]
pub struct FetchTransport;

fn js_text(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| {
            Reflect::get(e, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

fn unreachable(url: &str, e: &JsValue) -> ClientError {
    ClientError::Unreachable {
        url: url.to_owned(),
        message: js_text(e),
    }
}

/// `stream`: an answer read as it arrives (the event stream), fetched past the HTTP cache:
/// Firefox opens a cache entry for every request it may store and holds a second request for
/// the same URL while the first streams (the panel's stream beside the worker's), for about
/// 20 s.
async fn start(req: &HttpRequest, stream: bool) -> Result<Response, ClientError> {
    let init = RequestInit::new();
    init.set_method(req.method.as_str());
    if stream {
        init.set_cache(RequestCache::NoStore);
    }
    let headers = Headers::new().map_err(|e| ClientError::InvalidRequest(js_text(&e)))?;
    for (k, v) in &req.headers {
        headers
            .append(k, v)
            .map_err(|e| ClientError::InvalidRequest(js_text(&e)))?;
    }
    init.set_headers(&headers);
    if let Some(body) = &req.body {
        init.set_body(&Uint8Array::from(body.as_slice()).into());
    }
    let request = Request::new_with_str_and_init(&req.url, &init)
        .map_err(|e| ClientError::InvalidRequest(js_text(&e)))?;
    let resp = JsFuture::from(global_fetch(&request))
        .await
        .map_err(|e| unreachable(&req.url, &e))?;
    resp.dyn_into::<Response>()
        .map_err(|e| unreachable(&req.url, &e))
}

fn headers_of(resp: &Response) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(Some(iter)) = js_sys::try_iter(&resp.headers()) {
        for pair in iter.flatten() {
            let pair: js_sys::Array = pair.unchecked_into();
            if let (Some(k), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                out.push((k.to_ascii_lowercase(), v));
            }
        }
    }
    out
}

struct Body {
    url: String,
    reader: ReadableStreamDefaultReader,
    done: bool,
}

impl ByteStream for Body {
    fn next_chunk(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, ClientError>> {
        Box::pin(async move {
            if self.done {
                return Ok(None);
            }
            let chunk = match JsFuture::from(self.reader.read()).await {
                Ok(c) => c,
                Err(e) => {
                    // The stream is errored: nothing to cancel any more.
                    self.done = true;
                    return Err(unreachable(&self.url, &e));
                }
            };
            let done = Reflect::get(&chunk, &"done".into())
                .ok()
                .and_then(|d| d.as_bool())
                .unwrap_or(true);
            if done {
                self.done = true;
                return Ok(None);
            }
            let value = Reflect::get(&chunk, &"value".into()).unwrap_or(JsValue::NULL);
            Ok(Some(value.unchecked_into::<Uint8Array>().to_vec()))
        })
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        if !self.done {
            // Stops the download; a rejection here (the connection died meanwhile) is no
            // error of the page's.
            let ignore = Closure::<dyn FnMut(JsValue)>::new(|_: JsValue| {});
            let _ = self.reader.cancel().catch(&ignore);
            ignore.forget();
        }
    }
}

impl Transport for FetchTransport {
    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, ClientError>> {
        Box::pin(async move {
            let resp = start(&req, false).await?;
            let status = resp.status();
            let headers = headers_of(&resp);
            let buf = resp.array_buffer().map_err(|e| unreachable(&req.url, &e))?;
            let buf = JsFuture::from(buf)
                .await
                .map_err(|e| unreachable(&req.url, &e))?;
            Ok(HttpResponse {
                status,
                headers,
                body: Uint8Array::new(&buf).to_vec(),
            })
        })
    }

    fn open(&self, req: HttpRequest) -> BoxFuture<'_, Result<StreamResponse, ClientError>> {
        Box::pin(async move {
            let resp = start(&req, true).await?;
            let status = resp.status();
            let headers = headers_of(&resp);
            let body = resp.body().ok_or_else(|| ClientError::Unreachable {
                url: req.url.clone(),
                message: "the answer has no body".into(),
            })?;
            let reader: ReadableStreamDefaultReader = body
                .get_reader()
                .dyn_into()
                .map_err(|e| unreachable(&req.url, &e))?;
            Ok(StreamResponse {
                status,
                headers,
                body: Box::new(Body {
                    url: req.url,
                    reader,
                    done: false,
                }),
            })
        })
    }

    fn sleep(&self, ms: u32) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let p = Promise::new(&mut |resolve, _| {
                let _ = set_timeout(&resolve, ms.min(i32::MAX as u32) as i32);
            });
            let _ = JsFuture::from(p).await;
        })
    }
}
