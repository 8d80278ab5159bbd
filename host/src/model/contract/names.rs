//! Names checked against what the pool's backends list: the checkpoint, the VAE, the
//! samplers (`sampler_name`, `hr_sampler_name`), the upscalers (`hr_upscaler`, the
//! `resize_name*` fields) and the ControlNet models of Control units. A list no enabled
//! backend has given yet is not checked (the claim checks the checkpoint, as before).

use std::sync::Arc;

use scheduler_api::TaskType;
use serde_json::{Map, Value};

use super::Violation;

/// Whether a checkpoint name resolves on some backend (its own resolution rules).
pub type CheckpointResolver = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The names the pool lists (`None`: no enabled backend has answered that list yet).
#[derive(Clone, Default)]
pub struct Names {
    /// Resolves a checkpoint against the backends' `/sd-models`.
    pub checkpoint_known: Option<CheckpointResolver>,
    /// The checkpoint titles (for the message).
    pub checkpoints: Vec<String>,
    /// `/sdapi/v1/samplers` names.
    pub samplers: Option<Vec<String>>,
    /// `/sdapi/v1/sd-vae` names.
    pub vaes: Option<Vec<String>>,
    /// `/sdapi/v1/upscalers` names.
    pub upscalers: Option<Vec<String>>,
    /// `/sdapi/v1/controlnets?model_type=all`: every ControlNet model name.
    pub controlnets: Option<Vec<String>>,
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Names")
            .field("checkpoints", &self.checkpoints)
            .field("samplers", &self.samplers)
            .field("vaes", &self.vaes)
            .field("upscalers", &self.upscalers)
            .field("controlnets", &self.controlnets)
            .finish()
    }
}

/// VAE values SD.Next takes besides its listed files (as the worker's check).
pub const BUILTIN_VAES: &[&str] = &["Automatic", "Default", "None", "TAESD", "REPA-E"];

/// Sampler values SD.Next takes besides `/samplers` (`Default` is valid but not listed).
const EXTRA_SAMPLERS: &[&str] = &["Default", "Same as primary"];

/// Fields holding an upscaler name.
const UPSCALER_FIELDS: &[&str] = &[
    "hr_upscaler",
    "resize_name",
    "resize_name_before",
    "resize_name_after",
    "resize_name_mask",
];

/// "a, b, c, …" — at most 8 names.
fn some_of(list: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = list
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > SHOWN {
        s.push_str(&format!(", … ({} in all)", list.len()));
    }
    if s.is_empty() {
        s.push_str("none");
    }
    s
}

fn unknown(path: &str, what: &str, name: &str, list: &[String]) -> Violation {
    Violation {
        unknown_name: true,
        ..Violation::new(
            path,
            format!("unknown {what} {name}; known: {}", some_of(list)),
        )
    }
}

/// A sampler name as SD.Next's API resolves it: exactly, or in any case; never a
/// dropdown separator (`── Euler ──`).
fn sampler_known(list: &[String], name: &str) -> bool {
    if name.starts_with('─') {
        return false;
    }
    let lower = name.to_lowercase();
    list.iter()
        .map(String::as_str)
        .chain(EXTRA_SAMPLERS.iter().copied())
        .any(|s| s == name || s.to_lowercase() == lower)
}

/// An upscaler name as SD.Next compares them: any case, `-` and space alike.
fn upscaler_key(s: &str) -> String {
    s.to_lowercase().replace('-', " ")
}

