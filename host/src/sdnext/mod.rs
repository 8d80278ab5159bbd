//! The typed SD.Next `/sdapi/v1` client: the only place in the host that speaks to SD.Next.
//!
//! Owns: URL and credential handling (`user:pass@` becomes HTTP Basic), timeouts (short for
//! control calls, long for model loads, none for generation), one keep-alive connection pool
//! per backend, and the mapping of SD.Next's answers (including its quirks) to typed values
//! and [`RemoteError`]. Must not: decide policy (retry, switch, fail): that is the worker's job.

mod parse;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes; // the same type as reqwest's `bytes::Bytes`
use reqwest::{Method, StatusCode, Url};
use serde_json::{Map, Value};

pub use parse::{resolve_checkpoint, strip_hash};

/// Timeout for cheap control calls (version, models, progress, interrupt…).
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout for `POST /sdapi/v1/options`, which may load a model (minutes on a slow disk).
pub const OPTIONS_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The default cap of a generation answer (512 MiB; `Settings::max_answer_mib`).
pub const DEFAULT_ANSWER_CAP: u64 = 512 << 20;
/// The cap of every other answer (models, progress with its preview, …).
pub const CONTROL_ANSWER_CAP: u64 = 64 << 20;

/// TCP connect timeout for every call, generation included.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A cheap-to-clone client for one SD.Next server.
#[derive(Clone)]
pub struct SdClient {
    inner: Arc<Inner>,
}

/// Never prints the credentials.
impl std::fmt::Debug for SdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdClient")
            .field("url", &self.inner.base)
            .field("auth", &self.inner.auth.as_ref().map(|(u, _)| u))
            .finish()
    }
}

struct Inner {
    http: reqwest::Client,
    /// The largest generation answer read (bytes); beyond it the answer is dropped unread.
    answer_cap: std::sync::atomic::AtomicU64,
    /// Credential-free base URL without a trailing slash (may carry a subpath).
    base: String,
    origin: String,
    auth: Option<(String, String)>,
}

/// One entry of `/sdapi/v1/sd-models`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdModel {
    /// `name` or `name [hash]` (changes once the hash is known).
    pub title: String,
    /// Model name (SD.Next: basename or, for Diffusers folders, the title).
    pub model_name: String,
    /// Full path of the file or folder.
    pub filename: String,
    /// Short hash, if known.
    pub hash: Option<String>,
}

/// What `/sdapi/v1/checkpoint` says is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedCheckpoint {
    /// Title of the loaded checkpoint.
    pub title: String,
    /// Its name (title without hash), when given.
    pub name: Option<String>,
    /// Its file path, when given.
    pub filename: Option<String>,
}

/// SD.Next `058a7f0`'s `/sdapi/v1/control` answers this (500) to every request without an
/// `xyz` object; the same request with `"xyz": {}` runs the plain generation.
pub const CONTROL_XYZ_BUG: &str = "control_run() got an unexpected keyword argument 'xyz'";

/// The decoded answer of txt2img/img2img/control.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GenerateOutput {
    /// Encoded image files (JPEG or PNG, as SD.Next's global `samples_format` says).
    pub images: Vec<Vec<u8>>,
    /// One infotext per image: `info.infotexts` for txt2img/img2img (empty when `info` is
    /// `""`); for control each image's own (EXIF) infotext, as `info` is HTML there.
    pub infotexts: Vec<String>,
    /// `info` parsed from its JSON string; `Value::Null` when SD.Next sent `""`;
    /// the raw string when it is not JSON (control: an HTML text).
    pub info: Value,
    /// Control only: the preprocessor maps (`processed`), identical ones once.
    pub processed: Vec<Vec<u8>>,
}

/// A `/sdapi/v1/progress` sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// 0..1 (SD.Next rounds to 0.01; 0.0 when idle).
    pub progress: f64,
    /// Seconds left, if given.
    pub eta_relative: Option<f64>,
    /// `state.job`; `""` means idle.
    pub job: String,
    /// `state.job_count`.
    pub job_count: i64,
    /// `state.job_no`.
    pub job_no: i64,
    /// `state.sampling_step`.
    pub sampling_step: i64,
    /// `state.sampling_steps`.
    pub sampling_steps: i64,
    /// `state.interrupted`.
    pub interrupted: bool,
    /// Base64 preview image, if sent.
    pub current_image: Option<String>,
}

