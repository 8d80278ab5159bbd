//! A typed client of the host (feature `client`): one method per route of [`crate::routes`],
//! typed answers, one error type ([`ClientError`]: unreachable, refused with the host's
//! `{success, message, code}` and status, or an answer that does not decode), bearer tokens,
//! the event stream with `Last-Event-ID` reconnect ([`EventStream`]), and [`Client::raw`] for
//! requests the typed methods cannot express (malformed bodies, odd headers, old aliases).
//!
//! The transport is reqwest on native targets (`ReqwestTransport`) and `fetch` on wasm32
//! (`FetchTransport`); [`Client::with_transport`] takes any other [`Transport`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), scheduler_api::client::ClientError> {
//! use scheduler_api::client::Client;
//! use scheduler_api::{EnqueueRequest, TaskType};
//! let host = Client::new("http://127.0.0.1:7861").with_token(Some("s3cret".into()));
//! let mut req = EnqueueRequest::default();
//! req.params.insert("prompt".into(), "a cat".into());
//! let ids = host.enqueue(TaskType::Txt2img, &req).await?;
//! let task = host.task(&ids.task_id).await?;
//! # let _ = task; Ok(()) }
//! ```

mod error;
mod events;
mod sse;
mod transport;

#[cfg(target_arch = "wasm32")]
mod fetch;
#[cfg(not(target_arch = "wasm32"))]
mod native;

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::ClientError;
pub use events::{EventStream, StreamItem};
#[cfg(target_arch = "wasm32")]
pub use fetch::FetchTransport;
#[cfg(not(target_arch = "wasm32"))]
pub use native::ReqwestTransport;
pub use sse::{SseMessage, SseParser};
pub use transport::{
    BoxFuture, ByteStream, HttpRequest, HttpResponse, MaybeSend, MaybeSendSync, Method,
    StreamResponse, Transport,
};

use crate::routes::{self, encode_segment};
use crate::{
    AddBackend, BackendInfo, BulkRequest, BulkResponse, CheckpointInfo, DataResponse,
    EnqueueRequest, EnqueueResponse, EtaResponse, ExportItem, GroupResponse, HealthResponse,
    HistoryFilter, HistoryQuery, HistoryResponse, IDEMPOTENCY_KEY_HEADER, ImportRequest,
    ImportResponse, ListQuery, MessageResponse, MoveTarget, PositionData, QueueResponse,
    RequeueResponse, ResultImage, Selection, Settings, SettingsPatch, StoredRequest, Task,
    TaskType, UpdateTaskRequest,
};

/// A stored result image as the host keeps it (`GET /task/{id}/images/{index}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// `image/png` or `image/jpeg`.
    pub content_type: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

impl ImageFile {
    /// `png` or `jpg`, from the content type.
    pub fn extension(&self) -> &'static str {
        if self.content_type.contains("jpeg") {
            "jpg"
        } else if self.content_type.contains("webp") {
            "webp"
        } else {
            "png"
        }
    }
}

/// The host's API; cheap to clone.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    transport: Arc<dyn Transport>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

/// The base URL as the client uses it: `http://` added when there is no scheme, no trailing
/// slash.
pub fn normalize_base(base: &str) -> String {
    let b = base.trim().trim_end_matches('/');
    if b.contains("://") {
        b.to_owned()
    } else {
        format!("http://{b}")
    }
}

impl Client {
    /// A client of the host at `base` (e.g. `http://127.0.0.1:7861`) over the default
    /// transport.
    pub fn new(base: &str) -> Client {
        #[cfg(not(target_arch = "wasm32"))]
        let transport: Arc<dyn Transport> = Arc::new(ReqwestTransport::new());
        #[cfg(target_arch = "wasm32")]
        let transport: Arc<dyn Transport> = Arc::new(FetchTransport);
        Client::with_transport(base, transport)
    }

