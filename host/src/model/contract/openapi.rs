//! SD.Next's `/openapi.json` read into a [`Schema`]: the request model of each generation
//! route (`POST /sdapi/v1/txt2img`, `/img2img`, `/control`) and every model they use, and
//! nothing else. The same reading serves a backend's live document and the generator of the
//! committed table ([`super::generate_table`]).
//!
//! A construct this reader does not know becomes `any` (accepted): the door may let through
//! something SD.Next refuses, never the other way round.

use std::collections::VecDeque;

use scheduler_api::TaskType;
use serde_json::{Map, Value};

use super::schema::{Bounds, Field, Model, Schema, Ty, referenced};

/// The generation routes and their task types.
const ROUTES: [(TaskType, &str); 3] = [
    (TaskType::Txt2img, "/sdapi/v1/txt2img"),
    (TaskType::Img2img, "/sdapi/v1/img2img"),
    (TaskType::Control, "/sdapi/v1/control"),
];

/// Reads a document. A model the document names but does not define (SD.Next `058a7f0`
/// names its Control request model without defining it) is taken from `supplement`.
pub fn from_openapi(doc: &Value, supplement: &Schema) -> Result<Schema, String> {
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or("not an OpenAPI document: no `paths`")?;
    let empty = Map::new();
    let components = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut schema = Schema::default();
    let mut queue: VecDeque<String> = VecDeque::new();
    for (kind, path) in ROUTES {
        let Some(body) = paths
            .get(path)
            .and_then(|p| p.pointer("/post/requestBody/content/application~1json/schema"))
        else {
            continue;
        };
        let name = match body.get("$ref").and_then(Value::as_str) {
            Some(r) => ref_name(r).to_owned(),
            None => {
                // An inline request model: named after its route.
                let name = format!("{}Request", kind.as_str());
                schema.insert(&name, model_of(body));
                name
            }
        };
        schema.set_root(kind, &name);
        queue.push_back(name);
    }
    if schema.root_name(TaskType::Txt2img).is_none()
        && schema.root_name(TaskType::Img2img).is_none()
    {
        return Err("the document has no txt2img or img2img request model".into());
    }
    // Every model the roots use, breadth first (a stable order for the table).
    while let Some(name) = queue.pop_front() {
        let model = match (schema.model(&name), components.get(&name)) {
            (Some(m), _) => m.clone(),
            (None, Some(def)) => model_of(def),
            (None, None) => match supplement.model(&name) {
                Some(m) => m.clone(),
                None => continue, // named, defined nowhere: its fields are unknown
            },
        };
        for f in model.fields() {
            for r in referenced(&f.ty) {
                if schema.model(&r).is_none() && !queue.contains(&r) {
                    queue.push_back(r);
                }
            }
        }
        schema.insert(&name, model);
    }
    Ok(schema)
}

fn ref_name(r: &str) -> &str {
    r.rsplit('/').next().unwrap_or(r)
}

/// An object schema's fields.
fn model_of(def: &Value) -> Model {
    let required: Vec<&str> = def
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let fields = def
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, p)| Field {
                    name: name.clone(),
                    ty: ty_of(p),
                    required: required.contains(&name.as_str()),
                })
                .collect()
        })
        .unwrap_or_default();
    Model::new(fields)
}

