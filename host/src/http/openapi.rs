//! The OpenAPI document (`/openapi.json`) built from the `scheduler-api` schemas plus a
//! route table, and an offline, self-contained `/docs` page rendered from the same table.

use scheduler_api::routes as r;
use serde_json::{Value, json};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "agent-scheduler host",
        description = "A durable queue that feeds SD.Next. AgentScheduler-compatible API."
    ),
    components(schemas(
        scheduler_api::Task,
        scheduler_api::TaskStatus,
        scheduler_api::TaskType,
        scheduler_api::WireTime,
        scheduler_api::TaskResult,
        scheduler_api::EnqueueRequest,
        scheduler_api::EnqueueResponse,
        scheduler_api::QueueResponse,
        scheduler_api::HistoryResponse,
        scheduler_api::PositionData,
        scheduler_api::ResultImage,
        scheduler_api::MessageResponse,
        scheduler_api::ErrorCode,
        scheduler_api::UpdateTaskRequest,
        scheduler_api::ImportRequest,
        scheduler_api::ImportResponse,
        scheduler_api::ImportRejection,
        scheduler_api::ExportItem,
        scheduler_api::Settings,
        scheduler_api::SettingsPatch,
        scheduler_api::BackendState,
        scheduler_api::BackendInfo,
        scheduler_api::ProgressEvent,
        scheduler_api::PreviewEvent,
        scheduler_api::TaskChange,
        scheduler_api::TaskEvent,
        scheduler_api::QueueEvent,
        scheduler_api::ResetEvent,
        scheduler_api::CheckpointInfo
    ))
)]
struct ApiDoc;

/// One documented route: method, path, summary, request schema, response schema.
pub struct RouteDoc {
    /// HTTP method (lower case).
    pub method: &'static str,
    /// Path.
    pub path: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Request body schema name.
    pub request: Option<&'static str>,
    /// Response schema name (or a description in parentheses).
    pub response: &'static str,
}

const fn d(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    request: Option<&'static str>,
    response: &'static str,
) -> RouteDoc {
    RouteDoc {
        method,
        path,
        summary,
        request,
        response,
    }
}

