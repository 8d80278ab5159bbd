//! Pure parsing of SD.Next answers (no I/O), and checkpoint name resolution.

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use serde_json::Value;

use super::{GenerateOutput, LoadedCheckpoint, Progress, RemoteError, SdModel};

/// Standard alphabet, padding optional (SD.Next always pads; be lenient anyway).
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn json(bytes: &[u8]) -> Result<Value, RemoteError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned();
        RemoteError::Decode(format!("invalid JSON ({e}): {head:?}"))
    })
}

/// The message of an SD.Next error body: `detail` (string, or FastAPI's validation list),
/// then `errors`, then `error`, then the raw text.
pub(crate) fn error_message(status: u16, body: &[u8]) -> String {
    let nonempty = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if let Some(s) = nonempty(v.get("detail")) {
            return s;
        }
        if let Some(list) = v.get("detail").and_then(Value::as_array) {
            let parts: Vec<String> = list
                .iter()
                .map(|e| {
                    let loc = e
                        .get("loc")
                        .and_then(Value::as_array)
                        .map(|l| {
                            l.iter()
                                .map(|p| match p {
                                    Value::String(s) => s.clone(),
                                    other => other.to_string(),
                                })
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .unwrap_or_default();
                    let msg = e.get("msg").and_then(Value::as_str).unwrap_or("invalid");
                    if loc.is_empty() {
                        msg.to_string()
                    } else {
                        format!("{loc}: {msg}")
                    }
                })
                .collect();
            if !parts.is_empty() {
                return parts.join("; ");
            }
        }
        if let Some(s) = nonempty(v.get("errors")).or_else(|| nonempty(v.get("error"))) {
            return s;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        format!("HTTP {status}")
    } else {
        text.chars().take(300).collect()
    }
}

fn opt_str(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn int(v: &Value, key: &str) -> i64 {
    match v.get(key) {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or(0),
        _ => 0,
    }
}

pub(crate) fn sd_models(v: &Value) -> Result<Vec<SdModel>, RemoteError> {
    let list = v.as_array().ok_or_else(|| {
        RemoteError::Decode(format!("sd-models: expected an array, got {}", kind(v)))
    })?;
    list.iter()
        .map(|m| {
            let title = opt_str(m, "title").ok_or_else(|| {
                RemoteError::Decode("sd-models: an entry has no title".to_string())
            })?;
            Ok(SdModel {
                model_name: opt_str(m, "model_name").unwrap_or_else(|| title.clone()),
                filename: opt_str(m, "filename").unwrap_or_default(),
                hash: opt_str(m, "hash").filter(|h| !h.is_empty()),
                title,
            })
        })
        .collect()
}

pub(crate) fn samplers(v: &Value) -> Result<Vec<String>, RemoteError> {
    let list = v.as_array().ok_or_else(|| {
        RemoteError::Decode(format!("samplers: expected an array, got {}", kind(v)))
    })?;
    Ok(list
        .iter()
        .filter_map(|s| match s {
            Value::String(n) => Some(n.clone()),
            other => opt_str(other, "name"),
        })
        .collect())
}

pub(crate) fn vaes(v: &Value) -> Result<Vec<String>, RemoteError> {
    let list = v.as_array().ok_or_else(|| {
        RemoteError::Decode(format!("sd-vae: expected an array, got {}", kind(v)))
    })?;
    Ok(list
        .iter()
        .filter_map(|e| opt_str(e, "model_name"))
        .collect())
}

pub(crate) fn loaded_checkpoint(v: &Value) -> Result<Option<LoadedCheckpoint>, RemoteError> {
    if !v.is_object() {
        return Err(RemoteError::Decode(format!(
            "checkpoint: expected an object, got {}",
            kind(v)
        )));
    }
    Ok(opt_str(v, "title")
        .filter(|t| !t.is_empty())
        .map(|title| LoadedCheckpoint {
            title,
            name: opt_str(v, "name"),
            filename: opt_str(v, "filename"),
        }))
}

/// Decodes one image string (`data:image/...;base64,` prefix allowed).
pub(crate) fn decode_image(s: &str) -> Result<Vec<u8>, RemoteError> {
    let data = match s.find("base64,") {
        Some(i) if s.starts_with("data:") => &s[i + "base64,".len()..],
        _ => s,
    };
    // Copy only when there is whitespace to remove (answers can be hundreds of MiB).
    let cleaned: std::borrow::Cow<'_, str> = if data.bytes().any(|b| b.is_ascii_whitespace()) {
        data.chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect::<String>()
            .into()
    } else {
        data.into()
    };
    B64.decode(cleaned.as_bytes())
        .or_else(|_| general_purpose::URL_SAFE.decode(cleaned.as_bytes()))
        .map_err(|e| RemoteError::Decode(format!("image is not base64: {e}")))
}

/// The parts of a generation answer the host reads; everything else (`parameters`, which
/// echoes the request and its images) is skipped without being held.
#[derive(serde::Deserialize)]
struct RawAnswer<'a> {
    #[serde(borrow, default)]
    images: Option<Vec<ImageText<'a>>>,
    #[serde(default)]
    info: Option<Value>,
}

/// One image string of an answer: borrowed from the body when it has no escapes (base64
/// never needs any), so a large answer is not copied before it is decoded.
struct ImageText<'a>(std::borrow::Cow<'a, str>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for ImageText<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = ImageText<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a base64 image string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(ImageText(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ImageText(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(ImageText(std::borrow::Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visitor(std::marker::PhantomData))
    }
}

pub(crate) fn generate_output(bytes: &[u8]) -> Result<GenerateOutput, RemoteError> {
    let raw: RawAnswer<'_> = serde_json::from_slice(bytes).map_err(|e| {
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned();
        RemoteError::Decode(format!("invalid generation answer ({e}): {head:?}"))
    })?;
    let images = raw
        .images
        .unwrap_or_default()
        .iter()
        .map(|i| decode_image(&i.0))
        .collect::<Result<Vec<_>, _>>()?;
    let info = match raw.info {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) if s.trim().is_empty() => Value::Null,
        Some(Value::String(s)) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        Some(other) => other,
    };
    let infotexts = info
        .get("infotexts")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|t| t.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    Ok(GenerateOutput {
        images,
        infotexts,
        info,
    })
}

