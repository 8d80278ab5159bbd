//! The queue as a pure state machine: states and transitions, order keys (ranks), the
//! crash-recovery and retry policies, and the validation/normalisation of enqueue bodies.
//!
//! Owns: every *decision* about tasks (which transition is legal, where a task lands, what a
//! request may contain, how `*` / `<folder>/*` expand).
//! Must not: do I/O, touch SQL (that is `store/`), speak HTTP (`http/`) or SD.Next (`worker/`).
//! Everything here is synchronous and tested in-process.

use scheduler_api::{TaskStatus, TaskType, checkpoint_in_folder};
use serde_json::{Map, Value};

/// Distance between neighbouring ranks when a task is appended or put at the head, so that
/// a move between two tasks nearly always finds a free integer and touches one row.
pub const RANK_GAP: i64 = 1 << 20;

pub use scheduler_api::MoveTarget;

/// The rank for a task that goes before `first` (the current head), or the first rank ever.
pub fn rank_at_head(first: Option<i64>) -> i64 {
    first.map_or(0, |f| f.saturating_sub(RANK_GAP))
}

/// The rank for a task that goes after `last` (the current tail).
pub fn rank_at_end(last: Option<i64>) -> i64 {
    last.map_or(0, |l| l.saturating_add(RANK_GAP))
}

/// A rank strictly between `before` and `after`, or `None` when they are adjacent and the
/// queue must be renumbered first. `before == None` means "no task before".
pub fn rank_between(before: Option<i64>, after: i64) -> Option<i64> {
    match before {
        None => Some(rank_at_head(Some(after))),
        Some(b) if after - b >= 2 => Some(b + (after - b) / 2),
        Some(_) => None,
    }
}

/// What happens to a task found `running` when the host starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Back to the head of the queue with this attempt count.
    Requeue {
        /// The new attempt count.
        attempts: u32,
    },
    /// Give up: the task becomes failed with this reason.
    Fail {
        /// The new attempt count.
        attempts: u32,
        /// The error text.
        reason: String,
    },
}

/// Crash policy: a task interrupted by a host restart goes back to the head with one more
/// attempt, or fails once it has used `max_attempts`.
pub fn recover_running(attempts: u32, max_attempts: u32) -> Recovery {
    let attempts = attempts.saturating_add(1);
    if attempts >= max_attempts.max(1) {
        Recovery::Fail {
            attempts,
            reason: format!("interrupted by host restart; {attempts} attempts"),
        }
    } else {
        Recovery::Requeue { attempts }
    }
}

/// Whether a failed task (whose attempt count already includes the failed run) goes back
/// to the queue automatically.
pub fn auto_requeue(enabled: bool, attempts: u32, max_attempts: u32) -> bool {
    enabled && attempts < max_attempts
}

/// Whether the fields of a task may be edited (`PUT /task/{id}`): pending only.
pub fn can_edit(status: TaskStatus) -> bool {
    status == TaskStatus::Pending
}

/// How the worker ended a run.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEnd {
    /// All images came back.
    Done,
    /// Fewer images than asked, an error answer, or an unknown checkpoint.
    Failed(String),
    /// Stopped by the user.
    Interrupted,
}

impl RunEnd {
    /// The final status word.
    pub fn status(&self) -> TaskStatus {
        match self {
            RunEnd::Done => TaskStatus::Done,
            RunEnd::Failed(_) => TaskStatus::Failed,
            RunEnd::Interrupted => TaskStatus::Interrupted,
        }
    }
}

/// The number of images a request asks for (`n_iter * batch_size`, each at least 1).
pub fn expected_images(request: &Map<String, Value>) -> usize {
    let get = |k: &str| {
        request
            .get(k)
            .and_then(Value::as_u64)
            .filter(|n| *n >= 1)
            .unwrap_or(1)
    };
    (get("n_iter") * get("batch_size")).min(100_000) as usize
}

/// What a task's checkpoint field asks for at enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointSpec {
    /// Whatever the backend has loaded.
    Loaded,
    /// One title (resolved against the backend when the task runs).
    Title(String),
    /// One task per checkpoint of the union of backends.
    All,
    /// One task per checkpoint in this folder and its subfolders.
    Folder(String),
}