fn text<'a>(req: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    req.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Checks the names of a request (and of its task's checkpoint and VAE).
pub fn check_names(
    names: &Names,
    kind: TaskType,
    req: &Map<String, Value>,
    checkpoint: Option<&str>,
    vae: Option<&str>,
) -> Result<(), Violation> {
    if let (Some(ck), Some(known)) = (checkpoint, &names.checkpoint_known)
        && !known(ck)
    {
        return Err(unknown("checkpoint", "checkpoint", ck, &names.checkpoints));
    }
    if let (Some(v), Some(list)) = (vae, &names.vaes)
        && !BUILTIN_VAES.iter().any(|b| b.eq_ignore_ascii_case(v))
        && !list.iter().any(|l| l == v)
    {
        let mut all: Vec<String> = BUILTIN_VAES.iter().map(|s| s.to_string()).collect();
        all.extend(list.iter().cloned());
        return Err(unknown("vae", "VAE", v, &all));
    }
    if let Some(list) = &names.samplers {
        let mut fields = vec!["sampler_name"];
        if kind != TaskType::Control {
            fields.push("hr_sampler_name");
            // txt2img/img2img resolve `sampler_name or sampler_index`: an empty name falls
            // back to `sampler_index` (0 by default), which must then be a name.
            if req.get("sampler_name").and_then(Value::as_str) == Some("") {
                match req.get("sampler_index").and_then(Value::as_str) {
                    Some(s) if sampler_known(list, s) => {}
                    Some(s) => return Err(unknown("sampler_index", "sampler", s, list)),
                    None => {
                        return Err(Violation::new(
                            "sampler_name",
                            format!(
                                "sampler_name is empty (SD.Next then needs a sampler name in sampler_index); known: {}",
                                some_of(list)
                            ),
                        ));
                    }
                }
            }
        }
        for f in fields {
            if let Some(s) = text(req, f)
                && !(f == "hr_sampler_name" && s == "None")
                && !sampler_known(list, s)
            {
                return Err(unknown(f, "sampler", s, list));
            }
        }
    }
    if let Some(list) = &names.upscalers {
        for f in UPSCALER_FIELDS {
            if let Some(s) = text(req, f) {
                let key = upscaler_key(s);
                if key != "none" && !list.iter().any(|u| upscaler_key(u) == key) {
                    return Err(unknown(f, "upscaler", s, list));
                }
            }
        }
    }
    if kind == TaskType::Control
        && let Some(list) = &names.controlnets
        && let Some(units) = req.get("control").and_then(Value::as_array)
    {
        let default_type = text(req, "unit_type").unwrap_or("controlnet");
        for (i, u) in units.iter().enumerate() {
            let Some(u) = u.as_object() else { continue };
            let unit_type = u
                .get("unit_type")
                .and_then(Value::as_str)
                .unwrap_or(default_type);
            if unit_type != "controlnet" {
                continue; // other unit types list their models per loaded model type
            }
            if let Some(m) = text(u, "model")
                && m != "None"
                && !list.iter().any(|l| l == m)
            {
                return Err(unknown(
                    &format!("control[{i}].model"),
                    "ControlNet model",
                    m,
                    list,
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

    fn names() -> Names {
        let cks = vec!["tiny-sd15".to_string(), "sdxl/base".to_string()];
        let known = cks.clone();
        Names {
            checkpoint_known: Some(Arc::new(move |c: &str| known.iter().any(|k| k == c))),
            checkpoints: cks,
            samplers: Some(vec!["Euler a".into(), "DDIM".into(), "UniPC".into()]),
            vaes: Some(vec!["sdxl-vae".into()]),
            upscalers: Some(vec![
                "None".into(),
                "Latent (bilinear)".into(),
                "ESRGAN 4x".into(),
            ]),
            controlnets: Some(vec!["tiny-controlnet".into()]),
        }
    }

    fn check(
        kind: TaskType,
        body: Value,
        ck: Option<&str>,
        vae: Option<&str>,
    ) -> Result<(), Violation> {
        check_names(&names(), kind, body.as_object().unwrap(), ck, vae)
    }

    #[test]
    fn unknown_names_are_refused_with_what_is_known() {
        let e = check(
            TaskType::Txt2img,
            json!({"sampler_name": "NoSuchSampler"}),
            None,
            None,
        )
        .unwrap_err();
        assert_eq!(e.path, "sampler_name");
        assert_eq!(
            e.message,
            "unknown sampler NoSuchSampler; known: Euler a, DDIM, UniPC"
        );
        let e = check(TaskType::Txt2img, json!({}), Some("no-such-model"), None).unwrap_err();
        assert_eq!(
            (e.path.as_str(), e.message.as_str()),
            (
                "checkpoint",
                "unknown checkpoint no-such-model; known: tiny-sd15, sdxl/base"
            )
        );
        assert_eq!(
            check(TaskType::Txt2img, json!({}), None, Some("nope"))
                .unwrap_err()
                .path,
            "vae"
        );
        assert_eq!(
            check(
                TaskType::Txt2img,
                json!({"hr_upscaler": "4x-Nope"}),
                None,
                None
            )
            .unwrap_err()
            .path,
            "hr_upscaler"
        );
        assert_eq!(
            check(
                TaskType::Control,
                json!({"control": [{"model": "tiny-controlnet"}, {"model": "nope"}]}),
                None,
                None
            )
            .unwrap_err()
            .path,
            "control[1].model"
        );
        for body in [
            json!({"sampler_name": ""}),
            json!({"sampler_name": "None"}),
            json!({"sampler_name": "", "sampler_index": 0}),
        ] {
            assert_eq!(
                check(TaskType::Txt2img, body.clone(), None, None)
                    .unwrap_err()
                    .path,
                "sampler_name",
                "{body}"
            );
        }
        assert_eq!(
            check(
                TaskType::Txt2img,
                json!({"sampler_name": "── Euler ──"}),
                None,
                None
            )
            .unwrap_err()
            .path,
            "sampler_name"
        );
    }

    #[test]
    fn names_sd_next_resolves_pass() {
        check(
            TaskType::Txt2img,
            json!({"sampler_name": "euler A", "hr_sampler_name": "Same as primary",
                   "hr_upscaler": "latent (BILINEAR)", "resize_name": "None"}),
            Some("sdxl/base"),
            Some("sdxl-vae"),
        )
        .unwrap();
        check(
            TaskType::Txt2img,
            json!({"sampler_name": "Default"}),
            None,
            Some("Automatic"),
        )
        .unwrap();
        check(
            TaskType::Txt2img,
            json!({"hr_upscaler": "esrgan-4x"}),
            None,
            None,
        )
        .unwrap();
        check(
            TaskType::Txt2img,
            json!({"sampler_name": "", "sampler_index": "DDIM"}),
            None,
            None,
        )
        .unwrap();
        check(TaskType::Control, json!({"sampler_name": ""}), None, None).unwrap();
        check(
            TaskType::Control,
            json!({"control": [{"model": "None"}, {"model": ""}, {"unit_type": "xs", "model": "whatever"}]}),
            None,
            None,
        )
        .unwrap();
    }

    #[test]
    fn lists_no_backend_gave_are_not_checked() {
        let none = Names::default();
        check_names(
            &none,
            TaskType::Txt2img,
            json!({"sampler_name": "NoSuchSampler", "hr_upscaler": "x"})
                .as_object()
                .unwrap(),
            Some("no-such-model"),
            Some("nope"),
        )
        .unwrap();
    }

    #[test]
    fn long_lists_are_cut() {
        let list: Vec<String> = (0..114).map(|i| format!("s{i}")).collect();
        assert_eq!(
            some_of(&list),
            "s0, s1, s2, s3, s4, s5, s6, s7, … (114 in all)"
        );
    }
}
