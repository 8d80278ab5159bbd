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

/// A list of names: strings, or objects with a `name` (`/upscalers`, `/controlnets`).
pub(crate) fn name_list(v: &Value, what: &str) -> Result<Vec<String>, RemoteError> {
    let list = v.as_array().ok_or_else(|| {
        RemoteError::Decode(format!("{what}: expected an array, got {}", kind(v)))
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
        processed: Vec::new(),
    })
}

/// The answer of `/sdapi/v1/control`: images as for txt2img; `info` is an HTML text (not
/// JSON), so each image's infotext is its own (SD.Next writes it into the JPEG's EXIF
/// UserComment, or a PNG's `parameters`), else `info` made plain; `processed` holds the
/// preprocessor maps (SD.Next repeats them: identical ones are kept once).
pub(crate) fn control_output(bytes: &[u8]) -> Result<GenerateOutput, RemoteError> {
    /// Only the maps (the images and `info` are read by [`generate_output`]).
    #[derive(serde::Deserialize)]
    struct RawMaps<'a> {
        #[serde(borrow, default)]
        processed: Option<Vec<std::borrow::Cow<'a, str>>>,
    }
    let mut out = generate_output(bytes)?;
    let raw: RawMaps<'_> = serde_json::from_slice(bytes)
        .map_err(|e| RemoteError::Decode(format!("invalid control answer: {e}")))?;
    let mut processed: Vec<Vec<u8>> = Vec::new();
    for p in raw.processed.unwrap_or_default() {
        let bytes = decode_image(&p)?;
        if !processed.contains(&bytes) {
            processed.push(bytes);
        }
    }
    out.processed = processed;
    if out.infotexts.len() < out.images.len() {
        let fallback = out.info.as_str().map(html_infotext).unwrap_or_default();
        out.infotexts = out
            .images
            .iter()
            .map(|b| {
                jpeg_user_comment(b)
                    .or_else(|| crate::results::image::read_png_parameters(b))
                    .unwrap_or_else(|| fallback.clone())
            })
            .collect();
    }
    Ok(out)
}

/// Control's HTML `info` (`<p><b>Prompt:</b> …</p><p><b>Parameters:</b> Steps: 2| …</p>`)
/// as an infotext: the prompt line, then the parameters comma-separated.
pub(crate) fn html_infotext(html: &str) -> String {
    let mut lines = Vec::new();
    let mut params = Vec::new();
    for para in html.split("<p>") {
        let text = strip_tags(para).trim().to_owned();
        if text.is_empty() {
            continue;
        }
        if let Some(p) = text.strip_prefix("Prompt:") {
            lines.insert(0, p.trim().to_owned());
        } else if let Some(n) = text.strip_prefix("Negative prompt:") {
            lines.push(format!("Negative prompt: {}", n.trim()));
        } else if let Some(p) = text
            .strip_prefix("Parameters:")
            .or_else(|| text.strip_prefix("Runtime:"))
        {
            params.extend(
                p.split('|')
                    .map(|x| x.trim().to_owned())
                    .filter(|x| !x.is_empty()),
            );
        } else {
            lines.push(text);
        }
    }
    if !params.is_empty() {
        lines.push(params.join(", "));
    }
    lines.join("\n")
}

fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut inside = false;
    for c in s.chars() {
        match c {
            '<' => inside = true,
            '>' => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    out.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
}

/// The EXIF UserComment of a JPEG (where SD.Next writes a JPEG's infotext): `UNICODE\0`
/// + UTF-16 (either byte order), or `ASCII\0\0\0` + text.
pub(crate) fn jpeg_user_comment(b: &[u8]) -> Option<String> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            return None;
        }
        let marker = b[i + 1];
        if marker == 0xD9 || marker == 0xDA {
            return None;
        }
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        let seg = b.get(i + 4..i + 2 + len)?;
        if marker == 0xE1
            && let Some(tiff) = seg.strip_prefix(b"Exif\0\0")
        {
            return exif_user_comment(tiff);
        }
        i += 2 + len;
    }
    None
}