/// Interprets a checkpoint value: null, empty and `System` mean "whatever is loaded".
pub fn checkpoint_spec(value: Option<&str>) -> CheckpointSpec {
    let Some(v) = value.map(str::trim) else {
        return CheckpointSpec::Loaded;
    };
    if v.is_empty() || v.eq_ignore_ascii_case("system") {
        return CheckpointSpec::Loaded;
    }
    if v == scheduler_api::ALL_CHECKPOINTS {
        return CheckpointSpec::All;
    }
    if let Some(folder) = v.strip_suffix("/*").or_else(|| v.strip_suffix("\\*")) {
        return CheckpointSpec::Folder(folder.to_owned());
    }
    CheckpointSpec::Title(v.to_owned())
}

/// Why an enqueue body was refused (always a 422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// A validated, normalised enqueue body (before checkpoint expansion).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// txt2img or img2img.
    pub task_type: TaskType,
    /// The SD.Next request without host-only fields.
    pub request: Map<String, Value>,
    /// What the checkpoint asks for.
    pub checkpoint: CheckpointSpec,
    /// VAE name.
    pub vae: Option<String>,
    /// Task name.
    pub name: Option<String>,
    /// Callback URL (http/https).
    pub callback_url: Option<String>,
    /// Page snapshot (stored, never sent).
    pub page_snapshot: Option<Value>,
}

/// Validates and normalises an enqueue body: lifts the host-only fields, lifts
/// `sd_model_checkpoint` / `override_settings.sd_model_checkpoint` into the checkpoint and
/// `override_settings.sd_vae` into the vae, checks images and the callback URL.
pub fn prepare_enqueue(
    task_type: TaskType,
    mut body: Map<String, Value>,
) -> Result<TaskSpec, Invalid> {
    if task_type == TaskType::Control {
        // Temporary: the worker, the store and the image walker learn `control` next.
        return Err(Invalid("control tasks are not supported yet".into()));
    }
    let take_str = |body: &mut Map<String, Value>, key: &str| -> Result<Option<String>, Invalid> {
        match body.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Invalid(format!("`{key}` must be a string or null"))),
        }
    };
    let mut checkpoint = take_str(&mut body, "checkpoint")?;
    let mut vae = take_str(&mut body, "vae")?;
    let name = take_str(&mut body, "name")?.filter(|n| !n.trim().is_empty());
    let callback_url = take_str(&mut body, "callback_url")?.filter(|u| !u.trim().is_empty());
    let page_snapshot = body.remove("page_snapshot").filter(|v| !v.is_null());
    let top_level_ckpt = take_str(&mut body, "sd_model_checkpoint")?;
    let (over_ckpt, over_vae) = match body.get_mut("override_settings") {
        Some(Value::Object(o)) => (
            o.remove("sd_model_checkpoint")
                .and_then(|v| v.as_str().map(str::to_owned)),
            o.remove("sd_vae")
                .and_then(|v| v.as_str().map(str::to_owned)),
        ),
        Some(Value::Null) | None => (None, None),
        Some(_) => return Err(Invalid("`override_settings` must be an object".into())),
    };
    if matches!(
        checkpoint_spec(checkpoint.as_deref()),
        CheckpointSpec::Loaded
    ) {
        checkpoint = top_level_ckpt.or(over_ckpt).or(checkpoint);
    }
    if vae.is_none() {
        vae = over_vae;
    }
    let vae = vae.filter(|v| !v.trim().is_empty());
    // The worker decides these; a stored value would only confuse an edit.
    body.remove("send_images");
    body.remove("save_images");
    if let Some(url) = &callback_url {
        validate_callback_url(url)?;
    }
    validate_images(task_type, &body)?;
    Ok(TaskSpec {
        task_type,
        request: body,
        checkpoint: checkpoint_spec(checkpoint.as_deref()),
        vae,
        name,
        callback_url,
        page_snapshot,
    })
}

/// A callback URL must be `http://` or `https://` with a host.
pub fn validate_callback_url(url: &str) -> Result<(), Invalid> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| Invalid("callback_url must be an http or https URL".into()))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Invalid("callback_url must be an http or https URL".into()));
    }
    if url.len() > 2048 {
        return Err(Invalid("callback_url is too long".into()));
    }
    Ok(())
}

