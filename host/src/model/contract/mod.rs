//! The request contract: what SD.Next accepts for each task type, checked at the door
//! (enqueue, `PUT /task/{id}`, import) before anything is written.
//!
//! Where it comes from: each backend's own `/openapi.json` when it serves one (fetched once
//! per backend, read by [`openapi::from_openapi`]); otherwise the table committed beside
//! this file, `sdnext-requests.txt`, generated from SD.Next `058a7f0`'s document by
//! [`generate_table`] (an integration test re-runs the generator against
//! `../shared/fixtures/sdnext/api/openapi.json` and fails when the table is stale;
//! `REGENERATE=1` rewrites it). That document names the Control request model without
//! defining it; `control-supplement.txt` holds it, read from `control_run`'s signature as
//! SD.Next's `create_model_from_signature` types it.
//!
//! A check is pure: [`Contract::check`] runs the schema ([`validate`]), the checks SD.Next
//! lacks where it crashes or runs nothing ([`validate::crash_checks`]) and the names against the pool's
//! lists ([`names`]); a refusal is a [`Violation`] (the JSON path and a reason).

pub mod coerce;
pub mod names;
pub mod openapi;
pub mod schema;
pub mod validate;

use std::sync::{Arc, OnceLock};

use scheduler_api::TaskType;
use serde_json::{Map, Value};

pub use names::Names;
pub use schema::Schema;

/// The committed table (generated; see the module documentation).
pub const TABLE: &str = include_str!("sdnext-requests.txt");
/// The Control request model SD.Next's document lacks (hand-read; see the module docs).
pub const CONTROL_SUPPLEMENT: &str = include_str!("control-supplement.txt");

/// Why a request was refused: where (`steps`, `control[0].strength`) and what a person
/// reads ("steps must be an integer, got \"many\"").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Violation {
    /// The JSON path of the field.
    pub path: String,
    /// The whole reason.
    pub message: String,
    /// A name no list of the pool has (a list may be stale: worth refreshing).
    pub unknown_name: bool,
}

impl Violation {
    /// A refusal at `path`.
    pub fn new(path: &str, message: String) -> Violation {
        Violation {
            path: path.to_owned(),
            message,
            unknown_name: false,
        }
    }
}

/// The committed table, read once.
pub fn committed() -> Arc<Schema> {
    static TABLE_SCHEMA: OnceLock<Arc<Schema>> = OnceLock::new();
    TABLE_SCHEMA
        .get_or_init(|| Arc::new(Schema::from_table(TABLE).unwrap_or_default()))
        .clone()
}

/// The supplement, read once.
pub fn supplement() -> &'static Schema {
    static SUPPLEMENT: OnceLock<Schema> = OnceLock::new();
    SUPPLEMENT.get_or_init(|| Schema::from_table(CONTROL_SUPPLEMENT).unwrap_or_default())
}

/// A backend's live document read into a schema: what it lacks (the Control request model
/// of SD.Next `058a7f0`, a task type's route) comes from the committed table.
pub fn live_schema(doc: &Value) -> Result<Schema, String> {
    let table = committed();
    let mut s = openapi::from_openapi(doc, &table)?;
    s.fill_from(&table);
    Ok(s)
}

/// The committed table's text for an SD.Next document (what the generator writes).
pub fn generate_table(doc: &Value) -> Result<String, String> {
    let schema = openapi::from_openapi(doc, supplement())?;
    if schema.root(TaskType::Control).is_none() {
        return Err("no Control request model in the document or the supplement".into());
    }
    Ok(format!(
        "# SD.Next's request contract: each task type's request model and the models it uses.\n\
         # Generated from SD.Next's /openapi.json (../shared/fixtures/sdnext/api/openapi.json, SD.Next\n\
         # 058a7f0) by agent_scheduler::model::contract::generate_table, with the Control request\n\
         # model from control-supplement.txt (the document names it without defining it).\n\
         # Do not edit: REGENERATE=1 cargo test -p scheduler-tests --test integration contract_table\n\
         # Format: see host/src/model/contract/schema.rs.\n\n{}",
        schema.to_table()
    ))
}

/// What the door checks requests against: the schemas in force (the enabled backends' live
/// ones, or the committed table) and the pool's names.
#[derive(Debug, Clone)]
pub struct Contract {
    /// A request passes when one of these accepts it (backends of different SD.Next
    /// versions: a task may run on any of them).
    pub schemas: Vec<Arc<Schema>>,
    /// The pool's names.
    pub names: Names,
}

impl Default for Contract {
    fn default() -> Self {
        Contract {
            schemas: vec![committed()],
            names: Names::default(),
        }
    }
}

impl Contract {
    /// Checks a request (the SD.Next fields, host-only fields lifted out) with the task's
    /// checkpoint and VAE.
    pub fn check(
        &self,
        kind: TaskType,
        request: &Map<String, Value>,
        checkpoint: Option<&str>,
        vae: Option<&str>,
    ) -> Result<(), Violation> {
        no_nul_in(request, "")?;
        for (path, v) in [("checkpoint", checkpoint), ("vae", vae)] {
            if v.is_some_and(|v| v.contains('\0')) {
                return Err(nul_at(path));
            }
        }
        let mut first = None;
        let passes = self.schemas.is_empty()
            || self
                .schemas
                .iter()
                .any(|s| match validate::check_schema(s, kind, request) {
                    Ok(()) => true,
                    Err(e) => {
                        first.get_or_insert(e);
                        false
                    }
                });
        if !passes && let Some(e) = first {
            return Err(e);
        }
        validate::crash_checks(kind, request)?;
        names::check_names(&self.names, kind, request, checkpoint, vae)
    }
}