    /// A client over another transport.
    pub fn with_transport(base: &str, transport: Arc<dyn Transport>) -> Client {
        Client {
            base: normalize_base(base),
            token: None,
            transport,
        }
    }

    /// Sends `Authorization: Bearer TOKEN` on every request (`None` or empty: no header).
    pub fn with_token(mut self, token: Option<String>) -> Client {
        self.token = token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        self
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The bearer token, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The transport.
    pub fn transport(&self) -> &dyn Transport {
        self.transport.as_ref()
    }

    /// `base + path` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request to `path` (with its query) carrying the token; send it with
    /// [`RawRequest::send`]. For what the typed methods cannot express.
    pub fn raw(&self, method: Method, path: &str) -> RawRequest<'_> {
        self.request(method, path)
    }

    fn request(&self, method: Method, path: &str) -> RawRequest<'_> {
        let mut headers = Vec::new();
        if let Some(t) = &self.token {
            headers.push(("Authorization".to_owned(), format!("Bearer {t}")));
        }
        RawRequest {
            client: self,
            req: HttpRequest {
                method,
                url: self.url(path),
                headers,
                body: None,
            },
        }
    }

    /// Sends a request and returns its 2xx answer (anything else is an error). Not generic,
    /// so it is compiled once (this matters in the browser's wasm).
    async fn success(&self, req: RawRequest<'_>) -> Result<(String, HttpResponse), ClientError> {
        let url = req.req.url.clone();
        let resp = req.send().await?;
        if resp.is_success() {
            Ok((url, resp))
        } else {
            Err(ClientError::refused(resp.status, &resp.body))
        }
    }

    async fn call<T: DeserializeOwned>(&self, req: RawRequest<'_>) -> Result<T, ClientError> {
        let (url, resp) = self.success(req).await?;
        decode(&url, &resp)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(self.request(Method::Get, path)).await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(self.request(Method::Post, path)).await
    }

    async fn bytes(&self, path: &str) -> Result<HttpResponse, ClientError> {
        Ok(self.success(self.request(Method::Get, path)).await?.1)
    }

    // -----------------------------------------------------------------------------------
    // Enqueue

    /// `POST /queue/{txt2img|img2img|control}`.
    pub async fn enqueue(
        &self,
        kind: TaskType,
        req: &EnqueueRequest,
    ) -> Result<EnqueueResponse, ClientError> {
        self.call(self.request(Method::Post, kind.queue_route()).json(req)?)
            .await
    }

    /// `POST /queue/{txt2img|img2img|control}` with an `Idempotency-Key`: the same key returns the
    /// first answer again and queues nothing new.
    pub async fn enqueue_idempotent(
        &self,
        kind: TaskType,
        req: &EnqueueRequest,
        key: &str,
    ) -> Result<EnqueueResponse, ClientError> {
        self.call(
            self.request(Method::Post, kind.queue_route())
                .header(IDEMPOTENCY_KEY_HEADER, key)
                .json(req)?,
        )
        .await
    }

    // -----------------------------------------------------------------------------------
    // Listings and queue control

    /// `GET /queue` (running tasks first, then pending ones in order).
    pub async fn queue(&self, q: &ListQuery) -> Result<QueueResponse, ClientError> {
        self.get(&with_query(routes::QUEUE, &list_params(q, None)))
            .await
    }

    /// `GET /history` (finished tasks, newest first).
    pub async fn history(
        &self,
        filter: HistoryFilter,
        q: &ListQuery,
    ) -> Result<HistoryResponse, ClientError> {
        self.get(&with_query(routes::HISTORY, &list_params(q, Some(filter))))
            .await
    }

    /// `GET /history` with every filter of [`HistoryQuery`] (status and, additive, `sort`).
    pub async fn history_with(
        &self,
        h: &HistoryQuery,
        q: &ListQuery,
    ) -> Result<HistoryResponse, ClientError> {
        let mut params = list_params(q, h.status);
        if let Some(s) = h.sort.filter(|s| *s != crate::HistorySort::Time) {
            params.push(("sort", s.as_str().to_owned()));
        }
        self.get(&with_query(routes::HISTORY, &params)).await
    }

    /// `GET /group/{id}`: the tasks of one multi-checkpoint enqueue.
    pub async fn group(&self, group_id: &str) -> Result<GroupResponse, ClientError> {
        self.get(&routes::task_path(routes::GROUP, group_id)).await
    }

    /// `GET /queue/eta`: expected starts of the first `limit` pending tasks and the queue's
    /// end.
    pub async fn eta(&self, limit: Option<i64>) -> Result<EtaResponse, ClientError> {
        let q: Vec<(&str, String)> = limit
            .map(|l| ("limit", l.to_string()))
            .into_iter()
            .collect();
        self.get(&with_query(routes::QUEUE_ETA, &q)).await
    }

    /// `POST /tasks/bulk`: one action on every selected task, in one request.
    pub async fn bulk(&self, req: &BulkRequest) -> Result<BulkResponse, ClientError> {
        self.call(self.request(Method::Post, routes::TASKS_BULK).json(req)?)
            .await
    }

    /// `POST /tasks/export`: the selected tasks as export items.
    pub async fn export_selection(&self, sel: &Selection) -> Result<Vec<ExportItem>, ClientError> {
        self.call(self.request(Method::Post, routes::TASKS_EXPORT).json(sel)?)
            .await
    }

    /// `POST /tasks/zip`: the result files of the selected tasks as one zip.
    pub async fn zip_selection(&self, sel: &Selection) -> Result<Vec<u8>, ClientError> {
        let req = self.request(Method::Post, routes::TASKS_ZIP).json(sel)?;
        Ok(self.success(req).await?.1.body)
    }

    /// `POST /queue/pause` (the running task finishes).
    pub async fn pause(&self) -> Result<MessageResponse, ClientError> {
        self.post(routes::QUEUE_PAUSE).await
    }

    /// `POST /queue/resume`.
    pub async fn resume(&self) -> Result<MessageResponse, ClientError> {
        self.post(routes::QUEUE_RESUME).await
    }

    /// `POST /queue/clear`: deletes every pending task that is not bookmarked.
    pub async fn clear_queue(&self) -> Result<MessageResponse, ClientError> {
        self.post(routes::QUEUE_CLEAR).await
    }

    /// `POST /history/clear`: deletes every finished task that is not bookmarked.
    pub async fn clear_history(&self) -> Result<MessageResponse, ClientError> {
        self.post(routes::HISTORY_CLEAR).await
    }

    // -----------------------------------------------------------------------------------
    // One task

    /// `GET /task/{id}` (dates as ISO strings).
    pub async fn task(&self, id: &str) -> Result<Task, ClientError> {
        let d: DataResponse<Task> = self.get(&routes::task_path(routes::TASK, id)).await?;
        Ok(d.data)
    }

    /// `GET /task/{id}/request`: the full stored request, images and page snapshot included.
    pub async fn task_request(&self, id: &str) -> Result<StoredRequest, ClientError> {
        let d: DataResponse<StoredRequest> = self
            .get(&routes::task_path(routes::TASK_REQUEST, id))
            .await?;
        Ok(d.data)
    }

    /// `GET /task/{id}/position`.
    pub async fn position(&self, id: &str) -> Result<PositionData, ClientError> {
        let d: DataResponse<PositionData> = self
            .get(&routes::task_path(routes::TASK_POSITION, id))
            .await?;
        Ok(d.data)
    }

    /// `PUT /task/{id}`: changes a pending task.
    pub async fn update_task(
        &self,
        id: &str,
        edit: &UpdateTaskRequest,
    ) -> Result<MessageResponse, ClientError> {
        self.call(
            self.request(Method::Put, &routes::task_path(routes::TASK, id))
                .json(edit)?,
        )
        .await
    }

    /// `DELETE /task/{id}` (a running task is interrupted first).
    pub async fn delete_task(&self, id: &str) -> Result<MessageResponse, ClientError> {
        self.call(self.request(Method::Delete, &routes::task_path(routes::TASK, id)))
            .await
    }

    /// `POST /task/{id}/run`: runs a pending task next, even while paused.
    pub async fn run_task(&self, id: &str) -> Result<MessageResponse, ClientError> {
        self.post(&routes::task_path(routes::TASK_RUN, id)).await
    }

    /// `POST /task/{id}/requeue`: queues a copy of a finished task.
    pub async fn requeue(&self, id: &str) -> Result<RequeueResponse, ClientError> {
        self.post(&routes::task_path(routes::TASK_REQUEUE, id))
            .await
    }

    /// `POST /task/requeue-failed` (`success: false` when there was none).
    pub async fn requeue_failed(&self) -> Result<MessageResponse, ClientError> {
        self.post(routes::TASK_REQUEUE_FAILED).await
    }

    /// `POST /task/{id}/move/{over_id}`.
    pub async fn move_task(
        &self,
        id: &str,
        target: &MoveTarget,
    ) -> Result<MessageResponse, ClientError> {
        self.post(&routes::move_path(id, target.over_id())).await
    }

    /// `POST /task/{id}/bookmark` or `/unbookmark`.
    pub async fn bookmark(&self, id: &str, on: bool) -> Result<MessageResponse, ClientError> {
        let route = if on {
            routes::TASK_BOOKMARK
        } else {
            routes::TASK_UNBOOKMARK
        };
        self.post(&routes::task_path(route, id)).await
    }

    /// `POST /task/{id}/rename?name=`.
    pub async fn rename(&self, id: &str, name: &str) -> Result<MessageResponse, ClientError> {
        let path = with_query(
            &routes::task_path(routes::TASK_RENAME, id),
            &[("name", name.to_owned())],
        );
        self.post(&path).await
    }

    // -----------------------------------------------------------------------------------
    // Results

    /// `GET /task/{id}/results`: PNG data URLs with the infotext in their `parameters` chunk.
    pub async fn results(&self, id: &str) -> Result<Vec<ResultImage>, ClientError> {
        let d: DataResponse<Vec<ResultImage>> = self
            .get(&routes::task_path(routes::TASK_RESULTS, id))
            .await?;
        Ok(d.data)
    }

    /// `GET /task/{id}/results?zip=true`: the stored files in a zip.
    pub async fn results_zip(&self, id: &str) -> Result<Vec<u8>, ClientError> {
        let path = format!("{}?zip=true", routes::task_path(routes::TASK_RESULTS, id));
        Ok(self.bytes(&path).await?.body)
    }

    /// `GET /task/{id}/images/{index}`: one stored file as stored.
    pub async fn image(&self, id: &str, index: usize) -> Result<ImageFile, ClientError> {
        let resp = self.bytes(&routes::image_path(id, index)).await?;
        Ok(ImageFile {
            content_type: resp
                .header("content-type")
                .unwrap_or("application/octet-stream")
                .to_owned(),
            bytes: resp.body,
        })
    }

    /// `GET /task/{id}/images/{index}?size=thumb`: the image's thumbnail (JPEG); `version`
    /// (the task's finish time) keeps caches from mixing two runs' images.
    pub async fn thumbnail(
        &self,
        id: &str,
        index: usize,
        version: Option<i64>,
    ) -> Result<ImageFile, ClientError> {
        let resp = self.bytes(&routes::thumb_path(id, index, version)).await?;
        Ok(ImageFile {
            content_type: resp
                .header("content-type")
                .unwrap_or("image/jpeg")
                .to_owned(),
            bytes: resp.body,
        })
    }

    // -----------------------------------------------------------------------------------
    // Export / import

    /// `GET /export`: pending tasks with their full requests.
    pub async fn export(
        &self,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<Vec<ExportItem>, ClientError> {
        let mut q = Vec::new();
        if let Some(l) = limit {
            q.push(("limit", l.to_string()));
        }
        if let Some(o) = offset {
            q.push(("offset", o.to_string()));
        }
        self.get(&with_query(routes::EXPORT, &q)).await
    }

    /// `POST /import`.
    pub async fn import(&self, req: &ImportRequest) -> Result<ImportResponse, ClientError> {
        self.call(self.request(Method::Post, routes::IMPORT).json(req)?)
            .await
    }

    // -----------------------------------------------------------------------------------
    // Backends, settings, health, documents

    /// `GET /samplers`.
    pub async fn samplers(&self) -> Result<Vec<String>, ClientError> {
        self.get(routes::SAMPLERS).await
    }

    /// `GET /sd-models`: checkpoint titles (union over backends).
    pub async fn sd_models(&self) -> Result<Vec<String>, ClientError> {
        self.get(routes::SD_MODELS).await
    }

    /// `GET /checkpoints`: checkpoints with the backends that list them.
    pub async fn checkpoints(&self) -> Result<Vec<CheckpointInfo>, ClientError> {
        self.get(routes::CHECKPOINTS).await
    }

    /// `GET /backends`.
    pub async fn backends(&self) -> Result<Vec<BackendInfo>, ClientError> {
        self.get(routes::BACKENDS).await
    }

    /// `POST /backends`: adds a backend to the pool (persisted); answers it as listed.
    pub async fn add_backend(&self, url: &str) -> Result<BackendInfo, ClientError> {
        let body = AddBackend {
            url: url.to_owned(),
        };
        self.call(self.request(Method::Post, routes::BACKENDS).json(&body)?)
            .await
    }

    /// `DELETE /backends/{id}`: removes a backend (its running task goes back to the queue).
    pub async fn remove_backend(&self, id: &str) -> Result<MessageResponse, ClientError> {
        self.call(self.request(Method::Delete, &routes::task_path(routes::BACKEND, id)))
            .await
    }

    /// `POST /backends/{id}/enable`, `/disable` or `/drain` (give one of those routes).
    pub async fn backend_action(&self, route: &str, id: &str) -> Result<BackendInfo, ClientError> {
        self.post(&routes::task_path(route, id)).await
    }

    /// `GET /settings`.
    pub async fn settings(&self) -> Result<Settings, ClientError> {
        self.get(routes::SETTINGS).await
    }

    /// `PUT /settings`: only the fields present change; answers the new settings.
    pub async fn update_settings(&self, patch: &SettingsPatch) -> Result<Settings, ClientError> {
        self.call(self.request(Method::Put, routes::SETTINGS).json(patch)?)
            .await
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<HealthResponse, ClientError> {
        self.get(routes::HEALTH).await
    }

    /// `GET /openapi.json`.
    pub async fn openapi(&self) -> Result<serde_json::Value, ClientError> {
        self.get(routes::OPENAPI).await
    }

    /// `GET /docs` (HTML).
    pub async fn docs(&self) -> Result<String, ClientError> {
        Ok(self.bytes(routes::DOCS).await?.text())
    }

    /// `GET /events` as typed events, reconnecting with `Last-Event-ID`; `last_event_id`
    /// resumes after an event seen earlier (the host replays what it still keeps, or sends
    /// `reset`). Nothing is sent before the first [`EventStream::next`].
    pub fn events(&self, last_event_id: Option<u64>) -> EventStream {
        EventStream::new(self.clone(), last_event_id)
    }
}

/// A request being built ([`Client::raw`]). Its [`Self::send`] returns any HTTP answer, 4xx
/// and 5xx included; only an unreachable host is an error.
#[derive(Debug)]
pub struct RawRequest<'a> {
    client: &'a Client,
    req: HttpRequest,
}

