//! What an enqueue body means: [`TaskSpec::parse`] turns a typed
//! [`scheduler_api::EnqueueRequest`] into the task's fields (checkpoint and VAE lifted out of
//! the SD.Next request, images and callback URL checked), then [`expand_checkpoints`] makes
//! one task per checkpoint of a pattern. Also the `PUT` merge and the id rules.

use scheduler_api::{
    CheckpointChoice, EnqueueRequest, HOST_ONLY_FIELDS, TaskType, checkpoint_in_folder,
};
use serde_json::{Map, Value};

use super::invalid::Invalid;

/// What a task's checkpoint asks for (the wire syntax lives in `scheduler-api`).
pub type CheckpointSpec = CheckpointChoice;

/// SD.Next request fields the host reads or rewrites (SD.Next's names).
pub mod sd_field {
    /// Top-level checkpoint of a request (lifted into the task's checkpoint).
    pub const SD_MODEL_CHECKPOINT: &str = "sd_model_checkpoint";
    /// Per-request option overrides.
    pub const OVERRIDE_SETTINGS: &str = "override_settings";
    /// The VAE option (lifted out of `override_settings` into the task's VAE).
    pub const SD_VAE: &str = "sd_vae";
    /// Whether SD.Next sends the images back (the worker always sets `true`).
    pub const SEND_IMAGES: &str = "send_images";
    /// Whether SD.Next saves the images itself (the worker always sets `false`).
    pub const SAVE_IMAGES: &str = "save_images";
    /// img2img input images.
    pub const INIT_IMAGES: &str = "init_images";
    /// img2img mask.
    pub const MASK: &str = "mask";
    /// Control units.
    pub const CONTROL: &str = "control";
    /// Batches.
    pub const N_ITER: &str = "n_iter";
    /// Batches of a Control request.
    pub const BATCH_COUNT: &str = "batch_count";
    /// SD.Next `058a7f0`'s Control API needs this object (see the worker).
    pub const XYZ: &str = "xyz";
    /// Images per batch.
    pub const BATCH_SIZE: &str = "batch_size";
}

/// Fields the worker decides; a stored value would only confuse an edit.
pub const WORKER_FIELDS: &[&str] = &[sd_field::SEND_IMAGES, sd_field::SAVE_IMAGES];

/// A validated, normalised enqueue body (before checkpoint expansion).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// txt2img, img2img or control.
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

fn take_string(body: &mut Map<String, Value>, key: &str) -> Result<Option<String>, Invalid> {
    match body.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Invalid(format!("`{key}` must be a string or null"))),
    }
}

