//! THE image-field walker: one table, [`IMAGE_FIELDS`], knows every image-bearing field of
//! every task type, however nested, and three functions walk it:
//!
//! - [`validate`]: each image found must be base64 or a `data:` URL ([`is_inline_image`]:
//!   the host never fetches URLs or reads paths); anything else is refused with the field's
//!   path (`control[1].image`, `ip_adapter[0].images[2]`).
//! - [`strip`]: removes every image field from a request (listings, events, the CLI's
//!   tables: image data can be megabytes), and nulls the inline images among positional
//!   script arguments ([`SCRIPT_ARG_FIELDS`]).
//! - [`sql_paths`]: the same fields as SQLite JSON paths, so listings leave the image data
//!   in the database instead of reading it ([`strip`] still runs after, for arrays longer
//!   than [`SQL_ARRAY_BOUND`]).
//!
//! A new task type or SD.Next field registers its image fields here, and nothing else
//! changes. A path is dot-separated keys; `[]` after a key means "each element of this
//! list" (a final `[]` means the list holds the images).

use serde_json::{Map, Value};

use super::invalid::Invalid;

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

/// Every image-bearing field of an SD.Next request, for every task type (a field a type
/// does not have is simply absent).
pub const IMAGE_FIELDS: &[&str] = &[
    // img2img
    "init_images[]",
    "mask",
    // control: inputs / init images (the API's own lists), units, the merged init list
    "inputs[]",
    "inits[]",
    "init_control[]",
    "control[].image",
    "control[].override",
    // IP adapters (txt2img, img2img, control)
    "ip_adapter[].images[]",
    "ip_adapter[].masks[]",
    // face module (txt2img / control: `face`, img2img: `face_id`)
    "face.source_images[]",
    "face_id.source_images[]",
];

/// Fields of positional script arguments (`script_args`: the Face script's gallery or a
/// script's image argument travel there as data URLs; `alwayson_scripts`' `args`): any
/// inline image anywhere inside them is image data, which [`strip`] replaces with `null`
/// (positions kept). Not validated: a script's text argument may well be a URL or a path.
pub const SCRIPT_ARG_FIELDS: &[&str] = &["script_args", "alwayson_scripts"];

/// Array elements listed as SQLite paths by [`sql_paths`] (per `[]`).
pub const SQL_ARRAY_BOUND: usize = 16;

/// One step of a parsed path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step<'a> {
    /// An object key.
    Key(&'a str),
    /// Each element of a list.
    Each,
}

fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for seg in path.split('.') {
        match seg.strip_suffix("[]") {
            Some(k) => {
                out.push(Step::Key(k));
                out.push(Step::Each);
            }
            None => out.push(Step::Key(seg)),
        }
    }
    out
}