/// Every route the host serves (deprecated aliases are added from `routes::DEPRECATED_ALIASES`).
pub const ROUTES: &[RouteDoc] = &[
    d(
        "post",
        r::QUEUE_TXT2IMG,
        "Enqueue a txt2img task (every SD.Next field passes through; checkpoint `*` / `<folder>/*` expands). Header Idempotency-Key.",
        Some("EnqueueRequest"),
        "EnqueueResponse",
    ),
    d(
        "post",
        r::QUEUE_IMG2IMG,
        "Enqueue an img2img task (init_images as base64 or data URLs; 64 MiB limit).",
        Some("EnqueueRequest"),
        "EnqueueResponse",
    ),
    d(
        "post",
        r::QUEUE_CONTROL,
        "Enqueue a Control task (sent to /sdapi/v1/control; 64 MiB limit). Not supported yet: answers 422.",
        Some("EnqueueRequest"),
        "EnqueueResponse",
    ),
    d(
        "get",
        r::QUEUE,
        "Running then pending tasks; ?limit=20&offset=0&q=",
        None,
        "QueueResponse",
    ),
    d(
        "post",
        r::QUEUE_PAUSE,
        "Pause the queue (persisted; the running task finishes).",
        None,
        "MessageResponse",
    ),
    d(
        "post",
        r::QUEUE_RESUME,
        "Resume the queue.",
        None,
        "MessageResponse",
    ),
    d(
        "post",
        r::QUEUE_CLEAR,
        "Delete non-bookmarked pending tasks (the running task stays).",
        None,
        "MessageResponse",
    ),
    d(
        "get",
        r::HISTORY,
        "Finished tasks, newest first; ?status=all|bookmarked|done|failed|interrupted&limit&offset&q",
        None,
        "HistoryResponse",
    ),
    d(
        "post",
        r::HISTORY_CLEAR,
        "Delete non-bookmarked finished tasks and their files.",
        None,
        "MessageResponse",
    ),
    d(
        "get",
        r::TASK,
        "One task as {success, data: Task} (dates ISO).",
        None,
        "Task",
    ),
    d(
        "put",
        r::TASK,
        "Edit a pending task: name, checkpoint, shallow merge of params (409 unless pending).",
        Some("UpdateTaskRequest"),
        "MessageResponse",
    ),
    d(
        "delete",
        r::TASK,
        "Delete a pending/finished task (with files) or interrupt a running one.",
        None,
        "MessageResponse",
    ),
    d(
        "get",
        r::TASK_REQUEST,
        "The full stored request (images and page snapshot included).",
        None,
        "(object)",
    ),
    d(
        "get",
        r::TASK_POSITION,
        "Status and position.",
        None,
        "PositionData",
    ),
    d(
        "post",
        r::TASK_RUN,
        "Run now (idle: starts now; busy: runs next, FIFO; paused: only this task runs).",
        None,
        "MessageResponse",
    ),
    d(
        "post",
        r::TASK_REQUEUE,
        "Put a copy at the end of the queue.",
        None,
        "MessageResponse",
    ),
    d(
        "post",
        r::TASK_REQUEUE_FAILED,
        "Turn every failed task back into a pending one at the end.",
        None,
        "MessageResponse",
    ),
    d(
        "post",
        r::TASK_MOVE,
        "Move before {over_id}, or to `top` / `bottom`.",
        None,
        "MessageResponse",
    ),
    d(
        "post",
        r::TASK_BOOKMARK,
        "Bookmark.",
        None,
        "MessageResponse",
    ),
    d(
        "post",
        r::TASK_UNBOOKMARK,
        "Remove the bookmark.",
        None,
        "MessageResponse",
    ),
    d(
        "post",
        r::TASK_RENAME,
        "Rename (?name=).",
        None,
        "MessageResponse",
    ),
    d(
        "get",
        r::TASK_RESULTS,
        "Results as PNG data URLs with infotext; ?zip=true streams a zip.",
        None,
        "ResultImage",
    ),
    d(
        "get",
        r::TASK_IMAGE,
        "One stored image file, as stored.",
        None,
        "(image bytes)",
    ),
    d(
        "get",
        r::EXPORT,
        "Pending tasks in the original export shape (full request in params).",
        None,
        "ExportItem",
    ),
    d(
        "post",
        r::IMPORT,
        "Import an export (ours or the original's API tasks); rejected items are reported.",
        Some("ImportRequest"),
        "ImportResponse",
    ),
    d(
        "get",
        r::SAMPLERS,
        "Sampler names (union over backends).",
        None,
        "(string list)",
    ),
    d(
        "get",
        r::SD_MODELS,
        "Checkpoint titles (union over backends).",
        None,
        "(string list)",
    ),
    d(
        "get",
        r::CHECKPOINTS,
        "Checkpoints with the backends that list them.",
        None,
        "CheckpointInfo",
    ),
    d(
        "get",
        r::EVENTS,
        "Server-Sent Events: task, progress, preview, queue, reset; Last-Event-ID replays.",
        None,
        "(text/event-stream)",
    ),
    d("get", r::SETTINGS, "Host settings.", None, "Settings"),
    d(
        "put",
        r::SETTINGS,
        "Change settings (only the fields given).",
        Some("SettingsPatch"),
        "Settings",
    ),
    d(
        "get",
        r::BACKENDS,
        "Backends and their state.",
        None,
        "BackendInfo",
    ),
    d("get", r::HEALTH, "Liveness.", None, "(object)"),
];

fn schema_ref(name: &str) -> Value {
    if name.starts_with('(') {
        json!({"description": name})
    } else {
        json!({"$ref": format!("#/components/schemas/{name}")})
    }
}