fn nul_at(path: &str) -> Violation {
    Violation::new(
        path,
        format!("{path} contains a NUL character (U+0000), which no text field may hold"),
    )
}

/// Refuses a NUL character in any key or string of the request: SD.Next's text fields
/// never need one and the PostgreSQL store cannot keep one (jsonb and text refuse it), so a
/// request is refused at the door on either store, never later.
fn no_nul_in(map: &Map<String, Value>, prefix: &str) -> Result<(), Violation> {
    fn walk(v: &Value, path: &str) -> Result<(), Violation> {
        match v {
            Value::String(s) if s.contains('\0') => Err(nul_at(path)),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| walk(v, &format!("{path}[{i}]"))),
            Value::Object(m) => no_nul_in(m, path),
            _ => Ok(()),
        }
    }
    for (k, v) in map {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if k.contains('\0') {
            return Err(nul_at(if prefix.is_empty() { "request" } else { prefix }));
        }
        walk(v, &path)?;
    }
    Ok(())
}

/// Refuses a NUL character in a text the host stores beside the request (a task's name).
pub fn check_text(path: &str, text: Option<&str>) -> Result<(), Violation> {
    match text {
        Some(t) if t.contains('\0') => Err(nul_at(path)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_nul_anywhere_is_refused_with_its_path() {
        let c = Contract::default();
        let req = |v: Value| v.as_object().unwrap().clone();
        let e = c
            .check(
                TaskType::Txt2img,
                &req(json!({"prompt": "a\0b"})),
                None,
                None,
            )
            .unwrap_err();
        assert_eq!(e.path, "prompt");
        let e = c
            .check(
                TaskType::Control,
                &req(json!({"control": [{"unit": {"model": "x\0"}}]})),
                None,
                None,
            )
            .unwrap_err();
        assert_eq!(e.path, "control[0].unit.model");
        let e = c
            .check(
                TaskType::Txt2img,
                &req(json!({"prompt": "ok"})),
                Some("a\0"),
                None,
            )
            .unwrap_err();
        assert_eq!(e.path, "checkpoint");
        assert!(check_text("name", Some("x\0y")).is_err());
        assert!(check_text("name", Some("fine")).is_ok());
    }

    #[test]
    fn the_committed_table_and_supplement_read() {
        let t = Schema::from_table(TABLE).unwrap();
        for kind in [TaskType::Txt2img, TaskType::Img2img, TaskType::Control] {
            assert!(t.root(kind).is_some(), "{kind:?}");
        }
        assert!(t.model("ItemControl").is_some());
        assert!(t.model("ItemIPAdapter").is_some());
        Schema::from_table(CONTROL_SUPPLEMENT).unwrap();
    }

    /// Every example of the issue, refused with its path; each valid twin passes.
    #[test]
    fn the_issues_examples_are_refused_and_their_twins_pass() {
        let c = Contract::default();
        let cases: &[(TaskType, Value, &str, Value)] = &[
            (
                TaskType::Txt2img,
                json!({"steps": "many"}),
                "steps",
                json!({"steps": "20"}),
            ),
            (
                TaskType::Txt2img,
                json!({"width": "wide"}),
                "width",
                json!({"width": 64}),
            ),
            (
                TaskType::Txt2img,
                json!({"seed": "abc"}),
                "seed",
                json!({"seed": "-1"}),
            ),
            (
                TaskType::Txt2img,
                json!({"cfg_scale": "high"}),
                "cfg_scale",
                json!({"cfg_scale": "7"}),
            ),
            (
                TaskType::Txt2img,
                json!({"prompt": 123}),
                "prompt",
                json!({"prompt": "123"}),
            ),
            (
                TaskType::Txt2img,
                json!({"batch_size": 0}),
                "batch_size",
                json!({"batch_size": 1}),
            ),
            (
                TaskType::Img2img,
                json!({"denoising_strength": "half"}),
                "denoising_strength",
                json!({"denoising_strength": 0.5}),
            ),
            (
                TaskType::Control,
                json!({"control": [{"strength": "strong"}]}),
                "control[0].strength",
                json!({"control": [{"strength": 0.8}]}),
            ),
        ];
        for (kind, bad, path, good) in cases {
            let e = c
                .check(*kind, bad.as_object().unwrap(), None, None)
                .unwrap_err();
            assert_eq!(e.path, *path, "{bad}");
            c.check(*kind, good.as_object().unwrap(), None, None)
                .unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    #[test]
    fn one_accepting_schema_is_enough() {
        let strict = Arc::new(Schema::from_table("txt2img T\n\nmodel T\n  x int\n").unwrap());
        let lax = Arc::new(Schema::from_table("txt2img T\n\nmodel T\n  x string\n").unwrap());
        let body = json!({"x": "abc"});
        let one = Contract {
            schemas: vec![strict.clone()],
            names: Names::default(),
        };
        assert!(
            one.check(TaskType::Txt2img, body.as_object().unwrap(), None, None)
                .is_err()
        );
        let both = Contract {
            schemas: vec![strict, lax],
            names: Names::default(),
        };
        both.check(TaskType::Txt2img, body.as_object().unwrap(), None, None)
            .unwrap();
    }
}
