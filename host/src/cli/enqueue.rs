//! `enqueue`: the request from `--json FILE|-` and the flags.

use std::io::Read;
use std::path::Path;

use base64::Engine;
use scheduler_api::{EnqueueRequest, TaskType};
use serde_json::{Value, json};

use super::CliError;
use super::args::EnqueueArgs;

/// Reads `FILE` or stdin (`-`).
pub fn read_input(file: &str) -> Result<String, CliError> {
    if file == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::Usage(format!("cannot read stdin: {e}")))?;
        Ok(s)
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| CliError::Usage(format!("cannot read {file}: {e}")))
    }
}

fn data_url(path: &Path) -> Result<String, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    let mime = match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        _ => "image/png",
    };
    Ok(format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// `WIDTHxHEIGHT`.
fn size(s: &str) -> Result<(u32, u32), CliError> {
    let bad = || CliError::Usage(format!("--size {s}: expected WIDTHxHEIGHT, e.g. 512x768"));
    let (w, h) = s
        .to_ascii_lowercase()
        .split_once('x')
        .map(|(w, h)| (w.trim().to_owned(), h.trim().to_owned()))
        .ok_or_else(bad)?;
    Ok((w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?))
}

/// The request field names a flag writes, by task type: SD.Next's `/control` names the size
/// and the batch count differently from txt2img/img2img (its input images: [`control_inputs`]).
struct Names {
    width: &'static str,
    height: &'static str,
    count: &'static str,
}

fn names(kind: TaskType) -> Names {
    match kind {
        TaskType::Control => Names {
            width: "width_before",
            height: "height_before",
            count: "batch_count",
        },
        TaskType::Txt2img | TaskType::Img2img => Names {
            width: "width",
            height: "height",
            count: "n_iter",
        },
    }
}

/// `--init-image` of a Control task, as SD.Next's API takes an input (its `inputs` field is
/// typed as server-side images: base64 there is a 422): each unit without an `image` (or
/// `override`) gets one, in order (the last one repeats); with no such unit, the images are
/// the init images, `init_control` (as the extension sends a Control input without units).
fn control_inputs(params: &mut serde_json::Map<String, Value>, images: Vec<String>) {
    let mut given = 0;
    if let Some(Value::Array(units)) = params.get_mut("control") {
        for unit in units.iter_mut().filter_map(Value::as_object_mut) {
            let has = ["image", "override"]
                .iter()
                .any(|f| unit.get(*f).is_some_and(|v| !v.is_null()));
            if !has {
                let i = given.min(images.len() - 1);
                unit.insert("image".into(), json!(images[i]));
                given += 1;
            }
        }
    }
    if given == 0 {
        params.insert("init_control".into(), json!(images));
    }
}

/// The enqueue body: the file's JSON (if any) with the flags applied over it.
pub fn build_request(a: &EnqueueArgs) -> Result<EnqueueRequest, CliError> {
    let names = names(a.kind);
    let mut req: EnqueueRequest = match a.json.as_deref() {
        Some(file) if !file.is_empty() => {
            let text = read_input(file)?;
            serde_json::from_str(&text).map_err(|e| {
                CliError::Usage(format!(
                    "{}: not a JSON object of request fields: {e}",
                    if file == "-" { "stdin" } else { file }
                ))
            })?
        }
        _ => EnqueueRequest::default(),
    };
    let p = &mut req.params;
    let mut put = |k: &str, v: Value| {
        p.insert(k.to_owned(), v);
    };
    if let Some(v) = &a.prompt {
        put("prompt", json!(v));
    }
    if let Some(v) = &a.negative {
        put("negative_prompt", json!(v));
    }
    if let Some(v) = a.steps {
        put("steps", json!(v));
    }
    if let Some(v) = a.cfg {
        put("cfg_scale", json!(v));
    }
    if let Some(v) = a.seed {
        put("seed", json!(v));
    }
    if let Some(s) = &a.size {
        let (w, h) = size(s)?;
        put(names.width, json!(w));
        put(names.height, json!(h));
    }
    if let Some(v) = &a.sampler {
        put("sampler_name", json!(v));
    }
    if let Some(v) = a.batch {
        put("batch_size", json!(v));
    }
    if let Some(v) = a.count {
        put(names.count, json!(v));
    }
    if let Some(v) = a.denoise {
        put("denoising_strength", json!(v));
    }
    let images = a
        .init_images
        .iter()
        .map(|f| data_url(f))
        .collect::<Result<Vec<_>, _>>()?;
    for kv in &a.set {
        let (k, v) = kv
            .split_once('=')
            .filter(|(k, _)| !k.trim().is_empty())
            .ok_or_else(|| CliError::Usage(format!("--set {kv}: expected KEY=VALUE")))?;
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
        match k.trim() {
            "checkpoint" | "vae" | "name" | "callback_url" | "page_snapshot" => {
                return Err(CliError::Usage(format!(
                    "--set {k}=…: use --{} instead",
                    k.replace('_', "-")
                )));
            }
            k => put(k, value),
        }
    }
    if !images.is_empty() {
        match a.kind {
            TaskType::Control => control_inputs(&mut req.params, images),
            _ => {
                req.params.insert("init_images".into(), json!(images));
            }
        }
    }
    if let Some(v) = &a.checkpoint {
        req.checkpoint = Some(v.clone());
    }
    if let Some(v) = &a.vae {
        req.vae = Some(v.clone());
    }
    if let Some(v) = &a.name {
        req.name = Some(v.clone());
    }
    if let Some(v) = &a.callback_url {
        req.callback_url = Some(v.clone());
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_inputs_go_to_the_units_without_an_image_else_to_init_control() {
        let mut p = json!({"control": [{"model": "m"}, {"image": "kept"}, {"model": "n"}]})
            .as_object()
            .cloned()
            .unwrap();
        control_inputs(&mut p, vec!["i1".into(), "i2".into()]);
        assert_eq!(
            Value::Object(p),
            json!({"control": [{"model": "m", "image": "i1"}, {"image": "kept"}, {"model": "n", "image": "i2"}]})
        );
        let mut p = json!({"control": [{"image": "kept"}]})
            .as_object()
            .cloned()
            .unwrap();
        control_inputs(&mut p, vec!["i1".into()]);
        assert_eq!(p["init_control"], json!(["i1"]));
        let mut p = serde_json::Map::new();
        control_inputs(&mut p, vec!["i1".into()]);
        assert_eq!(Value::Object(p), json!({"init_control": ["i1"]}));
    }

    #[test]
    fn sizes_parse_and_bad_ones_are_usage_errors() {
        assert_eq!(size("512x768").unwrap(), (512, 768));
        assert_eq!(size("64X64").unwrap(), (64, 64));
        assert!(matches!(size("512"), Err(CliError::Usage(_))));
        assert!(matches!(size("ax1"), Err(CliError::Usage(_))));
    }
}