fn method_of(alias_target: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|r| r.path == alias_target && r.method != "get" && r.method != "put")
        .or_else(|| ROUTES.iter().find(|r| r.path == alias_target))
        .map(|r| {
            if r.method == "delete" {
                "post"
            } else {
                r.method
            }
        })
        .unwrap_or("post")
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    let mut paths = serde_json::Map::new();
    let error = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MessageResponse"}}}});
    let mut add = |method: &str,
                   path: &str,
                   summary: &str,
                   request: Option<&str>,
                   response: &str,
                   deprecated: bool| {
        let mut op = json!({
            "summary": summary,
            "responses": {
                "200": {"description": "ok", "content": {"application/json": {"schema": schema_ref(response)}}},
                "4XX": error.clone(),
            }
        });
        if let Some(req) = request {
            op["requestBody"] =
                json!({"content": {"application/json": {"schema": schema_ref(req)}}});
        }
        if deprecated {
            op["deprecated"] = json!(true);
        }
        let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        entry[method] = op;
    };
    for rd in ROUTES {
        add(
            rd.method,
            rd.path,
            rd.summary,
            rd.request,
            rd.response,
            false,
        );
    }
    for (alias, target) in r::DEPRECATED_ALIASES {
        let summary = format!("Deprecated alias of {target}");
        let resp = ROUTES
            .iter()
            .find(|x| x.path == *target)
            .map(|x| x.response)
            .unwrap_or("MessageResponse");
        add(method_of(target), alias, &summary, None, resp, true);
    }
    doc["paths"] = Value::Object(paths);
    doc
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The `/docs` page: plain HTML and CSS, no script, no external resource.
pub fn docs_html() -> String {
    let doc = document();
    let mut rows = String::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            if let Some(ops) = item.as_object() {
                for (method, op) in ops {
                    let dep = op["deprecated"].as_bool().unwrap_or(false);
                    let req = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                        .as_str()
                        .map(|s| s.rsplit('/').next().unwrap_or(s).to_owned())
                        .unwrap_or_default();
                    let resp = &op["responses"]["200"]["content"]["application/json"]["schema"];
                    let resp = resp["$ref"]
                        .as_str()
                        .map(|s| s.rsplit('/').next().unwrap_or(s).to_owned())
                        .or_else(|| resp["description"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    rows.push_str(&format!(
                        "<tr class=\"{}\"><td class=\"m {m}\">{M}</td><td><code>{p}</code></td><td>{s}</td><td>{req}</td><td>{resp}</td></tr>\n",
                        if dep { "dep" } else { "" },
                        m = esc(method),
                        M = esc(&method.to_uppercase()),
                        p = esc(path),
                        s = esc(op["summary"].as_str().unwrap_or("")),
                        req = esc(&req),
                        resp = esc(&resp),
                    ));
                }
            }
        }
    }
    let mut schemas = String::new();
    if let Some(s) = doc["components"]["schemas"].as_object() {
        for (name, schema) in s {
            let pretty = serde_json::to_string_pretty(schema).unwrap_or_default();
            schemas.push_str(&format!(
                "<details id=\"{n}\"><summary>{n}</summary><pre>{p}</pre></details>\n",
                n = esc(name),
                p = esc(&pretty)
            ));
        }
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>agent-scheduler API</title>\
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;width:100%}}\
td,th{{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}}.m{{font-weight:bold}}\
.get{{color:#2a7}}.post{{color:#27c}}.put{{color:#c80}}.delete{{color:#c33}}tr.dep{{opacity:.55}}\
pre{{background:#f6f6f6;padding:8px;overflow:auto}}</style></head><body>\
<h1>agent-scheduler API</h1><p>AgentScheduler-compatible routes plus additions. Errors: \
<code>{{\"success\": false, \"message\": …, \"code\": …}}</code> with a truthful status. \
The machine-readable document is at <a href=\"/openapi.json\">/openapi.json</a>. Faded rows are deprecated aliases.</p>\
<table><tr><th>Method</th><th>Path</th><th>What</th><th>Body</th><th>Answer</th></tr>\n{rows}</table>\
<h2>Schemas</h2>\n{schemas}</body></html>"
    )
}
