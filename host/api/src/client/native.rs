//! The native transport: reqwest (tokio).

use std::time::Duration;

use super::ClientError;
use super::transport::{
    BoxFuture, ByteStream, HttpRequest, HttpResponse, Method, StreamResponse, Transport,
};

/// reqwest with a 10 s connect timeout and no overall timeout (the event stream and large
/// uploads run as long as they need).
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    http: reqwest::Client,
}

impl Default for ReqwestTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl ReqwestTransport {
    /// The default configuration.
    pub fn new() -> ReqwestTransport {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        ReqwestTransport { http }
    }

    /// Over a reqwest client of your own.
    pub fn with_client(http: reqwest::Client) -> ReqwestTransport {
        ReqwestTransport { http }
    }

    async fn start(&self, req: HttpRequest) -> Result<reqwest::Response, ClientError> {
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
            Method::Patch => reqwest::Method::PATCH,
            Method::Head => reqwest::Method::HEAD,
            Method::Options => reqwest::Method::OPTIONS,
        };
        let mut b = self.http.request(method, &req.url);
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        if let Some(body) = req.body {
            b = b.body(body);
        }
        let url = req.url;
        b.send().await.map_err(|e| unreachable(&url, &e))
    }
}

fn unreachable(url: &str, e: &reqwest::Error) -> ClientError {
    // reqwest's own text repeats the URL; its sources say what happened.
    let mut parts = Vec::new();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    let message = if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    };
    ClientError::Unreachable {
        url: url.to_owned(),
        message,
    }
}

fn headers(r: &reqwest::Response) -> Vec<(String, String)> {
    r.headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

struct Body {
    url: String,
    resp: reqwest::Response,
}

impl ByteStream for Body {
    fn next_chunk(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, ClientError>> {
        Box::pin(async move {
            match self.resp.chunk().await {
                Ok(c) => Ok(c.map(|b| b.to_vec())),
                Err(e) => Err(unreachable(&self.url, &e)),
            }
        })
    }
}

impl Transport for ReqwestTransport {
    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, ClientError>> {
        Box::pin(async move {
            let url = req.url.clone();
            let resp = self.start(req).await?;
            let status = resp.status().as_u16();
            let headers = headers(&resp);
            let body = resp
                .bytes()
                .await
                .map_err(|e| unreachable(&url, &e))?
                .to_vec();
            Ok(HttpResponse {
                status,
                headers,
                body,
            })
        })
    }

    fn open(&self, req: HttpRequest) -> BoxFuture<'_, Result<StreamResponse, ClientError>> {
        Box::pin(async move {
            let url = req.url.clone();
            let resp = self.start(req).await?;
            Ok(StreamResponse {
                status: resp.status().as_u16(),
                headers: headers(&resp),
                body: Box::new(Body { url, resp }),
            })
        })
    }

    fn sleep(&self, ms: u32) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(Duration::from_millis(u64::from(ms))))
    }
}