/// Whether a string is an inline image: a `data:` URL with base64 payload, or bare base64.
/// URLs and file paths are refused (the host never fetches or reads them).
pub fn is_inline_image(s: &str) -> bool {
    let payload = if let Some(rest) = s.strip_prefix("data:") {
        match rest.split_once(";base64,") {
            Some((_, p)) => p,
            None => return false,
        }
    } else {
        s
    };
    if payload.is_empty()
        || !payload.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_' | b'\n' | b'\r')
        })
    {
        return false;
    }
    // A path such as `/etc/x` is also valid base64 text: look at the decoded magic bytes.
    use base64::Engine;
    let head: String = payload
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(24)
        .collect();
    let cut = head.len() - head.len() % 4;
    let engine = if head.contains(['-', '_']) {
        &base64::engine::general_purpose::URL_SAFE
    } else {
        &base64::engine::general_purpose::STANDARD
    };
    let Ok(bytes) = engine.decode(&head[..cut]) else {
        return false;
    };
    const MAGIC: &[&[u8]] = &[
        b"\x89PN",
        b"\xFF\xD8\xFF",
        b"RIFF",
        b"GIF8",
        b"BM",
        b"II*",
        b"MM\0",
    ];
    MAGIC.iter().any(|m| bytes.starts_with(m))
}

fn validate_images(task_type: TaskType, body: &Map<String, Value>) -> Result<(), Invalid> {
    match body.get("init_images") {
        None | Some(Value::Null) => {
            if task_type == TaskType::Img2img {
                return Err(Invalid("img2img needs init_images".into()));
            }
        }
        Some(Value::Array(items)) => {
            if items.is_empty() && task_type == TaskType::Img2img {
                return Err(Invalid("img2img needs init_images".into()));
            }
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(s) if is_inline_image(s) => {}
                    _ => {
                        return Err(Invalid(format!(
                            "init_images[{i}] must be base64 or a data URL (URLs and file paths are not accepted)"
                        )));
                    }
                }
            }
        }
        Some(_) => return Err(Invalid("init_images must be a list".into())),
    }
    match body.get("mask") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if is_inline_image(s) => {}
        Some(_) => {
            return Err(Invalid(
                "mask must be base64 or a data URL (URLs and file paths are not accepted)".into(),
            ));
        }
    }
    Ok(())
}

/// Expands a checkpoint spec against the checkpoint titles the backends list (union, in
/// their order). `Loaded`/`Title` give one entry; `All`/`Folder` one per match, and an
/// empty expansion is an error.
pub fn expand_checkpoints(
    spec: &CheckpointSpec,
    titles: &[String],
) -> Result<Vec<Option<String>>, Invalid> {
    match spec {
        CheckpointSpec::Loaded => Ok(vec![None]),
        CheckpointSpec::Title(t) => Ok(vec![Some(t.clone())]),
        CheckpointSpec::All => {
            if titles.is_empty() {
                return Err(Invalid("no checkpoints are listed by the backends".into()));
            }
            Ok(titles.iter().cloned().map(Some).collect())
        }
        CheckpointSpec::Folder(folder) => {
            let v: Vec<Option<String>> = titles
                .iter()
                .filter(|t| checkpoint_in_folder(t, folder))
                .cloned()
                .map(Some)
                .collect();
            if v.is_empty() {
                Err(Invalid(format!("no checkpoints in folder `{folder}`")))
            } else {
                Ok(v)
            }
        }
    }
}

/// Ids for `n` tasks of one enqueue: `<uuid>`, `<uuid>.1`, `<uuid>.2`, …
pub fn expansion_ids(n: usize) -> Vec<String> {
    let base = uuid::Uuid::new_v4().to_string();
    (0..n)
        .map(|i| {
            if i == 0 {
                base.clone()
            } else {
                format!("{base}.{i}")
            }
        })
        .collect()
}

/// Whether a task id is acceptable in a path or as an imported id: 1–100 characters of
/// `[A-Za-z0-9_.-]`, not starting with a dot, no `..`.
pub fn valid_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && !id.starts_with('.')
        && !id.contains("..")
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The name of a requeued copy.
pub fn copy_name(name: Option<&str>) -> Option<String> {
    name.map(|n| format!("Copy of {n}"))
}

/// Checkpoint / VAE found in an edited request and lifted out of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lifted {
    /// From `sd_model_checkpoint` or `override_settings.sd_model_checkpoint`.
    pub checkpoint: Option<String>,
    /// From `override_settings.sd_vae`.
    pub vae: Option<String>,
}

