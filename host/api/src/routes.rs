//! Route paths of the host. Paths with `{id}` use axum 0.8 syntax; clients fill them with
//! the helper functions.

/// Prefix of every AgentScheduler route.
pub const PREFIX: &str = "/agent-scheduler/v1";

/// `POST` enqueue a txt2img task.
pub const QUEUE_TXT2IMG: &str = "/agent-scheduler/v1/queue/txt2img";
/// `POST` enqueue an img2img task.
pub const QUEUE_IMG2IMG: &str = "/agent-scheduler/v1/queue/img2img";
/// `POST` enqueue a Control task (sent to `/sdapi/v1/control`). Additive.
pub const QUEUE_CONTROL: &str = "/agent-scheduler/v1/queue/control";
/// `GET` running and pending tasks (`limit`, `offset`, `q`).
pub const QUEUE: &str = "/agent-scheduler/v1/queue";
/// `POST` pause the queue (the running task finishes).
pub const QUEUE_PAUSE: &str = "/agent-scheduler/v1/queue/pause";
/// `POST` resume the queue.
pub const QUEUE_RESUME: &str = "/agent-scheduler/v1/queue/resume";
/// `POST` delete every non-bookmarked pending task (the running one stays).
pub const QUEUE_CLEAR: &str = "/agent-scheduler/v1/queue/clear";
/// `GET` finished tasks (`status`, `limit`, `offset`, `q`).
pub const HISTORY: &str = "/agent-scheduler/v1/history";
/// `POST` delete every non-bookmarked finished task and its files.
pub const HISTORY_CLEAR: &str = "/agent-scheduler/v1/history/clear";
/// `GET` / `PUT` / `DELETE` one task.
pub const TASK: &str = "/agent-scheduler/v1/task/{id}";
/// `GET` the full stored request of a task (images and page snapshot included). Additive.
pub const TASK_REQUEST: &str = "/agent-scheduler/v1/task/{id}/request";
/// `GET` position of a task.
pub const TASK_POSITION: &str = "/agent-scheduler/v1/task/{id}/position";
/// `POST` run now.
pub const TASK_RUN: &str = "/agent-scheduler/v1/task/{id}/run";
/// `POST` requeue a copy.
pub const TASK_REQUEUE: &str = "/agent-scheduler/v1/task/{id}/requeue";
/// `POST` requeue every failed task.
pub const TASK_REQUEUE_FAILED: &str = "/agent-scheduler/v1/task/requeue-failed";
/// `POST` move before another task, or `top` / `bottom`.
pub const TASK_MOVE: &str = "/agent-scheduler/v1/task/{id}/move/{over_id}";
/// `POST` bookmark.
pub const TASK_BOOKMARK: &str = "/agent-scheduler/v1/task/{id}/bookmark";
/// `POST` unbookmark.
pub const TASK_UNBOOKMARK: &str = "/agent-scheduler/v1/task/{id}/unbookmark";
/// `POST` rename (`?name=`).
pub const TASK_RENAME: &str = "/agent-scheduler/v1/task/{id}/rename";
/// `GET` results as JSON, or a zip with `?zip=true`.
pub const TASK_RESULTS: &str = "/agent-scheduler/v1/task/{id}/results";
/// `GET` one stored result image file as stored (JPEG or PNG), or with `?size=thumb` its
/// thumbnail. Additive.
pub const TASK_IMAGE: &str = "/agent-scheduler/v1/task/{id}/images/{index}";
/// `POST` one action on many tasks (a list of ids or a listing filter). Additive.
pub const TASKS_BULK: &str = "/agent-scheduler/v1/tasks/bulk";
/// `POST` export the selected tasks (same items as `GET /export`). Additive.
pub const TASKS_EXPORT: &str = "/agent-scheduler/v1/tasks/export";
/// `POST` the result files of the selected tasks as one zip. Additive.
pub const TASKS_ZIP: &str = "/agent-scheduler/v1/tasks/zip";
/// `GET` the tasks of one multi-checkpoint enqueue. Additive.
pub const GROUP: &str = "/agent-scheduler/v1/group/{id}";
/// `GET` expected start of the pending tasks and end of the queue. Additive.
pub const QUEUE_ETA: &str = "/agent-scheduler/v1/queue/eta";
/// The web app (the task panel) the host serves for any browser. Additive.
pub const WEBAPP: &str = "/";
/// `GET` export pending tasks.
pub const EXPORT: &str = "/agent-scheduler/v1/export";
/// `POST` import tasks.
pub const IMPORT: &str = "/agent-scheduler/v1/import";
/// `GET` sampler names.
pub const SAMPLERS: &str = "/agent-scheduler/v1/samplers";
/// `GET` checkpoint titles (union over backends).
pub const SD_MODELS: &str = "/agent-scheduler/v1/sd-models";
/// `GET` checkpoints with their backends. Additive.
pub const CHECKPOINTS: &str = "/agent-scheduler/v1/checkpoints";
/// `GET` Server-Sent Events. Additive.
pub const EVENTS: &str = "/agent-scheduler/v1/events";
/// `GET` / `PUT` settings. Additive.
pub const SETTINGS: &str = "/agent-scheduler/v1/settings";
/// `GET` backends and their state; `POST` add one (persisted). Additive.
pub const BACKENDS: &str = "/agent-scheduler/v1/backends";
/// `DELETE` remove a backend from the pool (its running task goes back to the queue). Additive.
pub const BACKEND: &str = "/agent-scheduler/v1/backends/{id}";
/// `POST` let a backend take tasks again. Additive.
pub const BACKEND_ENABLE: &str = "/agent-scheduler/v1/backends/{id}/enable";
/// `POST` stop giving a backend tasks now (its running task goes back to the queue). Additive.
pub const BACKEND_DISABLE: &str = "/agent-scheduler/v1/backends/{id}/disable";
/// `POST` let a backend finish its running task, then disable it. Additive.
pub const BACKEND_DRAIN: &str = "/agent-scheduler/v1/backends/{id}/drain";
/// OpenAPI document.
pub const OPENAPI: &str = "/openapi.json";
/// Human-readable API page (offline).
pub const DOCS: &str = "/docs";
/// Liveness probe. Additive.
pub const HEALTH: &str = "/agent-scheduler/v1/health";

