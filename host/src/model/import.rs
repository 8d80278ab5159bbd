//! Reading one item of an export array (ours, or the original extension's API tasks) into an
//! enqueue body. Original UI tasks (positional, pickled arguments) are refused; nothing is
//! executed or unpickled.

use scheduler_api::{CheckpointChoice, EnqueueRequest, TaskType, field};
use serde_json::{Map, Value};

use super::spec::{Invalid, valid_task_id};

/// One export item made ready for import.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportItem {
    /// The item's id, when it is a valid id.
    pub id: Option<String>,
    /// txt2img / img2img / control.
    pub task_type: TaskType,
    /// The enqueue body (run through [`super::TaskSpec::parse`] next).
    pub body: EnqueueRequest,
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
    let mut body: Map<String, Value> = if original {
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
        if let Some(ck) = params.get(field::CHECKPOINT).filter(|v| !v.is_null()) {
            body.insert(field::CHECKPOINT.into(), ck.clone());
        }
        body
    } else {
        params.clone()
    };
    let task_type = task_type.ok_or_else(|| Invalid("unknown task type".into()))?;
    if let Some(n) = obj.get("name").filter(|v| !v.is_null()) {
        body.entry(field::NAME).or_insert(n.clone());
    }
    if let Some(cb) = obj.get("api_task_callback").filter(|v| !v.is_null()) {
        body.entry(field::CALLBACK_URL).or_insert(cb.clone());
    }
    let body: EnqueueRequest = serde_json::from_value(Value::Object(body))
        .map_err(|e| Invalid(format!("invalid params: {e}")))?;
    if CheckpointChoice::parse(body.checkpoint.as_deref()).is_pattern() {
        return Err(Invalid("checkpoint patterns cannot be imported".into()));
    }
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .filter(|i| valid_task_id(i))
        // Ids are one id whatever their case: kept lower case.
        .map(str::to_ascii_lowercase);
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