/// Shallow-merges `patch` into a stored request: top-level keys replaced, `null` removes a
/// key. A checkpoint or VAE in the patch is lifted out (returned) as at enqueue; images are
/// validated like at enqueue. On error the request is unchanged.
pub fn merge_params(
    task_type: TaskType,
    request: &mut Map<String, Value>,
    patch: Map<String, Value>,
) -> Result<Lifted, Invalid> {
    let mut next = request.clone();
    for (k, v) in patch {
        if matches!(
            k.as_str(),
            "send_images"
                | "save_images"
                | "checkpoint"
                | "vae"
                | "name"
                | "callback_url"
                | "page_snapshot"
        ) {
            continue;
        }
        if v.is_null() {
            next.remove(&k);
        } else {
            next.insert(k, v);
        }
    }
    let mut lifted = Lifted {
        checkpoint: next
            .remove("sd_model_checkpoint")
            .and_then(|v| v.as_str().map(str::to_owned)),
        vae: None,
    };
    if let Some(Value::Object(o)) = next.get_mut("override_settings") {
        if let Some(c) = o
            .remove("sd_model_checkpoint")
            .and_then(|v| v.as_str().map(str::to_owned))
        {
            lifted.checkpoint.get_or_insert(c);
        }
        lifted.vae = o
            .remove("sd_vae")
            .and_then(|v| v.as_str().map(str::to_owned));
    }
    validate_images(task_type, &next)?;
    *request = next;
    Ok(lifted)
}

/// Turns free text into an FTS5 query: every word quoted (so no syntax errors), all words
/// required, the last one as a prefix. `None` when there is no word.
pub fn fts_query(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split_whitespace()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    if words.is_empty() {
        return None;
    }
    Some(format!("{}*", words.join(" ")))
}

/// One export item made ready for import: the task type, the enqueue-shaped body (host
/// fields included) and the kept id/name/bookmark. Original UI tasks (positional, pickled)
/// are refused; original API tasks import their `args`. Nothing is executed or unpickled.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportItem {
    /// The item's id, when it is a valid id.
    pub id: Option<String>,
    /// txt2img / img2img.
    pub task_type: TaskType,
    /// Enqueue-shaped body (run through [`prepare_enqueue`] next).
    pub body: Map<String, Value>,
    /// Bookmark.
    pub bookmarked: bool,
}

/// Reads one item of an export array (ours or the original's).
pub fn import_item(item: &Value) -> Result<ImportItem, Invalid> {
    let obj = item
        .as_object()
        .ok_or_else(|| Invalid("item is not an object".into()))?;
    let params = match obj.get("params") {
        Some(Value::Object(p)) => p,
        Some(Value::String(s)) => {
            return import_item(&{
                let mut o = obj.clone();
                let parsed: Value =
                    serde_json::from_str(s).map_err(|_| Invalid("params is not JSON".into()))?;
                o.insert("params".into(), parsed);
                Value::Object(o)
            });
        }
        _ => return Err(Invalid("item has no params object".into())),
    };
    let original = params.contains_key("is_ui") && params.contains_key("args");
    let mut task_type = obj
        .get("type")
        .and_then(Value::as_str)
        .and_then(TaskType::parse);
    let mut body = if original {
        if params.get("is_ui").and_then(Value::as_bool) == Some(true) {
            return Err(Invalid(
                "UI task of the original extension (positional, pickled arguments) cannot be imported; \
                 re-create it from the page"
                    .into(),
            ));
        }
        let Some(Value::Object(args)) = params.get("args") else {
            return Err(Invalid("args is not an object".into()));
        };
        if let Some(b) = params.get("is_img2img").and_then(Value::as_bool) {
            task_type = Some(if b {
                TaskType::Img2img
            } else {
                TaskType::Txt2img
            });
        }
        let mut body = args.clone();
        if let Some(ck) = params.get("checkpoint").filter(|v| !v.is_null()) {
            body.insert("checkpoint".into(), ck.clone());
        }
        body
    } else {
        params.clone()
    };
    let task_type = task_type.ok_or_else(|| Invalid("unknown task type".into()))?;
    if let Some(n) = obj.get("name").filter(|v| !v.is_null()) {
        body.entry("name").or_insert(n.clone());
    }
    if let Some(cb) = obj.get("api_task_callback").filter(|v| !v.is_null()) {
        body.entry("callback_url").or_insert(cb.clone());
    }
    if let Some(ck) = body.get("checkpoint").and_then(Value::as_str)
        && matches!(
            checkpoint_spec(Some(ck)),
            CheckpointSpec::All | CheckpointSpec::Folder(_)
        )
    {
        return Err(Invalid("checkpoint patterns cannot be imported".into()));
    }
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .filter(|i| valid_task_id(i))
        .map(str::to_owned);
    Ok(ImportItem {
        id,
        task_type,
        body,
        bookmarked: obj
            .get("bookmarked")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

#[cfg(test)]
mod tests;
