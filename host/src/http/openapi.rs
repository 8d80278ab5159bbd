//! The OpenAPI document (`/openapi.json`) and the offline `/docs` page.
//!
//! Paths, parameters, bodies and answers come from the handlers' `#[utoipa::path]`
//! annotations, collected by [`super::api`] together with the routes themselves. [`finish`]
//! then adds, in one place, the error answers every operation can give because of code that
//! runs before its handler: the guard (401, 403), the body extractor (400 malformed JSON,
//! 413 too large, 422 wrong shape) and the query extractor (422).

use std::sync::OnceLock;

use axum::Json;
use axum::response::Html;
use serde_json::{Value, json};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "agent-scheduler host",
        description = "A durable queue that feeds SD.Next. AgentScheduler-compatible API: every \
            route of the original under /agent-scheduler/v1 (old paths kept as deprecated aliases), \
            plus events, settings and backends. Errors answer {\"success\": false, \"message\", \
            \"code\"} with a truthful status: malformed JSON 400, a value that fails validation 422, \
            wrong state 409, unknown id 404, too large 413."
    ),
    tags(
        (name = "enqueue", description = "New tasks."),
        (name = "queue", description = "The queue: listing, pause, resume, clear."),
        (name = "history", description = "Finished tasks."),
        (name = "task", description = "One task."),
        (name = "tasks", description = "Many tasks at once: bulk actions, export and zip of a selection, groups."),
        (name = "results", description = "Result images."),
        (name = "transfer", description = "Export and import."),
        (name = "backends", description = "The SD.Next backends."),
        (name = "settings", description = "Settings and health."),
        (name = "events", description = "The live event stream."),
        (name = "docs", description = "This document."),
        (name = "web app", description = "The task panel for any browser (served at /)."),
        (name = "deprecated", description = "Old paths of the original extension."),
    ),
    components(schemas(
        scheduler_api::ProgressEvent,
        scheduler_api::PreviewEvent,
        scheduler_api::TaskEvent,
        scheduler_api::QueueEvent,
        scheduler_api::ResetEvent,
        scheduler_api::TaskChange,
        scheduler_api::TaskResult,
        scheduler_api::ErrorCode,
        scheduler_api::HistoryFilter,
        // Query parameters refer to these by name (`IntoParams` does not register them).
        scheduler_api::HistorySort,
        scheduler_api::ImageSize,
    ))
)]
struct ApiDoc;

/// The document's base: info, tags, and the schemas of the event stream's payloads (which
/// no path refers to).
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MessageResponse"}}}
    })
}

/// What `model::spec` accepts as an inline image, as a schema: base64 (or a base64 `data:`
/// URL) of a PNG, JPEG, WebP, GIF, BMP or TIFF file; URLs and file paths are refused.
fn inline_image() -> Value {
    json!({
        "type": "string",
        "pattern": "^(data:image/[a-z]+;base64,)?(iVBORw0KGgo|/9j/|UklGRi|R0lGOD|Qk0|SUkq|TU0A)[A-Za-z0-9+/]{20,}={0,2}$",
        "description": "Base64 or a base64 data URL of an image file (URLs and file paths are refused)."
    })
}

/// img2img needs `init_images`; its images (and `mask`) are inline.
fn refine_img2img(doc: &mut Value) {
    let op = &mut doc["paths"][scheduler_api::routes::QUEUE_IMG2IMG]["post"];
    let schema = &mut op["requestBody"]["content"]["application/json"]["schema"];
    if schema.is_object() {
        *schema = json!({"allOf": [schema.clone(), {
            "type": "object",
            "required": ["init_images"],
            "properties": {
                "init_images": {"type": "array", "minItems": 1, "items": inline_image()},
                "mask": {"oneOf": [inline_image(), {"type": "null"}]},
            }
        }]});
    }
}

/// Adds the answers of the code that runs before the handlers to every operation.
pub fn finish(doc: &mut Value) {
    refine_img2img(doc);
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        let Some(ops) = item.as_object_mut() else {
            continue;
        };
        for op in ops.values_mut() {
            let has_body = op.get("requestBody").is_some();
            let has_query = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
            let Some(responses) = op["responses"].as_object_mut() else {
                continue;
            };
            let mut add = |code: &str, description: &str| {
                responses
                    .entry(code.to_owned())
                    .or_insert_with(|| error(description));
            };
            add("401", "The bearer token is missing or wrong.");
            add(
                "507",
                "The data directory is full: nothing was written (the queue is on hold).",
            );
            add("403", "The Origin or Host is not allowed.");
            if has_body {
                add("400", "The body is not JSON.");
                add("413", "The body is too large.");
                add("422", "The body does not have the declared shape.");
            }
            if has_query {
                add("422", "A query parameter does not have its declared type.");
            }
        }
    }
}

/// The OpenAPI document.
pub fn document() -> Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let (_, api) = super::api().split_for_parts();
        let mut doc = serde_json::to_value(api).unwrap_or_else(|_| json!({}));
        finish(&mut doc);
        doc
    })
    .clone()
}

/// This document.
#[utoipa::path(get, path = scheduler_api::routes::OPENAPI, tag = "docs", operation_id = "get_openapi",
    responses((status = 200, description = "The OpenAPI document.", body = Object)))]
pub async fn openapi_json() -> Json<Value> {
    Json(document())
}