fn exif_user_comment(t: &[u8]) -> Option<String> {
    let le = match t.get(0..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let u16_at = |o: usize| -> Option<u16> {
        let s = t.get(o..o + 2)?;
        Some(if le {
            u16::from_le_bytes([s[0], s[1]])
        } else {
            u16::from_be_bytes([s[0], s[1]])
        })
    };
    let u32_at = |o: usize| -> Option<u32> {
        let s = t.get(o..o + 4)?;
        let a = [s[0], s[1], s[2], s[3]];
        Some(if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    };
    // (count, position of the value/offset field) of `tag` in the IFD at `ifd`.
    let find = |ifd: usize, tag: u16| -> Option<(usize, usize)> {
        let n = u16_at(ifd)? as usize;
        (0..n).find_map(|k| {
            let e = ifd + 2 + 12 * k;
            (u16_at(e)? == tag).then(|| Some((u32_at(e + 4)? as usize, e + 8)))?
        })
    };
    let ifd0 = u32_at(4)? as usize;
    let (_, p) = find(ifd0, 0x8769)?;
    let exif_ifd = u32_at(p)? as usize;
    let (count, p) = find(exif_ifd, 0x9286)?;
    let data = if count <= 4 {
        t.get(p..p + count)?
    } else {
        let off = u32_at(p)? as usize;
        t.get(off..off.checked_add(count)?)?
    };
    let (prefix, text) = data.split_at(8.min(data.len()));
    let s = if prefix == b"UNICODE\0" {
        let little = text.len() >= 2 && text[0] != 0 && text[1] == 0;
        let units: Vec<u16> = text
            .chunks_exact(2)
            .map(|c| {
                if little {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect::<String>()
    } else {
        String::from_utf8_lossy(text).into_owned()
    };
    let s = s.trim_end_matches('\0').to_owned();
    (!s.is_empty()).then_some(s)
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

    /// A JPEG that is only an EXIF segment with a UserComment (the way SD.Next writes a JPEG's
    /// infotext: `UNICODE\0` + UTF-16), in the TIFF byte order given.
    fn jpeg_with_user_comment(text: &str, little: bool) -> Vec<u8> {
        let w16 = |v: u16| {
            if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        };
        let w32 = |v: u32| {
            if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        };
        let mut comment = b"UNICODE\0".to_vec();
        for u in text.encode_utf16() {
            comment.extend_from_slice(&if little {
                u.to_le_bytes()
            } else {
                u.to_be_bytes()
            });
        }
        let mut t = Vec::new();
        t.extend_from_slice(if little { b"II" } else { b"MM" });
        t.extend_from_slice(&w16(42));
        t.extend_from_slice(&w32(8));
        // IFD0: one entry, the Exif IFD pointer (at 26).
        t.extend_from_slice(&w16(1));
        t.extend_from_slice(&w16(0x8769));
        t.extend_from_slice(&w16(4));
        t.extend_from_slice(&w32(1));
        t.extend_from_slice(&w32(26));
        t.extend_from_slice(&w32(0));
        // Exif IFD: UserComment, its data at 44.
        t.extend_from_slice(&w16(1));
        t.extend_from_slice(&w16(0x9286));
        t.extend_from_slice(&w16(7));
        t.extend_from_slice(&w32(comment.len() as u32));
        t.extend_from_slice(&w32(44));
        t.extend_from_slice(&w32(0));
        t.extend_from_slice(&comment);
        let mut seg = b"Exif\0\0".to_vec();
        seg.extend_from_slice(&t);
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xE1];
        j.extend_from_slice(&((seg.len() + 2) as u16).to_be_bytes());
        j.extend_from_slice(&seg);
        j.extend_from_slice(&[0xFF, 0xD9]);
        j
    }

    #[test]
    fn control_answers_give_infotexts_from_exif_and_keep_processed_maps_once() {
        let text = "tiny controlnet test\nNegative prompt: \nSteps: 2, Size: 64x64, Seed: 7, Control model: tiny-controlnet";
        for little in [true, false] {
            assert_eq!(
                jpeg_user_comment(&jpeg_with_user_comment(text, little)).as_deref(),
                Some(text)
            );
        }
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let img = jpeg_with_user_comment(text, true);
        let map = b"\xFF\xD8\xFF\xE0map-one";
        let html = "<p><b>Prompt:</b> tiny controlnet test</p><p><b>Runtime:</b> App: SD.Next| Operations: txt2img; control</p><p><b>Parameters:</b> Steps: 2| Size: 64x64| Seed: 7</p>";
        let v = json!({"images": [b64(&img)], "processed": [b64(map), b64(map)], "params": {}, "info": html});
        let out = control_output(v.to_string().as_bytes()).unwrap();
        assert_eq!(out.images, vec![img]);
        assert_eq!(out.infotexts, vec![text.to_owned()]);
        assert_eq!(out.info, json!(html));
        assert_eq!(out.processed, vec![map.to_vec()]);
        // Without EXIF the HTML `info` made plain stands in.
        assert_eq!(
            html_infotext(html),
            "tiny controlnet test\nApp: SD.Next, Operations: txt2img; control, Steps: 2, Size: 64x64, Seed: 7"
        );
        let plain = json!({"images": [b64(b"\xFF\xD8\xFF\xD9")], "info": html});
        assert_eq!(
            control_output(plain.to_string().as_bytes())
                .unwrap()
                .infotexts,
            vec![html_infotext(html)]
        );
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