impl TaskSpec {
    /// Validates and normalises an enqueue body: lifts `sd_model_checkpoint` /
    /// `override_settings.sd_model_checkpoint` into the checkpoint (unless one is given) and
    /// `override_settings.sd_vae` into the VAE, drops the fields the worker decides, checks
    /// images and the callback URL.
    pub fn parse(task_type: TaskType, req: EnqueueRequest) -> Result<TaskSpec, Invalid> {
        let EnqueueRequest {
            checkpoint,
            vae,
            name,
            callback_url,
            page_snapshot,
            params: mut body,
        } = req;
        let top_level_ckpt = take_string(&mut body, sd_field::SD_MODEL_CHECKPOINT)?;
        let (over_ckpt, over_vae) = match body.get_mut(sd_field::OVERRIDE_SETTINGS) {
            Some(Value::Object(o)) => (
                o.remove(sd_field::SD_MODEL_CHECKPOINT)
                    .and_then(|v| v.as_str().map(str::to_owned)),
                o.remove(sd_field::SD_VAE)
                    .and_then(|v| v.as_str().map(str::to_owned)),
            ),
            Some(Value::Null) | None => (None, None),
            Some(_) => {
                return Err(Invalid(format!(
                    "`{}` must be an object",
                    sd_field::OVERRIDE_SETTINGS
                )));
            }
        };
        let checkpoint = match CheckpointSpec::parse(checkpoint.as_deref()) {
            CheckpointSpec::Loaded => {
                CheckpointSpec::parse(top_level_ckpt.or(over_ckpt).as_deref())
            }
            given => given,
        };
        let vae = vae.or(over_vae).filter(|v| !v.trim().is_empty());
        for f in WORKER_FIELDS {
            body.remove(*f);
        }
        let callback_url = callback_url.filter(|u| !u.trim().is_empty());
        if let Some(url) = &callback_url {
            validate_callback_url(url)?;
        }
        validate_images(task_type, &body)?;
        Ok(TaskSpec {
            task_type,
            request: body,
            checkpoint,
            vae,
            name: name.filter(|n| !n.trim().is_empty()),
            callback_url,
            page_snapshot: page_snapshot.filter(|v| !v.is_null()),
        })
    }
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

/// Every image field through the walker ([`super::images`]), then what each type needs:
/// img2img an input image, every Control unit an image (SD.Next's API takes a unit's input
/// only in its `image`/`override`: a unit without one cannot run).
fn validate_images(task_type: TaskType, body: &Map<String, Value>) -> Result<(), Invalid> {
    super::images::validate(body)?;
    match task_type {
        TaskType::Img2img => {
            let has = body
                .get(sd_field::INIT_IMAGES)
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
            if !has {
                return Err(Invalid("img2img needs init_images".into()));
            }
        }
        TaskType::Control => {
            if let Some(units) = body.get(sd_field::CONTROL).and_then(Value::as_array) {
                for (k, u) in units.iter().enumerate() {
                    let has = ["image", "override"]
                        .iter()
                        .any(|f| u.get(*f).is_some_and(|v| !v.is_null()));
                    if !has {
                        return Err(Invalid(format!(
                            "control[{k}] has no image: give it `image` (SD.Next's API takes no shared input)"
                        )));
                    }
                }
            }
        }
        TaskType::Txt2img => {}
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

/// The number of images a request asks for (`n_iter * batch_size`, each at least 1; a
/// Control request counts `batch_count`).
pub fn expected_images(task_type: TaskType, request: &Map<String, Value>) -> usize {
    let get = |k: &str| {
        request
            .get(k)
            .and_then(Value::as_u64)
            .filter(|n| *n >= 1)
            .unwrap_or(1)
    };
    let batches = match task_type {
        TaskType::Control => get(sd_field::BATCH_COUNT),
        _ => get(sd_field::N_ITER),
    };
    (batches * get(sd_field::BATCH_SIZE)).min(100_000) as usize
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
/// key; host-only and worker fields are ignored. A checkpoint or VAE in the patch is lifted
/// out (returned) as at enqueue; images are validated like at enqueue. On error the request
/// is unchanged.
pub fn merge_params(
    task_type: TaskType,
    request: &mut Map<String, Value>,
    patch: Map<String, Value>,
) -> Result<Lifted, Invalid> {
    let mut next = request.clone();
    for (k, v) in patch {
        if HOST_ONLY_FIELDS.contains(&k.as_str()) || WORKER_FIELDS.contains(&k.as_str()) {
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
            .remove(sd_field::SD_MODEL_CHECKPOINT)
            .and_then(|v| v.as_str().map(str::to_owned)),
        vae: None,
    };
    if let Some(Value::Object(o)) = next.get_mut(sd_field::OVERRIDE_SETTINGS) {
        if let Some(c) = o
            .remove(sd_field::SD_MODEL_CHECKPOINT)
            .and_then(|v| v.as_str().map(str::to_owned))
        {
            lifted.checkpoint.get_or_insert(c);
        }
        lifted.vae = o
            .remove(sd_field::SD_VAE)
            .and_then(|v| v.as_str().map(str::to_owned));
    }
    validate_images(task_type, &next)?;
    *request = next;
    Ok(lifted)
}