fn number(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn bounds_of(v: &Value) -> Bounds {
    let mut b = Bounds {
        min: number(v, "minimum"),
        max: number(v, "maximum"),
        gt: number(v, "exclusiveMinimum"),
        lt: number(v, "exclusiveMaximum"),
    };
    // OpenAPI 3.0 writes exclusive bounds as flags on minimum / maximum.
    if v.get("exclusiveMinimum") == Some(&Value::Bool(true)) {
        b.gt = b.min.take();
    }
    if v.get("exclusiveMaximum") == Some(&Value::Bool(true)) {
        b.lt = b.max.take();
    }
    b
}

fn union(mut ts: Vec<Ty>) -> Ty {
    let mut flat = Vec::new();
    for t in ts.drain(..) {
        match t {
            Ty::Union(inner) => flat.extend(inner),
            Ty::Any => return Ty::Any,
            t => {
                if !flat.contains(&t) {
                    flat.push(t);
                }
            }
        }
    }
    match flat.len() {
        0 => Ty::Any,
        1 => flat.remove(0),
        _ => Ty::Union(flat),
    }
}

/// One property's type.
fn ty_of(v: &Value) -> Ty {
    let Some(o) = v.as_object() else {
        return Ty::Any; // `true` or anything odd
    };
    let nullable = o.get("nullable") == Some(&Value::Bool(true));
    let base = base_ty(v, o);
    if nullable {
        union(vec![base, Ty::Null])
    } else {
        base
    }
}

fn base_ty(v: &Value, o: &Map<String, Value>) -> Ty {
    if let Some(r) = o.get("$ref").and_then(Value::as_str) {
        return Ty::Model(ref_name(r).to_owned());
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = o.get(key).and_then(Value::as_array) {
            return union(alts.iter().map(ty_of).collect());
        }
    }
    if let Some(all) = o.get("allOf").and_then(Value::as_array) {
        return match all.as_slice() {
            [one] => ty_of(one),
            _ => Ty::Any,
        };
    }
    if let Some(vs) = o.get("enum").and_then(Value::as_array) {
        return Ty::Enum(vs.clone());
    }
    if let Some(c) = o.get("const") {
        return Ty::Enum(vec![c.clone()]);
    }
    match o.get("type") {
        Some(Value::String(t)) => type_word(t, v),
        Some(Value::Array(ts)) => union(
            ts.iter()
                .filter_map(Value::as_str)
                .map(|t| type_word(t, v))
                .collect(),
        ),
        _ => Ty::Any,
    }
}

fn type_word(t: &str, v: &Value) -> Ty {
    match t {
        "integer" => Ty::Int(bounds_of(v)),
        "number" => Ty::Number(bounds_of(v)),
        "string" => Ty::Str,
        "boolean" => Ty::Bool,
        "null" => Ty::Null,
        "object" => Ty::Object,
        "array" => match v.get("items") {
            Some(items) if items.is_object() => Ty::List(Box::new(ty_of(items))),
            _ => Ty::List(Box::new(Ty::Any)),
        },
        _ => Ty::Any,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(control_defined: bool) -> Value {
        let mut schemas = json!({
            "T": {"properties": {
                "steps": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": 20},
                "sampler_name": {"type": "string", "default": "Default"},
                "ip_adapter": {"anyOf": [{"items": {"$ref": "#/components/schemas/IP"}, "type": "array"}, {"type": "null"}]},
                "init_images": {"items": {}, "type": "array"},
                "mask": {"anyOf": [{}, {"type": "null"}]},
                "mode": {"enum": ["a", "b"]},
                "old": {"type": "integer", "nullable": true},
            }},
            "IP": {"properties": {
                "scale": {"type": "number", "minimum": 0.0, "maximum": 1.0},
                "end": {"type": "number", "maximum": 1.0, "exclusiveMinimum": 0.0},
            }, "required": ["scale"]},
            "Unused": {"properties": {"x": {"type": "integer"}}},
        });
        if control_defined {
            schemas["C"] = json!({"properties": {"batch_count": {"type": "integer"}}});
        }
        json!({"paths": {
            "/sdapi/v1/txt2img": {"post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/T"}}}}}},
            "/sdapi/v1/img2img": {"post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/T"}}}}}},
            "/sdapi/v1/control": {"post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/C"}}}}}},
        }, "components": {"schemas": schemas}})
    }

    #[test]
    fn reads_the_request_models_and_only_them() {
        let s = from_openapi(&doc(true), &Schema::default()).unwrap();
        assert_eq!(
            s.to_table(),
            "txt2img T\nimg2img T\ncontrol C\n\nmodel T\n  init_images [any]\n  ip_adapter [@IP]|null\n  \
             mask any\n  mode enum[\"a\",\"b\"]\n  old int|null\n  sampler_name string\n  steps int|null\n\n\
             model C\n  batch_count int\n\nmodel IP\n  end number{>0,<=1}\n  scale number{>=0,<=1} required\n"
        );
        assert!(s.model("Unused").is_none());
    }

    #[test]
    fn a_model_the_document_only_names_comes_from_the_supplement() {
        let sup =
            Schema::from_table("control C\n\nmodel C\n  batch_count int\n  unit @IP\n").unwrap();
        let s = from_openapi(&doc(false), &sup).unwrap();
        assert!(s.root(TaskType::Control).unwrap().field("unit").is_some());
        assert!(
            s.model("IP").unwrap().field("scale").is_some(),
            "IP from the document"
        );
        let bare = from_openapi(&doc(false), &Schema::default()).unwrap();
        assert!(bare.root(TaskType::Control).is_none());
    }

    #[test]
    fn a_document_without_generation_routes_is_refused() {
        assert!(from_openapi(&json!({"paths": {}}), &Schema::default()).is_err());
        assert!(from_openapi(&json!({"openapi": "3.1"}), &Schema::default()).is_err());
    }
}