/// A readable page of this document (offline: no script, no external resource).
#[utoipa::path(get, path = scheduler_api::routes::DOCS, tag = "docs", operation_id = "get_docs",
    responses((status = 200, description = "The page.", content_type = "text/html", body = String)))]
pub async fn docs() -> Html<String> {
    Html(docs_html())
}

/// The name of a schema reference (or of the items of an array of references).
fn schema_name(schema: &Value) -> String {
    let name = |r: &Value| {
        r["$ref"]
            .as_str()
            .map(|s| s.rsplit('/').next().unwrap_or(s).to_owned())
    };
    name(schema)
        .or_else(|| name(&schema["items"]).map(|n| format!("[{n}]")))
        .or_else(|| name(&schema["allOf"][0]).map(|n| format!("{n} (refined)")))
        .or_else(|| schema["type"].as_str().map(str::to_owned))
        .unwrap_or_default()
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
                    let req =
                        schema_name(&op["requestBody"]["content"]["application/json"]["schema"]);
                    let resp = op["responses"]["200"]["content"]
                        .as_object()
                        .map(|c| {
                            c.iter()
                                .map(|(ty, m)| match schema_name(&m["schema"]) {
                                    n if n.is_empty() || ty != "application/json" => ty.clone(),
                                    n => n,
                                })
                                .collect::<Vec<_>>()
                                .join(" | ")
                        })
                        .unwrap_or_default();
                    let errors = op["responses"]
                        .as_object()
                        .map(|r| {
                            r.keys()
                                .filter(|k| k.as_str() != "200")
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_default();
                    rows.push_str(&format!(
                        "<tr class=\"{}\"><td class=\"m {m}\">{M}</td><td><code>{p}</code></td><td>{s}</td><td>{req}</td><td>{resp}</td><td>{errors}</td></tr>\n",
                        if dep { "dep" } else { "" },
                        m = esc(method),
                        M = esc(&method.to_uppercase()),
                        p = esc(path),
                        s = esc(op["summary"].as_str().unwrap_or("")),
                        req = esc(&req),
                        resp = esc(&resp),
                        errors = esc(&errors),
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
<table><tr><th>Method</th><th>Path</th><th>What</th><th>Body</th><th>Answer</th><th>Errors</th></tr>\n{rows}</table>\
<h2>Schemas</h2>\n{schemas}</body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `{param}` of every path is declared as a path parameter of each of its
    /// operations; every alias is documented and deprecated; operation ids are unique.
    #[test]
    fn the_document_declares_every_path_parameter_and_alias() {
        let doc = document();
        if let Ok(out) = std::env::var("OPENAPI_OUT") {
            std::fs::write(out, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        }
        let paths = doc["paths"].as_object().expect("paths");
        let mut ids = std::collections::HashSet::new();
        let mut operations = 0;
        for (path, item) in paths {
            let wanted: Vec<&str> = path
                .split('{')
                .skip(1)
                .filter_map(|s| s.split('}').next())
                .collect();
            for (method, op) in item.as_object().expect("operations") {
                operations += 1;
                let declared: Vec<&str> = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| p["in"] == "path")
                            .filter_map(|p| p["name"].as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                assert_eq!(declared, wanted, "{method} {path}");
                let id = op["operationId"].as_str().expect("operationId");
                assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
                assert!(op["responses"]["200"].is_object(), "{method} {path}: 200");
                assert!(op["responses"]["403"].is_object(), "{method} {path}: 403");
            }
        }
        assert_eq!(operations, 59);
        for (alias, _) in scheduler_api::routes::DEPRECATED_ALIASES {
            let item = paths[*alias].as_object().expect(alias);
            assert!(item.values().all(|op| op["deprecated"] == true), "{alias}");
        }
        let put = &paths[scheduler_api::routes::SETTINGS]["put"]["responses"];
        let codes: Vec<&String> = put.as_object().unwrap().keys().collect();
        assert_eq!(codes, ["200", "400", "401", "403", "413", "422", "507"]);
        // The docs page names the img2img body although its schema is refined (allOf).
        assert!(docs_html().contains("<td>EnqueueRequest (refined)</td>"));
    }

    /// Every `$ref` of the document names a schema it defines (an unresolvable one makes the
    /// document invalid, and schemathesis skips what it describes).
    #[test]
    fn every_reference_resolves() {
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(o) => {
                    if let Some(Value::String(r)) = o.get("$ref") {
                        out.push(r);
                    }
                    o.values().for_each(|x| refs(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
                _ => {}
            }
        }
        let doc = document();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        let missing: Vec<&str> = all
            .into_iter()
            .filter(|r| {
                let name = r.strip_prefix("#/components/schemas/").unwrap_or(r);
                !doc["components"]["schemas"][name].is_object()
            })
            .collect();
        assert_eq!(missing, Vec::<&str>::new());
    }

    /// The documented inline-image pattern only admits what `model::spec` accepts.
    #[test]
    fn the_inline_image_pattern_agrees_with_the_validation() {
        let pattern = inline_image()["pattern"].as_str().unwrap().to_owned();
        let tail = "A".repeat(20);
        for prefix in [
            "iVBORw0KGgo",
            "/9j/",
            "UklGRi",
            "R0lGOD",
            "Qk0",
            "SUkq",
            "TU0A",
        ] {
            for url in ["", "data:image/png;base64,"] {
                let s = format!("{url}{prefix}{tail}");
                assert!(
                    crate::model::images::is_inline_image(&s),
                    "{s} matches {pattern} but is refused"
                );
            }
        }
    }
}