/// Errors talking to SD.Next.
#[derive(thiserror::Error, Debug)]
pub enum RemoteError {
    /// The connection could not be made (refused, no route, connect timeout): the request
    /// never reached the backend, which is down or restarting.
    #[error("backend unreachable: {0}")]
    Unreachable(String),
    /// The request was sent, then the connection failed: reset, closed mid-answer, or the
    /// answer took longer than the call's timeout.
    #[error("connection lost after the request was sent: {0}")]
    Dropped(String),
    /// HTTP 429 from SD.Next's rate limiter.
    #[error("rate limited (retry after {retry_after_s:?} s)")]
    RateLimited {
        /// `Retry-After` in seconds, when sent.
        retry_after_s: Option<u64>,
    },
    /// The backend URL is not allowed (a link-local or metadata address).
    #[error("{0}")]
    Refused(String),
    /// Any other non-2xx answer, with SD.Next's `detail`/`error` message.
    #[error("HTTP {status}: {message}")]
    Http {
        /// HTTP status code.
        status: u16,
        /// Message extracted from the body.
        message: String,
    },
    /// The answer (or the configured URL) could not be understood.
    #[error("cannot decode answer: {0}")]
    Decode(String),
    /// The answer is larger than the cap; it was not read.
    #[error(
        "SD.Next's answer is larger than the cap of {cap_mib} MiB (max_answer_mib); it was dropped"
    )]
    TooLarge {
        /// The cap, MiB.
        cap_mib: u64,
    },
}