/// Deprecated alias of [`TASK_RUN`].
pub const ALIAS_RUN: &str = "/agent-scheduler/v1/run/{id}";
/// Deprecated alias of [`TASK_REQUEUE`].
pub const ALIAS_REQUEUE: &str = "/agent-scheduler/v1/requeue/{id}";
/// Deprecated alias of `DELETE` [`TASK`] (as `POST`).
pub const ALIAS_DELETE: &str = "/agent-scheduler/v1/delete/{id}";
/// Deprecated alias of [`TASK_MOVE`].
pub const ALIAS_MOVE: &str = "/agent-scheduler/v1/move/{id}/{over_id}";
/// Deprecated alias of [`TASK_BOOKMARK`].
pub const ALIAS_BOOKMARK: &str = "/agent-scheduler/v1/bookmark/{id}";
/// Deprecated alias of [`TASK_UNBOOKMARK`].
pub const ALIAS_UNBOOKMARK: &str = "/agent-scheduler/v1/unbookmark/{id}";
/// Deprecated alias of [`TASK_RENAME`].
pub const ALIAS_RENAME: &str = "/agent-scheduler/v1/rename/{id}";
/// Deprecated alias of [`TASK_RESULTS`].
pub const ALIAS_RESULTS: &str = "/agent-scheduler/v1/results/{id}";
/// Deprecated alias of [`QUEUE_PAUSE`].
pub const ALIAS_PAUSE: &str = "/agent-scheduler/v1/pause";
/// Deprecated alias of [`QUEUE_RESUME`].
pub const ALIAS_RESUME: &str = "/agent-scheduler/v1/resume";

/// Deprecated aliases of the original, still served: `(alias, canonical)` pairs.
pub const DEPRECATED_ALIASES: &[(&str, &str)] = &[
    (ALIAS_RUN, TASK_RUN),
    (ALIAS_REQUEUE, TASK_REQUEUE),
    (ALIAS_DELETE, TASK),
    (ALIAS_MOVE, TASK_MOVE),
    (ALIAS_BOOKMARK, TASK_BOOKMARK),
    (ALIAS_UNBOOKMARK, TASK_UNBOOKMARK),
    (ALIAS_RENAME, TASK_RENAME),
    (ALIAS_RESULTS, TASK_RESULTS),
    (ALIAS_PAUSE, QUEUE_PAUSE),
    (ALIAS_RESUME, QUEUE_RESUME),
];

/// Fills `{id}` (and `{over_id}` / `{index}`) in a route.
pub fn task_path(route: &str, id: &str) -> String {
    route.replace("{id}", &encode_segment(id))
}

/// `POST /task/{id}/move/{over_id}` path.
pub fn move_path(id: &str, over_id: &str) -> String {
    TASK_MOVE
        .replace("{id}", &encode_segment(id))
        .replace("{over_id}", &encode_segment(over_id))
}

/// `GET /task/{id}/images/{index}` path.
pub fn image_path(id: &str, index: usize) -> String {
    TASK_IMAGE
        .replace("{id}", &encode_segment(id))
        .replace("{index}", &index.to_string())
}

/// `GET /task/{id}/images/{index}?size=thumb` path; `version` (the task's finish time)
/// keeps caches from mixing the images of two runs of a requeued task.
pub fn thumb_path(id: &str, index: usize, version: Option<i64>) -> String {
    match version {
        Some(v) => format!("{}?size=thumb&v={v}", image_path(id, index)),
        None => format!("{}?size=thumb", image_path(id, index)),
    }
}

/// Percent-encodes a path segment (everything but unreserved characters).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