/// Visits every value at `path` with its concrete path text (`control[0].image`); a value
/// that is not the container the path expects (a unit that is not an object) is reported
/// as such.
fn visit<'v>(
    v: &'v Value,
    rest: &[Step<'_>],
    at: String,
    found: &mut Vec<(String, &'v Value)>,
    wrong: &mut Vec<(String, &'static str)>,
) {
    let Some((first, tail)) = rest.split_first() else {
        found.push((at, v));
        return;
    };
    match (first, v) {
        (_, Value::Null) => {}
        (Step::Key(k), Value::Object(o)) => {
            if let Some(x) = o.get(*k) {
                let next = if at.is_empty() {
                    (*k).to_owned()
                } else {
                    format!("{at}.{k}")
                };
                visit(x, tail, next, found, wrong);
            }
        }
        (Step::Key(_), _) => wrong.push((at, "an object")),
        (Step::Each, Value::Array(a)) => {
            for (i, x) in a.iter().enumerate() {
                visit(x, tail, format!("{at}[{i}]"), found, wrong);
            }
        }
        (Step::Each, _) => wrong.push((at, "a list")),
    }
}

/// Every image value of a request with its path (absent and null fields give nothing).
pub fn images(request: &Map<String, Value>) -> Result<Vec<(String, &Value)>, Invalid> {
    let mut found = Vec::new();
    let mut wrong = Vec::new();
    for path in IMAGE_FIELDS {
        let st = steps(path);
        let Some((Step::Key(k), tail)) = st.split_first() else {
            continue;
        };
        if let Some(v) = request.get(*k) {
            visit(v, tail, (*k).to_owned(), &mut found, &mut wrong);
        }
    }
    if let Some((at, what)) = wrong.into_iter().next() {
        return Err(Invalid(format!("{at} must be {what}")));
    }
    Ok(found)
}

/// Refuses any image field that is not base64 or a `data:` URL, naming its path.
pub fn validate(request: &Map<String, Value>) -> Result<(), Invalid> {
    for (at, v) in images(request)? {
        match v {
            Value::Null => {}
            Value::String(s) if is_inline_image(s) => {}
            _ => {
                return Err(Invalid(format!(
                    "{at} must be base64 or a data URL (URLs and file paths are not accepted)"
                )));
            }
        }
    }
    Ok(())
}

fn strip_at(v: &mut Value, rest: &[Step<'_>]) {
    match (rest, v) {
        ([Step::Key(k)], Value::Object(o)) | ([Step::Key(k), Step::Each], Value::Object(o)) => {
            o.remove(*k);
        }
        ([Step::Key(k), tail @ ..], Value::Object(o)) => {
            if let Some(x) = o.get_mut(*k) {
                strip_at(x, tail);
            }
        }
        ([Step::Each, tail @ ..], Value::Array(a)) => {
            for x in a {
                strip_at(x, tail);
            }
        }
        _ => {}
    }
}

/// Replaces every inline image inside `v`, however nested, with `null`.
fn null_images(v: &mut Value) {
    match v {
        Value::String(s) if is_inline_image(s) => *v = Value::Null,
        Value::Array(a) => a.iter_mut().for_each(null_images),
        Value::Object(o) => o.values_mut().for_each(null_images),
        _ => {}
    }
}

/// Removes every image field (a list of images goes as a whole: `init_images`, a unit's
/// `image`, an adapter's `images`), and nulls the images among script arguments
/// ([`SCRIPT_ARG_FIELDS`]).
pub fn strip(request: &mut Map<String, Value>) {
    let mut root = Value::Object(std::mem::take(request));
    for path in IMAGE_FIELDS {
        strip_at(&mut root, &steps(path));
    }
    if let Value::Object(mut o) = root {
        for f in SCRIPT_ARG_FIELDS {
            if let Some(v) = o.get_mut(*f) {
                null_images(v);
            }
        }
        *request = o;
    }
}

/// The image fields as SQLite JSON paths (`$.init_images`, `$.control[0].image`, …), lists
/// expanded to [`SQL_ARRAY_BOUND`] elements. `json_remove` ignores paths that do not exist.
pub fn sql_paths() -> Vec<String> {
    let mut out = Vec::new();
    for path in IMAGE_FIELDS {
        let mut st = steps(path);
        // A final list of images goes as a whole.
        if st.last() == Some(&Step::Each) {
            st.pop();
        }
        let mut prefixes = vec!["$".to_owned()];
        for s in st {
            prefixes = match s {
                Step::Key(k) => prefixes.into_iter().map(|p| format!("{p}.{k}")).collect(),
                Step::Each => prefixes
                    .into_iter()
                    .flat_map(|p| (0..SQL_ARRAY_BOUND).map(move |i| format!("{p}[{i}]")))
                    .collect(),
            };
        }
        out.extend(prefixes);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn finds_every_registered_image_however_nested() {
        let data = format!("data:image/png;base64,{PNG}");
        let r = obj(json!({
            "init_images": [PNG, data], "mask": PNG,
            "control": [{"image": PNG}, {"override": PNG, "model": "m"}],
            "ip_adapter": [{"adapter": "a", "images": [PNG, PNG], "masks": [PNG]}],
            "init_control": [PNG], "face": {"source_images": [PNG]},
        }));
        let paths: Vec<String> = images(&r).unwrap().into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            [
                "init_images[0]",
                "init_images[1]",
                "mask",
                "init_control[0]",
                "control[0].image",
                "control[1].override",
                "ip_adapter[0].images[0]",
                "ip_adapter[0].images[1]",
                "ip_adapter[0].masks[0]",
                "face.source_images[0]",
            ]
        );
        assert_eq!(validate(&r), Ok(()));
    }

    #[test]
    fn refuses_urls_and_paths_naming_the_field() {
        let cases = [
            (
                json!({"control": [{"image": PNG}, {"image": "https://x/y.png"}]}),
                "control[1].image must be base64 or a data URL (URLs and file paths are not accepted)",
            ),
            (
                json!({"ip_adapter": [{"images": [PNG, "/etc/passwd"]}]}),
                "ip_adapter[0].images[1] must be base64 or a data URL (URLs and file paths are not accepted)",
            ),
            (
                json!({"init_control": ["file:///x.png"]}),
                "init_control[0] must be base64 or a data URL (URLs and file paths are not accepted)",
            ),
            (
                json!({"face": {"source_images": [5]}}),
                "face.source_images[0] must be base64 or a data URL (URLs and file paths are not accepted)",
            ),
            (json!({"control": {"image": PNG}}), "control must be a list"),
            (json!({"control": ["x"]}), "control[0] must be an object"),
            (json!({"init_images": PNG}), "init_images must be a list"),
        ];
        for (body, want) in cases {
            assert_eq!(
                validate(&obj(body.clone())),
                Err(Invalid(want.into())),
                "{body}"
            );
        }
    }

    #[test]
    fn strip_removes_every_image_field_and_keeps_the_rest() {
        let mut r = obj(json!({
            "prompt": "p", "init_images": [PNG], "mask": PNG,
            "control": [{"image": PNG, "model": "m", "strength": 0.5}],
            "ip_adapter": [{"adapter": "a", "images": [PNG], "scale": 0.4}],
            "face": {"mode": "FaceID", "source_images": [PNG]},
        }));
        strip(&mut r);
        assert_eq!(
            Value::Object(r),
            json!({"prompt": "p", "control": [{"model": "m", "strength": 0.5}],
                   "ip_adapter": [{"adapter": "a", "scale": 0.4}], "face": {"mode": "FaceID"}})
        );
    }

    #[test]
    fn strip_nulls_the_images_among_script_arguments() {
        let data = format!("data:image/png;base64,{PNG}");
        let mut r = obj(json!({
            "script_name": "Face", "script_args": [1, "a prompt", "https://x/y.png", data, [data, PNG], {"g": [PNG]}],
            "alwayson_scripts": {"s": {"args": [true, data]}},
        }));
        strip(&mut r);
        assert_eq!(
            Value::Object(r),
            json!({"script_name": "Face",
                   "script_args": [1, "a prompt", "https://x/y.png", null, [null, null], {"g": [null]}],
                   "alwayson_scripts": {"s": {"args": [true, null]}}})
        );
    }

    #[test]
    fn sql_paths_expand_lists() {
        let p = sql_paths();
        assert!(p.contains(&"$.init_images".to_owned()));
        assert!(p.contains(&"$.control[0].image".to_owned()));
        assert!(p.contains(&format!("$.control[{}].override", SQL_ARRAY_BOUND - 1)));
        assert!(p.contains(&"$.ip_adapter[3].images".to_owned()));
        assert!(p.contains(&"$.face.source_images".to_owned()));
        assert!(!p.iter().any(|x| x.contains("[]")));
    }
}