impl RawRequest<'_> {
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.req.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Removes the `Authorization` header (to test a host that requires one).
    pub fn without_token(mut self) -> Self {
        self.req
            .headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
        self
    }

    /// A JSON body (`Content-Type: application/json`).
    pub fn json<T: Serialize + ?Sized>(self, body: &T) -> Result<Self, ClientError> {
        let bytes =
            serde_json::to_vec(body).map_err(|e| ClientError::InvalidRequest(e.to_string()))?;
        Ok(self.body(bytes, "application/json"))
    }

    /// Any body with its content type (malformed JSON, oversized bodies, …).
    pub fn body(mut self, bytes: impl Into<Vec<u8>>, content_type: &str) -> Self {
        self.req
            .headers
            .push(("Content-Type".to_owned(), content_type.to_owned()));
        self.req.body = Some(bytes.into());
        self
    }

    /// The request as built.
    pub fn build(self) -> HttpRequest {
        self.req
    }

    /// Sends it and reads the whole answer.
    pub async fn send(self) -> Result<HttpResponse, ClientError> {
        self.client.transport.send(self.req).await
    }

    /// Sends it and returns when the headers are in (streamed bodies).
    pub async fn open(self) -> Result<StreamResponse, ClientError> {
        self.client.transport.open(self.req).await
    }
}

