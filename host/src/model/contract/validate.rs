//! A request checked against a [`Schema`]: every field the schema knows, at any depth
//! (`control[0].strength`, `ip_adapter[1].scale`, `face.source_images`), by SD.Next's own
//! acceptance rules ([`super::coerce`]); fields it does not know pass through. Then the
//! checks SD.Next lacks where it crashes or runs nothing ([`crash_checks`]).

use scheduler_api::TaskType;
use serde_json::{Map, Value};

use super::Violation;
use super::coerce;
use super::schema::{Bounds, Model, Schema, Ty};

/// The value as the message shows it: JSON, cut to 60 characters.
pub fn shown(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= 60 {
        s
    } else {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}…")
    }
}

/// Checks a request's fields against the task type's request model (none known: passes).
pub fn check_schema(
    schema: &Schema,
    kind: TaskType,
    req: &Map<String, Value>,
) -> Result<(), Violation> {
    match schema.root(kind) {
        Some(model) => check_object(schema, model, req, ""),
        None => Ok(()),
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

fn check_object(
    schema: &Schema,
    model: &Model,
    obj: &Map<String, Value>,
    path: &str,
) -> Result<(), Violation> {
    for (key, value) in obj {
        if let Some(f) = model.field(key) {
            check(schema, &f.ty, value, &join(path, key))?;
        }
    }
    for f in model.fields() {
        if f.required && !obj.contains_key(&f.name) {
            let p = join(path, &f.name);
            return Err(Violation::new(&p, format!("{p} is required")));
        }
    }
    Ok(())
}

/// What a type is called in a message ("an integer", "a list", …).
fn noun(ty: &Ty) -> String {
    match ty {
        Ty::Any => "any value".into(),
        Ty::Null => "null".into(),
        Ty::Bool => "true or false".into(),
        Ty::Int(_) => "an integer".into(),
        Ty::Number(_) => "a number".into(),
        Ty::Str => "a string".into(),
        Ty::Object | Ty::Model(_) => "an object".into(),
        Ty::List(_) => "a list".into(),
        Ty::Enum(vs) => format!(
            "one of {}",
            vs.iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Ty::Never => "absent".into(),
        Ty::Union(ts) => {
            // `T|null` reads as T: null is implied where it is allowed.
            let names: Vec<String> = ts.iter().filter(|t| **t != Ty::Null).map(noun).collect();
            names.join(" or ")
        }
    }
}

fn wrong(path: &str, ty: &Ty, v: &Value) -> Violation {
    if *ty == Ty::Never {
        return Violation::new(
            path,
            format!(
                "{path} cannot be sent through SD.Next's API (SD.Next types it as a server-side object), got {}",
                shown(v)
            ),
        );
    }
    Violation::new(
        path,
        format!("{path} must be {}, got {}", noun(ty), shown(v)),
    )
}

fn check_bounds(path: &str, b: &Bounds, x: f64, v: &Value) -> Result<(), Violation> {
    let fail = |what: String| {
        Err(Violation::new(
            path,
            format!("{path} must be {what}, got {}", shown(v)),
        ))
    };
    let num = |x: f64| {
        if x.fract() == 0.0 && x.abs() < 1e15 {
            format!("{}", x as i64)
        } else {
            format!("{x}")
        }
    };
    use std::cmp::Ordering::{Equal, Greater, Less};
    // NaN passes no bound (pydantic: `nan <= 1` is false): `partial_cmp` is `None` then.
    let cmp = |m: f64| x.partial_cmp(&m);
    if let Some(m) = b.min
        && !matches!(cmp(m), Some(Greater | Equal))
    {
        return fail(format!("at least {}", num(m)));
    }
    if let Some(m) = b.gt
        && cmp(m) != Some(Greater)
    {
        return fail(format!("greater than {}", num(m)));
    }
    if let Some(m) = b.max
        && !matches!(cmp(m), Some(Less | Equal))
    {
        return fail(format!("at most {}", num(m)));
    }
    if let Some(m) = b.lt
        && cmp(m) != Some(Less)
    {
        return fail(format!("less than {}", num(m)));
    }
    Ok(())
}

/// Whether `v` passes as `ty` (the first failure, with its path, when not).
fn check(schema: &Schema, ty: &Ty, v: &Value, path: &str) -> Result<(), Violation> {
    match ty {
        Ty::Any => Ok(()),
        Ty::Null if v.is_null() => Ok(()),
        Ty::Bool if coerce::boolean(v).is_some() => Ok(()),
        Ty::Int(b) => match coerce::int(v) {
            Some(x) => check_bounds(path, b, x, v),
            None => Err(wrong(path, ty, v)),
        },
        Ty::Number(b) => match coerce::number(v) {
            Some(x) => check_bounds(path, b, x, v),
            None => Err(wrong(path, ty, v)),
        },
        Ty::Str if v.is_string() => Ok(()),
        Ty::Object if v.is_object() => Ok(()),
        Ty::List(item) => match v.as_array() {
            Some(items) => {
                for (i, it) in items.iter().enumerate() {
                    check(schema, item, it, &format!("{path}[{i}]"))?;
                }
                Ok(())
            }
            None => Err(wrong(path, ty, v)),
        },
        Ty::Model(name) => match (v.as_object(), schema.model(name)) {
            (Some(o), Some(m)) => check_object(schema, m, o, path),
            (Some(_), None) => Ok(()), // a model defined nowhere: its fields are unknown
            (None, _) => Err(wrong(path, ty, v)),
        },
        Ty::Enum(vs) if vs.contains(v) => Ok(()),
        Ty::Union(ts) => {
            // The first alternative of the value's own shape tells the most precise reason
            // (a bound, a nested field); else the union's own wording.
            let mut first_err = None;
            for t in ts {
                match check(schema, t, v, path) {
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        if first_err.is_none() && same_shape(t, v) {
                            first_err = Some(e);
                        }
                    }
                }
            }
            Err(first_err.unwrap_or_else(|| wrong(path, ty, v)))
        }
        _ => Err(wrong(path, ty, v)),
    }
}

/// Whether `v` has the JSON shape of `ty` (so that `ty`'s own failure is the one to tell).
fn same_shape(ty: &Ty, v: &Value) -> bool {
    match ty {
        Ty::List(_) => v.is_array(),
        Ty::Model(_) | Ty::Object => v.is_object(),
        Ty::Int(b) | Ty::Number(b) => !b.is_empty() && coerce::number(v).is_some(),
        _ => false,
    }
}

/// The checks SD.Next lacks where it crashes or runs nothing, measured on SD.Next
/// `058a7f0` (CPU kit, tiny models):
///
/// | request | SD.Next's answer |
/// | --- | --- |
/// | txt2img/img2img `batch_size` or `n_iter` 0 or -1 (also `"0"`, `false`) | 500 "list index out of range" |
/// | txt2img `width`/`height` -64, -8 | 200 with no images |
/// | txt2img `width`/`height` 0 | 200: runs at the default size (accepted here) |
/// | txt2img `steps` 0 or -1 | 200 with an image (accepted here) |
/// | Control `batch_count` or `batch_size` 0 | 200 with no images |
/// | Control `width_before`/`height_before` 0 or -64 | 200 with no images |
pub fn crash_checks(kind: TaskType, req: &Map<String, Value>) -> Result<(), Violation> {
    let (at_least_one, not_negative): (&[&str], &[&str]) = match kind {
        TaskType::Txt2img | TaskType::Img2img => (&["batch_size", "n_iter"], &["width", "height"]),
        TaskType::Control => (
            &["batch_size", "batch_count", "width_before", "height_before"],
            &[],
        ),
    };
    for (keys, min) in [(at_least_one, 1.0), (not_negative, 0.0)] {
        for key in keys {
            let Some(v) = req.get(*key) else { continue };
            if let Some(x) = coerce::int(v)
                && x < min
            {
                let what = match (
                    min == 1.0,
                    key.starts_with("width") || key.starts_with("height"),
                ) {
                    (true, true) => "greater than 0",
                    (true, false) => "at least 1",
                    (false, _) => "at least 0",
                };
                return Err(Violation::new(
                    key,
                    format!("{key} must be {what}, got {}", shown(v)),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::from_table(
            "txt2img T\ncontrol C\n\nmodel T\n  steps int|null\n  prompt string|null\n  sampler_name string\n  \
             cfg_scale number|null\n  tiling bool|null\n  styles [string]|null\n  ip_adapter [@IP]|null\n  \
             face @F|null\n  sampler_index int|string\n  override_settings object|null\n\n\
             model IP\n  scale number{>=0,<=1}\n  end number{>0,<=1}\n\n\
             model F\n  source_images [string] required\n\n\
             model C\n  inputs [never]|null\n  control [@U]|null\n\nmodel U\n  strength number\n",
        )
        .unwrap()
    }

    fn refused(kind: TaskType, body: Value) -> (String, String) {
        let e = check_schema(&schema(), kind, body.as_object().unwrap()).unwrap_err();
        (e.path, e.message)
    }

    #[test]
    fn wrong_types_are_refused_with_their_path_and_reason() {
        let t = TaskType::Txt2img;
        assert_eq!(
            refused(t, json!({"steps": "many"})),
            (
                "steps".into(),
                "steps must be an integer, got \"many\"".into()
            )
        );
        assert_eq!(
            refused(t, json!({"prompt": 123})),
            ("prompt".into(), "prompt must be a string, got 123".into())
        );
        assert_eq!(
            refused(t, json!({"cfg_scale": "high"})).1,
            "cfg_scale must be a number, got \"high\""
        );
        assert_eq!(
            refused(t, json!({"sampler_name": null})).1,
            "sampler_name must be a string, got null"
        );
        assert_eq!(
            refused(t, json!({"tiling": "maybe"})).1,
            "tiling must be true or false, got \"maybe\""
        );
        assert_eq!(
            refused(t, json!({"styles": ["a", 1]})).1,
            "styles[1] must be a string, got 1"
        );
        assert_eq!(
            refused(t, json!({"ip_adapter": [{"scale": 0.5}, {"scale": 1.5}]})),
            (
                "ip_adapter[1].scale".into(),
                "ip_adapter[1].scale must be at most 1, got 1.5".into()
            )
        );
        assert_eq!(
            refused(t, json!({"ip_adapter": [{"end": 0}]})).1,
            "ip_adapter[0].end must be greater than 0, got 0"
        );
        assert_eq!(
            refused(t, json!({"face": {}})),
            (
                "face.source_images".into(),
                "face.source_images is required".into()
            )
        );
        assert_eq!(
            refused(t, json!({"face": "x"})).1,
            "face must be an object, got \"x\""
        );
        assert_eq!(
            refused(t, json!({"sampler_index": 1.5})).1,
            "sampler_index must be an integer or a string, got 1.5"
        );
        assert_eq!(
            refused(
                TaskType::Control,
                json!({"control": [{"strength": "strong"}]})
            ),
            (
                "control[0].strength".into(),
                "control[0].strength must be a number, got \"strong\"".into()
            )
        );
        assert_eq!(
            refused(TaskType::Control, json!({"inputs": ["aGVsbG8="]})).0,
            "inputs[0]"
        );
    }

    #[test]
    fn what_sd_next_accepts_passes_and_unknown_fields_pass_through() {
        let ok = |kind: TaskType, body: Value| {
            check_schema(&schema(), kind, body.as_object().unwrap()).unwrap()
        };
        ok(
            TaskType::Txt2img,
            json!({"steps": "20", "cfg_scale": "7.5", "tiling": "yes", "prompt": null,
                   "sampler_index": "Euler", "override_settings": {"x": 1},
                   "ip_adapter": [{"scale": "0.5", "end": 1}], "face": {"source_images": []},
                   "no_such_field": {"anything": [1, 2]}, "styles": null}),
        );
        ok(TaskType::Txt2img, json!({"steps": 20.0, "seed": "abc"}));
        ok(
            TaskType::Control,
            json!({"inputs": null, "control": [{"strength": 1}]}),
        );
        ok(TaskType::Control, json!({"inputs": []}));
        ok(TaskType::Img2img, json!({"steps": "many"})); // no img2img model known: passes
    }

    #[test]
    fn crash_checks_refuse_what_sd_next_cannot_run() {
        let c = |kind, body: Value| crash_checks(kind, body.as_object().unwrap());
        assert_eq!(
            c(TaskType::Txt2img, json!({"batch_size": 0}))
                .unwrap_err()
                .message,
            "batch_size must be at least 1, got 0"
        );
        assert_eq!(
            c(TaskType::Txt2img, json!({"width": "-64"}))
                .unwrap_err()
                .message,
            "width must be at least 0, got \"-64\""
        );
        assert_eq!(
            c(TaskType::Control, json!({"width_before": 0}))
                .unwrap_err()
                .message,
            "width_before must be greater than 0, got 0"
        );
        assert_eq!(
            c(TaskType::Txt2img, json!({"n_iter": false}))
                .unwrap_err()
                .path,
            "n_iter"
        );
        assert_eq!(
            c(TaskType::Control, json!({"batch_count": 0}))
                .unwrap_err()
                .path,
            "batch_count"
        );
        c(
            TaskType::Txt2img,
            json!({"batch_size": 1, "n_iter": "2", "width": 64}),
        )
        .unwrap();
        c(
            TaskType::Txt2img,
            json!({"width": 0, "height": 0, "steps": 0}),
        )
        .unwrap(); // runs
        c(TaskType::Control, json!({"n_iter": 0})).unwrap(); // not a Control field
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "x".repeat(500);
        let (_, m) = refused(TaskType::Txt2img, json!({"steps": long}));
        assert!(m.len() < 120, "{m}");
        assert!(m.ends_with('…'), "{m}");
    }
}