pub(crate) fn progress(v: &Value) -> Result<Progress, RemoteError> {
    if !v.is_object() {
        return Err(RemoteError::Decode(format!(
            "progress: expected an object, got {}",
            kind(v)
        )));
    }
    let state = v.get("state").cloned().unwrap_or(Value::Null);
    Ok(Progress {
        progress: v.get("progress").and_then(Value::as_f64).unwrap_or(0.0),
        eta_relative: v.get("eta_relative").and_then(Value::as_f64),
        job: opt_str(&state, "job").unwrap_or_default(),
        job_count: int(&state, "job_count"),
        job_no: int(&state, "job_no"),
        sampling_step: int(&state, "sampling_step"),
        sampling_steps: int(&state, "sampling_steps"),
        interrupted: state
            .get("interrupted")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        current_image: opt_str(v, "current_image").filter(|s| !s.is_empty()),
    })
}

/// Percent-decodes a URL user-info component.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `name [hash]` → `name`; other strings unchanged.
pub fn strip_hash(title: &str) -> &str {
    let t = title.trim_end();
    if t.ends_with(']')
        && let Some(i) = t.rfind(" [")
    {
        return &t[..i];
    }
    t
}

fn basename_no_ext(path: &str) -> &str {
    let base = path.rsplit(['/', '\\']).next().unwrap_or(path);
    match base.rfind('.') {
        Some(i) if i > 0 => &base[..i],
        _ => base,
    }
}