fn decode<T: DeserializeOwned>(url: &str, resp: &HttpResponse) -> Result<T, ClientError> {
    resp.json().map_err(|e| ClientError::Decode {
        url: url.to_owned(),
        status: resp.status,
        message: e.to_string(),
    })
}

fn list_params(q: &ListQuery, filter: Option<HistoryFilter>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(f) = filter.filter(|f| *f != HistoryFilter::All) {
        out.push(("status", f.as_str().to_owned()));
    }
    if let Some(l) = q.limit {
        out.push(("limit", l.to_string()));
    }
    if let Some(o) = q.offset {
        out.push(("offset", o.to_string()));
    }
    if let Some(c) = q.cursor.as_ref().filter(|c| !c.is_empty()) {
        out.push(("cursor", c.clone()));
    }
    if let Some(s) = q.q.as_ref().filter(|s| !s.is_empty()) {
        out.push(("q", s.clone()));
    }
    out
}

/// `path?k=v&…` with the values percent-encoded.
pub fn with_query(path: &str, params: &[(&str, String)]) -> String {
    if params.is_empty() {
        return path.to_owned();
    }
    let q: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_segment(v)))
        .collect();
    format!("{path}?{}", q.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded_and_defaults_left_out() {
        let q = ListQuery {
            limit: Some(5),
            offset: None,
            q: Some("a cat & dog".into()),
            ..ListQuery::default()
        };
        assert_eq!(
            with_query(
                routes::HISTORY,
                &list_params(&q, Some(HistoryFilter::Bookmarked))
            ),
            "/agent-scheduler/v1/history?status=bookmarked&limit=5&q=a%20cat%20%26%20dog"
        );
        assert_eq!(
            with_query(routes::QUEUE, &list_params(&ListQuery::default(), None)),
            routes::QUEUE
        );
    }

    #[test]
    fn base_gets_a_scheme_and_loses_its_slash() {
        assert_eq!(normalize_base("127.0.0.1:7861/"), "http://127.0.0.1:7861");
        assert_eq!(normalize_base("https://h.example"), "https://h.example");
    }

    #[test]
    fn refused_keeps_the_host_body_or_the_text() {
        let e = ClientError::refused(
            409,
            br#"{"success":false,"message":"Task is running","code":"conflict"}"#,
        );
        assert_eq!(e.status(), Some(409));
        assert_eq!(e.code(), Some(crate::ErrorCode::Conflict));
        assert_eq!(e.to_string(), "409: Task is running");
        let e = ClientError::refused(502, b"Bad Gateway");
        assert_eq!(e.body().map(|b| b.message.as_str()), Some("Bad Gateway"));
        assert_eq!(e.code(), None);
    }
}