impl RemoteError {
    /// True when the backend is down (connection-level failure, or a gateway in front of it
    /// answering 502/503/504): the task should wait, not fail.
    pub fn is_outage(&self) -> bool {
        match self {
            RemoteError::Unreachable(_) | RemoteError::Dropped(_) => true,
            RemoteError::Http { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }

    /// True when the request reached the backend (or the gateway in front of it) and then
    /// failed without a usable answer: dropped or reset connection, 502/503/504, or an
    /// answer that is not what SD.Next sends. Whether the backend is up decides what it
    /// means (a probe tells).
    pub fn was_sent(&self) -> bool {
        match self {
            RemoteError::Dropped(_) | RemoteError::Decode(_) => true,
            RemoteError::Http { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }

    /// True when repeating the same call later may succeed (outage or rate limit).
    pub fn is_retryable(&self) -> bool {
        self.is_outage() || matches!(self, RemoteError::RateLimited { .. })
    }
}

impl SdClient {
    /// Builds a client for `url` (`http://host:port[/subpath]`, `user:pass@` allowed and sent
    /// as HTTP Basic; a missing scheme means `http://`).
    pub fn new(url: &str) -> Result<SdClient, RemoteError> {
        let raw = url.trim();
        let with_scheme = if raw.contains("://") {
            raw.to_string()
        } else {
            format!("http://{raw}")
        };
        let shown = redacted(raw);
        let mut u = Url::parse(&with_scheme)
            .map_err(|e| RemoteError::Decode(format!("invalid backend URL {shown:?}: {e}")))?;
        if u.scheme() != "http" && u.scheme() != "https" {
            return Err(RemoteError::Decode(format!(
                "invalid backend URL {shown:?}: scheme must be http or https"
            )));
        }
        let host = u
            .host_str()
            .ok_or_else(|| RemoteError::Decode(format!("invalid backend URL {shown:?}: no host")))?
            .to_string();
        if let Some(why) = crate::model::callback::backend_host_refused(&host) {
            return Err(RemoteError::Refused(why));
        }
        let auth = if !u.username().is_empty() || u.password().is_some() {
            Some((
                parse::percent_decode(u.username()),
                parse::percent_decode(u.password().unwrap_or("")),
            ))
        } else {
            None
        };
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.set_query(None);
        u.set_fragment(None);
        let base = u.as_str().trim_end_matches('/').to_string();
        let port = u.port_or_known_default().unwrap_or(80);
        let origin = format!("{}://{}:{}", u.scheme(), host, port);
        // No redirects: a 3xx is an error naming its status (a backend that answers with one
        // could send the host anywhere, credentials included).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .tcp_keepalive(Some(Duration::from_secs(30)))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| RemoteError::Decode(format!("cannot build HTTP client: {e}")))?;
        Ok(SdClient {
            inner: Arc::new(Inner {
                http,
                answer_cap: std::sync::atomic::AtomicU64::new(DEFAULT_ANSWER_CAP),
                base,
                origin,
                auth,
            }),
        })
    }

    /// The URL without credentials and without a trailing slash.
    pub fn display_url(&self) -> String {
        self.inner.base.clone()
    }

    /// `scheme://host:port`.
    pub fn origin(&self) -> String {
        self.inner.origin.clone()
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}/sdapi/v1/{}", self.inner.base, path)
    }

    /// Sets the cap of generation answers (bytes).
    pub fn set_answer_cap(&self, bytes: u64) {
        self.inner
            .answer_cap
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sends a request and returns the body of a 2xx answer (read up to `cap` bytes).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        timeout: Option<Duration>,
    ) -> Result<Bytes, RemoteError> {
        self.call_capped(method, path, body, timeout, CONTROL_ANSWER_CAP)
            .await
    }

    async fn call_capped(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        timeout: Option<Duration>,
        cap: u64,
    ) -> Result<Bytes, RemoteError> {
        self.call_url(method, self.endpoint(path), body, timeout, cap)
            .await
    }

    /// [`Self::call_capped`] for any URL of this backend.
    async fn call_url(
        &self,
        method: Method,
        url: String,
        body: Option<&Value>,
        timeout: Option<Duration>,
        cap: u64,
    ) -> Result<Bytes, RemoteError> {
        let mut rb = self.inner.http.request(method, url);
        if let Some((u, p)) = &self.inner.auth {
            rb = rb.basic_auth(u, Some(p));
        }
        if let Some(t) = timeout {
            rb = rb.timeout(t);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = rb.send().await.map_err(map_reqwest)?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let bytes = read_capped(resp, cap).await?;
        if status.is_success() {
            return Ok(bytes);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(RemoteError::RateLimited {
                retry_after_s: retry_after,
            });
        }
        if status.is_redirection() {
            return Err(RemoteError::Http {
                status: status.as_u16(),
                message: "a redirect, not followed".into(),
            });
        }
        Err(RemoteError::Http {
            status: status.as_u16(),
            message: parse::error_message(status.as_u16(), &bytes),
        })
    }

    async fn get_json(&self, path: &str) -> Result<Value, RemoteError> {
        let b = self
            .call(Method::GET, path, None, Some(CONTROL_TIMEOUT))
            .await?;
        parse::json(&b)
    }

    /// `GET /sdapi/v1/version` (liveness; `{"app":"sd.next",…}`).
    pub async fn version(&self) -> Result<Value, RemoteError> {
        self.get_json("version").await
    }

    /// `GET /sdapi/v1/sd-models`.
    pub async fn sd_models(&self) -> Result<Vec<SdModel>, RemoteError> {
        parse::sd_models(&self.get_json("sd-models").await?)
    }

    /// `GET /sdapi/v1/samplers`: the names ("Default" is valid but not listed).
    pub async fn samplers(&self) -> Result<Vec<String>, RemoteError> {
        parse::samplers(&self.get_json("samplers").await?)
    }

    /// `GET /sdapi/v1/sd-vae`: VAE names usable as the `sd_vae` option (besides
    /// `"Automatic"` and `"Default"`).
    pub async fn sd_vaes(&self) -> Result<Vec<String>, RemoteError> {
        parse::vaes(&self.get_json("sd-vae").await?)
    }

    /// `GET /sdapi/v1/checkpoint`; `None` when nothing is loaded (`title` null or absent).
    pub async fn loaded_checkpoint(&self) -> Result<Option<LoadedCheckpoint>, RemoteError> {
        parse::loaded_checkpoint(&self.get_json("checkpoint").await?)
    }

    /// `GET /sdapi/v1/options` (only the options SD.Next has in `opts.data`).
    pub async fn options(&self) -> Result<Map<String, Value>, RemoteError> {
        match self.get_json("options").await? {
            Value::Object(m) => Ok(m),
            other => Err(RemoteError::Decode(format!(
                "options: expected an object, got {}",
                parse::kind(&other)
            ))),
        }
    }

    /// `POST /sdapi/v1/options`. Blocks while SD.Next loads a model (long timeout). Beware:
    /// an unknown `sd_model_checkpoint` unloads the model and still reports success; resolve
    /// names with [`resolve_checkpoint`] first and confirm with [`Self::loaded_checkpoint`].
    pub async fn set_options(&self, opts: &Map<String, Value>) -> Result<(), RemoteError> {
        let body = Value::Object(opts.clone());
        self.call(Method::POST, "options", Some(&body), Some(OPTIONS_TIMEOUT))
            .await?;
        Ok(())
    }

    /// `POST /sdapi/v1/txt2img`, `img2img` or `control`. No client timeout: SD.Next answers
    /// when the whole job is done (and waits for its global lock first). The caller decides
    /// the body; for control see [`CONTROL_XYZ_BUG`].
    pub async fn generate(
        &self,
        kind: scheduler_api::TaskType,
        body: &Value,
    ) -> Result<GenerateOutput, RemoteError> {
        let path = match kind {
            scheduler_api::TaskType::Txt2img => "txt2img",
            scheduler_api::TaskType::Img2img => "img2img",
            scheduler_api::TaskType::Control => "control",
        };
        let cap = self
            .inner
            .answer_cap
            .load(std::sync::atomic::Ordering::Relaxed);
        let b = self
            .call_capped(Method::POST, path, Some(body), None, cap)
            .await?;
        // Decoded straight from the bytes (images borrowed, then decoded once): the answer
        // is held once, plus its decoded images.
        match kind {
            scheduler_api::TaskType::Control => parse::control_output(&b),
            _ => parse::generate_output(&b),
        }
    }

    /// `GET /sdapi/v1/progress?skip_current_image=…`.
    pub async fn progress(&self, skip_current_image: bool) -> Result<Progress, RemoteError> {
        let path = format!("progress?skip_current_image={skip_current_image}");
        parse::progress(&self.get_json(&path).await?)
    }

    /// `POST /sdapi/v1/interrupt` (204). Interrupts can be lost: re-send while the job runs.
    pub async fn interrupt(&self) -> Result<(), RemoteError> {
        self.call(Method::POST, "interrupt", None, Some(CONTROL_TIMEOUT))
            .await?;
        Ok(())
    }

    /// `GET /sdapi/v1/upscalers`: the upscaler names (`None` among them).
    pub async fn upscalers(&self) -> Result<Vec<String>, RemoteError> {
        parse::name_list(&self.get_json("upscalers").await?, "upscalers")
    }

    /// `GET /sdapi/v1/controlnets?model_type=all`: every ControlNet model name, whatever
    /// model type is loaded (SD.Next lists only the loaded type's by default).
    pub async fn controlnets(&self) -> Result<Vec<String>, RemoteError> {
        parse::name_list(
            &self.get_json("controlnets?model_type=all").await?,
            "controlnets",
        )
    }

    /// `GET /openapi.json` (beside `/sdapi`, under the subpath if any): SD.Next's own API
    /// document, its request models included. `Http { status: 404 }` when SD.Next runs
    /// without its docs (`SD_NODOCS`).
    pub async fn openapi(&self) -> Result<Value, RemoteError> {
        let url = format!("{}/openapi.json", self.inner.base);
        let b = self
            .call_url(
                Method::GET,
                url,
                None,
                Some(CONTROL_TIMEOUT),
                CONTROL_ANSWER_CAP,
            )
            .await?;
        parse::json(&b)
    }

    /// `POST /sdapi/v1/refresh-checkpoints` (204): rescan the model folders.
    pub async fn refresh_checkpoints(&self) -> Result<(), RemoteError> {
        self.call(
            Method::POST,
            "refresh-checkpoints",
            None,
            Some(OPTIONS_TIMEOUT),
        )
        .await?;
        Ok(())
    }
}

/// Reads an answer body, refusing (without reading on) one larger than `cap` bytes.
async fn read_capped(mut resp: reqwest::Response, cap: u64) -> Result<Bytes, RemoteError> {
    let too_large = || RemoteError::TooLarge { cap_mib: cap >> 20 };
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > cap) {
        return Err(too_large());
    }
    let mut buf: Vec<u8> = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(map_reqwest)? {
        if (buf.len() + chunk.len()) as u64 > cap {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// A backend URL as it may be shown (errors, logs): `user:pass@` replaced by `***@`.
pub fn redacted(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// An error text from or about a backend as it may be shown: at most 200 characters, no
/// control characters (each becomes a space) and no markup (`<` and `>` become `‹` and `›`),
/// so an HTML error page or a binary answer shows as short plain text.
pub fn shown_error(text: &str) -> String {
    const MAX: usize = 200;
    let mut out = String::with_capacity(text.len().min(MAX * 4));
    for (n, c) in text.chars().enumerate() {
        if n == MAX - 1 && text.chars().nth(MAX).is_some() {
            out.push('…');
            break;
        }
        out.push(match c {
            '<' => '‹',
            '>' => '›',
            c if c.is_control() => ' ',
            c => c,
        });
    }
    out
}

fn map_reqwest(e: reqwest::Error) -> RemoteError {
    if e.is_builder() {
        return RemoteError::Decode(e.to_string());
    }
    // Connect errors: the backend is down. Anything after the connection was made (a reset,
    // a body cut short, a timeout): the request was sent.
    let connect = e.is_connect();
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    if connect {
        RemoteError::Unreachable(msg)
    } else {
        RemoteError::Dropped(msg)
    }
}

#[cfg(test)]
mod shown_tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_and_errors_shown_short_and_plain() {
        assert_eq!(
            redacted("http://user:pw@10.0.0.5:7860/sd"),
            "http://***@10.0.0.5:7860/sd"
        );
        assert_eq!(redacted("user:p@ss@host:1"), "***@host:1");
        assert_eq!(redacted("http://host/a@b"), "http://host/a@b");
        let e = shown_error("<html>\u{1b}[31m\r\nbad\0</html>");
        assert_eq!(e, "‹html› [31m  bad ‹/html›");
        let long = shown_error(&"x".repeat(5000));
        assert_eq!(long.chars().count(), 200);
        assert!(long.ends_with('…'));
        assert_eq!(shown_error(&"y".repeat(200)), "y".repeat(200));
    }
}