/// Finds the model a user means by `wanted`, trying in turn (each over all models, so an
/// exact title always wins): the title, the title without ` [hash]` (either side), the
/// model name, the filename, and the filename's basename without extension.
pub fn resolve_checkpoint<'a>(models: &'a [SdModel], wanted: &str) -> Option<&'a SdModel> {
    let wanted = wanted.trim();
    if wanted.is_empty() {
        return None;
    }
    let wanted_nohash = strip_hash(wanted);
    let passes: [&dyn Fn(&SdModel) -> bool; 5] = [
        &|m| m.title == wanted,
        &|m| strip_hash(&m.title) == wanted_nohash,
        &|m| m.model_name == wanted || m.model_name == wanted_nohash,
        &|m| !m.filename.is_empty() && (m.filename == wanted || m.filename == wanted_nohash),
        &|m| {
            !m.filename.is_empty()
                && basename_no_ext(&m.filename) == basename_no_ext(wanted_nohash)
                && !wanted_nohash.contains(['/', '\\'])
        },
    ];
    passes
        .iter()
        .find_map(|pass| models.iter().find(|m| pass(m)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model(title: &str, name: &str, file: &str) -> SdModel {
        SdModel {
            title: title.into(),
            model_name: name.into(),
            filename: file.into(),
            hash: None,
        }
    }

    fn models() -> Vec<SdModel> {
        vec![
            model(
                "sd15/dreamshaper [abc1234567]",
                "dreamshaper",
                "/m/Stable-diffusion/sd15/dreamshaper.safetensors",
            ),
            model("anime/a", "a", "/m/Stable-diffusion/anime/a.safetensors"),
            model("a", "a", "/m/Stable-diffusion/a.safetensors"),
            model(
                "Diffusers/tiny-sd15",
                "Diffusers/tiny-sd15",
                "/srv/models/Diffusers/tiny-sd15",
            ),
        ]
    }

    #[test]
    fn resolve_prefers_exact_title_then_aliases() {
        let ms = models();
        let t = |w: &str| resolve_checkpoint(&ms, w).map(|m| m.title.as_str());
        assert_eq!(
            t("a"),
            Some("a"),
            "exact title beats another model's model_name"
        );
        assert_eq!(t("anime/a"), Some("anime/a"));
        assert_eq!(t("sd15/dreamshaper"), Some("sd15/dreamshaper [abc1234567]"));
        assert_eq!(
            t("sd15/dreamshaper [0000000000]"),
            Some("sd15/dreamshaper [abc1234567]"),
            "a stale hash still resolves by name"
        );
        assert_eq!(t("dreamshaper"), Some("sd15/dreamshaper [abc1234567]"));
        assert_eq!(
            t("/m/Stable-diffusion/anime/a.safetensors"),
            Some("anime/a")
        );
        assert_eq!(
            t("dreamshaper.safetensors"),
            Some("sd15/dreamshaper [abc1234567]")
        );
        assert_eq!(t("Diffusers/tiny-sd15"), Some("Diffusers/tiny-sd15"));
        assert_eq!(t("tiny-sd15"), Some("Diffusers/tiny-sd15"));
        assert_eq!(t("nope"), None);
        assert_eq!(
            t("other/a"),
            None,
            "a folder path does not fall back to basename"
        );
        assert_eq!(t(""), None);
    }

    #[test]
    fn strip_hash_only_strips_a_trailing_bracket() {
        assert_eq!(strip_hash("x [abc]"), "x");
        assert_eq!(strip_hash("x"), "x");
        assert_eq!(strip_hash("[abc] x"), "[abc] x");
    }

    #[test]
    fn error_messages_follow_sdnext_bodies() {
        let m = |b: &str| error_message(400, b.as_bytes());
        assert_eq!(
            m(
                r#"{"error":"HTTPException","code":404,"detail":"Sampler not found","body":"","errors":"404: Sampler not found"}"#
            ),
            "Sampler not found"
        );
        assert_eq!(m(r#"{"error":"Init image is none"}"#), "Init image is none");
        assert_eq!(
            m(
                r#"{"detail":[{"type":"int_parsing","loc":["body","steps"],"msg":"Input should be a valid integer","input":"many"}]}"#
            ),
            "body.steps: Input should be a valid integer"
        );
        assert_eq!(
            m(
                r#"{"error":"TypeError","code":500,"detail":"","body":"","errors":"control_run() got an unexpected keyword argument 'xyz'"}"#
            ),
            "control_run() got an unexpected keyword argument 'xyz'"
        );
        assert_eq!(m("Internal Server Error"), "Internal Server Error");
        assert_eq!(m(""), "HTTP 400");
    }

    #[test]
    fn generate_output_decodes_images_and_infotexts() {
        let info = json!({"all_seeds": [1, 2], "infotexts": ["one", "two"]}).to_string();
        let v = json!({"images": ["aGVsbG8=", "data:image/png;base64,d29ybGQ"],
                       "parameters": {}, "info": info});
        let out = generate_output(v.to_string().as_bytes()).unwrap();
        // An escaped image string (not borrowable) decodes as well.
        let escaped = generate_output(br#"{"images": ["aGVsbG8\u003d"], "info": ""}"#).unwrap();
        assert_eq!(escaped.images, vec![b"hello".to_vec()]);
        assert_eq!(out.images, vec![b"hello".to_vec(), b"world".to_vec()]);
        assert_eq!(out.infotexts, vec!["one", "two"]);
        assert_eq!(out.info["all_seeds"], json!([1, 2]));

        let empty =
            generate_output(br#"{"images": [], "parameters": {"init_images": ["x"]}, "info": ""}"#)
                .unwrap();
        assert!(empty.images.is_empty());
        assert!(empty.infotexts.is_empty());
        assert_eq!(empty.info, Value::Null);

        assert!(matches!(
            generate_output(br#"{"images": ["***"], "info": ""}"#),
            Err(RemoteError::Decode(_))
        ));
    }

    #[test]
    fn progress_idle_and_running() {
        let idle = progress(&json!({"id":"","progress":0.0,"eta_relative":0.0,"state":{"skipped":false,"interrupted":true,"job":"","job_count":0,"job_timestamp":"20261127174131","job_no":0,"sampling_step":0,"sampling_steps":0},"current_image":null,"textinfo":null})).unwrap();
        assert_eq!(idle.job, "");
        assert!(idle.interrupted);
        assert_eq!(idle.current_image, None);
        let run = progress(&json!({"id":"730057162f95423","progress":0.05,"eta_relative":57.93,"state":{"skipped":false,"interrupted":false,"job":"Inference","job_count":1,"job_timestamp":"20261127174128","job_no":0,"sampling_step":3,"sampling_steps":61},"current_image":"iVBO","textinfo":null})).unwrap();
        assert_eq!(run.job, "Inference");
        assert_eq!(
            (run.sampling_step, run.sampling_steps, run.job_count),
            (3, 61, 1)
        );
        assert_eq!(run.eta_relative, Some(57.93));
        assert_eq!(run.current_image.as_deref(), Some("iVBO"));
    }

    #[test]
    fn checkpoint_null_title_is_none() {
        assert_eq!(
            loaded_checkpoint(&json!({"type": null, "class": null})).unwrap(),
            None
        );
        let l = loaded_checkpoint(&json!({"type":"sd","class":"StableDiffusionPipeline","checkpoint":"/m/a","title":"a","name":"a","filename":"/m/a","hash":null})).unwrap().unwrap();
        assert_eq!(l.title, "a");
        assert_eq!(l.filename.as_deref(), Some("/m/a"));
    }

    #[test]
    fn models_and_samplers_parse() {
        let ms = sd_models(&json!([{"title":"Diffusers/tiny-sd15","model_name":"Diffusers/tiny-sd15","filename":"/f","type":"diffusers","sha256":null,"hash":null,"config":null}])).unwrap();
        assert_eq!(ms[0].title, "Diffusers/tiny-sd15");
        assert_eq!(ms[0].hash, None);
        let ss = samplers(
            &json!([{"name": "UniPC", "options": {}}, {"name": "Euler a", "options": {}}]),
        )
        .unwrap();
        assert_eq!(ss, vec!["UniPC", "Euler a"]);
        assert!(sd_models(&json!({"detail": "x"})).is_err());
    }

    #[test]
    fn percent_decoding_of_credentials() {
        assert_eq!(percent_decode("p%40ss%3Aword"), "p@ss:word");
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("bad%zz%"), "bad%zz%");
    }
}
